//! Group commit for a [`DirStore`](super::DirStore): a group's files are written, synced
//! and published by up to [`COMMIT_THREADS`] threads, borrowed from a per-store budget of
//! [`COMMIT_HELPERS`], then the directory is synced once for all of them.

use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::pending::DirUpload;
use super::temps::{Mark, RoomAhead, Temps, Watch};
use super::{Name, PendingFile};
use crate::error::{Error, Result};
use crate::sys::at::DirFd;
use crate::text::escape;

/// Most threads that write, sync and publish the files of one group at once. Creating files
/// is mostly kernel work and waiting for the disk; on Linux, where new files are created
/// unnamed without locking the directory, several threads move about twice as many small
/// files per second as one (`bench/create_files.py`, `bench/run.py`'s small-file workload).
const COMMIT_THREADS: usize = 4;

/// Most helper threads (beyond the committing connection's own) that all the group commits
/// of one store use at once, so that many connections committing together neither start
/// hundreds of threads nor hold several open files each.
pub(super) const COMMIT_HELPERS: usize = 8;

/// Most files of a group written out before one sync of the file system: each is held
/// open until published. As many as a group of pipelined uploads may hold
/// (`pipeline::GROUP_MAX`), so that a group takes one sync where the store may hold that
/// many files open.
pub(super) const BATCH_MAX: usize = 1024;

/// One file of a group.
enum Member {
    /// The store's own: synced and published here, its directory synced once after.
    Ours(Box<DirUpload>),
    /// Another store's (or another directory's): committed on its own, whole.
    Foreign(Box<dyn PendingFile>),
    /// Could not be taken back from `dyn PendingFile` (cannot happen: its type was asked
    /// first); reported as an error rather than dropped silently.
    Lost,
}

/// Commits `files` for the store whose temporary files `temps` makes, borrowing helper
/// threads from `helpers`; see [`Store::commit_group`](super::Store::commit_group). One
/// result per file, in order.
pub(super) fn commit_group(
    files: Vec<Box<dyn PendingFile>>,
    temps: &Arc<Temps>,
    helpers: &AtomicUsize,
) -> Vec<Result<()>> {
    commit_group_in_turn(files, temps, helpers, &|| {}, &|| {})
}

/// [`commit_group`] for one of a sequence of groups: nothing is published before
/// `wait_turn` returns, and `published` is called once everything is, before the
/// directories are synced; see [`Store::commit_group_in_turn`](super::Store::commit_group_in_turn).
pub(super) fn commit_group_in_turn(
    files: Vec<Box<dyn PendingFile>>,
    temps: &Arc<Temps>,
    helpers: &AtomicUsize,
    wait_turn: &dyn Fn(),
    published: &dyn Fn(),
) -> Vec<Result<()>> {
    let members: Vec<Member> = files.into_iter().map(|f| claim(f, temps)).collect();
    // Waited for before any room is taken: the group before, which may be waiting for
    // room, never waits for this one.
    wait_turn();
    if !temps.batch_sync() {
        let results = sync_and_publish(members, helpers);
        published();
        return sync_dirs_after(results);
    }
    if members.len() <= BATCH_MAX && members.iter().all(written_ahead) {
        // Their files are open already, with room of their own.
        return batch_commit(members, temps, helpers, published);
    }
    // In batches of what may be held open at once.
    let mut results = Vec::with_capacity(members.len());
    let mut rest = members.into_iter().peekable();
    while rest.peek().is_some() {
        let room = temps.open_files(BATCH_MAX);
        let batch: Vec<Member> = rest.by_ref().take(room.count).collect();
        let last = rest.peek().is_none();
        results.extend(batch_commit(
            batch,
            temps,
            helpers,
            if last { published } else { &|| {} },
        ));
    }
    results
}

/// What an upload written out ahead of its commit ([`write_ahead`]) keeps for it.
#[derive(Debug)]
pub(super) struct WrittenAhead {
    /// Taken before it was written.
    watch: Watch,
    /// Taken once its group was written.
    mark: Mark,
    /// Why it could not be written, reported by its commit.
    failed: Option<Error>,
    /// Its open file's room.
    _room: RoomAhead,
}

impl WrittenAhead {
    /// Taken before it was written.
    pub(super) fn watch(&self) -> Watch {
        self.watch
    }
}

