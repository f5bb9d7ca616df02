//! Resuming interrupted transfers: only the missing part moves, the result is verified
//! whole, a partial that does not match its source is never spliced, partials stay hidden
//! and bounded, and v1 peers are refused clearly.

mod common;

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use common::{RawPeer, TestServer, assert_no_temp_files, quick_config};
use ft_testutil::fake_server::{FakeServer, NAME, Peer};
use ft_testutil::{digest, noise, partial_len, partials, wait_until};
use ftlib::protocol::{Body, ErrorKind, Hello, How, Request, Response};
use ftlib::store::{DirStore, PART_PREFIX, PartialLimits};
use ftlib::{Client, Error};

/// A client whose transfers cancel themselves once `at` bytes have moved.
fn cancelling_client(server: &TestServer, at: u64) -> (Client, Arc<AtomicBool>, u64) {
    let cancel = Arc::new(AtomicBool::new(false));
    let mut config = quick_config();
    config.cancel = Some(Arc::clone(&cancel));
    config.chunk_size = 64 * 1024;
    (
        Client::connect(server.addr, config).expect("connect"),
        cancel,
        at,
    )
}

/// Starts a resumable upload of `source` as `name` and cancels it once `at` bytes have
/// moved; the client, its connection still usable.
fn cut_upload(server: &TestServer, source: &Path, name: &str, at: u64) -> Client {
    let (mut client, cancel, at) = cancelling_client(server, at);
    let err = client
        .put_resumable(source, name, |p| {
            if p.done >= at {
                cancel.store(true, Ordering::SeqCst);
            }
        })
        .expect_err("cancelled");
    assert_eq!(err.kind(), ErrorKind::Cancelled, "{err}");
    client
}

/// Waits until the server keeps the one partial of a cut upload, which it does once its
/// connection thread has seen the cut.
fn wait_for_the_partial(server: &TestServer) {
    wait_until("the server to keep the partial", || {
        !partials(server.root()).is_empty()
    });
    assert_eq!(partials(server.root()).len(), 1);
}

/// Writes `data` over `source`, then sets its modification time to `modified`.
fn rewrite(source: &Path, data: &[u8], modified: SystemTime) {
    fs::write(source, data).expect("write");
    fs::File::options()
        .write(true)
        .open(source)
        .and_then(|f| f.set_modified(modified))
        .expect("set the modification time");
}

#[test]
fn an_interrupted_download_resumes_with_only_the_missing_bytes() {
    let server = TestServer::start();
    let data = noise(5 * 1024 * 1024 + 17, 1);
    server.write("big.bin", &data);
    let local = tempfile::tempdir().expect("tempdir");
    let store = DirStore::open(local.path()).expect("store");

    let (mut client, cancel, at) = cancelling_client(&server, 2 * 1024 * 1024);
    let err = client
        .get_resumable("big.bin", &store, false, |p| {
            if p.done >= at {
                cancel.store(true, Ordering::SeqCst);
            }
        })
        .expect_err("cancelled");
    assert_eq!(err.kind(), ErrorKind::Cancelled, "{err}");
    assert!(
        !local.path().join("big.bin").exists(),
        "no partial under the final name"
    );
    let kept = partials(local.path());
    assert_eq!(kept.len(), 1, "the partial is kept, hidden");
    let have = fs::metadata(local.path().join(&kept[0]))
        .expect("partial")
        .len();
    assert!(have >= at && have < data.len() as u64, "{have}");

    let mut first = None;
    let moved = server
        .client()
        .get_resumable("big.bin", &store, false, |p| {
            first.get_or_insert(p.done);
        })
        .expect("resumed");
    assert_eq!(first, Some(have), "progress starts where the partial ends");
    assert_eq!(
        moved,
        data.len() as u64 - have,
        "only the missing bytes moved"
    );
    assert_eq!(fs::read(local.path().join("big.bin")).expect("read"), data);
    assert!(partials(local.path()).is_empty());
    let reports = server.wait_reports(2);
    assert_eq!(reports.last().map(|r| r.bytes), Some(moved));
}

