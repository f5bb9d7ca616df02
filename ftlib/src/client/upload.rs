//! Uploads from a [`Client`]: a file or a reader as one `Put` (or, on a v4 connection, an
//! `Upload` carrying the file's time and execute bit), and a resumable upload that
//! continues a partial the server kept of the same content.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use super::exchange::{unexpected, upload_body};
use super::local::{Local, local_attrs, open_local};
use super::{Client, Progress};
use crate::error::{Changed, Error, Result};
use crate::protocol::{Attrs, How, RESUME_VERSION, Request, Response, TREE_VERSION};
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
    /// the same file stopped: the file is hashed first, and the server continues only a
    /// partial of exactly this content (a changed file starts over). Needs a v2 server.
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
    pub(super) fn put_resumable_opened(
        &mut self,
        path: &Path,
        (mut file, size): (File, u64),
        name: &Name,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Received> {
        let attrs = local_attrs(&file);
        let context = || format!("reading {}", path.display());
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
            let offset = match conn.expect("before answering the upload")? {
                Response::ReadyFrom { offset } if offset <= size => offset,
                Response::ReadyFrom { offset } => {
                    return Err(Error::Protocol(format!(
                        "the server resumes at byte {offset} of {size}"
                    )));
                }
                other => return Err(unexpected(other, "ready-from")),
            };
            file.seek(SeekFrom::Start(offset))
                .map_err(|e| Error::io(context(), e))?;
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
        if self.version >= TREE_VERSION {
            return Request::Upload {
                name,
                size,
                attrs,
                how,
            };
        }
        match how {
            How::Wait => Request::Put { name, size },
            How::Resumable { digest } => Request::PutResumable { name, size, digest },
            How::Pipelined => Request::PutPipelined { name, size },
        }
    }
}
