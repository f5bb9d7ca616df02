//! Helpers shared by ft's tests, one copy each: for the `ftserver` and `ftclient` CLI tests,
//! run a process to completion under a deadline capturing what it prints, run the real
//! `ftserver` (read the port it prints, follow its output without ever blocking it, kill it
//! when the test ends, even on panic) and parse text report lines; for every test,
//! deterministic noise, the body digest, what a directory holds, a counting allocator
//! ([`CountingAlloc`]) and a lying server for client tests ([`fake_server`]).
//!
//! Each package's `tests/util/mod.rs` (`tests/common/mod.rs` in ftlib) uses this crate and
//! adds what only it needs, such as where its binaries are.

mod counting_alloc;
mod data;
mod dir;
pub mod fake_server;
#[cfg(unix)]
pub mod seaweed;
pub mod tls;

pub use counting_alloc::{CountingAlloc, largest_allocation};
pub use data::{digest, noise};
pub use dir::{names_in, names_with, partial_len, partials, temp_files, temp_len};

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long anything that should be quick may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Polls `done` until it holds; fails naming `what` after [`DEADLINE`].
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

/// The fields every `--json` report line carries (docs/JSON.md), on both binaries.
pub const JSON_REPORT_FIELDS: [&str; 10] = [
    "time",
    "peer",
    "user",
    "op",
    "name",
    "bytes",
    "duration_ms",
    "status",
    "error_kind",
    "message",
];

/// Fails unless `bash -n` accepts `script` (a generated completion script, written to a
/// file in `dir`). Where bash is not installed there is nothing to check it with.
pub fn assert_bash_accepts(dir: &Path, name: &str, script: &str) {
    let path = dir.join(name);
    fs::write(&path, script).expect("write");
    if let Ok(check) = Command::new("bash").arg("-n").arg(&path).output() {
        assert!(
            check.status.success(),
            "bash rejects the script: {}",
            String::from_utf8_lossy(&check.stderr)
        );
    }
}

/// Points a binary's home, config and data directories inside `dir`, so that no test reads
/// or writes the real user's known_hosts or server identity.
pub fn isolate(command: &mut Command, dir: &Path) {
    command
        .env("HOME", dir)
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("XDG_DATA_HOME", dir.join("data"));
}

/// A running `ftserver`, killed and reaped on drop.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    /// Where it listens, as printed on its first line.
    pub addr: SocketAddr,
    /// Its fingerprint, as printed on its second line (`None` with `--plain`).
    pub fingerprint: Option<String>,
    stdout: Receiver<String>,
    stderr: Arc<Mutex<String>>,
    /// Its home: where its identity is kept unless `--state-dir` says otherwise.
    pub home: tempfile::TempDir,
}

impl ServerProcess {
    /// Starts `EXE 0 --bind IP --root ROOT EXTRA…`, where `exe` is the ftserver binary, with
    /// its own home ([`isolate`]), and waits for its first line, which must announce the real
    /// port on `ip`, and unless `--plain` is among `extra`, its second, the fingerprint.
    pub fn start(exe: &Path, ip: IpAddr, root: &Path, extra: &[&str]) -> ServerProcess {
        let home = tempfile::tempdir().expect("a home for ftserver");
        ServerProcess::start_in(exe, ip, root, extra, home)
    }

    /// [`ServerProcess::start`] with this home (to restart a server with the same identity).
    pub fn start_in(
        exe: &Path,
        ip: IpAddr,
        root: &Path,
        extra: &[&str],
        home: tempfile::TempDir,
    ) -> ServerProcess {
        ServerProcess::start_at(exe, SocketAddr::new(ip, 0), root, extra, home)
    }

