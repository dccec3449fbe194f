//! The link: carries the stream between two ringcast instances over an unreliable network so
//! that outages shorter than `-link-delay` are never heard (`docs/link-protocol.md`).
//!
//! Origin side: a [`fragments::Cutter`] in the thread that fills the ring cuts fragments into
//! the [`fragments::FragmentLog`]; `origin.rs` serves them to pullers and pushes them to a
//! receiver. Receiver side: `receiver.rs` dials the origin (pull) or takes a pusher, verifies
//! every message, and hands them to the `link-play` thread, whose [`playout::Playout`] puts
//! frames into the ring at the origin's pace. Threads: `link-pull`, `link-push`, `link-play`,
//! and the HTTP connection threads of link sessions.
//!
//! A boundary module: it reads bytes from outside, so the compiler refuses string slicing,
//! indexing, unchecked arithmetic and lossy casts here (README, Security).
#![cfg_attr(
    not(test),
    deny(
        clippy::string_slice,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects,
        clippy::cast_possible_truncation,
        clippy::cast_possible_wrap,
        clippy::cast_sign_loss
    )
)]

pub mod cutter;
pub mod fragments;
pub mod handshake;
pub mod origin;
pub mod path_log;
pub mod paths;
pub mod player;
pub mod playout;
pub mod receiver;
pub mod redial;
pub mod wire;

pub use redial::redial;

use crate::config::link::LinkConfig;
use crate::config::{InputSpec, StreamConfig};
use crossbeam_channel::{bounded, Receiver, Sender};
use fragments::FragmentLog;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use wire::Msg;

/// The link's paths on the HTTP port.
pub const PATH_CHALLENGE: &str = "/.ringcast/link/challenge";
pub const PATH_PULL: &str = "/.ringcast/link/pull";
pub const PATH_PUSH: &str = "/.ringcast/link/push";
/// A link operation, at the end of a stream's path (`/live/.ringcast/link/pull`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Challenge,
    Pull,
    Push,
}

/// Splits a request path into the stream's path and the link operation at its end, if any
/// (`/live/.ringcast/link/pull` is `/live` and `Pull`; `/.ringcast/link/pull` is `/`).
pub fn split_path(path: &str) -> (&str, Option<Op>) {
    for (suffix, op) in [
        (PATH_CHALLENGE, Op::Challenge),
        (PATH_PULL, Op::Pull),
        (PATH_PUSH, Op::Push),
    ] {
        if let Some(base) = path.strip_suffix(suffix) {
            return (if base.is_empty() { "/" } else { base }, Some(op));
        }
    }
    (path, None)
}

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
/// Verified messages waiting for the link player, in number and in bytes. A session that
/// finds it full for [`STALL`] (the player is stuck, or a peer floods) ends instead of
/// buffering without bound.
pub const INBOX_MESSAGES: usize = 4096;
pub const INBOX_BYTES: usize = 8 << 20;

/// Counters for the log and /metrics.
#[derive(Default)]
pub struct LinkStats {
    /// Sessions that connected (a handshake answered 200, or a pusher let in).
    pub connects: AtomicU64,
    /// Dials that did not become a session.
    pub dial_failures: AtomicU64,
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

/// A message, its local arrival time (µs, [`local_us`]) and the path it came by.
pub type Inbound = (Msg, i64, usize);

/// Link state every thread can reach (through `Stream`).
pub struct LinkState {
    pub cfg: LinkConfig,
    pub log: FragmentLog,
    pub stats: LinkStats,
    /// Receiver: the newest fragment taken, where a reconnect resumes.
    pub held: Mutex<Option<(u64, u64)>>,
    pub inbox: Sender<Inbound>,
    /// Bytes of the messages in the inbox ([`Msg::size`]), held under [`INBOX_BYTES`].
    pub inbox_bytes: std::sync::atomic::AtomicUsize,
    inbox_rx: Mutex<Option<Receiver<Inbound>>>,
    /// Key of the challenge nonces' MACs: random, this process only.
    nonce_key: [u8; 32],
    /// Nonces already used (kept until they expire). Only requests that proved the link key
    /// add to it, so unauthenticated challenge requests cannot fill or flush it.
    used_nonces: Mutex<Vec<(String, Instant)>>,
    sessions: Mutex<HashMap<String, u64>>,
    next_gen: AtomicU64,
    /// Each path's state: one per `-link-pull`/`-link-push`, or a slot per path number a
    /// pusher may name on a `-link-receive` receiver.
    pub paths: paths::Paths,
}

impl LinkState {
    pub fn new(cfg: LinkConfig) -> std::io::Result<LinkState> {
        let (tx, rx) = bounded(INBOX_MESSAGES);
        let mut nonce_key = [0u8; 32];
        nonce_key.copy_from_slice(&crate::util::random::bytes(32)?);
        let n = if cfg.receive {
            crate::config::link::MAX_PATHS
        } else {
            cfg.pull.len().max(cfg.push.len())
        };
        Ok(LinkState {
            log: FragmentLog::new(cfg.keep),
            paths: paths::Paths::new(n),
            cfg,
            stats: LinkStats::default(),
            held: Mutex::new(None),
            inbox: tx,
            inbox_bytes: std::sync::atomic::AtomicUsize::new(0),
            inbox_rx: Mutex::new(Some(rx)),
            nonce_key,
            used_nonces: Mutex::new(Vec::new()),
            sessions: Mutex::new(HashMap::new()),
            next_gen: AtomicU64::new(1),
        })
    }

