//! Source clients: encoders push the stream to ringcast as they push to Icecast.
//!
//! A connection thread (`tx-N`) authenticates the client (`PUT`/`SOURCE` with Basic auth,
//! or SHOUTcast v1's password line on port+1), claims the one [`PushSlot`], and forwards the
//! body over a bounded channel. The source reader thread reads that channel through
//! [`PushInput`], which never ends: while no client is connected it plays `-fallback-path`
//! (paced by its MP3 frame durations) or nothing, and listeners stay connected either way.
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

use super::{Close, Got, Input};
use crate::config::Config;
use crate::frame::Mp3Header;
use crate::http::chunked::Dechunker;
use crate::http::server::Request;
use crate::icy::meta::Info;
use crate::server::peers::{Login, Pending};
use crate::stream::Shared;
use crate::util::deadline::Deadline;
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, SendTimeoutError, Sender};
use log::{info, warn};
use parking_lot::Mutex;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The most `icy-*` header lines a SHOUTcast v1 source may send.
const MAX_V1_HEADERS: usize = 64;
/// Chunks in flight between a source connection and the reader.
const CHANNEL_CHUNKS: usize = 64;

/// The one live source client, if any.
#[derive(Default)]
pub struct PushSlot {
    live: Mutex<Option<(u64, Receiver<Vec<u8>>)>>,
    next_id: Mutex<u64>,
}

impl PushSlot {
    /// Claims the slot for a new client: its id and the sending end. `None` when taken.
    fn claim(&self) -> Option<(u64, Sender<Vec<u8>>)> {
        let mut live = self.live.lock();
        if live.is_some() {
            return None;
        }
        let id = {
            let mut n = self.next_id.lock();
            *n = n.wrapping_add(1);
            *n
        };
        let (tx, rx) = bounded(CHANNEL_CHUNKS);
        *live = Some((id, rx));
        Some((id, tx))
    }

    /// Frees the slot once the reader has taken what was sent (or after 5 s), so a short
    /// source session is not lost between two of the reader's looks at the slot.
    fn release(&self, id: u64, tx: Sender<Vec<u8>>) {
        let deadline = Deadline::after(Duration::from_secs(5));
        while !tx.is_empty() && !deadline.passed() {
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(tx);
        let mut live = self.live.lock();
        if live.as_ref().is_some_and(|(i, _)| *i == id) {
            *live = None;
        }
    }

    fn receiver(&self) -> Option<Receiver<Vec<u8>>> {
        self.live.lock().as_ref().map(|(_, rx)| rx.clone())
    }

    pub fn connected(&self) -> bool {
        self.live.lock().is_some()
    }
}

/// The reader's view of the pushed stream.
pub struct PushInput {
    shared: Arc<Shared>,
    live: Option<Receiver<Vec<u8>>>,
    pending: Vec<u8>,
    fallback: Option<Fallback>,
}

impl PushInput {
    pub fn new(shared: &Arc<Shared>, fallback: Option<&Path>) -> PushInput {
        let fallback = fallback.and_then(|p| match Fallback::load(p) {
            Ok(f) => Some(f),
            Err(e) => {
                warn!(
                    "-fallback-path {}: {e}; listeners hear nothing while no source is connected",
                    p.display()
                );
                None
            }
        });
        PushInput {
            shared: Arc::clone(shared),
            live: None,
            pending: Vec::new(),
            fallback,
        }
    }
}

impl Input for PushInput {
    fn read_timeout(&mut self, buf: &mut [u8], wait: Duration) -> io::Result<Got> {
        if !self.pending.is_empty() {
            return Ok(Got::from_len(super::take_pending(&mut self.pending, buf)));
        }
        if self.live.is_none() {
            self.live = self.shared.push.receiver();
            if self.live.is_some() {
                if let Some(f) = &mut self.fallback {
                    f.pause();
                }
            }
        }
        if self.live.is_none() && self.fallback.is_none() {
            // Nothing to play: watch for a source client to connect.
            let deadline = Deadline::after(wait);
            while self.live.is_none() && !deadline.passed() {
                std::thread::sleep(Duration::from_millis(20));
                self.live = self.shared.push.receiver();
            }
        }
        if let Some(rx) = &self.live {
            match rx.recv_timeout(wait) {
                Ok(chunk) => {
                    self.pending = chunk;
                    return self.read_timeout(buf, wait);
                }
                Err(RecvTimeoutError::Timeout) => return Ok(Got::Nothing),
                Err(RecvTimeoutError::Disconnected) => {
                    self.live = None;
                    if self.fallback.is_some() {
                        info!("no source client: playing the fallback");
                    }
                }
            }
        }
        match &mut self.fallback {
            Some(f) => f.read(buf, wait),
            None => Ok(Got::Nothing),
        }
    }

