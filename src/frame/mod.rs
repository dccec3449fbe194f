//! Framers: cut a byte stream into whole frames so listeners join and skip on boundaries.
//!
//! One trait, one file per format, one table ([`FRAMERS`]) looked up by name. Whatever else
//! differs by format (HLS, Ogg's page numbers, durations, silence) is a field of the table's
//! row ([`FramerInfo`]): callers outside this folder read the field, none matches a name.
//!
//! A framer is owned by the source reader thread; it never does I/O. It is handed the bytes
//! read so far and says either "a frame is here" or "need more bytes, and these leading
//! bytes are junk".
//!
//! A boundary module: it reads bytes from outside, so the compiler refuses string slicing,
//! indexing, unchecked arithmetic and lossy casts here (README, Security).
#![cfg_attr(
    not(test),
    deny(
        clippy::string_slice,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects,
        clippy::cast_possible_truncation,
        clippy::cast_possible_wrap,
        clippy::cast_sign_loss
    )
)]

mod adts;
mod mp3;
pub mod ogg;
mod raw;
pub mod silence;
mod ts;
pub use mp3::Mp3Header;

/// What a framer found at the front of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scan {
    /// A whole frame at `buf[skip..skip + len]`; the `skip` bytes before it are not stream data.
    Frame { skip: usize, len: usize },
    /// No frame can be decided yet: drop `skip` leading bytes and call again with more data.
    NeedMore { skip: usize },
}

/// What a framer threw away, for the statistics and the log.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ScanCounts {
    /// Bytes that were not part of any frame or tag (garbage, false syncs).
    pub junk_bytes: u64,
    /// ID3v1/ID3v2 tags skipped, and their bytes.
    pub tags: u64,
    pub tag_bytes: u64,
    /// Well-formed frames larger than `-frame-bytes`, dropped whole.
    pub oversize_frames: u64,
}

impl ScanCounts {
    pub fn add_junk(&mut self, bytes: usize) {
        self.junk_bytes = self.junk_bytes.saturating_add(bytes as u64);
    }

    pub fn add_tag_bytes(&mut self, bytes: usize) {
        self.tag_bytes = self.tag_bytes.saturating_add(bytes as u64);
    }
}

/// A stream format's framing rules.
pub trait Framer: Send {
    /// Looks at the unconsumed input `buf`. `eof` says no more bytes will follow, so a
    /// candidate that ends exactly at the end of `buf` may be accepted. Skipped bytes are
    /// added to `counts`.
    fn scan(&mut self, buf: &[u8], eof: bool, counts: &mut ScanCounts) -> Scan;

    /// Whether the frame the last `scan` returned belongs to the stream's header, which every
    /// new listener needs before any other frame (Ogg's header pages). Such frames are kept
    /// by the ring as the header, not sent as they come.
    fn frame_is_header(&self) -> bool {
        false
    }

    /// How much audio `frame`, the one the last `scan` returned, holds, when the format says
    /// (MP3 and ADTS from the frame's header, Ogg from granule positions): what paces a file
    /// played in real time. `None`: unknown.
    fn frame_duration(&self, _frame: &[u8]) -> Option<std::time::Duration> {
        None
    }
}

/// `samples` at `rate` per second, as a duration (`None` for a zero rate).
pub fn samples_duration(samples: u64, rate: u32) -> Option<std::time::Duration> {
    let rate = u64::from(rate);
    if rate == 0 {
        return None;
    }
    let secs = samples.checked_div(rate)?;
    let rest = samples.checked_rem(rate)?;
    let nanos = rest.checked_mul(1_000_000_000)?.checked_div(rate)?;
    Some(std::time::Duration::new(secs, u32::try_from(nanos).ok()?))
}

/// How HLS serves a format as packed audio (RFC 8216, 3.4): segments that are the
/// elementary stream itself, cut at frame boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HlsPacking {
    /// The segment files' extension (`seg-EPOCH-N.mp3`): players and ffmpeg go by it.
    pub extension: &'static str,
    /// The segments' Content-Type.
    pub content_type: &'static str,
}

impl HlsPacking {
    /// MPEG audio (MP3) segments.
    pub const MPEG_AUDIO: HlsPacking = HlsPacking {
        extension: "mp3",
        content_type: "audio/mpeg",
    };
    /// AAC in ADTS segments.
    pub const ADTS: HlsPacking = HlsPacking {
        extension: "aac",
        content_type: "audio/aac",
    };
}