    /// How long a handshake step may take: three of the last round trips, 0.3 s to 3 s. An
    /// attempt lost in an outage then costs little, so the first one after the link is back
    /// comes soon.
    pub fn handshake_timeout(&self, path: usize) -> Duration {
        match self.paths.get(path).rtt_us.load(Relaxed) {
            0 => Duration::from_secs(3),
            rtt => Duration::from_micros(rtt)
                .saturating_mul(3)
                .clamp(Duration::from_millis(300), Duration::from_secs(3)),
        }
    }

    pub fn record_handshake(&self, path: usize, rtt: Duration) {
        self.paths
            .get(path)
            .rtt_us
            .store(micros(rtt).max(1), Relaxed);
    }

    /// Path `path` is up or down (the link is up while any path is: `paths.any_up()`).
    pub fn set_up(&self, path: usize, up: bool) {
        self.paths.get(path).up.store(up, Relaxed);
    }

    /// The receiving end of the inbox, for the link player (once).
    pub fn take_inbox(&self) -> Option<Receiver<Inbound>> {
        self.inbox_rx.lock().take()
    }

    /// A fresh challenge nonce, valid once for [`NONCE_LIFE`]. Stateless: the nonce is its
    /// issue time and 8 random bytes with a MAC under this process's nonce key, so issuing
    /// one stores nothing and no number of challenge requests can crowd out another's.
    pub fn issue_nonce(&self) -> std::io::Result<String> {
        let mut body = local_ms().to_be_bytes().to_vec();
        body.extend_from_slice(&crate::util::random::bytes(8)?);
        let mac = wire::hmac(&self.nonce_key, &[&body]);
        body.extend_from_slice(mac.get(..16).unwrap_or_default());
        Ok(hex(&body))
    }

    /// Consumes a nonce we issued; false if not ours, used or expired. Call only for a
    /// request that proved the link key.
    pub fn take_nonce(&self, n: &str) -> bool {
        let Some(raw) = unhex(n).filter(|r| r.len() == 32) else {
            return false;
        };
        let (body, mac) = raw.split_at(16);
        let want = wire::hmac(&self.nonce_key, &[body]);
        if !crate::http::auth::same_secret_bytes(mac, want.get(..16).unwrap_or_default()) {
            return false;
        }
        let issued = u64::from_be_bytes(
            body.get(..8)
                .and_then(|b| b.try_into().ok())
                .unwrap_or_default(),
        );
        let age = local_ms().saturating_sub(issued);
        if age > micros(NONCE_LIFE) / 1000 {
            return false;
        }
        let mut used = self.used_nonces.lock();
        used.retain(|(_, t)| t.elapsed() < NONCE_LIFE);
        if used.iter().any(|(x, _)| x == n) {
            return false;
        }
        used.push((n.to_string(), Instant::now()));
        true
    }

    /// The silence frames a receiver has played (None on an origin: it cannot know what
    /// the far side heard).
    fn silence(&self, receiver: bool) -> Option<u64> {
        receiver.then(|| self.stats.silence_frames.load(Relaxed))
    }

