//! Streaming over a [`Connection`]: a file body as bounded chunks closed by an end-to-end
//! XXH3-128 digest, and a listing as bounded batches. Memory stays constant whatever the
//! size of the file or directory.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use xxhash_rust::xxh3::Xxh3;

use crate::connection::Connection;
use crate::error::{Changed, Error, Result, Side};
use crate::protocol::{
    Body, DIGEST_LEN, Entry, EntryV3, LIST_BATCH, MAX_CHUNK, MAX_NAME, MAX_PATH, Response,
    clip_message,
};
use crate::sys::PageAligned;
use crate::text::escape;

/// What a transfer reports to and asks of its caller between chunks.
#[derive(Default)]
pub(crate) struct Hooks<'a> {
    /// Called with the number of body bytes moved so far.
    pub progress: Option<&'a mut dyn FnMut(u64)>,
    /// When set, stops the transfer with [`Error::Cancelled`] at the next chunk.
    pub cancel: Option<&'a AtomicBool>,
}

impl Hooks<'_> {
    fn progress(&mut self, done: u64) {
        if let Some(progress) = self.progress.as_mut() {
            progress(done);
        }
    }

    fn cancelled(&self) -> bool {
        self.cancel.is_some_and(|c| c.load(Ordering::Relaxed))
    }
}

impl std::fmt::Debug for Hooks<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("progress", &self.progress.is_some())
            .field("cancel", &self.cancel)
            .finish()
    }
}

/// How the digest at the end of a sent body is made.
#[derive(Clone)]
pub(crate) enum Digest {
    /// Hash the bytes as they are sent, continuing from this state (which covers the bytes
    /// before the body's offset, if any).
    Running(Box<Xxh3>),
    /// The whole file's digest is known already (a resumable upload declared it).
    Known([u8; DIGEST_LEN]),
}

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Digest::Running(_) => f.write_str("Running"),
            Digest::Known(d) => write!(f, "Known({d:02x?})"),
        }
    }
}

/// Reads exactly `len` bytes from `reader`, hashing them; the state continues a body.
///
/// # Errors
/// When the reader fails or ends before `len` bytes.
pub(crate) fn hash_prefix(reader: &mut dyn Read, len: u64) -> io::Result<Xxh3> {
    let (hasher, copied) = hash_into(Xxh3::new(), &mut reader.take(len))?;
    if copied < len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("only {copied} of {len} bytes could be read"),
        ));
    }
    Ok(hasher)
}

/// The XXH3-128 of everything `reader` yields, and how many bytes that was.
///
/// # Errors
/// When the reader fails.
pub(crate) fn hash_all(reader: &mut dyn Read) -> io::Result<([u8; DIGEST_LEN], u64)> {
    let (hasher, len) = hash_into(Xxh3::new(), reader)?;
    Ok((hasher.digest128().to_be_bytes(), len))
}

/// Feeds everything `reader` yields to `hasher`; the state and how many bytes that was.
fn hash_into(mut hasher: Xxh3, reader: &mut dyn Read) -> io::Result<(Xxh3, u64)> {
    // Large reads: `io::copy`'s 8 KiB buffer made hashing a big file cost a system call
    // per 8 KiB; 256 KiB still stays in the cache between the read and the hash.
    let mut buf = PageAligned::zeroed(HASH_BUFFER);
    let mut len = 0u64;
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buf[..n]);
                len += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok((hasher, len))
}

/// The read size of [`hash_into`].
const HASH_BUFFER: usize = 256 * 1024;

/// Which bytes of which file a body carries: `offset..size` of the file `name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span<'a> {
    /// The file's name, as errors show it.
    pub name: &'a str,
    /// Size of the whole file.
    pub size: u64,
    /// First byte the body carries: 0, or where a resumed transfer continues.
    pub offset: u64,
}

