//! The served directory: which names are allowed, listing, opening for read, and uploads
//! that become visible only when complete, verified and durable.
//!
//! [`Store`] is the interface the server uses, so another backend can replace [`DirStore`];
//! the client uses [`DirStore`] directly for its own directory, with the same promises.

use std::collections::HashSet;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{Error, Missing, Result, Taken};
use crate::protocol::{Entry, EntryKind, MAX_NAME};
use crate::sys;
use crate::text::escape;

/// Names starting with this are ft's own (temporary files); never listed, served or accepted.
pub const RESERVED_PREFIX: &str = ".ft-";

/// Prefix of temporary upload files.
pub const TEMP_PREFIX: &str = ".ft-tmp-";

/// Prefix of partial files kept for a resumable transfer.
pub const PART_PREFIX: &str = ".ft-part-";

/// A [`DirStore`] upload of at most this many bytes is held in memory until it is committed
/// (a larger one goes to a temporary file as it arrives). A group of small files can then be
/// created on disk by several threads at once ([`Store::commit_group`]).
pub const BUFFERED_MAX: usize = 256 * 1024;

/// Receivers commit a group of uploads once it holds this many bytes, which bounds the
/// memory a connection's waiting small uploads take.
pub const GROUP_BYTES: u64 = 1024 * 1024;

/// Most threads that write, sync and publish the files of one group at once. Creating files
/// is mostly kernel work and waiting for the disk; on Linux, where new files are created
/// unnamed without locking the directory, several threads move about twice as many small
/// files per second as one (`bench/create_files.py`, `bench/run.py`'s small-file workload).
const COMMIT_THREADS: usize = 4;

/// Most helper threads (beyond the committing connection's own) that all the group commits
/// of one store use at once, so that many connections committing together neither start
/// hundreds of threads nor hold several open files each.
const COMMIT_HELPERS: usize = 8;

/// Checks that `name` is one plain path component that is safe on every platform.
///
/// # Errors
/// [`Error::InvalidName`] saying which rule the name broke.
///
/// # Examples
/// ```
/// use ftlib::store::validate_name;
/// assert!(validate_name("notes.pdf").is_ok());
/// assert!(validate_name("../etc/passwd").is_err());
/// ```
pub fn validate_name(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        Some("the name is empty")
    } else if name.len() > MAX_NAME {
        Some("longer than 255 bytes")
    } else if name == "." || name == ".." {
        Some("refers to a directory")
    } else if name.contains(['/', '\\']) {
        Some("contains a path separator")
    } else if name.contains(':') {
        Some("contains ':', a drive or stream separator on Windows")
    } else if name.chars().any(char::is_control) {
        Some("contains a control character")
    } else if name.starts_with(RESERVED_PREFIX) {
        Some("names starting with .ft- are reserved for ft's temporary files")
    } else if !matches!(
        Path::new(name).components().collect::<Vec<_>>()[..],
        [Component::Normal(c)] if c == name
    ) {
        Some("not one plain path component")
    } else if cfg!(windows) {
        windows_reason(name)
    } else {
        None
    };
    match reason {
        None => Ok(()),
        Some(reason) => Err(Error::InvalidName {
            name: name.to_owned(),
            reason,
        }),
    }
}

/// Names Windows maps to devices or silently alters.
fn windows_reason(name: &str) -> Option<&'static str> {
    const DEVICES: &[&str] = &[
        "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
        "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
    ];
    let stem = name.split('.').next().unwrap_or(name).trim_end();
    if DEVICES.iter().any(|d| d.eq_ignore_ascii_case(stem)) {
        Some("a reserved device name on Windows")
    } else if name.ends_with(['.', ' ']) || name.contains(['<', '>', '"', '|', '?', '*']) {
        Some("not a valid file name on Windows")
    } else {
        None
    }
}

/// A readable, seekable source.
pub trait ReadSeek: Read + Seek + Send {}

impl<T: Read + Seek + Send> ReadSeek for T {}

/// A file opened for download.
pub struct Source {
    /// The file's bytes.
    pub reader: Box<dyn ReadSeek>,
    /// Its size when opened.
    pub size: u64,
    /// Its modification time, seconds since the Unix epoch.
    pub modified: i64,
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Source")
            .field("size", &self.size)
            .field("modified", &self.modified)
            .finish_non_exhaustive()
    }
}

/// An upload in progress. Dropping it without [`Upload::commit`] discards everything written.
pub trait Upload: Write + Send {
    /// Makes the data durable and publishes it under its final name, never replacing an
    /// existing file (unless created to replace). Call only after the data was verified.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] when the name was taken meanwhile; [`Error::Io`].
    fn commit(self: Box<Self>) -> Result<()>;

    /// Keeps what was written, hidden, for a later resume (resumable uploads only; others
    /// are discarded).
    fn keep(self: Box<Self>) {}

    /// Makes the written data durable (the first step of [`Store::commit_group`]).
    ///
    /// # Errors
    /// [`Error::Io`].
    fn sync(&mut self) -> Result<()>;

    /// Closes the file handle while the upload waits for its group commit, so waiting
    /// uploads hold no descriptors; nothing more may be written.
    fn release(&mut self) {}

    /// Publishes without syncing the directory, which the caller does
    /// ([`Store::commit_group`]). The data should be durable already ([`Upload::sync`]); a
    /// store may sync what is not.
    ///
    /// # Errors
    /// As [`Upload::commit`].
    fn publish(self: Box<Self>) -> Result<()>;

