//! A hostile link peer that holds the key: it passes the handshake, then pushes fragments
//! whose capture times, frame lengths and counts are absurd, and steps its clock back. The
//! receiver must refuse what does not add up, count it, keep its listeners on the real
//! frames, and follow the clock step within seconds. The peer speaks the wire format from
//! `docs/link-protocol.md`, written here from the document, not from ringcast's code.

use crate::common::*;
use ring::hmac;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const KEY: &str = "a shared link key";
const T: Duration = Duration::from_secs(10);
const FRAME: usize = 40;

fn mac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut c = hmac::Context::with_key(&hmac::Key::new(hmac::HMAC_SHA256, key));
    for p in parts {
        c.update(p);
    }
    c.sign().as_ref().to_vec()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn wall_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

/// A pushing session into `receiver`: handshake done, messages go out MAC'd.
struct Pusher {
    conn: TcpStream,
    key: Vec<u8>,
}

impl Pusher {
    fn connect(receiver: SocketAddr) -> Pusher {
        Self::connect_as(receiver, "hostile")
    }

    /// A pusher whose id is `oid` (its path number after a dot: `x.1` is path 1).
    fn connect_as(receiver: SocketAddr, oid: &str) -> Pusher {
        let mut c = TcpStream::connect(receiver).unwrap();
        c.set_read_timeout(Some(T)).unwrap();
        c.write_all(b"GET /.ringcast/link/challenge HTTP/1.0\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        c.read_to_string(&mut answer).unwrap();
        let body = answer.split("\r\n\r\n").nth(1).unwrap();
        let w: Vec<&str> = body.split_whitespace().collect();
        assert_eq!(&w[..2], ["ringcast-link", "1"], "{answer}");
        let (nonce, held, want) = (w[2], w[3], w[4]);
        let cnonce = "0123456789abcdef0123456789abcdef";
        let joined = format!("push|1|{nonce}|{cnonce}|{held}|{want}|{oid}");
        let m = hex(&mac(KEY.as_bytes(), &[joined.as_bytes()]));
        let mut conn = TcpStream::connect(receiver).unwrap();
        conn.set_read_timeout(Some(T)).unwrap();
        write!(
            conn,
            "POST /.ringcast/link/push?v=1&nonce={nonce}&cnonce={cnonce}&after={held}&want={want}&oid={oid}&mac={m} HTTP/1.1\r\nHost: r\r\n\r\n"
        )
        .unwrap();
        let (status, head, _) = read_head(&mut conn);
        assert_eq!(status, 200, "{head}");
        let key = mac(
            KEY.as_bytes(),
            &[
                b"ringcast-link-v1 session|",
                nonce.as_bytes(),
                b"|",
                cnonce.as_bytes(),
            ],
        );
        Pusher { conn, key }
    }

    fn send(&mut self, t: u8, body: &[u8]) -> std::io::Result<()> {
        let len = (body.len() as u32).to_be_bytes();
        let m = mac(&self.key, &[&[t], &len, body]);
        let mut out = vec![t];
        out.extend_from_slice(&len);
        out.extend_from_slice(body);
        out.extend_from_slice(&m[..16]);
        self.conn.write_all(&out)
    }

    fn meta(&mut self) {
        let mut b = Vec::new();
        for f in [&b"application/octet-stream"[..], b"", b"Hostile FM"] {
            b.extend_from_slice(&(f.len() as u32).to_be_bytes());
            b.extend_from_slice(f);
        }
        self.send(b'M', &b).unwrap();
    }

    /// A fragment: `frames` (each FRAME bytes unless `lens` says otherwise), marked `tag`.
    fn fragment(
        &mut self,
        seq: u64,
        capture_us: u64,
        sent_us: u64,
        tag: &str,
        lens: Option<Vec<u32>>,
    ) -> std::io::Result<()> {
        let lens = lens.unwrap_or_else(|| vec![FRAME as u32; 5]);
        let data: Vec<u8> = lens
            .iter()
            .enumerate()
            .flat_map(|(i, &l)| {
                let mut f = format!("{tag}:{seq:06}:{i}|").into_bytes();
                f.resize(l as usize, b'.');
                f
            })
            .collect();
        let mut b = Vec::new();
        for v in [sent_us, 7, seq, capture_us] {
            b.extend_from_slice(&v.to_be_bytes());
        }
        b.extend_from_slice(&250_000u32.to_be_bytes());
        b.extend_from_slice(&(lens.len() as u16).to_be_bytes());
        for l in &lens {
            b.extend_from_slice(&l.to_be_bytes()[1..]);
        }
        b.extend_from_slice(&data);
        self.send(b'F', &b)
    }
}

#[test]
fn a_hostile_peer_with_the_key_cannot_wedge_flood_or_crash_the_receiver() {
    let r = Server::start(&[
        "-link-key",
        KEY,
        "-link-receive",
        "-link-delay",
        "1s",
        "-frame-bytes",
        &FRAME.to_string(),
    ]);
    let mut p = Pusher::connect(r.addr);
    p.meta();
    let mut l = r.listen();
    assert_eq!(l.status, 200);
    let start = wall_us();
    let frag_us = 250_000;
    let mut seq = 0;
    // A second of good fragments, paced as an origin would send them.
    let send_good = |p: &mut Pusher, seq: &mut u64, clock: i64, n: u64| {
        for _ in 0..n {
            *seq += 1;
            let cap = (start as i64 + clock + (*seq as i64) * frag_us) as u64;
            p.fragment(*seq, cap, cap + frag_us as u64, "good", None)
                .unwrap();
            std::thread::sleep(Duration::from_millis(250));
        }
    };
    send_good(&mut p, &mut seq, 0, 4);
    // Absurd capture times: a day ahead, 1970, u64::MAX.
    for (i, cap) in [start + 86_400_000_000, 1, u64::MAX]
        .into_iter()
        .enumerate()
    {
        seq += 1;
        p.fragment(
            seq,
            cap,
            start + seq * frag_us as u64,
            &format!("absurd{i}"),
            None,
        )
        .unwrap();
    }
    // A frame larger than -frame-bytes.
    seq += 1;
    let cap = start + seq * frag_us as u64;
    p.fragment(
        seq,
        cap,
        cap + frag_us as u64,
        "big",
        Some(vec![FRAME as u32 * 4]),
    )
    .unwrap();
    send_good(&mut p, &mut seq, 0, 4);
    assert!(
        eventually(T, || metric(
            r.addr,
            "ringcast_link_fragments_refused_total"
        ) >= 4),
        "{}",
        r.log_text()
    );
    // The listener kept getting the good frames, and none of the refused ones.
    let body = l.read_body(FRAME * 5 * 6, T).to_vec();
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("good:"), "{text}");
    assert!(!text.contains("absurd") && !text.contains("big:"), "{text}");
    assert_eq!(metric(r.addr, "ringcast_link_silence_frames_total"), 0);

