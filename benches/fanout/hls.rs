//! `make bench`, HLS: N HLS clients with no cache in front (each polling the playlist every
//! 2 s and fetching every new segment once on one kept connection, as hls.js in a browser
//! does; a client connects again only when the server closes) against N plain listeners of
//! the same server, fed the same numbered MP3 frames in real time, and then the same
//! players opening a new connection for every request (a client that does not ask for
//! keep-alive, and what every player cost before it): ringcast's CPU and memory under each,
//! connections per player, and the glass-to-ear delay of each, from a frame's last byte
//! written to ringcast's input to its last byte read by a client.
//!
//! The HLS delay is measured by an eager client that polls every 100 ms and fetches each
//! segment as soon as it is listed: what the server adds. A player starting the usual three
//! segments behind the live edge (RFC 8216, 6.3.3) adds about three segment durations.

use super::{measure_with, metric, start_ringcast_fed, Audience, Measure};
use crate::common::{mp3_frames, Listener};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::ChildStdin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Clients of each kind.
pub const N: usize = 500;
/// The segment target (ringcast's default) and how often a client reloads the playlist.
const SEGMENT: Duration = Duration::from_secs(4);
const POLL: Duration = Duration::from_secs(2);
/// Threads the HLS clients are spread over (each runs its clients' requests in turn).
const WORKERS: usize = 40;
/// An MP3 frame of the fixture (MPEG-1 Layer III, 44.1 kHz): 1152 samples.
const FRAME_SECS: f64 = 1152.0 / 44_100.0;

/// When each numbered frame was fed (index: its number).
type FedAt = Arc<Mutex<Vec<Option<Instant>>>>;
/// Glass-to-ear delays seen, in seconds.
type Delays = Arc<Mutex<Vec<f64>>>;

pub fn figures(data: &[u8], n: usize, secs: u64) {
    let frames = numbered(data, usize::try_from((150 + secs) * 39).unwrap());
    let mut rows = Vec::new();
    // Plain listeners; HLS players keeping one connection; the same players with a new
    // connection for every request (as before keep-alive, and as a client that does not ask).
    for (hls, keep) in [(false, false), (true, true), (true, false)] {
        let fed = Arc::new(AtomicU64::new(0));
        let fed_at: FedAt = Arc::new(Mutex::new(vec![None; frames.len()]));
        let (frames2, fed2, at2) = (frames.clone(), Arc::clone(&fed), Arc::clone(&fed_at));
        let server = start_ringcast_fed(&["-hls"], move |stdin| {
            feed_frames(stdin, &frames2, &fed2, &at2)
        });
        let addr = server.addr;
        let stop = Arc::new(AtomicBool::new(false));
        let delays: Delays = Arc::default();
        let watcher = {
            let (stop, delays, fed_at) = (Arc::clone(&stop), Arc::clone(&delays), fed_at);
            std::thread::spawn(move || match hls {
                false => watch_plain(addr, &fed_at, &delays, &stop),
                true => watch_hls(addr, &fed_at, &delays, &stop),
            })
        };
        let requests = || {
            metric(addr, "ringcast_hls_playlist_requests_total")
                + metric(addr, "ringcast_hls_segment_requests_total")
        };
        let r0 = (requests(), Instant::now());
        let how = Measure {
            secs,
            // A client has a segment only once it is whole and listed: it may be a segment
            // and a poll behind the feed.
            lag_secs: if hls {
                (SEGMENT + POLL).as_secs_f64() + 1.0
            } else {
                super::FULL_RATE_LAG_SECS
            },
            first_byte: None,
        };
        let connects: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
        let c2 = Arc::clone(&connects);
        let f = measure_with(server.child.id(), &fed, how, move || match hls {
            false => Box::new(super::Load::connect(addr, "/", n, None)),
            true => Box::new(HlsLoad::start(addr, n, c2, keep)),
        });
        let per_sec = (requests() - r0.0) as f64 / r0.1.elapsed().as_secs_f64();
        let sessions = metric(addr, "ringcast_hls_listeners");
        let opened: u64 = connects.iter().map(|c| c.load(Relaxed)).sum();
        let per_player = opened as f64 / n as f64;
        stop.store(true, Relaxed);
        let _ = watcher.join();
        let mut d = delays.lock().unwrap().clone();
        d.sort_by(|a, b| a.total_cmp(b));
        rows.push((hls, keep, f, d, per_sec, sessions, per_player));
        drop(server);
    }
    println!();
    println!(
        "HLS players (one kept connection each, no cache) against plain listeners, {n} each, one server with -hls \
         ({}s segments, window 6), numbered frames fed at 128 kb/s:",
        SEGMENT.as_secs()
    );
    for (hls, keep, f, d, per_sec, sessions, per_player) in &rows {
        let per = f.rss_kb.saturating_sub(f.idle_rss_kb) as f64 * 1024.0 / n as f64;
        let name = match (hls, keep) {
            (false, _) => "plain",
            (true, true) => "HLS, kept",
            (true, false) => "HLS, new connection each request",
        };
        println!(
            "  {name}: CPU {:.2} s/min, RSS {} kB ({:.0} B/client), peak threads {}, at full rate {}/{n}{}",
            f.cpu_s_per_min,
            f.rss_kb,
            per,
            f.threads,
            f.at_full_rate,
            if *hls {
                format!(
                    ", {per_sec:.0} requests/s, {sessions} HLS sessions counted, \
                     {per_player:.2} connections per player"
                )
            } else {
                String::new()
            }
        );
        match d.len() {
            0 => println!("         glass-to-ear: no frame seen"),
            k => println!(
                "         glass-to-ear: median {:.2} s, max {:.2} s ({k} frames{})",
                d[k / 2],
                d[k - 1],
                if *hls {
                    "; a player three segments behind the live edge adds about 12 s"
                } else {
                    ""
                }
            ),
        }
    }
    if let [(_, _, p, ..), (_, _, h, ..), (_, _, c, ..)] = &rows[..] {
        println!(
            "  HLS kept/plain: CPU {:.2}x, RSS {:.2}x; a new connection each request/plain: CPU {:.2}x, RSS {:.2}x",
            h.cpu_s_per_min / p.cpu_s_per_min,
            h.rss_kb as f64 / p.rss_kb as f64,
            c.cpu_s_per_min / p.cpu_s_per_min,
            c.rss_kb as f64 / p.rss_kb as f64
        );
    }
}

