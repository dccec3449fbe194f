//! The receiver's side of the link: dialling the origin (`-link-pull`), taking a pusher
//! (`-link-receive`; the newest authenticated pusher wins, so it may change address at will),
//! and the `link-play` thread that turns verified messages into frames in the ring.
//!
//! A session ends on a MAC failure (a corrupted or tampered message: the redial fetches it
//! again, since we resume after the last good fragment), on 3 s without any message (a
//! stalled path that never closed), or when replaced.

use super::fragments::Cutter;
use super::handshake::{accept, dial};
use super::playout::Playout;
use super::wire::{self, Msg, ReadError};
use super::{local_us, Inbound, LinkState, HEARTBEAT, INBOX_BYTES, STALL};
use crate::http::chunked::{is_chunked, ChunkedReader};
use crate::http::conn::Conn;
use crate::http::server::Request;
use crate::input::mute::Muter;
use crate::limited;
use crate::server::Server;
use crate::stream::stats::Stats;
use crate::stream::{SourceState, Stream};
use crate::util::ratelimit::RateLimit;
use crossbeam_channel::{RecvTimeoutError, SendTimeoutError};
use log::{info, warn};
use std::cell::RefCell;
use std::io::{self, BufReader, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// A `link-pull` thread: pulls the stream over path `path` (its `-link-pull`).
pub fn run_pull(stream: &Stream, path: usize) {
    let cfg = &stream.cfg;
    let (Some(link), Some(p)) = (
        stream.link.as_ref(),
        cfg.link.as_ref().and_then(|l| l.pull.get(path).cloned()),
    ) else {
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
    server: &Server,
    stream: &Stream,
) {
    let fields = ["nonce", "cnonce", "after", "want", "oid"];
    let Some((link, [_, _, after, _, oid], key)) =
        accept(&mut conn, peer, req, server, stream, "push", fields)
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

/// The `link-play` thread: the receiver's source. Takes messages from the inbox, keeps the
/// playout buffer, and puts due frames into the ring (and into this instance's own fragment
/// log, so a receiver can be the origin of another hop).
pub fn run_play(stream: &Stream) {
    let cfg = &stream.cfg;
    let Some(link) = stream.link.as_ref() else {
        return;
    };
    let Some(inbox) = link.take_inbox() else {
        return;
    };
    let mut playout = Playout::new(i64::try_from(link.cfg.delay.as_micros()).unwrap_or(i64::MAX));
    let mut cutter = Cutter::new(link.cfg.fragment);
    let (mut out, mut breaks) = (Vec::new(), Vec::new());
    // Ogg's header pages among the frames, gathered until the page after them.
    let mut ogg_headers =
        (cfg.framer.name == "ogg").then(crate::frame::ogg::HeaderTracker::default);
    let mut header_pages: Vec<Vec<u8>> = Vec::new();
    // Ogg: the numbering of what went out, for silent Opus pages during a long outage.
    let mut ogg_quiet = ogg_headers.is_some().then(Muter::default);
    let mut last_report = Instant::now();
    let mut epoch = None;
    let mut filling = SilenceFill::default();
    let mut arrivals = super::paths::Arrivals::default();
    stream.set_source_state(SourceState::Open);
    while !stream.stop.is_set() {
        stream.reader_beat.beat(Duration::from_secs(5));
        match inbox.recv_timeout(Duration::from_millis(10)) {
            Ok(first) => {
                let mut play = Player {
                    link,
                    stream,
                    playout: &mut playout,
                    epoch: &mut epoch,
                    max_frame: cfg.frame_bytes,
                    arrivals: &mut arrivals,
                };
                play.take(first);
                while let Ok(more) = inbox.try_recv() {
                    play.take(more);
                }
                // A receiver joining mid-stream learns the format from the header the
                // origin's meta message set.
                if let Some(h) = stream.ring.header() {
                    hear_opus(ogg_quiet.as_mut(), &mut playout, &h);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        out.clear();
        breaks.clear();
        let silent_before = playout.stats.silence_frames;
        playout.due(local_us(), &mut out, &mut breaks);
        filling.note(
            playout.stats.silence_frames.saturating_sub(silent_before),
            out.len(),
        );
        for (i, f) in out.iter().enumerate() {
            let silent = playout.silent_at.contains(&i);
            let header = !silent && ogg_headers.as_mut().is_some_and(|t| t.is_header(f));
            // Ogg Opus: silence becomes silent pages numbered on from the last page, and the
            // pages after it are renumbered to follow (a player's clock never goes back).
            let f: std::borrow::Cow<[u8]> = match ogg_quiet.as_mut() {
                Some(q) if silent => match q.filler("ogg", |_| None) {
                    Some((page, _)) => page.into(),
                    None => continue,
                },
                Some(q) if !header => {
                    // A stream's end (EOS) would leave the silence that may follow with no
                    // stream to belong to: the receiver's Opus streams run on to the next
                    // beginning (BOS) instead, which players take as the chain's next link.
                    let open = q.opus.then(|| without_eos(f)).flatten();
                    match q.pass("ogg", open.as_deref().unwrap_or(f), false) {
                        Some(page) => page.into_owned().into(),
                        None => continue,
                    }
                }
                _ => f.as_slice().into(),
            };
            let f = f.as_ref();
            if breaks.contains(&i) {
                stream.breaks.mark(&stream.ring);
            }
            // Ogg: header pages become the ring's header before the page after them, as
            // the origin's framer made them (a new listener gets them first).
            if header {
                hear_opus(ogg_quiet.as_mut(), &mut playout, f);
                header_pages.push(f.to_vec());
                cutter.frame(f, None, &link.log);
                continue;
            }
            if !header_pages.is_empty() {
                // The header the origin sent when we connected comes again in-stream when
                // its log still holds it: listeners have it already.
                let same = stream
                    .ring
                    .header()
                    .is_some_and(|h| *h == header_pages.concat()[..]);
                if !same {
                    stream.ring.push_header(&header_pages);
                }
                header_pages.clear();
            }
            stream.ring.push(f);
            Stats::add(&stream.stats.frames_in, 1);
            Stats::add(&stream.stats.bytes_in, f.len() as u64);
            let duration = super::frame_duration(cfg, f);
            stream.note_frame(f.len(), duration);
            cutter.frame(f, duration, &link.log);
        }
        cutter.tick(&link.log);
        if last_report.elapsed() >= Duration::from_millis(200) {
            last_report = Instant::now();
            stream.ring.flush();
            let s = playout.stats;
            link.stats.silence_frames.store(s.silence_frames, Relaxed);
            link.stats.frames_dropped.store(s.frames_dropped, Relaxed);
            link.stats.buffer_ms.store(
                u64::try_from(playout.buffered_us(local_us()) / 1000).unwrap_or(0),
                Relaxed,
            );
        }
    }
    stream.set_source_state(SourceState::Ended);
    stream.ring.end();
}

/// Ogg header bytes that name Opus make the player fill outages with silent Opus pages
/// (once; Vorbis and FLAC have no silent form).
fn hear_opus(quiet: Option<&mut Muter>, playout: &mut Playout, header: &[u8]) {
    if let Some(q) = quiet.filter(|q| !q.opus) {
        if header.windows(8).any(|w| w == b"OpusHead") {
            q.opus = true;
            playout.fill_ogg_silence();
        }
    }
}

/// An Ogg page with its end-of-stream flag cleared (and its CRC sealed again); `None` when
/// it has none.
fn without_eos(page: &[u8]) -> Option<Vec<u8>> {
    let flags = *page.get(5)?;
    if flags & 0x04 == 0 {
        return None;
    }
    let mut open = page.to_vec();
    *open.get_mut(5)? = flags & !0x04;
    crate::frame::ogg::seal(&mut open);
    Some(open)
}

/// Says when the player starts filling silence (the link was down longer than the delay)
/// and when live audio takes over again.
#[derive(Default)]
struct SilenceFill {
    since: Option<(Instant, u64)>,
}

impl SilenceFill {
    /// One call of the playout made `silent` silence frames of `all` it released.
    fn note(&mut self, silent: u64, all: usize) {
        match self.since.as_mut() {
            None if silent > 0 => {
                warn!("link: nothing from the origin for longer than -link-delay: playing silence");
                self.since = Some((Instant::now(), silent));
            }
            Some((_, n)) if silent > 0 => *n = n.saturating_add(silent),
            Some((t, n)) if all > 0 => {
                info!(
                    "link: live audio again after {} of silence ({n} frames)",
                    crate::util::timefmt::span(t.elapsed())
                );
                self.since = None;
            }
            _ => {}
        }
    }
}

/// What the link player works on while it takes a batch of messages.
struct Player<'a> {
    link: &'a LinkState,
    stream: &'a Stream,
    playout: &'a mut Playout,
    epoch: &'a mut Option<u64>,
    /// `-frame-bytes`: a larger frame from the peer is refused with its fragment.
    max_frame: usize,
    /// Which path brought what first.
    arrivals: &'a mut super::paths::Arrivals,
}

static REFUSED_LOG: RateLimit = RateLimit::new(Duration::from_secs(5));

impl Player<'_> {
    /// Takes one verified message: fragments go to the playout (duplicates and replays of
    /// what we hold are ignored, absurd ones refused), heartbeats tune the clock, gaps are
    /// counted, meta is applied.
    fn take(&mut self, msg: Inbound) {
        let (link, stream) = (self.link, self.stream);
        let (msg, at, path) = msg;
        link.inbox_bytes.fetch_sub(msg.size(), Relaxed);
        match msg {
            Msg::Fragment { sent_us, frag } => {
                if let Some(big) = frag.frames().map(<[u8]>::len).find(|&l| l > self.max_frame) {
                    link.stats.fragments_refused.fetch_add(1, Relaxed);
                    limited!(
                        REFUSED_LOG,
                        warn,
                        "link: fragment {} refused: a frame of {big} bytes (over -frame-bytes {})",
                        frag.seq,
                        self.max_frame
                    );
                    return;
                }
                // Every path carries the whole stream: the first copy of a fragment plays,
                // a later one (another path's, or a replay) is counted and dropped.
                let pos = (frag.epoch, frag.seq);
                let mut held = link.held.lock();
                if held.is_some_and(|(e, s)| e == frag.epoch && frag.seq <= s) {
                    drop(held);
                    link.stats.duplicates.fetch_add(1, Relaxed);
                    self.arrivals.late(&link.paths, path, pos, at);
                    return;
                }
                *held = Some(pos);
                drop(held);
                self.arrivals.first(&link.paths, path, pos, at);
                if *self.epoch != Some(frag.epoch) {
                    if self.epoch.is_some() {
                        info!("link: the origin's source restarted (new epoch)");
                    }
                    *self.epoch = Some(frag.epoch);
                }
                if let Err(why) = self.playout.add(at, sent_us, &frag) {
                    link.stats.fragments_refused.fetch_add(1, Relaxed);
                    limited!(
                        REFUSED_LOG,
                        warn,
                        "link: fragment {} refused: {why}",
                        frag.seq
                    );
                }
            }
            Msg::Heartbeat { sent_us, .. } => self.playout.clock_sample(at, sent_us),
            Msg::Gap { epoch: e, from, to } => {
                link.stats.gaps.fetch_add(1, Relaxed);
                warn!("link: fragments {from}..={to} are lost (the origin no longer had them)");
                let mut held = link.held.lock();
                if held.is_none_or(|(he, hs)| he != e || hs < to) {
                    *held = Some((e, to));
                }
            }
            Msg::Meta {
                content_type,
                header,
                title,
            } => {
                if stream.set_content_type(&content_type) {
                    info!("link: content type {content_type:?} (the origin's)");
                }
                if !header.is_empty() && stream.ring.header().is_none() {
                    stream.ring.set_header(header.into());
                }
                if !title.is_empty() && stream.meta.set_title(&title) {
                    info!("link: title {title:?}");
                }
            }
        }
    }
}

/// Reads the connection a RefCell shares (see `serve_push`).
struct Shared<'a>(&'a RefCell<Conn>);

impl Read for Shared<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.borrow_mut().read(buf)
    }
}
