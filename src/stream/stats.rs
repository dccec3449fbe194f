//! Counters shared by every thread: atomics only, so nobody takes a lock to count.

use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

#[derive(Default)]
pub struct Stats {
    pub bytes_in: AtomicU64,
    pub frames_in: AtomicU64,
    pub junk_bytes: AtomicU64,
    pub tags_skipped: AtomicU64,
    pub oversize_frames: AtomicU64,
    pub source_opens: AtomicU64,
    pub source_failures: AtomicU64,
    pub bytes_out: AtomicU64,
    pub frames_skipped: AtomicU64,
    pub listeners_total: AtomicU64,
    pub listeners_refused: AtomicU64,
    pub connections_refused: AtomicU64,
    pub bad_requests: AtomicU64,
}

impl Stats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Relaxed)
    }

    /// One line for `-stat-log-interval` and the exit log: a stream's counters, and the
    /// server's refusals and bad requests.
    pub fn line(&self, listeners: usize, server: &Stats) -> String {
        let g = |c: &AtomicU64| c.load(Relaxed);
        format!(
            "listeners={listeners} listeners_total={} bytes_in={} frames_in={} bytes_out={} \
             frames_skipped={} junk_bytes={} tags_skipped={} oversize_frames={} \
             source_opens={} source_failures={} refused={} bad_requests={}",
            g(&self.listeners_total),
            g(&self.bytes_in),
            g(&self.frames_in),
            g(&self.bytes_out),
            g(&self.frames_skipped),
            g(&self.junk_bytes),
            g(&self.tags_skipped),
            g(&self.oversize_frames),
            g(&self.source_opens),
            g(&self.source_failures),
            g(&self.listeners_refused) + g(&server.connections_refused),
            g(&server.bad_requests),
        )
    }
}

/// The stream's rate in bytes a second, measured from `bytes_in` over windows of at least
/// [`RATE_WINDOW`] (whoever asks after a window has passed measures the next one; the first
/// estimate comes after [`FIRST_WINDOW`]). Listeners size their kernel send buffers by it.
pub struct RateMeter {
    /// (start of the window, `bytes_in` then, the last rate measured).
    state: Mutex<(Instant, u64, u64)>,
}

pub const RATE_WINDOW: Duration = Duration::from_secs(5);
pub const FIRST_WINDOW: Duration = Duration::from_secs(1);

impl Default for RateMeter {
    fn default() -> Self {
        RateMeter {
            state: Mutex::new((Instant::now(), 0, 0)),
        }
    }
}

impl RateMeter {
    /// Bytes a second (0 until a first window has passed).
    pub fn rate(&self, bytes_in: u64) -> u64 {
        let mut s = self.state.lock();
        let elapsed = s.0.elapsed();
        let window = if s.2 == 0 { FIRST_WINDOW } else { RATE_WINDOW };
        if elapsed >= window {
            let bytes = u128::from(bytes_in.saturating_sub(s.1));
            let ms = elapsed.as_millis().max(1);
            s.2 = u64::try_from(bytes * 1000 / ms).unwrap_or(u64::MAX);
            s.0 = Instant::now();
            s.1 = bytes_in;
        }
        s.2
    }
}
