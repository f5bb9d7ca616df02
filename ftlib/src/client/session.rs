//! A command line's worth of transfers, for any program: [`Session`] connects when first
//! needed and again after a connection broke, pipelines and retries on a new connection
//! the files that were never sent, and makes one [`Report`] per item for an [`Observer`],
//! which draws and prints. `ftclient` is this plus arguments and a terminal.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::local::{Local, local_name, local_source, remote_name};
use super::observer::Observer;
use super::{Client, ClientConfig, Progress};
use crate::error::{Error, Result, Taken};
use crate::protocol::ErrorKind;
use crate::report::{Op, Report};
use crate::store::{DirStore, Name};
use crate::transfer::Received;

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
    pub(super) port: u16,
    config: ClientConfig,
    /// The current connection, once made; replaced when it broke.
    pub(super) client: Option<Client>,
    /// Added to the item numbers a batch gives its observer (a tree goes in several).
    pub(super) item_base: usize,
}

/// What a batch's two callbacks share, as the batch holds both at once.
struct Tally<'o> {
    observer: &'o mut dyn Observer,
    /// When each item in flight started, and the bytes this run moved by its last
    /// progress (a continued transfer's first progress is its offset, moved earlier).
    live: HashMap<usize, (Instant, Moved)>,
    /// Items never sent: the connection was gone before their turn.
    retry: Vec<usize>,
    /// Items refused because the name exists: skipped if the bytes there are the same.
    conflicts: Vec<(usize, Instant, Error)>,
    all_ok: bool,
}

/// The bytes one transfer moved in this run, from its progress: the first progress says
/// where it starts (a continued transfer's offset, moved by an earlier run).
#[derive(Debug, Default, Clone, Copy)]
struct Moved {
    from: Option<u64>,
    done: u64,
}

impl Moved {
    fn saw(&mut self, progress: Progress) {
        self.from.get_or_insert(progress.done);
        self.done = progress.done;
    }

    fn now(self) -> u64 {
        self.done.saturating_sub(self.from.unwrap_or(0))
    }
}

/// Compares an item that exists already with its source: `Ok(true)` when the bytes are
/// the same, so it is skipped.
pub(super) type Same<'a> = dyn FnMut(&mut Client, usize) -> Result<bool> + 'a;

