//! The server: accepts on a listener it is given, refuses connections beyond the limit with
//! `Busy`, serves each connection on its own thread, and shuts down gracefully when asked
//! through a [`ShutdownHandle`]. Every request ends in one [`Report`].

use std::cell::Cell;
use std::collections::HashMap;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use xxhash_rust::xxh3::Xxh3;

use crate::connection::Connection;
use crate::error::{Error, Result, Side};
use crate::handshake::server_handshake;
use crate::pipeline::{GROUP_BYTES, GROUP_MAX, Outcome, commit_outcomes};
use crate::protocol::{
    DEFAULT_CHUNK, DIGEST_LEN, MAX_PIPELINED, RESUME_VERSION, Request, Response, clip_message,
};
use crate::report::{Op, Report};
use crate::store::{Name, Resumable, Source, Store};
use crate::text::escape;
use crate::transfer::{self, Digest, Hooks, Received, Span};

/// How a [`Server`] behaves.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Connections served at once; more are refused with `Busy`.
    pub max_connections: usize,
    /// How long a connection may stay silent, between requests or inside one frame.
    pub idle_timeout: Duration,
    /// After shutdown is asked, how long running transfers may take to finish.
    pub grace: Duration,
    /// Chunk size for downloads.
    pub chunk_size: usize,
    /// Largest upload accepted, if limited.
    pub max_file_size: Option<u64>,
    /// Refuse every upload with [`ErrorKind::ReadOnly`](crate::ErrorKind::ReadOnly).
    pub read_only: bool,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            max_connections: 256,
            idle_timeout: Duration::from_secs(60),
            grace: Duration::from_secs(5),
            chunk_size: DEFAULT_CHUNK,
            max_file_size: None,
            read_only: false,
        }
    }
}

/// Stops a running [`Server`]; cheap to clone and safe to call from a signal handler thread.
#[derive(Debug, Clone)]
pub struct ShutdownHandle {
    flag: Arc<AtomicBool>,
    wake: SocketAddr,
}

impl ShutdownHandle {
    /// Asks the server to stop: it stops accepting at once, closes idle connections, lets
    /// transfers run for the grace period, then closes the rest and returns from `run`.
    pub fn shutdown(&self) {
        if !self.flag.swap(true, Ordering::SeqCst) {
            // Wake the accept loop; if this fails it notices at the next connection.
            let _ = TcpStream::connect_timeout(&self.wake, Duration::from_secs(1));
        }
    }

    /// True once shutdown was asked.
    pub fn is_shutdown(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
}

/// Connections the kernel queues for [`listen`]'s listener before the server accepts them
/// (Linux clamps it to `net.core.somaxconn`, 4096 by default).
///
/// `TcpListener::bind` asks for 128. When more clients than that connect at once, the
/// kernel drops the excess handshakes or answers them with SYN cookies; a client whose last
/// handshake packet is then dropped believes it is connected, and since an ft client waits
/// for the server's greeting before it sends anything, it waits until its timeout. A queue
/// well above the default connection limit keeps a burst of clients from getting there.
pub const LISTEN_BACKLOG: i32 = 1024;

/// Binds a listener for [`Server::new`] with a queue of [`LISTEN_BACKLOG`] connections;
/// otherwise as [`TcpListener::bind`] (the first address that binds wins, address reuse
/// on Unix, close-on-exec).
///
/// # Errors
/// When no address resolves, or none can be bound and listened on; the last error is
/// returned.
///
/// # Examples
/// ```
/// let listener = ftlib::server::listen("127.0.0.1:0")?;
/// assert_ne!(listener.local_addr()?.port(), 0);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn listen(addr: impl std::net::ToSocketAddrs) -> io::Result<TcpListener> {
    let mut last = None;
    for addr in addr.to_socket_addrs()? {
        match listen_on(addr) {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any addresses",
        )
    }))
}

fn listen_on(addr: SocketAddr) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // As std does: a restarted server can bind while old connections sit in TIME_WAIT.
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

/// Receives every report the server makes.
pub type ReportSink = Arc<dyn Fn(&Report) + Send + Sync>;

