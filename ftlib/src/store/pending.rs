//! [`DirUpload`], a file being written into a [`DirStore`](super::DirStore): where its
//! bytes are while it arrives and waits (memory, a named or unnamed hidden file, closed, or
//! failed for good), and how it is made durable and published without replacing.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use super::PendingFile;
use super::dir::walk;
use super::group::WrittenAhead;
use super::kept;
use super::name::Name;
use super::temps::{PartialLock, Partials, Temps, Watch};
use crate::error::{Error, Result, Taken};
use crate::protocol::{Attrs, DIGEST_LEN};
use crate::sys;
use crate::sys::at::{DirFd, set_attrs};
use crate::text::escape;

/// A [`DirStore`](super::DirStore) upload of at most this many bytes is held in memory until
/// it is committed (a larger one goes to a temporary file as it arrives). A group of small
/// files can then be created on disk by several threads at once
/// ([`Store::commit_group`](super::Store::commit_group)).
pub const BUFFERED_MAX: usize = 256 * 1024;

/// Where an upload's bytes are.
#[derive(Debug)]
enum Data {
    /// Held in memory (a small upload) until [`DirUpload::sync`] writes them to disk.
    Memory(Vec<u8>),
    /// In the named temporary (or partial) file at `tmp`, open.
    Named(File),
    /// In the file at `tmp`, closed while waiting ([`DirUpload::release`]); reopened to
    /// finish (and sync, for a partial).
    Closed,
    /// In an unnamed file (`O_TMPFILE`, open for reading too), published by linking it; if
    /// the link fails for a reason other than the name being taken, its bytes are read back
    /// and published through a named file. (Not held in memory meanwhile: a group written
    /// out ahead of its commit holds no bytes while it waits.)
    Unnamed(File),
    /// Moving the bytes to disk failed part way: they can be neither synced nor published.
    Failed,
}

/// An upload into a [`DirStore`](super::DirStore): never visible under its name until
/// committed, and discarded when dropped. A small upload is held in memory (at most
/// [`BUFFERED_MAX`] bytes) and written at commit, into an unnamed file where the system has
/// them; a larger one goes to a hidden temporary file as it arrives; a resumable one to its
/// hidden partial file.
#[derive(Debug)]
pub struct DirUpload {
    data: Data,
    /// The named temporary or partial file, if one exists; empty otherwise.
    tmp: PathBuf,
    /// The directory it is published in, under the last component of `name`; `None`
    /// while it does not exist yet (made when the file is written out), and let go while
    /// the upload waits for a group commit ([`DirUpload::release`]); opened again, from
    /// the root, to publish.
    dir: Option<Arc<DirFd>>,
    /// The time and execute bit the file gets before it is synced.
    attrs: Option<Attrs>,
    /// The verified digest of its bytes, kept with the file when it is synced
    /// ([`super::kept`]).
    digest: Option<[u8; DIGEST_LEN]>,
    temps: Arc<Temps>,
    /// The store's kept partials, whose ones for `name` go once it is published (not for
    /// a partial upload, whose lock does that, nor for one that may replace).
    partials: Option<Arc<Partials>>,
    name: Name,
    replace: bool,
    /// Set for a partial of a resumable transfer.
    lock: Option<PartialLock>,
    /// Set when it was written out ahead of its group's commit
    /// ([`super::group::write_ahead`]).
    pub(super) ahead: Option<WrittenAhead>,
    /// For a temporary file this store made (not a partial, which may hold bytes an
    /// earlier process wrote): taken before its first byte was written, so that a sync of
    /// the store's file system reports every write error of it ([`Temps::sync_after`]),
    /// and a group commit need not fsync it on its own.
    written_since: Option<Watch>,
    /// Set when an earlier upload of its group may publish a file where its directory (or
    /// one of its parents) goes: the directory is then not made before this upload's turn
    /// to publish, so that the earlier file wins that name, as in request order.
    dir_in_turn: bool,
}

impl DirUpload {
    /// The upload of `name`, held in memory for now, with room reserved for `expected`
    /// bytes (at most [`BUFFERED_MAX`]).
    pub(super) fn in_memory(
        temps: &Arc<Temps>,
        partials: &Arc<Partials>,
        dir: Option<Arc<DirFd>>,
        name: &Name,
        replace: bool,
        expected: usize,
    ) -> DirUpload {
        DirUpload {
            // As for a partial upload: once the name is published, partials kept for it
            // can never be finished.
            partials: (!replace).then(|| Arc::clone(partials)),
            data: Data::Memory(Vec::with_capacity(expected.min(BUFFERED_MAX))),
            tmp: PathBuf::new(),
            dir,
            attrs: None,
            digest: None,
            temps: Arc::clone(temps),
            name: name.clone(),
            replace,
            lock: None,
            ahead: None,
            written_since: None,
            dir_in_turn: false,
        }
    }