    // The origin's clock steps back 30 s (NTP on a Pi without a clock battery): its
    // fragments now claim captures 30 s earlier. They must play within seconds, not after
    // the minute the clock window would otherwise hold on to the old offset.
    let stepped_at = Instant::now();
    let mut heard_after = None;
    let mut seen = body.len();
    while stepped_at.elapsed() < Duration::from_secs(9) {
        seq += 1;
        let cap = (start as i64 - 30_000_000 + (seq as i64) * frag_us) as u64;
        p.fragment(seq, cap, cap + frag_us as u64, "stepped", None)
            .unwrap();
        std::thread::sleep(Duration::from_millis(250));
        let body = l.read_body(seen + 1, Duration::from_millis(10)).to_vec();
        seen = body.len();
        if heard_after.is_none() && String::from_utf8_lossy(&body).contains("stepped:") {
            heard_after = Some(stepped_at.elapsed());
        }
    }
    let after =
        heard_after.unwrap_or_else(|| panic!("stepped frames never played: {}", r.log_text()));
    assert!(
        after < Duration::from_secs(6),
        "followed the step after {after:?}"
    );

    // Lengths that do not add up end the session (a malformed message), and the receiver
    // is still there for the next one.
    seq += 1;
    let mut b = Vec::new();
    for v in [wall_us(), 7, seq, wall_us()] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    b.extend_from_slice(&250_000u32.to_be_bytes());
    b.extend_from_slice(&3u16.to_be_bytes());
    b.extend_from_slice(&[0xff, 0xff, 0xff, 0, 0, 1, 0, 0, 1]);
    b.extend_from_slice(b"xy");
    let _ = p.send(b'F', &b);
    assert!(
        r.wait_log("malformed message", T).is_some(),
        "{}",
        r.log_text()
    );
    assert!(!r.log_text().contains("panicked"));
    let again = Pusher::connect(r.addr);
    drop(again);
    assert_eq!(r.listen().status, 200);
}