/// Whether `error` (of an `op` item) says the destination name exists already, so the item
/// may be skipped if its bytes are the same there.
fn is_conflict(op: Op, error: &Error) -> bool {
    match op {
        Op::Put => {
            matches!(error, Error::Remote { .. }) && error.kind() == ErrorKind::AlreadyExists
        }
        Op::Get => matches!(
            error,
            Error::AlreadyExists {
                why: Taken::Exists,
                ..
            }
        ),
        _ => false,
    }
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
            item_base: 0,
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
        self.put_files(files, None, dir, resume, observer)
    }

    /// Uploads one local `file`, found as [`Session::put`] finds it, as `name` on the server.
    ///
    /// # Errors
    /// As [`Session::put`].
    pub fn put_as(
        &mut self,
        file: &Path,
        name: &str,
        dir: &Path,
        resume: bool,
        observer: &mut dyn Observer,
    ) -> Result<bool> {
        self.put_files(&[file.to_path_buf()], Some(name), dir, resume, observer)
    }

    /// [`Session::put`], every file named `rename` on the server if given.
    fn put_files(
        &mut self,
        files: &[PathBuf],
        rename: Option<&str>,
        dir: &Path,
        resume: bool,
        observer: &mut dyn Observer,
    ) -> Result<bool> {
        self.put_files_to(files, rename, None, dir, resume, observer)
    }

    /// [`Session::put`] into the server directory `to` (created as needed), or the top
    /// without it; every file named `rename` if given.
    ///
    /// # Errors
    /// As [`Session::put`].
    pub fn put_files_to(
        &mut self,
        files: &[PathBuf],
        rename: Option<&str>,
        to: Option<&str>,
        dir: &Path,
        resume: bool,
        observer: &mut dyn Observer,
    ) -> Result<bool> {
        let within = |name: String| match to {
            Some(to) => format!("{to}/{name}"),
            None => name,
        };
        let names: Vec<String> = files
            .iter()
            .map(|file| within(rename.map_or_else(|| remote_name(file), str::to_owned)))
            .collect();
        // Two local files that would land on one server name (or one file named twice):
        // the later ones are refused before they are sent.
        let twins = later_twins(&names, |i| {
            local_source(&files[i], dir)
                .is_ok_and(|(path, _)| std::fs::metadata(path).is_ok_and(|m| m.is_file()))
        });
        let source = |i: usize| {
            if twins[i] {
                return Err(Error::AlreadyExists {
                    name: names[i].clone(),
                    why: Taken::SameCommand,
                });
            }
            let (path, own) = local_source(&files[i], dir)?;
            let name = rename.map_or_else(|| own.to_string(), str::to_owned);
            Ok((path, Name::new(&within(name))?))
        };
        // The sizes as they are now, for the overall progress; a file that cannot be
        // statted counts 0 here and fails in its turn.
        let bytes = (0..files.len())
            .filter_map(|i| source(i).ok())
            .filter_map(|(path, _)| std::fs::metadata(path).ok())
            .map(|meta| meta.len())
            .sum();
        observer.totals(names.len(), bytes);
        // Items are numbered from 0 in each command, whatever this session did before.
        self.item_base = 0;
        self.put_items(&names, &source, true, resume, observer)
    }

    /// Uploads item `i` of `names` from where `source(i)` says (the local path and the
    /// checked name), pipelined, or one by one with `resume`. A name that exists on the
    /// server with the same bytes is reported skipped.
    pub(super) fn put_items(
        &mut self,
        names: &[String],
        source: &dyn Fn(usize) -> Result<(PathBuf, Name)>,
        follow: bool,
        resume: bool,
        observer: &mut dyn Observer,
    ) -> Result<bool> {
        let local = |path: PathBuf| Local { path, follow };
        let mut same = |client: &mut Client, i: usize| {
            let (path, name) = source(i)?;
            client.same_as_local(&name, &path)
        };
        if resume {
            let put = |client: &mut Client, i: usize, progress: &mut dyn FnMut(Progress)| {
                let (path, name) = source(i)?;
                client.put_resumable_named(&local(path), &name, progress)
            };
            return self.one_by_one(names, Op::Put, observer, put, &mut same);
        }
        let run = |client: &mut Client,
                   todo: &[usize],
                   progress: &mut dyn FnMut(usize, Progress),
                   done: &mut dyn FnMut(usize, Result<Received>)| {
            // A file that cannot even be named is never sent; it is reported first, as
            // ftclient always has, and the others in order after it.
            let mut sent = Vec::new();
            let mut sources = Vec::new();
            for (k, &i) in todo.iter().enumerate() {
                match source(i) {
                    Ok((path, name)) => {
                        sent.push(k);
                        sources.push(Ok((local(path), name)));
                    }
                    Err(e) => done(k, Err(e)),
                }
            }
            client.put_sources(sources, &mut |j, p| progress(sent[j], p), &mut |j, r| {
                done(sent[j], r)
            });
        };
        self.batch(names, Op::Put, observer, run, &mut same)
    }

    /// Downloads `names` into `dir` (replacing a local file only when `overwrite`),
    /// pipelined ([`Client::get_many`]); with `resume`, each alone through
    /// [`Client::get_resumable`]. A name in a server directory (`photos/a.jpg`) is written
    /// as its last component (`a.jpg`). A local file with the same bytes is reported
    /// skipped. Temporary files that killed downloads left in `dir` are removed first.
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
        let locals: Vec<String> = names.iter().map(|n| local_name(n).to_owned()).collect();
        observer.start(names.len());
        self.item_base = 0;
        self.get_items(names, &locals, dir, overwrite, resume, observer)
    }

    /// Downloads each server file `names[i]` into `dir` as `locals[i]`.
    pub(super) fn get_items(
        &mut self,
        names: &[String],
        locals: &[String],
        dir: &DirStore,
        overwrite: bool,
        resume: bool,
        observer: &mut dyn Observer,
    ) -> Result<bool> {
        let mut same = |client: &mut Client, i: usize| {
            client.same_as_local(&names[i], &dir.root().join(&locals[i]))
        };
        // Two server files that would land on one local file (the same last component, or
        // the same name twice): the later ones are refused before they are asked for, so
        // that no download of the command replaces another.
        let twins = self.twins_on_server(locals, names, false, observer)?;
        // A directory the files cannot be written into fails each of them before it is
        // asked for, not once its bytes have crossed the network.
        let unwritable = dir.cannot_create();
        let refused = |i: usize| match &unwritable {
            Some(e) => Some(Error::io(
                format!("writing {}", locals[i]),
                e.raw_os_error()
                    .map_or_else(|| e.kind().into(), std::io::Error::from_raw_os_error),
            )),
            None if twins[i] => Some(Error::AlreadyExists {
                name: locals[i].clone(),
                why: Taken::SameCommand,
            }),
            None => None,
        };
        if resume {
            let get = |client: &mut Client, i: usize, progress: &mut dyn FnMut(Progress)| {
                if let Some(e) = refused(i) {
                    return Err(e);
                }
                client.get_resumable_as(&names[i], &locals[i], dir, overwrite, progress)
            };
            return self.one_by_one(names, Op::Get, observer, get, &mut same);
        }
        let run = |client: &mut Client,
                   todo: &[usize],
                   progress: &mut dyn FnMut(usize, Progress),
                   done: &mut dyn FnMut(usize, Result<Received>)| {
            let mut asked = Vec::new();
            let mut subset: Vec<(&str, &str)> = Vec::new();
            for (k, &i) in todo.iter().enumerate() {
                if let Some(e) = refused(i) {
                    done(k, Err(e));
                } else {
                    asked.push(k);
                    subset.push((names[i].as_str(), locals[i].as_str()));
                }
            }
            client.get_many_as(
                &subset,
                dir,
                overwrite,
                &mut |j, p| progress(asked[j], p),
                &mut |j, r| done(asked[j], r),
            );
        };
        self.batch(names, Op::Get, observer, run, &mut same)
    }

    /// Lists the served directory: each entry to [`Observer::entry`] as it arrives, then
    /// the report (item 0).
    ///
    /// # Errors
    /// As [`Session::put`].
    pub fn list(&mut self, observer: &mut dyn Observer) -> Result<bool> {
        let client = self.connected(observer)?;
        let started = Instant::now();
        let result = client.list_each(|entry| observer.entry(entry));
        let error = result.as_ref().err();
        let count = *result.as_ref().unwrap_or(&0);
        let report =
            Report::new(client.peer(), Op::List, None, started, count, error).by(client.user());
        let ok = report.is_success();
        observer.finished(0, report, error);
        Ok(ok)
    }

    pub(super) fn cancelled(&self) -> bool {
        self.config
            .cancel
            .as_ref()
            .is_some_and(|flag| flag.load(Ordering::SeqCst))
    }

    /// The open connection: the one in use, or a new one if there was none, it broke, or
    /// the server closed it while it sat idle (a session kept between commands).
    pub(super) fn connected(&mut self, observer: &mut dyn Observer) -> Result<&mut Client> {
        let reusable = self
            .client
            .as_mut()
            .is_some_and(|client| client.is_open() && !client.closed_while_idle());
        let client = match self.client.take() {
            Some(client) if reusable => client,
            _ => {
                let client = Client::connect_to(&self.host, self.port, self.config.clone())?;
                if let Some(contact) = client.first_contact() {
                    observer.first_contact(contact);
                }
                client
            }
        };
        Ok(self.client.insert(client))
    }

    /// Runs `call` for each item in turn, reconnecting between items if a failure broke the
    /// connection.
    pub(super) fn one_by_one(
        &mut self,
        names: &[String],
        op: Op,
        observer: &mut dyn Observer,
        mut call: impl FnMut(&mut Client, usize, &mut dyn FnMut(Progress)) -> Result<Received>,
        same: &mut Same<'_>,
    ) -> Result<bool> {
        let base = self.item_base;
        let mut all_ok = true;
        for (i, name) in names.iter().enumerate() {
            if self.cancelled() {
                return Ok(false);
            }
            let client = self.connected(observer)?;
            let started = Instant::now();
            let mut moved = Moved::default();
            let result = call(client, i, &mut |progress| {
                moved.saw(progress);
                observer.progress(base + i, name, progress);
            });
            // A failed transfer counts what this run moved before it failed.
            let bytes = result.as_ref().map_or(moved.now(), |got| got.bytes);
            let error = result.as_ref().err();
            let report = Report::new(client.peer(), op, Some(name), started, bytes, error)
                .by(client.user())
                .with_digest(result.as_ref().ok().map(|got| got.digest));
            if error.is_some_and(|e| is_conflict(op, e)) && same(client, i).unwrap_or(false) {
                observer.finished(base + i, report.skipped("identical"), None);
                continue;
            }
            all_ok &= report.is_success();
            observer.finished(base + i, report, error);
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
            &mut dyn FnMut(usize, Result<Received>),
        ),
        same: &mut Same<'_>,
    ) -> Result<bool> {
        let base = self.item_base;
        let mut todo: Vec<usize> = (0..names.len()).collect();
        let mut all_ok = true;
        while !todo.is_empty() && !self.cancelled() {
            let client = self.connected(observer)?;
            let peer = client.peer();
            let user = client.user().map(str::to_owned);
            let tally = RefCell::new(Tally {
                observer: &mut *observer,
                live: HashMap::new(),
                retry: Vec::new(),
                conflicts: Vec::new(),
                all_ok: true,
            });
            let mut progress = |k: usize, progress: Progress| {
                let i = todo[k];
                let mut tally = tally.borrow_mut();
                let live = tally
                    .live
                    .entry(i)
                    .or_insert_with(|| (Instant::now(), Moved::default()));
                live.1.saw(progress);
                tally.observer.progress(base + i, &names[i], progress);
            };
            let mut done = |k: usize, result: Result<Received>| {
                let i = todo[k];
                let mut tally = tally.borrow_mut();
                if matches!(result, Err(Error::NotConnected)) {
                    tally.retry.push(i);
                    return;
                }
                let (started, moved) = tally
                    .live
                    .remove(&i)
                    .map_or_else(|| (Instant::now(), 0), |(at, moved)| (at, moved.now()));
                if let Err(e) = result {
                    if is_conflict(op, &e) {
                        tally.conflicts.push((i, started, e));
                        return;
                    }
                    let report = Report::new(peer, op, Some(&names[i]), started, moved, Some(&e))
                        .by(user.as_deref());
                    tally.all_ok = false;
                    tally.observer.finished(base + i, report, Some(&e));
                    return;
                }
                let error = result.as_ref().err();
                let bytes = result.as_ref().map_or(moved, |got| got.bytes);
                let report = Report::new(peer, op, Some(&names[i]), started, bytes, error)
                    .by(user.as_deref())
                    .with_digest(result.as_ref().ok().map(|got| got.digest));
                tally.all_ok &= report.is_success();
                tally.observer.finished(base + i, report, error);
            };
            run(client, &todo, &mut progress, &mut done);
            let Tally {
                retry,
                conflicts,
                all_ok: ok,
                ..
            } = tally.into_inner();
            all_ok &= ok;
            for (i, started, error) in conflicts {
                let name = Some(names[i].as_str());
                let report =
                    Report::new(peer, op, name, started, 0, Some(&error)).by(user.as_deref());
                if same(client, i).unwrap_or(false) {
                    observer.finished(base + i, report.skipped("identical"), None);
                } else {
                    all_ok = false;
                    observer.finished(base + i, report, Some(&error));
                }
            }
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

/// For each of `names`, whether an earlier one that `claims` its name is the same (the
/// first of each stands). `claims(i)` says whether item `i` would really go to its name (its
/// source exists); it is asked only of names given more than once, and an item that does
/// not claim its name neither stands nor is refused for it (it fails in its turn, for what
/// it is), so a mistyped path does not block the right one.
pub(super) fn later_twins(names: &[String], mut claims: impl FnMut(usize) -> bool) -> Vec<bool> {
    let mut times: HashMap<&str, usize> = HashMap::new();
    for name in names {
        *times.entry(name.as_str()).or_default() += 1;
    }
    let mut seen = std::collections::HashSet::new();
    names
        .iter()
        .enumerate()
        .map(|(i, name)| times[name.as_str()] > 1 && claims(i) && !seen.insert(name.as_str()))
        .collect()
}

impl Session {
    /// [`later_twins`] of `locals`, where the server names `names[i]` lands on: an item
    /// claims its local name only if the server has it (a directory with `dir`, else a
    /// file). Connects only when some local name is given twice.
    ///
    /// # Errors
    /// As [`Session::put`], when the server cannot be reached.
    pub(super) fn twins_on_server(
        &mut self,
        locals: &[String],
        names: &[String],
        dir: bool,
        observer: &mut dyn Observer,
    ) -> Result<Vec<bool>> {
        if !later_twins(locals, |_| true).contains(&true) {
            return Ok(vec![false; locals.len()]);
        }
        let client = self.connected(observer)?;
        Ok(later_twins(locals, |i| server_has(client, &names[i], dir)))
    }
}

/// Whether the server has `name` as a regular file (`dir`: as a directory), for
/// [`later_twins`]: true also when it cannot tell (a server before `Stat`, a failure), so
/// that a doubt keeps the refusal. An invalid name never counts.
fn server_has(client: &mut Client, name: &str, dir: bool) -> bool {
    use crate::protocol::{EntryKind, TREE_VERSION};
    if client.version() < TREE_VERSION {
        return true;
    }
    let want = if dir { EntryKind::Dir } else { EntryKind::File };
    match client.stat(name, false) {
        Ok((entry, _)) => entry.kind == want,
        Err(e) => !matches!(e.kind(), ErrorKind::NotFound | ErrorKind::InvalidName),
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::net::{SocketAddr, TcpListener};
    use std::sync::atomic::AtomicBool;
    use std::sync::{Arc, Mutex};
    use std::thread::JoinHandle;
    use std::time::Duration;

    use tempfile::TempDir;

    use super::*;
    use crate::connection::Connection;
    use crate::handshake::server_handshake;
    use crate::protocol::{DEFAULT_CHUNK, Entry, ErrorKind, Request, Response};
    use crate::transfer::{self, Digest, Hooks, Span};
    use crate::{Server, ServerConfig, ShutdownHandle};

    const BIG: usize = 4 * 1024 * 1024;

    /// A real server on loopback serving a temporary directory; stopped on drop.
    struct Served {
        dir: TempDir,
        addr: SocketAddr,
        reports: Arc<Mutex<Vec<Report>>>,
        stop: ShutdownHandle,
        thread: Option<JoinHandle<()>>,
    }

    impl Served {
        fn start() -> Served {
            Served::start_with(ServerConfig::default())
        }

        /// Serves in plain: these tests are about the session's policy.
        fn start_with(mut config: ServerConfig) -> Served {
            config.plain = true;
            let dir = tempfile::tempdir().expect("tempdir");
            let listener = crate::server::listen("127.0.0.1:0").expect("bind loopback");
            let store = DirStore::open(dir.path()).expect("store");
            let server = Server::new(listener, store, config).expect("server");
            let addr = server.local_addr().expect("addr");
            let stop = server.shutdown_handle();
            let reports = Arc::new(Mutex::new(Vec::new()));
            let sink = Arc::clone(&reports);
            let thread = std::thread::spawn(move || {
                let _ = server.run(move |r| sink.lock().expect("reports").push(r.clone()));
            });
            Served {
                dir,
                addr,
                reports,
                stop,
                thread: Some(thread),
            }
        }

        fn session(&self, config: ClientConfig) -> Session {
            Session::new("127.0.0.1", self.addr.port(), config)
        }

        fn write(&self, name: &str, data: &[u8]) {
            fs::write(self.dir.path().join(name), data).expect("write served file");
        }

        fn read(&self, name: &str) -> Vec<u8> {
            fs::read(self.dir.path().join(name)).expect("read served file")
        }

        /// The names of the uploads the server reported, once it reported `n` (bounded).
        fn uploads(&self, n: usize) -> Vec<String> {
            let names = || -> Vec<String> {
                let reports = self.reports.lock().expect("reports");
                reports
                    .iter()
                    .filter(|r| r.op == Op::Put)
                    .filter_map(|r| r.name.clone())
                    .collect()
            };
            let deadline = Instant::now() + Duration::from_secs(10);
            while names().len() < n && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            names()
        }
    }

    impl Drop for Served {
        fn drop(&mut self) {
            self.stop.shutdown();
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
    }

    fn config() -> ClientConfig {
        ClientConfig {
            timeout: Duration::from_secs(10),
            ..ClientConfig::trusting(crate::Trust::Plain)
        }
    }

    /// A config whose cancel flag the test holds.
    fn cancellable() -> (ClientConfig, Arc<AtomicBool>) {
        let flag = Arc::new(AtomicBool::new(false));
        let mut config = config();
        config.cancel = Some(Arc::clone(&flag));
        // Several chunks per file, so a cancel lands in the middle.
        config.chunk_size = 64 * 1024;
        (config, flag)
    }

    /// Everything a session told it.
    #[derive(Default)]
    struct Record {
        started: Vec<usize>,
        last: HashMap<usize, Progress>,
        entries: Vec<String>,
        finished: Vec<(usize, Report, Option<ErrorKind>)>,
        /// Raised once an item has moved this many bytes.
        cancel_at: Option<(Arc<AtomicBool>, u64)>,
    }

    impl Observer for Record {
        fn start(&mut self, count: usize) {
            self.started.push(count);
        }

        fn progress(&mut self, item: usize, _name: &str, progress: Progress) {
            self.last.insert(item, progress);
            if let Some((flag, at)) = &self.cancel_at {
                if progress.done >= *at {
                    flag.store(true, Ordering::SeqCst);
                }
            }
        }

        fn entry(&mut self, entry: Entry) {
            self.entries.push(entry.name);
        }

        fn finished(&mut self, item: usize, report: Report, error: Option<&Error>) {
            assert_eq!(
                report.failure.as_ref().map(|f| f.kind),
                error.map(Error::kind),
                "the error is the report's"
            );
            self.finished.push((item, report, error.map(Error::kind)));
        }
    }

    impl Record {
        /// (item, name, bytes, error kind) of each report, in the order they came.
        fn outcomes(&self) -> Vec<(usize, String, u64, Option<ErrorKind>)> {
            self.finished
                .iter()
                .map(|(i, r, kind)| (*i, r.name.clone().unwrap_or_default(), r.bytes, *kind))
                .collect()
        }
    }

    fn row(
        i: usize,
        name: &str,
        bytes: usize,
        kind: Option<ErrorKind>,
    ) -> (usize, String, u64, Option<ErrorKind>) {
        (i, name.to_owned(), bytes as u64, kind)
    }

    /// ft's own hidden files in `dir` (temporaries and partials).
    fn temp_files(dir: &Path) -> Vec<String> {
        ft_testutil::names_with(dir, crate::store::RESERVED_PREFIX)
    }

    fn dead_port() -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    }

    /// A session kept between commands notices that the server closed its idle connection
    /// and reconnects, instead of failing the next file on the dead one.
    #[test]
    fn a_session_reconnects_after_the_server_closed_it_while_idle() {
        let served = Served::start_with(ServerConfig {
            idle_timeout: Duration::from_millis(200),
            ..ServerConfig::default()
        });
        let local = tempfile::tempdir().expect("tempdir");
        fs::write(local.path().join("a.txt"), b"a").expect("write");
        fs::write(local.path().join("b.txt"), b"bb").expect("write");
        let mut session = served.session(self::config());
        let mut record = Record::default();
        let first = [PathBuf::from("a.txt")];
        assert!(
            session
                .put(&first, local.path(), false, &mut record)
                .expect("put")
        );
        // Well past the idle timeout: the server has closed the connection by now.
        std::thread::sleep(Duration::from_millis(800));
        let second = [PathBuf::from("b.txt")];
        assert!(
            session
                .put(&second, local.path(), false, &mut record)
                .expect("put")
        );
        assert_eq!(
            record.outcomes(),
            [row(0, "a.txt", 1, None), row(0, "b.txt", 2, None)]
        );
        assert_eq!(served.read("b.txt"), b"bb");
    }

    /// Pipelined, large and unnamable files each get one report; files that cannot be read
    /// or named never reach the server. The reports come in command order, except that a
    /// path that cannot even be named is reported first (ftclient's order since its start).
    #[test]
    fn puts_report_each_item_once_in_command_order() {
        let served = Served::start();
        let local = tempfile::tempdir().expect("tempdir");
        let big = vec![7u8; BIG];
        fs::write(local.path().join("a.txt"), b"a").expect("write");
        fs::write(local.path().join("big.bin"), &big).expect("write");
        fs::write(local.path().join("b.txt"), b"bb").expect("write");
        let files: Vec<PathBuf> = ["a.txt", "missing.txt", "..", "big.bin", "b.txt"]
            .map(PathBuf::from)
            .to_vec();
        let mut record = Record::default();
        let all_ok = served
            .session(config())
            .put(&files, local.path(), false, &mut record)
            .expect("reachable");
        assert!(!all_ok);
        assert_eq!(record.started, [5]);
        assert_eq!(
            record.outcomes(),
            [
                row(2, "..", 0, Some(ErrorKind::InvalidName)),
                row(0, "a.txt", 1, None),
                row(1, "missing.txt", 0, Some(ErrorKind::NotFound)),
                row(3, "big.bin", BIG, None),
                row(4, "b.txt", 2, None),
            ]
        );
        for (_, report, _) in &record.finished {
            assert_eq!((report.op, report.peer), (Op::Put, served.addr));
        }
        assert_eq!(served.read("big.bin"), big);
        assert_eq!(served.read("b.txt"), b"bb");
        let mut uploads = served.uploads(3);
        uploads.sort();
        assert_eq!(
            uploads,
            ["a.txt", "b.txt", "big.bin"],
            "only these were sent"
        );
    }

    /// `--resume` goes one item at a time through the resumable calls, with the same
    /// reports.
    #[test]
    fn resumed_items_go_one_by_one_with_the_same_reports() {
        let served = Served::start();
        served.write("there", b"served");
        let local = tempfile::tempdir().expect("tempdir");
        fs::write(local.path().join("a.txt"), b"abc").expect("write");
        let mut session = served.session(config());
        let mut record = Record::default();
        let files = ["a.txt", ".."].map(PathBuf::from);
        let all_ok = session
            .put(&files, local.path(), true, &mut record)
            .expect("reachable");
        assert!(!all_ok);
        assert_eq!(
            record.outcomes(),
            [
                row(0, "a.txt", 3, None),
                row(1, "..", 0, Some(ErrorKind::InvalidName))
            ]
        );
        assert_eq!(served.read("a.txt"), b"abc");

        let dir = DirStore::open(local.path()).expect("local store");
        let mut record = Record::default();
        let names = ["there".to_owned(), "absent".to_owned()];
        let all_ok = session
            .get(&names, &dir, false, true, &mut record)
            .expect("reachable");
        assert!(!all_ok);
        assert_eq!(
            record.outcomes(),
            [
                row(0, "there", 6, None),
                row(1, "absent", 0, Some(ErrorKind::NotFound))
            ]
        );
        assert_eq!(
            fs::read(local.path().join("there")).expect("read"),
            b"served"
        );
    }

    /// Downloads start by removing temporary files a killed client left, and report each
    /// name, refused locally or by the server, in order; a name that exists locally is
    /// reported after the others, once compared (other bytes: refused, untouched).
    #[test]
    fn gets_clean_stale_temporaries_and_report_each_item() {
        let served = Served::start();
        served.write("present", b"here");
        served.write("taken", b"new");
        let local = tempfile::tempdir().expect("tempdir");
        // Above Linux's largest pid: its creator is gone.
        fs::write(local.path().join(".ft-tmp-4194305-0-0"), b"stale").expect("write");
        fs::write(local.path().join("taken"), b"mine").expect("write");
        let dir = DirStore::open(local.path()).expect("local store");
        let mut session = served.session(config());
        let mut record = Record::default();
        let names = ["present", "missing", "taken", "../x"].map(str::to_owned);
        let all_ok = session
            .get(&names, &dir, false, false, &mut record)
            .expect("reachable");
        assert!(!all_ok);
        assert_eq!(
            record.outcomes(),
            [
                row(0, "present", 4, None),
                row(1, "missing", 0, Some(ErrorKind::NotFound)),
                row(3, "../x", 0, Some(ErrorKind::InvalidName)),
                row(2, "taken", 0, Some(ErrorKind::AlreadyExists)),
            ]
        );
        assert!(temp_files(local.path()).is_empty(), "the stale one is gone");
        assert_eq!(
            fs::read(local.path().join("present")).expect("read"),
            b"here"
        );
        assert_eq!(fs::read(local.path().join("taken")).expect("read"), b"mine");

        let mut record = Record::default();
        let all_ok = session
            .get(&["taken".to_owned()], &dir, true, false, &mut record)
            .expect("reachable");
        assert!(all_ok);
        assert_eq!(fs::read(local.path().join("taken")).expect("read"), b"new");
    }

    /// A transfer cancelled midway is reported with the bytes it moved (its last
    /// progress), and the session stops; a resumed download then moves only the rest.
    #[test]
    fn a_failed_item_reports_the_bytes_this_run_moved() {
        let served = Served::start();
        let local = tempfile::tempdir().expect("tempdir");
        let data: Vec<u8> = (0..BIG).map(|i| (i % 251) as u8).collect();
        fs::write(local.path().join("up.bin"), &data).expect("write");
        served.write("down.bin", &data);
        let at = (BIG / 4) as u64;

        let (config, flag) = cancellable();
        let mut record = Record {
            cancel_at: Some((Arc::clone(&flag), at)),
            ..Record::default()
        };
        fs::write(local.path().join("after.bin"), b"small").expect("write");
        let files = ["up.bin", "after.bin"].map(PathBuf::from);
        let all_ok = served
            .session(config)
            .put(&files, local.path(), false, &mut record)
            .expect("reachable");
        assert!(!all_ok);
        // The rest of a batch already under way is cancelled too, each in its report.
        let [
            (0, report, Some(ErrorKind::Cancelled)),
            (1, after, Some(ErrorKind::Cancelled)),
        ] = &record.finished[..]
        else {
            panic!("two cancelled reports: {:?}", record.outcomes());
        };
        assert_eq!(report.bytes, record.last[&0].done);
        assert!(
            report.bytes >= at && report.bytes < BIG as u64,
            "{}",
            report.bytes
        );
        assert_eq!(after.bytes, 0);

        let dir = DirStore::open(local.path()).expect("local store");
        let (config, flag) = cancellable();
        let mut record = Record {
            cancel_at: Some((Arc::clone(&flag), at)),
            ..Record::default()
        };
        let names = ["down.bin".to_owned()];
        let mut session = served.session(config.clone());
        assert!(
            !session
                .get(&names, &dir, false, true, &mut record)
                .expect("reachable")
        );
        let [(0, first, Some(_))] = &record.finished[..] else {
            panic!("one failed report: {:?}", record.outcomes());
        };
        assert_eq!(first.bytes, record.last[&0].done);
        assert!(
            first.bytes >= at && first.bytes < BIG as u64,
            "{}",
            first.bytes
        );

        flag.store(false, Ordering::SeqCst);
        let mut record = Record::default();
        assert!(
            session
                .get(&names, &dir, false, true, &mut record)
                .expect("reachable")
        );
        let [(0, rest, None)] = &record.finished[..] else {
            panic!("one report: {:?}", record.outcomes());
        };
        assert!(rest.bytes < BIG as u64, "only the rest: {}", rest.bytes);
        assert!(fs::read(local.path().join("down.bin")).expect("read") == data);
    }

    /// A server that cannot be reached is the method's error, not a report.
    #[test]
    fn an_unreachable_server_is_an_error_not_a_report() {
        let local = tempfile::tempdir().expect("tempdir");
        let dir = DirStore::open(local.path()).expect("local store");
        let mut session = Session::new("127.0.0.1", dead_port(), config());
        let mut record = Record::default();
        let results = [
            session.put(&[PathBuf::from("..")], local.path(), false, &mut record),
            session.put(&[PathBuf::from("a")], local.path(), true, &mut record),
            session.get(&["a".to_owned()], &dir, false, false, &mut record),
            session.list(&mut record),
        ];
        for result in results {
            match result {
                Err(Error::Network { source, .. }) => {
                    assert_eq!(source.kind(), std::io::ErrorKind::ConnectionRefused);
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(record.finished.is_empty(), "{:?}", record.outcomes());
    }

    /// Once cancelled, nothing more starts, and nothing is connected.
    #[test]
    fn a_cancelled_session_starts_nothing() {
        let local = tempfile::tempdir().expect("tempdir");
        let dir = DirStore::open(local.path()).expect("local store");
        let (config, flag) = cancellable();
        flag.store(true, Ordering::SeqCst);
        let mut session = Session::new("127.0.0.1", dead_port(), config);
        let mut record = Record::default();
        let files = [PathBuf::from("a")];
        let names = ["a".to_owned()];
        for resume in [false, true] {
            let put = session.put(&files, local.path(), resume, &mut record);
            let get = session.get(&names, &dir, false, resume, &mut record);
            assert!(matches!((put, get), (Ok(false), Ok(false))));
        }
        assert!(record.finished.is_empty());
    }

    /// A listing hands over its entries, then one report; a bracketed host works.
    #[test]
    fn a_listing_hands_over_entries_then_one_report() {
        let served = Served::start();
        served.write("a", b"1");
        served.write("b", b"22");
        fs::create_dir(served.dir.path().join("sub")).expect("mkdir");
        let mut session = Session::new("[127.0.0.1]", served.addr.port(), config());
        assert_eq!(session.host(), "127.0.0.1");
        let mut record = Record::default();
        assert!(session.list(&mut record).expect("reachable"));
        record.entries.sort();
        assert_eq!(record.entries, ["a", "b", "sub"]);
        let [(0, report, None)] = &record.finished[..] else {
            panic!("one report: {:?}", record.outcomes());
        };
        assert_eq!(
            (
                report.op,
                report.name.as_deref(),
                report.entries,
                report.bytes
            ),
            (Op::List, None, Some(3), 0)
        );
    }

    /// Accepts a connection on `listener` and greets like a server.
    fn accept(listener: &TcpListener) -> Connection {
        let (stream, _) = listener.accept().expect("accept");
        let mut conn = Connection::tcp(stream, Duration::from_secs(10)).expect("connection");
        server_handshake(&mut conn).expect("handshake");
        conn
    }

    /// Downloads whose requests went out on a connection that then broke are asked again
    /// on a new one; the one that broke it is reported as failed, all in command order.
    #[test]
    fn files_never_answered_are_retried_on_a_new_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let fake = std::thread::spawn(move || {
            // Takes the three pipelined requests, then answers the first with nonsense.
            let mut conn = accept(&listener);
            for _ in 0..3 {
                let request = conn.recv::<Request>().expect("request");
                assert!(matches!(request, Some(Request::Get { .. })), "{request:?}");
            }
            conn.send(&Response::Stored { size: 0 }).expect("send");
            drop(conn);
            // Serves what is asked again, each file holding its own name.
            let mut conn = accept(&listener);
            let mut asked = Vec::new();
            for _ in 0..2 {
                match conn.recv::<Request>().expect("request") {
                    Some(Request::Get { name }) => asked.push(name),
                    other => panic!("{other:?}"),
                }
            }
            for name in &asked {
                let size = name.len() as u64;
                conn.send(&Response::File { size, modified: 0 })
                    .expect("send");
                let mut hooks = Hooks {
                    progress: None,
                    cancel: None,
                };
                let digest = Digest::Running(Box::default());
                let span = Span::whole(name, size);
                transfer::send_body(
                    &mut conn,
                    span,
                    &mut name.as_bytes(),
                    digest,
                    DEFAULT_CHUNK,
                    &mut hooks,
                )
                .expect("body");
            }
            // Until the client hangs up.
            let _ = conn.recv::<Request>();
            asked
        });

        let local = tempfile::tempdir().expect("tempdir");
        let dir = DirStore::open(local.path()).expect("local store");
        let mut session = Session::new("127.0.0.1", port, config());
        let mut record = Record::default();
        let names = ["one", "two", "three"].map(str::to_owned);
        let all_ok = session
            .get(&names, &dir, false, false, &mut record)
            .expect("reachable");
        drop(session);
        assert_eq!(fake.join().expect("fake server"), ["two", "three"]);
        assert!(!all_ok);
        assert_eq!(
            record.outcomes(),
            [
                row(0, "one", 0, Some(ErrorKind::Protocol)),
                row(1, "two", 3, None),
                row(2, "three", 5, None),
            ]
        );
        assert_eq!(fs::read(local.path().join("two")).expect("read"), b"two");
        assert!(!local.path().join("one").exists());
        assert!(temp_files(local.path()).is_empty());
    }
}
