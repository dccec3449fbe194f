//! The MP3 oracle: frame boundaries found by the frames' own headers, and whether what a
//! listener got is whole frames of what was fed, in order.

/// A test oracle for MPEG audio frame lengths, written from the spec independently of
/// ringcast's framer: (offset, length) of each frame in a clean file, after any ID3v2 tag
/// and before any ID3v1 tag.
pub fn mp3_frames(data: &[u8]) -> Vec<(usize, usize)> {
    let mut pos = 0;
    if data.starts_with(b"ID3") {
        let size = data[6..10].iter().fold(0usize, |a, &b| a << 7 | b as usize);
        pos = 10 + size;
    }
    let mut frames = Vec::new();
    while pos + 4 <= data.len() && data[pos] == 0xFF && data[pos + 1] & 0xE0 == 0xE0 {
        let h = &data[pos..pos + 4];
        let mpeg1 = h[1] & 0x18 == 0x18;
        let layer3 = h[1] & 0x06 == 0x02;
        assert!(layer3, "fixtures are layer III");
        let kbps: [u32; 15] = if mpeg1 {
            [
                0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
            ]
        } else {
            [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160]
        };
        let rates: [u32; 3] = match h[1] & 0x18 {
            0x18 => [44100, 48000, 32000],
            0x10 => [22050, 24000, 16000],
            _ => [11025, 12000, 8000],
        };
        let br = kbps[(h[2] >> 4) as usize] * 1000;
        let sr = rates[((h[2] >> 2) & 3) as usize];
        let coef = if mpeg1 { 144 } else { 72 };
        let len = (coef * br / sr + ((h[2] >> 1) & 1) as u32) as usize;
        if pos + len > data.len() {
            break;
        }
        frames.push((pos, len));
        pos += len;
    }
    frames
}

/// Splits `body` into a sequence of indices into `frames` (whole frames of `source`),
/// requiring it to start on a frame boundary and to consist only of whole source frames.
/// Returns the indices, or an error describing the first mismatch.
pub fn match_frames(
    body: &[u8],
    source: &[u8],
    frames: &[(usize, usize)],
) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < body.len() {
        let rest = &body[pos..];
        // Prefer the successor of the previous frame; else search all (after a skip/wrap).
        let candidates = out
            .last()
            .map(|&i: &usize| vec![(i + 1) % frames.len()])
            .unwrap_or_default()
            .into_iter()
            .chain(0..frames.len());
        let mut found = None;
        for i in candidates {
            let (off, len) = frames[i];
            let f = &source[off..off + len];
            if rest.len() >= len && &rest[..len] == f {
                found = Some((i, len));
                break;
            }
            if rest.len() < len && f.starts_with(rest) {
                return Ok(out); // a partial last frame: the read stopped mid-frame
            }
        }
        match found {
            Some((i, len)) => {
                out.push(i);
                pos += len;
            }
            None => return Err(format!("byte {pos}: not a whole frame of the source")),
        }
    }
    Ok(out)
}