    /// [`ServerProcess::start_in`] on `addr`'s port (0: a free one), to start another server
    /// where a stopped one listened.
    pub fn start_at(
        exe: &Path,
        addr: SocketAddr,
        root: &Path,
        extra: &[&str],
        home: tempfile::TempDir,
    ) -> ServerProcess {
        let ip = addr.ip();
        let mut command = Command::new(exe);
        isolate(&mut command, home.path());
        command
            .arg(addr.port().to_string())
            .args(["--bind", &ip.to_string(), "--root"])
            .arg(root)
            .args(extra);
        ServerProcess::launch(command, addr, extra.contains(&"--plain"), home)
    }

    /// Starts `EXE 0 --bind IP ARGS…` with its own home and these environment variables
    /// (another store than `--root`, such as `--store s3://…`), as [`ServerProcess::start`].
    pub fn start_with(
        exe: &Path,
        ip: IpAddr,
        args: &[&str],
        env: &[(String, String)],
    ) -> ServerProcess {
        let home = tempfile::tempdir().expect("a home for ftserver");
        let mut command = Command::new(exe);
        isolate(&mut command, home.path());
        command
            .arg("0")
            .args(["--bind", &ip.to_string()])
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)));
        ServerProcess::launch(
            command,
            SocketAddr::new(ip, 0),
            args.contains(&"--plain"),
            home,
        )
    }

    /// Starts `command`, an ftserver (perhaps run through another program, such as
    /// `setpriv` to serve as another user) asked to listen on `addr`, and waits for its
    /// start lines as [`ServerProcess::start`] does.
    pub fn launch(
        mut command: Command,
        addr: SocketAddr,
        plain: bool,
        home: tempfile::TempDir,
    ) -> ServerProcess {
        let ip = addr.ip();
        let mut child = command
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
            fingerprint: None,
            stdout,
            stderr,
            home,
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
        if addr.port() != 0 {
            assert_eq!(port, addr.port(), "not the port asked for");
        }
        server.addr.set_port(port);
        if !plain {
            let second = server.next_line();
            let fp = second
                .strip_prefix("fingerprint ")
                .unwrap_or_else(|| panic!("unexpected second line {second:?}"));
            assert!(fp.starts_with("SHA256:"), "{second:?}");
            server.fingerprint = Some(fp.to_owned());
        }
        server
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the server and reaps it; its port is free once this returns.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the server (kill and reap) and gives its home back, to start it again.
    pub fn stop(mut self) -> tempfile::TempDir {
        self.kill();
        let placeholder = tempfile::tempdir().expect("tempdir");
        std::mem::replace(&mut self.home, placeholder)
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

    /// A stdout line if one is already there or comes within `wait`.
    pub fn try_line(&self, wait: Duration) -> Option<String> {
        self.stdout.recv_timeout(wait).ok()
    }

    /// Everything written on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Waits until stderr contains `needle`; panics after [`DEADLINE`].
    pub fn wait_for_stderr(&self, needle: &str) {
        let deadline = Instant::now() + DEADLINE;
        while !self.stderr().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "ftserver never printed {needle:?} on stderr; got {:?}",
                self.stderr()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends a signal to the process.
    #[cfg(unix)]
    pub fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits");
        // SAFETY: kill has no memory-safety preconditions; the child is not reaped yet, so
        // the pid cannot have been reused.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill({pid}, {signal}) failed");
    }

    /// Waits for the process to exit by itself within `within`; panics if it does not.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "ftserver still running after {within:?}; stderr: {}",
                self.stderr()
            );
            thread::sleep(Duration::from_millis(10));
        }
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

