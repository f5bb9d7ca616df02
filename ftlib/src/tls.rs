//! TLS 1.3 under the framing: the [`Tls`] transport (rustls over TCP), the configurations
//! of both sides (the ring provider picked here, not as a process-wide default; TLS 1.3
//! only; no session tickets), and the opening of a connection in TLS mode: the server's plain
//! greeting that says TLS follows, then the handshake (docs/PROTOCOL.md section 5).

mod identity;
mod verify;

use std::fmt;
use std::io::{self, BufReader, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::crypto::CryptoProvider;
use rustls::crypto::ring::default_provider;
use rustls::pki_types::ServerName;
use rustls::version::TLS13;
use rustls::{ClientConnection, ConnectionCommon, ServerConnection, SideData};

pub(crate) use identity::create_private_dir;
pub use identity::{CERT_FILE, Fingerprint, Identity, KEY_FILE, default_state_dir};

use crate::connection::{Connection, Transport};
use crate::error::{Error, Result, Side};
use crate::protocol::{ErrorKind, Response};

/// The message of a TLS server's greeting; a plain client shows it as the server's refusal.
pub const TLS_GREETING: &str = "this server requires TLS: connect without --plain";

/// Bytes read from the socket at once: rustls asks for 4 KiB per read, which would cost a
/// system call per 4 KiB of a transfer.
const SOCKET_READ: usize = 256 * 1024;

/// The socket under rustls: reads through a buffer, writes straight through.
#[derive(Debug)]
struct Sock(BufReader<TcpStream>);

impl Sock {
    fn new(stream: TcpStream) -> Sock {
        Sock(BufReader::with_capacity(SOCKET_READ, stream))
    }

    fn tcp(&mut self) -> &mut TcpStream {
        self.0.get_mut()
    }
}

impl Read for Sock {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for Sock {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tcp().write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.tcp().write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tcp().flush()
    }
}

/// A TLS stream over TCP, either side of it, as an ft [`Transport`].
pub(crate) struct Tls<C> {
    conn: C,
    sock: Sock,
}

impl<C> fmt::Debug for Tls<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("sock", self.sock.0.get_ref())
            .finish_non_exhaustive()
    }
}

impl<C, S> Tls<C>
where
    C: DerefMut + Deref<Target = ConnectionCommon<S>>,
    S: SideData,
{
    /// Runs the handshake to its end, each read and write bounded by the socket's timeout
    /// and the whole by `deadline`.
    fn handshake(&mut self, deadline: Instant) -> io::Result<()> {
        while self.conn.is_handshaking() {
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the TLS handshake took too long",
                ));
            }
            self.conn.complete_io(&mut self.sock)?;
        }
        // The client's Finished may still be waiting to go out.
        self.flush()
    }

    /// Sends close_notify without driving an unfinished handshake (which would wait for the
    /// peer), so closing a connection whose handshake failed is immediate.
    fn notify_close(&mut self) -> io::Result<()> {
        self.conn.send_close_notify();
        while self.conn.wants_write() {
            if self.conn.write_tls(&mut self.sock)? == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
        }
        self.sock.flush()
    }

    fn stream(&mut self) -> rustls::Stream<'_, C, Sock> {
        rustls::Stream::new(&mut self.conn, &mut self.sock)
    }

    /// True when decrypted bytes, or the peer's end, are waiting inside rustls.
    fn plaintext_ready(&mut self) -> Option<bool> {
        match self.conn.process_new_packets() {
            Ok(state) => Some(state.plaintext_bytes_to_read() > 0 || state.peer_has_closed()),
            // A broken record: the next read reports it at once.
            Err(_) => None,
        }
    }
}

impl<C, S> Read for Tls<C>
where
    C: DerefMut + Deref<Target = ConnectionCommon<S>>,
    S: SideData,
{
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.stream().read(buf) {
            // The peer closed without close_notify (killed, say). Frames delimit themselves
            // and bodies end with a digest, so a cut inside one is still caught above; between
            // frames this is the end of the stream, as over plain TCP.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
            other => other,
        }
    }
}

impl<C, S> Write for Tls<C>
where
    C: DerefMut + Deref<Target = ConnectionCommon<S>>,
    S: SideData,
{
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream().write(buf)
    }

    // Keeps a chunk's header and data in one record where they fit, as `send_chunk` intends.
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.stream().write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream().flush()
    }
}

