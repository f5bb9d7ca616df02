//! Many files over one connection with requests pipelined: every file keeps the promises
//! of a single transfer (verified, durable before it is acknowledged, never replacing), and
//! each gets its own result, in order, whatever fails around it.

mod common;

use std::fs;
use std::path::PathBuf;

use common::{RawPeer, TestServer, assert_no_temp_files};
use ft_testutil::{digest, noise, temp_files};
use ftlib::ErrorKind;
use ftlib::protocol::{Body, MAX_PIPELINED, Request, Response};
use ftlib::store::DirStore;

#[test]
fn put_many_keeps_every_file_s_promises_and_reports_each_in_order() {
    let server = TestServer::start();
    server.write("taken", b"already here");
    let local = tempfile::tempdir().expect("tempdir");
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    let mut expected = Vec::new();
    for i in 0..300 {
        let name = format!("small-{i:03}");
        let data = noise(i * 37, i as u64);
        fs::write(local.path().join(&name), &data).expect("write");
        files.push((local.path().join(&name), name.clone()));
        expected.push(Ok(data.len() as u64));
    }
    let big = noise(MAX_PIPELINED as usize + 1, 999);
    fs::write(local.path().join("big"), &big).expect("write");
    let odd: Vec<(&str, ErrorKind)> = vec![
        ("taken", ErrorKind::AlreadyExists),
        ("missing-locally", ErrorKind::NotFound),
        ("../escape", ErrorKind::InvalidName),
    ];
    // Failures in the middle of the batch, and one file too large to pipeline.
    files.insert(100, (local.path().join("big"), "big".into()));
    expected.insert(100, Ok(big.len() as u64));
    for (at, (name, kind)) in odd.into_iter().enumerate() {
        let path = local
            .path()
            .join(if name == "taken" { "small-000" } else { name });
        files.insert(50 + 70 * at, (path, name.into()));
        expected.insert(50 + 70 * at, Err(kind));
    }

    let mut results = Vec::new();
    server
        .client()
        .put_many(&files, |_, _| {}, |i, result| results.push((i, result)));
    let order: Vec<usize> = results.iter().map(|r| r.0).collect();
    assert_eq!(
        order,
        (0..files.len()).collect::<Vec<_>>(),
        "reported in order"
    );
    for ((i, got), want) in results.iter().zip(&expected) {
        match (got, want) {
            (Ok(n), Ok(m)) => assert_eq!(n, m, "file {i}"),
            (Err(e), Err(kind)) => assert_eq!(e.kind(), *kind, "file {i}: {e}"),
            _ => panic!("file {i}: got {got:?}, want {want:?}"),
        }
    }
    for (path, name) in &files {
        if let Ok(data) = fs::read(path) {
            if name != "taken" && name != "../escape" {
                assert_eq!(
                    fs::read(server.root().join(name)).expect(name),
                    data,
                    "{name}"
                );
            }
        }
    }
    assert_eq!(
        fs::read(server.root().join("taken")).expect("read"),
        b"already here"
    );
    assert_no_temp_files(server.root());
}

#[test]
fn get_many_downloads_in_a_pipeline_and_reports_each() {
    let server = TestServer::start();
    let mut names = Vec::new();
    for i in 0..200 {
        let name = format!("f{i:03}");
        server.write(&name, &noise(i * 53 + 1, i as u64 + 7));
        names.push(name);
    }
    names.insert(10, "missing".into());
    names.insert(20, "../escape".into());
    names.insert(30, "mine".into());
    let local = tempfile::tempdir().expect("tempdir");
    fs::write(local.path().join("mine"), b"local copy").expect("write");
    server.write("mine", b"server copy");
    let store = DirStore::open(local.path()).expect("store");
    let mut results: Vec<Option<ftlib::Result<u64>>> = names.iter().map(|_| None).collect();
    server.client().get_many(
        &names,
        &store,
        false,
        |_, _| {},
        |i, result| results[i] = Some(result),
    );
    for (i, name) in names.iter().enumerate() {
        let result = results[i].take().expect("every file reported");
        match name.as_str() {
            "missing" => assert_eq!(result.expect_err(name).kind(), ErrorKind::NotFound),
            "../escape" => assert_eq!(result.expect_err(name).kind(), ErrorKind::InvalidName),
            "mine" => assert_eq!(result.expect_err(name).kind(), ErrorKind::AlreadyExists),
            _ => {
                let want = fs::read(server.root().join(name)).expect("served");
                assert_eq!(result.expect(name), want.len() as u64);
                assert_eq!(fs::read(local.path().join(name)).expect(name), want);
            }
        }
    }
    assert_eq!(
        fs::read(local.path().join("mine")).expect("read"),
        b"local copy"
    );
    assert!(temp_files(local.path()).is_empty());
}

