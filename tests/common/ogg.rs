//! The one Ogg page reader of the tests (RFC 3533): pages found by their lengths, not by
//! searching for `OggS` inside payloads. A capture may end inside a page: that page is left out.

/// One whole page of a capture.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    /// Its offset in the capture.
    pub at: usize,
    /// Its length, header and body.
    pub len: usize,
    /// The header type: 1 continued, 2 beginning of stream, 4 end of stream.
    pub flags: u8,
    pub granule: u64,
    pub serial: u32,
}

impl Page {
    pub fn bos(&self) -> bool {
        self.flags & 2 != 0
    }
}

/// The whole pages of `b`, in order. Bytes that are not a page (a capture joined mid-page)
/// are skipped up to the next `OggS`.
pub fn pages(b: &[u8]) -> Vec<Page> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 27 <= b.len() {
        if &b[i..i + 4] != b"OggS" {
            i += 1;
            continue;
        }
        let nsegs = b[i + 26] as usize;
        let Some(table) = b.get(i + 27..i + 27 + nsegs) else {
            break;
        };
        let len = 27 + nsegs + table.iter().map(|&s| s as usize).sum::<usize>();
        if i + len > b.len() {
            break;
        }
        out.push(Page {
            at: i,
            len,
            flags: b[i + 5],
            granule: u64::from_le_bytes(b[i + 6..i + 14].try_into().unwrap()),
            serial: u32::from_le_bytes(b[i + 14..i + 18].try_into().unwrap()),
        });
        i += len;
    }
    out
}

/// The bytes of `b` up to its last page start: whole pages, less the last one (a capture
/// may end inside a page, or just after the first page of the file's next loop, a new link
/// of the chain whose other header pages it lacks: ffmpeg then sees time go back).
pub fn whole_pages(b: &[u8]) -> &[u8] {
    let end = b.windows(4).rposition(|w| w == b"OggS").unwrap_or(0);
    &b[..end]
}