impl<C, S> Transport for Tls<C>
where
    C: DerefMut + Deref<Target = ConnectionCommon<S>> + Send,
    S: SideData,
{
    fn set_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.sock.tcp().set_timeout(timeout)
    }

    fn input_ready(&mut self) -> bool {
        // Records that carry no data (a key update, say) must not count as input, so what
        // the socket holds is read into rustls, without blocking, until it says.
        loop {
            match self.plaintext_ready() {
                Some(false) => {}
                Some(true) | None => return true,
            }
            let read = if self.sock.0.buffer().is_empty() {
                if !self.sock.tcp().input_ready() {
                    return false;
                }
                if self.sock.tcp().set_nonblocking(true).is_err() {
                    return true;
                }
                let read = self.conn.read_tls(&mut self.sock);
                let _ = self.sock.tcp().set_nonblocking(false);
                read
            } else {
                // Served from the buffer, without touching the socket.
                self.conn.read_tls(&mut self.sock)
            };
            match read {
                // The end of the stream, or an error: a read returns at once.
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(_) => return true,
            }
        }
    }

    fn shutdown(&mut self, how: Shutdown) -> io::Result<()> {
        // close_notify first, so the peer reads a clean end rather than a truncation; the
        // socket is shut down even if it cannot be sent.
        let notified = match how {
            Shutdown::Read => Ok(()),
            Shutdown::Write | Shutdown::Both => self.notify_close(),
        };
        let shut = self.sock.tcp().shutdown(how);
        notified.and(shut)
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(default_provider())
}

/// The server side's configuration: TLS 1.3 only, this identity, no client certificates,
/// no session tickets (nothing to resume, and a ticket arriving after the handshake would
/// look like input on an idle connection).
///
/// # Errors
/// When the key does not fit the certificate.
pub(crate) fn server_config(
    identity: &Identity,
) -> std::result::Result<Arc<rustls::ServerConfig>, rustls::Error> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&TLS13])?
        .with_no_client_auth()
        .with_single_cert(vec![identity.certificate()], identity.private_key())?;
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

/// Opens the server's side of a TLS connection: the plain greeting, then the handshake.
///
/// # Errors
/// [`Error::Tls`] when the handshake fails (a plain client reads the greeting as a refusal
/// and leaves); connection errors.
pub(crate) fn accept(
    stream: TcpStream,
    config: Arc<rustls::ServerConfig>,
    timeout: Duration,
) -> Result<Connection> {
    let peer = stream
        .peer_addr()
        .map_err(|e| Error::io("a new connection", e))?;
    let plain = stream.try_clone().map_err(|e| Error::net(peer, e))?;
    Connection::tcp(plain, timeout)
        .map_err(|e| Error::net(peer, e))?
        .send(&Response::Error {
            kind: ErrorKind::TlsRequired,
            message: TLS_GREETING.to_owned(),
        })?;
    let conn = ServerConnection::new(config).map_err(|e| Error::Tls(e.to_string()))?;
    let mut tls = Tls {
        conn,
        sock: Sock::new(stream),
    };
    tls.handshake(Instant::now() + 2 * timeout)
        .map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof
                if !tls.conn.wants_write() && tls.conn.is_handshaking() =>
            {
                Error::Closed("before starting TLS (a client run with --plain?)")
            }
            _ => tls_failure(&peer, e, timeout),
        })?;
    Connection::new(tls, peer, timeout).map_err(|e| Error::net(peer, e))
}

/// The server presented another certificate than the expected one; nothing was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mismatch {
    pub(crate) expected: Fingerprint,
    pub(crate) found: Fingerprint,
}

/// Opens the client's side of a TLS connection on a fresh socket: reads the server's plain
/// greeting, then runs the handshake, checking the server's certificate against
/// `expected` (any certificate when `None`). Gives the connection and the fingerprint the
/// server presented, or the mismatch that stopped the handshake.
///
/// # Errors
/// [`Error::PlainServer`] when the server greets in plain; [`Error::Remote`] for a refusal
/// (kind `Busy`); [`Error::Tls`] when the handshake fails; connection errors.
pub(crate) fn connect(
    stream: TcpStream,
    host: &str,
    expected: Option<Fingerprint>,
    timeout: Duration,
) -> Result<std::result::Result<(Connection, Fingerprint), Mismatch>> {
    let peer = stream
        .peer_addr()
        .map_err(|e| Error::io("a new connection", e))?;
    let plain = stream.try_clone().map_err(|e| Error::net(peer, e))?;
    // The server sends its greeting and waits: nothing more can be read past it here.
    let greeting = Connection::tcp(plain, timeout)
        .map_err(|e| Error::net(peer, e))?
        .recv_hello::<Response>()?;
    match greeting {
        Response::Error {
            kind: ErrorKind::TlsRequired,
            ..
        } => {}
        Response::Hello(_) => return Err(Error::PlainServer { peer }),
        Response::Error { kind, message } => return Err(Side::Server.remote(kind, message)),
        other => {
            return Err(Error::Protocol(format!(
                "the server began with {} instead of a greeting",
                other.name()
            )));
        }
    }
    let provider = provider();
    let verifier = Arc::new(verify::Pinned::new(expected, Arc::clone(&provider)));
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&TLS13])
        .map_err(|e| Error::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::clone(&verifier) as _)
        .with_no_client_auth();
    let name = ServerName::try_from(host.to_owned())
        .unwrap_or_else(|_| ServerName::IpAddress(peer.ip().into()));
    let conn =
        ClientConnection::new(Arc::new(config), name).map_err(|e| Error::Tls(e.to_string()))?;
    let mut tls = Tls {
        conn,
        sock: Sock::new(stream),
    };
    let shaken = tls.handshake(Instant::now() + 2 * timeout);
    let found = match (verifier.seen(), expected) {
        (Some(found), Some(expected)) if found != expected => {
            let _ = tls.notify_close();
            return Ok(Err(Mismatch { expected, found }));
        }
        (Some(found), _) => found,
        (None, _) => {
            return Err(shaken.err().map_or_else(
                || Error::Tls("the server presented no certificate".into()),
                |e| tls_failure(&peer, e, timeout),
            ));
        }
    };
    shaken.map_err(|e| tls_failure(&peer, e, timeout))?;
    let conn = Connection::new(tls, peer, timeout).map_err(|e| Error::net(peer, e))?;
    Ok(Ok((conn, found)))
}

