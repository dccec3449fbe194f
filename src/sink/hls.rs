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
    duration: Duration,
    starts: SystemTime,
    discontinuity: bool,
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
            if full || (restart && building.is_some()) {
                if let Some(b) = building.take() {
                    finish(window, &mut seq, b);
                }
            }
            let b = building.get_or_insert_with(|| {
                // 90 kHz ticks: nanoseconds × 9 / 100 000.
                let ticks = clock
                    .as_nanos()
                    .checked_mul(9)
                    .and_then(|n| n.checked_div(100_000));
                let pts = ticks.and_then(|t| u64::try_from(t).ok()).unwrap_or(0);
                Building {
                    bytes: timestamp_tag(pts),
                    duration: Duration::ZERO,
                    starts: SystemTime::now(),
                    discontinuity: std::mem::take(&mut restart) && seq > 0,
                }
            });
            b.bytes.extend_from_slice(f);
            b.duration = b.duration.saturating_add(d);
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
}
