//! `--resume` with the real processes: a transfer interrupted by Ctrl-C (SIGINT) keeps a
//! hidden partial, and the next `--resume` run moves only the rest and ends byte-identical.

#![cfg(unix)]

mod util;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use util::{Fixture, Line, ftclient, noise};

const SIZE: usize = 48 << 20;

fn partial_len(dir: &Path) -> Option<u64> {
    fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().starts_with(".ft-part-"))
        .and_then(|e| e.metadata().ok())
        .map(|m| m.len())
}

/// Starts `ftclient ARGS`, sends it SIGINT once `dir` holds a partial of at least 4 MiB,
/// and returns its exit code.
fn interrupt(f: &Fixture, args: &[&str], dir: &Path) -> Option<i32> {
    signal_when(f, args, libc::SIGINT, || {
        partial_len(dir).is_some_and(|len| len >= 4 << 20)
    })
}

/// Starts `ftclient ARGS`, sends it `signal` once `ready()`, and returns its exit code
/// (`None` when the signal killed it).
fn signal_when(
    f: &Fixture,
    args: &[&str],
    signal: libc::c_int,
    mut ready: impl FnMut() -> bool,
) -> Option<i32> {
    let mut child = Command::new(ftclient())
        .args(f.args(args))
        .args(f.trust())
        .current_dir(f.cwd())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
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
    child.wait().expect("wait").code()
}

#[test]
fn an_interrupted_get_resumes_with_only_the_rest() {
    let f = Fixture::new();
    let data = noise(SIZE, 1);
    fs::write(f.served().join("big.bin"), &data).expect("write");

    let code = interrupt(&f, &["get", "--resume", "big.bin"], &f.local());
    assert_eq!(code, Some(130), "Ctrl-C exits 130");
    assert!(
        !f.local().join("big.bin").exists(),
        "nothing under the final name"
    );
    let kept = partial_len(&f.local()).expect("the partial is kept");
    assert!(kept < SIZE as u64);

    let out = f.ft(&["get", "--resume", "big.bin"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let line = Line::parse(out.stdout.lines().next().expect("a report"));
    assert_eq!(
        line.count,
        SIZE as u64 - kept,
        "only the rest moved: {line:?}"
    );
    assert_eq!(fs::read(f.local().join("big.bin")).expect("read"), data);
    assert_eq!(partial_len(&f.local()), None);
}

#[test]
fn an_interrupted_put_resumes_with_only_the_rest() {
    let f = Fixture::new();
    let data = noise(SIZE, 1);
    fs::write(f.local().join("big.bin"), &data).expect("write");

    let code = interrupt(&f, &["put", "--resume", "big.bin"], &f.served());
    assert_eq!(code, Some(130), "Ctrl-C exits 130");
    assert!(
        !f.served().join("big.bin").exists(),
        "nothing visible on the server"
    );
    // The server keeps it once it has read the client's abort.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut kept = partial_len(&f.served());
    while kept.is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
        kept = partial_len(&f.served());
    }
    let kept = kept.expect("the server kept the partial");

    let out = f.ft(&["put", "--resume", "big.bin"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let line = Line::parse(out.stdout.lines().next().expect("a report"));
    assert!(
        line.count <= SIZE as u64 - kept,
        "only the rest moved: {line:?}"
    );
    assert_eq!(f.served_bytes("big.bin"), data);
    assert_eq!(partial_len(&f.served()), None);
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

fn temp_len(dir: &Path) -> Option<u64> {
    fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().starts_with(".ft-tmp-"))
        .and_then(|e| e.metadata().ok())
        .map(|m| m.len())
}

/// A client killed outright (no chance to clean up) in the middle of an upload: the server
/// removes the temporary file and the name stays free.
#[test]
fn a_client_killed_mid_upload_leaves_nothing_on_the_server() {
    let f = Fixture::new();
    let data = noise(SIZE, 1);
    fs::write(f.local().join("big.bin"), &data).expect("write");
    let code = signal_when(&f, &["put", "big.bin"], libc::SIGKILL, || {
        temp_len(&f.served()).is_some_and(|len| len >= 4 << 20)
    });
    assert_eq!(code, None, "killed by the signal");
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
    let out = f.ft(&["put", "big.bin"]);
    assert_eq!(out.code, Some(0), "the name is free: {out:?}");
    assert_eq!(f.served_bytes("big.bin"), data);
}

/// A client killed in the middle of a download leaves its temporary file (it had no chance
/// to remove it); the next `ftclient get` in that directory removes it.
#[test]
fn a_client_killed_mid_download_is_cleaned_up_by_the_next_run() {
    let f = Fixture::new();
    let data = noise(SIZE, 1);
    fs::write(f.served().join("big.bin"), &data).expect("write");
    let code = signal_when(&f, &["get", "big.bin"], libc::SIGKILL, || {
        temp_len(&f.local()).is_some_and(|len| len >= 4 << 20)
    });
    assert_eq!(code, None, "killed by the signal");
    assert!(
        temp_len(&f.local()).is_some(),
        "the killed client's temporary file"
    );
    assert!(!f.local().join("big.bin").exists());
    let out = f.ft(&["get", "big.bin"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(temp_len(&f.local()), None, "cleaned up");
    assert_eq!(fs::read(f.local().join("big.bin")).expect("read"), data);
}
