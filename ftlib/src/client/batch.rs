//! The client side of pipelining, in one place: many uploads or downloads over one
//! connection with up to [`PIPELINE_WINDOW`] requests in flight, verdicts settled in request
//! order, and verified downloads committed in groups (the limits and the group bookkeeping
//! are [`crate::pipeline`]'s, shared with the server).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::exchange::{Keep, Sink, verdict};
use super::local::{Local, local_attrs, open_local};
use super::{Client, Progress, download_key};
use crate::error::{Error, Result};
use crate::pipeline::{
    GiveOnDrop, Held, Outcome, PIPELINE_WINDOW, Turn, commit_in_turn, commit_outcomes, group_full,
    may_commit, waited_for_write_ahead,
};
use crate::protocol::{DIGEST_LEN, How, MAX_PIPELINED, RESUME_VERSION};
use crate::store::{DirStore, DirUpload, Name, PendingFile, Store};
use crate::transfer::{self, Digest, Hooks, Received, Span};

use xxhash_rust::xxh3::Xxh3;

/// How many requests a download batch sends at once, when that many have been answered:
/// one write for many small requests, where topping up after every answer sent each
/// request in a write (and a TLS record) of its own.
const REFILL: usize = 64;

/// A pipelined upload sent and waiting for its verdict: its index, its size, and the digest
/// its body ended with, or our own reason when we aborted it (the server's answer still
/// comes, in order).
type Sent = (usize, Name, u64, Result<[u8; DIGEST_LEN]>);

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
            .map(|(path, name)| Name::new(name).map(|name| (Local::named(path), name)));
        self.put_sources(sources, &mut progress, &mut |i, r| {
            done(i, r.map(|got| got.bytes));
        });
    }

    /// [`Client::put_many`] of files whose names are already checked, each reported with
    /// its bytes and the digest the server verified; a file that could not even be named
    /// (`Err`) is reported in its place without the server.
    pub(super) fn put_sources(
        &mut self,
        files: impl IntoIterator<Item = Result<(Local, Name)>>,
        progress: &mut dyn FnMut(usize, Progress),
        done: &mut dyn FnMut(usize, Result<Received>),
    ) {
        if self.may_put().is_err() {
            for (i, _) in files.into_iter().enumerate() {
                if let Err(refused) = self.may_put() {
                    done(i, Err(refused));
                }
            }
            return;
        }
        let mut window = VecDeque::new();
        for (i, source) in files.into_iter().enumerate() {
            let opened = source.and_then(|(local, name)| Ok((open_local(&local)?, name, local)));
            let ((mut file, size), name, local) = match opened {
                Ok(opened) => opened,
                Err(e) => {
                    self.settle_puts(&mut window, 0, done);
                    done(i, Err(e));
                    continue;
                }
            };
            let resumable = self.version >= RESUME_VERSION
                && self.config.resume_from.is_some_and(|from| size >= from);
            if resumable {
                // Large enough to be worth continuing if cut: sent resumably (hashed first
                // for a server older than v5).
                self.settle_puts(&mut window, 0, done);
                let sent = self.put_resumable_opened(&local.path, (file, size), &name, &mut |p| {
                    progress(i, p);
                });
                done(i, sent);
                continue;
            }
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
            if i % SETTLE_EVERY == 0 {
                // Verdicts already here are read now and then, so that they never pile
                // up in the socket until the server cannot send and stops reading.
                self.settle_arrived_puts(&mut window, done);
            }
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
                Ok(sent) => window.push_back((i, name, size, Ok(sent.digest))),
                // Aborted in step: the server's answer comes in order; ours is the reason.
                Err(e) if !e.breaks_connection() => window.push_back((i, name, size, Err(e))),
                Err(e) => {
                    self.settle_puts(&mut window, 0, done);
                    done(i, Err(e));
                }
            }
        }
        self.settle_puts(&mut window, 0, done);
    }

    /// Reads the verdicts of pipelined uploads that have arrived, without waiting.
    fn settle_arrived_puts(
        &mut self,
        window: &mut VecDeque<Sent>,
        done: &mut dyn FnMut(usize, Result<Received>),
    ) {
        while !window.is_empty()
            && matches!(self.with_conn(|conn, _| Ok(conn.input_pending())), Ok(true))
        {
            self.settle_puts(window, window.len() - 1, done);
        }
    }

    /// Reads verdicts of pipelined uploads until at most `keep` are outstanding.
    fn settle_puts(
        &mut self,
        window: &mut VecDeque<Sent>,
        keep: usize,
        done: &mut dyn FnMut(usize, Result<Received>),
    ) {
        while window.len() > keep {
            let Some((i, name, size, sent)) = window.pop_front() else {
                return;
            };
            let verdict = self.with_conn(|conn, _| {
                let response = conn.expect("before answering a pipelined upload")?;
                verdict(response, &name, size)
            });
            done(
                i,
                sent.and_then(|digest| verdict.map(|bytes| Received { bytes, digest })),
            );
        }
    }

    /// Downloads many files into `dir` over this connection: requests go out up to
    /// [`PIPELINE_WINDOW`] ahead of the bodies being read, and verified files are made
    /// durable and published in groups. Each file has the promises of [`Client::get`];
    /// `done(i, result)` reports file `i`, in order.
    ///
    /// A file of at least [`ClientConfig::resume_from`](super::ClientConfig::resume_from)
    /// bytes is written into a hidden partial file, kept if the download is interrupted; a
    /// file whose partial is kept is continued from it (`GetFrom`, after the server has
    /// checked that its file still starts with those bytes). With `resume_from` `None`,
    /// kept partials of these files are removed and nothing is kept.
    pub fn get_many(
        &mut self,
        names: &[String],
        dir: &DirStore,
        overwrite: bool,
        mut progress: impl FnMut(usize, Progress),
        mut done: impl FnMut(usize, Result<u64>),
    ) {
        let pairs: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), n.as_str())).collect();
        self.get_many_as(&pairs, dir, overwrite, &mut progress, &mut |i, r| {
            done(i, r.map(|got| got.bytes));
        });
    }

    /// [`Client::get_many`] of `(remote, local)` name pairs: each server file `remote`
    /// is written as `local` in `dir`; each reported with its bytes and verified digest.
    pub(super) fn get_many_as(
        &mut self,
        names: &[(&str, &str)],
        dir: &DirStore,
        overwrite: bool,
        progress: &mut dyn FnMut(usize, Progress),
        done: &mut dyn FnMut(usize, Result<Received>),
    ) {
        // Requested downloads (or why one could not be requested), oldest first.
        let mut window: VecDeque<(usize, Result<Asked>)> = VecDeque::new();
        let resume_from = self.config.resume_from;
        // Received ones (or why they failed), waiting for the group commit, and the bytes
        // the received ones hold.
        let mut group: Vec<(Item, Outcome)> = Vec::new();
        let mut held = 0u64;
        let mut next = 0;
        std::thread::scope(|scope| {
            // The groups before, oldest first, committed by other threads while this one
            // arrives.
            let mut in_flight: VecDeque<InFlight<'_>> = VecDeque::new();
            loop {
                // Topped up only once there is room for REFILL more, so that requests go
                // out together rather than one after each answer.
                let fill = if window.len() + REFILL <= PIPELINE_WINDOW {
                    PIPELINE_WINDOW
                } else {
                    window.len()
                };
                while window.len() < fill && next < names.len() {
                    let i = next;
                    next += 1;
                    let (remote, local) = names[i];
                    let asked = Name::new(remote).and_then(|name| {
                        let local = Name::new(local)?;
                        let key = download_key(&name, &local);
                        if resume_from.is_none() {
                            // Told to start over: what an earlier attempt kept goes.
                            dir.discard_partial(&key);
                        }
                        // A v1 server cannot continue one (no GetFrom).
                        let kept = (resume_from.is_some() && self.version >= RESUME_VERSION)
                            .then(|| continued(dir, &key, &local, overwrite))
                            .flatten();
                        let (upload, resume) = match kept {
                            Some((partial, held)) => (partial, Some(held)),
                            None => {
                                let mut upload = dir.create_file(&local, overwrite)?;
                                // Holds no directory handle while it waits its turn.
                                upload.release();
                                (upload, None)
                            }
                        };
                        self.request_download(&name, resume.as_ref())?;
                        Ok(Asked {
                            name,
                            key,
                            upload,
                            resume,
                        })
                    });
                    window.push_back((i, asked));
                }
                let Some((i, asked)) = window.pop_front() else {
                    break;
                };
                let mut each = |p| progress(i, p);
                let mut digest = None;
                let received = asked.and_then(|asked| {
                    let Asked {
                        name,
                        key,
                        mut upload,
                        resume,
                    } = asked;
                    let keep = resume_from.map(|from| Keep { key: &key, from });
                    let sink = Sink::Dir(dir, &mut upload, keep);
                    match self.receive_download(&name, resume, sink, &mut each) {
                        Ok(got) => {
                            upload.release();
                            digest = Some(got.digest);
                            Ok((Box::new(upload) as Box<dyn PendingFile>, got.bytes))
                        }
                        Err(e) => {
                            // A partial cut short is kept to be continued (a temporary
                            // file is removed).
                            if e.kind().is_interruption() {
                                upload.keep();
                            }
                            Err(e)
                        }
                    }
                });
                if let Ok((_, size)) = &received {
                    held = held.saturating_add(dir.held_in_memory(*size));
                }
                group.push(((i, digest), received));
                while in_flight.front().is_some_and(InFlight::is_finished) {
                    finish(in_flight.pop_front(), done);
                }
                let published = in_flight.back().is_none_or(InFlight::has_published);
                if !window.is_empty() && (published || group_full(group.len(), held)) {
                    // More to receive: this group is committed meanwhile, as soon as the
                    // one before has published its files (so a group is what arrived
                    // during the commit before it, and a slow sync makes fewer, larger
                    // groups), at the latest once it is full; as many at once as
                    // `may_commit` allows.
                    while !may_commit(in_flight.len(), held_by(&in_flight), held) {
                        let oldest_done = in_flight.front().is_some_and(InFlight::is_finished);
                        let helds = in_flight.iter().filter_map(InFlight::held);
                        if !waited_for_write_ahead(oldest_done, helds) {
                            finish(in_flight.pop_front(), done);
                        }
                    }
                    let before = in_flight.back().and_then(InFlight::turn);
                    let group = std::mem::take(&mut group);
                    in_flight.push_back(commit_in_background(scope, dir, group, before, held));
                    held = 0;
                } else if window.is_empty() {
                    finish_all(&mut in_flight, done);
                    commit_downloads(dir, &mut group, done);
                    held = 0;
                }
            }
            finish_all(&mut in_flight, done);
            commit_downloads(dir, &mut group, done);
        });
    }
}

