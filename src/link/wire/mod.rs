//! The link's wire format (version 1; `docs/link-protocol.md` is the reference).
//!
//! A session is a stream of messages, each `type (1) | length (4, big endian) | body |
//! mac (16)`, where `mac` is the first 16 bytes of HMAC-SHA256 over type, length and body
//! with the session key. The session key is HMAC(stream key, "ringcast-link-v1 session" |
//! server nonce | client nonce), so a message from one session cannot be replayed into
//! another, and the shared key never crosses the wire.

use ring::hmac as ring_hmac;
use std::io::{self, Read, Write};

pub const VERSION: u32 = 1;
pub const MAC_LEN: usize = 16;
/// No message is larger: a fragment of 250 ms of even 320 kb/s audio is 10 KB.
pub const MAX_BODY: usize = 1 << 20;
const MAX_BODY_U32: u32 = 1 << 20;
/// No fragment covers more media time than this (the origin cuts every 250 ms by default;
/// `-fragment-duration` is at most 10 s). A longer one is refused as malformed.
pub const MAX_FRAGMENT_US: u32 = 60_000_000;

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
pub fn session_key(stream: &[u8], server_nonce: &str, client_nonce: &str) -> [u8; 32] {
    hmac(
        stream,
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
    /// The frames, in order. Decoding checked that the lengths add up to `data`; should they
    /// not, the frames stop where the data does.
    pub fn frames(&self) -> impl Iterator<Item = &[u8]> {
        let mut rest = self.data.as_slice();
        self.frame_lens.iter().map_while(move |&l| {
            let (f, after) = rest.split_at_checked(usize::try_from(l).ok()?)?;
            rest = after;
            Some(f)
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

impl Msg {
    /// Roughly the memory the message holds (its variable parts), for bounding queues.
    pub fn size(&self) -> usize {
        match self {
            Msg::Fragment { frag, .. } => frag
                .data
                .len()
                .saturating_add(frag.frame_lens.len().saturating_mul(4)),
            Msg::Meta {
                content_type,
                header,
                title,
            } => content_type
                .len()
                .saturating_add(header.len())
                .saturating_add(title.len()),
            Msg::Heartbeat { .. } | Msg::Gap { .. } => 0,
        }
        .saturating_add(64)
    }
}

const T_FRAGMENT: u8 = b'F';
const T_HEARTBEAT: u8 = b'H';
const T_GAP: u8 = b'G';
const T_META: u8 = b'M';

/// Writes one message with its MAC. A message the other side would refuse (a body over
/// [`MAX_BODY`], more frames than a fragment can list) is an error here, never sent.
pub fn write_msg(w: &mut impl Write, key: &[u8], msg: &Msg) -> io::Result<()> {
    let (t, body) = encode(msg)?;
    let len = u32::try_from(body.len())
        .ok()
        .filter(|&l| l <= MAX_BODY_U32)
        .ok_or_else(|| io::Error::other(format!("link message of {} bytes", body.len())))?
        .to_be_bytes();
    let mac = hmac(key, &[&[t], &len, &body]);
    let mut out = Vec::with_capacity(body.len().saturating_add(5 + MAC_LEN));
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
    let [t, l0, l1, l2, l3] = head;
    let len = u32::from_be_bytes([l0, l1, l2, l3]);
    // Checked before the allocation it sizes: a peer cannot make us allocate more.
    let len = usize::try_from(len)
        .ok()
        .filter(|&l| l <= MAX_BODY)
        .ok_or_else(|| ReadError::Malformed(format!("length {len}")))?;
    let mut body = vec![0u8; len.saturating_add(MAC_LEN)];
    r.read_exact(&mut body).map_err(ReadError::Io)?;
    let mac = body.split_off(len);
    let want = hmac(key, &[&head, &body]);
    // Constant time is not needed against a MAC the attacker cannot compute anyway, but
    // costs nothing.
    if mac
        .iter()
        .zip(want.iter().take(MAC_LEN))
        .fold(0u8, |d, (a, b)| d | (a ^ b))
        != 0
    {
        return Err(ReadError::BadMac);
    }
    decode(t, &body).map_err(|why| ReadError::Malformed(format!("{:?}: {why}", char::from(t))))
}

fn encode(msg: &Msg) -> io::Result<(u8, Vec<u8>)> {
    let mut b = Vec::new();
    let out = match msg {
        Msg::Fragment { sent_us, frag } => {
            for v in [*sent_us, frag.epoch, frag.seq, frag.capture_us] {
                b.extend_from_slice(&v.to_be_bytes());
            }
            b.extend_from_slice(&frag.duration_us.to_be_bytes());
            let count = u16::try_from(frag.frame_lens.len())
                .map_err(|_| io::Error::other("a fragment of more than 65535 frames"))?;
            b.extend_from_slice(&count.to_be_bytes());
            for &l in &frag.frame_lens {
                // 3 bytes each: frames on the link are far smaller than 16 MiB (config).
                let [top, l0, l1, l2] = l.to_be_bytes();
                if top != 0 {
                    return Err(io::Error::other("a frame of 16 MiB or more"));
                }
                b.extend_from_slice(&[l0, l1, l2]);
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
                let len = u32::try_from(field.len())
                    .map_err(|_| io::Error::other("a meta field over 4 GiB"))?;
                b.extend_from_slice(&len.to_be_bytes());
                b.extend_from_slice(field);
            }
            (T_META, b)
        }
    };
    Ok(out)
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
    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }
    fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_be_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_be_bytes)
    }
    fn field(&mut self) -> Option<Vec<u8>> {
        let n = usize::try_from(self.u32()?).ok()?;
        self.take(n).map(<[u8]>::to_vec)
    }
}

/// Why a body ends before a field it must hold.
const SHORT: &str = "body too short";

/// A message body, or why it is not one of ours. Only bodies that passed the MAC get here,
/// but a peer holding the key is still a peer: every count and length is checked.
fn decode(t: u8, body: &[u8]) -> Result<Msg, &'static str> {
    let mut b = Body(body);
    let msg = match t {
        T_FRAGMENT => decode_fragment(&mut b)?,
        T_HEARTBEAT => Msg::Heartbeat {
            sent_us: b.u64().ok_or(SHORT)?,
            epoch: b.u64().ok_or(SHORT)?,
            newest: b.u64().ok_or(SHORT)?,
        },
        T_GAP => {
            let (epoch, from, to) = (
                b.u64().ok_or(SHORT)?,
                b.u64().ok_or(SHORT)?,
                b.u64().ok_or(SHORT)?,
            );
            if from > to {
                return Err("a gap that ends before it starts");
            }
            Msg::Gap { epoch, from, to }
        }
        T_META => {
            let text = |f: Option<Vec<u8>>| -> Result<String, &'static str> {
                String::from_utf8(f.ok_or(SHORT)?).map_err(|_| "meta text is not UTF-8")
            };
            let content_type = text(b.field())?;
            if content_type.is_empty() || content_type.bytes().any(|c| c.is_ascii_control()) {
                return Err("not a content type");
            }
            Msg::Meta {
                content_type,
                header: b.field().ok_or(SHORT)?,
                title: text(b.field())?,
            }
        }
        _ => return Err("unknown message type"),
    };
    Ok(msg)
}

