//! Rule 3 of docs/ARCHITECTURE.md, proven: a real TLS 1.3 stream (rustls over TCP, a
//! self-signed rcgen certificate) becomes a `Transport` here, outside ftlib, and is handed to
//! `Connection::new` as it is. ft's frames cross it unchanged, the bytes on the wire are TLS
//! records rather than frames, and a plain peer meeting a TLS one fails fast.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use ft_testutil::{DEADLINE, digest, noise, wait_until};
use ftlib::protocol::{Body, DEFAULT_CHUNK, DIGEST_LEN, Hello, Request, Response};
use ftlib::{Connection, Error, Transport};
use rustls::crypto::ring::default_provider;
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer, ServerName};
use rustls::version::TLS13;
use rustls::{
    ClientConfig, ClientConnection, ConnectionCommon, ProtocolVersion, RootCertStore, ServerConfig,
    ServerConnection, SideData, StreamOwned,
};

/// The per-frame timeout of the exchanges that should succeed.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The name the certificate is issued for, and the one the client checks.
const HOST: &str = "localhost";

/// An upload's name, distinctive enough to look for in a capture of the wire.
const NAME: &str = "tls-proof-secret-name.bin";

/// A TLS stream over TCP, either side of it, as an ft [`Transport`].
#[derive(Debug)]
struct Tls<C>(StreamOwned<C, TcpStream>);

impl<C, S> Tls<C>
where
    C: DerefMut + Deref<Target = ConnectionCommon<S>>,
    S: SideData,
{
    /// Runs the handshake to its end and tells the protocol version agreed. Without this the
    /// handshake happens inside the first read or write, as `Connection` makes them.
    fn handshake(&mut self) -> io::Result<Option<ProtocolVersion>> {
        let StreamOwned { conn, sock } = &mut self.0;
        while conn.is_handshaking() {
            conn.complete_io(sock)?;
        }
        // The client's Finished may still be waiting to go out.
        self.0.flush()?;
        Ok(self.0.conn.protocol_version())
    }

    /// Sends close_notify without driving an unfinished handshake (which would wait for the
    /// peer), so closing a connection whose handshake failed is immediate.
    fn notify_close(&mut self) -> io::Result<()> {
        let StreamOwned { conn, sock } = &mut self.0;
        conn.send_close_notify();
        while conn.wants_write() {
            if conn.write_tls(sock)? == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
        }
        sock.flush()
    }
}

impl<C, S> Read for Tls<C>
where
    C: DerefMut + Deref<Target = ConnectionCommon<S>>,
    S: SideData,
{
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl<C, S> Write for Tls<C>
where
    C: DerefMut + Deref<Target = ConnectionCommon<S>>,
    S: SideData,
{
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    // StreamOwned has only the default (first slice only); Stream keeps a chunk's header
    // and data in one write, as `send_chunk` intends.
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let StreamOwned { conn, sock } = &mut self.0;
        rustls::Stream::new(conn, sock).write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<C, S> Transport for Tls<C>
where
    C: DerefMut + Deref<Target = ConnectionCommon<S>> + Send,
    S: SideData,
{
    fn set_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.0.sock.set_timeout(timeout)
    }

    fn input_ready(&mut self) -> bool {
        match self.0.conn.process_new_packets() {
            // Plaintext rustls already decrypted, or the peer's close_notify: a read returns
            // at once without touching the socket.
            Ok(state) if state.plaintext_bytes_to_read() > 0 || state.peer_has_closed() => true,
            // A broken record: the next read reports it at once.
            Err(_) => true,
            // Nothing whole inside rustls: what is waiting is on the socket.
            Ok(_) => self.0.sock.input_ready(),
        }
    }

    fn shutdown(&mut self, how: Shutdown) -> io::Result<()> {
        // close_notify first, so the peer reads a clean end rather than a truncation; the
        // socket is shut down even if it cannot be sent.
        let notified = match how {
            Shutdown::Read => Ok(()),
            Shutdown::Write | Shutdown::Both => self.notify_close(),
        };
        let shut = self.0.sock.shutdown(how);
        notified.and(shut)
    }
}

/// A self-signed certificate, and the configurations of a server presenting it and of a
/// client trusting exactly it; TLS 1.3 only, with the ring provider picked here rather than
/// as a process-wide default.
struct Pki {
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
}

impl Pki {
    fn new() -> Pki {
        let rcgen::CertifiedKey { cert, signing_key } =
            rcgen::generate_simple_self_signed(vec![HOST.to_string()]).expect("certificate");
        let cert: CertificateDer<'static> = cert.der().clone();
        let key = PrivatePkcs8KeyDer::from(signing_key.serialize_der());
        let server = ServerConfig::builder_with_provider(Arc::new(default_provider()))
            .with_protocol_versions(&[&TLS13])
            .expect("ring speaks TLS 1.3")
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key.into())
            .expect("server certificate");
        let mut roots = RootCertStore::empty();
        roots.add(cert).expect("trust the certificate");
        let client = ClientConfig::builder_with_provider(Arc::new(default_provider()))
            .with_protocol_versions(&[&TLS13])
            .expect("ring speaks TLS 1.3")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Pki {
            server: Arc::new(server),
            client: Arc::new(client),
        }
    }
}