    /// The upload of `name` into the partial `file` that `lock` holds, positioned where
    /// the next byte goes.
    pub(super) fn partial(
        temps: &Arc<Temps>,
        dir: Option<Arc<DirFd>>,
        name: &Name,
        replace: bool,
        mut lock: PartialLock,
        file: File,
    ) -> DirUpload {
        // A name that is never replaced (every upload to a server, a download without
        // --overwrite) makes the other partials for it useless once it is published.
        if !replace {
            lock.set_name(name);
        }
        DirUpload {
            data: Data::Named(file),
            tmp: lock.path().to_owned(),
            dir,
            attrs: None,
            digest: None,
            temps: Arc::clone(temps),
            partials: None,
            name: name.clone(),
            replace,
            lock: Some(lock),
            ahead: None,
            written_since: None,
            dir_in_turn: false,
        }
    }

    /// Whether its bytes are held in memory.
    pub(super) fn is_in_memory(&self) -> bool {
        matches!(self.data, Data::Memory(_))
    }

    /// How many bytes it holds in memory.
    pub(super) fn held_in_memory(&self) -> u64 {
        match &self.data {
            Data::Memory(held) => held.len() as u64,
            _ => 0,
        }
    }

    /// Whether it failed for good (an earlier write of it failed part way).
    pub(super) fn is_failed(&self) -> bool {
        matches!(self.data, Data::Failed)
    }

    /// Whether [`DirUpload::write_out`] would write it out without an fsync of its own:
    /// its bytes are in memory, or in a temporary file this store made.
    pub(super) fn writes_out_unsynced(&self) -> bool {
        match self.data {
            Data::Memory(_) => true,
            Data::Named(_) | Data::Closed => self.written_since.is_some(),
            Data::Unnamed(..) | Data::Failed => false,
        }
    }

    /// The first sync that may report an error of what was written of it so far, if it
    /// was written before its group's commit (received into a temporary file, or written
    /// out ahead).
    pub(super) fn watched_since(&self) -> Option<Watch> {
        let ahead = self.ahead.as_ref().map(WrittenAhead::watch);
        ahead.into_iter().chain(self.written_since).min()
    }

    /// The name it is published under.
    pub(super) fn name(&self) -> &Name {
        &self.name
    }

    /// Whether publishing it may replace a file of that name.
    pub(super) fn replaces(&self) -> bool {
        self.replace
    }

    /// Gives it the handle of its directory from `opened` (directory name → handle), or
    /// opens that directory (creating it if needed, as writing it out would) and adds it
    /// there: a group's files of one directory then share one walk from the root instead of
    /// one each. An upload that replaces (publishing decides its directory late) or that
    /// has its handle already is left alone, as is one whose directory cannot be opened
    /// (writing it out says why). True when it has its handle, or needs none yet.
    pub(super) fn share_dir(&mut self, opened: &mut HashMap<String, Arc<DirFd>>) -> bool {
        self.reach_dir(opened, true)
    }

    /// Gives the upload its directory's handle if that directory exists (from `opened`,
    /// shared as in [`DirUpload::share_dir`], but never creating it); true when it has it,
    /// or needs none before it is published (a replacing upload is written to a named file
    /// in the root).
    pub(super) fn find_existing_dir(&mut self, opened: &mut HashMap<String, Arc<DirFd>>) -> bool {
        self.reach_dir(opened, false)
    }

    /// Makes no directory for it before its turn to publish: an earlier upload of its
    /// group may publish a file where that directory goes.
    pub(super) fn make_dir_in_turn(&mut self) {
        self.dir_in_turn = true;
    }

    /// Whether its directory is made only in its turn ([`DirUpload::make_dir_in_turn`]).
    pub(super) fn makes_dir_in_turn(&self) -> bool {
        self.dir_in_turn
    }

    /// [`DirUpload::share_dir`] (`create`) and [`DirUpload::find_existing_dir`].
    fn reach_dir(&mut self, opened: &mut HashMap<String, Arc<DirFd>>, create: bool) -> bool {
        if self.dir.is_some() || self.replace {
            return true;
        }
        let create = create && !self.dir_in_turn;
        let parent = self.name.parent();
        if let Some(dir) = opened.get(parent.unwrap_or_default()) {
            self.dir = Some(Arc::clone(dir));
        } else if let Ok(dir) = walk(&self.temps, parent, create) {
            opened.insert(parent.unwrap_or_default().to_owned(), Arc::clone(&dir));
            self.dir = Some(dir);
        }
        self.dir.is_some()
    }