/// An ft server on an already-bound listener, best made by [`listen`].
///
/// # Examples
/// ```
/// use ftlib::server::{Server, ServerConfig, listen};
/// use ftlib::store::DirStore;
///
/// let dir = tempfile::tempdir()?;
/// let listener = listen("127.0.0.1:0")?;
/// let server = Server::new(listener, DirStore::open(dir.path())?, ServerConfig::default())?;
/// let addr = server.local_addr()?;
/// let stop = server.shutdown_handle();
/// let running = std::thread::spawn(move || server.run(|report| println!("{report}")));
///
/// let mut client = ftlib::Client::connect(addr, ftlib::ClientConfig::default())?;
/// assert!(client.list()?.is_empty());
///
/// stop.shutdown();
/// running.join().expect("server thread")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Server {
    listener: TcpListener,
    store: Arc<dyn Store>,
    config: ServerConfig,
    shutdown: ShutdownHandle,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("listener", &self.listener)
            .field("store", &self.store)
            .field("config", &self.config)
            .finish()
    }
}

impl Server {
    /// Prepares a server; nothing is accepted until [`Server::run`].
    ///
    /// # Errors
    /// When the listener's address cannot be read.
    pub fn new(
        listener: TcpListener,
        store: impl Store + 'static,
        config: ServerConfig,
    ) -> io::Result<Server> {
        let local = listener.local_addr()?;
        let wake_ip = match local.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        Ok(Server {
            listener,
            store: Arc::new(store),
            config,
            shutdown: ShutdownHandle {
                flag: Arc::new(AtomicBool::new(false)),
                wake: SocketAddr::new(wake_ip, local.port()),
            },
        })
    }

    /// The address the server listens on (with the real port when bound to port 0).
    ///
    /// # Errors
    /// As [`TcpListener::local_addr`].
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// A handle that stops [`Server::run`].
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shutdown.clone()
    }

    /// Removes temporary files a crash left, then serves until shutdown; returns once every
    /// connection has ended and temporary files are cleaned.
    ///
    /// # Errors
    /// When the served directory cannot be read at start.
    pub fn run(self, reports: impl Fn(&Report) + Send + Sync + 'static) -> Result<()> {
        self.store.cleanup()?;
        let ctx = Arc::new(Ctx {
            store: self.store,
            config: self.config,
            shutdown: self.shutdown,
            reports: Arc::new(reports),
            registry: Arc::default(),
        });
        for stream in self.listener.incoming() {
            if ctx.shutdown.is_shutdown() {
                break;
            }
            match stream {
                Ok(stream) => accept(&ctx, stream),
                // Out of descriptors or similar: pause instead of spinning.
                Err(e) if e.kind() != io::ErrorKind::ConnectionAborted => {
                    thread::sleep(Duration::from_millis(50));
                }
                Err(_) => {}
            }
        }
        drop(self.listener);
        ctx.registry.drain(ctx.config.grace);
        ctx.store.cleanup()?;
        Ok(())
    }
}

/// What every connection thread shares.
struct Ctx {
    store: Arc<dyn Store>,
    config: ServerConfig,
    shutdown: ShutdownHandle,
    reports: ReportSink,
    registry: Arc<Registry>,
}

/// The live connections: a clone of each socket (to close it at shutdown) and whether it
/// is inside a request.
#[derive(Default)]
struct Registry {
    live: Mutex<HashMap<u64, (TcpStream, Arc<AtomicBool>)>>,
    changed: Condvar,
    next: AtomicU64,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, (TcpStream, Arc<AtomicBool>)>> {
        self.live
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes a place if fewer than `max` are live; the permit frees it when dropped.
    fn admit(self: &Arc<Self>, stream: &TcpStream, max: usize) -> Result<Permit, usize> {
        let mut live = self.lock();
        if live.len() >= max {
            return Err(live.len());
        }
        let clone = stream.try_clone().map_err(|_| live.len())?;
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let busy = Arc::new(AtomicBool::new(true));
        live.insert(id, (clone, busy.clone()));
        Ok(Permit {
            registry: Arc::clone(self),
            id,
            busy,
        })
    }

    /// Closes idle connections now and busy ones after `grace`; waits until all are gone.
    fn drain(&self, grace: Duration) {
        let forced_at = Instant::now() + grace;
        let give_up = forced_at + Duration::from_secs(10);
        let mut live = self.lock();
        while !live.is_empty() && Instant::now() < give_up {
            let force = Instant::now() >= forced_at;
            for (stream, busy) in live.values() {
                if force || !busy.load(Ordering::SeqCst) {
                    let _ = stream.shutdown(Shutdown::Both);
                }
            }
            live = self
                .changed
                .wait_timeout(live, Duration::from_millis(50))
                .map_or_else(|p| p.into_inner().0, |(guard, _)| guard);
        }
    }
}

/// A place in the registry, released on drop.
struct Permit {
    registry: Arc<Registry>,
    id: u64,
    busy: Arc<AtomicBool>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.id);
        self.registry.changed.notify_all();
    }
}

