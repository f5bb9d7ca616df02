//! Directory trees on a real server on loopback, through the library and raw frames
//! (issue 10): a symbolic link planted in the served root never leads a request outside
//! it, not even while a directory is swapped for one during transfers; a file never
//! replaces a directory nor a directory a file; `Stat` describes what a name is; a
//! recursive listing comes each directory before its contents, in bounded batches, from a
//! walk that holds little memory whatever the tree's size.

#![cfg(unix)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, Permissions};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{RawPeer, TestServer, assert_no_temp_files};
use ft_testutil::{Node, PeakAlloc, digest, noise, peak_allocation, tree};
use ftlib::protocol::{Body, Entry, EntryKind, ErrorKind, How, LIST_BATCH, Request, Response};
use ftlib::store::{DirStore, Store};
use ftlib::{Error, ServerConfig};

// Every allocation is counted per thread, so a walk's peak memory can be bounded.
#[global_allocator]
static ALLOCATOR: PeakAlloc = PeakAlloc;

/// What the outside of the served root holds: it must never appear in any answer.
const SECRET: &[u8] = b"TOP SECRET: outside the served root";

/// A served root and, beside it (not inside), a directory a link will point to.
struct Planted {
    server: TestServer,
    outside: tempfile::TempDir,
}

impl Planted {
    /// Serves a new root holding `real/ok.txt`, a link `link` to the outside directory and
    /// a link `flink` to the outside's `secret`; the outside also has a subdirectory `sub`.
    fn new() -> Planted {
        let outside = tempfile::tempdir().expect("tempdir");
        fs::write(outside.path().join("secret"), SECRET).expect("write");
        fs::create_dir(outside.path().join("sub")).expect("mkdir");
        fs::write(outside.path().join("sub/deeper"), SECRET).expect("write");
        let server = TestServer::serving(
            tempfile::tempdir().expect("tempdir"),
            ServerConfig::default(),
        );
        let root = server.root();
        fs::create_dir(root.join("real")).expect("mkdir");
        fs::write(root.join("real/ok.txt"), b"fine").expect("write");
        symlink(outside.path(), root.join("link")).expect("symlink");
        symlink(outside.path().join("secret"), root.join("flink")).expect("symlink");
        Planted { server, outside }
    }

    /// Everything about the outside a request could change: its tree (bytes and times of
    /// files) and the modification times of its directories.
    fn outside_state(&self) -> (BTreeMap<String, Node>, Vec<SystemTime>) {
        let dir = self.outside.path();
        let times = [dir.to_path_buf(), dir.join("sub")]
            .iter()
            .map(|d| fs::metadata(d).and_then(|m| m.modified()).expect("mtime"))
            .collect();
        (tree(dir), times)
    }
}

