//! The one retry loop every supervisor runs (a stream's input, the link's dialler, the
//! Icecast output): attempt, and after a failure wait a capped, jittered backoff that an
//! attempt lasting `healthy` resets, until an attempt says it is done or the stop flag is set.

use crate::os::shutdown::Shutdown;
use crate::util::backoff::Backoff;
use std::time::{Duration, Instant};

/// What an attempt asks for next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    /// It failed or ended: try again after the backoff.
    Retry,
    /// Nothing failed (woken from idle): try again at once.
    Again,
    /// Stop for good.
    Done,
}

pub struct Retry {
    backoff: Backoff,
    healthy: Duration,
}

impl Retry {
    /// Waits from `min` doubling to `max`; an attempt that lasted `healthy` starts over.
    pub fn new(min: Duration, max: Duration, healthy: Duration) -> Retry {
        Retry {
            backoff: Backoff::new(min, max),
            healthy,
        }
    }

    /// Runs `attempt` until it says [`Then::Done`] or `stop` is set; `waiting` hears each
    /// delay before it is slept (to log it, or to promise the watchdog a beat after it).
    pub fn run(
        mut self,
        stop: &Shutdown,
        mut attempt: impl FnMut() -> Then,
        mut waiting: impl FnMut(Duration),
    ) {
        while !stop.is_set() {
            let started = Instant::now();
            match attempt() {
                Then::Done => return,
                Then::Again => continue,
                Then::Retry => {}
            }
            if started.elapsed() >= self.healthy {
                self.backoff.reset();
            }
            let delay = self.backoff.next_delay();
            waiting(delay);
            if stop.sleep(delay) {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_with_growing_waits_until_done_or_stopped() {
        let stop = Shutdown::default();
        let mut tries = 0;
        let mut waits = Vec::new();
        Retry::new(
            Duration::from_millis(1),
            Duration::from_millis(4),
            Duration::from_secs(9),
        )
        .run(
            &stop,
            || {
                tries += 1;
                if tries < 5 {
                    Then::Retry
                } else {
                    Then::Done
                }
            },
            |d| waits.push(d),
        );
        assert_eq!(tries, 5);
        assert_eq!(waits.len(), 4);
        assert!(waits[3] >= Duration::from_millis(3), "{waits:?}");
        stop.trigger("test");
        let mut ran = false;
        Retry::new(Duration::ZERO, Duration::ZERO, Duration::ZERO).run(
            &stop,
            || {
                ran = true;
                Then::Retry
            },
            |_| {},
        );
        assert!(!ran, "a set stop flag runs nothing");
    }
}
