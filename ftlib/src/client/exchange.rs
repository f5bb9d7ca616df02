//! The exchanges a single request and a batch share: sending an upload's body and reading
//! the server's verdict, asking for a download and receiving its body into a writer or a
//! [`DirStore`] upload. Each runs inside [`Client::with_conn`], so an error that breaks the
//! connection releases it.

use std::io::{Read, Write};

use xxhash_rust::xxh3::Xxh3;

use super::{Client, ClientConfig, Progress};
use crate::connection::Connection;
use crate::error::{Error, Result, Side};
use crate::protocol::{Request, Response};
use crate::store::{DirStore, DirUpload, Name};
use crate::text::escape;
use crate::transfer::{self, Digest, Hooks, Received, Span};

/// Which way a download goes: into a writer, or into a directory (whose free space is
/// checked once the size is known).
pub(super) enum Sink<'a> {
    Writer(&'a mut dyn Write),
    Dir(&'a DirStore, &'a mut DirUpload, Option<Keep<'a>>),
}

/// A download into a directory that goes into the hidden partial `key` instead of a
/// temporary file when the file has at least `from` bytes, so that it can be kept if cut
/// ([`ClientConfig::resume_from`]).
#[derive(Debug, Clone, Copy)]
pub(super) struct Keep<'a> {
    pub(super) key: &'a str,
    pub(super) from: u64,
}

impl Client {
    /// Asks for `name` (from `resume.0` on, if the prefix matches) and receives it into `sink`.
    pub(super) fn download(
        &mut self,
        name: &Name,
        resume: Option<(u64, Xxh3)>,
        sink: Sink<'_>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Received> {
        self.request_download(name, resume.as_ref())?;
        self.receive_download(name, resume, sink, progress)
    }

    /// Sends the request for `name`: from `resume.0` on, if `resume` is given.
    pub(super) fn request_download(
        &mut self,
        name: &Name,
        resume: Option<&(u64, Xxh3)>,
    ) -> Result<()> {
        let request = match resume {
            None => Request::Get {
                name: name.to_string(),
            },
            Some((offset, prefix)) => Request::GetFrom {
                name: name.to_string(),
                offset: *offset,
                prefix: prefix.digest128().to_be_bytes(),
            },
        };
        self.with_conn(|conn, _| conn.send(&request))
    }

    /// Receives the answer to a download request sent earlier.
    pub(super) fn receive_download(
        &mut self,
        name: &Name,
        resume: Option<(u64, Xxh3)>,
        sink: Sink<'_>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Received> {
        // Bytes a partial already holds; if the server refuses them, they are dropped.
        let had = resume.as_ref().map_or(0, |r| r.0);
        self.with_conn(|conn, config| {
            // `File` answers a `Get`, `FileFrom` a `GetFrom`, `Opened` either (v4).
            let (size, offset, attrs, from) = match conn.expect("before answering the download")? {
                Response::File { size, .. } => (size, 0, None, false),
                Response::FileFrom { size, offset, .. } => (size, offset, None, true),
                Response::Opened {
                    name: answered,
                    size,
                    offset,
                    attrs,
                } => {
                    if answered != name.as_str() {
                        return Err(Error::Protocol(format!(
                            "asked for {}, the server answered with {}",
                            escape(name),
                            escape(&answered)
                        )));
                    }
                    (size, offset, Some(attrs), resume.is_some())
                }
                other => return Err(unexpected(other, "file")),
            };
            let prefix = match resume {
                None if !from && offset == 0 => Xxh3::new(),
                None => {
                    return Err(Error::Protocol(format!(
                        "the server starts a download at byte {offset}"
                    )));
                }
                Some(_) if !from => {
                    return Err(Error::Protocol(
                        "expected file-from, the server sent file".into(),
                    ));
                }
                Some(_) if offset > size => {
                    return Err(Error::Protocol(format!(
                        "the server resumes at byte {offset} of a {size}-byte file"
                    )));
                }
                Some((have, prefix)) if offset == have => prefix,
                Some(_) if offset == 0 => Xxh3::new(),
                Some((have, _)) => {
                    return Err(Error::Protocol(format!(
                        "the server resumes at byte {offset}, we have {have}"
                    )));
                }
            };
            let writer: &mut dyn Write = match sink {
                Sink::Writer(writer) => writer,
                Sink::Dir(dir, upload, keep) => {
                    if offset < had {
                        upload.restart()?;
                    }
                    if let Some(keep) = keep.filter(|k| had == 0 && size >= k.from) {
                        dir.write_to_partial(upload, keep.key);
                    }
                    if let Some(attrs) = attrs {
                        upload.set_attrs(attrs);
                    }
                    // The body is already on its way: refusing now means giving up the connection.
                    dir.check_space(name, size - offset)
                        .map_err(|e| Error::Abandoned(Box::new(e)))?;
                    upload
                }
            };
            progress(Progress {
                done: offset,
                total: size,
            });
            let mut each = |done| progress(Progress { done, total: size });
            let mut hooks = Hooks {
                progress: Some(&mut each),
                cancel: config.cancel.as_deref(),
            };
            let span = Span { name, size, offset };
            transfer::recv_body(conn, Side::Server, span, writer, prefix, &mut hooks)
        })
    }
}

