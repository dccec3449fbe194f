//! The adts framer: whole AAC frames in ADTS (12-bit sync 0xFFF, layer 0, 13-bit length).
//!
//! Same confirmation rule as mp3: a candidate counts only if the next header (same profile,
//! sample rate and channels) or a tag follows, or the data ends exactly there.

use super::{Framer, Scan, ScanCounts, SyncScanner};

/// Length and compatibility key of an ADTS header at the front of `b`.
fn header(b: &[u8]) -> Option<(usize, u32)> {
    let &[b0, b1, b2, b3, b4, b5, _, ..] = b else {
        return None;
    };
    if b0 != 0xFF || b1 & 0xF6 != 0xF0 {
        return None;
    }
    let sr_idx = (b2 >> 2) & 0x0F;
    if sr_idx > 12 {
        return None;
    }
    // 13 bits: at most 8191.
    let len = usize::from(b3 & 3) << 11 | usize::from(b4) << 3 | usize::from(b5 >> 5);
    let header_len = if b1 & 1 == 1 { 7 } else { 9 };
    if len <= header_len {
        return None;
    }
    // profile, sample rate, channel configuration
    let key = u32::from(b2 & 0xFD) << 8 | u32::from(b3 & 0xC0);
    Some((len, key))
}

pub struct AdtsFramer {
    sync: SyncScanner,
}

impl AdtsFramer {
    pub fn new(max: usize) -> Self {
        AdtsFramer {
            sync: SyncScanner::new(max),
        }
    }
}

/// The sample rates an ADTS header's 4-bit index names.
const RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

impl Framer for AdtsFramer {
    fn scan(&mut self, buf: &[u8], eof: bool, counts: &mut ScanCounts) -> Scan {
        self.sync.scan(buf, eof, counts, 7, header)
    }

    /// 1024 samples per raw data block, 1 to 4 blocks a frame.
    fn frame_duration(&self, frame: &[u8]) -> Option<std::time::Duration> {
        let (&b2, &b6) = (frame.get(2)?, frame.get(6)?);
        let rate = *RATES.get(usize::from((b2 >> 2) & 0x0F))?;
        let blocks = u64::from(b6 & 3).saturating_add(1);
        super::samples_duration(blocks.saturating_mul(1024), rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ADTS header for AAC-LC 44.1 kHz stereo, no CRC, total length `len`.
    fn frame(len: usize) -> Vec<u8> {
        let mut f = vec![
            0xFF,
            0xF1,
            0x50,
            0x80 | ((len >> 11) & 3) as u8,
            ((len >> 3) & 0xFF) as u8,
            (((len & 7) << 5) | 0x1F) as u8,
            0xFC,
        ];
        f.resize(len, 0x11);
        f
    }

    #[test]
    fn header_length() {
        assert_eq!(header(&frame(371)).map(|h| h.0), Some(371));
        assert!(
            header(&[0xFF, 0xFB, 0x92, 0x64, 0, 0, 0]).is_none(),
            "mp3 is not adts"
        );
    }

    #[test]
    fn frames_are_confirmed_by_the_next_header() {
        let input = [vec![1, 2, 3], frame(300), frame(310), frame(200)].concat();
        let mut f = AdtsFramer::new(8191);
        let mut c = ScanCounts::default();
        let mut buf = &input[..];
        let mut lens = Vec::new();
        while let Scan::Frame { skip, len } = f.scan(buf, true, &mut c) {
            lens.push(len);
            buf = &buf[skip + len..];
        }
        assert_eq!(lens, [300, 310, 200]);
        assert_eq!(c.junk_bytes, 3);
    }
}
