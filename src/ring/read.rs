//! The readers' side of the ring: where a new listener's [`Cursor`] starts ([`Ring::join`])
//! and what one [`Ring::read`] hands it. `read` is every listener's hot path: it takes
//! references under the lock, one atomic increment a frame, and allocates nothing but what
//! `out` may grow by. Apart from `mod.rs`, which holds the writer's side and the state both
//! share.

use super::{Cursor, Frame, ReadOutcome, Ring, State, MAX_BATCH_FRAMES};
use std::sync::Arc;
use std::time::Duration;

impl Ring {
    /// A cursor for a new listener: at the newest complete frame, or further back by up to
    /// `burst_bytes` of whole frames (never before a stale boundary), or at the next frame
    /// when none is held yet.
    pub fn join(&self, burst_bytes: usize) -> Cursor {
        let s = self.state.lock();
        if s.next_seq == 0 || s.next_seq <= s.join_floor {
            return Cursor {
                next: s.next_seq,
                header_gen: 0,
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
            header_gen: 0,
        }
    }

    /// A cursor at the newest frame for a listener that moves here from another stream of
    /// the same format and has had this stream's kind of header already.
    pub fn join_had_header(&self) -> Cursor {
        let cur = self.join(0);
        Cursor {
            header_gen: self.state.lock().header_gen,
            ..cur
        }
    }

    /// Appends to `out` what `cur` has not had yet: the header if due, then whole frames
    /// while they fit in `client_left` bytes and (after the first) in `batch_cap` bytes, at
    /// most [`MAX_BATCH_FRAMES`] of them. Waits up to `max_wait` when there is nothing new.
    /// `out` gets references, not copies: the caller writes them after the lock is gone.
    pub fn read(
        &self,
        cur: &mut Cursor,
        out: &mut Vec<Frame>,
        client_left: u64,
        batch_cap: usize,
        max_wait: Duration,
    ) -> ReadOutcome {
        let mut s = self.state.lock();
        let mut waited = false;
        loop {
            let skipped = self.catch_up(&s, cur);
            let header_len = header_due(&s, cur, out);
            let header = header_len > 0;
            // A stream that has a header format (-header-bytes) sends no frame before it.
            let ready = cur.header_gen != 0 || !self.needs_header;
            if ready && cur.next < s.next_seq {
                let mut frames = 0;
                let mut sent: u64 = 0;
                // The batch cap counts the header too, as the bytes of one write.
                let mut batch = header_len;
                while cur.next < s.next_seq && frames < MAX_BATCH_FRAMES {
                    let f = &s.frames[self.slot(cur.next)];
                    let fits_client = sent + f.len() as u64 <= client_left;
                    let fits_batch = frames == 0 || batch + f.len() <= batch_cap;
                    if !fits_client || !fits_batch {
                        break;
                    }
                    out.push(Arc::clone(f));
                    sent += f.len() as u64;
                    batch += f.len();
                    frames += 1;
                    cur.next += 1;
                }
                if frames == 0 && !header {
                    return ReadOutcome::NoRoom;
                }
                // Read through the in-stream header pages: this listener has that header.
                if cur.next >= s.header_to && cur.header_gen != s.header_gen {
                    cur.header_gen = s.header_gen;
                }
                return ReadOutcome::Data {
                    frames,
                    header_len,
                    skipped,
                    more: cur.next < s.next_seq,
                };
            }
            if header {
                return ReadOutcome::Data {
                    frames: 0,
                    header_len,
                    skipped,
                    more: false,
                };
            }
            if s.ended {
                return ReadOutcome::Ended;
            }
            if waited {
                return ReadOutcome::Idle;
            }
            waited = true;
            s = self.sleep(s, max_wait);
        }
    }

    /// A lapped cursor (its frame overwritten) jumps to the newest frame, as streamserve
    /// does; into the in-stream header pages, to their start. Returns the frames skipped.
    #[inline]
    fn catch_up(&self, s: &State, cur: &mut Cursor) -> u64 {
        let oldest = self.oldest(s);
        if cur.next < oldest && cur.next < s.next_seq {
            let newest = s.next_seq - 1;
            let to = if newest < s.header_to && s.header_from >= oldest {
                s.header_from
            } else {
                newest
            };
            let skipped = to - cur.next;
            cur.next = to;
            return skipped;
        }
        0
    }

    fn oldest(&self, s: &State) -> u64 {
        s.next_seq.saturating_sub(self.slots as u64)
    }

    fn slot(&self, seq: u64) -> usize {
        (seq % self.slots as u64) as usize
    }
}

/// Appends the stream header to `out` when `cur` is due it (a version it has not had, and
/// not read in-stream: `cur` is at or past its pages). Returns its length (0: not due).
#[inline]
fn header_due(s: &State, cur: &mut Cursor, out: &mut Vec<Frame>) -> usize {
    if cur.header_gen != s.header_gen && cur.next >= s.header_to {
        if let Some(h) = &s.header {
            out.push(Arc::clone(h));
            cur.header_gen = s.header_gen;
            return h.len();
        }
    }
    0
}
