//! The messages of the ft protocol (v5; v1 is its subset without resume and pipelining,
//! v2 the subset without logins, v3 the subset without trees and file attributes, v4 the
//! subset without tagged resumable uploads) and the limits both sides enforce.
//!
//! This module only defines data: what a frame may carry and how large things may be.
//! Encoding lives in [`crate::codec`]; the order in which messages flow is in `docs/PROTOCOL.md`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The newest protocol version this library speaks (2 adds resumable transfers, 3 logins,
/// 4 directory trees and file attributes, 5 resumable uploads that need no digest first).
pub const VERSION: u32 = 5;

/// The first version with [`Request::GetFrom`] and [`Request::PutResumable`].
pub const RESUME_VERSION: u32 = 2;

/// The first version with [`Request::Login`].
pub const LOGIN_VERSION: u32 = 3;

/// The first version with [`Request::Upload`], [`Request::Stat`], [`Request::ListDir`],
/// [`Request::MakeDir`] and the answers [`Response::Opened`] and [`Response::Uploaded`].
pub const TREE_VERSION: u32 = 4;

/// The first version with [`How::Tagged`].
pub const TAGGED_VERSION: u32 = 5;

/// Longest user name, in bytes.
pub const MAX_USER: usize = 64;

/// Longest password a server checks, in bytes.
pub const MAX_PASSWORD: usize = 1024;

/// The oldest protocol version this library still speaks.
pub const MIN_VERSION: u32 = 1;

/// Bytes that open every hello, so a peer that is not speaking ft is recognised at once.
///
/// Like PNG's signature: a non-ASCII first byte and a line feed catch text protocols and
/// line-ending translation.
pub const MAGIC: [u8; 4] = *b"\x89FT\n";

/// Largest payload of one frame, in bytes (the 4-byte length prefix not included).
pub const MAX_FRAME: usize = MAX_CHUNK + 1024;

/// Largest payload of the first frame each side sends (a hello, or the server's refusal
/// carrying a message of up to [`MAX_MESSAGE`] bytes).
pub const MAX_HELLO_FRAME: usize = MAX_MESSAGE + 64;

/// Largest data chunk a peer may send in one [`Body::Chunk`].
pub const MAX_CHUNK: usize = 1024 * 1024;

/// Chunk size this library sends by default.
pub const DEFAULT_CHUNK: usize = 256 * 1024;

/// Longest component of a name (one file or directory name), in bytes of UTF-8.
pub const MAX_NAME: usize = 255;

/// Longest name (a relative path of components separated by `/`), in bytes of UTF-8.
pub const MAX_PATH: usize = 4096;

/// Most components in a name: a file at most 63 directories deep.
pub const MAX_DEPTH: usize = 64;

/// Longest agent string in a hello, in bytes.
pub const MAX_AGENT: usize = 64;

/// Longest error message put on the wire, in bytes; longer messages are cut.
pub const MAX_MESSAGE: usize = 1024;

/// Most entries in one [`Response::Entries`] batch.
pub const LIST_BATCH: usize = 256;

/// Largest file that may be sent with [`Request::PutPipelined`].
pub const MAX_PIPELINED: u64 = 1024 * 1024;

/// Length of a body digest: XXH3-128, big-endian.
pub const DIGEST_LEN: usize = 16;

/// The first message of each side: who is speaking and which versions it understands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Always [`MAGIC`].
    pub magic: [u8; 4],
    /// Server: the newest version it speaks. Client: the version chosen for this connection.
    pub version: u32,
    /// The oldest version the sender speaks.
    pub min_version: u32,
    /// Free-form software name and version, at most [`MAX_AGENT`] bytes, for logs only.
    pub agent: String,
}

impl Hello {
    /// The hello this library sends.
    pub fn ours() -> Hello {
        let mut agent = format!("ftlib/{}", env!("CARGO_PKG_VERSION"));
        agent.truncate(MAX_AGENT);
        Hello {
            magic: MAGIC,
            version: VERSION,
            min_version: MIN_VERSION,
            agent,
        }
    }
}