/// Writes out the store's own uploads of `files` that are held in memory, in a directory
/// that exists, or in a temporary file this store made ([`DirUpload::writes_out_unsynced`]; up to
/// [`BATCH_MAX`] of them, when the store has room for them open: [`Temps::room_ahead`]),
/// on up to [`COMMIT_THREADS`] threads, ahead of their commit: while the group before
/// is being committed, so that their writing overlaps its waits for the disk; see
/// [`Store::write_ahead`](super::Store::write_ahead). A failure stays in the upload, and
/// its commit reports it. Returns how many bytes held in memory went out of it.
pub(super) fn write_ahead(
    files: &mut [&mut dyn PendingFile],
    temps: &Arc<Temps>,
    helpers: &AtomicUsize,
    taken_before: &dyn Fn(&str) -> bool,
) -> u64 {
    if !temps.batch_sync() {
        return 0;
    }
    let watch = temps.watch();
    let mut opened = HashMap::new();
    let mut ours: Vec<&mut DirUpload> = Vec::new();
    // The names of this group's uploads so far.
    let mut earlier = HashSet::new();
    for file in files.iter_mut() {
        let Some(upload) = file.as_any_mut().downcast_mut::<DirUpload>() else {
            continue;
        };
        if ours.len() == BATCH_MAX {
            break;
        }
        // A directory made ahead of its turn could take the name of a file that a group
        // before, or an earlier upload of this one, is about to publish: an upload held in
        // memory is written ahead if its directory exists, or if none of those may publish
        // a file where it or one of its parents goes.
        let taken = |name: &Name| {
            name.parent()
                .is_some_and(|dir| any_taken(dir, taken_before))
                || under_one_of(name, &earlier)
        };
        let ahead = upload.made_by(temps)
            && upload.writes_out_unsynced()
            && (!upload.is_in_memory()
                || upload.find_existing_dir(&mut opened)
                || (!taken(upload.name()) && upload.share_dir(&mut opened)));
        earlier.insert(upload.name().to_lowercase());
        if ahead {
            ours.push(upload);
        }
    }
    if ours.is_empty() {
        return 0;
    }
    let Some(rooms) = temps.room_ahead(ours.len()) else {
        return 0;
    };
    let mut written: Vec<(&mut DirUpload, Option<Error>, u64)> =
        ours.into_iter().map(|upload| (upload, None, 0)).collect();
    in_parallel(&mut written, helpers, |(upload, failed, moved)| {
        let held = upload.held_in_memory();
        *failed = upload.write_out().err();
        *moved = held.saturating_sub(upload.held_in_memory());
    });
    let mark = temps.mark();
    let moved = written.iter().map(|(_, _, moved)| *moved).sum();
    for ((upload, failed, _), room) in written.into_iter().zip(rooms) {
        if failed.is_some() && !upload.is_failed() {
            // Its bytes stayed where they were (no file could be made or opened: out of
            // descriptors or space): not written ahead, tried again at its commit.
            continue;
        }
        upload.ahead = Some(WrittenAhead {
            watch,
            mark,
            failed,
            _room: room,
        });
    }
    moved
}

