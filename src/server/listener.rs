//! One listener: its sender thread body (the sending loop itself is in `sink/sender.rs`).
//! Sends the response head at once (even while the source is silent), then the stream from
//! its cursor, in batches, until the stream ends, `-client-max-bytes` is reached, the
//! listener leaves or stops reading for `-write-timeout`. The ring lock is never held across
//! the socket write. Here in the HTTP front, not in `sink/`, because admitting a listener
//! takes the server's places (its limits, the address's share, the audience) and its CORS.
//!
//! Each listener costs a thread, so its steady state is kept small: the request is dropped
//! once answered, a batch is a short list of references to ring frames (and, for a listener
//! that asked for ICY metadata, to the shared metadata block) sent with `sendmsg`, and the
//! loop allocates nothing. README, Design notes: what a listener costs.

use super::peers::Share;
use super::{Server, ServerListener};
use crate::http::conn::Conn;
use crate::http::server::{self as http, Request};
use crate::icy::Inserter;
use crate::limited;
use crate::sink::audience::{Registered, Who};
use crate::sink::feed::Feed;
use crate::sink::sender::Sender;
use crate::stream::stats::Stats;
use crate::stream::{ListenerGuard, Stream};
use crate::util::ratelimit::RateLimit;
use log::{debug, info};
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

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

static FULL_LOG: RateLimit = RateLimit::new(Duration::from_secs(5));

/// A listener that has its response head and is due the stream: what [`start`] hands
/// back for [`Listening::run`]. It owns everything the loop needs, so the frames that read
/// and answered the request can return first (README, Design notes: what a listener costs).
pub struct Listening<'s> {
    /// Its entry in the admin's list (and its kick switch). First, so that it is dropped
    /// before the socket closes: a kick shuts the socket down through the entry.
    who: Registered<'s>,
    conn: Conn,
    peer: SocketAddr,
    feed: Feed,
    icy: Option<Inserter>,
    counted: ServerListener<'s>,
    slot: ListenerGuard,
    /// Its place in its address's share of the listeners (`-max-listeners-per-ip`).
    share: Share,
    /// Runs when it has left (`-listener-auth-url`'s `listener_remove`).
    on_leave: Option<Box<dyn FnOnce() + Send + 's>>,
}

/// Answers a listener's request: refuses it when the server or the mount is full, else
/// sends the response head and fixes its place in the stream. `None` when the exchange is
/// over (refused, a `HEAD`, the listener gone). `user`: its `-listener-users` login.
pub fn start<'s>(
    mut conn: Conn,
    peer: SocketAddr,
    req: Request,
    server: &'s Server,
    stream: &Arc<Stream>,
    user: Option<String>,
) -> Option<Listening<'s>> {
    let cfg = &stream.cfg;
    let (share, counted, slot) = admit(&mut conn, peer, &req, server, stream)?;
    // The listener's place in the stream is fixed now, before it has its response head:
    // whatever the source publishes after that reaches it, however slow this thread is.
    let feed = Feed::new(server, stream, cfg.burst_bytes);
    let sndbuf = send_buffer(stream.rate.rate(Stats::get(&stream.stats.bytes_in)));
    if let Err(e) = crate::os::sys::set_send_buffer(conn.tcp(), sndbuf) {
        debug!("{peer}: SO_SNDBUF {sndbuf}: {e}");
    }
    // ICY metadata only for listeners that ask, as Icecast does.
    let wants_icy = req.header("Icy-MetaData").is_some_and(|v| v.trim() == "1");
    let mut headers = icy_headers(stream, wants_icy);
    headers.extend(super::cors::headers(server, &req));
    let head = http::head(req.minor, 200, &stream.content_type(), &headers);
    if let Err(e) = conn.write_all(head.as_bytes()) {
        debug!("{peer}: gone before the response head: {e}");
        return None;
    }
    if req.method == "HEAD" {
        // Its slot is free before the linger: the next request may come at once.
        drop((counted, slot, share));
        http::close_gracefully(&mut conn);
        return None;
    }
    Stats::add(&stream.stats.listeners_total, 1);
    log_listening(peer, &req, user.as_deref(), stream, &feed);
    let who = server.audience.add(Who {
        peer,
        mount: stream.mount().to_string(),
        user,
        agent: agent(&req).to_string(),
        tls: conn.is_tls(),
        fd: std::os::fd::AsRawFd::as_raw_fd(conn.tcp()),
    });
    Some(Listening {
        conn,
        peer,
        feed,
        icy: wants_icy.then(|| Inserter::new(cfg.icy_metaint)),
        counted,
        slot,
        share,
        who,
        on_leave: None,
    })
}

