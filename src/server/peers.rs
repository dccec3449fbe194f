//! What ringcast remembers about each client address, so that one address cannot lock
//! others out: how many of its connections are still sending their request (a slowloris
//! holds those open), and its recent failed logins (a password guesser). IPv6 addresses
//! count by their /64, which one host usually has whole.
//!
//! Touched by the accept loops (admission) and the connection threads (request done, login
//! outcome), each for a few map operations under one short lock; never across I/O.

use crate::limited;
use crate::util::ratelimit::RateLimit;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

static FAILURE_LOG: RateLimit = RateLimit::new(Duration::from_secs(5));

/// Failed logins an address may make before its answers are slowed down...
pub const SLOW_AFTER: u32 = 5;
/// ...by this much each...
pub const SLOW_BY: Duration = Duration::from_secs(1);
/// ...and after how many it is refused outright, for [`REFUSE_FOR`] after its last failure.
pub const REFUSE_AFTER: u32 = 20;
pub const REFUSE_FOR: Duration = Duration::from_secs(600);
/// Failures older than this are forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(600);
/// The most addresses remembered at once; past it, the least harmful entries are dropped
/// first (addresses with no pending connection and the oldest failures).
const MAX_ADDRESSES: usize = 16_384;

/// A client address as counted: IPv4 whole, IPv6 by its /64 (IPv4-mapped as IPv4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Client(IpAddr);

impl Client {
    pub fn of(ip: IpAddr) -> Client {
        match ip {
            IpAddr::V4(_) => Client(ip),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Client(IpAddr::V4(v4)),
                None => {
                    let s = v6.segments();
                    Client(IpAddr::V6(std::net::Ipv6Addr::new(
                        s[0], s[1], s[2], s[3], 0, 0, 0, 0,
                    )))
                }
            },
        }
    }
}

#[derive(Default)]
struct Entry {
    /// Connections accepted whose request head has not been read yet.
    pending: u32,
    failures: u32,
    last_failure: Option<Instant>,
}

/// The outcome of [`Peers::login`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Login {
    Ok,
    /// Wrong or missing credentials: answer 401.
    Wrong,
    /// Too many failures from this address: refused unchecked for this much longer.
    Locked(Duration),
}

/// What a login attempt from an address may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Open,
    /// Answer only after this long (the address has failed [`SLOW_AFTER`] times).
    Slow(Duration),
    /// Refuse without checking, for this much longer.
    Refused(Duration),
}

pub struct Peers {
    max_pending: u32,
    map: Mutex<HashMap<Client, Entry>>,
}

