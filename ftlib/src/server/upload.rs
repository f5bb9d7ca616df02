//! Serving uploads: [`put`] (the body after `Ready`), [`put_resumable`] (continuing a kept
//! partial of the same content, or on v5 of the same tag) and [`put_pipelined`] (the body
//! read at once, the answer waiting for the group's commit), each checked before any data,
//! each stored file given the attributes the request carried.

use std::io::{self, Write};
use std::time::Instant;

use xxhash_rust::xxh3::Xxh3;

use super::Ctx;
use super::handlers::{Exchange, Failed, Handled};
use super::pipeline::Waiting;
use super::session::{Access, Session, answer_error, gone_mid_body};
use super::takeover::TAKEOVER_WAIT;
use crate::connection::Connection;
use crate::error::{Error, Result, Side};
use crate::pipeline::Outcome;
use crate::protocol::{Attrs, DIGEST_LEN, MAX_PIPELINED, Response};
use crate::report::{Op, Report};
use crate::store::{Name, Resumable};
use crate::text::escape;
use crate::transfer::{self, Hooks, Received, Span};

/// The answer to a verified, durable, published upload of `name`: `Uploaded` naming it
/// for a v4 `Upload` (`named`), `Stored` for the older requests.
pub(super) fn stored(named: bool, name: &str, size: u64) -> Response {
    if named {
        Response::Uploaded {
            name: name.to_owned(),
            size,
        }
    } else {
        Response::Stored { size }
    }
}

pub(super) fn put(
    ex: &mut Exchange<'_>,
    name: &str,
    size: u64,
    attrs: Option<Attrs>,
    named: bool,
) -> Result<u64, Failed> {
    let checked = check_upload(ex.ctx, name, size)?;
    let mut upload = ex.ctx.store.create(&checked, size)?;
    if let Some(attrs) = attrs {
        upload.set_attrs(attrs);
    }
    ex.conn.send(&Response::Ready)?;
    let span = Span::whole(name, size);
    let got = receive_into(ex.conn, span, &mut upload, Xxh3::new(), &mut ex.moved)?;
    upload.set_digest(got.digest);
    upload.commit()?;
    ex.digest = Some(got.digest);
    ex.conn.send(&stored(named, name, got.bytes))?;
    Ok(got.bytes)
}

pub(super) fn put_resumable(
    ex: &mut Exchange<'_>,
    name: &str,
    size: u64,
    resume: Resume,
    attrs: Option<Attrs>,
    named: bool,
) -> Result<u64, Failed> {
    let checked = check_upload(ex.ctx, name, size)?;
    let key = partial_key(name, size, resume);
    // A newer attempt of this upload from the same client takes over from a connection
    // still holding the partial; held past the store's lock (dropped after it).
    let _hold = ex.ctx.resuming.hold(
        &key,
        ex.conn.peer().ip(),
        ex.conn_id,
        &ex.ctx.registry,
        TAKEOVER_WAIT,
    );
    let Resumable {
        mut upload,
        offset,
        mut existing,
    } = ex.ctx.store.create_resumable(&checked, size, &key)?;
    let prefix = transfer::hash_prefix(&mut existing, offset)
        .map_err(|e| Error::io(format!("reading the partial file of {}", escape(name)), e))?;
    drop(existing);
    if let Some(attrs) = attrs {
        upload.set_attrs(attrs);
    }
    // Kept partials are bounded per client address too.
    upload.set_peer(ex.conn.peer().ip());
    if let Err(e) = ex.conn.send(&Response::ReadyFrom { offset }) {
        upload.keep();
        return Err(e.into());
    }
    let span = Span { name, size, offset };
    // A tagged upload declared no digest: the `End` check (the whole file the server holds
    // against the client's digest of its own) is the whole check.
    let declared = match resume {
        Resume::Digest(digest) => Some(digest),
        Resume::Tag(_) => None,
    };
    match receive_into(ex.conn, span, &mut upload, prefix, &mut ex.moved) {
        Ok(got) if declared.is_none_or(|digest| got.digest == digest) => {
            upload.set_digest(got.digest);
            upload.commit()?;
            ex.digest = Some(got.digest);
            ex.conn.send(&stored(named, name, size))?;
            Ok(got.bytes)
        }
        // Verified, but not the file announced: the partial is no prefix of it.
        Ok(_) => Err(Error::ChecksumMismatch {
            name: name.to_owned(),
        }
        .into()),
        Err(e) => {
            // Kept for a retry if it holds any byte (an empty one is removed).
            if e.kind().is_interruption() {
                upload.keep();
            }
            Err(e.into())
        }
    }
}

/// A pipelined upload: its body is read now, its answer waits for the group's commit.
/// When the connection cannot go on, the waiting uploads are answered first, then this one.
pub(super) fn put_pipelined(
    s: &mut Session<'_>,
    name: String,
    size: u64,
    attrs: Option<Attrs>,
    named: bool,
    started: Instant,
) -> Handled {
    let allowed = s.may(Access::Write);
    match receive_pipelined(s.ctx, &mut s.conn, allowed, &name, size, attrs) {
        Ok((outcome, digest, received)) => Handled::Deferred(Waiting {
            name,
            held: if outcome.is_ok() {
                s.ctx.store.held_in_memory(size)
            } else {
                0
            },
            started,
            outcome,
            named,
            digest,
            received,
        }),
        Err(e) => {
            s.waiting.commit(s.ctx, &mut s.conn);
            answer_error(&mut s.conn, &e);
            let report = Report::new(s.conn.peer(), Op::Put, Some(&name), started, 0, Some(&e));
            Handled::Answered {
                report,
                keep_going: false,
            }
        }
    }
}

