//! What ftclient tells a person: failures that name the file and the host and say what to
//! do, refusals by servers started with `--read-only` or `--max-file-size`, `--help` with
//! examples, and completions and a man page generated from the same definitions.

mod util;

use std::fs;

use serde_json::Value;
use util::{Fixture, Line, assert_bash_accepts, assert_success, dead_port, ftclient_in, reports};

/// The one report line of a failed request.
fn failed(out: &util::Output) -> Line {
    assert_eq!(out.code, Some(1), "{out:?}");
    let lines = reports(&out.stdout);
    assert_eq!(lines.len(), 1, "{out:?}");
    lines.into_iter().next().expect("one line")
}

#[test]
fn failures_say_what_to_do() {
    let f = Fixture::new();
    let port = f.port();
    fs::write(f.served().join("taken.txt"), b"theirs").expect("write");
    fs::write(f.local().join("taken.txt"), b"mine").expect("write");
    #[cfg(unix)]
    std::os::unix::fs::symlink("/tmp", f.served().join("linked")).expect("symlink");
    let list = format!("`ftclient 127.0.0.1 {port} list`");
    let rows: Vec<(&[&str], &str, String)> = vec![
        (
            &["put", "taken.txt"],
            "already-exists",
            "taken.txt already exists; the server never replaces a file: choose another name"
                .into(),
        ),
        (
            &["get", "taken.txt"],
            "already-exists",
            "pass --overwrite to replace your copy".into(),
        ),
        (
            &["put", "taken.txt", "--to", "taken.txt"],
            "already-exists",
            "taken.txt already exists and is not a directory; ft puts nothing through a \
             symbolic link or a file on the server's path"
                .into(),
        ),
        (
            &["get", "absent.txt"],
            "not-found",
            format!("absent.txt not found; {list} shows the files the server has"),
        ),
        (
            &["put", "nowhere.txt"],
            "not-found",
            format!(
                "nowhere.txt not found locally; a plain name is looked up in {}, then in the \
                 current directory",
                f.local().display()
            ),
        ),
    ];
    for (args, kind, needle) in rows {
        let line = failed(&f.ft(args));
        assert_eq!(line.kind.as_deref(), Some(kind), "{args:?}: {line:?}");
        assert!(
            line.message.contains(&needle),
            "{args:?}: {:?} lacks {needle:?}",
            line.message
        );
    }
    assert_eq!(f.served_bytes("taken.txt"), b"theirs");
    assert_eq!(
        fs::read(f.local().join("taken.txt")).expect("read"),
        b"mine"
    );
    #[cfg(unix)]
    {
        let line = failed(&f.ft(&["put", "taken.txt", "--to", "linked"]));
        assert!(
            line.message.contains(
                "linked already exists as a symbolic link, which ft does not follow; ft puts \
                 nothing through a symbolic link"
            ),
            "{line:?}"
        );
        assert!(!line.message.contains("never replaces"), "{line:?}");
    }

    // The hint is part of the JSON message too.
    let out = f.ft(&["get", "absent.txt", "--json"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let json: Value = serde_json::from_str(out.stdout.trim_end()).expect("JSON");
    assert_eq!(json["error_kind"], "not-found");
    assert!(
        json["message"].as_str().is_some_and(|m| m.contains(&list)),
        "{json}"
    );
}

#[test]
fn an_unreachable_server_asks_whether_ftserver_runs_there() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = dead_port().to_string();
    let out = ftclient_in(dir.path(), ["127.0.0.1", &port, "list", "--timeout", "5"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    assert!(
        out.stderr
            .starts_with(&format!("ftclient: cannot reach 127.0.0.1:{port}: ")),
        "{out:?}"
    );
    assert!(
        out.stderr
            .contains(&format!("is ftserver running on 127.0.0.1, port {port}?")),
        "{out:?}"
    );
}

#[test]
fn a_missing_download_directory_says_how_to_fix_it() {
    let f = Fixture::new();
    fs::write(f.served().join("x"), b"x").expect("write");
    let missing = f.base.path().join("nope");
    let out = f.ft_raw([
        "127.0.0.1".into(),
        f.port(),
        "get".into(),
        "x".into(),
        "--dir".into(),
        missing.display().to_string(),
    ]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let expected = format!("ftclient: cannot download into {}: ", missing.display());
    assert!(out.stderr.starts_with(&expected), "{out:?}");
    assert!(
        out.stderr
            .contains("create it, or choose another directory with --dir"),
        "{out:?}"
    );
}

#[test]
fn a_read_only_server_refuses_uploads_and_still_serves() {
    let f = Fixture::with_options(&["--read-only"]);
    fs::write(f.served().join("shared.txt"), b"read me").expect("write");
    fs::write(f.local().join("new.txt"), b"new").expect("write");

    let line = failed(&f.ft(&["put", "new.txt"]));
    assert_eq!(line.kind.as_deref(), Some("read-only"), "{line:?}");
    assert!(line.message.contains("read-only"), "{line:?}");
    assert_eq!(line.count, 0, "{line:?}");
    assert!(!f.served().join("new.txt").exists());
    assert!(util::temp_files(&f.served()).is_empty());
    let server_line = Line::parse(&f.server.next_line());
    assert_eq!(
        server_line.summary(),
        "put new.txt 0 bytes read-only",
        "{server_line:?}"
    );

    assert_success(&f.ft(&["get", "shared.txt"]));
    assert_eq!(
        fs::read(f.local().join("shared.txt")).expect("read"),
        b"read me"
    );
    let out = f.ft(&["list"]);
    assert_eq!(out.stdout, "shared.txt\n", "{out:?}");
}

#[test]
fn uploads_over_max_file_size_are_refused_before_any_data_is_sent() {
    let f = Fixture::with_options(&["--max-file-size", "1000"]);
    fs::write(f.local().join("ok.bin"), [1u8; 1000]).expect("write");
    fs::write(f.local().join("big.bin"), vec![2u8; 4 * 1024 * 1024]).expect("write");
    let out = f.ft(&["put", "big.bin", "ok.bin"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let lines = reports(&out.stdout);
    let got: Vec<String> = lines.iter().map(Line::summary).collect();
    assert_eq!(
        got,
        [
            "put big.bin 0 bytes too-large",
            "put ok.bin 1000 bytes success"
        ],
        "{out:?}"
    );
    assert!(
        lines[0]
            .message
            .contains("big.bin is 4194304 bytes, more than the limit of 1000 bytes"),
        "{out:?}"
    );
    assert!(lines[0].message.contains("--max-file-size"), "{out:?}");
    // The server saw no byte of the body.
    let server_line = Line::parse(&f.server.next_line());
    assert_eq!(server_line.summary(), "put big.bin 0 bytes too-large");
    assert!(!f.served().join("big.bin").exists());
}

#[test]
fn help_shows_examples_for_every_feature() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = ftclient_in(dir.path(), ["--help"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    for needle in [
        "Examples:",
        "ftclient localhost 6789 put notes.pdf",
        "ftclient localhost 6789 get test2.txt",
        "list -l",
        "--json",
        "--quiet",
        "--completions bash",
        "--man",
        "Exit status",
    ] {
        assert!(out.stdout.contains(needle), "{needle:?} missing: {out:?}");
    }
    let out = ftclient_in(dir.path(), ["127.0.0.1", "1", "list", "--help"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    for needle in ["--long", "-l", "--bytes"] {
        assert!(out.stdout.contains(needle), "{needle:?} missing: {out:?}");
    }
}

#[test]
fn completions_and_man_page_are_generated_for_every_shell() {
    let dir = tempfile::tempdir().expect("tempdir");
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = ftclient_in(dir.path(), ["--completions", shell]);
        assert_success(&out);
        for needle in ["ftclient", "overwrite", "quiet"] {
            assert!(out.stdout.contains(needle), "{shell}: {needle:?} missing");
        }
    }
    let out = ftclient_in(dir.path(), ["--completions", "bash"]);
    assert_bash_accepts(dir.path(), "ftclient.bash", &out.stdout);

    let out = ftclient_in(dir.path(), ["--man"]);
    assert_success(&out);
    for needle in [
        ".TH ftclient 1",
        ".SH NAME",
        "\\-\\-overwrite",
        ".SH EXAMPLES",
    ] {
        assert!(
            out.stdout.contains(needle),
            "{needle:?} missing from the man page"
        );
    }
}

#[test]
fn generation_flags_stand_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rows: &[&[&str]] = &[
        &["--completions", "bash", "--json"],
        &["--completions", "tcsh"],
        &["--completions"],
        &["--man", "127.0.0.1", "6789", "list"],
        &["127.0.0.1", "6789", "list", "--man"],
    ];
    for args in rows {
        let out = ftclient_in(dir.path(), *args);
        assert_eq!(out.code, Some(2), "{args:?}: {out:?}");
        assert!(out.stderr.starts_with("error: "), "{args:?}: {out:?}");
        assert!(out.stdout.is_empty(), "{args:?}: {out:?}");
    }
}

/// `HOST:PORT` in one argument and port 0 are usage errors that say what to type.
#[test]
fn host_and_port_mistakes_are_usage_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rows: &[(&[&str], &str)] = &[
        (
            &["localhost:6789", "list"],
            "the host and the port are two arguments: `ftclient localhost 6789 ...`",
        ),
        (
            &["[::1]:6789", "6789", "list"],
            "the host and the port are two arguments: `ftclient [::1] 6789 ...`",
        ),
        (&["localhost", "0", "list"], "0 is not in 1..=65535"),
    ];
    for (args, says) in rows {
        let out = ftclient_in(dir.path(), *args);
        assert_eq!(out.code, Some(2), "{args:?}: {out:?}");
        assert!(out.stderr.contains(says), "{args:?}: {out:?}");
    }
    // A bare IPv6 address is a host, not a host and a port.
    let out = ftclient_in(
        dir.path(),
        ["::1", "1", "list", "--plain", "--timeout", "5"],
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("cannot reach [::1]:1"), "{out:?}");
}
