//! `--resume` with the real processes: a transfer interrupted by Ctrl-C (SIGINT) keeps a
//! hidden partial, and the next `--resume` run moves only the rest and ends byte-identical.

#![cfg(unix)]

mod util;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use util::{Fixture, Line, ftclient, noise};

const SIZE: usize = 128 << 20;

fn partial_len(dir: &Path) -> Option<u64> {
    fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().starts_with(".ft-part-"))
        .and_then(|e| e.metadata().ok())
        .map(|m| m.len())
}

/// Starts `ftclient ARGS`, sends it SIGINT once `dir` holds a partial of at least 8 MiB,
/// and returns its exit code.
fn interrupt(f: &Fixture, args: &[&str], dir: &Path) -> Option<i32> {
    let mut child = Command::new(ftclient())
        .args(f.args(args))
        .current_dir(f.cwd())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ftclient");
    let deadline = Instant::now() + Duration::from_secs(30);
    while partial_len(dir).is_none_or(|len| len < 8 << 20) {
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("ftclient finished ({status}) before it could be interrupted");
        }
        assert!(Instant::now() < deadline, "no partial appeared");
        std::thread::sleep(Duration::from_millis(1));
    }
    let pid = libc::pid_t::try_from(child.id()).expect("pid");
    // SAFETY: kill with a live child's pid (not yet reaped, so not reused).
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    child.wait().expect("wait").code()
}

#[test]
fn an_interrupted_get_resumes_with_only_the_rest() {
    let f = Fixture::new();
    let data = noise(SIZE);
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
    let data = noise(SIZE);
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
        fs::write(f.local().join(&name), noise(i * 13)).expect("write");
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
        assert_eq!(f.served_bytes(&format!("s{i:03}")), noise(i * 13));
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
            noise(i * 13)
        );
    }
}