/// A message from client to server that starts an exchange.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// The client's hello; first frame of the client, never sent again.
    Hello(Hello),
    /// Upload `size` bytes as `name`. The server answers [`Response::Ready`] or an error
    /// before any data is sent; then the client sends the [`Body`].
    Put {
        /// Final name in the served directory (a relative path; missing directories are
        /// created).
        name: String,
        /// Exact number of bytes the body will carry.
        size: u64,
    },
    /// Download `name`. The server answers [`Response::File`] followed by the [`Body`], or an error.
    Get {
        /// Name in the served directory (a relative path).
        name: String,
    },
    /// List the served directory: [`Response::Entries`] batches, then [`Response::ListEnd`].
    List,
    /// (v2) Download `name`, continuing after the first `offset` bytes the client already has,
    /// if the server's file starts with those bytes. The server answers
    /// [`Response::FileFrom`] and the rest of the body, or an error.
    GetFrom {
        /// Name in the served directory.
        name: String,
        /// Bytes the client already has.
        offset: u64,
        /// XXH3-128 (big-endian) of those bytes.
        prefix: [u8; DIGEST_LEN],
    },
    /// (v2) Upload `size` bytes whose XXH3-128 is `digest`, continuing a partial upload of the
    /// same name, size and digest if the server kept one. The server answers
    /// [`Response::ReadyFrom`] or an error; the body then carries bytes from that offset on.
    PutResumable {
        /// Final name in the served directory.
        name: String,
        /// Size of the whole file.
        size: u64,
        /// XXH3-128 (big-endian) of the whole file.
        digest: [u8; DIGEST_LEN],
    },
    /// (v2) Upload a small file (at most [`MAX_PIPELINED`] bytes) without waiting: the body
    /// follows at once, and the client may send further requests before the answer. The
    /// answer, [`Response::Stored`] or an error, comes in request order once the file is
    /// durable; the server commits consecutive pipelined uploads as a group. A refused
    /// upload's body is read and dropped.
    PutPipelined {
        /// Final name in the served directory.
        name: String,
        /// Exact number of bytes the body carries.
        size: u64,
    },
    /// (v3) Log in, right after the hellos and only over TLS. The server answers
    /// [`Response::LoggedIn`], or an error of kind [`ErrorKind::AuthFailed`] and closes the
    /// connection.
    Login {
        /// The account's name, at most [`MAX_USER`] bytes.
        user: String,
        /// Its password, at most [`MAX_PASSWORD`] bytes.
        password: Password,
    },
    /// (v4) Upload `size` bytes as `name`, the stored file getting `attrs`: otherwise
    /// exactly [`Request::Put`], [`Request::PutResumable`] or [`Request::PutPipelined`],
    /// as `how` says, with the same answers.
    Upload {
        /// Final name (a relative path; missing directories are created).
        name: String,
        /// Exact number of bytes of the whole file.
        size: u64,
        /// Modification time and execute bit to give the stored file, if any.
        attrs: Option<Attrs>,
        /// Which of the three uploads this is.
        how: How,
    },
    /// (v4) Describe `name`: the server answers [`Response::Described`] or an error (kind
    /// `not-found` when nothing visible has that name).
    Stat {
        /// A file or directory (a relative path).
        name: String,
        /// Also compute the file's XXH3-128 (the server reads the whole file).
        digest: bool,
    },
    /// (v4) List directory `dir` (`""`: the top of the served directory): [`Response::Listing`]
    /// batches, then [`Response::ListEnd`]. Entry names are relative to `dir`; with
    /// `recursive`, everything beneath it is listed too, each directory before its contents.
    ListDir {
        /// The directory to list (a relative path, or `""`).
        dir: String,
        /// Walk the whole tree beneath it.
        recursive: bool,
    },
    /// (v4) Create directory `name` and any missing parent: [`Response::Made`] or an error
    /// (`already-exists` when a file holds the name or a parent's).
    MakeDir {
        /// The directory (a relative path).
        name: String,
    },
}

/// (v4) Which upload a [`Request::Upload`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum How {
    /// As [`Request::Put`]: wait for [`Response::Ready`], then send the body.
    Wait,
    /// As [`Request::PutResumable`] with this digest of the whole file.
    Resumable {
        /// XXH3-128 (big-endian) of the whole file.
        digest: [u8; DIGEST_LEN],
    },
    /// As [`Request::PutPipelined`]: the body follows at once.
    Pipelined,
    /// (v5) Resumable like [`How::Resumable`], but the partial is found by `tag`, which
    /// the client derives from the file's identity and version (its own choice of 16
    /// bytes, changed whenever the file may have changed), so the client need not read
    /// the file before sending it: the body's `End` digest alone is checked, against the
    /// whole file the server then holds.
    Tagged {
        /// Identifies this version of the client's file (docs/PROTOCOL.md section 12.2).
        tag: [u8; DIGEST_LEN],
    },
}