/// The fixture's audio frames (its Info frame left out), repeated to `count` frames, each
/// numbered in its bytes 4..8 (side information: ringcast cuts frames by their headers
/// and never decodes them).
fn numbered(data: &[u8], count: usize) -> Vec<Vec<u8>> {
    let audio: Vec<&[u8]> = mp3_frames(data)
        .into_iter()
        .map(|(at, len)| &data[at..at + len])
        .filter(|f| !f.windows(4).any(|w| w == b"Info" || w == b"Xing"))
        .collect();
    assert!(!audio.is_empty(), "frames in the fixture");
    (0..count)
        .map(|i| {
            let mut f = audio[i % audio.len()].to_vec();
            f[4..8].copy_from_slice(&u32::try_from(i).unwrap().to_be_bytes());
            f
        })
        .collect()
}

/// The frame numbers in `bytes` (whole frames from a frame boundary, or after a
/// segment's ID3 tag), and how many bytes those frames take.
fn numbers(bytes: &[u8]) -> (Vec<u32>, usize) {
    let frames = mp3_frames(bytes);
    let end = frames.last().map_or(0, |&(at, len)| at + len);
    let nums = frames
        .iter()
        .map(|&(at, _)| u32::from_be_bytes(bytes[at + 4..at + 8].try_into().unwrap()))
        .collect();
    (nums, end)
}

/// Writes the frames whole, each at its time, noting when each was written.
fn feed_frames(mut out: ChildStdin, frames: &[Vec<u8>], fed: &AtomicU64, at: &FedAt) {
    let start = Instant::now();
    for (i, f) in frames.iter().enumerate() {
        let due = Duration::from_secs_f64(i as f64 * FRAME_SECS);
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
        if out.write_all(f).is_err() {
            return;
        }
        at.lock().unwrap()[i] = Some(Instant::now());
        fed.fetch_add(f.len() as u64, Relaxed);
    }
}

/// Notes the delay of each frame `got` at `now` that was fed after `since`.
fn note(nums: &[u32], now: Instant, since: Instant, fed_at: &FedAt, delays: &Delays) {
    let at = fed_at.lock().unwrap();
    let mut d = delays.lock().unwrap();
    for &k in nums {
        if let Some(Some(t)) = at.get(k as usize) {
            if *t > since {
                d.push(now.duration_since(*t).as_secs_f64());
            }
        }
    }
}

