//! Round trips through a real server on loopback: sizes, refusals, listings, several
//! requests on one connection, concurrent clients, shutdown.

mod common;

use std::fs;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{TestServer, assert_no_temp_files, quick_config};
use ft_testutil::{noise, temp_files};
use ftlib::Op;
use ftlib::protocol::{DEFAULT_CHUNK, EntryKind};
use ftlib::store::DirStore;
use ftlib::{Client, Error, ErrorKind};

fn remote_kind(result: Result<u64, Error>) -> ErrorKind {
    match result {
        Err(Error::Remote { kind, .. }) => kind,
        other => panic!("expected a failure reported by the server, got {other:?}"),
    }
}

#[test]
fn files_of_every_size_round_trip_byte_identical() {
    let server = TestServer::start();
    let local = tempfile::tempdir().expect("tempdir");
    let back = DirStore::open(local.path()).expect("store");
    let mut client = server.client();
    let sizes = [
        0,
        1,
        DEFAULT_CHUNK - 1,
        DEFAULT_CHUNK,
        DEFAULT_CHUNK + 1,
        3 * DEFAULT_CHUNK,
        24 * 1024 * 1024 + 7,
    ];
    for (i, size) in sizes.into_iter().enumerate() {
        let name = format!("file-{size}");
        let data = noise(size, i as u64 + 1);
        let source = local.path().join(format!("src-{size}"));
        fs::write(&source, &data).expect("write source");
        let mut last = None;
        let sent = client.put(&source, &name, |p| last = Some(p)).expect("put");
        assert_eq!(sent, size as u64);
        assert_eq!(last.map(|p| (p.done, p.total)), Some((sent, sent)));
        assert_eq!(fs::read(server.root().join(&name)).expect("stored"), data);

        let got = client.get(&name, &back, false, |_| {}).expect("get");
        assert_eq!(got, size as u64);
        assert_eq!(fs::read(local.path().join(&name)).expect("fetched"), data);
    }
    assert_no_temp_files(server.root());
    assert!(temp_files(local.path()).is_empty());
    let reports = server.wait_reports(2 * sizes.len());
    assert_eq!(reports.len(), 2 * sizes.len());
    assert!(reports.iter().all(|r| r.is_success()), "{reports:?}");
    let big = reports
        .iter()
        .find(|r| r.op == Op::Get && r.name.as_deref() == Some("file-25165831"))
        .expect("report of the big get");
    assert_eq!(big.bytes, 24 * 1024 * 1024 + 7);
}

#[test]
fn an_existing_file_is_never_replaced() {
    let server = TestServer::start();
    server.write("taken.txt", b"original");
    let mut client = server.client();
    let kind = remote_kind(client.put_reader(&b"intruder"[..], 8, "taken.txt", |_| {}));
    assert_eq!(kind, ErrorKind::AlreadyExists);
    assert_eq!(
        fs::read(server.root().join("taken.txt")).expect("read"),
        b"original"
    );
    // The refusal came before the body: the same connection goes on.
    client
        .put_reader(&b"fresh"[..], 5, "other.txt", |_| {})
        .expect("next put on the same connection");
    assert_no_temp_files(server.root());
}

#[test]
fn missing_files_are_not_found_and_leave_nothing_locally() {
    let server = TestServer::start();
    let local = tempfile::tempdir().expect("tempdir");
    let store = DirStore::open(local.path()).expect("store");
    let mut client = server.client();
    let kind = remote_kind(client.get("absent.bin", &store, false, |_| {}));
    assert_eq!(kind, ErrorKind::NotFound);
    assert!(!local.path().join("absent.bin").exists());
    assert!(temp_files(local.path()).is_empty());
}