/// (v4) A file's attributes that travel with it: its modification time and whether it is
/// executable. Other mode bits follow the receiver's defaults; owners never travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attrs {
    /// Seconds since the Unix epoch.
    pub modified: i64,
    /// Nanoseconds within that second (below 1,000,000,000).
    pub nanos: u32,
    /// Whether the file is executable (any execute bit set).
    pub executable: bool,
}

/// A password on its way to the server: never shown by `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Password(pub String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(…)")
    }
}

/// A message from server to client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// The server's hello; first frame of the server.
    Hello(Hello),
    /// The request failed. After kinds [`ErrorKind::Protocol`], [`ErrorKind::Version`] and
    /// [`ErrorKind::Busy`] the server closes the connection; after the others it stays usable.
    Error {
        /// What went wrong, for programs.
        kind: ErrorKind,
        /// What went wrong, for people; at most [`MAX_MESSAGE`] bytes.
        message: String,
    },
    /// The server accepts an upload: send the body now.
    Ready,
    /// The upload is verified, durable and published under its name.
    Stored {
        /// Bytes stored.
        size: u64,
    },
    /// A download starts: the body of exactly `size` bytes follows.
    File {
        /// Exact size of the body that follows.
        size: u64,
        /// Modification time, seconds since the Unix epoch.
        modified: i64,
    },
    /// One batch of a [`Request::List`] listing, at most [`LIST_BATCH`] entries (refused
    /// while decoding, so a longer batch never allocates).
    Entries(#[serde(deserialize_with = "bounded_batch")] Vec<EntryV3>),
    /// The listing is complete.
    ListEnd {
        /// Number of entries sent in all batches.
        count: u64,
    },
    /// (v2) Answer to [`Request::GetFrom`]: the body that follows carries bytes `offset..size`;
    /// `offset` is the client's or 0 (its bytes did not match: start over). Its `End` digest
    /// covers the whole file.
    FileFrom {
        /// Size of the whole file.
        size: u64,
        /// Modification time, seconds since the Unix epoch.
        modified: i64,
        /// Where the body starts.
        offset: u64,
    },
    /// (v2) Answer to [`Request::PutResumable`]: send the body from `offset` on; its `End`
    /// digest covers the whole file.
    ReadyFrom {
        /// Bytes the server already has.
        offset: u64,
    },
    /// (v3) Answer to [`Request::Login`]: logged in, with this role.
    LoggedIn {
        /// What the account may do.
        role: Role,
    },
    /// (v4) The answer to [`Request::Get`] and [`Request::GetFrom`] on a v4 connection
    /// (instead of [`Response::File`] and [`Response::FileFrom`]): the body that follows
    /// carries bytes `offset..size`, and its `End` digest covers the whole file.
    Opened {
        /// The name the request asked for, so that the client can tell which request this
        /// answers.
        name: String,
        /// Size of the whole file.
        size: u64,
        /// Where the body starts (0 for `Get`; for `GetFrom`, the client's offset or 0).
        offset: u64,
        /// The file's modification time and execute bit.
        attrs: Attrs,
    },
    /// (v4) One batch of a [`Request::ListDir`] listing, at most [`LIST_BATCH`] entries.
    Listing(#[serde(deserialize_with = "bounded_batch")] Vec<Entry>),
    /// (v4) Answer to [`Request::Stat`].
    Described {
        /// What the name is; its `name` is the whole name asked.
        entry: Entry,
        /// XXH3-128 of the file, when asked for and a file.
        digest: Option<[u8; DIGEST_LEN]>,
    },
    /// (v4) Answer to [`Request::MakeDir`]: the directory exists now.
    Made {
        /// Whether this request created it (false: it existed already).
        created: bool,
    },
    /// (v4) Answer to [`Request::Upload`] instead of [`Response::Stored`]: the file is
    /// verified, durable and published; `name` says which upload this answers (pipelined
    /// uploads are answered in request order, and a client checks it).
    Uploaded {
        /// The name the upload asked for, exactly.
        name: String,
        /// Bytes stored.
        size: u64,
    },
}

impl Response {
    /// Short name of the response, for error messages.
    pub fn name(&self) -> &'static str {
        match self {
            Response::Hello(_) => "hello",
            Response::Error { .. } => "error",
            Response::Ready => "ready",
            Response::Stored { .. } => "stored",
            Response::File { .. } => "file",
            Response::Entries(_) => "entries",
            Response::ListEnd { .. } => "list-end",
            Response::FileFrom { .. } => "file-from",
            Response::ReadyFrom { .. } => "ready-from",
            Response::LoggedIn { .. } => "logged-in",
            Response::Opened { .. } => "opened",
            Response::Listing(_) => "listing",
            Response::Described { .. } => "described",
            Response::Made { .. } => "made",
            Response::Uploaded { .. } => "uploaded",
        }
    }
}

