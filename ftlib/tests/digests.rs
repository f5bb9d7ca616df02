//! Checksums a person can see: every report of a file moved carries its XXH3-128 as it
//! was verified end to end (client and server, put and get, pipelined, waited for and
//! resumed); the served directory keeps the digest of what it stored over 256 KiB
//! (`user.ft.xxh3`) and answers it without reading the file, but only while the file's
//! size and time are those it was stored with; a listing can carry every file's digest.

mod common;

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use common::{TestServer, quick_config};
use ft_testutil::{digest, noise};
use ftlib::protocol::ErrorKind;
use ftlib::store::{DIGEST_XATTR, DirStore};
use ftlib::{Error, Observer, Op, Report, ServerConfig, Session};

#[derive(Default)]
struct Collect {
    reports: Vec<Report>,
    digests: Vec<(String, Option<[u8; 16]>)>,
}

impl Observer for Collect {
    fn digest(&mut self, name: &str, digest: Result<[u8; 16], &Error>) {
        self.digests.push((name.to_owned(), digest.ok()));
    }

    fn finished(&mut self, _item: usize, report: Report, _error: Option<&Error>) {
        self.reports.push(report);
    }
}

fn session(server: &TestServer) -> Session {
    Session::new("127.0.0.1", server.addr.port(), quick_config())
}

/// The (name, digest) of each report of `op`, sorted by name.
fn digests_of(reports: &[Report], op: Op) -> Vec<(String, Option<[u8; 16]>)> {
    let mut got: Vec<_> = reports
        .iter()
        .filter(|r| r.op == op)
        .map(|r| (r.name.clone().unwrap_or_default(), r.digest))
        .collect();
    got.sort();
    got
}

#[test]
fn every_report_of_a_file_moved_carries_its_verified_digest() {
    let server = TestServer::start();
    let local = tempfile::tempdir().expect("tempdir");
    // Pipelined (small) and waited for (larger than a pipelined upload may be).
    let files = [
        ("small.txt", noise(1000, 1)),
        ("large.bin", noise(1_200_000, 2)),
    ];
    for (name, data) in &files {
        fs::write(local.path().join(name), data).expect("write");
    }
    let mut want: Vec<_> = files
        .iter()
        .map(|(name, data)| ((*name).to_owned(), Some(digest(data))))
        .collect();
    want.sort();
    let paths: Vec<_> = files.iter().map(|(n, _)| n.into()).collect();
    let mut put = Collect::default();
    let ok = session(&server)
        .put(&paths, local.path(), false, &mut put)
        .expect("reachable");
    assert!(ok, "{:?}", put.reports);
    assert_eq!(digests_of(&put.reports, Op::Put), want);

    for resume in [false, true] {
        let into = tempfile::tempdir().expect("tempdir");
        let dir = DirStore::open(into.path()).expect("local store");
        let names: Vec<String> = files.iter().map(|(n, _)| (*n).to_owned()).collect();
        let mut get = Collect::default();
        let ok = session(&server)
            .get(&names, &dir, false, resume, &mut get)
            .expect("reachable");
        assert!(ok, "{:?}", get.reports);
        assert_eq!(digests_of(&get.reports, Op::Get), want, "resume {resume}");
    }

    // A resumable upload, under another name.
    let mut resumed = Collect::default();
    let ok = session(&server)
        .put_as(
            Path::new("large.bin"),
            "again.bin",
            local.path(),
            true,
            &mut resumed,
        )
        .expect("reachable");
    assert!(ok, "{:?}", resumed.reports);
    assert_eq!(resumed.reports[0].digest, Some(digest(&files[1].1)));

    // The server's reports: each put stored, each get sent, with the same digest.
    let reports = server.wait_reports(7);
    let mut server_puts = digests_of(&reports, Op::Put);
    server_puts.retain(|(name, _)| name != "again.bin");
    assert_eq!(server_puts, want);
    let gets = digests_of(&reports, Op::Get);
    assert_eq!(gets.len(), 4, "{reports:?}");
    assert!(gets.iter().all(|g| want.contains(g)), "{gets:?}");
    assert!(reports.iter().filter(|r| r.op == Op::Get).all(|r| r.sent));
}