impl Peers {
    /// `max_pending`: connections per address still sending their request (`-max-pending-per-ip`).
    pub fn new(max_pending: u32) -> Peers {
        Peers {
            max_pending,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// Admits a new connection from `ip` unless it already has `max_pending` connections
    /// that have not finished their request. The guard counts it until dropped or
    /// [`Pending::done`].
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Pending> {
        let client = Client::of(ip);
        let mut map = self.map.lock();
        if map.len() >= MAX_ADDRESSES && !map.contains_key(&client) {
            prune(&mut map);
        }
        let e = map.entry(client).or_default();
        if e.pending >= self.max_pending {
            return None;
        }
        e.pending = e.pending.saturating_add(1);
        Some(Pending {
            peers: Arc::clone(self),
            client,
            counted: true,
        })
    }

    /// Runs a login attempt from `ip` through the gate: `given` is `None` when no
    /// credentials came (a browser's first request: not a failure), else whether they were
    /// right. A refused address is not checked at all; a slowed one waits first. Failures
    /// are counted and logged (rate-limited).
    pub fn login(&self, ip: IpAddr, what: &str, given: impl FnOnce() -> Option<bool>) -> Login {
        match self.login_gate(ip) {
            Gate::Refused(left) => return Login::Locked(left),
            Gate::Slow(d) => std::thread::sleep(d),
            Gate::Open => {}
        }
        match given() {
            Some(true) => {
                self.login_ok(ip);
                Login::Ok
            }
            Some(false) => {
                let n = self.login_failed(ip);
                limited!(
                    FAILURE_LOG,
                    warn,
                    "{ip}: {what}: wrong credentials ({n} failed in the last {} min)",
                    FORGET_AFTER.as_secs() / 60
                );
                Login::Wrong
            }
            None => Login::Wrong,
        }
    }

    /// Whether a login from `ip` may be checked now.
    pub fn login_gate(&self, ip: IpAddr) -> Gate {
        let map = self.map.lock();
        let Some(e) = map.get(&Client::of(ip)) else {
            return Gate::Open;
        };
        let since = e.last_failure.map_or(Duration::MAX, |t| t.elapsed());
        if since >= FORGET_AFTER {
            Gate::Open
        } else if e.failures >= REFUSE_AFTER {
            Gate::Refused(REFUSE_FOR.saturating_sub(since))
        } else if e.failures >= SLOW_AFTER {
            Gate::Slow(SLOW_BY)
        } else {
            Gate::Open
        }
    }

    /// Records a failed login; returns the address's failures in the window.
    pub fn login_failed(&self, ip: IpAddr) -> u32 {
        let client = Client::of(ip);
        let mut map = self.map.lock();
        if map.len() >= MAX_ADDRESSES && !map.contains_key(&client) {
            prune(&mut map);
        }
        let e = map.entry(client).or_default();
        if e.last_failure.is_some_and(|t| t.elapsed() >= FORGET_AFTER) {
            e.failures = 0;
        }
        e.failures = e.failures.saturating_add(1);
        e.last_failure = Some(Instant::now());
        e.failures
    }

    /// A good login clears the address's failures.
    pub fn login_ok(&self, ip: IpAddr) {
        let mut map = self.map.lock();
        let client = Client::of(ip);
        if let Some(e) = map.get_mut(&client) {
            e.failures = 0;
            e.last_failure = None;
            if e.pending == 0 {
                map.remove(&client);
            }
        }
    }

    fn finish(&self, client: Client) {
        let mut map = self.map.lock();
        if let Some(e) = map.get_mut(&client) {
            e.pending = e.pending.saturating_sub(1);
            if e.pending == 0 && e.failures == 0 {
                map.remove(&client);
            }
        }
    }
}

/// Drops forgotten failures, then (still full) every entry without pending connections.
fn prune(map: &mut HashMap<Client, Entry>) {
    map.retain(|_, e| e.pending > 0 || e.last_failure.is_some_and(|t| t.elapsed() < FORGET_AFTER));
    if map.len() >= MAX_ADDRESSES {
        map.retain(|_, e| e.pending > 0);
    }
}

/// One admitted connection that has not finished its request yet.
pub struct Pending {
    peers: Arc<Peers>,
    client: Client,
    counted: bool,
}

impl Pending {
    /// The request head is in: the connection no longer counts as pending.
    pub fn done(&mut self) {
        if std::mem::take(&mut self.counted) {
            self.peers.finish(self.client);
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.done();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_connections_are_capped_per_address_and_released() {
        let p = Arc::new(Peers::new(2));
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.3".parse().unwrap();
        let g1 = p.admit(a).unwrap();
        let mut g2 = p.admit(a).unwrap();
        assert!(
            p.admit(a).is_none(),
            "a third pending connection from one address"
        );
        assert!(p.admit(b).is_some(), "another address is not affected");
        g2.done();
        let _g3 = p.admit(a).expect("room again once a request finished");
        drop(g1);
        assert!(p.admit(a).is_some());
    }

    #[test]
    fn ipv6_counts_by_its_64() {
        let p = Arc::new(Peers::new(1));
        let _g = p.admit("2001:db8:1:2::1".parse().unwrap()).unwrap();
        assert!(p.admit("2001:db8:1:2::ffff".parse().unwrap()).is_none());
        assert!(p.admit("2001:db8:1:3::1".parse().unwrap()).is_some());
        let _m = p.admit("::ffff:10.0.0.1".parse().unwrap()).unwrap();
        assert!(
            p.admit("10.0.0.1".parse().unwrap()).is_none(),
            "mapped = IPv4"
        );
    }

    #[test]
    fn failed_logins_slow_then_refuse_and_a_good_one_clears() {
        let p = Peers::new(4);
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        for _ in 0..SLOW_AFTER {
            assert_eq!(p.login_gate(a), Gate::Open);
            p.login_failed(a);
        }
        assert_eq!(p.login_gate(a), Gate::Slow(SLOW_BY));
        for _ in SLOW_AFTER..REFUSE_AFTER {
            p.login_failed(a);
        }
        assert!(matches!(p.login_gate(a), Gate::Refused(d) if d > Duration::from_secs(590)));
        assert_eq!(p.login_gate("127.0.0.3".parse().unwrap()), Gate::Open);
        p.login_ok(a);
        assert_eq!(p.login_gate(a), Gate::Open);
    }
}
