//! Writes a batch of byte slices (ring frames, ICY metadata blocks) to a socket with vectored
//! sends, all of it within a deadline, without copying the slices into a buffer of its own.
//!
//! A listener's sender used to copy each batch out of the ring into its own buffer, which
//! grew to the largest batch it ever had (a 64 KiB burst) and stayed resident for as long as
//! it listened. Now it hands the frames' own memory to `sendmsg`: the slices go into a small
//! fixed array on the stack, sent whenever it fills and at the end. Every send but a batch's
//! last says MSG_MORE, so a batch leaves in as few packets as if it were one write.

use crate::util::deadline::Deadline;
use std::io::{self, IoSlice};
use std::time::Duration;

/// Slices per `sendmsg`. A 500 ms batch of MP3 (19 frames) or ADTS (22) with a metadata
/// block fits in one call; more slices take another call. The array lives on the sender's
/// stack, in the page it keeps for its loop: 16 bytes a slice.
const SLICES: usize = 32;

/// One batch on its way to a socket.
pub struct Gather<'a, W: Socket> {
    conn: &'a mut W,
    slices: [IoSlice<'a>; SLICES],
    len: usize,
    deadline: Deadline,
    timeout: Duration,
    /// The socket's write timeout was cut to what is left of the deadline.
    cut: bool,
    written: u64,
    failed: Option<io::Error>,
}

/// What a batch needs of a socket.
pub trait Socket {
    /// Sends what the socket takes of `bufs`; `more`: more follows at once.
    fn send(&mut self, bufs: &[IoSlice<'_>], more: bool) -> io::Result<usize>;
    fn set_write_timeout(&self, d: Option<Duration>) -> io::Result<()>;
}

/// A listener's connection: `sendmsg` on plain TCP, records sealed from every slice at once
/// over TLS.
impl Socket for crate::http::conn::Conn {
    fn send(&mut self, bufs: &[IoSlice<'_>], more: bool) -> io::Result<usize> {
        self.send_vectored(bufs, more)
    }
    fn set_write_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        crate::http::conn::Conn::set_write_timeout(self, d)
    }
}

impl<'a, W: Socket> Gather<'a, W> {
    /// A batch that must be written within `timeout` from now. The socket's write timeout
    /// must already be `timeout` (set once per connection), so a batch the kernel takes in
    /// one call costs no other system call; only after a partial write is the timeout cut
    /// to what is left, and put back at the end.
    pub fn new(conn: &'a mut W, timeout: Duration) -> Gather<'a, W> {
        Gather {
            conn,
            slices: [IoSlice::new(&[]); SLICES],
            len: 0,
            deadline: Deadline::after(timeout),
            timeout,
            cut: false,
            written: 0,
            failed: None,
        }
    }

    /// Adds `bytes` to the batch (written in order, by the next full array or [`Self::finish`]).
    pub fn push(&mut self, bytes: &'a [u8]) {
        if bytes.is_empty() || self.failed.is_some() {
            return;
        }
        if self.len == SLICES {
            self.flush(true);
        }
        if let Some(slot) = self.slices.get_mut(self.len) {
            *slot = IoSlice::new(bytes);
            self.len = self.len.saturating_add(1);
        }
    }

    /// Sends what is left; the bytes sent, or the first error. `more`: the caller has another
    /// batch to send at once (TCP may wait for it before sending a partial packet).
    pub fn finish(mut self, more: bool) -> io::Result<u64> {
        self.flush(more);
        if self.cut {
            let restored = self.conn.set_write_timeout(Some(self.timeout));
            if self.failed.is_none() {
                restored?;
            }
        }
        match self.failed.take() {
            Some(e) => Err(e),
            None => Ok(self.written),
        }
    }

    /// Sends the slices gathered so far, all of them, by the deadline.
    fn flush(&mut self, more: bool) {
        let len = std::mem::take(&mut self.len);
        if self.failed.is_some() {
            return;
        }
        let mut bufs: &mut [IoSlice<'a>] = self.slices.get_mut(..len).unwrap_or_default();
        while !bufs.is_empty() {
            match self.conn.send(bufs, more) {
                Ok(0) => {
                    self.failed = Some(io::ErrorKind::WriteZero.into());
                    return;
                }
                Ok(n) => {
                    self.written = self.written.saturating_add(n as u64);
                    IoSlice::advance_slices(&mut bufs, n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.failed = Some(e);
                    return;
                }
            }
            if !bufs.is_empty() {
                // A partial write: the rest must still go within the batch's deadline.
                let left = self.deadline.left();
                if left.is_zero() {
                    self.failed = Some(io::ErrorKind::TimedOut.into());
                    return;
                }
                if let Err(e) = self.conn.set_write_timeout(Some(left)) {
                    self.failed = Some(e);
                    return;
                }
                self.cut = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// A socket that takes at most `step` bytes a call and records what it got.
    struct Trickle {
        got: Vec<u8>,
        step: usize,
        calls: usize,
        /// The `more` flag of each call.
        more: Vec<bool>,
        timeouts: Cell<usize>,
    }

    impl Socket for Trickle {
        fn send(&mut self, bufs: &[IoSlice<'_>], more: bool) -> io::Result<usize> {
            self.calls += 1;
            self.more.push(more);
            let mut n = 0;
            for b in bufs {
                let take = b.len().min(self.step - n);
                self.got.extend_from_slice(&b[..take]);
                n += take;
                if n == self.step {
                    break;
                }
            }
            Ok(n)
        }
        fn set_write_timeout(&self, _: Option<Duration>) -> io::Result<()> {
            self.timeouts.set(self.timeouts.get() + 1);
            Ok(())
        }
    }

    fn trickle(step: usize) -> Trickle {
        Trickle {
            got: Vec::new(),
            step,
            calls: 0,
            more: Vec::new(),
            timeouts: Cell::new(0),
        }
    }

    #[test]
    fn every_byte_goes_out_in_order_through_partial_writes_and_full_arrays() {
        let pieces: Vec<Vec<u8>> = (0..200u32)
            .map(|i| vec![i as u8; (i % 7) as usize])
            .collect();
        let want: Vec<u8> = pieces.concat();
        for step in [1, 3, 64, 100_000] {
            let mut sock = trickle(step);
            let mut g = Gather::new(&mut sock, Duration::from_secs(10));
            for p in &pieces {
                g.push(p);
            }
            assert_eq!(g.finish(false).unwrap(), want.len() as u64, "step {step}");
            assert_eq!(sock.got, want, "step {step}");
            if step == 100_000 {
                // 171 non-empty slices: six calls of at most 32, and no timeout changes;
                // every call but the last says more follows.
                assert_eq!(sock.calls, 6);
                assert_eq!(sock.more, [true, true, true, true, true, false]);
                assert_eq!(sock.timeouts.get(), 0);
            } else {
                // Cut after a partial write, and put back once at the end.
                assert!(sock.timeouts.get() >= 2, "step {step}");
            }
        }
    }

    #[test]
    fn a_batch_with_more_to_come_says_so_on_its_last_send_too() {
        let mut sock = trickle(100_000);
        let mut g = Gather::new(&mut sock, Duration::from_secs(10));
        g.push(b"abc");
        g.finish(true).unwrap();
        assert_eq!(sock.more, [true]);
    }

    #[test]
    fn a_socket_that_takes_nothing_fails_the_batch() {
        let mut sock = trickle(0);
        let mut g = Gather::new(&mut sock, Duration::from_secs(10));
        g.push(b"abc");
        assert_eq!(
            g.finish(false).unwrap_err().kind(),
            io::ErrorKind::WriteZero
        );
    }
}
