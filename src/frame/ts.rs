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
        for (i, rest) in (0..buf.len()).filter_map(|i| Some((i, buf.get(i..)?))) {
            // Consecutive packets at `rest`, each confirmed by the next one's sync byte.
            let mut n: usize = 0;
            let mut decided = true;
            let mut packets = rest.chunks(PACKET);
            while n < self.packets_per_frame {
                let Some(packet) = packets.next().filter(|p| p.len() == PACKET) else {
                    decided = eof;
                    break;
                };
                let next = packets.clone().next();
                if next.is_none() && !eof {
                    decided = false;
                    break;
                }
                let next_ok = next.is_none_or(|p| p.first() == Some(&SYNC));
                if packet.first() != Some(&SYNC) || !next_ok {
                    break;
                }
                n = n.saturating_add(1);
            }
            if n == self.packets_per_frame || (n > 0 && decided) {
                counts.add_junk(i);
                return Scan::Frame {
                    skip: i,
                    len: n.saturating_mul(PACKET),
                };
            }
            if n > 0 || !decided {
                // Confirmed packets wait for the rest of the frame; an unconfirmed start
                // waits for the next packet's sync byte.
                counts.add_junk(i);
                return Scan::NeedMore { skip: i };
            }
        }
        counts.add_junk(buf.len());
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
