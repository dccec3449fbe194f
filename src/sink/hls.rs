//! The HLS segmenter (`-hls`, thread `hls-N`): reads the stream from the ring like a
//! listener, cuts it at frame boundaries into segments of at most `-hls-segment`, and adds
//! them to the stream's window (`stream/segments.rs`). No re-encoding: the segments are
//! packed audio (RFC 8216, 3.4), the MP3 or ADTS frames as they are, each segment opening
//! with the ID3 `PRIV` frame `com.apple.streaming.transportStreamTimestamp` that gives its
//! first sample's time on the 90 kHz MPEG clock.
//!
//! A break in the stream's timeline (`stream/breaks.rs`: the input opened again, another
//! source client or file, the link's audio resuming after an outage it filled) ends the
//! segment being made, and the next one says `EXT-X-DISCONTINUITY`.

use crate::ring::{Frame, ReadOutcome};
use crate::stream::segments::Segment;
use crate::stream::Stream;
use log::info;
use std::time::{Duration, SystemTime};

const OWNER: &[u8] = b"com.apple.streaming.transportStreamTimestamp\0";
/// The MPEG clock wraps at 33 bits.
const PTS_MASK: u64 = 0x1_FFFF_FFFF;

/// The ID3v2.4 tag a packed audio segment opens with: its first sample's time, `pts`, on
/// the 90 kHz clock.
pub fn timestamp_tag(pts: u64) -> Vec<u8> {
    let mut frame_body = OWNER.to_vec();
    frame_body.extend_from_slice(&(pts & PTS_MASK).to_be_bytes());
    let mut frame = b"PRIV".to_vec();
    frame.extend_from_slice(&syncsafe(frame_body.len()));
    frame.extend_from_slice(&[0, 0]);
    frame.extend_from_slice(&frame_body);
    let mut tag = b"ID3\x04\x00\x00".to_vec();
    tag.extend_from_slice(&syncsafe(frame.len()));
    tag.extend_from_slice(&frame);
    tag
}

/// A size as ID3's 4 bytes of 7 bits (sizes here are small).
fn syncsafe(n: usize) -> [u8; 4] {
    let n = u32::try_from(n).unwrap_or(0) & 0x0FFF_FFFF;
    let seven = |shift: u32| u8::try_from((n >> shift) & 0x7F).unwrap_or(0);
    [seven(21), seven(14), seven(7), seven(0)]
}

/// A segment being made.
struct Building {
    bytes: Vec<u8>,
    /// Where its audio begins in `bytes` (after the timestamp tag).
    audio_at: usize,
    duration: Duration,
    starts: SystemTime,
    discontinuity: bool,
    /// The last frame boundary where its audio was a whole multiple of the framer's
    /// `hls_align`: (length of `bytes` there, duration there).
    aligned: Option<(usize, Duration)>,
}

impl Building {
    /// A segment whose first sample is at `clock` (audio since the first segment).
    fn new(clock: Duration, discontinuity: bool) -> Building {
        // 90 kHz ticks: nanoseconds × 9 / 100 000.
        let ticks = clock
            .as_nanos()
            .checked_mul(9)
            .and_then(|n| n.checked_div(100_000));
        let pts = ticks.and_then(|t| u64::try_from(t).ok()).unwrap_or(0);
        let bytes = timestamp_tag(pts);
        Building {
            audio_at: bytes.len(),
            bytes,
            duration: Duration::ZERO,
            starts: SystemTime::now(),
            discontinuity,
            aligned: None,
        }
    }

    fn add(&mut self, frame: &[u8], d: Duration, align: usize) {
        self.bytes.extend_from_slice(frame);
        self.duration = self.duration.saturating_add(d);
        let audio = self.bytes.len().saturating_sub(self.audio_at);
        if align > 0 && audio.checked_rem(align) == Some(0) {
            self.aligned = Some((self.bytes.len(), self.duration));
        }
    }

