//! What ringcast remembers about each client address, so that one address cannot lock
//! others out: its connections that are slow to send their request (a slowloris holds
//! those open), its listeners (its share of `-max-clients`), and its login attempts (a
//! password guesser). IPv6 addresses count by their /64, which one host usually has whole.
//! The address is the client's as `-trusted-proxies` name it (`proxies.rs`).
//!
//! Touched by the accept loops (admission) and the connection threads (slow, request done,
//! listener in and out, login), each for a few map operations under one short lock; never
//! across I/O, and never while a login waits for its turn.
//!
//! The login budget (README, Security; each address's in `login_budget.rs`): an attempt takes
//! its place in its address's budget *before* it is checked, so attempts made at once cost what
//! the same attempts in a row cost. [`FREE_FAILURES`](super::login_budget::FREE_FAILURES) failures cost nothing; after them every
//! attempt waits for a turn of its own, one turn every [`SPACING`](super::login_budget::SPACING) (then [`SPACING_LATER`](super::login_budget::SPACING_LATER) past
//! [`LATER_AFTER`](super::login_budget::LATER_AFTER) failures), and an attempt whose turn would be more than [`MAX_WAIT`](super::login_budget::MAX_WAIT) away is
//! refused unchecked (429 with `Retry-After`). Nothing locks an address out: a right password
//! from it is let in at its turn, within [`MAX_WAIT`](super::login_budget::MAX_WAIT) of asking while no one floods the
//! address.

use super::login_budget::{Budget, Turn, FORGET_AFTER};
pub use crate::http::auth::Login;
use crate::limited;
use crate::util::ratelimit::RateLimit;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

static FAILURE_LOG: RateLimit = RateLimit::new(Duration::from_secs(5));

/// The most addresses remembered at once; past it, the least harmful entries are dropped
/// first (addresses with nothing open and the oldest failures).
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

    /// The address as counted (an IPv6 /64 as its first address).
    pub fn ip(self) -> IpAddr {
        self.0
    }
}

/// What is remembered about one address.
#[derive(Default)]
struct Entry {
    /// Connections accepted whose request head has not been read yet.
    unread: u32,
    /// Of those, the ones past [`Peers::grace`] without a whole head.
    slow: u32,
    /// Listeners connected (server-wide).
    listeners: u32,
    /// Connections kept open between short answers (`keepalive.rs`), a share of their own.
    kept: u32,
    budget: Budget,
}

impl Entry {
    fn idle(&self) -> bool {
        self.unread == 0 && self.listeners == 0 && self.kept == 0 && self.budget.idle()
    }
}

/// The per-address limits, from the server's flags.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `-max-pending-per-ip`: connections one address may have that are slow to send
    /// their request.
    pub max_slow: u32,
    /// `-max-listeners-per-ip`: listeners one address may have (0: no limit).
    pub max_listeners: u32,
    /// Connections one address may have open before their request is read, slow or not
    /// (a prompt burst is served up to this many at once).
    pub max_unread: u32,
}

pub struct Peers {
    limits: Limits,
    /// Digests claims so that the table keeps no peer text.
    claim_key: u64,
    map: Mutex<HashMap<Client, Entry>>,
}

