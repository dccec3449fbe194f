//! How the ring's writer wakes its sleeping readers: every one of them with one system call,
//! none of them through the ring's lock.
//!
//! A reader that found nothing new takes a ticket (the doorbell's count) while it still
//! holds the ring's lock, lets go of the lock, and sleeps until the count moves on. The
//! writer rings by moving the count on and waking every sleeper. A ring that comes between
//! the ticket and the sleep is not lost: the sleep returns at once, the count having moved.
//!
//! It replaced parking_lot's Condvar, whose `notify_all` hands sleepers to the ring's mutex
//! one by one: each woken reader woke the next as it unlocked, and readers queued twice a
//! round. With 5000 listeners that chain was 44% of the senders' CPU (perf, `make bench`);
//! README, Design notes.

use crate::os::sys;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

#[derive(Default)]
pub struct Doorbell {
    count: AtomicU32,
    sleepers: AtomicUsize,
}

impl Doorbell {
    /// The count now: take it under the lock that guards what the caller checked.
    pub fn ticket(&self) -> u32 {
        self.count.load(SeqCst)
    }

    /// Sleeps until the doorbell rings after `ticket` was taken, or `timeout` passes.
    pub fn wait(&self, ticket: u32, timeout: Duration) {
        // Counted before the sleep, and the writer looks after it moves the count on: either
        // it sees this sleeper and wakes it, or the sleep sees the count moved (SeqCst both).
        self.sleepers.fetch_add(1, SeqCst);
        sys::futex_wait(&self.count, ticket, timeout);
        self.sleepers.fetch_sub(1, SeqCst);
    }

    /// Wakes every reader asleep now; one that is about to sleep does not.
    pub fn ring(&self) {
        self.count.fetch_add(1, SeqCst);
        if self.sleepers.load(SeqCst) > 0 {
            sys::futex_wake_all(&self.count);
        }
    }

    /// Readers asleep (or about to be): what the writer's wake-up budget is spread over.
    pub fn sleepers(&self) -> usize {
        self.sleepers.load(SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn a_ring_wakes_every_sleeper_and_a_stale_ticket_does_not_sleep() {
        let bell = Arc::new(Doorbell::default());
        let sleepers: Vec<_> = (0..8)
            .map(|_| {
                let (b, t) = (Arc::clone(&bell), bell.ticket());
                std::thread::spawn(move || {
                    let start = Instant::now();
                    b.wait(t, Duration::from_secs(60));
                    start.elapsed()
                })
            })
            .collect();
        let asleep = Instant::now();
        while bell.sleepers() < 8 {
            assert!(
                asleep.elapsed() < Duration::from_secs(10),
                "sleepers never slept"
            );
            std::thread::yield_now();
        }
        bell.ring();
        for s in sleepers {
            assert!(
                s.join().unwrap() < Duration::from_secs(30),
                "woken by the ring"
            );
        }
        // A ticket taken before a ring returns at once.
        let t = bell.ticket();
        bell.ring();
        let start = Instant::now();
        bell.wait(t, Duration::from_secs(60));
        assert!(start.elapsed() < Duration::from_secs(30));
        assert_eq!(bell.sleepers(), 0);
    }
}
