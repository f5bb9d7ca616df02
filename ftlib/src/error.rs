//! The library's one error type, and how each error maps to the [`ErrorKind`] that
//! crosses the wire.

use std::fmt;
use std::io;
use std::time::Duration;

use crate::protocol::ErrorKind;
use crate::text::{escape, escape_message};

/// Result with the library's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in ft.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The peer reported a failure; `message` is the peer's text, escaped when displayed.
    #[error("{side}: {}", escape_message(message))]
    Remote {
        /// Which side reported it.
        side: Side,
        /// The kind the peer sent.
        kind: ErrorKind,
        /// The peer's message, unescaped.
        message: String,
    },
    /// The sender of a body gave up (its `Abort`); the exchange is complete, so the connection
    /// stays usable.
    #[error("the {side} aborted the transfer: {}", escape_message(message))]
    Aborted {
        /// Which side aborted.
        side: Side,
        /// The kind the sender gave.
        kind: ErrorKind,
        /// The sender's message, unescaped.
        message: String,
    },
    /// A name that is not a valid relative path of plain components.
    #[error("invalid file name {}: {reason}", escape(name))]
    InvalidName {
        /// The rejected name.
        name: String,
        /// Which rule it broke.
        reason: &'static str,
    },
    /// The named file does not exist or is not a regular file.
    #[error("{} not found{why}", escape(name))]
    NotFound {
        /// The name asked for.
        name: String,
        /// Why, where more than "absent" can be said.
        why: Missing,
    },
    /// A file of that name exists already and was left untouched.
    #[error("{} already exists{why}", escape(name))]
    AlreadyExists {
        /// The name asked for.
        name: String,
        /// What holds the name.
        why: Taken,
    },
    /// A file larger than the receiver accepts.
    #[error(
        "{} is {size} bytes, more than the limit of {limit} bytes",
        escape(name)
    )]
    TooLarge {
        /// The file's name.
        name: String,
        /// Its declared size.
        size: u64,
        /// The limit it exceeds.
        limit: u64,
    },
    /// The body carried more or fewer bytes than declared, or the source changed while read.
    #[error("{}: expected {expected} bytes, got {actual}{why}", escape(name))]
    SizeMismatch {
        /// The file's name.
        name: String,
        /// Declared size.
        expected: u64,
        /// Bytes actually seen (a lower bound when the body was too long).
        actual: u64,
        /// How the sizes came to differ.
        why: Changed,
    },
    /// The body's digest did not match the data received.
    #[error(
        "{}: checksum mismatch: the bytes received are not those the sender hashed (damaged \
         on the way, or the file changed while it was sent or since the part kept)",
        escape(name)
    )]
    ChecksumMismatch {
        /// The file's name.
        name: String,
    },
    /// A frame's declared length is above the limit; nothing was allocated for it.
    #[error("frame of {len} bytes exceeds the limit of {limit} bytes")]
    FrameTooLarge {
        /// Declared length.
        len: u64,
        /// The limit in force.
        limit: usize,
    },
    /// The peer sent something the protocol does not allow here.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The peer does not speak ft, or no version both sides speak.
    #[error(
        "version mismatch: we speak ft v{ours_min}..v{ours_max}, the peer v{theirs_min}..v{theirs_max}"
    )]
    Version {
        /// Oldest version we speak.
        ours_min: u32,
        /// Newest version we speak.
        ours_max: u32,
        /// Oldest version the peer speaks.
        theirs_min: u32,
        /// Newest version the peer speaks.
        theirs_max: u32,
    },
    /// The peer was silent longer than the timeout.
    #[error("timed out after {} s without progress from the peer", .0.as_secs_f64())]
    Timeout(Duration),
    /// The peer closed the connection in the middle of an exchange.
    #[error("connection closed by the peer {0}")]
    Closed(&'static str),
    /// The host name could not be resolved to an address.
    #[error("cannot resolve the host name: {0}")]
    Resolve(#[source] io::Error),
    /// The connection failed (refused, reset, unreachable).
    #[error("connection to {peer} failed: {source}")]
    Network {
        /// The peer, as text.
        peer: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The server's object store (an S3-compatible bucket) failed: unreachable, refused the
    /// credentials, has no such bucket, or answered with an error.
    #[error("{failure} (bucket {bucket}, {doing}): {detail}")]
    Storage {
        /// The bucket.
        bucket: String,
        /// What was being done.
        doing: String,
        /// What kind of failure.
        failure: StorageFailure,
        /// The engine's or the HTTP client's own words.
        detail: String,
    },
    /// A local file-system operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the file.
        context: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A local failure that left the rest of a body unread, so the connection was given up.
    #[error("{0} (the connection was closed rather than read to the end)")]
    Abandoned(Box<Error>),
    /// The server speaks an older protocol without this feature.
    #[error("the server does not support {0}: it speaks ft v{1}; upgrade it")]
    Unsupported(&'static str, u32),
    /// The request was not sent: an earlier error broke this connection.
    #[error("not sent: the connection broke earlier; connect again")]
    NotConnected,
    /// The transfer was cancelled locally.
    #[error("interrupted before the end")]
    Cancelled,
    /// (Server) The client closed its connection in the middle of a body, `upload` or
    /// `download`: it was interrupted (Ctrl-C), killed or crashed. Kind `cancelled`, as a
    /// client's own `Abort` of an upload, so an interrupted put and get read the same.
    #[error("the client closed the connection in the middle of the {0}")]
    ClientGone(&'static str),
    /// The server already serves as many connections as it may.
    #[error("busy: already serving {live} connection{}, try again later", if *live == 1 { "" } else { "s" })]
    Busy {
        /// Connections being served.
        live: usize,
    },
    /// Uploads are refused: the server is read-only.
    #[error("the server is read-only: uploads are not accepted")]
    ReadOnly,
    /// Not enough free space for a file of the announced size.
    #[error(
        "not enough space for {}: {needed} bytes needed, {available} available",
        escape(name)
    )]
    NoSpace {
        /// The file's name.
        name: String,
        /// Its size.
        needed: u64,
        /// Free space of the file system.
        available: u64,
    },
    /// The server is shutting down and does not take new requests.
    #[error("the server is shutting down")]
    ShuttingDown,
    /// A configuration (an identity, a users file, a known-hosts file) cannot be used.
    #[error("{0}")]
    Config(String),
    /// The TLS handshake failed.
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    /// A TLS client met a server that greets in plain.
    #[error(
        "the server at {} port {} does not use TLS (it was started with --plain); connect \
         with --plain, and only on a network you trust",
        peer.ip(),
        peer.port()
    )]
    PlainServer {
        /// The server's address.
        peer: std::net::SocketAddr,
    },
    /// The server presented another identity than the one trusted; nothing was sent.
    #[error("{0}")]
    IdentityChanged(Box<IdentityChange>),
    /// A login was refused: wrong user name or password (never saying which), no accounts,
    /// or a connection that cannot carry a password.
    #[error("{0}")]
    AuthFailed(String),
    /// The user's role (or the lack of a login) does not allow the request.
    #[error("{0}")]
    PermissionDenied(String),
}