fn accept(ctx: &Arc<Ctx>, stream: TcpStream) {
    let Ok(peer) = stream.peer_addr() else {
        return;
    };
    let started = Instant::now();
    let live = match ctx.registry.admit(&stream, ctx.config.max_connections) {
        Ok(permit) => {
            let thread_ctx = Arc::clone(ctx);
            let spawned = thread::Builder::new()
                .name(format!("ft {peer}"))
                .spawn(move || serve_connection(&thread_ctx, stream, peer, permit));
            if let Err(e) = spawned {
                // The closure, permit and stream are dropped: the place is free again.
                let error = Error::io("starting a connection thread", e);
                (ctx.reports)(&Report::new(
                    peer,
                    Op::Connect,
                    None,
                    started,
                    0,
                    Some(&error),
                ));
            }
            return;
        }
        Err(live) => live,
    };
    // Refuse at once. The client sends nothing before our greeting, so closing right after
    // this small frame cannot reset it away.
    let error = Error::Busy { live };
    if let Ok(mut conn) = Connection::tcp(stream, Duration::from_secs(1)) {
        answer_error(&mut conn, &error);
        conn.close();
    }
    (ctx.reports)(&Report::new(
        peer,
        Op::Connect,
        None,
        started,
        0,
        Some(&error),
    ));
}

fn serve_connection(ctx: &Ctx, stream: TcpStream, peer: SocketAddr, permit: Permit) {
    let started = Instant::now();
    let Ok(mut conn) = Connection::tcp(stream, ctx.config.idle_timeout) else {
        return;
    };
    let version = match server_handshake(&mut conn) {
        Ok(version) => version,
        Err(e) => {
            if !ctx.shutdown.is_shutdown() {
                answer_error(&mut conn, &e);
                (ctx.reports)(&Report::new(peer, Op::Connect, None, started, 0, Some(&e)));
            }
            conn.close_gracefully();
            return;
        }
    };
    // Pipelined uploads received and verified, waiting to be committed as one group.
    let mut group: Vec<Pending> = Vec::new();
    loop {
        // Before waiting for input, commit and answer what is waiting: the client may be
        // waiting for those answers before it sends more.
        if !group.is_empty()
            && (group.len() >= GROUP_MAX
                || group.iter().map(|p| p.size).sum::<u64>() >= GROUP_BYTES
                || !conn.input_pending())
            && !commit_group(ctx, &mut conn, &mut group)
        {
            break;
        }
        permit.busy.store(!group.is_empty(), Ordering::SeqCst);
        if ctx.shutdown.is_shutdown() && group.is_empty() {
            break;
        }
        let started = Instant::now();
        let request = match conn.recv::<Request>() {
            Ok(Some(request)) => request,
            Ok(None) => break,
            // Idle between requests: close quietly. Shut down: the socket was closed for us.
            Err(Error::Timeout(_)) => break,
            Err(_) if ctx.shutdown.is_shutdown() => break,
            Err(e) => {
                // Earlier pipelined uploads are answered first, in order.
                commit_group(ctx, &mut conn, &mut group);
                answer_error(&mut conn, &e);
                (ctx.reports)(&Report::new(peer, Op::Connect, None, started, 0, Some(&e)));
                break;
            }
        };
        permit.busy.store(true, Ordering::SeqCst);
        if let Request::PutPipelined { name, size } = &request {
            if version >= RESUME_VERSION {
                match receive_pipelined(ctx, &mut conn, name, *size) {
                    Ok(outcome) => {
                        group.push(Pending {
                            name: name.clone(),
                            size: *size,
                            started,
                            outcome,
                        });
                        continue;
                    }
                    Err(e) => {
                        commit_group(ctx, &mut conn, &mut group);
                        answer_error(&mut conn, &e);
                        let report = Report::new(peer, Op::Put, Some(name), started, 0, Some(&e));
                        (ctx.reports)(&report);
                        break;
                    }
                }
            }
        }
        // Answers go out in request order: the group's first.
        if !commit_group(ctx, &mut conn, &mut group) {
            break;
        }
        let (report, keep) = serve_request(ctx, &mut conn, version, request, started);
        (ctx.reports)(&report);
        if !keep {
            break;
        }
    }
    // Verified uploads are published even when nobody is left to hear it.
    commit_group(ctx, &mut conn, &mut group);
    conn.close_gracefully();
}

