//! `-access-log FILE`: a line for every request in Icecast's access-log format (the combined
//! format with the session's length in seconds at the end), so the tools written for
//! Icecast's logs read it (royalty reports, matomo's importer, awstats):
//!
//! `203.0.113.5 - anna [02/Dec/2026:18:00:00 +0000] "GET /live HTTP/1.1" 200 57683200 "https://radio.example/" "VLC/3.0.20" 3605`
//!
//! A listener's line is written when its session ends; the time is when it began, the bytes
//! all it was sent (head and body), the seconds how long it lasted. Lines go to the
//! `access-log` thread through a bounded queue: a request never waits for the disk, and a
//! line that finds the queue full is counted (`ringcast_access_log_dropped_total`) instead.
//! HLS players make a request every few seconds: their requests are folded into sessions
//! (one address, user agent, user and mount, whose requests come no further apart than
//! twice the segment duration, at least 2 s): one line when the session ends, with the first
//! request's time and line, the bytes of all of them and the seconds from first to last.
//! SIGHUP reopens the file (logrotate's `postrotate`). `-access-log-hash` writes a keyed
//! hash of each address instead of the address: the key is random for each run and never
//! stored, so one listener's sessions can be joined within a run and no address can be
//! recovered from the file.

use crate::http::server::Request;
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Lines waiting for the writer; more are dropped and counted.
const QUEUE: usize = 8192;
/// The writer flushes at least this often (and whenever the queue runs dry).
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// HLS sessions open at most; a request beyond gets a line of its own.
const MAX_HLS_SESSIONS: usize = 20_000;

/// What the writer is sent.
enum Msg {
    Line(String),
    /// An HLS request that ended now, to fold into its session.
    Hls(Box<HlsRequest>),
}

struct HlsRequest {
    key: String,
    addr: String,
    entry: Entry,
    status: u16,
    bytes: u64,
    /// The session ends when no request comes for this long.
    gap: Duration,
}

/// An HLS session as it builds up: its first request, and the sum of all.
struct HlsSession {
    addr: String,
    entry: Entry,
    status: u16,
    bytes: u64,
    last: Instant,
    gap: Duration,
}

pub struct AccessLog {
    tx: Sender<Msg>,
    /// Lines that found the queue full.
    pub dropped: AtomicU64,
    /// Bumped by SIGHUP; the writer reopens the file when it sees a new value.
    reopen: Arc<AtomicU64>,
    hash_key: Option<Vec<u8>>,
}

/// A request as the log tells it, taken when the request came (its answer may end hours
/// later, for a listener).
pub struct Entry {
    addr: IpAddr,
    user: String,
    began: SystemTime,
    since: Instant,
    request: String,
    referer: String,
    agent: String,
}

impl Entry {
    pub fn new(addr: IpAddr, req: &Request) -> Entry {
        let user = req
            .header("Authorization")
            .and_then(crate::http::auth::parse_basic)
            .map(|(u, _)| u)
            .unwrap_or_default();
        Entry {
            addr,
            user,
            began: SystemTime::now(),
            since: Instant::now(),
            request: format!(
                "{} {} HTTP/1.{}",
                req.method,
                crate::http::url::redacted(&req.path),
                req.minor
            ),
            referer: req.header("Referer").unwrap_or_default().to_string(),
            agent: req.header("User-Agent").unwrap_or_default().to_string(),
        }
    }
}

impl AccessLog {
    /// Opens `path` for appending (an error here stops the start: a typo should not go
    /// unnoticed) and starts the writer thread.
    pub fn start(path: &Path, hash: bool) -> io::Result<AccessLog> {
        let file = open(path)?;
        let (tx, rx) = bounded(QUEUE);
        let reopen = Arc::new(AtomicU64::new(0));
        let (path, seen) = (path.to_path_buf(), Arc::clone(&reopen));
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || write_lines(&path, file, &rx, &seen))?;
        let hash_key = if hash {
            Some(crate::util::random::bytes(32)?)
        } else {
            None
        };
        Ok(AccessLog {
            tx,
            dropped: AtomicU64::new(0),
            reopen,
            hash_key,
        })
    }

    /// SIGHUP: the next line goes to a file opened afresh at the same path.
    pub fn reopen(&self) {
        self.reopen.fetch_add(1, Relaxed);
    }

    /// Logs a request that ended now with `status` and `bytes` sent.
    pub fn log(&self, e: &Entry, status: u16, bytes: u64) {
        let line = line(&self.addr(e), e, status, bytes, e.since.elapsed());
        self.send(Msg::Line(line));
    }

    /// An HLS request of `mount` (segments of `target` seconds) ended now: it joins its
    /// session's line.
    pub fn log_hls(&self, e: Entry, mount: &str, target: Duration, status: u16, bytes: u64) {
        let addr = self.addr(&e);
        let key = format!("{addr}\n{}\n{}\n{mount}", e.agent, e.user);
        let gap = target.saturating_mul(2).max(Duration::from_secs(2));
        self.send(Msg::Hls(Box::new(HlsRequest {
            key,
            addr,
            entry: e,
            status,
            bytes,
            gap,
        })));
    }

    /// The address as written: itself, or its keyed hash.
    fn addr(&self, e: &Entry) -> String {
        match &self.hash_key {
            Some(key) => {
                let mac = crate::link::wire::hmac(key, &[e.addr.to_string().as_bytes()]);
                crate::util::random::to_hex(mac.get(..8).unwrap_or_default())
            }
            None => e.addr.to_string(),
        }
    }

    fn send(&self, m: Msg) {
        if self.tx.try_send(m).is_err() {
            self.dropped.fetch_add(1, Relaxed);
        }
    }
}