    fn close(&mut self, _how: Close) {
        self.live = None;
    }
}

/// An MP3 file played in a loop in real time, whole frames at a time.
struct Fallback {
    data: Vec<u8>,
    /// (offset, length, duration) of each frame.
    frames: Vec<(usize, usize, Duration)>,
    next: usize,
    /// When the next frame is due.
    due: Instant,
}

impl Fallback {
    fn load(path: &Path) -> io::Result<Fallback> {
        let data = std::fs::read(path)?;
        let mut frames = Vec::new();
        let mut pos = 0;
        while let Some(rest) = data.get(pos..).filter(|r| r.len() >= 4) {
            match Mp3Header::parse(rest) {
                Some(h) if h.len <= rest.len() => {
                    let d =
                        Duration::from_secs_f64(f64::from(h.samples()) / f64::from(h.sample_rate));
                    frames.push((pos, h.len, d));
                    pos = pos.saturating_add(h.len);
                }
                _ => pos = pos.saturating_add(1),
            }
        }
        if frames.is_empty() {
            return Err(io::Error::other(
                "no MP3 frames in it (the fallback must be an MP3 file)",
            ));
        }
        Ok(Fallback {
            data,
            frames,
            next: 0,
            due: Instant::now(),
        })
    }

    /// A live source took over: resume in real time from now when it leaves.
    fn pause(&mut self) {
        self.due = Instant::now();
    }

    fn read(&mut self, buf: &mut [u8], wait: Duration) -> io::Result<Got> {
        let until_due = self.due.saturating_duration_since(Instant::now());
        if until_due > wait {
            std::thread::sleep(wait);
            return Ok(Got::Nothing);
        }
        std::thread::sleep(until_due);
        // If we fell far behind (the reader was busy), do not burst: restart the clock.
        if Instant::now().saturating_duration_since(self.due) > Duration::from_secs(1) {
            self.due = Instant::now();
        }
        let (frame, d) = self
            .frames
            .get(self.next)
            .and_then(|&(off, len, d)| Some((self.data.get(off..off.checked_add(len)?)?, d)))
            .ok_or_else(|| io::Error::other("fallback frame out of range"))?;
        buf.get_mut(..frame.len())
            .ok_or_else(|| io::Error::other("read buffer smaller than a fallback frame"))?
            .copy_from_slice(frame);
        // load() refuses a file without frames, so the length is never zero.
        self.next = self
            .next
            .saturating_add(1)
            .checked_rem(self.frames.len())
            .unwrap_or(0);
        self.due = self.due.checked_add(d).unwrap_or(self.due);
        Ok(Got::from_len(frame.len()))
    }
}

/// Serves an Icecast source client (`PUT` or `SOURCE`) on the HTTP port.
pub fn serve_source(
    mut conn: TcpStream,
    peer: SocketAddr,
    req: &Request,
    cfg: &Config,
    shared: &Shared,
) {
    let login = shared.peers.login(peer.ip(), "source login", || {
        let (u, p) = req
            .header("Authorization")
            .and_then(crate::http::auth::parse_basic)?;
        Some(source_login(cfg, &u, &p))
    });
    if !crate::server::admin::answer_login(&mut conn, peer, 0, login, "ringcast source") {
        log::debug!("{peer}: source client refused: wrong or missing source login");
        return;
    }
    let Some((id, tx)) = shared.push.claim() else {
        warn!("{peer}: source client refused: a source is already connected");
        crate::http::server::respond(&mut conn, 0, 403, "Mountpoint in use", &[]);
        return;
    };
    shared
        .meta
        .merge_info(&Info::from_headers(|n| req.header(n)));
    let expect_continue = req
        .header("Expect")
        .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"));
    let answer: &[u8] = if expect_continue {
        b"HTTP/1.1 100 Continue\r\n\r\n"
    } else {
        b"HTTP/1.0 200 OK\r\n\r\n"
    };
    if conn.write_all(answer).is_err() {
        shared.push.release(id, tx);
        return;
    }
    let chunked = crate::http::chunked::is_chunked(req.header("Transfer-Encoding"));
    let length = req
        .header("Content-Length")
        .and_then(|l| l.trim().parse::<u64>().ok());
    info!(
        "{peer}: source client connected ({} {:?}, {:?})",
        req.method,
        req.path,
        req.header("User-Agent").unwrap_or("no User-Agent")
    );
    let body = if chunked {
        Body::Chunked(Dechunker::default())
    } else {
        Body::Plain(length)
    };
    let result = pump(&mut conn, &req.leftover, body, &tx, cfg, shared);
    shared.push.release(id, tx);
    match result {
        Ok(n) => info!("{peer}: source client left after {n} bytes"),
        Err(e) => warn!("{peer}: source client dropped: {e}"),
    }
}

/// Whether user/password are the source login.
pub fn source_login(cfg: &Config, user: &str, password: &str) -> bool {
    let Some(expected) = &cfg.source_password else {
        return false;
    };
    crate::http::auth::same_secret(user, &cfg.source_user)
        && crate::http::auth::same_secret(password, expected)
}

/// Serves a SHOUTcast v1 source client on port+1: password line, `OK2`, `icy-*` headers,
/// then the audio.
pub fn serve_shoutcast(
    mut conn: TcpStream,
    peer: SocketAddr,
    mut pending: Pending,
    cfg: &Config,
    shared: &Shared,
) {
    // Each phase (the password line, then the headers) must be done within -header-timeout
    // in all, however slowly its bytes trickle in.
    let first = match read_line(&mut conn, &Deadline::after(cfg.header_timeout)) {
        Ok(l) => l,
        Err(e) => return warn!("{peer}: SHOUTcast source: no password line: {e}"),
    };
    // Some encoders send "password:#streamid"; v1 has one stream.
    let password = first.split(":#").next().unwrap_or_default();
    let login = shared.peers.login(peer.ip(), "SHOUTcast source login", || {
        Some(
            cfg.source_password
                .as_deref()
                .is_some_and(|p| crate::http::auth::same_secret(password, p)),
        )
    });
    if login != Login::Ok {
        log::debug!("{peer}: SHOUTcast source refused ({login:?})");
        let _ = conn.write_all(b"invalid password\r\n");
        return;
    }
    let Some((id, tx)) = shared.push.claim() else {
        warn!("{peer}: SHOUTcast source refused: a source is already connected");
        let _ = conn.write_all(b"invalid password\r\n");
        return;
    };
    if conn.write_all(b"OK2\r\nicy-caps:11\r\n\r\n").is_err() {
        shared.push.release(id, tx);
        return;
    }
    let mut headers: Vec<(String, String)> = Vec::new();
    let deadline = Deadline::after(cfg.header_timeout);
    loop {
        let line = match read_line(&mut conn, &deadline) {
            Ok(l) if headers.len() >= MAX_V1_HEADERS && !l.is_empty() => Err(io::Error::other(
                format!("more than {MAX_V1_HEADERS} header lines"),
            )),
            other => other,
        };
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                warn!("{peer}: SHOUTcast source dropped in its headers: {e}");
                shared.push.release(id, tx);
                return;
            }
        };
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    pending.done();
    shared.meta.merge_info(&Info::from_headers(|n| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.as_str())
    }));
    info!("{peer}: SHOUTcast source client connected");
    let result = pump(&mut conn, &[], Body::Plain(None), &tx, cfg, shared);
    shared.push.release(id, tx);
    match result {
        Ok(n) => info!("{peer}: SHOUTcast source client left after {n} bytes"),
        Err(e) => warn!("{peer}: SHOUTcast source client dropped: {e}"),
    }
}