/// One row of the framer table.
pub struct FramerInfo {
    /// The canonical name, as logged.
    pub name: &'static str,
    /// Every name `-frame-filter` accepts for it.
    pub names: &'static [&'static str],
    /// Content-Type when `-content-type` is not given.
    pub content_type: &'static str,
    /// The smallest `-frame-bytes` that can hold one frame.
    pub min_frame_bytes: usize,
    /// `-frame-bytes` when not given.
    pub default_frame_bytes: usize,
    /// HLS: cut a segment where its audio is a whole multiple of this many bytes when such
    /// a frame boundary lies in the second half of the target (0: at any frame boundary).
    /// ffmpeg's MP3 reader takes packed audio in 1024-byte chunks and stamps the frames it
    /// still holds from one segment with the next segment's ID3 timestamp; when where a
    /// segment ends moves within a chunk, its timestamps step back ("non monotonically
    /// increasing dts"). Segments of whole chunks never move it.
    pub hls_align: usize,
    /// The recorder's file extension (`-record`; raw PCM with a WAV header is `wav`).
    pub extension: &'static str,
    /// `-hls`'s packed-audio segments of this format; `None`: `-hls` is refused for it
    /// (packed audio carries MP3 and ADTS frames only).
    pub hls: Option<HlsPacking>,
    /// Its frames are Ogg pages: logical streams with serial numbers, page sequence numbers
    /// and granule positions, and header pages every listener needs first. Whatever goes out
    /// between the source's own pages (a file's next loop, silence while muted, the link's
    /// fill of an outage) must carry those numbers on, so a player's clock never goes back.
    pub numbered_pages: bool,
    /// Its frames are plain bytes cut every `-frame-bytes`, with no header: how long one
    /// lasts is its length over the stream's byte rate, which only the configuration tells
    /// (the tone's PCM, `-source-bandwidth`).
    pub headerless: bool,
    /// A frame's duration read from the frame alone, with no framer's state: what the link
    /// stamps on a fragment's frames (a receiver has no framer). `None` where it is not read
    /// so (only MP3's is).
    pub header_duration: fn(&[u8]) -> Option<std::time::Duration>,
    /// The silent form of a frame (`silence.rs`, `/admin/mute`): one of the same duration that
    /// decodes to nothing audible; the flag says an Ogg stream is Opus. `None`: the format
    /// has none here, and nothing is sent while muted.
    pub silence: fn(&[u8], bool) -> Option<Vec<u8>>,
    /// Builds a framer; the argument is `-frame-bytes`.
    pub new: fn(usize) -> Box<dyn Framer>,
}

impl std::fmt::Debug for FramerInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// The framer table: the only place a format name is matched (callers read a row's fields).
pub static FRAMERS: &[FramerInfo] = &[
    FramerInfo {
        name: "raw",
        names: &["raw", ""],
        // streamserve's default, kept for drop-in compatibility.
        content_type: "application/octet-stream",
        min_frame_bytes: 1,
        default_frame_bytes: 64,
        hls_align: 0,
        extension: "raw",
        hls: None,
        numbered_pages: false,
        headerless: true,
        header_duration: |_| None,
        silence: silence::zeros,
        new: |max| Box::new(raw::RawFramer::new(max)),
    },
    FramerInfo {
        name: "mp3",
        names: &["mp3"],
        content_type: "audio/mpeg",
        min_frame_bytes: 4,
        // The largest MP3 frame (MPEG-2.5 layer II, 160 kb/s at 8 kHz, padded): streamserve's
        // 64 would drop every frame, so no working streamserve line leaves it out (issue 25).
        default_frame_bytes: 2881,
        hls_align: 1024,
        extension: "mp3",
        hls: Some(HlsPacking::MPEG_AUDIO),
        numbered_pages: false,
        headerless: false,
        header_duration: mp3::header_duration,
        silence: silence::mp3,
        new: |max| Box::new(mp3::Mp3Framer::new(max)),
    },
    FramerInfo {
        name: "adts",
        names: &["adts", "aac"],
        content_type: "audio/aac",
        min_frame_bytes: 7,
        // Any frame fits (its length field has 13 bits). Not streamserve's: it has no adts.
        default_frame_bytes: 8191,
        hls_align: 0,
        extension: "aac",
        hls: Some(HlsPacking::ADTS),
        numbered_pages: false,
        headerless: false,
        header_duration: |_| None,
        silence: silence::none,
        new: |max| Box::new(adts::AdtsFramer::new(max)),
    },
    FramerInfo {
        name: "ts",
        names: &["ts", "mpegts"],
        content_type: "video/mp2t",
        min_frame_bytes: ts::PACKET,
        default_frame_bytes: 64,
        hls_align: 0,
        extension: "ts",
        hls: None,
        numbered_pages: false,
        headerless: false,
        header_duration: |_| None,
        silence: silence::none,
        new: |max| Box::new(ts::TsFramer::new(max)),
    },
    FramerInfo {
        name: "ogg",
        names: &["ogg"],
        content_type: "audio/ogg",
        min_frame_bytes: 28,
        // Any page fits: encoders write pages of a few KB, but a page may be 64 KB.
        default_frame_bytes: ogg::MAX_PAGE,
        hls_align: 0,
        extension: "ogg",
        hls: None,
        numbered_pages: true,
        headerless: false,
        header_duration: |_| None,
        silence: silence::ogg_pages,
        new: |max| Box::new(ogg::OggFramer::new(max)),
    },
];

