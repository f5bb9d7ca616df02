//! The real `ftserver` binary as a user runs it: argument checks, the first line, one report
//! per request (text and JSON), and a clean exit on SIGTERM / SIGINT.

mod util;

use std::ffi::OsString;
use std::fs;
use std::io::{self, Read};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use ftlib::store::DirStore;
use ftlib::{Client, ErrorKind};
use serde_json::{Value, json};
use tempfile::TempDir;
use util::{
    DEADLINE, JSON_REPORT_FIELDS, Line, ServerProcess, client, ftserver, noise, pinned, run,
    temp_files, wait_until,
};

fn tempdir() -> TempDir {
    tempfile::tempdir().expect("create a temporary directory")
}

/// `ftserver PORT --bind 127.0.0.1 --root ROOT`.
fn serve_args(port: u16, root: &Path) -> Vec<OsString> {
    vec![
        port.to_string().into(),
        "--bind".into(),
        "127.0.0.1".into(),
        "--root".into(),
        root.into(),
    ]
}

#[test]
fn missing_root_is_refused_naming_the_directory() {
    let base = tempdir();
    let missing = base.path().join("no-such-dir");
    let out = run(ftserver(), serve_args(0, &missing));
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(!out.stdout.contains("up and running"), "{out:?}");
    assert!(out.stderr.starts_with("ftserver: "), "{out:?}");
    assert!(
        out.stderr.contains(&missing.display().to_string()),
        "{out:?}"
    );
    assert!(out.stderr.contains("does not exist"), "{out:?}");
    assert!(
        out.stderr
            .contains("create it, or choose another directory with --root"),
        "says what to do: {out:?}"
    );
    assert!(!missing.exists(), "the root must not be created");
}

#[test]
fn root_that_is_a_file_is_refused() {
    let base = tempdir();
    let file = base.path().join("plain-file");
    fs::write(&file, b"not a directory").expect("write");
    let out = run(ftserver(), serve_args(0, &file));
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains(&file.display().to_string()), "{out:?}");
    assert!(out.stderr.contains("not a directory"), "{out:?}");
    assert_eq!(fs::read(&file).expect("read"), b"not a directory");
}

#[test]
fn port_in_use_is_refused() {
    let root = tempdir();
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let out = run(ftserver(), serve_args(port, root.path()));
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{out:?}"
    );
    assert!(
        out.stderr
            .contains("choose another port (0 picks a free one)"),
        "says what to do: {out:?}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let rows: &[&[&str]] = &[
        &[],
        &["not-a-port"],
        &["70000"],
        &["0", "--max-connections", "0"],
        &["0", "--idle-timeout", "0"],
        &["0", "--partial-max-count", "-1"],
        &["0", "--partial-max-count", "many"],
        &["0", "--no-such-option"],
    ];
    for args in rows {
        let out = run(ftserver(), *args);
        assert_eq!(out.code, Some(2), "{args:?}: {out:?}");
        assert!(out.stderr.starts_with("error: "), "{args:?}: {out:?}");
        assert!(out.stdout.is_empty(), "{args:?}: {out:?}");
    }
}