/// Reads one pipelined upload's body: into the store's upload (memory or a temporary file),
/// or dropped when the upload is refused; with the verified digest of what was received.
/// `Err` only when the connection cannot go on.
fn receive_pipelined(
    ctx: &Ctx,
    conn: &mut Connection,
    allowed: Result<()>,
    name: &str,
    size: u64,
    attrs: Option<Attrs>,
) -> Result<(Outcome, Option<[u8; DIGEST_LEN]>, u64)> {
    if size > MAX_PIPELINED {
        return Err(Error::Protocol(format!(
            "a pipelined upload of {size} bytes (at most {MAX_PIPELINED})"
        )));
    }
    // Its bytes are reported once it is committed.
    let mut moved = 0;
    let mut whole = |conn: &mut Connection, writer: &mut dyn Write| {
        receive_into(
            conn,
            Span::whole(name, size),
            writer,
            Xxh3::new(),
            &mut moved,
        )
    };
    let accepted = allowed
        .and_then(|()| check_upload(ctx, name, size))
        .and_then(|name| ctx.store.create(&name, size));
    match accepted {
        Ok(mut upload) => match whole(conn, &mut upload) {
            Ok(got) => {
                if let Some(attrs) = attrs {
                    upload.set_attrs(attrs);
                }
                upload.set_digest(got.digest);
                // Waiting uploads must not pile up open descriptors.
                upload.release();
                Ok((Ok((upload, got.bytes)), Some(got.digest), got.bytes))
            }
            Err(e) if e.breaks_connection() => Err(e),
            Err(e) => Ok((Err(e), None, moved)),
        },
        // Refused before its body was read: read it anyway, to stay in step (reported as
        // no bytes, as a refusal before any data is).
        Err(refused) => match whole(conn, &mut io::sink()) {
            Err(e) if e.breaks_connection() => Err(e),
            _ => Ok((Err(refused), None, 0)),
        },
    }
}

/// Receives an upload's body (`span`, `prefix` hashing the bytes before its offset) into
/// `writer`, counting the bytes it moved in `moved`.
fn receive_into(
    conn: &mut Connection,
    span: Span<'_>,
    writer: &mut dyn Write,
    prefix: Xxh3,
    moved: &mut u64,
) -> Result<Received> {
    let mut progress = |n: u64| *moved = n - span.offset;
    let mut hooks = Hooks {
        progress: Some(&mut progress),
        cancel: None,
    };
    transfer::recv_body(conn, Side::Client, span, writer, prefix, &mut hooks)
        .map_err(|e| gone_mid_body(e, "upload"))
}

/// Checks what every upload must pass before its body (the name first); the name checked.
fn check_upload(ctx: &Ctx, name: &str, size: u64) -> Result<Name> {
    let name = Name::new(name)?;
    if ctx.config.read_only {
        return Err(Error::ReadOnly);
    }
    match ctx.config.max_file_size {
        Some(limit) if size > limit => Err(Error::TooLarge {
            name: name.to_string(),
            size,
            limit,
        }),
        _ => Ok(name),
    }
}

/// What a resumable upload is known by: the whole file's digest, declared before the body
/// (v2 `PutResumable`, v4 `Upload{how: Resumable}`), or the tag of the client's file
/// (v5 `Upload{how: Tagged}`), whose body's `End` alone is checked.
#[derive(Debug, Clone, Copy)]
pub(super) enum Resume {
    Digest([u8; DIGEST_LEN]),
    Tag([u8; DIGEST_LEN]),
}

/// The key of a resumable upload: one partial per name, size and content (or tag). What
/// follows the name is always 25 bytes (kind, size, digest or tag), and the kind byte (0
/// for a digest, 1 for a tag) differs, so the two kinds of key never meet.
fn partial_key(name: &str, size: u64, resume: Resume) -> String {
    let (kind, bytes) = match resume {
        Resume::Digest(digest) => (0u8, digest),
        Resume::Tag(tag) => (1u8, tag),
    };
    let mut hasher = Xxh3::new();
    hasher.update(name.as_bytes());
    hasher.update(&[kind]);
    hasher.update(&size.to_le_bytes());
    hasher.update(&bytes);
    format!("{:032x}", hasher.digest128())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The two keys of docs/PROTOCOL.md: section 12.2's example (`a.txt`, 5 bytes, the
    /// digest of `hello`) and section 12.2.1's (the same name and size, the tag 00 01 … 0f).
    #[test]
    fn partial_keys_match_the_spec() {
        let hello = xxhash_rust::xxh3::xxh3_128(b"hello").to_be_bytes();
        assert_eq!(
            partial_key("a.txt", 5, Resume::Digest(hello)),
            "a4c22fabaea5e410d6e8a8f5de421c1d"
        );
        let tag: [u8; DIGEST_LEN] = std::array::from_fn(|i| i as u8);
        assert_eq!(
            partial_key("a.txt", 5, Resume::Tag(tag)),
            "92154f275606f622a4fce858cea792d1"
        );
    }
}
