//! The blocking client: connect once, then put, get and list over that connection.
//! Downloads go through a [`DirStore`], so a local file appears only complete and verified.
//! Progress is reported through a callback; drawing it is the caller's business.
//!
//! By concern: this file holds [`Client`] and its single requests; `exchange` the wire
//! exchanges they share with `batch` (pipelined [`Client::put_many`] and
//! [`Client::get_many`]); `local` the local side of an upload (opening a file, resolving a
//! command-line path); `open` the transport (plain or TLS, as trusted) and the login;
//! `session` the policy of a whole command line ([`Session`]).

mod batch;
mod exchange;
mod local;
mod observer;
mod open;
mod session;
mod streams;
mod tree;
mod trees;
mod upload;
mod walk;

use std::io::Write;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use xxhash_rust::xxh3::xxh3_128;

use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::handshake::client_handshake;
use crate::protocol::{DEFAULT_CHUNK, Entry, Password, RESUME_VERSION, Request, Role};
use crate::store::{DirStore, Name};
use crate::text::escape;
use crate::transfer::{self, Received};
use crate::trust::{self, FirstContact, Trust};
use exchange::Sink;
use open::{log_in, secure};

pub use local::local_source;
pub use observer::Observer;
pub use session::Session;
pub use upload::upload_tag;

/// How a [`Client`] behaves.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Bound on connecting and on each frame; a silent server fails after this long.
    pub timeout: Duration,
    /// Chunk size for uploads.
    pub chunk_size: usize,
    /// Most entries [`Client::list`] accepts.
    pub max_list_entries: u64,
    /// Set to true (e.g. from a Ctrl-C handler) to stop the current transfer cleanly.
    pub cancel: Option<Arc<AtomicBool>>,
    /// How the server is recognised: by default TLS and the known-hosts file in the
    /// platform's config directory.
    pub trust: Trust,
    /// The account to log in with, if any (over TLS only).
    pub login: Option<Credentials>,
    /// Files of at least this many bytes are moved so that an interruption can be
    /// continued, without asking for it: an upload is sent resumably (the server keeps a
    /// partial if it is cut; hashed first for a server older than v5), a download goes into a hidden partial file
    /// that is kept if it is cut, and the next plain transfer of the same file continues
    /// it. `None` never does (ftclient's `--no-resume`); the default is
    /// [`RESUME_FROM`]. The calls named resumable, and the sessions' `resume` flag, do it
    /// for every file whatever this says.
    pub resume_from: Option<u64>,
}

/// The default [`ClientConfig::resume_from`]: 16 MiB. Hashing a file before sending it
/// costs a read of it (about 0.1 s per GiB from the page cache here); below this size a
/// cut transfer loses too little to pay for that, and small files keep being pipelined.
pub const RESUME_FROM: u64 = 16 * 1024 * 1024;

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig {
            timeout: Duration::from_secs(30),
            chunk_size: DEFAULT_CHUNK,
            max_list_entries: 10_000_000,
            cancel: None,
            trust: Trust::default(),
            login: None,
            resume_from: Some(RESUME_FROM),
        }
    }
}

impl ClientConfig {
    /// The defaults, with this trust.
    ///
    /// # Examples
    /// ```
    /// use ftlib::{ClientConfig, Trust};
    ///
    /// let pinned = ClientConfig::trusting(Trust::Pinned(
    ///     "SHA256:ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0".parse()?,
    /// ));
    /// let plain = ClientConfig::trusting(Trust::Plain);
    /// assert_ne!(pinned.trust, plain.trust);
    /// # Ok::<(), String>(())
    /// ```
    pub fn trusting(trust: Trust) -> ClientConfig {
        ClientConfig {
            trust,
            ..ClientConfig::default()
        }
    }
}

/// The key of the hidden partial file a download of the server's `name` into the local
/// `local` keeps (`.ft-part-KEY` in the local directory; PROTOCOL.md 12.1).
pub(super) fn download_key(name: &Name, local: &Name) -> String {
    // The same name as before issue 10 when the two agree, so older partials still count.
    if local == name {
        format!("{:032x}", xxh3_128(name.as_bytes()))
    } else {
        format!("{:032x}", xxh3_128(format!("{name}\0{local}").as_bytes()))
    }
}

/// An account's name and password. `Debug` does not show the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The account's name.
    pub user: String,
    /// Its password.
    pub password: Password,
}

/// How far a transfer has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Body bytes moved so far.
    pub done: u64,
    /// Size of the whole body.
    pub total: u64,
}

