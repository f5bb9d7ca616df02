//! Helpers for the CLI tests: run the real `ftserver` (found next to `ftclient`) as a
//! process, read the port it prints, kill it when the test ends even on panic, and run
//! `ftclient` (or anything else) to completion capturing what it prints; a [`Fixture`] of
//! temporary directories around a server.

// Each test crate compiles this module and uses a different part of it.
#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long anything that should be quick may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// The ftclient binary under test.
pub fn ftclient() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ftclient"))
}

/// The ftserver binary: Cargo only names this package's binaries, but a workspace build puts
/// every binary in the same directory.
pub fn ftserver() -> PathBuf {
    let exe = ftclient().with_file_name(format!("ftserver{}", std::env::consts::EXE_SUFFIX));
    assert!(
        exe.is_file(),
        "{} is missing: run `cargo test --workspace` (or `cargo build -p ftserver` first)",
        exe.display()
    );
    exe
}

/// A running `ftserver`, killed and reaped on drop.
pub struct ServerProcess {
    child: Child,
    /// Where it listens, as printed on its first line.
    pub addr: SocketAddr,
    stdout: Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl ServerProcess {
    /// Starts `ftserver 0 --bind IP --root ROOT` and waits for its first line.
    pub fn start(ip: IpAddr, root: &Path) -> ServerProcess {
        ServerProcess::start_with(ip, root, &[])
    }

    /// Starts `ftserver 0 --bind IP --root ROOT EXTRA…` and waits for its first line.
    pub fn start_with(ip: IpAddr, root: &Path, extra: &[&str]) -> ServerProcess {
        let mut child = Command::new(ftserver())
            .args(["0", "--bind", &ip.to_string(), "--root"])
            .arg(root)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ftserver");
        let stdout = lines(child.stdout.take().expect("piped stdout"));
        let stderr = collect(child.stderr.take().expect("piped stderr"));
        let mut server = ServerProcess {
            child,
            addr: SocketAddr::new(ip, 0),
            stdout,
            stderr,
        };
        let first = server.next_line();
        let ip_text = ip.to_string();
        let port = match first.split(' ').collect::<Vec<_>>()[..] {
            [shown, port, "server", "up", "and", "running"] if shown == ip_text => {
                port.parse::<u16>().expect("numeric port")
            }
            _ => panic!("unexpected first line {first:?}"),
        };
        assert_ne!(port, 0, "the real port must be printed, not 0");
        server.addr.set_port(port);
        server
    }

    /// The next stdout line; panics if none comes within [`DEADLINE`].
    pub fn next_line(&self) -> String {
        match self.stdout.recv_timeout(DEADLINE) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => {
                panic!("no output from ftserver; stderr: {}", self.stderr())
            }
            Err(RecvTimeoutError::Disconnected) => {
                panic!("ftserver closed its stdout; stderr: {}", self.stderr())
            }
        }
    }