/// A server presenting another identity than the one trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the identity of {server} {mismatch}: {recorded} says {expected}, the server presented \
     {found}. {advice}"
)]
pub struct IdentityChange {
    /// The server as the user named it (`HOST port PORT`).
    pub server: String,
    /// How the identity differs: "has changed" (from the one recorded on an earlier
    /// contact) or "is not the one pinned" (a fingerprint given for this connection, which
    /// may be mistyped or another server's).
    pub mismatch: &'static str,
    /// Where the trusted fingerprint comes from (a known-hosts line, a pin).
    pub recorded: String,
    /// The fingerprint trusted.
    pub expected: crate::tls::Fingerprint,
    /// The fingerprint presented.
    pub found: crate::tls::Fingerprint,
    /// What it may mean and what to do.
    pub advice: String,
}

/// Which end of a connection said something: the peer named in remote errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The server.
    Server,
    /// The client.
    Client,
}

/// A protocol error for a peer's message longer than the wire allows.
fn too_long(message: &str) -> Option<Error> {
    (message.len() > crate::protocol::MAX_MESSAGE).then(|| {
        Error::Protocol(format!(
            "an error message of {} bytes (at most {})",
            message.len(),
            crate::protocol::MAX_MESSAGE
        ))
    })
}

impl Side {
    /// Lowercase name, as shown in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Server => "server",
            Side::Client => "client",
        }
    }

    /// The error for a failure this side reported.
    /// A message over [`MAX_MESSAGE`](crate::protocol::MAX_MESSAGE) bytes breaks the
    /// protocol and is not passed on.
    pub(crate) fn remote(self, kind: ErrorKind, message: String) -> Error {
        match too_long(&message) {
            Some(error) => error,
            None => Error::Remote {
                side: self,
                kind,
                message,
            },
        }
    }

    /// The error for a body this side aborted (a message over
    /// [`MAX_MESSAGE`](crate::protocol::MAX_MESSAGE) bytes breaks the protocol).
    pub(crate) fn aborted(self, kind: ErrorKind, message: String) -> Error {
        match too_long(&message) {
            Some(error) => error,
            None => Error::Aborted {
                side: self,
                kind,
                message,
            },
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a name was [`Error::NotFound`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Missing {
    /// Nothing has that name.
    Absent,
    /// The local file to upload does not exist.
    Local,
    /// Something has that name, but not a regular file.
    NotRegular,
    /// A symbolic link has that name; links are never followed.
    Symlink,
    /// A part of the path is not a directory.
    NotADirectory,
}

impl fmt::Display for Missing {
    /// The words that follow "NAME not found".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Missing::Absent => "",
            Missing::Local => " locally",
            Missing::NotRegular => " (not a regular file)",
            Missing::Symlink => " (symbolic links are not served)",
            Missing::NotADirectory => " (it is not a directory)",
        })
    }
}

