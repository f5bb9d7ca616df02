//! The throttle of failed logins: per address, a delay that doubles with each recent
//! failure, and a queue so that parallel logins from one address wait one after another.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::lock;

/// First wait after a failed login from an address.
const FIRST_DELAY: Duration = Duration::from_millis(250);

/// Longest wait, however many failures.
const MAX_DELAY: Duration = Duration::from_secs(8);

/// How long an address's failures are remembered after its last one.
const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);

/// Most addresses remembered at once.
const MAX_ADDRESSES: usize = 4096;

/// Most user names whose failures an address keeps apart, so that a success forgets only
/// its own user's; further failures count for the address alone.
const MAX_USERS_APART: usize = 8;

/// Longest user name kept apart (the longest an account may have).
const MAX_NAME_APART: usize = 64;

/// Longest an address's logins may queue: beyond it a login is refused at once.
const MAX_QUEUE: Duration = Duration::from_secs(30);

/// Slows repeated login failures from one address: the server takes a
/// [`turn`](Throttle::turn) before checking a login, 250 ms after one recent failure,
/// doubling with each further one up to 8 s ([`delay_for`](Throttle::delay_for)). Logins
/// from one address queue: each waits its delay after the previous one's turn, so parallel
/// connections guess no faster than one; a login that would queue longer than 30 s is
/// refused at once. An address's failures are forgotten 15 minutes after the last; a
/// successful login forgets only those of its own user name, so that logging in to one
/// account does not reset the delay between guesses at another (an address keeps up to 8
/// user names apart; failures beyond them stay until they expire). At most 4096 addresses
/// are remembered (when full, the expired ones go first, then the one whose last failure
/// is oldest).
///
/// IPv6 addresses count by their /64 network, which one host can change at will; an
/// IPv4-mapped IPv6 address counts as the IPv4 address.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use ftlib::accounts::Throttle;
///
/// let throttle = Throttle::new();
/// let ip = "192.0.2.7".parse()?;
/// assert_eq!(throttle.delay_for(ip), Duration::ZERO);
/// throttle.failed(ip, "bob");
/// throttle.failed(ip, "alice");
/// assert_eq!(throttle.delay_for(ip), Duration::from_millis(500));
/// // Alice's success does not forget the guess at Bob's password.
/// throttle.succeeded(ip, "alice");
/// assert_eq!(throttle.delay_for(ip), Duration::from_millis(250));
/// throttle.succeeded(ip, "bob");
/// assert_eq!(throttle.delay_for(ip), Duration::ZERO);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default)]
pub struct Throttle {
    table: Mutex<HashMap<IpAddr, Failures>>,
}

/// The recent failures of one address.
#[derive(Debug, Clone)]
struct Failures {
    count: u32,
    /// How many of them each user name had (at most [`MAX_USERS_APART`] names).
    by_user: Vec<(String, u32)>,
    last: Instant,
    /// When the last turn taken ends: the next one starts from there.
    turn_ends: Instant,
}

impl Throttle {
    /// A throttle that remembers no failure yet.
    pub fn new() -> Throttle {
        Throttle::default()
    }

    /// How long to wait before answering a login from `ip`: zero without a recent failure.
    pub fn delay_for(&self, ip: IpAddr) -> Duration {
        self.delay_at(ip, Instant::now())
    }

    /// Takes the next turn of a login from `ip`: how long to wait before checking it (zero
    /// without a recent failure), or `None` when the address's queue is already longer than
    /// 30 s and the login should be refused without being checked.
    pub fn turn(&self, ip: IpAddr) -> Option<Duration> {
        self.turn_at(ip, Instant::now())
    }

    fn turn_at(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let mut table = lock(&self.table);
        let Some(failures) = table.get_mut(&address_key(ip)) else {
            return Some(Duration::ZERO);
        };
        if failures.expired(now) {
            return Some(Duration::ZERO);
        }
        let ends = failures.turn_ends.max(now) + failures.delay();
        let wait = ends.saturating_duration_since(now);
        if wait > MAX_QUEUE {
            return None;
        }
        failures.turn_ends = ends;
        Some(wait)
    }

    /// Counts a failed login from `ip` as `user`.
    pub fn failed(&self, ip: IpAddr, user: &str) {
        self.failed_as_at(ip, user, Instant::now());
    }

    /// Forgets the failures of `ip` as `user` after `user` logged in from there; those
    /// under other names stay.
    pub fn succeeded(&self, ip: IpAddr, user: &str) {
        let key = address_key(ip);
        let mut table = lock(&self.table);
        let Some(failures) = table.get_mut(&key) else {
            return;
        };
        if let Some(at) = failures.by_user.iter().position(|(name, _)| name == user) {
            let (_, count) = failures.by_user.swap_remove(at);
            failures.count = failures.count.saturating_sub(count);
        }
        if failures.count == 0 {
            table.remove(&key);
        }
    }

