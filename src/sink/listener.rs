//! One listener: its sender thread body. Sends the response head at once (even while the
//! source is silent), then the stream from its cursor, in batches, until the stream ends,
//! `-client-max-bytes` is reached, the listener leaves or stops reading for
//! `-write-timeout`. The ring lock is never held across the socket write.

use super::feed::Feed;
use crate::http::server::{self as http, Request};
use crate::icy::Inserter;
use crate::limited;
use crate::ring::ReadOutcome;
use crate::server::Server;
use crate::stream::stats::Stats;
use crate::stream::Stream;
use crate::util::deadline::Deadline;
use crate::util::ratelimit::RateLimit;
use log::{debug, info, warn};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

/// Most bytes copied out of the ring per wake-up (always at least one frame).
const BATCH_CAP: usize = 64 * 1024;
/// A listener's kernel send buffer holds about this much of the stream (the kernel doubles
/// what we ask, so ask for half), within [`MIN_SNDBUF`]..[`MAX_SNDBUF`]. Small, so that a
/// listener that stops reading fills it within seconds and meets `-write-timeout`, instead
/// of the kernel buffering minutes (up to 4 MB) first; big enough that a reading listener
/// on a path with a 1 s round trip still gets the full rate.
const SNDBUF_SECONDS: u64 = 2;
const MIN_SNDBUF: usize = 16 * 1024;
const MAX_SNDBUF: usize = 1024 * 1024;
/// Asked for while the stream's rate is not measured yet (the first second).
const DEFAULT_SNDBUF: usize = 64 * 1024;
/// How long a sender sleeps in the ring before re-checking for shutdown.
const IDLE_WAIT: Duration = Duration::from_secs(1);

static LAPPED_LOG: RateLimit = RateLimit::new(Duration::from_secs(5));
static FULL_LOG: RateLimit = RateLimit::new(Duration::from_secs(5));

pub fn serve(
    mut conn: TcpStream,
    peer: SocketAddr,
    req: &Request,
    server: &Server,
    stream: &Arc<Stream>,
) {
    let cfg = &stream.cfg;
    let counted = server.enter_listener();
    let guard = counted.as_ref().and_then(|_| stream.enter_listener());
    if guard.is_none() {
        Stats::add(&stream.stats.listeners_refused, 1);
        let max = if counted.is_none() {
            server.cfg.max_clients
        } else {
            cfg.max_clients
        };
        limited!(
            FULL_LOG,
            warn,
            "{peer}: refused, -max-clients {max} reached{}",
            if counted.is_none() {
                ""
            } else {
                " on this mount"
            }
        );
        http::respond(
            &mut conn,
            req.minor,
            503,
            "too many listeners",
            &[("Retry-After", "10")],
        );
        return;
    };
    // ICY metadata only for listeners that ask, as Icecast does.
    // The listener's place in the stream is fixed now, before it has its response head:
    // whatever the source publishes after that reaches it, however slow this thread is.
    let mut feed = Feed::new(server, stream, cfg.burst_bytes);
    let sndbuf = send_buffer(stream.rate.rate(Stats::get(&stream.stats.bytes_in)));
    if let Err(e) = crate::os::sys::set_send_buffer(&conn, sndbuf) {
        debug!("{peer}: SO_SNDBUF {sndbuf}: {e}");
    }
    let wants_icy = req.header("Icy-MetaData").is_some_and(|v| v.trim() == "1");
    let head = http::head(
        req.minor,
        200,
        &stream.content_type(),
        &icy_headers(stream, wants_icy),
    );
    if let Err(e) = conn.write_all(head.as_bytes()) {
        debug!("{peer}: gone before the response head: {e}");
        return;
    }
    if req.method == "HEAD" {
        http::close_gracefully(&mut conn);
        return;
    }
    Stats::add(&stream.stats.listeners_total, 1);
    let agent = req.header("User-Agent").unwrap_or("no User-Agent");
    // Peer text is logged quoted ({:?} escapes control characters: no forged log lines).
    info!(
        "{peer}: listening ({} {:?}, {agent:?})",
        req.method, req.path
    );
    if feed.on_fallback() {
        info!(
            "{peer}: {} has no source: on {} meanwhile",
            stream.mount(),
            feed.stream().mount()
        );
    }
    let write_timeout = server.cfg.write_timeout;

    let mut client_left = if cfg.client_max_bytes > 0 {
        cfg.client_max_bytes
    } else {
        u64::MAX
    };
    let mut sent: u64 = 0;
    let mut out = Vec::new();
    let mut icy = wants_icy.then(|| (Inserter::new(cfg.icy_metaint), Vec::new()));
    let end = loop {
        out.clear();
        if let Some(to) = feed.follow() {
            info!("{peer}: moved to {to}");
        }
        // On the fallback, the listener's own stream ending (its mount removed, shutdown)
        // ends it too.
        if feed.on_fallback() && stream.stop.is_set() {
            break End::StreamEnded;
        }
        match feed.read(&mut out, client_left, BATCH_CAP, IDLE_WAIT) {
            ReadOutcome::Data {
                header_len,
                skipped,
                ..
            } => {
                if skipped > 0 {
                    Stats::add(&stream.stats.frames_skipped, skipped);
                    limited!(
                        LAPPED_LOG,
                        warn,
                        "{peer}: too slow, skipped {skipped} frames to catch up"
                    );
                }
                // The header does not count against -client-max-bytes.
                let frame_bytes = out.len().saturating_sub(header_len);
                client_left = client_left.saturating_sub(frame_bytes as u64);
                let wire = match &mut icy {
                    None => &out,
                    Some((inserter, with_meta)) => {
                        let (title, seq) = feed.stream().meta.title();
                        with_meta.clear();
                        inserter.write(&out, &title, seq, with_meta);
                        &*with_meta
                    }
                };
                // The whole batch within -write-timeout, however the listener trickles its
                // reads: a socket that takes a few bytes now and then is as stalled as one
                // that takes none.
                if let Err(e) = write_all_by(&mut conn, wire, write_timeout) {
                    break if http::is_disconnect(&e) {
                        debug!("{peer}: left");
                        End::Left
                    } else if http::is_stalled(&e) {
                        warn!(
                            "{peer}: not reading for {write_timeout:?} (-write-timeout): dropped"
                        );
                        End::Stalled
                    } else {
                        info!("{peer}: write failed: {e}");
                        End::WriteFailed
                    };
                }
                sent = sent.saturating_add(wire.len() as u64);
                Stats::add(&stream.stats.bytes_out, wire.len() as u64);
            }
            ReadOutcome::NoRoom => break End::MaxBytes,
            // The fallback ending (its mount removed) sends the listener home.
            ReadOutcome::Ended if feed.on_fallback() => {}
            ReadOutcome::Ended => break End::StreamEnded,
            // Shutdown ends the ring, so a sleeping sender drains and gets `Ended`.
            ReadOutcome::Idle => {}
        }
    };
    // Ends on our side finish the response cleanly; the listener's own end needs nothing.
    if matches!(end, End::MaxBytes | End::StreamEnded) {
        http::close_gracefully(&mut conn);
    }
    info!("{peer}: done after {sent} bytes: {end}");
}

