//! The ogg framer: whole Ogg pages (RFC 3533) as frames, for Opus, Vorbis and FLAC in Ogg.
//!
//! A page is taken only when its capture pattern, version, lengths and CRC all check out;
//! anything else is junk, skipped up to the next `OggS` and counted, as for MP3.
//!
//! An Ogg stream cannot be joined at any page: a player needs the header pages of each
//! logical stream first (Opus: `OpusHead` and `OpusTags`; Vorbis: three header packets;
//! FLAC: its mapping header and metadata blocks). The framer says which pages are header
//! pages ([`Framer::frame_is_header`]): from a beginning-of-stream page until the first page
//! that finishes an audio packet, that is, whose granule position is neither 0 (the header
//! packets' pages carry 0 in all three mappings) nor -1 (no packet ends on it). A
//! beginning-of-stream page after audio starts a new chain (an encoder's track change), and
//! its header pages replace the old ones (`input/supervisor.rs`, `ring::Ring::push_header`).

use super::{Framer, Scan, ScanCounts};

/// The fixed part of a page header; the segment table (up to 255 bytes) follows.
const FIXED: usize = 27;
/// The largest page: the fixed header, 255 segment lengths, 255 segments of 255 bytes.
pub const MAX_PAGE: usize = 27 + 255 + 255 * 255;
const CAPTURE: &[u8; 4] = b"OggS";
const FLAG_BOS: u8 = 0x02;
/// Logical streams tracked at once (a multiplexed file has a few; more are not headers).
const MAX_STREAMS: usize = 16;

/// A logical stream's clock: its granule rate and the granule position last seen.
struct Clock {
    serial: u32,
    rate: u32,
    granule: u64,
}

pub struct OggFramer {
    max: usize,
    clocks: Vec<Clock>,
    last_duration: Option<std::time::Duration>,
    headers: HeaderTracker,
    last_was_header: bool,
}

/// Which pages of an Ogg stream are header pages (see the module's comment). The framer
/// uses it, and so does a link receiver, which gets pages already framed.
#[derive(Default)]
pub struct HeaderTracker {
    /// Serial numbers of the logical streams still in their header pages.
    in_headers: Vec<u32>,
    /// Some audio page has been seen since the last beginning-of-stream page.
    audio_seen: bool,
}

impl HeaderTracker {
    /// Whether `page` (a whole page, already checked) is a header page.
    pub fn is_header(&mut self, page: &[u8]) -> bool {
        let (Some(&flags), Some(g), Some(s)) = (page.get(5), page.get(6..14), page.get(14..18))
        else {
            return false;
        };
        let (Ok(g), Ok(s)) = (<[u8; 8]>::try_from(g), <[u8; 4]>::try_from(s)) else {
            return false;
        };
        self.classify(flags, u64::from_le_bytes(g), u32::from_le_bytes(s))
    }
}

/// Gives a logical stream that begins again (a file's next loop, an encoder that restarts
/// with the same serial number) a serial number of its own: a chain must not reuse one, and
/// players that see a known serial take the new headers for audio packets. Pages are
/// rewritten (and sealed again) only when their number changes.
#[derive(Default)]
pub struct Serials {
    /// Serial numbers seen, and what each maps to now.
    map: Vec<(u32, u32)>,
    /// Serial numbers given out.
    used: Vec<u32>,
}

