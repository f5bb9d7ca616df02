//! TLS as a user meets it, with the real `ftclient` and `ftserver`: the first contact is
//! recorded in known_hosts and said once; a changed identity or a wrong pin stops the client
//! before any request; plain and TLS peers refuse each other at once, saying which side
//! wants what; and what crosses the network shows neither file names nor file bytes.

mod util;

use std::ffi::OsString;
use std::fs;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use util::*;

/// Runs `ftclient ARGS…` in `cwd` with `home` as its home, config and data directories (its
/// known_hosts is `home/config/ft/known_hosts`), kept from one run to the next.
fn ftclient_at<S: AsRef<std::ffi::OsStr>>(home: &Path, cwd: &Path, args: &[S]) -> Output {
    let mut command = Command::new(ftclient());
    isolate(&mut command, home);
    command.current_dir(cwd).args(args);
    run(command)
}

/// The known_hosts file of a client run by [`ftclient_at`] with `home`.
fn known_hosts(home: &Path) -> PathBuf {
    home.join("config").join("ft").join("known_hosts")
}

/// The fixture's server's fingerprint, as it printed it.
fn printed(f: &Fixture) -> String {
    f.server.fingerprint.clone().expect("a TLS server")
}

/// The report lines a server prints after refusing a client in its handshake: those up to
/// the report of a `list` run next with the right trust (the refused connection and the
/// listing are on different connections, so their lines may come in either order).
fn lines_after_a_refusal(f: &Fixture) -> Vec<Line> {
    let list = f.ft(&["list"]);
    assert_eq!(list.code, Some(0), "{list:?}");
    let mut lines: Vec<Line> = Vec::new();
    while !lines.iter().any(|l| l.op == "list") {
        lines.push(Line::parse(&f.server.next_line()));
    }
    if !lines.iter().any(|l| l.op == "connect") {
        lines.push(Line::parse(&f.server.next_line()));
    }
    lines
}

/// The refused connection is the only other thing the server saw: a `connect` failure in
/// the TLS handshake, and no upload.
fn assert_only_a_refused_handshake(lines: &[Line]) {
    let ops: Vec<&str> = lines.iter().map(|l| l.op.as_str()).collect();
    assert_eq!(ops.len(), 2, "{ops:?}");
    assert!(ops.contains(&"connect") && ops.contains(&"list"), "{ops:?}");
    let connect = lines.iter().find(|l| l.op == "connect").expect("connect");
    assert!(connect.kind.is_some(), "{connect:?}");
    assert!(
        connect.message.contains("TLS handshake failed"),
        "{connect:?}"
    );
}

/// A known_hosts file that cannot be written (here its directory's parent is a file) does
/// not stop the command: the first contact is said with why it was not recorded, and the
/// next run is a first contact again.
#[test]
fn a_first_contact_that_cannot_be_recorded_goes_on_and_says_why() {
    let f = Fixture::new();
    let home = tempfile::tempdir().expect("tempdir");
    fs::write(
        home.path().join("config"),
        b"a file where a directory would go",
    )
    .expect("write");
    let fp = printed(&f);
    fs::write(f.cwd().join("a.txt"), b"still sent").expect("write");
    for args in [&["put", "a.txt"][..], &["list"]] {
        let out = ftclient_at(home.path(), &f.cwd(), &f.args(args));
        assert_eq!(out.code, Some(0), "{out:?}");
        for needle in [
            format!(
                "ftclient: warning: first contact with 127.0.0.1 port {}: its fingerprint {fp} \
                 could not be recorded (",
                f.port()
            ),
            "so the next connection will be a first contact again".to_owned(),
            format!("pass --fingerprint {fp} to pin it"),
        ] {
            assert!(out.stderr.contains(&needle), "{needle:?} not in {out:?}");
        }
    }
    assert_eq!(f.served_bytes("a.txt"), b"still sent");
    // A home that does not exist is not made for the file.
    let gone = home.path().join("no such home");
    let out = ftclient_at(&gone, &f.cwd(), &f.args(&["list"]));
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("could not be recorded ("), "{out:?}");
    assert!(!gone.exists(), "the home was made");
}