/// Why a listener's response ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Left,
    Stalled,
    WriteFailed,
    MaxBytes,
    StreamEnded,
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            End::Left => "left",
            End::Stalled => "stalled",
            End::WriteFailed => "write error",
            End::MaxBytes => "reached -client-max-bytes",
            End::StreamEnded => "the stream ended",
        })
    }
}

/// The send buffer to ask for at a stream rate of `rate` bytes a second (0: unknown).
fn send_buffer(rate: u64) -> usize {
    if rate == 0 {
        return DEFAULT_SNDBUF;
    }
    let half = rate.saturating_mul(SNDBUF_SECONDS) / 2;
    usize::try_from(half)
        .unwrap_or(MAX_SNDBUF)
        .clamp(MIN_SNDBUF, MAX_SNDBUF)
}

/// `write_all` that fails with `TimedOut` once `timeout` has passed since it began. The
/// socket's write timeout is already `timeout` (set once per connection), so a batch the
/// kernel takes in one write, the usual case, costs no extra system call; only after a
/// partial write is the timeout cut to what is left, and put back at the end.
fn write_all_by(conn: &mut TcpStream, mut buf: &[u8], timeout: Duration) -> std::io::Result<()> {
    let deadline = Deadline::after(timeout);
    let mut cut = false;
    let result = loop {
        if buf.is_empty() {
            break Ok(());
        }
        match conn.write(buf) {
            Ok(0) => break Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = buf.get(n..).unwrap_or_default(),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
        if !buf.is_empty() {
            let left = deadline.left();
            if left.is_zero() {
                break Err(std::io::ErrorKind::TimedOut.into());
            }
            if let Err(e) = conn.set_write_timeout(Some(left)) {
                break Err(e);
            }
            cut = true;
        }
    };
    if cut {
        conn.set_write_timeout(Some(timeout))?;
    }
    result
}

/// The response headers of a stream, in Icecast's shape: no caching, the `icy-*` fields the
/// stream has, and `icy-metaint` for a listener that asked for metadata.
fn icy_headers(stream: &Stream, wants_icy: bool) -> Vec<(&'static str, String)> {
    let info = stream.meta.info();
    let mut h = vec![
        ("Cache-Control", "no-cache, no-store".to_string()),
        ("Pragma", "no-cache".to_string()),
    ];
    for (name, value) in [
        ("icy-name", info.name),
        ("icy-genre", info.genre),
        ("icy-description", info.description),
        ("icy-url", info.url),
        ("icy-br", info.bitrate),
    ] {
        // A header value cannot hold a line break: a source could send one.
        if !value.is_empty() && !value.contains(['\r', '\n']) {
            h.push((name, value));
        }
    }
    h.push(("icy-pub", if info.public { "1" } else { "0" }.to_string()));
    if wants_icy {
        h.push(("icy-metaint", stream.cfg.icy_metaint.to_string()));
    }
    h
}
