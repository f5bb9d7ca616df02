//! The real `ftclient` binary against the real `ftserver` binary, as a user runs them:
//! round trips, refusals, report lines, exit codes, argument forms and host forms.

mod util;

use std::ffi::OsString;
use std::fs;
use std::net::{IpAddr, Ipv6Addr, TcpListener};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use util::{
    Fixture, JSON_REPORT_FIELDS, Output, assert_success, dead_port, ftclient_in, names_in, noise,
    reports, temp_files,
};

#[test]
fn put_then_get_round_trips_byte_identical_with_one_line_per_file() {
    let f = Fixture::new();
    let files = [
        ("small.txt", b"hello, ft\n".to_vec()),
        ("empty.bin", Vec::new()),
        ("big.bin", noise(3 * 1024 * 1024 + 12_345, 1)),
    ];
    for (name, data) in &files {
        fs::write(f.local().join(name), data).expect("write");
    }

    let out = f.ft(&["put", "small.txt", "empty.bin", "big.bin"]);
    assert_success(&out);
    let lines = reports(&out.stdout);
    assert_eq!(lines.len(), files.len(), "{out:?}");
    for (line, (name, data)) in lines.iter().zip(&files) {
        assert_eq!(
            (
                line.op.as_str(),
                line.name.as_str(),
                line.count,
                line.unit.as_str()
            ),
            ("put", *name, data.len() as u64, "bytes"),
            "{out:?}"
        );
        assert_eq!(line.kind, None, "{out:?}");
        assert_eq!(line.ip, "127.0.0.1");
        assert_eq!(&f.served_bytes(name), data, "{name} on the server");
    }

    let down = f.base.path().join("down");
    fs::create_dir(&down).expect("mkdir");
    let mut args = vec!["get"];
    args.extend(files.iter().map(|(name, _)| *name));
    let out = f.ft_in(&down, &args);
    assert_success(&out);
    let lines = reports(&out.stdout);
    assert_eq!(lines.len(), files.len(), "{out:?}");
    for (line, (name, data)) in lines.iter().zip(&files) {
        assert_eq!(
            (line.op.as_str(), line.name.as_str(), line.count),
            ("get", *name, data.len() as u64),
            "{out:?}"
        );
        assert_eq!(line.kind, None, "{out:?}");
        let got = fs::read(down.join(name)).expect("downloaded");
        assert!(got == *data, "{name} differs after the round trip");
    }
    assert!(temp_files(&down).is_empty());
    assert!(temp_files(&f.served()).is_empty());
}

