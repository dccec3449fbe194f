//! The fixed-slot frame ring: one writer (the source reader thread), many readers (one
//! sender thread per listener), no I/O.
//!
//! Frame `seq` lives in slot `seq % slots`; `seq` only grows. Each listener owns a
//! [`Cursor`] (the next `seq` it wants). The writer never waits for anyone: it overwrites the
//! oldest slot, and a reader whose frame was overwritten (lapped) jumps to the newest frame
//! and is told how many frames it skipped.
//!
//! A slot holds its frame by reference ([`Frame`], an `Arc<[u8]>`). A reader takes
//! references under the lock (one atomic increment a frame) and sends the frames to its
//! socket straight from them after the lock is released, with vectored sends: no
//! listener keeps a copy of the stream, and a slot the writer replaces while a sender is
//! still writing its old frame stays alive until that write is done. The writer builds each
//! frame before it takes the lock, so readers wait for a pointer swap, not a copy.
//!
//! Readers are woken in batches, not for every frame: `wake.rs` says when, `doorbell.rs`
//! how. What a reader gets, from joining on, is in `read.rs`.

mod doorbell;
mod read;
mod wake;

use doorbell::Doorbell;
use parking_lot::{Mutex, MutexGuard};
use std::sync::Arc;
use std::time::{Duration, Instant};
pub use wake::Wake;
use wake::{due, Held};

/// One frame, shared by the ring and whichever senders are writing it.
pub type Frame = Arc<[u8]>;

/// Most frames one [`Ring::read`] hands out (besides the header): bounds a sender's list of
/// references (16 bytes a frame, kept for the listener's life). A 500 ms batch of MP3 has
/// 19 frames, ADTS 22; a 2 s batch takes three reads, sent as one (`ReadOutcome::more`).
pub const MAX_BATCH_FRAMES: usize = 32;

/// A listener's position in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// The sequence number of the next frame this listener wants.
    pub next: u64,
    /// The generation of the stream header this listener has (0: none yet). See
    /// [`Ring::push_header`].
    header_gen: u64,
}

/// What [`Ring::read`] produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    /// `frames` whole frames (after the stream header, `header_len` bytes, when this
    /// listener was due it) were appended to `out`; `skipped` frames were lost because the
    /// ring lapped this reader. The header's length comes with it because a link receiver's
    /// header is the origin's, whatever this instance's `-header-bytes` says. `more`: frames
    /// are left that did not fit this batch (read again at once; the writes can be one).
    Data {
        frames: usize,
        header_len: usize,
        skipped: u64,
        more: bool,
    },
    /// The next frame is larger than what the listener may still receive.
    NoRoom,
    /// The source has ended for good and this reader has everything.
    Ended,
    /// Nothing arrived within the wait; call again (after checking for shutdown).
    Idle,
}

struct State {
    /// Slot `i` holds frame `seq` where `seq % slots == i` (once written; empty before).
    frames: Vec<Frame>,
    /// The sequence number the next pushed frame gets.
    next_seq: u64,
    /// New cursors start at or after this frame (frames before it are stale).
    join_floor: u64,
    /// The stream header every listener gets before its first frame: `-header-bytes`, a link
    /// origin's, or Ogg's header pages. `header_gen` counts its versions (0: none yet).
    header: Option<Frame>,
    header_gen: u64,
    /// Where the current header also sits in the ring, as frames `[header_from, header_to)`
    /// (Ogg: a chained stream's new header pages reach connected listeners in-stream). A
    /// reader that reads through them has the header; one that joins or lands at or past
    /// `header_to` gets it prepended. Both 0 for a header that is not in the ring.
    header_from: u64,
    header_to: u64,
    ended: bool,
    last_wake: Instant,
    /// Frames pushed since the last wake-up.
    held: Held,
    /// Readers asleep at the last wake-up: the audience the budget is spread over. Right
    /// after a wake-up most readers are busy sending, not asleep, and counting only those
    /// asleep would wake the first ones back for a few frames.
    audience: usize,
}

/// The ring. Stream by `Arc`; every method takes the lock only for memory copies.
pub struct Ring {
    state: Mutex<State>,
    bell: Doorbell,
    slots: usize,
    needs_header: bool,
    wake: Wake,
}