/// A failed handshake: a timeout or a broken socket as such, anything else as TLS.
fn tls_failure(peer: &std::net::SocketAddr, e: io::Error, timeout: Duration) -> Error {
    match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Error::Timeout(timeout),
        io::ErrorKind::UnexpectedEof => Error::Closed("during the TLS handshake"),
        io::ErrorKind::InvalidData => Error::Tls(e.to_string()),
        _ => Error::net(peer, e),
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::thread;

    use ft_testutil::wait_until;

    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(10);

    /// Both ends of a TLS connection over loopback, past the handshake, made as `accept` and
    /// `connect` make them (without the greeting).
    fn pair() -> (Tls<ClientConnection>, Tls<ServerConnection>) {
        let identity = Identity::generate().expect("identity");
        let config = server_config(&identity).expect("server config");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        let server = thread::spawn(move || {
            let (mut sock, _) = listener.accept().expect("accept");
            sock.set_timeout(Some(TIMEOUT)).expect("timeout");
            let conn = ServerConnection::new(config).expect("server connection");
            let mut tls = Tls {
                conn,
                sock: Sock::new(sock),
            };
            tls.handshake(Instant::now() + TIMEOUT)
                .expect("server handshake");
            tls
        });
        let mut sock = TcpStream::connect(addr).expect("connect");
        sock.set_timeout(Some(TIMEOUT)).expect("timeout");
        let provider = provider();
        let verifier = verify::Pinned::new(Some(identity.fingerprint()), Arc::clone(&provider));
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&TLS13])
            .expect("TLS 1.3")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        let name = ServerName::try_from("ft").expect("name");
        let conn = ClientConnection::new(Arc::new(config), name).expect("client connection");
        let mut client = Tls {
            conn,
            sock: Sock::new(sock),
        };
        client
            .handshake(Instant::now() + TIMEOUT)
            .expect("client handshake");
        (client, server.join().expect("server thread"))
    }

    /// Input is data or the peer's end, wherever it waits (on the socket, or decrypted
    /// inside rustls with the socket empty); a record without data (a key update) is not,
    /// or an idle connection would look busy and a reader would block on it.
    #[test]
    fn input_ready_counts_data_and_ends_not_records_without_data() {
        let (mut client, mut server) = pair();
        assert!(!server.input_ready(), "input on an idle connection");

        client.conn.refresh_traffic_keys().expect("key update");
        client.flush().expect("send the key update");
        wait_until("the key update on the socket", || {
            server.sock.tcp().input_ready()
        });
        assert!(!server.input_ready(), "a key update counts as input");
        assert!(
            !server.sock.tcp().input_ready(),
            "the key update was not taken in"
        );

        client.write_all(b"ab").expect("write");
        client.flush().expect("flush");
        wait_until("the data", || server.input_ready());
        let mut byte = [0u8; 1];
        server.read_exact(&mut byte).expect("read a");
        assert_eq!(&byte, b"a");
        assert!(
            !server.sock.tcp().input_ready(),
            "the record is still on the socket"
        );
        assert!(server.input_ready(), "b, inside rustls, does not count");
        server.read_exact(&mut byte).expect("read b");
        assert!(!server.input_ready(), "input after everything was read");

        // Data still flows after the key update, both ways.
        server.write_all(b"c").expect("answer");
        server.flush().expect("flush");
        client.read_exact(&mut byte).expect("read c");
        assert_eq!(&byte, b"c");

        client.shutdown(Shutdown::Write).expect("close_notify");
        wait_until("the close", || server.input_ready());
        assert_eq!(server.read(&mut byte).expect("clean end"), 0);
    }

    /// A peer gone without close_notify (killed) is input too, and reads as an end.
    #[test]
    fn input_ready_counts_an_end_without_close_notify() {
        let (client, mut server) = pair();
        drop(client);
        wait_until("the end", || server.input_ready());
        let mut byte = [0u8; 1];
        assert_eq!(server.read(&mut byte).expect("an end"), 0);
    }
}
