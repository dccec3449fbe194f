//! The small HTTP/1.x front end: read one request head with a deadline and a size limit,
//! parse it with `httparse`, and write simple responses. (Why not tiny_http: docs/design.md.)
//! A stream response runs until the connection closes. A short answer (status, playlists,
//! HLS) may keep the connection for the next request when the route loop says so
//! (`server/keepalive.rs`); every other response closes it.

use crate::http::conn::Conn;
use crate::util::deadline::{Deadline, Graced, Late};
use std::cell::Cell;
use std::io::{self, Read, Write};
use std::time::Duration;

/// How long a kept connection may wait for its next request (sent as `Keep-Alive:
/// timeout=`). Players reload a live playlist about every target duration (RFC 8216, 6.3.4).
pub const KEEP_IDLE: Duration = Duration::from_secs(15);

thread_local! {
    /// Whether the answer being written leaves the connection open for the next request.
    /// The route loop sets it before each request (`server/keepalive.rs`); a thread serves
    /// one connection, so this is that connection's state, and every writer of a response
    /// head reads it here instead of having it passed through every handler.
    static KEEP: Cell<bool> = const { Cell::new(false) };
}

/// Lets the next answer keep the connection open (`true`) or close it.
pub fn set_keep_alive(on: bool) {
    KEEP.with(|k| k.set(on));
}

/// Whether the answer being written keeps the connection open.
pub fn keeps_alive() -> bool {
    KEEP.with(Cell::get)
}

/// The largest request head we read. Real players send a few hundred bytes.
pub const MAX_HEAD: usize = 8 * 1024;
const MAX_HEADERS: usize = 48;

/// One parsed request head.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    pub headers: Vec<(String, String)>,
    /// Bytes read after the head (the start of a body).
    pub leftover: Vec<u8>,
}

impl Request {
    /// The path without its query.
    pub fn path_only(&self) -> &str {
        self.path.split('?').next().unwrap_or_default()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        super::header(&self.headers, name)
    }
}

/// Why no request could be read.
#[derive(Debug)]
pub enum HeadError {
    /// The peer closed or reset before sending a whole head.
    Closed,
    /// Not finished within the header timeout.
    Timeout,
    /// Not finished within the grace, and its address has too many slow connections.
    TooSlow,
    /// More than `MAX_HEAD` bytes or too many header lines.
    TooLarge,
    /// Not HTTP.
    Malformed(String),
    Io(io::Error),
}

/// Reads and parses one request head; bytes after it (a body) are left unread. A head
/// that takes longer than `phase`'s grace asks it whether to go on (`TooSlow` if not).
pub fn read_request(conn: &mut Conn, phase: &mut Graced<'_>) -> Result<Request, HeadError> {
    read_request_after(conn, phase, Vec::with_capacity(1024))
}

/// [`read_request`] on a kept connection: `buf` holds what came after the last request's
/// head (a pipelined request's start).
pub fn read_request_after(
    conn: &mut Conn,
    phase: &mut Graced<'_>,
    mut buf: Vec<u8>,
) -> Result<Request, HeadError> {
    if let Some(req) = parse_request(&buf)? {
        return Ok(req);
    }
    let mut chunk = [0u8; 1024];
    let late = |phase: &mut Graced<'_>| match phase.timed_out() {
        Late::GoOn => None,
        Late::Over => Some(HeadError::Timeout),
        Late::Refused => Some(HeadError::TooSlow),
    };
    loop {
        match phase.current().arm_read(conn.tcp()) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::TimedOut => match late(phase) {
                None => continue,
                Some(e) => return Err(e),
            },
            Err(e) => return Err(HeadError::Io(e)),
        }
        // Never read past MAX_HEAD + 1 bytes: one byte over says "too large".
        let room = (MAX_HEAD + 1).saturating_sub(buf.len()).min(chunk.len());
        let n = match conn.read(chunk.get_mut(..room).unwrap_or_default()) {
            Ok(0) => return Err(HeadError::Closed),
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                match late(phase) {
                    None => continue,
                    Some(e) => return Err(e),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if is_disconnect(&e) => return Err(HeadError::Closed),
            Err(e) => return Err(HeadError::Io(e)),
        };
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        if let Some(req) = parse_request(&buf)? {
            return Ok(req);
        }
    }
}

