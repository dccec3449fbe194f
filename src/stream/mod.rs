//! `Stream`: one stream's state, held by every thread that works on it — its ring, header
//! and metadata, counters, listener count, source client slot, link state and its own stop
//! flag. The server holds one per mount (or the one stream without `-mount`) and starts its
//! threads (`server/mounts.rs`).

pub mod breaks;
pub mod mute;
pub mod segments;
pub mod source_client_slot;
pub mod stats;

use crate::config::StreamConfig;
use crate::icy::meta::Meta;
use crate::os::heartbeat::Heartbeat;
use crate::os::shutdown::Shutdown;
use crate::ring::{Ring, Wake};
use crate::stream::stats::{RateMeter, Stats};
use parking_lot::{Condvar, Mutex};
use source_client_slot::SourceClientSlot;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// How long frames may gather before sleeping listeners get them, unless `-burst-bytes`
/// covers more (see `ring/wake.rs`).
pub const WAKE_INTERVAL: Duration = Duration::from_millis(500);

pub struct Stream {
    pub cfg: Arc<StreamConfig>,
    pub ring: Ring,
    pub stats: Stats,
    /// Ends this stream's threads: server shutdown, or its mount removed or changed.
    pub stop: Shutdown,
    /// The source reader's sign of life, for the systemd watchdog.
    pub reader_beat: Heartbeat,
    /// Stream name, genre, title…
    pub meta: Meta,
    /// The live source client, when sources push to us.
    pub source_client: SourceClientSlot,
    /// When the source last opened (for status pages).
    pub stream_started: Mutex<Option<SystemTime>>,
    pub listener_peak: AtomicUsize,
    /// The stream's measured rate (listeners' send buffers follow it).
    pub rate: RateMeter,
    /// The bitrate its frames carry (kb/s, a running average; 0 until a frame whose
    /// duration its format tells), for `icy-br`, status and the page.
    frame_kbps: std::sync::atomic::AtomicU32,
    /// The stream's Content-Type: the flags', or a link origin's (see `set_content_type`).
    content_type: Mutex<String>,
    /// `-content-type` was given: it wins over what a link origin says.
    content_type_fixed: bool,
    source_state: AtomicU8,
    /// `/admin/mute`: listeners hear silence (`stream/mute.rs`).
    muted: AtomicBool,
    /// `-hls`: the segments published, and who fetches them.
    pub hls: Option<segments::Segments>,
    /// Where a new run of audio begins (for HLS discontinuities).
    pub breaks: breaks::Breaks,
    /// `/admin/next`: the playlist moves on to its next file.
    skip: AtomicBool,
    listeners: Mutex<usize>,
    listeners_changed: Condvar,
}

/// What the source is doing, for STATUS lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum SourceState {
    Opening = 0,
    Open = 1,
    Reopening = 2,
    Idle = 3,
    Ended = 4,
}

impl SourceState {
    pub fn name(self) -> &'static str {
        match self {
            SourceState::Opening => "opening",
            SourceState::Open => "open",
            SourceState::Reopening => "reopening",
            SourceState::Idle => "closed (no listeners)",
            SourceState::Ended => "ended",
        }
    }
}

impl Stream {
    pub fn new(cfg: StreamConfig) -> std::io::Result<Stream> {
        let cfg = Arc::new(cfg);
        Ok(Stream {
            ring: Ring::new(
                cfg.source_buffer,
                cfg.header_bytes > 0,
                Wake {
                    cap: WAKE_INTERVAL,
                    burst_bytes: cfg.burst_bytes,
                },
            ),
            stats: Stats::default(),
            stop: Shutdown::default(),
            reader_beat: Heartbeat::default(),
            meta: Meta::new(cfg.info.clone(), &cfg.title),
            source_client: SourceClientSlot::default(),
            stream_started: Mutex::new(None),
            listener_peak: AtomicUsize::new(0),
            rate: RateMeter::default(),
            frame_kbps: Default::default(),
            content_type: Mutex::new(cfg.content_type.clone()),
            content_type_fixed: cfg.content_type_given,
            source_state: AtomicU8::new(SourceState::Opening as u8),
            muted: AtomicBool::new(cfg.mute),
            skip: AtomicBool::new(false),
            hls: cfg
                .hls
                .as_ref()
                .map(|h| segments::Segments::new(h.segment, h.window)),
            breaks: breaks::Breaks::default(),
            listeners: Mutex::new(0),
            listeners_changed: Condvar::new(),
            cfg,
        })
    }

    /// Notes a frame of `len` bytes lasting `duration` (MP3 and ADTS headers tell it): the
    /// bitrate is their running average over the last 16 or so, so a VBR stream shows its
    /// mean and a CBR stream its own figure exactly.
    pub fn note_frame(&self, len: usize, duration: Option<Duration>) {
        let Some(d) = duration.filter(|d| !d.is_zero()) else {
            return;
        };
        let kbps = (len as f64 * 8.0 / d.as_secs_f64() / 1000.0).round();
        if !(1.0..100_000.0).contains(&kbps) {
            return;
        }
        let now = kbps as u32;
        let old = self.frame_kbps.load(Relaxed);
        let new = if old == 0 {
            now
        } else {
            ((u64::from(old) * 15 + u64::from(now) + 8) / 16) as u32
        };
        self.frame_kbps.store(new, Relaxed);
    }

