//! `-fallback-path`: an MP3 file looped in real time, whole frames at a time, while no source
//! client is connected.

use super::Got;
use crate::frame::Mp3Header;
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

/// An MP3 file played in a loop in real time, whole frames at a time.
pub struct Fallback {
    data: Vec<u8>,
    /// (offset, length, duration) of each frame.
    frames: Vec<(usize, usize, Duration)>,
    next: usize,
    /// When the next frame is due.
    due: Instant,
}

impl Fallback {
    pub fn load(path: &Path) -> io::Result<Fallback> {
        let data = std::fs::read(path)?;
        let mut frames = Vec::new();
        let mut pos = 0;
        while let Some(rest) = data.get(pos..).filter(|r| r.len() >= 4) {
            match Mp3Header::parse(rest) {
                Some(h) if h.len <= rest.len() => {
                    let d =
                        Duration::from_secs_f64(f64::from(h.samples()) / f64::from(h.sample_rate));
                    frames.push((pos, h.len, d));
                    pos = pos.saturating_add(h.len);
                }
                _ => pos = pos.saturating_add(1),
            }
        }
        if frames.is_empty() {
            return Err(io::Error::other(
                "no MP3 frames in it (the fallback must be an MP3 file)",
            ));
        }
        Ok(Fallback {
            data,
            frames,
            next: 0,
            due: Instant::now(),
        })
    }

    /// A live source took over: resume in real time from now when it leaves.
    pub fn pause(&mut self) {
        self.due = Instant::now();
    }

    pub fn read(&mut self, buf: &mut [u8], wait: Duration) -> io::Result<Got> {
        let until_due = self.due.saturating_duration_since(Instant::now());
        if until_due > wait {
            std::thread::sleep(wait);
            return Ok(Got::Nothing);
        }
        std::thread::sleep(until_due);
        // If we fell far behind (the reader was busy), do not burst: restart the clock.
        if Instant::now().saturating_duration_since(self.due) > Duration::from_secs(1) {
            self.due = Instant::now();
        }
        let (frame, d) = self
            .frames
            .get(self.next)
            .and_then(|&(off, len, d)| Some((self.data.get(off..off.checked_add(len)?)?, d)))
            .ok_or_else(|| io::Error::other("fallback frame out of range"))?;
        buf.get_mut(..frame.len())
            .ok_or_else(|| io::Error::other("read buffer smaller than a fallback frame"))?
            .copy_from_slice(frame);
        // load() refuses a file without frames, so the length is never zero.
        self.next = self
            .next
            .saturating_add(1)
            .checked_rem(self.frames.len())
            .unwrap_or(0);
        self.due = self.due.checked_add(d).unwrap_or(self.due);
        Ok(Got::from_len(frame.len()))
    }
}
