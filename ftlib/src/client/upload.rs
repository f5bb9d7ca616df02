//! Uploads from a [`Client`]: a file or a reader as one `Put` (or, on a v4 connection, an
//! `Upload` carrying the file's time and execute bit), and a resumable upload that
//! continues a partial the server kept of the same file (found by its tag on a v5
//! connection, by its digest before).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use super::exchange::{abort_upload, unexpected, upload_body};
use super::local::{Local, local_attrs, open_local};
use super::{Client, Progress};
use xxhash_rust::xxh3::Xxh3;

use crate::connection::Connection;
use crate::error::{Changed, Error, Result};
use crate::protocol::{
    Attrs, DIGEST_LEN, ErrorKind, How, RESUME_VERSION, Request, Response, TAGGED_VERSION,
    TREE_VERSION,
};
use crate::store::Name;
use crate::transfer::{self, Digest, Received, Span};

impl Client {
    /// Uploads the local file at `path` as `name`.
    ///
    /// # Errors
    /// [`Error::InvalidName`]; [`Error::NotFound`] or [`Error::Io`] for the local file;
    /// [`Error::Remote`] when the server refuses (e.g. kind `AlreadyExists`);
    /// [`Error::SizeMismatch`] when the file changes while sent; connection errors.
    pub fn put(
        &mut self,
        path: &Path,
        name: &str,
        mut progress: impl FnMut(Progress),
    ) -> Result<u64> {
        let name = Name::new(name)?;
        let (file, size) = open_local(&Local::named(path))?;
        let attrs = local_attrs(&file);
        Ok(self
            .put_named(file, size, &name, attrs, &mut progress)?
            .bytes)
    }

    /// Uploads exactly `size` bytes read from `reader` as `name`.
    ///
    /// # Errors
    /// As [`Client::put`].
    pub fn put_reader(
        &mut self,
        reader: impl Read,
        size: u64,
        name: &str,
        mut progress: impl FnMut(Progress),
    ) -> Result<u64> {
        Ok(self
            .put_named(reader, size, &Name::new(name)?, None, &mut progress)?
            .bytes)
    }

