//! The client side of pipelining, in one place: many uploads or downloads over one
//! connection with up to [`PIPELINE_WINDOW`] requests in flight, verdicts settled in request
//! order, and verified downloads committed in groups (the limits and the group bookkeeping
//! are [`crate::pipeline`]'s, shared with the server).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use super::exchange::{Sink, unexpected};
use super::local::{local_attrs, open_local};
use super::{Client, Progress};
use crate::error::{Error, Result};
use crate::pipeline::{Outcome, PIPELINE_WINDOW, commit_outcomes, group_full};
use crate::protocol::{How, MAX_PIPELINED, RESUME_VERSION, Response};
use crate::store::{DirStore, DirUpload, Name, PendingFile};
use crate::transfer::{self, Digest, Hooks, Span};

/// A pipelined upload sent and waiting for its verdict: its index, its size, and our own
/// reason when we aborted its body (the server's answer still comes, in order).
type Sent = (usize, u64, Option<Error>);

impl Client {
    /// Uploads many files over this connection, pipelining the small ones (at most
    /// [`MAX_PIPELINED`] bytes): up to [`PIPELINE_WINDOW`] are in flight, and the server
    /// commits them in groups, each still verified and durable before it is acknowledged.
    /// Larger files go one at a time, with progress. `done(i, result)` reports file `i`
    /// (as [`Client::put`] would), in order.
    pub fn put_many(
        &mut self,
        files: &[(PathBuf, String)],
        mut progress: impl FnMut(usize, Progress),
        mut done: impl FnMut(usize, Result<u64>),
    ) {
        let sources = files
            .iter()
            .map(|(path, name)| Name::new(name).map(|name| (path, name)));
        self.put_sources(sources, &mut progress, &mut done);
    }

    /// [`Client::put_many`] of files whose names are already checked; a file that could not
    /// even be named (`Err`) is reported in its place without the server.
    pub(super) fn put_sources<P: AsRef<Path>>(
        &mut self,
        files: impl IntoIterator<Item = Result<(P, Name)>>,
        progress: &mut dyn FnMut(usize, Progress),
        done: &mut dyn FnMut(usize, Result<u64>),
    ) {
        if self.may_put().is_err() {
            for (i, _) in files.into_iter().enumerate() {
                done(i, self.may_put().map(|()| 0));
            }
            return;
        }
        let mut window = VecDeque::new();
        for (i, source) in files.into_iter().enumerate() {
            let opened = source.and_then(|(path, name)| Ok((open_local(path.as_ref())?, name)));
            let ((mut file, size), name) = match opened {
                Ok(opened) => opened,
                Err(e) => {
                    self.settle_puts(&mut window, 0, done);
                    done(i, Err(e));
                    continue;
                }
            };
            if size > MAX_PIPELINED || self.version < RESUME_VERSION {
                self.settle_puts(&mut window, 0, done);
                let attrs = local_attrs(&file);
                done(
                    i,
                    self.put_named(file, size, &name, attrs, &mut |p| progress(i, p)),
                );
                continue;
            }
            self.settle_puts(&mut window, PIPELINE_WINDOW - 1, done);
            progress(
                i,
                Progress {
                    done: 0,
                    total: size,
                },
            );
            let request = self.upload_request(&name, size, local_attrs(&file), How::Pipelined);
            let sent = self.with_conn(|conn, config| {
                conn.send(&request)?;
                let mut hooks = Hooks {
                    progress: None,
                    cancel: config.cancel.as_deref(),
                };
                let digest = Digest::Running(Box::default());
                let span = Span::whole(&name, size);
                transfer::send_body(conn, span, &mut file, digest, config.chunk_size, &mut hooks)
            });
            match sent {
                // Sent is not stored: the verdict says how many bytes count.
                Ok(_) => window.push_back((i, size, None)),
                // Aborted in step: the server's answer comes in order; ours is the reason.
                Err(e) if !e.breaks_connection() => window.push_back((i, size, Some(e))),
                Err(e) => {
                    self.settle_puts(&mut window, 0, done);
                    done(i, Err(e));
                }
            }
        }
        self.settle_puts(&mut window, 0, done);
    }

