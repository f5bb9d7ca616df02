//! Standard input and output as the local side (issue 13): `put - --as NAME` uploads what
//! it reads, verified and published only whole; `get NAME -` writes the file to stdout only
//! once verified, with its report on stderr; every misuse of `-` is a usage error.

mod util;

use std::ffi::OsString;
use std::io::{Read, Write};
use std::process::{Command, Stdio};

use util::{Fixture, ftclient, isolate, noise, reports};

/// `ftclient 127.0.0.1 PORT ARGS… --dir LOCAL` with the server's trust, `stdin` written to
/// it: its exit code, stdout bytes and stderr text.
fn ft_with_stdin(f: &Fixture, args: &[&str], stdin: &[u8]) -> (Option<i32>, Vec<u8>, String) {
    let home = tempfile::tempdir().expect("home");
    let all: Vec<OsString> = f.args(args).into_iter().chain(f.trust()).collect();
    let mut command = Command::new(ftclient());
    command.current_dir(f.cwd()).args(all);
    isolate(&mut command, home.path());
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ftclient");
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        // A client that refuses early may close its end first.
        let _ = input.write_all(&data);
    });
    let mut out = Vec::new();
    let mut err = String::new();
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let err_reader = std::thread::spawn(move || {
        let _ = stderr.read_to_string(&mut err);
        err
    });
    stdout.read_to_end(&mut out).expect("read stdout");
    let status = child.wait().expect("wait");
    writer.join().expect("writer");
    (status.code(), out, err_reader.join().expect("stderr"))
}

#[test]
fn standard_input_goes_up_and_a_file_comes_down_to_standard_output() {
    let f = Fixture::new();
    let data = noise(2_500_000, 7);
    let (code, out, err) = ft_with_stdin(&f, &["put", "-", "--as", "in/piped.bin"], &data);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(f.served_bytes("in/piped.bin"), data);
    let lines = reports(&String::from_utf8_lossy(&out));
    assert_eq!(lines.len(), 1, "{out:?}");
    assert_eq!(
        (lines[0].op.as_str(), lines[0].kind.as_deref()),
        ("put", None)
    );

    let (code, out, err) = ft_with_stdin(&f, &["get", "in/piped.bin", "-"], b"");
    assert_eq!(code, Some(0), "{err}");
    assert!(out == data, "stdout differs from the file");
    // The report goes to stderr, as stdout carries the file.
    let lines = reports(&err);
    assert_eq!(lines.len(), 1, "{err}");
    assert_eq!(
        (lines[0].op.as_str(), lines[0].kind.as_deref()),
        ("get", None)
    );
    // Nothing was written into the local directory.
    assert_eq!(std::fs::read_dir(f.local()).expect("ls").count(), 0);
}

/// A download that fails writes nothing to stdout, and says why on stderr (exit 1).
#[test]
fn a_failed_download_to_standard_output_writes_nothing() {
    let f = Fixture::new();
    let (code, out, err) = ft_with_stdin(&f, &["get", "missing.bin", "-"], b"");
    assert_eq!(code, Some(1), "{err}");
    assert!(out.is_empty(), "{} bytes on stdout", out.len());
    let lines = reports(&err);
    assert_eq!(lines[0].kind.as_deref(), Some("not-found"), "{err}");
}

/// An empty input is an empty file; a name already taken is refused and kept.
#[test]
fn empty_input_and_taken_names() {
    let f = Fixture::new();
    let (code, _, err) = ft_with_stdin(&f, &["put", "-", "--as", "empty"], b"");
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(f.served_bytes("empty"), b"");
    let (code, out, _) = ft_with_stdin(&f, &["put", "-", "--as", "empty"], b"new");
    assert_eq!(code, Some(1));
    let lines = reports(&String::from_utf8_lossy(&out));
    assert_eq!(lines[0].kind.as_deref(), Some("already-exists"));
    assert_eq!(f.served_bytes("empty"), b"");
}

/// One row per misuse of `-`: exit 2 with a message, nothing sent.
#[test]
fn misuses_of_the_dash_are_usage_errors() {
    let f = Fixture::new();
    let rows: &[(&[&str], &str)] = &[
        (&["put", "-"], "--as NAME"),
        (&["put", "-", "other", "--as", "x"], "exactly one FILE"),
        (&["put", "-", "other"], "no other FILE"),
        (&["put", "-r", "-", "--to", "d"], "no -r"),
        (&["put", "-", "--as", "x", "--resume"], "cannot --resume"),
        (&["get", "-"], "exactly one NAME"),
        (&["get", "a", "b", "-"], "exactly one NAME"),
        (&["get", "a", "-", "-r"], "no -r"),
        (&["get", "a", "-", "--resume"], "no -r and no --resume"),
    ];
    for (args, says) in rows {
        let (code, out, err) = ft_with_stdin(&f, args, b"data");
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert_eq!(std::fs::read_dir(f.served()).expect("ls").count(), 0);
}
