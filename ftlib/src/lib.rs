//! ft: move files between machines over TCP without ever losing or corrupting one.
//!
//! `ftlib` is the whole of ft; the `ftserver` and `ftclient` binaries are thin shells
//! around it and use only what this page lists.
//!
//! - Serving: a [`Server`] on a listener from [`listen`], serving a [`Store`] — a
//!   [`DirStore`] on a directory, a [`MemStore`] in memory, or your own backend (see
//!   [`store`]) — stopped through a [`ShutdownHandle`]; one [`Report`] per request.
//! - Moving files: a [`Client`] for single requests over one connection, or a [`Session`]
//!   for a command line's worth of files (pipelining, reconnecting, retrying what was never
//!   sent, one report per file), told to an [`Observer`].
//! - The wire: the messages of [`protocol`], framed by [`codec`] and carried by a
//!   [`Connection`] over any [`Transport`] (a TCP stream, a TLS stream, an in-memory pipe).
//!   File bodies stream in bounded chunks closed by an XXH3-128 digest of the whole file.
//!   The byte-level specification is `docs/PROTOCOL.md`.
//! - Accounts: a server's [`Users`] file of argon2id password hashes and roles, and the
//!   throttle of failed logins, in [`accounts`].
//! - Failures: one [`Error`] type; its [`ErrorKind`] is what crosses the wire. Text that
//!   came from a peer is printed through [`text::escape`].
//!
//! # Examples
//! ```
//! use ftlib::{Client, ClientConfig, Server, ServerConfig, Trust, listen, store::DirStore};
//!
//! let served = tempfile::tempdir()?;
//! let local = tempfile::tempdir()?;
//! let server = Server::new(
//!     listen("127.0.0.1:0")?,
//!     DirStore::open(served.path())?,
//!     ServerConfig::default(),
//! )?;
//! let addr = server.local_addr()?;
//! // TLS by default, here with a new identity whose fingerprint the client pins.
//! let pin = Trust::Pinned(server.fingerprint().expect("TLS"));
//! let stop = server.shutdown_handle();
//! let running = std::thread::spawn(move || server.run(|_report| {}));
//!
//! let mut client = Client::connect(addr, ClientConfig::trusting(pin))?;
//! let data = b"hello, ft";
//! client.put_reader(&data[..], data.len() as u64, "hello.txt", |_| {})?;
//! client.get("hello.txt", &DirStore::open(local.path())?, false, |_| {})?;
//! assert_eq!(std::fs::read(local.path().join("hello.txt"))?, data);
//!
//! stop.shutdown();
//! running.join().expect("server thread")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]
#![warn(unreachable_pub)]
// Operating-system calls go through rustix's safe wrappers (see `sys`).
#![forbid(unsafe_code)]

// A server's accounts: the users file, login checks, the throttle of failed logins.
pub mod accounts;
// The wire format, for other implementations and for tests that speak it byte by byte.
pub mod codec;
pub mod protocol;
// The framing over any byte stream (TCP, TLS, an in-memory pipe).
pub mod connection;
// Pipelining's limits of this implementation (the rest of the module is the crate's).
pub mod pipeline;
// Where files live: the storage interface and its backends.
pub mod store;
// Making peer text safe to print.
pub mod text;

mod client;
mod error;
mod handshake;
mod report;
mod server;
mod sys;
mod tls;
mod transfer;
mod trust;

pub use accounts::Users;
pub use client::{
    Client, ClientConfig, Credentials, Observer, Progress, RESUME_FROM, Session, local_source,
    upload_tag,
};
pub use connection::{Connection, Transport};
pub use error::{Changed, Error, IdentityChange, Missing, Result, Side, StorageFailure, Taken};
pub use protocol::{Entry, EntryKind, ErrorKind, Password, Role};
pub use report::{Failure, Op, Report};
pub use server::{LISTEN_BACKLOG, Server, ServerConfig, ShutdownHandle, listen};
pub use store::{DirStore, MemStore, Name, PartialLimits, PendingFile, Store};
pub use sys::{GLIBC_TUNED, REP_MOVSB_TUNABLE, avoid_slow_memory_copies, raise_open_files_limit};
pub use tls::{CERT_FILE, Fingerprint, Identity, KEY_FILE, TLS_GREETING, default_state_dir};
pub use trust::{FirstContact, Trust, default_known_hosts};