    /// Reads verdicts of pipelined uploads until at most `keep` are outstanding.
    fn settle_puts(
        &mut self,
        window: &mut VecDeque<Sent>,
        keep: usize,
        done: &mut dyn FnMut(usize, Result<u64>),
    ) {
        while window.len() > keep {
            let Some((i, size, local)) = window.pop_front() else {
                return;
            };
            let verdict = self.with_conn(|conn, _| {
                match conn.expect("before answering a pipelined upload")? {
                    Response::Stored { size: stored } if stored == size => Ok(size),
                    Response::Stored { size: stored } => Err(Error::Protocol(format!(
                        "the server stored {stored} bytes of {size}"
                    ))),
                    other => Err(unexpected(other, "stored")),
                }
            });
            done(i, local.map_or(verdict, Err));
        }
    }

    /// Downloads many files into `dir` over this connection: requests go out up to
    /// [`PIPELINE_WINDOW`] ahead of the bodies being read, and verified files are made
    /// durable and published in groups. Each file has the promises of [`Client::get`];
    /// `done(i, result)` reports file `i`, in order.
    pub fn get_many(
        &mut self,
        names: &[String],
        dir: &DirStore,
        overwrite: bool,
        mut progress: impl FnMut(usize, Progress),
        mut done: impl FnMut(usize, Result<u64>),
    ) {
        let pairs: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), n.as_str())).collect();
        self.get_many_as(&pairs, dir, overwrite, &mut progress, &mut done);
    }

    /// [`Client::get_many`] of `(remote, local)` name pairs: each server file `remote`
    /// is written as `local` in `dir`.
    pub(super) fn get_many_as(
        &mut self,
        names: &[(&str, &str)],
        dir: &DirStore,
        overwrite: bool,
        progress: &mut dyn FnMut(usize, Progress),
        done: &mut dyn FnMut(usize, Result<u64>),
    ) {
        // Requested downloads (or why one could not be requested), oldest first.
        let mut window: VecDeque<(usize, Result<(Name, DirUpload)>)> = VecDeque::new();
        // Received ones (or why they failed), waiting for the group commit, and the bytes
        // the received ones hold.
        let mut group: Vec<(usize, Outcome)> = Vec::new();
        let mut held = 0u64;
        let mut next = 0;
        loop {
            while window.len() < PIPELINE_WINDOW && next < names.len() {
                let i = next;
                next += 1;
                let (remote, local) = names[i];
                let asked = Name::new(remote).and_then(|name| {
                    let upload = dir.create_file(&Name::new(local)?, overwrite)?;
                    self.request_download(&name, None)?;
                    Ok((name, upload))
                });
                window.push_back((i, asked));
            }
            let Some((i, asked)) = window.pop_front() else {
                break;
            };
            let mut each = |p| progress(i, p);
            let received = asked.and_then(|(name, mut upload)| {
                self.receive_download(&name, None, Sink::Dir(dir, &mut upload), &mut each)
                    .map(|got| (Box::new(upload) as Box<dyn PendingFile>, got.bytes))
            });
            if let Ok((_, size)) = &received {
                held = held.saturating_add(*size);
            }
            group.push((i, received));
            if group_full(group.len(), held) || window.is_empty() {
                commit_downloads(dir, &mut group, done);
                held = 0;
            }
        }
        commit_downloads(dir, &mut group, done);
    }
}

/// Makes the verified downloads of a group durable and visible at once, then reports
/// every file of the group, failed ones included, in order.
fn commit_downloads(
    dir: &DirStore,
    group: &mut Vec<(usize, Outcome)>,
    done: &mut dyn FnMut(usize, Result<u64>),
) {
    for (i, result) in commit_outcomes(dir, std::mem::take(group)) {
        done(i, result);
    }
}
