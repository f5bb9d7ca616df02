//! Directory trees with the real `ftclient` and `ftserver` processes (issue 10): `put -r`
//! and `get -r` move a tree intact (bytes, times, execute bits, empty files and
//! directories) and never follow a local symbolic link; a re-run skips what is already
//! there and refuses what differs; an interrupted `put -r` run again completes; `--to`,
//! `get DIR/FILE` and `list [-r] DIR` find things where they are.

#![cfg(unix)]

mod util;

use std::collections::BTreeMap;
use std::fs::{self, File, Permissions};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use util::{
    DEADLINE, Fixture, Node, Outcome, Output, Reported, assert_success, file_ids, ftclient,
    isolate, names_in, noise, reported, tree, wait_until,
};

/// The tree most tests move: spaces and unicode in its own name and below.
const TOP: &str = "fotos été 2024";

/// Why a local symbolic link is skipped, as the report says.
const LINK_SKIPPED: &str = "a symbolic link (not followed)";

/// 2001-09-09T01:46:40.123456789Z: an old time with nanoseconds.
fn old_time() -> SystemTime {
    UNIX_EPOCH + Duration::new(1_000_000_000, 123_456_789)
}

/// Half a second into 1969-01-01: before the epoch, with nanoseconds.
fn pre_epoch_time() -> SystemTime {
    UNIX_EPOCH - Duration::new(31_535_999, 500_000_000)
}

