//! The origin's side of the link: the challenge, serving pullers, and pushing to a receiver.
//!
//! Handshake (both modes): the dialer fetches a one-time nonce from the other side's
//! challenge path, then opens the stream with a request whose parameters carry an HMAC made
//! with the shared key. Both sides derive the session key from the two nonces. The shared key
//! itself never crosses the wire.

use super::fragments::Next;
use super::wire::{self, Msg};
use super::{
    fmt_pos, handshake_query, parse_pos, wall_us, LinkState, HEARTBEAT, PATH_CHALLENGE, PATH_PULL,
    PATH_PUSH, STALL,
};
use crate::http::chunked::ChunkedWriter;
use crate::http::client;
use crate::http::conn::Conn;
use crate::http::server::{self as http, Request};
use crate::http::url::{query_param, Url};
use crate::server::peers::Login;
use crate::server::Server;
use crate::stream::Stream;
use crate::util::deadline::Deadline;
use log::info;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// `GET /.ringcast/link/challenge`: a nonce, where this instance (as a receiver) would
/// resume, and how much a fresh receiver wants (its delay, ms).
pub fn challenge(conn: &mut TcpStream, req: &Request, stream: &Stream) {
    let Some(link) = stream.link.as_ref() else {
        return;
    };
    let held = fmt_pos(*link.held.lock());
    let nonce = match link.issue_nonce() {
        Ok(n) => n,
        Err(e) => {
            log::error!("link challenge: {e}");
            return http::respond(conn, req.minor, 503, "no nonce could be made", &[]);
        }
    };
    let body = format!(
        "ringcast-link {} {nonce} {held} {}\n",
        wire::VERSION,
        link.cfg.delay.as_millis()
    );
    http::reply(
        conn,
        req,
        "text/plain",
        &[("Cache-Control", "no-store")],
        &body,
    );
}

/// Checks a handshake request: version, our nonce, the MAC over `fields` (in order).
/// Returns the query values, or answers 401/400 and returns `None`.
pub fn verify<const N: usize>(
    conn: &mut TcpStream,
    peer: SocketAddr,
    req: &Request,
    server: &Server,
    link: &LinkState,
    mode: &str,
    fields: [&str; N],
) -> Option<[String; N]> {
    let get = |k: &str| query_param(&req.path, k).map(|v| String::from_utf8_lossy(&v).into_owned());
    let values = fields.map(|f| get(f).unwrap_or_default());
    if get("v").as_deref() != Some("1") {
        http::respond(
            conn,
            req.minor,
            400,
            "unsupported link protocol version (this is version 1)",
            &[],
        );
        return None;
    }
    let nonce = get("nonce").unwrap_or_default();
    let mut parts = vec![mode, "1"];
    parts.extend(values.iter().map(String::as_str));
    let login = server.peers.login(peer.ip(), "link handshake", || {
        let good_mac = get("mac")
            .is_some_and(|m| crate::http::auth::same_secret(&m, &link.request_mac(&parts)));
        // Consume the nonce only for a request that proves the key.
        Some(good_mac && link.take_nonce(&nonce))
    });
    if login != Login::Ok {
        link.stats.refused.fetch_add(1, Relaxed);
        log::debug!("{peer}: link {mode} refused: wrong key or stale nonce ({login:?})");
        http::respond(conn, req.minor, 401, "link authentication failed", &[]);
        return None;
    }
    Some(values)
}

/// `GET /.ringcast/link/pull`: a receiver pulls fragments from us.
pub fn serve_pull(
    mut conn: TcpStream,
    peer: SocketAddr,
    req: &Request,
    server: &Server,
    stream: &Stream,
) {
    let Some(link) = stream.link.as_ref() else {
        return;
    };
    let fields = ["nonce", "cnonce", "after", "want", "rid"];
    let Some([nonce, cnonce, after_text, want, rid]) =
        verify(&mut conn, peer, req, server, link, "pull", fields)
    else {
        return;
    };
    let key = wire::session_key(&link.cfg.key, &nonce, &cnonce);
    let after = parse_pos(&after_text);
    let want_us = want_us(want.parse().unwrap_or(5000));
    let who = format!("pull:{rid}");
    let gen = link.begin_session(&who);
    let head = http::head(
        req.minor,
        200,
        "application/x-ringcast-link",
        &[("Cache-Control", "no-store")],
    );
    if conn.write_all(head.as_bytes()).is_err() {
        return;
    }
    let _ = crate::os::sys::set_tcp_user_timeout(&conn, STALL);
    let _ = conn.set_write_timeout(Some(STALL.saturating_mul(2)));
    info!("{peer}: link receiver pulling after {after_text}");
    let result = send_stream(
        &mut conn,
        &key,
        stream,
        after,
        want_us,
        || link.is_current(&who, gen),
        |_| Ok(()),
    );
    let replaced = !link.is_current(&who, gen);
    link.end_session(&who, gen);
    match result {
        Ok(()) if replaced => info!("{peer}: link session replaced by a newer one"),
        Ok(()) => info!("{peer}: link session ended"),
        Err(e) => info!("{peer}: link session ended: {e}"),
    }
}

