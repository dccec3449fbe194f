//! The link handshake, both sides (`docs/link-protocol.md`): the challenge a dialler fetches,
//! the MAC'd request it sends (`dial`), and the check the answering side makes (`verify`).
//! Pull and push use the same handshake; only who dials differs.
//!
//! A boundary module (under `link/`): the compiler refuses string slicing, indexing,
//! unchecked arithmetic and lossy casts here (README, Security).

use super::wire::{self};
use super::{fmt_pos, handshake_query, LinkState, PATH_CHALLENGE, PATH_PULL, PATH_PUSH, STALL};
use crate::http::auth::Login;
use crate::http::client;
use crate::http::conn::Conn;
use crate::http::server::{self as http, Request};
use crate::http::url::{query_param, Url};
use crate::util::deadline::Deadline;
use std::io::{self};
use std::net::IpAddr;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

/// The answering side's login budget: the server's, per address (README, Security), which a
/// handshake passes through like every other login. The server implements it; the link
/// names no server type.
pub trait LoginGate {
    /// Runs `check` (`None`: no credentials came) through `ip`'s budget, waiting for its
    /// turn if it has one; `claim` is the identity the peer states.
    fn login(
        &self,
        ip: IpAddr,
        what: &str,
        claim: Option<&str>,
        check: &mut dyn FnMut() -> Option<bool>,
    ) -> Login;
}

/// `GET /.ringcast/link/challenge`: a nonce, where this instance (as a receiver) would
/// resume, and how much a fresh receiver wants (its delay, ms).
pub fn challenge(conn: &mut Conn, req: &Request, link: &LinkState) {
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

/// The answering side's half (a puller's `GET`, a pusher's `POST`): the stream's link, the
/// verified query values of `fields` (the first two are the nonces) and the session key. A
/// stream without a link, or a request that does not verify, is answered and gets `None`.
pub fn accept<'a, const N: usize>(
    conn: &mut Conn,
    peer: SocketAddr,
    req: &Request,
    gate: &dyn LoginGate,
    link: &'a LinkState,
    mode: &str,
    fields: [&str; N],
) -> Option<(&'a LinkState, [String; N], [u8; 32])> {
    let values = verify(conn, peer, req, gate, link, mode, fields)?;
    let nonce = values.first().map_or("", String::as_str);
    let cnonce = values.get(1).map_or("", String::as_str);
    let key = wire::session_key(&link.cfg.key, nonce, cnonce);
    Some((link, values, key))
}

/// Checks a handshake request: version, our nonce, the MAC over `fields` (in order).
/// Returns the query values, or answers 401/400 and returns `None`.
pub fn verify<const N: usize>(
    conn: &mut Conn,
    peer: SocketAddr,
    req: &Request,
    gate: &dyn LoginGate,
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
    // The peer's instance id (rid/oid, the last field) is its claim: a peer whose key is
    // wrong is refused unchecked after its first failure, so a typo on one box does not
    // use up the budget of a right-keyed peer behind the same address.
    let claim = fields
        .last()
        .and_then(|f| get(f))
        .map(|id| format!("{mode}:{id}"));
    let login = gate.login(peer.ip(), "link handshake", claim.as_deref(), &mut || {
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

/// The longest an answering side's login budget holds a handshake before checking it: a
/// turn within `server::login_budget::MAX_WAIT` (8 s), and a second to spare.
const GATE_WAIT: std::time::Duration = std::time::Duration::from_secs(9);

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
pub fn dial(
    url: &Url,
    from: Option<IpAddr>,
    path: usize,
    link: &LinkState,
    pull: bool,
    id: &str,
) -> io::Result<Dialed> {
    let ch = fetch_challenge(url, from, path, link)?;
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
    let (method, route, extra) = if pull {
        ("GET", PATH_PULL, "Connection: close\r\n")
    } else {
        (
            "POST",
            PATH_PUSH,
            "Content-Type: application/x-ringcast-link\r\nTransfer-Encoding: chunked\r\n",
        )
    };
    // The stream request's own deadline: connect, TLS and the answer's head, plus the
    // longest the other side's login budget may hold its answer (an address past its free
    // failures waits its turn there; a right key must still get in). A path that dies
    // meanwhile is still noticed within STALL: the socket's TCP_USER_TIMEOUT.
    let deadline = Deadline::after(link.handshake_timeout(path).saturating_add(GATE_WAIT));
    let mut conn = connect(url, from, deadline)?;
    let request = format!(
        "{method} {}{route}?{query} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {}\r\n{extra}\r\n",
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
    link.connected(pull, path);
    Ok(Dialed {
        conn,
        first,
        chunked: head.is_chunked(),
        key: wire::session_key(&link.cfg.key, &ch.nonce, &cnonce),
        after,
        want_ms,
    })
}

/// The other side's challenge answer.
pub struct Challenge {
    pub nonce: String,
    /// `epoch.seq` the other side holds (push: where to resume), or `-`.
    pub held: String,
    pub want_ms: u64,
}

/// `GET {base}/.ringcast/link/challenge` (a short request).
pub fn fetch_challenge(
    url: &Url,
    from: Option<IpAddr>,
    path: usize,
    link: &LinkState,
) -> io::Result<Challenge> {
    let target = format!("{}{PATH_CHALLENGE}", base_path(url));
    let asked = Instant::now();
    let (head, body) = client::get_from(url, from, &target, &[], link.handshake_timeout(path))?;
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
    link.record_handshake(path, asked.elapsed());
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
fn connect(url: &Url, from: Option<IpAddr>, deadline: Deadline) -> io::Result<Conn> {
    let conn = Conn::connect_from(url, from, deadline)?;
    let _ = crate::os::sys::set_tcp_user_timeout(conn.tcp(), STALL);
    Ok(conn)
}