    fn delay_at(&self, ip: IpAddr, now: Instant) -> Duration {
        match lock(&self.table).get(&address_key(ip)) {
            Some(failures) if !failures.expired(now) => failures.delay(),
            _ => Duration::ZERO,
        }
    }

    /// A failure under no user name in particular (the tests of the delays).
    #[cfg(test)]
    fn failed_at(&self, ip: IpAddr, now: Instant) {
        self.failed_as_at(ip, "", now);
    }

    fn failed_as_at(&self, ip: IpAddr, user: &str, now: Instant) {
        let key = address_key(ip);
        let mut table = lock(&self.table);
        if !table.contains_key(&key) && table.len() >= MAX_ADDRESSES {
            table.retain(|_, failures| !failures.expired(now));
            if table.len() >= MAX_ADDRESSES {
                let oldest = table
                    .iter()
                    .min_by_key(|(_, failures)| failures.last)
                    .map(|(ip, _)| *ip);
                if let Some(oldest) = oldest {
                    table.remove(&oldest);
                }
            }
        }
        let failures = table.entry(key).or_insert(Failures {
            count: 0,
            by_user: Vec::new(),
            last: now,
            turn_ends: now,
        });
        if failures.expired(now) {
            failures.count = 0;
            failures.by_user.clear();
        }
        failures.count = failures.count.saturating_add(1);
        failures.last = now;
        if let Some((_, count)) = failures.by_user.iter_mut().find(|(name, _)| name == user) {
            *count = count.saturating_add(1);
        } else if failures.by_user.len() < MAX_USERS_APART && user.len() <= MAX_NAME_APART {
            failures.by_user.push((user.to_owned(), 1));
        }
    }

    /// Addresses remembered (expired ones included until they are swept).
    #[cfg(test)]
    fn remembered(&self) -> usize {
        lock(&self.table).len()
    }
}

impl Failures {
    fn expired(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.last) >= FORGET_AFTER
    }

    /// 250 ms for one failure, doubling with each further one, at most [`MAX_DELAY`].
    fn delay(&self) -> Duration {
        let doublings = self.count.saturating_sub(1).min(16);
        FIRST_DELAY.saturating_mul(1 << doublings).min(MAX_DELAY)
    }
}

