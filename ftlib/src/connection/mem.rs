//! An in-memory duplex pipe for tests: two connected ends that behave like a socket pair
//! (bounded buffers, per-call timeouts, half-close, end of stream when the peer goes away),
//! so protocol logic is tested without sockets.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::{Connection, Transport};

/// Bytes one direction holds before its writer waits, like a socket buffer.
pub(crate) const CAPACITY: usize = 64 * 1024;

/// The address a [`MemPipe`] connection reports as its peer.
pub(crate) const PEER: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 1);

/// One direction of the pipe.
#[derive(Debug)]
struct Direction {
    state: Mutex<State>,
    changed: Condvar,
    capacity: usize,
}

#[derive(Debug, Default)]
struct State {
    bytes: VecDeque<u8>,
    /// The writing end shut down or went away: end of stream once `bytes` is read.
    write_closed: bool,
    /// The reading end shut down or went away: writes fail.
    read_closed: bool,
}

impl Direction {
    fn new(capacity: usize) -> Arc<Direction> {
        Arc::new(Direction {
            state: Mutex::default(),
            changed: Condvar::new(),
            capacity,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until `ready` holds, at most `timeout`; then `TimedOut`, as a socket would.
    fn wait_until(
        &self,
        timeout: Option<Duration>,
        ready: impl Fn(&State) -> bool,
    ) -> io::Result<MutexGuard<'_, State>> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut state = self.lock();
        while !ready(&state) {
            state = match deadline {
                None => self
                    .changed
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "in-memory pipe timed out",
                        ));
                    }
                    self.changed
                        .wait_timeout(state, left)
                        .map_or_else(|p| p.into_inner().0, |(guard, _)| guard)
                }
            };
        }
        Ok(state)
    }

    fn update(&self, change: impl FnOnce(&mut State)) {
        change(&mut self.lock());
        self.changed.notify_all();
    }
}

/// One end of an in-memory pipe.
#[derive(Debug)]
pub(crate) struct MemPipe {
    incoming: Arc<Direction>,
    outgoing: Arc<Direction>,
    timeout: Option<Duration>,
}

/// Two connected ends, each direction holding at most [`CAPACITY`] bytes.
pub(crate) fn pipe() -> (MemPipe, MemPipe) {
    pipe_with_capacity(CAPACITY)
}

/// Two connected ends, each direction holding at most `capacity` bytes.
pub(crate) fn pipe_with_capacity(capacity: usize) -> (MemPipe, MemPipe) {
    let (a_to_b, b_to_a) = (Direction::new(capacity), Direction::new(capacity));
    let a = MemPipe {
        incoming: Arc::clone(&b_to_a),
        outgoing: Arc::clone(&a_to_b),
        timeout: None,
    };
    let b = MemPipe {
        incoming: a_to_b,
        outgoing: b_to_a,
        timeout: None,
    };
    (a, b)
}

/// Two connections over one pipe, each with the per-frame `timeout`.
pub(crate) fn connection_pair(timeout: Duration) -> (Connection, Connection) {
    let (a, b) = pipe();
    (
        Connection::new(a, PEER, timeout).expect("in-memory connection"),
        Connection::new(b, PEER, timeout).expect("in-memory connection"),
    )
}

impl Read for MemPipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut state = self.incoming.wait_until(self.timeout, |s| {
            !s.bytes.is_empty() || s.write_closed || s.read_closed
        })?;
        let n = state.bytes.read(buf)?;
        drop(state);
        self.incoming.changed.notify_all();
        Ok(n)
    }
}

impl Write for MemPipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let capacity = self.outgoing.capacity;
        let mut state = self.outgoing.wait_until(self.timeout, |s| {
            s.bytes.len() < capacity || s.write_closed || s.read_closed
        })?;
        if state.write_closed || state.read_closed {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let n = buf.len().min(capacity - state.bytes.len());
        state.bytes.extend(&buf[..n]);
        drop(state);
        self.outgoing.changed.notify_all();
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Transport for MemPipe {
    fn set_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        if timeout == Some(Duration::ZERO) {
            // As for sockets: a zero timeout would mean "never wait", which is not a bound.
            return Err(io::ErrorKind::InvalidInput.into());
        }
        self.timeout = timeout;
        Ok(())
    }

    fn input_ready(&mut self) -> bool {
        let state = self.incoming.lock();
        !state.bytes.is_empty() || state.write_closed || state.read_closed
    }

    fn shutdown(&mut self, how: Shutdown) -> io::Result<()> {
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            self.outgoing.update(|s| s.write_closed = true);
        }
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            self.incoming.update(|s| {
                s.read_closed = true;
                s.bytes.clear();
            });
        }
        Ok(())
    }
}

impl Drop for MemPipe {
    fn drop(&mut self) {
        let _ = self.shutdown(Shutdown::Both);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHORT: Duration = Duration::from_millis(100);

    #[test]
    fn bytes_cross_in_order_both_ways() {
        let (mut a, mut b) = pipe();
        a.write_all(b"hello").expect("write");
        b.write_all(b"world").expect("write");
        let mut got = [0u8; 5];
        b.read_exact(&mut got).expect("read");
        assert_eq!(&got, b"hello");
        a.read_exact(&mut got).expect("read");
        assert_eq!(&got, b"world");
    }

    #[test]
    fn a_read_waiting_longer_than_the_timeout_times_out() {
        let (mut a, _b) = pipe();
        a.set_timeout(Some(SHORT)).expect("timeout");
        let started = Instant::now();
        let err = a.read(&mut [0u8; 4]).expect_err("nothing to read");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= SHORT);
    }

    #[test]
    fn a_writer_is_bounded_when_the_peer_does_not_read() {
        let (mut a, mut b) = pipe_with_capacity(8);
        a.set_timeout(Some(SHORT)).expect("timeout");
        assert_eq!(a.write(&[1u8; 20]).expect("room for 8"), 8);
        let err = a.write(&[1u8; 1]).expect_err("full");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        b.read_exact(&mut [0u8; 8]).expect("read");
        assert_eq!(a.write(&[1u8; 1]).expect("room again"), 1);
    }

    #[test]
    fn shutdown_and_drop_are_seen_by_the_peer() {
        let (mut a, mut b) = pipe();
        assert!(!b.input_ready());
        a.write_all(b"x").expect("write");
        a.shutdown(Shutdown::Write).expect("shutdown");
        assert!(b.input_ready());
        let mut rest = Vec::new();
        b.read_to_end(&mut rest).expect("read to the end");
        assert_eq!(rest, b"x");
        assert!(b.input_ready(), "end of stream reads at once");
        assert_eq!(
            a.write(b"y").expect_err("shut down").kind(),
            io::ErrorKind::BrokenPipe
        );
        b.write_all(b"still open")
            .expect("the other direction is open");
        drop(a);
        assert_eq!(
            b.write(b"z").expect_err("peer gone").kind(),
            io::ErrorKind::BrokenPipe
        );
    }
}
