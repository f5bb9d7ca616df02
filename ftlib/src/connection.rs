//! A framed connection over any byte stream (a [`Transport`]: TCP now, TLS next, an
//! in-memory pipe in tests): reads and writes whole frames, and enforces a deadline on each
//! frame so a silent or dribbling peer cannot hold it forever.

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::codec::{self, HEADER_LEN};
use crate::error::{Error, Result};
use crate::protocol::{MAX_FRAME, MAX_HELLO_FRAME};

#[cfg(test)]
pub(crate) mod mem;

/// Read buffer size; chunks larger than this bypass the buffer.
const READ_BUFFER: usize = 64 * 1024;

/// A byte stream ft frames travel over: TCP now, TLS next, an in-memory pipe in tests.
pub trait Transport: Read + Write + Send {
    /// Bounds each blocking read and write (None: no bound).
    ///
    /// # Errors
    /// When the stream cannot be configured.
    fn set_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()>;

    /// True when a read would not block: bytes are waiting (or the end of the stream is).
    fn input_ready(&mut self) -> bool;

    /// Shuts down writing (the peer reads end of stream) or both directions.
    ///
    /// # Errors
    /// When the stream is no longer connected.
    fn shutdown(&mut self, how: Shutdown) -> io::Result<()>;

    /// Whether [`Transport::send_file`] works here: bytes that go out as they are, on a
    /// plain socket (not through TLS, which must encrypt them). The default: no.
    fn can_send_file(&self) -> bool {
        false
    }

    /// Sends up to `len` bytes of `file` from `offset` without copying them through this
    /// process (`sendfile`); how many went. Called only where
    /// [`Transport::can_send_file`] says so.
    ///
    /// # Errors
    /// As a write; `Unsupported` by default.
    fn send_file(&mut self, file: &File, offset: u64, len: usize) -> io::Result<usize> {
        let _ = (file, offset, len);
        Err(io::ErrorKind::Unsupported.into())
    }
}

impl Transport for TcpStream {
    fn set_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.set_read_timeout(timeout)?;
        self.set_write_timeout(timeout)
    }

    fn input_ready(&mut self) -> bool {
        // One call, asked every request: a peek that does not wait (no switching the socket
        // to non-blocking and back).
        use rustix::net::{RecvFlags, recv};
        !matches!(
            recv(&*self, &mut [0u8; 1], RecvFlags::PEEK | RecvFlags::DONTWAIT),
            Err(e) if e == rustix::io::Errno::AGAIN
        )
    }

    fn shutdown(&mut self, how: Shutdown) -> io::Result<()> {
        TcpStream::shutdown(self, how)
    }

    fn can_send_file(&self) -> bool {
        true
    }

    fn send_file(&mut self, file: &File, offset: u64, len: usize) -> io::Result<usize> {
        let mut at = offset;
        // The socket's send timeout bounds each call, as it bounds a write.
        Ok(rustix::fs::sendfile(&*self, file, Some(&mut at), len)?)
    }
}

/// A transport whose reads and writes fail once the current frame's deadline has passed.
///
/// The transport's own timeout bounds each call; the deadline bounds the frame, so a peer
/// sending one byte just before each timeout is still cut off (after at most two timeouts).
struct Timed {
    transport: Box<dyn Transport>,
    deadline: Option<Instant>,
}

impl Timed {
    fn check(&self) -> io::Result<()> {
        match self.deadline {
            Some(deadline) if Instant::now() > deadline => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "frame deadline passed",
            )),
            _ => Ok(()),
        }
    }
}

impl fmt::Debug for Timed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timed")
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl Read for Timed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.transport.read(buf)?;
        self.check()?;
        Ok(n)
    }
}

impl Write for Timed {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.transport.write(buf)?;
        self.check()?;
        Ok(n)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let n = self.transport.write_vectored(bufs)?;
        self.check()?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.transport.flush()
    }
}

