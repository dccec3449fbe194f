//! One listener: its sender thread body. Sends the response head at once (even while the
//! source is silent), then the stream from its cursor, in batches, until the stream ends,
//! `-client-max-bytes` is reached, the listener leaves or stops reading for
//! `-write-timeout`. The ring lock is never held across the socket write.
//!
//! Each listener costs a thread, so its steady state is kept small: the request is dropped
//! once answered, a batch is a short list of references to ring frames (and, for a listener
//! that asked for ICY metadata, to the shared metadata block) sent with `sendmsg`, and the
//! loop allocates nothing. README, Design notes: what a listener costs.

use super::feed::Feed;
use super::gather::Gather;
use crate::http::conn::Conn;
use crate::http::server::{self as http, Request};
use crate::icy::meta::Meta;
use crate::icy::Inserter;
use crate::limited;
use crate::ring::{Frame, ReadOutcome, MAX_BATCH_FRAMES};
use crate::server::audience::{Registered, Who};
use crate::server::peers::Share;
use crate::server::{Server, ServerListener};
use crate::stream::stats::Stats;
use crate::stream::{ListenerGuard, Stream};
use crate::util::ratelimit::RateLimit;
use log::{debug, info, warn};
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

/// Most bytes taken from the ring per write (always at least one frame).
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
/// How long a sender sleeps in the ring when nothing comes from a source that is on air:
/// longer than any batch (`ring/wake.rs`), or it would wake for nothing between batches.
/// Shutdown and a stream's end wake it at once.
const IDLE_WAIT: Duration = Duration::from_secs(5);
/// The same while the stream is off air (no source): nothing is written that would tell a
/// listener that hung up, so the sender looks at its socket after each wait and a player
/// that left frees its slot within a second.
const QUIET_WAIT: Duration = Duration::from_secs(1);
/// The same for a listener with a `-fallback-mount`, which looks at where it should be after
/// each wait: a second at most on the wrong mount.
const FOLLOW_WAIT: Duration = Duration::from_secs(1);