#[test]
fn help_shows_examples() {
    let out = run(ftserver(), ["--help"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    for needle in ["Examples:", "ftserver 6789", "--root", "--json", "SIGTERM"] {
        assert!(out.stdout.contains(needle), "{needle:?} missing: {out:?}");
    }
}

#[test]
fn port_0_prints_the_real_port_and_it_accepts_clients() {
    let root = tempdir();
    // `start` parses `127.0.0.1 <port> server up and running` and refuses port 0.
    let server = ServerProcess::start(root.path(), &[]);
    assert_eq!(server.addr.ip().to_string(), "127.0.0.1");
    TcpStream::connect(server.addr).expect("the printed port accepts connections");
    let entries = client(&server).list().expect("an ft server answers there");
    assert!(entries.is_empty());
}

#[test]
fn stale_temp_file_is_removed_at_start_and_never_listed() {
    let root = tempdir();
    let stale = root.path().join(".ft-tmp-4194305-0-0");
    fs::write(&stale, b"left by a crash").expect("write");
    fs::write(root.path().join("keep.txt"), b"kept").expect("write");
    let server = ServerProcess::start(root.path(), &[]);
    assert!(!stale.exists(), "stale temporary file still there once up");
    let names: Vec<String> = client(&server)
        .list()
        .expect("list")
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["keep.txt"]);
    assert_eq!(
        fs::read(root.path().join("keep.txt")).expect("read"),
        b"kept"
    );
}

#[test]
fn prints_one_report_line_per_request() {
    let root = tempdir();
    let local = tempdir();
    let server = ServerProcess::start(root.path(), &[]);
    let here = DirStore::open(local.path()).expect("local dir");
    let mut c = client(&server);
    c.put_reader(&b"hello"[..], 5, "a.txt", |_| {})
        .expect("put");
    c.get("a.txt", &here, false, |_| {}).expect("get");
    assert_eq!(c.list().expect("list").len(), 1);
    let missing = c.get("missing", &here, false, |_| {}).expect_err("missing");
    assert_eq!(missing.kind(), ErrorKind::NotFound);
    let again = c
        .put_reader(&b"other"[..], 5, "a.txt", |_| {})
        .expect_err("exists");
    assert_eq!(again.kind(), ErrorKind::AlreadyExists);

    let lines: Vec<Line> = (0..5).map(|_| Line::parse(&server.next_line())).collect();
    let summaries: Vec<String> = lines.iter().map(Line::summary).collect();
    assert_eq!(
        summaries,
        [
            "put a.txt 5 bytes success",
            "get a.txt 5 bytes success",
            "list - 1 entries success",
            "get missing 0 bytes not-found",
            "put a.txt 0 bytes already-exists",
        ]
    );
    assert!(lines.iter().all(|l| l.ip == "127.0.0.1"), "{lines:?}");
    assert!(lines[3].message.contains("missing not found"), "{lines:?}");
    assert!(
        lines[4].message.contains("a.txt already exists"),
        "{lines:?}"
    );
    assert_eq!(server.try_line(Duration::from_millis(100)), None);
    assert_eq!(fs::read(root.path().join("a.txt")).expect("read"), b"hello");
}

#[test]
fn json_reports_are_one_object_per_line() {
    let root = tempdir();
    let local = tempdir();
    let server = ServerProcess::start(root.path(), &["--json"]);
    let here = DirStore::open(local.path()).expect("local dir");
    let mut c = client(&server);
    c.put_reader(&b"12345678"[..], 8, "n.bin", |_| {})
        .expect("put");
    c.get("nope", &here, false, |_| {}).expect_err("missing");
    c.list().expect("list");

    let expected = [
        json!({"op": "put", "name": "n.bin", "bytes": 8, "status": "success", "error_kind": null, "message": null}),
        json!({"op": "get", "name": "nope", "bytes": 0, "status": "failure", "error_kind": "not-found"}),
        json!({"op": "list", "name": null, "bytes": 0, "entries": 1, "status": "success", "error_kind": null}),
    ];
    for want in expected {
        let text = server.next_line();
        let got: Value = serde_json::from_str(&text).expect("a JSON line");
        assert_has_report_fields(&got, "127.0.0.1:");
        assert_json_includes(&got, &want);
    }
    assert!(
        server.try_line(Duration::from_millis(100)).is_none(),
        "one line per request"
    );
}

/// The fields every JSON report carries, with the types a program relies on.
fn assert_has_report_fields(json: &Value, peer_prefix: &str) {
    for field in JSON_REPORT_FIELDS {
        assert!(json.get(field).is_some(), "no {field}: {json}");
    }
    assert!(
        json["time"].as_str().is_some_and(|t| t.contains('T')),
        "{json}"
    );
    assert!(
        json["peer"]
            .as_str()
            .is_some_and(|p| p.starts_with(peer_prefix)),
        "{json}"
    );
    assert!(json["bytes"].is_u64(), "{json}");
    assert!(json["duration_ms"].is_number(), "{json}");
    let failed = json["status"] == "failure";
    assert!(failed || json["status"] == "success", "{json}");
    assert_eq!(json["error_kind"].is_string(), failed, "{json}");
    assert_eq!(json["message"].is_string(), failed, "{json}");
}

/// Every field of `want` has the same value in `got`.
fn assert_json_includes(got: &Value, want: &Value) {
    for (key, value) in want.as_object().expect("an object") {
        assert_eq!(&got[key], value, "{key} in {got}");
    }
}

#[test]
fn connections_beyond_the_limit_are_refused_with_busy() {
    let root = tempdir();
    let server = ServerProcess::start(root.path(), &["--max-connections", "1"]);
    let mut first = client(&server);
    first.list().expect("the first client is served");
    let mut config = pinned(&server);
    config.timeout = DEADLINE;
    let refused = Client::connect(server.addr, config).expect_err("over the limit");
    assert_eq!(refused.kind(), ErrorKind::Busy, "{refused}");
    // Two threads report these, in either order.
    let mut lines = [server.next_line(), server.next_line()].map(|l| Line::parse(&l));
    lines.sort_by(|a, b| a.op.cmp(&b.op));
    let ops = lines.each_ref().map(|l| (l.op.as_str(), l.kind.as_deref()));
    assert_eq!(ops, [("connect", Some("busy")), ("list", None)]);
    first.list().expect("the first client is still served");
}

/// Yields `data`, pausing once after `pause_at` bytes until the gate opens (a message) or
/// failing the read when the gate is dropped: an upload the test holds in the middle.
struct Paused {
    data: Vec<u8>,
    pos: usize,
    pause_at: usize,
    gate: Option<mpsc::Receiver<()>>,
}

impl Read for Paused {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.pause_at {
            if let Some(gate) = self.gate.take() {
                gate.recv()
                    .map_err(|_| io::Error::other("upload abandoned by the test"))?;
            }
        }
        let end = if self.pos < self.pause_at {
            self.pause_at
        } else {
            self.data.len()
        };
        let n = buf.len().min(end - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Starts uploading `data` as `name` and returns once the server holds it half-way, as a
/// temporary file in `root`. Send on the gate to let it finish; drop the gate to fail it.
fn paused_upload(
    server: &ServerProcess,
    root: &Path,
    name: &str,
    data: Vec<u8>,
) -> (mpsc::Sender<()>, JoinHandle<ftlib::Result<u64>>) {
    let (gate, wait) = mpsc::channel();
    let mut c = client(server);
    let name = name.to_owned();
    let upload = thread::spawn(move || {
        let size = data.len() as u64;
        let reader = Paused {
            pause_at: data.len() / 2,
            data,
            pos: 0,
            gate: Some(wait),
        };
        c.put_reader(reader, size, &name, |_| {})
    });
    wait_until("the upload's temporary file", || {
        temp_files(root).len() == 1
    });
    (gate, upload)
}

#[cfg(unix)]
#[test]
fn sigterm_and_sigint_stop_it_promptly_with_status_0() {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let root = tempdir();
        let mut server = ServerProcess::start(root.path(), &[]);
        // An idle connection must not hold the shutdown up.
        let mut idle = client(&server);
        idle.list().expect("list");
        server.signal(signal);
        let status = server.wait_exit(Duration::from_secs(3));
        assert_eq!(status.code(), Some(0), "signal {signal}: {status:?}");
        assert!(
            server.stderr().contains("shutting down"),
            "{}",
            server.stderr()
        );
        assert!(temp_files(root.path()).is_empty());
    }
}

/// A server whose stderr is gone (its reader closed) still stops on SIGTERM: the message it
/// cannot print must not kill the signal handler.
#[cfg(unix)]
#[test]
fn sigterm_stops_a_server_whose_stderr_is_closed() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let root = tempdir();
    let home = tempdir();
    let mut command = Command::new(ftserver());
    util::isolate(&mut command, home.path());
    let mut child = command
        .args(["0", "--plain", "--bind", "127.0.0.1", "--root"])
        .arg(root.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stderr.take());
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("first line");
    assert!(first.ends_with("server up and running\n"), "{first:?}");
    let pid = i32::try_from(child.id()).expect("pid");
    // SAFETY: kill(2) on our own child's pid, which is still running (not reaped).
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.is_some(), "SIGTERM did not stop the server");
}

