//! `ftclient … list` in its three forms against the real server: plain names (what scripts
//! read), `--long` columns (with `--bytes`), and `--json` objects; names that could drive a
//! terminal are escaped in all three.

mod util;

use std::fs::{self, File};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use util::{Fixture, Line, Output, ftclient, run};

/// 2001-09-09T01:46:40Z.
const BILLENNIUM: u64 = 1_000_000_000;

/// Sets the modification time of `path` (a file or a directory) to `unix` seconds.
fn set_mtime(path: &Path, unix: u64) {
    File::open(path)
        .and_then(|file| file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(unix)))
        .unwrap_or_else(|e| panic!("set the modification time of {}: {e}", path.display()));
}

/// `ftclient 127.0.0.1 PORT ARGS… --dir LOCAL` with `TZ=UTC`, so times print the same
/// everywhere.
fn ft_utc(f: &Fixture, args: &[&str]) -> Output {
    let mut command = Command::new(ftclient());
    command
        .current_dir(f.cwd())
        .args(f.args(args))
        .args(f.trust())
        .env("TZ", "UTC");
    run(command)
}

/// A small file, a larger one and a directory, with known times.
fn three_entries(f: &Fixture) {
    let served = f.served();
    fs::write(served.join("b.txt"), b"hello").expect("write");
    set_mtime(&served.join("b.txt"), BILLENNIUM);
    fs::write(served.join("a.bin"), vec![7u8; 1536 * 1024]).expect("write");
    set_mtime(&served.join("a.bin"), BILLENNIUM + 3600);
    fs::create_dir(served.join("docs")).expect("mkdir");
    set_mtime(&served.join("docs"), BILLENNIUM + 60);
}

