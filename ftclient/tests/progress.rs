//! Progress bars: drawn on stderr when it is a terminal (checked under a pseudo-terminal
//! made by util-linux `script`), never when stderr is a pipe or a file, nor with `--quiet`;
//! the report lines are printed whole in every case.

#![cfg(unix)]

mod util;

use std::ffi::OsString;
use std::fs;
use std::process::Command;

use util::{Fixture, Output, assert_success, ftclient, noise, reports, run};

/// Quotes `text` for `sh`.
fn sh_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// True when util-linux `script` can be run.
fn have_script() -> bool {
    let found = Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success());
    if !found {
        eprintln!("skipped: util-linux `script` is not installed");
    }
    found
}

/// Runs `ftclient ARGS…` (after `127.0.0.1 PORT`, before `--dir LOCAL`) on a 100-column
/// pseudo-terminal: stdout and stderr both go to the terminal, whose output is the returned
/// stdout, unless `shell_tail` redirects one of them (e.g. `2>file`).
fn on_terminal(f: &Fixture, args: &[&str], shell_tail: &str) -> Output {
    let words: Vec<String> = std::iter::once(ftclient().as_os_str().to_owned())
        .chain(f.args(args))
        .chain(f.trust())
        .map(|word: OsString| sh_quote(word.to_str().expect("UTF-8 test paths")))
        .collect();
    let line = format!(
        "stty cols 100 rows 30; exec {} {shell_tail}",
        words.join(" ")
    );
    let mut command = Command::new("script");
    // -q: no banner, -f: flush at once, -e: ftclient's exit status, -c: run this line.
    command
        .args(["-qfec", &line, "/dev/null"])
        .current_dir(f.cwd())
        .env("TERM", "xterm");
    run(command)
}