#[test]
fn failures_and_skips_carry_no_digest() {
    let server = TestServer::start();
    server.write("taken.txt", b"theirs");
    let local = tempfile::tempdir().expect("tempdir");
    fs::write(local.path().join("taken.txt"), b"mine!!").expect("write");
    let mut put = Collect::default();
    let ok = session(&server)
        .put(&["taken.txt".into()], local.path(), false, &mut put)
        .expect("reachable");
    assert!(!ok);
    assert_eq!(put.reports.len(), 1);
    assert!(!put.reports[0].is_success());
    assert_eq!(put.reports[0].digest, None);
    let dir = DirStore::open(local.path()).expect("local store");
    let mut get = Collect::default();
    session(&server)
        .get(&["absent".into()], &dir, false, false, &mut get)
        .expect("reachable");
    assert_eq!(get.reports[0].digest, None);
    // (The client's comparison of the taken file is reported too, as `stat`s.)
    let reports = server.wait_reports(4);
    let moves: Vec<_> = reports
        .iter()
        .filter(|r| matches!(r.op, Op::Put | Op::Get))
        .collect();
    assert_eq!(moves.len(), 2, "{reports:?}");
    assert!(moves.iter().all(|r| r.digest.is_none() && !r.is_success()));
}

/// Sets the modification time of `path` to `unix` seconds.
fn set_mtime(path: &Path, unix: u64) {
    fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(unix)))
        .expect("set time");
}

/// Replaces the digest kept with `path` by `forged`, sealed with the file's current size
/// and time (as the server would have), in the layout docs/PROTOCOL.md gives.
#[cfg(target_os = "linux")]
fn forge_kept_digest(path: &Path, forged: [u8; 16]) {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::metadata(path).expect("stat");
    let mut value = vec![1u8];
    value.extend_from_slice(&forged);
    value.extend_from_slice(&meta.len().to_le_bytes());
    value.extend_from_slice(&meta.mtime().to_le_bytes());
    value.extend_from_slice(&u32::try_from(meta.mtime_nsec()).expect("ns").to_le_bytes());
    rustix::fs::setxattr(path, DIGEST_XATTR, &value, rustix::fs::XattrFlags::empty())
        .expect("set the attribute");
}

/// What the server keeps and when it trusts it, shown through what `Stat` answers: a kept
/// digest is answered as it is (a forged one too, which shows the file was not read), and
/// not once the file's time or bytes changed; a file ft never stored is read.
#[cfg(target_os = "linux")]
#[test]
fn the_server_answers_the_digest_it_kept_only_while_the_file_is_unchanged() {
    let server = TestServer::start();
    let mut client = server.client();
    let data = noise(300_000, 3);
    client
        .put_reader(&data[..], data.len() as u64, "kept.bin", |_| {})
        .expect("put");
    let path = server.root().join("kept.bin");
    let mut buf = [0u8; 64];
    let Ok(len) = rustix::fs::getxattr(&path, DIGEST_XATTR, &mut buf[..]) else {
        // This file system keeps no extended attributes: every digest is read.
        let (_, got) = client.stat("kept.bin", true).expect("stat");
        assert_eq!(got, Some(digest(&data)));
        return;
    };
    assert_eq!(len, 37, "{:?}", &buf[..len]);
    assert_eq!(buf[0], 1);
    assert_eq!(buf[1..17], digest(&data));
    assert_eq!(buf[17..25], (data.len() as u64).to_le_bytes());

    let forged = [0x5a; 16];
    forge_kept_digest(&path, forged);
    assert_eq!(client.stat("kept.bin", true).expect("stat").1, Some(forged));
    // Another time, same bytes: read.
    set_mtime(&path, 1_000_000_000);
    assert_eq!(
        client.stat("kept.bin", true).expect("stat").1,
        Some(digest(&data))
    );
    // Sealed again, then the bytes change (same size): read.
    forge_kept_digest(&path, forged);
    let other = noise(300_000, 4);
    fs::write(&path, &other).expect("rewrite");
    assert_eq!(
        client.stat("kept.bin", true).expect("stat").1,
        Some(digest(&other))
    );
    // A small upload (256 KiB or less, held in memory until its commit) gets none: its
    // digest is read, which costs less than recording one at every upload.
    client
        .put_reader(&b"small"[..], 5, "small.txt", |_| {})
        .expect("put");
    let small = server.root().join("small.txt");
    assert!(rustix::fs::getxattr(&small, DIGEST_XATTR, &mut buf[..]).is_err());
    assert_eq!(
        client.stat("small.txt", true).expect("stat").1,
        Some(digest(b"small"))
    );
    // Written without ft: read.
    server.write("plain.txt", b"no digest kept");
    assert_eq!(
        client.stat("plain.txt", true).expect("stat").1,
        Some(digest(b"no digest kept"))
    );
}

