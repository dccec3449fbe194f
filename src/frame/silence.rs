//! Silence in a stream's own format, for `/admin/mute`: a frame of the same length of time
//! that decodes to nothing audible, so listeners stay connected and their players go on.
//!
//! - MP3: the frame's own header (so the same version, rate, channels and bitrate), no CRC,
//!   and all-zero side information and main data: no Huffman bits, global gain 0.
//! - raw: zeros of the same length (silence for signed PCM, as the tone and most captures).
//! - Ogg with Opus: the page's packets each replaced by a CELT packet of the same duration
//!   whose range-coded payload (`FF FE`) sets the silence flag; the granule position, serial
//!   and sequence number stay, so the stream's clock goes on. A packet cut across pages, or
//!   a page of another codec, has no silent form here.
//! - ADTS, MPEG-TS, Vorbis, FLAC: no silent form: nothing is sent while muted (`stream/mute.rs`).

use super::{ogg, FramerInfo};

/// The silent form of `frame`, a frame of `framer`'s format (`opus`: an Ogg stream is Opus);
/// `None` when there is none. Each row of the framer table says which of the forms below is
/// its own.
pub fn silent(framer: &FramerInfo, frame: &[u8], opus: bool) -> Option<Vec<u8>> {
    (framer.silence)(frame, opus)
}

/// No silent form (ADTS, MPEG-TS).
pub(super) fn none(_frame: &[u8], _opus: bool) -> Option<Vec<u8>> {
    None
}

/// Raw: zeros of the same length.
pub(super) fn zeros(frame: &[u8], _opus: bool) -> Option<Vec<u8>> {
    Some(vec![0; frame.len()])
}

/// MP3: [`mp3_frame`].
pub(super) fn mp3(frame: &[u8], _opus: bool) -> Option<Vec<u8>> {
    mp3_frame(frame)
}

/// Ogg: Opus pages only ([`opus_page`]).
pub(super) fn ogg_pages(page: &[u8], opus: bool) -> Option<Vec<u8>> {
    if opus {
        opus_page(page)
    } else {
        None
    }
}

/// The silent form of an MP3 frame: its own header with no CRC, and zeros. The one MP3
/// silence rule, shared by `/admin/mute` and the link's outage fill.
pub fn mp3_frame(frame: &[u8]) -> Option<Vec<u8>> {
    let &[b0, b1, b2, b3, ..] = frame else {
        return None;
    };
    let mut out = vec![0; frame.len()];
    // Protection bit set: no CRC follows the header.
    for (o, b) in out.iter_mut().zip([b0, b1 | 1, b2, b3]) {
        *o = b;
    }
    Some(out)
}

/// Samples (at 48 kHz) an Opus packet holds, from its TOC byte and frame count (RFC 6716,
/// 3.1 and 3.2).
fn opus_samples(packet: &[u8]) -> Option<u32> {
    let &toc = packet.first()?;
    let config = toc >> 3;
    let sizes: &[u32] = match config {
        0..=11 => &[480, 960, 1920, 2880],
        12..=15 => &[480, 960],
        _ => &[120, 240, 480, 960],
    };
    let frame = *sizes.get(usize::from(config & 3) & sizes.len().saturating_sub(1))?;
    let count = match toc & 3 {
        0 => 1,
        1 | 2 => 2,
        _ => u32::from(*packet.get(1)? & 0x3F),
    };
    frame.checked_mul(count).filter(|&n| n > 0 && n <= 5760)
}

/// A CELT full-band packet of `samples` (a multiple of 120, at most 120 ms) that decodes to
/// silence.
fn opus_silence(samples: u32) -> Option<Vec<u8>> {
    // The largest CELT frame size that divides it, with at most 48 frames (RFC 6716, 3.2.5).
    let (config, size) = [(31u8, 960u32), (30, 480), (29, 240), (28, 120)]
        .into_iter()
        .find(|&(_, size)| {
            samples.checked_rem(size) == Some(0) && samples.checked_div(size) <= Some(48)
        })?;
    let count = u8::try_from(samples.checked_div(size)?).ok()?;
    let mut p = if count == 1 {
        vec![config << 3]
    } else {
        // Code 3, constant bitrate, no padding: every frame is the two bytes below.
        vec![config << 3 | 3, count]
    };
    for _ in 0..count {
        p.extend_from_slice(&[0xFF, 0xFE]);
    }
    Some(p)
}