/// What a terminal would finally show on each line: every `\r` returns to the start of the
/// line and escape sequences are dropped, so only the last text after a `\r` remains; an
/// erased line (`ESC [ 2 K`) counts as a `\r` with nothing after it.
fn screen_text(raw: &str) -> Vec<String> {
    let mut plain = String::new();
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ parameters… final byte in @..~.
            if chars.next_if_eq(&'[').is_some() {
                let mut sequence = String::new();
                for c in chars.by_ref() {
                    sequence.push(c);
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
                if sequence == "2K" {
                    plain.push('\r');
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
        .split('\n')
        .map(|line| {
            let line = line.strip_suffix('\r').unwrap_or(line);
            line.rsplit('\r').next().unwrap_or(line).to_owned()
        })
        .collect()
}

/// Two files to upload: one large enough to take several frames, one small.
fn two_files(f: &Fixture) -> [(&'static str, Vec<u8>); 2] {
    let files = [
        ("big.bin", noise(8 * 1024 * 1024, 1)),
        ("small.txt", b"hi".to_vec()),
    ];
    for (name, data) in &files {
        fs::write(f.local().join(name), data).expect("write");
    }
    files
}

/// The report lines among what a terminal shows.
fn report_lines(screen: &[String]) -> Vec<util::Line> {
    let text: Vec<&str> = screen
        .iter()
        .map(String::as_str)
        .filter(|line| line.ends_with("success") || line.contains(" failure "))
        .collect();
    reports(&text.join("\n"))
}

#[test]
fn bars_are_drawn_on_a_terminal_and_reports_stay_whole() {
    if !have_script() {
        return;
    }
    let f = Fixture::new();
    let files = two_files(&f);
    let out = on_terminal(&f, &["put", "big.bin", "small.txt"], "");
    assert_eq!(out.code, Some(0), "{out:?}");
    let raw = &out.stdout;
    // A per-file bar: the name, bytes done of the total, a rate and an ETA.
    assert!(raw.contains("big.bin"), "{raw:?}");
    assert!(raw.contains("/8.0 MiB"), "no total in {raw:?}");
    assert!(raw.contains("B/s"), "no rate in {raw:?}");
    assert!(raw.contains("ETA"), "no ETA in {raw:?}");
    // Several files: an overall bar too.
    assert!(raw.contains("0/2 files"), "no overall bar in {raw:?}");
    assert!(raw.contains("/2 files"), "no overall bar in {raw:?}");
    assert!(raw.contains('\x1b'), "bars are redrawn in place: {raw:?}");

    // Once the bars are cleared, the terminal shows exactly the two reports.
    let screen = screen_text(raw);
    let lines = report_lines(&screen);
    let got: Vec<_> = lines
        .iter()
        .map(|l| (l.op.as_str(), l.name.as_str(), l.count, l.kind.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            ("put", "big.bin", 8 * 1024 * 1024, None),
            ("put", "small.txt", 2, None)
        ],
        "{screen:?}"
    );
    assert!(
        !screen.iter().any(|line| line.contains("B/s")),
        "a bar was left on screen: {screen:?}"
    );
    for (name, data) in &files {
        assert!(f.served_bytes(name) == *data, "{name} differs");
    }
}

#[test]
fn downloads_draw_a_bar_too() {
    if !have_script() {
        return;
    }
    let f = Fixture::new();
    fs::write(f.served().join("down.bin"), noise(4 * 1024 * 1024, 1)).expect("write");
    let out = on_terminal(&f, &["get", "down.bin"], "");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("down.bin"), "{out:?}");
    assert!(out.stdout.contains("/4.0 MiB"), "{out:?}");
    assert!(
        !out.stdout.contains("/1 files"),
        "one file, no overall bar: {out:?}"
    );
    assert_eq!(report_lines(&screen_text(&out.stdout)).len(), 1, "{out:?}");
    assert_eq!(
        fs::read(f.local().join("down.bin")).expect("downloaded"),
        noise(4 * 1024 * 1024, 1)
    );
}

#[test]
fn quiet_draws_nothing_on_a_terminal() {
    if !have_script() {
        return;
    }
    let f = Fixture::new();
    two_files(&f);
    for flag in ["--quiet", "-q"] {
        fs::remove_file(f.served().join("big.bin")).ok();
        fs::remove_file(f.served().join("small.txt")).ok();
        let out = on_terminal(&f, &["put", "big.bin", "small.txt", flag], "");
        assert_eq!(out.code, Some(0), "{flag}: {out:?}");
        assert_no_drawing(&out.stdout);
        // The terminal turns each \n into \r\n; nothing else.
        let lines: Vec<&str> = out.stdout.split_terminator("\r\n").collect();
        assert_eq!(reports(&lines.join("\n")).len(), 2, "{flag}: {out:?}");
    }
}

#[test]
fn nothing_is_drawn_when_stderr_is_not_a_terminal() {
    let f = Fixture::new();
    two_files(&f);
    // Both streams are pipes.
    let out = f.ft(&["put", "big.bin", "small.txt"]);
    assert_success(&out);
    assert_no_drawing(&out.stdout);
    assert_eq!(reports(&out.stdout).len(), 2, "{out:?}");

    // stdout is a terminal but stderr a file: still nothing drawn.
    if !have_script() {
        return;
    }
    for name in ["big.bin", "small.txt"] {
        fs::remove_file(f.served().join(name)).expect("remove");
    }
    let err = f.base.path().join("stderr.txt");
    let redirect = format!("2>{}", sh_quote(err.to_str().expect("UTF-8 test path")));
    let out = on_terminal(&f, &["put", "big.bin", "small.txt"], &redirect);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(fs::read_to_string(&err).expect("stderr file"), "");
    assert_no_drawing(&out.stdout);
}

/// No escape sequence and no bare carriage return: no bar was drawn.
fn assert_no_drawing(text: &str) {
    assert!(!text.contains('\x1b'), "escape sequence in {text:?}");
    assert!(
        !text.replace("\r\n", "\n").contains('\r'),
        "carriage return in {text:?}"
    );
    assert!(!text.contains("B/s"), "a rate was drawn: {text:?}");
}

/// The bar lines drawn in `raw`, each as wide as the 100-column terminal: escape sequences
/// and line ends cut the output, and a bar drawn right after another (the terminal wraps
/// at the last column) is cut off at 100 characters.
fn drawn_bars(raw: &str) -> Vec<String> {
    let mut pieces = vec![String::new()];
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                if chars.next_if_eq(&'[').is_some() {
                    while chars.next().is_some_and(|c| !('@'..='~').contains(&c)) {}
                }
                pieces.push(String::new());
            }
            '\r' | '\n' => pieces.push(String::new()),
            c => pieces.last_mut().expect("one at least").push(c),
        }
    }
    let chars: Vec<Vec<char>> = pieces.iter().map(|piece| piece.chars().collect()).collect();
    chars
        .iter()
        .flat_map(|piece| piece.chunks(100))
        .map(|line| line.iter().collect::<String>())
        .filter(|line| line.contains(" [") && line.contains("] ") && line.contains("B"))
        .collect()
}