/// `list_dir_digests` gives every file's digest (stored by ft or not, at any depth) and
/// none for directories; the report counts the entries.
#[test]
fn a_listing_with_digests_gives_every_files_own() {
    let server = TestServer::with_config(ServerConfig::default());
    let mut client = server.client();
    client
        .put_reader(&b"stored"[..], 6, "top/stored.txt", |_| {})
        .expect("put");
    fs::create_dir_all(server.root().join("top/sub")).expect("mkdir");
    server.write("top/sub/written.txt", b"written");
    server.write("outside.txt", b"not listed");
    let mut listed = Collect::default();
    let ok = session(&server)
        .list_dir_digests("top", true, &mut listed)
        .expect("reachable");
    assert!(ok, "{:?}", listed.reports);
    listed.digests.sort();
    assert_eq!(
        listed.digests,
        [
            ("stored.txt".to_owned(), Some(digest(b"stored"))),
            ("sub/written.txt".to_owned(), Some(digest(b"written"))),
        ]
    );
    assert_eq!(listed.reports[0].entries, Some(3));
    assert_eq!(listed.reports[0].digest, None);
}

/// A plain server sends a file of more than 256 KiB from the page cache (`sendfile`) with the
/// digest it kept at the upload, without reading the bytes, and a TLS server reads it (to
/// encrypt it) without hashing it: either way the client's check of that digest is what
/// verifies the bytes. Shown with a forged kept digest: the download of the large file
/// fails `checksum-mismatch` (whole and resumed), and a small file, which the server reads
/// and hashes, arrives intact all the same.
#[cfg(target_os = "linux")]
#[test]
fn a_server_sends_large_files_with_the_digest_it_kept() {
    for server in [
        TestServer::start(),
        TestServer::secure(ServerConfig::default()),
    ] {
        sends_large_files_with_the_digest_it_kept(&server);
    }
}

#[cfg(target_os = "linux")]
fn sends_large_files_with_the_digest_it_kept(server: &TestServer) {
    let mut client = server.client();
    let large = noise(1_000_000, 5);
    let small = noise(100_000, 6);
    for (name, data) in [("large.bin", &large), ("small.bin", &small)] {
        client
            .put_reader(&data[..], data.len() as u64, name, |_| {})
            .expect("put");
    }
    let local = tempfile::tempdir().expect("tempdir");
    let here = DirStore::open(local.path()).expect("dir");
    client.get("large.bin", &here, false, |_| {}).expect("get");
    assert_eq!(
        fs::read(local.path().join("large.bin")).expect("read"),
        large
    );
    if rustix::fs::getxattr(
        server.root().join("large.bin"),
        DIGEST_XATTR,
        &mut [0u8; 64][..],
    )
    .is_err()
    {
        // This file system keeps no extended attributes: every file is read and hashed.
        return;
    }

    for name in ["large.bin", "small.bin"] {
        forge_kept_digest(&server.root().join(name), [0x5a; 16]);
    }
    let mut client = server.client();
    let err = client
        .get("large.bin", &here, true, |_| {})
        .expect_err("the forged digest does not match the bytes");
    assert_eq!(err.kind(), ErrorKind::ChecksumMismatch, "{err}");
    // A partial the client kept of the first 300,000 bytes (PROTOCOL.md 12.1): the server
    // checks that prefix, then sends the rest from the page cache.
    let key: String = digest(b"large.bin")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    fs::write(
        local.path().join(format!(".ft-part-{key}")),
        &large[..300_000],
    )
    .expect("partial");
    let mut moved = None;
    let err = server
        .client()
        .get_resumable("large.bin", &here, true, |p| {
            moved.get_or_insert(p.done);
        })
        .expect_err("nor from an offset");
    assert_eq!(moved, Some(300_000), "continued from the partial");
    assert_eq!(err.kind(), ErrorKind::ChecksumMismatch, "{err}");
    assert_eq!(
        fs::read(local.path().join("large.bin")).expect("read"),
        large
    );
    server
        .client()
        .get("small.bin", &here, false, |_| {})
        .expect("a small file is read and hashed");
    assert_eq!(
        fs::read(local.path().join("small.bin")).expect("read"),
        small
    );
}
