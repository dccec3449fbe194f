//! When the ring's writer wakes its sleeping readers: the batching policy.
//!
//! Every wake-up costs each sleeping sender a context switch and a `write` system call, and
//! with thousands of listeners those costs, not the bytes, are the server's CPU. So frames
//! gather while readers sleep, and the writer spends a budget of [`WAKES_PER_SECOND`]
//! wake-ups a second across them: with `n` asleep it wakes them every `n /
//! WAKES_PER_SECOND` seconds, between [`MIN_WAKE_INTERVAL`] and [`MAX_WAKE_INTERVAL`]. Up to
//! 5 listeners get their frames every 100 ms, 25 every 500 ms, 100 or more every 2 s (when
//! the limits below allow it).
//!
//! Two limits hold the batches shorter:
//! - A listener's player plays what it has buffered while the next batch gathers, so a batch
//!   may not outlast the buffer a listener can count on. Beyond [`Wake::cap`] (500 ms) frames
//!   are held back only while they come to less than half of `-burst-bytes`: a listener
//!   that joined with a burst of B bytes always has B/2 in hand. Without a burst, batches
//!   stay within 500 ms, which a player with a one-second buffer (VLC's default) absorbs.
//! - A sleeping reader must not be lapped: the writer never holds back a quarter of the
//!   ring.
//!
//! README, Design notes: the figures behind these numbers.

use std::time::Duration;

/// Sleeper wake-ups a second the writer may spend across all its sleeping readers.
pub const WAKES_PER_SECOND: u32 = 50;
/// Even a lone listener gets frames in batches this long at least: waking it for every frame
/// (38 a second for MP3) cost a one-listener server 0.27 CPU s/min against 0.15 with 100 ms
/// batches, for nothing a player can hear.
pub const MIN_WAKE_INTERVAL: Duration = Duration::from_millis(100);
/// The longest batch, for a large audience that joined with a burst of at least 4 s.
pub const MAX_WAKE_INTERVAL: Duration = Duration::from_secs(2);

/// A stream's batching limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wake {
    /// How long frames may be held back when the burst does not cover more.
    pub cap: Duration,
    /// The stream's `-burst-bytes`: frames held back may reach half of it past `cap`.
    pub burst_bytes: usize,
}

/// Frames pushed since the last wake-up.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    pub frames: usize,
    pub bytes: usize,
}

impl Held {
    pub fn add(&mut self, len: usize) {
        self.frames = self.frames.saturating_add(1);
        self.bytes = self.bytes.saturating_add(len);
    }
}

/// Whether `held` frames, gathered over `elapsed` in a ring of `slots`, should go to the
/// `sleepers` readers now.
pub fn due(elapsed: Duration, held: Held, sleepers: usize, slots: usize, wake: Wake) -> bool {
    if held.frames.saturating_mul(4) >= slots {
        return true;
    }
    let n = u32::try_from(sleepers).unwrap_or(u32::MAX);
    let budget = (Duration::from_secs(1) * n / WAKES_PER_SECOND).clamp(
        MIN_WAKE_INTERVAL.min(wake.cap),
        MAX_WAKE_INTERVAL.max(wake.cap),
    );
    elapsed >= budget || (elapsed >= wake.cap && held.bytes.saturating_mul(2) >= wake.burst_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;
    const PLAIN: Wake = Wake {
        cap: Duration::from_millis(500),
        burst_bytes: 0,
    };

    fn held(frames: usize, bytes: usize) -> Held {
        Held { frames, bytes }
    }

    /// The first moment (in 10 ms steps) the policy wakes `n` sleepers of a 16 000 B/s
    /// stream in 400-byte frames, in a ring of `slots`.
    fn interval(n: usize, slots: usize, wake: Wake) -> Duration {
        (1..=500u64)
            .map(|i| MS(10 * i))
            .find(|&t| {
                let frames = (t.as_millis() / 25) as usize; // a 400-byte frame every 25 ms
                due(t, held(frames, frames * 400), n, slots, wake)
            })
            .unwrap()
    }

    #[test]
    fn small_audiences_get_frames_within_100_ms_and_large_ones_in_longer_batches() {
        assert_eq!(interval(1, 1000, PLAIN), MS(100));
        assert_eq!(interval(5, 1000, PLAIN), MS(100));
        assert_eq!(interval(10, 1000, PLAIN), MS(200));
        // Without a burst, 500 ms at most, however many listen.
        assert_eq!(interval(100, 1000, PLAIN), MS(500));
        assert_eq!(interval(5000, 1000, PLAIN), MS(500));
    }

    #[test]
    fn a_burst_lets_batches_grow_to_half_of_it_and_at_most_2_s() {
        // 64 KiB at 16 000 B/s is 4.1 s: half of it is beyond the 2 s maximum.
        let big = Wake {
            burst_bytes: 65536,
            ..PLAIN
        };
        assert_eq!(interval(100, 1000, big), MS(2000));
        assert_eq!(interval(5000, 1000, big), MS(2000));
        assert_eq!(interval(50, 1000, big), MS(1000), "the budget still rules");
        assert_eq!(interval(2, 1000, big), MS(100));
        // 32 000 bytes (2 s): batches of 1 s, half of it.
        let small = Wake {
            burst_bytes: 32000,
            ..PLAIN
        };
        assert_eq!(interval(5000, 1000, small), MS(1000));
    }

    #[test]
    fn a_quarter_of_the_ring_is_never_held_back() {
        // 64 slots: 16 frames (400 ms at 25 ms a frame).
        let big = Wake {
            burst_bytes: 1 << 20,
            ..PLAIN
        };
        assert_eq!(interval(5000, 64, big), MS(400));
        assert!(due(Duration::ZERO, held(1, 1), 0, 4, PLAIN));
    }

    #[test]
    fn a_zero_cap_wakes_at_every_push() {
        let now = Wake {
            cap: Duration::ZERO,
            burst_bytes: 0,
        };
        assert!(due(Duration::ZERO, held(1, 1), 1000, 1000, now));
    }
}