/// A known_hosts file that exists but cannot be read (here a directory) stops the command
/// before any request, saying so, not that the server cannot be reached.
#[test]
fn an_unreadable_known_hosts_file_is_named() {
    let f = Fixture::new();
    let home = tempfile::tempdir().expect("tempdir");
    let file = known_hosts(home.path());
    fs::create_dir_all(&file).expect("a directory where the file would be");
    let out = ftclient_at(home.path(), &f.cwd(), &f.args(&["list"]));
    assert_eq!(out.code, Some(1), "{out:?}");
    let start = format!(
        "ftclient: cannot connect to 127.0.0.1:{}: cannot read the known-hosts file {}",
        f.port(),
        file.display()
    );
    assert!(
        out.stderr.starts_with(&start),
        "{start:?} does not start {out:?}"
    );
    assert!(
        out.stderr.contains("pin the server with --fingerprint"),
        "{out:?}"
    );
}

/// Without `--fingerprint`, the first run records the server in known_hosts (exactly
/// `127.0.0.1 PORT SHA256:…`, the fingerprint the server printed) and says so on stderr;
/// the next run finds it and says nothing.
#[test]
fn first_contact_is_recorded_and_said_once() {
    let f = Fixture::new();
    let home = tempfile::tempdir().expect("tempdir");
    let port = f.port();
    let fp = printed(&f);
    fs::write(f.cwd().join("a.txt"), b"first contact").expect("write");

    let first = ftclient_at(home.path(), &f.cwd(), &f.args(&["put", "a.txt"]));
    assert_eq!(first.code, Some(0), "{first:?}");
    let file = known_hosts(home.path());
    assert_eq!(
        first.stderr,
        format!(
            "ftclient: first contact with 127.0.0.1 port {port}: its fingerprint {fp} is now \
             recorded in {}; compare it with the one the server printed\n",
            file.display()
        )
    );
    let line = format!("127.0.0.1 {port} {fp}\n");
    assert_eq!(fs::read_to_string(&file).expect("known_hosts"), line);
    assert_eq!(f.served_bytes("a.txt"), b"first contact");

    let again = ftclient_at(home.path(), &f.cwd(), &f.args(&["get", "a.txt"]));
    assert_success(&again);
    assert_eq!(
        fs::read(f.local().join("a.txt")).expect("downloaded"),
        b"first contact"
    );
    assert_eq!(fs::read_to_string(&file).expect("known_hosts"), line);
}

/// A new server (new state, so a new identity) on the port of a recorded one: `put` stops
/// in the handshake with status 1, naming both fingerprints, the file and the line to remove;
/// the server reports only the refused handshake, and the file is not uploaded.
#[test]
fn a_changed_identity_is_refused_before_any_request() {
    let mut f = Fixture::new();
    let home = tempfile::tempdir().expect("tempdir");
    let file = known_hosts(home.path());
    fs::create_dir_all(file.parent().expect("dir")).expect("mkdir");
    // Lines before the server's, so that the line named is not trivially the first.
    fs::write(
        &file,
        "# my servers\nexample.org 6789 SHA256:ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0\n",
    )
    .expect("write");
    let recorded = ftclient_at(home.path(), &f.cwd(), &f.args(&["list"]));
    assert_eq!(recorded.code, Some(0), "{recorded:?}");
    let known = fs::read_to_string(&file).expect("known_hosts");
    let old = printed(&f);

    f.server.kill();
    f.server = ServerProcess::start_at(
        &ftserver(),
        f.server.addr,
        &f.served(),
        &[],
        tempfile::tempdir().expect("a new home, a new identity"),
    );
    let new = printed(&f);
    assert_ne!(old, new);
    fs::write(f.cwd().join("b.txt"), b"must not arrive").expect("write");
    let out = ftclient_at(home.path(), &f.cwd(), &f.args(&["put", "b.txt"]));
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    let port = f.port();
    let shown = file.display();
    for needle in [
        format!("ftclient: the identity of 127.0.0.1 port {port} has changed"),
        format!("{shown} line 3 says {old}"),
        format!("the server presented {new}"),
        format!("remove line 3 of {shown} and connect again"),
    ] {
        assert!(out.stderr.contains(&needle), "{needle:?} not in {out:?}");
    }
    assert_eq!(fs::read_to_string(&file).expect("known_hosts"), known);
    assert_only_a_refused_handshake(&lines_after_a_refusal(&f));
    assert_eq!(names_in(&f.served()), Vec::<String>::new());
}