impl Peers {
    pub fn new(limits: Limits) -> Peers {
        Peers {
            limits,
            claim_key: crate::util::random::u64().unwrap_or(0x5eed),
            map: Mutex::new(HashMap::new()),
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Runs `f` on `client`'s entry (made if need be), dropping it afterwards if idle.
    fn with<R>(&self, client: Client, f: impl FnOnce(&mut Entry) -> R) -> R {
        let mut map = self.map.lock();
        if map.len() >= MAX_ADDRESSES && !map.contains_key(&client) {
            prune(&mut map);
        }
        let e = map.entry(client).or_default();
        let out = f(e);
        if e.idle() {
            map.remove(&client);
        }
        out
    }

    /// Admits a new connection from `ip` (the TCP peer) unless that address already has
    /// `-max-pending-per-ip` slow connections, or [`Limits::max_unread`] whose request is
    /// not read yet (`exempt`: a trusted proxy, which carries many clients' requests). The
    /// guard counts it until [`Pending::done`] or dropped. `Err` says which limit.
    pub fn admit(self: &Arc<Self>, ip: IpAddr, exempt: bool) -> Result<Pending, &'static str> {
        let client = Client::of(ip);
        let l = self.limits;
        self.with(client, |e| {
            if e.slow >= l.max_slow {
                return Err("-max-pending-per-ip");
            }
            if !exempt && e.unread >= l.max_unread {
                return Err("its share of the connection slots");
            }
            e.unread = e.unread.saturating_add(1);
            Ok(())
        })?;
        Ok(Pending {
            peers: Arc::clone(self),
            client,
            counted: true,
            slow: false,
        })
    }

    /// Counts a listener of `ip` against its share; `None` when the share is taken.
    pub fn enter_listener(self: &Arc<Self>, ip: IpAddr) -> Option<Share> {
        self.enter(ip, Held::Listener)
    }

    /// Counts a kept connection of `ip` against its share of them (as large as its listener
    /// share, and apart from it: a status page's poller never takes the browser's place to
    /// play); `None` when the share is taken.
    pub fn enter_kept(self: &Arc<Self>, ip: IpAddr) -> Option<Share> {
        self.enter(ip, Held::Kept)
    }

    fn enter(self: &Arc<Self>, ip: IpAddr, held: Held) -> Option<Share> {
        let client = Client::of(ip);
        let max = self.limits.max_listeners;
        self.with(client, |e| {
            let n = held.count(e);
            if max > 0 && *n >= max {
                return false;
            }
            *n = n.saturating_add(1);
            true
        })
        .then(|| Share {
            peers: Arc::clone(self),
            client,
            held,
        })
    }

    /// Runs a login attempt from `ip` through the budget: `claim` is an identity the peer
    /// states (a link peer's instance id) or `None`; `given` checks the credentials and is
    /// `None` when none came (a browser's first request: not a failure). Failures are
    /// counted and logged (rate-limited). May sleep until the attempt's turn (no lock held).
    pub fn login(
        &self,
        ip: IpAddr,
        what: &str,
        claim: Option<&str>,
        given: impl FnOnce() -> Option<bool>,
    ) -> Login {
        let client = Client::of(ip);
        let claim = claim.map(|c| self.digest(c));
        let wait = match self.with(client, |e| e.budget.take_turn(claim, Instant::now())) {
            Turn::Now => Duration::ZERO,
            Turn::After(d) => d,
            Turn::KnownBad => return Login::Wrong,
            Turn::Refused(d) => return Login::Locked(d),
        };
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
        let outcome = given();
        let now = Instant::now();
        let failures = self.with(client, |e| e.budget.settle(outcome, claim, now));
        match (outcome, failures) {
            (Some(true), _) => Login::Ok,
            (Some(false), Some(n)) => {
                limited!(
                    FAILURE_LOG,
                    warn,
                    "{ip}: {what}: wrong credentials ({n} failed in the last {} min)",
                    FORGET_AFTER.as_secs() / 60
                );
                Login::Wrong
            }
            _ => Login::Wrong,
        }
    }

    fn digest(&self, claim: &str) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.claim_key.hash(&mut h);
        claim.hash(&mut h);
        h.finish()
    }
}

/// Drops forgotten failures, then (still full) every entry with nothing open.
fn prune(map: &mut HashMap<Client, Entry>) {
    let now = Instant::now();
    map.values_mut()
        .for_each(|e| e.budget.forget_old_failures(now));
    map.retain(|_, e| !e.idle());
    if map.len() >= MAX_ADDRESSES {
        map.retain(|_, e| e.unread > 0 || e.listeners > 0 || e.kept > 0 || e.budget.checking());
    }
}

/// One admitted connection that has not finished its request yet.
pub struct Pending {
    peers: Arc<Peers>,
    client: Client,
    counted: bool,
    slow: bool,
}

impl Pending {
    /// The request is taking longer than the grace: the connection counts as slow now.
    /// False when its address already has `-max-pending-per-ip` slow ones (refuse it).
    pub fn slow(&mut self) -> bool {
        if !self.counted || self.slow {
            return true;
        }
        let max = self.peers.limits.max_slow;
        self.peers.with(self.client, |e| {
            if e.slow >= max {
                return false;
            }
            e.slow = e.slow.saturating_add(1);
            true
        }) && {
            self.slow = true;
            true
        }
    }