/// Finds a framer by any of its names.
pub fn find(name: &str) -> Option<&'static FramerInfo> {
    FRAMERS.iter().find(|f| f.names.contains(&name))
}

/// The canonical names, for error messages.
pub fn names() -> Vec<&'static str> {
    FRAMERS.iter().map(|f| f.name).collect()
}

/// Skips an ID3v2 tag (`ID3` + version + flags + 4 syncsafe size bytes) or an ID3v1 tag
/// (`TAG` + 125 bytes) at the front of `buf`: `Ok(Some(len))` when one starts here,
/// `Ok(None)` when none does, `Err(())` when more bytes are needed to tell.
pub(crate) fn id3_len(buf: &[u8]) -> Result<Option<usize>, ()> {
    if buf.len() < 3 {
        return if b"ID3".starts_with(buf) || b"TAG".starts_with(buf) {
            Err(())
        } else {
            Ok(None)
        };
    }
    if buf.starts_with(b"TAG") {
        return Ok(Some(128));
    }
    if !buf.starts_with(b"ID3") {
        return Ok(None);
    }
    let Some(&[_, _, _, major, minor, flags, s0, s1, s2, s3]) = buf.get(..10) else {
        return Err(());
    };
    let size = [s0, s1, s2, s3];
    if major == 0xFF || minor == 0xFF || size.iter().any(|b| b & 0x80 != 0) {
        return Ok(None); // not a real tag header: treat "ID3" as junk
    }
    // Four syncsafe 7-bit bytes: at most 2^28 - 1, which fits a 32-bit usize.
    let body = size.iter().fold(0u32, |acc, &b| (acc << 7) | u32::from(b));
    let footer = if flags & 0x10 != 0 { 10 } else { 0 };
    Ok(usize::try_from(body)
        .ok()
        .and_then(|b| b.checked_add(10)?.checked_add(footer)))
}

/// The shared frame-sync scanner for formats whose header gives the frame length
/// (MPEG audio, ADTS). `header(buf)` returns the frame length and a "compatibility key" for a
/// candidate header at the front of `buf`, or `None`. A candidate counts only when the next
/// header (with the same key) or a tag follows it, or the data ends exactly there.
pub(crate) struct SyncScanner {
    max: usize,
    /// Bytes of a tag that straddled the previous buffer and must still be skipped.
    tag_remaining: usize,
}

impl SyncScanner {
    pub fn new(max: usize) -> Self {
        SyncScanner {
            max,
            tag_remaining: 0,
        }
    }

