//! Resumable uploads in progress, by the key of their partial: a newer attempt of the same
//! upload (same name, size and content) from the same client address takes the partial
//! over from a connection that still holds it — one cut without the server noticing yet,
//! which would otherwise block every retry until it timed out — instead of being refused.
//!
//! Taking over closes the old connection (through the registry, which holds a handle on
//! every live socket for the shutdown): its upload ends as interrupted, keeps
//! the partial (synced) and lets go of it, and the new attempt continues from there.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::registry::Registry;

/// How long a new attempt waits for the connection it closed to let go of the partial
/// (it syncs what it wrote first): past this, it is refused as before.
pub(super) const TAKEOVER_WAIT: Duration = Duration::from_secs(30);

/// The connection continuing each partial now.
#[derive(Debug, Default)]
pub(super) struct Holders {
    held: Mutex<HashMap<String, Holder>>,
    released: Condvar,
    next: AtomicU64,
}

/// A connection continuing a partial: which hold it is, its client's address, and its
/// number in the registry (to close it when a newer attempt takes over; `None` when it
/// has none).
#[derive(Debug)]
struct Holder {
    serial: u64,
    peer: IpAddr,
    conn: Option<u64>,
}

/// This connection's hold on a partial's key, given up when dropped.
#[derive(Debug)]
pub(super) struct Hold<'a> {
    holders: &'a Holders,
    key: String,
    serial: u64,
}

impl Holders {
    fn held(&self) -> MutexGuard<'_, HashMap<String, Holder>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes this connection (from `peer`, number `conn` in `registry`) the one continuing
    /// the partial `key`. When another connection from the same address holds it, that one
    /// is closed through the registry and this waits (at most `wait`) for it to let go.
    /// `None` when the key stays another's: held from another address, by a connection
    /// the registry does not know, or not let go in time; the store then refuses the
    /// upload as in use.
    pub(super) fn hold(
        &self,
        key: &str,
        peer: IpAddr,
        conn: Option<u64>,
        registry: &Registry,
        wait: Duration,
    ) -> Option<Hold<'_>> {
        let deadline = Instant::now() + wait;
        let mut held = self.held();
        if let Some(holder) = held.get(key) {
            if holder.peer != peer {
                return None;
            }
            // Without a connection to close, the holder cannot be made to let go.
            registry.close(holder.conn?);
            while held.contains_key(key) {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return None;
                }
                held = self
                    .released
                    .wait_timeout(held, left)
                    .map_or_else(|p| p.into_inner().0, |(guard, _)| guard);
            }
        }
        let serial = self.next.fetch_add(1, Ordering::Relaxed);
        held.insert(key.to_owned(), Holder { serial, peer, conn });
        Some(Hold {
            holders: self,
            key: key.to_owned(),
            serial,
        })
    }
}

impl Drop for Hold<'_> {
    fn drop(&mut self) {
        let mut held = self.holders.held();
        if held.get(&self.key).is_some_and(|h| h.serial == self.serial) {
            held.remove(&self.key);
        }
        drop(held);
        self.holders.released.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};
    use std::sync::Arc;
    use std::thread;

    use super::super::registry::Permit;
    use super::*;

    const HERE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    const ELSEWHERE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));

    /// A connected pair: the client's end, and the server's end admitted to `registry`.
    fn pair(listener: &TcpListener, registry: &Arc<Registry>) -> (TcpStream, TcpStream, Permit) {
        let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let permit = registry.admit(&server, 8).expect("a place");
        (client, server, permit)
    }

    /// A second hold from the same address closes the first connection and waits until
    /// its upload lets go; from another address it is refused at once, and the first
    /// connection is left alone.
    #[test]
    fn the_same_client_takes_over_and_another_is_refused() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let registry = Arc::new(Registry::default());
        let holders = Holders::default();
        let (mut old_client, old_server, old) = pair(&listener, &registry);
        let (_new_client, _new_server, new) = pair(&listener, &registry);
        let first = holders
            .hold("k", HERE, Some(old.id()), &registry, TAKEOVER_WAIT)
            .expect("a free key");

        let refused = holders.hold("k", ELSEWHERE, Some(new.id()), &registry, TAKEOVER_WAIT);
        assert!(refused.is_none(), "another address never takes over");

        thread::scope(|s| {
            // The old connection's upload: cut when its socket is closed, it lets go a
            // moment later (syncing its partial).
            s.spawn(|| {
                let read = (&old_server).read(&mut [0u8; 1]);
                assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
                thread::sleep(Duration::from_millis(50));
                drop(first);
            });
            let second = holders.hold("k", HERE, Some(new.id()), &registry, TAKEOVER_WAIT);
            assert!(second.is_some(), "the same address takes over");
        });
        let read = old_client.read(&mut [0u8; 1]);
        assert!(
            matches!(read, Ok(0) | Err(_)),
            "the old connection was closed"
        );
    }

    /// A holder that never lets go: the new attempt gives up after its wait.
    #[test]
    fn a_holder_that_never_lets_go_is_not_waited_for_beyond_the_bound() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let registry = Arc::new(Registry::default());
        let (_client, _server, permit) = pair(&listener, &registry);
        let holders = Holders::default();
        let _first = holders
            .hold("k", HERE, Some(permit.id()), &registry, TAKEOVER_WAIT)
            .expect("free");
        let started = Instant::now();
        let second = holders.hold("k", HERE, None, &registry, Duration::from_millis(100));
        assert!(second.is_none());
        assert!(started.elapsed() >= Duration::from_millis(100));
        // A holder without a connection number cannot be closed: refused at once.
        let _third = holders
            .hold("n", HERE, None, &registry, TAKEOVER_WAIT)
            .expect("free");
        let started = Instant::now();
        assert!(
            holders
                .hold("n", HERE, None, &registry, TAKEOVER_WAIT)
                .is_none()
        );
        assert!(started.elapsed() < TAKEOVER_WAIT);
        // Other keys are independent.
        assert!(
            holders
                .hold("other", HERE, None, &registry, TAKEOVER_WAIT)
                .is_some()
        );
    }
}
