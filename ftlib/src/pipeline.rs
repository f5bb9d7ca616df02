//! Pipelining, as this implementation does it: how many requests a client sends ahead, when
//! a receiver commits the uploads it has verified as one group, and the bookkeeping that
//! group-commits them and answers each in request order (shared by server and client).
//!
//! None of these is a wire limit (those are in [`crate::protocol`]); another
//! implementation may choose differently (`docs/PROTOCOL.md`, section 1).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use crate::error::{Error, Result};
use crate::store::{PendingFile, Store};

/// Most pipelined requests a client has in flight at once.
pub const PIPELINE_WINDOW: usize = 2048;

/// Most verified pipelined uploads a receiver commits as one group (more wait for the next
/// group).
pub const GROUP_MAX: usize = 1024;

/// Receivers commit a group of uploads once it holds this many bytes in memory (as the
/// store says its uploads hold them: [`Store::held_in_memory`]; a directory keeps those of
/// at most [`BUFFERED_MAX`](crate::store::BUFFERED_MAX) bytes in memory), which bounds the
/// memory a connection's waiting small uploads take.
pub const GROUP_BYTES: u64 = 4 * 1024 * 1024;

/// True when a receiver's waiting uploads make a full group, to be committed before it
/// reads on: [`GROUP_MAX`] files, or [`GROUP_BYTES`] bytes.
pub(crate) fn group_full(files: usize, bytes: u64) -> bool {
    files >= GROUP_MAX || bytes >= GROUP_BYTES
}

/// A received upload waiting for its commit: the verified pending file and its size, or
/// why it failed.
pub(crate) type Outcome = Result<(Box<dyn PendingFile>, u64)>;

/// Group-commits the received uploads among `outcomes` (each a verified pending file and
/// its size, or why it failed) and returns every outcome, in order, with its size on
/// success.
pub(crate) fn commit_outcomes<T>(
    store: &dyn Store,
    outcomes: Vec<(T, Outcome)>,
) -> Vec<(T, Result<u64>)> {
    commit_outcomes_in_turn(store, outcomes, &|| {}, &|| {})
}

/// Most groups of one connection committed in the background at once. With several, each
/// group is written out as soon as it is cut, while those before wait for the disk, and
/// one sync makes the earlier ones' names and the later ones' bytes durable
/// ([`Store::commit_group_in_turn`]): the syncs take turns with the receiving instead of
/// stopping it. Beyond [`COMMITTING_ALWAYS`], their memory is bounded apart
/// ([`HELD_COMMITTING`]).
pub(crate) const COMMITTING: usize = 8;

/// Groups of one connection that may always be committed at once, whatever they hold in
/// memory: each under [`GROUP_BYTES`] plus one upload.
pub(crate) const COMMITTING_ALWAYS: usize = 2;

/// Most bytes more than [`COMMITTING_ALWAYS`] groups of one connection being committed
/// may hold in memory together (counted as [`Store::held_in_memory`] says, until
/// [`Store::write_ahead`] has moved them to disk): two full groups. So, with the group
/// being received, a connection's waiting small uploads hold about three times
/// [`GROUP_BYTES`] at most (each group may pass it by one upload), however many groups
/// are in flight.
pub(crate) const HELD_COMMITTING: u64 = 2 * GROUP_BYTES;

/// Whether a group holding `bytes` in memory may start its commit in the background
/// while `in_flight` groups, holding `held` bytes together, are being committed: always
/// while fewer than [`COMMITTING_ALWAYS`] are, else while fewer than [`COMMITTING`] are
/// and they would hold at most [`HELD_COMMITTING`] bytes.
pub(crate) fn may_commit(in_flight: usize, held: u64, bytes: u64) -> bool {
    in_flight < COMMITTING_ALWAYS
        || (in_flight < COMMITTING && held.saturating_add(bytes) <= HELD_COMMITTING)
}

/// The bytes a group being committed still holds in memory: set when it is cut, lowered
/// once its files are written out ahead ([`commit_in_turn`]), which then settles it.
#[derive(Debug, Default)]
pub(crate) struct Held {
    bytes: AtomicU64,
    settled: AtomicBool,
}

impl Held {
    /// A group's, holding `bytes` when it is cut.
    pub(crate) fn new(bytes: u64) -> Arc<Held> {
        Arc::new(Held {
            bytes: AtomicU64::new(bytes),
            settled: AtomicBool::new(false),
        })
    }

    /// What it holds now.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Acquire)
    }

    /// Whether it may still go down before the group's commit ends (its files are being
    /// written out ahead). A receiver waiting for room then waits for that, not for the
    /// oldest group's whole commit.
    fn may_go_down(&self) -> bool {
        !self.settled.load(Ordering::Acquire)
    }

    /// `moved` bytes went to disk; no more will before the commit ends.
    fn settle(&self, moved: u64) {
        let _ = self
            .bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |h| {
                Some(h.saturating_sub(moved))
            });
        self.settled.store(true, Ordering::Release);
    }
}

/// How long a receiver out of room to commit another group sleeps before it looks again
/// whether a group being written out ahead has freed its bytes.
const ROOM_POLL: std::time::Duration = std::time::Duration::from_micros(500);

/// For a receiver out of room to commit another group ([`may_commit`]), given whether the
/// oldest group being committed is done and what each holds: while that one is not and
/// another is still being written out ahead (its bytes about to leave memory), waits a
/// little ([`ROOM_POLL`]) and returns true; else returns false, and the oldest group's
/// results are what to wait for.
pub(crate) fn waited_for_write_ahead<'a>(
    oldest_done: bool,
    mut held: impl Iterator<Item = &'a Held>,
) -> bool {
    if oldest_done || !held.any(Held::may_go_down) {
        return false;
    }
    std::thread::sleep(ROOM_POLL);
    true
}