#[test]
fn put_of_an_existing_name_is_refused_and_the_server_copy_untouched() {
    let f = Fixture::new();
    fs::write(f.served().join("a.txt"), b"original").expect("write");
    fs::write(f.local().join("a.txt"), b"replacement").expect("write");
    let out = f.ft(&["put", "a.txt"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let lines = reports(&out.stdout);
    assert_eq!(lines.len(), 1, "{out:?}");
    assert_eq!(lines[0].kind.as_deref(), Some("already-exists"), "{out:?}");
    assert!(lines[0].message.contains("already exists"), "{out:?}");
    assert_eq!(f.served_bytes("a.txt"), b"original");
    assert!(temp_files(&f.served()).is_empty());
}

#[test]
fn get_of_a_missing_name_fails_and_leaves_nothing() {
    let f = Fixture::new();
    let out = f.ft(&["get", "missing.txt"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let lines = reports(&out.stdout);
    assert_eq!(lines.len(), 1, "{out:?}");
    assert_eq!(
        (lines[0].op.as_str(), lines[0].name.as_str()),
        ("get", "missing.txt")
    );
    assert_eq!(lines[0].kind.as_deref(), Some("not-found"), "{out:?}");
    assert!(lines[0].message.contains("not found"), "{out:?}");
    assert!(
        names_in(&f.local()).is_empty(),
        "no file, no temporary file"
    );
}

#[test]
fn get_keeps_an_existing_local_file_unless_overwrite() {
    let f = Fixture::new();
    fs::write(f.served().join("x.txt"), b"from the server").expect("write");
    fs::write(f.local().join("x.txt"), b"mine").expect("write");

    let out = f.ft(&["get", "x.txt"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let lines = reports(&out.stdout);
    assert_eq!(lines[0].kind.as_deref(), Some("already-exists"), "{out:?}");
    assert_eq!(fs::read(f.local().join("x.txt")).expect("read"), b"mine");

    let out = f.ft(&["get", "x.txt", "--overwrite"]);
    assert_success(&out);
    assert_eq!(
        fs::read(f.local().join("x.txt")).expect("read"),
        b"from the server"
    );
    assert_eq!(names_in(&f.local()), ["x.txt"], "no temporary file left");
}

#[test]
fn a_failed_file_does_not_stop_the_others() {
    let f = Fixture::new();
    fs::write(f.served().join("present"), b"here").expect("write");
    let out = f.ft(&["get", "missing", "present"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let lines = reports(&out.stdout);
    let outcome: Vec<_> = lines
        .iter()
        .map(|l| (l.name.as_str(), l.kind.as_deref()))
        .collect();
    assert_eq!(
        outcome,
        [("missing", Some("not-found")), ("present", None)],
        "{out:?}"
    );
    assert_eq!(fs::read(f.local().join("present")).expect("read"), b"here");
    assert!(!f.local().join("missing").exists());

    fs::write(f.local().join("upload.txt"), b"up").expect("write");
    let out = f.ft(&["put", "absent.txt", "upload.txt"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let lines = reports(&out.stdout);
    assert_eq!(lines.len(), 2, "{out:?}");
    assert_eq!(lines[0].name, "absent.txt");
    assert!(lines[0].kind.is_some(), "{out:?}");
    assert!(lines[0].message.contains("absent.txt"), "{out:?}");
    assert_eq!(
        (lines[1].name.as_str(), lines[1].kind.as_deref()),
        ("upload.txt", None)
    );
    assert_eq!(f.served_bytes("upload.txt"), b"up");
    assert!(!f.served().join("absent.txt").exists());
}

#[test]
fn invalid_names_are_refused() {
    let f = Fixture::new();
    fs::write(f.served().join("x"), b"x").expect("write");
    // Local files whose last component is not an acceptable remote name.
    fs::write(f.local().join(".ft-tmp-1-2-3"), b"reserved").expect("write");
    let rows: &[(&str, &str)] = &[
        ("get", "../x"),
        ("get", "a//b"),
        ("get", "a/"),
        ("get", "a/../x"),
        ("get", ".."),
        ("get", "/x"),
        ("get", ".ft-tmp-1-2-3"),
        ("put", ".ft-tmp-1-2-3"),
    ];
    for &(op, name) in rows {
        let out = f.ft(&[op, name]);
        assert_eq!(out.code, Some(1), "{op} {name}: {out:?}");
        let lines = reports(&out.stdout);
        assert_eq!(lines.len(), 1, "{op} {name}: {out:?}");
        assert_eq!(
            (lines[0].op.as_str(), lines[0].kind.as_deref()),
            (op, Some("invalid-name")),
            "{op} {name}: {out:?}"
        );
    }
    assert_eq!(names_in(&f.local()), [".ft-tmp-1-2-3"]);
    assert_eq!(names_in(&f.served()), ["x"]);
    assert!(!f.base.path().join("x").exists(), "written outside --dir");
}

/// `:` separates drives and streams only on Windows: on Unix, names such as Perl's man pages
/// go up and come back as they are, one by one and in trees.
#[cfg(unix)]
#[test]
fn names_with_colons_round_trip_on_unix() {
    let f = Fixture::new();
    fs::write(f.local().join("File::Copy.3perl"), b"perl").expect("write");
    fs::create_dir(f.local().join("at 12:30")).expect("mkdir");
    fs::write(f.local().join("at 12:30").join("a:b"), b"tree").expect("write");
    assert_success(&f.ft(&["put", "File::Copy.3perl"]));
    assert_success(&f.ft(&["put", "-r", "at 12:30"]));
    assert_eq!(f.served_bytes("File::Copy.3perl"), b"perl");
    assert_eq!(f.served_bytes("at 12:30/a:b"), b"tree");

    let down = f.base.path().join("down");
    fs::create_dir(&down).expect("mkdir");
    for what in [&["get", "File::Copy.3perl"][..], &["get", "-r", "at 12:30"]] {
        assert_success(&f.ft_in(&down, what));
    }
    assert_eq!(
        fs::read(down.join("File::Copy.3perl")).expect("read"),
        b"perl"
    );
    assert_eq!(
        fs::read(down.join("at 12:30").join("a:b")).expect("read"),
        b"tree"
    );
}

/// Each report line's name and error kind (`None`: success), in order.
fn outcomes(out: &Output) -> Vec<(String, Option<String>)> {
    reports(&out.stdout)
        .into_iter()
        .map(|l| (l.name, l.kind))
        .collect()
}

/// One of [`outcomes`].
fn outcome(name: &str, kind: Option<&str>) -> (String, Option<String>) {
    (name.to_owned(), kind.map(str::to_owned))
}

/// Two files of one command that would land on the same name (the same last component):
/// the first moves, the later one is refused before it is sent, so neither `get
/// --overwrite` nor `put --to` lets one file of the command replace or race another.
#[test]
fn files_of_one_command_that_share_a_name_move_only_the_first() {
    let f = Fixture::new();
    for (dir, data) in [("a", "first"), ("b", "second")] {
        fs::create_dir_all(f.served().join(dir)).expect("mkdir");
        fs::write(f.served().join(dir).join("copyright"), data).expect("write");
        fs::create_dir_all(f.local().join(dir)).expect("mkdir");
        fs::write(f.local().join(dir).join("copyright"), data).expect("write");
    }
    let down = f.base.path().join("down");
    fs::create_dir(&down).expect("mkdir");
    let out = f.ft_in(&down, &["get", "a/copyright", "b/copyright", "--overwrite"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(
        outcomes(&out),
        [
            outcome("b/copyright", Some("already-exists")),
            outcome("a/copyright", None)
        ],
        "the refused twin is reported first, before anything is asked for: {out:?}"
    );
    assert!(
        reports(&out.stdout)[0]
            .message
            .contains("another file of this command"),
        "{out:?}"
    );
    assert_eq!(names_in(&down), ["copyright"]);
    assert_eq!(fs::read(down.join("copyright")).expect("read"), b"first");

    let (a, b) = (f.local().join("a/copyright"), f.local().join("b/copyright"));
    let (a, b) = (a.to_str().expect("UTF-8"), b.to_str().expect("UTF-8"));
    let out = f.ft(&["put", a, b, "--to", "dup"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(
        outcomes(&out),
        [
            outcome("dup/copyright", Some("already-exists")),
            outcome("dup/copyright", None)
        ],
        "the refused twin is reported first, before anything is sent: {out:?}"
    );
    assert_eq!(f.served_bytes("dup/copyright"), b"first");

    // The same name twice: moved once, the second said to be the same name.
    let again = f.base.path().join("again");
    fs::create_dir(&again).expect("mkdir");
    let out = f.ft_in(&again, &["get", "a/copyright", "a/copyright"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stdout.contains("another file of this command"),
        "{out:?}"
    );
    assert_eq!(fs::read(again.join("copyright")).expect("read"), b"first");

    // Two trees with the same last component would merge: the later one is refused.
    for (dir, file) in [("t1/t", "x"), ("t2/t", "y")] {
        fs::create_dir_all(f.served().join(dir)).expect("mkdir");
        fs::write(f.served().join(dir).join(file), file).expect("write");
    }
    let trees = f.base.path().join("trees");
    fs::create_dir(&trees).expect("mkdir");
    let out = f.ft_in(&trees, &["get", "-r", "t1/t", "t2/t", "--overwrite"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stdout.contains("another file of this command"),
        "{out:?}"
    );
    assert_eq!(names_in(&trees.join("t")), ["x"]);

    // A twin that is not there (a mistyped path, an invalid name) stands in no one's way:
    // it fails for what it is, and the one that exists moves.
    let typo = f.base.path().join("typo");
    fs::create_dir(&typo).expect("mkdir");
    let out = f.ft_in(
        &typo,
        &["get", "nosuch/copyright", "x/../copyright", "a/copyright"],
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    let mut got = outcomes(&out);
    got.sort();
    assert_eq!(
        got,
        [
            outcome("a/copyright", None),
            outcome("nosuch/copyright", Some("not-found")),
            outcome("x/../copyright", Some("invalid-name")),
        ],
        "{out:?}"
    );
    assert_eq!(fs::read(typo.join("copyright")).expect("read"), b"first");
    let missing = f.local().join("nosuch/copyright");
    let missing = missing.to_str().expect("UTF-8");
    let out = f.ft(&["put", missing, b, "--to", "typo"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let mut got = outcomes(&out);
    got.sort();
    assert_eq!(
        got,
        [
            outcome("typo/copyright", None),
            outcome("typo/copyright", Some("not-found")),
        ],
        "{out:?}"
    );
    assert_eq!(f.served_bytes("typo/copyright"), b"second");
    let trees = f.base.path().join("trees2");
    fs::create_dir(&trees).expect("mkdir");
    let out = f.ft_in(&trees, &["get", "-r", "nosuch/t", "t2/t"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let mut got = outcomes(&out);
    got.sort();
    assert_eq!(
        got,
        [
            outcome("nosuch/t", Some("not-found")),
            outcome("t2/t/y", None)
        ],
        "{out:?}"
    );
    assert_eq!(names_in(&trees.join("t")), ["y"]);

    // Two local trees with the same last component: the later one is refused, not merged.
    for (dir, file) in [("q1/t", "one"), ("q2/t", "two")] {
        fs::create_dir_all(f.local().join(dir)).expect("mkdir");
        fs::write(f.local().join(dir).join(file), file).expect("write");
    }
    let (q1, q2) = (f.local().join("q1/t"), f.local().join("q2/t"));
    let (q1, q2) = (q1.to_str().expect("UTF-8"), q2.to_str().expect("UTF-8"));
    let out = f.ft(&["put", "-r", q1, q2, "--to", "merged"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stdout.contains("another file of this command"),
        "{out:?}"
    );
    assert_eq!(names_in(&f.served().join("merged/t")), ["one"]);
}

/// `get -r ""` is an invalid name like any other, refused before anything is listed
/// (the empty directory name of a listing is the whole served directory).
#[test]
fn a_tree_download_of_the_empty_name_is_refused_before_listing() {
    let f = Fixture::new();
    fs::write(f.served().join("x"), b"x").expect("write");
    let out = f.ft(&["get", "-r", ""]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let lines = reports(&out.stdout);
    assert_eq!(lines.len(), 1, "{out:?}");
    assert_eq!(lines[0].kind.as_deref(), Some("invalid-name"), "{out:?}");
    // Reported before any connection, under the server's address as given (not 0.0.0.0).
    assert_eq!(lines[0].ip, "127.0.0.1", "{out:?}");
    assert!(names_in(&f.local()).is_empty(), "{out:?}");
}

/// A name the server lists but this client refuses (a line feed in it) is one failed item
/// of a tree download, reported under its name escaped once, as any name is; the rest of
/// the tree comes.
#[test]
fn a_listed_name_the_client_refuses_is_reported_as_it_is() {
    let f = Fixture::new();
    fs::create_dir(f.served().join("weird")).expect("mkdir");
    fs::write(f.served().join("weird/new\nline"), b"n").expect("write");
    fs::write(f.served().join("weird/ok"), b"ok").expect("write");
    let out = f.ft(&["get", "-r", "weird"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let mut got = outcomes(&out);
    got.sort();
    assert_eq!(
        got,
        [
            outcome("\"weird/new\\nline\"", Some("invalid-name")),
            outcome("weird/ok", None)
        ],
        "{out:?}"
    );
    assert_eq!(fs::read(f.local().join("weird/ok")).expect("read"), b"ok");
}

/// A directory named as `list` shows it, `sub/`, is that directory for `get -r` and `list`.
#[test]
fn a_directory_named_as_list_shows_it_is_that_directory() {
    let f = Fixture::new();
    fs::create_dir(f.served().join("sub")).expect("mkdir");
    fs::write(f.served().join("sub/a"), b"a").expect("write");
    let out = f.ft(&["list"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "sub/\n"),
        "{out:?}"
    );
    let out = f.ft(&["list", "sub/"]);
    assert_eq!((out.code, out.stdout.as_str()), (Some(0), "a\n"), "{out:?}");
    assert_success(&f.ft(&["get", "-r", "sub/"]));
    assert_eq!(fs::read(f.local().join("sub/a")).expect("read"), b"a");
    // Two slashes are still an empty component.
    assert_eq!(f.ft(&["list", "sub//"]).code, Some(1));
}

#[test]
fn list_prints_names_on_stdout_and_the_report_on_stderr() {
    let f = Fixture::new();
    let out = f.ft(&["list"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");

    for name in ["b.txt", "a.txt"] {
        fs::write(f.served().join(name), name).expect("write");
    }
    fs::create_dir(f.served().join("sub")).expect("mkdir");
    // Created after start-up, so not cleaned: it must still never be listed.
    fs::write(f.served().join(".ft-tmp-5-5-5"), b"partial").expect("write");

    let out = f.ft(&["list"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let mut names: Vec<&str> = out.stdout.lines().collect();
    names.sort_unstable();
    assert_eq!(names, ["a.txt", "b.txt", "sub/"], "{out:?}");
    let lines = reports(&out.stderr);
    assert_eq!(lines.len(), 1, "{out:?}");
    assert_eq!(
        (lines[0].op.as_str(), lines[0].count, lines[0].unit.as_str()),
        ("list", 3, "entries"),
        "{out:?}"
    );
    assert_eq!(lines[0].kind, None, "{out:?}");

    let out = f.ft(&["list", "--json"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout.lines().count(), 3, "{out:?}");
    let json: Value = serde_json::from_str(out.stderr.trim_end()).expect("JSON");
    assert_eq!(json["op"], "list", "{out:?}");
    assert_eq!(json["status"], "success", "{out:?}");
    assert_eq!(json["entries"], 3, "{out:?}");
}

#[test]
fn options_before_the_host_and_after_the_subcommand_both_work() {
    let f = Fixture::new();
    fs::write(f.served().join("x"), b"payload").expect("write");
    let port = f.port();
    let dirs: Vec<PathBuf> = (1..=3)
        .map(|i| f.base.path().join(format!("d{i}")))
        .collect();
    for dir in &dirs {
        fs::create_dir(dir).expect("mkdir");
    }
    let d = |i: usize| dirs[i].to_str().expect("UTF-8 temp path").to_owned();
    let forms: [Vec<String>; 3] = [
        vec![
            "--dir".into(),
            d(0),
            "127.0.0.1".into(),
            port.clone(),
            "get".into(),
            "x".into(),
        ],
        vec![
            "127.0.0.1".into(),
            port.clone(),
            "get".into(),
            "x".into(),
            "--dir".into(),
            d(1),
        ],
        vec![
            "127.0.0.1".into(),
            port.clone(),
            "--dir".into(),
            d(2),
            "get".into(),
            "x".into(),
        ],
    ];
    for (args, dir) in forms.iter().zip(&dirs) {
        let out = f.ft_raw(args);
        assert_success(&out);
        assert_eq!(
            fs::read(dir.join("x")).expect("read"),
            b"payload",
            "{args:?}"
        );
    }
    // A flag before the host applies too: --overwrite replaces, --json changes the output.
    fs::write(dirs[0].join("x"), b"stale").expect("write");
    let args = [
        "--overwrite",
        "--json",
        "--dir",
        &d(0),
        "127.0.0.1",
        &port,
        "get",
        "x",
    ];
    let out = f.ft_raw(args);
    assert_success(&out);
    let json: Value = serde_json::from_str(out.stdout.trim_end()).expect("JSON");
    assert_eq!(json["status"], "success", "{out:?}");
    assert_eq!(fs::read(dirs[0].join("x")).expect("read"), b"payload");
    assert!(
        names_in(&f.local()).is_empty(),
        "the default --dir was not used"
    );
}

#[test]
fn put_with_a_plain_name_looks_in_dir_first_then_the_working_directory() {
    let f = Fixture::new();
    fs::write(f.local().join("both.txt"), b"from --dir").expect("write");
    fs::write(f.cwd().join("both.txt"), b"from cwd").expect("write");
    fs::write(f.cwd().join("cwd-only.txt"), b"only in cwd").expect("write");
    let out = f.ft(&["put", "both.txt", "cwd-only.txt"]);
    assert_success(&out);
    assert_eq!(f.served_bytes("both.txt"), b"from --dir");
    assert_eq!(f.served_bytes("cwd-only.txt"), b"only in cwd");
}

#[test]
fn put_of_a_path_uses_that_path_and_its_last_component_as_the_name() {
    let f = Fixture::new();
    for (root, text) in [(f.cwd(), "cwd/sub"), (f.local(), "dir/sub")] {
        fs::create_dir(root.join("sub")).expect("mkdir");
        fs::write(root.join("sub").join("rel.txt"), text).expect("write");
    }
    let elsewhere = f.base.path().join("elsewhere");
    fs::create_dir(&elsewhere).expect("mkdir");
    let absolute = elsewhere.join("abs.bin");
    fs::write(&absolute, b"absolute").expect("write");

    let out = f.ft(&[
        "put",
        "sub/rel.txt",
        absolute.to_str().expect("UTF-8 temp path"),
    ]);
    assert_success(&out);
    let names: Vec<_> = reports(&out.stdout).into_iter().map(|l| l.name).collect();
    assert_eq!(names, ["rel.txt", "abs.bin"], "{out:?}");
    // A path with directories is taken as given (relative to the working directory).
    assert_eq!(f.served_bytes("rel.txt"), b"cwd/sub");
    assert_eq!(f.served_bytes("abs.bin"), b"absolute");
    assert_eq!(names_in(&f.served()), ["abs.bin", "rel.txt"]);
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rows: &[&[&str]] = &[
        &[],
        &["127.0.0.1"],
        &["127.0.0.1", "6789"],
        &["127.0.0.1", "not-a-port", "list"],
        &["127.0.0.1", "70000", "list"],
        &["127.0.0.1", "6789", "put"],
        &["127.0.0.1", "6789", "get"],
        &["127.0.0.1", "6789", "frobnicate"],
        &["127.0.0.1", "6789", "list", "--timeout", "0"],
        &["127.0.0.1", "6789", "list", "--no-such-option"],
    ];
    for args in rows {
        let out = ftclient_in(dir.path(), *args);
        assert_eq!(out.code, Some(2), "{args:?}: {out:?}");
        // clap explains the error, or shows the usage when nothing was given.
        assert!(
            out.stderr.starts_with("error: ") || out.stderr.contains("Usage: ftclient"),
            "{args:?}: {out:?}"
        );
        assert!(out.stdout.is_empty(), "{args:?}: {out:?}");
    }
}

#[test]
fn help_shows_examples() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = ftclient_in(dir.path(), ["--help"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    for needle in [
        "Examples:",
        "ftclient localhost 6789 put",
        "get",
        "list",
        "--overwrite",
    ] {
        assert!(out.stdout.contains(needle), "{needle:?} missing: {out:?}");
    }
}

#[test]
fn an_unreachable_server_fails_with_one_clear_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("a.txt"), b"a").expect("write");
    let port = dead_port().to_string();
    let dir_arg = dir.path().to_str().expect("UTF-8 temp path");
    let commands: &[&[&str]] = &[&["list"], &["get", "a", "b"], &["put", "a.txt", "a.txt"]];
    for command in commands {
        let mut args = vec!["127.0.0.1", &port];
        args.extend_from_slice(command);
        args.extend(["--dir", dir_arg, "--timeout", "5"]);
        let out = ftclient_in(dir.path(), &args);
        assert_eq!(out.code, Some(1), "{command:?}: {out:?}");
        assert!(out.stdout.is_empty(), "{command:?}: {out:?}");
        assert_eq!(out.stderr.lines().count(), 1, "{command:?}: {out:?}");
        assert!(
            out.stderr
                .starts_with(&format!("ftclient: cannot reach 127.0.0.1:{port}: ")),
            "{command:?}: {out:?}"
        );
        assert_eq!(names_in(dir.path()), ["a.txt"], "{command:?}");
    }
}

#[test]
fn get_into_a_missing_directory_is_refused() {
    let f = Fixture::new();
    fs::write(f.served().join("x"), b"x").expect("write");
    let missing = f.base.path().join("no-such-dir");
    let port = f.port();
    let out = f.ft_raw([
        OsString::from("127.0.0.1"),
        port.into(),
        "get".into(),
        "x".into(),
        "--dir".into(),
        missing.clone().into(),
    ]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains(&missing.display().to_string()),
        "{out:?}"
    );
    assert!(!missing.exists(), "--dir must not be created");
}

#[test]
fn localhost_works_as_host() {
    let f = Fixture::new();
    fs::write(f.local().join("l.txt"), b"via localhost").expect("write");
    let port = f.port();
    let dir = f.local();
    let dir = dir.to_str().expect("UTF-8 temp path");
    let out = f.ft_raw(["localhost", &port, "put", "l.txt", "--dir", dir]);
    assert_success(&out);
    let out = f.ft_raw(["localhost", &port, "list", "--dir", dir]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, "l.txt\n");
    assert_eq!(f.served_bytes("l.txt"), b"via localhost");
}

#[test]
fn ipv6_hosts_with_and_without_brackets_work() {
    if TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipped: ::1 cannot be bound on this machine");
        return;
    }
    let f = Fixture::on(IpAddr::V6(Ipv6Addr::LOCALHOST));
    fs::write(f.local().join("six.txt"), b"over IPv6").expect("write");
    let port = f.port();
    let local = f.local();
    let local = local.to_str().expect("UTF-8 temp path");
    let down = f.base.path().join("down");
    fs::create_dir(&down).expect("mkdir");
    let down = down.to_str().expect("UTF-8 temp path");

    let out = f.ft_raw(["::1", &port, "put", "six.txt", "--dir", local]);
    assert_success(&out);
    assert_eq!(reports(&out.stdout)[0].ip, "::1", "{out:?}");
    let out = f.ft_raw(["[::1]", &port, "get", "six.txt", "--dir", down]);
    assert_success(&out);
    assert_eq!(
        fs::read(Path::new(down).join("six.txt")).expect("read"),
        b"over IPv6"
    );
    let out = f.ft_raw(["[::1]", &port, "list", "--dir", local]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, "six.txt\n");
}

#[test]
fn json_reports_have_every_field() {
    let f = Fixture::new();
    fs::write(f.local().join("j.bin"), [1u8, 2, 3]).expect("write");
    let out = f.ft(&["put", "j.bin", "--json"]);
    assert_success(&out);
    fs::remove_file(f.local().join("j.bin")).expect("remove");
    let out2 = f.ft(&["get", "j.bin", "missing", "--json"]);
    assert_eq!(out2.code, Some(1), "{out2:?}");

    let text = format!("{}{}", out.stdout, out2.stdout);
    let expected = [
        json!({"op": "put", "name": "j.bin", "bytes": 3, "status": "success", "error_kind": null, "message": null}),
        json!({"op": "get", "name": "j.bin", "bytes": 3, "status": "success", "error_kind": null, "message": null}),
        json!({"op": "get", "name": "missing", "bytes": 0, "status": "failure", "error_kind": "not-found"}),
    ];
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), expected.len(), "{text}");
    let peer = format!("127.0.0.1:{}", f.port());
    for (line, want) in lines.iter().zip(&expected) {
        let got: Value = serde_json::from_str(line).expect("a JSON line");
        for field in JSON_REPORT_FIELDS {
            assert!(got.get(field).is_some(), "no {field}: {line}");
        }
        assert_eq!(got["peer"], peer, "{line}");
        assert!(
            got["time"].as_str().is_some_and(|t| t.contains('T')),
            "{line}"
        );
        assert!(got["duration_ms"].is_number(), "{line}");
        for (key, value) in want.as_object().expect("an object") {
            assert_eq!(&got[key], value, "{key} in {line}");
        }
    }
    assert!(
        lines[2].contains("not found"),
        "the message says what happened: {text}"
    );
    assert_eq!(
        fs::read(f.local().join("j.bin")).expect("read"),
        [1u8, 2, 3]
    );
}

/// Without `--dir`, `client_data` is used where it exists, else the current directory.
#[test]
fn the_local_directory_defaults_to_client_data_else_the_current_one() {
    let f = Fixture::new();
    fs::write(f.served().join("x"), b"payload").expect("write");
    let port = f.port();
    let here = f.cwd();
    let out = f.ft_raw(["127.0.0.1", &port, "get", "x"]);
    assert_success(&out);
    assert_eq!(
        fs::read(here.join("x")).expect("in the current directory"),
        b"payload"
    );
    fs::create_dir(here.join("client_data")).expect("mkdir");
    let out = f.ft_raw(["127.0.0.1", &port, "get", "x"]);
    assert_success(&out);
    assert_eq!(
        fs::read(here.join("client_data/x")).expect("in client_data"),
        b"payload"
    );
}

/// `put FILE --as NAME` chooses the name on the server; it takes one file, and the name
/// must be a valid one.
#[test]
fn put_as_chooses_the_name_on_the_server() {
    let f = Fixture::new();
    fs::write(f.local().join("draft.txt"), b"final text").expect("write");
    let out = f.ft(&["put", "draft.txt", "--as", "final.txt"]);
    assert_success(&out);
    assert_eq!(f.served_bytes("final.txt"), b"final text");
    assert!(!f.served().join("draft.txt").exists());
    assert_eq!(
        reports(&out.stdout)[0].summary(),
        "put final.txt 10 bytes success"
    );
    let out = f.ft(&["put", "draft.txt", "--resume", "--as", "again.txt"]);
    assert_success(&out);
    assert_eq!(f.served_bytes("again.txt"), b"final text");

    fs::write(f.local().join("b.txt"), b"b").expect("write");
    let out = f.ft(&["put", "draft.txt", "b.txt", "--as", "x.txt"]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("exactly one FILE"), "{out:?}");
    let out = f.ft(&["put", "draft.txt", "--as", "../x.txt"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(
        reports(&out.stdout)[0].kind.as_deref(),
        Some("invalid-name")
    );
    assert_eq!(names_in(&f.served()), vec!["again.txt", "final.txt"]);
}

/// Output that cannot be written (stdout on a full disk, here `/dev/full`) fails the
/// command after the transfers, saying so: a listing or reports lost must not look
/// complete. A closed pipe (`list | head`) is not a failure.
#[cfg(target_os = "linux")]
#[test]
fn output_lost_on_a_full_disk_fails_the_command() {
    use std::process::{Command, Stdio};
    let f = Fixture::new();
    fs::write(f.local().join("a.txt"), b"a").expect("write");
    let run = |args: &[&str], stdout: Stdio| {
        let mut command = Command::new(util::ftclient());
        command
            .current_dir(f.cwd())
            .args(f.args(args))
            .args(f.trust())
            .stdout(stdout)
            .stderr(Stdio::piped());
        command.output().expect("run ftclient")
    };
    let full = || {
        Stdio::from(
            fs::File::options()
                .write(true)
                .open("/dev/full")
                .expect("open"),
        )
    };
    for args in [
        &["put", "a.txt"][..],
        &["list"],
        &["list", "--json"],
        &["list", "-l"],
    ] {
        let out = run(args, full());
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("ftclient: cannot write to standard output: No space left on device"),
            "{args:?}: {stderr}"
        );
        // A listing's own report (on stderr) says it failed too.
        if args[0] == "list" && !args.contains(&"--json") {
            assert!(
                stderr.contains("failure io: writing the listing to standard output"),
                "{args:?}: {stderr}"
            );
        }
    }
    assert_eq!(
        f.served_bytes("a.txt"),
        b"a",
        "the upload itself went through"
    );
    // A reader that stops early: still a success.
    let mut command = Command::new(util::ftclient());
    command
        .current_dir(f.cwd())
        .args(f.args(&["list"]))
        .args(f.trust())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn");
    drop(child.stdout.take());
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0));
}

/// A FIFO named on the command line is refused at once, with how to send it as a stream;
/// opening it used to wait for a writer, forever.
#[cfg(unix)]
#[test]
fn a_fifo_is_refused_without_waiting_for_a_writer() {
    let f = Fixture::new();
    let fifo = f.local().join("pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    fs::write(f.local().join("a.txt"), b"a").expect("write");
    // Run with the test's deadline: a hang fails it.
    let out = f.ft(&["put", "pipe", "a.txt"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(
        outcomes(&out),
        vec![outcome("pipe", Some("not-found")), outcome("a.txt", None)],
        "{out:?}"
    );
    assert!(out.stdout.contains("put - --as NAME < FILE"), "{out:?}");
    assert_eq!(f.served_bytes("a.txt"), b"a");
}