    pub fn scan(
        &mut self,
        buf: &[u8],
        eof: bool,
        counts: &mut ScanCounts,
        header_len: usize,
        header: impl Fn(&[u8]) -> Option<(usize, u32)>,
    ) -> Scan {
        // `i` only moves forward and never past `buf.len()`; every slice is `get`.
        let mut i = 0;
        if self.tag_remaining > 0 {
            let n = self.tag_remaining.min(buf.len());
            self.tag_remaining = self.tag_remaining.saturating_sub(n);
            counts.add_tag_bytes(n);
            i = n;
        }
        while let Some(rest) = buf.get(i..).filter(|r| !r.is_empty()) {
            match id3_len(rest) {
                Err(()) if !eof => return Scan::NeedMore { skip: i },
                Ok(Some(len)) => {
                    counts.tags = counts.tags.saturating_add(1);
                    if len > rest.len() {
                        self.tag_remaining = if eof {
                            0
                        } else {
                            len.saturating_sub(rest.len())
                        };
                        counts.add_tag_bytes(rest.len());
                        return Scan::NeedMore { skip: buf.len() };
                    }
                    counts.add_tag_bytes(len);
                    i = i.saturating_add(len);
                    continue;
                }
                _ => {}
            }
            if rest.len() < header_len {
                if eof {
                    break;
                }
                return Scan::NeedMore { skip: i };
            }
            if let Some((len, key)) = header(rest) {
                if len > self.max {
                    counts.oversize_frames = counts.oversize_frames.saturating_add(1);
                } else if let Some(next) = rest.get(len..).filter(|next| next.len() >= header_len) {
                    let follows = header(next).is_some_and(|(_, k)| k == key)
                        || matches!(id3_len(next), Ok(Some(_)));
                    if follows {
                        return Scan::Frame { skip: i, len };
                    }
                } else if eof && len == rest.len() {
                    return Scan::Frame { skip: i, len };
                } else if !eof {
                    return Scan::NeedMore { skip: i };
                }
            }
            counts.add_junk(1);
            i = i.saturating_add(1);
        }
        counts.add_junk(buf.len().saturating_sub(i));
        Scan::NeedMore { skip: buf.len() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_framer_takes_any_bytes_and_stays_in_bounds() {
        let mut mp3 = vec![0xff, 0xfb, 0x92, 0x64];
        mp3.resize(418, 0);
        let mp3 = mp3.repeat(3);
        let mut ts = vec![0x47u8];
        ts.resize(188, 0xff);
        let ts = ts.repeat(3);
        let adts = [&[0xFF, 0xF1, 0x50, 0x80, 0x02, 0x1F, 0xFC][..], &[0; 9]].concat();
        let id3 = b"ID3\x04\x00\x00\x7f\x7f\x7f\x7fTAG";
        let seeds: &[&[u8]] = &[&mp3, &ts, &adts.repeat(3), id3, b"\xff\xfb\xff\xff"];
        for info in FRAMERS {
            // -frame-bytes is never below the framer's minimum (config).
            for max in [info.min_frame_bytes, info.min_frame_bytes.max(64), 2881] {
                let name = format!("frame::{}::{max}", info.name);
                crate::util::fuzz::run(&name, seeds, 2048, |b| {
                    let mut f = (info.new)(max);
                    let mut counts = ScanCounts::default();
                    // Feed the input the way the reader does: scan, consume, go on.
                    let mut at = 0;
                    for eof in [false, true] {
                        loop {
                            let buf = &b[at..];
                            match f.scan(buf, eof, &mut counts) {
                                Scan::Frame { skip, len } => {
                                    assert!(skip + len <= buf.len() && len > 0 && len <= max);
                                    at += skip + len;
                                }
                                Scan::NeedMore { skip } => {
                                    assert!(skip <= buf.len());
                                    at += skip;
                                    break;
                                }
                            }
                        }
                    }
                });
            }
        }
    }

    #[test]
    fn table_lookup() {
        assert_eq!(find("").unwrap().name, "raw");
        assert_eq!(find("raw").unwrap().name, "raw");
        assert_eq!(find("mp3").unwrap().name, "mp3");
        assert_eq!(find("mpegts").unwrap().name, "ts");
        assert_eq!(find("ogg").unwrap().name, "ogg");
        assert!(find("flac").is_none());
    }

    #[test]
    fn id3_tag_lengths() {
        let mut v2 = b"ID3\x04\x00\x00\x00\x00\x01\x7f".to_vec();
        v2.resize(300, 0);
        assert_eq!(id3_len(&v2), Ok(Some(10 + 255)));
        assert_eq!(id3_len(b"TAG"), Ok(Some(128)));
        assert_eq!(id3_len(b"ID"), Err(()));
        assert_eq!(id3_len(b"ID3\x04\x00"), Err(()));
        assert_eq!(id3_len(b"\xff\xfb\x92\x64"), Ok(None));
        // A size byte with the top bit set is not syncsafe: not a tag.
        assert_eq!(id3_len(b"ID3\x04\x00\x00\x80\x00\x00\x00"), Ok(None));
    }
}