/// What holds a name that was [`Error::AlreadyExists`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Taken {
    /// A file (or anything else) of that name exists.
    Exists,
    /// It exists and is not a regular file, so it cannot be replaced.
    NotAFile,
    /// Another transfer of the same file is running right now.
    InUse,
    /// Another upload of that name was published first.
    Raced,
    /// Another, earlier file of the same command goes to that name (two files with the same
    /// last component, say), so this one is not moved: it would fail or replace that one.
    SameCommand,
    /// A directory has that name (a file never replaces a directory).
    Directory,
    /// A file (or anything but a directory) has the name of a directory the path needs.
    NotADirectory,
    /// A symbolic link has the name of a directory the path needs (links are not followed).
    Symlink,
}

impl fmt::Display for Taken {
    /// The words that follow "NAME already exists".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Taken::Exists => "",
            Taken::NotAFile => " and is not a regular file",
            Taken::InUse => " (the same file is being transferred right now)",
            Taken::Raced => " (another upload finished first)",
            Taken::SameCommand => " (another file of this command goes to that name)",
            Taken::Directory => " as a directory",
            Taken::NotADirectory => " and is not a directory",
            Taken::Symlink => " as a symbolic link, which ft does not follow",
        })
    }
}

/// How the bytes of a body came to differ from its declared size
/// ([`Error::SizeMismatch`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Changed {
    /// The sizes differ; nothing more is known.
    Unknown,
    /// The body ended before the declared size.
    EndedEarly,
    /// The source file shrank while it was sent.
    Shrank,
    /// The source file grew while it was sent.
    Grew,
    /// The source file changed while it was hashed.
    WhileHashed,
}

impl fmt::Display for Changed {
    /// The words that follow "expected N bytes, got M".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Changed::Unknown => "",
            Changed::EndedEarly => " (the body ended early)",
            Changed::Shrank => " (the file shrank while being sent)",
            Changed::Grew => " (the file grew while being sent)",
            Changed::WhileHashed => " (the file changed while being hashed)",
        })
    }
}