/// How much a fresh receiver wants (the handshake's `want`, ms) in µs: never more than a
/// day, so a huge value from the peer cannot overflow into a tiny one.
pub fn want_us(want_ms: u64) -> u64 {
    const DAY_MS: u64 = 24 * 3600 * 1000;
    want_ms.min(DAY_MS).saturating_mul(1000)
}

/// Sends the stream from the fragment log: meta first, then fragments after `pos` (or the
/// newest `want_us` for a fresh receiver), a heartbeat whenever a second passes without
/// other traffic. `check` runs after each round (the pusher reads acks there).
pub fn send_stream<W: Write>(
    conn: &mut W,
    key: &[u8],
    stream: &Stream,
    mut pos: Option<(u64, u64)>,
    want_us: u64,
    wanted: impl Fn() -> bool,
    mut check: impl FnMut(&mut W) -> io::Result<()>,
) -> io::Result<()> {
    let Some(link) = stream.link.as_ref() else {
        return Ok(());
    };
    let mut title_seq = 0;
    let mut last_sent = Instant::now();
    let mut out = Vec::new();
    loop {
        if stream.stop.is_set() || !wanted() {
            return Ok(());
        }
        out.clear();
        let (title, seq) = stream.meta.title();
        if seq != title_seq {
            title_seq = seq;
            let header = stream.ring.header().map(|h| h.to_vec()).unwrap_or_default();
            let content_type = stream.content_type();
            wire::write_msg(
                &mut out,
                key,
                &Msg::Meta {
                    content_type,
                    header,
                    title: title.to_string(),
                },
            )?;
        }
        let frags = match link.log.after(pos, want_us, Duration::from_millis(250)) {
            Next::Gap {
                epoch,
                from,
                to,
                then,
            } => {
                wire::write_msg(&mut out, key, &Msg::Gap { epoch, from, to })?;
                then
            }
            Next::Frags(f) => f,
            Next::Idle => Vec::new(),
        };
        for f in frags {
            pos = Some((f.epoch, f.seq));
            wire::write_msg(
                &mut out,
                key,
                &Msg::Fragment {
                    sent_us: wall_us(),
                    frag: (*f).clone(),
                },
            )?;
        }
        if out.is_empty() && last_sent.elapsed() >= HEARTBEAT {
            let (epoch, newest) = link.log.newest().unwrap_or((0, 0));
            wire::write_msg(
                &mut out,
                key,
                &Msg::Heartbeat {
                    sent_us: wall_us(),
                    epoch,
                    newest,
                },
            )?;
        }
        if !out.is_empty() {
            conn.write_all(&out)?;
            last_sent = Instant::now();
        }
        check(conn)?;
    }
}

/// The `link-push` thread: keeps a session to the receiver at `-link-push` open.
pub fn run_push(stream: &Stream) {
    let cfg = &stream.cfg;
    let (Some(link), Some(url)) = (
        stream.link.as_ref(),
        cfg.link.as_ref().and_then(|l| l.push.clone()),
    ) else {
        return;
    };
    let origin_id = match crate::util::random::hex(8) {
        Ok(id) => id,
        Err(e) => return log::error!("link push: {e}"),
    };
    super::redial(stream, link, "push to", &url, || {
        push_session(&url, link, stream, &origin_id)
    });
}

/// A link session the dialler has opened: the socket after a `200`, the session key, and the
/// resume point and wanted length the handshake carried.
pub struct Dialed {
    pub conn: Conn,
    /// Body bytes that came with the response head.
    pub first: Vec<u8>,
    /// Whether the response body is chunked (a reverse proxy re-framed it).
    pub chunked: bool,
    pub key: [u8; 32],
    pub after: String,
    pub want_ms: u64,
}