/// Parses the request head at the front of `buf`: `Ok(None)` while it is incomplete (and
/// within [`MAX_HEAD`]), the request with any bytes after the head, or why it is not one.
pub fn parse_request(buf: &[u8]) -> Result<Option<Request>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(head_len)) => Ok(Some(Request {
            leftover: buf.get(head_len..).unwrap_or_default().to_vec(),
            method: req.method.unwrap_or_default().to_string(),
            path: req.path.unwrap_or("/").to_string(),
            minor: req.version.unwrap_or(0),
            headers: req
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_string(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect(),
        })),
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err(HeadError::TooLarge),
        Err(e) => Err(HeadError::Malformed(e.to_string())),
    }
}

/// A listener or peer hanging up: a normal end, logged at debug.
pub fn is_disconnect(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
    )
}

/// A write that timed out because the peer stopped reading.
pub fn is_stalled(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// The reason phrase of every status ringcast sends (RFC 9110), and a class's own for any
/// other.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => match status / 100 {
            1 => "Informational",
            2 => "Success",
            3 => "Redirection",
            4 => "Client Error",
            _ => "Server Error",
        },
    }
}

/// The status line and headers of a response: one that ends when the connection closes,
/// or, when [`keeps_alive`], a short answer (with its `Content-Length`) after which the
/// connection waits for the next request.
pub fn head<V: AsRef<str>>(
    minor: u8,
    status: u16,
    content_type: &str,
    extra: &[(&str, V)],
) -> String {
    let mut h = format!(
        "HTTP/1.{} {status} {}\r\nServer: ringcast/{}\r\nContent-Type: {content_type}\r\n",
        minor.min(1),
        reason(status),
        env!("CARGO_PKG_VERSION"),
    );
    for (name, value) in extra {
        h.push_str(name);
        h.push_str(": ");
        h.push_str(value.as_ref());
        h.push_str("\r\n");
    }
    if keeps_alive() {
        h.push_str("Connection: keep-alive\r\nKeep-Alive: timeout=");
        h.push_str(&KEEP_IDLE.as_secs().to_string());
        h.push_str("\r\n\r\n");
    } else {
        h.push_str("Connection: close\r\n\r\n");
    }
    h
}

/// Writes a short text response (`body` and a line end) and closes the connection cleanly.
pub fn respond(conn: &mut Conn, minor: u8, status: u16, body: &str, extra: &[(&str, &str)]) {
    let text = format!("{body}\n");
    send(
        conn,
        minor,
        status,
        "text/plain; charset=utf-8",
        extra,
        &text,
        true,
    );
}

/// Writes a complete `200` response to `req` (no body for `HEAD`) and closes cleanly.
pub fn reply(
    conn: &mut Conn,
    req: &Request,
    content_type: &str,
    extra: &[(&str, &str)],
    body: &str,
) {
    let with_body = req.method != "HEAD";
    send(conn, req.minor, 200, content_type, extra, body, with_body);
}

/// A response with a fixed body: `Content-Length` lets a client that sent a body or
/// pipelined see the end at once; then a graceful close. A `HEAD` answer has the length
/// without the body.
fn send(
    conn: &mut Conn,
    minor: u8,
    status: u16,
    content_type: &str,
    extra: &[(&str, &str)],
    body: &str,
    with_body: bool,
) {
    let length = body.len().to_string();
    let mut headers: Vec<(&str, &str)> = extra.to_vec();
    headers.push(("Content-Length", &length));
    let head = head(minor, status, content_type, &headers);
    let body = if with_body { body.as_bytes() } else { &[] };
    let wrote = write_parts(conn, &[head.as_bytes(), body]);
    finish_after(conn, wrote);
}

