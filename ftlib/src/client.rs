//! The blocking client: connect once, then put, get and list over that connection.
//! Downloads go through a [`DirStore`], so a local file appears only complete and verified.
//! Progress is reported through a callback; drawing it is the caller's business.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::protocol::{
    DEFAULT_CHUNK, Entry, Hello, MAGIC, MIN_VERSION, Request, Response, VERSION,
};
use crate::store::{DirStore, validate_name};
use crate::transfer::{self, Hooks, Side, response_name};

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
}

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig {
            timeout: Duration::from_secs(30),
            chunk_size: DEFAULT_CHUNK,
            max_list_entries: 10_000_000,
            cancel: None,
        }
    }
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
/// After an error that breaks the connection ([`Error::breaks_connection`]) every further
/// request fails at once; [`Client::is_open`] tells, and a new `Client` reconnects.
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
///     println!("{}", ftlib::report::escape(&entry.name));
/// }
/// # Ok::<(), ftlib::Error>(())
/// ```
#[derive(Debug)]
pub struct Client {
    conn: Connection,
    config: ClientConfig,
    open: bool,
}

impl Client {
    /// Connects to the first reachable address of `addr` and exchanges hellos.
    ///
    /// # Errors
    /// [`Error::Network`] when no address is reachable; [`Error::Remote`] with kind `Busy`
    /// when the server is full; [`Error::Version`] or [`Error::Protocol`] when the peer is not
    /// a compatible ft server; [`Error::Timeout`].
    pub fn connect(addr: impl ToSocketAddrs, config: ClientConfig) -> Result<Client> {
        let addrs: Vec<SocketAddr> = addr.to_socket_addrs().map_err(Error::Resolve)?.collect();
        let mut last = None;
        for addr in &addrs {
            match TcpStream::connect_timeout(addr, config.timeout) {
                Ok(stream) => {
                    let conn =
                        Connection::new(stream, config.timeout).map_err(|e| Error::net(addr, e))?;
                    let mut client = Client {
                        conn,
                        config,
                        open: true,
                    };
                    client.handshake()?;
                    return Ok(client);
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

    fn handshake(&mut self) -> Result<()> {
        let version = match self.conn.recv_hello::<Response>()? {
            Response::Hello(hello) if hello.magic != MAGIC => {
                return Err(Error::Protocol(
                    "the server does not speak ft (bad magic in hello)".into(),
                ));
            }
            Response::Hello(hello) => {
                let version = hello.version.min(VERSION);
                if version < hello.min_version.max(MIN_VERSION) {
                    return Err(Error::Version {
                        ours_min: MIN_VERSION,
                        ours_max: VERSION,
                        theirs_min: hello.min_version,
                        theirs_max: hello.version,
                    });
                }
                version
            }
            Response::Error { kind, message } => return Err(Side::Server.remote(kind, message)),
            other => {
                return Err(Error::Protocol(format!(
                    "the server began with {} instead of hello",
                    response_name(&other)
                )));
            }
        };
        self.conn.send(&Request::Hello(Hello {
            version,
            ..Hello::ours()
        }))
    }

    /// The server's address.
    pub fn peer(&self) -> SocketAddr {
        self.conn.peer()
    }

    /// False once an error broke the connection.
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Uploads the local file at `path` as `name`.
    ///
    /// # Errors
    /// [`Error::InvalidName`]; [`Error::Io`] or [`Error::NotFound`] for the local file;
    /// [`Error::Remote`] when the server refuses (e.g. kind `AlreadyExists`);
    /// [`Error::SizeMismatch`] when the file changes while sent; connection errors.
    pub fn put(&mut self, path: &Path, name: &str, progress: impl FnMut(Progress)) -> Result<u64> {
        validate_name(name)?;
        let file = File::open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::NotFound {
                name: path.display().to_string(),
                detail: " locally",
            },
            _ => Error::io(format!("opening {}", path.display()), e),
        })?;
        let meta = file
            .metadata()
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        if !meta.is_file() {
            return Err(Error::NotFound {
                name: path.display().to_string(),
                detail: " (not a regular file)",
            });
        }
        self.put_reader(file, meta.len(), name, progress)
    }

    /// Uploads exactly `size` bytes read from `reader` as `name`.
    ///
    /// # Errors
    /// As [`Client::put`].
    pub fn put_reader(
        &mut self,
        mut reader: impl Read,
        size: u64,
        name: &str,
        mut progress: impl FnMut(Progress),
    ) -> Result<u64> {
        validate_name(name)?;
        self.ensure_open()?;
        let mut each = |done| progress(Progress { done, total: size });
        let result = self.put_inner(&mut reader, size, name, &mut each);
        self.settle(result)
    }

    fn put_inner(
        &mut self,
        reader: &mut dyn Read,
        size: u64,
        name: &str,
        progress: &mut dyn FnMut(u64),
    ) -> Result<u64> {
        self.conn.send(&Request::Put {
            name: name.to_owned(),
            size,
        })?;
        match self.conn.expect("before answering the upload")? {
            Response::Ready => {}
            other => return Err(unexpected(other, "ready")),
        }
        progress(0);
        let mut hooks = Hooks {
            progress: Some(progress),
            cancel: self.config.cancel.as_deref(),
        };
        let chunk = self.config.chunk_size;
        if let Err(e) = transfer::send_body(&mut self.conn, name, reader, size, chunk, &mut hooks) {
            if !e.breaks_connection() {
                // We aborted the body; the server confirms with an error response.
                match self.conn.expect("after an aborted upload")? {
                    Response::Error { .. } => {}
                    other => return Err(unexpected(other, "error")),
                }
            }
            return Err(e);
        }
        match self.conn.expect("before confirming the upload")? {
            Response::Stored { size: stored } if stored == size => Ok(stored),
            Response::Stored { size: stored } => Err(Error::Protocol(format!(
                "the server stored {stored} bytes of {size}"
            ))),
            other => Err(unexpected(other, "stored")),
        }
    }

    /// Downloads `name` into `dir`: through a temporary file, verified, then published
    /// without replacing an existing file unless `overwrite`. Nothing is left on failure.
    /// Only `dir/name` is ever written, whatever the server sends.
    ///
    /// # Errors
    /// [`Error::InvalidName`]; [`Error::AlreadyExists`] locally (before anything is sent);
    /// [`Error::Remote`] (e.g. kind `NotFound`); [`Error::ChecksumMismatch`],
    /// [`Error::SizeMismatch`]; [`Error::Io`] locally; connection errors.
    pub fn get(
        &mut self,
        name: &str,
        dir: &DirStore,
        overwrite: bool,
        progress: impl FnMut(Progress),
    ) -> Result<u64> {
        let mut upload = dir.create_file(name, overwrite)?;
        let got = self.get_into(name, &mut upload, progress)?;
        upload.commit()?;
        Ok(got)
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
        validate_name(name)?;
        self.ensure_open()?;
        let result = self.get_inner(name, writer, &mut progress);
        self.settle(result)
    }

    fn get_inner(
        &mut self,
        name: &str,
        writer: &mut dyn Write,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<u64> {
        self.conn.send(&Request::Get {
            name: name.to_owned(),
        })?;
        let total = match self.conn.expect("before answering the download")? {
            Response::File { size, .. } => size,
            other => return Err(unexpected(other, "file")),
        };
        progress(Progress { done: 0, total });
        let mut each = |done| progress(Progress { done, total });
        let mut hooks = Hooks {
            progress: Some(&mut each),
            cancel: self.config.cancel.as_deref(),
        };
        match transfer::recv_body(
            &mut self.conn,
            Side::Server,
            name,
            writer,
            total,
            &mut hooks,
        ) {
            // The rest of the body is still in flight: this connection cannot go on.
            Err(Error::Cancelled) => {
                self.open = false;
                self.conn.close();
                Err(Error::Cancelled)
            }
            other => other,
        }
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
        self.ensure_open()?;
        let max = self.config.max_list_entries;
        let result = self
            .conn
            .send(&Request::List)
            .and_then(|()| transfer::recv_listing(&mut self.conn, max, &mut each));
        self.settle(result)
    }

    fn ensure_open(&self) -> Result<()> {
        if self.open {
            Ok(())
        } else {
            Err(Error::Closed("earlier; connect again"))
        }
    }

    /// Marks the connection unusable after an error that broke it.
    fn settle<T>(&mut self, result: Result<T>) -> Result<T> {
        if let Err(e) = &result {
            if e.breaks_connection() {
                self.open = false;
                self.conn.close();
            }
        }
        result
    }
}

/// The error for a response other than `expected`: the server's own error if it sent one.
fn unexpected(response: Response, expected: &str) -> Error {
    match response {
        Response::Error { kind, message } => Side::Server.remote(kind, message),
        other => Error::Protocol(format!(
            "expected {expected}, the server sent {}",
            response_name(&other)
        )),
    }
}