impl<'a> Span<'a> {
    /// The whole file: bytes `0..size`.
    pub(crate) fn whole(name: &'a str, size: u64) -> Span<'a> {
        Span {
            name,
            size,
            offset: 0,
        }
    }
}

/// Sends the bytes of `span` from `reader` (positioned at `span.offset`) as a body of
/// chunks of at most `chunk_size` bytes, then the whole file's digest; returns the bytes
/// sent and that digest.
///
/// When the source ends early, grows, fails, or the transfer is cancelled, an `Abort` is
/// sent instead of `End`, so the connection stays usable, and the error is returned.
///
/// # Errors
/// [`Error::SizeMismatch`], [`Error::Io`], [`Error::Cancelled`] (connection still usable);
/// connection errors.
pub(crate) fn send_body(
    conn: &mut Connection,
    span: Span<'_>,
    reader: &mut dyn Read,
    digest: Digest,
    chunk_size: usize,
    hooks: &mut Hooks<'_>,
) -> Result<Received> {
    let Span { name, size, offset } = span;
    let chunk_size = chunk_size.clamp(1, MAX_CHUNK);
    let left = size.saturating_sub(offset);
    // Page-aligned: the kernel copies file pages into it fastest so (`sys::PageAligned`).
    let mut buf =
        PageAligned::zeroed(usize::try_from(left).map_or(chunk_size, |s| s.clamp(1, chunk_size)));
    // Ok: hash as we go; Err: the whole file's digest is known already.
    let mut running = match digest {
        Digest::Running(state) => Ok(*state),
        Digest::Known(known) => Err(known),
    };
    let mut sent = offset;
    while sent < size {
        if hooks.cancelled() {
            return abort(conn, Error::Cancelled);
        }
        let want = usize::try_from(size - sent).map_or(buf.len(), |left| left.min(buf.len()));
        let n = match fill(reader, &mut buf[..want]) {
            Ok(0) => {
                return abort(
                    conn,
                    Error::SizeMismatch {
                        name: name.to_owned(),
                        expected: size,
                        actual: sent,
                        why: Changed::Shrank,
                    },
                );
            }
            Ok(n) => n,
            Err(e) => return abort(conn, Error::io(format!("reading {}", escape(name)), e)),
        };
        let data = &buf[..n];
        if let Ok(hasher) = running.as_mut() {
            hasher.update(data);
        }
        conn.send_chunk(data)?;
        sent += n as u64;
        hooks.progress(sent);
    }
    match fill(reader, &mut [0u8; 1]) {
        Ok(0) => {}
        Ok(_) => {
            return abort(
                conn,
                Error::SizeMismatch {
                    name: name.to_owned(),
                    expected: size,
                    actual: size + 1,
                    why: Changed::Grew,
                },
            );
        }
        Err(e) => return abort(conn, Error::io(format!("reading {}", escape(name)), e)),
    }
    let digest = running.map_or_else(|known| known, |hasher| hasher.digest128().to_be_bytes());
    conn.send(&Body::End { digest })?;
    Ok(Received {
        bytes: sent - offset,
        digest,
    })
}

/// Sends bytes `span.offset..span.size` of `file` as chunks from the page cache straight
/// to the socket ([`Connection::send_chunk_from_file`], where the connection
/// [can](Connection::can_send_file)), then `End{digest}`. `digest` must be the whole
/// file's, known already (the one its store kept): these bytes are not read here, so not
/// hashed either, and the receiver's check of the digest is what verifies them.
///
/// # Errors
/// As [`send_body`]; a file shorter than `span.size` breaks the connection.
pub(crate) fn send_file_body(
    conn: &mut Connection,
    span: Span<'_>,
    file: &std::fs::File,
    digest: [u8; DIGEST_LEN],
    chunk_size: usize,
    hooks: &mut Hooks<'_>,
) -> Result<Received> {
    let Span { size, offset, .. } = span;
    let chunk_size = chunk_size.clamp(1, MAX_CHUNK) as u64;
    let mut sent = offset;
    while sent < size {
        if hooks.cancelled() {
            return abort(conn, Error::Cancelled);
        }
        let n = chunk_size.min(size - sent);
        // At most MAX_CHUNK, which fits in usize.
        conn.send_chunk_from_file(file, sent, usize::try_from(n).unwrap_or(usize::MAX))?;
        sent += n;
        hooks.progress(sent);
    }
    conn.send(&Body::End { digest })?;
    Ok(Received {
        bytes: sent - offset,
        digest,
    })
}

/// Sends an `Abort` carrying `error`, then returns it.
fn abort<T>(conn: &mut Connection, error: Error) -> Result<T> {
    send_abort(conn, &error)?;
    Err(error)
}

/// Sends an `Abort` carrying `error`'s kind and message.
pub(crate) fn send_abort(conn: &mut Connection, error: &Error) -> Result<()> {
    conn.send(&Body::Abort {
        kind: error.kind(),
        message: clip_message(error.to_string()),
    })
}

/// Reads until `buf` is full or the source ends.
fn fill(reader: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// A body received and verified, or sent whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Received {
    /// Bytes moved in this body (from the offset on).
    pub bytes: u64,
    /// The digest of the whole file (received: verified; sent: the one its `End` carried).
    pub digest: [u8; DIGEST_LEN],
}

/// After a local write failure, the most of a body still read and dropped to keep the
/// connection in step; past this, the connection is given up instead.
pub(crate) const DRAIN_LIMIT: u64 = 64 * 1024 * 1024;

/// Receives the bytes of `span` from `peer` into `writer` and verifies the whole file's
/// digest; `prefix` is the hash state of bytes `0..span.offset` (a fresh one when the
/// offset is 0).
///
/// Nothing is trusted until this returns `Ok`: the caller must discard what was written
/// on any error. A failing `writer` does not desynchronise the connection: up to
/// [`DRAIN_LIMIT`] more bytes are read and dropped, then the write error is returned (past
/// that, it is returned as [`Error::Abandoned`]).
///
/// # Errors
/// [`Error::SizeMismatch`] (body ended early), [`Error::ChecksumMismatch`], [`Error::Io`]
/// (writer), [`Error::Aborted`] (sender aborted): the connection stays usable.
/// [`Error::Protocol`] (body longer than declared, empty or oversized chunk),
/// [`Error::Abandoned`] (also for a cancel) and connection errors: it does not.
pub(crate) fn recv_body(
    conn: &mut Connection,
    peer: Side,
    span: Span<'_>,
    writer: &mut dyn Write,
    prefix: Xxh3,
    hooks: &mut Hooks<'_>,
) -> Result<Received> {
    let Span { name, size, offset } = span;
    let mut hasher = prefix;
    let mut got = offset;
    let mut write_error = None;
    loop {
        if hooks.cancelled() {
            // The rest of the body is still in flight.
            return Err(Error::Abandoned(Box::new(Error::Cancelled)));
        }
        match conn.expect::<Body<'_>>("in the middle of a file body")? {
            Body::Chunk(data) => {
                if data.is_empty() || data.len() > MAX_CHUNK {
                    return Err(Error::Protocol(format!(
                        "chunk of {} bytes (allowed: 1 to {MAX_CHUNK})",
                        data.len()
                    )));
                }
                let len = data.len() as u64;
                if len > size.saturating_sub(got) {
                    return Err(Error::Protocol(format!(
                        "the body of {} is longer than the declared {size} bytes",
                        escape(name)
                    )));
                }
                hasher.update(data);
                got += len;
                if write_error.is_none() {
                    if let Err(e) = writer.write_all(data) {
                        let e = Error::io(format!("writing {}", escape(name)), e);
                        if size - got > DRAIN_LIMIT {
                            return Err(Error::Abandoned(Box::new(e)));
                        }
                        write_error = Some(e);
                    }
                }
                hooks.progress(got);
            }
            Body::End { digest } => {
                if let Some(e) = write_error {
                    return Err(e);
                }
                if got != size {
                    return Err(Error::SizeMismatch {
                        name: name.to_owned(),
                        expected: size,
                        actual: got,
                        why: Changed::EndedEarly,
                    });
                }
                if digest != hasher.digest128().to_be_bytes() {
                    return Err(Error::ChecksumMismatch {
                        name: name.to_owned(),
                    });
                }
                return Ok(Received {
                    bytes: got - offset,
                    digest,
                });
            }
            Body::Abort { kind, message } => return Err(peer.aborted(kind, message)),
        }
    }
}

