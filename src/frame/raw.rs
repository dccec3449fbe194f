//! The raw framer: fixed blocks of exactly `-frame-bytes`, content ignored (streamserve's "").

use super::{Framer, Scan, ScanCounts};

pub struct RawFramer {
    size: usize,
}

impl RawFramer {
    pub fn new(size: usize) -> Self {
        RawFramer { size }
    }
}

impl Framer for RawFramer {
    fn scan(&mut self, buf: &[u8], eof: bool, counts: &mut ScanCounts) -> Scan {
        if buf.len() >= self.size {
            Scan::Frame {
                skip: 0,
                len: self.size,
            }
        } else if eof {
            // streamserve drops a partial trailing block; it is never sent as a frame.
            counts.add_junk(buf.len());
            Scan::NeedMore { skip: buf.len() }
        } else {
            Scan::NeedMore { skip: 0 }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_blocks_and_dropped_tail() {
        let mut f = RawFramer::new(4);
        let mut c = ScanCounts::default();
        assert_eq!(
            f.scan(b"abcdefg", false, &mut c),
            Scan::Frame { skip: 0, len: 4 }
        );
        assert_eq!(f.scan(b"efg", false, &mut c), Scan::NeedMore { skip: 0 });
        assert_eq!(f.scan(b"efg", true, &mut c), Scan::NeedMore { skip: 3 });
        assert_eq!(c.junk_bytes, 3);
    }
}
