//! The origin's side of the link: a [`Cutter`] groups the frames going into the ring into
//! fragments of about `-fragment-duration` (never splitting a frame), and a [`FragmentLog`]
//! keeps the last `-link-buffer` of them so a receiver that reconnects resumes right after
//! the last fragment it holds, instead of getting the whole buffer again.
//!
//! The Cutter is owned by the thread that fills the ring (the source reader, or the link
//! player on a receiver that is itself an origin); sessions read the log under its lock and
//! write to their sockets after releasing it.

use super::wire::Fragment;
use crate::config::link::MAX_FRAGMENT_BYTES;
use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The most frames in one fragment, as the most bytes ([`MAX_FRAGMENT_BYTES`], with the
/// link's flags in `config/link.rs`, which refuses a larger `-frame-bytes`): a burst at the
/// origin (a source that delivers a minute of audio at once) is cut into several fragments,
/// each of which fits a message ([`super::wire::MAX_BODY`]) with room to spare.
pub const MAX_FRAGMENT_FRAMES: usize = 4096;
/// The most fragment bytes a session sends in one round (a reconnecting receiver's catch-up
/// comes in rounds of this, each checked for shutdown, replacement and acks).
pub const MAX_ROUND_BYTES: usize = 512 * 1024;

/// What a session should send next.
#[derive(Debug)]
pub enum Next {
    /// Fragments `from..=to` of `epoch` are gone; then these.
    Gap {
        epoch: u64,
        from: u64,
        to: u64,
        then: Vec<Arc<Fragment>>,
    },
    Frags(Vec<Arc<Fragment>>),
    /// Nothing new within the wait.
    Idle,
}

#[derive(Default)]
struct Log {
    frags: VecDeque<Arc<Fragment>>,
    held_us: u64,
}

pub struct FragmentLog {
    log: Mutex<Log>,
    cond: Condvar,
    keep_us: u64,
}

impl FragmentLog {
    pub fn new(keep: Duration) -> FragmentLog {
        FragmentLog {
            log: Mutex::new(Log::default()),
            cond: Condvar::new(),
            keep_us: super::micros(keep),
        }
    }

    pub fn append(&self, f: Fragment) {
        {
            let mut l = self.log.lock();
            l.held_us = l.held_us.saturating_add(u64::from(f.duration_us));
            l.frags.push_back(Arc::new(f));
            while l.held_us > self.keep_us && l.frags.len() > 1 {
                let Some(old) = l.frags.pop_front() else {
                    break;
                };
                l.held_us = l.held_us.saturating_sub(u64::from(old.duration_us));
            }
        }
        self.cond.notify_all();
    }

    /// The newest fragment held: (epoch, seq).
    pub fn newest(&self) -> Option<(u64, u64)> {
        self.log.lock().frags.back().map(|f| (f.epoch, f.seq))
    }

    /// What follows `after` (the receiver's newest fragment; `None` for a fresh receiver,
    /// which gets the last `want_us` of the stream). Waits up to `wait` when caught up.
    pub fn after(&self, after: Option<(u64, u64)>, want_us: u64, wait: Duration) -> Next {
        let mut l = self.log.lock();
        let mut waited = false;
        loop {
            let next = Self::find(&l, after, want_us);
            if !matches!(next, Next::Idle) || waited {
                return next;
            }
            waited = true;
            self.cond.wait_for(&mut l, wait);
        }
    }

    fn find(l: &Log, after: Option<(u64, u64)>, want_us: u64) -> Next {
        let fresh = |l: &Log| {
            // The newest fragments covering `want_us`.
            let mut covered = 0u64;
            let newest = l
                .frags
                .iter()
                .rev()
                .take_while(|f| {
                    let short = covered < want_us;
                    covered = covered.saturating_add(u64::from(f.duration_us));
                    short
                })
                .count();
            bounded_round(l.frags.iter().skip(l.frags.len().saturating_sub(newest)))
        };
        let take_from = |i: usize| bounded_round(l.frags.iter().skip(i));
        let frags = match after {
            None => fresh(l),
            Some((epoch, seq)) => {
                if !l.frags.iter().any(|f| f.epoch == epoch) {
                    // An epoch we no longer hold (or never had: the origin restarted).
                    return nonempty(fresh(l));
                }
                match l.frags.iter().position(|f| f.epoch == epoch && f.seq > seq) {
                    Some(i) => {
                        // `seq` comes from the peer: it is below the fragment's, so `+ 1`
                        // cannot overflow, but the arithmetic says so anyway.
                        let first_seq = l.frags.get(i).map_or(0, |f| f.seq);
                        let from = seq.saturating_add(1);
                        let after_same_epoch = i
                            .checked_sub(1)
                            .and_then(|p| l.frags.get(p))
                            .is_some_and(|p| p.epoch == epoch);
                        if first_seq > from && !after_same_epoch {
                            return Next::Gap {
                                epoch,
                                from,
                                to: first_seq.saturating_sub(1),
                                then: take_from(i),
                            };
                        }
                        take_from(i)
                    }
                    None => {
                        // All of that epoch is held up to `seq`: continue with a later epoch.
                        let last = l.frags.iter().rposition(|f| f.epoch == epoch).unwrap_or(0);
                        take_from(last.saturating_add(1))
                    }
                }
            }
        };
        nonempty(frags)
    }
}

/// The fragments of one round: at least one, then as many as fit [`MAX_ROUND_BYTES`].
fn bounded_round<'a>(frags: impl Iterator<Item = &'a Arc<Fragment>>) -> Vec<Arc<Fragment>> {
    let mut bytes = 0usize;
    let mut round = Vec::new();
    for f in frags {
        bytes = bytes.saturating_add(f.data.len());
        if !round.is_empty() && bytes > MAX_ROUND_BYTES {
            break;
        }
        round.push(Arc::clone(f));
    }
    round
}