/// The packets that end on `page`, in order (a packet carried on from the previous page is
/// not told apart: the caller checks the continued flag when that matters).
fn packets(page: &[u8]) -> Option<Vec<&[u8]>> {
    let nsegs = usize::from(*page.get(26)?);
    let table = page.get(27..27usize.checked_add(nsegs)?)?;
    let mut body = page.get(27usize.checked_add(nsegs)?..)?;
    let mut out = Vec::new();
    let mut len = 0usize;
    for &seg in table {
        len = len.checked_add(usize::from(seg))?;
        if seg < 255 {
            let (packet, rest) = body.split_at_checked(len)?;
            out.push(packet);
            body = rest;
            len = 0;
        }
    }
    Some(out)
}

/// Samples (at 48 kHz) of the Opus packets that end on `page`.
pub fn opus_page_samples(page: &[u8]) -> Option<u64> {
    packets(page)?.into_iter().try_fold(0u64, |total, p| {
        total.checked_add(u64::from(opus_samples(p)?))
    })
}

/// The page with each Opus packet replaced by silence of the same duration.
fn opus_page(page: &[u8]) -> Option<Vec<u8>> {
    let nsegs = usize::from(*page.get(26)?);
    let last_seg = page.get(26usize.checked_add(nsegs)?)?;
    // A continued packet, or one that goes on to the next page: no silent form.
    if page.get(5)? & 0x01 != 0 || (nsegs > 0 && *last_seg == 255) {
        return None;
    }
    let packets = packets(page)?
        .into_iter()
        .map(|p| opus_silence(opus_samples(p)?))
        .collect::<Option<Vec<_>>>()?;
    let head = page.get(..26)?;
    let mut out = head.to_vec();
    let mut segs = Vec::new();
    for p in &packets {
        let full = p.len().checked_div(255)?;
        segs.extend(std::iter::repeat_n(255u8, full));
        segs.push(u8::try_from(p.len().checked_rem(255)?).ok()?);
    }
    out.push(u8::try_from(segs.len()).ok()?);
    out.extend_from_slice(&segs);
    for p in &packets {
        out.extend_from_slice(p);
    }
    ogg::seal(&mut out);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_mp3_frame_keeps_its_header_and_length() {
        let mut f = vec![0xFF, 0xFA, 0x92, 0x64];
        f.resize(418, 0x55);
        let s = silent(crate::frame::find("mp3").unwrap(), &f, false).unwrap();
        assert_eq!(s.len(), 418);
        assert_eq!(&s[..4], &[0xFF, 0xFB, 0x92, 0x64], "no CRC");
        assert!(s[4..].iter().all(|&b| b == 0));
    }

    #[test]
    fn opus_packets_keep_their_duration() {
        for (packet, samples) in [
            (&[0xF8u8, 1, 2][..], 960),   // CELT FB 20 ms
            (&[0x18, 1][..], 2880),       // SILK NB 60 ms
            (&[0x79, 1, 2][..], 1920),    // hybrid 20 ms, two frames (code 1)
            (&[0x1B, 0x03, 9][..], 8640), // SILK 60 ms × 3 (code 3): over 120 ms, refused
        ] {
            let n = opus_samples(packet);
            if samples > 5760 {
                assert_eq!(n, None);
                continue;
            }
            assert_eq!(n, Some(samples));
            let quiet = opus_silence(samples).unwrap();
            assert_eq!(opus_samples(&quiet), Some(samples), "{quiet:02x?}");
        }
        assert_eq!(opus_silence(960).unwrap(), [0xF8, 0xFF, 0xFE]);
    }

    #[test]
    fn any_bytes_give_a_silent_form_or_none_without_panicking() {
        crate::util::fuzz::run(
            "silence::silent",
            &[b"OggS\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01\x03\xf8\xff\xfe"],
            512,
            |b| {
                for framer in crate::frame::FRAMERS {
                    let _ = silent(framer, b, true);
                }
            },
        );
    }
}
