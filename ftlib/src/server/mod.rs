//! The server: [`Server`] takes a listener it is given ([`listen()`] makes a good one) and a
//! [`Store`], cleans what a crash left, then accepts until asked to stop through a
//! [`ShutdownHandle`], serving each connection on its own thread. Every request ends in one
//! [`Report`].
//!
//! Inside, by concern: `listen` (the listener), `registry` (live connections, the permit,
//! `Busy`, draining at shutdown), `session` (one connection's loop), `handlers` (the one
//! dispatch and one function per request), `pipeline` (waiting pipelined uploads and their
//! group commit), `takeover` (which connection continues each partial; a retry from the same
//! address takes over).

mod handlers;
mod listen;
mod pipeline;
mod registry;
mod session;
mod takeover;
mod tree;
mod upload;

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

pub use listen::{LISTEN_BACKLOG, listen};

use crate::accounts::{Throttle, Users};
use crate::error::{Error, Result};
use crate::protocol::{DEFAULT_CHUNK, Role};
use crate::report::{Op, Report};
use crate::store::Store;
use crate::tls::{self, Fingerprint, Identity};
use registry::Registry;

/// How a [`Server`] behaves.
///
/// # Examples
/// An identity kept in a state directory (the same fingerprint on every start) and accounts
/// with roles; clients that do not log in may only read.
/// ```
/// use std::sync::Arc;
/// use ftlib::accounts::{self, Users};
/// use ftlib::{Client, ClientConfig, Credentials, Identity, Password, Role, Server, ServerConfig, Trust};
///
/// let state = tempfile::tempdir()?;
/// let served = tempfile::tempdir()?;
/// let users_file = state.path().join("users");
/// accounts::add_user(&users_file, "alice", Role::Write, "correct horse")?;
///
/// let (identity, _created) = Identity::load_or_create(state.path())?;
/// let mut config = ServerConfig::default();
/// config.identity = Some(Arc::new(identity));
/// config.users = Some(Arc::new(Users::load(&users_file)?));
/// config.anonymous = Some(Role::Read);
/// let server = Server::new(
///     ftlib::listen("127.0.0.1:0")?,
///     ftlib::DirStore::open(served.path())?,
///     config,
/// )?;
/// let (addr, fingerprint) = (server.local_addr()?, server.fingerprint().expect("TLS"));
/// let stop = server.shutdown_handle();
/// let running = std::thread::spawn(move || server.run(|report| println!("{report}")));
///
/// let mut login = ClientConfig::trusting(Trust::Pinned(fingerprint));
/// login.login = Some(Credentials {
///     user: "alice".into(),
///     password: Password("correct horse".into()),
/// });
/// let client = Client::connect(addr, login)?;
/// assert_eq!(client.role(), Some(Role::Write));
/// drop(client);
///
/// stop.shutdown();
/// running.join().expect("server thread")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
    /// No TLS: names, bytes and listings cross the network in clear, and logins are
    /// refused. For trusted networks and benchmarks only.
    pub plain: bool,
    /// The certificate and key the server presents; `None` (and not plain): a new identity
    /// made by [`Server::new`], kept in memory only (see [`Identity::load_or_create`] for one
    /// that survives restarts).
    pub identity: Option<Arc<Identity>>,
    /// What a client that has not logged in may do (`None`: nothing). By default anyone
    /// may read and write.
    pub anonymous: Option<Role>,
    /// The accounts clients may log in with (over TLS only); `None`: no logins.
    pub users: Option<Arc<Users>>,
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
            plain: false,
            identity: None,
            anonymous: Some(Role::Write),
            users: None,
        }
    }
}

