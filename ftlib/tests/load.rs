//! Many clients at once against one in-process server on loopback, bounded in count
//! ([`CLIENTS`]) and time (every client has a 30 s timeout; a generous guard catches a
//! hang), with every transfer verified byte for byte. Not a benchmark: nothing is timed.

mod common;

use std::fs;
use std::net::SocketAddr;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::{TestServer, assert_no_temp_files};
use ft_testutil::{noise, temp_files};
use ftlib::protocol::EntryKind;
use ftlib::store::DirStore;
use ftlib::{Client, ClientConfig, ServerConfig};

/// Clients running at once; the server holds all their connections together.
const CLIENTS: usize = 300;

/// About how much each client uploads and downloads.
const SIZE: usize = 64 * 1024;

/// Each client's timeout for connecting and for every frame.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Only catches a hang: far above the few seconds the test takes.
const HANG_GUARD: Duration = Duration::from_secs(180);

fn name(i: usize) -> String {
    format!("load-{i:03}.bin")
}

/// Distinct content and a distinct size per client, so a mixed-up file cannot pass.
fn payload(i: usize) -> Vec<u8> {
    noise(SIZE + i, 2 * i as u64 + 1)
}

/// Connects, waits until every client is connected, uploads its payload, downloads it into
/// its own directory and compares.
fn one_client(addr: SocketAddr, i: usize, everyone: &Barrier) -> Result<(), String> {
    let mut config = ClientConfig::trusting(ftlib::Trust::Plain);
    config.timeout = CLIENT_TIMEOUT;
    let connected = Client::connect(addr, config);
    // Reached whatever happened, so a failed connect cannot leave the others waiting.
    everyone.wait();
    let mut client = connected.map_err(|e| format!("connect: {e}"))?;
    let data = payload(i);
    let size = data.len() as u64;
    let name = name(i);
    let stored = client
        .put_reader(&data[..], size, &name, |_| {})
        .map_err(|e| format!("put: {e}"))?;
    if stored != size {
        return Err(format!("put stored {stored} bytes of {size}"));
    }
    let local = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    let store = DirStore::open(local.path()).map_err(|e| format!("store: {e}"))?;
    let got = client
        .get(&name, &store, false, |_| {})
        .map_err(|e| format!("get: {e}"))?;
    if got != size {
        return Err(format!("get returned {got} bytes of {size}"));
    }
    let back = fs::read(local.path().join(&name)).map_err(|e| format!("read back: {e}"))?;
    if back != data {
        return Err("downloaded bytes differ from the upload".into());
    }
    let left = temp_files(local.path());
    if !left.is_empty() {
        return Err(format!("temporary files left locally: {left:?}"));
    }
    Ok(())
}

#[test]
fn hundreds_of_concurrent_clients_put_and_get_verified() {
    let mut config = ServerConfig::default();
    // The default (256) would refuse some of them with Busy.
    config.max_connections = CLIENTS + 16;
    let server = TestServer::with_config(config);
    let addr = server.addr;
    let everyone = Arc::new(Barrier::new(CLIENTS));
    let (done_tx, done_rx) = mpsc::channel();
    let mut threads = Vec::with_capacity(CLIENTS);
    for i in 0..CLIENTS {
        let everyone = Arc::clone(&everyone);
        let done = done_tx.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("load client {i}"))
            .spawn(move || {
                let result = one_client(addr, i, &everyone);
                let _ = done.send((i, result));
            });
        // Failing here would leave the barrier short of parties: stop with a clear reason.
        let thread = spawned.unwrap_or_else(|e| {
            panic!("cannot start client thread {i} of {CLIENTS} (thread or memory limit?): {e}")
        });
        threads.push(thread);
    }
    drop(done_tx);

    let deadline = Instant::now() + HANG_GUARD;
    let mut finished = 0;
    let mut failures = Vec::new();
    while finished < CLIENTS {
        match done_rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok((i, result)) => {
                finished += 1;
                if let Err(e) = result {
                    failures.push(format!("client {i}: {e}"));
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                panic!("hang guard: {finished} of {CLIENTS} clients finished in {HANG_GUARD:?}")
            }
            // Every sender is gone: some client thread panicked.
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    for thread in threads {
        thread.join().expect("client thread panicked");
    }
    assert_eq!(failures, Vec::<String>::new());
    assert_eq!(finished, CLIENTS);

    // One listing shows every upload, with its size, and the served bytes are right.
    let mut entries = server.client().list().expect("list");
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(entries.len(), CLIENTS);
    for (i, entry) in entries.iter().enumerate() {
        let data = payload(i);
        assert_eq!(entry.name, name(i));
        assert_eq!(entry.kind, EntryKind::File);
        assert_eq!(entry.size, data.len() as u64, "{}", entry.name);
        assert!(
            fs::read(server.root().join(&entry.name)).expect("served file") == data,
            "{} differs on the server",
            entry.name
        );
    }
    assert_no_temp_files(server.root());
    let reports = server.wait_reports(2 * CLIENTS + 1);
    assert!(reports.len() > 2 * CLIENTS, "{} reports", reports.len());
    let failed: Vec<String> = reports
        .iter()
        .filter(|r| !r.is_success())
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        failed,
        Vec::<String>::new(),
        "failed requests on the server"
    );
}

/// A burst larger than std's default queue of 128 is held by the kernel until the server
/// accepts it: with a short queue the excess handshakes are dropped, and a client that
/// believes it is connected waits for a greeting that never comes (CI saw exactly that).
#[test]
fn a_burst_of_connections_waits_in_the_listen_queue() {
    const BURST: usize = 300;
    let listener = ftlib::listen("127.0.0.1:0").expect("listen");
    let addr = listener.local_addr().expect("addr");
    // Nobody accepts while the burst connects.
    let mut streams = Vec::with_capacity(BURST);
    for i in 0..BURST {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(stream) => streams.push(stream),
            Err(e) => panic!("connection {i} of {BURST} not queued: {e}"),
        }
    }
    listener.set_nonblocking(true).expect("nonblocking");
    let mut accepted = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    while accepted < BURST && Instant::now() < deadline {
        match listener.accept() {
            Ok(_) => accepted += 1,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
    assert_eq!(accepted, BURST, "connections the listener queued");
}
