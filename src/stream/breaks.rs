//! Where the stream's timeline breaks: the ring positions (frame sequence numbers) at which
//! a new run of audio begins, one that need not continue the frames before it: a new open
//! of the input, or a link receiver's audio resuming after an outage it filled with silence
//! (or coming from an origin whose source restarted). The HLS segmenter reads them to say
//! `EXT-X-DISCONTINUITY` at the very frame, however far behind the writer it reads.
//!
//! The stream's one writer marks a break just before it pushes the run's first frame, so
//! the position is that frame's.

use crate::ring::Ring;
use parking_lot::Mutex;
use std::collections::VecDeque;

/// Breaks remembered: far more than can happen within one of the segmenter's reads.
const KEPT: usize = 16;

#[derive(Default)]
pub struct Breaks {
    at: Mutex<VecDeque<u64>>,
}

impl Breaks {
    /// The next frame pushed into `ring` begins a new run.
    pub fn mark(&self, ring: &Ring) {
        let seq = ring.pushed();
        let mut at = self.at.lock();
        if at.back() != Some(&seq) {
            if at.len() == KEPT {
                at.pop_front();
            }
            at.push_back(seq);
        }
    }

    /// Whether a run begins at a frame after `after` (none: from the start) up to and
    /// including `upto`. A reader passes the last frame it took and the one it takes now, so
    /// a break on a frame it skipped is not missed.
    pub fn between(&self, after: Option<u64>, upto: u64) -> bool {
        self.at
            .lock()
            .iter()
            .any(|&b| after.is_none_or(|a| b > a) && b <= upto)
    }
}

#[cfg(test)]
mod tests {
    use super::Breaks;
    use crate::ring::{Ring, Wake};
    use std::time::Duration;

    fn ring() -> Ring {
        Ring::new(
            8,
            false,
            Wake {
                cap: Duration::ZERO,
                burst_bytes: 0,
            },
        )
    }

    #[test]
    fn a_break_is_found_on_its_frame_or_when_skipped_over() {
        let (r, b) = (ring(), Breaks::default());
        r.push(b"a"); // 0
        b.mark(&r);
        r.push(b"b"); // 1: a new run
        r.push(b"c"); // 2
        assert!(!b.between(Some(0), 0));
        assert!(b.between(Some(0), 1));
        assert!(!b.between(Some(1), 2));
        // A reader that skipped frame 1 still sees it.
        assert!(b.between(Some(0), 2));
        assert!(b.between(None, 1));
    }

    #[test]
    fn only_the_latest_breaks_are_kept() {
        let (r, b) = (ring(), Breaks::default());
        for _ in 0..40 {
            b.mark(&r);
            b.mark(&r); // twice at one frame: one break
            r.push(b"x");
        }
        assert!(!b.between(None, 40 - 17));
        assert!(b.between(Some(38), 39));
    }
}
