//! A file system that fills up during a transfer, on either side: a small real tmpfs.
//! Mounting needs root (as CI runs); elsewhere the tests say they were skipped.

#![cfg(target_os = "linux")]

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{RawPeer, TestServer, assert_no_temp_files};
use ft_testutil::{digest, noise, partials, temp_files};
use ftlib::protocol::{Body, Request, Response};
use ftlib::store::DirStore;
use ftlib::{ErrorKind, ServerConfig, Session};

/// A tmpfs of `size` mounted on a fresh directory, unmounted on drop.
struct Tmpfs {
    _parent: tempfile::TempDir,
    path: PathBuf,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        Tmpfs::mount_with(&format!("size={size}"))
    }

    fn mount_with(options: &str) -> Option<Tmpfs> {
        if !rustix::process::geteuid().is_root() {
            eprintln!("SKIPPED: mounting a tmpfs needs root");
            return None;
        }
        let parent = tempfile::tempdir().expect("tempdir");
        let path = parent.path().join("small");
        std::fs::create_dir(&path).expect("mkdir");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(&path)
            .status();
        match status {
            Ok(s) if s.success() => Some(Tmpfs {
                _parent: parent,
                path,
            }),
            other => {
                eprintln!("SKIPPED: cannot mount a tmpfs here ({other:?})");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

#[test]
fn an_upload_that_fills_the_server_disk_fails_cleanly() {
    let Some(fs) = Tmpfs::mount("1m") else {
        return;
    };
    let dir = tempfile::TempDir::new_in(fs.path()).expect("dir on tmpfs");
    let server = TestServer::serving(dir, ServerConfig::default());
    let mut client = server.client();
    let data = noise(3 * 1024 * 1024, 1);
    let err = client
        .put_reader(&data[..], data.len() as u64, "huge", |_| {})
        .expect_err("cannot fit");
    assert_eq!(err.kind(), ErrorKind::NoSpace, "{err}");
    assert!(
        client.is_open(),
        "the body was drained; the connection goes on"
    );
    assert!(!server.root().join("huge").exists());
    assert_no_temp_files(server.root());
    // The space came back and the name is free.
    let small = noise(100_000, 2);
    client
        .put_reader(&small[..], small.len() as u64, "huge", |_| {})
        .expect("fits now");
    assert_eq!(
        std::fs::read(server.root().join("huge")).expect("read"),
        small
    );
    let reports = server.wait_reports(2);
    assert_eq!(
        reports[0].failure.as_ref().map(|f| f.kind),
        Some(ErrorKind::NoSpace)
    );
}

/// Each upload fits alone, so both pass the early check; the disk fills in the middle of
/// the second body. The server keeps reading (and dropping) that body, then refuses it.
#[test]
fn a_disk_that_fills_during_an_upload_fails_it_cleanly() {
    let Some(fs) = Tmpfs::mount("1m") else {
        return;
    };
    let dir = tempfile::TempDir::new_in(fs.path()).expect("dir on tmpfs");
    let server = TestServer::serving(dir, ServerConfig::default());
    let second = noise(700 * 1024, 4);
    let mut late = RawPeer::connect(server.addr);
    late.send(&Request::Put {
        name: "second".into(),
        size: second.len() as u64,
    });
    assert_eq!(late.recv(), Response::Ready);

    let first = noise(700 * 1024, 5);
    server
        .client()
        .put_reader(&first[..], first.len() as u64, "first", |_| {})
        .expect("the first fits");

    for chunk in second.chunks(64 * 1024) {
        late.send(&Body::Chunk(chunk));
    }
    late.send(&Body::End {
        digest: digest(&second),
    });
    match late.recv() {
        Response::Error { kind, .. } => assert_eq!(kind, ErrorKind::NoSpace),
        other => panic!("expected no-space, got {other:?}"),
    }
    assert!(!server.root().join("second").exists());
    assert_no_temp_files(server.root());
    assert_eq!(
        std::fs::read(server.root().join("first")).expect("read"),
        first
    );
    // The connection stayed in step.
    late.send(&Request::List);
    assert!(matches!(late.recv(), Response::Entries(_)));
}

/// When the disk fills with more than the drain limit still to come, the server gives up
/// the connection rather than read it all; the client still learns why.
#[test]
fn a_client_learns_why_the_server_gave_up_on_its_body() {
    let Some(fs) = Tmpfs::mount("200m") else {
        return;
    };
    let dir = tempfile::TempDir::new_in(fs.path()).expect("dir on tmpfs");
    let server = TestServer::serving(dir, ServerConfig::default());
    let size = 150 << 20;
    // The first upload is accepted while the disk is empty, then waits for a signal.
    let (go, wait) = std::sync::mpsc::channel::<()>();
    let mut waiting = server.client();
    let first = std::thread::spawn(move || {
        let gated = GatedReader {
            gate: Some(wait),
            data: std::io::repeat(7).take(size),
        };
        waiting.put_reader(gated, size, "first", |_| {})
    });
    // Wait until the first one has its temporary file (it was accepted), then fill the disk.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while temp_files(server.root()).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    server
        .client()
        .put_reader(std::io::repeat(1).take(size), size, "second", |_| {})
        .expect("the second fits");
    go.send(()).expect("open the gate");
    let err = first
        .join()
        .expect("first thread")
        .expect_err("no room left");
    assert_eq!(err.kind(), ErrorKind::NoSpace, "{err}");
    assert!(err.to_string().contains("server"), "{err}");
    assert!(!server.root().join("first").exists());
    assert_no_temp_files(server.root());
}

/// A resumable upload refused for space keeps the partial it already has (it resumes once
/// there is room), unlike an empty one (`partial_bounds.rs`).
#[test]
fn a_partial_with_bytes_survives_a_refusal_for_space_and_resumes() {
    let Some(fs) = Tmpfs::mount("4m") else {
        return;
    };
    let dir = tempfile::TempDir::new_in(fs.path()).expect("dir on tmpfs");
    let server = TestServer::serving(dir, ServerConfig::default());
    let data = noise(3 * 1024 * 1024, 6);
    let half = 1024 * 1024;
    let request = Request::PutResumable {
        name: "big".into(),
        size: data.len() as u64,
        digest: digest(&data),
    };
    let mut cut = RawPeer::connect(server.addr);
    cut.send(&request);
    assert_eq!(cut.recv(), Response::ReadyFrom { offset: 0 });
    cut.send(&Body::Chunk(&data[..half]));
    drop(cut);
    server.wait_reports(1);
    assert_eq!(partials(server.root()).len(), 1);

    // Another program fills the disk: the 2 MiB still to come no longer fit.
    let filler = server.root().join("filler");
    std::fs::write(&filler, noise(2560 * 1024, 7)).expect("fill");
    let mut peer = RawPeer::connect(server.addr);
    peer.send(&request);
    match peer.recv() {
        Response::Error { kind, .. } => assert_eq!(kind, ErrorKind::NoSpace),
        other => panic!("expected no-space, got {other:?}"),
    }
    server.wait_reports(2);
    assert_eq!(partials(server.root()).len(), 1, "the partial was dropped");

    std::fs::remove_file(&filler).expect("rm");
    peer.send(&request);
    assert_eq!(
        peer.recv(),
        Response::ReadyFrom {
            offset: half as u64
        }
    );
    peer.send(&Body::Chunk(&data[half..2 * half]));
    peer.send(&Body::Chunk(&data[2 * half..]));
    peer.send(&Body::End {
        digest: digest(&data),
    });
    assert_eq!(
        peer.recv(),
        Response::Stored {
            size: data.len() as u64
        }
    );
    assert_eq!(
        std::fs::read(server.root().join("big")).expect("read"),
        data
    );
    assert!(partials(server.root()).is_empty());
}

/// A reader that yields nothing until its gate opens.
struct GatedReader<R> {
    gate: Option<std::sync::mpsc::Receiver<()>>,
    data: R,
}

impl<R: std::io::Read> std::io::Read for GatedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if let Some(gate) = self.gate.take() {
            let _ = gate.recv();
        }
        self.data.read(buf)
    }
}

#[test]
fn a_download_that_fills_the_local_disk_fails_cleanly() {
    let Some(fs) = Tmpfs::mount("1m") else {
        return;
    };
    let server = TestServer::start();
    server.write("big", &noise(3 * 1024 * 1024, 3));
    server.write("small", b"still fits");
    let local = DirStore::open(fs.path()).expect("local store");
    let mut client = server.client();
    let err = client
        .get("big", &local, false, |_| {})
        .expect_err("cannot fit");
    // Refused as soon as the size is known; the body was already coming, so the client
    // gave up that connection rather than read 3 MiB for nothing.
    assert_eq!(err.kind(), ErrorKind::NoSpace, "{err}");
    assert!(
        err.to_string().contains("not enough space for big"),
        "{err}"
    );
    assert!(!fs.path().join("big").exists());
    assert!(temp_files(fs.path()).is_empty());
    assert!(!client.is_open());
    server
        .client()
        .get("small", &local, false, |_| {})
        .expect("a new connection");
    assert_eq!(
        std::fs::read(fs.path().join("small")).expect("read"),
        b"still fits"
    );
}

/// Many small pipelined uploads into a disk that holds only some of them: each fits the
/// early check, and small files are written to disk only once their group is cut (ahead
/// of its commit, or at it), where the disk fills. Those that fit are stored intact; every other one fails as `no-space`,
/// naming the file, with nothing left behind; the connection goes on.
#[test]
fn small_files_that_fill_the_server_disk_fail_one_by_one() {
    let Some(fs) = Tmpfs::mount("512k") else {
        return;
    };
    let dir = tempfile::TempDir::new_in(fs.path()).expect("dir on tmpfs");
    let server = TestServer::serving(dir, ServerConfig::default());
    let local = tempfile::tempdir().expect("local");
    let count = 200;
    let files: Vec<(PathBuf, String)> = (0..count)
        .map(|i| {
            let name = format!("s{i:03}");
            let path = local.path().join(&name);
            std::fs::write(&path, noise(4096, i as u64)).expect("write");
            (path, name)
        })
        .collect();
    let mut results = Vec::new();
    let mut client = server.client();
    client.put_many(&files, |_, _| {}, |i, r| results.push((i, r)));
    assert_eq!(results.len(), count);
    let stored = results.iter().filter(|(_, r)| r.is_ok()).count();
    // 512 KiB holds at most 128 pages of 4 KiB; some must fit and some must not.
    assert!((1..count).contains(&stored), "{stored} of {count} stored");
    for (i, result) in &results {
        let name = &files[*i].1;
        match result {
            Ok(size) => {
                assert_eq!(*size, 4096);
                assert_eq!(
                    std::fs::read(server.root().join(name)).expect("stored"),
                    noise(4096, *i as u64)
                );
            }
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::NoSpace, "{name}: {e}");
                assert!(e.to_string().contains(name.as_str()), "{e}");
                assert!(!server.root().join(name).exists(), "{name}");
            }
        }
    }
    assert_no_temp_files(server.root());
    assert!(client.is_open(), "failed uploads keep the connection");
    assert!(client.list().is_ok());
}