/// A connection to an ft server.
///
/// After an error that breaks the connection ([`Error::breaks_connection`]) the socket is
/// released and every further request fails at once; [`Client::is_open`] tells, and a new
/// `Client` reconnects.
///
/// # Examples
/// ```no_run
/// use ftlib::{Client, ClientConfig};
/// use ftlib::store::DirStore;
///
/// let mut client = Client::connect("localhost:6789", ClientConfig::default())?;
/// client.put("notes.pdf".as_ref(), "notes.pdf", |_| {})?;
/// let here = DirStore::open("client_data")?;
/// client.get("test2.txt", &here, false, |p| eprintln!("{}/{}", p.done, p.total))?;
/// for entry in client.list()? {
///     println!("{}", ftlib::text::escape(&entry.name));
/// }
/// # Ok::<(), ftlib::Error>(())
/// ```
#[derive(Debug)]
pub struct Client {
    /// `None` once an error broke the connection.
    conn: Option<Connection>,
    peer: SocketAddr,
    version: u32,
    config: ClientConfig,
    /// The role of the account logged in, if any.
    role: Option<Role>,
    /// The server's fingerprint, when recorded by this connection.
    first_contact: Option<FirstContact>,
}

impl Client {
    /// Connects to the first reachable address of `addr`, opens TLS as
    /// [`ClientConfig::trust`] says, exchanges hellos and logs in if
    /// [`ClientConfig::login`] is set. With [`Trust::KnownHosts`], the server is known by the
    /// IP address it was reached at; [`Client::connect_to`] keeps the host name.
    ///
    /// # Errors
    /// [`Error::Resolve`] or [`Error::Network`] when no address is reachable;
    /// [`Error::Remote`] with kind `Busy` when the server is full, `TlsRequired` when it
    /// expects TLS and this client is plain, `AuthFailed` when the login is refused;
    /// [`Error::PlainServer`] when a TLS client meets a plain server;
    /// [`Error::IdentityChanged`] when the server is not the one trusted (nothing was sent);
    /// [`Error::Tls`]; [`Error::Version`] or [`Error::Protocol`] when the peer is not a
    /// compatible ft server; [`Error::Timeout`].
    pub fn connect(addr: impl ToSocketAddrs, config: ClientConfig) -> Result<Client> {
        let addrs: Vec<SocketAddr> = addr.to_socket_addrs().map_err(Error::Resolve)?.collect();
        Client::open(None, &addrs, config)
    }

    /// [`Client::connect`] to `host` (a name or an address) and `port`; the known-hosts
    /// file knows the server by `host` as given.
    ///
    /// # Errors
    /// As [`Client::connect`].
    pub fn connect_to(host: &str, port: u16, config: ClientConfig) -> Result<Client> {
        let host = trust::host_key(host);
        let addrs: Vec<SocketAddr> = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(Error::Resolve)?
            .collect();
        Client::open(Some(&host), &addrs, config)
    }