    /// The name the upload is published under, if the store lets uploads of different
    /// names be committed at the same time (`None`: committed one at a time, in order).
    fn name(&self) -> Option<&str> {
        None
    }
}

/// A resumable upload: the upload, the bytes it already holds, and a reader over them.
pub struct Resumable {
    /// Where the rest goes.
    pub upload: Box<dyn Upload>,
    /// Bytes already held from an earlier attempt.
    pub offset: u64,
    /// Those bytes, to hash them.
    pub existing: Box<dyn Read + Send>,
}

impl fmt::Debug for Resumable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resumable")
            .field("offset", &self.offset)
            .finish_non_exhaustive()
    }
}

/// Where served files live.
pub trait Store: Send + Sync + fmt::Debug {
    /// The entries visible to clients, in no particular order, streamed.
    ///
    /// # Errors
    /// [`Error::Io`] when the directory cannot be read.
    fn list(&self) -> Result<Box<dyn Iterator<Item = Result<Entry>> + Send + '_>>;

    /// Opens a file for download.
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::NotFound`], [`Error::Io`].
    fn open(&self, name: &str) -> Result<Source>;

    /// Checks, before any data is sent, that `name` is valid and free.
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::AlreadyExists`], [`Error::Io`].
    fn check_free(&self, name: &str) -> Result<()>;

    /// Starts an upload of `name`, expected to be `size` bytes.
    ///
    /// # Errors
    /// As [`Store::check_free`].
    fn create(&self, name: &str, size: u64) -> Result<Box<dyn Upload>>;

    /// Starts or continues a resumable upload of `name`; `key` identifies the source (same
    /// key, same bytes), so a partial is only ever continued with the file it came from.
    ///
    /// # Errors
    /// As [`Store::create`], and [`Error::AlreadyExists`] while another upload uses `key`.
    fn create_resumable(&self, name: &str, size: u64, key: &str) -> Result<Resumable>;

    /// Commits several verified uploads at once, with the same promise as
    /// [`Upload::commit`] for each but fewer waits for the disk: all data made durable,
    /// each published, then the directory made durable once. One result per upload, in order.
    fn commit_group(&self, uploads: Vec<Box<dyn Upload>>) -> Vec<Result<()>> {
        uploads.into_iter().map(Upload::commit).collect()
    }

    /// Removes temporary files whose creating process is gone (a crash or a kill), and
    /// partials beyond the age and size limits; returns how many temporary files went.
    ///
    /// # Errors
    /// [`Error::Io`] when the directory cannot be read.
    fn cleanup(&self) -> Result<usize>;
}

/// How long and how much a [`DirStore`] keeps of partials left for a resume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartialLimits {
    /// Partials untouched for longer are removed.
    pub max_age: Duration,
    /// The oldest partials are removed while all of them together are larger.
    pub max_bytes: u64,
}

impl Default for PartialLimits {
    fn default() -> PartialLimits {
        PartialLimits {
            max_age: Duration::from_secs(24 * 3600),
            max_bytes: 16 * 1024 * 1024 * 1024,
        }
    }
}

/// A [`Store`] on a local directory.
#[derive(Debug)]
pub struct DirStore {
    root: PathBuf,
    temps: Arc<Temps>,
    partials: Arc<Partials>,
}

/// Makes the hidden files uploads are written to.
#[derive(Debug)]
struct Temps {
    root: PathBuf,
    counter: AtomicU64,
    /// This process, named in temporary files so cleanup can tell whose they are.
    pid: u32,
    /// Whether to try unnamed files; cleared when the file system refuses them.
    unnamed: AtomicBool,
    /// Commit helper threads running now (at most [`COMMIT_HELPERS`]).
    helpers: AtomicUsize,
}

