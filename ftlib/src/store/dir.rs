//! [`DirStore`], the [`Store`] on a local directory: opening the root, reaching a name's
//! directory one component at a time by handle (never through a symbolic link), listing
//! what clients may see, opening files for reading, early refusals (taken names, free
//! space), and creating uploads; the client uses its inherent methods for its own
//! directory (`--overwrite`, resumable partials).

use std::io::{self, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::kept;
use super::name::{Name, RESERVED_PREFIX};
use super::pending::{BUFFERED_MAX, DirUpload};
use super::temps::{PartialLimits, Partials, Temps, remove_orphans};
use super::walk::Walk;
use super::{PendingFile, Resumable, Source, Store, group};
use crate::error::{Error, Missing, Result, Taken};
use crate::protocol::{DIGEST_LEN, Entry, EntryKind};
use crate::sys;
use crate::sys::at::{ChildError, DirFd, Kind, Stat};
use crate::text::escape;

/// A [`Store`] on a local directory.
///
/// Uploads are written to hidden files in the root (or held in memory while small, see
/// [`BUFFERED_MAX`]), made durable, then published without replacing into their directory
/// (created as needed), and that directory synced; a group of them is committed by several
/// threads at once. Every name is reached one component at a time from the root's handle,
/// never through a symbolic link, so nothing outside the root is ever read, written or
/// listed.
#[derive(Debug)]
pub struct DirStore {
    root: PathBuf,
    root_fd: Arc<DirFd>,
    pub(super) temps: Arc<Temps>,
    partials: Arc<Partials>,
    /// Commit helper threads running now (at most [`group::COMMIT_HELPERS`]).
    pub(super) helpers: AtomicUsize,
    /// The directory the last upload went to, and when it was opened: the checks of files
    /// of one directory arriving in a row share one handle for [`DIR_FRESH`], without
    /// walking to it from the root each (the uploads themselves walk again).
    last_dir: RecentDir,
    /// When the root was last found writable ([`DirStore::root_may_create`]).
    root_writable: Mutex<Option<Instant>>,
    /// The free space last read from the file system, for [`DirStore::check_space`].
    space: Mutex<Option<Space>>,
}

/// Free space read at `at`, and the bytes uploads announced since.
#[derive(Debug, Clone, Copy)]
struct Space {
    at: Instant,
    available: u64,
    claimed: u64,
}

/// How long the handle of the directory uploads last went to is used again for the next
/// ones' checks ([`DirStore::upload_dir`]); after that the path is walked again, so that a
/// directory removed or replaced meanwhile is seen.
const DIR_FRESH: Duration = Duration::from_secs(1);

/// The handle of the directory last used for one purpose, and when it was opened.
#[derive(Debug, Default)]
struct RecentDir(Mutex<Option<Recent>>);

/// The directory a [`RecentDir`] keeps.
#[derive(Debug)]
struct Recent {
    path: String,
    dir: Arc<DirFd>,
    opened: Instant,
    /// Whether this process was found allowed to create files in it since
    /// ([`RecentDir::may_create`]).
    writable: bool,
}

impl RecentDir {
    /// The handle of `path`, if it is the directory kept and was opened less than
    /// [`DIR_FRESH`] ago; else `walk`'s, kept for the next call.
    ///
    /// # Errors
    /// `walk`'s.
    fn get_or_walk(
        &self,
        path: &str,
        walk: impl FnOnce() -> Result<Arc<DirFd>>,
    ) -> Result<Arc<DirFd>> {
        let mut last = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(kept) = last
            .as_ref()
            .filter(|kept| kept.path == path && kept.opened.elapsed() < DIR_FRESH)
        {
            return Ok(Arc::clone(&kept.dir));
        }
        let dir = walk()?;
        *last = Some(Recent {
            path: path.to_owned(),
            dir: Arc::clone(&dir),
            opened: Instant::now(),
            writable: false,
        });
        Ok(dir)
    }

    /// [`may_create`] `name` in `dir`, asked of the system once for the directory kept
    /// (while it is kept): files of one directory arriving in a row take one
    /// `faccessat`, not one each. Only an answer that lets the upload go on is kept, and
    /// for no longer than the handle: the check refuses early what publishing would
    /// refuse anyway, so a directory made read-only meanwhile still fails the upload,
    /// at its publish.
    fn may_create(&self, dir: &Arc<DirFd>, name: &Name) -> Result<()> {
        let known = |last: &Option<Recent>| {
            last.as_ref().is_some_and(|kept| {
                kept.writable && Arc::ptr_eq(&kept.dir, dir) && kept.opened.elapsed() < DIR_FRESH
            })
        };
        if known(&self.0.lock().unwrap_or_else(|p| p.into_inner())) {
            return Ok(());
        }
        may_create(dir, name)?;
        let mut last = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(kept) = last.as_mut().filter(|kept| Arc::ptr_eq(&kept.dir, dir)) {
            kept.writable = true;
        }
        Ok(())
    }
}

/// The handles of the directories a tree's listing made or found last, from the outermost
/// down ([`DirStore::make_dir_in_tree`]).
#[derive(Debug, Default)]
pub(crate) struct TreeDirs(Vec<(String, Arc<DirFd>)>);

/// How long a reading of the free space may stand for small uploads
/// ([`DirStore::check_space`]).
const SPACE_FRESH: Duration = Duration::from_secs(1);

impl DirStore {
    /// Uses the existing directory `root`.
    ///
    /// # Errors
    /// [`Error::Io`] when `root` is missing or not a directory.
    ///
    /// # Examples
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let store = ftlib::store::DirStore::open(dir.path())?;
    /// assert_eq!(store.root(), dir.path());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(root: impl Into<PathBuf>) -> Result<DirStore> {
        let root = root.into();
        let root_fd = DirFd::open(&root).map_err(|e| {
            let what = match e.kind() {
                io::ErrorKind::NotFound => "does not exist",
                io::ErrorKind::NotADirectory => "is not a directory",
                _ => "cannot be read",
            };
            Error::io(format!("directory {} {what}", root.display()), e)
        })?;
        let root_fd = Arc::new(root_fd);
        Ok(DirStore {
            temps: Arc::new(Temps::new(root.clone(), Arc::clone(&root_fd))),
            partials: Arc::new(Partials::new(root.clone())),
            root,
            root_fd,
            helpers: AtomicUsize::new(0),
            last_dir: RecentDir::default(),
            root_writable: Mutex::new(None),
            space: Mutex::new(None),
        })
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Sets how long, how many and how much is kept of abandoned partials.
    pub fn set_partial_limits(&self, limits: PartialLimits) {
        self.partials.set_limits(limits);
    }

    /// The directory `dir` (components separated by `/`; `None` is the root): [`walk`]
    /// from the root.
    pub(crate) fn dir(&self, dir: Option<&str>, create: bool) -> Result<Arc<DirFd>> {
        walk(&self.temps, dir, create)
    }

    /// Checks that an upload of `name` may go ahead: free (or, with `replace`, a regular
    /// file), in a directory this process may write. The checks use the handle of the
    /// directory the uploads before went to, kept up to [`DIR_FRESH`]; the upload itself
    /// gets only the root's (`Some`, for a name at the top): it reaches any other
    /// directory again from the root when it writes or publishes there (a directory moved
    /// out of the served tree meanwhile is never written into). A directory on the way
    /// that does not exist yet is made when the upload is published, so a failed upload
    /// leaves none behind.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] when the name is taken, or a component on the way is a
    /// file or a symbolic link; [`Error::Io`].
    fn upload_dir(&self, name: &Name, replace: bool) -> Result<Option<Arc<DirFd>>> {
        let dir = match name.parent() {
            None => Arc::clone(&self.root_fd),
            Some(parent) => {
                let below = |gone: &str| {
                    parent == gone
                        || parent
                            .strip_prefix(gone)
                            .is_some_and(|rest| rest.starts_with('/'))
                };
                let mark = self.temps.dirs_mark();
                // Found missing just now, without looking (kept as it was found).
                let mut known = false;
                // Where the walk stopped, if it did.
                let mut deepest = None;
                let walked = self.last_dir.get_or_walk(parent, || {
                    known = self.temps.known_missing(below);
                    if known {
                        return Err(Error::NotFound {
                            name: parent.to_owned(),
                            why: Missing::Absent,
                        });
                    }
                    walk_from_root(&self.temps, Some(parent), false, &mut deepest)
                });
                match walked {
                    Ok(dir) => dir,
                    Err(Error::NotFound {
                        why: Missing::Absent,
                        ..
                    }) => {
                        if !known {
                            // Its directories are made at publish, in the deepest one
                            // that exists (where the walk that found it missing stopped):
                            // one the server may not write is refused now.
                            if let Some(deepest) = &deepest {
                                may_create(deepest, name)?;
                            }
                            self.temps.remember_missing(parent, mark);
                        }
                        return Ok(None);
                    }
                    // A file or a link on the way: the error of making the directories,
                    // which stops at that component, before making any.
                    Err(_) => self.dir(Some(parent), true)?,
                }
            }
        };
        check_target(&dir, name, replace)?;
        if Arc::ptr_eq(&dir, &self.root_fd) {
            self.root_may_create(name)?;
            return Ok(Some(dir));
        }
        self.last_dir.may_create(&dir, name)?;
        // Only the checks use a handle that may be kept from an earlier upload: the upload
        // reaches its directory again from the root when it writes or publishes there, so a
        // directory moved out of the served tree since is never written into.
        Ok(None)
    }

    /// [`may_create`] `name` in the root, asked of the system at most once per
    /// [`DIR_FRESH`] while the answer is yes (as [`RecentDir::may_create`]), apart from the
    /// directory kept there, so that uploads alternating between the root and another
    /// directory do not walk to that one again each time.
    fn root_may_create(&self, name: &Name) -> Result<()> {
        let mut writable = self.root_writable.lock().unwrap_or_else(|p| p.into_inner());
        if writable.is_some_and(|at| at.elapsed() < DIR_FRESH) {
            return Ok(());
        }
        may_create(&self.root_fd, name)?;
        *writable = Some(Instant::now());
        Ok(())
    }

    /// Opens (creating if needed) the partial `key` for `name`, for a resumable transfer:
    /// the upload, positioned after the bytes it already holds, and how many those are.
    /// With `replace`, publishing may replace an existing `name` (the client's
    /// `--overwrite`). A partial in use by another transfer is refused.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`], [`Error::Io`].
    pub(crate) fn open_partial(
        &self,
        key: &str,
        name: &Name,
        replace: bool,
    ) -> Result<(DirUpload, u64)> {
        check_key(key)?;
        let dir = self.upload_dir(name, replace)?;
        let Some(lock) = self.partials.lock(key) else {
            return Err(Error::AlreadyExists {
                name: name.to_string(),
                why: Taken::InUse,
            });
        };
        let context = || format!("opening the partial file of {}", escape(name));
        let mut file = sys::open_partial(lock.path()).map_err(|e| Error::io(context(), e))?;
        let offset = file
            .seek(SeekFrom::End(0))
            .map_err(|e| Error::io(context(), e))?;
        Ok((
            DirUpload::partial(&self.temps, dir, name, replace, lock, file),
            offset,
        ))
    }

    /// Whether the partial `key` is kept here, for a transfer to continue.
    pub(crate) fn has_partial(&self, key: &str) -> bool {
        check_key(key).is_ok() && self.partials.is_kept(key, &self.root_fd)
    }

    /// Removes the partial `key` unless a transfer uses it (a transfer told to start over).
    pub(crate) fn discard_partial(&self, key: &str) {
        if check_key(key).is_ok() {
            self.partials.discard(key);
        }
    }

    /// Makes `upload`, which holds no byte yet, write into the partial `key` instead, so
    /// that the bytes received are kept if the transfer is cut ([`DirUpload::keep`]) and
    /// a later one continues them. Left as it is when that partial cannot be had (another
    /// transfer uses it, or it cannot be opened): the transfer then just cannot be
    /// continued.
    pub(crate) fn write_to_partial(&self, upload: &mut DirUpload, key: &str) {
        let Ok((mut partial, had)) = self.open_partial(key, upload.name(), upload.replaces())
        else {
            return;
        };
        if had == 0 || partial.restart().is_ok() {
            *upload = partial;
        }
    }

    /// Why this process may not create files in the root, if it can tell: no write or
    /// search permission, or a file system mounted read-only (a client's download
    /// directory, checked before any byte is asked for).
    pub(crate) fn cannot_create(&self) -> Option<io::Error> {
        self.root_fd.may_create().err()
    }

    /// Refuses early when the file system has less free space than `size`.
    ///
    /// # Errors
    /// [`Error::NoSpace`].
    /// The file system is asked again unless it said, less than [`SPACE_FRESH`] ago, that
    /// it had room for sixteen times what was announced since, this upload included: a
    /// tree of small files does not ask once per file. (An early refusal only: a write that
    /// finds the disk full fails `no-space` anyway.)
    pub(crate) fn check_space(&self, name: &Name, size: u64) -> Result<()> {
        let mut space = self.space.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(known) = space.as_mut() {
            let claimed = known.claimed.saturating_add(size);
            if known.at.elapsed() < SPACE_FRESH && claimed <= known.available / 16 {
                known.claimed = claimed;
                return Ok(());
            }
        }
        let Some(available) = sys::available_space(&self.root) else {
            return Ok(());
        };
        *space = Some(Space {
            at: Instant::now(),
            available,
            claimed: size,
        });
        if available < size {
            return Err(Error::NoSpace {
                name: name.to_string(),
                needed: size,
                available,
            });
        }
        Ok(())
    }

    /// Starts writing `name` (its directories created when it is published); with `replace`,
    /// publishing replaces an existing file atomically (the client's `--overwrite`),
    /// otherwise it never does. Nothing is created on disk until more than
    /// [`BUFFERED_MAX`] bytes are written or the upload is synced.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] (without `replace`; with it, when `name` is not a regular
    /// file; and when a parent is a file), [`Error::Io`] when the name cannot be checked.
    pub fn create_file(&self, name: &Name, replace: bool) -> Result<DirUpload> {
        let dir = self.upload_dir(name, replace)?;
        Ok(DirUpload::in_memory(
            &self.temps,
            &self.partials,
            dir,
            name,
            replace,
            0,
        ))
    }

    /// Makes the directory `name` like [`Store::make_dir`] (`true` when it was made, `false`
    /// when it was there), for the directories of a tree made one after another in the
    /// order of its listing. `open` holds the handles of the directories made or found
    /// just before (bounded by the depth of the last one): one whose parent is among them
    /// is made there, without walking from the root. Where one `syncfs` stands for many
    /// `fsync` calls, the parent is not synced: the directory is durable after the next
    /// group commit of this store or [`DirStore::settle_dirs`], which must come before
    /// anything relies on it; elsewhere each parent is synced as `make_dir` does.
    ///
    /// # Errors
    /// As [`Store::make_dir`].
    pub(crate) fn make_dir_in_tree(&self, name: &Name, open: &mut TreeDirs) -> Result<bool> {
        if !self.temps.batch_sync() {
            return self.make_dir(name);
        }
        let parent = match name.parent() {
            None => {
                open.0.clear();
                Arc::clone(&self.root_fd)
            }
            Some(parent) => match open.0.iter().rposition(|(path, _)| path == parent) {
                Some(at) => {
                    open.0.truncate(at + 1);
                    Arc::clone(&open.0[at].1)
                }
                None => {
                    let dir = walk(&self.temps, Some(parent), true)?;
                    open.0.clear();
                    open.0.push((parent.to_owned(), Arc::clone(&dir)));
                    dir
                }
            },
        };
        let made = parent
            .make_dir(name.leaf())
            .map_err(|e| Error::io(format!("creating {}", escape(name)), e))?;
        if made {
            self.temps.forget_missing(name.as_str());
        }
        if made && self.temps.on_root_fs(&parent) {
            self.temps.dir_made();
        } else if made {
            // Below a mount point: the root's file system's sync would not cover it.
            parent
                .sync()
                .map_err(|e| Error::io(format!("syncing the directory of {}", escape(name)), e))?;
        }
        let child = parent
            .child(name.leaf())
            .map_err(|e| child_error(e, name.to_string(), true))?;
        open.0.push((name.to_string(), Arc::new(child)));
        Ok(made)
    }

    /// Makes every directory made so far durable (one sync of the file system, if any was
    /// made without syncing its parent since the last one).
    ///
    /// # Errors
    /// [`Error::Io`].
    pub(crate) fn settle_dirs(&self) -> Result<()> {
        self.temps
            .settle_dirs()
            .map_err(|e| Error::io("syncing the directories made", e))
    }

    /// What `name` is, locally: [`Store::stat`] for the client's own directory.
    ///
    /// # Errors
    /// As [`Store::stat`].
    pub fn describe(&self, name: &Name) -> Result<Entry> {
        let dir = self.dir(name.parent(), false)?;
        let stat = dir.stat(name.leaf()).map_err(|e| missing_or_io(e, name))?;
        match stat.kind {
            Kind::File | Kind::Dir => Ok(entry_of(name.to_string(), &stat)),
            Kind::Symlink => Err(Error::NotFound {
                name: name.to_string(),
                why: Missing::Symlink,
            }),
            Kind::Other => Err(Error::NotFound {
                name: name.to_string(),
                why: Missing::NotRegular,
            }),
        }
    }

    /// Opens the regular file `name` for reading, never through a symbolic link.
    ///
    /// # Errors
    /// [`Error::NotFound`] (missing, a symbolic link, not a regular file), [`Error::Io`].
    fn open_file(&self, name: &Name) -> Result<std::fs::File> {
        // Resolved from the root every time, never through a handle kept from an earlier
        // request (a directory moved out of the served tree is never read from): in one
        // call where the kernel can, else (and to tell why that failed) one component at
        // a time.
        #[cfg(target_os = "linux")]
        if let Some(file) = self.root_fd.open_file_beneath(name.as_str()) {
            return Ok(file);
        }
        let dir = self.dir(name.parent(), false)?;
        dir.open_file(name.leaf())
            .map_err(|e| match dir.stat(name.leaf()) {
                Ok(stat) if stat.kind == Kind::Symlink => Error::NotFound {
                    name: name.to_string(),
                    why: Missing::Symlink,
                },
                Ok(stat) if stat.kind != Kind::File => Error::NotFound {
                    name: name.to_string(),
                    why: Missing::NotRegular,
                },
                _ if e.kind() == io::ErrorKind::NotFound => Error::NotFound {
                    name: name.to_string(),
                    why: Missing::Absent,
                },
                _ => Error::io(format!("opening {}", escape(name)), e),
            })
    }

    /// Removes temporary files whose creating process is gone (a crash or a kill), and
    /// partials beyond the age, count and size limits; returns how many temporary files
    /// went.
    ///
    /// # Errors
    /// [`Error::Io`] when the directory cannot be read.
    pub fn cleanup(&self) -> Result<usize> {
        self.partials.prune();
        remove_orphans(&self.root).map_err(|e| Error::io("reading the directory", e))
    }
}

/// The directory `dir` below `root` (components separated by `/`; `None` is `root`),
/// reached one component at a time without following a symbolic link; with `create`,
/// missing directories are made (and their parents synced, so they are durable — with
/// batch syncing, by the next commit: [`Temps::settle_dirs`]).
///
/// # Errors
/// Without `create`: [`Error::NotFound`] when a component is missing, a symbolic link or
/// not a directory. With it: [`Error::AlreadyExists`] when a component is a file, a
/// symbolic link or anything but a directory. [`Error::Io`].
pub(super) fn walk(temps: &Temps, dir: Option<&str>, create: bool) -> Result<Arc<DirFd>> {
    walk_from_root(temps, dir, create, &mut None)
}

/// [`walk`], leaving in `deepest` the deepest directory it reached when it fails.
fn walk_from_root(
    temps: &Temps,
    dir: Option<&str>,
    create: bool,
    deepest: &mut Option<Arc<DirFd>>,
) -> Result<Arc<DirFd>> {
    let root = temps.root_fd();
    let Some(dir) = dir else {
        return Ok(Arc::clone(root));
    };
    let mut at: Option<DirFd> = None;
    let mut walked = 0;
    for component in dir.split('/') {
        walked += component.len() + usize::from(walked > 0);
        let here = at.as_ref().unwrap_or(root);
        let path = || dir[..walked].to_owned();
        let next = match here.child(component) {
            Ok(next) => next,
            Err(ChildError::Missing) if create => {
                let made = here
                    .make_dir(component)
                    .map_err(|e| Error::io(format!("creating {}", escape(&path())), e))?;
                if made {
                    temps.forget_missing(&dir[..walked]);
                }
                if made && temps.batch_sync() && temps.on_root_fs(here) {
                    // Made durable by the commit of the first file published after it (its
                    // sync is of the root's file system: a directory made on another one,
                    // below a mount point, is synced here instead).
                    temps.dir_made();
                } else if made {
                    here.sync().map_err(|e| {
                        Error::io(format!("syncing the directory of {}", escape(&path())), e)
                    })?;
                }
                here.child(component)
                    .map_err(|e| child_error(e, path(), create))?
            }
            Err(e) => {
                *deepest = Some(at.map_or_else(|| Arc::clone(root), Arc::new));
                return Err(child_error(e, path(), create));
            }
        };
        at = Some(next);
    }
    Ok(at.map_or_else(|| Arc::clone(root), Arc::new))
}

/// Refuses an upload of `name` whose file (or first missing directory) would be made in
/// `dir` when this process may not write there: now, before its body, rather than at
/// publish once every byte has come.
fn may_create(dir: &DirFd, name: &Name) -> Result<()> {
    dir.may_create()
        .map_err(|e| Error::io(format!("writing in the directory of {}", escape(name)), e))
}

/// Whether publishing `name` in `dir` may go ahead: free, or (with `replace`) a regular
/// file.
fn check_target(dir: &DirFd, name: &Name, replace: bool) -> Result<()> {
    match dir.stat(name.leaf()) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(format!("checking {}", escape(name)), e)),
        Ok(stat) if replace && stat.kind == Kind::File => Ok(()),
        Ok(stat) => Err(Error::AlreadyExists {
            name: name.to_string(),
            why: match stat.kind {
                Kind::File => Taken::Exists,
                Kind::Dir => Taken::Directory,
                _ => Taken::NotAFile,
            },
        }),
    }
}