/// A download requested: the server's name, the key of its partial file here, where it
/// goes, and the bytes an earlier attempt kept (how many, and their digest state) when it
/// continues them.
struct Asked {
    name: Name,
    key: String,
    upload: DirUpload,
    resume: Option<(u64, Xxh3)>,
}

/// The partial `key` an earlier download of `local` kept, with the bytes it holds and their
/// digest state, if there is one and no other download uses it.
fn continued(
    dir: &DirStore,
    key: &str,
    local: &Name,
    overwrite: bool,
) -> Option<(DirUpload, (u64, Xxh3))> {
    if !dir.has_partial(key) {
        return None;
    }
    let (partial, have) = dir.open_partial(key, local, overwrite).ok()?;
    let prefix = partial
        .existing()
        .ok()
        .and_then(|mut held| transfer::hash_prefix(&mut held, have).ok());
    // Unreadable: started over (the partial is emptied when the answer comes).
    Some((partial, (have, prefix.unwrap_or_else(Xxh3::new))))
}

/// How many pipelined uploads a client sends between looks for verdicts that arrived.
const SETTLE_EVERY: usize = 64;

/// A download of a group: its index, and the digest it was verified with once received.
type Item = (usize, Option<[u8; DIGEST_LEN]>);

/// A group of downloads being committed by another thread (with the items it holds, and
/// the turn it gives once it has published its files), or committed already.
enum InFlight<'scope> {
    Thread(
        std::thread::ScopedJoinHandle<'scope, Vec<(Item, Result<u64>)>>,
        Vec<usize>,
        Arc<Turn>,
        Arc<Held>,
    ),
    Done(Vec<(Item, Result<u64>)>),
}

