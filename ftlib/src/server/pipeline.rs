//! The server's side of pipelining: received `PutPipelined` uploads wait in a [`Group`],
//! which is committed through [`commit_outcomes`] and answered and reported in request
//! order. It is committed when it is full ([`group_full`], counting what the store holds in
//! memory) — in the background, while the next group is received, as many groups at once
//! as [`may_commit`] allows — when no input is waiting (the client may be waiting for the
//! answers), before any other answer, and when the connection ends — also when the client
//! is gone, so that verified uploads are always published.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Ctx;
use super::upload::stored;
use crate::connection::Connection;
use crate::pipeline::{
    GiveOnDrop, Held, Outcome, Turn, commit_in_turn, commit_outcomes, group_full, may_commit,
    waited_for_write_ahead,
};
use crate::protocol::{DIGEST_LEN, Response, clip_message};
use crate::report::{Op, Report};

/// A pipelined upload whose body was read: the verified upload and its size, or why it
/// was refused.
pub(super) struct Waiting {
    pub(super) name: String,
    /// What it holds in memory, as the store says (`Store::held_in_memory`; none when it
    /// was refused).
    pub(super) held: u64,
    pub(super) started: Instant,
    pub(super) outcome: Outcome,
    /// A v4 `Upload`, answered `Uploaded` with its name (else `Stored`).
    pub(super) named: bool,
    /// The verified digest of what was received, for the report.
    pub(super) digest: Option<[u8; DIGEST_LEN]>,
    /// The bytes of its body received, for the report of a body that failed (0 when it
    /// was refused before its body).
    pub(super) received: u64,
}

/// What a waiting upload's answer and report need once it is committed.
pub(super) struct Pending {
    name: String,
    started: Instant,
    named: bool,
    digest: Option<[u8; DIGEST_LEN]>,
    received: u64,
}

/// A group's uploads, each with its outcome after the commit.
type Committed = Vec<(Pending, crate::error::Result<u64>)>;

/// How often a connection with no input looks again whether the oldest group being
/// committed is done (or input came): the most an answer waits beyond its commit.
const IDLE_POLL: Duration = Duration::from_micros(500);

/// A group committed in the background.
struct InFlight {
    handle: std::thread::JoinHandle<Committed>,
    /// The names of its uploads, lower-cased: a group after it makes no directory of
    /// these names ahead of its turn.
    names: Arc<HashSet<String>>,
    /// Set once it has published its files (or its thread ended): the next group's turn.
    published: Arc<Turn>,
    /// The bytes it still holds in memory.
    held: Arc<Held>,
}

/// The pipelined uploads of one connection waiting for their commit, in request order,
/// and the groups before them being committed in the background meanwhile.
#[derive(Default)]
pub(super) struct Group {
    waiting: Vec<Waiting>,
    /// Their declared sizes together.
    bytes: u64,
    /// The groups before, oldest first, committed by other threads while this one is
    /// received; their answers go out before any later one.
    in_flight: VecDeque<InFlight>,
    /// The account logged in on the connection, named in the reports.
    pub(super) user: Option<String>,
    /// Set when a group's answers were lost (its commit thread panicked): no later answer
    /// is sent, as the client would take it for one of the lost group's.
    answers_lost: bool,
}

impl Group {
    /// Adds a received upload; its answer waits for the group's commit.
    pub(super) fn push(&mut self, upload: Waiting) {
        self.bytes = self.bytes.saturating_add(upload.held);
        self.waiting.push(upload);
    }

    /// True when nothing waits, nor is being committed.
    pub(super) fn is_empty(&self) -> bool {
        self.waiting.is_empty() && self.in_flight.is_empty()
    }

    /// Does what is due before reading on, if anything. While input keeps coming, uploads
    /// wait; a full group waits, while [`may_commit`] says no (as many groups as may be
    /// are being committed, or they hold as many bytes in memory as they may), for the
    /// oldest to be answered, then is committed in the background while the next one is
    /// received. With no input waiting (the client may be waiting for answers), committed
    /// groups are answered as they finish, and whatever arrived meanwhile starts its
    /// commit as soon as [`may_commit`] allows: so a group is what arrived while the
    /// ones before were being committed, and grows with the cost of a commit (a slow sync
    /// makes larger groups and fewer syncs). False when answers could not be sent.
    pub(super) fn advance(&mut self, ctx: &Ctx, conn: &mut Connection) -> bool {
        let mut sending = true;
        loop {
            if conn.input_pending() {
                if !group_full(self.waiting.len(), self.bytes) {
                    return sending;
                }
                while !self.may_commit() {
                    sending &= self.make_room(ctx, conn);
                }
                return self.commit_in_background(ctx, conn) && sending;
            }
            if self
                .in_flight
                .front()
                .is_some_and(|f| f.handle.is_finished())
            {
                sending &= self.answer_oldest(ctx, conn);
            } else if !self.waiting.is_empty() && self.may_commit() {
                sending &= self.commit_in_background(ctx, conn);
            } else if self.in_flight.is_empty() {
                return sending;
            } else {
                std::thread::sleep(IDLE_POLL);
            }
        }
    }

    /// Whether the waiting uploads may start their commit in the background now.
    fn may_commit(&self) -> bool {
        let held = self.in_flight.iter().map(|f| f.held.bytes());
        may_commit(self.in_flight.len(), held.sum(), self.bytes)
    }

