//! Resuming with the real processes: a transfer of a large file (or any, with `--resume`)
//! interrupted by Ctrl-C (SIGINT) or killed keeps a hidden partial, and the next run of the
//! same command moves only the rest and ends byte-identical; `--no-resume` starts over.

#![cfg(unix)]

mod util;

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use util::{Fixture, Line, ftclient, noise, partial_len, temp_len};

const SIZE: usize = 48 << 20;

/// How many bytes a hidden file of a transfer holds in a directory, if there is one.
type Held = fn(&Path) -> Option<u64>;

/// Starts `ftclient ARGS`, sends it SIGINT once `dir` holds a partial of at least 4 MiB,
/// and returns its exit code.
fn interrupt(f: &Fixture, args: &[&str], dir: &Path) -> Option<i32> {
    signal_when(f, args, libc::SIGINT, || {
        partial_len(dir).is_some_and(|len| len >= 4 << 20)
    })
    .status
    .code()
}

/// Starts `ftclient ARGS`, sends it `signal` once `ready()`, and returns what it printed
/// and its exit status (without a code when the signal killed it).
fn signal_when(
    f: &Fixture,
    args: &[&str],
    signal: libc::c_int,
    mut ready: impl FnMut() -> bool,
) -> Output {
    let mut child = Command::new(ftclient())
        .args(f.args(args))
        .args(f.trust())
        .current_dir(f.cwd())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ftclient");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready() {
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("ftclient finished ({status}) before it could be interrupted");
        }
        assert!(
            Instant::now() < deadline,
            "the transfer never got under way"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let pid = libc::pid_t::try_from(child.id()).expect("pid");
    // SAFETY: kill with a live child's pid (not yet reaped, so not reused).
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    child.wait_with_output().expect("wait")
}

/// Polls `len()` (up to 10 s) until it says something.
fn eventually(mut len: impl FnMut() -> Option<u64>) -> Option<u64> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = len();
    while got.is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
        got = len();
    }
    got
}

/// The ways to ask for a download or upload that can be continued: `--resume` for any
/// file, and nothing at all for a file of 16 MiB or more (this one is 48 MiB).
const ASKED: [&[&str]; 2] = [&["--resume"], &[]];

#[test]
fn an_interrupted_get_resumes_with_only_the_rest() {
    for asked in ASKED {
        let f = Fixture::new();
        let data = noise(SIZE, 1);
        fs::write(f.served().join("big.bin"), &data).expect("write");
        let args = [&["get"][..], asked, &["big.bin"]].concat();

        let code = interrupt(&f, &args, &f.local());
        assert_eq!(code, Some(130), "{asked:?}: Ctrl-C exits 130");
        assert!(
            !f.local().join("big.bin").exists(),
            "nothing under the final name"
        );
        let kept = partial_len(&f.local()).expect("the partial is kept");
        assert!(kept < SIZE as u64);

        let out = f.ft(&args);
        assert_eq!(out.code, Some(0), "{asked:?}: {out:?}");
        let line = Line::parse(out.stdout.lines().next().expect("a report"));
        assert_eq!(
            line.count,
            SIZE as u64 - kept,
            "{asked:?}: only the rest moved: {line:?}"
        );
        assert_eq!(fs::read(f.local().join("big.bin")).expect("read"), data);
        assert_eq!(partial_len(&f.local()), None);
    }
}

#[test]
fn an_interrupted_put_resumes_with_only_the_rest() {
    for asked in ASKED {
        let f = Fixture::new();
        let data = noise(SIZE, 1);
        fs::write(f.local().join("big.bin"), &data).expect("write");
        let args = [&["put"][..], asked, &["big.bin"]].concat();

        let code = interrupt(&f, &args, &f.served());
        assert_eq!(code, Some(130), "{asked:?}: Ctrl-C exits 130");
        assert!(
            !f.served().join("big.bin").exists(),
            "nothing visible on the server"
        );
        // The server keeps it once it has read the client's abort.
        let kept = eventually(|| partial_len(&f.served())).expect("the server kept the partial");

        let out = f.ft(&args);
        assert_eq!(out.code, Some(0), "{asked:?}: {out:?}");
        let line = Line::parse(out.stdout.lines().next().expect("a report"));
        assert!(
            line.count <= SIZE as u64 - kept,
            "{asked:?}: only the rest moved: {line:?}"
        );
        assert_eq!(f.served_bytes("big.bin"), data);
        assert_eq!(partial_len(&f.served()), None);
    }
}