/// A group commit where one `syncfs` stands for the `fsync` of every file: the store's
/// uploads are written out (several at a time, unsynced), the file system is synced once,
/// then every file is published in request order (so the first upload of a name wins
/// it), and the directories they went to are made durable — each synced, or the whole
/// file system once more when there are more than two or new directories. The same promise as
/// [`sync_and_publish`]: nothing is published before its data is durable, nothing is
/// acknowledged before its name is.
fn batch_commit(
    mut members: Vec<Member>,
    temps: &Temps,
    helpers: &AtomicUsize,
    published_all: &dyn Fn(),
) -> Vec<Result<()>> {
    // Taken before anything was written (as it arrived, by `write_ahead`, or here), so
    // that the syncs after report every write error since.
    let ours = || {
        members.iter().filter_map(|member| match member {
            Member::Ours(upload) => Some(upload),
            _ => None,
        })
    };
    let watch = ours()
        .filter_map(|upload| upload.watched_since())
        .fold(temps.watch(), Watch::min);
    let all_ahead = members.iter().all(written_ahead);
    let ahead_mark = ours()
        .filter_map(|upload| upload.ahead.as_ref().map(|a| a.mark))
        .max();
    share_dirs(&mut members);
    let mut slots: Vec<(Member, Option<Result<()>>)> =
        members.into_iter().map(|m| (m, None)).collect();
    in_parallel(&mut slots, helpers, |(member, written)| {
        if let Member::Ours(upload) = member {
            // Written ahead (with its own error, if it failed), or written now.
            *written = Some(match upload.ahead.as_mut() {
                Some(ahead) => ahead.failed.take().map_or(Ok(()), Err),
                None => upload.write_out(),
            });
        }
    });
    // A sync that starts once they are written: the one that makes the group before's
    // names durable, when that group was published after they were written. Directories
    // made before it are durable after it too.
    let written = match ahead_mark {
        Some(mark) if all_ahead => mark,
        _ => temps.mark(),
    };
    let synced = temps.sync_after(written, watch);
    let publish = |(member, written): (Member, Option<Result<()>>)| -> Published {
        match member {
            Member::Ours(upload) => {
                written.unwrap_or(Ok(()))?;
                if let Err(e) = &synced {
                    let e = io::Error::new(e.kind(), e.to_string());
                    return Err(Error::io(format!("syncing {}", escape(upload.name())), e));
                }
                upload.publish().map(Some)
            }
            Member::Foreign(file) => file.commit().map(|()| None),
            Member::Lost => Err(Error::Protocol("group commit lost an upload".into())),
        }
    };
    // The first upload of each name is published by several threads at once (linking and
    // closing run side by side; into one directory, whose lock takes one link at a time,
    // too: a download of man1 took 1.50 s against 1.63 s on one thread, medians of 5); the
    // others after them, in order, so that the first upload of a name wins it.
    let at_once = first_of_each_name(slots.iter().map(|(member, _)| member));
    let mut cells: Vec<_> = slots.into_iter().map(|slot| (Some(slot), None)).collect();
    {
        let mut work: Vec<_> = cells
            .iter_mut()
            .zip(&at_once)
            .filter(|(_, at_once)| **at_once)
            .map(|(cell, _)| cell)
            .collect();
        in_parallel(&mut work, helpers, |cell| {
            if let Some(slot) = cell.0.take() {
                cell.1 = Some(publish(slot));
            }
        });
    }
    let published: Vec<Published> = cells
        .into_iter()
        .map(|(slot, done)| match (slot, done) {
            (_, Some(done)) => done,
            (Some(slot), None) => publish(slot),
            (None, None) => Err(Error::Protocol("group commit lost an upload".into())),
        })
        .collect();
    // The names, durable after any sync that starts from now on: the next group's may.
    let names = temps.mark();
    published_all();
    let mut dirs: Vec<Arc<DirFd>> = Vec::new();
    for dir in published
        .iter()
        .filter_map(|r| r.as_ref().ok().cloned().flatten())
    {
        if !dirs.iter().any(|d| Arc::ptr_eq(d, &dir)) {
            dirs.push(dir);
        }
    }
    // Each directory synced on its own when there are few, or when one is not on the
    // root's file system (below a mount point), which the root's sync would not cover.
    if dirs.len() <= 2 || dirs.iter().any(|d| !temps.on_root_fs(d)) {
        let results = sync_dirs_after(published);
        let settled = temps.settle_dirs();
        return fail_ours_if(results, &dirs, settled);
    }
    let settled = temps.sync_after(names, watch);
    let results = published.into_iter().map(|r| r.map(drop)).collect();
    fail_ours_if(results, &dirs, settled)
}

/// Whether a member needs no writing before its sync: the store's own upload written out
/// ahead ([`write_ahead`]), or another store's file, committed whole.
fn written_ahead(member: &Member) -> bool {
    !matches!(member, Member::Ours(upload) if upload.ahead.is_none())
}

/// Whether `taken_before` says that the directory `dir`, or one of its parents, may be a
/// file of a group before.
fn any_taken(dir: &str, taken_before: &dyn Fn(&str) -> bool) -> bool {
    dir.match_indices('/')
        .map(|(at, _)| &dir[..at])
        .chain([dir])
        .any(taken_before)
}

/// Whether `name` goes below one of `names` (lower-cased paths): its directory, or one of
/// that directory's parents, has one of those names.
fn under_one_of(name: &Name, names: &HashSet<String>) -> bool {
    name.parent()
        .is_some_and(|dir| any_taken(dir, &|path| names.contains(&path.to_lowercase())))
}

/// Gives the store's uploads of `members` their directories' handles, each directory
/// walked from the root once for all of them (files arrive a directory at a time), not
/// once per file by each writing thread ([`DirUpload::share_dir`]). An upload whose
/// directory (or one of its parents) has the name of an earlier upload of the group gets
/// its directory only in its turn ([`DirUpload::make_dir_in_turn`]), so that the earlier
/// file wins that name, as in request order; it is then published in order, after it.
fn share_dirs(members: &mut [Member]) {
    let mut opened = HashMap::new();
    let mut earlier = HashSet::new();
    for member in members {
        if let Member::Ours(upload) = member {
            if under_one_of(upload.name(), &earlier) {
                upload.make_dir_in_turn();
                upload.find_existing_dir(&mut opened);
            } else {
                upload.share_dir(&mut opened);
            }
            earlier.insert(upload.name().to_lowercase());
        }
    }
}