/// Settles a group's [`Held`] when dropped, also when its write-ahead panics, so that no
/// receiver waits for it for ever.
struct SettleOnDrop<'a>(&'a Held, u64);

impl Drop for SettleOnDrop<'_> {
    fn drop(&mut self) {
        self.0.settle(self.1);
    }
}

/// A flag that one group commit gives once it has published its files, and the next waits
/// for before publishing its own.
#[derive(Default)]
pub(crate) struct Turn {
    given: Mutex<bool>,
    changed: Condvar,
}

impl Turn {
    /// Waits until it is given.
    pub(crate) fn wait(&self) {
        let mut given = self.given.lock().unwrap_or_else(|p| p.into_inner());
        while !*given {
            given = self.changed.wait(given).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Whether it was given.
    pub(crate) fn is_given(&self) -> bool {
        *self.given.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn give(&self) {
        *self.given.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.changed.notify_all();
    }
}

/// Gives its turn when the commit does, or when dropped: also when the committing thread
/// ends early or panics, so that the group after never waits for ever.
pub(crate) struct GiveOnDrop(pub(crate) Arc<Turn>);

impl Drop for GiveOnDrop {
    fn drop(&mut self) {
        self.0.give();
    }
}

/// Commits `outcomes` as one of a sequence of groups: their files are written out at once
/// ([`Store::write_ahead`], with `taken_before` saying which paths a group before may
/// still publish a file at; `held` is lowered by the bytes that moved out of memory),
/// while the groups before may still be committing, and published once its turn `before`
/// is given; `published` is given once they are ([`Store::commit_group_in_turn`]).
pub(crate) fn commit_in_turn<T>(
    store: &dyn Store,
    mut outcomes: Vec<(T, Outcome)>,
    before: Option<&Turn>,
    published: &GiveOnDrop,
    taken_before: &dyn Fn(&str) -> bool,
    held: &Held,
) -> Vec<(T, Result<u64>)> {
    let mut files: Vec<&mut dyn PendingFile> = outcomes
        .iter_mut()
        .filter_map(|(_, outcome)| outcome.as_mut().ok())
        .map(|(file, _)| &mut **file as &mut dyn PendingFile)
        .collect();
    let mut settle = SettleOnDrop(held, 0);
    settle.1 = store.write_ahead(&mut files, taken_before);
    drop(settle);
    let wait_turn = || before.map_or((), Turn::wait);
    let give_turn = || published.0.give();
    commit_outcomes_in_turn(store, outcomes, &wait_turn, &give_turn)
}

/// [`commit_outcomes`] for one of a sequence of groups committed in request order by
/// several threads: [`Store::commit_group_in_turn`].
fn commit_outcomes_in_turn<T>(
    store: &dyn Store,
    outcomes: Vec<(T, Outcome)>,
    wait_turn: &dyn Fn(),
    published: &dyn Fn(),
) -> Vec<(T, Result<u64>)> {
    let mut files = Vec::new();
    let sized: Vec<_> = outcomes
        .into_iter()
        .map(|(id, outcome)| {
            let size = outcome.map(|(file, size)| {
                files.push(file);
                size
            });
            (id, size)
        })
        .collect();
    let mut committed = store
        .commit_group_in_turn(files, wait_turn, published)
        .into_iter();
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

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;
    use crate::store::{MemStore, Name};

    /// A group may start its commit while fewer than `COMMITTING_ALWAYS` are under way,
    /// whatever they hold; beyond, while fewer than `COMMITTING` are and they hold, with
    /// it, at most `HELD_COMMITTING` bytes in memory.
    #[test]
    fn groups_commit_at_once_within_their_count_and_memory() {
        assert!(may_commit(0, 0, GROUP_BYTES * 10));
        assert!(
            may_commit(1, GROUP_BYTES * 2, GROUP_BYTES * 2),
            "two always"
        );
        assert!(may_commit(2, GROUP_BYTES, GROUP_BYTES));
        assert!(!may_commit(2, GROUP_BYTES, GROUP_BYTES + 1));
        assert!(!may_commit(3, 2 * GROUP_BYTES, 1));
        // Written out ahead, groups hold nothing: as many as COMMITTING.
        assert!(may_commit(COMMITTING - 1, 0, GROUP_BYTES));
        assert!(!may_commit(COMMITTING, 0, 0));
        assert!(!may_commit(2, u64::MAX, 1), "no overflow");
    }

    /// Failed outcomes keep their place and their error; received ones are committed as a
    /// group, the first of a repeated name winning; every size comes back with its id.
    #[test]
    fn outcomes_are_answered_in_order() {
        let store = MemStore::new();
        let pending = |name: &str, bytes: &[u8]| -> Outcome {
            let name = Name::new(name)?;
            let mut file = store.create(&name, bytes.len() as u64)?;
            file.write_all(bytes).map_err(|e| Error::io("writing", e))?;
            Ok((file, bytes.len() as u64))
        };
        let outcomes = vec![
            (0, pending("a", b"first")),
            (1, Err(Error::Cancelled)),
            (2, pending("b", b"bb")),
            (3, pending("a", b"second")),
        ];
        let results = commit_outcomes(&store, outcomes);
        let ids: Vec<i32> = results.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, [0, 1, 2, 3]);
        assert!(matches!(results[0].1, Ok(5)));
        assert!(matches!(results[1].1, Err(Error::Cancelled)));
        assert!(matches!(results[2].1, Ok(2)));
        assert!(matches!(results[3].1, Err(Error::AlreadyExists { .. })));
        let mut got = String::new();
        let name = Name::new("a").expect("name");
        let mut source = store.open(&name, 0).expect("open");
        source.reader.read_to_string(&mut got).expect("read");
        assert_eq!(got, "first");
    }
}