    /// The segment to publish now that it is full: cut at its last aligned boundary when
    /// that holds at least half the target, the frames after it beginning the next segment
    /// (at `clock`, the audio so far); else whole.
    fn cut(mut self, target: Duration, clock: Duration) -> (Building, Option<Building>) {
        let Some((at, dur)) = self.aligned else {
            return (self, None);
        };
        if dur < target.checked_div(2).unwrap_or_default() || at >= self.bytes.len() {
            return (self, None);
        }
        let rest_dur = self.duration.saturating_sub(dur);
        let mut rest = Building::new(clock.saturating_sub(rest_dur), false);
        rest.starts = self.starts.checked_add(dur).unwrap_or(self.starts);
        rest.bytes
            .extend_from_slice(self.bytes.get(at..).unwrap_or_default());
        rest.duration = rest_dur;
        self.bytes.truncate(at);
        self.duration = dur;
        (self, Some(rest))
    }
}

/// The thread body.
pub fn run(stream: &Stream) {
    let Some(window) = stream.hls.as_ref() else {
        return;
    };
    let cfg = &stream.cfg;
    // Frame durations come from the framer's reading of a frame's header.
    let framer = (cfg.framer.new)(cfg.frame_bytes);
    let target = window.target;
    let align = cfg.framer.hls_align;
    let mut cursor = stream.ring.join(0);
    let mut batch: Vec<Frame> = Vec::new();
    let mut seq: u64 = 0;
    // The clock, in nanoseconds of audio since the first segment (exact: frame by frame).
    let mut clock = Duration::ZERO;
    let mut building: Option<Building> = None;
    // The ring position of the last frame looked at, and whether a break came since.
    let mut last: Option<u64> = None;
    let mut restart = false;
    info!(
        "hls: segments of at most {:.1}s, {} in the playlist",
        target.as_secs_f64(),
        cfg.hls.as_ref().map_or(0, |h| h.window)
    );
    loop {
        batch.clear();
        let (frames, header_len) = match stream.ring.read(
            &mut cursor,
            &mut batch,
            u64::MAX,
            64 * 1024,
            Duration::from_secs(1),
        ) {
            ReadOutcome::Data {
                frames, header_len, ..
            } => (frames, header_len),
            ReadOutcome::Ended => break,
            ReadOutcome::Idle | ReadOutcome::NoRoom => {
                if stream.stop.is_set() {
                    break;
                }
                continue;
            }
        };
        let audio = batch.get(usize::from(header_len > 0)..).unwrap_or_default();
        // The frames' ring positions: they end where the cursor now is.
        let first = cursor.next.saturating_sub(frames as u64);
        for (pos, f) in (first..).zip(audio) {
            if stream.breaks.between(last, pos) {
                restart = true;
            }
            last = Some(pos);
            if is_vbr_info(f) {
                continue;
            }
            let Some(d) = framer.frame_duration(f) else {
                continue;
            };
            let full = building
                .as_ref()
                .is_some_and(|b| b.duration.saturating_add(d) > target);
            if restart {
                // A new run begins with this frame: whatever was made before ends here.
                if let Some(b) = building.take() {
                    finish(window, &mut seq, b);
                }
            } else if full {
                if let Some(b) = building.take() {
                    let (done, rest) = b.cut(target, clock);
                    finish(window, &mut seq, done);
                    building = rest;
                }
            }
            let b = building.get_or_insert_with(|| {
                Building::new(clock, std::mem::take(&mut restart) && seq > 0)
            });
            b.add(f, d, align);
            clock = clock.saturating_add(d);
        }
    }
}

