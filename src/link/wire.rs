//! The link's wire format (version 1; `docs/link-protocol.md` is the reference).
//!
//! A session is a stream of messages, each `type (1) | length (4, big endian) | body |
//! mac (16)`, where `mac` is the first 16 bytes of HMAC-SHA256 over type, length and body
//! with the session key. The session key is HMAC(shared key, "ringcast-link-v1 session" |
//! server nonce | client nonce), so a message from one session cannot be replayed into
//! another, and the shared key never crosses the wire.

use ring::hmac as ring_hmac;
use std::io::{self, Read, Write};

pub const VERSION: u32 = 1;
pub const MAC_LEN: usize = 16;
/// No message is larger: a fragment of 250 ms of even 320 kb/s audio is 10 KB.
pub const MAX_BODY: usize = 1 << 20;

/// HMAC-SHA256 of the parts, concatenated (ring's, which TLS brings in anyway).
pub fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut m = ring_hmac::Context::with_key(&ring_hmac::Key::new(ring_hmac::HMAC_SHA256, key));
    for p in parts {
        m.update(p);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(m.sign().as_ref());
    out
}

/// The per-session key both sides derive after the handshake.
pub fn session_key(shared: &[u8], server_nonce: &str, client_nonce: &str) -> [u8; 32] {
    hmac(
        shared,
        &[
            b"ringcast-link-v1 session|",
            server_nonce.as_bytes(),
            b"|",
            client_nonce.as_bytes(),
        ],
    )
}

/// One fragment: whole frames of one stream epoch, cut at frame boundaries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment {
    /// New each time the origin's source starts.
    pub epoch: u64,
    /// 1, 2, 3… within the epoch.
    pub seq: u64,
    /// The origin's wall clock (µs since 1970) when the first frame was captured.
    pub capture_us: u64,
    /// Media time the fragment covers.
    pub duration_us: u32,
    /// The length of each frame, in order; `data` is their concatenation.
    pub frame_lens: Vec<u32>,
    pub data: Vec<u8>,
}

impl Fragment {
    pub fn frames(&self) -> impl Iterator<Item = &[u8]> {
        let mut at = 0;
        self.frame_lens.iter().map(move |&l| {
            let f = &self.data[at..at + l as usize];
            at += l as usize;
            f
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// `sent_us`: the sender's wall clock when this copy was sent (for clock sync).
    Fragment { sent_us: u64, frag: Fragment },
    /// Sent when nothing else was for a second; `newest` is the newest fragment held.
    Heartbeat {
        sent_us: u64,
        epoch: u64,
        newest: u64,
    },
    /// Fragments `from..=to` of `epoch` are no longer held: the receiver skips them.
    Gap { epoch: u64, from: u64, to: u64 },
    /// The stream's content type, header bytes (`-header-bytes`) and title.
    Meta {
        content_type: String,
        header: Vec<u8>,
        title: String,
    },
}

const T_FRAGMENT: u8 = b'F';
const T_HEARTBEAT: u8 = b'H';
const T_GAP: u8 = b'G';
const T_META: u8 = b'M';

/// Writes one message with its MAC.
pub fn write_msg(w: &mut impl Write, key: &[u8], msg: &Msg) -> io::Result<()> {
    let (t, body) = encode(msg);
    let len = (body.len() as u32).to_be_bytes();
    let mac = hmac(key, &[&[t], &len, &body]);
    let mut out = Vec::with_capacity(5 + body.len() + MAC_LEN);
    out.push(t);
    out.extend_from_slice(&len);
    out.extend_from_slice(&body);
    out.extend_from_slice(&mac[..MAC_LEN]);
    w.write_all(&out)
}

/// Why a message could not be read.
#[derive(Debug)]
pub enum ReadError {
    Io(io::Error),
    /// The MAC did not match: corrupted or tampered with.
    BadMac,
    /// Not a message of this protocol.
    Malformed(String),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "{e}"),
            ReadError::BadMac => {
                f.write_str("a message failed its MAC check (corrupted or tampered)")
            }
            ReadError::Malformed(m) => write!(f, "malformed message: {m}"),
        }
    }
}

/// Reads and verifies one message.
pub fn read_msg(r: &mut impl Read, key: &[u8]) -> Result<Msg, ReadError> {
    let mut head = [0u8; 5];
    r.read_exact(&mut head).map_err(ReadError::Io)?;
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len > MAX_BODY {
        return Err(ReadError::Malformed(format!("length {len}")));
    }
    let mut body = vec![0u8; len + MAC_LEN];
    r.read_exact(&mut body).map_err(ReadError::Io)?;
    let mac = body.split_off(len);
    let want = hmac(key, &[&head[..1], &head[1..5], &body]);
    // Constant time is not needed against a MAC the attacker cannot compute anyway, but
    // costs nothing.
    if mac
        .iter()
        .zip(&want[..MAC_LEN])
        .fold(0u8, |d, (a, b)| d | (a ^ b))
        != 0
    {
        return Err(ReadError::BadMac);
    }
    decode(head[0], &body)
        .ok_or_else(|| ReadError::Malformed(format!("type {:?}", head[0] as char)))
}

