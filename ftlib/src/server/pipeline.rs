//! The server's side of pipelining: received `PutPipelined` uploads wait in a [`Group`],
//! which is committed through [`commit_outcomes`] and answered and reported in request
//! order. It is committed when it is full ([`group_full`], counting declared sizes), when no input is waiting (the client may be waiting for the answers), before
//! any other answer, and when the connection ends — also when the client is gone, so that
//! verified uploads are always published.

use std::time::Instant;

use super::Ctx;
use crate::connection::Connection;
use crate::pipeline::{Outcome, commit_outcomes, group_full};
use crate::protocol::{Response, clip_message};
use crate::report::{Op, Report};

/// A pipelined upload whose body was read: the verified upload and its size, or why it
/// was refused.
pub(super) struct Waiting {
    pub(super) name: String,
    /// As declared: what it holds in memory at most.
    pub(super) size: u64,
    pub(super) started: Instant,
    pub(super) outcome: Outcome,
}

/// The pipelined uploads of one connection waiting for their commit, in request order.
#[derive(Default)]
pub(super) struct Group {
    waiting: Vec<Waiting>,
    /// Their declared sizes together.
    bytes: u64,
    /// The account logged in on the connection, named in the reports.
    pub(super) user: Option<String>,
}

impl Group {
    /// Adds a received upload; its answer waits for the group's commit.
    pub(super) fn push(&mut self, upload: Waiting) {
        self.bytes = self.bytes.saturating_add(upload.size);
        self.waiting.push(upload);
    }

    /// True when nothing waits.
    pub(super) fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// True when uploads wait and should be committed before reading on: the group is
    /// full, or no input is waiting (the client may be waiting for the answers).
    pub(super) fn due(&self, conn: &mut Connection) -> bool {
        !self.waiting.is_empty()
            && (group_full(self.waiting.len(), self.bytes) || !conn.input_pending())
    }

    /// Commits the waiting uploads as one group, then answers and reports each in order.
    /// Every one is committed and reported even when the answers cannot be sent. False
    /// when they could not.
    pub(super) fn commit(&mut self, ctx: &Ctx, conn: &mut Connection) -> bool {
        if self.waiting.is_empty() {
            return true;
        }
        self.bytes = 0;
        let outcomes = self
            .waiting
            .drain(..)
            .map(|w| ((w.name, w.started), w.outcome))
            .collect();
        let mut sending = true;
        for ((name, started), result) in commit_outcomes(ctx.store.as_ref(), outcomes) {
            if sending {
                let answer = match &result {
                    Ok(size) => Response::Stored { size: *size },
                    Err(e) => Response::Error {
                        kind: e.kind(),
                        message: clip_message(e.to_string()),
                    },
                };
                sending = conn.send(&answer).is_ok();
            }
            let (bytes, error) = match &result {
                Ok(size) => (*size, None),
                Err(e) => (0, Some(e)),
            };
            let report = Report::new(conn.peer(), Op::Put, Some(&name), started, bytes, error);
            ctx.report(&report.by(self.user.as_deref()));
        }
        sending
    }
}