    /// The directory it is published in, opened again (and created if it went) when it
    /// was let go.
    fn target_dir(&mut self) -> Result<Arc<DirFd>> {
        if let Some(dir) = &self.dir {
            return Ok(Arc::clone(dir));
        }
        let dir = walk(&self.temps, self.name.parent(), true)?;
        self.dir = Some(Arc::clone(&dir));
        Ok(dir)
    }

    /// Gives the file a modification time and execute bit, set before it is synced.
    pub fn set_attrs(&mut self, attrs: Attrs) {
        self.attrs = Some(attrs);
    }

    /// Records the verified digest of the bytes written, kept with the file when it is
    /// synced (see [`PendingFile::set_digest`]) if it is not held in memory: a file of at
    /// most [`BUFFERED_MAX`] bytes is read when its digest is asked ([`kept::KEPT_FROM`]).
    pub fn set_digest(&mut self, digest: [u8; DIGEST_LEN]) {
        if !matches!(self.data, Data::Memory(_)) {
            self.digest = Some(digest);
        }
    }

    /// What the file gets once its bytes are final: attributes, then the kept digest.
    fn last(&self) -> Last {
        (self.attrs, self.digest)
    }

    /// Whether it was made by the store whose temporary files `temps` makes, so publishing
    /// it changes that store's directory.
    pub(super) fn made_by(&self, temps: &Arc<Temps>) -> bool {
        Arc::ptr_eq(&self.temps, temps)
    }