/// A pipelined upload whose body was read: the verified upload and its size, or why it
/// was refused.
struct Pending {
    name: String,
    /// As declared: what it holds in memory at most.
    size: u64,
    started: Instant,
    outcome: Outcome,
}

/// Reads one pipelined upload's body: into the store's upload (memory or a temporary file),
/// or dropped when the upload is refused. `Err` only when the connection cannot go on.
fn receive_pipelined(ctx: &Ctx, conn: &mut Connection, name: &str, size: u64) -> Result<Outcome> {
    if size > MAX_PIPELINED {
        return Err(Error::Protocol(format!(
            "a pipelined upload of {size} bytes (at most {MAX_PIPELINED})"
        )));
    }
    let whole = |conn: &mut Connection, writer: &mut dyn Write| {
        receive_into(conn, Span::whole(name, size), writer, Xxh3::new(), None)
    };
    match check_upload(ctx, name, size).and_then(|name| ctx.store.create(&name, size)) {
        Ok(mut upload) => match whole(conn, &mut upload) {
            Ok(got) => {
                // Waiting uploads must not pile up open descriptors.
                upload.release();
                Ok(Ok((upload, got.bytes)))
            }
            Err(e) if e.breaks_connection() => Err(e),
            Err(e) => Ok(Err(e)),
        },
        // Refused before its body was read: read it anyway, to stay in step.
        Err(refused) => match whole(conn, &mut io::sink()) {
            Err(e) if e.breaks_connection() => Err(e),
            _ => Ok(Err(refused)),
        },
    }
}

/// Commits the waiting pipelined uploads as one group, then answers and reports each in
/// order. False when the answers could not be sent.
fn commit_group(ctx: &Ctx, conn: &mut Connection, group: &mut Vec<Pending>) -> bool {
    if group.is_empty() {
        return true;
    }
    let outcomes = group
        .drain(..)
        .map(|p| ((p.name, p.started), p.outcome))
        .collect();
    let mut sending = true;
    for ((name, started), result) in commit_outcomes(ctx.store.as_ref(), outcomes) {
        if sending {
            let answer = match &result {
                Ok(size) => Response::Stored { size: *size },
                Err(e) => Response::Error {
                    kind: e.kind(),
                    message: clip_message(e.to_string()),
                },
            };
            sending = conn.send(&answer).is_ok();
        }
        let (bytes, error) = match &result {
            Ok(size) => (*size, None),
            Err(e) => (0, Some(e)),
        };
        let report = Report::new(conn.peer(), Op::Put, Some(&name), started, bytes, error);
        (ctx.reports)(&report);
    }
    sending
}

/// Sends the failure to the client if the connection can still carry it.
fn answer_error(conn: &mut Connection, error: &Error) {
    // Timed out, closed, broken or shut down: nobody is listening any more.
    let worth_sending = !matches!(
        error,
        Error::Timeout(_) | Error::Closed(_) | Error::Network { .. } | Error::ShuttingDown
    );
    if worth_sending {
        let _ = conn.send(&Response::Error {
            kind: error.kind(),
            message: clip_message(error.to_string()),
        });
    }
}

/// A request's failure, and whether the client has already been told (inside a body or
/// listing, the failure travels as `Abort` or `Error` there).
struct Failed {
    error: Error,
    answered: bool,
}

impl From<Error> for Failed {
    fn from(error: Error) -> Failed {
        Failed {
            error,
            answered: false,
        }
    }
}

fn answered(error: Error) -> Failed {
    Failed {
        error,
        answered: true,
    }
}