/// A download into a directory on a read-only file system fails each file before it is
/// asked for: the server sends nothing (a 5 MB file, resumable or pipelined, would
/// otherwise cross the network first).
#[test]
fn a_download_into_a_read_only_directory_fails_before_its_bytes_move() {
    let Some(fs) = Tmpfs::mount_with("ro,size=1m") else {
        return;
    };
    let server = TestServer::start();
    std::fs::write(server.root().join("big.bin"), noise(5_000_000, 7)).expect("write");
    let local = DirStore::open(fs.path()).expect("open the read-only directory");
    for resume in [false, true] {
        let mut seen = Collect::default();
        let ok = Session::new("127.0.0.1", server.addr.port(), common::quick_config())
            .get(&["big.bin".to_owned()], &local, false, resume, &mut seen)
            .expect("reachable");
        assert!(!ok, "resume {resume}");
        assert_eq!(
            seen.kinds,
            vec![Some(ErrorKind::PermissionDenied)],
            "resume {resume}"
        );
    }
    // The server was asked for nothing: no report of a get at all.
    let mut client = server.client();
    client.list().expect("list");
    let reports = server.wait_reports(1);
    assert_eq!(
        reports.iter().map(|r| r.op).collect::<Vec<_>>(),
        vec![ftlib::Op::List],
        "{reports:?}"
    );
}

#[derive(Default)]
struct Collect {
    kinds: Vec<Option<ErrorKind>>,
}

impl ftlib::Observer for Collect {
    fn finished(&mut self, _item: usize, _report: ftlib::Report, error: Option<&ftlib::Error>) {
        self.kinds.push(error.map(ftlib::Error::kind));
    }
}