    /// Syncs and publishes the file, then syncs the directory; see [`PendingFile::commit`].
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] when the name was taken meanwhile; [`Error::Io`].
    pub fn commit(mut self) -> Result<()> {
        self.sync()?;
        let name = escape(&self.name);
        let temps = Arc::clone(&self.temps);
        let dir = self.publish()?;
        let syncing = |e| Error::io(format!("syncing the directory of {name}"), e);
        dir.sync().map_err(syncing)?;
        temps.settle_dirs().map_err(syncing)
    }

    /// Makes the written data durable: bytes held in memory are written to a new file
    /// first.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub(super) fn sync(&mut self) -> Result<()> {
        // Bytes still in memory are written to disk here, so a full disk shows up here.
        let doing = match self.data {
            Data::Memory(_) => "writing",
            _ => "syncing",
        };
        let attrs = self.last();
        let synced = match &mut self.data {
            Data::Memory(_) => self.materialize(true),
            Data::Named(file) | Data::Unnamed(file) => finish(file, attrs, true),
            // Released while waiting: reopen the same (hidden) file to sync it.
            Data::Closed => {
                sys::open_write_existing(&self.tmp).and_then(|file| finish(&file, attrs, true))
            }
            Data::Failed => Err(failed()),
        };
        synced.map_err(|e| Error::io(format!("{doing} {}", escape(&self.name)), e))
    }

    /// Writes bytes held in memory to a new file (not synced: a group commit then syncs
    /// the whole file system once); a file written earlier is synced now if an earlier
    /// process may have written it (a partial), as its write errors before this store was
    /// opened are only reported through it. Either way the attributes are set.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub(super) fn write_out(&mut self) -> Result<()> {
        let attrs = self.last();
        let sync = self.written_since.is_none();
        let written = match &mut self.data {
            Data::Memory(_) => self.materialize(false),
            Data::Named(file) => finish(file, attrs, sync),
            // Written already (by `sync`, synced; or by an earlier `write_out`).
            Data::Unnamed(..) => Ok(()),
            Data::Closed => {
                sys::open_write_existing(&self.tmp).and_then(|file| finish(&file, attrs, sync))
            }
            Data::Failed => Err(failed()),
        };
        written.map_err(|e| Error::io(format!("writing {}", escape(&self.name)), e))
    }

    /// Writes the bytes held in memory to a new hidden file, and syncs it if `sync`. If
    /// that fails part way, the upload is failed for good.
    fn materialize(&mut self, sync: bool) -> io::Result<()> {
        let Some(held) = self.take_held() else {
            return Ok(());
        };
        // An unnamed file cannot replace a name atomically: replacing uploads get a name.
        // It is made in the directory it goes to (so its inode is allocated there); when that
        // directory cannot be reached, a named file in the root holds the bytes, and
        // publishing says why.
        let dir = if self.replace {
            None
        } else if self.dir_in_turn && self.dir.is_none() {
            // Not made before its turn: written into it only if it exists already.
            walk(&self.temps, self.name.parent(), false).ok()
        } else {
            self.target_dir().ok()
        };
        if let Some(dir) = dir {
            match self.temps.create_unnamed(&dir) {
                Ok(Some(mut file)) => {
                    file.write_all(&held)?;
                    // One sync of the root's file system stands for the file's only if it
                    // is there (made in `dir`, it is on `dir`'s): not below a mount point.
                    let sync = sync || !self.temps.on_root_fs(&dir);
                    finish(&file, self.last(), sync)?;
                    self.data = Data::Unnamed(file);
                    return Ok(());
                }
                Ok(None) => {}
                // Out of descriptors or space: a named file would fail the same way.
                Err(e) if sys::is_exhaustion(&e) => {
                    self.data = Data::Memory(held);
                    return Err(e);
                }
                // Refused here in a way the probe did not foresee: use named files, from
                // now on unless this directory refuses new files (then unnamed ones still
                // work elsewhere, and publishing says why this one failed).
                Err(_) => {
                    if dir.may_create().is_ok() {
                        self.temps.stop_unnamed();
                    }
                }
            }
        }
        self.data = Data::Memory(held);
        self.spill()?;
        let attrs = self.last();
        finish(self.file()?, attrs, sync)
    }

    /// Moves the bytes held in memory to a new named temporary file. If the file cannot be
    /// created, they stay in memory; if they cannot all be written, the upload is failed.
    pub(super) fn spill(&mut self) -> io::Result<()> {
        let watch = self.temps.watch();
        let (tmp, mut file) = self.temps.create_named()?;
        self.written_since = Some(watch);
        // From here on, dropping the upload removes the file.
        self.tmp = tmp;
        let Some(held) = self.take_held() else {
            return Ok(());
        };
        file.write_all(&held)?;
        self.data = Data::Named(file);
        Ok(())
    }

    /// Takes the bytes held in memory, leaving the upload failed until they are placed
    /// again, so no error on the way can leave it looking whole; `None`, with nothing
    /// changed, when the bytes are not in memory.
    fn take_held(&mut self) -> Option<Vec<u8>> {
        match std::mem::replace(&mut self.data, Data::Failed) {
            Data::Memory(held) => Some(held),
            other => {
                self.data = other;
                None
            }
        }
    }

    /// Closes the file handle until the commit; see [`PendingFile::release`]. Bytes in
    /// memory or in an unnamed file (which has no name to reopen) stay as they are.
    pub fn release(&mut self) {
        if matches!(self.data, Data::Named(_)) {
            self.data = Data::Closed;
        }
        // The root's handle is the store's own, held anyway.
        if self
            .dir
            .as_ref()
            .is_some_and(|dir| !Arc::ptr_eq(dir, self.temps.root_fd()))
        {
            self.dir = None;
        }
    }

    /// Publishes the file under its name (never replacing, unless created to replace),
    /// without syncing the directory. The data must be durable already (bytes still in
    /// memory are synced first).
    ///
    /// Returns the directory it was published in, to be synced.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] when the name was taken meanwhile; [`Error::Io`].
    pub(super) fn publish(mut self) -> Result<Arc<DirFd>> {
        if matches!(self.data, Data::Memory(_)) {
            self.sync()?;
        }
        let name = escape(&self.name);
        let dir = self.target_dir()?;
        let published = match std::mem::replace(&mut self.data, Data::Closed) {
            Data::Unnamed(file) => match self.link_unnamed(&dir, &file) {
                Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                    // Linking is refused here: publish these bytes through a named temporary
                    // file instead, and stop making unnamed ones unless the system was only
                    // out of space or descriptors, or this directory refuses new names
                    // (then the named file fails too, and says why).
                    if !sys::is_exhaustion(&e) && dir.may_create().is_ok() {
                        self.temps.stop_unnamed();
                    }
                    let held = read_back(&file)
                        .map_err(|e| Error::io(format!("reading back {name}"), e))?;
                    drop(file);
                    self.data = Data::Memory(held);
                    let attrs = self.last();
                    self.spill()
                        .and_then(|()| finish(self.file()?, attrs, true))
                        .and_then(|()| self.publish_named(&dir))
                }
                linked => linked,
            },
            Data::Named(file) => {
                // Closed before the name moves.
                drop(file);
                self.publish_named(&dir)
            }
            Data::Closed => self.publish_named(&dir),
            Data::Memory(_) | Data::Failed => Err(failed()),
        };
        published.map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => Error::AlreadyExists {
                name: self.name.to_string(),
                why: Taken::Raced,
            },
            _ => Error::io(format!("publishing {name}"), e),
        })?;
        // Published: from here on the name is the file's, whatever happens.
        self.tmp = PathBuf::new();
        if let Some(partials) = &self.partials {
            partials.discard_for(self.name.as_str());
        }
        if let Some(lock) = &self.lock {
            lock.published();
        }
        Ok(dir)
    }

    /// Links the unnamed `file` as the upload's name in `dir`.
    fn link_unnamed(&self, dir: &DirFd, file: &File) -> io::Result<()> {
        #[cfg(test)]
        if self
            .temps
            .fail_next_link
            .swap(false, std::sync::atomic::Ordering::AcqRel)
        {
            return Err(io::Error::from(io::ErrorKind::PermissionDenied));
        }
        dir.link_unnamed(file, self.name.leaf())
    }

    /// Moves the named temporary file to the upload's name in `dir`. Where `dir` is on
    /// another file system than the root (below a mount point inside the served root), no
    /// rename can move it there: its bytes are copied instead ([`DirUpload::publish_across`]).
    fn publish_named(&self, dir: &DirFd) -> io::Result<()> {
        let moved = if self.replace {
            dir.publish_replace(&self.tmp, self.name.leaf())
        } else {
            dir.publish_noreplace(&self.tmp, self.name.leaf())
        };
        match moved {
            Err(e) if sys::is_cross_device(&e) => self.publish_across(dir).map_err(|copying| {
                io::Error::new(
                    copying.kind(),
                    format!("copying it to its directory's file system: {copying}"),
                )
            }),
            other => other,
        }
    }

    /// Publishes a copy of the named temporary file in `dir`, which is on another file
    /// system. A name taken already is refused before copying (the link or rename below
    /// still decides). The copy is a file made in `dir`: unnamed where that file system has
    /// them, so that a crash leaves nothing, else hidden (`.ft-tmp-…`, which the start-up
    /// sweep of the root does not reach). It gets the bytes, the attributes and the kept
    /// digest, is synced, and takes the name as the rename would have: never replacing
    /// unless the upload replaces (then through a hidden name renamed over it). `dir` is
    /// synced before the temporary file in the root goes, so a crash between the two
    /// cannot lose both. Costs a second write of the file, only here.
    fn publish_across(&self, dir: &DirFd) -> io::Result<()> {
        let leaf = self.name.leaf();
        if !self.replace && dir.stat(leaf).is_ok() {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        let mut source = sys::open_read_nofollow(&self.tmp)?;
        let unnamed = if self.temps.unnamed_enabled() {
            dir.create_unnamed().ok().flatten()
        } else {
            None
        };
        let (mut copy, hidden) = match unnamed {
            Some(file) => (file, None),
            None => {
                let hidden = self.temps.hidden_name();
                (dir.create_new(&hidden)?, Some(hidden))
            }
        };
        let mut publish = || -> io::Result<()> {
            io::copy(&mut source, &mut copy)?;
            finish(&copy, self.last(), true)?;
            match (&hidden, self.replace) {
                (None, false) => dir.link_unnamed(&copy, leaf),
                (None, true) => {
                    let linked = self.temps.hidden_name();
                    dir.link_unnamed(&copy, &linked)?;
                    dir.rename_here(&linked, leaf).inspect_err(|_| {
                        let _ = dir.remove_file(&linked);
                    })
                }
                (Some(hidden), false) => dir.rename_here_noreplace(hidden, leaf),
                (Some(hidden), true) => dir.rename_here(hidden, leaf),
            }
        };
        if let Err(e) = publish() {
            if let Some(hidden) = &hidden {
                let _ = dir.remove_file(hidden);
            }
            return Err(e);
        }
        dir.sync()?;
        let _ = fs::remove_file(&self.tmp);
        Ok(())
    }

    /// Keeps a partial for a later resume: synced, hidden, subject to the store's limits
    /// (age, total bytes, count); an empty one is not kept. An ordinary upload is discarded
    /// instead.
    pub fn keep(mut self) {
        let Some(lock) = self.lock.take() else {
            return;
        };
        if let Data::Named(file) = std::mem::replace(&mut self.data, Data::Closed) {
            let _ = file.sync_data();
        }
        self.tmp = PathBuf::new();
        lock.release_and_prune();
    }

    /// Empties the file to start over.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub(crate) fn restart(&mut self) -> Result<()> {
        if let Data::Memory(held) = &mut self.data {
            held.clear();
            return Ok(());
        }
        let context = format!("restarting {}", escape(&self.name));
        let file = self.file().map_err(|e| Error::io(context.clone(), e))?;
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)).map(drop))
            .map_err(|e| Error::io(context, e))
    }

    /// A reader over the bytes written so far (a partial's earlier attempts).
    ///
    /// # Errors
    /// [`Error::Io`].
    pub(crate) fn existing(&self) -> Result<Box<dyn Read + Send>> {
        if let Data::Memory(held) = &self.data {
            return Ok(Box::new(io::Cursor::new(held.clone())));
        }
        let file = sys::open_read_nofollow(&self.tmp).map_err(|e| {
            Error::io(
                format!("reading the partial file of {}", escape(&self.name)),
                e,
            )
        })?;
        Ok(Box::new(file))
    }

    fn file(&mut self) -> io::Result<&mut File> {
        match &mut self.data {
            Data::Named(file) | Data::Unnamed(file) => Ok(file),
            Data::Memory(_) | Data::Closed => Err(io::Error::other("upload already committed")),
            Data::Failed => Err(failed()),
        }
    }

    /// Where `len` more bytes go: memory while they fit in [`BUFFERED_MAX`], else a file
    /// (created now, with what memory held).
    fn room(&mut self, len: usize) -> io::Result<Option<&mut Vec<u8>>> {
        let over = match &self.data {
            Data::Memory(held) => held.len().saturating_add(len) > BUFFERED_MAX,
            _ => return Ok(None),
        };
        if over {
            self.spill()?;
            return Ok(None);
        }
        match &mut self.data {
            Data::Memory(held) => {
                let needed = held.len() + len;
                if needed > held.capacity() {
                    // Doubling, but never reserving past the limit, whatever the chunks.
                    let target = needed.max(held.capacity() * 2).min(BUFFERED_MAX);
                    held.reserve_exact(target - held.len());
                }
                Ok(Some(held))
            }
            _ => Ok(None),
        }
    }
}