/// One CRLF- or LF-terminated line, at most 1 KiB, before `deadline`.
fn read_line(conn: &mut TcpStream, deadline: &Deadline) -> io::Result<String> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while line.len() < 1024 {
        deadline.arm_read(conn)?;
        match conn.read(&mut b) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "-header-timeout"))
            }
            Err(e) => return Err(e),
        }
        let [c] = b;
        if c == b'\n' {
            break;
        }
        line.push(c);
    }
    Ok(String::from_utf8_lossy(&line)
        .trim_end_matches('\r')
        .to_string())
}

enum Body {
    /// Identity body: `Some(n)` bytes, or until the connection closes.
    Plain(Option<u64>),
    Chunked(Dechunker),
}

/// Forwards a source client's body to the reader until it ends, falls silent for
/// `-source-timeout`, or we shut down. Returns the bytes forwarded.
fn pump(
    conn: &mut TcpStream,
    first: &[u8],
    mut body: Body,
    tx: &Sender<Vec<u8>>,
    cfg: &Config,
    shared: &Shared,
) -> io::Result<u64> {
    let slice = Duration::from_millis(500).min(cfg.source_timeout);
    conn.set_read_timeout(Some(slice))?;
    let mut total: u64 = 0;
    let mut last = Instant::now();
    let mut buf = vec![0u8; 16 * 1024];
    let mut raw = first.to_vec();
    loop {
        if !raw.is_empty() {
            let data = match &mut body {
                Body::Plain(left) => {
                    if let Some(l) = left {
                        let keep = usize::try_from(*l).unwrap_or(usize::MAX).min(raw.len());
                        raw.truncate(keep);
                        *l = l.saturating_sub(keep as u64);
                    }
                    std::mem::take(&mut raw)
                }
                Body::Chunked(d) => {
                    let mut out = Vec::with_capacity(raw.len());
                    d.feed(&raw, &mut out).map_err(io::Error::other)?;
                    raw.clear();
                    out
                }
            };
            if !data.is_empty() {
                total = total.saturating_add(data.len() as u64);
                match tx.send_timeout(data, Duration::from_secs(5)) {
                    Ok(()) => {}
                    Err(SendTimeoutError::Timeout(_)) => {
                        return Err(io::Error::other("the source reader is not taking data"))
                    }
                    Err(SendTimeoutError::Disconnected(_)) => return Ok(total),
                }
            }
        }
        let finished = match &body {
            Body::Plain(Some(0)) => true,
            Body::Chunked(d) => d.is_done(),
            _ => false,
        };
        if finished || shared.shutdown.is_set() {
            return Ok(total);
        }
        match conn.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => {
                last = Instant::now();
                raw.extend_from_slice(buf.get(..n).unwrap_or_default());
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if last.elapsed() >= cfg.source_timeout {
                    return Err(io::Error::other(format!(
                        "silent for {:.0}s (-source-timeout)",
                        cfg.source_timeout.as_secs_f64()
                    )));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