/// `results`, with every success of a file published in one of `dirs` turned into the
/// failure `settled` reports, if it does.
fn fail_ours_if(
    results: Vec<Result<()>>,
    dirs: &[Arc<DirFd>],
    settled: io::Result<()>,
) -> Vec<Result<()>> {
    let Err(e) = settled else {
        return results;
    };
    if dirs.is_empty() {
        return results;
    }
    results
        .into_iter()
        .map(|r| {
            r.and_then(|()| {
                Err(Error::io(
                    "syncing the directory",
                    io::Error::new(e.kind(), e.to_string()),
                ))
            })
        })
        .collect()
}

/// Runs `work` on every item, on this thread and up to [`COMMIT_THREADS`]` - 1` helpers
/// borrowed from `helpers`.
fn in_parallel<T: Send>(items: &mut [T], helpers: &AtomicUsize, work: impl Fn(&mut T) + Sync) {
    let count = items.len();
    let queue = Mutex::new(items.iter_mut());
    let next = || queue.lock().unwrap_or_else(|p| p.into_inner()).next();
    let run = || {
        while let Some(item) = next() {
            work(item);
        }
    };
    let lent = Helpers::borrow(helpers, COMMIT_THREADS.min(count).saturating_sub(1));
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

/// Takes back the store's own uploads; anything else is committed on its own.
fn claim(file: Box<dyn PendingFile>, temps: &Arc<Temps>) -> Member {
    if !file.as_any().is::<DirUpload>() {
        return Member::Foreign(file);
    }
    match file.into_any().downcast::<DirUpload>() {
        Ok(upload) if upload.made_by(temps) => Member::Ours(upload),
        Ok(upload) => Member::Foreign(upload),
        Err(_) => Member::Lost,
    }
}

/// Syncs and publishes every file, several at a time: each of the store's own uploads of a
/// name not seen earlier in the group goes to one of up to [`COMMIT_THREADS`] threads (this
/// one and helpers, as many as `helpers` has room for); a second upload of the same name
/// (compared without case, for case-insensitive file systems), another store's file and
/// everything after it wait and are committed after them, in order, so the first upload of
/// a name is the one that wins it. One result per file, in order.
fn sync_and_publish(mut members: Vec<Member>, helpers: &AtomicUsize) -> Vec<Published> {
    share_dirs(&mut members);
    let at_once = first_of_each_name(members.iter());
    let mut slots: Vec<Option<Member>> = members.into_iter().map(Some).collect();
    let mut results: Vec<Option<Published>> = slots.iter().map(|_| None).collect();
    let commit = |slot: &mut Option<Member>, result: &mut Option<Published>| {
        *result = match slot.take() {
            Some(Member::Ours(mut upload)) => {
                Some(upload.sync().and_then(|()| upload.publish()).map(Some))
            }
            Some(Member::Foreign(file)) => Some(file.commit().map(|()| None)),
            Some(Member::Lost) => None,
            // Committed already, by a thread: its result is in place.
            None => return,
        };
    };
    {
        let mut work: Vec<_> = slots
            .iter_mut()
            .zip(results.iter_mut())
            .zip(&at_once)
            .filter(|(_, at_once)| **at_once)
            .map(|(pair, _)| pair)
            .collect();
        in_parallel(&mut work, helpers, |(slot, result)| commit(slot, result));
    }
    for (slot, result) in slots.iter_mut().zip(results.iter_mut()) {
        commit(slot, result);
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(Error::Protocol("group commit lost an upload".into()))))
        .collect()
}