/// The kind and message of an error answer; panics on anything else.
fn refusal(response: Response) -> (ErrorKind, String) {
    match response {
        Response::Error { kind, message } => (kind, message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn remote_kind<T: std::fmt::Debug>(result: ftlib::Result<T>) -> (ErrorKind, String) {
    match result {
        Err(e @ Error::Remote { .. }) => (e.kind(), e.to_string()),
        other => panic!("expected the server to refuse, got {other:?}"),
    }
}

/// One row per request that would reach outside the root through a planted link, sent as
/// raw frames (the older `Put` and `PutPipelined` too): each refused with the documented
/// kind, its message saying why, nothing outside read, created or changed, and the
/// connection still serving.
#[test]
fn a_link_planted_in_the_root_is_never_followed_by_any_request() {
    let planted = Planted::new();
    let before = planted.outside_state();
    let body = b"new";
    let whole = digest(body);
    let not_served = "(symbolic links are not served)";
    let not_followed = "as a symbolic link, which ft does not follow";
    let get = |name: &str| Request::Get { name: name.into() };
    let stat = |name: &str| Request::Stat {
        name: name.into(),
        digest: true,
    };
    let list = |dir: &str, recursive| Request::ListDir {
        dir: dir.into(),
        recursive,
    };
    let upload = |name: &str, how| Request::Upload {
        name: name.into(),
        size: 3,
        attrs: None,
        how,
    };
    let mkdir = |name: &str| Request::MakeDir { name: name.into() };
    // (request, whether its body follows at once, kind, what the message says)
    let rows: Vec<(Request, bool, ErrorKind, &str)> = vec![
        (get("link/secret"), false, ErrorKind::NotFound, not_served),
        (
            get("link/sub/deeper"),
            false,
            ErrorKind::NotFound,
            not_served,
        ),
        (get("link"), false, ErrorKind::NotFound, not_served),
        (get("flink"), false, ErrorKind::NotFound, not_served),
        (
            Request::GetFrom {
                name: "link/secret".into(),
                offset: 4,
                prefix: digest(&SECRET[..4]),
            },
            false,
            ErrorKind::NotFound,
            not_served,
        ),
        (list("link", false), false, ErrorKind::NotFound, not_served),
        (list("link", true), false, ErrorKind::NotFound, not_served),
        (
            list("link/sub", true),
            false,
            ErrorKind::NotFound,
            not_served,
        ),
        (list("flink", false), false, ErrorKind::NotFound, not_served),
        (stat("link/secret"), false, ErrorKind::NotFound, not_served),
        (stat("link"), false, ErrorKind::NotFound, not_served),
        (stat("flink"), false, ErrorKind::NotFound, not_served),
        (
            Request::Put {
                name: "link/new".into(),
                size: 3,
            },
            false,
            ErrorKind::AlreadyExists,
            not_followed,
        ),
        (
            Request::PutResumable {
                name: "link/new".into(),
                size: 3,
                digest: whole,
            },
            false,
            ErrorKind::AlreadyExists,
            not_followed,
        ),
        (
            Request::PutPipelined {
                name: "link/new".into(),
                size: 3,
            },
            true,
            ErrorKind::AlreadyExists,
            not_followed,
        ),
        (
            upload("link/new", How::Wait),
            false,
            ErrorKind::AlreadyExists,
            not_followed,
        ),
        (
            upload("link/sub/new", How::Resumable { digest: whole }),
            false,
            ErrorKind::AlreadyExists,
            not_followed,
        ),
        (
            upload("link/new", How::Pipelined),
            true,
            ErrorKind::AlreadyExists,
            not_followed,
        ),
        (
            upload("flink/new", How::Wait),
            false,
            ErrorKind::AlreadyExists,
            not_followed,
        ),
        // Writing over the link itself: refused, the link and its target kept.
        (
            upload("flink", How::Wait),
            false,
            ErrorKind::AlreadyExists,
            "already exists",
        ),
        (
            mkdir("link/x"),
            false,
            ErrorKind::AlreadyExists,
            not_followed,
        ),
        (mkdir("link"), false, ErrorKind::AlreadyExists, not_followed),
        (
            mkdir("flink/x"),
            false,
            ErrorKind::AlreadyExists,
            not_followed,
        ),
    ];
    let mut peer = RawPeer::connect(planted.server.addr);
    for (request, with_body, kind, says) in rows {
        let shown = format!("{request:?}");
        peer.send(&request);
        if with_body {
            peer.send(&Body::Chunk(body));
            peer.send(&Body::End { digest: whole });
        }
        let (got, message) = refusal(peer.recv());
        assert_eq!(got, kind, "{shown}: {message}");
        assert!(message.contains(says), "{shown}: {message}");
        assert!(!message.contains("TOP SECRET"), "{shown}: {message}");
    }

    // Listings of the root, flat and whole, show neither link nor anything behind them.
    peer.send(&Request::List);
    let mut names = Vec::new();
    loop {
        match peer.recv() {
            Response::Entries(batch) => names.extend(batch.into_iter().map(|e| e.name)),
            Response::ListEnd { .. } => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(names, ["real"]);
    let mut client = planted.server.client();
    let mut names = Vec::new();
    client
        .list_dir_each("", true, |entry| names.push(entry.name))
        .expect("list -r");
    names.sort();
    assert_eq!(names, ["real", "real/ok.txt"]);

    // The same refusals through the library.
    let local = tempfile::tempdir().expect("tempdir");
    let here = DirStore::open(local.path()).expect("store");
    let (kind, _) = remote_kind(client.get("link/secret", &here, false, |_| {}));
    assert_eq!(kind, ErrorKind::NotFound);
    let mut got = Vec::new();
    let (kind, _) = remote_kind(client.get_into("flink", &mut got, |_| {}));
    assert_eq!(kind, ErrorKind::NotFound);
    assert!(got.is_empty());
    let (kind, _) = remote_kind(client.stat("link/secret", true));
    assert_eq!(kind, ErrorKind::NotFound);
    let (kind, _) = remote_kind(client.list_dir_each("link", false, |_| {}));
    assert_eq!(kind, ErrorKind::NotFound);
    let (kind, message) = remote_kind(client.put_reader(&body[..], 3, "link/new", |_| {}));
    assert_eq!(kind, ErrorKind::AlreadyExists, "{message}");
    let source = local.path().join("new");
    fs::write(&source, body).expect("write");
    let (kind, _) = remote_kind(client.put(&source, "link/new", |_| {}));
    assert_eq!(kind, ErrorKind::AlreadyExists);
    let (kind, _) = remote_kind(client.make_dir("link/x"));
    assert_eq!(kind, ErrorKind::AlreadyExists);
    let arrived: Vec<String> = tree(local.path())
        .into_iter()
        .filter(|(_, node)| *node != Node::Dir)
        .map(|(rel, _)| rel)
        .collect();
    assert_eq!(arrived, ["new"], "a file arrived");

    // The same requests inside the root succeed: the refusals were the links'.
    let mut ok = Vec::new();
    client
        .get_into("real/ok.txt", &mut ok, |_| {})
        .expect("get");
    assert_eq!(ok, b"fine");
    client.put(&source, "real/new", |_| {}).expect("put");
    assert!(client.make_dir("real/x").expect("mkdir"));
    assert_eq!(planted.outside_state(), before, "the outside changed");
    assert!(
        fs::symlink_metadata(planted.server.root().join("flink"))
            .expect("lstat")
            .file_type()
            .is_symlink(),
        "the link was replaced"
    );
}

/// Exchanges two names atomically, so `d` is always there: a directory or a link.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE).expect("renameat2(RENAME_EXCHANGE)");
}

/// What one worker saw during the swaps.
#[derive(Debug, Default)]
struct Seen {
    /// Uploads the server stored: name and bytes.
    stored: Vec<(String, Vec<u8>)>,
    /// Uploads refused, with the kind.
    refused: Vec<(String, ErrorKind)>,
    /// Anything else: a failure that was not a clean refusal.
    unclean: Vec<String>,
    /// Requests that read something.
    reads: usize,
}

impl Seen {
    fn record(&mut self, name: String, data: Vec<u8>, result: ftlib::Result<u64>) {
        match result {
            Ok(_) => self.stored.push((name, data)),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => self.refused.push((name, e.kind())),
            Err(e) => self.unclean.push(format!("put {name}: {e}")),
        }
    }
}

/// While one thread keeps exchanging the served directory `d` with a link to an outside
/// directory (atomically, so `d` is always one or the other), clients pipeline uploads
/// into `d`, upload one at a time, download, describe and list in it. Afterwards nothing
/// was created or changed outside; every upload either was stored in the real `d` with its
/// bytes or was refused cleanly; no read ever returned the outside's bytes or names; and
/// the server still serves.
#[cfg(target_os = "linux")]
#[test]
fn a_directory_swapped_for_a_link_during_transfers_never_leads_outside() {
    const READABLE: usize = 20;
    let outside = tempfile::tempdir().expect("tempdir");
    let server = TestServer::serving(
        tempfile::tempdir().expect("tempdir"),
        ServerConfig::default(),
    );
    let root = server.root().to_path_buf();
    let (real, other) = (root.join("d"), root.join("d-other"));
    fs::create_dir(&real).expect("mkdir");
    for j in 0..READABLE {
        fs::write(real.join(format!("g{j}")), format!("real g{j}")).expect("write");
        fs::write(outside.path().join(format!("g{j}")), SECRET).expect("write");
    }
    fs::write(outside.path().join("outside-only"), SECRET).expect("write");
    symlink(outside.path(), &other).expect("symlink");
    let before = (
        tree(outside.path()),
        fs::metadata(outside.path())
            .and_then(|m| m.modified())
            .expect("mtime"),
    );
    let sources = tempfile::tempdir().expect("tempdir");

    let stop = AtomicBool::new(false);
    let deadline = Instant::now() + Duration::from_secs(2);
    let connect = || server.client();
    let (swaps, seen) = std::thread::scope(|scope| {
        let swapper = scope.spawn(|| {
            let mut swaps = 0u32;
            while Instant::now() < deadline && swaps < 200_000 {
                exchange(&real, &other);
                swaps += 1;
            }
            if swaps % 2 == 1 {
                exchange(&real, &other);
                swaps += 1;
            }
            stop.store(true, Ordering::SeqCst);
            swaps
        });
        let pipelined = scope.spawn(|| {
            let mut seen = Seen::default();
            let mut client = connect();
            let mut next = 0;
            while !stop.load(Ordering::SeqCst) {
                let files: Vec<(PathBuf, String)> = (next..next + 32)
                    .map(|i| {
                        let path = sources.path().join(format!("a{i}"));
                        fs::write(&path, format!("pipelined a{i}")).expect("write");
                        (path, format!("d/a{i}"))
                    })
                    .collect();
                next += 32;
                let mut results = Vec::new();
                client.put_many(&files, |_, _| {}, |i, r| results.push((i, r)));
                for (i, result) in results {
                    let name = files[i].1.clone();
                    let data = fs::read(&files[i].0).expect("read");
                    seen.record(name, data, result);
                }
                if !client.is_open() {
                    seen.unclean.push("the pipelined connection broke".into());
                    client = connect();
                }
            }
            seen
        });
        let one_by_one = scope.spawn(|| {
            let mut seen = Seen::default();
            let mut client = connect();
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                let data = format!("one by one b{i}").into_bytes();
                let name = format!("d/b{i}");
                let result = client.put_reader(&data[..], data.len() as u64, &name, |_| {});
                seen.record(name, data, result);
                i += 1;
            }
            seen
        });
        let reader = scope.spawn(|| {
            let mut seen = Seen::default();
            let mut client = connect();
            let legit = |name: &str| {
                ["g", "a", "b"].iter().any(|p| name.starts_with(p)) && !name.contains('/')
            };
            let mut j = 0;
            while !stop.load(Ordering::SeqCst) {
                let name = format!("d/g{}", j % READABLE);
                let want = format!("real g{}", j % READABLE).into_bytes();
                let mut got = Vec::new();
                match client.get_into(&name, &mut got, |_| {}) {
                    Ok(_) if got == want => seen.reads += 1,
                    Ok(_) => seen
                        .unclean
                        .push(format!("get {name}: {}", String::from_utf8_lossy(&got))),
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => seen.unclean.push(format!("get {name}: {e}")),
                }
                match client.stat(&name, true) {
                    Ok((_, Some(d))) if d == digest(&want) => seen.reads += 1,
                    Ok(other) => seen.unclean.push(format!("stat {name}: {other:?}")),
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => seen.unclean.push(format!("stat {name}: {e}")),
                }
                let mut listed = Vec::new();
                match client.list_dir_each("d", j % 2 == 0, |e| listed.push(e.name)) {
                    Ok(_) => {
                        seen.reads += 1;
                        if let Some(bad) = listed.iter().find(|n| !legit(n)) {
                            seen.unclean.push(format!("list d showed {bad}"));
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => seen.unclean.push(format!("list d: {e}")),
                }
                if !client.is_open() {
                    seen.unclean.push("the reading connection broke".into());
                    client = connect();
                }
                j += 1;
            }
            seen
        });
        let swaps = swapper.join().expect("swapper");
        let seen: Vec<Seen> = [pipelined, one_by_one, reader]
            .into_iter()
            .map(|worker| worker.join().expect("worker"))
            .collect();
        (swaps, seen)
    });

    assert!(fs::symlink_metadata(&real).expect("lstat").is_dir());
    let unclean: Vec<&String> = seen.iter().flat_map(|s| &s.unclean).collect();
    assert!(unclean.is_empty(), "{unclean:?}");
    assert_eq!(
        (
            tree(outside.path()),
            fs::metadata(outside.path())
                .and_then(|m| m.modified())
                .expect("mtime")
        ),
        before,
        "something outside the root was created or changed"
    );
    // Every stored upload is in the real directory with its bytes; nothing else arrived.
    let mut want: BTreeSet<String> = (0..READABLE).map(|j| format!("g{j}")).collect();
    for (name, data) in seen.iter().flat_map(|s| &s.stored) {
        let path = root.join(name);
        assert_eq!(fs::read(&path).expect("a stored upload"), *data, "{name}");
        want.insert(name.trim_start_matches("d/").to_owned());
    }
    let have: BTreeSet<String> = ft_testutil::names_in(&real).into_iter().collect();
    assert_eq!(
        have, want,
        "refused uploads arrived, or stored ones are missing"
    );
    assert_no_temp_files(&root);
    assert_eq!(ft_testutil::names_in(&root), ["d", "d-other"]);

    // The race was run: the directory was swapped, uploads went through and were refused.
    let stored: usize = seen.iter().map(|s| s.stored.len()).sum();
    let refused: usize = seen.iter().map(|s| s.refused.len()).sum();
    let reads: usize = seen.iter().map(|s| s.reads).sum();
    assert!(swaps >= 100, "only {swaps} swaps");
    assert!(
        stored > 0 && refused > 0 && reads > 0,
        "{stored} stored, {refused} refused, {reads} reads"
    );

    // Still serving.
    let mut names = Vec::new();
    server
        .client()
        .list_dir_each("d", false, |e| names.push(e.name))
        .expect("list after the race");
    assert_eq!(names.len(), want.len());
}

/// A file never replaces a directory nor a directory a file, by any request; `Stat`
/// describes a directory and a file (kind, size, execute bit, time, and the file's
/// XXH3-128); a listing of a file, or through one, is `not-found`.
#[test]
fn files_and_directories_never_replace_each_other_and_stat_describes_them() {
    let server = TestServer::start();
    let root = server.root();
    fs::write(root.join("a"), b"a file").expect("write");
    fs::create_dir(root.join("dir")).expect("mkdir");
    fs::write(root.join("dir/inner.txt"), b"inner").expect("write");
    let run = noise(100_000, 7);
    fs::write(root.join("dir/run.sh"), &run).expect("write");
    fs::set_permissions(root.join("dir/run.sh"), Permissions::from_mode(0o755)).expect("chmod");
    let when = UNIX_EPOCH + Duration::new(1_234_567_890, 987_654_321);
    File::options()
        .write(true)
        .open(root.join("dir/run.sh"))
        .and_then(|f| f.set_modified(when))
        .expect("set the time");
    let before = tree(root);
    let mut client = server.client();

    // A file where a directory is, or under a file, in each kind of upload.
    let local = tempfile::tempdir().expect("tempdir");
    let source = local.path().join("x");
    fs::write(&source, b"x").expect("write");
    for (name, says) in [
        ("a/b", "a already exists and is not a directory"),
        ("a/b/c", "a already exists and is not a directory"),
        ("dir", "dir already exists as a directory"),
    ] {
        let (kind, message) = remote_kind(client.put(&source, name, |_| {}));
        assert_eq!(kind, ErrorKind::AlreadyExists, "{name}");
        assert!(message.contains(says), "{name}: {message}");
        let mut results = Vec::new();
        client.put_many(
            &[(source.clone(), name.to_owned())],
            |_, _| {},
            |_, r| results.push(r),
        );
        let [result] = <[_; 1]>::try_from(results).expect("one result");
        let (kind, message) = remote_kind(result);
        assert_eq!(kind, ErrorKind::AlreadyExists, "pipelined {name}");
        assert!(message.contains(says), "pipelined {name}: {message}");
    }
    // A directory where a file is, or under one.
    for (name, says) in [
        ("a", "a already exists and is not a directory"),
        ("a/x", "a already exists and is not a directory"),
        ("dir/inner.txt", "already exists and is not a directory"),
    ] {
        let (kind, message) = remote_kind(client.make_dir(name));
        assert_eq!(kind, ErrorKind::AlreadyExists, "{name}");
        assert!(message.contains(says), "{name}: {message}");
    }
    assert_eq!(tree(root), before, "something was replaced");
    assert!(client.is_open());

    // MakeDir: true when it made it (with its parents), false when it was there.
    assert!(!client.make_dir("dir").expect("mkdir"));
    assert!(client.make_dir("new/deep/er").expect("mkdir"));
    assert!(!client.make_dir("new/deep/er").expect("mkdir"));
    assert!(!client.make_dir("new/deep").expect("mkdir"));

    // Stat.
    let entry = |name: &str, kind, size, modified, executable| Entry {
        name: name.into(),
        kind,
        size,
        modified,
        executable,
    };
    let secs = |path: &str| {
        fs::metadata(root.join(path))
            .and_then(|m| m.modified())
            .expect("mtime")
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs() as i64
    };
    let rows = [
        (
            "dir/run.sh",
            true,
            entry("dir/run.sh", EntryKind::File, 100_000, 1_234_567_890, true),
            Some(digest(&run)),
        ),
        (
            "dir/run.sh",
            false,
            entry("dir/run.sh", EntryKind::File, 100_000, 1_234_567_890, true),
            None,
        ),
        (
            "a",
            true,
            entry("a", EntryKind::File, 6, secs("a"), false),
            Some(digest(b"a file")),
        ),
        (
            "dir",
            true,
            entry("dir", EntryKind::Dir, 0, secs("dir"), false),
            None,
        ),
        (
            "new/deep",
            true,
            entry("new/deep", EntryKind::Dir, 0, secs("new/deep"), false),
            None,
        ),
    ];
    for (name, with_digest, want, want_digest) in rows {
        let got = client.stat(name, with_digest).expect("stat");
        assert_eq!(got, (want, want_digest), "{name}");
    }
    for name in ["missing", "a/b", "dir/missing", "new/deep/er/x"] {
        let (kind, _) = remote_kind(client.stat(name, true));
        assert_eq!(kind, ErrorKind::NotFound, "stat {name}");
    }

    // A listing of a file, or through one, finds no directory.
    for (dir, recursive) in [
        ("a", false),
        ("a", true),
        ("dir/inner.txt", true),
        ("a/b", false),
    ] {
        let (kind, message) = remote_kind(client.list_dir_each(dir, recursive, |_| {}));
        assert_eq!(kind, ErrorKind::NotFound, "list {dir}");
        assert!(message.contains("not found"), "list {dir}: {message}");
    }
    assert!(client.is_open());
}

/// Builds a tree of nested directories (some empty) and files under `root`.
fn nested(root: &Path) {
    for path in ["t/x/y/z/f1", "t/x/f2", "t/x/y/f3", "t/w/v/u/f4", "top.txt"] {
        let path = root.join(path);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(&path, path.to_string_lossy().as_bytes()).expect("write");
    }
    for dir in ["t/empty", "t/x/y/z/empty", "e1/e2/e3"] {
        fs::create_dir_all(root.join(dir)).expect("mkdir");
    }
}

/// Fails unless every entry of `names` (in the order listed) comes after the entry of its
/// directory, and no name comes twice.
fn assert_directories_first(names: &[(String, EntryKind)]) {
    let mut dirs = BTreeSet::new();
    let mut all = BTreeSet::new();
    for (name, kind) in names {
        assert!(all.insert(name.clone()), "{name} listed twice");
        if let Some((parent, _)) = name.rsplit_once('/') {
            assert!(
                dirs.contains(parent),
                "{name} came before {parent}: {names:?}"
            );
        }
        if *kind == EntryKind::Dir {
            dirs.insert(name.clone());
        }
    }
}

/// A recursive listing: everything (empty directories too), each directory's entry before
/// what it holds, names relative to the directory listed.
#[test]
fn a_recursive_listing_has_each_directory_before_its_contents() {
    let server = TestServer::start();
    nested(server.root());
    let mut client = server.client();
    for (dir, prefix) in [("", ""), ("t", "t/"), ("t/x", "t/x/")] {
        let mut listed = Vec::new();
        client
            .list_dir_each(dir, true, |e| listed.push((e.name, e.kind)))
            .expect("list -r");
        assert_directories_first(&listed);
        let mut names: Vec<String> = listed.into_iter().map(|(name, _)| name).collect();
        names.sort();
        let want: Vec<String> = tree(server.root())
            .into_keys()
            .filter_map(|rel| rel.strip_prefix(prefix).map(str::to_owned))
            .filter(|rel| !rel.is_empty())
            .collect();
        assert_eq!(names, want, "list -r {dir:?}");
    }
}

/// A recursive listing of 20,000 files in 40 directories: the store's walk holds little
/// memory at any time (a listing collected whole would hold over a megabyte), and the
/// server sends it in batches of at most LIST_BATCH entries, each directory first, the
/// count at the end matching what came.
#[test]
fn a_large_recursive_listing_is_walked_in_little_memory_and_sent_in_bounded_batches() {
    const DIRS: usize = 40;
    const PER_DIR: usize = 500;
    let server = TestServer::start();
    for d in 0..DIRS {
        let dir = server.root().join(format!("dir{d:02}"));
        fs::create_dir(&dir).expect("mkdir");
        for i in 0..PER_DIR {
            File::create(dir.join(format!("file{i:04}"))).expect("create");
        }
    }
    let total = DIRS + DIRS * PER_DIR;

    let store = DirStore::open(server.root()).expect("store");
    let (walked, peak) = peak_allocation(|| {
        let mut count = 0;
        for entry in store.list(None, true).expect("list") {
            entry.expect("entry");
            count += 1;
        }
        count
    });
    assert_eq!(walked, total);
    assert!(peak < 256 * 1024, "the walk held {peak} bytes at once");

    let mut peer = RawPeer::connect(server.addr);
    peer.send(&Request::ListDir {
        dir: String::new(),
        recursive: true,
    });
    let mut listed = Vec::with_capacity(total);
    let mut batches = 0;
    let count = loop {
        match peer.recv() {
            Response::Listing(batch) => {
                assert!(
                    (1..=LIST_BATCH).contains(&batch.len()),
                    "a batch of {}",
                    batch.len()
                );
                batches += 1;
                listed.extend(batch.into_iter().map(|e| (e.name, e.kind)));
            }
            Response::ListEnd { count } => break count,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!((count, listed.len()), (total as u64, total));
    assert!(batches >= total.div_ceil(LIST_BATCH), "{batches} batches");
    assert_directories_first(&listed);
    // The connection goes on.
    peer.send(&Request::Stat {
        name: "dir00/file0000".into(),
        digest: false,
    });
    assert!(matches!(peer.recv(), Response::Described { .. }));
}

/// A download that fails leaves nothing behind, as [`ftlib::Client::get`] promises: not
/// even the local directories a name in a server directory would have needed.
#[test]
fn a_failed_get_of_a_path_leaves_no_directory_behind() {
    let server = TestServer::start();
    let mut client = server.client();
    let local = tempfile::tempdir().expect("tempdir");
    let here = DirStore::open(local.path()).expect("store");
    let (kind, _) = remote_kind(client.get("no/such/file", &here, false, |_| {}));
    assert_eq!(kind, ErrorKind::NotFound);
    assert_eq!(ft_testutil::names_in(local.path()), Vec::<String>::new());
}

/// Records what a tree upload tells its observer.
struct Counting {
    wants: bool,
    totals: Vec<(usize, u64)>,
    reports: Vec<ftlib::Report>,
}

impl ftlib::Observer for Counting {
    fn totals(&mut self, files: usize, bytes: u64) {
        self.totals.push((files, bytes));
    }

    fn wants_totals(&self) -> bool {
        self.wants
    }

    fn finished(&mut self, _item: usize, report: ftlib::Report, _error: Option<&Error>) {
        self.reports.push(report);
    }
}

#[test]
fn a_tree_upload_counts_its_files_first_only_for_an_observer_that_wants_totals() {
    let local = tempfile::tempdir().expect("tempdir");
    let top = local.path().join("top");
    fs::create_dir_all(top.join("a/b")).expect("mkdir");
    fs::create_dir_all(top.join("empty")).expect("mkdir");
    let files = [("one", 10), ("a/two", 2000), ("a/b/three", 70_000)];
    for (i, (name, size)) in files.iter().enumerate() {
        fs::write(top.join(name), noise(*size, i as u64)).expect("write");
    }
    let bytes: u64 = files.iter().map(|(_, size)| *size as u64).sum();
    for (wants, expected) in [(true, (3, bytes)), (false, (0, 0))] {
        let server = TestServer::start();
        let mut observer = Counting {
            wants,
            totals: Vec::new(),
            reports: Vec::new(),
        };
        let ok = ftlib::Session::new("127.0.0.1", server.addr.port(), common::quick_config())
            .put_tree(
                &[PathBuf::from("top")],
                None,
                local.path(),
                false,
                &mut observer,
            )
            .expect("reachable");
        assert!(ok, "{:?}", observer.reports);
        assert_eq!(observer.totals, [expected], "wants totals: {wants}");
        // Counted or not, the whole tree went, its empty directory too.
        assert_eq!(
            tree(&server.root().join("top")),
            tree(&top),
            "wants totals: {wants}"
        );
        assert!(server.root().join("top/empty").is_dir());
        assert_eq!(observer.reports.len(), files.len());
    }
}