    /// [`Client::put_reader`] of a name already checked; the bytes sent and the digest the
    /// server verified.
    pub(super) fn put_named(
        &mut self,
        mut reader: impl Read,
        size: u64,
        name: &Name,
        attrs: Option<Attrs>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Received> {
        self.may_put()?;
        let request = self.upload_request(name, size, attrs, How::Wait);
        let mut each = |done| progress(Progress { done, total: size });
        self.with_conn(|conn, config| {
            conn.send(&request)?;
            match conn.expect("before answering the upload")? {
                Response::Ready => {}
                other => return Err(unexpected(other, "ready")),
            }
            let span = Span::whole(name, size);
            let digest = Digest::Running(Box::default());
            upload_body(conn, config, span, &mut reader, digest, &mut each)
        })
    }

    /// Uploads the local file at `path` as `name`, continuing where an interrupted upload of
    /// the same file stopped: the server continues only a partial of this file (a changed
    /// file starts over, and the whole file's digest is checked at the end). A v5 server
    /// finds the partial by the file's tag; an older one (v2 to v4) by its digest, which
    /// means reading the file once first. Needs a v2 server.
    ///
    /// # Errors
    /// As [`Client::put`], and [`Error::Unsupported`] for a v1 server.
    pub fn put_resumable(
        &mut self,
        path: &Path,
        name: &str,
        mut progress: impl FnMut(Progress),
    ) -> Result<u64> {
        Ok(self
            .put_resumable_named(&Local::named(path), &Name::new(name)?, &mut progress)?
            .bytes)
    }

    /// [`Client::put_resumable`] of a name already checked; the bytes sent and the digest
    /// the server verified.
    pub(super) fn put_resumable_named(
        &mut self,
        local: &Local,
        name: &Name,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Received> {
        self.may_put()?;
        self.require(RESUME_VERSION, "resuming uploads")?;
        let opened = open_local(local)?;
        self.put_resumable_opened(local.path.as_path(), opened, name, progress)
    }

    /// [`Client::put_resumable_named`] of the file at `path`, opened already (with its size).
    /// On a v5 connection the file is not read first: the upload is found by the file's
    /// tag ([`upload_tag`]) and only a continued one reads the bytes the server holds, to
    /// continue the digest; older servers need the whole file's digest first.
    pub(super) fn put_resumable_opened(
        &mut self,
        path: &Path,
        (mut file, size): (File, u64),
        name: &Name,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Received> {
        let attrs = local_attrs(&file);
        let context = || format!("reading {}", path.display());
        if self.version >= TAGGED_VERSION {
            if let Some(tag) = upload_tag(&file) {
                return self.put_tagged(path, (file, size), tag, name, attrs, progress);
            }
        }
        let (digest, hashed) =
            transfer::hash_all(&mut file).map_err(|e| Error::io(context(), e))?;
        if hashed != size {
            return Err(Error::SizeMismatch {
                name: name.to_string(),
                expected: size,
                actual: hashed,
                why: Changed::WhileHashed,
            });
        }
        let request = self.upload_request(name, size, attrs, How::Resumable { digest });
        let mut each = |done| progress(Progress { done, total: size });
        self.with_conn(|conn, config| {
            conn.send(&request)?;
            let offset = ready_from(conn, size)?;
            // The server waits for the body now: a failure here still ends it (`Abort`).
            if let Err(e) = file.seek(SeekFrom::Start(offset)) {
                return abort_upload(conn, Error::io(context(), e));
            }
            let span = Span { name, size, offset };
            upload_body(
                conn,
                config,
                span,
                &mut file,
                Digest::Known(digest),
                &mut each,
            )
        })
    }

    /// The v5 resumable upload of `file` (`size` bytes), known to the server by `tag`: sent
    /// at once, hashed as it goes; when the server holds the first bytes already, those are
    /// read here first, to start the digest of the whole file from them.
    fn put_tagged(
        &mut self,
        path: &Path,
        (mut file, size): (File, u64),
        tag: [u8; DIGEST_LEN],
        name: &Name,
        attrs: Option<Attrs>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Received> {
        let context = || format!("reading {}", path.display());
        let request = self.upload_request(name, size, attrs, How::Tagged { tag });
        let mut each = |done| progress(Progress { done, total: size });
        let continued = std::cell::Cell::new(false);
        let mut attempt = |client: &mut Client, file: &mut File| {
            client.with_conn(|conn, config| {
                conn.send(&request)?;
                let offset = ready_from(conn, size)?;
                continued.set(offset > 0);
                // The server waits for the body now: a failure here still ends it (`Abort`).
                let prefix = match file
                    .seek(SeekFrom::Start(0))
                    .and_then(|_| transfer::hash_prefix(file, offset))
                {
                    Ok(prefix) => prefix,
                    Err(e) => return abort_upload(conn, Error::io(context(), e)),
                };
                let span = Span { name, size, offset };
                upload_body(
                    conn,
                    config,
                    span,
                    file,
                    Digest::Running(Box::new(prefix)),
                    &mut each,
                )
            })
        };
        match attempt(self, &mut file) {
            // The bytes the server held were not this file's first bytes (it changed in
            // place, keeping its tag): the server dropped them; once more from the start.
            Err(e) if continued.get() && e.kind() == ErrorKind::ChecksumMismatch => {
                attempt(self, &mut file)
            }
            other => other,
        }
    }

    /// The request that uploads `name`: `Upload` with `attrs` on a v4 connection, else
    /// the older request `how` stands for (without attributes).
    pub(super) fn upload_request(
        &self,
        name: &Name,
        size: u64,
        attrs: Option<Attrs>,
        how: How,
    ) -> Request {
        let name = name.to_string();
        if self.version < TREE_VERSION {
            match how {
                How::Wait => return Request::Put { name, size },
                How::Resumable { digest } => {
                    return Request::PutResumable { name, size, digest };
                }
                How::Pipelined => return Request::PutPipelined { name, size },
                // Sent only on a v5 connection; it exists only as `Upload`.
                How::Tagged { .. } => {}
            }
        }
        Request::Upload {
            name,
            size,
            attrs,
            how,
        }
    }
}

/// The server's answer to a resumable upload of `size` bytes: where the body starts, which
/// must not be beyond the end.
fn ready_from(conn: &mut Connection, size: u64) -> Result<u64> {
    match conn.expect("before answering the upload")? {
        Response::ReadyFrom { offset } if offset <= size => Ok(offset),
        Response::ReadyFrom { offset } => Err(Error::Protocol(format!(
            "the server resumes at byte {offset} of {size}"
        ))),
        other => Err(unexpected(other, "ready-from")),
    }
}

/// The tag the reference client sends for `file` in a v5 resumable upload
/// (`Upload{how: Tagged}`, docs/PROTOCOL.md section 12.2.1): XXH3-128 of its device, inode,
/// size and modification time (seconds and nanoseconds), each as 8 bytes little-endian,
/// which change whenever its content may have. `None` where they cannot be read (the
/// client then hashes the file first, as for an older server).
pub fn upload_tag(file: &File) -> Option<[u8; DIGEST_LEN]> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let meta = file.metadata().ok()?;
        let mut hasher = Xxh3::new();
        for part in [
            meta.dev(),
            meta.ino(),
            meta.len(),
            meta.mtime() as u64,
            meta.mtime_nsec() as u64,
        ] {
            hasher.update(&part.to_le_bytes());
        }
        Some(hasher.digest128().to_be_bytes())
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        None
    }
}
