//! The fixed-slot frame ring: one writer (the source reader thread), many readers (one
//! sender thread per listener), no I/O.
//!
//! Frame `seq` lives in slot `seq % slots`; `seq` only grows. Each listener owns a
//! [`Cursor`] (the next `seq` it wants). The writer never waits for anyone: it overwrites the
//! oldest slot, and a reader whose frame was overwritten (lapped) jumps to the newest frame
//! and is told how many frames it skipped.
//!
//! Wake-ups are coalesced, because waking 1000 sleeping senders for every frame costs more
//! CPU than sending the audio. The writer spends a budget of [`WAKES_PER_SECOND`] sleeper
//! wake-ups a second: with `n` readers asleep it wakes them at most every `n /
//! WAKES_PER_SECOND` seconds, between [`MIN_WAKE_INTERVAL`] and `wake_interval` (plus a
//! `flush` from the reader thread when the source pauses). Up to 20 listeners get a batch
//! every 100 ms, 50 every 250 ms, 100 or more every 500 ms (one `write` of ~8 KB each).

use parking_lot::{Condvar, Mutex};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A listener's position in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// The sequence number of the next frame this listener wants.
    pub next: u64,
    /// Whether the stream header (`-header-bytes`) has been handed to this listener.
    header_sent: bool,
}

impl Cursor {
    /// The same position, its header counted as sent: for a listener that moves here from
    /// another stream of the same format and has had a header already.
    pub fn header_done(self) -> Cursor {
        Cursor {
            header_sent: true,
            ..self
        }
    }
}

/// What [`Ring::read`] produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    /// `frames` whole frames (after the stream header, `header_len` bytes, when this
    /// listener was due it) were appended to `out`; `skipped` frames were lost because the
    /// ring lapped this reader. The header's length comes with it because a link receiver's
    /// header is the origin's, whatever this instance's `-header-bytes` says.
    Data {
        frames: usize,
        header_len: usize,
        skipped: u64,
    },
    /// The next frame is larger than what the listener may still receive.
    NoRoom,
    /// The source has ended for good and this reader has everything.
    Ended,
    /// Nothing arrived within the wait; call again (after checking for shutdown).
    Idle,
}

struct State {
    /// Slot `i` holds frame `seq` where `seq % slots == i` (once written).
    frames: Vec<Vec<u8>>,
    /// The sequence number the next pushed frame gets.
    next_seq: u64,
    /// New cursors start at or after this frame (frames before it are stale).
    join_floor: u64,
    header: Option<Arc<[u8]>>,
    ended: bool,
    last_wake: Instant,
    /// Frames were pushed since the last wake-up.
    unwoken: bool,
    /// Readers asleep in [`Ring::read`] now.
    sleepers: usize,
}

/// Sleeper wake-ups a second the writer may spend (see the module notes). 200 keeps the
/// measured cost of wake-ups (~0.8 CPU s/min per 1000 a second) out of sight.
pub const WAKES_PER_SECOND: u32 = 200;
/// Even a lone listener gets frames in batches this long at least: waking it for every frame
/// (38 a second for MP3) cost a one-listener server 0.27 CPU s/min against 0.15 with 100 ms
/// batches, for nothing a player can hear.
pub const MIN_WAKE_INTERVAL: Duration = Duration::from_millis(100);

/// How long the writer lets frames gather before waking `sleepers` readers.
fn wake_interval(sleepers: usize, cap: Duration) -> Duration {
    let n = sleepers.min(u32::MAX as usize) as u32;
    (Duration::from_secs(1) * n / WAKES_PER_SECOND).clamp(MIN_WAKE_INTERVAL.min(cap), cap)
}

/// The ring. Stream by `Arc`; every method takes the lock only for memory copies.
pub struct Ring {
    state: Mutex<State>,
    cond: Condvar,
    slots: usize,
    needs_header: bool,
    wake_interval: Duration,
}

impl Ring {
    /// A ring of `slots` frames, each with room for `frame_bytes` reserved up front.
    /// `needs_header`: listeners must get the stream header before any frame.
    pub fn new(
        slots: usize,
        frame_bytes: usize,
        needs_header: bool,
        wake_interval: Duration,
    ) -> Ring {
        assert!(slots > 2, "config guarantees -source-buffer > 2");
        Ring {
            state: Mutex::new(State {
                frames: (0..slots)
                    .map(|_| Vec::with_capacity(frame_bytes))
                    .collect(),
                next_seq: 0,
                join_floor: 0,
                header: None,
                ended: false,
                last_wake: Instant::now(),
                unwoken: false,
                sleepers: 0,
            }),
            cond: Condvar::new(),
            slots,
            needs_header,
            wake_interval,
        }
    }

