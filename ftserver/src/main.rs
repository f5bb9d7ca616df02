//! `ftserver PORT`: serve one directory over ft. Parses arguments, binds the port, hands
//! the listener to `ftlib::Server`, prints one report line per request.

use std::io::Write;
use std::net::{IpAddr, TcpListener};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use ftlib::store::{DirStore, Store};
use ftlib::{Server, ServerConfig};

const EXAMPLES: &str = "\
Examples:
  ftserver 6789                          serve ./server_data on all interfaces, port 6789
  ftserver 0 --bind 127.0.0.1            loopback only, on a free port (printed at start)
  ftserver 6789 --root /srv/files --json serve /srv/files, reports as JSON lines

Each request prints one line: time, client ip and port, operation, file name, bytes,
duration, then `success` or `failure KIND: MESSAGE`. Ctrl-C or SIGTERM stops the server
gracefully: transfers in progress get a few seconds to finish; a second Ctrl-C exits at once.";

/// Serve one directory over the ft protocol.
#[derive(Debug, Parser)]
#[command(version, about, after_help = EXAMPLES)]
struct Args {
    /// TCP port to listen on; 0 picks a free port.
    port: u16,
    /// Directory to serve; it must exist.
    #[arg(long, default_value = "server_data", value_name = "DIR")]
    root: PathBuf,
    /// Address to listen on (0.0.0.0 for all IPv4 interfaces, :: for IPv6).
    #[arg(long, default_value = "0.0.0.0", value_name = "ADDR")]
    bind: IpAddr,
    /// Connections served at once; more are refused with `busy`.
    #[arg(long, default_value_t = 256, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=65536))]
    max_connections: u32,
    /// Seconds a connection may stay silent before it is closed.
    #[arg(long, default_value_t = 60, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    idle_timeout: u64,
    /// Largest upload accepted, in bytes.
    #[arg(long, value_name = "BYTES")]
    max_file_size: Option<u64>,
    /// Print reports as JSON lines instead of text.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("ftserver: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), String> {
    let store = DirStore::open(&args.root).map_err(|e| format!("cannot serve: {e}"))?;
    let listener = TcpListener::bind((args.bind, args.port))
        .map_err(|e| format!("cannot listen on {}: {e}", join(args.bind, args.port)))?;
    // Before the first line, which promises a readable directory free of a crash's leftovers;
    // after binding, so a second server started by mistake on a taken port removes nothing.
    // `Server::run` cleans again, which is cheap.
    store
        .cleanup()
        .map_err(|e| format!("cannot serve {}: {e}", args.root.display()))?;
    let mut config = ServerConfig::default();
    config.max_connections = usize::try_from(args.max_connections).unwrap_or(usize::MAX);
    config.idle_timeout = Duration::from_secs(args.idle_timeout);
    config.max_file_size = args.max_file_size;
    let server = Server::new(listener, store, config).map_err(|e| e.to_string())?;
    let local = server.local_addr().map_err(|e| e.to_string())?;

    let stop = server.shutdown_handle();
    ctrlc::set_handler(move || {
        if stop.is_shutdown() {
            eprintln!("ftserver: second signal, exiting at once");
            std::process::exit(130);
        }
        eprintln!("ftserver: shutting down (again to force)");
        stop.shutdown();
    })
    .map_err(|e| format!("cannot install the signal handler: {e}"))?;

    println!("{} {} server up and running", local.ip(), local.port());
    let json = args.json;
    server
        .run(move |report| {
            let line = if json {
                report.to_json()
            } else {
                report.to_string()
            };
            // A closed stdout must not stop the server.
            let _ = writeln!(std::io::stdout().lock(), "{line}");
        })
        .map_err(|e| e.to_string())
}

fn join(ip: IpAddr, port: u16) -> String {
    std::net::SocketAddr::new(ip, port).to_string()
}