static LAPPED_LOG: RateLimit = RateLimit::new(Duration::from_secs(5));
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
            &mut conn,
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
            cfg.max_clients
        };
        limited!(
            FULL_LOG,
            warn,
            "{peer}: refused, -max-clients {max} reached{}",
            if whole_server { "" } else { " on this mount" }
        );
        http::respond(
            &mut conn,
            req.minor,
            503,
            "too many listeners",
            &[("Retry-After", "10")],
        );
        return None;
    };
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
    headers.extend(crate::server::cors::headers(server, &req));
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
    let agent = req.header("User-Agent").unwrap_or("no User-Agent");
    // Peer text is logged quoted ({:?} escapes control characters: no forged log lines).
    let path = crate::http::url::redacted(&req.path);
    match &user {
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
    let who = server.audience.add(Who {
        peer,
        mount: stream.mount().to_string(),
        user,
        agent: agent.to_string(),
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
            mut conn,
            peer,
            mut feed,
            mut icy,
            counted,
            slot,
            share,
            who,
            on_leave,
        } = self;
        let me = Arc::clone(&who.entry);
        // The stack that reading the request and answering it touched is not needed again.
        crate::os::sys::release_unused_stack();
        let own = Arc::clone(feed.own());
        let write_timeout = server.cfg.write_timeout;
        let mut client_left = match own.cfg.client_max_bytes {
            0 => u64::MAX,
            n => n,
        };
        let mut sent: u64 = 0;
        let idle_wait = |on_air: bool| match own.cfg.fallback_mount {
            Some(_) => FOLLOW_WAIT,
            None if on_air => IDLE_WAIT,
            None => QUIET_WAIT,
        };
        // The one allocation of the loop, made once: room for a batch's frame references.
        let mut batch: Vec<Frame> = Vec::with_capacity(MAX_BATCH_FRAMES.saturating_add(1));
        let end = loop {
            // The references go before a possible wait: a sleeping sender holds no old frame.
            batch.clear();
            // A kick shut the socket down; a sender that slept through it ends here.
            if me.kicked() {
                break End::Kicked;
            }
            if let Some(to) = feed.follow(server) {
                info!("{peer}: moved to {to}");
            }
            // On the fallback, the listener's own stream ending (its mount removed, shutdown)
            // ends it too.
            if feed.on_fallback() && own.stop.is_set() {
                break End::StreamEnded;
            }
            let wait = idle_wait(feed.stream().on_air());
            match feed.read(&mut batch, client_left, BATCH_CAP, wait) {
                ReadOutcome::Data {
                    header_len,
                    skipped,
                    more,
                    ..
                } => {
                    if skipped > 0 {
                        Stats::add(&own.stats.frames_skipped, skipped);
                        me.skips.fetch_add(skipped, Relaxed);
                        limited!(
                            LAPPED_LOG,
                            warn,
                            "{peer}: too slow, skipped {skipped} frames to catch up"
                        );
                    }
                    // The header does not count against -client-max-bytes.
                    let bytes = batch.iter().fold(0usize, |n, f| n.saturating_add(f.len()));
                    let frame_bytes = bytes.saturating_sub(header_len);
                    client_left = client_left.saturating_sub(frame_bytes as u64);
                    let meta = &feed.stream().meta;
                    // The whole batch within -write-timeout, however the listener trickles
                    // its reads: a socket that takes a few bytes now and then is as stalled
                    // as one that takes none.
                    let icy = icy.as_mut();
                    let wire = match send(&mut conn, &batch, icy, meta, more, write_timeout) {
                        Ok(n) => n,
                        Err(e) => {
                            break if me.kicked() {
                                End::Kicked
                            } else if http::is_disconnect(&e) {
                                debug!("{peer}: left");
                                End::Left
                            } else if http::is_stalled(&e) {
                                warn!(
                                    "{peer}: not reading for {write_timeout:?} \
                                     (-write-timeout): dropped"
                                );
                                End::Stalled
                            } else {
                                info!("{peer}: write failed: {e}");
                                End::WriteFailed
                            }
                        }
                    };
                    sent = sent.saturating_add(wire);
                    Stats::add(&own.stats.bytes_out, wire);
                    me.bytes.fetch_add(wire, Relaxed);
                }
                ReadOutcome::NoRoom => break End::MaxBytes,
                // The fallback ending (its mount removed) sends the listener home.
                ReadOutcome::Ended if feed.on_fallback() => {}
                ReadOutcome::Ended => break End::StreamEnded,
                // Shutdown ends the ring, so a sleeping sender drains and gets `Ended`.
                // Nothing came: a player that hung up meanwhile is noticed here.
                ReadOutcome::Idle if crate::os::sys::peer_hung_up(conn.tcp()) => {
                    debug!("{peer}: left (while nothing was sent)");
                    break End::Left;
                }
                ReadOutcome::Idle => {}
            }
        };
        // The slot is free before the linger below, and the entry goes before the socket
        // closes (a kick shuts the socket down through it).
        drop((counted, slot, share, who));
        // A listener dropped for not reading would keep the kernel holding its whole send
        // buffer for minutes (FIN-WAIT-1 against a zero window): reset it instead.
        if end == End::Stalled {
            if let Err(e) = crate::os::sys::reset_on_close(conn.tcp()) {
                debug!("{peer}: SO_LINGER: {e}");
            }
        }
        // Ends on our side finish the response cleanly; the listener's own end needs nothing.
        if matches!(end, End::MaxBytes | End::StreamEnded) {
            http::close_gracefully(&mut conn);
        }
        info!("{peer}: done after {sent} bytes: {end}");
        if let Some(f) = on_leave {
            f();
        }
    }
}

/// Why a listener's response ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Left,
    Stalled,
    WriteFailed,
    MaxBytes,
    StreamEnded,
    Kicked,
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            End::Left => "left",
            End::Stalled => "stalled",
            End::WriteFailed => "write error",
            End::MaxBytes => "reached -client-max-bytes",
            End::StreamEnded => "the stream ended",
            End::Kicked => "kicked by the admin",
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

/// Writes one batch (the frames, with ICY metadata blocks between them for a listener that
/// asked) within `timeout`, straight from the ring's frames; the bytes written. `more`:
/// another batch follows at once.
fn send(
    conn: &mut Conn,
    batch: &[Frame],
    icy: Option<&mut Inserter>,
    meta: &Meta,
    more: bool,
    timeout: Duration,
) -> std::io::Result<u64> {
    // The title's block is shared by every listener; fetched only when someone wants it.
    let title = icy.is_some().then(|| meta.block());
    let mut out = Gather::new(conn, timeout);
    match (icy, &title) {
        (Some(inserter), Some((block, seq))) => {
            for f in batch {
                inserter.split(f, block, *seq, &mut |piece| out.push(piece));
            }
        }
        _ => batch.iter().for_each(|f| out.push(f)),
    }
    out.finish(more)
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
