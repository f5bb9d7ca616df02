//! Streaming over a [`Connection`]: a file body as bounded chunks closed by an end-to-end
//! XXH3-128 digest, and a listing as bounded batches. Memory stays constant whatever the
//! size of the file or directory.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use xxhash_rust::xxh3::Xxh3;

use crate::connection::Connection;
use crate::error::{Changed, Error, Result, Side};
use crate::protocol::{
    Body, DIGEST_LEN, Entry, LIST_BATCH, MAX_CHUNK, MAX_NAME, Response, clip_message,
};
use crate::text::escape;

/// What a transfer reports to and asks of its caller between chunks.
#[derive(Default)]
pub struct Hooks<'a> {
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
pub enum Digest {
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
pub fn hash_prefix(reader: &mut dyn Read, len: u64) -> io::Result<Xxh3> {
    let mut hasher = Xxh3::new();
    let copied = io::copy(&mut reader.take(len), &mut HashWriter(&mut hasher))?;
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
pub fn hash_all(reader: &mut dyn Read) -> io::Result<([u8; DIGEST_LEN], u64)> {
    let mut hasher = Xxh3::new();
    let len = io::copy(reader, &mut HashWriter(&mut hasher))?;
    Ok((hasher.digest128().to_be_bytes(), len))
}

struct HashWriter<'a>(&'a mut Xxh3);

impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Sends bytes `offset..size` of a file from `reader` (positioned at `offset`) as a body,
/// then the whole file's digest. `offset` is 0 except when resuming.
///
/// When the source ends early, grows, fails, or the transfer is cancelled, an `Abort` is
/// sent instead of `End`, so the connection stays usable, and the error is returned.
///
/// # Errors
/// [`Error::SizeMismatch`], [`Error::Io`], [`Error::Cancelled`] (connection still usable);
/// connection errors.
#[allow(clippy::too_many_arguments)] // each is one plain fact about the body
pub fn send_body(
    conn: &mut Connection,
    name: &str,
    reader: &mut dyn Read,
    size: u64,
    offset: u64,
    digest: Digest,
    chunk_size: usize,
    hooks: &mut Hooks<'_>,
) -> Result<u64> {
    let chunk_size = chunk_size.clamp(1, MAX_CHUNK);
    let left = size.saturating_sub(offset);
    let mut buf = vec![0u8; usize::try_from(left).map_or(chunk_size, |s| s.clamp(1, chunk_size))];
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
    Ok(sent - offset)
}

/// Sends an `Abort` carrying `error`, then returns it.
fn abort<T>(conn: &mut Connection, error: Error) -> Result<T> {
    conn.send(&Body::Abort {
        kind: error.kind(),
        message: clip_message(error.to_string()),
    })?;
    Err(error)
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

/// A body received and verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Bytes received in this body (from the offset on).
    pub bytes: u64,
    /// The verified digest of the whole file.
    pub digest: [u8; DIGEST_LEN],
}

/// After a local write failure, the most of a body still read and dropped to keep the
/// connection in step; past this, the connection is given up instead.
pub const DRAIN_LIMIT: u64 = 64 * 1024 * 1024;

/// Receives bytes `offset..size` of a file into `writer` and verifies the whole file's
/// digest; `prefix` is the hash state of bytes `0..offset` (a fresh one when `offset` is 0).
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
#[allow(clippy::too_many_arguments)] // each is one plain fact about the body
pub fn recv_body(
    conn: &mut Connection,
    peer: Side,
    name: &str,
    writer: &mut dyn Write,
    size: u64,
    offset: u64,
    prefix: Xxh3,
    hooks: &mut Hooks<'_>,
) -> Result<Received> {
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
/// entry ends the listing with an `Error` response instead.
///
/// # Errors
/// The entry error (connection still usable), or connection errors.
pub fn send_listing(
    conn: &mut Connection,
    entries: impl Iterator<Item = Result<Entry>>,
) -> Result<u64> {
    let mut batch = Vec::with_capacity(LIST_BATCH);
    let mut count = 0u64;
    for entry in entries {
        match entry {
            Ok(entry) => batch.push(entry),
            Err(e) => {
                conn.send(&Response::Error {
                    kind: e.kind(),
                    message: clip_message(e.to_string()),
                })?;
                return Err(e);
            }
        }
        if batch.len() == LIST_BATCH {
            count += batch.len() as u64;
            conn.send(&Response::Entries(std::mem::take(&mut batch)))?;
            batch.reserve(LIST_BATCH);
        }
    }
    if !batch.is_empty() {
        count += batch.len() as u64;
        conn.send(&Response::Entries(batch))?;
    }
    conn.send(&Response::ListEnd { count })?;
    Ok(count)
}

/// Receives a listing, handing each entry to `each`; at most `max_entries` are accepted.
///
/// # Errors
/// [`Error::Remote`] when the server reports a failure; [`Error::Protocol`] for oversized
/// batches or names, too many entries or a wrong count; connection errors.
pub fn recv_listing(
    conn: &mut Connection,
    max_entries: u64,
    each: &mut dyn FnMut(Entry),
) -> Result<u64> {
    let mut count = 0u64;
    loop {
        match conn.expect::<Response>("in the middle of a listing")? {
            // Batches over LIST_BATCH entries are refused while decoding.
            Response::Entries(batch) => {
                count += batch.len() as u64;
                if count > max_entries {
                    return Err(Error::Protocol(format!(
                        "listing longer than the limit of {max_entries} entries"
                    )));
                }
                for entry in batch {
                    if entry.name.is_empty() || entry.name.len() > MAX_NAME {
                        return Err(Error::Protocol(format!(
                            "listing entry with a name of {} bytes",
                            entry.name.len()
                        )));
                    }
                    each(entry);
                }
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
                    response_name(&other)
                )));
            }
        }
    }
}

/// Short name of a response, for error messages.
pub fn response_name(response: &Response) -> &'static str {
    match response {
        Response::Hello(_) => "hello",
        Response::Error { .. } => "error",
        Response::Ready => "ready",
        Response::Stored { .. } => "stored",
        Response::File { .. } => "file",
        Response::Entries(_) => "entries",
        Response::ListEnd { .. } => "list-end",
        Response::FileFrom { .. } => "file-from",
        Response::ReadyFrom { .. } => "ready-from",
    }
}

/// Length of the digest on the wire; kept next to the code that computes it.
const _: () = assert!(DIGEST_LEN == 16);
