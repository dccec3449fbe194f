//! The mp3 framer: whole MPEG-1/2/2.5 audio frames, layers I–III.
//!
//! A header is 11 sync bits, version, layer, bitrate, sample rate and padding. A candidate
//! counts only if the next frame's header (same version, layer and sample rate) or a tag
//! follows it, or the data ends exactly there: that is what keeps a false sync inside an ID3
//! tag or garbage from becoming a bogus frame. ID3 tags and junk are skipped and counted.

use super::{Framer, Scan, ScanCounts, SyncScanner};

/// kb/s by [version is MPEG-1][layer index 1..=3 → III, II, I][bitrate index].
const BITRATES_V1: [[u16; 15]; 3] = [
    [
        0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
    ], // layer III
    [
        0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384,
    ], // layer II
    [
        0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448,
    ], // layer I
];
const BITRATES_V2: [[u16; 15]; 3] = [
    [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160], // layer III
    [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160], // layer II
    [
        0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256,
    ], // layer I
];
/// Hz by version bits (0 = MPEG-2.5, 2 = MPEG-2, 3 = MPEG-1) and sample-rate index.
const SAMPLE_RATES: [[u32; 3]; 4] = [
    [11025, 12000, 8000],
    [0, 0, 0],
    [22050, 24000, 16000],
    [44100, 48000, 32000],
];

/// The fields of one MPEG audio frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mp3Header {
    /// 0 = MPEG-2.5, 2 = MPEG-2, 3 = MPEG-1 (the raw version bits).
    pub version: u8,
    /// 1 = layer III, 2 = layer II, 3 = layer I (the raw layer bits).
    pub layer: u8,
    pub bitrate_kbps: u32,
    pub sample_rate: u32,
    pub padding: bool,
    /// The frame's length in bytes, header included.
    pub len: usize,
}

impl Mp3Header {
    /// Samples per frame (for durations).
    pub fn samples(&self) -> u32 {
        match (self.version, self.layer) {
            (_, 3) => 384,
            (3, _) | (_, 2) => 1152,
            _ => 576,
        }
    }

    /// Parses the 4 header bytes at the front of `b`.
    pub fn parse(b: &[u8]) -> Option<Mp3Header> {
        let &[b0, b1, b2, b3, ..] = b else {
            return None;
        };
        if b0 != 0xFF || b1 & 0xE0 != 0xE0 {
            return None;
        }
        let version = (b1 >> 3) & 3;
        let layer = (b1 >> 1) & 3;
        let br_idx = usize::from(b2 >> 4);
        let sr_idx = usize::from((b2 >> 2) & 3);
        // Reserved version/layer/sample rate, "free" and "bad" bitrates, reserved emphasis.
        if version == 1 || layer == 0 || br_idx == 0 || br_idx == 15 || sr_idx == 3 || b3 & 3 == 2 {
            return None;
        }
        let table = if version == 3 {
            &BITRATES_V1
        } else {
            &BITRATES_V2
        };
        let row = usize::from(layer).checked_sub(1)?;
        let bitrate_kbps = u32::from(*table.get(row)?.get(br_idx)?);
        let sample_rate = *SAMPLE_RATES.get(usize::from(version))?.get(sr_idx)?;
        let padding = (b2 >> 1) & 1 == 1;
        let pad = u32::from(padding);
        // At most 448 000 × 144: well inside 32 bits, so checked ops never fail in practice.
        let br = bitrate_kbps.checked_mul(1000)?;
        let per = |k: u32| k.checked_mul(br)?.checked_div(sample_rate);
        let len = match (version, layer) {
            (_, 3) => per(12)?.checked_add(pad)?.checked_mul(4)?,
            (0 | 2, 1) => per(72)?.checked_add(pad)?,
            _ => per(144)?.checked_add(pad)?,
        };
        let len = usize::try_from(len).ok()?;
        Some(Mp3Header {
            version,
            layer,
            bitrate_kbps,
            sample_rate,
            padding,
            len,
        })
    }
}

/// A frame's duration from its header alone (the table's `header_duration`, what the link
/// stamps on its frames), reckoned in floating point as the link always has; the framer's
/// own reading ([`Mp3Framer`]'s `frame_duration`) is exact.
pub(super) fn header_duration(frame: &[u8]) -> Option<std::time::Duration> {
    Mp3Header::parse(frame).map(|h| {
        std::time::Duration::from_secs_f64(f64::from(h.samples()) / f64::from(h.sample_rate))
    })
}