/// The dialler's half of the handshake (`docs/link-protocol.md`). Pulling, we are the
/// receiver and resume after what we hold; pushing, we are the origin and resume after what
/// the receiver said it holds.
pub fn dial(url: &Url, link: &LinkState, pull: bool, id: &str) -> io::Result<Dialed> {
    let ch = fetch_challenge(url, link)?;
    let cnonce = crate::util::random::hex(16)?;
    let (mode, id_name, after, want_ms) = if pull {
        (
            "pull",
            "rid",
            fmt_pos(*link.held.lock()),
            super::micros(link.cfg.delay) / 1000,
        )
    } else {
        ("push", "oid", ch.held.clone(), ch.want_ms)
    };
    let want = want_ms.to_string();
    let mac = link.request_mac(&[mode, "1", &ch.nonce, &cnonce, &after, &want, id]);
    let params = [
        ("v", "1"),
        ("nonce", &ch.nonce),
        ("cnonce", &cnonce),
        ("after", &after),
        ("want", &want),
        (id_name, id),
    ];
    let query = handshake_query(&params, &mac);
    let (method, path, extra) = if pull {
        ("GET", PATH_PULL, "Connection: close\r\n")
    } else {
        (
            "POST",
            PATH_PUSH,
            "Content-Type: application/x-ringcast-link\r\nTransfer-Encoding: chunked\r\n",
        )
    };
    // The stream request's own deadline: connect, TLS and the answer's head.
    let deadline = Deadline::after(link.handshake_timeout());
    let mut conn = connect(url, deadline)?;
    let request = format!(
        "{method} {}{path}?{query} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {}\r\n{extra}\r\n",
        base_path(url),
        url.authority(),
        client::user_agent()
    );
    let other = if pull { "origin" } else { "receiver" };
    let (head, first) = client::exchange(&mut conn, request.as_bytes(), deadline)?;
    match head.status {
        200 => {}
        401 => {
            link.stats.refused.fetch_add(1, Relaxed);
            return Err(io::Error::other(format!(
                "the {other} refused our key (401)"
            )));
        }
        s => return Err(io::Error::other(format!("the {other} answered {s}"))),
    }
    conn.set_read_timeout(Some(STALL))?;
    link.stats.up.store(true, Relaxed);
    Ok(Dialed {
        conn,
        first,
        chunked: head.is_chunked(),
        key: wire::session_key(&link.cfg.key, &ch.nonce, &cnonce),
        after,
        want_ms,
    })
}

fn push_session(url: &Url, link: &LinkState, stream: &Stream, origin_id: &str) -> io::Result<()> {
    let Dialed {
        conn,
        key,
        after,
        want_ms,
        ..
    } = dial(url, link, false, origin_id)?;
    info!(
        "link push: connected to {} (receiver holds {after})",
        url.redacted()
    );
    conn.set_write_timeout(Some(STALL.saturating_mul(2)))?;
    let mut last_ack = Instant::now();
    let mut acks = [0u8; 256];
    // Chunked, so that the body crosses HTTP/1.1 reverse proxies.
    send_stream(
        &mut ChunkedWriter(conn),
        &key,
        stream,
        parse_pos(&after),
        want_us(want_ms),
        || true,
        |c| {
            // The receiver acks every second; none for STALL means the path is dead. Any
            // bytes count (a proxy may have re-chunked them).
            while let Some(n) = c.0.read_ready(&mut acks, Duration::ZERO)? {
                if n == 0 {
                    return Err(io::Error::other("the receiver closed the link"));
                }
                last_ack = Instant::now();
            }
            if last_ack.elapsed() >= STALL {
                link.stats.stalls.fetch_add(1, Relaxed);
                return Err(io::Error::other(format!(
                    "no ack for {}s: link stalled",
                    STALL.as_secs()
                )));
            }
            Ok(())
        },
    )
}

/// The other side's challenge answer.
pub struct Challenge {
    pub nonce: String,
    /// `epoch.seq` the other side holds (push: where to resume), or `-`.
    pub held: String,
    pub want_ms: u64,
}

/// `GET {base}/.ringcast/link/challenge` (a short request).
pub fn fetch_challenge(url: &Url, link: &LinkState) -> io::Result<Challenge> {
    let path = format!("{}{PATH_CHALLENGE}", base_path(url));
    let asked = Instant::now();
    let (head, body) = client::get(url, &path, &[], link.handshake_timeout())?;
    match head.status {
        200 => {}
        404 => {
            return Err(io::Error::other(
                "no link there (404): is -link-key set on the other side?",
            ))
        }
        s => return Err(io::Error::other(format!("the challenge answered {s}"))),
    }
    let text = String::from_utf8_lossy(&body);
    link.record_handshake(asked.elapsed());
    let mut w = text.split_whitespace();
    if w.next() != Some("ringcast-link") || w.next() != Some("1") {
        return Err(io::Error::other(format!(
            "not a ringcast link version 1: {:?}",
            text.trim()
        )));
    }
    let nonce = w.next().unwrap_or_default().to_string();
    let held = w.next().unwrap_or("-").to_string();
    let want_ms = w.next().and_then(|v| v.parse().ok()).unwrap_or(5000);
    Ok(Challenge {
        nonce,
        held,
        want_ms,
    })
}

/// The URL's path without a trailing slash (the link paths follow it).
pub fn base_path(url: &Url) -> &str {
    url.path
        .split('?')
        .next()
        .unwrap_or("")
        .trim_end_matches('/')
}

/// Dials the other side (TLS for `https://`), with a stall bound on the socket.
fn connect(url: &Url, deadline: Deadline) -> io::Result<Conn> {
    let conn = Conn::connect(url, deadline)?;
    let _ = crate::os::sys::set_tcp_user_timeout(conn.tcp(), STALL);
    Ok(conn)
}