/// The error for a component (`path`, from the top) that could not be entered.
fn child_error(e: ChildError, path: String, creating: bool) -> Error {
    match e {
        ChildError::Io(e) => Error::io(format!("opening {}", escape(&path)), e),
        ChildError::Symlink if creating => Error::AlreadyExists {
            name: path,
            why: Taken::Symlink,
        },
        ChildError::NotADir | ChildError::Missing if creating => Error::AlreadyExists {
            name: path,
            why: Taken::NotADirectory,
        },
        ChildError::Symlink => Error::NotFound {
            name: path,
            why: Missing::Symlink,
        },
        ChildError::NotADir => Error::NotFound {
            name: path,
            why: Missing::NotADirectory,
        },
        ChildError::Missing => Error::NotFound {
            name: path,
            why: Missing::Absent,
        },
    }
}

fn missing_or_io(e: io::Error, name: &Name) -> Error {
    if e.kind() == io::ErrorKind::NotFound {
        Error::NotFound {
            name: name.to_string(),
            why: Missing::Absent,
        }
    } else {
        Error::io(format!("reading {}", escape(name)), e)
    }
}

/// The entry of `name` with attributes `stat` (a file or a directory).
pub(super) fn entry_of(name: String, stat: &Stat) -> Entry {
    let dir = stat.kind == Kind::Dir;
    Entry {
        name,
        kind: if dir { EntryKind::Dir } else { EntryKind::File },
        size: if dir { 0 } else { stat.size },
        modified: stat.modified.0,
        executable: !dir && stat.executable,
    }
}