/// Takes the listener's places: its address's share (`-max-listeners-per-ip`), then the
/// server's and the mount's `-max-clients`. `None`: one is full, and the listener has its 503.
fn admit<'s>(
    conn: &mut Conn,
    peer: SocketAddr,
    req: &Request,
    server: &'s Server,
    stream: &Arc<Stream>,
) -> Option<(Share, ServerListener<'s>, ListenerGuard)> {
    let Some(share) = server.peers.enter_listener(peer.ip()) else {
        Stats::add(&stream.stats.listeners_refused, 1);
        limited!(
            FULL_LOG,
            warn,
            "{}: refused, its {} listeners are its share (-max-listeners-per-ip)",
            peer.ip(),
            server.peers.limits().max_listeners
        );
        http::respond(
            conn,
            req.minor,
            503,
            "too many listeners from this address",
            &[("Retry-After", "10")],
        );
        return None;
    };
    let counted = server.enter_listener();
    let slot = counted.as_ref().and_then(|_| stream.enter_listener());
    let whole_server = counted.is_none();
    let (Some(counted), Some(slot)) = (counted, slot) else {
        Stats::add(&stream.stats.listeners_refused, 1);
        let max = if whole_server {
            server.cfg.max_clients
        } else {
            stream.cfg.max_clients
        };
        limited!(
            FULL_LOG,
            warn,
            "{peer}: refused, -max-clients {max} reached{}",
            if whole_server { "" } else { " on this mount" }
        );
        http::respond(
            conn,
            req.minor,
            503,
            "too many listeners",
            &[("Retry-After", "10")],
        );
        return None;
    };
    Some((share, counted, slot))
}

/// The listener's `User-Agent`, or what the log and the admin's list say without one.
fn agent(req: &Request) -> &str {
    req.header("User-Agent").unwrap_or("no User-Agent")
}

/// Logs a listener that has its response head (with its login, if any), and that it starts
/// on its stream's fallback.
fn log_listening(
    peer: SocketAddr,
    req: &Request,
    user: Option<&str>,
    stream: &Stream,
    feed: &Feed,
) {
    let agent = agent(req);
    // Peer text is logged quoted ({:?} escapes control characters: no forged log lines).
    let path = crate::http::url::redacted(&req.path);
    match user {
        Some(u) => info!(
            "{peer}: listening as {u:?} ({} {path:?}, {agent:?})",
            req.method
        ),
        None => info!("{peer}: listening ({} {path:?}, {agent:?})", req.method),
    }
    if feed.on_fallback() {
        info!(
            "{peer}: {} has no source: on {} meanwhile",
            stream.mount(),
            feed.stream().mount()
        );
    }
}

impl<'s> Listening<'s> {
    /// `f` runs once the listener has left.
    pub fn on_leave(mut self, f: impl FnOnce() + Send + 's) -> Self {
        self.on_leave = Some(Box::new(f));
        self
    }

    /// Sends the stream from the listener's place, in batches, until it ends, the listener
    /// leaves or stalls, or `-client-max-bytes` is reached. Never inlined: its frame is
    /// the one that stays for hours, so it should not carry its caller's.
    #[inline(never)]
    pub fn run(self, server: &Server) {
        let Listening {
            conn,
            peer,
            feed,
            icy,
            counted,
            slot,
            share,
            who,
            on_leave,
        } = self;
        let me = Arc::clone(&who.entry);
        // The stack that reading the request and answering it touched is not needed again.
        crate::os::sys::release_unused_stack();
        let mut sender = Sender::new(conn, peer, feed, icy, me, server.cfg.write_timeout);
        let end = sender.send_all(server);
        // The slot is free before the linger below, and the entry goes before the socket
        // closes (a kick shuts the socket down through it).
        drop((counted, slot, share, who));
        sender.close(end);
        if let Some(f) = on_leave {
            f();
        }
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
        ("icy-br", stream.bitrate()),
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
