//! The link: carries the stream between two ringcast instances over an unreliable network so
//! that outages shorter than `-link-delay` are never heard (`docs/link-protocol.md`).
//!
//! Origin side: a [`fragments::Cutter`] in the thread that fills the ring cuts fragments into
//! the [`fragments::FragmentLog`]; `origin.rs` serves them to pullers and pushes them to a
//! receiver. Receiver side: `receiver.rs` dials the origin (pull) or takes a pusher, verifies
//! every message, and hands them to the `link-play` thread, whose [`playout::Playout`] puts
//! frames into the ring at the origin's pace. Threads: `link-pull`, `link-push`, `link-play`,
//! and the HTTP connection threads of link sessions.

boundary! {
    pub mod playout;
    pub mod receiver;
    pub mod wire;
}
pub mod fragments;
pub mod origin;

use crate::config::{Config, InputSpec};
use crate::frame::Mp3Header;
use crate::url::Url;
use crossbeam_channel::{bounded, Receiver, Sender};
use fragments::FragmentLog;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use wire::Msg;

/// The link's paths on the HTTP port.
pub const PATH_CHALLENGE: &str = "/.ringcast/link/challenge";
pub const PATH_PULL: &str = "/.ringcast/link/pull";
pub const PATH_PUSH: &str = "/.ringcast/link/push";
/// A link that carries nothing (not even a heartbeat) for this long is dead.
pub const STALL: Duration = Duration::from_secs(2);
/// Heartbeats (and push acks) go out after this long without other traffic.
pub const HEARTBEAT: Duration = Duration::from_millis(500);
/// Redial backoff: short and tightly capped, because every second spent redialling after
/// the link is back comes out of the receiver's buffer, or (after an outage longer than the
/// delay) keeps listeners on silence. An attempt is a connect and a small GET: 4 a second is
/// nothing for either end.
pub const REDIAL_MIN: Duration = Duration::from_millis(50);
pub const REDIAL_MAX: Duration = Duration::from_millis(250);
/// Verified messages waiting for the link player. A session that finds it full for
/// [`STALL`] (the player is stuck, or a peer floods) ends instead of buffering without bound.
pub const INBOX_MESSAGES: usize = 4096;

#[derive(Debug, Clone)]
pub struct LinkConfig {
    pub key: Vec<u8>,
    pub pull: Option<Url>,
    pub push: Option<Url>,
    pub receive: bool,
    pub delay: Duration,
    pub fragment: Duration,
    /// How much the origin keeps for receivers that come back.
    pub keep: Duration,
}

/// Counters for the log and /metrics.
#[derive(Default)]
pub struct LinkStats {
    pub up: AtomicBool,
    pub connects: AtomicU64,
    pub stalls: AtomicU64,
    pub refused: AtomicU64,
    pub bad_messages: AtomicU64,
    pub gaps: AtomicU64,
    pub duplicates: AtomicU64,
    pub silence_frames: AtomicU64,
    pub frames_dropped: AtomicU64,
    pub fragments_refused: AtomicU64,
    pub buffer_ms: AtomicU64,
}

/// A message and its local arrival time (µs, [`local_us`]).
pub type Inbound = (Msg, i64);

/// Link state every thread can reach (through `Shared`).
pub struct LinkState {
    pub cfg: LinkConfig,
    pub log: FragmentLog,
    pub stats: LinkStats,
    /// Receiver: the newest fragment taken, where a reconnect resumes.
    pub held: Mutex<Option<(u64, u64)>>,
    pub inbox: Sender<Inbound>,
    inbox_rx: Mutex<Option<Receiver<Inbound>>>,
    nonces: Mutex<Vec<(String, Instant)>>,
    sessions: Mutex<HashMap<String, u64>>,
    next_gen: AtomicU64,
    /// The last handshake's round trip, µs (0 = none yet).
    handshake_rtt_us: AtomicU64,
}

impl LinkState {
    pub fn new(cfg: LinkConfig) -> LinkState {
        let (tx, rx) = bounded(INBOX_MESSAGES);
        LinkState {
            log: FragmentLog::new(cfg.keep),
            cfg,
            stats: LinkStats::default(),
            held: Mutex::new(None),
            inbox: tx,
            inbox_rx: Mutex::new(Some(rx)),
            nonces: Mutex::new(Vec::new()),
            sessions: Mutex::new(HashMap::new()),
            next_gen: AtomicU64::new(1),
            handshake_rtt_us: AtomicU64::new(0),
        }
    }

    /// How long a handshake step may take: three of the last round trips, 0.3 s to 3 s. An
    /// attempt lost in an outage then costs little, so the first one after the link is back
    /// comes soon.
    pub fn handshake_timeout(&self) -> Duration {
        match self.handshake_rtt_us.load(Relaxed) {
            0 => Duration::from_secs(3),
            rtt => (Duration::from_micros(rtt) * 3)
                .clamp(Duration::from_millis(300), Duration::from_secs(3)),
        }
    }

    pub fn record_handshake(&self, rtt: Duration) {
        self.handshake_rtt_us
            .store(rtt.as_micros().max(1) as u64, Relaxed);
    }

    /// The receiving end of the inbox, for the link player (once).
    pub fn take_inbox(&self) -> Option<Receiver<Inbound>> {
        self.inbox_rx.lock().take()
    }

    /// A fresh challenge nonce, valid once for 30 s.
    pub fn issue_nonce(&self) -> String {
        let n = random_hex(16);
        let mut all = self.nonces.lock();
        all.retain(|(_, t)| t.elapsed() < Duration::from_secs(30));
        if all.len() >= 256 {
            all.remove(0);
        }
        all.push((n.clone(), Instant::now()));
        n
    }