#[test]
fn pipelined_refusals_and_lies_keep_the_connection_in_step() {
    let server = TestServer::start();
    server.write("exists", b"keep");
    let mut peer = RawPeer::connect(server.addr);
    // Three uploads sent back to back before reading any answer.
    let send = |peer: &mut RawPeer, name: &str, data: &[u8], claimed: &[u8]| {
        peer.send(&Request::PutPipelined {
            name: name.into(),
            size: data.len() as u64,
        });
        peer.send(&Body::Chunk(data));
        peer.send(&Body::End {
            digest: digest(claimed),
        });
    };
    send(&mut peer, "exists", b"intruder", b"intruder");
    send(&mut peer, "corrupt", b"bytes", b"other");
    send(&mut peer, "fine", b"good data", b"good data");
    let kinds: Vec<_> = (0..3)
        .map(|_| match peer.recv() {
            Response::Stored { size } => Ok(size),
            Response::Error { kind, .. } => Err(kind),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            Err(ErrorKind::AlreadyExists),
            Err(ErrorKind::ChecksumMismatch),
            Ok(9)
        ]
    );
    assert_eq!(
        fs::read(server.root().join("exists")).expect("read"),
        b"keep"
    );
    assert!(!server.root().join("corrupt").exists());
    assert_eq!(
        fs::read(server.root().join("fine")).expect("read"),
        b"good data"
    );
    // Reported with the bytes each moved: none for the refusal before its body, the
    // body received for the one that failed its check.
    let reports = server.wait_reports(3);
    let bytes: Vec<_> = reports
        .iter()
        .map(|r| {
            (
                r.name.as_deref().unwrap_or_default(),
                r.bytes,
                r.is_success(),
            )
        })
        .collect();
    assert_eq!(
        bytes,
        vec![
            ("exists", 0, false),
            ("corrupt", 5, false),
            ("fine", 9, true)
        ]
    );
    // A pipelined upload larger than the limit cannot be drained safely: closed.
    peer.send(&Request::PutPipelined {
        name: "huge".into(),
        size: MAX_PIPELINED + 1,
    });
    match peer.recv() {
        Response::Error { kind, .. } => assert_eq!(kind, ErrorKind::Protocol),
        other => panic!("unexpected {other:?}"),
    }
    assert!(peer.closed_by_server());
    assert_no_temp_files(server.root());
}

/// The client sends five uploads, stops sending and never reads an answer: all five are
/// still published. (It half-closes rather than closing both ways: on Linux a socket shut
/// for reading answers the server's first reply with a reset, which may destroy uploads
/// still queued for the server, and the test would be about the kernel, not ft.)
#[test]
fn verified_uploads_are_published_even_if_the_client_leaves_without_its_answers() {
    let server = TestServer::start();
    let mut peer = RawPeer::connect(server.addr);
    for i in 0..5 {
        let data = noise(1000 + i, i as u64);
        peer.send(&Request::PutPipelined {
            name: format!("left-{i}"),
            size: data.len() as u64,
        });
        peer.send(&Body::Chunk(&data));
        peer.send(&Body::End {
            digest: digest(&data),
        });
    }
    peer.conn_stream()
        .shutdown(std::net::Shutdown::Write)
        .expect("half-close");
    let reports = server.wait_reports(5);
    assert_eq!(reports.len(), 5, "{reports:?}");
    for i in 0..5 {
        assert_eq!(
            fs::read(server.root().join(format!("left-{i}"))).expect("published"),
            noise(1000 + i, i as u64)
        );
    }
    assert_no_temp_files(server.root());
}

/// Descriptors of this process open on files under `dir`.
#[cfg(target_os = "linux")]
fn files_open_under(dir: &std::path::Path) -> usize {
    fs::read_dir("/proc/self/fd")
        .expect("fds")
        .filter_map(|fd| fs::read_link(fd.ok()?.path()).ok())
        // The served directory's own handle is the store's, one for all connections.
        .filter(|target| target.starts_with(dir) && target != dir)
        .count()
}

