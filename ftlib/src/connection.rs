//! A framed connection: owns the socket, reads and writes whole frames, and enforces a
//! deadline on each frame so a silent or dribbling peer cannot hold it forever.

use std::io::{self, BufReader, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::codec::{self, HEADER_LEN};
use crate::error::{Error, Result};
use crate::protocol::{MAX_FRAME, MAX_HELLO_FRAME};

/// Read buffer size; chunks larger than this bypass the buffer.
const READ_BUFFER: usize = 64 * 1024;

/// A socket whose reads and writes fail once the current frame's deadline has passed.
///
/// The socket's own timeout bounds each system call; the deadline bounds the frame, so a
/// peer sending one byte just before each timeout is still cut off (after at most two
/// timeouts).
#[derive(Debug)]
struct Timed {
    stream: TcpStream,
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

impl Read for Timed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.stream.read(buf)?;
        self.check()?;
        Ok(n)
    }
}

impl Write for Timed {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.stream.write(buf)?;
        self.check()?;
        Ok(n)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let n = self.stream.write_vectored(bufs)?;
        self.check()?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
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

/// One TCP connection carrying ft frames.
#[derive(Debug)]
pub struct Connection {
    reader: BufReader<Timed>,
    writer: Timed,
    read_buf: Vec<u8>,
    write_buf: Vec<u8>,
    timeout: Duration,
    peer: SocketAddr,
}

impl Connection {
    /// Wraps a connected stream. `timeout` bounds each frame in either direction.
    ///
    /// # Errors
    /// When the socket cannot be configured or cloned.
    pub fn new(stream: TcpStream, timeout: Duration) -> io::Result<Connection> {
        let peer = stream.peer_addr()?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let reader = Timed {
            stream: stream.try_clone()?,
            deadline: None,
        };
        Ok(Connection {
            reader: BufReader::with_capacity(READ_BUFFER, reader),
            writer: Timed {
                stream,
                deadline: None,
            },
            read_buf: Vec::new(),
            write_buf: Vec::new(),
            timeout,
            peer,
        })
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
        self.writer.deadline = Some(Instant::now() + self.timeout);
        let result = self.writer.write_all(&self.write_buf);
        self.writer.deadline = None;
        result.map_err(|e| self.map_io(e))
    }

    /// Sends a `Body::Chunk` of `data` as one frame, writing the data straight from the
    /// caller's buffer (one vectored write for header and data, no copy).
    ///
    /// # Errors
    /// As [`Connection::send`].
    pub fn send_chunk(&mut self, data: &[u8]) -> Result<()> {
        codec::chunk_prefix(data.len(), &mut self.write_buf)?;
        self.writer.deadline = Some(Instant::now() + self.timeout);
        let result = write_all_vectored(&mut self.writer, &self.write_buf, data);
        self.writer.deadline = None;
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
    /// readable on the socket (an end of stream counts, since reading it is immediate).
    pub fn input_pending(&mut self) -> bool {
        if !self.reader.buffer().is_empty() {
            return true;
        }
        let stream = &self.reader.get_ref().stream;
        if stream.set_nonblocking(true).is_err() {
            return true;
        }
        let ready = !matches!(
            stream.peek(&mut [0u8; 1]),
            Err(ref e) if e.kind() == io::ErrorKind::WouldBlock
        );
        let _ = stream.set_nonblocking(false);
        ready
    }

    /// Closes both directions of the socket.
    pub fn close(&self) {
        let _ = self.writer.stream.shutdown(Shutdown::Both);
    }

    /// Closes without losing the last frame sent: stops sending, then reads and drops what
    /// the peer still sends (at most 1 MiB, 1 s, and 200 ms of silence). Closing with unread
    /// input would reset the connection and could destroy that frame in the peer's queue.
    pub fn close_gracefully(&mut self) {
        let _ = self.writer.stream.shutdown(Shutdown::Write);
        let stream = &mut self.reader.get_mut().stream;
        let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
        let deadline = Instant::now() + Duration::from_secs(1);
        let mut sink = [0u8; 16 * 1024];
        let mut drained = 0;
        while drained < 1 << 20 && Instant::now() < deadline {
            match stream.read(&mut sink) {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
        let _ = stream.shutdown(Shutdown::Both);
    }

    fn read_frame(&mut self, limit: usize) -> Result<Option<&[u8]>> {
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
