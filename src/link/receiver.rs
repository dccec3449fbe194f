//! The receiver's side of the link: dialling the origin (`-link-pull`) and taking a pusher
//! (`-link-receive`; the newest authenticated pusher wins, so it may change address at will).
//! Both put verified messages in the inbox, which the `link-play` thread (`player.rs`) turns
//! into frames in the ring.
//!
//! A session ends on a MAC failure (a corrupted or tampered message: the redial fetches it
//! again, since we resume after the last good fragment), on 3 s without any message (a
//! stalled path that never closed), or when replaced.

use super::handshake::{accept, dial, LoginGate};
use super::wire::{self, ReadError};
use super::{local_us, LinkState, HEARTBEAT, INBOX_BYTES, STALL};
use crate::http::chunked::{is_chunked, ChunkedReader};
use crate::http::conn::Conn;
use crate::http::server::Request;
use crate::stream::Stream;
use crossbeam_channel::SendTimeoutError;
use log::{info, warn};
use std::cell::RefCell;
use std::io::{self, BufReader, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// The `link-play` thread (`player.rs`), under the path the server starts it by.
pub use super::player::run_play;

/// A `link-pull` thread: pulls the stream over path `path` (its `-link-pull`).
pub fn run_pull(stream: &Stream, link: &LinkState, path: usize) {
    let cfg = &stream.cfg;
    let Some(p) = cfg.link.as_ref().and_then(|l| l.pull.get(path).cloned()) else {
        return;
    };
    // The origin keeps one session per receiver id: each path has its own (`id.path`).
    let receiver_id = match crate::util::random::hex(8) {
        Ok(id) => format!("{id}.{path}"),
        Err(e) => return log::error!("link pull: {e}"),
    };
    *link.paths.get(path).label.lock() = p.url.redacted();
    super::redial(stream, link, "pull from", true, path, || {
        pull_session(&p, path, link, stream, &receiver_id)
    });
}

fn pull_session(
    p: &crate::config::link::LinkPath,
    path: usize,
    link: &LinkState,
    stream: &Stream,
    rid: &str,
) -> io::Result<()> {
    let dialed = dial(&p.url, p.from, path, link, true, rid)?;
    info!(
        "link pull: connected to {}, resuming after {}",
        p.url.redacted(),
        super::path_log::position(&dialed.after)
    );
    let body = io::Cursor::new(dialed.first).chain(dialed.conn);
    let body: Box<dyn Read> = if dialed.chunked {
        Box::new(ChunkedReader::new(body))
    } else {
        Box::new(body)
    };
    let key = dialed.key;
    receive(
        &mut BufReader::new(body),
        &key,
        link,
        path,
        stream,
        || true,
        |_| Ok(()),
    )
}

/// Reads verified messages into the inbox until the session ends. `ack` runs after each
/// message (the push receiver acks there).
fn receive(
    r: &mut impl Read,
    key: &[u8],
    link: &LinkState,
    path: usize,
    stream: &Stream,
    wanted: impl Fn() -> bool,
    mut ack: impl FnMut(bool) -> io::Result<()>,
) -> io::Result<()> {
    let mut last_ack = Instant::now();
    loop {
        if stream.stop.is_set() || !wanted() {
            return Ok(());
        }
        match wire::read_msg(r, key) {
            Ok(msg) => {
                // Wait (a little at a time, STALL in all) while the inbox holds its bytes.
                let size = msg.size();
                let deadline = crate::util::deadline::Deadline::after(STALL);
                while link.inbox_bytes.load(Relaxed).saturating_add(size) > INBOX_BYTES {
                    if deadline.passed() {
                        return Err(io::Error::other("the link player is not taking messages"));
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                link.inbox_bytes.fetch_add(size, Relaxed);
                let bytes = u64::try_from(size).unwrap_or(u64::MAX);
                link.paths.get(path).bytes.fetch_add(bytes, Relaxed);
                match link
                    .inbox
                    .send_timeout((msg, local_us(), path), deadline.left())
                {
                    Ok(()) => {}
                    Err(SendTimeoutError::Timeout(_)) => {
                        link.inbox_bytes.fetch_sub(size, Relaxed);
                        return Err(io::Error::other("the link player is not taking messages"));
                    }
                    Err(SendTimeoutError::Disconnected(_)) => return Ok(()),
                }
            }
            Err(ReadError::Io(e))
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                link.stats.stalls.fetch_add(1, Relaxed);
                return Err(io::Error::other(format!(
                    "nothing for {}s: link stalled",
                    STALL.as_secs()
                )));
            }
            Err(ReadError::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(io::Error::other("the other side closed the link"));
            }
            Err(ReadError::Io(e)) => return Err(e),
            Err(e) => {
                link.stats.bad_messages.fetch_add(1, Relaxed);
                return Err(io::Error::other(format!(
                    "{e}; reconnecting to fetch it again"
                )));
            }
        }
        let due = last_ack.elapsed() >= HEARTBEAT;
        ack(due)?;
        if due {
            last_ack = Instant::now();
        }
    }
}

/// `POST /.ringcast/link/push`: an origin pushes to us over one of its paths (the number at
/// the end of its id). The newest authenticated pusher on a path wins (so it may change
/// address at will), and there are at most `MAX_PATHS` sessions; we ack every second so
/// the pusher can tell a dead path within 3 s.
pub fn serve_push(
    mut conn: Conn,
    peer: SocketAddr,
    req: &Request,
    gate: &dyn LoginGate,
    stream: &Stream,
    link: &LinkState,
) {
    let fields = ["nonce", "cnonce", "after", "want", "oid"];
    let Some((link, [_, _, after, _, oid], key)) =
        accept(&mut conn, peer, req, gate, link, "push", fields)
    else {
        return;
    };
    let path = super::path_of(&oid).min(crate::config::link::MAX_PATHS.saturating_sub(1));
    let who = format!("push:{path}");
    let gen = link.begin_session(&who);
    if conn
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return;
    }
    let _ = conn.set_read_timeout(Some(STALL));
    let _ = conn.set_write_timeout(Some(STALL));
    let _ = crate::os::sys::set_tcp_user_timeout(conn.tcp(), STALL);
    *link.paths.get(path).label.lock() = peer.to_string();
    link.set_up(path, true);
    link.stats.connects.fetch_add(1, Relaxed);
    link.paths.get(path).connects.fetch_add(1, Relaxed);
    info!(
        "{peer}: link pusher connected on path {path} (it resumes after {})",
        super::path_log::position(&after)
    );
    // The body is read and the acks written on one thread, in turns: the reader and the
    // writer share the connection through a RefCell (TLS needs `&mut` for both).
    let conn = RefCell::new(conn);
    let body = io::Cursor::new(req.leftover.clone()).chain(Shared(&conn));
    // Pushers send chunked bodies (so that proxies pass them); version-1 pushers before that
    // sent the stream bare until close.
    let body: Box<dyn Read> = if is_chunked(req.header("Transfer-Encoding")) {
        Box::new(ChunkedReader::new(body))
    } else {
        Box::new(body)
    };
    let result = receive(
        &mut BufReader::new(body),
        &key,
        link,
        path,
        stream,
        || link.is_current(&who, gen),
        |due| {
            if due {
                conn.borrow_mut().write_all(b"ack\n")?;
            }
            Ok(())
        },
    );
    let replaced = !link.is_current(&who, gen);
    if !replaced {
        link.set_up(path, false);
    }
    link.end_session(&who, gen);
    match result {
        Ok(()) if replaced => info!("{peer}: link pusher replaced by a newer one"),
        Ok(()) => info!("{peer}: link push session ended"),
        Err(e) => warn!("{peer}: link push session ended: {e}"),
    }
}

/// Reads the connection a RefCell shares (see `serve_push`).
struct Shared<'a>(&'a RefCell<Conn>);

impl Read for Shared<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.borrow_mut().read(buf)
    }
}