impl Temps {
    /// A new hidden temporary file `.ft-tmp-PID-N-NANOS` in the directory.
    fn create_named(&self) -> io::Result<(PathBuf, File)> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let mut attempt = 0;
        loop {
            let n = self.counter.fetch_add(1, Ordering::Relaxed);
            let tmp = self
                .root
                .join(format!("{TEMP_PREFIX}{}-{n}-{nanos:x}", self.pid));
            match sys::create_new(&tmp) {
                Ok(file) => return Ok((tmp, file)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 16 => {
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// A new unnamed file in the directory, where the system has them.
    fn create_unnamed(&self) -> io::Result<Option<File>> {
        if !self.unnamed.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let file = sys::create_unnamed(&self.root)?;
        if file.is_none() {
            self.unnamed.store(false, Ordering::Relaxed);
        }
        Ok(file)
    }
}

/// Partials in use (never pruned, never opened twice) and the limits on the rest.
#[derive(Debug, Default)]
struct Partials {
    active: Mutex<HashSet<PathBuf>>,
    limits: Mutex<PartialLimits>,
}

impl Partials {
    fn active(&self) -> std::sync::MutexGuard<'_, HashSet<PathBuf>> {
        self.active.lock().unwrap_or_else(|p| p.into_inner())
    }
}

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
        let meta = fs::metadata(&root).map_err(|e| {
            let what = if e.kind() == io::ErrorKind::NotFound {
                "does not exist"
            } else {
                "cannot be read"
            };
            Error::io(format!("directory {} {what}", root.display()), e)
        })?;
        if !meta.is_dir() {
            return Err(Error::io(
                format!("{} is not a directory", root.display()),
                io::Error::from(io::ErrorKind::NotADirectory),
            ));
        }
        Ok(DirStore {
            temps: Arc::new(Temps {
                root: root.clone(),
                counter: AtomicU64::new(0),
                pid: std::process::id(),
                unnamed: AtomicBool::new(sys::unnamed_files_possible()),
                helpers: AtomicUsize::new(0),
            }),
            root,
            partials: Arc::default(),
        })
    }

    /// Sets how long and how much is kept of abandoned partials.
    pub fn set_partial_limits(&self, limits: PartialLimits) {
        *self
            .partials
            .limits
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = limits;
    }

    /// Opens (creating if needed) the partial `key` for `name`, for a resumable transfer:
    /// the upload, positioned after the bytes it already holds, and how many those are.
    /// With `replace`, publishing may replace an existing `name` (the client's
    /// `--overwrite`). A partial in use by another transfer is refused.
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::AlreadyExists`], [`Error::Io`].
    pub fn open_partial(&self, key: &str, name: &str, replace: bool) -> Result<(DirUpload, u64)> {
        self.check_target(name, replace)?;
        let path = self.root.join(format!("{PART_PREFIX}{key}"));
        if !self.partials.active().insert(path.clone()) {
            return Err(Error::AlreadyExists {
                name: name.to_owned(),
                why: Taken::InUse,
            });
        }
        let lock = PartialLock {
            partials: Arc::clone(&self.partials),
            path: path.clone(),
        };
        let context = || format!("opening the partial file of {}", escape(name));
        let mut file = sys::open_partial(&path).map_err(|e| Error::io(context(), e))?;
        let offset = file
            .seek(SeekFrom::End(0))
            .map_err(|e| Error::io(context(), e))?;
        Ok((
            DirUpload {
                data: Data::Named(file),
                dst: self.root.join(name),
                temps: Arc::clone(&self.temps),
                tmp: path,
                name: name.to_owned(),
                replace,
                lock: Some(lock),
            },
            offset,
        ))
    }

    /// Removes partials untouched for longer than the limit, then the oldest ones while
    /// all together exceed the size limit; partials in use are left alone.
    fn prune_partials(&self) {
        prune_partials(&self.root, &self.partials);
    }

    fn check_target(&self, name: &str, replace: bool) -> Result<()> {
        if replace {
            validate_name(name)?;
            if fs::symlink_metadata(self.root.join(name)).is_ok_and(|m| !m.is_file()) {
                return Err(Error::AlreadyExists {
                    name: name.to_owned(),
                    why: Taken::NotAFile,
                });
            }
            Ok(())
        } else {
            self.check_free(name)
        }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Refuses early when the file system has less free space than `size`.
    ///
    /// # Errors
    /// [`Error::NoSpace`].
    pub fn check_space(&self, name: &str, size: u64) -> Result<()> {
        match sys::available_space(&self.root) {
            Some(available) if available < size => Err(Error::NoSpace {
                name: name.to_owned(),
                needed: size,
                available,
            }),
            _ => Ok(()),
        }
    }

    /// Starts writing `name`; with `replace`, publishing replaces an existing file atomically
    /// (the client's `--overwrite`), otherwise it never does. Nothing is created on disk
    /// until more than [`BUFFERED_MAX`] bytes are written or the upload is synced.
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::AlreadyExists`] (without `replace`), [`Error::Io`]
    /// when the name cannot be checked.
    pub fn create_file(&self, name: &str, replace: bool) -> Result<DirUpload> {
        self.check_target(name, replace)?;
        Ok(self.new_upload(name, replace, 0))
    }

    /// The upload of `name`, held in memory for now, with room reserved for `expected`
    /// bytes (at most [`BUFFERED_MAX`]); the name was checked by the caller.
    fn new_upload(&self, name: &str, replace: bool, expected: usize) -> DirUpload {
        DirUpload {
            data: Data::Memory(Vec::with_capacity(expected.min(BUFFERED_MAX))),
            dst: self.root.join(name),
            temps: Arc::clone(&self.temps),
            tmp: PathBuf::new(),
            name: name.to_owned(),
            replace,
            lock: None,
        }
    }
}

