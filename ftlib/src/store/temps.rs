//! The hidden files a [`DirStore`](super::DirStore) writes before publishing: temporary
//! files (named `.ft-tmp-PID-N-NANOS`, or unnamed where Linux allows), partials kept for a
//! resume (`.ft-part-KEY`: locked while in use, kept only when they hold bytes, pruned by
//! age, number per client address, number and total size), and the clean-up of temporary
//! files whose creating process is gone.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::group::BATCH_MAX;
use super::name::{PART_PREFIX, TEMP_PREFIX};
use crate::sys;
use crate::sys::at::{DirFd, syncfs_reports_errors};

/// Makes the hidden files uploads are written to.
#[derive(Debug)]
pub(super) struct Temps {
    root: PathBuf,
    /// The root's handle, from which an upload reaches its directory again.
    root_fd: Arc<DirFd>,
    counter: AtomicU64,
    /// This process, named in temporary files so cleanup can tell whose they are.
    pid: u32,
    /// Whether to try unnamed files; cleared when the file system refuses them.
    unnamed: AtomicBool,
    /// Whether one `syncfs` may stand for the `fsync` of many files and directories
    /// ([`syncfs_reports_errors`]).
    batch_sync: bool,
    /// Directories created so far, and how many of them are known durable: a commit
    /// after a directory was created syncs the file system (the directory entry too).
    dirs_made: AtomicU64,
    dirs_synced: AtomicU64,
    /// Files a batch commit may hold open at once, across all connections
    /// ([`open_budget`]), and how many are.
    open_budget: usize,
    /// The device of the root's file system ([`Temps::on_root_fs`]).
    root_device: Option<u64>,
    open: Mutex<usize>,
    open_freed: Condvar,
    /// Files written ahead of their group's commit and held open meanwhile
    /// ([`Temps::room_ahead`]), and how many may be.
    open_ahead: AtomicUsize,
    ahead_budget: usize,
    /// The directory an upload's check last found missing ([`Temps::known_missing`]).
    missing: Mutex<MissingDir>,
    /// The store's syncs of its file system ([`Temps::sync_after`]).
    syncs: Mutex<Syncs>,
    sync_ended: Condvar,
    /// Makes the next sync fail, to test what a failure reaches (nothing else can make
    /// a sync fail on demand).
    #[cfg(test)]
    fail_next_sync: AtomicBool,
    /// Makes the next link of an unnamed file fail (`EPERM`, as a system that forbids
    /// linking through `/proc` would), to test the way round it.
    #[cfg(test)]
    pub(super) fail_next_link: AtomicBool,
}

/// The syncs of a store's file system: `syncfs` through the root's handle (opened with the
/// store), one at a time, each shared by everyone waiting when it starts — a group commit
/// of syncs. A connection's next group, written out meanwhile, has its bytes made durable
/// by the same sync as the names of the group before it, and the groups of several
/// connections share syncs.
///
/// Write errors: every sync goes through that one handle, so each write-back error the file
/// system records after the store was opened is reported by exactly one sync, the first
/// to end after it. A failed sync fails every caller whose [`Watch`] is at or below its
/// number: everyone whose writes began before that sync ended. So no error is lost, at the
/// price of failing, when an error happens, files whose own bytes were written fine.
#[derive(Debug, Default)]
struct Syncs {
    /// Syncs started so far; the one running, if any, is number `started`.
    started: u64,
    /// The number of the last sync that ended.
    ended: u64,
    running: bool,
    /// The last sync that failed: its number and error.
    failed: Option<(u64, io::ErrorKind, String)>,
}

/// The directory an upload's check last found missing, and when, so that the next files of
/// a new tree do not each walk to it again; and how many directories this store has made,
/// so that a directory made while a check walked is never remembered as missing.
#[derive(Debug, Default)]
struct MissingDir {
    made: u64,
    last: Option<(String, Instant)>,
}

/// How long a directory found missing is taken as still missing without looking again,
/// unless this store makes it meanwhile (then it is forgotten at once): only a directory
/// made by another process in the served root can be missed, for that long.
const MISSING_FRESH: Duration = Duration::from_secs(1);

