//! Counters shared by every thread: atomics only, so nobody takes a lock to count.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

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
    pub output_connects: AtomicU64,
}

impl Stats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    /// One line for `-stat-log-interval` and the exit log.
    pub fn line(&self, listeners: usize) -> String {
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
            g(&self.listeners_refused) + g(&self.connections_refused),
            g(&self.bad_requests),
        )
    }
}
