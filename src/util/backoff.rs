//! Capped, jittered exponential backoff for every retry loop (source reopen, accept errors,
//! later the link). Jitter keeps a fleet of Pis from redialling in lock-step.

use std::time::Duration;

pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max,
            next: min,
        }
    }

    /// The delay to wait now: the current step ±25%, then the step doubles up to `max`.
    /// The jitter comes from the system's CSPRNG (should it fail, this step has none).
    pub fn next_delay(&mut self) -> Duration {
        let r = crate::util::random::u64().unwrap_or(500);
        let factor = 0.75 + (r % 1000) as f64 / 2000.0;
        let delay = self.next.mul_f64(factor);
        self.next = (self.next * 2).min(self.max);
        delay
    }

    /// Back to the shortest delay (after a run that went well).
    pub fn reset(&mut self) {
        self.next = self.min;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_with_jitter_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let d: Vec<Duration> = (0..8).map(|_| b.next_delay()).collect();
        assert!(d[0] >= Duration::from_millis(75) && d[0] <= Duration::from_millis(125));
        assert!(d[7] >= Duration::from_millis(1500) && d[7] <= Duration::from_millis(2500));
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(125));
    }
}
