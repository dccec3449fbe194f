//! A stream's HLS window (`-hls`): the last `-hls-window` segments, each immutable once
//! made, and who has fetched from it lately. The segmenter (`sink/hls.rs`) adds segments;
//! the server (`server/hls.rs`) serves them. Memory is bounded by the window.

use crate::util::timefmt;
use parking_lot::{Condvar, Mutex};
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// One segment: its bytes and what the playlist and the caches need to know of it.
#[derive(Debug)]
pub struct Segment {
    /// Media sequence number.
    pub seq: u64,
    pub duration: Duration,
    /// When its first frame was captured (EXT-X-PROGRAM-DATE-TIME).
    pub starts: SystemTime,
    /// When it was complete (Last-Modified).
    pub made: SystemTime,
    /// The source restarted (or the link filled an outage) just before it.
    pub discontinuity: bool,
    pub bytes: Vec<u8>,
}

/// The window and its sessions.
pub struct Segments {
    /// Names segments of this run apart from any earlier run's (caches keep them).
    pub epoch: u64,
    pub target: Duration,
    window: usize,
    inner: Mutex<Inner>,
    /// Notified when a segment is added (a playlist request waiting for the first).
    added: Condvar,
    /// Requests answered (a cache in front should keep these near one per segment).
    pub playlist_requests: std::sync::atomic::AtomicU64,
    pub segment_requests: std::sync::atomic::AtomicU64,
}

#[derive(Default)]
struct Inner {
    segments: VecDeque<Arc<Segment>>,
    /// Playlist requests waiting for the first segment ([`MAX_WAITING`] at most).
    waiting: usize,
    /// Discontinuities that have left the window (EXT-X-DISCONTINUITY-SEQUENCE).
    discontinuities_gone: u64,
    /// HLS listeners: an address and user agent, by when last seen.
    sessions: HashMap<Session, Instant>,
    /// Sessions per address.
    per_address: HashMap<IpAddr, u32>,
    /// (when seen, session) in the order seen: sessions expire from its front, so counting
    /// them costs the same whether the table is empty or full.
    order: VecDeque<(Instant, Session)>,
}

type Session = (IpAddr, String);

/// Playlist requests that may wait for a live start's first segment at once; more get the
/// `503` at once. Players asking at a start are a few; a flood cannot hold threads with it.
pub const MAX_WAITING: usize = 16;

/// Sessions tracked at most: a flood of made-up user agents cannot grow the map past it.
const MAX_SESSIONS: usize = 20_000;
/// Sessions one address (an IPv6 /64) counts as at most: a household's or an office's
/// players, not one client's made-up user agents.
pub const MAX_SESSIONS_PER_ADDRESS: u32 = 10;

impl Segments {
    pub fn new(target: Duration, window: usize) -> Segments {
        Segments {
            epoch: crate::util::random::u64().unwrap_or(1) & 0xFFFF_FFFF,
            target,
            window: window.max(1),
            inner: Mutex::new(Inner::default()),
            added: Condvar::new(),
            playlist_requests: Default::default(),
            segment_requests: Default::default(),
        }
    }

    /// Adds a segment, dropping the oldest beyond the window.
    pub fn push(&self, segment: Segment) {
        let mut g = self.inner.lock();
        g.segments.push_back(Arc::new(segment));
        while g.segments.len() > self.window {
            if let Some(old) = g.segments.pop_front() {
                if old.discontinuity {
                    g.discontinuities_gone = g.discontinuities_gone.saturating_add(1);
                }
            }
        }
        drop(g);
        self.added.notify_all();
    }

    /// The segment numbered `seq`, while it is in the window.
    pub fn get(&self, seq: u64) -> Option<Arc<Segment>> {
        self.inner
            .lock()
            .segments
            .iter()
            .find(|s| s.seq == seq)
            .cloned()
    }

    /// The newest segment's number and completion time (the playlist's version), waiting
    /// up to `wait` for the first segment when there is none yet (a player that asks at a live start gets a playlist as soon as it can play, not a
    /// 503 to retry).
    pub fn newest_within(&self, wait: Duration) -> Option<(u64, SystemTime)> {
        let deadline = Instant::now().checked_add(wait)?;
        let mut g = self.inner.lock();
        if g.segments.is_empty() && g.waiting < MAX_WAITING {
            g.waiting = g.waiting.saturating_add(1);
            while g.segments.is_empty() {
                if self.added.wait_until(&mut g, deadline).timed_out() {
                    break;
                }
            }
            g.waiting = g.waiting.saturating_sub(1);
        }
        g.segments.back().map(|s| (s.seq, s.made))
    }