/// The bytes the groups `in_flight` still hold in memory together.
fn held_by(in_flight: &VecDeque<InFlight<'_>>) -> u64 {
    in_flight
        .iter()
        .filter_map(InFlight::held)
        .map(Held::bytes)
        .sum()
}

impl InFlight<'_> {
    /// Whether its results are ready ([`finish`] would not wait).
    fn is_finished(&self) -> bool {
        match self {
            InFlight::Thread(handle, ..) => handle.is_finished(),
            InFlight::Done(_) => true,
        }
    }

    /// What it holds in memory, while it is being committed.
    fn held(&self) -> Option<&Held> {
        match self {
            InFlight::Thread(.., held) => Some(held),
            InFlight::Done(_) => None,
        }
    }

    /// Whether it has published its files: the next group may publish.
    fn has_published(&self) -> bool {
        match self {
            InFlight::Thread(_, _, turn, _) => turn.is_given(),
            InFlight::Done(_) => true,
        }
    }

    /// The turn the next group waits for, while it has not published.
    fn turn(&self) -> Option<Arc<Turn>> {
        match self {
            InFlight::Thread(_, _, turn, _) => Some(Arc::clone(turn)),
            InFlight::Done(_) => None,
        }
    }
}

/// Starts committing `group`, which holds `bytes` in memory, on another thread (or commits
/// it here, if no thread can be started), its files written out at once and published
/// once `before` is given ([`commit_in_turn`]); its results come from [`finish`].
fn commit_in_background<'scope, 'env>(
    scope: &'scope std::thread::Scope<'scope, 'env>,
    dir: &'env DirStore,
    group: Vec<(Item, Outcome)>,
    before: Option<Arc<Turn>>,
    bytes: u64,
) -> InFlight<'scope> {
    let held = Held::new(bytes);
    let lowered = Arc::clone(&held);
    let items = group.iter().map(|((i, _), _)| *i).collect();
    // Shared with the thread, so that the group is not lost if it cannot start.
    let shared = Arc::new(Mutex::new(Some(group)));
    let theirs = Arc::clone(&shared);
    let published = Arc::new(Turn::default());
    let give = GiveOnDrop(Arc::clone(&published));
    let waits_for = before.clone();
    let work = move || {
        let group = theirs.lock().unwrap_or_else(|p| p.into_inner()).take();
        // No directory is made ahead (those of a tree are made before its files anyway).
        let taken_before = |_: &str| true;
        commit_in_turn(
            dir,
            group.unwrap_or_default(),
            waits_for.as_deref(),
            &give,
            &taken_before,
            &lowered,
        )
    };
    match std::thread::Builder::new()
        .name("ft download commit".into())
        .spawn_scoped(scope, work)
    {
        Ok(handle) => InFlight::Thread(handle, items, published, held),
        Err(_) => {
            if let Some(before) = before {
                before.wait();
            }
            let group = shared.lock().unwrap_or_else(|p| p.into_inner()).take();
            InFlight::Done(commit_outcomes(dir, group.unwrap_or_default()))
        }
    }
}