/// What a written file gets before it is synced: its attributes and its verified digest.
type Last = (Option<Attrs>, Option<[u8; DIGEST_LEN]>);

/// Gives a written file its attributes, then its kept digest (sealed with the final size
/// and time), then makes it durable if `sync` (in that order: both are metadata the sync
/// covers).
fn finish(file: &File, (attrs, digest): Last, sync: bool) -> io::Result<()> {
    if let Some(attrs) = attrs {
        set_attrs(file, Some((attrs.modified, attrs.nanos)), attrs.executable)?;
    }
    if let Some(digest) = digest {
        kept::seal(file, &digest);
    }
    if sync {
        file.sync_all()?;
    }
    Ok(())
}

/// The bytes of an unnamed file written whole (at most [`BUFFERED_MAX`]: the upload held
/// them in memory before).
fn read_back(mut file: &File) -> io::Result<Vec<u8>> {
    file.seek(SeekFrom::Start(0))?;
    let mut held = Vec::new();
    file.take(BUFFERED_MAX as u64 + 1).read_to_end(&mut held)?;
    if held.len() > BUFFERED_MAX {
        return Err(io::Error::other(
            "an unnamed file grew past what was written",
        ));
    }
    Ok(held)
}

/// The error of an upload whose bytes could not all be moved to disk.
fn failed() -> io::Error {
    io::Error::other("an earlier write of this upload failed")
}