    /// The playlist now (RFC 8216); `ext` is the segments' file extension, `query` what
    /// each segment URL ends with (a private stream's token, or nothing).
    pub fn playlist(&self, ext: &str, query: &str) -> String {
        let g = self.inner.lock();
        let target = self.target.as_secs_f64().ceil().max(1.0);
        let first = g.segments.front().map_or(0, |s| s.seq);
        let mut out = format!(
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{target:.0}\n\
             #EXT-X-MEDIA-SEQUENCE:{first}\n#EXT-X-DISCONTINUITY-SEQUENCE:{}\n",
            g.discontinuities_gone
        );
        for s in &g.segments {
            if s.discontinuity {
                out.push_str("#EXT-X-DISCONTINUITY\n");
            }
            out.push_str(&format!(
                "#EXT-X-PROGRAM-DATE-TIME:{}\n#EXTINF:{:.3},\nseg-{:x}-{}.{ext}{query}\n",
                timefmt::rfc3339_ms(s.starts),
                s.duration.as_secs_f64(),
                self.epoch,
                s.seq
            ));
        }
        out
    }

    /// Counts a request from an HLS client (`ip` as its address is counted).
    pub fn seen(&self, ip: IpAddr, agent: &str) {
        let mut g = self.inner.lock();
        let now = Instant::now();
        let ttl = self.session_ttl();
        g.expire(now, ttl);
        let agent: String = agent.chars().take(200).collect();
        let key = (ip, agent);
        // A session's time is refreshed at most every quarter of its life: the queue holds
        // a few entries a session, however often it asks.
        match g.sessions.get(&key) {
            Some(t) if now.duration_since(*t) < ttl / 4 => return,
            Some(_) => {}
            None => {
                let of_ip = g.per_address.get(&ip).copied().unwrap_or(0);
                if of_ip >= MAX_SESSIONS_PER_ADDRESS || g.sessions.len() >= MAX_SESSIONS {
                    return;
                }
                g.per_address.insert(ip, of_ip.saturating_add(1));
            }
        }
        g.sessions.insert(key.clone(), now);
        g.order.push_back((now, key));
    }

    /// HLS listeners now: sessions seen within two target durations.
    pub fn listeners(&self) -> usize {
        let mut g = self.inner.lock();
        g.expire(Instant::now(), self.session_ttl());
        g.sessions.len()
    }

    fn session_ttl(&self) -> Duration {
        self.target.saturating_mul(2)
    }
}

impl Inner {
    /// Drops the sessions not seen within `ttl`, from the front of the queue.
    fn expire(&mut self, now: Instant, ttl: Duration) {
        while let Some((t, _)) = self.order.front() {
            if now.duration_since(*t) < ttl {
                break;
            }
            let Some((t, key)) = self.order.pop_front() else {
                break;
            };
            // Only the session's newest entry ends it.
            if self.sessions.get(&key) == Some(&t) {
                self.sessions.remove(&key);
                if let Some(n) = self.per_address.get_mut(&key.0) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        self.per_address.remove(&key.0);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(seq: u64, discontinuity: bool) -> Segment {
        Segment {
            seq,
            duration: Duration::from_millis(3996),
            starts: SystemTime::UNIX_EPOCH,
            made: SystemTime::UNIX_EPOCH,
            discontinuity,
            bytes: vec![0; 10],
        }
    }

    #[test]
    fn the_window_slides_and_the_playlist_follows_rfc_8216() {
        let w = Segments::new(Duration::from_secs(4), 3);
        for i in 0..5 {
            w.push(seg(i, i == 1 || i == 3));
        }
        assert!(w.get(1).is_none() && w.get(2).is_some());
        let p = w.playlist("mp3", "");
        assert!(
            p.starts_with("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n"),
            "{p}"
        );
        assert!(
            p.contains("#EXT-X-MEDIA-SEQUENCE:2\n#EXT-X-DISCONTINUITY-SEQUENCE:1\n"),
            "{p}"
        );
        assert_eq!(p.matches("#EXTINF:3.996,").count(), 3);
        assert_eq!(p.matches("#EXT-X-DISCONTINUITY\n").count(), 1);
        assert!(p.contains(&format!("seg-{:x}-4.mp3", w.epoch)));
    }

    #[test]
    fn sessions_count_once_per_address_and_agent() {
        let w = Segments::new(Duration::from_secs(4), 3);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        w.seen(ip, "a");
        w.seen(ip, "a");
        w.seen(ip, "b");
        assert_eq!(w.listeners(), 2);
        for i in 0..50 {
            w.seen(ip, &format!("made-up {i}"));
        }
        assert_eq!(w.listeners(), MAX_SESSIONS_PER_ADDRESS as usize);
        w.seen("127.0.0.2".parse().unwrap(), "a");
        assert_eq!(w.listeners(), MAX_SESSIONS_PER_ADDRESS as usize + 1);
    }

    #[test]
    fn sessions_expire_in_order() {
        let w = Segments::new(Duration::from_millis(20), 3);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        w.seen(ip, "a");
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(w.listeners(), 0);
        let g = w.inner.lock();
        assert!(g.order.is_empty() && g.per_address.is_empty());
    }
}