/// Streams `entries` as batches of at most [`LIST_BATCH`], then `ListEnd`. A failing
/// entry ends the listing with an `Error` response instead, after the entries before it.
/// `sent` counts the entries sent, for the report, also when the listing fails.
///
/// # Errors
/// The entry error (connection still usable), or connection errors.
pub(crate) fn send_listing(
    conn: &mut Connection,
    entries: impl Iterator<Item = Result<Entry>>,
    tree: bool,
    sent: &mut u64,
) -> Result<u64> {
    let batch_of = |batch: Vec<Entry>| {
        if tree {
            Response::Listing(batch)
        } else {
            Response::Entries(batch.into_iter().map(EntryV3::from).collect())
        }
    };
    let mut batch = Vec::with_capacity(LIST_BATCH);
    let mut bytes = 0;
    *sent = 0;
    for entry in entries {
        match entry {
            Ok(entry) => {
                bytes += entry.name.len() + 32;
                batch.push(entry);
            }
            Err(e) => {
                // What was listed goes first: a listing may end with an error once all the
                // rest is listed (a directory that could not be read).
                if !batch.is_empty() {
                    let n = batch.len() as u64;
                    conn.send(&batch_of(std::mem::take(&mut batch)))?;
                    *sent += n;
                }
                conn.send(&Response::Error {
                    kind: e.kind(),
                    message: clip_message(e.to_string()),
                })?;
                return Err(e);
            }
        }
        // Long names fill a frame before LIST_BATCH entries do.
        if batch.len() == LIST_BATCH || bytes >= LIST_BATCH_BYTES {
            let n = batch.len() as u64;
            conn.send(&batch_of(std::mem::take(&mut batch)))?;
            *sent += n;
            batch.reserve(LIST_BATCH);
            bytes = 0;
        }
    }
    if !batch.is_empty() {
        let n = batch.len() as u64;
        conn.send(&batch_of(batch))?;
        *sent += n;
    }
    conn.send(&Response::ListEnd { count: *sent })?;
    Ok(*sent)
}

