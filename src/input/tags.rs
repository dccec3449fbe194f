//! Titles from a file's own tags: ID3v2 (`TIT2`, `TPE1`; v2.2's `TT2`, `TP1`) at the front
//! of an MP3 file, and Vorbis comments (`TITLE`, `ARTIST`) in an Ogg stream's comment header
//! (`OpusTags`, Vorbis's comment packet, FLAC's VORBIS_COMMENT block). Joined as Icecast
//! joins them: `Artist - Title`, or whichever is there.

/// The title the tags at the front of `b` give, if any.
pub fn title(b: &[u8]) -> Option<String> {
    let (artist, title) = if b.starts_with(b"ID3") {
        id3(b)?
    } else {
        vorbis_comments(b)?
    };
    join(artist, title)
}

fn join(artist: Option<String>, title: Option<String>) -> Option<String> {
    let artist = artist.filter(|a| !a.trim().is_empty());
    let title = title.filter(|t| !t.trim().is_empty());
    match (artist, title) {
        (Some(a), Some(t)) => Some(format!("{a} - {t}")),
        (a, t) => a.or(t),
    }
}

type Found = (Option<String>, Option<String>);

/// ID3v2.2, 2.3 and 2.4 text frames.
fn id3(b: &[u8]) -> Option<Found> {
    let &[_, _, _, major, _, _, s0, s1, s2, s3, ..] = b else {
        return None;
    };
    let size = syncsafe([s0, s1, s2, s3])?;
    let tag = b.get(10..10usize.checked_add(size)?.min(b.len()))?;
    let (id_len, head_len) = if major == 2 { (3, 6) } else { (4, 10) };
    let (mut artist, mut title) = (None, None);
    let mut at = 0usize;
    while let Some(head) = tag.get(at..at.checked_add(head_len)?) {
        let id = head.get(..id_len)?;
        if id.iter().all(|&c| c == 0) {
            break;
        }
        let len = match major {
            2 => head
                .get(3..6)?
                .iter()
                .fold(0usize, |n, &x| n << 8 | usize::from(x)),
            3 => usize::try_from(u32::from_be_bytes(head.get(4..8)?.try_into().ok()?)).ok()?,
            _ => syncsafe(head.get(4..8)?.try_into().ok()?)?,
        };
        let start = at.checked_add(head_len)?;
        let data = tag.get(start..start.checked_add(len)?)?;
        match id {
            b"TIT2" | b"TT2" => title = text(data),
            b"TPE1" | b"TP1" => artist = text(data),
            _ => {}
        }
        at = start.checked_add(len)?;
    }
    Some((artist, title))
}

fn syncsafe(b: [u8; 4]) -> Option<usize> {
    if b.iter().any(|&x| x & 0x80 != 0) {
        return None;
    }
    Some(b.iter().fold(0usize, |n, &x| n << 7 | usize::from(x)))
}

/// An ID3 text frame's value: its encoding byte, then the text (the first of several).
fn text(data: &[u8]) -> Option<String> {
    let (&enc, rest) = data.split_first()?;
    let s = match enc {
        0 => rest.iter().map(|&c| char::from(c)).collect(),
        1 | 2 => {
            let (be, body) = match rest {
                [0xFE, 0xFF, body @ ..] => (true, body),
                [0xFF, 0xFE, body @ ..] => (false, body),
                body => (enc == 2, body),
            };
            let units: Vec<u16> = body
                .chunks_exact(2)
                .map(|p| match *p {
                    [a, b] if be => u16::from_be_bytes([a, b]),
                    [a, b] => u16::from_le_bytes([a, b]),
                    _ => 0,
                })
                .collect();
            String::from_utf16_lossy(&units)
        }
        _ => String::from_utf8_lossy(rest).into_owned(),
    };
    Some(s.split('\0').next().unwrap_or_default().to_string())
}

