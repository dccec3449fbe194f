//! The origin's side of the link: the challenge, serving pullers, and pushing to a receiver.
//!
//! Handshake (both modes): the dialer fetches a one-time nonce from the other side's
//! challenge path, then opens the stream with a request whose parameters carry an HMAC made
//! with the shared key. Both sides derive the session key from the two nonces. The shared key
//! itself never crosses the wire.

use super::fragments::Next;
use super::handshake::{accept, dial, Dialed, LoginGate};
use super::wire::{self, Msg};
use super::{parse_pos, wall_us, LinkState, HEARTBEAT, STALL};
use crate::config::link::LinkPath;
use crate::http::chunked::ChunkedWriter;
use crate::http::conn::Conn;
use crate::http::server::{self as http, Request};
use crate::stream::Stream;
use log::info;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// `GET /.ringcast/link/pull`: a receiver pulls fragments from us.
pub fn serve_pull(
    mut conn: Conn,
    peer: SocketAddr,
    req: &Request,
    gate: &dyn LoginGate,
    stream: &Stream,
    link: &LinkState,
) {
    let fields = ["nonce", "cnonce", "after", "want", "rid"];
    let Some((link, [_, _, after_text, want, rid], key)) =
        accept(&mut conn, peer, req, gate, link, "pull", fields)
    else {
        return;
    };
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
    let _ = crate::os::sys::set_tcp_user_timeout(conn.tcp(), STALL);
    let _ = conn.set_write_timeout(Some(STALL.saturating_mul(2)));
    info!(
        "{peer}: link receiver pulling after {}",
        super::path_log::position(&after_text)
    );
    let result = send_stream(
        &mut conn,
        &key,
        stream,
        link,
        Resume {
            pos: after,
            want_us,
            bytes: None,
        },
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

/// Where a session's stream begins, and what counts its bytes.
pub struct Resume<'a> {
    /// After this fragment (`None`: a fresh receiver)…
    pub pos: Option<(u64, u64)>,
    /// …which then gets the newest this much, µs.
    pub want_us: u64,
    /// A pushing path's byte counter.
    pub bytes: Option<&'a std::sync::atomic::AtomicU64>,
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
    link: &LinkState,
    from: Resume,
    wanted: impl Fn() -> bool,
    mut check: impl FnMut(&mut W) -> io::Result<()>,
) -> io::Result<()> {
    let Resume {
        mut pos,
        want_us,
        bytes,
    } = from;
    let mut title_seq = 0;
    let mut last_sent = Instant::now();
    let mut out = Vec::new();
    loop {
        if stream.stop.is_set() || !wanted() {
            return Ok(());
        }
        out.clear();
        write_meta(&mut out, key, stream, &mut title_seq)?;
        write_fragments(&mut out, key, link, &mut pos, want_us)?;
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
            if let Some(b) = bytes {
                b.fetch_add(u64::try_from(out.len()).unwrap_or(u64::MAX), Relaxed);
            }
        }
        check(conn)?;
    }
}

/// Adds a meta message to `out` when the title's number moved on from `title_seq` (the
/// title changed), and remembers the new number.
fn write_meta(
    out: &mut Vec<u8>,
    key: &[u8],
    stream: &Stream,
    title_seq: &mut u64,
) -> io::Result<()> {
    let (title, seq) = stream.meta.title();
    if seq != *title_seq {
        *title_seq = seq;
        let header = stream.ring.header().map(|h| h.to_vec()).unwrap_or_default();
        let content_type = stream.content_type();
        wire::write_msg(
            out,
            key,
            &Msg::Meta {
                content_type,
                header,
                title: title.to_string(),
            },
        )?;
    }
    Ok(())
}

/// Adds what the fragment log holds after `pos` to `out` (a gap first when the fragments
/// after `pos` are gone; waits up to 250 ms when there is nothing yet), and moves `pos` to
/// the last fragment added.
fn write_fragments(
    out: &mut Vec<u8>,
    key: &[u8],
    link: &LinkState,
    pos: &mut Option<(u64, u64)>,
    want_us: u64,
) -> io::Result<()> {
    let frags = match link.log.after(*pos, want_us, Duration::from_millis(250)) {
        Next::Gap {
            epoch,
            from,
            to,
            then,
        } => {
            wire::write_msg(out, key, &Msg::Gap { epoch, from, to })?;
            then
        }
        Next::Frags(f) => f,
        Next::Idle => Vec::new(),
    };
    for f in frags {
        *pos = Some((f.epoch, f.seq));
        wire::write_msg(
            out,
            key,
            &Msg::Fragment {
                sent_us: wall_us(),
                frag: (*f).clone(),
            },
        )?;
    }
    Ok(())
}

/// A `link-push` thread: keeps a session to the receiver at path `path`'s `-link-push` open.
pub fn run_push(stream: &Stream, link: &LinkState, path: usize) {
    let cfg = &stream.cfg;
    let Some(p) = cfg.link.as_ref().and_then(|l| l.push.get(path).cloned()) else {
        return;
    };
    // The receiver keeps one session per path number, the end of our id (`id.path`).
    let origin_id = match crate::util::random::hex(8) {
        Ok(id) => format!("{id}.{path}"),
        Err(e) => return log::error!("link push: {e}"),
    };
    *link.paths.get(path).label.lock() = p.url.redacted();
    super::redial(stream, link, "push to", false, path, || {
        push_session(&p, path, link, stream, &origin_id)
    });
}

fn push_session(
    p: &LinkPath,
    path: usize,
    link: &LinkState,
    stream: &Stream,
    origin_id: &str,
) -> io::Result<()> {
    let Dialed {
        conn,
        key,
        after,
        want_ms,
        ..
    } = dial(&p.url, p.from, path, link, false, origin_id)?;
    info!(
        "link push: connected to {} (the receiver holds up to {})",
        p.url.redacted(),
        super::path_log::position(&after)
    );
    conn.set_write_timeout(Some(STALL.saturating_mul(2)))?;
    let mut last_ack = Instant::now();
    let mut acks = [0u8; 256];
    // Chunked, so that the body crosses HTTP/1.1 reverse proxies.
    send_stream(
        &mut ChunkedWriter(conn),
        &key,
        stream,
        link,
        Resume {
            pos: parse_pos(&after),
            want_us: want_us(want_ms),
            bytes: Some(&link.paths.get(path).bytes),
        },
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
