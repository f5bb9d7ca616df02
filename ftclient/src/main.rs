//! `ftclient HOST PORT put FILE… | get NAME… | list [-l]`: parses arguments, calls
//! `ftlib::Client` once per file over one connection, draws progress on a terminal, prints
//! one report line per request, and exits 0 when every request succeeded, 1 when any
//! failed, 2 on usage errors, 130 when interrupted.

mod cli;
mod hints;
mod output;
mod progress;

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::Local;
use ftlib::protocol::Entry;
use ftlib::report::{Op, Report};
use ftlib::store::DirStore;
use ftlib::text::escape;
use ftlib::{Client, ClientConfig, Error, Progress};

use cli::{Args, Command, Parsed};
use hints::{Target, hint, with_hint};
use output::{entry_json, listed_name, long_listing};
use progress::Bars;

fn main() -> ExitCode {
    let args = match cli::parse() {
        Parsed::Run(args) => args,
        Parsed::Done(code) => return code,
    };
    let bars = Bars::new(!args.quiet && std::io::stderr().is_terminal());
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&cancel);
    let say = bars.err_printer();
    let handler = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        say("ftclient: interrupted, cleaning up (again to force)");
    });
    if let Err(e) = handler {
        eprintln!("ftclient: cannot install the signal handler: {e}");
    }
    let mut session = Session::new(&args, bars, Arc::clone(&cancel));
    let all_ok = session.run(&args.command);
    session.bars.finish();
    if cancel.load(Ordering::SeqCst) {
        ExitCode::from(130)
    } else if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// One invocation: a connection (reopened after a failure that broke it) and the output.
struct Session<'a> {
    args: &'a Args,
    host: &'a str,
    config: ClientConfig,
    client: Option<Client>,
    cancel: Arc<AtomicBool>,
    bars: Bars,
}

impl<'a> Session<'a> {
    fn new(args: &'a Args, bars: Bars, cancel: Arc<AtomicBool>) -> Session<'a> {
        let mut config = ClientConfig::default();
        config.timeout = Duration::from_secs(args.timeout);
        config.cancel = Some(Arc::clone(&cancel));
        let host = args.host.trim_start_matches('[').trim_end_matches(']');
        Session {
            args,
            host,
            config,
            client: None,
            cancel,
            bars,
        }
    }

    fn target(&self) -> Target<'a> {
        Target {
            host: self.host,
            port: self.args.port,
            dir: &self.args.dir,
            timeout: self.args.timeout,
        }
    }

    /// Runs the command; true when every request succeeded.
    fn run(&mut self, command: &Command) -> bool {
        match command {
            Command::Put {
                files,
                resume: true,
            } => {
                let dir = self.args.dir.clone();
                self.each(files, Op::Put, |client, file, progress| {
                    let (path, name) = local_source(file, &dir)?;
                    client.put_resumable(&path, &name, progress)
                })
            }
            Command::Put {
                files,
                resume: false,
            } => {
                let dir = self.args.dir.clone();
                self.batch(files, Op::Put, |client, todo, progress, done| {
                    // Files that cannot even be named are reported without the server.
                    let mut sent = Vec::new();
                    let mut items = Vec::new();
                    for &i in todo {
                        match local_source(&files[i], &dir) {
                            Ok(source) => {
                                sent.push(i);
                                items.push(source);
                            }
                            Err(e) => done(i, Err(e)),
                        }
                    }
                    client.put_many(&items, |k, p| progress(sent[k], p), |k, r| done(sent[k], r));
                })
            }
            Command::Get { names, resume } => {
                let dir = match DirStore::open(&self.args.dir) {
                    Ok(dir) => dir,
                    Err(e) => {
                        self.bars.err(&format!(
                            "ftclient: cannot download into {}: {e}; create it, or choose \
                             another directory with --dir",
                            self.args.dir.display()
                        ));
                        return false;
                    }
                };
                // Temporary files of downloads whose client was killed.
                let _ = dir.cleanup();
                let overwrite = self.args.overwrite;
                if *resume {
                    return self.each(names, Op::Get, |client, name, progress| {
                        client.get_resumable(name, &dir, overwrite, progress)
                    });
                }
                self.batch(names, Op::Get, |client, todo, progress, done| {
                    let subset: Vec<String> = todo.iter().map(|&i| names[i].clone()).collect();
                    client.get_many(
                        &subset,
                        &dir,
                        overwrite,
                        |k, p| progress(todo[k], p),
                        |k, r| done(todo[k], r),
                    );
                })
            }
            Command::List { long, bytes } => self.list(*long, *bytes),
        }
    }