/// Vorbis comments after the first comment-header marker in `b` (an Ogg file's front, or a
/// stream's header pages). A comment header cut by a page boundary is read up to the cut.
fn vorbis_comments(b: &[u8]) -> Option<Found> {
    let after = |marker: &[u8]| {
        b.windows(marker.len())
            .position(|w| w == marker)
            .and_then(|i| i.checked_add(marker.len()))
            .and_then(|i| b.get(i..))
    };
    let data = if let Some(d) = after(b"OpusTags").or_else(|| after(b"\x03vorbis")) {
        d
    } else {
        // FLAC: a metadata block of type 4 (VORBIS_COMMENT), after the mapping header.
        let flac = after(b"fLaC")?;
        let at = flac
            .windows(4)
            .position(|w| w.first().is_some_and(|&t| t & 0x7F == 4))?;
        flac.get(at.checked_add(4)?..)?
    };
    let mut at = 0usize;
    let u32_at = |at: &mut usize| -> Option<usize> {
        let v = u32::from_le_bytes(data.get(*at..at.checked_add(4)?)?.try_into().ok()?);
        *at = at.checked_add(4)?;
        usize::try_from(v).ok()
    };
    let vendor = u32_at(&mut at)?;
    at = at.checked_add(vendor)?;
    let count = u32_at(&mut at)?.min(1000);
    let (mut artist, mut title) = (None, None);
    for _ in 0..count {
        let Some(len) = u32_at(&mut at) else { break };
        let Some(c) = data.get(at..at.saturating_add(len)) else {
            break;
        };
        at = at.saturating_add(len);
        let c = String::from_utf8_lossy(c);
        if let Some((k, v)) = c.split_once('=') {
            if k.eq_ignore_ascii_case("TITLE") && title.is_none() {
                title = Some(v.to_string());
            } else if k.eq_ignore_ascii_case("ARTIST") && artist.is_none() {
                artist = Some(v.to_string());
            }
        }
    }
    Some((artist, title))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id3v24(frames: &[(&[u8; 4], &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (id, data) in frames {
            body.extend_from_slice(*id);
            let n = data.len() as u32;
            body.extend_from_slice(&[
                (n >> 21) as u8 & 0x7f,
                (n >> 14) as u8 & 0x7f,
                (n >> 7) as u8 & 0x7f,
                n as u8 & 0x7f,
            ]);
            body.extend_from_slice(&[0, 0]);
            body.extend_from_slice(data);
        }
        let n = body.len() as u32;
        let mut t = b"ID3\x04\x00\x00".to_vec();
        t.extend_from_slice(&[
            (n >> 21) as u8 & 0x7f,
            (n >> 14) as u8 & 0x7f,
            (n >> 7) as u8 & 0x7f,
            n as u8 & 0x7f,
        ]);
        t.extend_from_slice(&body);
        t
    }

    #[test]
    fn id3_titles_in_every_encoding() {
        let t = id3v24(&[(b"TIT2", b"\x03Caf\xc3\xa9"), (b"TPE1", b"\x00Band")]);
        assert_eq!(title(&t).as_deref(), Some("Band - Café"));
        let utf16 = [
            &b"\x01\xff\xfe"[..],
            &"Song"
                .encode_utf16()
                .flat_map(u16::to_le_bytes)
                .collect::<Vec<_>>(),
        ]
        .concat();
        assert_eq!(
            title(&id3v24(&[(b"TIT2", &utf16)])).as_deref(),
            Some("Song")
        );
        assert_eq!(title(&id3v24(&[(b"TALB", b"\x03x")])), None);
    }

    #[test]
    fn the_fixtures_tags() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let read = |f: &str| std::fs::read(dir.join(f)).unwrap();
        assert_eq!(
            title(&read("tone-vorbis.ogg")).as_deref(),
            Some("ringcast - Vorbis Tone")
        );
        // The voice fixture's ID3v2 title (lame --tt).
        assert!(title(&read("voice-40k-16k-id3.mp3")).is_some());
    }

    #[test]
    fn tags_parse_or_give_nothing_on_any_bytes() {
        let seeds: &[&[u8]] = &[
            b"ID3\x03\x00\x00\x00\x00\x00\x20TIT2\x00\x00\x00\x05\x00\x00\x00abcd",
            b"OpusTags\x01\x00\x00\x00v\x01\x00\x00\x00\x07TITLE=x",
        ];
        crate::util::fuzz::run("tags::title", seeds, 512, |b| {
            let _ = title(b);
        });
    }
}