/// One line: `addr - user [time] "request" status bytes "referer" "agent" seconds`.
fn line(addr: &str, e: &Entry, status: u16, bytes: u64, lasted: Duration) -> String {
    // The user is the one field without quotes: a space in it would shift the rest.
    let user = match field(&e.user).replace(' ', "_") {
        u if u.is_empty() => "-".to_string(),
        u => u,
    };
    format!(
        "{addr} - {user} [{}] \"{}\" {status} {bytes} \"{}\" \"{}\" {}\n",
        crate::util::timefmt::clf(e.began),
        field(&e.request),
        field(&e.referer),
        field(&e.agent),
        lasted.as_secs()
    )
}

/// The HLS sessions being built, folded in and written out by the writer thread.
#[derive(Default)]
struct HlsSessions(HashMap<String, HlsSession>);

impl HlsSessions {
    /// Folds a request in; a line to write now when there is no room for its session.
    fn add(&mut self, r: HlsRequest) -> Option<String> {
        let HlsRequest {
            key,
            addr,
            entry,
            status,
            bytes,
            gap,
        } = r;
        if let Some(s) = self.0.get_mut(&key) {
            s.bytes = s.bytes.saturating_add(bytes);
            s.last = Instant::now();
            return None;
        }
        if self.0.len() >= MAX_HLS_SESSIONS {
            return Some(line(&addr, &entry, status, bytes, entry.since.elapsed()));
        }
        let session = HlsSession {
            addr,
            entry,
            status,
            bytes,
            last: Instant::now(),
            gap,
        };
        self.0.insert(key, session);
        None
    }

    /// The lines of sessions that ended (all of them with `all`).
    fn ended(&mut self, all: bool) -> Vec<String> {
        let mut out = Vec::new();
        self.0.retain(|_, s| {
            if all || s.last.elapsed() > s.gap {
                let lasted = s.last.saturating_duration_since(s.entry.since);
                out.push(line(&s.addr, &s.entry, s.status, s.bytes, lasted));
                return false;
            }
            true
        });
        out
    }
}

/// Text from a peer inside a log field: quotes and backslashes escaped, control characters
/// dropped, so a line stays one line with its fields where the readers look for them.
fn field(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("-access-log {}: {e}", path.display())))
}

/// The `access-log` thread: writes lines in batches, flushes when the queue runs dry or a
/// second passed, reopens the file after SIGHUP. A failing disk is logged (once a minute)
/// and the lines of that moment are lost; listeners never wait for it.
fn write_lines(path: &Path, file: File, rx: &Receiver<Msg>, reopen: &AtomicU64) {
    let mut out = BufWriter::with_capacity(64 * 1024, file);
    let mut generation = reopen.load(Relaxed);
    let mut last_flush = Instant::now();
    let mut last_sweep = Instant::now();
    let mut hls = HlsSessions::default();
    let mut last_error: Option<Instant> = None;
    let mut complain = |e: &io::Error| {
        if last_error.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
            log::error!("-access-log {}: {e}", path.display());
            last_error = Some(Instant::now());
        }
    };
    loop {
        let got = rx.recv_timeout(FLUSH_EVERY);
        let ending = matches!(got, Err(RecvTimeoutError::Disconnected));
        let mut lines = match got {
            Ok(Msg::Line(l)) => vec![l],
            Ok(Msg::Hls(r)) => hls.add(*r).into_iter().collect(),
            Err(_) => Vec::new(),
        };
        if last_sweep.elapsed() >= FLUSH_EVERY || ending {
            lines.extend(hls.ended(ending));
            last_sweep = Instant::now();
        }
        for l in &lines {
            if let Err(e) = out.write_all(l.as_bytes()) {
                complain(&e);
            }
        }
        let idle = rx.is_empty();
        if idle || last_flush.elapsed() >= FLUSH_EVERY {
            if let Err(e) = out.flush() {
                complain(&e);
            }
            last_flush = Instant::now();
        }
        let now = reopen.load(Relaxed);
        if now != generation {
            generation = now;
            let _ = out.flush();
            match open(path) {
                Ok(f) => {
                    out = BufWriter::with_capacity(64 * 1024, f);
                    log::info!("reload: -access-log {} reopened", path.display());
                }
                Err(e) => complain(&e),
            }
        }
        if ending {
            let _ = out.flush();
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_stay_in_their_quotes() {
        assert_eq!(field("VLC \"x\"\n\\"), "VLC \\\"x\\\"\\\\");
    }

    #[test]
    fn hashed_addresses_are_not_written_and_stay_the_same_within_a_run() {
        let dir = std::env::temp_dir().join(format!("ringcast-access-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("access.log");
        let log = AccessLog::start(&path, true).unwrap();
        let req = Request {
            method: "GET".into(),
            path: "/live?pass=secret".into(),
            minor: 1,
            headers: vec![(
                "Authorization".into(),
                crate::http::auth::basic_header("an na", "pw"),
            )],
            leftover: Vec::new(),
        };
        for _ in 0..2 {
            log.log(&Entry::new("192.0.2.7".parse().unwrap(), &req), 200, 10);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut text = String::new();
        while text.lines().count() < 2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            text = std::fs::read_to_string(&path).unwrap_or_default();
        }
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            !text.contains("192.0.2.7") && !text.contains("secret"),
            "{text}"
        );
        let token = lines[0].split(' ').next().unwrap();
        assert!(
            token.len() == 16 && token.bytes().all(|b| b.is_ascii_hexdigit()),
            "{text}"
        );
        assert!(
            lines[1].starts_with(token),
            "the same address, the same token: {text}"
        );
        assert!(lines[0].contains(" - an_na ["), "{text}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