impl Serials {
    pub fn map<'a>(&mut self, page: &'a [u8]) -> std::borrow::Cow<'a, [u8]> {
        use std::borrow::Cow;
        let (Some(&flags), Some(s)) = (page.get(5), page.get(14..18)) else {
            return Cow::Borrowed(page);
        };
        let Ok(s) = <[u8; 4]>::try_from(s) else {
            return Cow::Borrowed(page);
        };
        let serial = u32::from_le_bytes(s);
        if flags & FLAG_BOS != 0 {
            let mut to = serial;
            if self.used.contains(&to) {
                // The next number nobody has (a few tries at most: `used` is small).
                while self.used.contains(&to) {
                    to = to.wrapping_add(0x9E37_79B9);
                }
            }
            if self.used.len() >= 64 {
                self.used.remove(0);
            }
            self.used.push(to);
            self.map.retain(|(from, _)| *from != serial);
            if self.map.len() >= MAX_STREAMS {
                self.map.remove(0);
            }
            self.map.push((serial, to));
        }
        let to = self
            .map
            .iter()
            .find(|(from, _)| *from == serial)
            .map_or(serial, |m| m.1);
        if to == serial {
            return Cow::Borrowed(page);
        }
        let mut out = page.to_vec();
        if let Some(field) = out.get_mut(14..18) {
            field.copy_from_slice(&to.to_le_bytes());
        }
        seal(&mut out);
        Cow::Owned(out)
    }
}

impl OggFramer {
    pub fn new(max: usize) -> Self {
        OggFramer {
            max,
            clocks: Vec::new(),
            last_duration: None,
            headers: HeaderTracker::default(),
            last_was_header: false,
        }
    }
}

impl HeaderTracker {
    /// Classifies a page that passed its checks; true for a header page.
    fn classify(&mut self, flags: u8, granule: u64, serial: u32) -> bool {
        if flags & FLAG_BOS != 0 {
            if self.audio_seen {
                // A new chain: the logical streams before it have ended.
                self.in_headers.clear();
                self.audio_seen = false;
            }
            if self.in_headers.len() < MAX_STREAMS && !self.in_headers.contains(&serial) {
                self.in_headers.push(serial);
            }
            return true;
        }
        let Some(at) = self.in_headers.iter().position(|&s| s == serial) else {
            self.audio_seen = true;
            return false;
        };
        if granule == 0 || granule == u64::MAX {
            return true;
        }
        self.in_headers.swap_remove(at);
        self.audio_seen = true;
        false
    }
}

/// What a page header says: its whole length, flags, granule position, serial number, and
/// where its body starts.
struct PageHead {
    len: usize,
    flags: u8,
    granule: u64,
    serial: u32,
    body_at: usize,
}

/// The granule rate of a logical stream, from its first packet (on its beginning-of-stream
/// page): Opus counts 48 kHz samples whatever it was encoded from; Vorbis and FLAC count
/// samples at the rate their header gives.
fn granule_rate(first: &[u8]) -> Option<u32> {
    if first.starts_with(b"OpusHead") {
        return Some(48_000);
    }
    if first.starts_with(b"\x01vorbis") {
        let b: [u8; 4] = first.get(12..16)?.try_into().ok()?;
        return Some(u32::from_le_bytes(b));
    }
    if first.starts_with(b"\x7fFLAC") {
        // The mapping header (13 bytes), then STREAMINFO's block header (4): the sample rate
        // is 20 bits, 10 bytes into STREAMINFO.
        let (&a, &b, &c) = (first.get(27)?, first.get(28)?, first.get(29)?);
        return Some(u32::from(a) << 12 | u32::from(b) << 4 | u32::from(c >> 4));
    }
    None
}

/// Reads the page header at the front of `b`: `Ok(None)` when more bytes are needed,
/// `Err(())` when this is not a page header.
fn page_head(b: &[u8]) -> Result<Option<PageHead>, ()> {
    let Some(fixed) = b.get(..FIXED) else {
        return Ok(None);
    };
    let (Some(capture), Some(&version), Some(&flags), Some(granule), Some(serial), Some(&nsegs)) = (
        fixed.get(..4),
        fixed.get(4),
        fixed.get(5),
        fixed.get(6..14),
        fixed.get(14..18),
        fixed.get(26),
    ) else {
        return Err(());
    };
    if capture != CAPTURE || version != 0 || flags & !0x07 != 0 {
        return Err(());
    }
    let table_end = FIXED.saturating_add(usize::from(nsegs));
    let Some(table) = b.get(FIXED..table_end) else {
        return Ok(None);
    };
    let body: usize = table.iter().map(|&s| usize::from(s)).sum();
    let granule = u64::from_le_bytes(granule.try_into().map_err(|_| ())?);
    let serial = u32::from_le_bytes(serial.try_into().map_err(|_| ())?);
    Ok(Some(PageHead {
        len: table_end.saturating_add(body),
        flags,
        granule,
        serial,
        body_at: table_end,
    }))
}

