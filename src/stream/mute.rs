//! A stream's mute (`-mute`, `/admin/mute`), applied where its frames are made (the input's
//! reader, and the link receiver's player for Opus): while muted, listeners stay connected
//! and hear silence in the stream's own format (`frame/silence.rs`).
//!
//! A live source (a pipe, a source client, an upstream) keeps being read and each frame is
//! replaced by its silent form, or held back when the format has none. A regular file (a
//! paced source) is not read while muted: silence made from its last frame goes out at the
//! same pace, and at unmute the file goes on from the frame where it stopped. For Opus in
//! Ogg the silent pages carry on the granule positions and page numbers, and the file's
//! pages after them are renumbered to follow on (their CRC sealed again), so a player's
//! clock never goes back.

use crate::frame::{ogg, silence, FramerInfo};
use std::borrow::Cow;
use std::time::Duration;

/// A logical stream's numbering as it went out, and what the file's own pages need added.
struct Shift {
    serial: u32,
    granule_add: u64,
    seq_add: u32,
    last_granule: u64,
    last_seq: u32,
}

pub struct Muter {
    /// The stream's format: what its silence is, and whether its pages carry numbers to go on
    /// with (Ogg).
    framer: &'static FramerInfo,
    /// Ogg: serial numbers kept apart across a stream's new beginnings (set for Ogg).
    pub serials: Option<ogg::Serials>,
    /// The last audio frame that went out (a paused file's silence is made from it); its
    /// buffer is reused, so keeping it costs a copy per frame and no allocation.
    last: Vec<u8>,
    /// The stream is Opus in Ogg (seen in its header pages).
    pub opus: bool,
    shifts: Vec<Shift>,
}

impl Muter {
    /// A muter for a stream of `framer`'s format (no serial numbers kept apart: the reader
    /// sets `serials` for its source).
    pub fn new(framer: &'static FramerInfo) -> Muter {
        Muter {
            framer,
            serials: None,
            last: Vec::new(),
            opus: false,
            shifts: Vec::new(),
        }
    }

    /// What goes out for an audio frame from the source: the frame (renumbered after a
    /// paused file's silence), or while muted its silent form (`None`: nothing).
    pub fn pass<'a>(&mut self, frame: &'a [u8], muted: bool) -> Option<Cow<'a, [u8]>> {
        let frame = if self.framer.numbered_pages {
            self.renumber(frame)
        } else {
            Cow::Borrowed(frame)
        };
        let out = if muted {
            Cow::Owned(silence::silent(self.framer, &frame, self.opus)?)
        } else {
            frame
        };
        self.last.clear();
        self.last.extend_from_slice(&out);
        Some(out)
    }

    /// A paused file's next silent frame and its duration, from the last frame that went
    /// out; `None` when the format has no silent form (nothing is sent meanwhile).
    pub fn filler(
        &mut self,
        duration: impl Fn(&[u8]) -> Option<Duration>,
    ) -> Option<(Vec<u8>, Duration)> {
        if self.last.is_empty() {
            return None;
        }
        let mut quiet = silence::silent(self.framer, &self.last, self.opus)?;
        let d = if self.framer.numbered_pages {
            let samples = silence::opus_page_samples(&quiet)?;
            self.advance(&mut quiet, samples)?;
            crate::frame::samples_duration(samples, 48_000)?
        } else {
            duration(&quiet)?
        };
        self.last.clear();
        self.last.extend_from_slice(&quiet);
        Some((quiet, d))
    }

    /// Numbers a silent Ogg page after the last page of its stream, and shifts the pages
    /// still to come by it.
    fn advance(&mut self, page: &mut [u8], samples: u64) -> Option<()> {
        let serial = page_serial(page)?;
        let shift = self.shift(serial)?;
        shift.last_granule = shift.last_granule.saturating_add(samples);
        shift.last_seq = shift.last_seq.wrapping_add(1);
        shift.granule_add = shift.granule_add.saturating_add(samples);
        shift.seq_add = shift.seq_add.wrapping_add(1);
        let (g, q) = (shift.last_granule, shift.last_seq);
        page.get_mut(6..14)?.copy_from_slice(&g.to_le_bytes());
        page.get_mut(18..22)?.copy_from_slice(&q.to_le_bytes());
        ogg::seal(page);
        Some(())
    }

    /// The file's own page, moved on by the silence inserted before it.
    fn renumber<'a>(&mut self, page: &'a [u8]) -> Cow<'a, [u8]> {
        let (Some(serial), Some(&flags)) = (page_serial(page), page.get(5)) else {
            return Cow::Borrowed(page);
        };
        if flags & 0x02 != 0 {
            // A new stream (or the file again): its numbers start afresh.
            self.shifts.retain(|s| s.serial != serial);
        }
        let (Some(granule), Some(seq)) = (page_u64(page, 6), page_u32(page, 18)) else {
            return Cow::Borrowed(page);
        };
        let Some(shift) = self.shift(serial) else {
            return Cow::Borrowed(page);
        };
        let granule = if granule == u64::MAX {
            granule
        } else {
            granule.saturating_add(shift.granule_add)
        };
        let seq = seq.wrapping_add(shift.seq_add);
        if granule != u64::MAX {
            shift.last_granule = granule;
        }
        shift.last_seq = seq;
        if shift.granule_add == 0 && shift.seq_add == 0 {
            return Cow::Borrowed(page);
        }
        let mut out = page.to_vec();
        if let Some(g) = out.get_mut(6..14) {
            g.copy_from_slice(&granule.to_le_bytes());
        }
        if let Some(q) = out.get_mut(18..22) {
            q.copy_from_slice(&seq.to_le_bytes());
        }
        ogg::seal(&mut out);
        Cow::Owned(out)
    }

    /// The numbering of logical stream `serial` (at most 16 are kept).
    fn shift(&mut self, serial: u32) -> Option<&mut Shift> {
        if !self.shifts.iter().any(|s| s.serial == serial) {
            if self.shifts.len() >= 16 {
                self.shifts.remove(0);
            }
            self.shifts.push(Shift {
                serial,
                granule_add: 0,
                seq_add: 0,
                last_granule: 0,
                last_seq: 0,
            });
        }
        self.shifts.iter_mut().find(|s| s.serial == serial)
    }
}

fn page_u64(page: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        page.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

fn page_u32(page: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        page.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn page_serial(page: &[u8]) -> Option<u32> {
    page_u32(page, 14)
}