/// A fragment message's body (see [`decode`]): its frame count, duration and each frame's
/// length are checked, and the lengths must add up to the data exactly.
fn decode_fragment(b: &mut Body<'_>) -> Result<Msg, &'static str> {
    let (sent_us, epoch, seq, capture_us) = (
        b.u64().ok_or(SHORT)?,
        b.u64().ok_or(SHORT)?,
        b.u64().ok_or(SHORT)?,
        b.u64().ok_or(SHORT)?,
    );
    let duration_us = b.u32().ok_or(SHORT)?;
    let n = u16::from_be_bytes(b.array().ok_or(SHORT)?);
    if n == 0 {
        return Err("a fragment without frames");
    }
    if duration_us == 0 || duration_us > MAX_FRAGMENT_US {
        return Err("a fragment's duration is zero or over a minute");
    }
    let mut frame_lens = Vec::with_capacity(usize::from(n));
    let mut total: usize = 0;
    for _ in 0..n {
        let [l0, l1, l2] = b.array().ok_or(SHORT)?;
        let l = u32::from_be_bytes([0, l0, l1, l2]);
        if l == 0 {
            return Err("an empty frame");
        }
        total = usize::try_from(l)
            .ok()
            .and_then(|l| total.checked_add(l))
            .ok_or("frame lengths overflow")?;
        frame_lens.push(l);
    }
    let data = b.0.to_vec();
    if total != data.len() {
        return Err("frame lengths do not add up to the data");
    }
    Ok(Msg::Fragment {
        sent_us,
        frag: Fragment {
            epoch,
            seq,
            capture_us,
            duration_us,
            frame_lens,
            data,
        },
    })
}

/// Wire bytes a fragment message adds to its `n` frames.
#[cfg(test)]
pub fn fragment_overhead(n: usize) -> usize {
    5 + 8 * 4 + 4 + 2 + 3 * n + MAC_LEN
}

#[cfg(test)]
mod tests;
