//! Helpers for the CLI tests: the shared ones from `ft-testutil` (run a process under a
//! deadline, follow a running server, parse report lines), bound to this package's
//! `ftserver` binary, and a library client for a running one.

// Each test crate compiles this module and uses a different part of it.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::process::Command;

pub use ft_testutil::*;
use ftlib::{Client, ClientConfig};

/// The ftserver binary under test.
pub fn ftserver() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ftserver"))
}

/// A library client connected to `server`, with [`DEADLINE`] as its timeout.
pub fn client(server: &ft_testutil::ServerProcess) -> Client {
    let mut config = pinned(server);
    config.timeout = DEADLINE;
    Client::connect(server.addr, config).expect("connect to ftserver")
}

/// A client configuration trusting exactly `server` (by the fingerprint it printed), or
/// plain for a plain server.
pub fn pinned(server: &ft_testutil::ServerProcess) -> ClientConfig {
    ClientConfig::trusting(match &server.fingerprint {
        Some(fp) => ftlib::Trust::Pinned(fp.parse().expect("a fingerprint")),
        None => ftlib::Trust::Plain,
    })
}

/// A running `ftserver` on 127.0.0.1, killed and reaped on drop; derefs to
/// [`ft_testutil::ServerProcess`] for everything but starting it.
pub struct ServerProcess(ft_testutil::ServerProcess);

impl ServerProcess {
    /// Starts `ftserver 0 --bind 127.0.0.1 --root ROOT EXTRA…` and waits for its first line.
    pub fn start(root: &Path, extra: &[&str]) -> ServerProcess {
        ServerProcess(ft_testutil::ServerProcess::start(
            ftserver(),
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            root,
            extra,
        ))
    }
}

impl Deref for ServerProcess {
    type Target = ft_testutil::ServerProcess;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for ServerProcess {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

/// Runs `exe ARGS…` to completion, killing it and failing if it takes longer than [`DEADLINE`].
pub fn run<I, S>(exe: &Path, args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::new(exe);
    command.args(args);
    ft_testutil::run(command)
}