    /// Everything written on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Forwards each stdout line to a channel, so the child never blocks on a full pipe.
fn lines(stdout: ChildStdout) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Accumulates a stream in a shared string.
fn collect(mut stream: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let shared = Arc::clone(&text);
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = stream.read(&mut buf) {
            shared
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    text
}

/// What a finished process printed.
#[derive(Debug)]
pub struct Output {
    /// Exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs `ftclient ARGS…` in `cwd` to completion, killing it and failing if it takes longer
/// than [`DEADLINE`].
pub fn ftclient_in<I, S>(cwd: &Path, args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::new(ftclient());
    command.current_dir(cwd).args(args);
    run(command)
}

/// Runs `command` to completion with stdin empty, capturing stdout and stderr; kills it and
/// fails if it takes longer than [`DEADLINE`].
pub fn run(mut command: Command) -> Output {
    let exe = PathBuf::from(command.get_program());
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", exe.display()));
    let stdout = read_all(child.stdout.take().expect("piped stdout"));
    let stderr = read_all(child.stderr.take().expect("piped stderr"));
    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{} did not finish within {DEADLINE:?}", exe.display());
        }
        thread::sleep(Duration::from_millis(5));
    };
    Output {
        code: status.code(),
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

/// Reads a stream to its end on another thread.
fn read_all(mut stream: impl Read + Send + 'static) -> JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stream.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Names of ft temporary files in `dir`.
pub fn temp_files(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .expect("read_dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with(".ft-tmp-"))
        .collect()
}

/// One text report line, split into the fields a user reads.
#[derive(Debug)]
pub struct Line {
    /// The peer's IP address.
    pub ip: String,
    /// `put`, `get`, `list` or `connect`.
    pub op: String,
    /// The file name, `-` for none.
    pub name: String,
    /// Bytes moved (entries for a listing).
    pub count: u64,
    /// `bytes` or `entries`.
    pub unit: String,
    /// `None` on success, else the error kind (e.g. `not-found`).
    pub kind: Option<String>,
    /// The failure message, empty on success.
    pub message: String,
}

impl Line {
    /// `OP NAME COUNT UNIT success|KIND`: what a test compares, without time and ports.
    pub fn summary(&self) -> String {
        format!(
            "{} {} {} {} {}",
            self.op,
            self.name,
            self.count,
            self.unit,
            self.kind.as_deref().unwrap_or("success")
        )
    }

    /// Parses `TIME IP PORT OP NAME COUNT UNIT DURATION success|failure KIND: MESSAGE`.
    pub fn parse(line: &str) -> Line {
        let fields: Vec<&str> = line.splitn(10, ' ').collect();
        assert!(fields.len() >= 9, "not a report line: {line:?}");
        assert!(
            fields[0].contains('T') && fields[7].ends_with('s'),
            "not a report line: {line:?}"
        );
        fields[2].parse::<u16>().expect("port field");
        let (kind, message) = match fields[8] {
            "success" => (None, String::new()),
            "failure" => {
                let rest = fields.get(9).expect("failure kind");
                let (kind, message) = rest.split_once(": ").expect("KIND: MESSAGE");
                (Some(kind.to_owned()), message.to_owned())
            }
            other => panic!("status {other:?} in {line:?}"),
        };
        Line {
            ip: fields[1].to_owned(),
            op: fields[3].to_owned(),
            name: fields[4].to_owned(),
            count: fields[5].parse().expect("count field"),
            unit: fields[6].to_owned(),
            kind,
            message,
        }
    }
}

/// A server on its own directory, plus a local directory and a working directory for the
/// client, all under one temporary directory: `served/`, `local/`, `cwd/`.
pub struct Fixture {
    /// The running server.
    pub server: ServerProcess,
    /// The temporary directory holding everything.
    pub base: TempDir,
}

impl Fixture {
    /// A server on 127.0.0.1.
    pub fn new() -> Fixture {
        Fixture::on(IpAddr::V4(Ipv4Addr::LOCALHOST))
    }

    /// A server on `ip`.
    pub fn on(ip: IpAddr) -> Fixture {
        Fixture::with(ip, &[])
    }

    /// A server on 127.0.0.1 started with `extra` options.
    pub fn with_options(extra: &[&str]) -> Fixture {
        Fixture::with(IpAddr::V4(Ipv4Addr::LOCALHOST), extra)
    }

    fn with(ip: IpAddr, extra: &[&str]) -> Fixture {
        let base = tempfile::tempdir().expect("create a temporary directory");
        for dir in ["served", "local", "cwd"] {
            fs::create_dir(base.path().join(dir)).expect("mkdir");
        }
        let server = ServerProcess::start_with(ip, &base.path().join("served"), extra);
        Fixture { server, base }
    }

    /// The served directory.
    pub fn served(&self) -> PathBuf {
        self.base.path().join("served")
    }

    /// The client's `--dir`.
    pub fn local(&self) -> PathBuf {
        self.base.path().join("local")
    }

    /// The client's working directory.
    pub fn cwd(&self) -> PathBuf {
        self.base.path().join("cwd")
    }

    /// The server's port, as text.
    pub fn port(&self) -> String {
        self.server.addr.port().to_string()
    }

    /// `127.0.0.1 PORT ARGS… --dir LOCAL`: the arguments [`Fixture::ft`] passes.
    pub fn args(&self, args: &[&str]) -> Vec<OsString> {
        let mut all: Vec<OsString> = vec!["127.0.0.1".into(), self.port().into()];
        all.extend(args.iter().map(OsString::from));
        all.extend(["--dir".into(), self.local().into()]);
        all
    }

    /// `ftclient 127.0.0.1 PORT ARGS… --dir LOCAL`, run in `cwd/`.
    pub fn ft(&self, args: &[&str]) -> Output {
        self.ft_raw(self.args(args))
    }

    /// `ftclient ARGS…` exactly as given, run in `cwd/`.
    pub fn ft_raw<S: Into<OsString>>(&self, args: impl IntoIterator<Item = S>) -> Output {
        ftclient_in(&self.cwd(), args.into_iter().map(Into::into))
    }

    /// The bytes of `name` in the served directory.
    pub fn served_bytes(&self, name: &str) -> Vec<u8> {
        fs::read(self.served().join(name)).unwrap_or_else(|e| panic!("served {name}: {e}"))
    }
}

/// Every report line of `text`, parsed.
pub fn reports(text: &str) -> Vec<Line> {
    text.lines().map(Line::parse).collect()
}

/// The names in `dir`, sorted.
pub fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read_dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

/// Deterministic bytes that do not compress into a pattern a bug could hide in.
pub fn noise(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[5]
        })
        .collect()
}

/// A port on 127.0.0.1 where nothing listens: bound by the system, then released.
pub fn dead_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// Exit status 0 and nothing on stderr.
pub fn assert_success(out: &Output) {
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.is_empty(), "{out:?}");
}
