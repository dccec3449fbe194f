//! ICY (SHOUTcast/Icecast) in-stream metadata: every `metaint` audio bytes comes one length
//! byte L, then L × 16 bytes of text like `StreamTitle='Artist - Song';`, zero-padded.
//! [`Inserter`] adds blocks to a listener's stream; [`Stripper`] takes them out of an
//! upstream's stream. Titles travel as UTF-8 bytes (what Icecast 2.4 sends for MP3 when the
//! title was given as UTF-8); a title longer than a block can hold is cut on a character
//! boundary.

/// The largest metadata text: 255 blocks of 16 bytes.
const MAX_TEXT: usize = 255 * 16;

/// One metadata block for `title` (length byte included).
pub fn block(title: &str) -> Vec<u8> {
    let room = MAX_TEXT - "StreamTitle='';".len();
    let mut cut = title.len().min(room);
    while !title.is_char_boundary(cut) {
        cut -= 1;
    }
    let text = format!("StreamTitle='{}';", &title[..cut]);
    let blocks = text.len().div_ceil(16);
    let mut out = Vec::with_capacity(1 + blocks * 16);
    out.push(blocks as u8);
    out.extend_from_slice(text.as_bytes());
    out.resize(1 + blocks * 16, 0);
    out
}

/// Inserts metadata blocks into one listener's audio bytes.
pub struct Inserter {
    metaint: usize,
    /// Audio bytes sent since the last block.
    since: usize,
    /// The title sequence number last sent (0 = none yet).
    sent_seq: u64,
}

impl Inserter {
    pub fn new(metaint: usize) -> Inserter {
        Inserter {
            metaint,
            since: 0,
            sent_seq: 0,
        }
    }

    /// Appends `audio` to `out` with a block at every `metaint` boundary. At a boundary the
    /// title goes out if it changed since this listener last got it, else an empty block.
    pub fn write(&mut self, audio: &[u8], title: &str, seq: u64, out: &mut Vec<u8>) {
        let mut rest = audio;
        while !rest.is_empty() {
            let n = (self.metaint - self.since).min(rest.len());
            out.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            self.since += n;
            if self.since == self.metaint {
                if seq != self.sent_seq {
                    out.extend_from_slice(&block(title));
                    self.sent_seq = seq;
                } else {
                    out.push(0);
                }
                self.since = 0;
            }
        }
    }
}

/// Removes metadata blocks from an upstream's bytes, keeping the last title seen.
pub struct Stripper {
    metaint: usize,
    /// Audio bytes until the next length byte.
    audio_left: usize,
    /// Metadata bytes still to collect for the current block.
    meta_left: usize,
    meta: Vec<u8>,
}

impl Stripper {
    pub fn new(metaint: usize) -> Stripper {
        Stripper {
            metaint,
            audio_left: metaint,
            meta_left: 0,
            meta: Vec::new(),
        }
    }

    /// Splits `input` into audio (appended to `audio`); returns a title when a block with
    /// one completes.
    pub fn feed(&mut self, input: &[u8], audio: &mut Vec<u8>) -> Option<String> {
        let mut title = None;
        let mut rest = input;
        while !rest.is_empty() {
            if self.audio_left > 0 {
                let n = self.audio_left.min(rest.len());
                audio.extend_from_slice(&rest[..n]);
                self.audio_left -= n;
                rest = &rest[n..];
            } else if self.meta_left == 0 && self.meta.is_empty() {
                // The length byte.
                self.meta_left = rest[0] as usize * 16;
                rest = &rest[1..];
                if self.meta_left == 0 {
                    self.audio_left = self.metaint;
                }
            } else {
                let n = self.meta_left.min(rest.len());
                self.meta.extend_from_slice(&rest[..n]);
                self.meta_left -= n;
                rest = &rest[n..];
                if self.meta_left == 0 {
                    title = stream_title(&self.meta).or(title);
                    self.meta.clear();
                    self.audio_left = self.metaint;
                }
            }
        }
        title
    }
}

/// The `StreamTitle='…';` value in a metadata block's text (invalid UTF-8 is replaced).
pub fn stream_title(text: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(text);
    let text = text.trim_end_matches('\0');
    let start = text.find("StreamTitle='")? + "StreamTitle='".len();
    let rest = &text[start..];
    // The value ends at "';" (a title may itself contain a quote).
    let end = rest.find("';").unwrap_or(rest.len());
    Some(rest[..end].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_padded_to_16_bytes() {
        let b = block("Artist - Song");
        assert_eq!(b.len(), 1 + b[0] as usize * 16);
        assert_eq!(stream_title(&b[1..]).as_deref(), Some("Artist - Song"));
        let long = "é".repeat(3000);
        let b = block(&long);
        assert_eq!(b[0], 255);
        assert!(stream_title(&b[1..]).unwrap().chars().all(|c| c == 'é'));
    }

    #[test]
    fn inserter_places_blocks_every_metaint_and_sends_titles_once() {
        let mut ins = Inserter::new(4);
        let mut out = Vec::new();
        ins.write(b"abcdef", "T", 1, &mut out);
        let blk = block("T");
        assert_eq!(out, [&b"abcd"[..], &blk, b"ef"].concat());
        out.clear();
        ins.write(b"gh", "T", 1, &mut out);
        assert_eq!(out, b"gh\0", "unchanged title: an empty block");
        out.clear();
        ins.write(b"ijkl", "U", 2, &mut out);
        assert_eq!(out, [&b"ijkl"[..], &block("U")].concat());
    }

    #[test]
    fn stripper_undoes_inserter_across_any_split() {
        let audio: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        let mut ins = Inserter::new(100);
        let mut stream = Vec::new();
        ins.write(&audio[..500], "First", 1, &mut stream);
        ins.write(&audio[500..], "Second 'quoted' title", 2, &mut stream);
        for chunk in [1, 7, 99, 4096] {
            let mut st = Stripper::new(100);
            let mut out = Vec::new();
            let mut titles = Vec::new();
            for piece in stream.chunks(chunk) {
                if let Some(t) = st.feed(piece, &mut out) {
                    titles.push(t);
                }
            }
            assert_eq!(out, audio, "chunk {chunk}");
            if chunk < 100 {
                assert_eq!(titles.first().map(String::as_str), Some("First"));
            }
            assert_eq!(
                titles.last().map(String::as_str),
                Some("Second 'quoted' title")
            );
        }
    }
}
