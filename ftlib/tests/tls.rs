//! TLS through the public API, against a real [`Server`] on loopback: a pinned client moves
//! files over TLS 1.3 as over TCP, a known-hosts file records a server on first contact and
//! refuses it once its identity changed, plain and TLS peers refuse each other at once, a
//! client killed mid-transfer leaves the server serving, and pipelined small files (which
//! lean on the transport's `input_ready`) go through.

mod common;

use std::fs;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use common::{TestServer, assert_no_temp_files, quick_config};
use ft_testutil::{digest, names_in, noise};
use ftlib::store::DirStore;
use ftlib::{
    Client, ClientConfig, Entry, EntryKind, Error, ErrorKind, Fingerprint, FirstContact, Observer,
    Op, Report, ServerConfig, Session, TLS_GREETING, Trust,
};

/// A client configuration with this trust and a per-frame timeout well above what any
/// exchange here needs (a test that waited for it would be a failure).
fn trusting(trust: Trust) -> ClientConfig {
    let mut config = ClientConfig::trusting(trust);
    config.timeout = Duration::from_secs(30);
    config
}

/// The server's fingerprint, which a TLS server always has.
fn fingerprint(server: &TestServer) -> Fingerprint {
    server.fingerprint.expect("a TLS server has a fingerprint")
}

/// A server with `ServerConfig::default()` speaks TLS with a new identity; a client pinning
/// its fingerprint uploads, lists and downloads a few MiB exactly, and records nothing.
#[test]
fn a_pinned_client_moves_files_over_tls() {
    let server = TestServer::secure(ServerConfig::default());
    let big = noise(5 << 20, 71);
    let small = b"a few bytes".to_vec();
    let mut client = Client::connect(server.addr, trusting(Trust::Pinned(fingerprint(&server))))
        .expect("connect over TLS");
    assert!(client.first_contact().is_none(), "a pin records nothing");

    let sent = client
        .put_reader(&big[..], big.len() as u64, "big.bin", |_| {})
        .expect("put big");
    assert_eq!(sent, big.len() as u64);
    client
        .put_reader(&small[..], small.len() as u64, "small.txt", |_| {})
        .expect("put small");
    assert!(fs::read(server.root().join("big.bin")).expect("served") == big);

    let mut listed: Vec<(String, EntryKind, u64)> = client
        .list()
        .expect("list")
        .into_iter()
        .map(
            |Entry {
                 name, kind, size, ..
             }| (name, kind, size),
        )
        .collect();
    listed.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        listed,
        vec![
            ("big.bin".to_owned(), EntryKind::File, big.len() as u64),
            ("small.txt".to_owned(), EntryKind::File, small.len() as u64),
        ]
    );

    let local = tempfile::tempdir().expect("tempdir");
    let store = DirStore::open(local.path()).expect("local store");
    for name in ["big.bin", "small.txt"] {
        client.get(name, &store, false, |_| {}).expect("get");
    }
    let got = fs::read(local.path().join("big.bin")).expect("downloaded");
    assert_eq!(digest(&got), digest(&big));
    assert_eq!(
        fs::read(local.path().join("small.txt")).expect("downloaded"),
        small
    );
}

/// First contact writes exactly `HOST PORT SHA256:…` to the known-hosts file (creating its
/// directory) and says so; the next connection finds the line and records nothing more.
#[test]
fn known_hosts_records_a_server_on_first_contact_and_knows_it_after() {
    let server = TestServer::secure(ServerConfig::default());
    let config = tempfile::tempdir().expect("tempdir");
    let file = config.path().join("ft").join("known_hosts");
    let fp = fingerprint(&server);
    let port = server.addr.port();

    let mut first = Client::connect(server.addr, trusting(Trust::KnownHosts(file.clone())))
        .expect("first contact");
    assert_eq!(
        first.first_contact(),
        Some(&FirstContact {
            server: format!("127.0.0.1 port {port}"),
            fingerprint: fp,
            file: file.clone(),
            not_recorded: None,
        })
    );
    let line = format!("127.0.0.1 {port} {fp}\n");
    assert_eq!(fs::read_to_string(&file).expect("known_hosts"), line);
    first.list().expect("list on the first connection");

    let mut again = Client::connect(server.addr, trusting(Trust::KnownHosts(file.clone())))
        .expect("known server");
    assert_eq!(again.first_contact(), None);
    again.list().expect("list on the second connection");
    assert_eq!(fs::read_to_string(&file).expect("known_hosts"), line);
}

