//! `ftserver PORT`: serve one directory over ft. Parses arguments, binds the port, hands
//! the listener to `ftlib::Server`, prints one report line per request. `--completions`
//! and `--man` print what clap_complete and clap_mangen generate from the same arguments.

use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser};
use clap_complete::Shell;
use ftlib::{Identity, PartialLimits, Role, Server, ServerConfig, Users};

mod man;
mod size;
mod store;
mod users;

/// Writes a line on stderr, ignoring a closed or full stderr: a lost message must not stop
/// the server (`eprintln!` would panic, in the signal handler too).
macro_rules! warn {
    ($($arg:tt)*) => {{
        let _ = writeln!(io::stderr(), $($arg)*);
    }};
}

/// The soft limit on open files ftserver asks for at start (at most its hard limit): a
/// group commit's files (up to 1024 per store) beside up to `--max-connections` sockets.
const OPEN_FILES: u64 = 65536;

const EXAMPLES: &str = "\
Examples:
  ftserver 6789                          serve ./server_data on all interfaces, port 6789, over TLS
  ftserver 6789 --plain                  without TLS: only on a network you trust
  ftserver 6789 --store s3://files/team  serve the keys under team/ of bucket files (AWS_* variables)
  FT_PASSWORD=... ftserver --users users.txt --add-user alice --role write
                                         add (or replace) an account, then exit
  ftserver --users users.txt --remove-user alice   remove an account, then exit
  ftserver 6789 --users users.txt        only accounts get in: read may get and list, write may put
  ftserver 6789 --users users.txt --anonymous read   anyone may get and list; accounts may put
  ftserver 0 --bind 127.0.0.1            loopback only, on a free port (printed at start)
  ftserver 6789 --root /srv/files --json  serve /srv/files, reports as JSON lines
  ftserver 6789 --read-only              downloads and listings only; uploads are refused
  ftserver 6789 --max-file-size 1G       refuse uploads over 1 GiB before their data is sent
  ftserver --completions zsh > _ftserver  shell completions (bash, zsh, fish, elvish, powershell)
  ftserver --man > ftserver.1            this help as a man page

The first line is `IP PORT server up and running`; over TLS the second is
`fingerprint SHA256:...`, the server's identity, which clients record on first contact
(compare it with what they print) or pin with `ftclient --fingerprint`. The identity is
created once in --state-dir and kept. Then each request prints one line: time, client ip
and port, user (`-` without a login), operation, file name, bytes, duration, then
`success` or `failure KIND: MESSAGE`. Ctrl-C or SIGTERM stops the server
gracefully: transfers in progress get a few seconds to finish; a second Ctrl-C exits at once.";