/// After Ctrl-C, the report says how to go on; with `--no-resume` nothing is kept and the
/// report says the next run starts over.
#[test]
fn the_report_of_an_interrupted_transfer_says_how_to_go_on() {
    for (extra, says, kept) in [
        (&[][..], "run the same command again to go on", true),
        (
            &["--no-resume"][..],
            "run the same command again to start over",
            false,
        ),
    ] {
        let f = Fixture::new();
        fs::write(f.served().join("big.bin"), noise(SIZE, 2)).expect("write");
        let args = [&["get"][..], extra, &["big.bin"]].concat();
        let out = signal_when(&f, &args, libc::SIGINT, || {
            partial_len(&f.local())
                .or_else(|| temp_len(&f.local()))
                .is_some_and(|len| len >= 4 << 20)
        });
        assert_eq!(out.status.code(), Some(130));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("cancelled"), "{stdout}");
        assert!(stdout.contains(says), "{extra:?}: {stdout}");
        assert_eq!(partial_len(&f.local()).is_some(), kept, "{extra:?}");
    }
}

#[test]
fn many_small_files_go_in_one_command_each_reported_in_order() {
    let f = Fixture::new();
    let mut args = vec!["put".to_owned()];
    for i in 0..300 {
        let name = format!("s{i:03}");
        fs::write(f.local().join(&name), noise(i * 13, 1)).expect("write");
        args.push(name);
    }
    args.insert(150, "missing".into());
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = f.ft(&argv);
    assert_eq!(out.code, Some(1), "one file was missing");
    let lines: Vec<Line> = out.stdout.lines().map(Line::parse).collect();
    let names: Vec<&str> = lines.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, argv[1..], "one report per file, in order");
    for line in &lines {
        let want = if line.name == "missing" {
            Some("not-found")
        } else {
            None
        };
        assert_eq!(line.kind.as_deref(), want, "{line:?}");
    }
    for i in 0..300 {
        assert_eq!(f.served_bytes(&format!("s{i:03}")), noise(i * 13, 1));
    }

    let mut get: Vec<&str> = vec!["get"];
    get.extend(argv[1..].iter().filter(|n| **n != "missing"));
    fs::remove_dir_all(f.local()).expect("rm");
    fs::create_dir(f.local()).expect("mkdir");
    let out = f.ft(&get);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout.lines().count(), 300);
    for i in 0..300 {
        let name = format!("s{i:03}");
        assert_eq!(
            fs::read(f.local().join(&name)).expect("read"),
            noise(i * 13, 1)
        );
    }
}

/// A client killed outright (no chance to clean up) in the middle of an upload it did not
/// make resumable (`--no-resume`): the server removes the temporary file and the name stays
/// free. A plain upload of a large file is resumable: the server keeps what arrived, and
/// the next plain run sends only the rest.
#[test]
fn a_client_killed_mid_upload_leaves_nothing_or_a_partial_to_continue() {
    for resumable in [false, true] {
        let f = Fixture::new();
        let data = noise(SIZE, 1);
        fs::write(f.local().join("big.bin"), &data).expect("write");
        let (args, held): (&[&str], Held) = if resumable {
            (&["put", "big.bin"], partial_len)
        } else {
            (&["put", "--no-resume", "big.bin"], temp_len)
        };
        let killed = signal_when(&f, args, libc::SIGKILL, || {
            held(&f.served()).is_some_and(|len| len >= 4 << 20)
        });
        assert_eq!(killed.status.code(), None, "killed by the signal");
        let deadline = Instant::now() + Duration::from_secs(10);
        while temp_len(&f.served()).is_some() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(
            temp_len(&f.served()),
            None,
            "the server removed its temporary file"
        );
        assert!(!f.served().join("big.bin").exists());
        let kept = partial_len(&f.served());
        assert_eq!(kept.is_some(), resumable, "a partial only when resumable");
        let out = f.ft(&["put", "big.bin"]);
        assert_eq!(out.code, Some(0), "the name is free: {out:?}");
        let line = Line::parse(out.stdout.lines().next().expect("a report"));
        // The server may have written more after we looked (what was on its way).
        let at_most = SIZE as u64 - kept.unwrap_or(0);
        assert!(line.count <= at_most, "{line:?}, at most {at_most}");
        if !resumable {
            assert_eq!(line.count, SIZE as u64, "{line:?}");
        }
        assert_eq!(f.served_bytes("big.bin"), data);
        assert_eq!(partial_len(&f.served()), None);
    }
}