impl ServerConfig {
    /// The defaults, without TLS ([`ServerConfig::plain`]).
    pub fn plain() -> ServerConfig {
        ServerConfig {
            plain: true,
            ..ServerConfig::default()
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

/// Receives every report the server makes.
type ReportSink = Arc<dyn Fn(&Report) + Send + Sync>;

/// An ft server on an already-bound listener, best made by [`listen()`].
///
/// # Examples
/// ```
/// use ftlib::{Server, ServerConfig, listen};
/// use ftlib::store::DirStore;
///
/// let dir = tempfile::tempdir()?;
/// let listener = listen("127.0.0.1:0")?;
/// let server = Server::new(listener, DirStore::open(dir.path())?, ServerConfig::default())?;
/// let addr = server.local_addr()?;
/// // TLS with a new identity: the client pins its fingerprint.
/// let pin = ftlib::Trust::Pinned(server.fingerprint().expect("TLS by default"));
/// let stop = server.shutdown_handle();
/// let running = std::thread::spawn(move || server.run(|report| println!("{report}")));
///
/// let mut client = ftlib::Client::connect(addr, ftlib::ClientConfig::trusting(pin))?;
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
    /// The TLS configuration and the identity's fingerprint; `None` when plain.
    tls: Option<(Arc<rustls::ServerConfig>, Fingerprint)>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("listener", &self.listener)
            .field("store", &self.store)
            .field("config", &self.config)
            .field("fingerprint", &self.fingerprint())
            .finish()
    }
}

impl Server {
    /// Prepares a server, and removes what a crash left in the store (see
    /// [`Store::cleanup`]), so that a caller announcing the server afterwards announces a
    /// store that is readable and clean. Nothing is accepted until [`Server::run`].
    ///
    /// Taking a bound listener means a second server started by mistake on a taken port
    /// fails to bind before it could remove anything.
    ///
    /// # Errors
    /// [`Error::Io`] when the listener's address cannot be read, or the store cannot be
    /// read to clean it; [`Error::Config`] when the identity cannot be used.
    pub fn new(
        listener: TcpListener,
        store: impl Store + 'static,
        config: ServerConfig,
    ) -> Result<Server> {
        Server::with_shared_store(listener, Arc::new(store), config)
    }

    /// [`Server::new`] with a store chosen at run time (a directory or a bucket).
    ///
    /// # Errors
    /// As [`Server::new`].
    pub fn with_shared_store(
        listener: TcpListener,
        store: Arc<dyn Store>,
        config: ServerConfig,
    ) -> Result<Server> {
        let local = listener
            .local_addr()
            .map_err(|e| Error::io("reading the listener's address", e))?;
        let tls = if config.plain {
            None
        } else {
            let identity = match &config.identity {
                Some(identity) => Arc::clone(identity),
                None => Arc::new(Identity::generate()?),
            };
            let tls_config = tls::server_config(&identity)
                .map_err(|e| Error::Config(format!("the server's identity is unusable: {e}")))?;
            Some((tls_config, identity.fingerprint()))
        };
        store.cleanup()?;
        let wake_ip = match local.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        Ok(Server {
            listener,
            store,
            config,
            shutdown: ShutdownHandle {
                flag: Arc::new(AtomicBool::new(false)),
                wake: SocketAddr::new(wake_ip, local.port()),
            },
            tls,
        })
    }

    /// The fingerprint of the identity presented to clients (`None` when plain).
    pub fn fingerprint(&self) -> Option<Fingerprint> {
        self.tls.as_ref().map(|(_, fp)| *fp)
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

    /// Serves until shutdown; returns once every connection has ended and the store is
    /// cleaned again.
    ///
    /// # Errors
    /// When the store cannot be read for that last clean-up.
    pub fn run(self, reports: impl Fn(&Report) + Send + Sync + 'static) -> Result<()> {
        let ctx = Arc::new(Ctx {
            store: self.store,
            config: self.config,
            shutdown: self.shutdown,
            reports: Arc::new(reports),
            registry: Arc::default(),
            resuming: takeover::Holders::default(),
            tls: self.tls.map(|(config, _)| config),
            throttle: Throttle::new(),
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
        // This process's own uploads are gone with their threads (and cleanup never touches
        // them), but while we served, another process on this directory may have crashed
        // and left temporary files, and kept partials may have outgrown their limits: leave
        // the directory as clean as a start-up would, rather than wait for the next one.
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
    /// Which connection continues each partial now (a newer attempt takes over).
    resuming: takeover::Holders,
    /// The TLS configuration; `None` when plain.
    tls: Option<Arc<rustls::ServerConfig>>,
    /// Slows down addresses that fail to log in.
    throttle: Throttle,
}

impl Ctx {
    /// Hands `report` to the sink.
    fn report(&self, report: &Report) {
        (self.reports)(report);
    }
}

/// Takes a new connection: served on its own thread while there is room, else refused
/// with `Busy` at once.
fn accept(ctx: &Arc<Ctx>, stream: TcpStream) {
    let Ok(peer) = stream.peer_addr() else {
        return;
    };
    let started = Instant::now();
    let error = match ctx.registry.admit(&stream, ctx.config.max_connections) {
        Ok(permit) => {
            let thread_ctx = Arc::clone(ctx);
            let spawned = thread::Builder::new()
                .name(format!("ft {peer}"))
                .spawn(move || session::serve_tcp(&thread_ctx, stream, permit));
            match spawned {
                Ok(_) => return,
                // The closure, permit and stream are dropped: the place is free again.
                Err(e) => Error::io("starting a connection thread", e),
            }
        }
        Err(live) => registry::refuse_busy(stream, live),
    };
    ctx.report(&Report::new(
        peer,
        Op::Connect,
        None,
        started,
        0,
        Some(&error),
    ));
}