    /// Appends a frame, overwriting the oldest. Never blocks on readers.
    pub fn push(&self, frame: &[u8]) {
        let wake = {
            let mut s = self.state.lock();
            let slot = (s.next_seq % self.slots as u64) as usize;
            let buf = &mut s.frames[slot];
            buf.clear();
            buf.extend_from_slice(frame);
            s.next_seq += 1;
            let now = Instant::now();
            if now.duration_since(s.last_wake) >= wake_interval(s.sleepers, self.wake_interval) {
                s.last_wake = now;
                s.unwoken = false;
                true
            } else {
                s.unwoken = true;
                false
            }
        };
        if wake {
            self.cond.notify_all();
        }
    }

    /// Wakes readers for frames pushed since the last wake-up. The reader thread calls this
    /// when the source pauses, so a frame never waits longer than one poll slice.
    pub fn flush(&self) {
        let wake = {
            let mut s = self.state.lock();
            let wake = s.unwoken;
            if wake {
                s.unwoken = false;
                s.last_wake = Instant::now();
            }
            wake
        };
        if wake {
            self.cond.notify_all();
        }
    }

    /// The stream header, once the first source has been opened.
    pub fn header(&self) -> Option<Arc<[u8]>> {
        self.state.lock().header.clone()
    }

    pub fn set_header(&self, header: Arc<[u8]>) {
        self.state.lock().header = Some(header);
        self.cond.notify_all();
    }

    /// New listeners start from the next frame pushed: the ones held are stale (the source
    /// was closed while nobody listened).
    pub fn mark_stale(&self) {
        let mut s = self.state.lock();
        s.join_floor = s.next_seq;
    }

    /// The source has ended for good: readers drain what they have, then get `Ended`.
    pub fn end(&self) {
        self.state.lock().ended = true;
        self.cond.notify_all();
    }

    /// A cursor for a new listener: at the newest complete frame, or further back by up to
    /// `burst_bytes` of whole frames (never before a stale boundary), or at the next frame
    /// when none is held yet.
    pub fn join(&self, burst_bytes: usize) -> Cursor {
        let s = self.state.lock();
        // A header the stream already has is due even when this instance reads none itself
        // (a link receiver relays the origin's).
        let header_sent = !self.needs_header && s.header.is_none();
        if s.next_seq == 0 || s.next_seq <= s.join_floor {
            return Cursor {
                next: s.next_seq,
                header_sent,
            };
        }
        let floor = s.join_floor.max(self.oldest(&s));
        let mut start = s.next_seq - 1;
        let mut total = s.frames[self.slot(start)].len();
        while start > floor {
            let len = s.frames[self.slot(start - 1)].len();
            if total + len > burst_bytes {
                break;
            }
            total += len;
            start -= 1;
        }
        Cursor {
            next: start,
            header_sent,
        }
    }

    /// Copies what `cur` has not had yet into `out`: the header if due, then whole frames
    /// while they fit in `client_left` bytes and (after the first) in `batch_cap` bytes.
    /// Waits up to `max_wait` when there is nothing new.
    pub fn read(
        &self,
        cur: &mut Cursor,
        out: &mut Vec<u8>,
        client_left: u64,
        batch_cap: usize,
        max_wait: Duration,
    ) -> ReadOutcome {
        let mut s = self.state.lock();
        let mut waited = false;
        loop {
            let mut header_len = 0;
            if !cur.header_sent {
                if let Some(h) = &s.header {
                    out.extend_from_slice(h);
                    cur.header_sent = true;
                    header_len = h.len();
                }
            }
            let header = header_len > 0;
            let mut skipped = 0;
            if cur.header_sent && cur.next < s.next_seq {
                let oldest = self.oldest(&s);
                if cur.next < oldest {
                    // Lapped: jump to the newest frame, as streamserve does.
                    let newest = s.next_seq - 1;
                    skipped = newest - cur.next;
                    cur.next = newest;
                }
                let mut frames = 0;
                let mut sent: u64 = 0;
                while cur.next < s.next_seq {
                    let f = &s.frames[self.slot(cur.next)];
                    let fits_client = sent + f.len() as u64 <= client_left;
                    let fits_batch = frames == 0 || out.len() + f.len() <= batch_cap;
                    if !fits_client || !fits_batch {
                        break;
                    }
                    out.extend_from_slice(f);
                    sent += f.len() as u64;
                    frames += 1;
                    cur.next += 1;
                }
                if frames == 0 && !header {
                    return ReadOutcome::NoRoom;
                }
                return ReadOutcome::Data {
                    frames,
                    header_len,
                    skipped,
                };
            }
            if header {
                return ReadOutcome::Data {
                    frames: 0,
                    header_len,
                    skipped,
                };
            }
            if s.ended {
                return ReadOutcome::Ended;
            }
            if waited {
                return ReadOutcome::Idle;
            }
            waited = true;
            s.sleepers += 1;
            self.cond.wait_for(&mut s, max_wait);
            s.sleepers -= 1;
        }
    }

    fn oldest(&self, s: &State) -> u64 {
        s.next_seq.saturating_sub(self.slots as u64)
    }

    fn slot(&self, seq: u64) -> usize {
        (seq % self.slots as u64) as usize
    }
}

#[cfg(test)]
mod tests;