    /// Runs one request per item over the shared connection, drawing its progress and
    /// printing a report for each; stops early only when the server cannot be reached or
    /// the user interrupts.
    fn each<T: Item>(
        &mut self,
        items: &[T],
        op: Op,
        mut call: impl FnMut(&mut Client, &T, &mut dyn FnMut(Progress)) -> Result<u64, Error>,
    ) -> bool {
        self.bars.start(items.len());
        let mut all_ok = true;
        for item in items {
            if self.cancel.load(Ordering::SeqCst) {
                return false;
            }
            // Borrowing the client apart from the bars, hence two steps.
            if !self.ensure_connected() {
                return false;
            }
            let Some(client) = self.client.as_mut() else {
                return false;
            };
            let name = item.remote_name();
            let started = Instant::now();
            let mut bar = self.bars.file(&name);
            let result = call(client, item, &mut |p| bar.update(p));
            let moved = bar.finish();
            let bytes = *result.as_ref().unwrap_or(&moved);
            let report = Report::new(
                client.peer(),
                op,
                Some(&name),
                started,
                bytes,
                result.as_ref().err(),
            );
            all_ok &= report.is_success();
            self.print(report, result.as_ref().err(), false);
        }
        all_ok
    }

    /// Runs `run` over the shared connection for all items at once (the library pipelines
    /// them), drawing a bar per file in flight and printing each report as it comes. Files
    /// not sent because the connection broke are retried on a new one.
    fn batch<T: Item>(
        &mut self,
        items: &[T],
        op: Op,
        mut run: impl FnMut(
            &mut Client,
            &[usize],
            &mut dyn FnMut(usize, Progress),
            &mut dyn FnMut(usize, Result<u64, Error>),
        ),
    ) -> bool {
        self.bars.start(items.len());
        let mut todo: Vec<usize> = (0..items.len()).collect();
        let mut all_ok = true;
        while !todo.is_empty() && !self.cancel.load(Ordering::SeqCst) {
            if !self.ensure_connected() {
                return false;
            }
            let target = self.target();
            let Some(client) = self.client.as_mut() else {
                return false;
            };
            let peer = client.peer();
            let (bars, args) = (&self.bars, self.args);
            let live = RefCell::new(HashMap::new());
            let mut retry = Vec::new();
            let mut progress = |i: usize, p: Progress| {
                live.borrow_mut()
                    .entry(i)
                    .or_insert_with(|| (Instant::now(), bars.file(&items[i].remote_name())))
                    .1
                    .update(p);
            };
            let mut done = |i: usize, result: Result<u64, Error>| {
                if matches!(result, Err(Error::NotConnected)) {
                    retry.push(i);
                    return;
                }
                let (started, bar) = live
                    .borrow_mut()
                    .remove(&i)
                    .unwrap_or_else(|| (Instant::now(), bars.file(&items[i].remote_name())));
                let moved = bar.finish();
                let name = items[i].remote_name();
                let error = result.as_ref().err();
                let bytes = *result.as_ref().unwrap_or(&moved);
                let report = Report::new(peer, op, Some(&name), started, bytes, error);
                all_ok &= report.is_success();
                emit(args, bars, target, report, error, false);
            };
            run(client, &todo, &mut progress, &mut done);
            if retry.len() == todo.len() {
                // Nothing went through on a fresh connection: give up rather than loop.
                all_ok = false;
                break;
            }
            todo = retry;
        }
        all_ok && todo.is_empty()
    }