/// Why an object store failed, as [`Error::Storage`] says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageFailure {
    /// The engine refused the credentials (or they lack a permission).
    Denied,
    /// The bucket does not exist.
    NoBucket,
    /// Anything else: unreachable, too slow, or an error answer.
    Failed,
}

impl fmt::Display for StorageFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StorageFailure::Denied => {
                "the object store refused the credentials (check AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY)"
            }
            StorageFailure::NoBucket => "the bucket does not exist",
            StorageFailure::Failed => "the object store failed",
        })
    }
}

impl Error {
    /// The kind this error travels as.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Remote { kind, .. } | Error::Aborted { kind, .. } => *kind,
            Error::InvalidName { .. } => ErrorKind::InvalidName,
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::AlreadyExists { .. } => ErrorKind::AlreadyExists,
            Error::TooLarge { .. } => ErrorKind::TooLarge,
            Error::SizeMismatch { .. } => ErrorKind::SizeMismatch,
            Error::ChecksumMismatch { .. } => ErrorKind::ChecksumMismatch,
            Error::FrameTooLarge { .. } | Error::Protocol(_) => ErrorKind::Protocol,
            Error::Version { .. } => ErrorKind::Version,
            Error::Timeout(_) => ErrorKind::Timeout,
            Error::Closed(_) | Error::Network { .. } | Error::Resolve(_) | Error::NotConnected => {
                ErrorKind::Connection
            }
            // A store's own error passed through a writer or reader keeps its kind.
            Error::Io { source, .. } => match source.get_ref().and_then(|e| e.downcast_ref()) {
                Some(inner @ Error::Storage { .. }) => inner.kind(),
                _ => match source.kind() {
                    io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => ErrorKind::NoSpace,
                    io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
                        ErrorKind::PermissionDenied
                    }
                    io::ErrorKind::FileTooLarge => ErrorKind::TooLarge,
                    _ => ErrorKind::Io,
                },
            },
            Error::Storage { failure, .. } => match failure {
                StorageFailure::Denied => ErrorKind::PermissionDenied,
                StorageFailure::NoBucket | StorageFailure::Failed => ErrorKind::Storage,
            },
            Error::Cancelled | Error::ClientGone(_) => ErrorKind::Cancelled,
            Error::Abandoned(inner) => inner.kind(),
            Error::Unsupported(..) => ErrorKind::Version,
            Error::Busy { .. } => ErrorKind::Busy,
            Error::ReadOnly => ErrorKind::ReadOnly,
            Error::NoSpace { .. } => ErrorKind::NoSpace,
            Error::ShuttingDown => ErrorKind::ShuttingDown,
            Error::Config(_) => ErrorKind::Other,
            Error::Tls(_) => ErrorKind::Connection,
            Error::PlainServer { .. } => ErrorKind::TlsRequired,
            Error::IdentityChanged(_) => ErrorKind::IdentityChanged,
            Error::AuthFailed(_) => ErrorKind::AuthFailed,
            Error::PermissionDenied(_) => ErrorKind::PermissionDenied,
        }
    }

    /// True when the connection this error happened on can no longer carry requests.
    pub fn breaks_connection(&self) -> bool {
        match self {
            Error::FrameTooLarge { .. }
            | Error::Protocol(_)
            | Error::Version { .. }
            | Error::Timeout(_)
            | Error::Closed(_)
            | Error::ClientGone(_)
            | Error::Network { .. }
            | Error::Resolve(_)
            | Error::Abandoned(_)
            | Error::NotConnected
            | Error::Busy { .. }
            | Error::ShuttingDown
            | Error::Tls(_)
            | Error::PlainServer { .. }
            | Error::IdentityChanged(_)
            | Error::AuthFailed(_) => true,
            Error::Remote { kind, .. } => matches!(
                kind,
                ErrorKind::Protocol
                    | ErrorKind::Version
                    | ErrorKind::Busy
                    | ErrorKind::Timeout
                    | ErrorKind::ShuttingDown
                    | ErrorKind::AuthFailed
                    | ErrorKind::TlsRequired
            ),
            _ => false,
        }
    }

    /// Wraps a local file-system error with what was being done.
    pub fn io(context: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Wraps an error of the connection's socket.
    pub(crate) fn net(peer: impl ToString, source: io::Error) -> Error {
        match source.kind() {
            io::ErrorKind::UnexpectedEof => Error::Closed("in the middle of a frame"),
            _ => Error::Network {
                peer: peer.to_string(),
                source,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variant is formatted at least once, and the text names the offending input.
    #[test]
    fn every_variant_formats() {
        let cases: Vec<(Error, &str, ErrorKind)> = vec![
            (
                Error::Remote {
                    side: Side::Server,
                    kind: ErrorKind::Busy,
                    message: "full\x1b[2J".into(),
                },
                "server: \"full\\u{1b}[2J\"",
                ErrorKind::Busy,
            ),
            (
                Error::InvalidName {
                    name: "../x".into(),
                    reason: "not one path component",
                },
                "invalid file name ../x",
                ErrorKind::InvalidName,
            ),
            (
                Error::NotFound {
                    name: "a.txt".into(),
                    why: Missing::Absent,
                },
                "a.txt not found",
                ErrorKind::NotFound,
            ),
            (
                Error::AlreadyExists {
                    name: "a.txt".into(),
                    why: Taken::Raced,
                },
                "a.txt already exists (another upload finished first)",
                ErrorKind::AlreadyExists,
            ),
            (
                Error::TooLarge {
                    name: "big".into(),
                    size: 10,
                    limit: 5,
                },
                "big is 10 bytes, more than the limit of 5 bytes",
                ErrorKind::TooLarge,
            ),
            (
                Error::SizeMismatch {
                    name: "f".into(),
                    expected: 3,
                    actual: 2,
                    why: Changed::Shrank,
                },
                "f: expected 3 bytes, got 2 (the file shrank while being sent)",
                ErrorKind::SizeMismatch,
            ),
            (
                Error::ChecksumMismatch { name: "f".into() },
                "f: checksum mismatch",
                ErrorKind::ChecksumMismatch,
            ),
            (
                Error::FrameTooLarge { len: 9, limit: 4 },
                "frame of 9 bytes exceeds the limit of 4 bytes",
                ErrorKind::Protocol,
            ),
            (
                Error::Protocol("bad tag".into()),
                "protocol error: bad tag",
                ErrorKind::Protocol,
            ),
            (
                Error::Version {
                    ours_min: 1,
                    ours_max: 1,
                    theirs_min: 2,
                    theirs_max: 3,
                },
                "we speak ft v1..v1, the peer v2..v3",
                ErrorKind::Version,
            ),
            (
                Error::Timeout(Duration::from_millis(1500)),
                "timed out after 1.5 s",
                ErrorKind::Timeout,
            ),
            (
                Error::Closed("before answering"),
                "connection closed by the peer before answering",
                ErrorKind::Connection,
            ),
            (
                Error::Network {
                    peer: "127.0.0.1:1".into(),
                    source: io::Error::from(io::ErrorKind::ConnectionRefused),
                },
                "connection to 127.0.0.1:1 failed",
                ErrorKind::Connection,
            ),
            (
                Error::io("writing a.txt", io::Error::from(io::ErrorKind::StorageFull)),
                "writing a.txt: ",
                ErrorKind::NoSpace,
            ),
            (
                Error::Cancelled,
                "interrupted before the end",
                ErrorKind::Cancelled,
            ),
            (
                Error::ClientGone("download"),
                "the client closed the connection in the middle of the download",
                ErrorKind::Cancelled,
            ),
            (Error::ReadOnly, "read-only", ErrorKind::ReadOnly),
            (
                Error::NotConnected,
                "not sent: the connection broke earlier",
                ErrorKind::Connection,
            ),
            (
                Error::Abandoned(Box::new(Error::io(
                    "writing big",
                    io::Error::from(io::ErrorKind::StorageFull),
                ))),
                "writing big: ",
                ErrorKind::NoSpace,
            ),
            (
                Error::Unsupported("resume", 1),
                "the server does not support resume: it speaks ft v1",
                ErrorKind::Version,
            ),
            (
                Error::NoSpace {
                    name: "big".into(),
                    needed: 10,
                    available: 3,
                },
                "not enough space for big: 10 bytes needed, 3 available",
                ErrorKind::NoSpace,
            ),
            (
                Error::Aborted {
                    side: Side::Client,
                    kind: ErrorKind::Busy,
                    message: "gave up".into(),
                },
                "the client aborted the transfer: gave up",
                ErrorKind::Busy,
            ),
            (
                Error::Resolve(io::Error::other("no such host")),
                "cannot resolve the host name: no such host",
                ErrorKind::Connection,
            ),
            (
                Error::Busy { live: 3 },
                "busy: already serving 3 connections, try again later",
                ErrorKind::Busy,
            ),
            (
                Error::ShuttingDown,
                "shutting down",
                ErrorKind::ShuttingDown,
            ),
        ];
        for (error, text, kind) in cases {
            let shown = error.to_string();
            assert!(shown.contains(text), "{shown:?} lacks {text:?}");
            assert_eq!(error.kind(), kind, "{shown}");
        }
    }

    /// Each reason reads as its own words after the message it completes.
    #[test]
    fn every_reason_formats() {
        let missing = [
            (Missing::Absent, "x not found"),
            (Missing::Local, "x not found locally"),
            (Missing::NotRegular, "x not found (not a regular file)"),
            (
                Missing::Symlink,
                "x not found (symbolic links are not served)",
            ),
        ];
        for (why, text) in missing {
            let name = "x".into();
            assert_eq!(Error::NotFound { name, why }.to_string(), text);
        }
        let taken = [
            (Taken::Exists, "x already exists"),
            (
                Taken::NotAFile,
                "x already exists and is not a regular file",
            ),
            (
                Taken::InUse,
                "x already exists (the same file is being transferred right now)",
            ),
            (
                Taken::Raced,
                "x already exists (another upload finished first)",
            ),
            (
                Taken::SameCommand,
                "x already exists (another file of this command goes to that name)",
            ),
        ];
        for (why, text) in taken {
            let name = "x".into();
            assert_eq!(Error::AlreadyExists { name, why }.to_string(), text);
        }
        let changed = [
            (Changed::Unknown, ""),
            (Changed::EndedEarly, " (the body ended early)"),
            (Changed::Shrank, " (the file shrank while being sent)"),
            (Changed::Grew, " (the file grew while being sent)"),
            (
                Changed::WhileHashed,
                " (the file changed while being hashed)",
            ),
        ];
        for (why, text) in changed {
            let error = Error::SizeMismatch {
                name: "x".into(),
                expected: 2,
                actual: 1,
                why,
            };
            assert_eq!(
                error.to_string(),
                format!("x: expected 2 bytes, got 1{text}")
            );
        }
        assert_eq!(Side::Server.to_string(), "server");
        assert_eq!(Side::Client.to_string(), "client");
    }

    #[test]
    fn connection_breaking_errors() {
        // An abort ends the body cleanly, whatever kind it carries.
        assert!(
            !Error::Aborted {
                side: Side::Client,
                kind: ErrorKind::Protocol,
                message: String::new()
            }
            .breaks_connection()
        );
        assert!(Error::Protocol("x".into()).breaks_connection());
        assert!(Error::Timeout(Duration::from_secs(1)).breaks_connection());
        assert!(
            !Error::NotFound {
                name: "x".into(),
                why: Missing::Absent
            }
            .breaks_connection()
        );
        assert!(
            !Error::Remote {
                side: Side::Server,
                kind: ErrorKind::AlreadyExists,
                message: String::new()
            }
            .breaks_connection()
        );
    }
}
