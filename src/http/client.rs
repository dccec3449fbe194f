//! The HTTP client side, small and on our own [`Conn`]: sending a request head and reading
//! the response head (HTTP/1.x, or SHOUTcast's `ICY 200 OK`), and one-shot `GET`s for short
//! answers (the link's challenge, Icecast's admin metadata call).
//!
//! Streams (`-url`, the link) then read the body straight from the connection; see the
//! README's design notes for why this is not ureq.

use crate::http::conn::Conn;
use crate::http::url::Url;
use crate::util::deadline::Deadline;
use std::io::{self, Read, Write};
use std::time::Duration;

const MAX_HEAD: usize = 16 * 1024;
/// One-shot answers are small (a challenge line, an admin page).
const MAX_SHORT_BODY: usize = 64 * 1024;

/// The parts of a response head we use.
#[derive(Debug)]
pub struct Head {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
}

impl Head {
    pub fn get(&self, name: &str) -> Option<&str> {
        super::header(&self.headers, name)
    }

    /// Whether the body comes in chunks (as a reverse proxy sends a stream of unknown length).
    pub fn is_chunked(&self) -> bool {
        crate::http::chunked::is_chunked(self.get("Transfer-Encoding"))
    }
}

/// Writes `request` (a whole request head, with any body bytes), then reads the response
/// head, all before `deadline` (a server trickling its head cannot hold us past it).
/// Returns the head and the body bytes that came with it.
pub fn exchange(
    conn: &mut Conn,
    request: &[u8],
    deadline: Deadline,
) -> io::Result<(Head, Vec<u8>)> {
    deadline.arm(conn.tcp())?;
    conn.write_all(request)?;
    conn.flush()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    let (end, sep) = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break (i, 4);
        }
        if let Some(i) = find(&buf, b"\n\n") {
            break (i, 2);
        }
        if buf.len() > MAX_HEAD {
            return Err(io::Error::other("response head too large"));
        }
        deadline
            .arm(conn.tcp())
            .map_err(|e| io::Error::new(e.kind(), "no answer in time"))?;
        match conn.read(&mut chunk) {
            Ok(0) => return Err(io::Error::other("closed before answering")),
            Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(io::Error::new(e.kind(), "no answer in time"))
            }
            // A TLS record is still coming in (see `Conn::read`): re-arm and read on.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    };
    let head = parse_head(buf.get(..end).unwrap_or_default())?;
    let body = end.checked_add(sep).and_then(|at| buf.get(at..));
    Ok((head, body.unwrap_or_default().to_vec()))
}

/// A short `GET` of `path` (with its query) on `url`'s server: connecting, the TLS
/// handshake, the answer and its body all within `timeout` in total. Returns the head and
/// the whole body.
pub fn get(
    url: &Url,
    path: &str,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> io::Result<(Head, Vec<u8>)> {
    get_from(url, None, path, headers, timeout)
}

/// [`get`] from local address `from` (a link path's `-link-from`).
pub fn get_from(
    url: &Url,
    from: Option<std::net::IpAddr>,
    path: &str,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> io::Result<(Head, Vec<u8>)> {
    let deadline = Deadline::after(timeout);
    let mut conn = Conn::connect_from(url, from, deadline)?;
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {}\r\nConnection: close\r\n",
        url.authority(),
        user_agent()
    );
    for (name, value) in headers {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    req.push_str("\r\n");
    let (head, first) = exchange(&mut conn, req.as_bytes(), deadline)?;
    let length = head
        .get("Content-Length")
        .and_then(|v| v.trim().parse().ok());
    let mut body = Vec::new();
    let rest = io::Cursor::new(first).chain(DeadlineReader(conn, deadline));
    let limit = length.unwrap_or(MAX_SHORT_BODY).min(MAX_SHORT_BODY) as u64;
    if head.is_chunked() {
        crate::http::chunked::ChunkedReader::new(rest)
            .take(limit)
            .read_to_end(&mut body)?;
    } else {
        rest.take(limit).read_to_end(&mut body)?;
    }
    Ok((head, body))
}

/// Reads from a connection, each read armed with what is left before the deadline.
struct DeadlineReader(Conn, Deadline);

impl Read for DeadlineReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.1.arm_read(self.0.tcp())?;
        self.0.read(buf)
    }
}

pub fn user_agent() -> String {
    format!("ringcast/{}", env!("CARGO_PKG_VERSION"))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `HTTP/1.x 200 OK` or SHOUTcast's `ICY 200 OK`, then `Name: value` lines.
pub fn parse_head(bytes: &[u8]) -> io::Result<Head> {
    let text = String::from_utf8_lossy(bytes);
    let mut lines = text.lines();
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let proto = parts.next().unwrap_or_default();
    if !(proto.starts_with("HTTP/") || proto == "ICY") {
        return Err(io::Error::other(format!(
            "the server did not answer HTTP: {status_line:?}"
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
    fn response_heads_take_any_bytes() {
        crate::util::fuzz::run(
            "client::parse_head",
            &[
                b"ICY 200 OK\r\nicy-metaint:8192",
                b"HTTP/1.1 99999 \xc3\r\n:\r\n",
            ],
            256,
            |b| {
                if let Ok(h) = parse_head(b) {
                    let _ = (h.get("icy-metaint"), h.is_chunked());
                }
            },
        );
    }

    #[test]
    fn parses_http_and_icy_status_lines() {
        let h = parse_head(b"ICY 200 OK\r\nicy-name:Old Radio\r\nicy-metaint:8192").unwrap();
        assert_eq!(h.status, 200);
        assert_eq!(h.get("ICY-NAME"), Some("Old Radio"));
        assert_eq!(h.get("icy-metaint"), Some("8192"));
        let h = parse_head(b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: Chunked").unwrap();
        assert_eq!((h.status, h.reason.as_str()), (404, "Not Found"));
        assert!(h.is_chunked());
        assert!(parse_head(b"SSH-2.0-OpenSSH").is_err());
    }
}