impl Write for DirUpload {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(held) = self.room(buf.len())? {
            held.extend_from_slice(buf);
            return Ok(buf.len());
        }
        self.file()?.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        if let Some(held) = self.room(buf.len())? {
            held.extend_from_slice(buf);
            return Ok(());
        }
        self.file()?.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.data {
            Data::Memory(_) => Ok(()),
            _ => self.file()?.flush(),
        }
    }
}

impl PendingFile for DirUpload {
    fn commit(self: Box<Self>) -> Result<()> {
        DirUpload::commit(*self)
    }

    fn keep(self: Box<Self>) {
        DirUpload::keep(*self);
    }

    fn release(&mut self) {
        DirUpload::release(self);
    }

    fn set_attrs(&mut self, attrs: Attrs) {
        DirUpload::set_attrs(self, attrs);
    }

    fn set_digest(&mut self, digest: [u8; DIGEST_LEN]) {
        DirUpload::set_digest(self, digest);
    }

    fn set_peer(&mut self, peer: IpAddr) {
        if let Some(lock) = self.lock.as_mut() {
            lock.set_peer(peer);
        }
    }
}

impl Drop for DirUpload {
    fn drop(&mut self) {
        // Closes the file first; an unnamed one disappears with its descriptor.
        self.data = Data::Closed;
        if !self.tmp.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {

    use super::super::{DirStore, Store};
    use super::*;
    use crate::store::test_util::{name, temp_files};

    #[test]
    fn upload_is_invisible_until_commit_and_dropped_upload_leaves_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = DirStore::open(dir.path()).expect("open");
        // Past BUFFERED_MAX the bytes go to a hidden temporary file.
        let big = vec![7u8; BUFFERED_MAX + 1];
        let mut up = store.create_file(&name("a.txt"), false).expect("create");
        up.write_all(&big).expect("write");
        assert!(!dir.path().join("a.txt").exists());
        assert_eq!(
            store.list(None, false).expect("list").count(),
            0,
            "temp file listed"
        );
        assert_eq!(temp_files(dir.path()).len(), 1);
        drop(up);
        assert!(temp_files(dir.path()).is_empty());
        assert!(!dir.path().join("a.txt").exists());

        // A small upload is held in memory: nothing on disk until it is committed.
        let mut up = store.create_file(&name("a.txt"), false).expect("create");
        up.write_all(b"hello").expect("write");
        assert_eq!(fs::read_dir(dir.path()).expect("ls").count(), 0);
        drop(up);
        assert_eq!(fs::read_dir(dir.path()).expect("ls").count(), 0);

        let mut up = store.create_file(&name("a.txt"), false).expect("create");
        up.write_all(b"hello").expect("write");
        up.commit().expect("commit");
        assert_eq!(fs::read(dir.path().join("a.txt")).expect("read"), b"hello");
        assert!(temp_files(dir.path()).is_empty());
    }

    /// An upload written out to an unnamed file holds no bytes in memory; where the file
    /// cannot be linked (a system that forbids linking through `/proc`), its bytes are read back from it and
    /// published through a named file, whole, and later uploads make named files.
    #[cfg(target_os = "linux")]
    #[test]
    fn an_unnamed_file_that_cannot_be_linked_is_published_through_a_named_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = DirStore::open(dir.path()).expect("open");
        let bytes: Vec<u8> = (0..BUFFERED_MAX).map(|i| (i % 253) as u8).collect();
        let mut up = store.create_file(&name("d/a.bin"), false).expect("create");
        up.write_all(&bytes).expect("write");
        up.write_out().expect("write out");
        if !matches!(up.data, Data::Unnamed(_)) {
            // This file system makes no unnamed files: nothing to test here.
            return;
        }
        store
            .temps
            .fail_next_link
            .store(true, std::sync::atomic::Ordering::Release);
        up.commit().expect("published through a named file");
        assert!(fs::read(dir.path().join("d/a.bin")).expect("read") == bytes);
        assert!(!store.temps.unnamed_enabled(), "unnamed files stopped");
        assert!(temp_files(dir.path()).is_empty());
        assert!(temp_files(&dir.path().join("d")).is_empty());
    }