/// Taken before writing: the first sync that may report an error of what is written after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Watch(u64);

/// Taken once something is written or published: a sync of this number or later started
/// after it, and covers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Mark(u64);

/// Room for one file written ahead of its commit and held open ([`Temps::room_ahead`]),
/// given back when dropped.
#[derive(Debug)]
pub(super) struct RoomAhead(Arc<Temps>);

impl Drop for RoomAhead {
    fn drop(&mut self) {
        self.0.open_ahead.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Most files the batch commits of one store hold open at once (written, waiting for the
/// file system's sync), whatever the number of connections: a whole batch
/// ([`BATCH_MAX`]), so that one sync serves a whole group, where the process may open four
/// times as many ([`crate::raise_open_files_limit`]); else a quarter of its limit, at
/// least 16.
fn open_budget() -> usize {
    let limit = crate::sys::open_files_limit().unwrap_or(1024);
    let quarter = usize::try_from(limit / 4).unwrap_or(usize::MAX);
    quarter.clamp(16, BATCH_MAX)
}

/// Most files written ahead of their group's commit ([`Temps::room_ahead`]) that one store
/// holds open at once: four whole batches ([`BATCH_MAX`]: the groups waiting behind the
/// one being synced) where the process may open eight times as many, else an eighth of
/// its limit, at least 16. With the batch commits' own budget ([`open_budget`], a
/// quarter) and a directory handle each at worst, they stay within three quarters of the
/// limit.
fn ahead_budget() -> usize {
    let limit = crate::sys::open_files_limit().unwrap_or(1024);
    let eighth = usize::try_from(limit / 8).unwrap_or(usize::MAX);
    eighth.clamp(16, 4 * BATCH_MAX)
}

/// Room for files held open by a batch commit, given back when dropped.
#[derive(Debug)]
pub(super) struct OpenFiles<'a> {
    temps: &'a Temps,
    pub(super) count: usize,
}

impl Drop for OpenFiles<'_> {
    fn drop(&mut self) {
        let mut open = self.temps.open.lock().unwrap_or_else(|p| p.into_inner());
        *open -= self.count;
        self.temps.open_freed.notify_all();
    }
}

#[cfg(test)]
thread_local! {
    /// Makes the stores this thread opens fsync each file and directory, as on a kernel
    /// where `syncfs` does not report every error, so that tests cover that path too.
    static PER_FILE_SYNC: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with the stores this thread opens meanwhile syncing file by file.
#[cfg(test)]
pub(super) fn with_per_file_sync<T>(f: impl FnOnce() -> T) -> T {
    PER_FILE_SYNC.with(|c| c.set(true));
    let result = f();
    PER_FILE_SYNC.with(|c| c.set(false));
    result
}

fn per_file_sync_for_test() -> bool {
    #[cfg(test)]
    {
        PER_FILE_SYNC.with(std::cell::Cell::get)
    }
    #[cfg(not(test))]
    {
        false
    }
}

impl Temps {
    pub(super) fn new(root: PathBuf, root_fd: Arc<DirFd>) -> Temps {
        Temps {
            root,
            root_device: root_fd.device(),
            root_fd,
            counter: AtomicU64::new(0),
            pid: std::process::id(),
            unnamed: AtomicBool::new(sys::unnamed_files_possible()),
            batch_sync: syncfs_reports_errors() && !per_file_sync_for_test(),
            dirs_made: AtomicU64::new(0),
            dirs_synced: AtomicU64::new(0),
            open_budget: open_budget(),
            open: Mutex::new(0),
            open_freed: Condvar::new(),
            open_ahead: AtomicUsize::new(0),
            ahead_budget: ahead_budget(),
            missing: Mutex::default(),
            syncs: Mutex::new(Syncs::default()),
            sync_ended: Condvar::new(),
            #[cfg(test)]
            fail_next_sync: AtomicBool::new(false),
            #[cfg(test)]
            fail_next_link: AtomicBool::new(false),
        }
    }

    /// Whether `dir` is on the root's file system (not below a mount point), the one the
    /// root's `syncfs` covers; false when that cannot be told.
    pub(super) fn on_root_fs(&self, dir: &DirFd) -> bool {
        self.root_device.is_some() && dir.device() == self.root_device
    }

    /// Whether one `syncfs` stands for many `fsync` calls here.
    pub(super) fn batch_sync(&self) -> bool {
        self.batch_sync
    }

    /// Room for up to `want` (at least 1) files held open at once, waiting while the
    /// store's budget is spent.
    pub(super) fn open_files(&self, want: usize) -> OpenFiles<'_> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        while *open >= self.open_budget {
            open = self
                .open_freed
                .wait(open)
                .unwrap_or_else(|p| p.into_inner());
        }
        let count = want.clamp(1, self.open_budget - *open);
        *open += count;
        OpenFiles { temps: self, count }
    }