    /// The request head is in: the connection no longer counts as pending.
    pub fn done(&mut self) {
        if std::mem::take(&mut self.counted) {
            let slow = std::mem::take(&mut self.slow);
            self.peers.with(self.client, |e| {
                e.unread = e.unread.saturating_sub(1);
                if slow {
                    e.slow = e.slow.saturating_sub(1);
                }
            });
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.done();
    }
}

/// What a [`Share`] holds a place for.
#[derive(Debug, Clone, Copy)]
enum Held {
    Listener,
    /// A connection kept open between short answers (`keepalive.rs`).
    Kept,
}

impl Held {
    fn count(self, e: &mut Entry) -> &mut u32 {
        match self {
            Held::Listener => &mut e.listeners,
            Held::Kept => &mut e.kept,
        }
    }
}

/// A place counted against its address's share; dropping it un-counts it.
pub struct Share {
    peers: Arc<Peers>,
    client: Client,
    held: Held,
}

impl Share {
    /// The address it is counted for.
    pub fn ip(&self) -> IpAddr {
        self.client.ip()
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        let held = self.held;
        self.peers.with(self.client, |e| {
            let n = held.count(e);
            *n = n.saturating_sub(1);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::super::login_budget::{FREE_FAILURES, SPACING};
    use super::*;

    fn limits(max_slow: u32) -> Limits {
        Limits {
            max_slow,
            max_listeners: 2,
            max_unread: 4,
        }
    }

    #[test]
    fn slow_connections_are_capped_per_address_and_released() {
        let p = Arc::new(Peers::new(limits(2)));
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.3".parse().unwrap();
        let mut g1 = p.admit(a, false).unwrap();
        let mut g2 = p.admit(a, false).unwrap();
        let mut g3 = p.admit(a, false).unwrap();
        assert!(g1.slow() && g2.slow());
        assert!(!g3.slow(), "a third slow connection from one address");
        assert!(p.admit(a, false).is_err(), "no new one while two are slow");
        assert!(p.admit(b, false).is_ok(), "another address is not affected");
        g2.done();
        drop(g3);
        let _g4 = p
            .admit(a, false)
            .expect("room again once a request finished");
        drop(g1);
    }

    #[test]
    fn a_prompt_burst_is_capped_only_by_the_unread_share() {
        let p = Arc::new(Peers::new(limits(1)));
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let held: Vec<Pending> = (0..4).map(|_| p.admit(a, false).unwrap()).collect();
        assert_eq!(
            p.admit(a, false).err(),
            Some("its share of the connection slots")
        );
        assert!(p.admit(a, true).is_ok(), "a trusted proxy is exempt");
        drop(held);
        assert!(
            p.map.lock().is_empty(),
            "nothing is left of an idle address"
        );
    }

    #[test]
    fn listeners_share_per_address() {
        let p = Arc::new(Peers::new(limits(1)));
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let s1 = p.enter_listener(a).unwrap();
        let _s2 = p.enter_listener(a).unwrap();
        assert!(p.enter_listener(a).is_none());
        assert!(p.enter_listener("127.0.0.3".parse().unwrap()).is_some());
        drop(s1);
        assert!(p.enter_listener(a).is_some());
    }

    #[test]
    fn ipv6_counts_by_its_64() {
        let p = Arc::new(Peers::new(limits(1)));
        let mut g = p.admit("2001:db8:1:2::1".parse().unwrap(), false).unwrap();
        assert!(g.slow());
        assert!(p
            .admit("2001:db8:1:2::ffff".parse().unwrap(), false)
            .is_err());
        assert!(p.admit("2001:db8:1:3::1".parse().unwrap(), false).is_ok());
        let mut m = p.admit("::ffff:10.0.0.1".parse().unwrap(), false).unwrap();
        assert!(m.slow());
        assert!(
            p.admit("10.0.0.1".parse().unwrap(), false).is_err(),
            "mapped = IPv4"
        );
    }

    #[test]
    fn a_failed_claim_is_refused_unchecked_and_costs_nothing_more() {
        let p = Peers::new(limits(1));
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let mut checks = 0;
        for _ in 0..30 {
            let l = p.login(a, "test", Some("rid-1"), || {
                checks += 1;
                Some(false)
            });
            assert_eq!(l, Login::Wrong);
        }
        assert_eq!(checks, 1, "a known-bad claim is not checked again");
        // Another claim from the address is checked at once: one failure so far.
        assert_eq!(p.login(a, "test", Some("rid-2"), || Some(true)), Login::Ok);
    }

    #[test]
    fn a_right_login_clears_the_address() {
        let p = Peers::new(limits(1));
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        for _ in 0..FREE_FAILURES {
            assert_eq!(p.login(a, "test", None, || Some(false)), Login::Wrong);
        }
        let t = Instant::now();
        assert_eq!(p.login(a, "test", None, || Some(true)), Login::Ok);
        assert!(
            t.elapsed() >= SPACING,
            "the attempt after the budget waited its turn"
        );
        assert!(p.map.lock().is_empty());
    }
}