    /// True once a connection is open, reconnecting after one broke; prints why when it
    /// cannot.
    fn ensure_connected(&mut self) -> bool {
        if !self.client.as_ref().is_some_and(Client::is_open) {
            self.client = None;
            match Client::connect((self.host, self.args.port), self.config.clone()) {
                Ok(client) => self.client = Some(client),
                Err(e) => {
                    let why = match &e {
                        // The address is in the line already.
                        Error::Network { source, .. } => source.to_string(),
                        other => other.to_string(),
                    };
                    let why = with_hint(&why, hint(Op::Connect, &e, self.target()));
                    self.bars.err(&format!(
                        "ftclient: cannot reach {}: {}",
                        display_target(self.host, self.args.port),
                        escape(&why)
                    ));
                    return false;
                }
            }
        }
        true
    }

    /// Names on stdout (one per line, one JSON object per entry with --json, or aligned
    /// columns with `long`), the report on stderr.
    fn list(&mut self, long: bool, exact: bool) -> bool {
        let json = self.args.json;
        if !self.ensure_connected() {
            return false;
        }
        let Some(client) = self.client.as_mut() else {
            return false;
        };
        let started = Instant::now();
        let mut kept: Vec<Entry> = Vec::new();
        let mut out = std::io::stdout().lock();
        let result = client.list_each(|entry| {
            // A closed stdout is not worth failing the listing for.
            if json {
                let _ = writeln!(out, "{}", entry_json(&entry));
            } else if long {
                kept.push(entry);
            } else {
                let _ = writeln!(out, "{}", listed_name(&entry));
            }
        });
        for line in long_listing(&mut kept, exact, &Local) {
            let _ = writeln!(out, "{line}");
        }
        let _ = out.flush();
        drop(out);
        let report = Report::new(
            client.peer(),
            Op::List,
            None,
            started,
            *result.as_ref().unwrap_or(&0),
            result.as_ref().err(),
        );
        let ok = report.is_success();
        self.print(report, result.as_ref().err(), true);
        ok
    }

    /// Prints `report`, with a hint on what to do after `error`.
    fn print(&self, report: Report, error: Option<&Error>, to_stderr: bool) {
        emit(
            self.args,
            &self.bars,
            self.target(),
            report,
            error,
            to_stderr,
        );
    }
}

/// Prints `report` above the bars, with a hint on what to do after `error`.
fn emit(
    args: &Args,
    bars: &Bars,
    target: Target<'_>,
    mut report: Report,
    error: Option<&Error>,
    to_stderr: bool,
) {
    if let (Some(failure), Some(error)) = (report.failure.as_mut(), error) {
        failure.message = with_hint(&failure.message, hint(report.op, error, target));
    }
    let line = if args.json {
        report.to_json()
    } else {
        report.to_string()
    };
    if to_stderr {
        bars.err(&line);
    } else {
        bars.out(&line);
    }
}

/// A command-line item and the name it has on the server.
trait Item {
    fn remote_name(&self) -> String;
}

impl Item for String {
    fn remote_name(&self) -> String {
        self.clone()
    }
}

impl Item for PathBuf {
    fn remote_name(&self) -> String {
        self.file_name()
            .unwrap_or(self.as_os_str())
            .to_string_lossy()
            .into_owned()
    }
}

/// Where `put` reads `file` from (a plain name: `dir` first, then the working directory),
/// and the name it gets on the server (the last component).
fn local_source(file: &Path, dir: &Path) -> Result<(PathBuf, String), Error> {
    let invalid = |reason| Error::InvalidName {
        name: file.display().to_string(),
        reason,
    };
    let name = file
        .file_name()
        .ok_or_else(|| invalid("the path does not end in a file name"))?
        .to_str()
        .ok_or_else(|| invalid("the name is not valid UTF-8"))?;
    let in_dir = dir.join(file);
    let path = if file.components().count() > 1 || (!in_dir.exists() && file.exists()) {
        file.to_path_buf()
    } else {
        in_dir
    };
    Ok((path, name.to_owned()))
}

fn display_target(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}