#[cfg(unix)]
#[test]
fn shutdown_lets_a_running_upload_finish() {
    let root = tempdir();
    let mut server = ServerProcess::start(root.path(), &[]);
    let data = noise(600_000, 2);
    let (gate, upload) = paused_upload(&server, root.path(), "late.bin", data.clone());
    server.signal(libc::SIGTERM);
    server.wait_for_stderr("shutting down");
    gate.send(()).expect("open the gate");
    let stored = upload
        .join()
        .expect("upload thread")
        .expect("the upload finishes within the grace period");
    assert_eq!(stored, data.len() as u64);
    assert_eq!(server.wait_exit(DEADLINE).code(), Some(0));
    let line = Line::parse(&server.next_line());
    assert_eq!((line.op.as_str(), line.kind), ("put", None));
    assert_eq!(fs::read(root.path().join("late.bin")).expect("read"), data);
    assert!(temp_files(root.path()).is_empty());
}

#[cfg(unix)]
#[test]
fn shutdown_cuts_a_stalled_upload_after_the_grace_period_and_leaves_nothing() {
    let root = tempdir();
    let mut server = ServerProcess::start(root.path(), &[]);
    let (gate, upload) = paused_upload(&server, root.path(), "stalled.bin", noise(600_000, 2));
    server.signal(libc::SIGTERM);
    // The grace period is 5 s; then the transfer is cut and cleaned up.
    let status = server.wait_exit(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert!(!root.path().join("stalled.bin").exists());
    assert!(temp_files(root.path()).is_empty());
    let line = Line::parse(&server.next_line());
    assert_eq!(
        (line.op.as_str(), line.kind.as_deref()),
        ("put", Some("shutting-down")),
        "the cut upload is reported as cut by the shutdown"
    );
    drop(gate);
    upload
        .join()
        .expect("upload thread")
        .expect_err("the upload was cut");
}

#[cfg(unix)]
#[test]
fn a_second_signal_exits_at_once_and_the_next_start_cleans_up() {
    let root = tempdir();
    let mut server = ServerProcess::start(root.path(), &[]);
    let (gate, upload) = paused_upload(&server, root.path(), "cut.bin", noise(600_000, 2));
    server.signal(libc::SIGINT);
    server.wait_for_stderr("shutting down");
    server.signal(libc::SIGINT);
    let status = server.wait_exit(Duration::from_secs(3));
    assert_eq!(status.code(), Some(130), "{status:?}");
    assert!(server.stderr().contains("exiting at once"));
    drop(gate);
    upload.join().expect("upload thread").expect_err("cut");
    assert!(!root.path().join("cut.bin").exists());

    // Whatever the forced exit left is removed by the next start and never listed.
    let again = ServerProcess::start(root.path(), &[]);
    assert!(client(&again).list().expect("list").is_empty());
    assert!(temp_files(root.path()).is_empty());
}

#[test]
fn a_second_server_on_a_taken_port_leaves_running_uploads_alone() {
    let root = tempdir();
    let server = ServerProcess::start(root.path(), &[]);
    let data = noise(400_000, 2);
    let (gate, upload) = paused_upload(&server, root.path(), "busy.bin", data.clone());
    let out = run(ftserver(), serve_args(server.addr.port(), root.path()));
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("cannot listen on"), "{out:?}");
    assert_eq!(
        temp_files(root.path()).len(),
        1,
        "the running upload's file was removed"
    );
    gate.send(()).expect("open the gate");
    upload
        .join()
        .expect("upload thread")
        .expect("the first server's upload completes");
    assert_eq!(fs::read(root.path().join("busy.bin")).expect("read"), data);
}

