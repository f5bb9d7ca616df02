//! What ftclient shows while an `ftlib::Session` runs: the [`Observer`]s that draw a bar per
//! file, print each report (text or JSON, with a hint after a failure) above the bars, and
//! print a listing's entries on stdout; and the line for a server that cannot be reached.

use std::collections::HashMap;
use std::io::{StdoutLock, Write};

use chrono::Local;
use ftlib::text::escape_message;
use ftlib::{Entry, Error, ErrorKind, FirstContact, Observer, Op, Progress, Report};

use crate::hints::{Target, hint, with_hint};
use crate::output::{entry_json, listed_name, long_listing};
use crate::progress::{Bars, FileBar, stdout_written};

/// Bars and report lines for puts and gets, and the report of a listing.
#[derive(Debug)]
pub(crate) struct Printer<'a> {
    bars: &'a Bars,
    json: bool,
    target: Target<'a>,
    /// The bar of each file in flight, drawn from its first progress on.
    live: HashMap<usize, FileBar<'a>>,
    /// Reports go to stderr (stdout carries a downloaded file).
    stderr: bool,
    /// Items an interrupt kept from starting, after the first (text reports only): one
    /// line says how many, rather than thousands of `failure cancelled` lines.
    unstarted: usize,
    said_unstarted: bool,
}

impl<'a> Printer<'a> {
    /// Reports as JSON lines when `json`; hints name `target`.
    pub(crate) fn new(bars: &'a Bars, json: bool, target: Target<'a>) -> Printer<'a> {
        Printer {
            bars,
            json,
            target,
            live: HashMap::new(),
            stderr: false,
            unstarted: 0,
            said_unstarted: false,
        }
    }

    /// Says how many more items an interrupt kept from starting, if any (text reports).
    pub(crate) fn finish(&self) {
        if self.unstarted > 0 {
            self.bars.err(&format!(
                "ftclient: interrupted: {} more not started (not listed one by one), besides \
                 any the command had not reached yet; run the same command again to finish",
                self.unstarted
            ));
        }
    }

    /// Prints reports on stderr instead of stdout, when stdout carries a file.
    pub(crate) fn reports_to_stderr(&mut self, stderr: bool) {
        self.stderr = stderr;
    }

    /// Says on stderr that the server could not be reached, why, and what to do.
    pub(crate) fn cannot_reach(&self, error: &Error) {
        if let Error::IdentityChanged(_) = error {
            // Says everything, the server included, and is not about reaching it.
            self.bars
                .err(&format!("ftclient: {}", escape_message(&error.to_string())));
            return;
        }
        let why = match error {
            // The address is in the line already.
            Error::Network { source, .. } => source.to_string(),
            other => other.to_string(),
        };
        let why = with_hint(&why, hint(Op::Connect, error, self.target));
        let Target { host, port, .. } = self.target;
        let host = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let failed = match error.kind() {
            ErrorKind::AuthFailed => "cannot log in to",
            ErrorKind::TlsRequired => "cannot talk to",
            // Refused here, not by the network: a login over plain, a known-hosts file
            // that cannot be read.
            _ if matches!(error, Error::Config(_)) => "cannot connect to",
            _ => "cannot reach",
        };
        self.bars.err(&format!(
            "ftclient: {failed} {host}: {}",
            escape_message(&why)
        ));
    }
}