/// The page's CRC (polynomial 0x04C11DB7, no reflection, initial 0), computed with the CRC
/// field (bytes 22..26) taken as zeros.
fn crc(page: &[u8]) -> u32 {
    let mut c: u32 = 0;
    for (i, &byte) in page.iter().enumerate() {
        let b = if (22..26).contains(&i) { 0 } else { byte };
        c ^= u32::from(b) << 24;
        for _ in 0..8 {
            c = if c & 0x8000_0000 != 0 {
                (c << 1) ^ 0x04C1_1DB7
            } else {
                c << 1
            };
        }
    }
    c
}

/// Writes the CRC of a page built or changed here (mute's silent pages).
pub fn seal(page: &mut [u8]) {
    let c = crc(page).to_le_bytes();
    if let Some(field) = page.get_mut(22..26) {
        field.copy_from_slice(&c);
    }
}

fn stored_crc(page: &[u8]) -> Option<u32> {
    let b: [u8; 4] = page.get(22..26)?.try_into().ok()?;
    Some(u32::from_le_bytes(b))
}

impl OggFramer {
    /// Advances the page's logical stream's clock; the audio the page finishes.
    fn tick(&mut self, head: &PageHead, page: &[u8]) -> Option<std::time::Duration> {
        if head.flags & FLAG_BOS != 0 {
            let rate = granule_rate(page.get(head.body_at..).unwrap_or_default())?;
            self.clocks.retain(|c| c.serial != head.serial);
            if self.clocks.len() >= MAX_STREAMS {
                self.clocks.remove(0);
            }
            self.clocks.push(Clock {
                serial: head.serial,
                rate,
                granule: 0,
            });
            return None;
        }
        let clock = self.clocks.iter_mut().find(|c| c.serial == head.serial)?;
        // -1: no packet ends on this page. A granule going back (a broken stream) counts 0.
        if head.granule == u64::MAX {
            return None;
        }
        let samples = head.granule.saturating_sub(clock.granule);
        clock.granule = head.granule;
        super::samples_duration(samples, clock.rate)
    }
}

impl Framer for OggFramer {
    fn frame_duration(&self, _frame: &[u8]) -> Option<std::time::Duration> {
        self.last_duration
    }

    fn scan(&mut self, buf: &[u8], eof: bool, counts: &mut ScanCounts) -> Scan {
        self.last_was_header = false;
        self.last_duration = None;
        // `i` only moves forward and never past `buf.len()`; every slice is `get`.
        let mut i = 0;
        while let Some(rest) = buf.get(i..).filter(|r| !r.is_empty()) {
            // Skip to the next capture pattern (a partial one at the end waits for more).
            let Some(at) = rest.windows(CAPTURE.len()).position(|w| w == CAPTURE) else {
                let keep = if eof {
                    0
                } else {
                    rest.len().min(CAPTURE.len().saturating_sub(1))
                };
                let skip = rest.len().saturating_sub(keep);
                counts.add_junk(skip);
                return Scan::NeedMore {
                    skip: i.saturating_add(skip),
                };
            };
            counts.add_junk(at);
            i = i.saturating_add(at);
            let rest = buf.get(i..).unwrap_or_default();
            match page_head(rest) {
                Ok(None) if !eof => return Scan::NeedMore { skip: i },
                Ok(Some(head)) if head.len > self.max => {
                    counts.oversize_frames = counts.oversize_frames.saturating_add(1);
                    // Skip the whole page when it is here, else what is here and go on.
                    let skip = head.len.min(rest.len());
                    return Scan::NeedMore {
                        skip: i.saturating_add(skip),
                    };
                }
                Ok(Some(head)) => match rest.get(..head.len) {
                    None if !eof => return Scan::NeedMore { skip: i },
                    Some(page) if stored_crc(page) == Some(crc(page)) => {
                        self.last_was_header =
                            self.headers.classify(head.flags, head.granule, head.serial);
                        self.last_duration = self.tick(&head, page);
                        return Scan::Frame {
                            skip: i,
                            len: head.len,
                        };
                    }
                    // A bad CRC, or a page cut off at the end: not a page.
                    _ => {}
                },
                Ok(None) | Err(()) => {}
            }
            counts.add_junk(1);
            i = i.saturating_add(1);
        }
        Scan::NeedMore { skip: buf.len() }
    }