/// A listing batch is sent once its names reach this many bytes, whatever its count, so
/// that a batch of long paths stays well within [`crate::protocol::MAX_FRAME`].
const LIST_BATCH_BYTES: usize = 256 * 1024;

/// Receives a listing, handing each entry to `each`; at most `max_entries` are accepted.
///
/// # Errors
/// [`Error::Remote`] when the server reports a failure; [`Error::Protocol`] for oversized
/// batches or names, too many entries or a wrong count; connection errors.
pub(crate) fn recv_listing(
    conn: &mut Connection,
    max_entries: u64,
    each: &mut dyn FnMut(Entry),
) -> Result<u64> {
    let mut count = 0u64;
    loop {
        match conn.expect::<Response>("in the middle of a listing")? {
            Response::Entries(batch) if batch.is_empty() => return Err(empty_batch()),
            Response::Listing(batch) if batch.is_empty() => return Err(empty_batch()),
            // Batches over LIST_BATCH entries are refused while decoding.
            Response::Entries(batch) => {
                count += batch.len() as u64;
                let entries = batch.into_iter().map(Entry::from);
                take_batch(entries, count, max_entries, MAX_NAME, each)?;
            }
            Response::Listing(batch) => {
                count += batch.len() as u64;
                take_batch(batch.into_iter(), count, max_entries, MAX_PATH, each)?;
            }
            Response::ListEnd { count: sent } if sent == count => return Ok(count),
            Response::ListEnd { count: sent } => {
                return Err(Error::Protocol(format!(
                    "listing ended claiming {sent} entries after {count}"
                )));
            }
            Response::Error { kind, message } => return Err(Side::Server.remote(kind, message)),
            other => {
                return Err(Error::Protocol(format!(
                    "unexpected {} in a listing",
                    other.name()
                )));
            }
        }
    }
}

fn empty_batch() -> Error {
    Error::Protocol(format!(
        "an empty listing batch (each carries 1 to {LIST_BATCH} entries)"
    ))
}

/// Hands over one batch of a listing, `count` entries so far with it: refused past
/// `max_entries`, or with a name empty or longer than `max_name` bytes.
fn take_batch(
    batch: impl Iterator<Item = Entry>,
    count: u64,
    max_entries: u64,
    max_name: usize,
    each: &mut dyn FnMut(Entry),
) -> Result<()> {
    if count > max_entries {
        return Err(Error::Protocol(format!(
            "listing longer than the limit of {max_entries} entries"
        )));
    }
    for entry in batch {
        if entry.name.is_empty() || entry.name.len() > max_name {
            return Err(Error::Protocol(format!(
                "listing entry with a name of {} bytes",
                entry.name.len()
            )));
        }
        each(entry);
    }
    Ok(())
}