impl Observer for Printer<'_> {
    fn start(&mut self, count: usize) {
        self.bars.start(count);
    }

    fn totals(&mut self, files: usize, bytes: u64) {
        self.bars.start_sized(files, bytes);
    }

    fn wants_totals(&self) -> bool {
        self.bars.shown()
    }

    fn first_contact(&mut self, contact: &FirstContact) {
        let server = escape_message(&contact.server);
        let fp = contact.fingerprint;
        self.bars.err(&match &contact.not_recorded {
            None => format!(
                "ftclient: first contact with {server}: its fingerprint {fp} is now recorded \
                 in {}; compare it with the one the server printed",
                contact.file.display()
            ),
            Some(why) => format!(
                "ftclient: warning: first contact with {server}: its fingerprint {fp} could \
                 not be recorded ({why}), so the next connection will be a first contact \
                 again; compare it with the one the server printed, and pass --fingerprint \
                 {fp} to pin it"
            ),
        });
    }

    fn progress(&mut self, item: usize, name: &str, progress: Progress) {
        let bars = self.bars;
        self.live
            .entry(item)
            .or_insert_with(|| bars.file(name))
            .update(progress);
    }

    /// The report above the bars: on stdout, a listing's on stderr (its entries are on
    /// stdout).
    fn finished(&mut self, item: usize, mut report: Report, error: Option<&Error>) {
        if report.op != Op::List {
            let bars = self.bars;
            let name = report.name.as_deref().unwrap_or_default();
            let bar = self.live.remove(&item).unwrap_or_else(|| bars.file(name));
            let moved = report.is_success() && report.skipped.is_none();
            bar.finish(moved.then_some(report.bytes));
        }
        // Interrupted before it started (Ctrl-C here, not the server's): the first is
        // reported, the others counted.
        let unstarted = report.bytes == 0
            && error.is_some_and(|e| {
                e.kind() == ErrorKind::Cancelled
                    && !matches!(e, Error::Remote { .. } | Error::Aborted { .. })
            });
        if unstarted && !self.json {
            if self.said_unstarted {
                self.unstarted += 1;
                return;
            }
            self.said_unstarted = true;
        }
        if let (Some(failure), Some(error)) = (report.failure.as_mut(), error) {
            failure.message = with_hint(&failure.message, hint(report.op, error, self.target));
        }
        let line = if self.json {
            report.to_json()
        } else {
            report.to_string()
        };
        if report.op == Op::List || self.stderr {
            self.bars.err(&line);
        } else {
            self.bars.out(&line);
        }
    }
}

/// A listing on stdout: one name per line, one JSON object per entry with `--json`, or
/// aligned columns sorted by name with `--long` (printed once all entries are in). With
/// digests, JSON entries too wait for them.
#[derive(Debug)]
pub(crate) struct Listing<'p, 'a> {
    printer: &'p mut Printer<'a>,
    long: bool,
    exact: bool,
    /// Each file's digest is asked, and shown.
    digests: bool,
    /// Held while entries arrive, rather than locked per line.
    out: Option<StdoutLock<'static>>,
    kept: Vec<Entry>,
    /// The digests received, by name (a file whose digest could not be had has none).
    got: HashMap<String, [u8; 16]>,
}

impl<'p, 'a> Listing<'p, 'a> {
    /// Columns when `long` (sizes in bytes when `exact`, a digest column with `digests`);
    /// the report goes to `printer`.
    pub(crate) fn new(
        printer: &'p mut Printer<'a>,
        long: bool,
        exact: bool,
        digests: bool,
    ) -> Listing<'p, 'a> {
        Listing {
            printer,
            long,
            exact,
            digests,
            out: None,
            kept: Vec::new(),
            got: HashMap::new(),
        }
    }
}

impl Observer for Listing<'_, '_> {
    fn first_contact(&mut self, contact: &FirstContact) {
        self.printer.first_contact(contact);
    }

    fn entry(&mut self, entry: Entry) {
        let out = self.out.get_or_insert_with(|| std::io::stdout().lock());
        if self.printer.json && !self.digests {
            stdout_written(writeln!(out, "{}", entry_json(&entry, None)));
        } else if self.long || self.digests {
            self.kept.push(entry);
        } else {
            stdout_written(writeln!(out, "{}", listed_name(&entry)));
        }
    }

    fn digest(&mut self, name: &str, digest: Result<[u8; 16], &Error>) {
        if let Ok(digest) = digest {
            self.got.insert(name.to_owned(), digest);
        }
    }

    fn finished(&mut self, item: usize, report: Report, error: Option<&Error>) {
        let mut out = self.out.take().unwrap_or_else(|| std::io::stdout().lock());
        let digests = self.digests.then_some(&self.got);
        if self.printer.json {
            for entry in &self.kept {
                let digest = digests.and_then(|got| got.get(&entry.name));
                stdout_written(writeln!(out, "{}", entry_json(entry, digest)));
            }
        } else {
            for line in long_listing(&mut self.kept, self.exact, digests, &Local) {
                stdout_written(writeln!(out, "{line}"));
            }
        }
        stdout_written(out.flush());
        drop(out);
        // Entries lost on the way out: the listing did not succeed, whatever the server
        // said.
        let mut report = report;
        if let (None, Some(why)) = (&report.failure, crate::progress::stdout_failure()) {
            report.failure = Some(ftlib::Failure {
                kind: ErrorKind::Io,
                message: format!("writing the listing to standard output: {why}"),
            });
        }
        self.printer.finished(item, report, error);
    }
}