fn write(path: &Path, data: &[u8]) {
    fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
    fs::write(path, data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

fn set_modified(path: &Path, time: SystemTime) {
    File::options()
        .write(true)
        .open(path)
        .and_then(|file| file.set_modified(time))
        .unwrap_or_else(|e| panic!("set the time of {}: {e}", path.display()));
}

/// Builds at `top` a tree with nesting, unicode and spaces, an empty file, a file over the
/// pipelined size, empty directories (one a chain of them), an executable with an old
/// time, a file older than the epoch, and two symbolic links: one to a file inside, one
/// to `outside` (a directory holding a file).
fn build_tree(top: &Path, outside: &Path) {
    write(&top.join("día 1/ünïcødé näme.jpg"), &noise(70_000, 1));
    write(&top.join("día 1/a b c.txt"), b"hello\n");
    write(&top.join("día 1/deeper/still/leaf.bin"), &noise(1_000, 2));
    write(&top.join("empty.txt"), b"");
    write(&top.join("big.bin"), &noise(1_500_000, 3));
    let run = top.join("bin/run me.sh");
    write(&run, b"#!/bin/sh\necho hi\n");
    fs::set_permissions(&run, Permissions::from_mode(0o755)).expect("chmod");
    set_modified(&run, old_time());
    let old = top.join("old.txt");
    write(&old, b"older than the epoch\n");
    set_modified(&old, pre_epoch_time());
    for dir in ["empty dir", "día 1/nothing here", "deep/empty/chain"] {
        fs::create_dir_all(top.join(dir)).expect("mkdir");
    }
    write(&outside.join("outside.txt"), b"never uploaded");
    symlink("bin/run me.sh", top.join("link to run")).expect("symlink");
    symlink(outside, top.join("día 1/outside")).expect("symlink");
}

/// What must arrive of the local tree at `top`: everything but its symbolic links.
fn expected(top: &Path) -> BTreeMap<String, Node> {
    let mut want = tree(top);
    want.retain(|_, node| !matches!(node, Node::Symlink(_)));
    assert!(
        want.values().any(|n| matches!(n, Node::File { .. })),
        "an empty tree tests nothing"
    );
    want
}

/// The paths of `top`'s regular files and of its links, each as `TOP/PATH`.
fn files_and_links(top: &Path) -> (Vec<String>, Vec<String>) {
    let (mut files, mut links) = (Vec::new(), Vec::new());
    for (rel, node) in tree(top) {
        match node {
            Node::File { .. } => files.push(format!("{TOP}/{rel}")),
            Node::Symlink(_) => links.push(format!("{TOP}/{rel}")),
            _ => {}
        }
    }
    (files, links)
}

/// Each report line's outcome by name; fails on a name reported twice.
fn outcomes(out: &Output) -> BTreeMap<String, Outcome> {
    let mut by_name = BTreeMap::new();
    for line in reported(&out.stdout) {
        let Reported { name, outcome, .. } = line;
        assert!(
            by_name.insert(name.clone(), outcome).is_none(),
            "{name} reported twice: {out:?}"
        );
    }
    by_name
}

/// `ftclient 127.0.0.1 PORT ARGS… --dir DIR`, trusting the fixture's server.
fn ft_in(f: &Fixture, dir: &Path, args: &[&str]) -> Output {
    let mut all: Vec<std::ffi::OsString> = vec!["127.0.0.1".into(), f.port().into()];
    all.extend(args.iter().map(Into::into));
    all.extend(["--dir".into(), dir.into()]);
    f.ft_raw(all)
}

/// A listing that succeeded: exit 0, and its one report line (on stderr) a success.
fn assert_listed(out: &Output) {
    assert_eq!(out.code, Some(0), "stderr {:?}", out.stderr);
    let lines = reported(&out.stderr);
    assert!(
        matches!(&lines[..], [line] if line.op == "list" && line.outcome == Outcome::Success),
        "{out:?}"
    );
}

fn fresh_dir(f: &Fixture, name: &str) -> PathBuf {
    let dir = f.base.path().join(name);
    fs::create_dir(&dir).expect("mkdir");
    dir
}

#[test]
fn a_tree_goes_up_and_comes_back_intact_and_links_are_skipped() {
    let f = Fixture::new();
    let top = f.local().join(TOP);
    build_tree(&top, &f.base.path().join("outside"));
    let want = expected(&top);
    let (files, links) = files_and_links(&top);
    assert_eq!(links.len(), 2);

    let out = f.ft(&["put", "-r", TOP]);
    assert_success(&out);
    let got = outcomes(&out);
    assert_eq!(
        got.len(),
        files.len() + links.len(),
        "one line each: {out:?}"
    );
    for file in &files {
        assert_eq!(got.get(file), Some(&Outcome::Success), "{file}: {out:?}");
    }
    for link in &links {
        let skipped = Outcome::Skipped(LINK_SKIPPED.into());
        assert_eq!(got.get(link), Some(&skipped), "{link}: {out:?}");
    }
    // Bytes, times to the nanosecond the file system keeps, execute bits, empty files and
    // directories; no link, and nothing of what the outside link points to.
    assert_eq!(tree(&f.served().join(TOP)), want);
    assert_eq!(names_in(&f.served()), [TOP], "nothing beside the tree");

    let down = fresh_dir(&f, "down");
    let out = ft_in(&f, &down, &["get", "-r", TOP]);
    assert_success(&out);
    let got = outcomes(&out);
    let names: Vec<&String> = got.keys().collect();
    let mut want_names: Vec<&String> = files.iter().collect();
    want_names.sort();
    assert_eq!(names, want_names, "one line per file: {out:?}");
    assert!(got.values().all(|o| *o == Outcome::Success), "{out:?}");
    assert_eq!(tree(&down.join(TOP)), want);
    assert_eq!(names_in(&down), [TOP], "nothing beside the tree");
}

#[test]
fn a_rerun_skips_identical_files_and_refuses_changed_ones_both_ways() {
    let f = Fixture::new();
    let top = f.local().join(TOP);
    build_tree(&top, &f.base.path().join("outside"));
    let want = expected(&top);
    let (files, links) = files_and_links(&top);
    let down = fresh_dir(&f, "down");
    assert_success(&f.ft(&["put", "-r", TOP]));
    assert_success(&ft_in(&f, &down, &["get", "-r", TOP]));
    let served_ids = file_ids(&f.served().join(TOP));
    let down_ids = file_ids(&down.join(TOP));

    // The same commands again: everything is there, nothing moves or is rewritten.
    let out = f.ft(&["put", "-r", TOP]);
    assert_success(&out);
    let got = outcomes(&out);
    assert_eq!(got.len(), files.len() + links.len(), "{out:?}");
    for file in &files {
        let skipped = Outcome::Skipped("identical".into());
        assert_eq!(got.get(file), Some(&skipped), "{file}: {out:?}");
    }
    assert!(
        reported(&out.stdout).iter().all(|l| l.count == 0),
        "{out:?}"
    );
    assert_eq!(file_ids(&f.served().join(TOP)), served_ids, "rewritten");
    let out = ft_in(&f, &down, &["get", "-r", TOP]);
    assert_success(&out);
    let got = outcomes(&out);
    assert_eq!(got.len(), files.len(), "{out:?}");
    for file in &files {
        let skipped = Outcome::Skipped("identical".into());
        assert_eq!(got.get(file), Some(&skipped), "{file}: {out:?}");
    }
    assert_eq!(file_ids(&down.join(TOP)), down_ids, "rewritten");

    // One file changed in place (same size, other bytes), one grown from empty: each is
    // refused, never overwritten, and the rest still skipped.
    let changed = ["día 1/a b c.txt", "empty.txt"];
    let new_bytes: [&[u8]; 2] = [b"HELLO\n", b"not empty any more\n"];
    for (rel, data) in changed.iter().zip(new_bytes) {
        fs::write(top.join(rel), data).expect("write");
        fs::write(down.join(TOP).join(rel), data).expect("write");
    }
    let changed: Vec<String> = changed.iter().map(|rel| format!("{TOP}/{rel}")).collect();
    let down_ids = file_ids(&down.join(TOP));
    let down_tree = tree(&down.join(TOP));
    for (out, side) in [
        (f.ft(&["put", "-r", TOP]), "put"),
        (ft_in(&f, &down, &["get", "-r", TOP]), "get"),
    ] {
        assert_eq!(out.code, Some(1), "{side}: {out:?}");
        let got = outcomes(&out);
        for file in &files {
            match got.get(file) {
                Some(Outcome::Failure { kind, message }) if changed.contains(file) => {
                    assert_eq!(kind, "already-exists", "{side} {file}: {out:?}");
                    assert!(message.contains("already exists"), "{side}: {message}");
                }
                Some(Outcome::Skipped(reason)) if !changed.contains(file) => {
                    assert_eq!(reason, "identical", "{side} {file}: {out:?}");
                }
                other => panic!("{side} {file}: {other:?} in {out:?}"),
            }
        }
    }
    assert_eq!(
        tree(&f.served().join(TOP)),
        want,
        "the server's copy changed"
    );
    assert_eq!(file_ids(&f.served().join(TOP)), served_ids, "rewritten");
    assert_eq!(tree(&down.join(TOP)), down_tree, "the local copy changed");
    assert_eq!(file_ids(&down.join(TOP)), down_ids, "rewritten");
}

/// `put -r` of a tree of many small files and a few large ones, killed outright (SIGKILL)
/// once its first report lines are out, then run again: the second run completes it.
#[test]
fn an_interrupted_put_r_run_again_completes_the_tree() {
    const DIRS: usize = 30;
    const PER_DIR: usize = 100;
    let f = Fixture::new();
    let top = f.local().join("many");
    for d in 0..DIRS {
        for i in 0..PER_DIR {
            let len = (d * PER_DIR + i) % 3000;
            let seed = (d * PER_DIR + i) as u64;
            write(&top.join(format!("d{d:02}/f{i:03}.txt")), &noise(len, seed));
        }
    }
    for i in 0..3 {
        write(&top.join(format!("big/{i}.bin")), &noise(3 << 20, 100 + i));
    }
    let want = tree(&top);
    let files = want
        .values()
        .filter(|n| matches!(n, Node::File { .. }))
        .count();

    let home = tempfile::tempdir().expect("a home for ftclient");
    let mut command = Command::new(ftclient());
    isolate(&mut command, home.path());
    let mut child = command
        .args(f.args(&["put", "-r", "many"]))
        .args(f.trust())
        .current_dir(f.cwd())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ftclient");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    for _ in 0..3 {
        let line = rx
            .recv_timeout(DEADLINE)
            .expect("ftclient reported nothing");
        assert!(
            matches!(Reported::parse(&line).outcome, Outcome::Success),
            "{line}"
        );
    }
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("wait");
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
    let arrived = tree(&f.served().join("many"))
        .values()
        .filter(|n| matches!(n, Node::File { .. }))
        .count();
    assert!(
        arrived < files,
        "all {files} files arrived before the kill: nothing was interrupted"
    );

    let out = f.ft(&["put", "-r", "many"]);
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (Some(0), ""),
        "the second run"
    );
    let lines = reported(&out.stdout);
    assert_eq!(lines.len(), files, "one line per file");
    let skipped = Outcome::Skipped("identical".into());
    for line in &lines {
        assert!(
            line.outcome == Outcome::Success || line.outcome == skipped,
            "{line:?}"
        );
    }
    assert!(
        lines.iter().filter(|l| l.outcome == skipped).count() >= 3,
        "the files reported before the kill are skipped now"
    );
    assert_eq!(tree(&f.served().join("many")), want);

    // Listings never show ft's own files, and the server discarded what the kill cut.
    let out = f.ft(&["list", "-r", "many"]);
    assert_listed(&out);
    let mut listed: Vec<&str> = out.stdout.lines().collect();
    listed.sort_unstable();
    let mut want_listed: Vec<String> = want
        .iter()
        .map(|(rel, node)| match node {
            Node::Dir => format!("{rel}/"),
            _ => rel.clone(),
        })
        .collect();
    want_listed.sort_unstable();
    assert_eq!(listed, want_listed);
    wait_until("the server to discard the interrupted upload", || {
        tree(&f.served()).keys().all(|rel| !rel.contains(".ft-"))
    });
}