/// An MP3 file's Xing/Info frame (LAME writes one at the start of a file): metadata, not
/// audio. Left out of segments: a player that meets one at a segment's start takes its
/// encoder delay for the segment's and shifts its timestamps.
fn is_vbr_info(f: &[u8]) -> bool {
    let (Some(&b1), Some(&b3)) = (f.get(1), f.get(3)) else {
        return false;
    };
    let mpeg1 = b1 & 0x18 == 0x18;
    let mono = b3 >> 6 == 3;
    let at: usize = match (mpeg1, mono) {
        (true, false) => 36,
        (true, true) | (false, false) => 21,
        (false, true) => 13,
    };
    f.get(at..at.saturating_add(4))
        .is_some_and(|tag| tag == b"Xing" || tag == b"Info")
}

fn finish(window: &crate::stream::segments::Segments, seq: &mut u64, b: Building) {
    window.push(Segment {
        seq: *seq,
        duration: b.duration,
        starts: b.starts,
        made: SystemTime::now(),
        discontinuity: b.discontinuity,
        bytes: b.bytes,
    });
    *seq = seq.saturating_add(1);
}

#[cfg(test)]
mod tests {
    #[test]
    fn lames_info_frame_is_not_audio() {
        let file = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/tone-128k-44k1.mp3"),
        )
        .unwrap();
        assert!(super::is_vbr_info(&file[..417]));
        assert!(!super::is_vbr_info(&file[417..834]));
    }

    #[test]
    fn the_timestamp_tag_is_an_id3v24_priv_frame() {
        let t = super::timestamp_tag(90_000 * 10);
        assert_eq!(&t[..6], b"ID3\x04\x00\x00");
        assert_eq!(t.len(), 10 + 10 + 45 + 8);
        assert_eq!(&t[10..14], b"PRIV");
        assert_eq!(&t[t.len() - 8..], &900_000u64.to_be_bytes());
        // The input's own ID3 parser reads it back as a tag of that length.
        assert_eq!(crate::frame::id3_len(&t), Ok(Some(t.len())));
    }

    /// A 128 kb/s, 44.1 kHz MP3 stream's frame sizes as LAME pads them: 417 or 418 bytes,
    /// 20 480 (20 × 1024) every 49 frames.
    fn cbr_frames(n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| vec![0xAB; (i + 1) * 20_480 / 49 - i * 20_480 / 49])
            .collect()
    }

    #[test]
    fn mp3_segments_are_cut_at_whole_1024_byte_chunks_of_audio() {
        let frame = std::time::Duration::from_nanos(26_122_449);
        let target = std::time::Duration::from_secs(4);
        let (mut clock, mut building, mut done) = (std::time::Duration::ZERO, None, Vec::new());
        for f in cbr_frames(49 * 12) {
            let full = building
                .as_ref()
                .is_some_and(|b: &super::Building| b.duration + frame > target);
            if full {
                let (seg, rest) = building.take().unwrap().cut(target, clock);
                done.push(seg);
                building = rest;
            }
            building
                .get_or_insert_with(|| super::Building::new(clock, false))
                .add(&f, frame, 1024);
            clock += frame;
        }
        assert!(done.len() >= 3);
        let mut at = std::time::Duration::ZERO;
        for seg in &done {
            let audio = seg.bytes.len() - seg.audio_at;
            assert_eq!(audio % 1024, 0, "{audio} bytes of audio");
            // 147 frames: the last whole chunk within 4 s (153 frames would be 3.997 s).
            assert_eq!(audio, 3 * 20_480);
            assert!(seg.duration <= target && seg.duration > target / 2);
            // Each segment's timestamp is where the one before it ended.
            let pts = u64::from_be_bytes(
                seg.bytes[seg.audio_at - 8..seg.audio_at]
                    .try_into()
                    .unwrap(),
            );
            assert_eq!(pts, (at.as_nanos() * 9 / 100_000) as u64);
            at += seg.duration;
        }
        // Without alignment (ADTS): cut at the last frame within the target, as before.
        let mut b = super::Building::new(std::time::Duration::ZERO, false);
        for f in cbr_frames(153) {
            b.add(&f, frame, 0);
        }
        let (seg, rest) = b.cut(target, frame * 153);
        assert!(rest.is_none());
        assert_eq!(seg.duration, frame * 153);
    }
}
