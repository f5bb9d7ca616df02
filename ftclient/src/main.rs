//! `ftclient HOST PORT put FILE… | get NAME… | list`: parses arguments, calls
//! `ftlib::Client` once per file over one connection, prints one report line per request,
//! and exits 0 when every request succeeded, 1 when any failed, 2 on usage errors.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use ftlib::protocol::EntryKind;
use ftlib::report::{Op, Report, escape};
use ftlib::store::DirStore;
use ftlib::{Client, ClientConfig, Error};

const EXAMPLES: &str = "\
Examples:
  ftclient localhost 6789 put notes.pdf          upload client_data/notes.pdf (or ./notes.pdf)
  ftclient localhost 6789 put ~/a.txt ../b.bin   upload any paths; the remote name is the last component
  ftclient localhost 6789 get test2.txt          download into client_data/test2.txt
  ftclient --dir . ::1 6789 get a b c            download three files into . over IPv6
  ftclient localhost 6789 list                   one name per line (directories end in /)

Each put or get prints one report line on stdout: time, server ip and port, operation,
file name, bytes, duration, then `success` or `failure KIND: MESSAGE`; list prints names on
stdout and its report on stderr. Exit status: 0 all succeeded, 1 any failed, 2 usage error,
130 interrupted.";

/// Upload, download and list files on an ft server.
#[derive(Debug, Parser)]
#[command(version, about, after_help = EXAMPLES)]
struct Args {
    /// Server host name or IP address (IPv6 with or without brackets).
    host: String,
    /// Server port.
    port: u16,
    #[command(subcommand)]
    command: Command,
    /// Local directory: `get` writes here, and `put` looks here first for plain names.
    #[arg(long, global = true, default_value = "client_data", value_name = "DIR")]
    dir: PathBuf,
    /// Print reports as JSON lines instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Let `get` replace an existing local file (atomically, only once verified).
    #[arg(long, global = true)]
    overwrite: bool,
    /// Seconds to wait for the server to connect or make progress.
    #[arg(long, global = true, default_value_t = 30, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    timeout: u64,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Upload files; the name on the server is each path's last component.
    Put {
        /// Files to upload: a plain name is looked up in --dir, then the current directory.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Download files into --dir; an existing local file is kept unless --overwrite.
    Get {
        /// Names of files on the server.
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
    },
    /// List the files on the server, one name per line.
    List,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&cancel);
    let handler = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("ftclient: interrupted, cleaning up (again to force)");
    });
    if let Err(e) = handler {
        eprintln!("ftclient: cannot install the signal handler: {e}");
    }
    let mut session = Session::new(&args, Arc::clone(&cancel));
    let all_ok = session.run(&args.command);
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
}

impl<'a> Session<'a> {
    fn new(args: &'a Args, cancel: Arc<AtomicBool>) -> Session<'a> {
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
        }
    }

    /// Runs the command; true when every request succeeded.
    fn run(&mut self, command: &Command) -> bool {
        match command {
            Command::Put { files } => {
                let dir = self.args.dir.clone();
                self.each(files, Op::Put, |client, file| {
                    let (path, name) = local_source(file, &dir)?;
                    client.put(&path, &name, |_| {})
                })
            }
            Command::Get { names } => {
                let dir = match DirStore::open(&self.args.dir) {
                    Ok(dir) => dir,
                    Err(e) => {
                        eprintln!("ftclient: {e} (create it, or choose another with --dir)");
                        return false;
                    }
                };
                let overwrite = self.args.overwrite;
                self.each(names, Op::Get, |client, name| {
                    client.get(name, &dir, overwrite, |_| {})
                })
            }
            Command::List => self.list(),
        }
    }

    /// Runs one request per item over the shared connection, printing a report for each;
    /// stops early only when the server cannot be reached or the user interrupts.
    fn each<T: Item>(
        &mut self,
        items: &[T],
        op: Op,
        mut call: impl FnMut(&mut Client, &T) -> Result<u64, Error>,
    ) -> bool {
        let mut all_ok = true;
        for item in items {
            if self.cancel.load(Ordering::SeqCst) {
                return false;
            }
            let Some(client) = self.connected() else {
                return false;
            };
            let started = Instant::now();
            let result = call(client, item);
            let report = Report::new(
                client.peer(),
                op,
                Some(&item.remote_name()),
                started,
                *result.as_ref().unwrap_or(&0),
                result.as_ref().err(),
            );
            all_ok &= report.is_success();
            self.print(&report, false);
        }
        all_ok
    }

    /// The open connection, reconnecting after one broke; prints why when it cannot.
    fn connected(&mut self) -> Option<&mut Client> {
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
                    eprintln!(
                        "ftclient: cannot reach {}: {why}",
                        display_target(self.host, self.args.port)
                    );
                    return None;
                }
            }
        }
        self.client.as_mut()
    }

    fn list(&mut self) -> bool {
        let Some(client) = self.connected() else {
            return false;
        };
        let started = Instant::now();
        let mut out = std::io::stdout().lock();
        let result = client.list_each(|entry| {
            let suffix = if entry.kind == EntryKind::Dir {
                "/"
            } else {
                ""
            };
            let _ = writeln!(out, "{}{suffix}", escape(&entry.name));
        });
        drop(out);
        let report = Report::new(
            client.peer(),
            Op::List,
            None,
            started,
            *result.as_ref().unwrap_or(&0),
            result.as_ref().err(),
        );
        self.print(&report, true);
        report.is_success()
    }

    fn print(&self, report: &Report, to_stderr: bool) {
        let line = if self.args.json {
            report.to_json()
        } else {
            report.to_string()
        };
        if to_stderr {
            eprintln!("{line}");
        } else {
            let _ = writeln!(std::io::stdout().lock(), "{line}");
        }
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
    let path = if file.components().count() > 1 || in_dir.exists() || !file.exists() {
        if file.components().count() > 1 {
            file.to_path_buf()
        } else {
            in_dir
        }
    } else {
        file.to_path_buf()
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