#[test]
fn plain_list_stays_one_name_per_line() {
    let f = Fixture::new();
    three_entries(&f);
    let out = f.ft(&["list"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let mut names: Vec<&str> = out.stdout.lines().collect();
    names.sort_unstable();
    assert_eq!(names, ["a.bin", "b.txt", "docs/"], "{out:?}");
    let report = Line::parse(out.stderr.trim_end());
    assert_eq!((report.op.as_str(), report.count), ("list", 3), "{out:?}");
}

#[test]
fn long_list_shows_aligned_columns_sorted_by_name() {
    let f = Fixture::new();
    three_entries(&f);
    for flag in ["--long", "-l"] {
        let out = ft_utc(&f, &["list", flag]);
        assert_eq!(out.code, Some(0), "{flag}: {out:?}");
        assert_eq!(
            out.stdout,
            "file  1.5 MiB  2001-09-09 02:46  a.bin\n\
             file      5 B  2001-09-09 01:46  b.txt\n\
             dir         -  2001-09-09 01:47  docs/\n",
            "{flag}"
        );
        // The report still goes to stderr, alone.
        let report = Line::parse(out.stderr.trim_end());
        assert_eq!((report.op.as_str(), report.count), ("list", 3), "{out:?}");
    }
}

#[test]
fn long_list_with_bytes_shows_exact_sizes() {
    let f = Fixture::new();
    three_entries(&f);
    let out = ft_utc(&f, &["list", "-l", "--bytes"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stdout,
        "file  1572864  2001-09-09 02:46  a.bin\n\
         file        5  2001-09-09 01:46  b.txt\n\
         dir         -  2001-09-09 01:47  docs/\n"
    );
    // --bytes is about the long listing only.
    let out = f.ft(&["list", "--bytes"]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("--long"), "{out:?}");
}

#[test]
fn long_list_of_an_empty_directory_prints_nothing() {
    let f = Fixture::new();
    let out = f.ft(&["list", "-l"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
}

#[test]
fn json_list_gives_one_object_per_entry_and_a_json_report() {
    let f = Fixture::new();
    three_entries(&f);
    for args in [&["list", "--json"][..], &["--json", "list", "-l"][..]] {
        let out = f.ft(args);
        assert_eq!(out.code, Some(0), "{args:?}: {out:?}");
        let mut entries: Vec<Value> = out
            .stdout
            .lines()
            .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
            .collect();
        entries.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        assert_eq!(
            entries,
            [
                json!({"name": "a.bin", "kind": "file", "size": 1_572_864,
                       "modified": "2001-09-09T02:46:40Z", "modified_unix": BILLENNIUM + 3600}),
                json!({"name": "b.txt", "kind": "file", "size": 5,
                       "modified": "2001-09-09T01:46:40Z", "modified_unix": BILLENNIUM}),
                json!({"name": "docs", "kind": "dir", "size": 0,
                       "modified": "2001-09-09T01:47:40Z", "modified_unix": BILLENNIUM + 60}),
            ],
            "{args:?}"
        );
        let report: Value = serde_json::from_str(out.stderr.trim_end()).expect("JSON report");
        assert_eq!(report["op"], "list", "{out:?}");
        assert_eq!(report["entries"], 3, "{out:?}");
        assert_eq!(report["status"], "success", "{out:?}");
    }
}

#[test]
fn names_that_could_drive_a_terminal_are_escaped_in_every_form() {
    let f = Fixture::new();
    let hostile = [
        "clear\x1b[2Jscreen",
        "two\nlines",
        "bidi\u{202e}txt.exe",
        "csi\u{9b}31m",
    ];
    for name in hostile {
        fs::write(f.served().join(name), b"x").expect("write");
    }
    let out = f.ft(&["list"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let mut names: Vec<&str> = out.stdout.lines().collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            r#""bidi\u{202e}txt.exe""#,
            r#""clear\u{1b}[2Jscreen""#,
            r#""csi\u{9b}31m""#,
            r#""two\nlines""#,
        ],
        "{out:?}"
    );

    let out = f.ft(&["list", "-l"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout.lines().count(), hostile.len(), "{out:?}");
    assert!(out.stdout.contains(r#""two\nlines""#), "{out:?}");

    let out = f.ft(&["list", "--json"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let mut got: Vec<String> = out
        .stdout
        .lines()
        .map(|line| {
            let entry: Value = serde_json::from_str(line).expect("JSON");
            entry["name"].as_str().expect("a name").to_owned()
        })
        .collect();
    got.sort_unstable();
    let mut want = hostile.map(str::to_owned).to_vec();
    want.sort_unstable();
    assert_eq!(got, want, "JSON carries the exact names");

    for out in [&out.stdout, &out.stderr] {
        let risky = out
            .chars()
            .filter(|&c| c != '\n')
            .find(|&c| c.is_control() || ('\u{202a}'..='\u{202e}').contains(&c));
        assert_eq!(risky, None, "raw control character printed: {out:?}");
    }
}

/// 32 lowercase hex digits of `data`'s XXH3-128, as ftclient prints digests.
fn hex_digest(data: &[u8]) -> String {
    ft_testutil::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `list -l --digest`: a column of digests before the names — of a file uploaded with ft
/// (its digest kept by the server) and of one written into the served directory by other
/// means (read to answer) alike; `-` for a directory. With `--json`, a `digest` field.
#[test]
fn long_list_with_digests_shows_each_files_xxh3() {
    let f = Fixture::new();
    three_entries(&f);
    fs::write(f.local().join("up.txt"), b"uploaded with ft").expect("write");
    let out = f.ft(&["put", "up.txt"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    set_mtime(&f.served().join("up.txt"), BILLENNIUM);
    let a = hex_digest(&vec![7u8; 1536 * 1024]);
    let b = hex_digest(b"hello");
    let up = hex_digest(b"uploaded with ft");
    let out = ft_utc(&f, &["list", "-l", "--bytes", "--digest"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stdout,
        format!(
            "file  1572864  2001-09-09 02:46  {a}  a.bin\n\
             file        5  2001-09-09 01:46  {b}  b.txt\n\
             dir         -  2001-09-09 01:47  {:<32}  docs/\n\
             file       16  2001-09-09 01:46  {up}  up.txt\n",
            "-"
        )
    );
    let report = Line::parse(out.stderr.trim_end());
    assert_eq!((report.op.as_str(), report.count), ("list", 4), "{out:?}");

    let out = f.ft(&["--json", "list", "-l", "--digest"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let entries: Vec<Value> = out
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect();
    let digest_of = |name: &str| {
        let entry = entries.iter().find(|e| e["name"] == name).expect(name);
        entry.get("digest").cloned()
    };
    assert_eq!(digest_of("b.txt"), Some(json!(b)), "{out:?}");
    assert_eq!(digest_of("up.txt"), Some(json!(up)), "{out:?}");
    assert_eq!(digest_of("docs"), None, "a directory has none: {out:?}");

    // Without --long it is refused, as --bytes is.
    let out = f.ft(&["list", "--digest"]);
    assert_eq!(out.code, Some(2), "{out:?}");
}

/// The JSON reports of put and get carry the file's XXH3-128; the text lines do not change.
#[test]
fn json_reports_carry_the_digest_and_text_lines_do_not() {
    let f = Fixture::new();
    let data = b"a file a person can check";
    fs::write(f.local().join("c.txt"), data).expect("write");
    let want = hex_digest(data);
    let out = f.ft(&["--json", "put", "c.txt"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let report: Value = serde_json::from_str(out.stdout.trim_end()).expect("JSON report");
    assert_eq!(report["digest"], json!(want), "{out:?}");
    fs::remove_file(f.local().join("c.txt")).expect("remove");
    let out = f.ft(&["--json", "get", "c.txt"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let report: Value = serde_json::from_str(out.stdout.trim_end()).expect("JSON report");
    assert_eq!(report["digest"], json!(want), "{out:?}");
    // A skip has none: the same bytes are there already.
    let out = f.ft(&["--json", "put", "c.txt"]);
    let report: Value = serde_json::from_str(out.stdout.trim_end()).expect("JSON report");
    assert_eq!(report["status"], "skipped", "{out:?}");
    assert_eq!(report.get("digest"), None, "{out:?}");
    let out = f.ft(&["get", "c.txt", "--overwrite"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(!out.stdout.contains(&want), "{out:?}");
}