    /// A dial on `path` answered: one more session, and the path's return said.
    pub fn connected(&self, receiver: bool, path: usize) {
        self.set_up(path, true);
        self.stats.connects.fetch_add(1, Relaxed);
        let p = self.paths.get(path);
        p.connects.fetch_add(1, Relaxed);
        let line = p
            .log
            .lock()
            .connected(Instant::now(), self.silence(receiver));
        path_log::emit(line);
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

    /// A session ended: forget `who` unless a newer session took over (so a receiver that
    /// restarts with a new id leaves nothing behind).
    pub fn end_session(&self, who: &str, gen: u64) {
        let mut s = self.sessions.lock();
        if s.get(who) == Some(&gen) {
            s.remove(who);
        }
    }

    /// Sessions remembered now (for tests and metrics).
    #[cfg(test)]
    pub fn sessions(&self) -> usize {
        self.sessions.lock().len()
    }

    /// The MAC a handshake request carries, as hex.
    pub fn request_mac(&self, parts: &[&str]) -> String {
        let joined = parts.join("|");
        hex(&wire::hmac(&self.cfg.key, &[joined.as_bytes()]))
    }
}

/// The path number a dialler names in its id (`abcd.1`: path 1; no suffix: path 0).
pub fn path_of(id: &str) -> usize {
    id.rsplit_once('.')
        .and_then(|(_, n)| n.parse::<usize>().ok())
        .unwrap_or(0)
}

/// Whether this instance's input is the link.
pub fn is_receiver(cfg: &StreamConfig) -> bool {
    matches!(cfg.input, InputSpec::Link)
}

/// A frame's media duration, when the format tells it: read from the frame's header, or for
/// headerless bytes their length over the byte rate the configuration knows.
pub fn frame_duration(cfg: &StreamConfig, frame: &[u8]) -> Option<Duration> {
    if !cfg.framer.headerless {
        return (cfg.framer.header_duration)(frame);
    }
    if cfg.input == InputSpec::Tone {
        Some(Duration::from_secs_f64(
            frame.len() as f64 / (crate::config::stream::TONE_SAMPLE_RATE as f64 * 2.0),
        ))
    } else if cfg.source_bandwidth > 0 {
        Some(Duration::from_secs_f64(
            frame.len() as f64 / cfg.source_bandwidth as f64,
        ))
    } else {
        None
    }
}

/// Wall-clock microseconds since 1970 (capture and send times on the wire).
pub fn wall_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, micros)
}

/// A duration in µs (saturating: no duration here comes near 584 000 years).
pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// How long a challenge nonce may be used.
pub const NONCE_LIFE: Duration = Duration::from_secs(30);

/// Monotonic milliseconds since this process started (nonce issue times).
fn local_ms() -> u64 {
    u64::try_from(local_us() / 1000).unwrap_or(0)
}

/// Hex back to bytes; `None` for anything else.
fn unhex(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if b.len() % 2 != 0 {
        return None;
    }
    b.chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).ok()?, 16).ok())
        .collect()
}

/// Monotonic microseconds since this process started (the receiver's playout clock).
pub fn local_us() -> i64 {
    static START: OnceLock<Instant> = OnceLock::new();
    i64::try_from(START.get_or_init(Instant::now).elapsed().as_micros()).unwrap_or(i64::MAX)
}

pub use crate::util::random::to_hex as hex;

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
        .map(|(k, v)| format!("{k}={}", crate::http::url::encode_component(v)))
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
            pull: Vec::new(),
            push: Vec::new(),
            receive: false,
            delay: Duration::from_secs(5),
            fragment: Duration::from_millis(250),
            keep: Duration::from_secs(30),
        })
        .unwrap();
        let n = st.issue_nonce().unwrap();
        assert!(st.take_nonce(&n));
        assert!(!st.take_nonce(&n), "a nonce works once");
        // A flood of challenges evicts nothing: an early nonce still works after them.
        let early = st.issue_nonce().unwrap();
        for _ in 0..10_000 {
            st.issue_nonce().unwrap();
        }
        assert!(st.take_nonce(&early));
        let mut forged = st.issue_nonce().unwrap().into_bytes();
        forged[40] = if forged[40] == b'0' { b'1' } else { b'0' };
        assert!(!st.take_nonce(std::str::from_utf8(&forged).unwrap()));
        assert!(!st.take_nonce("zz") && !st.take_nonce(""));
        let a = st.begin_session("x");
        let b = st.begin_session("x");
        assert!(
            !st.is_current("x", a) && st.is_current("x", b),
            "the newest session wins"
        );
        st.end_session("x", a);
        assert_eq!(st.sessions(), 1, "an old session's end keeps the newer one");
        st.end_session("x", b);
        assert_eq!(st.sessions(), 0, "ended sessions are pruned");
    }
}