/// Uploads waiting for their group hold no open files: small ones are held in memory, and
/// a larger one (spilled to a temporary file) has its file closed until the commit. A client
/// cannot exhaust the server's descriptors by delaying the commit.
#[cfg(target_os = "linux")]
#[test]
fn waiting_pipelined_uploads_hold_no_descriptors() {
    let server = TestServer::start();
    // The tempdir's path may be reached through a symlink: compare with the real one.
    let root = fs::canonicalize(server.root()).expect("root");
    let mut peer = RawPeer::connect(server.addr);
    let small = 200;
    for i in 0..small {
        let data = noise(100, i);
        // Half of them in directories of their own, whose handles are let go too.
        let name = if i % 2 == 0 {
            format!("w{i}")
        } else {
            format!("d{i}/w{i}")
        };
        peer.send(&Request::PutPipelined { name, size: 100 });
        peer.send(&Body::Chunk(&data));
        peer.send(&Body::End {
            digest: digest(&data),
        });
    }
    // Then one upload too big for memory, whose End frame travels in one write with half a
    // header: when the server has read that End, input is pending, so the upload waits.
    let big = ftlib::store::BUFFERED_MAX + 1000;
    let data = noise(big, 1000);
    peer.send(&Request::PutPipelined {
        name: "big".into(),
        size: big as u64,
    });
    peer.send(&Body::Chunk(&data));
    let mut tail = Vec::new();
    let end = Body::End {
        digest: digest(&data),
    };
    ftlib::codec::encode_frame(&end, &mut tail).expect("encode");
    let mut list = Vec::new();
    ftlib::codec::encode_frame(&Request::List, &mut list).expect("encode");
    tail.extend_from_slice(&list[..2]);
    let stream = peer.conn_stream();
    std::io::Write::write_all(&mut &stream, &tail).expect("end and half a header");
    // Its temporary file, whole: everything was received.
    let received = || {
        temp_files(&root)
            .iter()
            .filter_map(|t| fs::metadata(root.join(t)).ok())
            .any(|m| m.len() == big as u64)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !received() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(received(), "temporary files: {:?}", temp_files(&root));
    // Released right after its body: give the server a moment, bounded.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while files_open_under(&root) > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(files_open_under(&root), 0, "files open while waiting");
    assert!(received(), "still waiting, uncommitted");
    std::io::Write::write_all(&mut &stream, &list[2..]).expect("rest of the header");
    for _ in 0..small {
        assert!(matches!(peer.recv(), Response::Stored { size: 100 }));
    }
    assert!(matches!(peer.recv(), Response::Stored { size } if size == big as u64));
    assert!(matches!(peer.recv(), Response::Entries(_)));
    for i in 0..small {
        let name = if i % 2 == 0 {
            format!("w{i}")
        } else {
            format!("d{i}/w{i}")
        };
        assert_eq!(fs::read(root.join(name)).expect("published"), noise(100, i));
    }
    assert!(fs::read(root.join("big")).expect("published") == data);
    assert_no_temp_files(&root);
}

/// A group is committed once it holds `GROUP_BYTES`, even while more input is pending:
/// what waits in memory for a connection stays bounded. (The server may commit sooner,
/// whenever it finds no input waiting; the bound is on what can be left uncommitted. A
/// full group is committed in the background while the next is received, and answered
/// before it; so the promise is checked on disk, where committed files are published.)
#[test]
fn a_group_is_committed_when_it_holds_enough_bytes() {
    let server = TestServer::start();
    let peer = RawPeer::connect(server.addr);
    // Held in memory while they wait (larger ones wait on disk and do not count).
    let size = ftlib::store::BUFFERED_MAX as u64;
    let count = 40;
    // Everything, then half a header, in one write: input stays pending as far as the
    // network allows, and the group stays far below GROUP_MAX files.
    let mut wire = Vec::new();
    let mut frame = Vec::new();
    for i in 0..count {
        let data = noise(size as usize, i);
        let request = Request::PutPipelined {
            name: format!("g{i}"),
            size,
        };
        ftlib::codec::encode_frame(&request, &mut frame).expect("encode");
        wire.extend_from_slice(&frame);
        ftlib::codec::encode_frame(&Body::Chunk(&data), &mut frame).expect("encode");
        wire.extend_from_slice(&frame);
        let end = Body::End {
            digest: digest(&data),
        };
        ftlib::codec::encode_frame(&end, &mut frame).expect("encode");
        wire.extend_from_slice(&frame);
    }
    let mut list = Vec::new();
    ftlib::codec::encode_frame(&Request::List, &mut list).expect("encode");
    wire.extend_from_slice(&list[..2]);
    let stream = peer.conn_stream();
    let conn_stream = peer.conn_stream();
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut &stream, &wire));
    // At most GROUP_BYTES (fifteen of these files plus the one that reaches it) may wait:
    // the others are published while the rest of the header has not arrived. Answers are
    // read meanwhile (by another thread), so the server never waits on a full socket.
    let left = (ftlib::pipeline::GROUP_BYTES / size - 1) as usize;
    let root = server.root().to_owned();
    let published = || {
        (0..count)
            .filter(|i| root.join(format!("g{i}")).exists())
            .count()
    };
    let mut reader = peer;
    let answers = std::thread::spawn(move || {
        let mut stored = 0;
        loop {
            match reader.recv() {
                Response::Stored { size: s } if s == size => stored += 1,
                Response::Entries(_) => return stored,
                other => panic!("unexpected {other:?}"),
            }
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while published() < count as usize - left && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(
        published() >= count as usize - left,
        "only {} of {count} published while input was pending",
        published()
    );
    writer.join().expect("writer").expect("write");
    std::io::Write::write_all(&mut &conn_stream, &list[2..]).expect("rest of header");
    let stored = answers.join().expect("answers");
    assert_eq!(stored, count as usize);
    for i in 0..count {
        assert_eq!(
            fs::read(server.root().join(format!("g{i}"))).expect("published"),
            noise(size as usize, i)
        );
    }
}

/// A protocol error after pipelined uploads: their answers come first, in order.
#[test]
fn a_protocol_error_is_answered_after_the_waiting_uploads() {
    let server = TestServer::start();
    let mut peer = RawPeer::connect(server.addr);
    let mut garbage = Vec::new();
    for i in 0..3 {
        let data = noise(10, i);
        peer.send(&Request::PutPipelined {
            name: format!("ok{i}"),
            size: 10,
        });
        peer.send(&Body::Chunk(&data));
        peer.send(&Body::End {
            digest: digest(&data),
        });
    }
    garbage.extend_from_slice(&[0, 0, 0, 1, 99]);
    let stream = peer.conn_stream();
    std::io::Write::write_all(&mut &stream, &garbage).expect("garbage");
    for _ in 0..3 {
        assert_eq!(peer.recv(), Response::Stored { size: 10 });
    }
    match peer.recv() {
        Response::Error { kind, .. } => assert_eq!(kind, ErrorKind::Protocol),
        other => panic!("expected a protocol error last, got {other:?}"),
    }
}

/// Many groups in flight at once (small files that fill a group by its bytes, sent without
/// waiting): every answer comes in request order, the first upload of a name wins it
/// across groups, and a file wins its name over a later upload, groups after it, that
/// needs that name as a directory.
#[test]
fn many_groups_in_flight_keep_request_order_across_groups() {
    let server = TestServer::start();
    let local = tempfile::tempdir().expect("tempdir");
    // Held in memory while they wait: about sixteen to a group.
    let size = ftlib::store::BUFFERED_MAX - 1000;
    let per_group = (ftlib::pipeline::GROUP_BYTES / size as u64) as usize + 1;
    let count = per_group * 12;
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    for i in 0..count {
        let group = i / per_group;
        let name = match i % per_group {
            // The same five names again in every group: the first of each wins.
            0..=4 => format!("r{}", i % per_group),
            // A file `dG`, and three groups later an upload that needs it as a directory.
            5 => format!("d{group}"),
            6 if group >= 3 => format!("d{}/x", group - 3),
            _ => format!("u{i}"),
        };
        let path = local.path().join(format!("src{i}"));
        fs::write(&path, noise(size, i as u64)).expect("write");
        files.push((path, name));
    }
    let mut results = Vec::new();
    server
        .client()
        .put_many(&files, |_, _| {}, |i, result| results.push((i, result)));
    let order: Vec<usize> = results.iter().map(|r| r.0).collect();
    assert_eq!(order, (0..count).collect::<Vec<_>>(), "reported in order");
    let mut first: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (i, (_, name)) in files.iter().enumerate() {
        let result = &results[i].1;
        if name.contains('/') {
            assert!(
                result.is_err(),
                "{name} made a directory of an earlier file"
            );
            continue;
        }
        match first.get(name.as_str()) {
            None => {
                assert_eq!(*result.as_ref().expect(name), size as u64, "{name}");
                first.insert(name, i);
            }
            Some(_) => assert_eq!(
                result.as_ref().expect_err(name).kind(),
                ErrorKind::AlreadyExists,
                "{name} (upload {i})"
            ),
        }
    }
    for (name, i) in first {
        assert!(
            fs::read(server.root().join(name)).expect(name) == noise(size, i as u64),
            "{name} holds the bytes of its first upload ({i})"
        );
    }
    assert_no_temp_files(server.root());
}
