//! ICY (SHOUTcast/Icecast) in-stream metadata: every `metaint` audio bytes comes one length
//! byte L, then L × 16 bytes of text like `StreamTitle='Artist - Song';`, zero-padded.
//! [`Inserter`] adds blocks to a listener's stream; [`Stripper`] takes them out of an
//! upstream's stream. Titles travel as UTF-8 bytes (what Icecast 2.4 sends for MP3 when the
//! title was given as UTF-8); a title longer than a block can hold is cut on a character
//! boundary.
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

pub mod meta;

/// The largest metadata text: 255 blocks of 16 bytes.
const MAX_TEXT: usize = 255 * 16;

/// The one rule every title goes through, whoever sent it (an admin call, a source's
/// headers, an upstream's ICY block, the link): control characters are removed (a title is
/// one line, and a NUL would end the block early), and a quote directly before a semicolon
/// gets a space between them, so no title can close `StreamTitle='…';` and add a field of its
/// own (`';StreamUrl='http://evil';`).
pub fn clean_title(title: &str) -> String {
    let mut out = String::with_capacity(title.len());
    for c in title.chars().filter(|c| !c.is_control()) {
        if c == ';' && out.ends_with('\'') {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// One metadata block for `title` (length byte included). The title should have been
/// through [`clean_title`]; it is cut on a character boundary to fit one block.
pub fn block(title: &str) -> Vec<u8> {
    const PREFIX: &str = "StreamTitle='";
    const SUFFIX: &str = "';";
    let limit = MAX_TEXT.saturating_sub(SUFFIX.len());
    let mut text = String::with_capacity(MAX_TEXT);
    text.push_str(PREFIX);
    for c in title.chars() {
        if text.len().saturating_add(c.len_utf8()) > limit {
            break;
        }
        text.push(c);
    }
    text.push_str(SUFFIX);
    let blocks = text.len().div_ceil(16);
    let mut out = Vec::with_capacity(MAX_TEXT.saturating_add(1));
    // At most 255 blocks: MAX_TEXT bounds the text.
    out.push(u8::try_from(blocks).unwrap_or(u8::MAX));
    out.extend_from_slice(text.as_bytes());
    out.resize(blocks.saturating_mul(16).saturating_add(1), 0);
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
    #[cfg(test)]
    pub fn write(&mut self, audio: &[u8], title: &str, seq: u64, out: &mut Vec<u8>) {
        let block = block(title);
        self.split(audio, &block, seq, &mut |piece| {
            out.extend_from_slice(piece)
        });
    }

    /// What [`Self::write`] appends, as pieces handed to `emit` in order, without copying
    /// any: runs of `audio`, and at each boundary `block` (the block of title `seq`, see
    /// [`block`]) when this listener has not had that title yet, else an empty block. A
    /// listener's sender hands the pieces to one vectored write.
    pub fn split<'a>(
        &mut self,
        audio: &'a [u8],
        block: &'a [u8],
        seq: u64,
        emit: &mut impl FnMut(&'a [u8]),
    ) {
        const EMPTY_BLOCK: &[u8] = &[0];
        let mut rest = audio;
        while !rest.is_empty() {
            let n = self.metaint.saturating_sub(self.since).min(rest.len());
            let (now, later) = rest.split_at(n);
            emit(now);
            rest = later;
            self.since = self.since.saturating_add(n);
            if self.since >= self.metaint {
                if seq != self.sent_seq {
                    emit(block);
                    self.sent_seq = seq;
                } else {
                    emit(EMPTY_BLOCK);
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
                let (now, later) = rest.split_at(n);
                audio.extend_from_slice(now);
                self.audio_left = self.audio_left.saturating_sub(n);
                rest = later;
            } else if self.meta_left == 0 && self.meta.is_empty() {
                let Some((&length, later)) = rest.split_first() else {
                    break;
                };
                // The length byte: at most 255 × 16 bytes follow.
                self.meta_left = usize::from(length).saturating_mul(16);
                rest = later;
                if self.meta_left == 0 {
                    self.audio_left = self.metaint;
                }
            } else {
                let n = self.meta_left.min(rest.len());
                let (now, later) = rest.split_at(n);
                self.meta.extend_from_slice(now);
                self.meta_left = self.meta_left.saturating_sub(n);
                rest = later;
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
/// Works on bytes: the value ends at `';` (a title may itself contain a quote), or at the
/// end of the text.
pub fn stream_title(text: &[u8]) -> Option<String> {
    const KEY: &[u8] = b"StreamTitle='";
    let start = find(text, KEY)?.checked_add(KEY.len())?;
    let rest = text.get(start..)?;
    let value = match find(rest, b"';") {
        Some(end) => rest.get(..end)?,
        None => rest,
    };
    let value = String::from_utf8_lossy(value);
    Some(value.trim_end_matches('\0').to_string())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_takes_any_bytes_and_titles_cannot_add_fields() {
        let seeds: &[&[u8]] = &[
            b"\x02StreamTitle='a';\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
            b"x';StreamUrl='http://evil/';",
            b"\xffStreamTitle='\xc3",
        ];
        crate::util::fuzz::run("icy::Stripper", seeds, 600, |b| {
            let mut st = Stripper::new(5);
            let mut audio = Vec::new();
            for piece in b.chunks(3) {
                let _ = st.feed(piece, &mut audio);
            }
            assert!(audio.len() <= b.len());
            let _ = stream_title(b);
            // Whatever a title says, it comes back as one StreamTitle and nothing else.
            let title = clean_title(&String::from_utf8_lossy(b));
            let blk = block(&title);
            assert_eq!(blk.len(), 1 + usize::from(blk[0]) * 16);
            let text = &blk[1..];
            let got = stream_title(text).unwrap();
            assert!(title.starts_with(&got), "{title:?} / {got:?}");
            let end = 13 + got.len() + 2;
            assert!(
                text[end..].iter().all(|&c| c == 0),
                "nothing after the title"
            );
            assert!(!got.chars().any(char::is_control));
        });
    }

    #[test]
    fn a_title_cannot_close_its_field() {
        let t = clean_title("Song';StreamUrl='http://evil/';\n");
        assert_eq!(t, "Song' ;StreamUrl='http://evil/' ;");
        assert_eq!(stream_title(&block(&t)[1..]).as_deref(), Some(t.as_str()));
    }

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
