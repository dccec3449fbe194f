//! A thread's promise to show signs of life: "I will beat again within d". The watchdog
//! checks it before telling systemd all is well, so a wedged source thread gets the service
//! restarted instead of serving silence forever.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

pub struct Heartbeat {
    /// Milliseconds (since process start) by which the next beat is due; MAX = waiting on
    /// purpose (a FIFO with no writer) or finished.
    due_ms: AtomicU64,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Heartbeat {
            due_ms: AtomicU64::new(now_ms() + 30_000),
        }
    }
}

impl Heartbeat {
    /// The next beat comes within `d`.
    pub fn beat(&self, d: Duration) {
        self.due_ms.store(now_ms() + d.as_millis() as u64, Relaxed);
    }

    /// Blocking on purpose for an unbounded time that is not a hang.
    pub fn waiting(&self) {
        self.due_ms.store(u64::MAX, Relaxed);
    }

    pub fn alive(&self) -> bool {
        now_ms() <= self.due_ms.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beats_expire_and_waiting_does_not() {
        let h = Heartbeat::default();
        h.beat(Duration::ZERO);
        std::thread::sleep(Duration::from_millis(5));
        assert!(!h.alive());
        h.beat(Duration::from_secs(60));
        assert!(h.alive());
        h.waiting();
        assert!(h.alive());
    }
}
