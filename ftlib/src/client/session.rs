//! A command line's worth of transfers, for any program: [`Session`] connects when first
//! needed and again after a connection broke, pipelines and retries on a new connection
//! the files that were never sent, and makes one [`Report`] per item for an [`Observer`],
//! which draws and prints. `ftclient` is this plus arguments and a terminal.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::local::{local_source, remote_name};
use super::{Client, ClientConfig, Progress};
use crate::error::{Error, Result};
use crate::protocol::Entry;
use crate::report::{Op, Report};
use crate::store::DirStore;

/// What a [`Session`] tells its caller while files move. Items are numbered by their place
/// in the command (0 for a listing).
pub trait Observer {
    /// `count` items are about to move: called once by [`Session::put`] and
    /// [`Session::get`], before connecting.
    fn start(&mut self, count: usize) {
        let _ = count;
    }

    /// Item `item`, named `name` on the server, moved: called often, first when its size is
    /// known.
    fn progress(&mut self, item: usize, name: &str, progress: Progress) {
        let _ = (item, name, progress);
    }

    /// One entry of a [`Session::list`], in the server's order, before its report.
    fn entry(&mut self, entry: Entry) {
        let _ = entry;
    }

    /// Item `item` is done: its report, and the error (to say what to do) when it failed.
    /// Called once per item, in command order except for files retried on a new connection.
    fn finished(&mut self, item: usize, report: Report, error: Option<&Error>);
}

/// One server and the policy of a command line: connect lazily, reconnect after a
/// connection broke, pipeline many files, retry on a new connection the files that were
/// never sent (giving up when nothing went through on a fresh one), clean the local
/// directory's stale temporary files before downloads, and stop between items once
/// [`ClientConfig::cancel`] is set.
///
/// Each method returns `Ok(true)` when every item succeeded, `Ok(false)` when any failed
/// (each failure is in its report) or the session was cancelled, and `Err` when the server
/// could not be reached.
///
/// # Examples
/// ```no_run
/// use ftlib::{ClientConfig, Error, Observer, Report, Session};
///
/// struct Print;
/// impl Observer for Print {
///     fn finished(&mut self, _item: usize, report: Report, _error: Option<&Error>) {
///         println!("{report}");
///     }
/// }
///
/// let mut session = Session::new("localhost", 6789, ClientConfig::default());
/// let all_ok = session.put(&["notes.pdf".into()], "client_data".as_ref(), false, &mut Print)?;
/// # Ok::<(), ftlib::Error>(())
/// ```
#[derive(Debug)]
pub struct Session {
    host: String,
    port: u16,
    config: ClientConfig,
    /// The current connection, once made; replaced when it broke.
    client: Option<Client>,
}

/// What a batch's two callbacks share, as the batch holds both at once.
struct Tally<'o> {
    observer: &'o mut dyn Observer,
    /// When each item in flight started, and the bytes its last progress said.
    live: HashMap<usize, (Instant, u64)>,
    /// Items never sent: the connection was gone before their turn.
    retry: Vec<usize>,
    all_ok: bool,
}

impl Session {
    /// A session with the server at `host` (a name or an address; an IPv6 address may be
    /// in brackets) and `port`. Nothing is connected yet.
    pub fn new(host: &str, port: u16, config: ClientConfig) -> Session {
        Session {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port,
            config,
            client: None,
        }
    }

    /// The host, without brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Uploads `files`, each as its last component, read from where [`local_source`]
    /// says (`dir` first for a plain name). Small files are pipelined
    /// ([`Client::put_many`]); with `resume`, each goes alone through
    /// [`Client::put_resumable`].
    ///
    /// # Errors
    /// The connect error when the server cannot be reached, at the start or to reconnect.
    pub fn put(
        &mut self,
        files: &[PathBuf],
        dir: &Path,
        resume: bool,
        observer: &mut dyn Observer,
    ) -> Result<bool> {
        let names: Vec<String> = files.iter().map(|file| remote_name(file)).collect();
        if resume {
            return self.one_by_one(&names, Op::Put, observer, |client, i, progress| {
                let (path, name) = local_source(&files[i], dir)?;
                client.put_resumable_named(&path, &name, progress)
            });
        }
        self.batch(&names, Op::Put, observer, |client, todo, progress, done| {
            // A file that cannot even be named is reported in its place, never sent.
            let sources = todo.iter().map(|&i| local_source(&files[i], dir));
            client.put_sources(sources, progress, done);
        })
    }