/// Ends a short answer whose bytes were written with `wrote`: a failed write ends the
/// connection (a client that does not read keeps nothing for long).
pub fn finish_after(conn: &mut Conn, wrote: io::Result<()>) {
    match wrote {
        Ok(()) => finish(conn),
        Err(_) => set_keep_alive(false),
    }
}

/// Writes a response's parts (its head, its body) as one gathered write: neither copied
/// into one buffer first (a segment is 60 KB) nor sent as two packets.
pub fn write_parts(conn: &mut Conn, parts: &[&[u8]]) -> io::Result<()> {
    let mut slices: Vec<io::IoSlice<'_>> = parts.iter().map(|p| io::IoSlice::new(p)).collect();
    let mut bufs = &mut slices[..];
    while !bufs.is_empty() {
        match conn.send_vectored(bufs, false) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => io::IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Ends a complete short answer: flushed for the next request on a kept connection, else
/// closed gracefully.
pub fn finish(conn: &mut Conn) {
    if keeps_alive() {
        let _ = conn.flush();
    } else {
        close_gracefully(conn);
    }
}

/// How long [`close_gracefully`] may wait for the peer, in all: a peer that trickles bytes
/// cannot hold the connection (and its thread) longer than this.
pub const LINGER: Duration = Duration::from_secs(2);

/// Ends a response: half-close, then read (at most 64 KiB, for at most [`LINGER`] in all)
/// until the peer closes, so the kernel does not answer unread request bytes with a RST that
/// would destroy the tail of what we sent.
pub fn close_gracefully(conn: &mut Conn) {
    let _ = conn.flush();
    conn.shutdown_write();
    let deadline = Deadline::after(LINGER);
    let mut sink = [0u8; 2048];
    let mut budget: usize = 64 * 1024;
    // What comes now is discarded, so it is read off the socket as it is (for TLS too).
    let mut sock = conn.tcp();
    while budget > 0 {
        if deadline.arm_read(sock).is_err() {
            break;
        }
        match sock.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => budget = budget.saturating_sub(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::fuzz;

    #[test]
    fn every_status_sent_has_its_reason_phrase() {
        // Every status code the source sends, found by reading it: each has its own phrase.
        for code in [
            200, 206, 304, 400, 401, 403, 404, 405, 408, 416, 429, 431, 500, 503,
        ] {
            let r = reason(code);
            assert!(
                !["Success", "Client Error", "Server Error"].contains(&r),
                "{code}: {r}"
            );
        }
        assert_eq!(reason(403), "Forbidden");
        assert_eq!(reason(418), "Client Error");
    }

    #[test]
    fn request_heads_parse_or_fail_cleanly_on_any_bytes() {
        let seeds: &[&[u8]] = &[
            b"GET /admin.cgi?a=%1\xc3\xa9 HTTP/1.0\r\n\r\n",
            b"GET /live HTTP/1.1\r\nHost: x\r\nIcy-MetaData: 1\r\n\r\nbody",
            b"SOURCE /live HTTP/1.0\r\nAuthorization: Basic c291cmNlOmhhY2ttZQ==\r\n\r\n",
            b"PUT /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\nUser-Agent: \xff\xfe\r\n\r\n",
        ];
        fuzz::run("http::parse_request", seeds, 512, |b| {
            if let Ok(Some(req)) = parse_request(b) {
                assert!(req.leftover.len() <= b.len());
                // Everything a route looks at must be usable without panicking.
                let _ = req.path_only();
                let _ = crate::http::url::query_param(&req.path, "mount");
                let _ = req
                    .header("Authorization")
                    .and_then(crate::http::auth::parse_basic);
            }
        });
    }
}