fn nonempty(frags: Vec<Arc<Fragment>>) -> Next {
    if frags.is_empty() {
        Next::Idle
    } else {
        Next::Frags(frags)
    }
}

/// A new, random stream epoch (should the CSPRNG fail, which `main` checked at start-up,
/// the one after `previous`, with an error logged: an epoch only has to differ).
fn new_epoch(previous: u64) -> u64 {
    crate::util::random::u64().unwrap_or_else(|e| {
        log::error!("link: new epoch: {e}");
        previous.wrapping_add(1).max(1)
    })
}

/// Groups frames into fragments.
pub struct Cutter {
    target_us: u64,
    epoch: u64,
    next_seq: u64,
    cur: Option<Building>,
}

struct Building {
    capture_us: u64,
    started: Instant,
    media_us: u64,
    /// Every frame had a known media duration.
    timed: bool,
    frame_lens: Vec<u32>,
    data: Vec<u8>,
}

impl Cutter {
    pub fn new(target: Duration) -> Cutter {
        Cutter {
            target_us: super::micros(target),
            epoch: new_epoch(0),
            next_seq: 1,
            cur: None,
        }
    }

    /// The source (re)started: what follows is a new epoch.
    pub fn new_epoch(&mut self, log: &FragmentLog) {
        self.flush(log);
        self.epoch = new_epoch(self.epoch);
        self.next_seq = 1;
    }

    /// Adds one frame (`dur`: its media duration, when the format tells).
    pub fn frame(&mut self, frame: &[u8], dur: Option<Duration>, log: &FragmentLog) {
        let full = self.cur.as_ref().is_some_and(|b| {
            b.data.len().saturating_add(frame.len()) > MAX_FRAGMENT_BYTES
                || b.frame_lens.len() >= MAX_FRAGMENT_FRAMES
        });
        if full {
            self.flush(log);
        }
        let b = self.cur.get_or_insert_with(|| Building {
            capture_us: super::wall_us(),
            started: Instant::now(),
            media_us: 0,
            timed: true,
            frame_lens: Vec::new(),
            data: Vec::new(),
        });
        // Frames are at most -frame-bytes, which the link caps far below 4 GiB (config).
        b.frame_lens
            .push(u32::try_from(frame.len()).unwrap_or(u32::MAX));
        b.data.extend_from_slice(frame);
        match dur {
            Some(d) => b.media_us = b.media_us.saturating_add(super::micros(d)),
            None => b.timed = false,
        }
        if b.length_us() >= self.target_us {
            self.flush(log);
        }
    }

    /// Closes a fragment whose frames are older than the target (a source that paused).
    pub fn tick(&mut self, log: &FragmentLog) {
        if self
            .cur
            .as_ref()
            .is_some_and(|b| super::micros(b.started.elapsed()) >= self.target_us)
        {
            self.flush(log);
        }
    }

