//! `-url`: pull an Icecast, SHOUTcast or any HTTP stream.
//!
//! Our own small client (`client.rs`, `http://` or `https://`) rather than ureq, because old
//! SHOUTcast servers answer `ICY 200 OK` (which ureq rejects as a bad status line) and
//! because we need the raw socket: `poll` for short waits, our own stall detection (no data
//! for `-source-timeout`) instead of a total timeout. HTTP/1.0 keeps the body un-chunked. We ask for ICY metadata
//! (`Icy-MetaData: 1`), strip the blocks from the audio and keep the title.

use super::{Close, Got, Input};
use crate::http::auth;
use crate::http::client::{self, Head};
use crate::http::conn::Conn;
use crate::http::url::Url;
use crate::icy::meta::Info;
use crate::icy::Stripper;
use crate::stream::Stream;
use crate::util::deadline::Deadline;
use log::info;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One dial of the upstream: connect, TLS handshake, request and response head.
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_REDIRECTS: u32 = 5;
/// The longest `connect` can take, redirects included (the watchdog waits this long).
pub const CONNECT_BOUND: Duration = Duration::from_secs(10 * (MAX_REDIRECTS as u64 + 1));

pub struct UpstreamInput {
    conn: Option<Conn>,
    stripper: Option<Stripper>,
    /// Audio bytes ready to hand out.
    pending: Vec<u8>,
    raw: Vec<u8>,
    last_data: Instant,
    stall: Duration,
    stream: Arc<Stream>,
}

impl UpstreamInput {
    pub fn connect(url: &Url, stall: Duration, stream: &Arc<Stream>) -> io::Result<UpstreamInput> {
        let mut url = url.clone();
        for _ in 0..=MAX_REDIRECTS {
            let (conn, head, body) = request(&url)?;
            match head.status {
                200 => return Ok(Self::start(conn, head, body, stall, stream, &url)),
                301 | 302 | 303 | 307 | 308 => {
                    url = redirect(&url, head.get("Location").unwrap_or_default())?;
                    info!("upstream redirects to {}", url.redacted());
                }
                s => {
                    return Err(io::Error::other(format!(
                        "upstream answered {s} {:?}",
                        head.reason
                    )))
                }
            }
        }
        Err(io::Error::other("upstream redirects too often"))
    }

    fn start(
        conn: Conn,
        head: Head,
        body: Vec<u8>,
        stall: Duration,
        stream: &Arc<Stream>,
        url: &Url,
    ) -> UpstreamInput {
        let metaint = head
            .get("icy-metaint")
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|&n| n > 0);
        stream.meta.merge_info(&Info::from_headers(|n| head.get(n)));
        info!(
            "upstream {} connected: {:?} ({:?}{})",
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
            stream: Arc::clone(stream),
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
                    if self.stream.meta.set_title(&title) {
                        info!("upstream title: {title:?}");
                    }
                }
            }
        }
    }
}

impl Input for UpstreamInput {
    fn read_timeout(&mut self, buf: &mut [u8], wait: Duration) -> io::Result<Got> {
        loop {
            if !self.pending.is_empty() {
                return Ok(Got::from_len(super::take_pending(&mut self.pending, buf)));
            }
            let Some(conn) = self.conn.as_mut() else {
                return Ok(Got::End);
            };
            self.raw.resize(16 * 1024, 0);
            let Some(n) = conn.read_ready(&mut self.raw, wait)? else {
                if self.last_data.elapsed() >= self.stall {
                    return Err(io::Error::other(format!(
                        "upstream stalled: no data for {:.0}s (-source-timeout)",
                        self.stall.as_secs_f64()
                    )));
                }
                return Ok(Got::Nothing);
            };
            if n == 0 {
                return Ok(Got::End);
            }
            self.last_data = Instant::now();
            let raw = std::mem::take(&mut self.raw);
            self.take(raw.get(..n).unwrap_or_default());
            self.raw = raw;
            // A read of nothing but metadata leaves no audio: wait again.
        }
    }

    fn close(&mut self, _how: Close) {
        self.conn = None;
    }
}

/// Where a redirect from `from` to `location` leads. It may not drop TLS (`https://` to
/// `http://` would hand the stream, and any credentials, to whoever sits on the path), nor
/// lead anywhere but HTTP(S).
fn redirect(from: &Url, location: &str) -> io::Result<Url> {
    let next = if location.starts_with('/') {
        Url {
            path: location.to_string(),
            ..from.clone()
        }
    } else {
        Url::parse(location, 80).map_err(io::Error::other)?
    };
    if from.scheme == "https" && next.scheme != "https" {
        return Err(io::Error::other(format!(
            "upstream redirects from https:// to {}: refused",
            next.redacted()
        )));
    }
    if !matches!(next.scheme.as_str(), "http" | "https") {
        return Err(io::Error::other(format!(
            "upstream redirects to {}: not http:// or https://",
            next.redacted()
        )));
    }
    Ok(next)
}

/// Connects, sends a GET, reads the response head, all within [`DIAL_TIMEOUT`]. Returns the
/// leftover body bytes too.
fn request(url: &Url) -> io::Result<(Conn, Head, Vec<u8>)> {
    let deadline = Deadline::after(DIAL_TIMEOUT);
    let mut conn = Conn::connect(url, deadline)?;
    let mut req = format!(
        "GET {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: {}\r\nAccept: */*\r\nIcy-MetaData: 1\r\n",
        url.path,
        url.authority(),
        client::user_agent()
    );
    if let Some(user) = &url.user {
        let header = auth::basic_header(user, url.password.as_deref().unwrap_or(""));
        req.push_str(&format!("Authorization: {header}\r\n"));
    }
    req.push_str("\r\n");
    let (head, body) = client::exchange(&mut conn, req.as_bytes(), deadline)?;
    conn.set_read_timeout(None)?;
    conn.set_write_timeout(None)?;
    Ok((conn, head, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_keep_tls_and_stay_on_http() {
        let https = Url::parse("https://radio.example/live", 80).unwrap();
        let http = Url::parse("http://radio.example/live", 80).unwrap();
        assert!(redirect(&https, "http://radio.example/live").is_err());
        assert!(redirect(&http, "ftp://radio.example/live").is_err());
        let up = redirect(&http, "https://cdn.example/live").unwrap();
        assert_eq!(
            (up.scheme.as_str(), up.host.as_str()),
            ("https", "cdn.example")
        );
        let same = redirect(&https, "/other").unwrap();
        assert_eq!(
            (same.scheme.as_str(), same.path.as_str()),
            ("https", "/other")
        );
    }
}