/// A frame of a file body, in either direction: chunks, then exactly one `End` or `Abort`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body<'a> {
    /// The next bytes of the file, at most [`MAX_CHUNK`].
    Chunk(#[serde(borrow, with = "serde_bytes")] &'a [u8]),
    /// The body is complete; the digest covers every byte of it.
    End {
        /// XXH3-128 of the whole body, big-endian.
        digest: [u8; DIGEST_LEN],
    },
    /// The sender gives up; the receiver discards what it got.
    Abort {
        /// Why.
        kind: ErrorKind,
        /// Why, for people; at most [`MAX_MESSAGE`] bytes.
        message: String,
    },
}

/// One entry of a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Name relative to the directory listed (one or more components). May contain
    /// characters a terminal interprets: escape it before printing.
    pub name: String,
    /// What kind of entry this is.
    pub kind: EntryKind,
    /// Size in bytes (0 for directories).
    pub size: u64,
    /// Modification time, seconds since the Unix epoch.
    pub modified: i64,
    /// Whether any execute bit is set (always false for directories).
    pub executable: bool,
}

/// One entry of a [`Request::List`] listing, as versions 1 to 3 send it: an [`Entry`]
/// without its execute bit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryV3 {
    /// File name (one path component: the top directory's own entries).
    pub name: String,
    /// What kind of entry this is.
    pub kind: EntryKind,
    /// Size in bytes (0 for directories).
    pub size: u64,
    /// Modification time, seconds since the Unix epoch.
    pub modified: i64,
}

impl From<Entry> for EntryV3 {
    fn from(entry: Entry) -> EntryV3 {
        EntryV3 {
            name: entry.name,
            kind: entry.kind,
            size: entry.size,
            modified: entry.modified,
        }
    }
}

impl From<EntryV3> for Entry {
    fn from(entry: EntryV3) -> Entry {
        Entry {
            name: entry.name,
            kind: entry.kind,
            size: entry.size,
            modified: entry.modified,
            executable: false,
        }
    }
}

/// Decodes a listing batch without ever holding room for more than [`LIST_BATCH`] entries:
/// serde's own `Vec` would grow by doubling up to the frame limit and beyond.
fn bounded_batch<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    decoder: D,
) -> Result<Vec<T>, D::Error> {
    struct Batch<T>(std::marker::PhantomData<T>);

    impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Batch<T> {
        type Value = Vec<T>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "at most {LIST_BATCH} entries")
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let claimed = seq.size_hint().unwrap_or(0);
            if claimed > LIST_BATCH {
                return Err(serde::de::Error::invalid_length(claimed, &self));
            }
            let mut batch = Vec::with_capacity(claimed);
            while let Some(entry) = seq.next_element()? {
                if batch.len() == LIST_BATCH {
                    return Err(serde::de::Error::invalid_length(LIST_BATCH + 1, &self));
                }
                batch.push(entry);
            }
            Ok(batch)
        }
    }

    decoder.deserialize_seq(Batch(std::marker::PhantomData))
}

