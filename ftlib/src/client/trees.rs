//! Directory trees for a [`Session`]: [`Session::put_tree`] walks local trees and uploads
//! them in chunks, [`Session::get_tree`] lists a server directory recursively (spooled to
//! an unnamed temporary file, so memory stays bounded) and downloads it in chunks, and
//! [`Session::list_dir`] lists one server directory. Every file goes through the same
//! pipelined transfers, with the same promises and one report each; a re-run skips files
//! already there with the same bytes.

use std::io::{BufRead, BufReader, BufWriter, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::Client;
use super::local::{local_name, local_source};
use super::observer::Observer;
use super::session::Session;
use super::walk::{Failed, Found, LocalTree};
use crate::error::{Error, Result};
use crate::protocol::{EntryKind, MAX_PIPELINED};
use crate::report::{Op, Report};
use crate::store::{DirStore, Name, Store, TreeDirs};

/// Most files moved per batch of a tree: what is held in memory at once (names and paths,
/// at most [`TREE_CHUNK_BYTES`] of them). Each batch ends with the pipeline drained (every
/// answer read, the last group committed), so batches are large: with 1024 files a tree of
/// small files spent a sixth of its time refilling the pipeline.
const TREE_CHUNK: usize = 16_384;

/// Most bytes of names and paths held for one batch of a tree.
const TREE_CHUNK_BYTES: usize = 8 << 20;

/// `text`'s bytes in hexadecimal: a refused name on one line of the spooled listing.
fn to_hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

/// The text [`to_hex`] wrote (what cannot be read back is replaced, as lossy UTF-8 is).
fn from_hex(hex: &str) -> String {
    let bytes: Vec<u8> = hex
        .as_bytes()
        .chunks(2)
        .filter_map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Files of one chunk: their server names and local paths.
#[derive(Default)]
struct Chunk {
    names: Vec<String>,
    paths: Vec<PathBuf>,
    /// The bytes of their names and paths.
    bytes: usize,
}

impl Session {
    /// Uploads each local directory in `trees` (found as [`Session::put`] finds files) as
    /// `NAME/...` on the server, NAME being its last component, inside the server directory
    /// `to` if given. Files keep their modification time and execute bit; empty directories
    /// are created; symbolic links and special files are reported skipped, never followed.
    /// The trees are walked in bounded memory, twice when the observer
    /// [wants totals](Observer::wants_totals): to count, then to send.
    ///
    /// # Errors
    /// As [`Session::put`].
    pub fn put_tree(
        &mut self,
        trees: &[PathBuf],
        to: Option<&str>,
        dir: &Path,
        resume: bool,
        observer: &mut dyn Observer,
    ) -> Result<bool> {
        // Two trees (or files) that would land on one name would merge there: the later
        // ones are refused, as for `get -r`. (One that cannot be read claims no name.)
        let roots: Vec<_> = trees.iter().map(|tree| tree_root(tree, to, dir)).collect();
        let tops: Vec<String> = roots
            .iter()
            .map(|root| {
                root.as_ref()
                    .map_or_else(|_| String::new(), |(_, n, _)| n.to_string())
            })
            .collect();
        let twins = super::session::later_twins(&tops, |i| roots[i].is_ok());
        let roots: Vec<_> = roots
            .into_iter()
            .zip(twins)
            .map(|(root, twin)| match root {
                Ok((_, name, _)) if twin => Err(Error::AlreadyExists {
                    name: name.to_string(),
                    why: crate::error::Taken::SameCommand,
                }),
                other => other,
            })
            .collect();
        let (mut files, mut bytes) = (0usize, 0u64);
        let count = observer.wants_totals();
        for root in &roots {
            if let (Ok((_, _, Some(size))), true) = (root, count) {
                files += 1;
                bytes = bytes.saturating_add(*size);
            } else if let (Ok((path, name, None)), true) = (root, count) {
                if let Ok(walk) = LocalTree::new(path.clone(), name.to_string()) {
                    for found in walk {
                        // Every item with a report line counts, skipped ones too, so that
                        // the count done never passes the total.
                        match found {
                            Found::File { size, .. } => {
                                files += 1;
                                bytes = bytes.saturating_add(size);
                            }
                            Found::Skipped { .. } | Found::Unreadable { .. } => files += 1,
                            Found::EmptyDir { .. } => {}
                        }
                    }
                }
            }
        }
        observer.totals(files, bytes);
        // Connected first, so that items reported before any transfer name the server.
        self.connected(observer)?;
        let mut all_ok = true;
        self.item_base = 0;
        for (tree, root) in trees.iter().zip(roots) {
            if self.cancelled() {
                return Ok(false);
            }
            let shown = tree.display().to_string();
            // A file among the trees: uploaded as itself, as `put` would (a symbolic link
            // named on the command line is followed).
            if let Ok((path, name, Some(_))) = &root {
                let names = [name.to_string()];
                let source = |_: usize| Ok((path.clone(), name.clone()));
                all_ok &= self.put_items(&names, &source, true, resume, observer)?;
                self.item_base += 1;
                continue;
            }
            let walk = root.and_then(|(path, name, _)| {
                let walk = LocalTree::new(path.clone(), name.to_string()).map_err(|e| {
                    Error::io(format!("reading the directory {}", path.display()), e)
                })?;
                Ok((walk, name))
            });
            let (walk, _) = match walk {
                Ok(walk) => walk,
                Err(e) => {
                    all_ok = false;
                    self.report_skipped(Op::Put, &shown, Err(e), observer);
                    continue;
                }
            };
            // Files small enough to be pipelined, and the others, sent after them: each of
            // those waits for every answer before it (the server commits what it holds
            // before it serves another request), so sent among the small files each would
            // drain the pipeline. (A tree's files go in the order its walk finds them,
            // which promises no order anyway.)
            let mut chunk = Chunk::default();
            let mut later = Chunk::default();
            let mut dirs = Vec::new();
            for found in walk {
                match found {
                    Found::File { path, name, size } => {
                        let to = if size > MAX_PIPELINED {
                            &mut later
                        } else {
                            &mut chunk
                        };
                        to.bytes += name.len() + path.as_os_str().len();
                        to.names.push(name);
                        to.paths.push(path);
                    }
                    Found::EmptyDir { name } => dirs.push(name),
                    Found::Skipped {
                        name,
                        reason,
                        failed,
                    } => {
                        let result = match failed {
                            None => Ok(reason),
                            Some(Failed::Name) => Err(Error::InvalidName {
                                name: name.clone(),
                                reason,
                            }),
                        };
                        all_ok &= failed.is_none();
                        self.report_skipped(Op::Put, &name, result, observer);
                    }
                    Found::Unreadable { name, path, error } => {
                        all_ok = false;
                        let failed = Error::io(format!("reading {}", path.display()), error);
                        self.report_skipped(Op::Put, &name, Err(failed), observer);
                    }
                }
                if chunk.names.len() + later.names.len() == TREE_CHUNK
                    || chunk.bytes + later.bytes >= TREE_CHUNK_BYTES
                {
                    all_ok &= self.put_chunk(std::mem::take(&mut chunk), resume, observer)?;
                    all_ok &= self.put_chunk(std::mem::take(&mut later), resume, observer)?;
                    all_ok &= self.make_dirs(std::mem::take(&mut dirs), observer)?;
                }
                if self.cancelled() {
                    return Ok(false);
                }
            }
            all_ok &= self.put_chunk(chunk, resume, observer)?;
            all_ok &= self.put_chunk(later, resume, observer)?;
            all_ok &= self.make_dirs(dirs, observer)?;
        }
        Ok(all_ok)
    }

    /// Uploads one chunk of a tree.
    fn put_chunk(
        &mut self,
        chunk: Chunk,
        resume: bool,
        observer: &mut dyn Observer,
    ) -> Result<bool> {
        if chunk.names.is_empty() {
            return Ok(true);
        }
        let Chunk { names, paths, .. } = chunk;
        let source = |i: usize| Ok((paths[i].clone(), Name::new(&names[i])?));
        // Found by the walk: a file swapped for a link since is refused, not followed.
        let ok = self.put_items(&names, &source, false, resume, observer);
        self.item_base += names.len();
        ok
    }

    /// Creates the empty directories of a tree on the server, reporting only failures.
    fn make_dirs(&mut self, dirs: Vec<String>, observer: &mut dyn Observer) -> Result<bool> {
        let mut all_ok = true;
        for name in dirs {
            let client = self.connected(observer)?;
            if let Err(e) = client.make_dir(&name) {
                all_ok = false;
                self.report_skipped(Op::Put, &format!("{name}/"), Err(e), observer);
            }
        }
        Ok(all_ok)
    }

    /// Downloads each server directory in `names` into `dir` as `LAST/...`, LAST being its
    /// last component: files with their modification time and execute bit, empty
    /// directories too. The listing is kept in an unnamed temporary file while the files
    /// move, so memory stays bounded whatever the tree's size. A local file with the same
    /// bytes is reported skipped; one with other bytes is kept and its download fails
    /// (unless `overwrite`).
    ///
    /// # Errors
    /// As [`Session::put`].
    pub fn get_tree(
        &mut self,
        names: &[String],
        dir: &DirStore,
        overwrite: bool,
        resume: bool,
        observer: &mut dyn Observer,
    ) -> Result<bool> {
        let _ = dir.cleanup();
        let mut spools = Vec::new();
        let (mut files, mut bytes) = (0usize, 0u64);
        // Two server directories with the same last component would merge into one local
        // one: the later ones are refused, before their listing.
        let tops: Vec<String> = names.iter().map(|n| local_name(n).to_owned()).collect();
        let twins = self.twins_on_server(&tops, names, true, observer)?;
        for ((name, top), twin) in names.iter().zip(&tops).zip(twins) {
            // A name the server would not take is refused here, before its listing: `""`
            // would list the whole served directory.
            let spooled = if twin {
                Err(Error::AlreadyExists {
                    name: top.clone(),
                    why: crate::error::Taken::SameCommand,
                })
            } else {
                Name::new(name).and_then(|_| self.spool_listing(name, observer))
            };
            if let Ok((_, n, b, incomplete)) = &spooled {
                // An incomplete listing is reported as an item of its own.
                files += n + usize::from(incomplete.is_some());
                bytes = bytes.saturating_add(*b);
            }
            spools.push(spooled);
        }
        observer.totals(files, bytes);
        let mut all_ok = true;
        self.item_base = 0;
        for ((name, spooled), top) in names.iter().zip(spools).zip(&tops) {
            let (spool, incomplete) = match spooled {
                Ok((spool, _, _, incomplete)) => (spool, incomplete),
                Err(e) if e.breaks_connection() && !matches!(e, Error::Remote { .. }) => {
                    return Err(e);
                }
                Err(e) => {
                    all_ok = false;
                    self.report_skipped(Op::Get, name, Err(e), observer);
                    continue;
                }
            };
            let mut names = Vec::new();
            let mut locals = Vec::new();
            // The handles of the directories made last, so that the next is made in its
            // parent without walking from the top.
            let mut made_dirs = TreeDirs::default();
            // The bytes of `names` and `locals`.
            let mut held = 0;
            for line in BufReader::new(spool).lines() {
                let line = line.map_err(|e| Error::io("reading the spooled listing", e))?;
                let Some((kind, rel)) = line.split_once('\t') else {
                    continue;
                };
                if kind == "x" {
                    let rel = from_hex(rel);
                    all_ok = false;
                    let refused = Error::InvalidName {
                        name: format!("{name}/{rel}"),
                        reason: "the server listed a name that is not valid here",
                    };
                    self.report_skipped(Op::Get, &format!("{name}/{rel}"), Err(refused), observer);
                    continue;
                }
                let local = format!("{top}/{rel}");
                if kind == "d" {
                    let made = Name::new(&local)
                        .and_then(|local| dir.make_dir_in_tree(&local, &mut made_dirs));
                    if let Err(e) = made {
                        all_ok = false;
                        self.report_skipped(Op::Get, &format!("{name}/{rel}/"), Err(e), observer);
                    }
                    continue;
                }
                held += name.len() + 1 + rel.len() + local.len();
                names.push(format!("{name}/{rel}"));
                locals.push(local);
                if names.len() == TREE_CHUNK || held >= TREE_CHUNK_BYTES {
                    held = 0;
                    all_ok &=
                        self.get_chunk(&mut names, &mut locals, dir, overwrite, resume, observer)?;
                }
                if self.cancelled() {
                    return Ok(false);
                }
            }
            if names.is_empty() && locals.is_empty() {
                // An empty directory (or one of only directories) still arrives.
                if let Err(e) = Name::new(top).and_then(|top| dir.make_dir(&top)) {
                    all_ok = false;
                    self.report_skipped(Op::Get, name, Err(e), observer);
                }
            }
            all_ok &= self.get_chunk(&mut names, &mut locals, dir, overwrite, resume, observer)?;
            // The directories made without syncing, the empty ones in particular, are
            // durable before the tree is reported done.
            if let Err(e) = dir.settle_dirs() {
                all_ok = false;
                self.report_skipped(Op::Get, name, Err(e), observer);
            }
            // What the server could not list (a directory it may not read): the rest of
            // the tree came, this did not.
            if let Some(e) = incomplete {
                all_ok = false;
                self.report_skipped(Op::Get, name, Err(e), observer);
            }
        }
        Ok(all_ok)
    }

    /// Downloads one chunk of a tree, emptying the lists.
    fn get_chunk(
        &mut self,
        names: &mut Vec<String>,
        locals: &mut Vec<String>,
        dir: &DirStore,
        overwrite: bool,
        resume: bool,
        observer: &mut dyn Observer,
    ) -> Result<bool> {
        if names.is_empty() {
            return Ok(true);
        }
        let ok = self.get_items(names, locals, dir, overwrite, resume, observer);
        self.item_base += names.len();
        names.clear();
        locals.clear();
        ok
    }

    /// Lists the server directory `name` recursively into an unnamed temporary file, one
    /// line per entry (`f` or `d`, a tab, the path below `name`; `x` and the escaped name
    /// for a name this client refuses, reported failed); with the number of files and
    /// their bytes.
    fn spool_listing(
        &mut self,
        name: &str,
        observer: &mut dyn Observer,
    ) -> Result<(std::fs::File, usize, u64, Option<Error>)> {
        let spool = tempfile::tempfile().map_err(|e| Error::io("creating a temporary file", e))?;
        let mut out = BufWriter::new(spool);
        let (mut files, mut bytes) = (0usize, 0u64);
        let mut failed_write: Option<std::io::Error> = None;
        let mut entries = 0usize;
        let client = self.connected(observer)?;
        let listed = client.list_dir_each(name, true, |entry| {
            entries += 1;
            if failed_write.is_some() {
                return;
            }
            // Whatever the server sends, only names this client would accept are fetched;
            // another is a failed item of its own (spooled in hexadecimal, so that it fits
            // one line whatever it holds, and is reported as it is, escaped once).
            let full = format!("{name}/{}", entry.name);
            if Name::new(&entry.name)
                .and_then(|_| Name::new(&full))
                .is_err()
            {
                // A report line of its own, counted with the files.
                files += 1;
                if let Err(e) = writeln!(out, "x\t{}", to_hex(&entry.name)) {
                    failed_write = Some(e);
                }
                return;
            }
            let kind = match entry.kind {
                EntryKind::Dir => "d",
                EntryKind::File => {
                    files += 1;
                    bytes = bytes.saturating_add(entry.size);
                    "f"
                }
                _ => return,
            };
            if let Err(e) = writeln!(out, "{kind}\t{}", entry.name) {
                failed_write = Some(e);
            }
        });
        // A listing the server ended with an error after entries (a directory it could
        // not read, listed last): what was listed is fetched, the error reported after.
        let incomplete = match listed {
            Ok(_) => None,
            Err(e @ Error::Remote { .. }) if entries > 0 => Some(e),
            Err(e) => return Err(e),
        };
        if let Some(e) = failed_write {
            return Err(Error::io("writing the spooled listing", e));
        }
        let mut spool = out
            .into_inner()
            .map_err(|e| Error::io("writing the spooled listing", e.into_error()))?;
        spool
            .rewind()
            .map_err(|e| Error::io("reading the spooled listing", e))?;
        Ok((spool, files, bytes, incomplete))
    }

    /// Lists the server directory `dir` (`""`: the top), recursively if asked: each entry
    /// to [`Observer::entry`] as it arrives, then the report (item 0).
    ///
    /// # Errors
    /// As [`Session::put`].
    pub fn list_dir(
        &mut self,
        dir: &str,
        recursive: bool,
        observer: &mut dyn Observer,
    ) -> Result<bool> {
        self.list_dir_as(dir, recursive, false, observer)
    }

    /// [`Session::list_dir`], then the XXH3-128 of each file listed, to
    /// [`Observer::digest`] (the server answers the digests it keeps without reading the
    /// files; [`Client::digests`]). The names of the files are held meanwhile. A digest
    /// that cannot be had fails the listing's report (the first such error), after every
    /// other digest was asked. Needs a v4 server.
    ///
    /// # Errors
    /// As [`Session::put`].
    pub fn list_dir_digests(
        &mut self,
        dir: &str,
        recursive: bool,
        observer: &mut dyn Observer,
    ) -> Result<bool> {
        self.list_dir_as(dir, recursive, true, observer)
    }

    /// [`Session::list_dir`], with the files' digests if `digests`.
    fn list_dir_as(
        &mut self,
        dir: &str,
        recursive: bool,
        digests: bool,
        observer: &mut dyn Observer,
    ) -> Result<bool> {
        let client = self.connected(observer)?;
        let started = Instant::now();
        // The files listed, named from the top, when their digests are asked.
        let mut files = Vec::new();
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        // Entries received, also when the listing or a digest then fails.
        let mut count = 0;
        let result = client.list_dir_each(dir, recursive, |entry| {
            count += 1;
            if digests && entry.kind == EntryKind::File {
                files.push(format!("{prefix}{}", entry.name));
            }
            observer.entry(entry);
        });
        let mut result = result.map(drop);
        if let (true, Ok(())) = (digests, &result) {
            let mut failed = None;
            let asked = client.digests(&files, |i, digest| {
                let name = files[i].get(prefix.len()..).unwrap_or_default();
                observer.digest(name, digest.as_ref().map(|d| *d));
                if let Err(e) = digest {
                    failed.get_or_insert(e);
                }
            });
            if let Some(e) = asked.err().or(failed) {
                result = Err(e);
            }
        }
        let error = result.as_ref().err();
        let shown = (!dir.is_empty()).then_some(dir);
        let report =
            Report::new(client.peer(), Op::List, shown, started, count, error).by(client.user());
        let ok = report.is_success();
        observer.finished(0, report, error);
        Ok(ok)
    }

    /// Reports one item that moved nothing: a failure, or a skip for the reason given.
    pub(super) fn report_skipped(
        &mut self,
        op: Op,
        name: &str,
        result: Result<&str>,
        observer: &mut dyn Observer,
    ) {
        let peer = self.peer_or_unspecified();
        let report = Report::new(
            peer,
            op,
            Some(name),
            Instant::now(),
            0,
            result.as_ref().err(),
        );
        let item = self.item_base;
        self.item_base += 1;
        match result {
            Ok(reason) => observer.finished(item, report.skipped(reason), None),
            Err(e) => observer.finished(item, report, Some(&e)),
        }
    }

    /// The server's address for a report made without a transfer: the connection's, else
    /// the host's when it is an address (a name is not looked up for a report), else the
    /// unspecified address.
    pub(super) fn peer_or_unspecified(&self) -> std::net::SocketAddr {
        self.client.as_ref().map_or_else(
            || {
                let ip = self
                    .host()
                    .parse::<std::net::IpAddr>()
                    .unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
                std::net::SocketAddr::new(ip, self.port)
            },
            Client::peer,
        )
    }
}

/// Where a tree to upload is read from, its name on the server (its last component, inside
/// `to` if given), and its size if it is a regular file rather than a directory (uploaded
/// as a file, as `cp -r` and `scp -r` take files too). A path ending in `.` or `..`
/// (`put -r .`) is read where it is, relative to the working directory, and named after
/// the directory it is.
fn tree_root(tree: &Path, to: Option<&str>, dir: &Path) -> Result<(PathBuf, Name, Option<u64>)> {
    let (path, own) = match local_source(tree, dir) {
        Err(refused) if tree.file_name().is_none() => match std::fs::canonicalize(tree) {
            // `/` has no name: refused as any path without one.
            Ok(real) => match real.file_name() {
                Some(own) => (tree.to_path_buf(), local_source(Path::new(own), dir)?.1),
                None => return Err(refused),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound {
                    name: tree.display().to_string(),
                    why: crate::error::Missing::Local,
                });
            }
            Err(e) => return Err(Error::io(format!("reading {}", tree.display()), e)),
        },
        other => other?,
    };
    let meta = std::fs::metadata(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::NotFound {
                name: path.display().to_string(),
                why: crate::error::Missing::Local,
            }
        } else {
            Error::io(format!("reading {}", path.display()), e)
        }
    })?;
    if !meta.is_dir() && !meta.is_file() {
        return Err(Error::NotFound {
            name: path.display().to_string(),
            why: crate::error::Missing::NotRegular,
        });
    }
    let name = match to {
        Some(to) => Name::new(&format!("{to}/{own}"))?,
        None => own,
    };
    Ok((path, name, meta.is_file().then_some(meta.len())))
}
