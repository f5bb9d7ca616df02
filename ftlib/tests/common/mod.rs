//! Shared harness: a real server on 127.0.0.1:0 in its own thread, serving a temporary
//! directory, and a raw peer that speaks frames directly for hostile cases. Helpers every
//! package's tests use (noise, digests, directory listings) come from `ft-testutil`.

#![allow(dead_code)]

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ft_testutil::temp_files;
use ftlib::connection::Connection;
use ftlib::protocol::{Hello, Request, Response};
use ftlib::store::DirStore;
use ftlib::{Client, ClientConfig, Fingerprint, Report, Server, ServerConfig, ShutdownHandle};
use tempfile::TempDir;

/// A server running in-process on loopback; shut down and joined on drop.
pub struct TestServer {
    pub dir: TempDir,
    pub addr: SocketAddr,
    /// The identity's fingerprint, `None` when plain.
    pub fingerprint: Option<Fingerprint>,
    pub reports: Arc<Mutex<Vec<Report>>>,
    stop: ShutdownHandle,
    thread: Option<JoinHandle<ftlib::Result<()>>>,
}

impl TestServer {
    pub fn start() -> TestServer {
        TestServer::with_config(ServerConfig::default())
    }

    pub fn with_config(config: ServerConfig) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        TestServer::serving(dir, config)
    }

    /// Serves `dir` in plain (these tests speak frames directly; TLS has its own tests, in
    /// `tls.rs`).
    pub fn serving(dir: TempDir, mut config: ServerConfig) -> TestServer {
        config.plain = true;
        TestServer::on("127.0.0.1:0".parse().expect("address"), dir, config)
    }

    /// Serves a new temporary directory over TLS, with a new identity unless `config`
    /// names one.
    pub fn secure(config: ServerConfig) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        TestServer::on("127.0.0.1:0".parse().expect("address"), dir, config)
    }

    /// Serves `dir` on `addr` (port 0: a free one) as `config` says, TLS unless plain.
    pub fn on(addr: SocketAddr, dir: TempDir, config: ServerConfig) -> TestServer {
        let listener = ftlib::listen(addr).expect("bind loopback");
        let store = DirStore::open(dir.path()).expect("store");
        let server = Server::new(listener, store, config).expect("server");
        let addr = server.local_addr().expect("addr");
        let fingerprint = server.fingerprint();
        let stop = server.shutdown_handle();
        let reports = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&reports);
        let thread = std::thread::spawn(move || {
            server.run(move |r| sink.lock().expect("reports").push(r.clone()))
        });
        TestServer {
            dir,
            addr,
            fingerprint,
            reports,
            stop,
            thread: Some(thread),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// A client trusting exactly this server (by its fingerprint), or plain for a plain one.
    pub fn client(&self) -> Client {
        let mut config = quick_config();
        if let Some(fp) = self.fingerprint {
            config.trust = ftlib::Trust::Pinned(fp);
        }
        Client::connect(self.addr, config).expect("connect")
    }

    pub fn write(&self, name: &str, data: &[u8]) -> PathBuf {
        let path = self.root().join(name);
        fs::write(&path, data).expect("write served file");
        path
    }

    /// Stops the server and waits for it, returning what `run` returned.
    pub fn stop(&mut self) -> ftlib::Result<()> {
        self.stop.shutdown();
        self.thread
            .take()
            .expect("running")
            .join()
            .expect("server thread panicked")
    }

    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.stop.clone()
    }

    /// Waits until the server has made `n` reports (they are made after the reply is sent).
    pub fn wait_reports(&self, n: usize) -> Vec<Report> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let reports = self.reports.lock().expect("reports").clone();
            if reports.len() >= n || Instant::now() > deadline {
                return reports;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.stop.shutdown();
            let _ = thread.join();
        }
    }
}

pub fn quick_config() -> ClientConfig {
    let mut config = ClientConfig::trusting(ftlib::Trust::Plain);
    config.timeout = Duration::from_secs(10);
    config
}

/// Waits (bounded) until no temporary file is left in `dir`: the server removes it when
/// the failed request's thread gets there, which may be just after the reply.
pub fn assert_no_temp_files(dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !temp_files(dir).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        temp_files(dir),
        Vec::<String>::new(),
        "temporary files left"
    );
}

/// A peer that speaks raw frames: for sending what a well-behaved client never would.
pub struct RawPeer {
    pub conn: Connection,
    stream: TcpStream,
}

impl RawPeer {
    /// Connects and completes the handshake.
    pub fn connect(addr: SocketAddr) -> RawPeer {
        RawPeer::connect_silent(addr).greeted()
    }

    /// Connects from the local address `from` (another loopback address, 127.0.0.2…)
    /// and completes the handshake.
    pub fn connect_from(addr: SocketAddr, from: std::net::IpAddr) -> RawPeer {
        use socket2::{Domain, SockAddr, Socket, Type};
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None).expect("socket");
        socket
            .bind(&SockAddr::from(SocketAddr::new(from, 0)))
            .expect("bind the source address");
        socket.connect(&SockAddr::from(addr)).expect("connect");
        RawPeer::over(socket.into()).greeted()
    }

    /// Reads the server's hello and answers with ours.
    fn greeted(mut self) -> RawPeer {
        match self.conn.recv_hello::<Response>().expect("server hello") {
            Response::Hello(_) => {}
            other => panic!("expected hello, got {other:?}"),
        }
        self.conn
            .send(&Request::Hello(Hello::ours()))
            .expect("send hello");
        self
    }

    /// Connects without any handshake.
    pub fn connect_silent(addr: SocketAddr) -> RawPeer {
        RawPeer::over(TcpStream::connect(addr).expect("connect"))
    }

    fn over(stream: TcpStream) -> RawPeer {
        RawPeer {
            conn: Connection::tcp(stream.try_clone().expect("clone"), Duration::from_secs(10))
                .expect("conn"),
            stream,
        }
    }

    /// A handle on the socket, for writing raw bytes between frames.
    pub fn conn_stream(&self) -> TcpStream {
        self.stream.try_clone().expect("clone")
    }

    pub fn send<T: serde::Serialize>(&mut self, msg: &T) {
        self.conn.send(msg).expect("send");
    }

    pub fn recv(&mut self) -> Response {
        self.conn
            .expect::<Response>("a response")
            .expect("response")
    }

    /// True when the server closed the connection (end of stream or reset) within 10 s.
    pub fn closed_by_server(&mut self) -> bool {
        matches!(
            self.conn.recv::<Response>(),
            Ok(None) | Err(ftlib::Error::Closed(_)) | Err(ftlib::Error::Network { .. })
        )
    }
}

/// Writes raw bytes on a fresh TCP connection after reading the server's greeting, and
/// returns everything the server sent afterwards until it closed the connection.
pub fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut greeting = [0u8; 4];
    stream.read_exact(&mut greeting).expect("greeting header");
    let len = u32::from_be_bytes(greeting) as usize;
    let mut rest = vec![0u8; len];
    stream.read_exact(&mut rest).expect("greeting");
    let _ = stream.write_all(bytes);
    // Half-close: a server waiting for the rest of a frame sees the end at once.
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    out
}
