//! `Shared`: what every thread holds an `Arc` of — the ring, the counters, the listener
//! count and the stop flag.

use crate::config::Config;
use crate::ring::Ring;
use crate::shutdown::Shutdown;
use crate::stats::Stats;
use parking_lot::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// How often sleeping listeners are woken at most (see `ring.rs`).
pub const WAKE_INTERVAL: Duration = Duration::from_millis(500);

pub struct Shared {
    pub ring: Ring,
    pub stats: Stats,
    pub shutdown: Shutdown,
    listeners: Mutex<usize>,
    listeners_changed: Condvar,
}

impl Shared {
    pub fn new(cfg: &Config) -> Shared {
        Shared {
            ring: Ring::new(
                cfg.source_buffer,
                cfg.frame_bytes,
                cfg.header_bytes > 0,
                WAKE_INTERVAL,
            ),
            stats: Stats::default(),
            shutdown: Shutdown::default(),
            listeners: Mutex::new(0),
            listeners_changed: Condvar::new(),
        }
    }

    /// Counts a new listener unless `max` are already connected.
    pub fn enter_listener(&self, max: usize) -> Option<ListenerGuard<'_>> {
        let mut n = self.listeners.lock();
        if *n >= max {
            return None;
        }
        *n += 1;
        self.listeners_changed.notify_all();
        Some(ListenerGuard(self))
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
pub struct ListenerGuard<'a>(&'a Shared);

impl Drop for ListenerGuard<'_> {
    fn drop(&mut self) {
        *self.0.listeners.lock() -= 1;
        self.0.listeners_changed.notify_all();
    }
}