impl Store for DirStore {
    fn list(
        &self,
        dir: Option<&Name>,
        recursive: bool,
    ) -> Result<Box<dyn Iterator<Item = Result<Entry>> + Send + '_>> {
        let at = self.dir(dir.map(Name::as_str), false)?;
        let depth = dir.map_or(0, Name::depth);
        let base = dir.map_or_else(String::new, |d| format!("{d}/"));
        let shown = match dir {
            Some(dir) => format!("reading the directory {}", escape(dir)),
            None => "reading the served directory".to_owned(),
        };
        let walk = Walk::new(at, depth, base, recursive).map_err(|e| Error::io(shown, e))?;
        Ok(Box::new(walk))
    }

    fn stat(&self, name: &Name) -> Result<Entry> {
        self.describe(name)
    }

    fn make_dir(&self, name: &Name) -> Result<bool> {
        let parent = self.dir(name.parent(), true)?;
        let made = parent
            .make_dir(name.leaf())
            .map_err(|e| Error::io(format!("creating {}", escape(name)), e))?;
        if made {
            self.temps.forget_missing(name.as_str());
            parent
                .sync()
                .map_err(|e| Error::io(format!("syncing the directory of {}", escape(name)), e))?;
            return Ok(true);
        }
        match parent.child(name.leaf()) {
            Ok(_) => Ok(false),
            Err(e) => Err(child_error(e, name.to_string(), true)),
        }
    }

    fn open(&self, name: &Name, offset: u64) -> Result<Source> {
        let mut file = self.open_file(name)?;
        let reading = |e| Error::io(format!("reading {}", escape(name)), e);
        let stat = sys::at::stat_file(&file).map_err(reading)?;
        if offset > 0 {
            file.seek(SeekFrom::Start(offset)).map_err(reading)?;
        }
        // A second handle for sending from the page cache: reads through `reader` move its
        // offset, which sending with explicit offsets neither uses nor moves.
        // Only where it pays: for a small file, reading and hashing a few pages costs less
        // than the attribute's read and the second handle.
        let kept = (stat.size >= SEND_FROM_CACHE)
            .then(|| kept::kept_with(&file, &stat))
            .flatten()
            .and_then(|digest| file.try_clone().ok().map(|same| (same, digest)));
        Ok(Source {
            kept,
            reader: Box::new(file),
            size: stat.size,
            modified: stat.modified.0,
            nanos: stat.modified.1,
            executable: stat.executable,
        })
    }

    /// The digest kept with the file when it was stored, if it still describes it (same
    /// size and modification time: the attribute [`DIGEST_XATTR`](super::DIGEST_XATTR));
    /// else the file is read.
    fn digest(&self, name: &Name) -> Result<[u8; DIGEST_LEN]> {
        let mut file = self.open_file(name)?;
        kept::digest_of(&mut file).map_err(|e| Error::io(format!("reading {}", escape(name)), e))
    }

    fn create(&self, name: &Name, size: u64) -> Result<Box<dyn PendingFile>> {
        let dir = self.upload_dir(name, false)?;
        self.check_space(name, size)?;
        let expected = usize::try_from(size).unwrap_or(usize::MAX);
        let mut upload =
            DirUpload::in_memory(&self.temps, &self.partials, dir, name, false, expected);
        if expected > BUFFERED_MAX {
            // Too big for memory: create its file now, so a failure shows before the body.
            upload.spill().map_err(|e| {
                Error::io(format!("creating a temporary file for {}", escape(name)), e)
            })?;
        }
        Ok(Box::new(upload))
    }

    fn create_resumable(&self, name: &Name, size: u64, key: &str) -> Result<Resumable> {
        let (mut upload, mut offset) = self.open_partial(key, name, false)?;
        if offset > size {
            // Cannot be a prefix of this file: start over.
            upload.restart()?;
            offset = 0;
        }
        if let Err(e) = self.check_space(name, size - offset) {
            // Still resumable once there is room, if it holds anything: `keep` removes an
            // empty partial (one just created, or emptied above).
            upload.keep();
            return Err(e);
        }
        let existing = upload.existing()?;
        Ok(Resumable {
            upload: Box::new(upload),
            offset,
            existing,
        })
    }

    fn commit_group(&self, files: Vec<Box<dyn PendingFile>>) -> Vec<Result<()>> {
        group::commit_group(files, &self.temps, &self.helpers)
    }

    fn held_in_memory(&self, size: u64) -> u64 {
        // A larger upload goes to a temporary file as it arrives.
        if size <= BUFFERED_MAX as u64 { size } else { 0 }
    }

    fn write_ahead(
        &self,
        files: &mut [&mut dyn PendingFile],
        taken_before: &dyn Fn(&str) -> bool,
    ) -> u64 {
        group::write_ahead(files, &self.temps, &self.helpers, taken_before)
    }

    fn commit_group_in_turn(
        &self,
        files: Vec<Box<dyn PendingFile>>,
        wait_turn: &dyn Fn(),
        published: &dyn Fn(),
    ) -> Vec<Result<()>> {
        group::commit_group_in_turn(files, &self.temps, &self.helpers, wait_turn, published)
    }

    fn cleanup(&self) -> Result<usize> {
        DirStore::cleanup(self)
    }
}