/// A client killed in the middle of a download it did not make resumable leaves its
/// temporary file (it had no chance to remove it); the next `ftclient get` in that
/// directory removes it. A plain download of a large file goes into a partial from its
/// first byte, so even a killed client's next run continues it.
#[test]
fn a_client_killed_mid_download_is_cleaned_up_or_continued_by_the_next_run() {
    for resumable in [false, true] {
        let f = Fixture::new();
        let data = noise(SIZE, 1);
        fs::write(f.served().join("big.bin"), &data).expect("write");
        let (args, held): (&[&str], Held) = if resumable {
            (&["get", "big.bin"], partial_len)
        } else {
            (&["get", "--no-resume", "big.bin"], temp_len)
        };
        let killed = signal_when(&f, args, libc::SIGKILL, || {
            held(&f.local()).is_some_and(|len| len >= 4 << 20)
        });
        assert_eq!(killed.status.code(), None, "killed by the signal");
        let kept = held(&f.local()).expect("the killed client's file");
        assert!(!f.local().join("big.bin").exists());
        let out = f.ft(&["get", "big.bin"]);
        assert_eq!(out.code, Some(0), "{out:?}");
        let line = Line::parse(out.stdout.lines().next().expect("a report"));
        let moved = if resumable {
            SIZE as u64 - kept
        } else {
            SIZE as u64
        };
        assert_eq!(line.count, moved, "{line:?}");
        assert_eq!(temp_len(&f.local()), None, "cleaned up");
        assert_eq!(partial_len(&f.local()), None, "used up");
        assert_eq!(fs::read(f.local().join("big.bin")).expect("read"), data);
    }
}

/// `--no-resume` starts over: a download discards the partial an interrupted one kept.
#[test]
fn no_resume_starts_over() {
    let f = Fixture::new();
    let data = noise(SIZE, 3);
    fs::write(f.served().join("big.bin"), &data).expect("write");
    assert_eq!(interrupt(&f, &["get", "big.bin"], &f.local()), Some(130));
    assert!(partial_len(&f.local()).is_some());
    let out = f.ft(&["get", "--no-resume", "big.bin"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let line = Line::parse(out.stdout.lines().next().expect("a report"));
    assert_eq!(line.count, SIZE as u64, "all of it moved: {line:?}");
    assert_eq!(partial_len(&f.local()), None, "the partial was discarded");
    assert_eq!(fs::read(f.local().join("big.bin")).expect("read"), data);
    let refused = f.ft(&["get", "--resume", "--no-resume", "big.bin"]);
    assert_eq!(refused.code, Some(2), "{refused:?}");
}

/// Ctrl-C in the middle of many files: the items it kept from starting are counted in one
/// line on stderr, not reported one by one (the first only), and every file is accounted
/// for: moved, failed, or counted as not started.
#[test]
fn an_interrupt_counts_what_it_kept_from_starting_in_one_line() {
    let f = Fixture::new();
    let top = f.local().join("many");
    fs::create_dir(&top).expect("mkdir");
    const FILES: usize = 3000;
    for i in 0..FILES {
        fs::write(top.join(format!("f{i:04}")), [b'x']).expect("write");
    }
    let served = f.served().join("many");
    let out = signal_when(&f, &["put", "-r", "many"], libc::SIGINT, || {
        fs::read_dir(&served).is_ok_and(|mut d| d.next().is_some())
    });
    assert_eq!(out.status.code(), Some(130), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<Line> = stdout.lines().map(Line::parse).collect();
    let unstarted_lines = lines
        .iter()
        .filter(|l| l.kind.as_deref() == Some("cancelled") && l.count == 0)
        .count();
    assert!(unstarted_lines <= 1, "{unstarted_lines} lines: {stdout}");
    let counted: usize = stderr
        .lines()
        .find_map(|l| l.strip_prefix("ftclient: interrupted: "))
        .and_then(|rest| rest.split(' ').next())
        .map_or(0, |n| n.parse().expect("a count"));
    assert_eq!(lines.len() + counted, FILES, "{stdout}\n{stderr}");
}