/// `--fingerprint` of another server: the same refusal, naming the pin and the server's
/// fingerprint, and not saying the identity "has changed" (the pin may be mistyped);
/// known_hosts is neither read nor written.
#[test]
fn a_wrong_pin_is_refused_before_any_request() {
    let f = Fixture::new();
    let other = Fixture::new();
    let home = tempfile::tempdir().expect("tempdir");
    fs::write(f.cwd().join("b.txt"), b"must not arrive").expect("write");
    let mut args = f.args(&["put", "b.txt"]);
    args.extend(["--fingerprint".into(), printed(&other).into()]);
    let out = ftclient_at(home.path(), &f.cwd(), &args);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    for needle in [
        format!(
            "ftclient: the identity of 127.0.0.1 port {} is not the one pinned",
            f.port()
        ),
        format!("the pinned fingerprint says {}", printed(&other)),
        format!("the server presented {}", printed(&f)),
        "Check the fingerprint given".to_owned(),
        "pin the new fingerprint".to_owned(),
    ] {
        assert!(out.stderr.contains(&needle), "{needle:?} not in {out:?}");
    }
    assert!(!out.stderr.contains("has changed"), "{out:?}");
    assert!(
        !home.path().join("config").exists(),
        "known_hosts was touched"
    );
    assert_only_a_refused_handshake(&lines_after_a_refusal(&f));
    assert_eq!(names_in(&f.served()), Vec::<String>::new());
}

/// A `--fingerprint` that is not one is a usage error (status 2) that says why.
#[test]
fn a_malformed_fingerprint_is_a_usage_error() {
    let f = Fixture::new();
    let good = printed(&f);
    let body = good.strip_prefix("SHA256:").expect("prefix");
    let rows = [
        ("no prefix", body.to_owned()),
        ("another digest", format!("MD5:{body}")),
        ("lowercase prefix", format!("sha256:{body}")),
        ("padded", format!("{good}=")),
        ("a character short", good[..good.len() - 1].to_owned()),
        ("not base64", good.replace(&good[10..11], "*")),
        ("empty", String::new()),
    ];
    for (what, fp) in rows {
        let out = ftclient_in(
            &f.cwd(),
            ["--fingerprint", fp.as_str(), "127.0.0.1", &f.port(), "list"],
        );
        assert_eq!(out.code, Some(2), "{what}: {out:?}");
        assert!(
            out.stderr.contains("for '--fingerprint <FP>'")
                && out.stderr.contains("is not a fingerprint"),
            "{what}: {out:?}"
        );
    }
}

/// Plain against TLS, both ways: status 1 at once (not at the 30 s timeout), with a message
/// saying which side expects what and what to do; known_hosts is not written.
#[test]
fn plain_and_tls_refuse_each_other_at_once() {
    let tls = Fixture::new();
    let plain = Fixture::with_options(&["--plain"]);
    let rows: [(&str, &Fixture, &[&str], &[&str]); 2] = [
        (
            "ftclient --plain, a TLS server",
            &tls,
            &["--plain"],
            &["this server requires TLS", "connect without --plain"],
        ),
        (
            "ftclient, a server started with --plain",
            &plain,
            &[],
            &[
                "does not use TLS (it was started with --plain)",
                "connect with --plain",
            ],
        ),
    ];
    for (what, f, flags, needles) in rows {
        let home = tempfile::tempdir().expect("tempdir");
        let mut args: Vec<OsString> = f.args(&["list", "--timeout", "30"]);
        args.extend(flags.iter().map(OsString::from));
        let started = Instant::now();
        let out = ftclient_at(home.path(), &f.cwd(), &args);
        let took = started.elapsed();
        assert!(took < Duration::from_secs(5), "{what}: took {took:?}");
        assert_eq!(out.code, Some(1), "{what}: {out:?}");
        for needle in needles {
            assert!(
                out.stderr.contains(needle),
                "{what}: {needle:?} not in {out:?}"
            );
        }
        assert!(!known_hosts(home.path()).exists(), "{what}: recorded");
    }
}

