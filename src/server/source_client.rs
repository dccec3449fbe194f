//! Source clients: encoders push a stream to ringcast as they push to Icecast. A connection
//! thread authenticates the client (`PUT`/`SOURCE` with Basic auth on the HTTP port, or
//! SHOUTcast v1's password line on port+1), claims its stream's [`SourceClientSlot`] and forwards
//! the body into it; the stream's input (`input/push.rs`) reads it from there.
//!
//! [`SourceClientSlot`]: crate::stream::source_client_slot::SourceClientSlot

use super::logins::{answer_login, source_login};
use super::Server;
use crate::http::chunked::Dechunker;
use crate::http::conn::Conn;
use crate::http::server::Request;
use crate::icy::meta::Info;
use crate::server::peers::{Login, Pending};
use crate::stream::Stream;
use crate::util::deadline::Deadline;
use crossbeam_channel::{SendTimeoutError, Sender};
use log::{info, warn};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The most `icy-*` header lines a SHOUTcast v1 source may send.
const MAX_V1_HEADERS: usize = 64;

/// Serves an Icecast source client (`PUT` or `SOURCE`) on the HTTP port.
pub fn serve_source(
    mut conn: Conn,
    peer: SocketAddr,
    req: &Request,
    server: &Server,
    stream: &Stream,
) {
    let cfg = &stream.cfg;
    let login = server.peers.login(peer.ip(), "source login", None, || {
        let (u, p) = req
            .header("Authorization")
            .and_then(crate::http::auth::parse_basic)?;
        Some(source_login(cfg, &u, &p))
    });
    if !answer_login(&mut conn, peer, 0, login, "ringcast source") {
        log::debug!("{peer}: source client refused: wrong or missing source login");
        return;
    }
    let Some((id, tx)) = stream.source_client.claim() else {
        warn!("{peer}: source client refused: a source is already connected");
        crate::http::server::respond(&mut conn, 0, 403, "Mountpoint in use", &[]);
        return;
    };
    stream
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
        stream.source_client.release(id, tx);
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
    let result = pump(&mut conn, &req.leftover, body, &tx, stream);
    stream.source_client.release(id, tx);
    match result {
        Ok(n) => info!("{peer}: source client left after {n} bytes"),
        Err(e) => warn!("{peer}: source client dropped: {e}"),
    }
}

/// Serves a SHOUTcast v1 source client on port+1: password line, `OK2`, `icy-*` headers,
/// then the audio.
pub fn serve_shoutcast(tcp: TcpStream, peer: SocketAddr, mut pending: Pending, server: &Server) {
    let mut conn = Conn::Plain(tcp);
    // An encoder is one connection: each counts against -max-pending-per-ip at once.
    if !pending.slow() {
        return warn!(
            "{peer}: SHOUTcast source refused: too many connections from it (-max-pending-per-ip)"
        );
    }
    // Each phase (the password line, then the headers) must be done within -header-timeout
    // in all, however slowly its bytes trickle in.
    let first = match read_line(&mut conn, &Deadline::after(server.cfg.header_timeout)) {
        Ok(l) => l,
        Err(e) => return warn!("{peer}: SHOUTcast source: no password line: {e}"),
    };
    // Some encoders send "password:#streamid"; v1 has one stream per password, so with
    // mounts the password picks the mount.
    let password = first.split(":#").next().unwrap_or_default();
    let mut found = None;
    let login = server
        .peers
        .login(peer.ip(), "SHOUTcast source login", None, || {
            found = stream_of_password(server, password);
            Some(found.is_some())
        });
    let stream = match (&login, found) {
        (Login::Ok, Some(stream)) => stream,
        _ => {
            log::debug!("{peer}: SHOUTcast source refused ({login:?})");
            let _ = conn.write_all(b"invalid password\r\n");
            return;
        }
    };
    let Some((id, tx)) = stream.source_client.claim() else {
        warn!("{peer}: SHOUTcast source refused: a source is already connected");
        let _ = conn.write_all(b"invalid password\r\n");
        return;
    };
    if conn.write_all(b"OK2\r\nicy-caps:11\r\n\r\n").is_err() {
        stream.source_client.release(id, tx);
        return;
    }
    let headers = match read_v1_headers(&mut conn, server.cfg.header_timeout) {
        Ok(h) => h,
        Err(e) => {
            warn!("{peer}: SHOUTcast source dropped in its headers: {e}");
            stream.source_client.release(id, tx);
            return;
        }
    };
    pending.done();
    stream
        .meta
        .merge_info(&Info::from_headers(|n| crate::http::header(&headers, n)));
    info!("{peer}: SHOUTcast source client connected");
    let result = pump(&mut conn, &[], Body::Plain(None), &tx, &stream);
    stream.source_client.release(id, tx);
    match result {
        Ok(n) => info!("{peer}: SHOUTcast source client left after {n} bytes"),
        Err(e) => warn!("{peer}: SHOUTcast source client dropped: {e}"),
    }
}

/// The stream whose source password `password` is (v1 has one stream per password).
fn stream_of_password(server: &Server, password: &str) -> Option<Arc<Stream>> {
    server.streams().into_iter().find(|s| {
        s.cfg
            .source_password
            .as_deref()
            .is_some_and(|p| crate::http::auth::same_secret(password, p))
    })
}

/// A SHOUTcast v1 source's header lines up to the empty one, all within `timeout`.
fn read_v1_headers(conn: &mut Conn, timeout: Duration) -> io::Result<Vec<(String, String)>> {
    let mut headers: Vec<(String, String)> = Vec::new();
    let deadline = Deadline::after(timeout);
    loop {
        let line = match read_line(conn, &deadline) {
            Ok(l) if headers.len() >= MAX_V1_HEADERS && !l.is_empty() => Err(io::Error::other(
                format!("more than {MAX_V1_HEADERS} header lines"),
            )),
            other => other,
        }?;
        if line.is_empty() {
            return Ok(headers);
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
}

/// One CRLF- or LF-terminated line, at most 1 KiB, before `deadline`.
fn read_line(conn: &mut Conn, deadline: &Deadline) -> io::Result<String> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while line.len() < 1024 {
        deadline.arm_read(conn.tcp())?;
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
    conn: &mut Conn,
    first: &[u8],
    mut body: Body,
    tx: &Sender<Vec<u8>>,
    stream: &Stream,
) -> io::Result<u64> {
    let cfg = &stream.cfg;
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
        if finished || stream.stop.is_set() {
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