    /// Waits a little for room to commit another group: for a group being written out
    /// ahead, whose bytes are about to leave memory, else for the oldest group's answers.
    /// False when answers could not be sent.
    fn make_room(&mut self, ctx: &Ctx, conn: &mut Connection) -> bool {
        let oldest_done = self
            .in_flight
            .front()
            .is_some_and(|f| f.handle.is_finished());
        if waited_for_write_ahead(oldest_done, self.in_flight.iter().map(|f| &*f.held)) {
            return true;
        }
        self.answer_oldest(ctx, conn)
    }

    /// Starts committing the waiting uploads on another thread (here and now, after the
    /// groups under way, if no thread can start): their files are written out at once
    /// ([`crate::store::Store::write_ahead`]), and published once the group before has
    /// published its own. False when answers could not be sent.
    fn commit_in_background(&mut self, ctx: &Ctx, conn: &mut Connection) -> bool {
        debug_assert!(self.may_commit());
        let held = Held::new(self.bytes);
        let lowered = Arc::clone(&held);
        let names: Arc<HashSet<String>> =
            Arc::new(self.waiting.iter().map(|w| w.name.to_lowercase()).collect());
        let earlier: Vec<Arc<HashSet<String>>> = self
            .in_flight
            .iter()
            .map(|f| Arc::clone(&f.names))
            .collect();
        // Shared with the thread, so that they are not lost if it cannot start.
        let outcomes = Arc::new(Mutex::new(Some(self.take())));
        let theirs = Arc::clone(&outcomes);
        let store = Arc::clone(&ctx.store);
        let before = self.in_flight.back().map(|f| Arc::clone(&f.published));
        let published = Arc::new(Turn::default());
        let give = GiveOnDrop(Arc::clone(&published));
        let committing = std::thread::Builder::new()
            .name("ft group commit".into())
            .spawn(move || {
                let outcomes = theirs.lock().unwrap_or_else(|p| p.into_inner()).take();
                let outcomes = outcomes.unwrap_or_default();
                let taken_before = |path: &str| {
                    let path = path.to_lowercase();
                    earlier.iter().any(|names| names.contains(&path))
                };
                commit_in_turn(
                    store.as_ref(),
                    outcomes,
                    before.as_deref(),
                    &give,
                    &taken_before,
                    &lowered,
                )
            });
        match committing {
            Ok(handle) => {
                self.in_flight.push_back(InFlight {
                    handle,
                    names,
                    published,
                    held,
                });
                true
            }
            // No thread to spare: committed here and now instead, after the groups before.
            Err(_) => {
                let sending = self.answer_in_flight(ctx, conn);
                let outcomes = outcomes.lock().unwrap_or_else(|p| p.into_inner()).take();
                let committed = commit_outcomes(ctx.store.as_ref(), outcomes.unwrap_or_default());
                self.answer(ctx, conn, committed) && sending
            }
        }
    }

    /// The waiting uploads, taken for their commit.
    fn take(&mut self) -> Vec<(Pending, Outcome)> {
        self.bytes = 0;
        self.waiting
            .drain(..)
            .map(|w| {
                let pending = Pending {
                    name: w.name,
                    started: w.started,
                    named: w.named,
                    digest: w.digest,
                    received: w.received,
                };
                (pending, w.outcome)
            })
            .collect()
    }

    /// Waits for the groups committed in the background, if any, and answers them in order.
    fn answer_in_flight(&mut self, ctx: &Ctx, conn: &mut Connection) -> bool {
        let mut sending = true;
        while !self.in_flight.is_empty() {
            sending &= self.answer_oldest(ctx, conn);
        }
        sending
    }

    /// Waits for the oldest group committed in the background, if any, and answers it.
    fn answer_oldest(&mut self, ctx: &Ctx, conn: &mut Connection) -> bool {
        let Some(InFlight { handle, .. }) = self.in_flight.pop_front() else {
            return true;
        };
        match handle.join() {
            Ok(committed) => self.answer(ctx, conn, committed),
            // The commit thread panicked: the connection cannot say what became of them,
            // nor answer anything after them.
            Err(_) => {
                self.answers_lost = true;
                false
            }
        }
    }

    /// Commits the waiting uploads as one group (after answering the groups committed in
    /// the background, if any), then answers and reports each in order. Every one is
    /// committed and reported even when the answers cannot be sent. False when they could
    /// not.
    pub(super) fn commit(&mut self, ctx: &Ctx, conn: &mut Connection) -> bool {
        let sending = self.answer_in_flight(ctx, conn);
        if self.waiting.is_empty() {
            return sending;
        }
        let outcomes = self.take();
        let committed = commit_outcomes(ctx.store.as_ref(), outcomes);
        self.answer(ctx, conn, committed) && sending
    }

    /// Answers and reports each upload of a committed group, in order.
    fn answer(&mut self, ctx: &Ctx, conn: &mut Connection, committed: Committed) -> bool {
        let mut sending = !self.answers_lost;
        for (pending, result) in committed {
            let Pending {
                name,
                started,
                named,
                digest,
                received,
            } = pending;
            if sending {
                let answer = match &result {
                    Ok(size) => stored(named, &name, *size),
                    Err(e) => Response::Error {
                        kind: e.kind(),
                        message: clip_message(e.to_string()),
                    },
                };
                sending = conn.send(&answer).is_ok();
            }
            let (bytes, error) = match &result {
                Ok(size) => (*size, None),
                Err(e) => (received, Some(e)),
            };
            let report = Report::new(conn.peer(), Op::Put, Some(&name), started, bytes, error)
                .with_digest(digest);
            ctx.report(&report.by(self.user.as_deref()));
        }
        // The client may be waiting for them (and a commit may run before the next read).
        sending && conn.flush().is_ok()
    }
}
