//! Rate-limited log lines: a per-site `static` that lets one line through per interval and
//! counts what it held back, so a flood (a lapped listener per frame, junk per byte, EMFILE
//! per accept) costs one line every few seconds.

use parking_lot::Mutex;
use std::time::{Duration, Instant};

pub struct RateLimit {
    every: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl RateLimit {
    pub const fn new(every: Duration) -> RateLimit {
        RateLimit {
            every,
            state: Mutex::new((None, 0)),
        }
    }

    /// `Some(n)` when a line may be logged now (`n` lines were held back since the last
    /// one), `None` when this one should be held back.
    pub fn allow(&self) -> Option<u64> {
        let mut s = self.state.lock();
        let now = Instant::now();
        match s.0 {
            Some(last) if now.duration_since(last) < self.every => {
                s.1 += 1;
                None
            }
            _ => {
                let held = s.1;
                *s = (Some(now), 0);
                Some(held)
            }
        }
    }
}

/// Logs through a `RateLimit`: `limited!(LIMIT, warn, "fmt", args…)`.
#[macro_export]
macro_rules! limited {
    ($limit:expr, $level:ident, $($arg:tt)+) => {
        if let Some(held) = $limit.allow() {
            if held > 0 {
                log::$level!("{} (and {} more like it)", format_args!($($arg)+), held);
            } else {
                log::$level!($($arg)+);
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_per_interval_counting_the_rest() {
        let r = RateLimit::new(Duration::from_secs(3600));
        assert_eq!(r.allow(), Some(0));
        assert_eq!(r.allow(), None);
        assert_eq!(r.allow(), None);
        let r0 = RateLimit::new(Duration::ZERO);
        assert_eq!(r0.allow(), Some(0));
        assert_eq!(r0.allow(), Some(0));
    }
}