/// Runs `command` to completion with stdin empty, capturing stdout and stderr; kills it and
/// fails if it takes longer than [`DEADLINE`]. Unless the command sets `XDG_CONFIG_HOME`
/// itself, it runs with a home of its own, removed afterwards ([`isolate`]).
pub fn run(mut command: Command) -> Output {
    let exe = PathBuf::from(command.get_program());
    let _home = if command.get_envs().any(|(key, _)| key == "XDG_CONFIG_HOME") {
        None
    } else {
        let home = tempfile::tempdir().expect("a home for the command");
        isolate(&mut command, home.path());
        Some(home)
    };
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

/// One text report line, split into the fields a user reads.
#[derive(Debug)]
pub struct Line {
    /// The peer's IP address.
    pub ip: String,
    /// The account logged in, `-` for none.
    pub user: String,
    /// `put`, `get`, `list`, `login` or `connect`.
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

    /// Parses `TIME IP PORT USER OP NAME COUNT UNIT DURATION success|failure KIND: MESSAGE`;
    /// panics on anything else.
    pub fn parse(line: &str) -> Line {
        let all: Vec<&str> = line.splitn(11, ' ').collect();
        assert!(all.len() >= 10, "not a report line: {line:?}");
        assert!(
            all[0].contains('T') && all[8].ends_with('s'),
            "not a report line: {line:?}"
        );
        all[2].parse::<u16>().expect("port field");
        let user = all[3].to_owned();
        // The fields after the user, as they were before it.
        let fields: Vec<&str> = all[..3].iter().chain(&all[4..]).copied().collect();
        let (kind, message) = match fields[8] {
            // A server's download is `sent`: it cannot know the client stored it.
            "success" | "sent" => (None, String::new()),
            "failure" => {
                let rest = fields.get(9).expect("failure kind");
                let (kind, message) = rest.split_once(": ").expect("KIND: MESSAGE");
                (Some(kind.to_owned()), message.to_owned())
            }
            other => panic!("status {other:?} in {line:?}"),
        };
        Line {
            ip: fields[1].to_owned(),
            user,
            op: fields[3].to_owned(),
            name: fields[4].to_owned(),
            count: fields[5].parse().expect("count field"),
            unit: fields[6].to_owned(),
            kind,
            message,
        }
    }
}

#[cfg(unix)]
pub use trees::file_ids;
pub use trees::{FileId, Node, Outcome, PeakAlloc, Reported, peak_allocation, reported, tree};

/// Helpers for the tests of directory trees (issue 10): what a tree holds, compared across
/// the local side, the served directory and a download; which files were rewritten; report
/// lines whose names are quoted or that say `skipped`; and the most memory one thread held
/// at once ([`PeakAlloc`]).
pub mod trees {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;
    use std::collections::BTreeMap;
    use std::fs;
    use std::hint::black_box;
    use std::path::{Path, PathBuf};
    use std::time::SystemTime;

    use xxhash_rust::xxh3::xxh3_128;

    /// What one path of a tree is, as a user would compare it: a file's bytes (by length
    /// and XXH3-128), modification time and execute bit; a directory; a link and its target.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Node {
        /// A directory (its times are not kept, so not compared).
        Dir,
        /// A regular file.
        File {
            /// Its size.
            len: u64,
            /// XXH3-128 of its bytes.
            digest: u128,
            /// Its modification time, as precise as the file system keeps it.
            modified: SystemTime,
            /// Any execute bit set.
            executable: bool,
        },
        /// A symbolic link (never followed), with its target.
        Symlink(PathBuf),
        /// Anything else (a FIFO, a socket, a device).
        Other,
    }

    /// Every path below `root`, relative and `/`-separated, with what it is; symbolic
    /// links are listed, never followed. A name that is not UTF-8 fails the test.
    pub fn tree(root: &Path) -> BTreeMap<String, Node> {
        let mut found = BTreeMap::new();
        walk(root, "", &mut found);
        found
    }

    fn walk(dir: &Path, prefix: &str, found: &mut BTreeMap<String, Node>) {
        let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
        for entry in entries {
            let entry = entry.expect("directory entry");
            let leaf = entry
                .file_name()
                .into_string()
                .unwrap_or_else(|name| panic!("a name that is not UTF-8: {name:?}"));
            let rel = if prefix.is_empty() {
                leaf
            } else {
                format!("{prefix}/{leaf}")
            };
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).expect("lstat");
            let node = if meta.file_type().is_symlink() {
                Node::Symlink(fs::read_link(&path).expect("readlink"))
            } else if meta.is_dir() {
                walk(&path, &rel, found);
                Node::Dir
            } else if meta.is_file() {
                let bytes = fs::read(&path).expect("read");
                Node::File {
                    len: meta.len(),
                    digest: xxh3_128(&bytes),
                    modified: meta.modified().expect("mtime"),
                    executable: executable(&meta),
                }
            } else {
                Node::Other
            };
            found.insert(rel, node);
        }
    }

    #[cfg(unix)]
    fn executable(meta: &fs::Metadata) -> bool {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o111 != 0
    }

    #[cfg(not(unix))]
    fn executable(_: &fs::Metadata) -> bool {
        false
    }

    /// What tells a file rewritten from one left alone: its inode, and its modification and
    /// change times (a rename, a link, a chmod or a write changes the change time).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct FileId {
        /// Device and inode.
        pub inode: (u64, u64),
        /// Modification time.
        pub modified: SystemTime,
        /// Change time, seconds and nanoseconds.
        pub changed: (i64, i64),
    }

    /// The [`FileId`] of every regular file below `root`, by relative path.
    #[cfg(unix)]
    pub fn file_ids(root: &Path) -> BTreeMap<String, FileId> {
        use std::os::unix::fs::MetadataExt;
        tree(root)
            .into_iter()
            .filter(|(_, node)| matches!(node, Node::File { .. }))
            .map(|(rel, _)| {
                let meta = fs::symlink_metadata(root.join(&rel)).expect("lstat");
                let id = FileId {
                    inode: (meta.dev(), meta.ino()),
                    modified: meta.modified().expect("mtime"),
                    changed: (meta.ctime(), meta.ctime_nsec()),
                };
                (rel, id)
            })
            .collect()
    }

    /// How a put or get of one item ended, as its report line says.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Outcome {
        /// `success`.
        Success,
        /// `skipped REASON`.
        Skipped(String),
        /// `failure KIND: MESSAGE`.
        Failure {
            /// The error kind (`already-exists`).
            kind: String,
            /// The message, hints included.
            message: String,
        },
    }

    /// One text report line (`TIME IP PORT USER OP NAME COUNT UNIT DURATION STATUS…`),
    /// with its name read back from the quoted form ftclient prints for names with spaces
    /// or risky characters; `skipped` lines included.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Reported {
        /// The server's IP address as printed.
        pub ip: String,
        /// `put`, `get`, …
        pub op: String,
        /// The name, unescaped.
        pub name: String,
        /// Bytes moved (entries for a listing).
        pub count: u64,
        /// How it ended.
        pub outcome: Outcome,
    }

    impl Reported {
        /// Parses one line; panics, quoting it, on anything else.
        pub fn parse(line: &str) -> Reported {
            let mut rest = line;
            let mut word = || {
                let (w, tail) = next_word(rest).unwrap_or_else(|| panic!("short line {line:?}"));
                rest = tail;
                w
            };
            let (time, ip, port, _user, op, name) =
                (word(), word(), word(), word(), word(), word());
            let (count, _unit, duration) = (word(), word(), word());
            assert!(time.contains('T'), "not a report line: {line:?}");
            assert!(duration.ends_with('s'), "not a report line: {line:?}");
            port.parse::<u16>()
                .unwrap_or_else(|_| panic!("no port in {line:?}"));
            let outcome = if rest == "success" {
                Outcome::Success
            } else if let Some(reason) = rest.strip_prefix("skipped ") {
                Outcome::Skipped(reason.to_owned())
            } else if let Some(failure) = rest.strip_prefix("failure ") {
                let (kind, message) = failure
                    .split_once(": ")
                    .unwrap_or_else(|| panic!("no KIND: MESSAGE in {line:?}"));
                Outcome::Failure {
                    kind: kind.to_owned(),
                    message: message.to_owned(),
                }
            } else {
                panic!("no status in {line:?}")
            };
            Reported {
                ip,
                op,
                name,
                count: count
                    .parse()
                    .unwrap_or_else(|_| panic!("no count in {line:?}")),
                outcome,
            }
        }
    }

    /// Every line of `text`, parsed by [`Reported::parse`].
    pub fn reported(text: &str) -> Vec<Reported> {
        text.lines().map(Reported::parse).collect()
    }

    /// The first word of `text` (bare, or quoted and unescaped) and what follows its space.
    fn next_word(text: &str) -> Option<(String, &str)> {
        if text.is_empty() {
            return None;
        }
        if !text.starts_with('"') {
            let (word, rest) = text.split_once(' ').unwrap_or((text, ""));
            return Some((word.to_owned(), rest));
        }
        let mut word = String::new();
        let mut chars = text.char_indices().skip(1);
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    let rest = &text[i + 1..];
                    return Some((word, rest.strip_prefix(' ').unwrap_or(rest)));
                }
                '\\' => match chars.next()?.1 {
                    'n' => word.push('\n'),
                    't' => word.push('\t'),
                    'r' => word.push('\r'),
                    '0' => word.push('\0'),
                    'u' => {
                        let mut hex = String::new();
                        for (_, h) in chars.by_ref() {
                            match h {
                                '{' => {}
                                '}' => break,
                                h => hex.push(h),
                            }
                        }
                        let code = u32::from_str_radix(&hex, 16).ok()?;
                        word.push(char::from_u32(code)?);
                    }
                    other => word.push(other),
                },
                c => word.push(c),
            }
        }
        None
    }

    /// `System`, tracking for each thread the bytes it holds now and the most it held since
    /// [`peak_allocation`] started, so a test can bound what streaming code keeps at once.
    /// Declare it as the allocator of the test binary that measures:
    /// `#[global_allocator] static ALLOCATOR: PeakAlloc = PeakAlloc;`.
    #[derive(Debug, Clone, Copy, Default)]
    pub struct PeakAlloc;

    thread_local! {
        static LIVE: Cell<isize> = const { Cell::new(0) };
        static PEAK: Cell<isize> = const { Cell::new(0) };
    }

    fn grow(by: isize) {
        // `try_with`: allocations during thread teardown must not panic.
        let _ = LIVE.try_with(|live| {
            let now = live.get() + by;
            live.set(now);
            let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
        });
    }

    fn signed(size: usize) -> isize {
        isize::try_from(size).unwrap_or(isize::MAX)
    }

    // SAFETY: every call is forwarded unchanged to `System`; the bookkeeping neither
    // allocates nor unwinds.
    unsafe impl GlobalAlloc for PeakAlloc {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            grow(signed(layout.size()));
            // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
            unsafe { System.alloc(layout) }
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            grow(signed(layout.size()));
            // SAFETY: as `alloc`.
            unsafe { System.alloc_zeroed(layout) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            grow(signed(new_size) - signed(layout.size()));
            // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract.
            unsafe { System.realloc(ptr, layout, new_size) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            grow(-signed(layout.size()));
            // SAFETY: the caller upholds `GlobalAlloc::dealloc`'s contract.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    /// Runs `f`; returns its result and the most bytes this thread held at once while it
    /// ran, beyond what it held before.
    ///
    /// # Panics
    /// When [`PeakAlloc`] is not this binary's global allocator.
    pub fn peak_allocation<R>(f: impl FnOnce() -> R) -> (R, usize) {
        let base = LIVE.with(Cell::get);
        PEAK.with(|peak| peak.set(base));
        drop(black_box(Box::new(black_box([0u8; 64]))));
        assert!(
            PEAK.with(Cell::get) > base,
            "allocations are not counted: declare `#[global_allocator] static ALLOCATOR: \
             PeakAlloc = PeakAlloc;` in this test binary"
        );
        PEAK.with(|peak| peak.set(base));
        let result = f();
        let peak = PEAK.with(Cell::get) - base;
        (result, usize::try_from(peak).unwrap_or(0))
    }
}