/// Issue 26: a second path that floods replays of fragments already played (or claims a
/// path number past the receiver's slots) costs bounded work: each copy is counted late and
/// dropped, the honest path's frames play in order and once, and memory stays put.
#[test]
fn a_second_path_flooding_replays_is_never_heard_and_costs_bounded_memory() {
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    use std::sync::Arc;
    let r = Server::start(&[
        "-link-key",
        KEY,
        "-link-receive",
        "-link-delay",
        "1s",
        "-frame-bytes",
        &FRAME.to_string(),
    ]);
    let mut honest = Pusher::connect_as(r.addr, "honest.0");
    honest.meta();
    let mut l = r.listen();
    assert_eq!(l.status, 200);
    let start = wall_us();
    let frag_us = 250_000u64;
    let cap = move |seq: u64| start + seq * frag_us;
    let progress = Arc::new(AtomicU64::new(0));
    let p2 = Arc::clone(&progress);
    let honest_thread = std::thread::spawn(move || {
        for seq in 1..=28 {
            honest
                .fragment(seq, cap(seq), cap(seq) + frag_us, "good", None)
                .unwrap();
            p2.store(seq, Relaxed);
            std::thread::sleep(Duration::from_millis(250));
        }
    });
    assert!(eventually(T, || progress.load(Relaxed) >= 6));
    let rss = |pid: u32| {
        let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let line = s
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .unwrap()
            .to_string();
        line.split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    let rss_before = rss(r.child.id());
    // Path 1 replays fragments 1..=4 (played already) as fast as it can, for 3 s.
    let mut flood = Pusher::connect_as(r.addr, "hostile.1");
    let began = Instant::now();
    let mut sent = 0u64;
    'flood: while began.elapsed() < Duration::from_secs(3) {
        for seq in 1..=4 {
            if flood
                .fragment(seq, cap(seq), cap(seq) + frag_us, "replay", None)
                .is_err()
            {
                break 'flood;
            }
            sent += 1;
        }
    }
    // A path number past the receiver's slots lands in the last one.
    let mut far = Pusher::connect_as(r.addr, "hostile.99");
    far.fragment(2, cap(2), cap(2) + frag_us, "replay", None)
        .unwrap();
    let rss_after = rss(r.child.id());
    honest_thread.join().unwrap();
    let body = l.read_body(FRAME * 5 * 24, T).to_vec();
    let text = String::from_utf8_lossy(&body);
    assert!(!text.contains("replay"), "a replayed copy was heard");
    // The honest frames, in order, each once.
    let heard: Vec<(u64, u64)> = text
        .split("good:")
        .skip(1)
        .map(|f| {
            let mut w = f.split(['|', ':']);
            (
                w.next().unwrap().parse().unwrap(),
                w.next().unwrap().parse().unwrap(),
            )
        })
        .collect();
    assert!(heard.len() >= 5 * 20, "{} frames heard", heard.len());
    for w in heard.windows(2) {
        assert!(w[1] > w[0], "in order, once: {:?} then {:?}", w[0], w[1]);
    }
    let duplicates = metric(r.addr, "ringcast_link_duplicates_total");
    eprintln!("flood: {sent} replays sent in 3 s, {duplicates} counted as duplicates; RSS {rss_before} kB -> {rss_after} kB");
    assert!(
        duplicates >= sent.min(100),
        "{duplicates} duplicates counted of {sent}"
    );
    assert!(
        rss_after < rss_before + 16 * 1024,
        "RSS {rss_before} kB -> {rss_after} kB"
    );
    assert_eq!(metric(r.addr, "ringcast_link_silence_frames_total"), 0);
    assert!(!r.log_text().contains("panicked"));
}