#[test]
fn a_partial_that_no_longer_matches_the_server_file_starts_over() {
    let server = TestServer::start();
    let old = noise(3 * 1024 * 1024, 2);
    server.write("doc", &old);
    let local = tempfile::tempdir().expect("tempdir");
    let store = DirStore::open(local.path()).expect("store");
    let (mut client, cancel, at) = cancelling_client(&server, 1024 * 1024);
    client
        .get_resumable("doc", &store, false, |p| {
            if p.done >= at {
                cancel.store(true, Ordering::SeqCst);
            }
        })
        .expect_err("cancelled");
    assert_eq!(partials(local.path()).len(), 1);

    // The file changes on the server (outside ft) before the resume.
    let new = noise(3 * 1024 * 1024, 4);
    assert_ne!(new[..1024], old[..1024], "the content really changed");
    fs::remove_file(server.root().join("doc")).expect("rm");
    server.write("doc", &new);
    let moved = server
        .client()
        .get_resumable("doc", &store, false, |_| {})
        .expect("started over");
    assert_eq!(moved, new.len() as u64, "everything moved again");
    assert_eq!(fs::read(local.path().join("doc")).expect("read"), new);
    assert!(partials(local.path()).is_empty());
}

#[test]
fn a_failed_download_that_is_not_an_interruption_keeps_no_partial() {
    let server = TestServer::start();
    let local = tempfile::tempdir().expect("tempdir");
    let store = DirStore::open(local.path()).expect("store");
    let err = server
        .client()
        .get_resumable("missing", &store, false, |_| {})
        .expect_err("not found");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(partials(local.path()).is_empty());
    assert_eq!(fs::read_dir(local.path()).expect("read").count(), 0);
}

#[test]
fn an_interrupted_upload_resumes_and_is_never_visible_before_it_completes() {
    let server = TestServer::start();
    let data = noise(4 * 1024 * 1024 + 3, 4);
    let local = tempfile::tempdir().expect("tempdir");
    let source = local.path().join("up.bin");
    fs::write(&source, &data).expect("write");

    let at = 1536 * 1024;
    let mut client = cut_upload(&server, &source, "up.bin", at);
    assert!(!server.root().join("up.bin").exists());
    assert!(
        client.list().expect("list").is_empty(),
        "a partial is never listed"
    );
    let mut sink = Vec::new();
    let err = client
        .get_into("up.bin", &mut sink, |_| {})
        .expect_err("a partial is never served");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    wait_for_the_partial(&server);

    let mut first = None;
    let moved = server
        .client()
        .put_resumable(&source, "up.bin", |p| {
            first.get_or_insert(p.done);
        })
        .expect("resumed");
    let offset = first.expect("progress");
    assert!(offset >= at, "resumed at {offset}");
    assert_eq!(
        moved,
        data.len() as u64 - offset,
        "only the missing bytes moved"
    );
    assert_eq!(fs::read(server.root().join("up.bin")).expect("read"), data);
    assert!(partials(server.root()).is_empty());
    assert_no_temp_files(server.root());
}

#[test]
fn a_changed_source_never_continues_an_old_partial() {
    let server = TestServer::start();
    let local = tempfile::tempdir().expect("tempdir");
    let source = local.path().join("f");
    fs::write(&source, noise(2 * 1024 * 1024, 5)).expect("write");
    cut_upload(&server, &source, "f", 512 * 1024);

    // Same name and size, other content: a different key, so a fresh upload. (On a v5
    // connection the key comes from the file's tag, which changes with its modification
    // time; set one second on, as a clock with coarse ticks might not.)
    let changed = noise(2 * 1024 * 1024, 8);
    assert_ne!(changed, noise(2 * 1024 * 1024, 5));
    let before = fs::metadata(&source)
        .expect("stat")
        .modified()
        .expect("mtime");
    rewrite(&source, &changed, before + Duration::from_secs(1));
    let mut first = None;
    let moved = server
        .client()
        .put_resumable(&source, "f", |p| {
            first.get_or_insert(p.done);
        })
        .expect("uploaded");
    assert_eq!(first, Some(0));
    assert_eq!(moved, changed.len() as u64);
    assert_eq!(fs::read(server.root().join("f")).expect("read"), changed);
}

