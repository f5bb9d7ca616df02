//! The command line: the clap definitions, and `--completions SHELL` / `--man`, which print
//! what clap_complete and clap_mangen (through `man`) generate from those same definitions.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use clap_complete::Shell;

mod man;

const EXAMPLES: &str = "\
Examples:
  ftclient localhost 6789 put notes.pdf          upload client_data/notes.pdf (or ./notes.pdf)
  ftclient localhost 6789 put ~/a.txt ../b.bin   upload any paths; the remote name is the last component
  ftclient localhost 6789 put draft.txt --as final.txt   choose the name on the server
  ftclient localhost 6789 put -r photos          upload the tree photos/ as photos/... (times, exec bits)
  ftclient localhost 6789 put -r photos --to 2024  ...as 2024/photos/... on the server
  ftclient localhost 6789 get test2.txt          download into client_data/test2.txt
  ftclient localhost 6789 get 2024/photos/a.jpg  download a file of a server directory, as a.jpg
  tar c dir | ftclient localhost 6789 put - --as dir.tar   upload standard input
  ftclient localhost 6789 get dir.tar - | tar x  download to standard output (once verified)
  ftclient localhost 6789 get -r photos          download the tree into client_data/photos/...
  ftclient --dir . ::1 6789 get a b c            download three files into . over IPv6
  ftclient localhost 6789 list                   one name per line (directories end in /)
  ftclient localhost 6789 list photos -r         everything beneath photos/, as paths
  ftclient localhost 6789 list -l                kind, size, modification time and name, sorted
  ftclient localhost 6789 list -l --digest       ...and each file's XXH3-128, as the server keeps it
  ftclient --json localhost 6789 list            one JSON object per entry (see docs/JSON.md)
  ftclient --fingerprint SHA256:... host 6789 list  trust exactly the server printing this fingerprint
  ftclient --plain localhost 6789 list           no TLS, for a server started with --plain
  ftclient --user alice host 6789 put a.txt      log in (password from FT_PASSWORD, else asked)
  ftclient --completions bash > ftclient.bash    shell completions (bash, zsh, fish, elvish, powershell)
  ftclient --man > ftclient.1                    this help as a man page

Connections are encrypted (TLS 1.3). On first contact with a server its fingerprint is
recorded in the known_hosts file of the platform's config directory for ft (on Linux
$XDG_CONFIG_HOME/ft/known_hosts or ~/.config/ft/known_hosts) and printed on stderr: compare
it with the `fingerprint` line the server printed. If it later changes, ftclient stops
before sending anything.

Each put or get prints one report line per file on stdout: time, server ip and port, user
(`-` without a login), operation, file name, bytes, duration, then `success`,
`failure KIND: MESSAGE`, or `skipped REASON` (a file already there with the same bytes, a
symbolic link in a tree: both count as done, so running a command again after an
interruption finishes the job); list prints names on
stdout and its report on stderr. A progress bar is drawn on stderr when it is a terminal
(not with --quiet). Exit status: 0 all succeeded, 1 any failed, 2 usage error,
130 interrupted.";

/// Upload, download and list files on an ft server.
#[derive(Debug, Parser)]
#[command(version, about, after_help = EXAMPLES)]
pub(crate) struct Args {
    /// Server host name or IP address (IPv6 with or without brackets).
    #[arg(value_parser = parse_host)]
    pub host: String,
    /// Server port (1-65535).
    #[arg(value_parser = clap::value_parser!(u16).range(1..))]
    pub port: u16,
    #[command(subcommand)]
    pub command: Command,
    /// Local directory: `get` writes here, and `put` looks here first for plain names.
    /// [default: client_data if it exists here, else the current directory]
    #[arg(long, global = true, value_name = "DIR", default_value_os_t = default_dir(), hide_default_value = true)]
    pub dir: PathBuf,
    /// Print reports (and `list` entries) as JSON lines instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Let `get` replace an existing local file (atomically, only once verified).
    #[arg(long, global = true)]
    pub overwrite: bool,
    /// Draw no progress bars; the report lines are printed all the same.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Seconds to wait for the server to connect or make progress.
    #[arg(long, global = true, default_value_t = 30, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout: u64,
    /// Trust only the server presenting this fingerprint (`SHA256:...`, as the server
    /// prints it); the known_hosts file is neither read nor written.
    #[arg(long, global = true, value_name = "FP", conflicts_with = "plain", value_parser = parse_fingerprint)]
    pub fingerprint: Option<ftlib::Fingerprint>,
    /// No TLS, for a server started with --plain: names, file bytes and listings cross the
    /// network in clear. Only on a network you trust.
    #[arg(long, global = true)]
    pub plain: bool,
    /// Log in as NAME (a server started with --users). The password is read from the
    /// FT_PASSWORD environment variable, else asked on the terminal; never give it on the
    /// command line.
    #[arg(long, global = true, value_name = "NAME", conflicts_with = "plain")]
    pub user: Option<String>,
    /// Print a completion script for SHELL on stdout, and exit.
    #[arg(long, value_name = "SHELL", exclusive = true)]
    completions: Option<Shell>,
    /// Print the man page (roff) on stdout, and exit.
    #[arg(long, exclusive = true)]
    man: bool,
}