impl Store for DirStore {
    fn list(&self) -> Result<Box<dyn Iterator<Item = Result<Entry>> + Send + '_>> {
        let dir = fs::read_dir(&self.root).map_err(|e| Error::io("reading the directory", e))?;
        Ok(Box::new(
            dir.filter_map(|item| list_entry(item).transpose()),
        ))
    }

    fn open(&self, name: &str) -> Result<Source> {
        validate_name(name)?;
        let path = self.root.join(name);
        let file = sys::open_read_nofollow(&path).map_err(|e| {
            if fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
                Error::NotFound {
                    name: name.to_owned(),
                    why: Missing::Symlink,
                }
            } else if e.kind() == io::ErrorKind::NotFound {
                Error::NotFound {
                    name: name.to_owned(),
                    why: Missing::Absent,
                }
            } else {
                Error::io(format!("opening {}", escape(name)), e)
            }
        })?;
        let meta = file
            .metadata()
            .map_err(|e| Error::io(format!("reading {}", escape(name)), e))?;
        if !meta.is_file() {
            return Err(Error::NotFound {
                name: name.to_owned(),
                why: Missing::NotRegular,
            });
        }
        Ok(Source {
            reader: Box::new(file),
            size: meta.len(),
            modified: unix_seconds(&meta),
        })
    }

    fn check_free(&self, name: &str) -> Result<()> {
        validate_name(name)?;
        match fs::symlink_metadata(self.root.join(name)) {
            Ok(_) => Err(Error::AlreadyExists {
                name: name.to_owned(),
                why: Taken::Exists,
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(format!("checking {}", escape(name)), e)),
        }
    }

    fn create(&self, name: &str, size: u64) -> Result<Box<dyn Upload>> {
        self.check_free(name)?;
        self.check_space(name, size)?;
        let expected = usize::try_from(size).unwrap_or(usize::MAX);
        let mut upload = self.new_upload(name, false, expected);
        if expected > BUFFERED_MAX {
            // Too big for memory: create its file now, so a failure shows before the body.
            upload.spill().map_err(|e| {
                Error::io(format!("creating a temporary file for {}", escape(name)), e)
            })?;
        }
        Ok(Box::new(upload))
    }

    fn create_resumable(&self, name: &str, size: u64, key: &str) -> Result<Resumable> {
        self.check_free(name)?;
        let (mut upload, mut offset) = self.open_partial(key, name, false)?;
        if offset > size {
            // Cannot be a prefix of this file: start over.
            upload.restart()?;
            offset = 0;
        }
        if let Err(e) = self.check_space(name, size - offset) {
            // Still resumable once there is room.
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

    fn commit_group(&self, uploads: Vec<Box<dyn Upload>>) -> Vec<Result<()>> {
        let published = sync_and_publish(uploads, &self.temps.helpers);
        sync_dir_after(published, &self.root)
    }

    fn cleanup(&self) -> Result<usize> {
        self.prune_partials();
        let dir = fs::read_dir(&self.root).map_err(|e| Error::io("reading the directory", e))?;
        let mut removed = 0;
        for item in dir.flatten() {
            let orphan = item.file_name().to_str().is_some_and(is_orphan_temp);
            let is_dir = item.file_type().is_ok_and(|t| t.is_dir());
            if orphan && !is_dir && fs::remove_file(item.path()).is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// A temporary file whose creator is gone: named `.ft-tmp-PID-…` with PID neither this
/// process nor a live one, or not of that form at all.
fn is_orphan_temp(name: &str) -> bool {
    let Some(rest) = name.strip_prefix(TEMP_PREFIX) else {
        return false;
    };
    match rest
        .split('-')
        .next()
        .and_then(|pid| pid.parse::<u32>().ok())
    {
        Some(pid) => pid != std::process::id() && !sys::process_alive(pid),
        None => true,
    }
}

/// Turns one directory item into a visible entry, or `None` for what clients never see:
/// ft's own files, symlinks, special files, names that are not UTF-8, vanished entries.
fn list_entry(item: io::Result<fs::DirEntry>) -> Result<Option<Entry>> {
    let item = item.map_err(|e| Error::io("reading the directory", e))?;
    let Ok(name) = item.file_name().into_string() else {
        return Ok(None);
    };
    if name.starts_with(RESERVED_PREFIX) {
        return Ok(None);
    }
    // DirEntry::metadata does not follow symlinks.
    let meta = match item.metadata() {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("reading {}", escape(&name)), e)),
    };
    let kind = if meta.is_file() {
        EntryKind::File
    } else if meta.is_dir() {
        EntryKind::Dir
    } else {
        return Ok(None);
    };
    Ok(Some(Entry {
        name,
        kind,
        size: if kind == EntryKind::File {
            meta.len()
        } else {
            0
        },
        modified: unix_seconds(&meta),
    }))
}

fn unix_seconds(meta: &fs::Metadata) -> i64 {
    match meta.modified().map(|t| t.duration_since(UNIX_EPOCH)) {
        Ok(Ok(after)) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Ok(Err(before)) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s),
        Err(_) => 0,
    }
}

/// A received upload waiting for its commit: the verified upload and its size, or why it
/// failed.
pub type Outcome = Result<(Box<dyn Upload>, u64)>;

/// Group-commits the received uploads among `outcomes` (each a verified upload and its
/// size, or why it failed) and returns every outcome, in order, with its size on success.
pub fn commit_outcomes<T>(store: &dyn Store, outcomes: Vec<(T, Outcome)>) -> Vec<(T, Result<u64>)> {
    let mut uploads = Vec::new();
    let sized: Vec<_> = outcomes
        .into_iter()
        .map(|(id, outcome)| {
            let size = outcome.map(|(upload, size)| {
                uploads.push(upload);
                size
            });
            (id, size)
        })
        .collect();
    let mut committed = store.commit_group(uploads).into_iter();
    sized
        .into_iter()
        .map(|(id, size)| {
            let result = size.and_then(|size| {
                committed
                    .next()
                    .unwrap_or_else(|| Err(Error::Protocol("group commit lost a result".into())))
                    .map(|()| size)
            });
            (id, result)
        })
        .collect()
}

/// Syncs and publishes every upload, several at a time: each upload of a name not seen
/// earlier in the group goes to one of up to [`COMMIT_THREADS`] threads (this one and
/// helpers, as many as `helpers` has room for); a second upload of the same name (compared
/// without case, for case-insensitive file systems) or one without a name waits and is
/// committed after them, in order, so the first upload of a name is the one that wins it.
/// One result per upload, in order.
fn sync_and_publish(uploads: Vec<Box<dyn Upload>>, helpers: &AtomicUsize) -> Vec<Result<()>> {
    let mut seen = HashSet::new();
    let at_once: Vec<bool> = uploads
        .iter()
        .map(|u| {
            u.name()
                .is_some_and(|name| seen.insert(name.to_lowercase()))
        })
        .collect();
    let parallel = at_once.iter().filter(|&&b| b).count();
    let mut slots: Vec<Option<Box<dyn Upload>>> = uploads.into_iter().map(Some).collect();
    let mut results: Vec<Option<Result<()>>> = slots.iter().map(|_| None).collect();
    let commit = |slot: &mut Option<Box<dyn Upload>>, result: &mut Option<Result<()>>| {
        if let Some(mut upload) = slot.take() {
            *result = Some(upload.sync().and_then(|()| upload.publish()));
        }
    };
    {
        let work = Mutex::new(
            slots
                .iter_mut()
                .zip(results.iter_mut())
                .zip(&at_once)
                .filter(|(_, at_once)| **at_once)
                .map(|(pair, _)| pair),
        );
        let next = || work.lock().unwrap_or_else(|p| p.into_inner()).next();
        let run = || {
            while let Some((slot, result)) = next() {
                commit(slot, result);
            }
        };
        let lent = Helpers::borrow(helpers, COMMIT_THREADS.min(parallel).saturating_sub(1));
        std::thread::scope(|scope| {
            for _ in 0..lent.count {
                // Without another thread the work is only slower, never undone.
                let _ = std::thread::Builder::new()
                    .name("ft commit".into())
                    .stack_size(256 * 1024)
                    .spawn_scoped(scope, run);
            }
            run();
        });
    }
    for (slot, result) in slots.iter_mut().zip(results.iter_mut()) {
        commit(slot, result);
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(Error::Protocol("group commit lost an upload".into()))))
        .collect()
}

/// Helper threads borrowed from a store's budget, returned when dropped.
struct Helpers<'a> {
    budget: &'a AtomicUsize,
    count: usize,
}

