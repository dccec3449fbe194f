//! Who is listening: one entry per connected listener, for `/admin/listeners` and Icecast's
//! `/admin/listclients`, and the handle `/admin/kick` (`/admin/killclient`) ends one by.
//!
//! An entry is small (its address, user, user agent and two counters the sender adds to
//! after each batch) and is registered once the listener has its response head. Kicking
//! shuts the listener's socket down: its sender, in a write or asleep in the ring until the
//! next batch, fails its next send and ends.
//!
//! Beside the sender (`sender.rs`), which counts into its entry and checks its kick; the
//! server keeps the one `Audience` and answers the admin's calls from it.

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

/// The most bytes of a user agent an entry keeps.
const MAX_AGENT: usize = 200;

/// One connected listener.
#[derive(Debug)]
pub struct Entry {
    pub id: u64,
    pub peer: SocketAddr,
    pub mount: String,
    /// The `-listener-users` name it logged in as.
    pub user: Option<String>,
    pub agent: String,
    pub tls: bool,
    pub since: Instant,
    /// Bytes written to it, and frames it skipped for being slow.
    pub bytes: AtomicU64,
    pub skips: AtomicU64,
    kicked: AtomicBool,
    /// Its socket, for a kick. Valid while the entry is registered: the sender drops its
    /// [`Registered`] before it closes the socket.
    fd: RawFd,
}

impl Entry {
    pub fn kicked(&self) -> bool {
        self.kicked.load(Relaxed)
    }
}

/// Every connected listener, by id (ids count up from 1 and are never reused).
#[derive(Default)]
pub struct Audience {
    next: AtomicU64,
    map: Mutex<BTreeMap<u64, Arc<Entry>>>,
}

/// What a new entry is made of.
pub struct Who {
    pub peer: SocketAddr,
    pub mount: String,
    pub user: Option<String>,
    pub agent: String,
    pub tls: bool,
    pub fd: RawFd,
}

impl Audience {
    /// Registers a listener until the returned guard drops.
    pub fn add(&self, who: Who) -> Registered<'_> {
        let id = self.next.fetch_add(1, Relaxed).saturating_add(1);
        // A user agent may be most of an 8 KiB request head; the list keeps its start.
        let mut agent = who.agent;
        if agent.len() > MAX_AGENT {
            let cut = (0..=MAX_AGENT)
                .rev()
                .find(|&i| agent.is_char_boundary(i))
                .unwrap_or(0);
            agent.truncate(cut);
        }
        let entry = Arc::new(Entry {
            id,
            peer: who.peer,
            mount: who.mount,
            user: who.user,
            agent,
            tls: who.tls,
            since: Instant::now(),
            bytes: AtomicU64::new(0),
            skips: AtomicU64::new(0),
            kicked: AtomicBool::new(false),
            fd: who.fd,
        });
        self.map.lock().insert(id, Arc::clone(&entry));
        Registered {
            audience: self,
            entry,
        }
    }

    /// The listeners now, oldest first (of one mount, or all). A kicked one is gone from
    /// the list at once, though its sender may notice only at its next batch.
    pub fn list(&self, mount: Option<&str>) -> Vec<Arc<Entry>> {
        self.map
            .lock()
            .values()
            .filter(|e| !e.kicked() && mount.is_none_or(|m| e.mount == m))
            .cloned()
            .collect()
    }

    /// Ends listener `id` (on `mount`, when given); false when there is no such listener.
    pub fn kick(&self, id: u64, mount: Option<&str>) -> bool {
        let map = self.map.lock();
        let Some(e) = map.get(&id).filter(|e| mount.is_none_or(|m| e.mount == m)) else {
            return false;
        };
        e.kicked.store(true, Relaxed);
        // Under the lock, so the socket cannot be closed (and its number reused) meanwhile;
        // shutdown does not block.
        crate::os::sys::shutdown_both(e.fd);
        true
    }
}

/// A registered listener; dropping it removes the entry.
pub struct Registered<'a> {
    audience: &'a Audience,
    pub entry: Arc<Entry>,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.audience.map.lock().remove(&self.entry.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listeners_are_listed_until_they_leave_and_a_kick_finds_one_by_id() {
        let a = Audience::default();
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let who = |mount: &str| Who {
            peer: "127.0.0.1:5000".parse().unwrap(),
            mount: mount.into(),
            user: None,
            agent: "test".into(),
            tls: false,
            fd: std::os::fd::AsRawFd::as_raw_fd(&sock),
        };
        let one = a.add(who("/a"));
        let two = a.add(who("/b"));
        assert_eq!((one.entry.id, two.entry.id), (1, 2));
        assert_eq!(a.list(None).len(), 2);
        assert_eq!(a.list(Some("/b")).len(), 1);
        assert!(!a.kick(2, Some("/a")), "the id must be on the named mount");
        assert!(a.kick(2, None));
        assert!(two.entry.kicked() && !one.entry.kicked());
        drop(two);
        assert!(!a.kick(2, None));
        assert_eq!(a.list(None).len(), 1);
        assert_eq!(a.add(who("/a")).entry.id, 3, "ids are not reused");
        let long = a.add(Who {
            agent: "é".repeat(500),
            ..who("/a")
        });
        assert_eq!(long.entry.agent.len(), 200, "cut at a character boundary");
    }
}