    fn frame_is_header(&self) -> bool {
        self.last_was_header
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A page with one packet `body` (at most 255 × 255 bytes), a correct CRC.
    pub fn page(flags: u8, granule: u64, serial: u32, seq: u32, body: &[u8]) -> Vec<u8> {
        let mut segs = vec![255u8; body.len() / 255];
        segs.push((body.len() % 255) as u8);
        let mut p = b"OggS\0".to_vec();
        p.push(flags);
        p.extend_from_slice(&granule.to_le_bytes());
        p.extend_from_slice(&serial.to_le_bytes());
        p.extend_from_slice(&seq.to_le_bytes());
        p.extend_from_slice(&[0; 4]);
        p.push(segs.len() as u8);
        p.extend_from_slice(&segs);
        p.extend_from_slice(body);
        let c = crc(&p);
        p[22..26].copy_from_slice(&c.to_le_bytes());
        p
    }

    fn frames(f: &mut OggFramer, data: &[u8]) -> (Vec<(usize, bool, f64)>, ScanCounts) {
        let mut counts = ScanCounts::default();
        let mut out = Vec::new();
        let mut at = 0;
        loop {
            match f.scan(&data[at..], true, &mut counts) {
                Scan::Frame { skip, len } => {
                    let d = f.frame_duration(&[]).map_or(0.0, |d| d.as_secs_f64());
                    out.push((len, f.frame_is_header(), d));
                    at += skip + len;
                }
                Scan::NeedMore { skip } => {
                    at += skip;
                    if at >= data.len() {
                        return (out, counts);
                    }
                }
            }
        }
    }

    #[test]
    fn real_files_are_whole_pages_with_their_headers_first() {
        // Made with Debian's ffmpeg (tests/fixtures; the README says how).
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        for (file, headers, secs) in [
            ("tone-opus.ogg", vec![2], 4.0),
            ("tone-vorbis.ogg", vec![2], 4.0),
            ("tone-flac.ogg", vec![2], 2.0),
            ("chained-opus.ogg", vec![2, 2], 6.0),
        ] {
            let data = std::fs::read(dir.join(file)).unwrap();
            let mut f = OggFramer::new(MAX_PAGE);
            let (got, counts) = frames(&mut f, &data);
            assert_eq!(counts.junk_bytes, 0, "{file}");
            assert_eq!(got.iter().map(|g| g.0).sum::<usize>(), data.len(), "{file}");
            // Runs of header pages, each followed by audio.
            let mut runs = Vec::new();
            let mut prev = false;
            // Granule positions give the file's duration (Opus's adds its 6.5 ms pre-skip).
            let total: f64 = got.iter().map(|g| g.2).sum();
            assert!((total - secs).abs() < secs * 0.01, "{file}: {total} s");
            for &(_, h, _) in &got {
                if h && !prev {
                    runs.push(0);
                }
                if h {
                    *runs.last_mut().unwrap() += 1;
                }
                prev = h;
            }
            assert_eq!(runs, headers, "{file}");
            assert!(got[0].1 && !got.last().unwrap().1, "{file}");
        }
    }

    #[test]
    fn a_stream_that_begins_again_gets_a_serial_of_its_own() {
        let mut s = Serials::default();
        let bos = page(FLAG_BOS, 0, 7, 0, b"OpusHead");
        let audio = page(0, 960, 7, 2, &[1; 30]);
        assert_eq!(&*s.map(&bos), &bos[..], "first time: as it is");
        assert_eq!(&*s.map(&audio), &audio[..]);
        let again = s.map(&bos).into_owned();
        let serial = u32::from_le_bytes(again[14..18].try_into().unwrap());
        assert_ne!(serial, 7);
        let (got, counts) = frames(&mut OggFramer::new(MAX_PAGE), &again);
        assert_eq!((got.len(), counts.junk_bytes), (1, 0), "sealed again");
        let next = s.map(&audio);
        assert_eq!(u32::from_le_bytes(next[14..18].try_into().unwrap()), serial);
    }

    #[test]
    fn the_crc_is_oggs() {
        // Ogg's parameters are CRC-32/POSIX's without the final inversion: its check value
        // 0x765E7680, inverted. (Real pages are checked by the fixtures' tests.)
        assert_eq!(crc(b"123456789"), !0x765E_7680);
    }

    #[test]
    fn header_pages_then_audio_and_a_chain_starts_new_headers() {
        let stream = [
            page(FLAG_BOS, 0, 7, 0, b"OpusHead........"),
            page(0, 0, 7, 1, b"OpusTags"),
            page(0, 960, 7, 2, &[1; 300]),
            page(0, 1920, 7, 3, &[2; 10]),
            // The next track: a new logical stream.
            page(FLAG_BOS, 0, 8, 0, b"OpusHead........"),
            page(0, u64::MAX, 8, 1, &[3; 600]),
            page(0, 0, 8, 2, b"OpusTags"),
            page(0, 960, 8, 3, &[4; 20]),
        ]
        .concat();
        let (got, counts) = frames(&mut OggFramer::new(MAX_PAGE), &stream);
        let kinds: Vec<bool> = got.iter().map(|g| g.1).collect();
        assert_eq!(kinds, [true, true, false, false, true, true, true, false]);
        assert_eq!(counts.junk_bytes, 0);
    }

    #[test]
    fn junk_and_bad_crcs_are_skipped_and_counted() {
        let good = page(FLAG_BOS, 0, 1, 0, b"OpusHead");
        let mut bad = page(0, 5, 1, 1, &[9; 40]);
        let n = bad.len();
        bad[n - 1] ^= 1;
        let data = [&b"xyzOgg"[..], &good, &bad, &good].concat();
        let (got, counts) = frames(&mut OggFramer::new(MAX_PAGE), &data);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(counts.junk_bytes as usize, 6 + bad.len());
        // A page larger than -frame-bytes is dropped whole.
        let big = page(0, 5, 1, 2, &[1; 1000]);
        let (got, counts) = frames(&mut OggFramer::new(500), &[&big[..], &good].concat());
        assert_eq!((got.len(), counts.oversize_frames), (1, 1));
    }

    #[test]
    fn a_page_split_across_reads_waits_for_the_rest() {
        let p = page(0, 5, 1, 1, &[7; 700]);
        let mut f = OggFramer::new(MAX_PAGE);
        let mut counts = ScanCounts::default();
        for cut in [2, 20, 27, 30, 600] {
            assert_eq!(
                f.scan(&p[..cut], false, &mut counts),
                Scan::NeedMore { skip: 0 },
                "cut at {cut}"
            );
        }
        assert_eq!(
            f.scan(&p, false, &mut counts),
            Scan::Frame {
                skip: 0,
                len: p.len()
            }
        );
        assert_eq!(counts.junk_bytes, 0);
    }
}
