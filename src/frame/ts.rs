//! The ts framer: MPEG transport stream, 188-byte packets on the 0x47 sync byte.
//!
//! A packet counts when a sync byte starts it and another starts the next packet (or the
//! data ends right after it). One frame is as many consecutive confirmed packets as fit in
//! `-frame-bytes`, so joins and skips always land on a packet boundary.

use super::{Framer, Scan, ScanCounts};

pub const PACKET: usize = 188;
const SYNC: u8 = 0x47;

pub struct TsFramer {
    packets_per_frame: usize,
}

impl TsFramer {
    pub fn new(max: usize) -> Self {
        TsFramer {
            packets_per_frame: (max / PACKET).max(1),
        }
    }
}

impl Framer for TsFramer {
    fn scan(&mut self, buf: &[u8], eof: bool, counts: &mut ScanCounts) -> Scan {
        let mut i = 0;
        while i < buf.len() {
            let mut n = 0;
            let mut decided = true;
            while n < self.packets_per_frame {
                let at = i + n * PACKET;
                if at + PACKET > buf.len() || (at + PACKET == buf.len() && !eof) {
                    decided = eof;
                    break;
                }
                let next_ok = at + PACKET == buf.len() || buf[at + PACKET] == SYNC;
                if buf[at] != SYNC || !next_ok {
                    break;
                }
                n += 1;
            }
            if n == self.packets_per_frame || (n > 0 && decided) {
                counts.junk_bytes += i as u64;
                return Scan::Frame {
                    skip: i,
                    len: n * PACKET,
                };
            }
            if n > 0 || !decided {
                // Confirmed packets wait for the rest of the frame; an unconfirmed start
                // waits for the next packet's sync byte.
                counts.junk_bytes += i as u64;
                return Scan::NeedMore { skip: i };
            }
            i += 1;
        }
        counts.junk_bytes += buf.len() as u64;
        Scan::NeedMore { skip: buf.len() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(tag: u8) -> Vec<u8> {
        let mut p = vec![SYNC, tag, 0, 0x10];
        p.resize(PACKET, tag);
        p
    }

    #[test]
    fn groups_packets_and_skips_junk() {
        let input = [vec![9, 9], packet(1), packet(2), packet(3)].concat();
        let mut f = TsFramer::new(2 * PACKET);
        let mut c = ScanCounts::default();
        assert_eq!(
            f.scan(&input, false, &mut c),
            Scan::Frame {
                skip: 2,
                len: 2 * PACKET
            }
        );
        assert_eq!(c.junk_bytes, 2);
        let rest = &input[2 + 2 * PACKET..];
        assert_eq!(f.scan(rest, false, &mut c), Scan::NeedMore { skip: 0 });
        assert_eq!(
            f.scan(rest, true, &mut c),
            Scan::Frame {
                skip: 0,
                len: PACKET
            }
        );
    }

    #[test]
    fn lost_sync_is_skipped() {
        let mut bad = packet(1);
        bad.truncate(100); // a short packet: its successor's sync is misplaced
        let input = [bad, packet(2), packet(3)].concat();
        let mut f = TsFramer::new(PACKET);
        let mut c = ScanCounts::default();
        match f.scan(&input, true, &mut c) {
            Scan::Frame { skip, len } => {
                assert_eq!((skip, len), (100, PACKET));
                assert_eq!(input[skip + 1], 2);
            }
            other => panic!("{other:?}"),
        }
    }
}