fn encode(msg: &Msg) -> (u8, Vec<u8>) {
    let mut b = Vec::new();
    match msg {
        Msg::Fragment { sent_us, frag } => {
            for v in [*sent_us, frag.epoch, frag.seq, frag.capture_us] {
                b.extend_from_slice(&v.to_be_bytes());
            }
            b.extend_from_slice(&frag.duration_us.to_be_bytes());
            b.extend_from_slice(&(frag.frame_lens.len() as u16).to_be_bytes());
            for &l in &frag.frame_lens {
                // Frames are at most 16 MiB (config); 3 bytes each.
                b.extend_from_slice(&l.to_be_bytes()[1..]);
            }
            b.extend_from_slice(&frag.data);
            (T_FRAGMENT, b)
        }
        Msg::Heartbeat {
            sent_us,
            epoch,
            newest,
        } => {
            for v in [*sent_us, *epoch, *newest] {
                b.extend_from_slice(&v.to_be_bytes());
            }
            (T_HEARTBEAT, b)
        }
        Msg::Gap { epoch, from, to } => {
            for v in [*epoch, *from, *to] {
                b.extend_from_slice(&v.to_be_bytes());
            }
            (T_GAP, b)
        }
        Msg::Meta {
            content_type,
            header,
            title,
        } => {
            for field in [content_type.as_bytes(), header, title.as_bytes()] {
                b.extend_from_slice(&(field.len() as u32).to_be_bytes());
                b.extend_from_slice(field);
            }
            (T_META, b)
        }
    }
}

/// A cursor over a message body.
struct Body<'a>(&'a [u8]);

impl Body<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|b| u64::from_be_bytes(b.try_into().unwrap_or_default()))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_be_bytes(b.try_into().unwrap_or_default()))
    }
    fn field(&mut self) -> Option<Vec<u8>> {
        let n = self.u32()? as usize;
        self.take(n).map(<[u8]>::to_vec)
    }
}

fn decode(t: u8, body: &[u8]) -> Option<Msg> {
    let mut b = Body(body);
    let msg = match t {
        T_FRAGMENT => {
            let (sent_us, epoch, seq, capture_us) = (b.u64()?, b.u64()?, b.u64()?, b.u64()?);
            let duration_us = b.u32()?;
            let n = u16::from_be_bytes(b.take(2)?.try_into().ok()?) as usize;
            let mut frame_lens = Vec::with_capacity(n);
            for _ in 0..n {
                let l = b.take(3)?;
                frame_lens.push(u32::from_be_bytes([0, l[0], l[1], l[2]]));
            }
            let data = b.0.to_vec();
            if frame_lens.iter().map(|&l| l as usize).sum::<usize>() != data.len() {
                return None;
            }
            Msg::Fragment {
                sent_us,
                frag: Fragment {
                    epoch,
                    seq,
                    capture_us,
                    duration_us,
                    frame_lens,
                    data,
                },
            }
        }
        T_HEARTBEAT => Msg::Heartbeat {
            sent_us: b.u64()?,
            epoch: b.u64()?,
            newest: b.u64()?,
        },
        T_GAP => Msg::Gap {
            epoch: b.u64()?,
            from: b.u64()?,
            to: b.u64()?,
        },
        T_META => Msg::Meta {
            content_type: String::from_utf8(b.field()?).ok()?,
            header: b.field()?,
            title: String::from_utf8(b.field()?).ok()?,
        },
        _ => return None,
    };
    Some(msg)
}

/// Wire bytes a fragment message adds to its `n` frames.
#[cfg(test)]
pub fn fragment_overhead(n: usize) -> usize {
    5 + 8 * 4 + 4 + 2 + 3 * n + MAC_LEN
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_is_hmac_sha256() {
        // RFC 4231, test case 2, given in two parts.
        let mac = hmac(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            crate::link::hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    fn frag() -> Fragment {
        Fragment {
            epoch: 7,
            seq: 42,
            capture_us: 1_700_000_000_000_000,
            duration_us: 261_224,
            frame_lens: vec![418, 417, 418],
            data: (0..1253u32).map(|i| i as u8).collect(),
        }
    }

    #[test]
    fn messages_round_trip() {
        let key = session_key(b"secret", "sn", "cn");
        let msgs = [
            Msg::Fragment {
                sent_us: 5,
                frag: frag(),
            },
            Msg::Heartbeat {
                sent_us: 9,
                epoch: 7,
                newest: 42,
            },
            Msg::Gap {
                epoch: 7,
                from: 3,
                to: 9,
            },
            Msg::Meta {
                content_type: "audio/mpeg".into(),
                header: vec![1, 2],
                title: "Café".into(),
            },
        ];
        let mut wire = Vec::new();
        for m in &msgs {
            write_msg(&mut wire, &key, m).unwrap();
        }
        let mut r = &wire[..];
        for m in &msgs {
            assert_eq!(&read_msg(&mut r, &key).unwrap(), m);
        }
        assert!(matches!(read_msg(&mut r, &key), Err(ReadError::Io(_))));
        let Msg::Fragment { frag, .. } = &msgs[0] else {
            unreachable!()
        };
        assert_eq!(
            frag.frames().map(<[u8]>::len).collect::<Vec<_>>(),
            [418, 417, 418]
        );
    }

    #[test]
    fn any_flipped_bit_or_other_key_is_rejected() {
        let key = session_key(b"secret", "sn", "cn");
        let mut wire = Vec::new();
        write_msg(
            &mut wire,
            &key,
            &Msg::Fragment {
                sent_us: 5,
                frag: frag(),
            },
        )
        .unwrap();
        for i in [0usize, 3, 10, 100, wire.len() - 1] {
            let mut bad = wire.clone();
            bad[i] ^= 0x10;
            assert!(read_msg(&mut &bad[..], &key).is_err(), "byte {i}");
        }
        let other = session_key(b"secret", "sn", "other");
        assert!(matches!(
            read_msg(&mut &wire[..], &other),
            Err(ReadError::BadMac)
        ));
    }

    #[test]
    fn overhead_is_under_3_percent_at_128k_with_250ms_fragments() {
        // 250 ms of 128 kb/s MP3: 4000 bytes in about 10 frames.
        let overhead = fragment_overhead(10) as f64 / 4000.0;
        assert!(overhead < 0.03, "{overhead}");
    }
}