/// A plain listener: each frame's delay when it arrives (the burst at connect left out).
fn watch_plain(addr: SocketAddr, fed_at: &FedAt, delays: &Delays, stop: &AtomicBool) {
    let mut l = Listener::get(addr, "/", 0);
    let since = Instant::now() + Duration::from_secs(1);
    let mut pending = std::mem::take(&mut l.body);
    let mut buf = vec![0u8; 65536];
    l.conn
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    while !stop.load(Relaxed) {
        match l.conn.read(&mut buf) {
            Ok(0) => return,
            Ok(k) => pending.extend_from_slice(&buf[..k]),
            Err(_) => continue,
        }
        let now = Instant::now();
        // Whole frames only; the rest waits for its end.
        let (nums, whole) = numbers(&pending);
        note(&nums, now, since, fed_at, delays);
        pending.drain(..whole);
    }
}

/// An eager HLS client: each frame's delay when the segment holding it has been read.
fn watch_hls(addr: SocketAddr, fed_at: &FedAt, delays: &Delays, stop: &AtomicBool) {
    let since = Instant::now() + Duration::from_secs(1);
    let mut last = None;
    while !stop.load(Relaxed) {
        for (seq, name) in new_segments(addr, "hls-watch", &mut last) {
            let (status, body) = get(addr, &format!("/hls/{name}"), "hls-watch");
            let now = Instant::now();
            if status == 200 {
                note(&numbers(&body).0, now, since, fed_at, delays);
            }
            last = Some(seq);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The segments listed after `last` (only the newest at the first look), oldest first.
fn new_segments(addr: SocketAddr, agent: &str, last: &mut Option<u64>) -> Vec<(u64, String)> {
    listed_after(get(addr, "/hls/index.m3u8", agent), last)
}

/// The same, asked on a player's kept connection.
fn new_segments_kept(addr: SocketAddr, c: &mut Kept, last: &mut Option<u64>) -> Vec<(u64, String)> {
    listed_after(c.get(addr, "/hls/index.m3u8"), last)
}

fn listed_after((status, body): (u16, Vec<u8>), last: &mut Option<u64>) -> Vec<(u64, String)> {
    if status != 200 {
        return Vec::new();
    }
    let listed: Vec<(u64, String)> = String::from_utf8_lossy(&body)
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let seq = l.rsplit('-').next()?.split('.').next()?.parse().ok()?;
            Some((seq, l.to_string()))
        })
        .collect();
    match *last {
        Some(done) => listed.into_iter().filter(|(s, _)| *s > done).collect(),
        None => listed.into_iter().last().into_iter().collect(),
    }
}

/// One GET on a connection of its own: status and body (0 and nothing on any failure).
/// Each client (user agent) comes from a loopback address of its own, as players do: one
/// address counts as at most 10 HLS sessions (`stream/segments.rs`).
fn get(addr: SocketAddr, path: &str, agent: &str) -> (u16, Vec<u8>) {
    let Some(mut c) = crate::common::connect_from(address_of(agent), addr) else {
        return (0, Vec::new());
    };
    let _ = c.set_read_timeout(Some(Duration::from_secs(10)));
    let req = format!("GET {path} HTTP/1.1\r\nHost: bench\r\nUser-Agent: {agent}\r\n\r\n");
    let mut all = Vec::new();
    if c.write_all(req.as_bytes()).is_err() || c.read_to_end(&mut all).is_err() {
        return (0, Vec::new());
    }
    let Some(end) = all.windows(4).position(|w| w == b"\r\n\r\n") else {
        return (0, Vec::new());
    };
    let status = String::from_utf8_lossy(&all[..end])
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, all[end + 4..].to_vec())
}

/// A player's one connection, kept between requests (`Connection: keep-alive`), from a
/// loopback address of its own; it connects again only when the server closed it.
struct Kept {
    from: std::net::IpAddr,
    agent: String,
    conn: Option<std::net::TcpStream>,
    buf: Vec<u8>,
    connects: u64,
    /// Whether it asks to keep the connection (`Connection: close` otherwise).
    keep: bool,
}

impl Kept {
    fn new(agent: String, keep: bool) -> Kept {
        Kept {
            from: address_of(&agent),
            agent,
            conn: None,
            buf: Vec::new(),
            connects: 0,
            keep,
        }
    }

    /// One GET: status and body (0 and nothing on any failure, after which it reconnects).
    fn get(&mut self, addr: SocketAddr, path: &str) -> (u16, Vec<u8>) {
        let answer = self.exchange(addr, path);
        if answer.0 == 0 {
            self.conn = None;
        }
        answer
    }

