//! The client's requests of version 4 that read or shape the server's tree:
//! [`Client::stat`], [`Client::digests`] (many `Stat`s pipelined), [`Client::list_dir_each`],
//! [`Client::make_dir`], and the comparison that lets a re-run skip a file already there
//! with the same bytes.

use std::collections::VecDeque;
use std::path::Path;

use super::Client;
use super::exchange::unexpected;
use crate::error::{Error, Missing, Result, Side};
use crate::protocol::{DIGEST_LEN, Entry, EntryKind, Request, Response, TREE_VERSION};
use crate::store::Name;
use crate::text::escape;
use crate::transfer;

/// Most `Stat` requests [`Client::digests`] has in flight at once.
const DIGESTS_AHEAD: usize = 64;

/// Most name bytes of the requests [`Client::digests`] has in flight: with the count, it
/// keeps what waits in the two directions of the connection well below what socket buffers
/// hold, so that neither side blocks writing while the other does too.
const DIGEST_BYTES_AHEAD: usize = 32 * 1024;

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

    /// The XXH3-128 of each server file `names[i]`, to `each(i, digest)` in order, asked as
    /// `Stat{digest: true}` with up to 64 requests in flight (a server that
    /// keeps digests answers each without reading the file). A name that is not a file
    /// there, or that the server refuses, is an `Err` for that name only. Needs a v4 server.
    ///
    /// # Errors
    /// [`Error::Unsupported`] before v4; connection errors (the names not yet answered get
    /// no call).
    pub fn digests(
        &mut self,
        names: &[String],
        mut each: impl FnMut(usize, Result<[u8; DIGEST_LEN]>),
    ) -> Result<()> {
        self.require(TREE_VERSION, "asking for digests")?;
        // Asked and not yet answered, oldest first: the index and its checked name, or why
        // it could not be asked.
        let mut asked: VecDeque<(usize, Result<Name>)> = VecDeque::new();
        let mut bytes_ahead = 0;
        let mut next = 0;
        loop {
            while next < names.len()
                && (asked.is_empty()
                    || (asked.len() < DIGESTS_AHEAD
                        && bytes_ahead + names[next].len() <= DIGEST_BYTES_AHEAD))
            {
                let name = Name::new(&names[next]);
                if let Ok(name) = &name {
                    let request = Request::Stat {
                        name: name.to_string(),
                        digest: true,
                    };
                    self.with_conn(|conn, _| conn.send(&request))?;
                    bytes_ahead += name.len();
                }
                asked.push_back((next, name));
                next += 1;
            }
            let Some((i, name)) = asked.pop_front() else {
                return Ok(());
            };
            let name = match name {
                Ok(name) => name,
                Err(e) => {
                    each(i, Err(e));
                    continue;
                }
            };
            bytes_ahead -= name.len();
            let answer =
                self.with_conn(|conn, _| match conn.expect("before describing a file")? {
                    Response::Described { entry, .. } if entry.name != name.as_str() => {
                        Err(Error::Protocol(format!(
                            "asked for the digest of {}, the server described {}",
                            escape(&name),
                            escape(&entry.name)
                        )))
                    }
                    Response::Described {
                        digest: Some(digest),
                        ..
                    } => Ok(Ok(digest)),
                    Response::Described { .. } => Ok(Err(Error::NotFound {
                        name: name.to_string(),
                        why: Missing::NotRegular,
                    })),
                    // Refused for this name only: the connection goes on.
                    Response::Error { kind, message } => {
                        Ok(Err(Side::Server.remote(kind, message)))
                    }
                    other => Err(unexpected(other, "described")),
                })?;
            each(i, answer);
        }
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
