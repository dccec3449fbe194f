//! `-url`: pull an Icecast, SHOUTcast or any HTTP stream.
//!
//! A small HTTP/1.0 client on `std::net` rather than ureq, because old SHOUTcast servers
//! answer `ICY 200 OK` (which ureq rejects as a bad status line) and because we need the raw
//! socket: `poll` for short waits, our own stall detection (no data for `-source-timeout`)
//! instead of a total timeout. HTTP/1.0 keeps the body un-chunked. We ask for ICY metadata
//! (`Icy-MetaData: 1`), strip the blocks from the audio and keep the title.

use super::{timed_out, Close, Input};
use crate::auth;
use crate::icy::Stripper;
use crate::meta::Info;
use crate::shared::Shared;
use crate::url::Url;
use log::info;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_HEAD: usize = 16 * 1024;
const MAX_REDIRECTS: usize = 5;

pub struct UpstreamInput {
    conn: Option<TcpStream>,
    stripper: Option<Stripper>,
    /// Audio bytes ready to hand out.
    pending: Vec<u8>,
    raw: Vec<u8>,
    last_data: Instant,
    stall: Duration,
    shared: Arc<Shared>,
}

/// The parts of a response head we use.
struct Head {
    status: u16,
    reason: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl UpstreamInput {
    pub fn connect(url: &Url, stall: Duration, shared: &Arc<Shared>) -> io::Result<UpstreamInput> {
        let mut url = url.clone();
        for _ in 0..=MAX_REDIRECTS {
            let (conn, head, body) = request(&url)?;
            match head.status {
                200 => return Ok(Self::start(conn, head, body, stall, shared, &url)),
                301 | 302 | 303 | 307 | 308 => {
                    let loc = head.get("Location").unwrap_or_default();
                    url = if loc.starts_with('/') {
                        Url {
                            path: loc.to_string(),
                            ..url
                        }
                    } else {
                        Url::parse(loc, 80).map_err(io::Error::other)?
                    };
                    info!("upstream redirects to {}", url.redacted());
                }
                s => {
                    return Err(io::Error::other(format!(
                        "upstream answered {s} {}",
                        head.reason
                    )))
                }
            }
        }
        Err(io::Error::other("upstream redirects too often"))
    }

    fn start(
        conn: TcpStream,
        head: Head,
        body: Vec<u8>,
        stall: Duration,
        shared: &Arc<Shared>,
        url: &Url,
    ) -> UpstreamInput {
        let metaint = head
            .get("icy-metaint")
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|&n| n > 0);
        shared.meta.merge_info(&Info::from_headers(|n| head.get(n)));
        info!(
            "upstream {} connected: {} ({}{})",
            url.redacted(),
            head.reason.trim(),
            head.get("Content-Type").unwrap_or("no Content-Type"),
            metaint
                .map(|m| format!(", ICY metadata every {m} bytes"))
                .unwrap_or_default()
        );
        let mut input = UpstreamInput {
            conn: Some(conn),
            stripper: metaint.map(Stripper::new),
            pending: Vec::new(),
            raw: Vec::new(),
            last_data: Instant::now(),
            stall,
            shared: Arc::clone(shared),
        };
        input.take(&body);
        input
    }

    /// Moves raw upstream bytes to `pending`, taking out metadata.
    fn take(&mut self, raw: &[u8]) {
        match &mut self.stripper {
            None => self.pending.extend_from_slice(raw),
            Some(st) => {
                if let Some(title) = st.feed(raw, &mut self.pending) {
                    if self.shared.meta.set_title(&title) {
                        info!("upstream title: {title}");
                    }
                }
            }
        }
    }
}