/// What a relay saw of its connections: the bytes from the clients and from the server.
#[derive(Debug, Default)]
struct Capture {
    up: Vec<u8>,
    down: Vec<u8>,
}

/// A relay on 127.0.0.1:0 in front of `target` for `connections` connections, one after the
/// other, keeping a copy of every byte in both directions.
fn recording_relay(target: SocketAddr, connections: usize) -> (u16, JoinHandle<Capture>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    let relay = thread::spawn(move || {
        let mut capture = Capture::default();
        for _ in 0..connections {
            let (client, _) = listener.accept().expect("relay accept");
            let server = TcpStream::connect(target).expect("relay connect");
            for sock in [&client, &server] {
                sock.set_read_timeout(Some(DEADLINE)).expect("timeout");
            }
            let back_from = server.try_clone().expect("clone");
            let back_to = client.try_clone().expect("clone");
            let back = thread::spawn(move || copy(back_from, back_to));
            capture.up.extend(copy(client, server));
            capture.down.extend(back.join().expect("relay back"));
        }
        capture
    });
    (port, relay)
}

/// Copies `from` to `to` until either ends, then passes the end on; gives what it copied.
fn copy(mut from: TcpStream, mut to: TcpStream) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                seen.extend_from_slice(&buf[..n]);
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    seen
}

/// True when `needle` occurs anywhere in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A put, a list and a get through a recording relay, against a `--plain` server and a TLS
/// one: in plain the capture holds the name both ways and the file's bytes both ways (so the
/// capture would see them); over TLS it holds neither, and the client's first bytes are a
/// TLS handshake record.
#[test]
fn the_wire_shows_neither_names_nor_bytes() {
    const NAME: &str = "wire-secret-name-4f7c.bin";
    let data = noise(300_000, 29);
    let needles: [(&str, &[u8]); 4] = [
        ("the name", NAME.as_bytes()),
        ("the first bytes", &data[..32]),
        ("bytes from the middle", &data[150_000..150_032]),
        ("the last bytes", &data[data.len() - 32..]),
    ];
    for tls in [false, true] {
        let f = if tls {
            Fixture::new()
        } else {
            Fixture::with_options(&["--plain"])
        };
        fs::write(f.cwd().join(NAME), &data).expect("write");
        let (port, relay) = recording_relay(f.server.addr, 3);
        let port = port.to_string();
        for command in [&["put", NAME][..], &["list"], &["get", NAME]] {
            let mut args: Vec<OsString> = vec!["127.0.0.1".into(), port.as_str().into()];
            args.extend(command.iter().map(OsString::from));
            args.extend(["--dir".into(), f.local().into()]);
            let out = f.ft_raw(args);
            assert_eq!(out.code, Some(0), "tls: {tls}, {command:?}: {out:?}");
        }
        assert_eq!(fs::read(f.local().join(NAME)).expect("downloaded"), data);
        let capture = relay.join().expect("relay");
        for (direction, wire) in [("up", &capture.up), ("down", &capture.down)] {
            assert!(wire.len() > data.len(), "{direction}: {} bytes", wire.len());
            for (what, needle) in &needles {
                assert_eq!(
                    contains(wire, needle),
                    !tls,
                    "{what} {direction}, tls: {tls}"
                );
            }
        }
        // A TLS ClientHello is a handshake record (content type 22), sent after the greeting.
        assert_eq!(capture.up.first() == Some(&22), tls, "tls: {tls}");
    }
}

/// Every command says the first contact, `list` too (its entries go to another observer).
#[test]
fn a_first_list_says_the_first_contact() {
    let f = Fixture::new();
    let home = tempfile::tempdir().expect("tempdir");
    let fp = printed(&f);
    let out = ftclient_at(home.path(), &f.cwd(), &f.args(&["list"]));
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr.starts_with(&format!(
            "ftclient: first contact with 127.0.0.1 port {}: its fingerprint {fp}",
            f.port()
        )),
        "{out:?}"
    );
    assert!(known_hosts(home.path()).exists());
}
