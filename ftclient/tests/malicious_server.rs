//! The real `ftclient` binary against a lying server (`ft_testutil::fake_server`): names in
//! a listing that would take over a terminal come out escaped, one per line, and nothing is
//! written. The library-level rows against the same server are in
//! `ftlib/tests/malicious_server.rs`.

mod util;

use std::ffi::OsString;

use ft_testutil::fake_server::{
    Ending, FakeServer, assert_printable, serve_terminal_names, terminal_names,
};
use ftlib::protocol::EntryKind;
use ftlib::text::escape;
use util::{ftclient_in, names_in};

#[test]
fn the_ftclient_binary_prints_hostile_names_escaped_one_per_line() {
    let fake = FakeServer::after_hello(serve_terminal_names);
    let local = tempfile::tempdir().expect("tempdir");
    let args: Vec<OsString> = vec![
        "127.0.0.1".into(),
        fake.addr.port().to_string().into(),
        "list".into(),
        "--plain".into(),
        "--timeout".into(),
        "5".into(),
        "--dir".into(),
        local.path().into(),
    ];
    let out = ftclient_in(local.path(), args);
    let (stdout, stderr) = (&out.stdout, &out.stderr);
    // Both streams are read lossily: a replacement character stands for bytes that are not UTF-8.
    assert!(
        !stdout.contains('\u{fffd}'),
        "stdout is not UTF-8: {stdout:?}"
    );
    assert!(
        !stderr.contains('\u{fffd}'),
        "stderr is not UTF-8: {stderr:?}"
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(!stdout.as_bytes().contains(&0x1b), "raw ESC in {stdout:?}");
    let entries = terminal_names();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), entries.len(), "one line per entry: {stdout:?}");
    for (line, entry) in lines.iter().zip(&entries) {
        assert_printable(line, line);
        let suffix = if entry.kind == EntryKind::Dir {
            "/"
        } else {
            ""
        };
        assert_eq!(*line, format!("{}{suffix}", escape(&entry.name)));
    }
    for line in stderr.lines() {
        assert_printable(line, "stderr");
    }
    assert!(stderr.contains("success"), "{stderr}");
    assert_eq!(names_in(local.path()), Vec::<String>::new());
    assert_eq!(fake.finish(), Ending::ClientClosed);
}
