//! Plays a regular file in real time: each frame is released when the wall clock reaches the
//! audio before it (its frames' own durations: MP3 and ADTS headers, Ogg granule positions),
//! so a VBR file plays at its real speed where `-source-bandwidth`'s byte rate would drift.
//! Pipes, devices, sockets and `-exec` come at their own pace and are never paced;
//! `-source-bandwidth` overrides.

use std::time::{Duration, Instant};

/// How far the audio released may run ahead of the clock: a little, so listeners' sends are
/// not a frame at a time while the reader sleeps.
pub const LEAD: Duration = Duration::from_millis(200);
/// How far behind the clock the audio may fall and be caught up (a file's loop: its reopen
/// takes 100 ms); a longer gap (the file missing for a while) is forgiven beyond this.
const MAX_BEHIND: Duration = Duration::from_secs(1);

pub struct Pacer {
    start: Instant,
    /// The audio released so far.
    media: Duration,
}

impl Pacer {
    pub fn new() -> Pacer {
        Pacer {
            start: Instant::now(),
            media: Duration::ZERO,
        }
    }

    /// Counts a released frame of `d`.
    pub fn add(&mut self, d: Duration) {
        let behind = self.start.elapsed().saturating_sub(self.media);
        if let Some(later) = self.start.checked_add(behind.saturating_sub(MAX_BEHIND)) {
            self.start = later;
        }
        self.media = self.media.saturating_add(d);
    }

    /// How long to wait before the next frame may go (zero: now).
    pub fn ahead(&self) -> Duration {
        self.media
            .saturating_sub(LEAD)
            .saturating_sub(self.start.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_wait_for_the_clock_beyond_the_lead() {
        let mut p = Pacer::new();
        assert!(p.ahead().is_zero());
        p.add(LEAD);
        assert!(p.ahead().is_zero(), "the lead is free");
        p.add(Duration::from_secs(10));
        let a = p.ahead();
        assert!(
            a > Duration::from_secs(9) && a <= Duration::from_secs(10),
            "{a:?}"
        );
    }

    #[test]
    fn a_long_gap_is_forgiven_beyond_a_second() {
        let mut p = Pacer::new();
        p.start = p
            .start
            .checked_sub(Duration::from_secs(30))
            .unwrap_or(p.start);
        p.add(Duration::from_millis(10));
        // Caught up at once for at most a second of audio, then paced again.
        p.add(Duration::from_millis(1500));
        assert!(!p.ahead().is_zero());
    }
}
