//! The blocking client: connect once, then put, get and list over that connection.
//! Downloads go through a [`DirStore`], so a local file appears only complete and verified.
//! Progress is reported through a callback; drawing it is the caller's business.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use xxhash_rust::xxh3::{Xxh3, xxh3_128};

use crate::connection::Connection;
use crate::error::{Changed, Error, Missing, Result, Side};
use crate::handshake::client_handshake;
use crate::pipeline::{GROUP_BYTES, GROUP_MAX, Outcome, PIPELINE_WINDOW, commit_outcomes};
use crate::protocol::{DEFAULT_CHUNK, Entry, MAX_PIPELINED, RESUME_VERSION, Request, Response};
use crate::store::{DirStore, DirUpload, Name, PendingFile, validate_name};
use crate::text::escape;
use crate::transfer::{self, Digest, Hooks, Received, Span, response_name};

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
}

/// Which way a download goes: into a writer, or into a directory (whose free space is
/// checked once the size is known).
enum Sink<'a> {
    Writer(&'a mut dyn Write),
    Dir(&'a DirStore, &'a mut DirUpload),
}

impl Client {
    /// Connects to the first reachable address of `addr` and exchanges hellos.
    ///
    /// # Errors
    /// [`Error::Resolve`] or [`Error::Network`] when no address is reachable;
    /// [`Error::Remote`] with kind `Busy` when the server is full; [`Error::Version`] or
    /// [`Error::Protocol`] when the peer is not a compatible ft server; [`Error::Timeout`].
    pub fn connect(addr: impl ToSocketAddrs, config: ClientConfig) -> Result<Client> {
        let addrs: Vec<SocketAddr> = addr.to_socket_addrs().map_err(Error::Resolve)?.collect();
        let mut last = None;
        for addr in &addrs {
            match TcpStream::connect_timeout(addr, config.timeout) {
                Ok(stream) => {
                    let mut conn =
                        Connection::tcp(stream, config.timeout).map_err(|e| Error::net(addr, e))?;
                    let version = client_handshake(&mut conn)?;
                    return Ok(Client {
                        conn: Some(conn),
                        peer: *addr,
                        version,
                        config,
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

    /// Uploads the local file at `path` as `name`.
    ///
    /// # Errors
    /// [`Error::InvalidName`]; [`Error::NotFound`] or [`Error::Io`] for the local file;
    /// [`Error::Remote`] when the server refuses (e.g. kind `AlreadyExists`);
    /// [`Error::SizeMismatch`] when the file changes while sent; connection errors.
    pub fn put(&mut self, path: &Path, name: &str, progress: impl FnMut(Progress)) -> Result<u64> {
        validate_name(name)?;
        let (file, size) = open_local(path)?;
        self.put_reader(file, size, name, progress)
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
        let request = Request::Put {
            name: name.to_owned(),
            size,
        };
        let mut each = |done| progress(Progress { done, total: size });
        self.with_conn(|conn, config| {
            conn.send(&request)?;
            match conn.expect("before answering the upload")? {
                Response::Ready => {}
                other => return Err(unexpected(other, "ready")),
            }
            let span = Span::whole(name, size);
            let digest = Digest::Running(Box::default());
            upload_body(conn, config, span, &mut reader, digest, &mut each)
        })
    }

    /// Uploads the local file at `path` as `name`, continuing where an interrupted upload of
    /// the same file stopped: the file is hashed first, and the server continues only a
    /// partial of exactly this content (a changed file starts over). Needs a v2 server.
    ///
    /// # Errors
    /// As [`Client::put`], and [`Error::Unsupported`] for a v1 server.
    pub fn put_resumable(
        &mut self,
        path: &Path,
        name: &str,
        mut progress: impl FnMut(Progress),
    ) -> Result<u64> {
        validate_name(name)?;
        self.require(RESUME_VERSION, "resuming uploads")?;
        let (mut file, size) = open_local(path)?;
        let context = || format!("reading {}", path.display());
        let (digest, hashed) =
            transfer::hash_all(&mut file).map_err(|e| Error::io(context(), e))?;
        if hashed != size {
            return Err(Error::SizeMismatch {
                name: name.to_owned(),
                expected: size,
                actual: hashed,
                why: Changed::WhileHashed,
            });
        }
        let request = Request::PutResumable {
            name: name.to_owned(),
            size,
            digest,
        };
        let mut each = |done| progress(Progress { done, total: size });
        self.with_conn(|conn, config| {
            conn.send(&request)?;
            let offset = match conn.expect("before answering the upload")? {
                Response::ReadyFrom { offset } if offset <= size => offset,
                Response::ReadyFrom { offset } => {
                    return Err(Error::Protocol(format!(
                        "the server resumes at byte {offset} of {size}"
                    )));
                }
                other => return Err(unexpected(other, "ready-from")),
            };
            file.seek(SeekFrom::Start(offset))
                .map_err(|e| Error::io(context(), e))?;
            let span = Span { name, size, offset };
            upload_body(
                conn,
                config,
                span,
                &mut file,
                Digest::Known(digest),
                &mut each,
            )
        })
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
        let got = self.download(&name, None, Sink::Dir(dir, &mut upload), &mut progress)?;
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
        let name = Name::new(name)?;
        self.require(RESUME_VERSION, "resuming downloads")?;
        let key = format!("{:032x}", xxh3_128(name.as_bytes()));
        let (mut partial, have) = dir.open_partial(&key, &name, overwrite)?;
        let prefix = transfer::hash_prefix(&mut partial.existing()?, have)
            .map_err(|e| Error::io(format!("reading the partial file of {}", escape(&name)), e))?;
        let resume = Some((have, prefix));
        match self.download(&name, resume, Sink::Dir(dir, &mut partial), &mut progress) {
            Ok(got) => {
                partial.commit()?;
                Ok(got.bytes)
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

    /// Asks for `name` (from `resume.0` on, if the prefix matches) and receives it into `sink`.
    fn download(
        &mut self,
        name: &Name,
        resume: Option<(u64, Xxh3)>,
        sink: Sink<'_>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Received> {
        self.request_download(name, resume.as_ref())?;
        self.receive_download(name, resume, sink, progress)
    }

    fn request_download(&mut self, name: &Name, resume: Option<&(u64, Xxh3)>) -> Result<()> {
        let request = match resume {
            None => Request::Get {
                name: name.to_string(),
            },
            Some((offset, prefix)) => Request::GetFrom {
                name: name.to_string(),
                offset: *offset,
                prefix: prefix.digest128().to_be_bytes(),
            },
        };
        self.with_conn(|conn, _| conn.send(&request))
    }

    /// Receives the answer to a download request sent earlier.
    fn receive_download(
        &mut self,
        name: &Name,
        resume: Option<(u64, Xxh3)>,
        sink: Sink<'_>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Received> {
        // Bytes a partial already holds; if the server refuses them, they are dropped.
        let had = resume.as_ref().map_or(0, |r| r.0);
        self.with_conn(|conn, config| {
            let (size, offset, prefix) =
                match (conn.expect("before answering the download")?, resume) {
                    (Response::File { size, .. }, None) => (size, 0, Xxh3::new()),
                    (Response::FileFrom { size, offset, .. }, _) if offset > size => {
                        return Err(Error::Protocol(format!(
                            "the server resumes at byte {offset} of a {size}-byte file"
                        )));
                    }
                    (Response::FileFrom { size, offset, .. }, Some((have, prefix)))
                        if offset == have =>
                    {
                        (size, offset, prefix)
                    }
                    (
                        Response::FileFrom {
                            size, offset: 0, ..
                        },
                        Some(_),
                    ) => (size, 0, Xxh3::new()),
                    (Response::FileFrom { offset, .. }, Some((have, _))) => {
                        return Err(Error::Protocol(format!(
                            "the server resumes at byte {offset}, we have {have}"
                        )));
                    }
                    (other, _) => return Err(unexpected(other, "file")),
                };
            let writer: &mut dyn Write = match sink {
                Sink::Writer(writer) => writer,
                Sink::Dir(dir, upload) => {
                    if offset < had {
                        upload.restart()?;
                    }
                    // The body is already on its way: refusing now means giving up the connection.
                    dir.check_space(name, size - offset)
                        .map_err(|e| Error::Abandoned(Box::new(e)))?;
                    upload
                }
            };
            progress(Progress {
                done: offset,
                total: size,
            });
            let mut each = |done| progress(Progress { done, total: size });
            let mut hooks = Hooks {
                progress: Some(&mut each),
                cancel: config.cancel.as_deref(),
            };
            let span = Span { name, size, offset };
            transfer::recv_body(conn, Side::Server, span, writer, prefix, &mut hooks)
        })
    }

    /// Uploads many files over this connection, pipelining the small ones (at most
    /// [`MAX_PIPELINED`] bytes): up to [`PIPELINE_WINDOW`] are in flight, and the server
    /// commits them in groups, each still verified and durable before it is acknowledged.
    /// Larger files go one at a time, with progress. `done(i, result)` reports file `i`
    /// (as [`Client::put`] would), in order.
    pub fn put_many(
        &mut self,
        files: &[(std::path::PathBuf, String)],
        mut progress: impl FnMut(usize, Progress),
        mut done: impl FnMut(usize, Result<u64>),
    ) {
        let mut window = VecDeque::new();
        for (i, (path, name)) in files.iter().enumerate() {
            let (mut file, size) = match validate_name(name).and_then(|()| open_local(path)) {
                Ok(local) => local,
                Err(e) => {
                    self.settle_puts(&mut window, 0, &mut done);
                    done(i, Err(e));
                    continue;
                }
            };
            if size > MAX_PIPELINED || self.version < RESUME_VERSION {
                self.settle_puts(&mut window, 0, &mut done);
                done(i, self.put_reader(file, size, name, |p| progress(i, p)));
                continue;
            }
            self.settle_puts(&mut window, PIPELINE_WINDOW - 1, &mut done);
            progress(
                i,
                Progress {
                    done: 0,
                    total: size,
                },
            );
            let sent = self.with_conn(|conn, config| {
                conn.send(&Request::PutPipelined {
                    name: name.clone(),
                    size,
                })?;
                let mut hooks = Hooks {
                    progress: None,
                    cancel: config.cancel.as_deref(),
                };
                let digest = Digest::Running(Box::default());
                let span = Span::whole(name, size);
                transfer::send_body(conn, span, &mut file, digest, config.chunk_size, &mut hooks)
            });
            match sent {
                // Sent is not stored: the verdict says how many bytes count.
                Ok(_) => window.push_back((i, size, None)),
                // Aborted in step: the server's answer comes in order; ours is the reason.
                Err(e) if !e.breaks_connection() => window.push_back((i, size, Some(e))),
                Err(e) => {
                    self.settle_puts(&mut window, 0, &mut done);
                    done(i, Err(e));
                }
            }
        }
        self.settle_puts(&mut window, 0, &mut done);
    }

    /// Reads verdicts of pipelined uploads until at most `keep` are outstanding.
    fn settle_puts(
        &mut self,
        window: &mut VecDeque<(usize, u64, Option<Error>)>,
        keep: usize,
        done: &mut dyn FnMut(usize, Result<u64>),
    ) {
        while window.len() > keep {
            let Some((i, size, local)) = window.pop_front() else {
                return;
            };
            let verdict = self.with_conn(|conn, _| {
                match conn.expect("before answering a pipelined upload")? {
                    Response::Stored { size: stored } if stored == size => Ok(size),
                    Response::Stored { size: stored } => Err(Error::Protocol(format!(
                        "the server stored {stored} bytes of {size}"
                    ))),
                    other => Err(unexpected(other, "stored")),
                }
            });
            done(i, local.map_or(verdict, Err));
        }
    }

    /// Downloads many files into `dir` over this connection: requests go out up to
    /// [`PIPELINE_WINDOW`] ahead of the bodies being read, and verified files are made
    /// durable and published in groups. Each file has the promises of [`Client::get`];
    /// `done(i, result)` reports file `i`, in order.
    pub fn get_many(
        &mut self,
        names: &[String],
        dir: &DirStore,
        overwrite: bool,
        mut progress: impl FnMut(usize, Progress),
        mut done: impl FnMut(usize, Result<u64>),
    ) {
        // Requested downloads (or why one could not be requested), oldest first.
        let mut window: VecDeque<(usize, Result<(Name, DirUpload)>)> = VecDeque::new();
        // Received ones (or why they failed), waiting for the group commit.
        let mut group: Vec<(usize, Outcome)> = Vec::new();
        let mut next = 0;
        loop {
            while window.len() < PIPELINE_WINDOW && next < names.len() {
                let i = next;
                next += 1;
                let asked = Name::new(&names[i]).and_then(|name| {
                    let upload = dir.create_file(&name, overwrite)?;
                    self.request_download(&name, None)?;
                    Ok((name, upload))
                });
                window.push_back((i, asked));
            }
            let Some((i, asked)) = window.pop_front() else {
                break;
            };
            let mut each = |p| progress(i, p);
            let received = asked.and_then(|(name, mut upload)| {
                self.receive_download(&name, None, Sink::Dir(dir, &mut upload), &mut each)
                    .map(|got| (Box::new(upload) as Box<dyn PendingFile>, got.bytes))
            });
            group.push((i, received));
            let held: u64 = group
                .iter()
                .filter_map(|(_, r)| r.as_ref().ok().map(|(_, size)| *size))
                .sum();
            if group.len() >= GROUP_MAX || held >= GROUP_BYTES || window.is_empty() {
                commit_downloads(dir, &mut group, &mut done);
            }
        }
        commit_downloads(dir, &mut group, &mut done);
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

    fn require(&self, version: u32, what: &'static str) -> Result<()> {
        if self.conn.is_some() && self.version < version {
            return Err(Error::Unsupported(what, self.version));
        }
        Ok(())
    }

    /// Runs one exchange on the open connection; an error that breaks it releases the
    /// socket at once, so the server is not left writing into a connection nobody reads.
    fn with_conn<T>(
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

/// Makes the verified downloads of a group durable and visible at once, then reports
/// every file of the group, failed ones included, in order.
fn commit_downloads(
    dir: &DirStore,
    group: &mut Vec<(usize, Outcome)>,
    done: &mut dyn FnMut(usize, Result<u64>),
) {
    for (i, result) in commit_outcomes(dir, std::mem::take(group)) {
        done(i, result);
    }
}

/// Opens a local file to upload: the file and its size.
fn open_local(path: &Path) -> Result<(File, u64)> {
    let file = File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::NotFound {
            name: path.display().to_string(),
            why: Missing::Local,
        },
        _ => Error::io(format!("opening {}", path.display()), e),
    })?;
    let meta = file
        .metadata()
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    if !meta.is_file() {
        return Err(Error::NotFound {
            name: path.display().to_string(),
            why: Missing::NotRegular,
        });
    }
    Ok((file, meta.len()))
}

/// Sends an upload's body (`span`) and reads the server's verdict.
fn upload_body(
    conn: &mut Connection,
    config: &ClientConfig,
    span: Span<'_>,
    reader: &mut dyn Read,
    digest: Digest,
    progress: &mut dyn FnMut(u64),
) -> Result<u64> {
    let Span { size, offset, .. } = span;
    progress(offset);
    let mut hooks = Hooks {
        progress: Some(progress),
        cancel: config.cancel.as_deref(),
    };
    let sent = transfer::send_body(conn, span, reader, digest, config.chunk_size, &mut hooks);
    match sent {
        Ok(_) => {}
        Err(e) if !e.breaks_connection() => {
            // We aborted the body; the server confirms with an error response.
            match conn.expect("after an aborted upload")? {
                Response::Error { .. } => {}
                other => return Err(unexpected(other, "error")),
            }
            return Err(e);
        }
        // The server stopped reading: it may have said why before it closed.
        Err(e @ Error::Network { .. }) => {
            return match conn.recv::<Response>() {
                Ok(Some(Response::Error { kind, message })) => Err(Error::Abandoned(Box::new(
                    Side::Server.remote(kind, message),
                ))),
                _ => Err(e),
            };
        }
        Err(e) => return Err(e),
    }
    match conn.expect("before confirming the upload")? {
        Response::Stored { size: stored } if stored == size => Ok(size - offset),
        Response::Stored { size: stored } => Err(Error::Protocol(format!(
            "the server stored {stored} bytes of {size}"
        ))),
        other => Err(unexpected(other, "stored")),
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