/// Length of the digest on the wire; kept next to the code that computes it.
const _: () = assert!(DIGEST_LEN == 16);

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;
    use std::thread;
    use std::time::Duration;

    use ft_testutil::digest;

    use super::*;
    use crate::connection::mem::connection_pair;
    use crate::protocol::{EntryKind, ErrorKind, Request};

    const TIMEOUT: Duration = Duration::from_secs(10);
    const CHUNK: usize = 1000;

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    fn prefix(bytes: &[u8]) -> Xxh3 {
        hash_prefix(&mut &bytes[..], bytes.len() as u64).expect("hash")
    }

    /// Sends `file[span.offset..]` with `digest` and receives it, each on its own side of a
    /// pipe: what was sent, what was received, the bytes written, and the receiver's
    /// progress reports.
    fn exchange(
        file: &[u8],
        offset: u64,
        send_digest: Digest,
        chunk_size: usize,
    ) -> (Result<Received>, Result<Received>, Vec<u8>, Vec<u64>) {
        let span = Span {
            name: "f",
            size: file.len() as u64,
            offset,
        };
        let (mut a, mut b) = connection_pair(TIMEOUT);
        let start = usize::try_from(offset).expect("small");
        let mut written = Vec::new();
        let mut reports = Vec::new();
        let (sent, received) = thread::scope(|s| {
            let sender = s.spawn(move || {
                let mut reader = &file[start..];
                send_body(
                    &mut a,
                    span,
                    &mut reader,
                    send_digest,
                    chunk_size,
                    &mut Hooks::default(),
                )
            });
            let mut each = |n| reports.push(n);
            let mut hooks = Hooks {
                progress: Some(&mut each),
                cancel: None,
            };
            let received = recv_body(
                &mut b,
                Side::Client,
                span,
                &mut written,
                prefix(&file[..start]),
                &mut hooks,
            );
            (sender.join().expect("sender"), received)
        });
        (sent, received, written, reports)
    }

    #[test]
    fn bodies_round_trip_at_every_size_around_the_chunk() {
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK + 17, 300_000] {
            let file = data(len);
            let running = Digest::Running(Box::default());
            let (sent, received, written, reports) = exchange(&file, 0, running, CHUNK);
            let received = received.expect("received");
            // The sender says what it sent and the digest it ended with: what was verified.
            assert_eq!(sent.expect("sent"), received, "{len}");
            assert_eq!(
                received,
                Received {
                    bytes: len as u64,
                    digest: digest(&file)
                },
                "{len}"
            );
            assert_eq!(written, file, "{len}");
            assert_eq!(
                reports.len(),
                len.div_ceil(CHUNK),
                "{len}: one report per chunk"
            );
            assert_eq!(reports.last().copied().unwrap_or(0), len as u64);
        }
    }

    /// A resumed body carries the bytes after the offset; the digest covers the whole file,
    /// whether hashed from a prefix state or known in advance.
    #[test]
    fn a_body_resumes_from_an_offset() {
        let file = data(4321);
        for offset in [0, 1, 1000, 4320, 4321] {
            let start = usize::try_from(offset).expect("small");
            let digests = [
                Digest::Running(Box::new(prefix(&file[..start]))),
                Digest::Known(digest(&file)),
            ];
            for send_digest in digests {
                let (sent, received, written, _) = exchange(&file, offset, send_digest, CHUNK);
                let left = file.len() as u64 - offset;
                let received = received.expect("received");
                assert_eq!(sent.expect("sent"), received);
                assert_eq!(received.bytes, left);
                assert_eq!(received.digest, digest(&file));
                assert_eq!(written, file[start..]);
            }
        }
    }

    /// A frame a sender puts on the wire, honest or not.
    enum Frame {
        Chunk(Vec<u8>),
        End([u8; DIGEST_LEN]),
        Abort(ErrorKind, &'static str),
        Close,
    }

    /// One row per lying or giving-up sender: the error the receiver returns, and whether
    /// the connection is still in step (the next frame is read as a request).
    #[test]
    fn a_receiver_tells_every_bad_body_apart() {
        use Frame::{Abort, Chunk, Close, End};
        let abc = b"abc".to_vec();
        // What, declared size, frames sent, kind and text of the error, in step after it.
        type Row = (&'static str, u64, Vec<Frame>, ErrorKind, &'static str, bool);
        let rows: Vec<Row> = vec![
            (
                "ended early",
                5,
                vec![Chunk(abc.clone()), End(digest(b"abc"))],
                ErrorKind::SizeMismatch,
                "f: expected 5 bytes, got 3 (the body ended early)",
                true,
            ),
            (
                "wrong digest",
                3,
                vec![Chunk(abc.clone()), End([0; DIGEST_LEN])],
                ErrorKind::ChecksumMismatch,
                "f: checksum mismatch",
                true,
            ),
            (
                "aborted",
                3,
                vec![Chunk(b"a".to_vec()), Abort(ErrorKind::NotFound, "gone")],
                ErrorKind::NotFound,
                "the client aborted the transfer: gone",
                true,
            ),
            (
                "longer than declared",
                2,
                vec![Chunk(abc.clone())],
                ErrorKind::Protocol,
                "the body of f is longer than the declared 2 bytes",
                false,
            ),
            (
                "longer in a later chunk",
                4,
                vec![Chunk(abc.clone()), Chunk(b"de".to_vec())],
                ErrorKind::Protocol,
                "longer than the declared 4 bytes",
                false,
            ),
            (
                "empty chunk",
                3,
                vec![Chunk(Vec::new())],
                ErrorKind::Protocol,
                "chunk of 0 bytes (allowed: 1 to 1048576)",
                false,
            ),
            (
                "oversized chunk",
                u64::MAX,
                vec![Chunk(vec![1; MAX_CHUNK + 1])],
                ErrorKind::Protocol,
                "chunk of 1048577 bytes",
                false,
            ),
            (
                "cut off",
                3,
                vec![Chunk(b"a".to_vec()), Close],
                ErrorKind::Connection,
                "connection closed by the peer in the middle of a file body",
                false,
            ),
        ];
        for (what, size, frames, kind, text, in_step) in rows {
            let (mut a, mut b) = connection_pair(TIMEOUT);
            thread::scope(|s| {
                s.spawn(move || {
                    for frame in frames {
                        let sent = match frame {
                            Chunk(data) => a.send_chunk(&data),
                            End(digest) => a.send(&Body::End { digest }),
                            Abort(kind, message) => a.send(&Body::Abort {
                                kind,
                                message: message.into(),
                            }),
                            Close => {
                                a.close();
                                return;
                            }
                        };
                        if sent.is_err() {
                            return;
                        }
                    }
                    let _ = a.send(&Request::List);
                });
                let got = recv_body(
                    &mut b,
                    Side::Client,
                    Span::whole("f", size),
                    &mut io::sink(),
                    Xxh3::new(),
                    &mut Hooks::default(),
                );
                let error = got.expect_err(what);
                assert_eq!(error.kind(), kind, "{what}: {error}");
                assert!(error.to_string().contains(text), "{what}: {error}");
                assert_eq!(error.breaks_connection(), !in_step, "{what}: {error}");
                if in_step {
                    assert_eq!(b.recv().expect(what), Some(Request::List), "{what}");
                }
                drop(b);
            });
        }
    }

    /// A writer that accepts `room` bytes, then fails as a full disk does.
    struct FullDisk {
        room: usize,
    }

    impl Write for FullDisk {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::ErrorKind::StorageFull.into());
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// The rest of the body is read and dropped, so the next frame is read in step.
    #[test]
    fn a_failing_writer_drains_the_body_and_returns_its_error() {
        let file = data(10 * CHUNK);
        let (mut a, mut b) = connection_pair(TIMEOUT);
        let got = thread::scope(|s| {
            s.spawn(|| {
                let sent = send_body(
                    &mut a,
                    Span::whole("f", file.len() as u64),
                    &mut &file[..],
                    Digest::Running(Box::default()),
                    CHUNK,
                    &mut Hooks::default(),
                );
                assert_eq!(
                    sent.expect("the whole body is sent").bytes,
                    file.len() as u64
                );
                a.send(&Request::List).expect("next frame");
            });
            recv_body(
                &mut b,
                Side::Client,
                Span::whole("f", file.len() as u64),
                &mut FullDisk { room: 1500 },
                Xxh3::new(),
                &mut Hooks::default(),
            )
        });
        match got {
            Err(Error::Io { context, source }) => {
                assert_eq!(context, "writing f");
                assert_eq!(source.kind(), io::ErrorKind::StorageFull);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(b.recv().expect("in step"), Some(Request::List));
    }

    /// Past the drain limit the connection is given up at once instead of read to the end.
    #[test]
    fn a_failing_writer_gives_up_a_body_beyond_the_drain_limit() {
        let (mut a, mut b) = connection_pair(TIMEOUT);
        a.send_chunk(b"x").expect("send");
        let got = recv_body(
            &mut b,
            Side::Client,
            Span::whole("big", DRAIN_LIMIT + 2),
            &mut FullDisk { room: 0 },
            Xxh3::new(),
            &mut Hooks::default(),
        );
        match got {
            Err(e @ Error::Abandoned(_)) => {
                assert_eq!(e.kind(), ErrorKind::NoSpace);
                assert!(e.to_string().starts_with("writing big: "), "{e}");
            }
            other => panic!("{other:?}"),
        }
    }

    /// A reader that yields `good` bytes, then fails.
    struct BadSector {
        good: usize,
    }

    impl Read for BadSector {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.good == 0 {
                return Err(io::Error::other("bad sector"));
            }
            let n = buf.len().min(self.good);
            buf[..n].fill(1);
            self.good -= n;
            Ok(n)
        }
    }

    /// One row per source that does not hold what was announced: the sender aborts, both
    /// sides return the reason, and the connection stays in step.
    #[test]
    fn a_sender_aborts_when_its_source_misbehaves() {
        let short = data(2500);
        let long = data(3001);
        let rows: Vec<(&str, Box<dyn Read + Send>, ErrorKind, &str)> = vec![
            (
                "shrank",
                Box::new(io::Cursor::new(short)),
                ErrorKind::SizeMismatch,
                "f: expected 3000 bytes, got 2500 (the file shrank while being sent)",
            ),
            (
                "grew",
                Box::new(io::Cursor::new(long)),
                ErrorKind::SizeMismatch,
                "f: expected 3000 bytes, got 3001 (the file grew while being sent)",
            ),
            (
                "failed",
                Box::new(BadSector { good: 1200 }),
                ErrorKind::Io,
                "reading f: bad sector",
            ),
        ];
        for (what, mut source, kind, text) in rows {
            let (mut a, mut b) = connection_pair(TIMEOUT);
            let span = Span::whole("f", 3000);
            let (sent, got) = thread::scope(|s| {
                let sender = s.spawn(move || {
                    let sent = send_body(
                        &mut a,
                        span,
                        &mut source,
                        Digest::Running(Box::default()),
                        CHUNK,
                        &mut Hooks::default(),
                    );
                    a.send(&Request::List).expect("next frame");
                    sent
                });
                let got = recv_body(
                    &mut b,
                    Side::Server,
                    span,
                    &mut io::sink(),
                    Xxh3::new(),
                    &mut Hooks::default(),
                );
                (sender.join().expect("sender"), got)
            });
            let sent = sent.expect_err(what);
            assert_eq!(sent.kind(), kind, "{what}: {sent}");
            assert_eq!(sent.to_string(), text, "{what}");
            match got {
                Err(Error::Aborted {
                    side: Side::Server,
                    kind: k,
                    message,
                }) => {
                    assert_eq!(k, kind, "{what}");
                    assert_eq!(message, text, "{what}");
                }
                other => panic!("{what}: {other:?}"),
            }
            assert_eq!(b.recv().expect(what), Some(Request::List), "{what}");
        }
    }

    /// A sender cancelled after its first chunk aborts the body in step; a receiver
    /// cancelled gives the connection up, since the body is still in flight.
    #[test]
    fn cancel_through_the_hooks() {
        let file = data(5 * CHUNK);
        let (mut a, mut b) = connection_pair(TIMEOUT);
        let cancel = AtomicBool::new(false);
        let mut stop = |_| cancel.store(true, Ordering::Relaxed);
        let mut hooks = Hooks {
            progress: Some(&mut stop),
            cancel: Some(&cancel),
        };
        let sent = send_body(
            &mut a,
            Span::whole("f", file.len() as u64),
            &mut &file[..],
            Digest::Running(Box::default()),
            CHUNK,
            &mut hooks,
        );
        assert!(matches!(sent, Err(Error::Cancelled)), "{sent:?}");
        a.send(&Request::List).expect("next frame");
        let mut written = Vec::new();
        let got = recv_body(
            &mut b,
            Side::Client,
            Span::whole("f", file.len() as u64),
            &mut written,
            Xxh3::new(),
            &mut Hooks::default(),
        );
        assert!(
            matches!(
                got,
                Err(Error::Aborted {
                    kind: ErrorKind::Cancelled,
                    ..
                })
            ),
            "{got:?}"
        );
        assert_eq!(written, file[..CHUNK], "one chunk went before the cancel");
        assert_eq!(b.recv().expect("in step"), Some(Request::List));

        let cancelled = AtomicBool::new(true);
        let mut hooks = Hooks {
            progress: None,
            cancel: Some(&cancelled),
        };
        let got = recv_body(
            &mut b,
            Side::Client,
            Span::whole("f", 1),
            &mut io::sink(),
            Xxh3::new(),
            &mut hooks,
        );
        assert!(
            matches!(&got, Err(Error::Abandoned(inner)) if matches!(**inner, Error::Cancelled)),
            "{got:?}"
        );
    }

    fn entries(n: usize) -> Vec<Entry> {
        (0..n)
            .map(|i| Entry {
                name: format!("file-{i}"),
                kind: EntryKind::File,
                size: i as u64,
                modified: 1_700_000_000,
                executable: false,
            })
            .collect()
    }

    #[test]
    fn listings_round_trip_in_batches() {
        for n in [0, 1, LIST_BATCH, LIST_BATCH + 1, 3 * LIST_BATCH + 5] {
            let (mut a, mut b) = connection_pair(TIMEOUT);
            let sent = send_listing(&mut a, entries(n).into_iter().map(Ok), false, &mut 0);
            assert_eq!(sent.expect("sent"), n as u64);
            a.send(&Request::List).expect("next frame");
            let mut got = Vec::new();
            let count = recv_listing(&mut b, u64::MAX, &mut |e| got.push(e));
            assert_eq!(count.expect("received"), n as u64);
            assert_eq!(got, entries(n));
            assert_eq!(b.recv().expect("in step"), Some(Request::List));
        }
    }

    /// Full batches, then the rest, then the count; nothing but the count when empty.
    #[test]
    fn a_listing_is_sent_as_full_batches() {
        let (mut a, mut b) = connection_pair(TIMEOUT);
        send_listing(
            &mut a,
            entries(2 * LIST_BATCH + 1).into_iter().map(Ok),
            false,
            &mut 0,
        )
        .expect("sent");
        send_listing(&mut a, std::iter::empty(), false, &mut 0).expect("sent");
        let mut shapes = Vec::new();
        for _ in 0..5 {
            shapes.push(match b.expect::<Response>("a listing").expect("frame") {
                Response::Entries(batch) => batch.len() as u64,
                Response::ListEnd { count } => 1_000_000 + count,
                other => panic!("{other:?}"),
            });
        }
        let batch = LIST_BATCH as u64;
        assert_eq!(
            shapes,
            [batch, batch, 1, 1_000_000 + 2 * batch + 1, 1_000_000]
        );
    }

    /// A failing entry ends the listing with the server's error, in step, after every
    /// entry before it (the partial batch too).
    #[test]
    fn a_failing_entry_ends_the_listing_with_an_error() {
        let (mut a, mut b) = connection_pair(TIMEOUT);
        let failing = entries(LIST_BATCH + 3)
            .into_iter()
            .map(Ok)
            .chain([Err(Error::io(
                "reading the directory",
                io::Error::other("gone"),
            ))]);
        let mut count = 0;
        let sent = send_listing(&mut a, failing, false, &mut count);
        assert_eq!(count, LIST_BATCH as u64 + 3, "counted for the report");
        assert!(matches!(sent, Err(Error::Io { .. })), "{sent:?}");
        a.send(&Request::List).expect("next frame");
        let mut got = 0;
        let received = recv_listing(&mut b, u64::MAX, &mut |_| got += 1);
        match received {
            Err(e @ Error::Remote { .. }) => {
                assert_eq!(e.kind(), ErrorKind::Io);
                assert_eq!(e.to_string(), "server: reading the directory: gone");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(got, LIST_BATCH + 3, "every entry arrived before the error");
        assert_eq!(b.recv().expect("in step"), Some(Request::List));
    }

    /// One row per listing a lying server may send, as the receiver defines it: an empty
    /// batch is allowed; an oversized batch, a name out of bounds, more entries than the
    /// limit, a wrong count or an out-of-place response are protocol errors.
    #[test]
    fn a_receiver_bounds_every_listing() {
        let named = |name: &str| EntryV3 {
            name: name.into(),
            kind: EntryKind::File,
            size: 0,
            modified: 0,
        };
        let old = |n: usize| {
            entries(n)
                .into_iter()
                .map(EntryV3::from)
                .collect::<Vec<_>>()
        };
        let path = |name: &str| Entry::from(named(name));
        // What, frames sent, the receiver's limit, the count or the error's text.
        type Row = (&'static str, Vec<Response>, u64, Result<u64, &'static str>);
        let rows: Vec<Row> = vec![
            (
                "empty batch",
                vec![
                    Response::Entries(Vec::new()),
                    Response::ListEnd { count: 0 },
                ],
                10,
                Err("an empty listing batch (each carries 1 to 256 entries)"),
            ),
            (
                "empty v4 batch",
                vec![Response::Listing(Vec::new())],
                10,
                Err("an empty listing batch (each carries 1 to 256 entries)"),
            ),
            (
                "oversized batch",
                vec![Response::Entries(old(LIST_BATCH + 1))],
                u64::MAX,
                Err("at most 256 entries"),
            ),
            (
                "oversized v4 batch",
                vec![Response::Listing(entries(LIST_BATCH + 1))],
                u64::MAX,
                Err("at most 256 entries"),
            ),
            (
                "over the limit",
                vec![Response::Entries(old(3))],
                2,
                Err("listing longer than the limit of 2 entries"),
            ),
            (
                "empty name",
                vec![Response::Entries(vec![named("")])],
                10,
                Err("listing entry with a name of 0 bytes"),
            ),
            (
                "name too long",
                vec![Response::Entries(vec![named(&"n".repeat(MAX_NAME + 1))])],
                10,
                Err("listing entry with a name of 256 bytes"),
            ),
            (
                "path too long",
                vec![Response::Listing(vec![path(
                    &"n/".repeat(MAX_PATH / 2 + 1),
                )])],
                10,
                Err("listing entry with a name of 4098 bytes"),
            ),
            (
                "a long path in a v4 listing",
                vec![
                    Response::Listing(vec![path(&"n/".repeat(200))]),
                    Response::ListEnd { count: 1 },
                ],
                10,
                Ok(1),
            ),
            (
                "wrong count",
                vec![Response::Entries(old(2)), Response::ListEnd { count: 3 }],
                10,
                Err("listing ended claiming 3 entries after 2"),
            ),
            (
                "out of place",
                vec![Response::Ready],
                10,
                Err("unexpected ready in a listing"),
            ),
        ];
        for (what, frames, limit, want) in rows {
            let (mut a, mut b) = connection_pair(TIMEOUT);
            for frame in &frames {
                a.send(frame).expect("send");
            }
            let got = recv_listing(&mut b, limit, &mut |_| {});
            match (got, want) {
                (Ok(count), Ok(want)) => assert_eq!(count, want, "{what}"),
                (Err(e @ Error::Protocol(_)), Err(text)) => {
                    assert!(e.to_string().contains(text), "{what}: {e}");
                }
                (got, want) => panic!("{what}: got {got:?}, wanted {want:?}"),
            }
        }
    }
}