impl Ring {
    /// A ring of `slots` frames. `needs_header`: listeners must get the stream header before
    /// any frame. `wake`: how readers are woken in batches.
    pub fn new(slots: usize, needs_header: bool, wake: Wake) -> Ring {
        assert!(slots > 2, "config guarantees -source-buffer > 2");
        let empty: Frame = Arc::from(&[][..]);
        Ring {
            state: Mutex::new(State {
                frames: vec![empty; slots],
                next_seq: 0,
                join_floor: 0,
                header: None,
                header_gen: 0,
                header_from: 0,
                header_to: 0,
                ended: false,
                last_wake: Instant::now(),
                held: Held::default(),
                audience: 0,
            }),
            bell: Doorbell::default(),
            slots,
            needs_header,
            wake,
        }
    }

    /// Appends a frame, overwriting the oldest. Never blocks on readers (only on the lock,
    /// which readers hold for a few pointer copies).
    pub fn push(&self, frame: &[u8]) {
        // The allocation and the copy happen before the lock; the frame replaced is freed
        // after it (by the last sender still writing it, if any).
        let mut frame: Frame = Arc::from(frame);
        let wake = {
            let mut s = self.state.lock();
            self.put(&mut s, &mut frame);
            self.wake_due(&mut s)
        };
        if wake {
            self.bell.ring();
        }
    }

    /// A new stream header that also goes out in-stream, as the frames `pages`: Ogg's header
    /// pages, at the start and at each chain boundary. Connected listeners read the pages as
    /// they come (so a chain's new headers reach them once, in place); a listener that joins
    /// later, or is lapped past them, gets them as its header. Nobody joins in the middle of
    /// them or in the old chain's audio after them.
    pub fn push_header(&self, pages: &[Vec<u8>]) {
        let header: Frame = Arc::from(pages.concat());
        let mut frames: Vec<Frame> = pages.iter().map(|p| Arc::from(&p[..])).collect();
        {
            let mut s = self.state.lock();
            s.header_from = s.next_seq;
            for f in &mut frames {
                self.put(&mut s, f);
            }
            s.header_to = s.next_seq;
            s.header = Some(header);
            s.header_gen += 1;
            // A new chain: listeners join from here on.
            s.join_floor = s.header_to;
            s.held = Held::default();
            s.last_wake = Instant::now();
            s.audience = self.bell.sleepers();
        }
        self.bell.ring();
    }

    /// Puts `frame` in the next slot; `frame` gets the one it replaced.
    fn put(&self, s: &mut State, frame: &mut Frame) {
        let slot = (s.next_seq % self.slots as u64) as usize;
        std::mem::swap(&mut s.frames[slot], frame);
        s.next_seq += 1;
        let len = s.frames[slot].len();
        s.held.add(len);
    }

    /// Whether the frames held now make a wake-up due (and if so, starts the next count).
    fn wake_due(&self, s: &mut State) -> bool {
        {
            let now = Instant::now();
            let elapsed = now.duration_since(s.last_wake);
            let sleepers = self.bell.sleepers();
            let audience = sleepers.max(s.audience);
            if due(elapsed, s.held, audience, self.slots, self.wake) {
                s.last_wake = now;
                s.held = Held::default();
                s.audience = sleepers;
                true
            } else {
                false
            }
        }
    }

    /// Wakes readers for frames pushed since the last wake-up. The reader thread calls this
    /// when the source pauses, so a frame never waits longer than one poll slice.
    pub fn flush(&self) {
        let wake = {
            let mut s = self.state.lock();
            let wake = s.held.frames > 0;
            if wake {
                s.held = Held::default();
                s.last_wake = Instant::now();
                s.audience = self.bell.sleepers();
            }
            wake
        };
        if wake {
            self.bell.ring();
        }
    }

    /// How many frames have been pushed: the sequence number the next one gets.
    pub fn pushed(&self) -> u64 {
        self.state.lock().next_seq
    }

    /// The stream header, once the first source has been opened.
    pub fn header(&self) -> Option<Frame> {
        self.state.lock().header.clone()
    }

    /// A stream header that is not in the ring (`-header-bytes`, a link origin's): every
    /// listener gets it before its next frame.
    pub fn set_header(&self, header: Frame) {
        {
            let mut s = self.state.lock();
            s.header = Some(header);
            s.header_gen += 1;
            s.header_from = 0;
            s.header_to = 0;
        }
        self.bell.ring();
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
        self.bell.ring();
    }

    /// Releases the lock `s` until a frame is pushed (or `max_wait` passes), and takes it
    /// again. The ticket is taken under the lock: a frame pushed after the reader's check
    /// rings after it, so the sleep cannot miss it.
    #[inline]
    fn sleep<'a>(&'a self, s: MutexGuard<'a, State>, max_wait: Duration) -> MutexGuard<'a, State> {
        let ticket = self.bell.ticket();
        drop(s);
        self.bell.wait(ticket, max_wait);
        self.state.lock()
    }
}

#[cfg(test)]
mod tests;