/// Declares an enum that travels as a `u16` code, so a peer with a newer list of
/// values decodes unknown ones as `Other` instead of failing.
macro_rules! coded_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[doc = $doc:literal])* $variant:ident = $code:literal => $label:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
        #[serde(from = "u16")]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[doc = $doc])* $variant, )*
        }

        impl $name {
            /// Every value, in code order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The code this value has on the wire.
            pub fn code(self) -> u16 {
                match self { $($name::$variant => $code,)* }
            }

            /// Short lowercase name, as printed in reports and JSON.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $label,)* }
            }
        }

        impl From<u16> for $name {
            fn from(code: u16) -> $name {
                match code {
                    $($code => $name::$variant,)*
                    _ => $name::Other,
                }
            }
        }

        impl From<$name> for u16 {
            fn from(value: $name) -> u16 {
                value.code()
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                // The wire (bincode) gets the code; human-readable formats such as JSON the label.
                if s.is_human_readable() {
                    s.serialize_str(self.as_str())
                } else {
                    s.serialize_u16(self.code())
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

coded_enum! {
    /// What went wrong, as carried in [`Response::Error`] and [`Body::Abort`].
    ///
    /// Travels as a `u16`; codes this version does not know decode as [`ErrorKind::Other`].
    pub enum ErrorKind {
        /// Anything not covered below, including codes from newer peers.
        Other = 0 => "other",
        /// The named file does not exist (or is not a regular file).
        NotFound = 1 => "not-found",
        /// A file of that name already exists; it was not touched.
        AlreadyExists = 2 => "already-exists",
        /// The name is not a valid relative path (see `docs/PROTOCOL.md`).
        InvalidName = 3 => "invalid-name",
        /// The file is larger than the peer accepts.
        TooLarge = 4 => "too-large",
        /// The file system is full.
        NoSpace = 5 => "no-space",
        /// The body's digest did not match.
        ChecksumMismatch = 6 => "checksum-mismatch",
        /// The body was shorter or longer than declared, or the source changed while sent.
        SizeMismatch = 7 => "size-mismatch",
        /// The server has no room for another connection.
        Busy = 8 => "busy",
        /// The peer was silent for too long.
        Timeout = 9 => "timeout",
        /// The peer broke the protocol.
        Protocol = 10 => "protocol",
        /// No common protocol version.
        Version = 11 => "version",
        /// An I/O error on the peer's side.
        Io = 12 => "io",
        /// The peer's operating system denied access.
        PermissionDenied = 13 => "permission-denied",
        /// The server is shutting down.
        ShuttingDown = 14 => "shutting-down",
        /// The sender cancelled the transfer.
        Cancelled = 15 => "cancelled",
        /// The local side could not reach the peer, or the connection broke.
        Connection = 16 => "connection",
        /// The server does not accept uploads.
        ReadOnly = 17 => "read-only",
        /// A login was refused (wrong user name or password, never saying which).
        AuthFailed = 18 => "auth-failed",
        /// One side speaks TLS and the other plain; also the TLS server's greeting.
        TlsRequired = 19 => "tls-required",
        /// The server presented another identity than the one trusted (local only).
        IdentityChanged = 20 => "identity-changed",
        /// The server's object store failed or cannot be reached (its bucket is named).
        Storage = 21 => "storage",
    }
}

coded_enum! {
    /// What an account may do.
    pub enum Role {
        /// A role this version does not know (from newer peers): allows nothing.
        Other = 0 => "other",
        /// Get and list.
        Read = 1 => "read",
        /// Get, list and put.
        Write = 2 => "write",
    }
}

impl Role {
    /// True when the role allows downloads and listings.
    pub fn may_read(self) -> bool {
        matches!(self, Role::Read | Role::Write)
    }

    /// True when the role allows uploads.
    pub fn may_write(self) -> bool {
        self == Role::Write
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(text: &str) -> Result<Role, String> {
        match text {
            "read" => Ok(Role::Read),
            "write" => Ok(Role::Write),
            _ => Err(format!("{text:?} is not a role: read or write")),
        }
    }
}

coded_enum! {
    /// The kind of a listed entry.
    pub enum EntryKind {
        /// Anything else (from newer peers).
        Other = 0 => "other",
        /// A regular file.
        File = 1 => "file",
        /// A directory (listed, not transferable).
        Dir = 2 => "dir",
    }
}

impl ErrorKind {
    /// True for failures that interrupt a transfer without saying anything against its
    /// data (a broken connection, a timeout, a cancel, a shutdown): what a resume continues.
    pub fn is_interruption(self) -> bool {
        matches!(
            self,
            ErrorKind::Connection
                | ErrorKind::Timeout
                | ErrorKind::Cancelled
                | ErrorKind::ShuttingDown
        )
    }
}

/// Cuts `message` to at most [`MAX_MESSAGE`] bytes on a character boundary.
pub fn clip_message(mut message: String) -> String {
    if message.len() > MAX_MESSAGE {
        let mut end = MAX_MESSAGE;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_is_other() {
        for &kind in ErrorKind::ALL {
            assert_eq!(ErrorKind::from(kind.code()), kind);
        }
        assert_eq!(ErrorKind::from(9999), ErrorKind::Other);
        for &kind in EntryKind::ALL {
            assert_eq!(EntryKind::from(u16::from(kind)), kind);
        }
        assert_eq!(EntryKind::from(77), EntryKind::Other);
    }

    #[test]
    fn labels_are_unique() {
        let mut labels: Vec<_> = ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), ErrorKind::ALL.len());
        assert_eq!(ErrorKind::AlreadyExists.to_string(), "already-exists");
    }

    #[test]
    fn clip_message_respects_char_boundaries() {
        let long = "é".repeat(MAX_MESSAGE);
        let clipped = clip_message(long);
        assert!(clipped.len() <= MAX_MESSAGE);
        assert!(clipped.chars().all(|c| c == 'é'));
        assert_eq!(clip_message("short".into()), "short");
    }
}
