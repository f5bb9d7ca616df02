//! The documented bounds on kept partials (`--partial-max-age`, `--partial-max-count`,
//! `--partial-max-bytes`), applied by the real ftserver at start-up.

use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use ft_testutil::partials;

/// Writes a partial of `len` bytes last modified `hours_ago`.
fn partial(dir: &Path, key: &str, len: usize, hours_ago: u64) {
    let path = dir.join(format!(".ft-part-{key}"));
    fs::write(&path, vec![0u8; len]).expect("write");
    let when = SystemTime::now() - Duration::from_secs(hours_ago * 3600);
    File::options()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_modified(when))
        .expect("set mtime");
}

/// Starts ftserver (plain: no identity is created) with `extra` options on `root`, waits
/// for its first line, stops it.
fn start_and_stop(root: &Path, extra: &[&str]) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ftserver"))
        .args(["0", "--plain", "--bind", "127.0.0.1", "--root"])
        .arg(root)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ftserver");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("first line");
    let _ = child.kill();
    let _ = child.wait();
    assert!(first.ends_with("server up and running\n"), "{first:?}");
}

#[test]
fn partials_older_than_the_limit_are_removed_at_start() {
    let root = tempfile::tempdir().expect("tempdir");
    partial(root.path(), "old", 10, 3);
    partial(root.path(), "young", 10, 1);
    start_and_stop(root.path(), &["--partial-max-age", "2"]);
    assert_eq!(partials(root.path()), vec![".ft-part-young"]);
    // The default keeps a day.
    partial(root.path(), "yesterday", 10, 23);
    start_and_stop(root.path(), &[]);
    assert_eq!(partials(root.path()).len(), 2);
}

#[test]
fn the_oldest_partials_go_first_beyond_the_size_limit() {
    let root = tempfile::tempdir().expect("tempdir");
    partial(root.path(), "a-oldest", 3000, 5);
    partial(root.path(), "b-middle", 2000, 4);
    partial(root.path(), "c-newest", 1000, 3);
    start_and_stop(root.path(), &["--partial-max-bytes", "3500"]);
    assert_eq!(
        partials(root.path()),
        vec![".ft-part-b-middle", ".ft-part-c-newest"]
    );
}

#[test]
fn the_oldest_partials_go_first_beyond_the_count_limit() {
    let root = tempfile::tempdir().expect("tempdir");
    for (key, hours_ago) in [
        ("a-oldest", 5),
        ("b-middle", 4),
        ("c-newer", 3),
        ("d-newest", 2),
    ] {
        partial(root.path(), key, 10, hours_ago);
    }
    start_and_stop(root.path(), &["--partial-max-count", "2"]);
    assert_eq!(
        partials(root.path()),
        vec![".ft-part-c-newer", ".ft-part-d-newest"]
    );
    start_and_stop(root.path(), &["--partial-max-count", "0"]);
    assert!(partials(root.path()).is_empty());
}