/// Another server (another identity) on the same address as a recorded one: the client stops
/// inside the handshake with `IdentityChanged`, naming both fingerprints and the line, and
/// the server sees no request.
#[test]
fn a_changed_identity_on_the_same_port_is_refused() {
    let mut first = TestServer::secure(ServerConfig::default());
    let config = tempfile::tempdir().expect("tempdir");
    let file = config.path().join("known_hosts");
    // Someone else's server comes first, so the line is not trivially the first.
    let other = Fingerprint::of_certificate(b"another server");
    fs::write(&file, format!("# my servers\nexample.org 6789 {other}\n")).expect("write");
    let client = Client::connect(first.addr, trusting(Trust::KnownHosts(file.clone())))
        .expect("first contact");
    assert!(client.first_contact().is_some());
    drop(client);
    let recorded = fs::read_to_string(&file).expect("known_hosts");
    let old = fingerprint(&first);
    let addr = first.addr;
    first.stop().expect("first server stops");

    let second = TestServer::on(
        addr,
        tempfile::tempdir().expect("tempdir"),
        ServerConfig::default(),
    );
    let new = fingerprint(&second);
    assert_ne!(old, new, "a new identity");
    let e = Client::connect(addr, trusting(Trust::KnownHosts(file.clone())))
        .expect_err("a changed identity is refused");
    assert_eq!(e.kind(), ErrorKind::IdentityChanged, "{e}");
    let Error::IdentityChanged(change) = &e else {
        panic!("not IdentityChanged: {e:?}");
    };
    assert_eq!((change.expected, change.found), (old, new), "{change:?}");
    assert_eq!(change.server, format!("127.0.0.1 port {}", addr.port()));
    let text = e.to_string();
    for needle in [
        format!("{} line 3 says {old}", file.display()),
        format!("the server presented {new}"),
        format!("remove line 3 of {}", file.display()),
    ] {
        assert!(text.contains(&needle), "{needle:?} not in {text:?}");
    }
    assert_eq!(
        fs::read_to_string(&file).expect("known_hosts"),
        recorded,
        "the file is left as it was"
    );
    // The refused handshake is the only thing the server saw.
    let reports = second.wait_reports(1);
    assert_eq!(
        reports.iter().map(|r| r.op).collect::<Vec<_>>(),
        vec![Op::Connect],
        "{reports:?}"
    );
    let failure = reports[0].failure.as_ref().expect("a failure");
    assert!(
        failure.message.contains("TLS handshake failed"),
        "{reports:?}"
    );
    assert_eq!(names_in(second.root()), Vec::<String>::new());
}

/// A plain client meets a TLS server's greeting and reports its refusal (kind
/// `tls-required`); a TLS client meets a plain server's hello and leaves with
/// `PlainServer`, recording nothing. Both at once, not at their 30 s timeout.
#[test]
fn plain_and_tls_peers_refuse_each_other_at_once() {
    let tls = TestServer::secure(ServerConfig::default());
    let started = Instant::now();
    let e = Client::connect(tls.addr, trusting(Trust::Plain)).expect_err("plain vs TLS");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(e.kind(), ErrorKind::TlsRequired, "{e}");
    assert!(
        matches!(&e, Error::Remote { kind: ErrorKind::TlsRequired, message, .. } if message == TLS_GREETING),
        "{e:?}"
    );

    let plain = TestServer::with_config(ServerConfig::plain());
    let config = tempfile::tempdir().expect("tempdir");
    let file = config.path().join("known_hosts");
    let started = Instant::now();
    let e = Client::connect(plain.addr, trusting(Trust::KnownHosts(file.clone())))
        .expect_err("TLS vs plain");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(e.kind(), ErrorKind::TlsRequired, "{e}");
    assert!(
        matches!(e, Error::PlainServer { peer } if peer == plain.addr),
        "{e:?}"
    );
    assert!(e.to_string().contains("does not use TLS"), "{e}");
    assert!(!file.exists(), "a plain server was recorded");
}

/// Fails the test thread (as a killed client would stop) once `after` bytes went through.
struct KilledAfter {
    after: usize,
    seen: usize,
}

impl KilledAfter {
    fn pass(&mut self, n: usize) -> usize {
        self.seen += n;
        assert!(self.seen < self.after, "client killed on purpose");
        n
    }
}

impl Read for KilledAfter {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        buf.fill(7);
        Ok(self.pass(buf.len()))
    }
}

impl Write for KilledAfter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(self.pass(buf.len()))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Clients that die (their thread panics and the socket is dropped, with no close_notify)
/// in the middle of a download and of an upload: the server reports both failures, keeps
/// no temporary file and publishes nothing, serves the next client, and stops cleanly.
#[test]
fn a_client_killed_mid_transfer_leaves_the_server_serving() {
    let mut server = TestServer::secure(ServerConfig::default());
    let big = noise(16 << 20, 5);
    server.write("big.bin", &big);
    let size = big.len() as u64;
    let mut download = server.client();
    let mut upload = server.client();
    let killed = [
        thread::spawn(move || {
            let mut sink = KilledAfter {
                after: 1 << 20,
                seen: 0,
            };
            let _ = download.get_into("big.bin", &mut sink, |_| {});
        }),
        thread::spawn(move || {
            let source = KilledAfter {
                after: 1 << 20,
                seen: 0,
            };
            let _ = upload.put_reader(source, size, "half.bin", |_| {});
        }),
    ];
    for client in killed {
        assert!(client.join().is_err(), "the client was not killed");
    }

    let reports = server.wait_reports(2);
    let mut failed: Vec<(Op, Option<String>)> = reports
        .iter()
        .map(|r| {
            assert!(r.failure.is_some(), "{r:?}");
            (r.op, r.name.clone())
        })
        .collect();
    failed.sort_by_key(|(op, _)| op.as_str());
    assert_eq!(
        failed,
        vec![
            (Op::Get, Some("big.bin".to_owned())),
            (Op::Put, Some("half.bin".to_owned())),
        ]
    );
    assert_no_temp_files(server.root());
    let names: Vec<String> = server
        .client()
        .list()
        .expect("the server still serves")
        .into_iter()
        .map(|entry| entry.name)
        .collect();
    assert_eq!(names, vec!["big.bin".to_owned()]);
    server.stop().expect("the server stops cleanly");
}