impl Input for UpstreamInput {
    fn read_timeout(&mut self, buf: &mut [u8], wait: Duration) -> io::Result<usize> {
        loop {
            if !self.pending.is_empty() {
                let n = self.pending.len().min(buf.len());
                buf[..n].copy_from_slice(&self.pending[..n]);
                self.pending.drain(..n);
                return Ok(n);
            }
            let Some(conn) = self.conn.as_mut() else {
                return Ok(0);
            };
            if !crate::sys::wait_readable(conn, wait)? {
                if self.last_data.elapsed() >= self.stall {
                    return Err(io::Error::other(format!(
                        "upstream stalled: no data for {:.0}s (-source-timeout)",
                        self.stall.as_secs_f64()
                    )));
                }
                return Err(timed_out());
            }
            self.raw.resize(16 * 1024, 0);
            let n = match conn.read(&mut self.raw) {
                Ok(0) => return Ok(0),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.last_data = Instant::now();
            let raw = std::mem::take(&mut self.raw);
            self.take(&raw[..n]);
            self.raw = raw;
            // A read of nothing but metadata leaves no audio: wait again.
        }
    }

    fn close(&mut self, _how: Close) {
        self.conn = None;
    }
}

/// Connects, sends a GET, reads the response head. Returns the leftover body bytes too.
fn request(url: &Url) -> io::Result<(TcpStream, Head, Vec<u8>)> {
    let addrs: Vec<_> = url.authority().to_socket_addrs()?.collect();
    let mut last = io::Error::other(format!("{}: no address", url.host));
    let mut conn = None;
    for a in addrs {
        match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
            Ok(c) => {
                conn = Some(c);
                break;
            }
            Err(e) => last = e,
        }
    }
    let mut conn = conn.ok_or(last)?;
    conn.set_read_timeout(Some(HEAD_TIMEOUT))?;
    conn.set_write_timeout(Some(HEAD_TIMEOUT))?;
    let mut req = format!(
        "GET {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: ringcast/{}\r\nAccept: */*\r\nIcy-MetaData: 1\r\n",
        url.path,
        url.authority(),
        env!("CARGO_PKG_VERSION")
    );
    if let Some(user) = &url.user {
        let header = auth::basic_header(user, url.password.as_deref().unwrap_or(""));
        req.push_str(&format!("Authorization: {header}\r\n"));
    }
    req.push_str("\r\n");
    conn.write_all(req.as_bytes())?;

    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    let end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break (i, 4);
        }
        if let Some(i) = find(&buf, b"\n\n") {
            break (i, 2);
        }
        if buf.len() > MAX_HEAD {
            return Err(io::Error::other("upstream response head too large"));
        }
        match conn.read(&mut chunk)? {
            0 => return Err(io::Error::other("upstream closed before answering")),
            n => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = parse_head(&buf[..end.0])?;
    let body = buf[end.0 + end.1..].to_vec();
    conn.set_read_timeout(None)?;
    Ok((conn, head, body))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `HTTP/1.x 200 OK` or SHOUTcast's `ICY 200 OK`, then `Name: value` lines.
fn parse_head(bytes: &[u8]) -> io::Result<Head> {
    let text = String::from_utf8_lossy(bytes);
    let mut lines = text.lines();
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let proto = parts.next().unwrap_or_default();
    if !(proto.starts_with("HTTP/") || proto == "ICY") {
        return Err(io::Error::other(format!(
            "upstream did not answer HTTP: {status_line:?}"
        )));
    }
    let status = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other(format!("bad status line {status_line:?}")))?;
    let reason = parts.next().unwrap_or_default().to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    Ok(Head {
        status,
        reason,
        headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_http_and_icy_status_lines() {
        let h = parse_head(b"ICY 200 OK\r\nicy-name:Old Radio\r\nicy-metaint:8192").unwrap();
        assert_eq!(h.status, 200);
        assert_eq!(h.get("ICY-NAME"), Some("Old Radio"));
        assert_eq!(h.get("icy-metaint"), Some("8192"));
        let h = parse_head(b"HTTP/1.1 404 Not Found\r\nServer: x").unwrap();
        assert_eq!((h.status, h.reason.as_str()), (404, "Not Found"));
        assert!(parse_head(b"SSH-2.0-OpenSSH").is_err());
    }
}