    /// The bitrate in kb/s as text: the source's own `icy-br`/`ice-bitrate`, else what its
    /// frames carry; empty when neither is known.
    pub fn bitrate(&self) -> String {
        let given = self.meta.info().bitrate;
        if !given.is_empty() {
            return given;
        }
        match self.frame_kbps.load(Relaxed) {
            0 => String::new(),
            k => k.to_string(),
        }
    }

    /// The stream's Content-Type now.
    pub fn content_type(&self) -> String {
        self.content_type.lock().clone()
    }

    /// Takes a link origin's Content-Type, unless `-content-type` fixed ours or it is not a
    /// valid header value. True when it changed.
    pub fn set_content_type(&self, ct: &str) -> bool {
        if self.content_type_fixed || ct.is_empty() || ct.contains(['\r', '\n']) {
            return false;
        }
        let mut current = self.content_type.lock();
        if *current == ct {
            return false;
        }
        *current = ct.to_string();
        true
    }

    /// The stream's path ("/" without mounts).
    pub fn mount(&self) -> &str {
        &self.cfg.mount
    }

    /// Whether the stream is muted (`-mute`, `/admin/mute`): listeners hear silence in the
    /// stream's own format, and stay.
    pub fn is_muted(&self) -> bool {
        self.muted.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Mutes or unmutes; true when that changed something.
    pub fn set_muted(&self, on: bool) -> bool {
        self.muted.swap(on, std::sync::atomic::Ordering::Relaxed) != on
    }

    /// Asks the playlist to move on to its next file.
    pub fn request_skip(&self) {
        self.skip.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether a skip was asked for (and clears it).
    pub fn take_skip(&self) -> bool {
        self.skip.swap(false, std::sync::atomic::Ordering::Relaxed)
    }

    pub fn on_air(&self) -> bool {
        match self.cfg.input {
            crate::config::InputSpec::Push { .. } => self.source_client.connected(),
            _ => self.source_state() == SourceState::Open,
        }
    }

    /// The input (not a source client) is being opened for the first time: at the server's
    /// start, before its first open has come back (it has never been on air).
    pub fn opening(&self) -> bool {
        !matches!(self.cfg.input, crate::config::InputSpec::Push { .. })
            && self.source_state() == SourceState::Opening
            && self.stream_started.lock().is_none()
    }

    /// Since when the source is on air: a source client's connection, else the input's
    /// last opening (None while off air).
    pub fn on_air_since(&self) -> Option<SystemTime> {
        match self.cfg.input {
            crate::config::InputSpec::Push { .. } => self.source_client.since(),
            _ => self.on_air().then(|| *self.stream_started.lock()).flatten(),
        }
    }

    /// Counts a new listener unless this stream's `-max-clients` are already connected.
    pub fn enter_listener(self: &Arc<Self>) -> Option<ListenerGuard> {
        let mut n = self.listeners.lock();
        if *n >= self.cfg.max_clients {
            return None;
        }
        *n += 1;
        self.listener_peak.fetch_max(*n, Relaxed);
        self.listeners_changed.notify_all();
        Some(ListenerGuard(Arc::clone(self)))
    }

    /// The source is over for good (it ended with -reopen=false, or shutdown). The ring's
    /// own end flag can differ: stopping a stuck source (a FIFO with no writer) ends the ring
    /// while the source state is left as it was. This asks the source.
    pub fn source_ended(&self) -> bool {
        self.source_state() == SourceState::Ended
    }

    pub fn set_source_state(&self, s: SourceState) {
        if s == SourceState::Open {
            *self.stream_started.lock() = Some(SystemTime::now());
        }
        self.source_state.store(s as u8, Relaxed);
    }

    pub fn source_state(&self) -> SourceState {
        match self.source_state.load(Relaxed) {
            0 => SourceState::Opening,
            1 => SourceState::Open,
            2 => SourceState::Reopening,
            3 => SourceState::Idle,
            _ => SourceState::Ended,
        }
    }

    /// A one-line summary for systemd's STATUS.
    pub fn status_line(&self) -> String {
        format!(
            "{} listener(s); source {}; {} frames in, {} bytes out",
            self.listeners(),
            self.source_state().name(),
            self.stats.frames_in.load(Relaxed),
            self.stats.bytes_out.load(Relaxed)
        )
    }

    pub fn listeners(&self) -> usize {
        *self.listeners.lock()
    }

    /// Waits up to `d` until the listener count satisfies `pred`; returns whether it does.
    pub fn wait_listeners(&self, d: Duration, pred: impl Fn(usize) -> bool) -> bool {
        let deadline = Instant::now() + d;
        let mut n = self.listeners.lock();
        while !pred(*n) {
            if self
                .listeners_changed
                .wait_until(&mut n, deadline)
                .timed_out()
            {
                return pred(*n);
            }
        }
        true
    }
}

/// A counted listener; dropping it un-counts it.
pub struct ListenerGuard(Arc<Stream>);

impl Drop for ListenerGuard {
    fn drop(&mut self) {
        *self.0.listeners.lock() -= 1;
        self.0.listeners_changed.notify_all();
    }
}