/// Whether a name in a listing is one clients may see: UTF-8 and not ft's own.
pub(super) fn visible(name: &str) -> bool {
    !name.starts_with(RESERVED_PREFIX)
}

/// Files of at least this many bytes are opened with their kept digest and a second handle
/// ([`Source::kept`]), for the server to send them from the page cache: those that have
/// one ([`kept::KEPT_FROM`]).
const SEND_FROM_CACHE: u64 = kept::KEPT_FROM;

/// Refuses a partial's key that is not 1 to 64 hex digits: the key becomes part of a file
/// name (ft's keys are digests), so no key from any caller can name another path.
fn check_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > 64 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::Protocol(format!(
            "a resumable upload's key must be 1 to 64 hex digits, not {}",
            escape(key)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::io::{Read, Write};

    use super::*;
    use crate::store::test_util::name;

    /// Directories made in a listing's order, out of it, below missing ones, and where a
    /// file or a symbolic link is in the way: each made where its name says (never through
    /// the link), and each that exists reported as such.
    #[cfg(unix)]
    #[test]
    fn directories_of_a_tree_are_made_in_place_whatever_the_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("f"), b"x").expect("file");
        std::os::unix::fs::symlink(outside.path(), dir.path().join("s")).expect("symlink");
        let store = DirStore::open(dir.path()).expect("open");
        let mut open = TreeDirs::default();
        let mut make = |path: &str| store.make_dir_in_tree(&name(path), &mut open);
        for path in ["a", "a/b", "a/b/c", "a/d", "e", "x/y/z", "a/b/c/g", "x/y/w"] {
            assert!(make(path).expect(path), "{path} is new");
        }
        assert!(!make("a/b").expect("again"), "a/b was there");
        assert!(
            !make("x").expect("made on the way"),
            "x was made on the way to x/y/z"
        );
        assert!(matches!(
            make("f/g"),
            Err(Error::AlreadyExists {
                why: Taken::NotADirectory,
                ..
            })
        ));
        assert!(matches!(
            make("s/t"),
            Err(Error::AlreadyExists {
                why: Taken::Symlink,
                ..
            })
        ));
        assert!(matches!(
            make("f"),
            Err(Error::AlreadyExists {
                why: Taken::NotADirectory,
                ..
            })
        ));
        store.settle_dirs().expect("settle");
        for path in ["a/b/c/g", "a/d", "e", "x/y/z", "x/y/w"] {
            assert!(dir.path().join(path).is_dir(), "{path}");
        }
        assert_eq!(fs::read_dir(outside.path()).expect("ls").count(), 0);
    }

    /// A directory moved out of the served tree right after an upload into it (within the
    /// second its handle is kept for the checks) does not receive the next upload of that
    /// directory: that one is published where its name says, in a directory made anew,
    /// whatever its size and way (in memory, a temporary file, a partial).
    #[test]
    fn a_directory_moved_away_receives_no_later_upload() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        fs::create_dir(dir.path().join("t")).expect("mkdir");
        let store = DirStore::open(dir.path()).expect("open");
        let big = vec![7u8; BUFFERED_MAX + 1];
        let mut first = store.create_file(&name("t/a"), false).expect("free");
        first.write_all(b"a").expect("write");
        first.commit().expect("commit");
        fs::rename(dir.path().join("t"), outside.path().join("t")).expect("move away");
        let mut small = store.create_file(&name("t/b"), false).expect("free");
        small.write_all(b"b").expect("write");
        small.commit().expect("commit");
        let mut large = store.create_file(&name("t/c"), false).expect("free");
        large.write_all(&big).expect("write");
        large.commit().expect("commit");
        let (mut partial, _) = store
            .open_partial("0a1b", &name("t/d"), false)
            .expect("partial");
        partial.write_all(&big).expect("write");
        partial.commit().expect("commit");
        let mut moved: Vec<_> = fs::read_dir(outside.path().join("t"))
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        moved.sort();
        assert_eq!(moved, ["a"], "written into the directory moved away");
        assert_eq!(fs::read(dir.path().join("t/b")).expect("b"), b"b");
        assert!(fs::read(dir.path().join("t/c")).expect("c") == big);
        assert!(fs::read(dir.path().join("t/d")).expect("d") == big);
        // Read just before the move, then after it: never from where it went.
        assert!(store.open(&name("t/b"), 0).is_ok());
        fs::rename(dir.path().join("t"), outside.path().join("t2")).expect("move again");
        assert!(matches!(
            store.open(&name("t/b"), 0),
            Err(Error::NotFound { .. })
        ));
    }

    /// A name whose directories its own upload made is taken at once: the directory found
    /// missing by that upload's check is not taken as still missing (it was, for a second,
    /// so a second upload was let through its check and refused only after its body).
    /// The same after a directory made by a `MakeDir` or a tree's listing.
    #[test]
    fn a_directory_made_is_no_longer_taken_as_missing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = DirStore::open(dir.path()).expect("open");
        let mut first = store.create_file(&name("n/sub/a"), false).expect("free");
        first.write_all(b"hi\n").expect("write");
        first.commit().expect("published, n/sub made");
        assert!(matches!(
            store.create_file(&name("n/sub/a"), false),
            Err(Error::AlreadyExists {
                why: Taken::Exists,
                ..
            })
        ));
        // Found missing again, then made by a MakeDir, then by a tree's listing.
        for (path, file) in [("m/d", "m/d/f"), ("t/u", "t/u/f")] {
            let mut upload = store.create_file(&name(file), false).expect("free");
            if path == "m/d" {
                assert!(Store::make_dir(&store, &name(path)).expect("made"));
            } else {
                let mut open = TreeDirs::default();
                assert!(store.make_dir_in_tree(&name("t"), &mut open).expect("made"));
                assert!(
                    store
                        .make_dir_in_tree(&name(path), &mut open)
                        .expect("made")
                );
            }
            fs::write(dir.path().join(file), b"there").expect("write");
            assert!(
                matches!(
                    store.create_file(&name(file), false),
                    Err(Error::AlreadyExists { .. })
                ),
                "{file}"
            );
            upload.write_all(b"x").expect("write");
            assert!(upload.commit().is_err(), "{file} is taken");
        }
    }

    #[test]
    fn racing_commits_have_one_winner() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = DirStore::open(dir.path()).expect("open");
        let mut first = store.create_file(&name("x"), false).expect("create");
        let mut second = store.create_file(&name("x"), false).expect("create");
        first.write_all(b"first").expect("write");
        second.write_all(b"second").expect("write");
        second.commit().expect("second wins");
        assert!(matches!(first.commit(), Err(Error::AlreadyExists { .. })));
        assert_eq!(fs::read(dir.path().join("x")).expect("read"), b"second");
        assert_eq!(fs::read_dir(dir.path()).expect("ls").count(), 1);
    }

    /// Without `replace` an existing name is refused before any data; with it (the client's
    /// `--overwrite`) a regular file is replaced whole, and anything else is refused.
    #[test]
    fn existing_names_are_refused_and_untouched() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("a"), b"keep").expect("write");
        fs::create_dir(dir.path().join("sub")).expect("mkdir");
        let store = DirStore::open(dir.path()).expect("open");
        assert!(matches!(
            store.create_file(&name("a"), false),
            Err(Error::AlreadyExists { .. })
        ));
        assert!(matches!(
            store.create_file(&name("sub"), true),
            Err(Error::AlreadyExists {
                why: Taken::Directory,
                ..
            })
        ));
        let mut up = store
            .create_file(&name("a"), true)
            .expect("replace allowed");
        up.write_all(b"new").expect("write");
        up.commit().expect("commit");
        assert_eq!(fs::read(dir.path().join("a")).expect("read"), b"new");
    }

    #[cfg(unix)]
    #[test]
    fn listing_and_open_skip_symlinks_and_specials() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        fs::write(outside.path().join("secret"), b"s").expect("write");
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("link"))
            .expect("symlink");
        std::os::unix::fs::symlink(outside.path(), dir.path().join("dirlink")).expect("symlink");
        fs::create_dir(dir.path().join("sub")).expect("mkdir");
        fs::write(dir.path().join("file"), b"123").expect("write");
        let store = DirStore::open(dir.path()).expect("open");
        let mut entries: Vec<_> = store
            .list(None, false)
            .expect("list")
            .map(|e| e.expect("entry"))
            .map(|e| (e.name, e.kind, e.size))
            .collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            entries,
            vec![
                ("file".to_owned(), EntryKind::File, 3),
                ("sub".to_owned(), EntryKind::Dir, 0)
            ]
        );
        assert!(matches!(
            store.open(&name("link"), 0),
            Err(Error::NotFound {
                why: Missing::Symlink,
                ..
            })
        ));
        assert!(matches!(
            store.open(&name("sub"), 0),
            Err(Error::NotFound { .. })
        ));
        assert!(matches!(
            store.create(&name("link"), 1),
            Err(Error::AlreadyExists { .. })
        ));
        assert_eq!(fs::read(outside.path().join("secret")).expect("read"), b"s");
    }

    /// A resumed download reads from its offset; past the end there is nothing to read.
    #[test]
    fn open_at_an_offset_reads_from_there() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("f"), b"0123456789").expect("write");
        let store = DirStore::open(dir.path()).expect("open");
        for (offset, rest) in [
            (0, &b"0123456789"[..]),
            (4, b"456789"),
            (10, b""),
            (20, b""),
        ] {
            let mut source = store.open(&name("f"), offset).expect("open");
            let mut got = Vec::new();
            source.reader.read_to_end(&mut got).expect("read");
            assert_eq!((source.size, &got[..]), (10, rest), "offset {offset}");
        }
    }

    #[test]
    fn missing_root_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = DirStore::open(dir.path().join("nope")).expect_err("missing");
        assert!(err.to_string().contains("does not exist"), "{err}");
        fs::write(dir.path().join("f"), b"").expect("write");
        let err = DirStore::open(dir.path().join("f")).expect_err("a file");
        assert!(err.to_string().contains("not a directory"), "{err}");
    }

    /// Once a name is published, the partials that interrupted uploads of it kept can never
    /// be finished (nothing replaces the name): they go, and another name's stays.
    #[test]
    fn publishing_a_name_removes_the_partials_kept_for_it() {
        use std::io::Write;
        let dir = tempfile::tempdir().expect("tempdir");
        let store = DirStore::open(dir.path()).expect("open");
        let interrupted = |file: &str, key: &str| {
            let mut cut = store
                .create_resumable(&name(file), 10, key)
                .expect("resumable")
                .upload;
            cut.write_all(b"hello").expect("write");
            cut.keep();
        };
        interrupted("f", "aaaa");
        interrupted("g", "cccc");
        let parts = || {
            let mut found: Vec<String> = fs::read_dir(dir.path())
                .expect("ls")
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(".ft-part-"))
                .collect();
            found.sort();
            found
        };
        assert_eq!(parts(), [".ft-part-aaaa", ".ft-part-cccc"]);
        // The file changed (another key): its upload starts over in a partial of its own.
        let mut again = store
            .create_resumable(&name("f"), 10, "bbbb")
            .expect("resumable");
        assert_eq!(again.offset, 0);
        again.upload.write_all(b"0123456789").expect("write");
        again.upload.commit().expect("commit");
        assert_eq!(fs::read(dir.path().join("f")).expect("read"), b"0123456789");
        assert_eq!(parts(), [".ft-part-cccc"]);
        // Published by an upload that keeps no partial (`put --no-resume`, a pipelined
        // one), the same: the partial kept for it goes.
        let mut whole = store.create(&name("g"), 3).expect("create");
        whole.write_all(b"new").expect("write");
        whole.commit().expect("commit");
        assert_eq!(parts(), Vec::<String>::new());
    }

    /// A partial's key is part of a file name: anything but hex digits is refused.
    #[test]
    fn partial_keys_are_hex_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = DirStore::open(dir.path()).expect("open");
        for key in ["", "../x", "ab/cd", ".ft-tmp-1", "zz", &"a".repeat(65)] {
            let refused = store.create_resumable(&name("f"), 10, key);
            assert!(
                matches!(refused, Err(Error::Protocol(_))),
                "{key:?}: {refused:?}"
            );
        }
        assert!(store.create_resumable(&name("f"), 10, "0123abcdef").is_ok());
        assert!(dir.path().read_dir().expect("ls").all(|e| {
            let name = e.expect("entry").file_name();
            name.to_string_lossy().starts_with(".ft-part-")
        }));
    }
}