    /// Downloads `names` into `dir` (replacing a local file only when `overwrite`),
    /// pipelined ([`Client::get_many`]); with `resume`, each alone through
    /// [`Client::get_resumable`]. Temporary files that killed downloads left in `dir` are
    /// removed first.
    ///
    /// # Errors
    /// As [`Session::put`].
    pub fn get(
        &mut self,
        names: &[String],
        dir: &DirStore,
        overwrite: bool,
        resume: bool,
        observer: &mut dyn Observer,
    ) -> Result<bool> {
        // Best effort: a temporary file that cannot be removed stays hidden.
        let _ = dir.cleanup();
        if resume {
            return self.one_by_one(names, Op::Get, observer, |client, i, progress| {
                client.get_resumable(&names[i], dir, overwrite, progress)
            });
        }
        self.batch(names, Op::Get, observer, |client, todo, progress, done| {
            let subset: Vec<String> = todo.iter().map(|&i| names[i].clone()).collect();
            client.get_many(&subset, dir, overwrite, progress, done);
        })
    }

    /// Lists the served directory: each entry to [`Observer::entry`] as it arrives, then
    /// the report (item 0).
    ///
    /// # Errors
    /// As [`Session::put`].
    pub fn list(&mut self, observer: &mut dyn Observer) -> Result<bool> {
        let client = self.connected()?;
        let started = Instant::now();
        let result = client.list_each(|entry| observer.entry(entry));
        let error = result.as_ref().err();
        let count = *result.as_ref().unwrap_or(&0);
        let report = Report::new(client.peer(), Op::List, None, started, count, error);
        let ok = report.is_success();
        observer.finished(0, report, error);
        Ok(ok)
    }

    fn cancelled(&self) -> bool {
        self.config
            .cancel
            .as_ref()
            .is_some_and(|flag| flag.load(Ordering::SeqCst))
    }

    /// The open connection: the one in use, or a new one if there was none or it broke.
    fn connected(&mut self) -> Result<&mut Client> {
        let client = match self.client.take() {
            Some(client) if client.is_open() => client,
            _ => Client::connect((self.host.as_str(), self.port), self.config.clone())?,
        };
        Ok(self.client.insert(client))
    }

    /// Runs `call` for each item in turn, reconnecting between items if a failure broke the
    /// connection.
    fn one_by_one(
        &mut self,
        names: &[String],
        op: Op,
        observer: &mut dyn Observer,
        mut call: impl FnMut(&mut Client, usize, &mut dyn FnMut(Progress)) -> Result<u64>,
    ) -> Result<bool> {
        observer.start(names.len());
        let mut all_ok = true;
        for (i, name) in names.iter().enumerate() {
            if self.cancelled() {
                return Ok(false);
            }
            let client = self.connected()?;
            let started = Instant::now();
            let mut moved = 0;
            let result = call(client, i, &mut |progress| {
                moved = progress.done;
                observer.progress(i, name, progress);
            });
            // A failed transfer counts what moved before it failed.
            let bytes = *result.as_ref().unwrap_or(&moved);
            let error = result.as_ref().err();
            let report = Report::new(client.peer(), op, Some(name), started, bytes, error);
            all_ok &= report.is_success();
            observer.finished(i, report, error);
        }
        Ok(all_ok)
    }

    /// Runs `run` on all items still to do at once (the client pipelines them; callbacks
    /// carry positions in the list it was given), then again on a new connection for those
    /// never sent because the connection broke.
    fn batch(
        &mut self,
        names: &[String],
        op: Op,
        observer: &mut dyn Observer,
        mut run: impl FnMut(
            &mut Client,
            &[usize],
            &mut dyn FnMut(usize, Progress),
            &mut dyn FnMut(usize, Result<u64>),
        ),
    ) -> Result<bool> {
        observer.start(names.len());
        let mut todo: Vec<usize> = (0..names.len()).collect();
        let mut all_ok = true;
        while !todo.is_empty() && !self.cancelled() {
            let client = self.connected()?;
            let peer = client.peer();
            let tally = RefCell::new(Tally {
                observer: &mut *observer,
                live: HashMap::new(),
                retry: Vec::new(),
                all_ok: true,
            });
            let mut progress = |k: usize, progress: Progress| {
                let i = todo[k];
                let mut tally = tally.borrow_mut();
                let live = tally.live.entry(i).or_insert_with(|| (Instant::now(), 0));
                live.1 = progress.done;
                tally.observer.progress(i, &names[i], progress);
            };
            let mut done = |k: usize, result: Result<u64>| {
                let i = todo[k];
                let mut tally = tally.borrow_mut();
                if matches!(result, Err(Error::NotConnected)) {
                    tally.retry.push(i);
                    return;
                }
                let (started, moved) = tally.live.remove(&i).unwrap_or_else(|| (Instant::now(), 0));
                let error = result.as_ref().err();
                let bytes = *result.as_ref().unwrap_or(&moved);
                let report = Report::new(peer, op, Some(&names[i]), started, bytes, error);
                tally.all_ok &= report.is_success();
                tally.observer.finished(i, report, error);
            };
            run(client, &todo, &mut progress, &mut done);
            let Tally {
                retry, all_ok: ok, ..
            } = tally.into_inner();
            all_ok &= ok;
            if retry.len() == todo.len() {
                // Nothing went through on a fresh connection: give up rather than loop.
                all_ok = false;
                break;
            }
            todo = retry;
        }
        Ok(all_ok && todo.is_empty())
    }
}