/// A file rewritten in place whose tag stays the same (same size, and a modification time
/// put back, as a clock with coarse ticks may leave it): the client continues the old
/// partial, the server finds the whole file's digest wrong and drops the partial, and the
/// reference client sends the file once more from the start. The server never publishes
/// the spliced bytes.
#[test]
fn a_tagged_upload_whose_partial_is_not_its_prefix_starts_over() {
    let server = TestServer::start();
    let local = tempfile::tempdir().expect("tempdir");
    let source = local.path().join("f");
    let old = noise(2 * 1024 * 1024, 5);
    fs::write(&source, &old).expect("write");
    cut_upload(&server, &source, "f", 512 * 1024);
    wait_for_the_partial(&server);

    let before = fs::metadata(&source)
        .expect("stat")
        .modified()
        .expect("mtime");
    let changed = noise(2 * 1024 * 1024, 8);
    rewrite(&source, &changed, before);
    let mut starts = Vec::new();
    let mut last = u64::MAX;
    let moved = server
        .client()
        .put_resumable(&source, "f", |p| {
            if p.done < last {
                starts.push(p.done);
            }
            last = p.done;
        })
        .expect("uploaded");
    assert_eq!(
        moved,
        changed.len() as u64,
        "the second attempt sends it all"
    );
    assert!(
        starts.len() == 2 && starts[0] > 0 && starts[1] == 0,
        "continued, then started over: {starts:?}"
    );
    assert_eq!(fs::read(server.root().join("f")).expect("read"), changed);
    assert!(partials(server.root()).is_empty());
    assert_no_temp_files(server.root());
}