pub struct Mp3Framer {
    sync: SyncScanner,
}

impl Mp3Framer {
    pub fn new(max: usize) -> Self {
        Mp3Framer {
            sync: SyncScanner::new(max),
        }
    }
}

impl Framer for Mp3Framer {
    fn frame_duration(&self, frame: &[u8]) -> Option<std::time::Duration> {
        let h = Mp3Header::parse(frame)?;
        super::samples_duration(u64::from(h.samples()), h.sample_rate)
    }

    fn scan(&mut self, buf: &[u8], eof: bool, counts: &mut ScanCounts) -> Scan {
        self.sync.scan(buf, eof, counts, 4, |b| {
            // Frames of one stream share version, layer and sample rate (header byte 1, and
            // the sample-rate bits of byte 2).
            let h = Mp3Header::parse(b)?;
            let &[_, b1, b2, ..] = b else { return None };
            Some((h.len, u32::from(b1) << 8 | u32::from(b2 & 0x0C)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn len(h: [u8; 4]) -> usize {
        Mp3Header::parse(&h).expect("valid header").len
    }

    #[test]
    fn lame_128k_44k1_padded() {
        assert_eq!(len([0xff, 0xfb, 0x92, 0x64]), 418);
        assert_eq!(len([0xff, 0xfb, 0x90, 0x64]), 417);
    }

    #[test]
    fn lame_40k_16k_mpeg2_layer3() {
        assert_eq!(len([0xff, 0xf3, 0x58, 0x64]), 180);
    }

    #[test]
    fn mpeg1_layer1() {
        // MPEG-1 layer I, 384 kb/s (index 12), 48 kHz, no padding: 12*384000/48000*4 = 384.
        assert_eq!(len([0xff, 0xff, 0xc4, 0x00]), 384);
        // padded: (12*384000/48000 + 1) * 4 = 388.
        assert_eq!(len([0xff, 0xff, 0xc6, 0x00]), 388);
    }

    #[test]
    fn mpeg2_layer3() {
        // MPEG-2 layer III 64 kb/s (index 8), 22050 Hz: 72*64000/22050 = 208.
        assert_eq!(len([0xff, 0xf3, 0x80, 0x00]), 208);
    }

    #[test]
    fn mpeg25_layer2_is_the_largest_frame() {
        // MPEG-2.5 layer II 160 kb/s (index 14) at 8 kHz, padded: 144*160000/8000 + 1 = 2881.
        assert_eq!(len([0xff, 0xe5, 0xea, 0x00]), 2881);
        // MPEG-2.5 layer II 8 kb/s at 11025 Hz: 144*8000/11025 = 104.
        assert_eq!(len([0xff, 0xe5, 0x10, 0x00]), 104);
    }

    #[test]
    fn reserved_fields_are_rejected() {
        assert!(Mp3Header::parse(&[0xff, 0xeb, 0x92, 0x64]).is_none()); // version 01
        assert!(Mp3Header::parse(&[0xff, 0xf9, 0x92, 0x64]).is_none()); // layer 00
        assert!(Mp3Header::parse(&[0xff, 0xfb, 0xf2, 0x64]).is_none()); // bitrate 15
        assert!(Mp3Header::parse(&[0xff, 0xfb, 0x02, 0x64]).is_none()); // free format
        assert!(Mp3Header::parse(&[0xff, 0xfb, 0x9e, 0x64]).is_none()); // sample rate 3
        assert!(Mp3Header::parse(&[0xff, 0xfb, 0x92, 0x66]).is_none()); // emphasis 2
    }

    fn frame(h: [u8; 4], fill: u8) -> Vec<u8> {
        let mut f = h.to_vec();
        f.resize(len(h), fill);
        f
    }

    /// Runs the framer over `input` fed in `chunk`-byte pieces; returns frames and counts.
    fn frames(input: &[u8], max: usize, chunk: usize) -> (Vec<Vec<u8>>, ScanCounts) {
        let mut f = Mp3Framer::new(max);
        let mut counts = ScanCounts::default();
        let mut out = Vec::new();
        let mut pending: Vec<u8> = Vec::new();
        let mut fed = 0;
        loop {
            let eof = fed == input.len();
            match f.scan(&pending, eof, &mut counts) {
                Scan::Frame { skip, len } => {
                    out.push(pending[skip..skip + len].to_vec());
                    pending.drain(..skip + len);
                }
                Scan::NeedMore { skip } => {
                    pending.drain(..skip);
                    if eof {
                        return (out, counts);
                    }
                    let n = chunk.min(input.len() - fed);
                    pending.extend_from_slice(&input[fed..fed + n]);
                    fed += n;
                }
            }
        }
    }

    #[test]
    fn frames_split_across_reads_come_out_whole() {
        let a = frame([0xff, 0xfb, 0x92, 0x64], 1);
        let b = frame([0xff, 0xfb, 0x90, 0x64], 2);
        let input = [a.clone(), b.clone(), a.clone()].concat();
        for chunk in [1, 3, 100, 5000] {
            let (out, counts) = frames(&input, 2881, chunk);
            assert_eq!(out, vec![a.clone(), b.clone(), a.clone()], "chunk {chunk}");
            assert_eq!(counts, ScanCounts::default());
        }
    }

    #[test]
    fn id3_tags_and_junk_are_skipped_and_counted() {
        let a = frame([0xff, 0xfb, 0x92, 0x64], 1);
        // An ID3v2 tag whose body contains a false sync (a valid-looking header).
        let mut tag = b"ID3\x04\x00\x00\x00\x00\x00\x20".to_vec();
        tag.extend_from_slice(&[0xff, 0xfb, 0x92, 0x64]);
        tag.resize(10 + 32, 0xAA);
        let junk = [0x00, 0xff, 0xfb, 0x10, 0x12, 0x34];
        let input = [
            tag,
            junk.to_vec(),
            a.clone(),
            a.clone(),
            b"TAG".to_vec(),
            vec![0; 125],
        ]
        .concat();
        for chunk in [1, 7, 10_000] {
            let (out, counts) = frames(&input, 2881, chunk);
            assert_eq!(out, vec![a.clone(), a.clone()], "chunk {chunk}");
            assert_eq!(counts.tags, 2);
            assert_eq!(counts.tag_bytes, 42 + 128);
            assert_eq!(counts.junk_bytes, junk.len() as u64);
        }
    }

    #[test]
    fn false_sync_in_junk_is_not_a_frame() {
        // A valid header followed by garbage (no next header): not a frame.
        let mut input = vec![0xff, 0xfb, 0x92, 0x64];
        input.resize(1000, 0x55);
        let (out, counts) = frames(&input, 2881, 64);
        assert!(out.is_empty());
        assert_eq!(counts.junk_bytes, 1000);
    }

    #[test]
    fn oversize_frame_is_dropped_not_truncated() {
        let a = frame([0xff, 0xfb, 0x92, 0x64], 1); // 418 bytes
        let small = frame([0xff, 0xf3, 0x58, 0x64], 2); // 180 bytes, MPEG-2
        let input = [
            small.clone(),
            a.clone(),
            a.clone(),
            small.clone(),
            small.clone(),
        ]
        .concat();
        let (out, counts) = frames(&input, 300, 50);
        // The 418-byte frames never come out, neither whole nor cut; the small ones do
        // (the first small frame is followed by an MPEG-1 header, so it cannot be confirmed).
        assert!(
            out.iter().all(|f| f == &small),
            "{:?}",
            out.iter().map(Vec::len).collect::<Vec<_>>()
        );
        assert_eq!(out.len(), 2);
        assert!(counts.oversize_frames >= 2);
    }

    #[test]
    fn last_frame_at_eof_is_kept_partial_frame_dropped() {
        let a = frame([0xff, 0xfb, 0x92, 0x64], 1);
        let (out, _) = frames(&[a.clone(), a.clone()].concat(), 2881, 100);
        assert_eq!(out.len(), 2);
        let (out, counts) = frames(&[a.clone(), a[..200].to_vec()].concat(), 2881, 100);
        assert_eq!(out, vec![a.clone()]);
        assert_eq!(counts.junk_bytes, 200);
    }
}