/// Serves one request; returns its report and whether the connection goes on.
fn serve_request(
    ctx: &Ctx,
    conn: &mut Connection,
    version: u32,
    request: Request,
    started: Instant,
) -> (Report, bool) {
    let moved = Cell::new(0u64);
    let needs_v2 = matches!(
        request,
        Request::GetFrom { .. } | Request::PutResumable { .. } | Request::PutPipelined { .. }
    );
    let (op, name, result) = match request {
        _ if needs_v2 && version < RESUME_VERSION => (
            Op::Connect,
            None,
            Err(Error::Protocol(format!(
                "resumable and pipelined requests need ft v{RESUME_VERSION}"
            ))
            .into()),
        ),
        Request::GetFrom {
            name,
            offset,
            prefix,
        } => {
            let result = serve_get_from(ctx, conn, &name, offset, prefix, &moved);
            (Op::Get, Some(name), result)
        }
        // The connection loop takes these on v2 connections.
        Request::PutPipelined { name, .. } => (
            Op::Put,
            Some(name),
            Err(Error::Protocol("a pipelined upload out of place".into()).into()),
        ),
        Request::PutResumable { name, size, digest } => {
            let result = serve_put_resumable(ctx, conn, &name, size, digest, &moved);
            (Op::Put, Some(name), result)
        }
        Request::Put { name, size } => {
            let result = serve_put(ctx, conn, &name, size, &moved);
            (Op::Put, Some(name), result)
        }
        Request::Get { name } => {
            let result = serve_get(ctx, conn, &name, &moved);
            (Op::Get, Some(name), result)
        }
        Request::List => (Op::List, None, serve_list(ctx, conn)),
        Request::Hello(_) => (
            Op::Connect,
            None,
            Err(Error::Protocol("a second hello".into()).into()),
        ),
    };
    let peer = conn.peer();
    match result {
        Ok(bytes) => (
            Report::new(peer, op, name.as_deref(), started, bytes, None),
            true,
        ),
        Err(Failed { error, answered }) => {
            // A connection cut by our own shutdown is not the peer's doing.
            let error = if error.breaks_connection() && ctx.shutdown.is_shutdown() {
                Error::ShuttingDown
            } else {
                error
            };
            if !answered {
                answer_error(conn, &error);
            }
            let report = Report::new(
                peer,
                op,
                name.as_deref(),
                started,
                moved.get(),
                Some(&error),
            );
            (report, !error.breaks_connection())
        }
    }
}

fn serve_put(
    ctx: &Ctx,
    conn: &mut Connection,
    name: &str,
    size: u64,
    moved: &Cell<u64>,
) -> Result<u64, Failed> {
    let checked = check_upload(ctx, name, size)?;
    let mut upload = ctx.store.create(&checked, size)?;
    conn.send(&Response::Ready)?;
    let span = Span::whole(name, size);
    let got = receive_into(conn, span, &mut upload, Xxh3::new(), Some(moved))?;
    upload.commit()?;
    conn.send(&Response::Stored { size: got.bytes })?;
    Ok(got.bytes)
}

/// Receives an upload's body (`span`, `prefix` hashing the bytes before its offset) into
/// `writer`, counting the bytes this request moved in `moved`.
fn receive_into(
    conn: &mut Connection,
    span: Span<'_>,
    writer: &mut dyn Write,
    prefix: Xxh3,
    moved: Option<&Cell<u64>>,
) -> Result<Received> {
    let mut progress = |n: u64| {
        if let Some(moved) = moved {
            moved.set(n - span.offset);
        }
    };
    let mut hooks = Hooks {
        progress: Some(&mut progress),
        cancel: None,
    };
    transfer::recv_body(conn, Side::Client, span, writer, prefix, &mut hooks)
}

/// Checks what every upload must pass before its body (the name first); the name checked.
fn check_upload(ctx: &Ctx, name: &str, size: u64) -> Result<Name> {
    let name = Name::new(name)?;
    if ctx.config.read_only {
        return Err(Error::ReadOnly);
    }
    match ctx.config.max_file_size {
        Some(limit) if size > limit => Err(Error::TooLarge {
            name: name.to_string(),
            size,
            limit,
        }),
        _ => Ok(name),
    }
}