/// `--bind` takes a host name as well as an address; a name that does not resolve is an
/// error that says so.
#[test]
fn bind_takes_a_host_name() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let root = tempdir();
    let home = tempdir();
    let mut command = Command::new(ftserver());
    util::isolate(&mut command, home.path());
    let mut child = command
        .args(["0", "--plain", "--bind", "localhost", "--root"])
        .arg(root.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("first line");
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        first.starts_with("127.0.0.1 ") || first.starts_with("::1 "),
        "{first:?}"
    );
    assert!(first.ends_with(" server up and running\n"), "{first:?}");
    let root_arg = root.path().to_str().expect("UTF-8 temp path");
    let out = run(
        ftserver(),
        [
            "0",
            "--plain",
            "--bind",
            "no-such-host.invalid",
            "--root",
            root_arg,
        ],
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("cannot listen on no-such-host.invalid:0"),
        "{out:?}"
    );
}

/// The environment of process `pid`, as `NAME=VALUE` strings.
#[cfg(target_os = "linux")]
fn environment_of(pid: u32) -> Vec<String> {
    fs::read(format!("/proc/{pid}/environ"))
        .expect("read the server's environment")
        .split(|&b| b == 0)
        .filter(|item| !item.is_empty())
        .map(|item| String::from_utf8_lossy(item).into_owned())
        .collect()
}

