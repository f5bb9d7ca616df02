//! What a server keeps of resumable uploads that did not finish (PROTOCOL.md section 12):
//! never an empty partial (refused for space, or cut before the first byte), never more
//! than `PartialLimits::max_count` partials, the oldest going first and one in use never,
//! and never more than `PartialLimits::max_per_peer` for one client address, that client's
//! own oldest going first.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{RawPeer, TestServer};
use ft_testutil::{digest, noise, partials};
use ftlib::protocol::{Body, DIGEST_LEN, ErrorKind, How, Request, Response};
use ftlib::store::{DirStore, PART_PREFIX, PartialLimits};
use ftlib::{Op, Report, Server, ServerConfig, ShutdownHandle};
use tempfile::TempDir;

/// A plain server on loopback whose store keeps at most `max_count` partials; stopped and
/// joined on drop.
struct Bounded {
    dir: TempDir,
    addr: SocketAddr,
    reports: Arc<Mutex<Vec<Report>>>,
    stop: ShutdownHandle,
    thread: Option<JoinHandle<ftlib::Result<()>>>,
}

impl Bounded {
    fn start(max_count: usize) -> Bounded {
        Bounded::with_limits(PartialLimits {
            max_count,
            ..PartialLimits::default()
        })
    }

    fn with_limits(limits: PartialLimits) -> Bounded {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = DirStore::open(dir.path()).expect("store");
        store.set_partial_limits(limits);
        let listener = ftlib::listen("127.0.0.1:0".parse::<SocketAddr>().expect("address"))
            .expect("bind loopback");
        let mut config = ServerConfig::default();
        config.plain = true;
        let server = Server::new(listener, store, config).expect("server");
        let addr = server.local_addr().expect("addr");
        let stop = server.shutdown_handle();
        let reports = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&reports);
        let thread = std::thread::spawn(move || {
            server.run(move |r| sink.lock().expect("reports").push(r.clone()))
        });
        Bounded {
            dir,
            addr,
            reports,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Bounded {
    fn drop(&mut self) {
        self.stop.shutdown();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Waits until `reports` hold `n` uploads, the last one of `name`: a request's report
/// comes after its partial was kept or removed.
fn wait_puts(reports: &Mutex<Vec<Report>>, n: usize, name: &str) {
    let puts = || -> Vec<Report> {
        let reports = reports.lock().expect("reports");
        reports
            .iter()
            .filter(|r| r.op == Op::Put)
            .cloned()
            .collect()
    };
    wait_for(|| puts().len() >= n);
    let puts = puts();
    assert_eq!(puts.len(), n, "{puts:?}");
    assert_eq!(puts[n - 1].name.as_deref(), Some(name), "{puts:?}");
}

fn wait_for(done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The partial file a server keeps for this upload (PROTOCOL.md section 12.2).
fn partial_name(name: &str, size: u64, digest: &[u8; DIGEST_LEN]) -> String {
    let mut key = name.as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(&size.to_le_bytes());
    key.extend_from_slice(digest);
    format!("{PART_PREFIX}{:032x}", xxhash_rust::xxh3::xxh3_128(&key))
}

/// The two spellings of a resumable upload: v2's request and v4's.
fn resumable_requests(name: &str, size: u64, digest: [u8; DIGEST_LEN]) -> [Request; 2] {
    [
        Request::PutResumable {
            name: name.into(),
            size,
            digest,
        },
        Request::Upload {
            name: name.into(),
            size,
            attrs: None,
            how: How::Resumable { digest },
        },
    ]
}

/// Starts a resumable upload of `data` as `name`, sends its first `sent` bytes, then drops
/// the connection: a cut, which keeps the partial if it holds anything.
fn cut_upload(addr: SocketAddr, name: &str, data: &[u8], sent: usize) {
    cut_upload_with(RawPeer::connect(addr), name, data, sent);
}

/// [`cut_upload`] from the client address `from` (any 127.x.y.z reaches the loopback
/// server on Linux).
fn cut_upload_from(addr: SocketAddr, from: &str, name: &str, data: &[u8], sent: usize) {
    let from = from.parse().expect("address");
    cut_upload_with(RawPeer::connect_from(addr, from), name, data, sent);
}

/// The cut upload of [`cut_upload`], on a connection past its hellos.
fn cut_upload_with(peer: RawPeer, name: &str, data: &[u8], sent: usize) {
    let mut conn = peer.conn;
    conn.send(&Request::PutResumable {
        name: name.into(),
        size: data.len() as u64,
        digest: digest(data),
    })
    .expect("send");
    let answer = conn.expect::<Response>("an answer").expect("answer");
    assert_eq!(answer, Response::ReadyFrom { offset: 0 }, "{name}");
    if sent > 0 {
        conn.send(&Body::Chunk(&data[..sent])).expect("send");
    }
}

/// Refused for lack of space before any byte came: §12.2 says the partial is discarded,
/// and an empty one is never kept, in either spelling of the request.
#[test]
fn a_resumable_upload_refused_for_space_leaves_no_partial() {
    let server = TestServer::start();
    // Larger than any file system: refused by the early check.
    let size = 1 << 62;
    for (i, request) in resumable_requests("huge", size, [7; DIGEST_LEN])
        .into_iter()
        .enumerate()
    {
        let mut peer = RawPeer::connect(server.addr);
        peer.send(&request);
        match peer.recv() {
            Response::Error { kind, .. } => assert_eq!(kind, ErrorKind::NoSpace, "{request:?}"),
            other => panic!("{request:?}: expected no-space, got {other:?}"),
        }
        wait_puts(&server.reports, i + 1, "huge");
        assert_eq!(partials(server.root()), Vec::<String>::new(), "{request:?}");
        // The connection goes on.
        peer.send(&Request::List);
        assert_eq!(
            peer.recv(),
            Response::ListEnd { count: 0 },
            "{request:?}: nothing to list"
        );
    }
}

/// An upload interrupted before its first byte keeps nothing, whether the connection was
/// cut or the client cancelled; one interrupted after a byte keeps its partial.
#[test]
fn an_upload_interrupted_before_its_first_byte_keeps_no_partial() {
    let server = TestServer::start();
    let data = noise(100_000, 3);
    let cancel = Body::Abort {
        kind: ErrorKind::Cancelled,
        message: "cancelled".into(),
    };
    // (what the client sends after ReadyFrom before it drops the connection, whether the
    // partial is kept); each row is run with `PutResumable`, then with `Upload`, which
    // continues what the first one kept.
    let rows: [(&[Body<'_>], bool); 4] = [
        (&[], false),
        (std::slice::from_ref(&cancel), false),
        (&[Body::Chunk(&data[..1])], true),
        (&[Body::Chunk(&data[..1]), cancel.clone()], true),
    ];
    for (i, (sends, kept)) in rows.into_iter().enumerate() {
        let name = format!("f{i}");
        for (j, request) in resumable_requests(&name, data.len() as u64, digest(&data))
            .into_iter()
            .enumerate()
        {
            let mut peer = RawPeer::connect(server.addr);
            peer.send(&request);
            let offset = if kept { j as u64 } else { 0 };
            assert_eq!(
                peer.recv(),
                Response::ReadyFrom { offset },
                "{name} {request:?}"
            );
            for body in sends {
                peer.send(body);
            }
            drop(peer);
            wait_puts(&server.reports, 2 * i + j + 1, &name);
            let left = partials(server.root());
            assert_eq!(
                left.contains(&partial_name(&name, data.len() as u64, &digest(&data))),
                kept,
                "row {i}, {request:?}: {left:?}"
            );
        }
    }
    assert_eq!(partials(server.root()).len(), 2);
}

/// More cut uploads than the limit: only the newest `max_count` partials stay, and those
/// still resume where they were cut; the older ones start over.
#[test]
fn cut_uploads_beyond_the_count_limit_keep_only_the_newest() {
    let max_count = 3;
    let server = Bounded::start(max_count);
    let uploads: Vec<(String, Vec<u8>)> = (0..max_count + 4)
        .map(|i| (format!("cut{i}"), noise(50_000, i as u64)))
        .collect();
    for (i, (name, data)) in uploads.iter().enumerate() {
        // Distinct modification times, in this order.
        std::thread::sleep(Duration::from_millis(10));
        cut_upload(server.addr, name, data, 1000 + i);
        wait_puts(&server.reports, i + 1, name);
        assert!(
            partials(server.dir.path()).len() <= max_count,
            "after {name}"
        );
    }
    let newest: Vec<String> = uploads[uploads.len() - max_count..]
        .iter()
        .map(|(name, data)| partial_name(name, data.len() as u64, &digest(data)))
        .collect();
    let mut expected = newest.clone();
    expected.sort();
    assert_eq!(partials(server.dir.path()), expected);

    for (i, (name, data)) in uploads.iter().enumerate() {
        let mut peer = RawPeer::connect(server.addr);
        peer.send(&Request::PutResumable {
            name: name.clone(),
            size: data.len() as u64,
            digest: digest(data),
        });
        let kept = i >= uploads.len() - max_count;
        let offset = if kept { 1000 + i } else { 0 };
        assert_eq!(
            peer.recv(),
            Response::ReadyFrom {
                offset: offset as u64
            },
            "{name}"
        );
    }
}

/// With room for one partial, the oldest one, still being written, outlives every newer
/// cut upload and completes whole.
#[test]
fn a_partial_in_use_is_never_pruned() {
    let server = Bounded::start(1);
    let data = noise(300_000, 9);
    let mut writing = RawPeer::connect(server.addr);
    writing.send(&Request::PutResumable {
        name: "slow".into(),
        size: data.len() as u64,
        digest: digest(&data),
    });
    assert_eq!(writing.recv(), Response::ReadyFrom { offset: 0 });
    writing.send(&Body::Chunk(&data[..100_000]));
    let in_use = partial_name("slow", data.len() as u64, &digest(&data));
    // Written before the cuts: the oldest partial.
    let path = server.dir.path().join(&in_use);
    wait_for(|| std::fs::metadata(&path).is_ok_and(|m| m.len() == 100_000));

    for i in 0..3 {
        std::thread::sleep(Duration::from_millis(10));
        let other = noise(10_000, 100 + i);
        cut_upload(server.addr, &format!("cut{i}"), &other, 500);
        wait_puts(&server.reports, i as usize + 1, &format!("cut{i}"));
        let newest = partial_name(&format!("cut{i}"), other.len() as u64, &digest(&other));
        let mut expected = vec![in_use.clone(), newest];
        expected.sort();
        assert_eq!(partials(server.dir.path()), expected, "after cut{i}");
    }

    writing.send(&Body::Chunk(&data[100_000..]));
    writing.send(&Body::End {
        digest: digest(&data),
    });
    assert_eq!(
        writing.recv(),
        Response::Stored {
            size: data.len() as u64
        }
    );
    assert_eq!(
        std::fs::read(server.dir.path().join("slow")).expect("stored"),
        data
    );
    assert!(!partials(server.dir.path()).contains(&in_use));
}

/// One client address cannot take the whole budget: beyond `max_per_peer`, that client's
/// own oldest partials go, while another client's stay; each kept one still resumes.
#[test]
fn one_client_keeps_at_most_its_share_of_partials() {
    let server = Bounded::with_limits(PartialLimits {
        max_per_peer: 2,
        ..PartialLimits::default()
    });
    // (client address, name): the other client's partial is the oldest of all.
    let cuts = [
        ("127.0.0.2", "theirs"),
        ("127.0.0.1", "mine0"),
        ("127.0.0.1", "mine1"),
        ("127.0.0.1", "mine2"),
        ("127.0.0.1", "mine3"),
    ];
    let data = |i: usize| noise(50_000, 100 + i as u64);
    for (i, (from, name)) in cuts.iter().enumerate() {
        std::thread::sleep(Duration::from_millis(10));
        cut_upload_from(server.addr, from, name, &data(i), 1000 + i);
        wait_puts(&server.reports, i + 1, name);
    }
    let reports = server.reports.lock().expect("reports").clone();
    let theirs = reports.iter().find(|r| r.name.as_deref() == Some("theirs"));
    assert_eq!(
        theirs.map(|r| r.peer.ip().to_string()),
        Some("127.0.0.2".to_owned()),
        "the test's two clients have two addresses"
    );
    let kept_of = |i: usize| partial_name(cuts[i].1, 50_000, &digest(&data(i)));
    let mut expected = vec![kept_of(0), kept_of(3), kept_of(4)];
    expected.sort();
    assert_eq!(partials(server.dir.path()), expected);
    // Those kept resume where they were cut.
    for i in [0, 3, 4] {
        let mut peer = RawPeer::connect(server.addr);
        peer.send(&Request::PutResumable {
            name: cuts[i].1.into(),
            size: 50_000,
            digest: digest(&data(i)),
        });
        let offset = (1000 + i) as u64;
        assert_eq!(peer.recv(), Response::ReadyFrom { offset }, "{}", cuts[i].1);
    }
}
