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
    use std::net::TcpListener;

    use super::*;

    /// Places are taken up to the limit, refused beyond it with the live count, and freed
    /// when a permit is dropped; the drain returns once no permit is left.
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
        let started = Instant::now();
        registry.drain(Duration::from_secs(5));
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