impl<'a> Helpers<'a> {
    /// Up to `want` helpers, as many as the budget ([`COMMIT_HELPERS`]) has room for.
    fn borrow(budget: &'a AtomicUsize, want: usize) -> Helpers<'a> {
        let mut count = 0;
        let _ = budget.fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
            count = want.min(COMMIT_HELPERS.saturating_sub(used));
            Some(used + count)
        });
        Helpers { budget, count }
    }
}

impl Drop for Helpers<'_> {
    fn drop(&mut self) {
        self.budget.fetch_sub(self.count, Ordering::AcqRel);
    }
}

/// Ends a group commit: one directory sync for everything published. If it fails, those
/// files are published but not known durable, so each reports the failure.
fn sync_dir_after(published: Vec<Result<()>>, dir: &Path) -> Vec<Result<()>> {
    if !published.iter().any(Result::is_ok) {
        return published;
    }
    let Err(e) = sys::sync_dir(dir) else {
        return published;
    };
    let failure = || {
        Error::io(
            "syncing the directory",
            io::Error::new(e.kind(), e.to_string()),
        )
    };
    published
        .into_iter()
        .map(|r| r.and_then(|()| Err(failure())))
        .collect()
}

fn prune_partials(root: &Path, partials: &Partials) {
    let limits = *partials.limits.lock().unwrap_or_else(|p| p.into_inner());
    let Ok(dir) = fs::read_dir(root) else {
        return;
    };
    let now = SystemTime::now();
    let mut kept = Vec::new();
    for item in dir.flatten() {
        let is_partial = item
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(PART_PREFIX));
        let Ok(meta) = item.metadata() else {
            continue;
        };
        if !is_partial || !meta.is_file() || partials.active().contains(&item.path()) {
            continue;
        }
        let age = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .unwrap_or_default();
        if age > limits.max_age {
            let _ = fs::remove_file(item.path());
        } else {
            kept.push((age, meta.len(), item.path()));
        }
    }
    // Oldest first.
    kept.sort_by_key(|k| std::cmp::Reverse(k.0));
    let mut total: u64 = kept.iter().map(|k| k.1).sum();
    for (_, len, path) in kept {
        if total <= limits.max_bytes {
            break;
        }
        if fs::remove_file(path).is_ok() {
            total -= len;
        }
    }
}

/// Marks a partial as in use until dropped.
#[derive(Debug)]
struct PartialLock {
    partials: Arc<Partials>,
    path: PathBuf,
}

impl Drop for PartialLock {
    fn drop(&mut self) {
        self.partials.active().remove(&self.path);
    }
}

/// Where an upload's bytes are.
#[derive(Debug)]
enum Data {
    /// Held in memory (a small upload) until [`DirUpload::sync`] writes them to disk.
    Memory(Vec<u8>),
    /// In the named temporary (or partial) file at `tmp`, open.
    Named(File),
    /// In the file at `tmp`, closed while waiting ([`DirUpload::release`]); reopened to sync.
    Closed,
    /// In an unnamed file (`O_TMPFILE`), published by linking it; the bytes are still held
    /// in case the link fails for a reason other than the name being taken.
    Unnamed(File, Vec<u8>),
    /// Moving the bytes to disk failed part way: they can be neither synced nor published.
    Failed,
}