/// Waits for every group committed in the background, oldest first, and reports their
/// files.
fn finish_all(
    in_flight: &mut VecDeque<InFlight<'_>>,
    done: &mut dyn FnMut(usize, Result<Received>),
) {
    while let Some(group) = in_flight.pop_front() {
        finish(Some(group), done);
    }
}

/// Waits for the group committed in the background, if any, and reports its files.
fn finish(in_flight: Option<InFlight<'_>>, done: &mut dyn FnMut(usize, Result<Received>)) {
    let committed = match in_flight {
        None => return,
        Some(InFlight::Done(committed)) => committed,
        Some(InFlight::Thread(handle, items, ..)) => match handle.join() {
            Ok(committed) => committed,
            Err(_) => items
                .into_iter()
                .map(|i| {
                    let lost = Error::Protocol("committing this download failed".into());
                    ((i, None), Err(lost))
                })
                .collect(),
        },
    };
    report_committed(committed, done);
}

/// Reports each download of a committed group, with its digest when it succeeded.
fn report_committed(
    committed: Vec<(Item, Result<u64>)>,
    done: &mut dyn FnMut(usize, Result<Received>),
) {
    for ((i, digest), result) in committed {
        let result = result.and_then(|bytes| match digest {
            Some(digest) => Ok(Received { bytes, digest }),
            None => Err(Error::Protocol(
                "a download committed without its digest".into(),
            )),
        });
        done(i, result);
    }
}

/// Makes the verified downloads of a group durable and visible at once, then reports
/// every file of the group, failed ones included, in order.
fn commit_downloads(
    dir: &DirStore,
    group: &mut Vec<(Item, Outcome)>,
    done: &mut dyn FnMut(usize, Result<Received>),
) {
    report_committed(commit_outcomes(dir, std::mem::take(group)), done);
}