/// A listener on a free loopback port, and its address.
fn bind() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    (listener, addr)
}

/// Accepts one connection and wraps it as the server side of TLS (no handshake yet; reads
/// and writes bounded by [`TIMEOUT`]).
fn accept_tls(
    listener: &TcpListener,
    config: Arc<ServerConfig>,
) -> (Tls<ServerConnection>, SocketAddr) {
    let (sock, peer) = listener.accept().expect("accept");
    sock.set_nodelay(true).expect("nodelay");
    let conn = ServerConnection::new(config).expect("server connection");
    let mut tls = Tls(StreamOwned::new(conn, sock));
    tls.set_timeout(Some(TIMEOUT)).expect("timeout");
    (tls, peer)
}

/// Connects to `addr` as the client side of TLS for [`HOST`] (no handshake yet; reads and
/// writes bounded by [`TIMEOUT`]).
fn connect_tls(addr: SocketAddr, config: Arc<ClientConfig>) -> Tls<ClientConnection> {
    let sock = TcpStream::connect(addr).expect("connect");
    sock.set_nodelay(true).expect("nodelay");
    let name = ServerName::try_from(HOST).expect("server name");
    let conn = ClientConnection::new(config, name).expect("client connection");
    let mut tls = Tls(StreamOwned::new(conn, sock));
    tls.set_timeout(Some(TIMEOUT)).expect("timeout");
    tls
}

/// What the server side of an upload received.
#[derive(Debug)]
struct Upload {
    hello: Request,
    put: Request,
    chunks: usize,
    bytes: Vec<u8>,
    end_digest: [u8; DIGEST_LEN],
    /// The next `recv` after the answer was `Ok(None)`.
    clean_end: bool,
}

/// The server side of one upload, as ftserver runs it: hello, `Put`, `Ready`, the body,
/// `Stored`; then the client's end.
fn serve_upload(conn: &mut Connection) -> ftlib::Result<Upload> {
    conn.send(&Response::Hello(Hello::ours()))?;
    let hello = conn.recv_hello()?;
    let put = conn.expect("a put")?;
    conn.send(&Response::Ready)?;
    let mut bytes = Vec::new();
    let mut chunks = 0;
    let end_digest = loop {
        match conn.expect::<Body<'_>>("a body frame")? {
            Body::Chunk(data) => {
                bytes.extend_from_slice(data);
                chunks += 1;
            }
            Body::End { digest } => break digest,
            other => return Err(Error::Protocol(format!("unexpected {other:?}"))),
        }
    };
    conn.send(&Response::Stored {
        size: bytes.len() as u64,
    })?;
    let clean_end = conn.recv::<Request>()?.is_none();
    Ok(Upload {
        hello,
        put,
        chunks,
        bytes,
        end_digest,
        clean_end,
    })
}

