//! The listening socket: [`listen`] binds with a kernel queue of [`LISTEN_BACKLOG`]
//! connections, larger than the one `TcpListener::bind` asks for.

use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};

/// Connections the kernel queues for [`listen`]'s listener before the server accepts them
/// (Linux clamps it to `net.core.somaxconn`, 4096 by default).
///
/// `TcpListener::bind` asks for 128. When more clients than that connect at once, the
/// kernel drops the excess handshakes or answers them with SYN cookies; a client whose last
/// handshake packet is then dropped believes it is connected, and since an ft client waits
/// for the server's greeting before it sends anything, it waits until its timeout. A queue
/// well above the default connection limit keeps a burst of clients from getting there.
pub const LISTEN_BACKLOG: i32 = 1024;

/// Binds a listener for [`Server::new`](super::Server::new) with a queue of
/// [`LISTEN_BACKLOG`] connections; otherwise as [`TcpListener::bind`] (the first address
/// that binds wins, address reuse on Unix, close-on-exec).
///
/// # Errors
/// When no address resolves, or none can be bound and listened on; the last error is
/// returned.
///
/// # Examples
/// ```
/// let listener = ftlib::listen("127.0.0.1:0")?;
/// assert_ne!(listener.local_addr()?.port(), 0);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn listen(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
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