/// An upload into a [`DirStore`]: never visible under its name until committed. A small
/// upload is held in memory (at most [`BUFFERED_MAX`] bytes) and written at commit, into an
/// unnamed file where the system has them; a larger one goes to a hidden temporary file as
/// it arrives; a resumable one to its hidden partial file.
#[derive(Debug)]
pub struct DirUpload {
    data: Data,
    /// The named temporary or partial file, if one exists; empty otherwise.
    tmp: PathBuf,
    dst: PathBuf,
    temps: Arc<Temps>,
    name: String,
    replace: bool,
    /// Set for a partial of a resumable transfer.
    lock: Option<PartialLock>,
}

impl DirUpload {
    /// Syncs and publishes the file; see [`Upload::commit`].
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] when the name was taken meanwhile; [`Error::Io`].
    pub fn commit(mut self) -> Result<()> {
        self.sync()?;
        let temps = Arc::clone(&self.temps);
        let name = escape(&self.name);
        self.publish()?;
        sys::sync_dir(&temps.root)
            .map_err(|e| Error::io(format!("syncing the directory of {name}"), e))
    }

    /// Makes the written data durable: bytes held in memory are written to a new file
    /// first.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn sync(&mut self) -> Result<()> {
        // Bytes still in memory are written to disk here, so a full disk shows up here.
        let doing = match self.data {
            Data::Memory(_) => "writing",
            _ => "syncing",
        };
        let synced = match &mut self.data {
            Data::Memory(_) => self.materialize(),
            Data::Named(file) | Data::Unnamed(file, _) => file.sync_all(),
            // Released while waiting: reopen the same (hidden) file to sync it.
            Data::Closed => sys::open_write_existing(&self.tmp).and_then(|file| file.sync_all()),
            Data::Failed => Err(failed()),
        };
        synced.map_err(|e| Error::io(format!("{doing} {}", escape(&self.name)), e))
    }

    /// Writes the bytes held in memory to a new hidden file and syncs it. If that fails part
    /// way, the upload is failed for good.
    fn materialize(&mut self) -> io::Result<()> {
        let Some(held) = self.take_held() else {
            return Ok(());
        };
        // An unnamed file cannot replace a name atomically: replacing uploads get a name.
        if !self.replace {
            match self.temps.create_unnamed() {
                Ok(Some(mut file)) => {
                    file.write_all(&held)?;
                    file.sync_all()?;
                    self.data = Data::Unnamed(file, held);
                    return Ok(());
                }
                Ok(None) => {}
                // Out of descriptors or space: a named file would fail the same way.
                Err(e) if sys::is_exhaustion(&e) => {
                    self.data = Data::Memory(held);
                    return Err(e);
                }
                // Refused here in a way the probe did not foresee: use named files.
                Err(_) => self.temps.unnamed.store(false, Ordering::Relaxed),
            }
        }
        self.data = Data::Memory(held);
        self.spill()?;
        self.file()?.sync_all()
    }

    /// Moves the bytes held in memory to a new named temporary file. If the file cannot be
    /// created, they stay in memory; if they cannot all be written, the upload is failed.
    fn spill(&mut self) -> io::Result<()> {
        let (tmp, mut file) = self.temps.create_named()?;
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

    /// Closes the file handle until [`DirUpload::sync`]; see [`Upload::release`]. Bytes in
    /// memory or in an unnamed file (which has no name to reopen) stay as they are.
    pub fn release(&mut self) {
        if matches!(self.data, Data::Named(_)) {
            self.data = Data::Closed;
        }
    }

    /// Publishes the file under its name (never replacing, unless created to replace),
    /// without syncing the directory. The data must be durable already (bytes still in
    /// memory are synced first).
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] when the name was taken meanwhile; [`Error::Io`].
    pub fn publish(mut self) -> Result<()> {
        if matches!(self.data, Data::Memory(_)) {
            self.sync()?;
        }
        let name = escape(&self.name);
        let published = match std::mem::replace(&mut self.data, Data::Closed) {
            Data::Unnamed(file, held) => match sys::link_unnamed(&file, &self.dst) {
                Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                    // Linking through /proc is refused here: publish these bytes through a
                    // named temporary file instead, and stop making unnamed ones unless the
                    // system was only out of space or descriptors.
                    if !sys::is_exhaustion(&e) {
                        self.temps.unnamed.store(false, Ordering::Relaxed);
                    }
                    drop(file);
                    self.data = Data::Memory(held);
                    self.spill()
                        .and_then(|()| self.file()?.sync_all())
                        .and_then(|()| self.publish_named())
                }
                linked => linked,
            },
            Data::Named(file) => {
                // Closed before the name moves.
                drop(file);
                self.publish_named()
            }
            Data::Closed => self.publish_named(),
            Data::Memory(_) | Data::Failed => Err(failed()),
        };
        published.map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => Error::AlreadyExists {
                name: self.name.clone(),
                why: Taken::Raced,
            },
            _ => Error::io(format!("publishing {name}"), e),
        })?;
        // Published: from here on the name is the file's, whatever happens.
        self.tmp = PathBuf::new();
        Ok(())
    }

    /// Moves the named temporary file to the upload's name.
    fn publish_named(&self) -> io::Result<()> {
        if self.replace {
            sys::publish_replace(&self.tmp, &self.dst)
        } else {
            sys::publish_noreplace(&self.tmp, &self.dst)
        }
    }

    /// Keeps a partial for a later resume: synced, hidden, subject to the store's limits.
    /// An ordinary upload is discarded instead.
    pub fn keep(mut self) {
        let Some(lock) = self.lock.take() else {
            return;
        };
        if let Data::Named(file) = std::mem::replace(&mut self.data, Data::Closed) {
            let _ = file.sync_data();
        }
        self.tmp = PathBuf::new();
        let partials = Arc::clone(&lock.partials);
        drop(lock);
        prune_partials(&self.temps.root, &partials);
    }

    /// Empties the file to start over.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn restart(&mut self) -> Result<()> {
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
    pub fn existing(&self) -> Result<Box<dyn Read + Send>> {
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
            Data::Named(file) | Data::Unnamed(file, _) => Ok(file),
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

impl Upload for DirUpload {
    fn commit(self: Box<Self>) -> Result<()> {
        DirUpload::commit(*self)
    }

    fn sync(&mut self) -> Result<()> {
        DirUpload::sync(self)
    }

    fn release(&mut self) {
        DirUpload::release(self);
    }

    fn publish(self: Box<Self>) -> Result<()> {
        DirUpload::publish(*self)
    }

    fn keep(self: Box<Self>) {
        DirUpload::keep(*self);
    }

    fn name(&self) -> Option<&str> {
        Some(&self.name)
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
    use super::*;

    /// One row per bad name.
    #[test]
    fn invalid_names() {
        let long = "a".repeat(256);
        let rows: &[(&str, &str)] = &[
            ("", "empty"),
            (".", "directory"),
            ("..", "directory"),
            ("a/b", "separator"),
            ("/abs", "separator"),
            ("a/../b", "separator"),
            ("..\\x", "separator"),
            ("C:", "drive"),
            ("C:evil", "drive"),
            ("a\0b", "control"),
            ("a\nb", "control"),
            ("\x1b[31mred", "control"),
            ("tab\there", "control"),
            ("del\x7f", "control"),
            ("c1\u{85}", "control"),
            (".ft-tmp-1-2-3", "reserved"),
            (".ft-anything", "reserved"),
            (&long, "255"),
        ];
        for (name, reason) in rows {
            match validate_name(name) {
                Err(Error::InvalidName { reason: got, .. }) => {
                    assert!(got.contains(reason), "{name:?}: {got}");
                }
                other => panic!("{name:?} accepted: {other:?}"),
            }
        }
    }

    #[test]
    fn valid_names() {
        let longest = "é".repeat(127) + "a";
        for name in [
            "a",
            "notes.pdf",
            ".hidden",
            "with space",
            "ünïcødé",
            "...",
            &longest,
        ] {
            validate_name(name).unwrap_or_else(|e| panic!("{name:?} refused: {e}"));
        }
    }

    fn temp_files(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .expect("read_dir")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with(TEMP_PREFIX))
            .collect()
    }

    #[test]
    fn upload_is_invisible_until_commit_and_dropped_upload_leaves_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = DirStore::open(dir.path()).expect("open");
        // Past BUFFERED_MAX the bytes go to a hidden temporary file.
        let big = vec![7u8; BUFFERED_MAX + 1];
        let mut up = store.create_file("a.txt", false).expect("create");
        up.write_all(&big).expect("write");
        assert!(!dir.path().join("a.txt").exists());
        assert_eq!(store.list().expect("list").count(), 0, "temp file listed");
        assert_eq!(temp_files(dir.path()).len(), 1);
        drop(up);
        assert!(temp_files(dir.path()).is_empty());
        assert!(!dir.path().join("a.txt").exists());

        // A small upload is held in memory: nothing on disk until it is committed.
        let mut up = store.create_file("a.txt", false).expect("create");
        up.write_all(b"hello").expect("write");
        assert_eq!(fs::read_dir(dir.path()).expect("ls").count(), 0);
        drop(up);
        assert_eq!(fs::read_dir(dir.path()).expect("ls").count(), 0);

        let mut up = store.create_file("a.txt", false).expect("create");
        up.write_all(b"hello").expect("write");
        up.commit().expect("commit");
        assert_eq!(fs::read(dir.path().join("a.txt")).expect("read"), b"hello");
        assert!(temp_files(dir.path()).is_empty());
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
                let name = format!("f{i}-{replace}");
                let mut up = store.create_file(&name, replace).expect("create");
                for piece in data.chunks(100_000) {
                    up.write_all(piece).expect("write");
                }
                up.commit().expect("commit");
                assert_eq!(
                    fs::read(dir.path().join(&name)).expect("read"),
                    data,
                    "{name}"
                );
            }
        }
        assert!(temp_files(dir.path()).is_empty());
    }

    /// A group commits distinct names at once; of two uploads of one name, the first in the
    /// group wins and the second is refused, every time; replacing uploads end with the
    /// last one's bytes.
    #[test]
    fn group_commit_keeps_request_order_for_repeated_names() {
        for round in 0..20 {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = DirStore::open(dir.path()).expect("open");
            let mut uploads: Vec<Box<dyn Upload>> = Vec::new();
            let names = ["a", "b", "a", "c", "b", "d", "e", "f"];
            for (k, name) in names.iter().enumerate() {
                let mut up = store.create_file(name, false).expect("create");
                up.write_all(format!("{name}{k}").as_bytes())
                    .expect("write");
                uploads.push(Box::new(up));
            }
            let results = store.commit_group(uploads);
            for (k, (name, result)) in names.iter().zip(&results).enumerate() {
                let first = names.iter().position(|n| n == name) == Some(k);
                assert_eq!(
                    result.is_ok(),
                    first,
                    "round {round}: {name}#{k}: {result:?}"
                );
            }
            for (name, k) in [("a", 0), ("b", 1), ("c", 3), ("d", 5), ("e", 6), ("f", 7)] {
                let got = fs::read_to_string(dir.path().join(name)).expect("read");
                assert_eq!(got, format!("{name}{k}"), "round {round}");
            }

            // Replacing: every upload succeeds, and the last of a name is what stays, while
            // other names are committed alongside.
            let mut uploads: Vec<Box<dyn Upload>> = Vec::new();
            let names = ["a", "x", "a", "y", "A", "a", "z"];
            for (k, name) in names.iter().enumerate() {
                let mut up = store.create_file(name, true).expect("create");
                up.write_all(format!("new{k}").as_bytes()).expect("write");
                uploads.push(Box::new(up));
            }
            assert!(store.commit_group(uploads).iter().all(Result::is_ok));
            for (name, k) in [("a", 5), ("x", 1), ("y", 3), ("A", 4), ("z", 6)] {
                let got = fs::read_to_string(dir.path().join(name)).expect("read");
                assert_eq!(got, format!("new{k}"), "round {round}: {name}");
            }
            assert_eq!(fs::read_dir(dir.path()).expect("ls").count(), 10);
        }
    }

    /// Bytes written with `write` in uneven pieces, some uploads spilling to a file, are
    /// committed as a group exactly, through unnamed files and through named ones.
    #[test]
    fn group_commits_store_every_byte_with_and_without_unnamed_files() {
        for unnamed in [true, false] {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = DirStore::open(dir.path()).expect("open");
            if !unnamed {
                store.temps.unnamed.store(false, Ordering::Relaxed);
            }
            let sizes = [0, 1, 4096, BUFFERED_MAX, BUFFERED_MAX + 1, 5000, 70_000];
            let mut uploads: Vec<Box<dyn Upload>> = Vec::new();
            let mut expected = Vec::new();
            for (i, len) in sizes.into_iter().enumerate() {
                let data: Vec<u8> = (0..len).map(|k| (k * 7 + i * 13) as u8).collect();
                let mut up = store.create_file(&format!("f{i}"), false).expect("create");
                let mut rest = &data[..];
                let mut piece = 1;
                while !rest.is_empty() {
                    let n = up.write(&rest[..piece.min(rest.len())]).expect("write");
                    rest = &rest[n..];
                    piece = piece * 3 + 1;
                }
                up.release();
                uploads.push(Box::new(up));
                expected.push(data);
            }
            let results = store.commit_group(uploads);
            assert!(results.iter().all(Result::is_ok), "{results:?}");
            for (i, data) in expected.iter().enumerate() {
                let got = fs::read(dir.path().join(format!("f{i}"))).expect("read");
                assert!(got == *data, "unnamed {unnamed}: f{i} differs");
            }
            assert!(temp_files(dir.path()).is_empty());
            assert_eq!(
                store.temps.unnamed.load(Ordering::Relaxed),
                unnamed && sys::unnamed_files_possible()
            );
            assert_eq!(store.temps.helpers.load(Ordering::Relaxed), 0);
        }
    }

    #[test]
    fn racing_commits_have_one_winner() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = DirStore::open(dir.path()).expect("open");
        let mut first = store.create_file("x", false).expect("create");
        let mut second = store.create_file("x", false).expect("create");
        first.write_all(b"first").expect("write");
        second.write_all(b"second").expect("write");
        second.commit().expect("second wins");
        assert!(matches!(first.commit(), Err(Error::AlreadyExists { .. })));
        assert_eq!(fs::read(dir.path().join("x")).expect("read"), b"second");
        assert!(temp_files(dir.path()).is_empty());
    }

    #[test]
    fn existing_names_are_refused_and_untouched() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("a"), b"keep").expect("write");
        let store = DirStore::open(dir.path()).expect("open");
        assert!(matches!(
            store.create_file("a", false),
            Err(Error::AlreadyExists { .. })
        ));
        let mut up = store.create_file("a", true).expect("replace allowed");
        up.write_all(b"new").expect("write");
        up.commit().expect("commit");
        assert_eq!(fs::read(dir.path().join("a")).expect("read"), b"new");
    }

    #[test]
    fn cleanup_removes_only_orphaned_temporaries() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Above Linux's largest pid: never a live process.
        fs::write(dir.path().join(".ft-tmp-4194305-0-0"), b"stale").expect("write");
        fs::write(dir.path().join(".ft-tmp-garbled"), b"stale").expect("write");
        // Ours and a live process's (pid 1) are in use.
        let ours = format!(".ft-tmp-{}-0-0", std::process::id());
        fs::write(dir.path().join(&ours), b"mine").expect("write");
        fs::write(dir.path().join(".ft-tmp-1-0-0"), b"init's").expect("write");
        fs::write(dir.path().join("keep"), b"k").expect("write");
        let store = DirStore::open(dir.path()).expect("open");
        assert_eq!(store.cleanup().expect("cleanup"), 2);
        assert!(dir.path().join("keep").exists());
        let mut left = temp_files(dir.path());
        left.sort();
        assert_eq!(left, vec![".ft-tmp-1-0-0".to_owned(), ours]);
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
            .list()
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
        assert!(matches!(store.open("link"), Err(Error::NotFound { .. })));
        assert!(matches!(store.open("sub"), Err(Error::NotFound { .. })));
        assert!(matches!(
            store.check_free("link"),
            Err(Error::AlreadyExists { .. })
        ));
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
}