/// The client side of one upload of `data` as [`NAME`], in chunks of `DEFAULT_CHUNK`,
/// checking each answer; then a graceful close.
fn upload(conn: &mut Connection, data: &[u8]) {
    assert_eq!(
        conn.recv_hello::<Response>().expect("server hello"),
        Response::Hello(Hello::ours())
    );
    conn.send(&Request::Hello(Hello::ours())).expect("hello");
    conn.send(&Request::Put {
        name: NAME.into(),
        size: data.len() as u64,
    })
    .expect("put");
    assert_eq!(
        conn.expect::<Response>("ready").expect("ready"),
        Response::Ready
    );
    for chunk in data.chunks(DEFAULT_CHUNK) {
        conn.send_chunk(chunk).expect("chunk");
    }
    conn.send(&Body::End {
        digest: digest(data),
    })
    .expect("end");
    assert_eq!(
        conn.expect::<Response>("stored").expect("stored"),
        Response::Stored {
            size: data.len() as u64
        }
    );
    conn.close_gracefully();
}

/// Checks what the server received against what the client sent.
fn assert_received(upload: &Upload, data: &[u8]) {
    assert_eq!(upload.hello, Request::Hello(Hello::ours()));
    assert_eq!(
        upload.put,
        Request::Put {
            name: NAME.into(),
            size: data.len() as u64
        }
    );
    assert_eq!(upload.chunks, data.len().div_ceil(DEFAULT_CHUNK));
    assert!(upload.bytes == data, "the bytes received differ");
    assert_eq!(upload.end_digest, digest(data));
    assert_eq!(digest(&upload.bytes), digest(data));
    assert!(upload.clean_end, "the client's close was not a clean end");
}

/// A 3 MiB upload in 256 KiB chunks, over TLS 1.3 as over TCP: every frame, every byte and
/// the digest arrive as sent.
#[test]
fn frames_cross_tls_13_unchanged() {
    let pki = Pki::new();
    let (listener, addr) = bind();
    let data = noise(3 << 20, 13);
    let server = {
        let config = Arc::clone(&pki.server);
        thread::spawn(move || {
            let (mut tls, peer) = accept_tls(&listener, config);
            let version = tls.handshake().expect("server handshake");
            let mut conn = Connection::new(tls, peer, TIMEOUT).expect("server connection");
            (version, serve_upload(&mut conn))
        })
    };
    let mut tls = connect_tls(addr, Arc::clone(&pki.client));
    assert_eq!(
        tls.handshake().expect("client handshake"),
        Some(ProtocolVersion::TLSv1_3)
    );
    let mut conn = Connection::new(tls, addr, TIMEOUT).expect("client connection");
    assert_eq!(conn.peer(), addr);
    upload(&mut conn, &data);
    let (version, received) = server.join().expect("server thread");
    assert_eq!(version, Some(ProtocolVersion::TLSv1_3));
    assert_received(&received.expect("server side"), &data);
}

/// The server's `input_pending` is false on an idle connection and turns true when the
/// client's close_notify arrives; its next `recv` is then a clean end.
#[test]
fn a_graceful_close_is_a_clean_end_over_tls() {
    let pki = Pki::new();
    let (listener, addr) = bind();
    let server = {
        let config = Arc::clone(&pki.server);
        thread::spawn(move || {
            let (mut tls, peer) = accept_tls(&listener, config);
            tls.handshake().expect("server handshake");
            let mut conn = Connection::new(tls, peer, TIMEOUT).expect("server connection");
            conn.send(&Response::Hello(Hello::ours())).expect("hello");
            conn.recv_hello::<Request>().expect("client hello");
            let request = conn.expect::<Request>("a request").expect("list");
            // The client waits for the answer: nothing can be on the way yet.
            let idle = conn.input_pending();
            conn.send(&Response::ListEnd { count: 0 }).expect("answer");
            wait_until("the client's close", || conn.input_pending());
            let end = conn.recv::<Request>();
            conn.close();
            (request, idle, end)
        })
    };
    let mut tls = connect_tls(addr, Arc::clone(&pki.client));
    tls.handshake().expect("client handshake");
    let mut conn = Connection::new(tls, addr, TIMEOUT).expect("client connection");
    conn.recv_hello::<Response>().expect("server hello");
    conn.send(&Request::Hello(Hello::ours())).expect("hello");
    conn.send(&Request::List).expect("list");
    assert_eq!(
        conn.expect::<Response>("an answer").expect("answer"),
        Response::ListEnd { count: 0 }
    );
    conn.close_gracefully();
    let (request, idle, end) = server.join().expect("server thread");
    assert_eq!(request, Request::List);
    assert!(!idle, "input pending on an idle connection");
    assert!(matches!(end, Ok(None)), "{end:?}");
}