/// For each member, whether it may be committed beside the others: the store's own upload
/// of a name (compared without case, for case-insensitive file systems) not seen earlier
/// in the group, whose directory is not made in its turn ([`share_dirs`]). A file of
/// another store may have any name: from the first one on, everything waits and goes in
/// order, so that it is not overtaken by a later upload of its name.
fn first_of_each_name<'a>(members: impl Iterator<Item = &'a Member>) -> Vec<bool> {
    let mut seen = HashSet::new();
    let mut foreign_seen = false;
    members
        .map(|m| match m {
            Member::Ours(upload) if !foreign_seen => {
                seen.insert(upload.name().to_lowercase()) && !upload.makes_dir_in_turn()
            }
            Member::Ours(_) => false,
            Member::Foreign(_) | Member::Lost => {
                foreign_seen = true;
                false
            }
        })
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

/// What became of one file of a group: published (in the store's directory given, to be
/// synced; `None` for another store's file, committed whole), or why not.
type Published = Result<Option<Arc<DirFd>>>;

/// Ends a group commit: one sync of each directory the store published files in. If a sync
/// fails, the files of that directory are published but not known durable, so each
/// reports the failure.
fn sync_dirs_after(published: Vec<Published>) -> Vec<Result<()>> {
    let dirs: Vec<Option<Arc<DirFd>>> = published
        .iter()
        .map(|r| r.as_ref().ok().cloned().flatten())
        .collect();
    let mut results: Vec<Result<()>> = published.into_iter().map(|r| r.map(drop)).collect();
    let same = |a: &Arc<DirFd>, b: &Arc<DirFd>| Arc::ptr_eq(a, b) || a.same_as(b);
    let mut synced: Vec<&Arc<DirFd>> = Vec::new();
    for dir in dirs.iter().flatten() {
        if synced.iter().any(|d| same(d, dir)) {
            continue;
        }
        synced.push(dir);
        let Err(e) = dir.sync() else {
            continue;
        };
        for (result, here) in results.iter_mut().zip(&dirs) {
            if here.as_ref().is_some_and(|h| same(h, dir)) && result.is_ok() {
                *result = Err(Error::io(
                    "syncing the directory",
                    io::Error::new(e.kind(), e.to_string()),
                ));
            }
        }
    }
    results
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::io::Write;

    use super::super::pending::BUFFERED_MAX;
    use super::super::{DirStore, MemStore, Store};
    use super::*;
    use crate::store::test_util::{name, temp_files};

    /// A group commits distinct names at once; of two uploads of one name, the first in the
    /// group wins and the second is refused, every time; replacing uploads end with the
    /// last one's bytes.
    /// A store in `dir` that syncs file by file (as on a kernel before 5.17) if `per_file`,
    /// else as this kernel allows.
    fn open_store(dir: &std::path::Path, per_file: bool) -> DirStore {
        if per_file {
            super::super::temps::with_per_file_sync(|| DirStore::open(dir))
        } else {
            DirStore::open(dir)
        }
        .expect("open")
    }

    #[test]
    fn group_commit_keeps_request_order_for_repeated_names() {
        for round in 0..20 {
            let dir = tempfile::tempdir().expect("tempdir");
            // Every other round file by file, as on a kernel before 5.17.
            let store = open_store(dir.path(), round % 2 == 1);
            let mut uploads: Vec<Box<dyn PendingFile>> = Vec::new();
            let names = ["a", "b", "a", "c", "b", "d", "e", "f"];
            for (k, n) in names.iter().enumerate() {
                let mut up = store.create_file(&name(n), false).expect("create");
                up.write_all(format!("{n}{k}").as_bytes()).expect("write");
                uploads.push(Box::new(up));
            }
            let results = store.commit_group(uploads);
            for (k, (n, result)) in names.iter().zip(&results).enumerate() {
                let first = names.iter().position(|m| m == n) == Some(k);
                assert_eq!(result.is_ok(), first, "round {round}: {n}#{k}: {result:?}");
            }
            for (n, k) in [("a", 0), ("b", 1), ("c", 3), ("d", 5), ("e", 6), ("f", 7)] {
                let got = fs::read_to_string(dir.path().join(n)).expect("read");
                assert_eq!(got, format!("{n}{k}"), "round {round}");
            }

            // Replacing: every upload succeeds, and the last of a name is what stays, while
            // other names are committed alongside.
            let mut uploads: Vec<Box<dyn PendingFile>> = Vec::new();
            let names = ["a", "x", "a", "y", "A", "a", "z"];
            for (k, n) in names.iter().enumerate() {
                let mut up = store.create_file(&name(n), true).expect("create");
                up.write_all(format!("new{k}").as_bytes()).expect("write");
                uploads.push(Box::new(up));
            }
            assert!(store.commit_group(uploads).iter().all(Result::is_ok));
            for (n, k) in [("a", 5), ("x", 1), ("y", 3), ("A", 4), ("z", 6)] {
                let got = fs::read_to_string(dir.path().join(n)).expect("read");
                assert_eq!(got, format!("new{k}"), "round {round}: {n}");
            }
            assert_eq!(fs::read_dir(dir.path()).expect("ls").count(), 10);
        }
    }

    /// Two groups committed in turn by two threads, the second written out ahead while
    /// the first commits: of a name in both, the first group's upload wins, every time,
    /// also when the second needs it as a directory (none is made ahead where the first
    /// group may publish a file); every other byte lands; the files written ahead give
    /// their room back.
    /// Within one group, a file wins its name over a later upload that needs it as a
    /// directory, as in request order: no directory is made for the later one before its
    /// turn, written ahead or not (names compared without case for that; on a
    /// case-sensitive file system `B/z` still goes in, in its turn); and a directory made
    /// by an earlier upload still takes the name of a later file.
    #[test]
    fn a_file_wins_its_name_over_a_later_upload_of_its_group_that_needs_it_as_a_directory() {
        for (ahead, per_file) in [(false, false), (true, false), (false, true)] {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = open_store(dir.path(), per_file);
            assert_eq!(
                store.temps.batch_sync(),
                !per_file && crate::sys::at::syncfs_reports_errors()
            );
            let names = ["b", "b/x", "c/y", "c", "B/z", "d/e/f", "d/e"];
            let mut files: Vec<Box<dyn PendingFile>> = names
                .iter()
                .map(|n| {
                    let mut up = store.create_file(&name(n), false).expect("create");
                    up.write_all(n.as_bytes()).expect("write");
                    up.release();
                    Box::new(up) as Box<dyn PendingFile>
                })
                .collect();
            if ahead {
                let mut refs: Vec<&mut dyn PendingFile> = files
                    .iter_mut()
                    .map(|f| &mut **f as &mut dyn PendingFile)
                    .collect();
                store.write_ahead(&mut refs, &|_| false);
                assert!(!dir.path().join("b").exists(), "no directory b made ahead");
            }
            let results = store.commit_group(files);
            let ok: Vec<bool> = results.iter().map(Result::is_ok).collect();
            assert_eq!(
                ok,
                [true, false, true, false, true, true, false],
                "written ahead: {ahead}, file by file: {per_file}: {results:?}"
            );
            assert_eq!(fs::read(dir.path().join("b")).expect("file b"), b"b");
            assert_eq!(fs::read(dir.path().join("c/y")).expect("c/y"), b"c/y");
            assert_eq!(fs::read(dir.path().join("d/e/f")).expect("d/e/f"), b"d/e/f");
            assert_eq!(fs::read(dir.path().join("B/z")).expect("B/z"), b"B/z");
            assert!(matches!(results[3], Err(Error::AlreadyExists { .. })));
            assert!(temp_files(dir.path()).is_empty());
            assert_eq!(store.temps.open_ahead(), 0);
        }
    }

    #[test]
    fn a_group_written_ahead_publishes_after_the_group_before() {
        for round in 0..10 {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = DirStore::open(dir.path()).expect("open");
            let group = |names: &[&str], tag: &str| -> Vec<Box<dyn PendingFile>> {
                names
                    .iter()
                    .map(|n| {
                        let mut up = store.create_file(&name(n), false).expect("create");
                        up.write_all(format!("{n}{tag}").as_bytes()).expect("write");
                        if n.ends_with("big") {
                            // Too big for memory: received into a temporary file.
                            up.write_all(&[7; BUFFERED_MAX]).expect("write");
                        }
                        up.release();
                        Box::new(up) as Box<dyn PendingFile>
                    })
                    .collect()
            };
            let first = group(&["a", "b", "c"], "1");
            let mut second = group(&["a", "b/x", "d", "b/y", "e/big", "f/z"], "2");
            let mut files: Vec<&mut dyn PendingFile> = second
                .iter_mut()
                .map(|f| &mut **f as &mut dyn PendingFile)
                .collect();
            // The first group publishes a file `b`: no directory `b` is made ahead.
            let moved = store.write_ahead(&mut files, &|dir| dir.eq_ignore_ascii_case("b"));
            if store.temps.batch_sync() {
                // What a, d and f/z held in memory ("a2", "d2", "f/z2") is on disk now.
                assert_eq!(moved, 8, "round {round}");
                // a, d, f/z (its directory made ahead) and e/big (in a temporary file
                // already); not b/x and b/y: their directory, made ahead of its turn,
                // would take the name of the first group's file `b`.
                let ahead: Vec<bool> = second
                    .iter()
                    .map(|f| {
                        f.as_any()
                            .downcast_ref::<DirUpload>()
                            .is_some_and(|u| u.ahead.is_some())
                    })
                    .collect();
                assert_eq!(
                    ahead,
                    [true, false, true, false, true, true],
                    "round {round}"
                );
                assert_eq!(store.temps.open_ahead(), 4);
                assert!(!dir.path().join("b").exists(), "no directory b made ahead");
                assert!(dir.path().join("f").is_dir(), "f was made ahead");
            }
            let (published, turn) = std::sync::mpsc::channel::<()>();
            let (results1, results2) = std::thread::scope(|s| {
                let store = &store;
                let later = s.spawn(move || {
                    let wait_turn = || turn.recv().expect("the first group gives its turn");
                    store.commit_group_in_turn(second, &wait_turn, &|| {})
                });
                let give = || {
                    // The second group's thread may be gone only if it did not wait.
                    let _ = published.send(());
                };
                // The first group is slow to start (its own turn comes late): the second,
                // written ahead, would publish first but for its turn.
                let late = || std::thread::sleep(std::time::Duration::from_millis(50));
                let results1 = store.commit_group_in_turn(first, &late, &give);
                (results1, later.join().expect("second group"))
            });
            assert!(results1.iter().all(Result::is_ok), "{results1:?}");
            let ok: Vec<bool> = results2.iter().map(Result::is_ok).collect();
            assert_eq!(
                ok,
                [false, false, true, false, true, true],
                "round {round}: {results2:?}"
            );
            for (n, tag) in [("a", 1), ("b", 1), ("c", 1), ("d", 2), ("f/z", 2)] {
                let got = fs::read_to_string(dir.path().join(n)).expect("read");
                assert_eq!(got, format!("{n}{tag}"), "round {round}");
            }
            let big = fs::read(dir.path().join("e/big")).expect("read");
            assert!(big.starts_with(b"e/big2") && big.len() == 6 + BUFFERED_MAX);
            assert_eq!(
                store.temps.open_ahead(),
                0,
                "round {round}: room given back"
            );
            assert!(
                temp_files(dir.path()).is_empty(),
                "a temporary file is left"
            );
        }
    }

    /// A group with small files below a mount point (another file system, which the root's
    /// `syncfs` does not cover) and in more than two directories is committed whole: each
    /// file there and its directory are synced on their own (not observable here: tmpfs
    /// syncs are no-ops), and every byte lands where its name says. Needs root to mount a
    /// tmpfs; skipped otherwise.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_group_below_a_mount_point_is_committed_whole() {
        let Some(root) = crate::store::test_util::root_with_tmpfs() else {
            return;
        };
        let store = DirStore::open(root.path()).expect("open");
        assert!(store.temps.batch_sync() || !crate::sys::unnamed_files_possible());
        let below = store.dir(Some("m"), false).expect("m");
        assert!(!store.temps.on_root_fs(&below), "m is another file system");
        // m/new/big is too big for memory: it waits in the root and is copied across.
        let names = ["m/a", "m/new/b", "x/c", "y/d", "z/e", "f", "m/new/big"];
        let len = |i: usize| if i == 6 { BUFFERED_MAX + 10 } else { 1000 + i };
        let mut uploads: Vec<Box<dyn PendingFile>> = Vec::new();
        for (i, path) in names.iter().enumerate() {
            let mut up = store.create_file(&name(path), false).expect("create");
            up.write_all(&vec![i as u8 + 1; len(i)]).expect("write");
            up.release();
            uploads.push(Box::new(up));
        }
        let results = store.commit_group(uploads);
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        for (i, path) in names.iter().enumerate() {
            let got = fs::read(root.path().join(path)).expect("read");
            assert!(got == vec![i as u8 + 1; len(i)], "{path} differs");
        }
        assert!(
            temp_files(root.path()).is_empty(),
            "a temporary file is left"
        );
        let made = store.dir(Some("m/new"), false).expect("m/new");
        assert_eq!(
            below.device(),
            made.device(),
            "m/new was made on the mounted file system"
        );
        if store.temps.batch_sync() {
            // x, y and z wait for the root's sync; m/new was synced when it was made.
            assert_eq!(store.temps.dirs_made(), 3);
        }
        drop(store);
    }

    /// Bytes written with `write` in uneven pieces, some uploads spilling to a file, are
    /// committed as a group exactly, through unnamed files and through named ones; the
    /// helper threads all go back to the budget.
    #[test]
    fn group_commits_store_every_byte_with_and_without_unnamed_files() {
        for unnamed in [true, false] {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = DirStore::open(dir.path()).expect("open");
            if !unnamed {
                store.temps.stop_unnamed();
            }
            let sizes = [0, 1, 4096, BUFFERED_MAX, BUFFERED_MAX + 1, 5000, 70_000];
            let mut uploads: Vec<Box<dyn PendingFile>> = Vec::new();
            let mut expected = Vec::new();
            for (i, len) in sizes.into_iter().enumerate() {
                let data: Vec<u8> = (0..len).map(|k| (k * 7 + i * 13) as u8).collect();
                let mut up = store
                    .create_file(&name(&format!("f{i}")), false)
                    .expect("create");
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
                store.temps.unnamed_enabled(),
                unnamed && crate::sys::unnamed_files_possible()
            );
            assert_eq!(store.helpers.load(Ordering::Relaxed), 0);
        }
    }

    /// All the group commits of a store together borrow at most [`COMMIT_HELPERS`] threads,
    /// and give them back.
    #[test]
    fn helpers_come_from_a_bounded_budget() {
        let budget = AtomicUsize::new(0);
        let first = Helpers::borrow(&budget, 3);
        let second = Helpers::borrow(&budget, 3);
        let third = Helpers::borrow(&budget, 3);
        assert_eq!((first.count, second.count, third.count), (3, 3, 2));
        assert_eq!(Helpers::borrow(&budget, 3).count, 0);
        drop(second);
        assert_eq!(Helpers::borrow(&budget, 5).count, 3);
        drop((first, third));
        assert_eq!(budget.load(Ordering::Relaxed), 0);
    }

    /// The store takes its own uploads back from `Box<dyn PendingFile>` (so they are
    /// committed together); another directory's or another backend's it leaves whole.
    #[test]
    fn a_store_recognises_its_own_pending_files() {
        let (here, there) = (
            tempfile::tempdir().expect("tempdir"),
            tempfile::tempdir().expect("tempdir"),
        );
        let store = DirStore::open(here.path()).expect("open");
        let other = DirStore::open(there.path()).expect("open");
        let ours = store.create(&name("a"), 1).expect("create");
        let theirs = other.create(&name("a"), 1).expect("create");
        let memory = MemStore::new().create(&name("a"), 1).expect("create");
        assert!(matches!(claim(ours, &store.temps), Member::Ours(_)));
        assert!(matches!(claim(theirs, &store.temps), Member::Foreign(_)));
        assert!(matches!(claim(memory, &store.temps), Member::Foreign(_)));
    }

    /// A pending file the store did not make (another backend's, another directory's) is
    /// committed on its own, in its place in the group, and never lost.
    #[test]
    fn foreign_pending_files_are_committed_on_their_own() {
        let (here, there) = (
            tempfile::tempdir().expect("tempdir"),
            tempfile::tempdir().expect("tempdir"),
        );
        let store = DirStore::open(here.path()).expect("open");
        let other_dir = DirStore::open(there.path()).expect("open");
        let memory = MemStore::new();
        let mut files: Vec<Box<dyn PendingFile>> = Vec::new();
        let mut ours = store.create(&name("a"), 4).expect("create");
        ours.write_all(b"ours").expect("write");
        files.push(ours);
        let mut in_memory = memory.create(&name("a"), 6).expect("create");
        in_memory.write_all(b"memory").expect("write");
        files.push(in_memory);
        let mut elsewhere = other_dir.create(&name("a"), 9).expect("create");
        elsewhere.write_all(b"elsewhere").expect("write");
        files.push(elsewhere);
        let results = store.commit_group(files);
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        assert_eq!(fs::read(here.path().join("a")).expect("read"), b"ours");
        assert_eq!(
            fs::read(there.path().join("a")).expect("read"),
            b"elsewhere"
        );
        let mut source = memory.open(&name("a"), 0).expect("open");
        let mut got = Vec::new();
        std::io::Read::read_to_end(&mut source.reader, &mut got).expect("read");
        assert_eq!(got, b"memory");
    }

    /// Two stores on one directory: the first upload of a name in the group wins it even
    /// when it is the other store's, and nothing after it overtakes it.
    #[test]
    fn a_foreign_file_first_in_the_group_keeps_its_name() {
        for round in 0..10 {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = DirStore::open(dir.path()).expect("open");
            let twin = DirStore::open(dir.path()).expect("open");
            let mut files: Vec<Box<dyn PendingFile>> = Vec::new();
            let mut first = twin.create(&name("a"), 5).expect("create");
            first.write_all(b"first").expect("write");
            files.push(first);
            let mut later = store.create(&name("a"), 5).expect("create");
            later.write_all(b"later").expect("write");
            files.push(later);
            let mut other = store.create(&name("b"), 1).expect("create");
            other.write_all(b"b").expect("write");
            files.push(other);
            let results = store.commit_group(files);
            assert!(results[0].is_ok(), "round {round}: {results:?}");
            assert!(
                matches!(results[1], Err(Error::AlreadyExists { .. })),
                "round {round}: {results:?}"
            );
            assert!(results[2].is_ok(), "round {round}: {results:?}");
            assert_eq!(fs::read(dir.path().join("a")).expect("read"), b"first");
            assert_eq!(fs::read(dir.path().join("b")).expect("read"), b"b");
            assert!(temp_files(dir.path()).is_empty());
        }
    }
}