/// Serve one directory (or an S3-compatible bucket) over the ft protocol.
#[derive(Debug, Parser)]
#[command(version, about, after_help = EXAMPLES)]
struct Args {
    /// TCP port to listen on; 0 picks a free port.
    #[arg(required_unless_present_any = ["add_user", "remove_user"])]
    port: Option<u16>,
    /// Directory to serve; it must exist.
    #[arg(long, default_value = "server_data", value_name = "DIR")]
    root: PathBuf,
    /// Serve an S3-compatible bucket (or the keys under PREFIX) instead of a directory.
    /// Endpoint and credentials come from AWS_ENDPOINT, AWS_ACCESS_KEY_ID,
    /// AWS_SECRET_ACCESS_KEY and AWS_DEFAULT_REGION (AWS_ALLOW_HTTP=true for a plain-HTTP
    /// endpoint). Several servers may serve one bucket: none ever overwrites another's files.
    #[arg(long, value_name = "s3://BUCKET[/PREFIX]", conflicts_with = "root")]
    store: Option<String>,
    /// With --store: seconds the object store may take to answer or to send more bytes before
    /// the request fails (after a few retries), failing that transfer with kind `storage`.
    #[arg(long, default_value_t = 30, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    store_timeout: u64,
    /// With --store: seconds after which a multipart upload that made no progress is taken as
    /// abandoned (its server died) and aborted by any server on the bucket.
    #[arg(long, default_value_t = 900, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=604_800))]
    staged_expiry: u64,
    /// Address or host name to listen on (0.0.0.0 for all IPv4 interfaces, :: for IPv6,
    /// localhost for loopback only; a name is resolved and its first address that can be
    /// bound is used).
    #[arg(long, default_value = "0.0.0.0", value_name = "ADDR")]
    bind: String,
    /// Connections served at once; more are refused with `busy`.
    #[arg(long, default_value_t = 256, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=65536))]
    max_connections: u32,
    /// Seconds a connection may stay silent before it is closed.
    #[arg(long, default_value_t = 60, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    idle_timeout: u64,
    /// Largest upload accepted (bytes, or with a unit: 1G, 500MiB, 2GB); larger ones are
    /// refused before their data is sent.
    #[arg(long, value_name = "SIZE", value_parser = size::parse_size)]
    max_file_size: Option<u64>,
    /// Refuse every upload (error kind `read-only`); downloads and listings still work.
    #[arg(long)]
    read_only: bool,
    /// Hours an interrupted `put --resume` is kept (hidden) for the client to continue;
    /// older partials are removed at start-up and whenever a partial is kept.
    #[arg(long, default_value_t = 24, value_name = "HOURS")]
    partial_max_age: u64,
    /// Most bytes all kept partials may take together (with a unit: 16GiB, 500M); the oldest
    /// go first.
    #[arg(long, default_value = "16GiB", value_name = "SIZE", value_parser = size::parse_size)]
    partial_max_bytes: u64,
    /// Most partials kept at once, all clients together (those in use do not count); the
    /// oldest go first. 0 keeps none: no upload can be resumed.
    #[arg(long, default_value_t = PartialLimits::default().max_count, value_name = "N")]
    partial_max_count: usize,
    /// Most partials kept for one client address, so that one client cannot take the whole
    /// --partial-max-count; beyond it, that client's own oldest go first.
    #[arg(long, default_value_t = PartialLimits::default().max_per_peer, value_name = "N")]
    partial_max_per_peer: usize,
    /// No TLS: names, file bytes and listings cross the network in clear. Only for a
    /// network you trust, or benchmarks; clients must use --plain too.
    #[arg(long)]
    plain: bool,
    /// Where the server keeps its identity (identity.key, identity.crt), created on first
    /// start; never inside the served root. [default: the platform's data directory for ft,
    /// on Linux $XDG_DATA_HOME/ft or ~/.local/share/ft]
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Require a login: the accounts are in FILE (lines NAME:ROLE:HASH, written by
    /// --add-user; keep it outside the served root). Without it, anyone who can reach the
    /// port may read and write.
    #[arg(long, value_name = "FILE")]
    users: Option<PathBuf>,
    /// With --users: add the account NAME (or replace its password and role) and exit. The
    /// password is read from FT_PASSWORD, else asked twice on the terminal.
    #[arg(long, value_name = "NAME", requires_all = ["users", "role"])]
    add_user: Option<String>,
    /// With --users: remove the account NAME and exit (its other lines are kept).
    #[arg(
        long,
        value_name = "NAME",
        requires = "users",
        conflicts_with = "add_user"
    )]
    remove_user: Option<String>,
    /// The role of the account --add-user writes: `read` (get, list) or `write` (also put).
    #[arg(long, value_name = "ROLE", requires = "add_user", value_parser = parse_role)]
    role: Option<Role>,
    /// With --users: what clients that do not log in may do; `read` lets them get and list.
    #[arg(long, value_name = "ROLE", requires = "users", value_parser = ["read"])]
    anonymous: Option<String>,
    /// Print reports as JSON lines instead of text.
    #[arg(long)]
    json: bool,
    /// Print a completion script for SHELL on stdout, and exit.
    #[arg(long, value_name = "SHELL", exclusive = true)]
    completions: Option<Shell>,
    /// Print the man page (roff) on stdout, and exit.
    #[arg(long, exclusive = true)]
    man: bool,
}