    /// Consumes a nonce we issued; false if unknown, used or expired.
    pub fn take_nonce(&self, n: &str) -> bool {
        let mut all = self.nonces.lock();
        all.retain(|(_, t)| t.elapsed() < Duration::from_secs(30));
        match all.iter().position(|(x, _)| x == n) {
            Some(i) => {
                all.remove(i);
                true
            }
            None => false,
        }
    }

    /// Starts a session for `who`; any older session for `who` sees it is superseded.
    pub fn begin_session(&self, who: &str) -> u64 {
        let gen = self.next_gen.fetch_add(1, Relaxed);
        self.sessions.lock().insert(who.to_string(), gen);
        gen
    }

    pub fn is_current(&self, who: &str, gen: u64) -> bool {
        self.sessions.lock().get(who) == Some(&gen)
    }

    /// The MAC a handshake request carries, as hex.
    pub fn request_mac(&self, parts: &[&str]) -> String {
        let joined = parts.join("|");
        hex(&wire::hmac(&self.cfg.key, &[joined.as_bytes()]))
    }
}

/// The dialling side's loop (`link-pull`, `link-push`): run a session until it ends, then
/// redial after a short, capped, jittered backoff, reset by a session that lasted.
pub fn redial(
    shared: &crate::shared::Shared,
    link: &LinkState,
    what: &str,
    url: &Url,
    mut session: impl FnMut() -> std::io::Result<()>,
) {
    let mut backoff = crate::backoff::Backoff::new(REDIAL_MIN, REDIAL_MAX);
    while !shared.shutdown.is_set() {
        let started = Instant::now();
        link.stats.connects.fetch_add(1, Relaxed);
        let result = session();
        link.stats.up.store(false, Relaxed);
        if let Err(e) = result {
            log::warn!("link {what} {}: {e}", url.redacted());
        }
        if started.elapsed() > Duration::from_secs(10) {
            backoff.reset();
        }
        let d = backoff.next_delay();
        log::info!(
            "link {what} {}: redialling in {:.2}s",
            url.redacted(),
            d.as_secs_f64()
        );
        if shared.shutdown.sleep(d) {
            break;
        }
    }
}

/// Whether this instance's input is the link.
pub fn is_receiver(cfg: &Config) -> bool {
    matches!(cfg.input, InputSpec::Link)
}

/// A frame's media duration, when the format tells it.
pub fn frame_duration(cfg: &Config, frame: &[u8]) -> Option<Duration> {
    match cfg.framer.name {
        "mp3" => Mp3Header::parse(frame)
            .map(|h| Duration::from_secs_f64(h.samples() as f64 / h.sample_rate as f64)),
        "raw" if cfg.input == InputSpec::Tone => Some(Duration::from_secs_f64(
            frame.len() as f64 / (crate::source::tone::SAMPLE_RATE as f64 * 2.0),
        )),
        "raw" if cfg.source_bandwidth > 0 => Some(Duration::from_secs_f64(
            frame.len() as f64 / cfg.source_bandwidth as f64,
        )),
        _ => None,
    }
}

/// Wall-clock microseconds since 1970 (capture and send times on the wire).
pub fn wall_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Monotonic microseconds since this process started (the receiver's playout clock).
pub fn local_us() -> i64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_micros() as i64
}

/// Unpredictable bytes from the kernel (nonces, epochs, ids).
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    let ok = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .is_ok();
    if !ok {
        // Not a secret-grade fallback, but /dev/urandom exists on every Linux.
        let seed = wall_us() ^ (std::process::id() as u64) << 32;
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (seed.rotate_left(i as u32 * 7) ^ i as u64) as u8;
        }
    }
    buf
}

pub fn random_u64() -> u64 {
    let b = random_bytes(8);
    u64::from_be_bytes(b.try_into().unwrap_or_default()).max(1)
}

pub fn random_hex(n: usize) -> String {
    hex(&random_bytes(n))
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `epoch.seq`, or `-` for none.
pub fn fmt_pos(p: Option<(u64, u64)>) -> String {
    p.map_or_else(|| "-".to_string(), |(e, s)| format!("{e}.{s}"))
}

pub fn parse_pos(s: &str) -> Option<(u64, u64)> {
    let (e, q) = s.split_once('.')?;
    Some((e.parse().ok()?, q.parse().ok()?))
}

/// The request path for a handshake, with its MAC'd parameters in a fixed order.
pub fn handshake_query(params: &[(&str, &str)], mac: &str) -> String {
    let mut q: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", crate::url::encode_component(v)))
        .collect();
    q.push(format!("mac={mac}"));
    q.join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_and_nonces() {
        assert_eq!(parse_pos("12.34"), Some((12, 34)));
        assert_eq!(parse_pos(&fmt_pos(Some((1, 2)))), Some((1, 2)));
        assert_eq!(parse_pos("-"), None);
        let st = LinkState::new(LinkConfig {
            key: b"k".to_vec(),
            pull: None,
            push: None,
            receive: false,
            delay: Duration::from_secs(5),
            fragment: Duration::from_millis(250),
            keep: Duration::from_secs(30),
        });
        let n = st.issue_nonce();
        assert_eq!(n.len(), 32);
        assert!(st.take_nonce(&n));
        assert!(!st.take_nonce(&n), "a nonce works once");
        let a = st.begin_session("x");
        let b = st.begin_session("x");
        assert!(
            !st.is_current("x", a) && st.is_current("x", b),
            "the newest session wins"
        );
    }
}
