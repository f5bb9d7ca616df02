//! The options users asked for, on the real `ftserver` process: `--read-only`,
//! `--max-file-size` and the free-space check refuse an upload before its body is sent;
//! completions and a man page come from the same clap definitions as `--help`.

mod util;

use std::cell::Cell;
use std::fs;
use std::io::{self, Read};

use ftlib::store::DirStore;
use ftlib::{Client, ErrorKind};
use util::{Line, ServerProcess, assert_bash_accepts, client, ftserver, run, temp_files};

/// A body that must never be read: the upload has to be refused before it is sent.
struct Tripwire<'a>(&'a Cell<bool>);

impl Read for Tripwire<'_> {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        self.0.set(true);
        Err(io::Error::other("the body was read"))
    }
}

/// Uploads a body of `size` bytes that is never available; returns the error kind and
/// message, and whether the client started sending the body.
fn refused_put(c: &mut Client, name: &str, size: u64) -> (ErrorKind, String, bool) {
    let touched = Cell::new(false);
    let err = c
        .put_reader(Tripwire(&touched), size, name, |_| {})
        .expect_err("the upload is refused");
    (err.kind(), err.to_string(), touched.get())
}

#[test]
fn read_only_refuses_every_upload_before_its_body_and_still_serves() {
    let root = tempfile::tempdir().expect("tempdir");
    let local = tempfile::tempdir().expect("tempdir");
    fs::write(root.path().join("doc.txt"), b"read me").expect("write");
    let server = ServerProcess::start(root.path(), &["--read-only"]);
    let mut c = client(&server);

    for (name, size) in [("new.txt", 3), ("empty", 0), ("doc.txt", 7)] {
        let (kind, message, touched) = refused_put(&mut c, name, size);
        assert_eq!(kind, ErrorKind::ReadOnly, "{name}: {message}");
        assert!(message.contains("read-only"), "{message}");
        assert!(!touched, "{name}: the body was read");
        let line = Line::parse(&server.next_line());
        assert_eq!(line.summary(), format!("put {name} 0 bytes read-only"));
    }
    assert!(!root.path().join("new.txt").exists());
    assert!(!root.path().join("empty").exists());
    assert!(temp_files(root.path()).is_empty());

    // The same connection still downloads and lists.
    let here = DirStore::open(local.path()).expect("local dir");
    c.get("doc.txt", &here, false, |_| {}).expect("get");
    assert_eq!(
        fs::read(local.path().join("doc.txt")).expect("read"),
        b"read me"
    );
    assert_eq!(c.list().expect("list").len(), 1);
    assert_eq!(
        fs::read(root.path().join("doc.txt")).expect("read"),
        b"read me"
    );
}

#[test]
fn max_file_size_refuses_before_the_body() {
    let root = tempfile::tempdir().expect("tempdir");
    let server = ServerProcess::start(root.path(), &["--max-file-size", "10"]);
    let mut c = client(&server);
    let (kind, message, touched) = refused_put(&mut c, "eleven", 11);
    assert_eq!(kind, ErrorKind::TooLarge, "{message}");
    assert!(
        message.contains("eleven is 11 bytes, more than the limit of 10 bytes"),
        "{message}"
    );
    assert!(!touched, "the body was read");
    assert_eq!(
        Line::parse(&server.next_line()).summary(),
        "put eleven 0 bytes too-large"
    );
    c.put_reader(&[1u8; 10][..], 10, "ten", |_| {})
        .expect("at the limit, on the same connection");
    assert!(!root.path().join("eleven").exists());
}

/// Sizes may carry a unit: `1K` is 1024 bytes.
#[test]
fn max_file_size_takes_a_unit() {
    let root = tempfile::tempdir().expect("tempdir");
    let server = ServerProcess::start(root.path(), &["--max-file-size", "1K"]);
    let mut c = client(&server);
    let (kind, message, _) = refused_put(&mut c, "big", 1025);
    assert_eq!(kind, ErrorKind::TooLarge, "{message}");
    assert!(message.contains("limit of 1024 bytes"), "{message}");
    c.put_reader(&[1u8; 1024][..], 1024, "fits", |_| {})
        .expect("at the limit");
    let out = util::run(ftserver(), ["0", "--max-file-size", "1.5G"]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("is not a size"), "{out:?}");
}

#[test]
fn a_size_beyond_the_free_space_is_refused_before_the_body() {
    let root = tempfile::tempdir().expect("tempdir");
    let server = ServerProcess::start(root.path(), &[]);
    let mut c = client(&server);
    // No test machine has an exbibyte free.
    let size = 1u64 << 60;
    let (kind, message, touched) = refused_put(&mut c, "huge.bin", size);
    assert_eq!(kind, ErrorKind::NoSpace, "{message}");
    assert!(message.contains("huge.bin"), "{message}");
    assert!(!touched, "the body was read");
    assert_eq!(
        Line::parse(&server.next_line()).summary(),
        "put huge.bin 0 bytes no-space"
    );
    assert!(temp_files(root.path()).is_empty());
    c.put_reader(&b"fits"[..], 4, "small", |_| {})
        .expect("a small file still fits, on the same connection");
}

#[test]
fn help_shows_the_new_options_with_examples() {
    let out = run(ftserver(), ["--help"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    for needle in [
        "--read-only",
        "--max-file-size",
        "ftserver 6789 --read-only",
        "--completions",
        "--man",
        "--partial-max-per-peer <N>",
        "that client's own oldest go first [default: 100]",
    ] {
        assert!(out.stdout.contains(needle), "{needle:?} missing: {out:?}");
    }
}

#[test]
fn completions_and_man_page_are_generated() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = run(ftserver(), ["--completions", shell]);
        assert_eq!(out.code, Some(0), "{shell}: {out:?}");
        assert!(out.stderr.is_empty(), "{shell}: {out:?}");
        for needle in ["ftserver", "read-only", "max-file-size"] {
            assert!(out.stdout.contains(needle), "{shell}: {needle:?} missing");
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(ftserver(), ["--completions", "bash"]);
    assert_bash_accepts(dir.path(), "ftserver.bash", &out.stdout);

    let out = run(ftserver(), ["--man"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    for needle in [
        ".TH ftserver 1",
        ".SH NAME",
        "\\-\\-read\\-only",
        ".SH EXAMPLES",
        // One example: its command on a line of its own, what it does below.
        ".nf\n\\fBFT_PASSWORD=... ftserver \\-\\-users users.txt \\-\\-add\\-user alice \\-\\-role write\\fR\n.fi\n.RS\nadd (or replace) an account, then exit\n",
    ] {
        assert!(
            out.stdout.contains(needle),
            "{needle:?} missing from the man page"
        );
    }
}

#[test]
fn generation_flags_stand_alone() {
    let rows: &[&[&str]] = &[
        &["--completions", "bash", "6789"],
        &["--completions", "tcsh"],
        &["--man", "--json"],
        &["0", "--man"],
    ];
    for args in rows {
        let out = run(ftserver(), *args);
        assert_eq!(out.code, Some(2), "{args:?}: {out:?}");
        assert!(out.stderr.starts_with("error: "), "{args:?}: {out:?}");
        assert!(!out.stdout.contains("up and running"), "{args:?}: {out:?}");
    }
}
