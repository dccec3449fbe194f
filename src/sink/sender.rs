//! A listener's sending loop: batches of frames from its feed to its socket, until its
//! response ends (the stream ends, `-client-max-bytes` is reached, the listener leaves,
//! stalls or is kicked). Apart from `server/listener.rs`, which answers the request and
//! hands the listener over, because this is the part that runs for hours: what it keeps is
//! all here.

use super::audience::Entry;
use super::feed::{Feed, Mounts};
use super::gather::Gather;
use crate::http::conn::Conn;
use crate::http::server as http;
use crate::icy::meta::Meta;
use crate::icy::Inserter;
use crate::limited;
use crate::ring::{Frame, ReadOutcome, MAX_BATCH_FRAMES};
use crate::stream::stats::Stats;
use crate::stream::Stream;
use crate::util::ratelimit::RateLimit;
use log::{debug, info, warn};
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

/// Most bytes taken from the ring per write (always at least one frame).
const BATCH_CAP: usize = 64 * 1024;
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

/// What a listener's loop keeps between batches. The fields drop in this order: the frame
/// references first, the socket last.
pub struct Sender {
    /// The one allocation of the loop, made once: room for a batch's frame references.
    batch: Vec<Frame>,
    /// The listener's own stream (it may be reading its fallback's).
    own: Arc<Stream>,
    /// Its entry in the admin's list: its kick switch and its counters.
    me: Arc<Entry>,
    icy: Option<Inserter>,
    feed: Feed,
    conn: Conn,
    peer: SocketAddr,
    write_timeout: Duration,
    /// What the listener may still receive (`-client-max-bytes`).
    client_left: u64,
    /// Bytes written to its socket.
    sent: u64,
}

impl Sender {
    /// The loop of a listener that has its response head, reading `feed`.
    pub fn new(
        conn: Conn,
        peer: SocketAddr,
        feed: Feed,
        icy: Option<Inserter>,
        me: Arc<Entry>,
        write_timeout: Duration,
    ) -> Sender {
        let own = Arc::clone(feed.own());
        let client_left = match own.cfg.client_max_bytes {
            0 => u64::MAX,
            n => n,
        };
        Sender {
            batch: Vec::with_capacity(MAX_BATCH_FRAMES.saturating_add(1)),
            own,
            me,
            icy,
            feed,
            conn,
            peer,
            write_timeout,
            client_left,
            sent: 0,
        }
    }

    /// Sends the stream from the listener's place, in batches, until its response ends;
    /// why it ended.
    pub fn send_all(&mut self, mounts: &dyn Mounts) -> End {
        let peer = self.peer;
        loop {
            // The references go before a possible wait: a sleeping sender holds no old frame.
            self.batch.clear();
            // A kick shut the socket down; a sender that slept through it ends here.
            if self.me.kicked() {
                return End::Kicked;
            }
            if let Some(to) = self.feed.follow(mounts) {
                info!("{peer}: moved to {to}");
            }
            // On the fallback, the listener's own stream ending (its mount removed, shutdown)
            // ends it too.
            if self.feed.on_fallback() && self.own.stop.is_set() {
                return End::StreamEnded;
            }
            let wait = self.idle_wait(self.feed.stream().on_air());
            let client_left = self.client_left;
            match self
                .feed
                .read(&mut self.batch, client_left, BATCH_CAP, wait)
            {
                ReadOutcome::Data {
                    header_len,
                    skipped,
                    more,
                    ..
                } => {
                    if let Err(end) = self.send_batch(header_len, skipped, more) {
                        return end;
                    }
                }
                ReadOutcome::NoRoom => return End::MaxBytes,
                // The fallback ending (its mount removed) sends the listener home.
                ReadOutcome::Ended if self.feed.on_fallback() => {}
                ReadOutcome::Ended => return End::StreamEnded,
                // Shutdown ends the ring, so a sleeping sender drains and gets `Ended`.
                // Nothing came: a player that hung up meanwhile is noticed here.
                ReadOutcome::Idle if crate::os::sys::peer_hung_up(self.conn.tcp()) => {
                    debug!("{peer}: left (while nothing was sent)");
                    return End::Left;
                }
                ReadOutcome::Idle => {}
            }
        }
    }

    /// How long to sleep in the ring when nothing comes.
    fn idle_wait(&self, on_air: bool) -> Duration {
        match self.own.cfg.fallback_mount {
            Some(_) => FOLLOW_WAIT,
            None if on_air => IDLE_WAIT,
            None => QUIET_WAIT,
        }
    }

    /// Writes the batch just read (`header_len` bytes of stream header first, `skipped`
    /// frames lapped before it, `more` to follow at once) and counts it. `Err`: the write
    /// failed, and why the response ended.
    fn send_batch(&mut self, header_len: usize, skipped: u64, more: bool) -> Result<(), End> {
        let peer = self.peer;
        if skipped > 0 {
            Stats::add(&self.own.stats.frames_skipped, skipped);
            self.me.skips.fetch_add(skipped, Relaxed);
            limited!(
                LAPPED_LOG,
                warn,
                "{peer}: too slow, skipped {skipped} frames to catch up"
            );
        }
        // The header does not count against -client-max-bytes.
        let bytes = self
            .batch
            .iter()
            .fold(0usize, |n, f| n.saturating_add(f.len()));
        let frame_bytes = bytes.saturating_sub(header_len);
        self.client_left = self.client_left.saturating_sub(frame_bytes as u64);
        let meta = &self.feed.stream().meta;
        // The whole batch within -write-timeout, however the listener trickles its reads: a
        // socket that takes a few bytes now and then is as stalled as one that takes none.
        let icy = self.icy.as_mut();
        let timeout = self.write_timeout;
        let wire = match send(&mut self.conn, &self.batch, icy, meta, more, timeout) {
            Ok(n) => n,
            Err(e) => return Err(self.write_end(&e)),
        };
        self.sent = self.sent.saturating_add(wire);
        Stats::add(&self.own.stats.bytes_out, wire);
        self.me.bytes.fetch_add(wire, Relaxed);
        Ok(())
    }

    /// Why a failed write ended the response, logged.
    fn write_end(&self, e: &std::io::Error) -> End {
        let (peer, write_timeout) = (self.peer, self.write_timeout);
        if self.me.kicked() {
            End::Kicked
        } else if http::is_disconnect(e) {
            debug!("{peer}: left");
            End::Left
        } else if http::is_stalled(e) {
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

    /// Ends the response, once the listener's places are free; the socket closes when the
    /// sender is dropped.
    pub fn close(&mut self, end: End) {
        let (peer, sent) = (self.peer, self.sent);
        // A listener dropped for not reading would keep the kernel holding its whole send
        // buffer for minutes (FIN-WAIT-1 against a zero window): reset it instead.
        if end == End::Stalled {
            if let Err(e) = crate::os::sys::reset_on_close(self.conn.tcp()) {
                debug!("{peer}: SO_LINGER: {e}");
            }
        }
        // Ends on our side finish the response cleanly; the listener's own end needs nothing.
        if matches!(end, End::MaxBytes | End::StreamEnded) {
            http::close_gracefully(&mut self.conn);
        }
        info!("{peer}: done after {sent} bytes: {end}");
    }
}

/// Why a listener's response ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
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
