//! The client's requests of version 4 that read or shape the server's tree:
//! [`Client::stat`], [`Client::list_dir_each`], [`Client::make_dir`], and the comparison
//! that lets a re-run skip a file already there with the same bytes.

use std::path::Path;

use super::Client;
use super::exchange::unexpected;
use crate::error::{Error, Result};
use crate::protocol::{DIGEST_LEN, Entry, EntryKind, Request, Response, TREE_VERSION};
use crate::store::Name;
use crate::transfer;

impl Client {
    /// What `name` is on the server, and with `digest` the XXH3-128 of its bytes (a file's;
    /// the server reads it whole). Needs a v4 server.
    ///
    /// # Errors
    /// [`Error::InvalidName`]; [`Error::Remote`] (kind `not-found`); [`Error::Unsupported`]
    /// before v4; connection errors.
    pub fn stat(&mut self, name: &str, digest: bool) -> Result<(Entry, Option<[u8; DIGEST_LEN]>)> {
        let name = Name::new(name)?;
        self.require(TREE_VERSION, "describing files")?;
        self.with_conn(|conn, _| {
            conn.send(&Request::Stat {
                name: name.to_string(),
                digest,
            })?;
            match conn.expect("before describing a file")? {
                Response::Described { entry, digest } => Ok((entry, digest)),
                other => Err(unexpected(other, "described")),
            }
        })
    }

    /// Lists directory `dir` on the server (`""`: the top; with `recursive`, everything
    /// beneath it, names relative to `dir`), each entry to `each` as it arrives, in
    /// constant memory; returns the number of entries. The top, not recursive, is a plain
    /// `List` that every server version answers (without execute bits); anything else
    /// needs v4.
    ///
    /// # Errors
    /// As [`Client::list`]; [`Error::Unsupported`] before v4.
    pub fn list_dir_each(
        &mut self,
        dir: &str,
        recursive: bool,
        mut each: impl FnMut(Entry),
    ) -> Result<u64> {
        // The top alone is the listing every version has.
        if dir.is_empty() && !recursive {
            return self.list_each(each);
        }
        if !dir.is_empty() {
            Name::new(dir)?;
        }
        self.require(TREE_VERSION, "listing directories")?;
        self.with_conn(|conn, config| {
            conn.send(&Request::ListDir {
                dir: dir.to_owned(),
                recursive,
            })?;
            transfer::recv_listing(conn, config.max_list_entries, &mut each)
        })
    }

    /// Creates directory `name` on the server, with any missing parent; `Ok(false)` when
    /// it existed. Needs a v4 server.
    ///
    /// # Errors
    /// [`Error::InvalidName`]; [`Error::Remote`] (kind `already-exists` when a file holds
    /// the name); [`Error::Unsupported`] before v4; connection errors.
    pub fn make_dir(&mut self, name: &str) -> Result<bool> {
        let name = Name::new(name)?;
        self.may_put()?;
        self.require(TREE_VERSION, "creating directories")?;
        self.with_conn(|conn, _| {
            conn.send(&Request::MakeDir {
                name: name.to_string(),
            })?;
            match conn.expect("before answering a new directory")? {
                Response::Made { created } => Ok(created),
                other => Err(unexpected(other, "made")),
            }
        })
    }

    /// Whether the server's `name` is a file with exactly the bytes of the local file at
    /// `path` (same size, then same XXH3-128): a re-run may skip it. `Ok(false)` from a
    /// server before v4, which cannot tell.
    ///
    /// # Errors
    /// Reading the local file; [`Error::Remote`]; connection errors.
    pub fn same_as_local(&mut self, name: &str, path: &Path) -> Result<bool> {
        if self.version < TREE_VERSION {
            return Ok(false);
        }
        let local_size = std::fs::symlink_metadata(path)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        if !local_size.is_file() {
            return Ok(false);
        }
        let (entry, _) = self.stat(name, false)?;
        if entry.kind != EntryKind::File || entry.size != local_size.len() {
            return Ok(false);
        }
        let (_, digest) = self.stat(name, true)?;
        let mut file = std::fs::File::open(path)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        let (local, read) = transfer::hash_all(&mut file)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        Ok(read == entry.size && digest == Some(local))
    }
}
