//! The live connections: a [`Permit`] per connection served (its place, freed on drop), the
//! `Busy` refusal of connections beyond the limit, and the drain at shutdown that closes
//! idle connections at once and busy ones after the grace period.

use std::collections::HashMap;
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::session::answer_error;
use crate::connection::Connection;
use crate::error::Error;

/// A live connection: a clone of its socket (to close it at shutdown) and whether it is
/// inside a request.
type Live = (TcpStream, Arc<AtomicBool>);

/// The live connections.
#[derive(Default)]
pub(super) struct Registry {
    live: Mutex<HashMap<u64, Live>>,
    changed: Condvar,
    next: AtomicU64,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Live>> {
        self.live
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes a place if fewer than `max` are live; the permit frees it when dropped.
    /// Otherwise (or when the socket cannot be cloned) how many are live.
    pub(super) fn admit(self: &Arc<Self>, stream: &TcpStream, max: usize) -> Result<Permit, usize> {
        let mut live = self.lock();
        if live.len() >= max {
            return Err(live.len());
        }
        let clone = stream.try_clone().map_err(|_| live.len())?;
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let busy = Arc::new(AtomicBool::new(true));
        live.insert(id, (clone, Arc::clone(&busy)));
        Ok(Permit {
            registry: Arc::clone(self),
            id,
            busy,
        })
    }

    /// Closes the live connection `id` (both directions), if it is still live: its loop
    /// then ends as the peer gone.
    pub(super) fn close(&self, id: u64) {
        if let Some((stream, _)) = self.lock().get(&id) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Closes idle connections now and busy ones after `grace`; waits until all are gone
    /// (at most 10 s more).
    pub(super) fn drain(&self, grace: Duration) {
        let forced_at = Instant::now() + grace;
        let give_up = forced_at + Duration::from_secs(10);
        let mut live = self.lock();
        while !live.is_empty() && Instant::now() < give_up {
            let force = Instant::now() >= forced_at;
            for (stream, busy) in live.values() {
                if force || !busy.load(Ordering::SeqCst) {
                    let _ = stream.shutdown(Shutdown::Both);
                }
            }
            live = self
                .changed
                .wait_timeout(live, Duration::from_millis(50))
                .map_or_else(|p| p.into_inner().0, |(guard, _)| guard);
        }
    }
}

/// A place in the registry, released on drop.
pub(super) struct Permit {
    registry: Arc<Registry>,
    id: u64,
    busy: Arc<AtomicBool>,
}

impl Permit {
    /// The connection's number in the registry ([`Registry::close`]).
    pub(super) fn id(&self) -> u64 {
        self.id
    }

    /// Whether the connection is inside a request (or has answers waiting): the drain
    /// closes it only after the grace period. The connection's loop keeps it up to date.
    pub(super) fn busy(&self) -> &AtomicBool {
        &self.busy
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.id);
        self.registry.changed.notify_all();
    }
}

/// Refuses a connection beyond the limit, `live` being served: `Busy` as its first frame,
/// then close. Returns the error, for the report.
pub(super) fn refuse_busy(stream: TcpStream, live: usize) -> Error {
    // The client sends nothing before our greeting, so closing right after this small
    // frame cannot reset it away.
    let error = Error::Busy { live };
    if let Ok(mut conn) = Connection::tcp(stream, Duration::from_secs(1)) {
        answer_error(&mut conn, &error);
        conn.close();
    }
    error
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::net::TcpListener;
    use std::thread;

    use super::*;

    /// Places are taken up to the limit, refused beyond it with the live count, and freed
    /// when a permit is dropped.
    #[test]
    fn permits_are_bounded_and_freed_on_drop() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let stream = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let registry = Arc::new(Registry::default());
        let first = registry.admit(&stream, 2).expect("first place");
        let second = registry.admit(&stream, 2).expect("second place");
        assert_eq!(registry.admit(&stream, 2).err(), Some(2));
        drop(first);
        let third = registry.admit(&stream, 2).expect("a place was freed");
        drop((second, third));
        assert!(registry.lock().is_empty());
    }

    const GRACE: Duration = Duration::from_millis(200);

    /// A connected client, and the server's end with its permit (busy or idle).
    fn connection(
        listener: &TcpListener,
        registry: &Arc<Registry>,
        busy: bool,
    ) -> (TcpStream, (TcpStream, Permit)) {
        let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        // Bounds on every read, so a drain that never closes fails instead of hanging.
        for stream in [&client, &server] {
            stream.set_read_timeout(Some(GRACE * 10)).expect("timeout");
        }
        let permit = registry.admit(&server, 2).expect("a place");
        permit.busy().store(busy, Ordering::SeqCst);
        (client, (server, permit))
    }

    /// When `client` reads the end of stream of its closed connection, since `start`.
    fn closed_after(mut client: TcpStream, start: Instant) -> Duration {
        let read = client.read(&mut [0u8; 1]);
        assert!(matches!(read, Ok(0)), "not an end of stream: {read:?}");
        start.elapsed()
    }

    /// The drain at shutdown closes an idle connection at once and a busy one only once
    /// the grace period is over, and returns when both connections have ended.
    #[test]
    fn drain_closes_idle_connections_at_once_and_busy_ones_after_the_grace() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let registry = Arc::new(Registry::default());
        let (idle_client, idle) = connection(&listener, &registry, false);
        let (busy_client, busy) = connection(&listener, &registry, true);
        let start = Instant::now();
        thread::scope(|s| {
            // Each connection's loop, as the server's: when its socket is closed under it,
            // it takes a moment to wind up, then ends, freeing its place.
            let loops: Vec<_> = [idle, busy]
                .into_iter()
                .map(|(mut server, permit)| {
                    s.spawn(move || {
                        let _ = server.read(&mut [0u8; 1]);
                        thread::sleep(Duration::from_millis(50));
                        let ended = start.elapsed();
                        drop(permit);
                        ended
                    })
                })
                .collect();
            let drain = s.spawn(|| {
                registry.drain(GRACE);
                start.elapsed()
            });
            let idle_closed = closed_after(idle_client, start);
            let busy_closed = closed_after(busy_client, start);
            assert!(idle_closed < GRACE, "idle closed after {idle_closed:?}");
            assert!(busy_closed >= GRACE, "busy closed after {busy_closed:?}");
            let drained = drain.join().expect("drain");
            for ended in loops.into_iter().map(|l| l.join().expect("loop")) {
                assert!(
                    drained >= ended,
                    "drained after {drained:?}, before {ended:?}"
                );
            }
        });
        assert!(registry.lock().is_empty());
    }
}