/// A v5 tagged upload sent by hand: no digest declared, the partial found again by the tag
/// after a cut, and the `End` digest of the whole file checked; a tagged upload on a v4
/// connection is refused as a protocol error.
#[test]
fn a_tagged_upload_continues_by_its_tag_and_is_checked_at_its_end() {
    let server = TestServer::start();
    let tag = [7u8; 16];
    let request = Request::Upload {
        name: "t.bin".into(),
        size: 10,
        attrs: None,
        how: How::Tagged { tag },
    };
    let mut first = RawPeer::connect(server.addr);
    first.send(&request);
    assert_eq!(first.recv(), Response::ReadyFrom { offset: 0 });
    first.send(&Body::Chunk(b"01234"));
    first.send(&Body::Abort {
        kind: ErrorKind::Cancelled,
        message: "cut".into(),
    });
    match first.recv() {
        Response::Error { kind, .. } => assert_eq!(kind, ErrorKind::Cancelled),
        other => panic!("expected the abort answered, got {other:?}"),
    }
    assert_eq!(partial_len(server.root()), Some(5));

    // Another tag: another partial, from 0 (dropped unfinished).
    let mut other = RawPeer::connect(server.addr);
    other.send(&Request::Upload {
        name: "t.bin".into(),
        size: 10,
        attrs: None,
        how: How::Tagged { tag: [8u8; 16] },
    });
    assert_eq!(other.recv(), Response::ReadyFrom { offset: 0 });
    drop(other);

    // The same tag continues; a wrong digest of the whole is refused and forgets the bytes.
    let mut liar = RawPeer::connect(server.addr);
    liar.send(&request);
    assert_eq!(liar.recv(), Response::ReadyFrom { offset: 5 });
    liar.send(&Body::Chunk(b"56789"));
    liar.send(&Body::End {
        digest: digest(b"56789"),
    });
    match liar.recv() {
        Response::Error { kind, .. } => assert_eq!(kind, ErrorKind::ChecksumMismatch),
        other => panic!("expected checksum-mismatch, got {other:?}"),
    }
    assert!(!server.root().join("t.bin").exists());

    // From the start again, then whole and right.
    let mut honest = RawPeer::connect(server.addr);
    honest.send(&request);
    assert_eq!(honest.recv(), Response::ReadyFrom { offset: 0 });
    honest.send(&Body::Chunk(b"0123456789"));
    honest.send(&Body::End {
        digest: digest(b"0123456789"),
    });
    assert_eq!(
        honest.recv(),
        Response::Uploaded {
            name: "t.bin".into(),
            size: 10
        }
    );
    assert_eq!(
        fs::read(server.root().join("t.bin")).expect("read"),
        b"0123456789"
    );

    // On a v4 connection: a protocol error.
    let mut old = RawPeer::connect_silent(server.addr);
    assert!(matches!(
        old.conn.recv_hello::<Response>(),
        Ok(Response::Hello(_))
    ));
    old.send(&Request::Hello(Hello {
        version: 4,
        ..Hello::ours()
    }));
    old.send(&request);
    match old.recv() {
        Response::Error { kind, message } => {
            assert_eq!(kind, ErrorKind::Protocol);
            assert!(message.contains("need ft v5"), "{message}");
        }
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

/// The size of the file [`a_v4_server`] expects.
const V4_SIZE: usize = 300_000;

/// A v4 server (a fake one): it wants the whole file's digest first, `Resumable{digest}`.
fn a_v4_server(peer: &mut Peer) {
    peer.send(&Response::Hello(Hello {
        version: 4,
        ..Hello::ours()
    }));
    match peer.request() {
        Request::Hello(hello) => assert_eq!(hello.version, 4, "{hello:?}"),
        other => panic!("expected the client's hello, got {other:?}"),
    }
    match peer.request() {
        Request::Upload {
            name,
            size,
            how: How::Resumable { digest: declared },
            ..
        } => {
            assert_eq!(name, NAME);
            assert_eq!(size, V4_SIZE as u64);
            assert_eq!(
                declared,
                digest(&noise(V4_SIZE, 9)),
                "the whole file's digest"
            );
            peer.send(&Response::ReadyFrom { offset: 0 });
            assert_eq!(peer.drain_body(), size);
            peer.send(&Response::Uploaded { name, size });
        }
        other => panic!("expected a resumable upload with its digest, got {other:?}"),
    }
}

/// Facing a v4 server, the client hashes the file first and sends `Resumable{digest}`, as
/// before v5 (every test server speaks v5, so nothing else runs this path).
#[test]
fn against_a_v4_server_a_resumable_upload_declares_its_digest() {
    let fake = FakeServer::start(a_v4_server);
    let local = tempfile::tempdir().expect("tempdir");
    let source = local.path().join("f");
    fs::write(&source, noise(V4_SIZE, 9)).expect("write");
    let mut client = Client::connect(fake.addr, quick_config()).expect("connect");
    let moved = client
        .put_resumable(&source, NAME, |_| {})
        .expect("uploaded");
    assert_eq!(moved, V4_SIZE as u64);
    drop(client);
    fake.finish();
}

#[test]
fn a_resumed_upload_whose_bytes_do_not_match_its_digest_is_refused_and_forgotten() {
    let server = TestServer::start();
    let mut peer = RawPeer::connect(server.addr);
    let claimed = digest(b"the real content");
    peer.send(&Request::PutResumable {
        name: "liar".into(),
        size: 16,
        digest: claimed,
    });
    assert_eq!(peer.recv(), Response::ReadyFrom { offset: 0 });
    let other = b"something else!!";
    peer.send(&Body::Chunk(other));
    peer.send(&Body::End {
        digest: digest(other),
    });
    match peer.recv() {
        Response::Error { kind, .. } => assert_eq!(kind, ErrorKind::ChecksumMismatch),
        other => panic!("expected checksum-mismatch, got {other:?}"),
    }
    assert!(!server.root().join("liar").exists());
    assert!(partials(server.root()).is_empty());
}

/// One partial is written by one upload at a time. A second upload of the same file from
/// another address is refused while the first goes on; one from the same address (a retry
/// after a cut the server has not noticed) takes over: the server closes the first
/// connection, keeps what it wrote, and the retry continues from there.
#[test]
fn a_retry_from_the_same_client_takes_over_a_partial_another_client_cannot() {
    let server = TestServer::start();
    let digest = digest(b"0123456789");
    let request = Request::PutResumable {
        name: "same".into(),
        size: 10,
        digest,
    };
    let mut first = RawPeer::connect(server.addr);
    first.send(&request);
    assert_eq!(first.recv(), Response::ReadyFrom { offset: 0 });
    first.send(&Body::Chunk(b"01234"));
    // Written by the server before the cut.
    let held = || partial_len(server.root());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while held() != Some(5) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }

    let elsewhere = "127.0.0.2".parse().expect("address");
    let mut other = RawPeer::connect_from(server.addr, elsewhere);
    other.send(&request);
    match other.recv() {
        Response::Error { kind, message } => {
            assert_eq!(kind, ErrorKind::AlreadyExists);
            assert!(message.contains("right now"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }

    // The first client goes silent, its connection still open: a retry takes over.
    let mut retry = RawPeer::connect(server.addr);
    retry.send(&request);
    assert_eq!(retry.recv(), Response::ReadyFrom { offset: 5 });
    retry.send(&Body::Chunk(b"56789"));
    retry.send(&Body::End { digest });
    assert_eq!(retry.recv(), Response::Stored { size: 10 });
    assert_eq!(
        fs::read(server.root().join("same")).expect("read"),
        b"0123456789"
    );
    assert!(partials(server.root()).is_empty());
    // The first connection was closed under it.
    match first.conn.recv::<Response>() {
        Ok(None) | Err(_) => {}
        Ok(Some(answer)) => panic!("the first connection got {answer:?}"),
    }
}

#[test]
fn abandoned_partials_are_bounded_in_age_and_size() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (i, len) in [(1, 3000), (2, 2000), (3, 1000)] {
        fs::write(dir.path().join(format!("{PART_PREFIX}{i}")), vec![0u8; len]).expect("write");
        // Distinct ages, oldest first.
        std::thread::sleep(Duration::from_millis(20));
    }
    let store = DirStore::open(dir.path()).expect("store");
    store.set_partial_limits(PartialLimits {
        max_age: Duration::from_secs(3600),
        max_count: 1000,
        max_bytes: 3500,
        max_per_peer: 100,
    });
    store.cleanup().expect("cleanup");
    let left = partials(dir.path());
    assert_eq!(
        left,
        vec![format!("{PART_PREFIX}2"), format!("{PART_PREFIX}3")]
    );
    store.set_partial_limits(PartialLimits {
        max_age: Duration::ZERO,
        max_count: usize::MAX,
        max_bytes: u64::MAX,
        max_per_peer: usize::MAX,
    });
    std::thread::sleep(Duration::from_millis(10));
    store.cleanup().expect("cleanup");
    assert!(partials(dir.path()).is_empty());
}

#[test]
fn resumable_requests_need_protocol_v2() {
    let server = TestServer::start();
    // A v1 client may not send them.
    let mut old = RawPeer::connect_silent(server.addr);
    assert!(matches!(
        old.conn.recv_hello::<Response>(),
        Ok(Response::Hello(_))
    ));
    old.send(&Request::Hello(Hello {
        version: 1,
        ..Hello::ours()
    }));
    old.send(&Request::GetFrom {
        name: "x".into(),
        offset: 0,
        prefix: [0; 16],
    });
    match old.recv() {
        Response::Error { kind, message } => {
            assert_eq!(kind, ErrorKind::Protocol);
            assert!(message.contains("v2"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }

    // A v2 client facing a v1 server says so before sending anything.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let fake = std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        let mut conn =
            ftlib::connection::Connection::tcp(stream, Duration::from_secs(5)).expect("conn");
        conn.send(&Response::Hello(Hello {
            version: 1,
            min_version: 1,
            ..Hello::ours()
        }))
        .expect("hello");
        let hello: Request = conn.recv_hello().expect("client hello");
        let next = conn.recv::<Request>().map(|r| r.is_some());
        (hello, next)
    });
    let mut client = Client::connect(addr, quick_config()).expect("connect");
    assert_eq!(client.version(), 1);
    let local = tempfile::tempdir().expect("tempdir");
    let store = DirStore::open(local.path()).expect("store");
    let err = client
        .get_resumable("x", &store, false, |_| {})
        .expect_err("unsupported");
    assert!(matches!(err, Error::Unsupported(_, 1)), "{err}");
    assert!(err.to_string().contains("upgrade"), "{err}");
    drop(client);
    let (hello, next) = fake.join().expect("fake server");
    assert!(matches!(hello, Request::Hello(Hello { version: 1, .. })));
    assert!(matches!(next, Ok(false)), "nothing was sent: {next:?}");
}

/// A server resuming "at our offset" of a file smaller than that offset is lying: a clear
/// protocol error, never an arithmetic overflow.
#[test]
fn a_resume_offset_beyond_the_file_is_a_protocol_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let fake = std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        let mut conn =
            ftlib::connection::Connection::tcp(stream, Duration::from_secs(5)).expect("conn");
        conn.send(&Response::Hello(Hello::ours())).expect("hello");
        let _: Request = conn.recv_hello().expect("client hello");
        let offset = match conn.expect::<Request>("get-from").expect("request") {
            Request::GetFrom { offset, .. } => offset,
            other => panic!("unexpected {other:?}"),
        };
        conn.send(&Response::FileFrom {
            size: offset - 1,
            modified: 0,
            offset,
        })
        .expect("lie");
        let _ = conn.recv::<Request>();
    });
    let local = tempfile::tempdir().expect("tempdir");
    let store = DirStore::open(local.path()).expect("store");
    let key = format!("{:032x}", xxhash_rust::xxh3::xxh3_128(b"f"));
    fs::write(
        local.path().join(format!("{PART_PREFIX}{key}")),
        b"0123456789",
    )
    .expect("write");
    let mut client = Client::connect(addr, quick_config()).expect("connect");
    let err = client
        .get_resumable("f", &store, false, |_| {})
        .expect_err("a lie");
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
    assert!(!local.path().join("f").exists());
    drop(client);
    fake.join().expect("fake server");
}