#[test]
fn local_files_are_kept_unless_overwrite() {
    let server = TestServer::start();
    server.write("f", b"server copy");
    let local = tempfile::tempdir().expect("tempdir");
    fs::write(local.path().join("f"), b"mine").expect("write");
    let store = DirStore::open(local.path()).expect("store");
    let mut client = server.client();
    assert!(matches!(
        client.get("f", &store, false, |_| {}),
        Err(Error::AlreadyExists { .. })
    ));
    assert_eq!(fs::read(local.path().join("f")).expect("read"), b"mine");
    client.get("f", &store, true, |_| {}).expect("overwrite");
    assert_eq!(
        fs::read(local.path().join("f")).expect("read"),
        b"server copy"
    );
}

#[test]
fn listing_shows_files_and_directories_only() {
    let server = TestServer::start();
    server.write("a.txt", b"12345");
    server.write(".ft-tmp-1-1-1", b"stale temp");
    fs::create_dir(server.root().join("sub")).expect("mkdir");
    #[cfg(unix)]
    std::os::unix::fs::symlink("/etc/passwd", server.root().join("escape")).expect("symlink");
    let mut client = server.client();
    let mut entries = client.list().expect("list");
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    let seen: Vec<_> = entries
        .iter()
        .map(|e| (e.name.as_str(), e.kind, e.size))
        .collect();
    assert_eq!(
        seen,
        vec![("a.txt", EntryKind::File, 5), ("sub", EntryKind::Dir, 0)]
    );
    assert!(entries[0].modified > 1_600_000_000, "{entries:?}");
}

#[test]
fn a_large_listing_streams_in_batches() {
    let server = TestServer::start();
    for i in 0..1000 {
        server.write(&format!("f{i:04}"), b"");
    }
    let mut client = server.client();
    let mut names = Vec::new();
    let count = client.list_each(|e| names.push(e.name)).expect("list");
    assert_eq!(count, 1000);
    names.sort();
    assert_eq!(names.first().map(String::as_str), Some("f0000"));
    assert_eq!(names.last().map(String::as_str), Some("f0999"));
    // The client bounds what it accepts.
    let mut config = quick_config();
    config.max_list_entries = 999;
    let mut strict = Client::connect(server.addr, config).expect("connect");
    assert!(matches!(strict.list(), Err(Error::Protocol(_))));
}

#[test]
fn many_requests_share_one_connection() {
    let server = TestServer::start();
    let local = tempfile::tempdir().expect("tempdir");
    let store = DirStore::open(local.path()).expect("store");
    let mut client = server.client();
    for i in 0..50 {
        let data = noise(i * 100, i as u64);
        client
            .put_reader(&data[..], data.len() as u64, &format!("n{i}"), |_| {})
            .expect("put");
        assert_eq!(client.list().expect("list").len(), i + 1);
        client
            .get(&format!("n{i}"), &store, false, |_| {})
            .expect("get");
        assert_eq!(
            fs::read(local.path().join(format!("n{i}"))).expect("read"),
            data
        );
    }
    let reports = server.wait_reports(150);
    let ports: std::collections::HashSet<_> = reports.iter().map(|r| r.peer.port()).collect();
    assert_eq!(ports.len(), 1, "all requests came over one connection");
}