    /// Uploads too big for memory wait in a hidden file in the root; into a directory on
    /// another file system (a mount point inside the root), where no rename reaches, they are
    /// copied, through an unnamed file and, where the store makes none, a hidden named one:
    /// the bytes, the time, the execute bit and the kept digest arrive, the name is still
    /// never replaced unless asked, a resumable upload's partial goes too, and no hidden file
    /// is left on either side. Before the copy existed these failed with EXDEV. Needs root to
    /// mount a tmpfs; skipped otherwise.
    #[cfg(target_os = "linux")]
    #[test]
    fn big_uploads_below_a_mount_point_are_copied_across() {
        use std::os::unix::fs::PermissionsExt;

        let Some(root) = crate::store::test_util::root_with_tmpfs() else {
            return;
        };
        let mount = &root.mount;
        let store = DirStore::open(root.path()).expect("open");
        let bytes = |seed: u8| -> Vec<u8> {
            (0..BUFFERED_MAX + 4097)
                .map(|i| (i % 251) as u8 ^ seed)
                .collect()
        };
        let upload = |path: &str, data: &[u8], replace: bool| {
            let mut up = store.create_file(&name(path), replace)?;
            up.write_all(data).expect("write");
            up.set_attrs(Attrs {
                modified: 1_600_000_000,
                nanos: 0,
                executable: true,
            });
            up.set_digest(ft_testutil::digest(data));
            up.commit()
        };
        for unnamed in [true, false] {
            if !unnamed {
                store.temps.stop_unnamed();
            }
            let sub = format!("m/{unnamed}");
            let at = mount.join(format!("{unnamed}/big.bin"));
            upload(&format!("{sub}/big.bin"), &bytes(1), false).expect("commit across");
            assert!(fs::read(&at).expect("read") == bytes(1), "bytes differ");
            let meta = fs::metadata(&at).expect("stat");
            assert_eq!(
                meta.modified().expect("mtime"),
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000)
            );
            assert_ne!(meta.permissions().mode() & 0o111, 0, "execute bit lost");
            let file = fs::File::open(&at).expect("open");
            let stat = crate::sys::at::stat_file(&file).expect("stat");
            // Where the mounted file system keeps extended attributes (tmpfs does since
            // Linux 6.6), the digest came along.
            if let Some(kept) = kept::kept_with(&file, &stat) {
                assert_eq!(kept, ft_testutil::digest(&bytes(1)));
            }

            // Taken: refused.
            let taken = upload(&format!("{sub}/big.bin"), &bytes(2), false);
            assert!(
                matches!(taken, Err(Error::AlreadyExists { .. })),
                "{taken:?}"
            );
            assert!(fs::read(&at).expect("read") == bytes(1), "replaced");

            // Asked to replace: replaced.
            upload(&format!("{sub}/big.bin"), &bytes(3), true).expect("replace across");
            assert!(fs::read(&at).expect("read") == bytes(3), "not replaced");

            // A resumable upload, from its partial in the root.
            let data = bytes(4);
            let mut resumable = store
                .create_resumable(
                    &name(&format!("{sub}/r.bin")),
                    data.len() as u64,
                    &"ab".repeat(16),
                )
                .expect("resumable");
            assert_eq!(resumable.offset, 0);
            resumable.upload.write_all(&data).expect("write");
            resumable.upload.commit().expect("commit resumable across");
            assert!(fs::read(mount.join(format!("{unnamed}/r.bin"))).expect("read") == data);

            assert!(
                temp_files(root.path()).is_empty(),
                "a temporary file is left"
            );
            assert!(
                ft_testutil::partials(root.path()).is_empty(),
                "a partial is left"
            );
            let mut names: Vec<_> = fs::read_dir(mount.join(unnamed.to_string()))
                .expect("ls")
                .map(|e| e.expect("entry").file_name())
                .collect();
            names.sort();
            assert_eq!(names, ["big.bin", "r.bin"], "unnamed files: {unnamed}");
        }
    }

    /// An upload announced larger than the memory limit gets its file at once, so a
    /// failure to create it shows before the body; a small one stays in memory.
    #[test]
    fn large_announced_uploads_get_their_file_before_the_body() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = DirStore::open(dir.path()).expect("open");
        let small = store
            .create(&name("s"), BUFFERED_MAX as u64)
            .expect("create");
        assert!(temp_files(dir.path()).is_empty());
        let large = store
            .create(&name("l"), BUFFERED_MAX as u64 + 1)
            .expect("create");
        assert_eq!(temp_files(dir.path()).len(), 1);
        drop((small, large));
        assert_eq!(fs::read_dir(dir.path()).expect("ls").count(), 0);
    }

    /// Bytes written in pieces across the memory limit arrive whole, in order, whichever
    /// side of the limit the upload ends on; replacing and non-replacing alike.
    #[test]
    fn uploads_around_the_memory_limit_are_stored_exactly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = DirStore::open(dir.path()).expect("open");
        for (i, len) in [
            0,
            1,
            BUFFERED_MAX - 1,
            BUFFERED_MAX,
            BUFFERED_MAX + 1,
            3 * BUFFERED_MAX,
        ]
        .into_iter()
        .enumerate()
        {
            let data: Vec<u8> = (0..len).map(|k| (k * 31 + i) as u8).collect();
            for replace in [false, true] {
                let file = format!("f{i}-{replace}");
                let mut up = store.create_file(&name(&file), replace).expect("create");
                for piece in data.chunks(100_000) {
                    up.write_all(piece).expect("write");
                }
                up.commit().expect("commit");
                assert_eq!(
                    fs::read(dir.path().join(&file)).expect("read"),
                    data,
                    "{file}"
                );
            }
        }
        assert!(temp_files(dir.path()).is_empty());
    }
}