/// Asserts that every bar of `raw` is 100 columns wide with its `[` and `]` in the same
/// columns, and returns the overall bar's lines.
fn assert_aligned(raw: &str) -> Vec<String> {
    let bars = drawn_bars(raw);
    assert!(!bars.is_empty(), "no bar in {raw:?}");
    let columns = |line: &str| {
        let chars: Vec<char> = line.chars().collect();
        let open = chars.iter().position(|&c| c == '[');
        let close = chars.iter().rposition(|&c| c == ']');
        (chars.len(), open, close)
    };
    let first = columns(&bars[0]);
    assert_eq!(first.0, 100, "{bars:#?}");
    for bar in &bars {
        assert_eq!(
            columns(bar),
            first,
            "{bar:?} is not aligned with {:?}",
            bars[0]
        );
    }
    bars.into_iter()
        .filter(|bar| bar.contains("/2 files "))
        .collect()
}

/// File bars and the overall bar line up, for uploads of files and of trees and for
/// downloads; the overall bar of a tree counts bytes of the total, that of downloads the
/// bytes moved, with a rate, as the total is not known up front.
#[test]
fn all_bars_line_up_and_the_overall_bar_counts_bytes() {
    if !have_script() {
        return;
    }
    let f = Fixture::new();
    let files = two_files(&f);
    let out = on_terminal(&f, &["put", "big.bin", "small.txt"], "");
    assert_eq!(out.code, Some(0), "{out:?}");
    let overall = assert_aligned(&out.stdout);
    assert!(
        overall.iter().any(|bar| bar.contains("B/s")),
        "{overall:#?}"
    );

    let tree = f.local().join("tree");
    fs::create_dir(&tree).expect("mkdir");
    for (name, data) in &files {
        fs::write(tree.join(name), data).expect("write");
    }
    let out = on_terminal(&f, &["put", "-r", "tree"], "");
    assert_eq!(out.code, Some(0), "{out:?}");
    let overall = assert_aligned(&out.stdout);
    assert!(
        overall
            .iter()
            .any(|bar| bar.contains("/8.0 MiB") && bar.contains("B/s") && bar.contains("ETA")),
        "bytes of the total, rate and time left: {overall:#?}"
    );

    for (name, data) in &files {
        fs::write(f.served().join(format!("down-{name}")), data).expect("write");
    }
    let out = on_terminal(&f, &["get", "down-big.bin", "down-small.txt"], "");
    assert_eq!(out.code, Some(0), "{out:?}");
    let overall = assert_aligned(&out.stdout);
    assert!(
        overall
            .iter()
            .any(|bar| bar.contains(" MiB ") && bar.contains("B/s")),
        "bytes moved and rate: {overall:#?}"
    );
}