    fn exchange(&mut self, addr: SocketAddr, path: &str) -> (u16, Vec<u8>) {
        if self.conn.is_none() {
            self.buf.clear();
            self.conn = crate::common::connect_from(self.from, addr);
            let Some(c) = &self.conn else {
                return (0, Vec::new());
            };
            let _ = c.set_read_timeout(Some(Duration::from_secs(10)));
            self.connects += 1;
        }
        let Some(c) = self.conn.as_mut() else {
            return (0, Vec::new());
        };
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: bench\r\nUser-Agent: {}\r\nConnection: {}\r\n\r\n",
            self.agent,
            if self.keep { "keep-alive" } else { "close" }
        );
        if c.write_all(req.as_bytes()).is_err() {
            return (0, Vec::new());
        }
        let mut chunk = [0u8; 16384];
        let end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match c.read(&mut chunk) {
                Ok(n) if n > 0 => self.buf.extend_from_slice(&chunk[..n]),
                _ => return (0, Vec::new()),
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).to_ascii_lowercase();
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let Some(len) = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
        else {
            return (0, Vec::new());
        };
        while self.buf.len() < end + len {
            match c.read(&mut chunk) {
                Ok(n) if n > 0 => self.buf.extend_from_slice(&chunk[..n]),
                _ => return (0, Vec::new()),
            }
        }
        let body = self.buf[end..end + len].to_vec();
        self.buf.drain(..end + len);
        if !head.contains("connection: keep-alive") {
            self.conn = None;
        }
        (status, body)
    }
}

/// The loopback address a client (by its user agent) connects from.
fn address_of(agent: &str) -> std::net::IpAddr {
    let h = agent
        .bytes()
        .fold(0u32, |a, b| a.wrapping_mul(31).wrapping_add(u32::from(b)));
    let [_, b, c, d] = h.to_be_bytes();
    std::net::IpAddr::from([127, b, c, d | 1])
}

/// N HLS clients, each with its own user agent (so each is a session), spread over
/// [`WORKERS`] threads that run their clients' polls in turn.
struct HlsLoad {
    bytes: Arc<Vec<AtomicU64>>,
    started: Arc<Vec<AtomicBool>>,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
}

impl HlsLoad {
    fn start(addr: SocketAddr, n: usize, connects: Arc<Vec<AtomicU64>>, keep: bool) -> HlsLoad {
        let bytes: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
        let started: Arc<Vec<AtomicBool>> =
            Arc::new((0..n).map(|_| AtomicBool::new(false)).collect());
        let stop = Arc::new(AtomicBool::new(false));
        let workers = (0..WORKERS.min(n))
            .map(|w| {
                let (bytes, started, connects, stop) = (
                    Arc::clone(&bytes),
                    Arc::clone(&started),
                    Arc::clone(&connects),
                    Arc::clone(&stop),
                );
                std::thread::spawn(move || {
                    let t0 = Instant::now();
                    // (client, next poll, last segment had, its connection); first polls
                    // spread over POLL.
                    let mut clients: Vec<(usize, Instant, Option<u64>, Kept)> = (w..n)
                        .step_by(WORKERS)
                        .map(|i| {
                            let at = t0 + POLL.mul_f64((i % 97) as f64 / 97.0);
                            (i, at, None, Kept::new(format!("hls-bench-{i}"), keep))
                        })
                        .collect();
                    while !stop.load(Relaxed) {
                        let Some(c) = clients.iter_mut().min_by_key(|c| c.1) else {
                            return;
                        };
                        let wait = c.1.saturating_duration_since(Instant::now());
                        if !wait.is_zero() {
                            std::thread::sleep(wait.min(Duration::from_millis(100)));
                            continue;
                        }
                        c.1 += POLL;
                        for (seq, name) in new_segments_kept(addr, &mut c.3, &mut c.2) {
                            let (status, body) = c.3.get(addr, &format!("/hls/{name}"));
                            if status == 200 {
                                bytes[c.0].fetch_add(body.len() as u64, Relaxed);
                                started[c.0].store(true, Relaxed);
                            }
                            c.2 = Some(seq);
                        }
                        connects[c.0].store(c.3.connects, Relaxed);
                    }
                })
            })
            .collect();
        HlsLoad {
            bytes,
            started,
            stop,
            workers,
        }
    }
}

impl Audience for HlsLoad {
    fn pump(&mut self, d: Duration) {
        std::thread::sleep(d);
    }

    fn all_started(&self) -> bool {
        self.started.iter().all(|s| s.load(Relaxed))
    }

    fn reset_counts(&mut self) {
        self.bytes.iter().for_each(|b| b.store(0, Relaxed));
    }

    fn counts(&self) -> Vec<u64> {
        self.bytes.iter().map(|b| b.load(Relaxed)).collect()
    }
}

impl Drop for HlsLoad {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}