/// The key of a resumable upload: one partial per name, size and content.
fn partial_key(name: &str, size: u64, digest: &[u8; DIGEST_LEN]) -> String {
    let mut hasher = Xxh3::new();
    hasher.update(name.as_bytes());
    hasher.update(&[0]);
    hasher.update(&size.to_le_bytes());
    hasher.update(digest);
    format!("{:032x}", hasher.digest128())
}

fn serve_put_resumable(
    ctx: &Ctx,
    conn: &mut Connection,
    name: &str,
    size: u64,
    digest: [u8; DIGEST_LEN],
    moved: &Cell<u64>,
) -> Result<u64, Failed> {
    let checked = check_upload(ctx, name, size)?;
    let Resumable {
        mut upload,
        offset,
        mut existing,
    } = ctx
        .store
        .create_resumable(&checked, size, &partial_key(name, size, &digest))?;
    let prefix = transfer::hash_prefix(&mut existing, offset)
        .map_err(|e| Error::io(format!("reading the partial file of {}", escape(name)), e))?;
    drop(existing);
    if let Err(e) = conn.send(&Response::ReadyFrom { offset }) {
        upload.keep();
        return Err(e.into());
    }
    let span = Span { name, size, offset };
    let received = receive_into(conn, span, &mut upload, prefix, Some(moved));
    match received {
        Ok(got) if got.digest == digest => {
            upload.commit()?;
            conn.send(&Response::Stored { size })?;
            Ok(got.bytes)
        }
        // Verified, but not the file announced: the partial is no prefix of it.
        Ok(_) => Err(Error::ChecksumMismatch {
            name: name.to_owned(),
        }
        .into()),
        Err(e) => {
            if e.kind().is_interruption() {
                upload.keep();
            }
            Err(e.into())
        }
    }
}

fn serve_get(
    ctx: &Ctx,
    conn: &mut Connection,
    name: &str,
    moved: &Cell<u64>,
) -> Result<u64, Failed> {
    let mut source = ctx.store.open(&Name::new(name)?, 0)?;
    conn.send(&Response::File {
        size: source.size,
        modified: source.modified,
    })?;
    send_source(ctx, conn, name, &mut source, 0, Xxh3::new(), moved)
}

fn serve_get_from(
    ctx: &Ctx,
    conn: &mut Connection,
    name: &str,
    offset: u64,
    prefix: [u8; DIGEST_LEN],
    moved: &Cell<u64>,
) -> Result<u64, Failed> {
    let checked = Name::new(name)?;
    let mut source = ctx.store.open(&checked, 0)?;
    let mut start = (0, Xxh3::new());
    if offset > 0 && offset <= source.size {
        let hasher = transfer::hash_prefix(&mut source.reader, offset)
            .map_err(|e| Error::io(format!("reading {}", escape(name)), e))?;
        if hasher.digest128().to_be_bytes() == prefix {
            start = (offset, hasher);
        } else {
            // Not the client's bytes: send the whole file, read afresh from its start.
            source = ctx.store.open(&checked, 0)?;
        }
    }
    conn.send(&Response::FileFrom {
        size: source.size,
        modified: source.modified,
        offset: start.0,
    })?;
    send_source(ctx, conn, name, &mut source, start.0, start.1, moved)
}

/// Sends a download's body from `offset` on; failures travel inside it as `Abort`.
fn send_source(
    ctx: &Ctx,
    conn: &mut Connection,
    name: &str,
    source: &mut Source,
    offset: u64,
    prefix: Xxh3,
    moved: &Cell<u64>,
) -> Result<u64, Failed> {
    let mut progress = |n: u64| moved.set(n - offset);
    let mut hooks = Hooks {
        progress: Some(&mut progress),
        cancel: None,
    };
    let span = Span {
        name,
        size: source.size,
        offset,
    };
    transfer::send_body(
        conn,
        span,
        &mut source.reader,
        Digest::Running(Box::new(prefix)),
        ctx.config.chunk_size,
        &mut hooks,
    )
    .map_err(answered)
}

fn serve_list(ctx: &Ctx, conn: &mut Connection) -> Result<u64, Failed> {
    let entries = ctx.store.list()?;
    transfer::send_listing(conn, entries).map_err(answered)
}