/// 300 small files up and down, pipelined over one TLS connection each way: the server
/// decides when to commit a group by asking the TLS transport whether input is waiting, so
/// a wrong answer there stalls the pipeline (and the 10 s timeout fails it).
#[test]
fn many_small_files_are_pipelined_over_tls() {
    let server = TestServer::secure(ServerConfig::default());
    let source = tempfile::tempdir().expect("tempdir");
    let files: Vec<(PathBuf, String, Vec<u8>)> = (0..300)
        .map(|i| {
            let name = format!("small-{i:03}.bin");
            let data = noise(i * 37 % 3000, i as u64);
            let path = source.path().join(&name);
            fs::write(&path, &data).expect("write");
            (path, name, data)
        })
        .collect();
    let mut config = quick_config();
    config.trust = Trust::Pinned(fingerprint(&server));
    let started = Instant::now();

    let mut client = Client::connect(server.addr, config.clone()).expect("connect");
    let mut put: Vec<(usize, ftlib::Result<u64>)> = Vec::new();
    let pairs: Vec<(PathBuf, String)> = files
        .iter()
        .map(|(path, name, _)| (path.clone(), name.clone()))
        .collect();
    client.put_many(&pairs, |_, _| {}, |i, result| put.push((i, result)));
    assert_eq!(put.len(), files.len());
    for (i, result) in put {
        assert_eq!(
            result.expect("put"),
            files[i].2.len() as u64,
            "{}",
            files[i].1
        );
    }

    let local = tempfile::tempdir().expect("tempdir");
    let store = DirStore::open(local.path()).expect("local store");
    let names: Vec<String> = files.iter().map(|(_, name, _)| name.clone()).collect();
    let mut client = Client::connect(server.addr, config).expect("connect");
    let mut got: Vec<(usize, ftlib::Result<u64>)> = Vec::new();
    client.get_many(&names, &store, false, |_, _| {}, |i, r| got.push((i, r)));
    assert_eq!(got.len(), files.len());
    for (i, result) in got {
        result.unwrap_or_else(|e| panic!("get {}: {e}", files[i].1));
    }
    for (_, name, data) in &files {
        assert_eq!(&fs::read(server.root().join(name)).expect("served"), data);
        assert_eq!(
            &fs::read(local.path().join(name)).expect("downloaded"),
            data
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

/// Collects a session's reports and first contacts.
#[derive(Default)]
struct Collect {
    reports: Vec<Report>,
    contacts: Vec<FirstContact>,
}

impl Observer for Collect {
    fn first_contact(&mut self, contact: &FirstContact) {
        self.contacts.push(contact.clone());
    }

    fn finished(&mut self, _item: usize, report: Report, _error: Option<&Error>) {
        self.reports.push(report);
    }
}

/// A session keeps its TLS connection between commands; when the server closed it for
/// idleness (close_notify, then the end of the stream), the transport says input is
/// waiting, and the session reconnects instead of failing the next listing on it.
#[test]
fn a_session_notices_the_server_closed_its_idle_tls_connection() {
    const IDLE: Duration = Duration::from_millis(200);
    let mut server_config = ServerConfig::default();
    server_config.idle_timeout = IDLE;
    let server = TestServer::secure(server_config);
    let config = tempfile::tempdir().expect("tempdir");
    let file = config.path().join("known_hosts");
    let mut session = Session::new(
        "127.0.0.1",
        server.addr.port(),
        trusting(Trust::KnownHosts(file.clone())),
    );
    let mut seen = Collect::default();
    assert!(session.list(&mut seen).expect("first listing"));
    assert_eq!(
        seen.contacts.len(),
        1,
        "the first connection is a first contact"
    );
    // The server closes the idle connection after IDLE; its graceful close takes ~200 ms.
    thread::sleep(IDLE * 3);
    assert!(session.list(&mut seen).expect("second listing"));
    assert_eq!(seen.reports.len(), 2);
    assert!(
        seen.reports.iter().all(|r| r.failure.is_none()),
        "{:?}",
        seen.reports
    );
    assert_eq!(
        seen.contacts.len(),
        1,
        "the reconnection found the recorded line"
    );
}