    fn flush(&mut self, log: &FragmentLog) {
        let Some(b) = self.cur.take() else { return };
        // A receiver refuses a fragment longer than a minute: never cut one.
        let duration_us = u32::try_from(b.length_us())
            .unwrap_or(u32::MAX)
            .clamp(1, super::wire::MAX_FRAGMENT_US);
        log.append(Fragment {
            epoch: self.epoch,
            seq: self.next_seq,
            capture_us: b.capture_us,
            duration_us,
            frame_lens: b.frame_lens,
            data: b.data,
        });
        self.next_seq = self.next_seq.saturating_add(1);
    }
}

impl Building {
    /// Media time when every frame's duration is known, else the time frames arrived over.
    fn length_us(&self) -> u64 {
        if self.timed {
            self.media_us
        } else {
            super::micros(self.started.elapsed())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frag(epoch: u64, seq: u64) -> Fragment {
        Fragment {
            epoch,
            seq,
            capture_us: seq * 250_000,
            duration_us: 250_000,
            frame_lens: vec![1],
            data: vec![seq as u8],
        }
    }

    type Seqs = (Option<(u64, u64, u64)>, Vec<(u64, u64)>);

    fn seqs(n: Next) -> Seqs {
        match n {
            Next::Gap {
                epoch,
                from,
                to,
                then,
            } => (
                Some((epoch, from, to)),
                then.iter().map(|f| (f.epoch, f.seq)).collect(),
            ),
            Next::Frags(f) => (None, f.iter().map(|f| (f.epoch, f.seq)).collect()),
            Next::Idle => (None, vec![]),
        }
    }

    const NOW: Duration = Duration::from_millis(1);

    #[test]
    fn resume_sends_only_what_follows() {
        let log = FragmentLog::new(Duration::from_secs(2)); // 8 fragments
        for s in 1..=12 {
            log.append(frag(7, s));
        }
        assert_eq!(seqs(log.after(Some((7, 10)), 0, NOW)).1, [(7, 11), (7, 12)]);
        assert_eq!(seqs(log.after(Some((7, 12)), 0, NOW)).1, []);
        // Fragment 5 is gone (only 5..=12 are held: 8 × 250 ms): a gap marker, then the oldest.
        let (gap, then) = seqs(log.after(Some((7, 2)), 0, NOW));
        assert_eq!(gap, Some((7, 3, 4)));
        assert_eq!(then.first(), Some(&(7, 5)));
        // A fresh receiver wanting 500 ms gets the two newest.
        assert_eq!(seqs(log.after(None, 500_000, NOW)).1, [(7, 11), (7, 12)]);
    }

    #[test]
    fn a_new_epoch_follows_the_old_one() {
        let log = FragmentLog::new(Duration::from_secs(10));
        for s in 1..=3 {
            log.append(frag(1, s));
        }
        for s in 1..=2 {
            log.append(frag(2, s));
        }
        assert_eq!(
            seqs(log.after(Some((1, 2)), 0, NOW)).1,
            [(1, 3), (2, 1), (2, 2)]
        );
        assert_eq!(seqs(log.after(Some((1, 3)), 0, NOW)).1, [(2, 1), (2, 2)]);
        // An epoch the log never had (the origin restarted): fresh.
        assert_eq!(seqs(log.after(Some((99, 5)), 250_000, NOW)).1, [(2, 2)]);
    }

    #[test]
    fn cutter_cuts_at_frame_boundaries_by_media_time() {
        let log = FragmentLog::new(Duration::from_secs(10));
        let mut c = Cutter::new(Duration::from_millis(250));
        let d = Duration::from_micros(26_122); // one 44.1 kHz MP3 frame
        for i in 0..25u8 {
            c.frame(&[i; 418], Some(d), &log);
        }
        // 10 frames = 261 ms ≥ 250 ms: two whole fragments of 10 frames, 5 frames pending.
        let (_, got) = seqs(log.after(None, u64::MAX, NOW));
        assert_eq!(got.len(), 2);
        let Next::Frags(f) = log.after(None, u64::MAX, NOW) else {
            panic!()
        };
        assert_eq!(f[0].frame_lens, vec![418; 10]);
        assert_eq!(f[1].seq, f[0].seq + 1);
        assert_eq!(f[0].data[418 * 9], 9);
    }
}