/// Writes `head` then `tail` entirely, with as few system calls as the kernel allows.
fn write_all_vectored(writer: &mut impl Write, head: &[u8], tail: &[u8]) -> io::Result<()> {
    let mut slices = [IoSlice::new(head), IoSlice::new(tail)];
    let mut bufs = &mut slices[..];
    while !bufs.is_empty() {
        match writer.write_vectored(bufs) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Most bytes of frames a connection gathers before writing them out together.
const OUT_MAX: usize = 64 * 1024;

/// One connection carrying ft frames, over any [`Transport`].
///
/// Reads go through a buffer reused across frames. Each frame sent is written to the
/// transport at once, unless the connection gathers ([`Connection::gather`]).
#[derive(Debug)]
pub struct Connection {
    /// The one transport: reads through the buffer, writes through `get_mut()`.
    reader: BufReader<Timed>,
    read_buf: Vec<u8>,
    write_buf: Vec<u8>,
    /// Frames sent and not yet written to the transport.
    out: Vec<u8>,
    /// Whether frames sent are gathered in `out` ([`Connection::gather`]).
    gathering: bool,
    timeout: Duration,
    peer: SocketAddr,
}

impl Connection {
    /// Wraps a connected transport whose other end is `peer`. `timeout` bounds each frame
    /// in either direction.
    ///
    /// # Errors
    /// When the transport's timeout cannot be set.
    pub fn new(
        transport: impl Transport + 'static,
        peer: SocketAddr,
        timeout: Duration,
    ) -> io::Result<Connection> {
        let mut transport: Box<dyn Transport> = Box::new(transport);
        transport.set_timeout(Some(timeout))?;
        let timed = Timed {
            transport,
            deadline: None,
        };
        Ok(Connection {
            reader: BufReader::with_capacity(READ_BUFFER, timed),
            read_buf: Vec::new(),
            write_buf: Vec::new(),
            out: Vec::new(),
            gathering: false,
            timeout,
            peer,
        })
    }

    /// Wraps a connected TCP stream: disables Nagle's algorithm (every frame is flushed
    /// whole, and waiting would only add latency), then as [`Connection::new`].
    ///
    /// # Errors
    /// When the socket cannot be configured or its peer address read.
    pub fn tcp(stream: TcpStream, timeout: Duration) -> io::Result<Connection> {
        let peer = stream.peer_addr()?;
        stream.set_nodelay(true)?;
        Connection::new(stream, peer, timeout)
    }

    /// The address of the other end.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The per-frame timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Encodes `msg` as one frame, writes it and flushes.
    ///
    /// # Errors
    /// [`Error::FrameTooLarge`], [`Error::Timeout`] or [`Error::Network`].
    pub fn send<T: Serialize + ?Sized>(&mut self, msg: &T) -> Result<()> {
        codec::encode_frame(msg, &mut self.write_buf)?;
        self.out.extend_from_slice(&self.write_buf);
        if !self.gathering || self.out.len() >= OUT_MAX {
            return self.flush();
        }
        Ok(())
    }

    /// From now on (`on`), frames sent are gathered, up to [`OUT_MAX`] bytes, and go out
    /// together: before the connection reads (so the peer never waits for what is still
    /// here), on [`Connection::flush`], when the buffer is full, and when the connection
    /// closes or is dropped. A thousand small files then take a few dozen writes instead
    /// of three each. Off: what was gathered goes out now, and each frame at once again.
    ///
    /// # Errors
    /// When turning it off writes out what was gathered, as [`Connection::send`].
    pub fn gather(&mut self, on: bool) -> Result<()> {
        self.gathering = on;
        if on { Ok(()) } else { self.flush() }
    }

    /// Writes out the frames gathered so far ([`Connection`] says when that happens by
    /// itself).
    ///
    /// # Errors
    /// As [`Connection::send`].
    pub fn flush(&mut self) -> Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let writer = self.reader.get_mut();
        writer.deadline = Some(Instant::now() + self.timeout);
        let result = writer.write_all(&self.out).and_then(|()| writer.flush());
        writer.deadline = None;
        // Written, or the connection is broken: either way they are not sent again.
        self.out.clear();
        result.map_err(|e| self.map_io(e))
    }

    /// Sends a `Body::Chunk` of `data` as one frame. A small one is gathered with the
    /// frames around it; a large one is written at once, with the gathered frames before
    /// it, straight from the caller's buffer (one vectored write, no copy).
    ///
    /// # Errors
    /// As [`Connection::send`].
    pub fn send_chunk(&mut self, data: &[u8]) -> Result<()> {
        codec::chunk_prefix(data.len(), &mut self.write_buf)?;
        self.out.extend_from_slice(&self.write_buf);
        if self.gathering && self.out.len() + data.len() < OUT_MAX {
            self.out.extend_from_slice(data);
            return Ok(());
        }
        let writer = self.reader.get_mut();
        writer.deadline = Some(Instant::now() + self.timeout);
        let result = write_all_vectored(writer, &self.out, data).and_then(|()| writer.flush());
        writer.deadline = None;
        self.out.clear();
        result.map_err(|e| self.map_io(e))
    }

    /// Whether file bytes can go out without being copied through this process
    /// ([`Connection::send_chunk_from_file`]): a plain TCP connection, not TLS.
    pub fn can_send_file(&self) -> bool {
        self.reader.get_ref().transport.can_send_file()
    }

    /// Sends a `Body::Chunk` of the `len` bytes of `file` at `offset` as one frame: the
    /// header written, then the bytes sent from the page cache straight to the socket.
    /// Only where [`Connection::can_send_file`]. A file that ends before `offset + len`
    /// leaves the frame cut, so the connection must be given up (it fails as a network
    /// error).
    ///
    /// # Errors
    /// As [`Connection::send`].
    pub fn send_chunk_from_file(&mut self, file: &File, offset: u64, len: usize) -> Result<()> {
        codec::chunk_prefix(len, &mut self.write_buf)?;
        self.out.extend_from_slice(&self.write_buf);
        self.flush()?;
        let writer = self.reader.get_mut();
        writer.deadline = Some(Instant::now() + self.timeout);
        let mut result = Ok(());
        let mut sent = 0;
        while result.is_ok() && sent < len {
            result = match writer
                .transport
                .send_file(file, offset + sent as u64, len - sent)
            {
                Ok(0) => Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the file ended in the middle of a chunk",
                )),
                Ok(n) => {
                    sent += n;
                    writer.check()
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
                Err(e) => Err(e),
            };
        }
        writer.deadline = None;
        result.map_err(|e| self.map_io(e))
    }

    /// Reads the next frame and decodes it. `Ok(None)` is a clean end of stream: the peer
    /// closed the connection between frames.
    ///
    /// # Errors
    /// [`Error::FrameTooLarge`], [`Error::Protocol`], [`Error::Closed`] (end of stream
    /// inside a frame), [`Error::Timeout`] or [`Error::Network`].
    pub fn recv<'a, T: Deserialize<'a>>(&'a mut self) -> Result<Option<T>> {
        match self.read_frame(MAX_FRAME)? {
            Some(payload) => codec::decode(payload).map(Some),
            None => Ok(None),
        }
    }

    /// Like [`Connection::recv`], but an end of stream is an error naming `expected`.
    ///
    /// # Errors
    /// As [`Connection::recv`], and [`Error::Closed`] at end of stream.
    pub fn expect<'a, T: Deserialize<'a>>(&'a mut self, expected: &'static str) -> Result<T> {
        match self.recv()? {
            Some(msg) => Ok(msg),
            None => Err(Error::Closed(expected)),
        }
    }

    /// Reads the peer's first frame, with the small hello limit. A peer whose first bytes are
    /// not an ft frame gets a protocol error naming those bytes.
    ///
    /// # Errors
    /// As [`Connection::expect`].
    pub fn recv_hello<'a, T: Deserialize<'a>>(&'a mut self) -> Result<T> {
        match self.read_frame(MAX_HELLO_FRAME) {
            Ok(Some(payload)) => codec::decode(payload),
            Ok(None) => Err(Error::Closed("before saying hello")),
            Err(Error::FrameTooLarge { len, .. }) => {
                let bytes = u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes();
                Err(Error::Protocol(format!(
                    "the peer does not speak ft (it began with bytes {:02x} {:02x} {:02x} {:02x}, {:?})",
                    bytes[0],
                    bytes[1],
                    bytes[2],
                    bytes[3],
                    String::from_utf8_lossy(&bytes)
                )))
            }
            Err(e) => Err(e),
        }
    }

    /// True when the next frame can be read without waiting: bytes are buffered or
    /// readable on the transport (an end of stream counts, since reading it is immediate).
    pub fn input_pending(&mut self) -> bool {
        !self.reader.buffer().is_empty() || self.reader.get_mut().transport.input_ready()
    }

    /// Closes both directions of the transport (after writing out what was sent).
    pub fn close(&mut self) {
        let _ = self.flush();
        let _ = self.reader.get_mut().transport.shutdown(Shutdown::Both);
    }

    /// Closes without losing the last frame sent: stops sending, then reads and drops what
    /// the peer still sends (at most 1 MiB, 1 s, and 200 ms of silence). Closing with unread
    /// input would reset a TCP connection and could destroy that frame in the peer's queue.
    pub fn close_gracefully(&mut self) {
        let _ = self.flush();
        let transport = &mut self.reader.get_mut().transport;
        let _ = transport.shutdown(Shutdown::Write);
        let _ = transport.set_timeout(Some(Duration::from_millis(200)));
        let deadline = Instant::now() + Duration::from_secs(1);
        let mut sink = [0u8; 16 * 1024];
        let mut drained = 0;
        while drained < 1 << 20 && Instant::now() < deadline {
            match transport.read(&mut sink) {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
        let _ = transport.shutdown(Shutdown::Both);
    }

    fn read_frame(&mut self, limit: usize) -> Result<Option<&[u8]>> {
        // The peer may be waiting for what was sent before it says more.
        self.flush()?;
        self.reader.get_mut().deadline = Some(Instant::now() + self.timeout);
        let result = self.read_frame_inner(limit);
        self.reader.get_mut().deadline = None;
        match result {
            Ok(Some(len)) => Ok(self.read_buf.get(..len)),
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Reads the next payload into the start of `read_buf` and returns its length; `None`
    /// on a clean end of stream. `read_buf` keeps its largest length, so a frame that fits
    /// is read in place without clearing memory first.
    fn read_frame_inner(&mut self, limit: usize) -> Result<Option<usize>> {
        let mut header = [0u8; HEADER_LEN];
        let mut got = 0;
        while got < HEADER_LEN {
            match self.reader.read(&mut header[got..]) {
                Ok(0) if got == 0 => return Ok(None),
                Ok(0) => return Err(Error::Closed("in the middle of a frame header")),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.map_io(e)),
            }
        }
        let len = codec::payload_len(header, limit)?;
        if self.read_buf.capacity() >= len {
            if self.read_buf.len() < len {
                self.read_buf.resize(len, 0);
            }
            self.reader
                .read_exact(&mut self.read_buf[..len])
                .map_err(|e| self.map_io(e))?;
        } else {
            self.read_buf.clear();
            // Grow only as data actually arrives: a header alone cannot make us allocate.
            let n = (&mut self.reader)
                .take(len as u64)
                .read_to_end(&mut self.read_buf)
                .map_err(|e| self.map_io(e))?;
            if n < len {
                return Err(Error::Closed("in the middle of a frame"));
            }
        }
        Ok(Some(len))
    }

    fn map_io(&self, e: io::Error) -> Error {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Error::Timeout(self.timeout),
            _ => Error::net(self.peer, e),
        }
    }
}

impl Drop for Connection {
    /// What was sent still goes out (a last frame before the end).
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::thread;

    use super::mem::{self, MemPipe, PEER, connection_pair};
    use super::*;
    use crate::protocol::{Body, Request, Response};

    const SHORT: Duration = Duration::from_millis(200);

    /// A connection, and the raw other end of its pipe for writing bytes no encoder makes.
    fn raw_pair(timeout: Duration) -> (Connection, MemPipe) {
        let (a, b) = mem::pipe();
        (Connection::new(a, PEER, timeout).expect("connection"), b)
    }

    #[test]
    fn frames_round_trip_both_ways() {
        let (mut a, mut b) = connection_pair(SHORT);
        let put = Request::Put {
            name: "a.txt".into(),
            size: 7,
        };
        a.send(&put).expect("send");
        assert_eq!(b.recv::<Request>().expect("recv"), Some(put));
        b.send(&Response::Stored { size: 7 }).expect("send");
        assert_eq!(
            a.expect::<Response>("an answer").expect("recv"),
            Response::Stored { size: 7 }
        );
        assert_eq!(a.peer(), PEER);
        assert_eq!(a.timeout(), SHORT);
    }

    /// Chunks smaller and larger than the read buffer and than the pipe, and a smaller one
    /// after a larger one (read in place), arrive whole.
    #[test]
    fn chunks_round_trip_whatever_their_size() {
        let sizes = [
            1,
            1000,
            READ_BUFFER,
            READ_BUFFER + 1,
            300_000,
            5,
            crate::protocol::MAX_CHUNK,
        ];
        let (mut a, mut b) = connection_pair(Duration::from_secs(5));
        thread::scope(|s| {
            s.spawn(move || {
                for (i, &len) in sizes.iter().enumerate() {
                    a.send_chunk(&vec![i as u8; len]).expect("send chunk");
                }
            });
            for (i, &len) in sizes.iter().enumerate() {
                match b.expect::<Body<'_>>("a chunk").expect("recv") {
                    Body::Chunk(data) => assert_eq!(data, &vec![i as u8; len][..]),
                    other => panic!("not a chunk: {other:?}"),
                }
            }
            assert_eq!(b.recv::<Body<'_>>().expect("clean end"), None);
        });
    }

    #[test]
    fn a_clean_end_between_frames_is_none() {
        let (mut a, mut b) = connection_pair(SHORT);
        a.send(&Request::List).expect("send");
        a.close();
        assert_eq!(b.recv::<Request>().expect("frame"), Some(Request::List));
        assert_eq!(b.recv::<Request>().expect("clean end"), None);
        assert!(matches!(
            b.expect::<Request>("a request"),
            Err(Error::Closed("a request"))
        ));
        assert!(matches!(
            b.recv_hello::<Request>(),
            Err(Error::Closed("before saying hello"))
        ));
    }

    /// One row per place a stream can end inside a frame: each is `Closed`, never `None`.
    #[test]
    fn an_end_inside_a_frame_is_closed() {
        let mut big = Vec::new();
        codec::encode_frame(&Body::Chunk(&[9u8; 100]), &mut big).expect("encode");
        let rows: [(&str, &[u8], &[u8], &str); 4] = [
            (
                "one header byte",
                &[],
                &[0],
                "in the middle of a frame header",
            ),
            (
                "three header bytes",
                &[],
                &[0, 0, 0],
                "in the middle of a frame header",
            ),
            (
                "payload cut, buffer grown",
                &[],
                &[0, 0, 0, 5, 2],
                "in the middle of a frame",
            ),
            // After a larger frame the buffer is reused in place.
            (
                "payload cut, buffer reused",
                &big,
                &[0, 0, 0, 5, 2],
                "in the middle of a frame",
            ),
        ];
        for (what, before, cut, expected) in rows {
            let (mut conn, mut peer) = raw_pair(SHORT);
            peer.write_all(before).expect("write");
            peer.write_all(cut).expect("write");
            drop(peer);
            if !before.is_empty() {
                assert!(conn.recv::<Body<'_>>().expect(what).is_some(), "{what}");
            }
            match conn.recv::<Request>() {
                Err(Error::Closed(why)) => assert_eq!(why, expected, "{what}"),
                other => panic!("{what}: {other:?}"),
            }
        }
    }

    #[test]
    fn an_oversized_length_is_refused_before_allocation() {
        let (mut conn, mut peer) = raw_pair(SHORT);
        peer.write_all(&u32::MAX.to_be_bytes()).expect("write");
        assert!(matches!(
            conn.recv::<Request>(),
            Err(Error::FrameTooLarge { len, limit: MAX_FRAME }) if len == u64::from(u32::MAX)
        ));
        assert_eq!(conn.read_buf.capacity(), 0, "allocated for a header alone");

        let (mut conn, mut peer) = raw_pair(SHORT);
        let just_over = u32::try_from(MAX_HELLO_FRAME + 1).expect("small");
        peer.write_all(&just_over.to_be_bytes()).expect("write");
        assert!(matches!(
            conn.recv_hello::<Request>(),
            Err(Error::Protocol(m)) if m.contains("does not speak ft (it began with bytes 00 00 04 41")
        ));
        assert_eq!(conn.read_buf.capacity(), 0);
    }

    #[test]
    fn a_silent_peer_times_out() {
        let (mut conn, _peer) = raw_pair(SHORT);
        let started = Instant::now();
        assert!(matches!(conn.recv::<Request>(), Err(Error::Timeout(t)) if t == SHORT));
        let took = started.elapsed();
        assert!(took >= SHORT && took < 5 * SHORT, "{took:?}");
    }

    /// A byte every 50 ms keeps each read well inside the timeout; the frame's deadline
    /// still ends it after about one timeout (the whole frame would take 5 s).
    #[test]
    fn the_frame_deadline_cuts_off_a_dribbling_peer() {
        let (mut conn, mut peer) = raw_pair(SHORT);
        thread::scope(|s| {
            s.spawn(move || {
                for byte in [0, 0, 0, 100].into_iter().chain([1; 100]) {
                    if peer.write_all(&[byte]).is_err() {
                        return;
                    }
                    thread::sleep(Duration::from_millis(50));
                }
            });
            let started = Instant::now();
            let got = conn.recv::<Request>();
            let took = started.elapsed();
            assert!(matches!(got, Err(Error::Timeout(_))), "{got:?}");
            assert!(took >= SHORT && took < 5 * SHORT, "{took:?}");
            drop(conn);
        });
    }

    #[test]
    fn a_peer_that_does_not_read_times_the_sender_out() {
        let (mut a, _b) = connection_pair(SHORT);
        let data = vec![0u8; 4 * mem::CAPACITY];
        let started = Instant::now();
        assert!(matches!(a.send_chunk(&data), Err(Error::Timeout(_))));
        assert!(started.elapsed() < 3 * SHORT);
    }

    #[test]
    fn input_pending_tells_when_a_frame_is_waiting() {
        let (mut a, mut b) = connection_pair(SHORT);
        assert!(!b.input_pending());
        a.send(&Request::List).expect("send");
        assert!(b.input_pending());
        b.recv::<Request>().expect("recv");
        assert!(!b.input_pending());
        // Two frames arrive in one read: the second waits in the buffer.
        a.send(&Request::List).expect("send");
        a.send(&Request::List).expect("send");
        b.recv::<Request>().expect("recv");
        assert!(b.input_pending(), "a buffered frame is pending");
        b.recv::<Request>().expect("recv");
        assert!(!b.input_pending());
        a.close();
        assert!(b.input_pending(), "an end of stream reads at once");
    }

    /// The closing side had unread input; the peer still gets the last frame, then a clean
    /// end, and the close waits only for the peer's silence.
    #[test]
    fn close_gracefully_lets_the_last_frame_arrive() {
        let (mut client, mut server) = connection_pair(Duration::from_secs(5));
        for _ in 0..3 {
            client.send(&Request::List).expect("send");
        }
        let closing = thread::spawn(move || {
            server
                .send(&Response::Error {
                    kind: crate::ErrorKind::Protocol,
                    message: "bye".into(),
                })
                .expect("send");
            let started = Instant::now();
            server.close_gracefully();
            started.elapsed()
        });
        assert!(matches!(
            client.recv::<Response>(),
            Ok(Some(Response::Error { message, .. })) if message == "bye"
        ));
        assert_eq!(client.recv::<Response>().expect("clean end"), None);
        let took = closing.join().expect("closing thread");
        assert!(took < Duration::from_millis(900), "{took:?}");
    }

    /// A peer that never stops sending cannot hold a graceful close for long.
    #[test]
    fn close_gracefully_is_bounded() {
        let (mut conn, mut peer) = raw_pair(Duration::from_secs(5));
        let flooding = thread::spawn(move || while peer.write_all(&[7u8; 4096]).is_ok() {});
        let started = Instant::now();
        conn.close_gracefully();
        assert!(started.elapsed() < Duration::from_millis(1500));
        flooding
            .join()
            .expect("the flood ends once the pipe is closed");
    }

    #[test]
    fn tcp_transport_carries_frames_and_tells_input() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut client =
            Connection::tcp(TcpStream::connect(addr).expect("connect"), SHORT).expect("client");
        let (stream, _) = listener.accept().expect("accept");
        let mut server = Connection::tcp(stream, SHORT).expect("server");
        assert_eq!(client.peer(), addr);
        assert!(!server.input_pending());
        client.send(&Request::List).expect("send");
        client.send_chunk(&[1, 2, 3]).expect("send chunk");
        assert_eq!(server.recv::<Request>().expect("recv"), Some(Request::List));
        assert!(matches!(
            server.recv::<Body<'_>>(),
            Ok(Some(Body::Chunk(&[1, 2, 3])))
        ));
        server.send(&Response::Ready).expect("send");
        server.close_gracefully();
        assert_eq!(
            client.recv::<Response>().expect("recv"),
            Some(Response::Ready)
        );
        assert_eq!(client.recv::<Response>().expect("clean end"), None);
        // The close shut reading down too: the server's own next read ends at once, without
        // waiting for the client (still connected). Unix reads that as a clean end of stream;
        // Windows refuses a read after a receive shutdown (WSAESHUTDOWN), so there the
        // certain part is only that it neither yields a frame nor waits for the timeout.
        let after_close = server.recv::<Request>();
        #[cfg(unix)]
        assert!(matches!(after_close, Ok(None)), "{after_close:?}");
        #[cfg(not(unix))]
        assert!(
            !matches!(after_close, Ok(Some(_)) | Err(Error::Timeout(_))),
            "{after_close:?}"
        );
    }
}