/// What an address's failures are counted under: IPv4 as is, IPv6 by its /64.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let network = u128::from(v6) & !(u128::from(u64::MAX));
                IpAddr::V6(Ipv6Addr::from(network))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_throttle_doubles_up_to_its_cap() {
        let throttle = Throttle::new();
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        let now = Instant::now();
        assert_eq!(throttle.delay_at(ip, now), Duration::ZERO);
        let expected = [250, 500, 1000, 2000, 4000, 8000, 8000, 8000];
        for millis in expected {
            throttle.failed_at(ip, now);
            assert_eq!(throttle.delay_at(ip, now), Duration::from_millis(millis));
        }
        for _ in 0..100 {
            throttle.failed_at(ip, now);
        }
        assert_eq!(throttle.delay_at(ip, now), MAX_DELAY);
        let other: IpAddr = "192.0.2.2".parse().expect("ip");
        assert_eq!(throttle.delay_at(other, now), Duration::ZERO);
        throttle.succeeded(ip, "");
        assert_eq!(throttle.delay_at(ip, now), Duration::ZERO);
    }

    /// Parallel logins from one address wait one after another, not side by side, and a
    /// queue longer than 30 s refuses at once.
    #[test]
    fn logins_from_one_address_queue() {
        let throttle = Throttle::new();
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        let other: IpAddr = "192.0.2.2".parse().expect("ip");
        let now = Instant::now();
        assert_eq!(throttle.turn_at(ip, now), Some(Duration::ZERO));
        throttle.failed_at(ip, now);
        let ms = |n| Some(Duration::from_millis(n));
        assert_eq!(throttle.turn_at(ip, now), ms(250));
        assert_eq!(throttle.turn_at(ip, now), ms(500));
        assert_eq!(throttle.turn_at(ip, now), ms(750));
        // Later, the queue has moved on.
        assert_eq!(
            throttle.turn_at(ip, now + Duration::from_millis(700)),
            ms(300)
        );
        assert_eq!(throttle.turn_at(other, now), ms(0));
        for _ in 0..5 {
            throttle.failed_at(ip, now);
        }
        let eight = Duration::from_secs(8);
        let mut waits = Vec::new();
        while let Some(wait) = throttle.turn_at(ip, now) {
            waits.push(wait);
            assert!(waits.len() < 10, "{waits:?}");
        }
        assert!(waits.iter().all(|w| *w <= MAX_QUEUE), "{waits:?}");
        assert!(waits.windows(2).all(|w| w[1] == w[0] + eight), "{waits:?}");
        assert_eq!(throttle.turn_at(ip, now), None);
        throttle.succeeded(ip, "");
        assert_eq!(throttle.turn_at(ip, now), Some(Duration::ZERO));
    }

    /// A success forgets its own user's failures only: logging in to one account does not
    /// reset the delay between guesses at another. Names beyond the eight kept apart stay
    /// counted until they expire.
    #[test]
    fn a_success_forgets_only_its_own_users_failures() {
        let throttle = Throttle::new();
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        let now = Instant::now();
        let ms = Duration::from_millis;
        throttle.failed_as_at(ip, "bob", now);
        throttle.failed_as_at(ip, "bob", now);
        throttle.failed_as_at(ip, "alice", now);
        assert_eq!(throttle.delay_at(ip, now), ms(1000));
        throttle.succeeded(ip, "alice");
        assert_eq!(throttle.delay_at(ip, now), ms(500));
        throttle.succeeded(ip, "alice");
        assert_eq!(throttle.delay_at(ip, now), ms(500));
        throttle.succeeded(ip, "bob");
        assert_eq!(throttle.delay_at(ip, now), Duration::ZERO);

        for n in 0..MAX_USERS_APART + 2 {
            throttle.failed_as_at(ip, &format!("user{n}"), now);
        }
        for n in 0..MAX_USERS_APART + 2 {
            throttle.succeeded(ip, &format!("user{n}"));
        }
        assert_eq!(throttle.delay_at(ip, now), ms(500), "two not kept apart");
        assert_eq!(
            throttle.delay_at(ip, now + FORGET_AFTER),
            Duration::ZERO,
            "they expire"
        );
    }

    #[test]
    fn the_throttle_forgets_15_minutes_after_the_last_failure() {
        let throttle = Throttle::new();
        let ip: IpAddr = "2001:db8::1".parse().expect("ip");
        let start = Instant::now();
        throttle.failed_at(ip, start);
        let later = start + Duration::from_secs(10 * 60);
        throttle.failed_at(ip, later);
        let almost = later + FORGET_AFTER - Duration::from_secs(1);
        assert_eq!(throttle.delay_at(ip, almost), Duration::from_millis(500));
        let after = later + FORGET_AFTER;
        assert_eq!(throttle.delay_at(ip, after), Duration::ZERO);
        // A failure after that starts counting again.
        throttle.failed_at(ip, after);
        assert_eq!(throttle.delay_at(ip, after), FIRST_DELAY);
    }

    #[test]
    fn ipv6_counts_by_network_and_mapped_ipv4_as_ipv4() {
        let throttle = Throttle::new();
        let now = Instant::now();
        let one: IpAddr = "2001:db8:1:2::1".parse().expect("ip");
        throttle.failed_at(one, now);
        for (ip, delay) in [
            ("2001:db8:1:2:ffff::9", FIRST_DELAY),
            ("2001:db8:1:3::1", Duration::ZERO),
        ] {
            let ip = ip.parse().expect("ip");
            assert_eq!(throttle.delay_at(ip, now), delay, "{ip}");
        }
        throttle.failed_at("::ffff:192.0.2.9".parse().expect("ip"), now);
        let v4: IpAddr = "192.0.2.9".parse().expect("ip");
        assert_eq!(throttle.delay_at(v4, now), FIRST_DELAY);
    }

    #[test]
    fn the_throttle_table_is_bounded() {
        let throttle = Throttle::new();
        let start = Instant::now();
        let ip = |n: usize| IpAddr::from([10, 0, (n >> 8) as u8, n as u8]);
        // Half of them fail early and expire; the other half stays recent.
        for n in 0..MAX_ADDRESSES {
            let at = if n < MAX_ADDRESSES / 2 {
                start
            } else {
                start + FORGET_AFTER + Duration::from_millis(n as u64)
            };
            throttle.failed_at(ip(n), at);
        }
        assert_eq!(throttle.remembered(), MAX_ADDRESSES);
        let now = start + FORGET_AFTER + Duration::from_millis(MAX_ADDRESSES as u64);
        let newcomer = IpAddr::from([10, 1, 0, 0]);
        throttle.failed_at(newcomer, now);
        assert_eq!(throttle.remembered(), MAX_ADDRESSES / 2 + 1);

        // Full of recent failures: the oldest goes.
        let mut n = 0;
        while throttle.remembered() < MAX_ADDRESSES {
            throttle.failed_at(IpAddr::from([10, 2, (n >> 8) as u8, n as u8]), now);
            n += 1;
        }
        let oldest = ip(MAX_ADDRESSES / 2);
        assert_eq!(throttle.delay_at(oldest, now), FIRST_DELAY);
        throttle.failed_at(IpAddr::from([10, 3, 0, 0]), now);
        assert_eq!(throttle.remembered(), MAX_ADDRESSES);
        assert_eq!(throttle.delay_at(oldest, now), Duration::ZERO);
        assert_eq!(throttle.delay_at(newcomer, now), FIRST_DELAY);
    }
}