/// A relay on 127.0.0.1:0 in front of `target` for one connection, keeping a copy of every
/// byte the client sent; it ends when both sides have closed.
fn recording_relay(target: SocketAddr) -> (SocketAddr, JoinHandle<Vec<u8>>) {
    let (listener, addr) = bind();
    let relay = thread::spawn(move || {
        let (client, _) = listener.accept().expect("relay accept");
        let server = TcpStream::connect(target).expect("relay connect");
        for sock in [&client, &server] {
            sock.set_read_timeout(Some(DEADLINE))
                .expect("relay timeout");
        }
        let (back_from, back_to) = (
            server.try_clone().expect("clone"),
            client.try_clone().expect("clone"),
        );
        let back = thread::spawn(move || copy(back_from, back_to, &mut Vec::new()));
        let mut sent = Vec::new();
        copy(client, server, &mut sent);
        back.join().expect("relay back");
        sent
    });
    (addr, relay)
}

/// Copies `from` to `to` until either ends, keeping a copy in `seen`, then passes the end on.
fn copy(mut from: TcpStream, mut to: TcpStream, seen: &mut Vec<u8>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                seen.extend_from_slice(&buf[..n]);
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// True when `needle` occurs anywhere in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The same upload through a recording relay, once over plain TCP and once over TLS: the
/// plain capture holds the name and the file's bytes, the TLS capture neither.
#[test]
fn the_wire_carries_tls_records_not_frames() {
    let pki = Pki::new();
    let data = noise(1 << 20, 17);
    let needles: Vec<(&str, &[u8])> = vec![
        ("the name", NAME.as_bytes()),
        ("the file's first bytes", &data[..32]),
        ("bytes from the middle", &data[500_000..500_032]),
        ("the file's last bytes", &data[data.len() - 32..]),
    ];
    for tls in [false, true] {
        let (listener, target) = bind();
        let (addr, relay) = recording_relay(target);
        let server = {
            let config = Arc::clone(&pki.server);
            thread::spawn(move || {
                if tls {
                    let (mut stream, peer) = accept_tls(&listener, config);
                    stream.handshake().expect("server handshake");
                    let mut conn = Connection::new(stream, peer, TIMEOUT).expect("connection");
                    serve_upload(&mut conn)
                } else {
                    let (sock, _) = listener.accept().expect("accept");
                    serve_upload(&mut Connection::tcp(sock, TIMEOUT).expect("connection"))
                }
            })
        };
        let mut conn = if tls {
            let mut stream = connect_tls(addr, Arc::clone(&pki.client));
            stream.handshake().expect("client handshake");
            Connection::new(stream, addr, TIMEOUT).expect("client connection")
        } else {
            Connection::tcp(TcpStream::connect(addr).expect("connect"), TIMEOUT)
                .expect("client connection")
        };
        upload(&mut conn, &data);
        drop(conn);
        assert_received(
            &server.join().expect("server thread").expect("server side"),
            &data,
        );
        let wire = relay.join().expect("relay");
        assert!(wire.len() > data.len(), "only {} bytes relayed", wire.len());
        for (what, needle) in &needles {
            assert_eq!(
                contains(&wire, needle),
                !tls,
                "{what} on the wire, tls: {tls}"
            );
        }
        // A TLS connection opens with a handshake record (content type 22).
        assert_eq!(wire.first() == Some(&22), tls, "first byte, tls: {tls}");
    }
}

/// What rustls reports for a record it refuses or a fatal alert from the peer.
fn invalid_data(e: &Error) -> bool {
    matches!(e, Error::Network { source, .. } if source.kind() == io::ErrorKind::InvalidData)
}

/// The client of a mismatched pair.
enum Client {
    Plain,
    Tls(Arc<ClientConfig>),
}

/// The server of a mismatched pair.
enum Server {
    Plain,
    Tls(Arc<ServerConfig>),
}

/// One row per pair of peers that cannot understand each other: both ends fail with the
/// error a user would see, the client long before its own timeout. The TLS server (its
/// handshake left to its first write, inside `Connection`) waits only `SHORT` for a
/// ClientHello.
#[test]
fn mismatched_peers_fail_fast() {
    const SHORT: Duration = Duration::from_millis(300);
    type Check = fn(&Error) -> bool;
    let pki = Pki::new();
    let stranger = Pki::new();
    let rows: [(&str, Client, Server, Check, Check); 3] = [
        (
            "a plain client, a TLS server",
            Client::Plain,
            Server::Tls(Arc::clone(&pki.server)),
            |e| matches!(e, Error::Closed("before saying hello")),
            |e| matches!(e, Error::Timeout(t) if *t == SHORT),
        ),
        (
            "a TLS client, a plain server",
            Client::Tls(Arc::clone(&pki.client)),
            Server::Plain,
            invalid_data,
            |e| matches!(e, Error::Protocol(m) if m.contains("it began with bytes 16 03")),
        ),
        (
            "a TLS client trusting another certificate",
            Client::Tls(Arc::clone(&stranger.client)),
            Server::Tls(Arc::clone(&pki.server)),
            |e| invalid_data(e) && e.to_string().contains("invalid peer certificate"),
            invalid_data,
        ),
    ];
    for (what, client, server, client_check, server_check) in rows {
        let (listener, addr) = bind();
        let server = thread::spawn(move || {
            let mut conn = match server {
                Server::Plain => {
                    let (sock, _) = listener.accept().expect("accept");
                    Connection::tcp(sock, SHORT).expect("server connection")
                }
                Server::Tls(config) => {
                    let (tls, peer) = accept_tls(&listener, config);
                    Connection::new(tls, peer, SHORT).expect("server connection")
                }
            };
            conn.send(&Response::Hello(Hello::ours()))?;
            conn.recv_hello::<Request>()
        });
        let started = Instant::now();
        let mut conn = match client {
            Client::Plain => Connection::tcp(TcpStream::connect(addr).expect("connect"), TIMEOUT),
            Client::Tls(config) => Connection::new(connect_tls(addr, config), addr, TIMEOUT),
        }
        .expect("client connection");
        let got = conn.recv_hello::<Response>();
        let took = started.elapsed();
        drop(conn);
        match &got {
            Err(e) => assert!(client_check(e), "{what}: the client got {e:?}"),
            Ok(hello) => panic!("{what}: the client read a hello: {hello:?}"),
        }
        assert!(
            took < SHORT + Duration::from_secs(1),
            "{what}: took {took:?}"
        );
        match server.join().expect("server thread") {
            Err(e) => assert!(server_check(&e), "{what}: the server got {e:?}"),
            Ok(hello) => panic!("{what}: the server read a hello: {hello:?}"),
        }
    }
}

/// The transport's own promise, which a `Connection` on top cannot show (its read buffer
/// takes all rustls holds): a byte rustls decrypted but nobody read yet counts as input,
/// though the socket is empty; so does the peer's close_notify.
#[test]
fn input_ready_counts_what_rustls_holds() {
    let pki = Pki::new();
    let (listener, addr) = bind();
    let mut client = connect_tls(addr, Arc::clone(&pki.client));
    let server = thread::spawn(move || {
        let (mut tls, _) = accept_tls(&listener, Arc::clone(&pki.server));
        tls.handshake().expect("server handshake");
        tls
    });
    client.handshake().expect("client handshake");
    let mut server = server.join().expect("server thread");
    assert!(!server.input_ready(), "input on an idle connection");

    client.write_all(b"ab").expect("write");
    client.flush().expect("flush");
    wait_until("the record", || server.input_ready());
    let mut byte = [0u8; 1];
    server.read_exact(&mut byte).expect("read a");
    assert_eq!(&byte, b"a");
    assert!(
        server.input_ready(),
        "b, decrypted inside rustls, does not count"
    );
    server.read_exact(&mut byte).expect("read b");
    assert_eq!(&byte, b"b");
    assert!(!server.input_ready(), "input after everything was read");

    client.shutdown(Shutdown::Write).expect("close_notify");
    wait_until("the close", || server.input_ready());
    assert_eq!(server.read(&mut byte).expect("clean end"), 0);
}