#[test]
fn concurrent_clients_are_all_served() {
    let server = TestServer::start();
    let addr = server.addr;
    let threads: Vec<_> = (0..16)
        .map(|t| {
            std::thread::spawn(move || {
                let local = tempfile::tempdir().expect("tempdir");
                let store = DirStore::open(local.path()).expect("store");
                let mut client = Client::connect(addr, quick_config()).expect("connect");
                for i in 0..5 {
                    let name = format!("t{t}-{i}");
                    let data = noise(50_000 + t * 1000 + i, (t * 10 + i) as u64);
                    client
                        .put_reader(&data[..], data.len() as u64, &name, |_| {})
                        .expect("put");
                    client.get(&name, &store, false, |_| {}).expect("get");
                    assert_eq!(fs::read(local.path().join(&name)).expect("read"), data);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
    assert_eq!(server.client().list().expect("list").len(), 80);
}

#[test]
fn racing_uploads_of_one_name_have_exactly_one_intact_winner() {
    let server = TestServer::start();
    let addr = server.addr;
    for round in 0..5 {
        let name = format!("contested-{round}");
        let threads: Vec<_> = (0..8u64)
            .map(|t| {
                let name = name.clone();
                std::thread::spawn(move || {
                    let data = noise(300_000, t + 1);
                    let mut client = Client::connect(addr, quick_config()).expect("connect");
                    client
                        .put_reader(&data[..], data.len() as u64, &name, |_| {})
                        .map(|_| data)
                })
            })
            .collect();
        let results: Vec<_> = threads
            .into_iter()
            .map(|t| t.join().expect("thread"))
            .collect();
        let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        for loser in results.iter().filter_map(|r| r.as_ref().err()) {
            assert_eq!(loser.kind(), ErrorKind::AlreadyExists, "{loser}");
        }
        assert_eq!(
            &fs::read(server.root().join(&name)).expect("read"),
            winners[0]
        );
    }
    assert_no_temp_files(server.root());
}

#[test]
fn a_cancelled_upload_leaves_nothing_and_the_name_free() {
    let server = TestServer::start();
    let cancel = Arc::new(AtomicBool::new(false));
    let mut config = quick_config();
    config.cancel = Some(Arc::clone(&cancel));
    config.chunk_size = 4096;
    let mut client = Client::connect(server.addr, config).expect("connect");
    let data = noise(1 << 20, 9);
    let result = client.put_reader(&data[..], data.len() as u64, "half", |p| {
        if p.done >= 64 * 1024 {
            cancel.store(true, Ordering::SeqCst);
        }
    });
    assert!(matches!(result, Err(Error::Cancelled)), "{result:?}");
    assert!(client.is_open(), "an upload abort keeps the connection");
    assert!(!server.root().join("half").exists());
    assert_no_temp_files(server.root());
    cancel.store(false, Ordering::SeqCst);
    client
        .put_reader(&data[..], data.len() as u64, "half", |_| {})
        .expect("the name is free for a retry");
    assert_eq!(fs::read(server.root().join("half")).expect("read"), data);
}

#[test]
fn a_source_that_changes_size_is_aborted() {
    let server = TestServer::start();
    let mut client = server.client();
    // Declares 10 bytes but the reader has only 4: the body is aborted, nothing published.
    let err = client
        .put_reader(&b"four"[..], 10, "short", |_| {})
        .expect_err("short source");
    assert_eq!(err.kind(), ErrorKind::SizeMismatch, "{err}");
    let err = client
        .put_reader(&b"more than four"[..], 4, "long", |_| {})
        .expect_err("long source");
    assert_eq!(err.kind(), ErrorKind::SizeMismatch, "{err}");
    assert!(!server.root().join("short").exists());
    assert!(!server.root().join("long").exists());
    assert_no_temp_files(server.root());
    assert!(client.list().expect("connection still usable").is_empty());
}

#[test]
fn shutdown_returns_and_leaves_no_temporary_files() {
    let mut server = TestServer::start();
    server.write(".ft-tmp-crashed", b"left by a crash");
    let mut idle = server.client();
    idle.list().expect("list");
    server.stop().expect("run returned cleanly");
    assert_eq!(temp_files(server.root()), Vec::<String>::new());
    // The idle connection was closed by the shutdown.
    assert!(idle.list().is_err());
}

#[test]
fn a_read_only_server_refuses_uploads_but_serves_downloads() {
    let mut config = ftlib::ServerConfig::default();
    config.read_only = true;
    let server = TestServer::with_config(config);
    server.write("public.txt", b"read me");
    let mut client = server.client();
    let kind = remote_kind(client.put_reader(&b"nope"[..], 4, "new.txt", |_| {}));
    assert_eq!(kind, ErrorKind::ReadOnly);
    assert!(!server.root().join("new.txt").exists());
    let mut sink = Vec::new();
    client
        .get_into("public.txt", &mut sink, |_| {})
        .expect("downloads still work");
    assert_eq!(sink, b"read me");
    assert_eq!(client.list().expect("list").len(), 1);
}