    /// Room for `count` files written ahead of their group's commit, if the store has it
    /// now: never waited for (their commit waits for the group before, which may be
    /// waiting for room itself), and apart from [`Temps::open_files`]'s budget
    /// ([`ahead_budget`]).
    pub(super) fn room_ahead(self: &Arc<Self>, count: usize) -> Option<Vec<RoomAhead>> {
        self.open_ahead
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(count).filter(|&n| n <= self.ahead_budget)
            })
            .ok()?;
        Some((0..count).map(|_| RoomAhead(Arc::clone(self))).collect())
    }

    /// How many syncs have started.
    #[cfg(test)]
    pub(super) fn syncs_started(&self) -> u64 {
        self.syncs.lock().unwrap_or_else(|p| p.into_inner()).started
    }

    /// How many files written ahead are held open.
    #[cfg(test)]
    pub(super) fn open_ahead(&self) -> usize {
        self.open_ahead.load(Ordering::Acquire)
    }

    /// How many directories were created without syncing their parent.
    #[cfg(test)]
    pub(super) fn dirs_made(&self) -> u64 {
        self.dirs_made.load(Ordering::Acquire)
    }

    /// How many directories this store has made: taken before walking to a directory that
    /// may be missing, for [`Temps::remember_missing`].
    pub(super) fn dirs_mark(&self) -> u64 {
        self.missing().made
    }

    /// Notes that the directory `path` (from the root) was just made: forgotten as
    /// missing, and counted, so that no walk begun before is remembered
    /// ([`Temps::remember_missing`]).
    pub(super) fn forget_missing(&self, path: &str) {
        let mut missing = self.missing();
        missing.made += 1;
        if missing.last.as_ref().is_some_and(|(gone, _)| gone == path) {
            missing.last = None;
        }
    }

    /// Remembers `path` as missing, as a walk begun at `mark` ([`Temps::dirs_mark`]) found
    /// it, unless a directory was made since (the walk may have missed it).
    pub(super) fn remember_missing(&self, path: &str, mark: u64) {
        let mut missing = self.missing();
        if missing.made == mark {
            missing.last = Some((path.to_owned(), Instant::now()));
        }
    }

    /// Whether the directory remembered missing, if any, is `of` it (it or one of its
    /// parents) and still taken as missing.
    pub(super) fn known_missing(&self, of: impl Fn(&str) -> bool) -> bool {
        self.missing()
            .last
            .as_ref()
            .is_some_and(|(gone, at)| at.elapsed() < MISSING_FRESH && of(gone))
    }

    fn missing(&self) -> MutexGuard<'_, MissingDir> {
        self.missing.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes a directory created without syncing its parent (with batch syncing only).
    pub(super) fn dir_made(&self) {
        self.dirs_made.fetch_add(1, Ordering::AcqRel);
    }

    /// Makes every directory created so far durable, by syncing the file system once, if
    /// any was created since the last time.
    pub(super) fn settle_dirs(&self) -> io::Result<()> {
        let made = self.dirs_made.load(Ordering::Acquire);
        if made <= self.dirs_synced.load(Ordering::Acquire) {
            return Ok(());
        }
        let watch = self.watch();
        self.sync_after(self.mark(), watch)
    }

    /// The first sync that may report an error of what is written from now on: the one
    /// running, if any, else the next.
    pub(super) fn watch(&self) -> Watch {
        let syncs = self.syncs.lock().unwrap_or_else(|p| p.into_inner());
        Watch(syncs.started + u64::from(!syncs.running))
    }

    /// The first sync to start from now on: it covers what is written or published before.
    pub(super) fn mark(&self) -> Mark {
        Mark(self.syncs.lock().unwrap_or_else(|p| p.into_inner()).started + 1)
    }

    /// Waits until a sync of the file system numbered `mark` or later has ended, starting
    /// one if none is running (a sync that starts while others wait serves them all);
    /// every directory created before it started is durable then. Fails if that sync, or
    /// any since `watch`, failed ([`Syncs`]).
    pub(super) fn sync_after(&self, mark: Mark, watch: Watch) -> io::Result<()> {
        let mut syncs = self.syncs.lock().unwrap_or_else(|p| p.into_inner());
        while syncs.ended < mark.0 {
            if syncs.running {
                syncs = self
                    .sync_ended
                    .wait(syncs)
                    .unwrap_or_else(|p| p.into_inner());
                continue;
            }
            syncs.running = true;
            syncs.started += 1;
            let number = syncs.started;
            drop(syncs);
            let made = self.dirs_made.load(Ordering::Acquire);
            #[cfg(test)]
            let synced = if self.fail_next_sync.swap(false, Ordering::AcqRel) {
                Err(io::Error::other("a failure made by the test"))
            } else {
                self.root_fd.sync_fs()
            };
            #[cfg(not(test))]
            let synced = self.root_fd.sync_fs();
            if synced.is_ok() {
                self.dirs_synced.fetch_max(made, Ordering::AcqRel);
            }
            syncs = self.syncs.lock().unwrap_or_else(|p| p.into_inner());
            syncs.running = false;
            syncs.ended = number;
            if let Err(e) = synced {
                syncs.failed = Some((number, e.kind(), e.to_string()));
            }
            self.sync_ended.notify_all();
        }
        match &syncs.failed {
            Some((number, kind, message)) if *number >= watch.0 => {
                Err(io::Error::new(*kind, message.clone()))
            }
            _ => Ok(()),
        }
    }

    /// The root's handle.
    pub(super) fn root_fd(&self) -> &Arc<DirFd> {
        &self.root_fd
    }

    /// A fresh name for a hidden temporary file, `.ft-tmp-PID-N-NANOS`.
    pub(super) fn hidden_name(&self) -> String {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        format!("{TEMP_PREFIX}{}-{n}-{nanos:x}", self.pid)
    }

    /// A new hidden temporary file `.ft-tmp-PID-N-NANOS` in the root.
    pub(super) fn create_named(&self) -> io::Result<(PathBuf, File)> {
        let mut attempt = 0;
        loop {
            let tmp = self.root.join(self.hidden_name());
            match sys::create_new(&tmp) {
                Ok(file) => return Ok((tmp, file)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 16 => {
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// A new unnamed file in `dir` (where it will be published), where the system has
    /// them.
    pub(super) fn create_unnamed(&self, dir: &DirFd) -> io::Result<Option<File>> {
        if !self.unnamed_enabled() {
            return Ok(None);
        }
        let file = dir.create_unnamed()?;
        if file.is_none() {
            self.stop_unnamed();
        }
        Ok(file)
    }

    /// Whether new files may still be unnamed.
    pub(super) fn unnamed_enabled(&self) -> bool {
        self.unnamed.load(Ordering::Relaxed)
    }

    /// Makes named files from now on: the file system refused unnamed ones.
    pub(super) fn stop_unnamed(&self) {
        self.unnamed.store(false, Ordering::Relaxed);
    }
}

/// Removes the temporary files in `root` whose creator is gone; returns how many went.
pub(super) fn remove_orphans(root: &Path) -> io::Result<usize> {
    let mut removed = 0;
    for item in fs::read_dir(root)?.flatten() {
        let orphan = item.file_name().to_str().is_some_and(is_orphan_temp);
        let is_dir = item.file_type().is_ok_and(|t| t.is_dir());
        if orphan && !is_dir && fs::remove_file(item.path()).is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
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

/// How long, how many and how much a [`DirStore`](super::DirStore) keeps of partials left
/// for a resume. Partials in use are never removed, and do not count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartialLimits {
    /// Partials untouched for longer are removed.
    pub max_age: Duration,
    /// The oldest partials are removed while there are more (0 keeps none).
    pub max_count: usize,
    /// The oldest partials are removed while all of them together are larger.
    pub max_bytes: u64,
    /// Most partials kept for one client address (the address a partial's last upload came
    /// from, [`PendingFile::set_peer`](super::PendingFile::set_peer)): beyond it, that
    /// client's own oldest go first, so that one client cannot take the whole of
    /// `max_count`. Partials whose client is not known (kept before a restart, or by a
    /// caller that never said) count only towards the other limits.
    pub max_per_peer: usize,
}

impl Default for PartialLimits {
    /// A day, 1,000 partials (100 per client address), 16 GiB.
    fn default() -> PartialLimits {
        PartialLimits {
            max_age: Duration::from_secs(24 * 3600),
            max_count: 1000,
            max_bytes: 16 * 1024 * 1024 * 1024,
            max_per_peer: 100,
        }
    }
}

/// The partials of one directory: those in use (never pruned, never opened twice), the
/// client and name each kept one is for, and the limits on the rest.
#[derive(Debug)]
pub(super) struct Partials {
    root: PathBuf,
    active: Mutex<HashSet<PathBuf>>,
    /// What is known of each kept partial: its client and the name it is for (in memory: a
    /// restart forgets them). Entries of partials gone from the directory, or in use (whose
    /// next keep says it again), are dropped at each prune.
    kept_for: Mutex<HashMap<PathBuf, KeptFor>>,
    limits: Mutex<PartialLimits>,
}

/// What a [`Partials`] knows of one kept partial.
#[derive(Debug)]
struct KeptFor {
    /// The client address its transfer came from: it counts as theirs.
    peer: Option<IpAddr>,
    /// The upload name it is for: once that name is published, no upload can finish it
    /// (nothing replaces a published name).
    name: Option<String>,
}

impl Partials {
    pub(super) fn new(root: PathBuf) -> Partials {
        Partials {
            root,
            active: Mutex::default(),
            kept_for: Mutex::default(),
            limits: Mutex::default(),
        }
    }

    /// Removes the kept partials of uploads of `name` (not those in use): called once
    /// `name` is published, when none of them can ever be finished. Partials kept before
    /// the server started are not known here; the limits remove those.
    pub(super) fn discard_for(&self, name: &str) {
        // One lock at a time (never `kept_for` with `active`, as `prune` takes it too).
        let stale: Vec<PathBuf> = self
            .kept_for()
            .iter()
            .filter(|(_, kept)| kept.name.as_deref() == Some(name))
            .map(|(path, _)| path.clone())
            .collect();
        let gone: Vec<PathBuf> = stale
            .into_iter()
            .filter(|path| self.remove_unless_active(path))
            .collect();
        if !gone.is_empty() {
            let mut kept_for = self.kept_for();
            for path in gone {
                kept_for.remove(&path);
            }
        }
    }

    fn kept_for(&self) -> MutexGuard<'_, HashMap<PathBuf, KeptFor>> {
        self.kept_for.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn active(&self) -> MutexGuard<'_, HashSet<PathBuf>> {
        self.active.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn set_limits(&self, limits: PartialLimits) {
        *self.limits.lock().unwrap_or_else(|p| p.into_inner()) = limits;
    }

    fn path_of(&self, key: &str) -> PathBuf {
        self.root.join(format!("{PART_PREFIX}{key}"))
    }

    /// Whether the partial `key` is kept (a regular file, not in use).
    /// Asked of `root`, the handle of the directory partials are kept in: one name looked
    /// up, not the whole path (a download of many files asks once per file).
    pub(super) fn is_kept(&self, key: &str, root: &DirFd) -> bool {
        !self.active().contains(&self.path_of(key))
            && root
                .stat(&format!("{PART_PREFIX}{key}"))
                .is_ok_and(|stat| stat.kind == sys::at::Kind::File)
    }

    /// Removes the kept partial `key`, unless a transfer uses it.
    pub(super) fn discard(&self, key: &str) {
        self.remove_unless_active(&self.path_of(key));
    }

    /// Removes the partial at `path` unless a transfer uses it (checked and removed under
    /// the lock that marks partials in use); whether it was not in use.
    fn remove_unless_active(&self, path: &Path) -> bool {
        let active = self.active();
        let unused = !active.contains(path);
        if unused {
            let _ = fs::remove_file(path);
        }
        unused
    }

    /// Marks the partial `key` as in use, until the lock is dropped; `None` while another
    /// transfer holds it.
    pub(super) fn lock(self: &Arc<Self>, key: &str) -> Option<PartialLock> {
        let path = self.path_of(key);
        if !self.active().insert(path.clone()) {
            return None;
        }
        Some(PartialLock {
            partials: Arc::clone(self),
            path,
            peer: None,
            name: None,
        })
    }

    /// Removes partials untouched for longer than the limit, then each client's oldest
    /// while it has more than the per-client limit, then the oldest ones while there are
    /// more than the count limit or all together exceed the size limit; partials in use are
    /// left alone.
    pub(super) fn prune(&self) {
        let limits = *self.limits.lock().unwrap_or_else(|p| p.into_inner());
        let Ok(dir) = fs::read_dir(&self.root) else {
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
            if !is_partial || !meta.is_file() || self.active().contains(&item.path()) {
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
        // Oldest first (ties by name, so the same ones go whatever the listing order).
        kept.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.2.cmp(&b.2)));
        let kept = self.prune_per_peer(kept, limits.max_per_peer);
        let mut count = kept.len();
        let mut total: u64 = kept.iter().map(|k| k.1).sum();
        for (_, len, path) in kept {
            if count <= limits.max_count && total <= limits.max_bytes {
                break;
            }
            match fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {}
                // Gone either way.
                _ => {
                    count -= 1;
                    total -= len;
                }
            }
        }
    }
}

/// A kept partial as pruning sees it: age, length, path.
type Kept = (Duration, u64, PathBuf);

impl Partials {
    /// Of `kept` (oldest first), removes each client's oldest while it has more than
    /// `max_per_peer`; returns those left, in the same order. Forgets what it knew of
    /// partials no longer there.
    fn prune_per_peer(&self, kept: Vec<Kept>, max_per_peer: usize) -> Vec<Kept> {
        let mut kept_for = self.kept_for();
        let present: HashSet<&PathBuf> = kept.iter().map(|k| &k.2).collect();
        // Not listed: gone, aged out, or in use (whose next keep says it again).
        kept_for.retain(|path, _| present.contains(path));
        let mut per_peer: HashMap<IpAddr, usize> = HashMap::new();
        for peer in kept_for.values().filter_map(|kept| kept.peer) {
            *per_peer.entry(peer).or_default() += 1;
        }
        let mut left = Vec::with_capacity(kept.len());
        for item in kept {
            let over = kept_for
                .get(&item.2)
                .and_then(|kept| per_peer.get_mut(&kept.peer?))
                .filter(|n| **n > max_per_peer);
            let Some(n) = over else {
                left.push(item);
                continue;
            };
            match fs::remove_file(&item.2) {
                // Could not be removed: it still counts.
                Err(e) if e.kind() != io::ErrorKind::NotFound => left.push(item),
                _ => {
                    *n -= 1;
                    kept_for.remove(&item.2);
                }
            }
        }
        left
    }
}

/// Marks a partial as in use until dropped.
#[derive(Debug)]
pub(super) struct PartialLock {
    partials: Arc<Partials>,
    path: PathBuf,
    /// The client address the transfer comes from, if known: the partial is counted as
    /// theirs once kept.
    peer: Option<IpAddr>,
    /// The name the upload is for, if it is one, remembered once kept
    /// ([`Partials::discard_for`]).
    name: Option<String>,
}

impl PartialLock {
    /// Names the client the transfer comes from.
    pub(super) fn set_peer(&mut self, peer: IpAddr) {
        self.peer = Some(peer);
    }

    /// Names the upload the partial is for.
    pub(super) fn set_name(&mut self, name: &str) {
        self.name = Some(name.to_owned());
    }

    /// Removes the other kept partials of uploads of the same name, once this one is
    /// published ([`Partials::discard_for`]).
    pub(super) fn published(&self) {
        if let Some(name) = &self.name {
            self.partials.discard_for(name);
        }
    }

    /// The partial's file.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Gives the partial up for a later resume: no longer in use, so subject to the limits,
    /// which are applied now. An empty partial is removed instead: resuming it is starting
    /// over, and keeping it would let cuts before the first byte pile up entries.
    pub(super) fn release_and_prune(self) {
        // Still locked: no transfer can be writing it.
        if fs::symlink_metadata(&self.path).is_ok_and(|m| m.is_file() && m.len() == 0) {
            let _ = fs::remove_file(&self.path);
        }
        let mut kept_for = self.partials.kept_for();
        if self.peer.is_none() && self.name.is_none() {
            kept_for.remove(&self.path);
        } else {
            let kept = KeptFor {
                peer: self.peer,
                name: self.name.clone(),
            };
            kept_for.insert(self.path.clone(), kept);
        }
        drop(kept_for);
        let partials = Arc::clone(&self.partials);
        drop(self);
        partials.prune();
    }
}

impl Drop for PartialLock {
    fn drop(&mut self) {
        self.partials.active().remove(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use ft_testutil::{partials as partials_in, temp_files};

    use super::*;

    /// One sync serves everyone whose mark was taken before it started; a mark taken later
    /// needs a later sync; a failed sync fails every caller that began writing before it
    /// ended (also through a later sync that succeeds), and no one who began after.
    #[test]
    fn syncs_are_shared_and_a_failure_reaches_everyone_who_wrote_before_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root_fd = Arc::new(DirFd::open(dir.path()).expect("root"));
        let temps = Temps::new(dir.path().to_owned(), root_fd);
        let (watch, mark) = (temps.watch(), temps.mark());
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| temps.sync_after(mark, watch).expect("sync"));
            }
        });
        assert_eq!(temps.syncs_started(), 1, "four callers, one sync");
        temps.sync_after(mark, watch).expect("sync");
        assert_eq!(temps.syncs_started(), 1, "that mark is covered already");
        let later = temps.mark();
        assert!(later > mark);
        temps.sync_after(later, watch).expect("sync");
        assert_eq!(temps.syncs_started(), 2, "a later mark needs a later sync");

        let before = temps.watch();
        temps.fail_next_sync.store(true, Ordering::Release);
        let failed = temps
            .sync_after(temps.mark(), before)
            .expect_err("failed sync");
        assert!(failed.to_string().contains("made by the test"), "{failed}");
        assert!(
            temps.sync_after(temps.mark(), before).is_err(),
            "a writer from before the failure is failed by a later sync too"
        );
        assert!(temps.sync_after(later, watch).is_err(), "an old mark too");
        temps
            .sync_after(temps.mark(), temps.watch())
            .expect("a writer from after the failure is not failed");
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
        let store = super::super::DirStore::open(dir.path()).expect("open");
        assert_eq!(store.cleanup().expect("cleanup"), 2);
        assert!(dir.path().join("keep").exists());
        assert_eq!(temp_files(dir.path()), [".ft-tmp-1-0-0".to_owned(), ours]);
    }

    /// Named temporaries are hidden, distinct, and carry this process's id for the clean-up.
    #[test]
    fn named_temporaries_are_hidden_distinct_and_ours() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root_fd = Arc::new(DirFd::open(dir.path()).expect("open"));
        let temps = Temps::new(dir.path().to_owned(), root_fd);
        let (a, _fa) = temps.create_named().expect("create");
        let (b, _fb) = temps.create_named().expect("create");
        assert_ne!(a, b);
        let prefix = format!("{TEMP_PREFIX}{}-", std::process::id());
        for path in [&a, &b] {
            let name = path.file_name().and_then(|n| n.to_str()).expect("name");
            assert!(name.starts_with(&prefix), "{name}");
            assert!(!is_orphan_temp(name), "{name}");
        }
        assert_eq!(temp_files(dir.path()).len(), 2);
    }

    /// A partial is locked while in use: a second lock is refused, pruning spares it, and
    /// once released the limits apply to it.
    #[test]
    fn partials_in_use_are_locked_and_spared_by_pruning() {
        let dir = tempfile::tempdir().expect("tempdir");
        let partials = Arc::new(Partials::new(dir.path().to_owned()));
        partials.set_limits(PartialLimits {
            max_age: Duration::from_secs(3600),
            max_count: 1000,
            max_bytes: 0,
            max_per_peer: 100,
        });
        let lock = partials.lock("k").expect("free");
        fs::write(lock.path(), b"held").expect("write");
        assert!(partials.lock("k").is_none(), "locked twice");
        partials.prune();
        assert!(lock.path().exists(), "a partial in use was pruned");
        let path = lock.path().to_owned();
        lock.release_and_prune();
        assert!(
            !path.exists(),
            "a released partial beyond the limit was kept"
        );
        assert!(partials.lock("k").is_some(), "the lock was not released");
    }

    /// Beyond the count limit the oldest partials go, never one in use; an empty partial
    /// is removed when given up, one holding bytes is kept.
    #[test]
    fn partials_beyond_the_count_go_oldest_first_and_empty_ones_are_not_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let partials = Arc::new(Partials::new(dir.path().to_owned()));
        partials.set_limits(PartialLimits {
            max_count: 2,
            ..PartialLimits::default()
        });
        let held = partials.lock("0").expect("free");
        fs::write(held.path(), b"oldest, in use").expect("write");
        for key in ["1", "2", "3", "4"] {
            std::thread::sleep(Duration::from_millis(10));
            fs::write(dir.path().join(format!("{PART_PREFIX}{key}")), key).expect("write");
        }
        partials.prune();
        let names = |keys: &[&str]| -> Vec<String> {
            keys.iter().map(|k| format!("{PART_PREFIX}{k}")).collect()
        };
        assert_eq!(partials_in(dir.path()), names(&["0", "3", "4"]));

        let empty = partials.lock("5").expect("free");
        fs::write(empty.path(), b"").expect("write");
        empty.release_and_prune();
        assert_eq!(partials_in(dir.path()), names(&["0", "3", "4"]));
        drop(held);
        let full = partials.lock("6").expect("free");
        fs::write(full.path(), b"6").expect("write");
        full.release_and_prune();
        assert_eq!(partials_in(dir.path()), names(&["4", "6"]));
    }

    /// Beyond the per-client limit a client's own oldest partials go, not another's; a
    /// partial whose client is not known counts only towards the other limits.
    #[test]
    fn partials_beyond_the_per_peer_limit_go_oldest_first_for_that_client_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let partials = Arc::new(Partials::new(dir.path().to_owned()));
        partials.set_limits(PartialLimits {
            max_per_peer: 2,
            ..PartialLimits::default()
        });
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "2001:db8::1".parse().expect("ip");
        fs::write(dir.path().join(format!("{PART_PREFIX}u0")), b"unknown").expect("write");
        for (key, peer) in [("a1", a), ("b1", b), ("a2", a), ("a3", a), ("a4", a)] {
            std::thread::sleep(Duration::from_millis(10));
            let mut lock = partials.lock(key).expect("free");
            fs::write(lock.path(), key).expect("write");
            lock.set_peer(peer);
            lock.release_and_prune();
        }
        let names = |keys: &[&str]| -> Vec<String> {
            keys.iter().map(|k| format!("{PART_PREFIX}{k}")).collect()
        };
        assert_eq!(partials_in(dir.path()), names(&["a3", "a4", "b1", "u0"]));
        // Taken over by another client: it counts as that client's from then on.
        let mut lock = partials.lock("a4").expect("free");
        lock.set_peer(b);
        lock.release_and_prune();
        let mut lock = partials.lock("b2").expect("free");
        fs::write(lock.path(), b"b2").expect("write");
        lock.set_peer(b);
        lock.release_and_prune();
        assert_eq!(partials_in(dir.path()), names(&["a3", "a4", "b2", "u0"]));
    }
}