/// What to do on the server.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Upload files (or, with -r, directory trees); the name on the server is each path's
    /// last component, inside --to if given.
    Put {
        /// Files to upload (directories with -r): a plain name is looked up in --dir, then
        /// the current directory. `-` alone, with --as NAME, uploads standard input.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Upload directories whole, as NAME/... on the server (`.` as the name of the
        /// directory it is; a file given is uploaded as itself): files with their
        /// modification times and execute bits, empty directories too; symbolic links are
        /// skipped, never followed. Files already there with the same bytes are skipped, so
        /// running the same command again after an interruption finishes the job.
        #[arg(short, long)]
        recursive: bool,
        /// Put everything inside this directory on the server (created as needed).
        #[arg(long, value_name = "REMOTE_DIR")]
        to: Option<String>,
        /// Send every file so that an interruption can be continued, whatever its size.
        /// Without it, files of 16 MiB or more already are: the server keeps what arrived
        /// if the upload is cut, and running the same command again sends only the rest
        /// (a changed file starts over; a server older than ft v5 needs each such file
        /// hashed first); smaller files are pipelined.
        #[arg(long, conflicts_with = "no_resume")]
        resume: bool,
        /// Start over: never continue what an interrupted upload left on the server
        /// (nothing is kept if this upload is cut).
        #[arg(long)]
        no_resume: bool,
        /// The name on the server, instead of the file's own (one FILE only).
        #[arg(long = "as", value_name = "NAME", conflicts_with = "recursive")]
        rename: Option<String>,
    },
    /// Download files into --dir (a file in a server directory, DIR/FILE, arrives as
    /// FILE); with -r, server directories as --dir/NAME/... An existing local file is
    /// kept unless --overwrite (without it, one with the same bytes is reported skipped;
    /// with it, every file is downloaded again).
    Get {
        /// Names of files on the server (directories with -r, as `list` shows them or
        /// without the final /). `NAME -` writes the one file to standard output, once it
        /// is verified (the report goes to stderr).
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
        /// Download directories whole, with modification times and execute bits; running
        /// it again after an interruption fetches only what is missing.
        #[arg(short, long)]
        recursive: bool,
        /// Keep a hidden partial file if the download of any file is interrupted, whatever
        /// its size. Without it, files of 16 MiB or more already keep one; either way the
        /// next `get` of the same file continues it, once the server's file is found to
        /// still start with those bytes (otherwise it starts over).
        #[arg(long, conflicts_with = "no_resume")]
        resume: bool,
        /// Start over: discard what an interrupted download of these files kept, and keep
        /// nothing if this one is cut.
        #[arg(long)]
        no_resume: bool,
    },
    /// List a directory on the server (default: the top), one name per line.
    List {
        /// The server directory to list (`sub` or, as `list` shows it, `sub/`).
        #[arg(id = "remote_dir", value_name = "DIR")]
        path: Option<String>,
        /// Everything beneath the directory, as paths relative to it.
        #[arg(short, long)]
        recursive: bool,
        /// Show kind, size and modification time in aligned columns, sorted by name.
        #[arg(short, long)]
        long: bool,
        /// With --long: exact sizes in bytes instead of KiB, MiB, GiB…
        #[arg(long, requires = "long")]
        bytes: bool,
        /// With --long: each file's XXH3-128 (32 hex digits) in a column before the name,
        /// and a `digest` field with --json. The server answers the digest it kept when the
        /// file was uploaded, reading the file only when it kept none it can trust.
        #[arg(long, requires = "long")]
        digest: bool,
    },
}

/// The outcome of reading the command line.
#[derive(Debug)]
pub(crate) enum Parsed {
    /// Talk to a server.
    Run(Box<Args>),
    /// A completion script or man page was printed; exit with this status.
    Done(ExitCode),
}

/// Parses the command line, exiting with status 2 and clap's explanation on a usage error.
/// `--completions` and `--man` are answered here.
pub(crate) fn parse() -> Parsed {
    // HOST PORT COMMAND are required except beside the exclusive generation flags, which
    // clap lets through only when the subcommand is optional. Anything else goes to the
    // strict parse, whose errors show the real usage.
    let lenient = Args::command().subcommand_required(false).try_get_matches();
    if let Err(e) = &lenient {
        // A generation flag with other arguments: say so, not that a command is missing.
        if e.kind() == clap::error::ErrorKind::ArgumentConflict {
            e.exit();
        }
    }
    if let Ok(matches) = lenient {
        if let Some(&shell) = matches.get_one::<Shell>("completions") {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Args::command(), "ftclient", &mut out);
            return Parsed::Done(emit(&out));
        }
        if matches.get_flag("man") {
            return Parsed::Done(emit(man::page(Args::command()).as_bytes()));
        }
        if let Ok(args) = Args::from_arg_matches(&matches) {
            return Parsed::Run(Box::new(args));
        }
    }
    Parsed::Run(Box::new(Args::parse()))
}

/// The local directory without `--dir`: `client_data` where it exists, else the current
/// directory.
fn default_dir() -> PathBuf {
    let data = PathBuf::from("client_data");
    if data.is_dir() {
        data
    } else {
        PathBuf::from(".")
    }
}

/// Writes generated text to stdout: status 0, or 1 when stdout is closed or full.
fn emit(text: &[u8]) -> ExitCode {
    let mut stdout = io::stdout().lock();
    match stdout.write_all(text).and_then(|()| stdout.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ftclient: cannot write to stdout: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A host, refusing `HOST:PORT` in one argument with the two-argument form to type instead.
fn parse_host(text: &str) -> Result<String, String> {
    if let Some((host, port)) = text.rsplit_once(':') {
        let bracketed = host.starts_with('[') && host.ends_with(']');
        if (bracketed || !host.contains(':')) && !host.is_empty() && port.parse::<u16>().is_ok() {
            return Err(format!(
                "the host and the port are two arguments: `ftclient {host} {port} ...`"
            ));
        }
    }
    Ok(text.to_owned())
}

fn parse_fingerprint(text: &str) -> Result<ftlib::Fingerprint, String> {
    text.parse()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_definitions_are_consistent() {
        Args::command().debug_assert();
    }
}
