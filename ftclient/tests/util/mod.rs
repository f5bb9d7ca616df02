//! Helpers for the CLI tests: the shared ones from `ft-testutil` (run a process under a
//! deadline, follow a running server, parse report lines), plus where `ftclient` and
//! `ftserver` (found next to `ftclient`) are and a [`Fixture`] of temporary directories
//! around a server.

// Each test crate compiles this module and uses a different part of it.
#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::fs;
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;

pub use ft_testutil::*;
use tempfile::TempDir;

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
        let server = ServerProcess::start(&ftserver(), ip, &base.path().join("served"), extra);
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

    /// `127.0.0.1 PORT ARGS… --dir LOCAL`: the arguments [`Fixture::ft`] passes (before
    /// [`Fixture::trust`]).
    pub fn args(&self, args: &[&str]) -> Vec<OsString> {
        let mut all: Vec<OsString> = vec!["127.0.0.1".into(), self.port().into()];
        all.extend(args.iter().map(OsString::from));
        all.extend(["--dir".into(), self.local().into()]);
        all
    }

    /// `ftclient 127.0.0.1 PORT ARGS… --dir DIR`, run in `cwd/`: a download elsewhere than
    /// LOCAL.
    pub fn ft_in(&self, dir: &Path, args: &[&str]) -> Output {
        let mut all: Vec<OsString> = vec!["127.0.0.1".into(), self.port().into()];
        all.extend(args.iter().map(OsString::from));
        all.extend(["--dir".into(), dir.into()]);
        self.ft_raw(all)
    }

    /// `--fingerprint FP` for the server, or `--plain` when it is plain.
    pub fn trust(&self) -> Vec<OsString> {
        match &self.server.fingerprint {
            Some(fp) => vec!["--fingerprint".into(), fp.into()],
            None => vec!["--plain".into()],
        }
    }

    /// `ftclient 127.0.0.1 PORT ARGS… --dir LOCAL`, run in `cwd/`.
    pub fn ft(&self, args: &[&str]) -> Output {
        self.ft_raw(self.args(args))
    }

    /// `ftclient ARGS…` as given and then [`Fixture::trust`], run in `cwd/`.
    pub fn ft_raw<S: Into<OsString>>(&self, args: impl IntoIterator<Item = S>) -> Output {
        let args: Vec<OsString> = args
            .into_iter()
            .map(Into::into)
            .chain(self.trust())
            .collect();
        ftclient_in(&self.cwd(), args)
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