    fn open(host: Option<&str>, addrs: &[SocketAddr], config: ClientConfig) -> Result<Client> {
        if config.login.is_some() && config.trust == Trust::Plain {
            return Err(Error::Config(
                "a password is never sent over a plain connection: log in over TLS".into(),
            ));
        }
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect_timeout(addr, config.timeout) {
                Ok(stream) => {
                    let host = host.map_or_else(|| addr.ip().to_string(), str::to_owned);
                    let (mut conn, first_contact) = secure(stream, &host, addr, &config)?;
                    let version = client_handshake(&mut conn)?;
                    let role = match &config.login {
                        Some(login) => Some(log_in(&mut conn, version, login)?),
                        None => None,
                    };
                    // Requests and small files' bodies go out together, before the client
                    // waits for an answer.
                    conn.gather(true)?;
                    return Ok(Client {
                        conn: Some(conn),
                        peer: *addr,
                        version,
                        config,
                        role,
                        first_contact,
                    });
                }
                Err(e) => last = Some(Error::net(addr, e)),
            }
        }
        Err(last.unwrap_or_else(|| {
            Error::Resolve(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "the name has no address",
            ))
        }))
    }

    /// The server's fingerprint, when this connection was the first contact and recorded it
    /// in the known-hosts file.
    pub fn first_contact(&self) -> Option<&FirstContact> {
        self.first_contact.as_ref()
    }

    /// The account logged in (`None` without a login).
    pub fn user(&self) -> Option<&str> {
        self.role
            .and(self.config.login.as_ref())
            .map(|login| login.user.as_str())
    }

    /// The role of the account logged in (`None` without a login).
    pub fn role(&self) -> Option<Role> {
        self.role
    }

    /// Refuses an upload locally when the account logged in may only read, so nothing is
    /// sent for it.
    pub(super) fn may_put(&self) -> Result<()> {
        match (self.role, &self.config.login) {
            (Some(role), Some(login)) if !role.may_write() => {
                Err(Error::PermissionDenied(format!(
                    "user {} may only read (role {role}): uploads are refused",
                    escape(&login.user)
                )))
            }
            _ => Ok(()),
        }
    }

    /// The server's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The protocol version agreed with the server.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// False once an error broke the connection.
    pub fn is_open(&self) -> bool {
        self.conn.is_some()
    }

    /// True when the server has closed (or spoken on) this connection while no request was
    /// in flight: between requests the server sends nothing unasked, so anything readable
    /// is its end of the stream (an idle timeout, a shutdown). Call only between requests.
    pub(crate) fn closed_while_idle(&mut self) -> bool {
        self.conn.as_mut().is_some_and(Connection::input_pending)
    }

    /// Downloads `name` into `dir`: held in memory (up to
    /// [`BUFFERED_MAX`](crate::store::BUFFERED_MAX)) or in a hidden temporary file, verified,
    /// made durable, then published
    /// without replacing an existing file unless `overwrite`. Nothing is left on failure.
    /// Only `dir/name` is ever written, whatever the server sends.
    ///
    /// # Errors
    /// [`Error::InvalidName`]; [`Error::AlreadyExists`] locally (before anything is sent);
    /// [`Error::Remote`] (e.g. kind `NotFound`); [`Error::ChecksumMismatch`],
    /// [`Error::SizeMismatch`]; [`Error::NoSpace`] or [`Error::Io`] locally; connection errors.
    pub fn get(
        &mut self,
        name: &str,
        dir: &DirStore,
        overwrite: bool,
        mut progress: impl FnMut(Progress),
    ) -> Result<u64> {
        let name = Name::new(name)?;
        let mut upload = dir.create_file(&name, overwrite)?;
        let got = self.download(
            &name,
            None,
            Sink::Dir(dir, &mut upload, None),
            &mut progress,
        )?;
        upload.commit()?;
        Ok(got.bytes)
    }

    /// Like [`Client::get`], but continues from a hidden partial file that an interrupted
    /// `get_resumable` of the same name left in `dir`, if the server's file still starts with
    /// those bytes (otherwise it starts over). A transfer cut by the network or by
    /// cancelling keeps its partial for the next attempt; any other failure removes it.
    /// Returns the bytes moved by this call. Needs a v2 server.
    ///
    /// # Errors
    /// As [`Client::get`], and [`Error::Unsupported`] for a v1 server.
    pub fn get_resumable(
        &mut self,
        name: &str,
        dir: &DirStore,
        overwrite: bool,
        mut progress: impl FnMut(Progress),
    ) -> Result<u64> {
        Ok(self
            .get_resumable_as(name, name, dir, overwrite, &mut progress)?
            .bytes)
    }

    /// [`Client::get_resumable`] of the server's `name` into `local` in `dir`; the bytes
    /// received and their verified digest.
    pub(super) fn get_resumable_as(
        &mut self,
        name: &str,
        local: &str,
        dir: &DirStore,
        overwrite: bool,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Received> {
        let name = Name::new(name)?;
        let local = Name::new(local)?;
        self.require(RESUME_VERSION, "resuming downloads")?;
        let key = download_key(&name, &local);
        let (mut partial, have) = dir.open_partial(&key, &local, overwrite)?;
        let prefix = transfer::hash_prefix(&mut partial.existing()?, have)
            .map_err(|e| Error::io(format!("reading the partial file of {}", escape(&name)), e))?;
        let resume = Some((have, prefix));
        match self.download(&name, resume, Sink::Dir(dir, &mut partial, None), progress) {
            Ok(got) => {
                partial.commit()?;
                Ok(got)
            }
            Err(e) => {
                if e.kind().is_interruption() {
                    partial.keep();
                }
                Err(e)
            }
        }
    }

    /// Downloads `name` into `writer`. The data is verified only when this returns `Ok`:
    /// on error, discard whatever was written.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub fn get_into(
        &mut self,
        name: &str,
        writer: &mut dyn Write,
        mut progress: impl FnMut(Progress),
    ) -> Result<u64> {
        Ok(self
            .download(&Name::new(name)?, None, Sink::Writer(writer), &mut progress)?
            .bytes)
    }

    /// Lists the served directory.
    ///
    /// # Errors
    /// [`Error::Remote`]; [`Error::Protocol`] when the listing exceeds
    /// [`ClientConfig::max_list_entries`]; connection errors.
    pub fn list(&mut self) -> Result<Vec<Entry>> {
        let mut entries = Vec::new();
        self.list_each(|entry| entries.push(entry))?;
        Ok(entries)
    }

    /// Lists the served directory, handing each entry to `each` as it arrives, in
    /// constant memory; returns the number of entries.
    ///
    /// # Errors
    /// As [`Client::list`].
    pub fn list_each(&mut self, mut each: impl FnMut(Entry)) -> Result<u64> {
        self.with_conn(|conn, config| {
            conn.send(&Request::List)?;
            transfer::recv_listing(conn, config.max_list_entries, &mut each)
        })
    }

    pub(super) fn require(&self, version: u32, what: &'static str) -> Result<()> {
        if self.conn.is_some() && self.version < version {
            return Err(Error::Unsupported(what, self.version));
        }
        Ok(())
    }

    /// Runs one exchange on the open connection; an error that breaks it releases the
    /// socket at once, so the server is not left writing into a connection nobody reads.
    pub(super) fn with_conn<T>(
        &mut self,
        exchange: impl FnOnce(&mut Connection, &ClientConfig) -> Result<T>,
    ) -> Result<T> {
        let Some(conn) = self.conn.as_mut() else {
            return Err(Error::NotConnected);
        };
        let result = exchange(conn, &self.config);
        if result.as_ref().is_err_and(Error::breaks_connection) {
            self.conn = None;
        }
        result
    }
}