#[test]
fn to_places_trees_and_files_and_get_and_list_find_them() {
    let f = Fixture::new();
    let pics = f.local().join("pics");
    write(&pics.join("a.txt"), b"a");
    write(&pics.join("sub/b.txt"), b"bb");
    fs::create_dir(pics.join("sub/empty")).expect("mkdir");
    write(&f.local().join("note.txt"), b"note");

    let out = f.ft(&["put", "-r", "pics", "--to", "a/b"]);
    assert_success(&out);
    let out = f.ft(&["put", "note.txt", "--to", "a"]);
    assert_success(&out);
    assert_eq!(
        reported(&out.stdout)
            .iter()
            .map(|l| (l.name.as_str(), &l.outcome))
            .collect::<Vec<_>>(),
        [("a/note.txt", &Outcome::Success)]
    );
    let served: Vec<(String, Node)> = tree(&f.served())
        .into_iter()
        .map(|(rel, node)| {
            let shown = match node {
                Node::File { len, .. } => Node::File {
                    len,
                    digest: 0,
                    modified: UNIX_EPOCH,
                    executable: false,
                },
                other => other,
            };
            (rel, shown)
        })
        .collect();
    let file = |len| Node::File {
        len,
        digest: 0,
        modified: UNIX_EPOCH,
        executable: false,
    };
    let want = [
        ("a", Node::Dir),
        ("a/b", Node::Dir),
        ("a/b/pics", Node::Dir),
        ("a/b/pics/a.txt", file(1)),
        ("a/b/pics/sub", Node::Dir),
        ("a/b/pics/sub/b.txt", file(2)),
        ("a/b/pics/sub/empty", Node::Dir),
        ("a/note.txt", file(4)),
    ]
    .map(|(rel, node)| (rel.to_owned(), node));
    assert_eq!(served, want);
    assert_eq!(f.served_bytes("a/b/pics/sub/b.txt"), b"bb");

    let out = f.ft(&["list", "a/b"]);
    assert_listed(&out);
    assert_eq!(out.stdout, "pics/\n");
    let out = f.ft(&["list", "-r", "a"]);
    assert_listed(&out);
    let mut listed: Vec<&str> = out.stdout.lines().collect();
    listed.sort_unstable();
    assert_eq!(
        listed,
        [
            "b/",
            "b/pics/",
            "b/pics/a.txt",
            "b/pics/sub/",
            "b/pics/sub/b.txt",
            "b/pics/sub/empty/",
            "note.txt"
        ]
    );
    let out = f.ft(&["list", "-r", "-l", "--bytes", "a/b/pics"]);
    assert_listed(&out);
    let rows: Vec<(String, String, String)> = out
        .stdout
        .lines()
        .map(|row| {
            let cols: Vec<&str> = row.split_whitespace().collect();
            let (kind, size, name) = (cols[0], cols[1], cols[cols.len() - 1]);
            (kind.to_owned(), size.to_owned(), name.to_owned())
        })
        .collect();
    let rows: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|(k, s, n)| (k.as_str(), s.as_str(), n.as_str()))
        .collect();
    assert_eq!(
        rows,
        [
            ("file", "1", "a.txt"),
            ("dir", "-", "sub/"),
            ("file", "2", "sub/b.txt"),
            ("dir", "-", "sub/empty/"),
        ]
    );

    // A file in a server directory arrives as its own name, alone.
    let down = fresh_dir(&f, "down");
    let out = ft_in(&f, &down, &["get", "a/b/pics/sub/b.txt"]);
    assert_success(&out);
    assert_eq!(names_in(&down), ["b.txt"]);
    assert_eq!(fs::read(down.join("b.txt")).expect("read"), b"bb");

    // A directory without -r: that item fails, saying what to type; a file beside it
    // goes up (a glob of files and directories, `put ./*`).
    let before = tree(&f.served());
    let out = f.ft(&["put", "pics", "note.txt", "--to", "mixed"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(
        outcomes(&out).into_iter().collect::<Vec<_>>(),
        vec![
            ("mixed/note.txt".to_owned(), Outcome::Success),
            (
                "mixed/pics".to_owned(),
                Outcome::Failure {
                    kind: "not-found".into(),
                    message: format!(
                        "{} not found (not a regular file); it is a directory: upload it \
                         with put -r",
                        f.local().join("pics").display()
                    ),
                }
            ),
        ],
        "{out:?}"
    );
    let mut want = before.clone();
    want.insert("mixed".into(), Node::Dir);
    want.insert(
        "mixed/note.txt".into(),
        tree(&f.served())
            .remove("mixed/note.txt")
            .expect("uploaded"),
    );
    assert_eq!(tree(&f.served()), want);

    // With -r, a file among the trees goes up as itself, and a symbolic link named on the
    // command line is followed, as `put` follows it.
    symlink("note.txt", f.local().join("link to note")).expect("symlink");
    let out = f.ft(&[
        "put",
        "-r",
        "pics",
        "note.txt",
        "link to note",
        "--to",
        "both",
    ]);
    assert_success(&out);
    assert_eq!(f.served_bytes("both/note.txt"), b"note");
    assert_eq!(f.served_bytes("both/link to note"), b"note");
    assert_eq!(f.served_bytes("both/pics/sub/b.txt"), b"bb");

    // get -r of a file, and of nothing: a clear failure each, nothing written.
    let empty = fresh_dir(&f, "empty");
    for (name, why) in [
        ("a/note.txt", "a/note.txt not found (it is not a directory)"),
        ("missing", "missing not found"),
    ] {
        let out = ft_in(&f, &empty, &["get", "-r", name]);
        assert_eq!(out.code, Some(1), "{out:?}");
        let lines = reported(&out.stdout);
        assert_eq!(lines.len(), 1, "{out:?}");
        assert_eq!(
            (lines[0].op.as_str(), lines[0].name.as_str()),
            ("get", name)
        );
        match &lines[0].outcome {
            Outcome::Failure { kind, message } => {
                assert_eq!(kind, "not-found", "{out:?}");
                assert!(message.contains(why), "{message}");
            }
            other => panic!("{name}: {other:?}"),
        }
        assert!(names_in(&empty).is_empty(), "{name} wrote something");
    }
}

/// Every report line names the server's address, as for single files, even an item
/// reported before the first connection (a skipped link, a tree that is not there).
#[test]
fn every_report_line_of_a_tree_names_the_server() {
    let f = Fixture::new();
    let top = f.local().join(TOP);
    build_tree(&top, &f.base.path().join("outside"));
    let out = f.ft(&["put", "-r", TOP, "missing"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let lines = reported(&out.stdout);
    assert!(
        lines
            .iter()
            .any(|l| matches!(l.outcome, Outcome::Skipped(_))),
        "{out:?}"
    );
    for line in lines {
        assert_eq!(line.ip, "127.0.0.1", "{line:?}");
    }
}

/// `put -r .` (and `..`) uploads the directory it is run in (the parent), named after it,
/// not `--dir`; `/` has no name and is refused before anything is sent.
#[test]
fn a_tree_named_dot_is_the_directory_it_is() {
    let f = Fixture::new();
    let proj = f.cwd().join("proj");
    write(&proj.join("a.txt"), b"a\n");
    write(&proj.join("sub/b.txt"), b"b\n");
    // A decoy in --dir: `.` must not be looked up there as a plain name is.
    write(&f.local().join("decoy.txt"), b"not this\n");
    let run_in =
        |cwd: &Path, args: &[&str]| util::ftclient_in(cwd, [f.args(args), f.trust()].concat());
    let out = run_in(&proj, &["put", "-r", ".", "--to", "one"]);
    assert_success(&out);
    assert_eq!(names_in(&f.served().join("one")), vec!["proj"]);
    assert_eq!(tree(&f.served().join("one/proj")), tree(&proj));
    let out = run_in(&proj.join("sub"), &["put", "-r", "..", "--to", "two"]);
    assert_success(&out);
    assert_eq!(
        fs::read(f.served().join("two/proj/sub/b.txt")).expect("read"),
        b"b\n"
    );
    let out = run_in(&proj, &["put", "-r", "/"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let refused = outcomes(&out).into_values().collect::<Vec<_>>();
    assert!(
        matches!(&refused[..], [Outcome::Failure { kind, .. }] if kind == "invalid-name"),
        "{out:?}"
    );
    assert_eq!(names_in(&f.served()), vec!["one", "two"]);
}

/// A directory the server may not read (its process runs as `nobody`, the directory is
/// root's, mode 0700): `list -r` and `get -r` get everything else, then fail naming it,
/// exit 1 — never a listing that silently left it out. One it may not write: uploads are
/// refused before their bytes. Needs root and `setpriv`, as CI has; skipped elsewhere.
#[cfg(target_os = "linux")]
#[test]
fn directories_the_server_may_not_read_or_write_fail_clearly() {
    let base = tempfile::tempdir().expect("tempdir");
    // Owned by whoever runs the test: root, or this test cannot serve as another user.
    if std::os::unix::fs::MetadataExt::uid(&fs::metadata(base.path()).expect("stat")) != 0 {
        eprintln!("SKIPPED: serving as another user needs root");
        return;
    }
    fs::set_permissions(base.path(), Permissions::from_mode(0o755)).expect("chmod");
    let served = base.path().join("served");
    write(&served.join("top/open/a.txt"), b"a\n");
    write(&served.join("top/locked/b.txt"), b"b\n");
    write(&served.join("top/z.txt"), b"z\n");
    for dir in ["", "top", "top/open"] {
        fs::set_permissions(served.join(dir), Permissions::from_mode(0o755)).expect("chmod");
    }
    fs::set_permissions(served.join("top/locked"), Permissions::from_mode(0o700)).expect("chmod");
    let state = base.path().join("state");
    fs::create_dir(&state).expect("mkdir");
    std::os::unix::fs::chown(&state, Some(65534), Some(65534)).expect("chown");
    let home = tempfile::tempdir().expect("tempdir");
    let mut command = Command::new("setpriv");
    ft_testutil::isolate(&mut command, home.path());
    command
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(util::ftserver())
        .args(["0", "--bind", "127.0.0.1", "--plain", "--root"])
        .arg(&served)
        .arg("--state-dir")
        .arg(&state);
    if Command::new("setpriv").arg("--version").output().is_err() {
        eprintln!("SKIPPED: no setpriv");
        return;
    }
    let server = ft_testutil::ServerProcess::launch(
        command,
        "127.0.0.1:0".parse().expect("addr"),
        true,
        home,
    );
    let local = base.path().join("local");
    fs::create_dir(&local).expect("mkdir");
    let port = server.addr.port().to_string();
    let run = |args: &[&str]| {
        let mut all = vec!["--plain", "127.0.0.1", &port];
        all.extend_from_slice(args);
        util::ftclient_in(&local, all)
    };

    let listed = run(&["list", "-r", "top"]);
    assert_eq!(listed.code, Some(1), "{listed:?}");
    for name in ["locked/", "open/a.txt", "z.txt"] {
        assert!(
            listed.stdout.lines().any(|l| l == name),
            "{name}: {listed:?}"
        );
    }
    for needle in [
        " list top 4 entries ",
        "failure permission-denied: server: 1 left out of the listing, unreadable \
         (everything else is listed): top/locked: Permission denied",
    ] {
        assert!(
            listed.stderr.contains(needle),
            "{needle:?} not in {listed:?}"
        );
    }

    let got = run(&["get", "-r", "top", "--dir", "."]);
    assert_eq!(got.code, Some(1), "{got:?}");
    assert_eq!(fs::read(local.join("top/open/a.txt")).expect("a"), b"a\n");
    assert_eq!(fs::read(local.join("top/z.txt")).expect("z"), b"z\n");
    assert!(!local.join("top/locked/b.txt").exists());
    let failed: Vec<_> = outcomes(&got)
        .into_iter()
        .filter(|(_, outcome)| !matches!(outcome, Outcome::Success))
        .collect();
    assert!(
        matches!(&failed[..], [(name, Outcome::Failure { kind, .. })]
            if name == "top" && kind == "permission-denied"),
        "{got:?}"
    );
    assert!(
        got.stdout
            .contains("permission-denied: server: 1 left out of the listing, unreadable"),
        "{got:?}"
    );

    // Uploads into a directory the server may not write (root's, mode 0755), or below it,
    // are refused at their check: the large (resumable) ones before any of their bytes
    // (0 moved; before the check they were received whole). A small one is pipelined, its
    // body follows its request whatever the answer, so it shows only the refusal.
    write(&local.join("small.txt"), b"small");
    write(&local.join("large.bin"), &noise(20 << 20, 9));
    let put = run(&["put", "small.txt", "large.bin", "--to", "top", "--dir", "."]);
    assert_eq!(put.code, Some(1), "{put:?}");
    let mut lines = reported(&put.stdout);
    let deeper = run(&["put", "large.bin", "--to", "top/new/deeper", "--dir", "."]);
    assert_eq!(deeper.code, Some(1), "{deeper:?}");
    lines.extend(reported(&deeper.stdout));
    assert_eq!(lines.len(), 3, "{put:?} {deeper:?}");
    for line in lines {
        assert_eq!(line.count, 0, "{line:?}");
        assert!(
            matches!(&line.outcome, Outcome::Failure { kind, message }
                if kind == "permission-denied"
                    && message.contains("writing in the directory of top/")),
            "{line:?}"
        );
    }
    assert!(!served.join("top/large.bin").exists());
    assert!(!served.join("top/new").exists());

    // Where it may write (the root made its own, for the partial files of large uploads,
    // and a directory of its own): the uploads land whole, published by a process without
    // CAP_DAC_READ_SEARCH (which older kernels ask for to link a file by its handle, and
    // the store then links through /proc; newer ones let it link by the handle).
    let own = served.join("own");
    fs::create_dir(&own).expect("mkdir");
    for dir in [&served, &own] {
        std::os::unix::fs::chown(dir, Some(65534), Some(65534)).expect("chown");
    }
    for i in 0..40 {
        write(
            &local.join(format!("tree/d{}/f{i}.txt", i % 4)),
            format!("{i}\n").as_bytes(),
        );
    }
    let put = run(&["put", "small.txt", "large.bin", "--to", "own", "--dir", "."]);
    assert_eq!(put.code, Some(0), "{put:?}");
    let tree = run(&["put", "-r", "tree", "--to", "own", "--dir", "."]);
    assert_eq!(tree.code, Some(0), "{tree:?}");
    assert_eq!(fs::read(own.join("small.txt")).expect("small"), b"small");
    assert_eq!(
        fs::read(own.join("large.bin")).expect("large"),
        fs::read(local.join("large.bin")).expect("large")
    );
    for i in 0..40 {
        let path = own.join(format!("tree/d{}/f{i}.txt", i % 4));
        assert_eq!(
            fs::read(&path).expect("tree file"),
            format!("{i}\n").as_bytes()
        );
    }
}