/// On an AMD x86-64 processor under glibc, ftserver starts itself over once with glibc told
/// never to copy with `rep movsb` (`ftlib::avoid_slow_memory_copies`): the process the test
/// spawned (same pid) then has the tunable in its environment, and still serves with the
/// arguments it was given (port, root, `--plain`) and its name. Anywhere else it runs as
/// started. A
/// `GLIBC_TUNABLES` that names the tunable already is kept as it is, without starting over.
#[cfg(target_os = "linux")]
#[test]
fn starts_over_with_fast_memory_copies_only_where_they_are_slow() {
    let tunable = ftlib::REP_MOVSB_TUNABLE;
    let amd = cfg!(all(target_arch = "x86_64", target_env = "gnu"))
        && fs::read_to_string("/proc/cpuinfo")
            .expect("read /proc/cpuinfo")
            .lines()
            .any(|line| line.starts_with("vendor_id") && line.ends_with("AuthenticAMD"));
    let inherited = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
    let expect_restart = amd && !inherited.contains(tunable);

    let root = tempdir();
    fs::write(root.path().join("a.txt"), b"hello").expect("write");
    let server = ServerProcess::start(root.path(), &["--plain"]);
    let env = environment_of(server.pid());
    let tuned = env
        .iter()
        .any(|item| item.starts_with("GLIBC_TUNABLES=") && item.contains(tunable));
    assert_eq!(
        tuned,
        expect_restart || inherited.contains(tunable),
        "AMD: {amd}; environment: {env:?}"
    );
    assert_eq!(
        env.iter().any(|item| item.starts_with("FT_GLIBC_TUNED=")),
        expect_restart,
        "{env:?}"
    );
    // Started over or not, the process keeps its name (`pgrep ftserver` finds it), which it
    // would not, as `exe`, if started over through /proc/self/exe.
    let comm = fs::read_to_string(format!("/proc/{}/comm", server.pid())).expect("comm");
    assert_eq!(comm.trim_end(), "ftserver");
    let names: Vec<String> = client(&server)
        .list()
        .expect("list")
        .into_iter()
        .map(|entry| entry.name)
        .collect();
    assert_eq!(names, ["a.txt"]);

    let own = format!("{tunable}=2048");
    let root_arg = root.path().to_str().expect("UTF-8 path");
    let server = ft_testutil::ServerProcess::start_with(
        ftserver(),
        std::net::Ipv4Addr::LOCALHOST.into(),
        &["--root", root_arg, "--plain"],
        &[("GLIBC_TUNABLES".to_owned(), own.clone())],
    );
    let env = environment_of(server.pid());
    assert!(
        env.contains(&format!("GLIBC_TUNABLES={own}")),
        "the user's setting changed: {env:?}"
    );
    assert!(
        !env.iter().any(|item| item.starts_with("FT_GLIBC_TUNED=")),
        "started over despite the user's setting: {env:?}"
    );
    drop(server);

    // FT_GLIBC_TUNED set by hand keeps glibc's own choice.
    let server = ft_testutil::ServerProcess::start_with(
        ftserver(),
        std::net::Ipv4Addr::LOCALHOST.into(),
        &["--root", root_arg, "--plain"],
        &[(ftlib::GLIBC_TUNED.to_owned(), "1".to_owned())],
    );
    let env = environment_of(server.pid());
    assert!(
        !env.iter()
            .any(|item| item.starts_with("GLIBC_TUNABLES=") && item.contains(tunable))
            || inherited.contains(tunable),
        "started over despite {}: {env:?}",
        ftlib::GLIBC_TUNED
    );
    drop(server);

    // Started through the dynamic loader, /proc/self/exe is the loader: the program must not
    // execute it (it would run the loader, which would print its own version here).
    let loader = Path::new("/lib64/ld-linux-x86-64.so.2");
    if loader.exists() {
        let out = run(loader, [ftserver().as_os_str(), "--version".as_ref()]);
        assert!(
            out.code == Some(0) && out.stdout.starts_with("ftserver "),
            "{:?} {:?}",
            out.stdout,
            out.stderr
        );
    }
}