/// Sends an upload's body (`span`) and reads the server's verdict: the bytes sent and the
/// digest the server verified.
pub(super) fn upload_body(
    conn: &mut Connection,
    config: &ClientConfig,
    span: Span<'_>,
    reader: &mut dyn Read,
    digest: Digest,
    progress: &mut dyn FnMut(u64),
) -> Result<Received> {
    let Span { size, offset, .. } = span;
    progress(offset);
    let mut hooks = Hooks {
        progress: Some(progress),
        cancel: config.cancel.as_deref(),
    };
    let sent = transfer::send_body(conn, span, reader, digest, config.chunk_size, &mut hooks);
    let digest = match sent {
        Ok(sent) => sent.digest,
        Err(e) if !e.breaks_connection() => {
            // We aborted the body; the server confirms with an error response.
            match conn.expect("after an aborted upload")? {
                Response::Error { .. } => {}
                other => return Err(unexpected(other, "error")),
            }
            return Err(e);
        }
        // The server stopped reading: it may have said why before it closed.
        Err(e @ Error::Network { .. }) => {
            return match conn.recv::<Response>() {
                Ok(Some(Response::Error { kind, message })) => Err(Error::Abandoned(Box::new(
                    Side::Server.remote(kind, message),
                ))),
                _ => Err(e),
            };
        }
        Err(e) => return Err(e),
    };
    let name = span.name;
    let response = conn.expect("before confirming the upload")?;
    verdict(response, name, size).map(|size| Received {
        bytes: size - offset,
        digest,
    })
}

/// Ends an upload body before its first chunk with `Abort` carrying `error`, reads the
/// server's confirming `Error` (so the connection stays in step), and returns `error`.
pub(super) fn abort_upload<T>(conn: &mut Connection, error: Error) -> Result<T> {
    transfer::send_abort(conn, &error)?;
    match conn.expect("after an aborted upload")? {
        Response::Error { .. } => Err(error),
        other => Err(unexpected(other, "error")),
    }
}

/// The server's verdict on the upload of `name`, `size` bytes: `Stored` (before v4), or
/// `Uploaded` naming exactly this upload.
pub(super) fn verdict(response: Response, name: &str, size: u64) -> Result<u64> {
    let stored = match response {
        Response::Stored { size } => size,
        Response::Uploaded {
            name: answered,
            size,
        } if answered == name => size,
        Response::Uploaded { name: answered, .. } => {
            return Err(Error::Protocol(format!(
                "uploaded {}, the server answered for {}",
                escape(name),
                escape(&answered)
            )));
        }
        other => return Err(unexpected(other, "stored")),
    };
    if stored != size {
        return Err(Error::Protocol(format!(
            "the server stored {stored} bytes of {size}"
        )));
    }
    Ok(size)
}

/// The error for a response other than `expected`: the server's own error if it sent one.
pub(super) fn unexpected(response: Response, expected: &str) -> Error {
    match response {
        Response::Error { kind, message } => Side::Server.remote(kind, message),
        other => Error::Protocol(format!(
            "expected {expected}, the server sent {}",
            other.name()
        )),
    }
}