fn main() -> ExitCode {
    // Before anything else: it may start the program over.
    ftlib::avoid_slow_memory_copies();
    // Room for a group commit's open files beside the connections' sockets.
    ftlib::raise_open_files_limit(OPEN_FILES);
    let args = match parse() {
        Ok(args) => args,
        Err(code) => return code,
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            warn!("ftserver: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Parses the command line, exiting with status 2 and clap's explanation on a usage error.
/// `--completions` and `--man` are answered here: `Err` holds the status to exit with.
fn parse() -> Result<Args, ExitCode> {
    // PORT is required except beside the exclusive generation flags; clap lets those
    // through alone, and the derive then misses PORT, so they are looked at first.
    let matches = Args::command().get_matches();
    let mut out = Vec::new();
    if let Some(&shell) = matches.get_one::<Shell>("completions") {
        clap_complete::generate(shell, &mut Args::command(), "ftserver", &mut out);
    } else if matches.get_flag("man") {
        out = man::page(Args::command()).into_bytes();
    } else {
        let args = Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        let edits_users = args.add_user.is_some() || args.remove_user.is_some();
        if args.plain && args.users.is_some() && !edits_users {
            // A usage error (exit status 2), with the reason clap's own conflict message
            // would not give.
            Args::command()
                .error(
                    clap::error::ErrorKind::ArgumentConflict,
                    "--users needs TLS: passwords would cross the network in clear; drop \
                     --plain",
                )
                .exit();
        }
        warn_unused_with_store(&args, &matches);
        return Ok(args);
    }
    let mut stdout = io::stdout().lock();
    match stdout.write_all(&out).and_then(|()| stdout.flush()) {
        Ok(()) => Err(ExitCode::SUCCESS),
        Err(e) => {
            warn!("ftserver: cannot write to stdout: {e}");
            Err(ExitCode::FAILURE)
        }
    }
}

/// Options that only a directory uses, given with --store: said once on stderr, not an
/// error (the server would behave the same without them).
fn warn_unused_with_store(args: &Args, matches: &clap::ArgMatches) {
    if args.store.is_none() {
        return;
    }
    for id in [
        "partial_max_age",
        "partial_max_bytes",
        "partial_max_count",
        "partial_max_per_peer",
    ] {
        if matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine) {
            warn!(
                "ftserver: warning: --{} has no effect with --store: a bucket keeps no \
                 partial uploads (an interrupted upload starts over)",
                id.replace('_', "-")
            );
        }
    }
}

fn run(args: Args) -> Result<(), String> {
    if let (Some(file), Some(name), Some(role)) = (&args.users, &args.add_user, args.role) {
        println!("{}", users::add_user(file, name, role)?);
        return Ok(());
    }
    if let (Some(file), Some(name)) = (&args.users, &args.remove_user) {
        println!("{}", users::remove_user(file, name)?);
        return Ok(());
    }
    // Required by clap unless --add-user or --remove-user, which returned above.
    let port = args.port.unwrap_or_default();
    let store = store::open(&args)?;
    let host = args.bind.trim_start_matches('[').trim_end_matches(']');
    let listener = ftlib::listen((host, port)).map_err(|e| {
        let hint = match e.kind() {
            io::ErrorKind::AddrInUse => {
                "; another program (another ftserver?) uses that port: stop it, or choose \
                 another port (0 picks a free one)"
            }
            io::ErrorKind::PermissionDenied => {
                "; ports below 1024 need privileges: choose a port from 1024 up"
            }
            io::ErrorKind::AddrNotAvailable => {
                "; that is not an address of this machine: check --bind"
            }
            _ => "",
        };
        format!("cannot listen on {}: {e}{hint}", join(host, port))
    })?;
    // What the warnings name: the port listened on, which PORT 0 leaves to the system.
    let port = listener.local_addr().map_or(port, |local| local.port());
    let mut config = ServerConfig::default();
    config.plain = args.plain;
    if !args.plain {
        config.identity = Some(std::sync::Arc::new(identity(&args)?));
    }
    match &args.users {
        Some(file) => {
            config.users = Some(std::sync::Arc::new(accounts(&args, file)?));
            config.anonymous = args.anonymous.as_ref().map(|_| Role::Read);
        }
        None => warn!(
            "ftserver: warning: no --users: anyone who can reach port {port} may {} files; \
             see --users to require a login",
            if args.read_only {
                "download and list"
            } else {
                "download, list and upload"
            }
        ),
    }
    config.max_connections = usize::try_from(args.max_connections).unwrap_or(usize::MAX);
    config.idle_timeout = Duration::from_secs(args.idle_timeout);
    config.max_file_size = args.max_file_size;
    config.read_only = args.read_only;
    // `Server::new` removes a crash's leftovers, before the first line promises a readable
    // directory free of them.
    let server = Server::with_shared_store(listener, store, config)
        .map_err(|e| format!("cannot serve {}: {e}", store::describe(&args)))?;
    let local = server.local_addr().map_err(|e| e.to_string())?;

    let stop = server.shutdown_handle();
    let lines = Lines::start();
    let unsaid = Arc::clone(&lines);
    ctrlc::set_handler(move || {
        if stop.is_shutdown() {
            warn!("ftserver: second signal, exiting at once");
            // The lines gathered go out first, unless a writer is stuck on stdout.
            if let Ok(mut out) = unsaid.out.try_lock() {
                let _ = out.flush();
            }
            std::process::exit(130);
        }
        warn!("ftserver: shutting down (again to force)");
        stop.shutdown();
    })
    .map_err(|e| format!("cannot install the signal handler: {e}"))?;

    println!("{} {} server up and running", local.ip(), local.port());
    match server.fingerprint() {
        Some(fp) => println!("fingerprint {fp}"),
        None => warn!(
            "ftserver: warning: --plain: file names, contents and listings cross the network \
             in clear; use it only on a network you trust"
        ),
    }
    let json = args.json;
    let sink = Arc::clone(&lines);
    let ran = server.run(move |report| {
        let line = if json {
            report.to_json()
        } else {
            report.to_string()
        };
        sink.write(&line);
    });
    lines.flush();
    ran.map_err(|e| e.to_string())
}

/// Report lines on stdout, gathered and written out at most [`LINES_EVERY`] after they were
/// made: a group of a thousand small uploads is reported in a few writes, not a thousand.
/// A closed stdout must not stop the server, so write errors are ignored.
struct Lines {
    out: Mutex<io::BufWriter<io::Stdout>>,
    /// No thread to flush them: each line is written at once.
    at_once: std::sync::atomic::AtomicBool,
}

/// How long a report line may wait in [`Lines`].
const LINES_EVERY: Duration = Duration::from_millis(50);

impl Lines {
    /// Gathers lines, flushed by a thread of its own every [`LINES_EVERY`].
    fn start() -> Arc<Lines> {
        let lines = Arc::new(Lines {
            out: Mutex::new(io::BufWriter::with_capacity(64 * 1024, io::stdout())),
            at_once: std::sync::atomic::AtomicBool::new(false),
        });
        let flushed = Arc::downgrade(&lines);
        let flusher = std::thread::Builder::new()
            .name("ft report lines".into())
            .spawn(move || {
                while let Some(lines) = flushed.upgrade() {
                    lines.flush();
                    drop(lines);
                    std::thread::sleep(LINES_EVERY);
                }
            });
        if flusher.is_err() {
            lines
                .at_once
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        lines
    }

    fn write(&self, line: &str) {
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(out, "{line}");
        if self.at_once.load(std::sync::atomic::Ordering::Relaxed) {
            let _ = out.flush();
        }
    }

    fn flush(&self) {
        let _ = self.out.lock().unwrap_or_else(|p| p.into_inner()).flush();
    }
}

/// The server's identity from the state directory, created there on first start; the
/// directory must not be inside the served root.
fn identity(args: &Args) -> Result<Identity, String> {
    let dir = match &args.state_dir {
        Some(dir) => dir.clone(),
        None => ftlib::default_state_dir().ok_or(
            "there is no home directory to keep the server's identity in: choose one with \
             --state-dir DIR",
        )?,
    };
    let root = resolve(&args.root);
    let state = resolve(&dir);
    if state.starts_with(&root) {
        return Err(format!(
            "the state directory {} is inside the served root {}: clients could download the \
             server's private key; choose another with --state-dir",
            dir.display(),
            args.root.display()
        ));
    }
    let (identity, created) = Identity::load_or_create(&dir).map_err(|e| e.to_string())?;
    if created {
        warn!(
            "ftserver: created a new identity in {} ({})",
            dir.display(),
            identity.fingerprint()
        );
    }
    Ok(identity)
}

/// The accounts in `file`, which must not be served, for a server with TLS.
fn accounts(args: &Args, file: &Path) -> Result<Users, String> {
    if resolve(file).starts_with(resolve(&args.root)) {
        return Err(format!(
            "the users file {} is inside the served root {}: clients could download the \
             password hashes; keep it elsewhere",
            file.display(),
            args.root.display()
        ));
    }
    let users = Users::load(file).map_err(|e| {
        format!("{e}; create accounts with `ftserver --users FILE --add-user NAME --role ROLE`")
    })?;
    if users.is_empty() {
        warn!(
            "ftserver: warning: {} has no accounts: nobody can log in",
            file.display()
        );
    }
    Ok(users)
}

fn parse_role(text: &str) -> Result<Role, String> {
    text.parse()
}

/// Where `path` is, or would be once created: absolute, each existing prefix with its
/// symbolic links resolved, and a `..` after a missing directory taken as the parent of that
/// directory (creating the path makes it a real one). Resolving only the longest existing
/// prefix would leave `missing/../root/state` outside the root as written.
fn resolve(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut resolved = PathBuf::new();
    for component in absolute.components() {
        match component {
            Component::CurDir => {}
            // `resolved` has no symbolic links left: its parent is the real one.
            Component::ParentDir => {
                resolved.pop();
            }
            other => {
                resolved.push(other);
                if let Ok(real) = resolved.canonicalize() {
                    resolved = real;
                }
            }
        }
    }
    resolved
}

/// `host:port`, an IPv6 address in brackets.
fn join(host: &str, port: u16) -> String {
    match host.parse::<IpAddr>() {
        Ok(ip) => std::net::SocketAddr::new(ip, port).to_string(),
        Err(_) => format!("{host}:{port}"),
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    /// Every spelling of a place inside `root` resolves inside it, however much of it is
    /// missing yet; a place beside it does not.
    #[test]
    fn resolve_sees_through_missing_directories_dots_and_links() {
        let base = tempfile::tempdir().expect("tempdir");
        let root = base.path().join("root");
        fs::create_dir(&root).expect("mkdir");
        let real_root = root.canonicalize().expect("canonical");
        #[cfg(unix)]
        std::os::unix::fs::symlink(&root, base.path().join("link")).expect("symlink");
        let inside = [
            "root",
            "root/state",
            "root/a/b/../c",
            "missing/../root/state",
            "missing/deeper/../../root/state",
            "./root/./state/.",
            #[cfg(unix)]
            "link/state",
            #[cfg(unix)]
            "missing/../link/x/../state",
        ];
        for path in inside {
            let resolved = resolve(&base.path().join(path));
            assert!(
                resolved.starts_with(&real_root),
                "{path}: {}",
                resolved.display()
            );
        }
        for path in [
            "state",
            "root/../state",
            "missing/../state",
            "rootless/state",
        ] {
            let resolved = resolve(&base.path().join(path));
            assert!(
                !resolved.starts_with(&real_root),
                "{path}: {}",
                resolved.display()
            );
        }
        assert!(
            !base.path().join("missing").exists(),
            "resolve created something"
        );
    }
}
