//! The `link-play` thread, the receiver's source: it takes the verified messages the link
//! sessions (`receiver.rs`) put in the inbox, keeps the playout buffer, and puts due frames
//! into the ring. Apart from the sessions because it is one thread with its own state (the
//! playout, the fragment cutter, Ogg's header pages and page numbering) that outlives them.

use super::fragments::Cutter;
use super::paths::Arrivals;
use super::playout::Playout;
use super::wire::Msg;
use super::{local_us, Inbound, LinkState};
use crate::frame::ogg::HeaderTracker;
use crate::limited;
use crate::stream::mute::Muter;
use crate::stream::stats::Stats;
use crate::stream::{SourceState, Stream};
use crate::util::ratelimit::RateLimit;
use crossbeam_channel::{Receiver, RecvTimeoutError};
use log::{info, warn};
use std::borrow::Cow;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// The `link-play` thread: the receiver's source. Takes messages from the inbox, keeps the
/// playout buffer, and puts due frames into the ring (and into this instance's own fragment
/// log, so a receiver can be the origin of another hop).
pub fn run_play(stream: &Stream, link: &LinkState) {
    let Some(inbox) = link.take_inbox() else {
        return;
    };
    let mut play = PlayLoop::new(link, stream);
    stream.set_source_state(SourceState::Open);
    while !stream.stop.is_set() {
        stream.reader_beat.beat(Duration::from_secs(5));
        match inbox.recv_timeout(Duration::from_millis(10)) {
            Ok(first) => play.take_batch(first, &inbox),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        play.release_due();
        play.report();
    }
    stream.set_source_state(SourceState::Ended);
    stream.ring.end();
}

/// What the link player keeps from one turn of its loop to the next.
struct PlayLoop<'a> {
    link: &'a LinkState,
    stream: &'a Stream,
    playout: Playout,
    cutter: Cutter,
    /// The frames one turn releases, and which of them begin after a break.
    out: Vec<Vec<u8>>,
    breaks: Vec<usize>,
    /// Ogg's header pages among the frames, gathered until the page after them.
    ogg_headers: Option<HeaderTracker>,
    header_pages: Vec<Vec<u8>>,
    /// Ogg: the numbering of what went out, for silent Opus pages during a long outage.
    ogg_quiet: Option<Muter>,
    last_report: Instant,
    epoch: Option<u64>,
    filling: SilenceFill,
    arrivals: Arrivals,
}

impl<'a> PlayLoop<'a> {
    fn new(link: &'a LinkState, stream: &'a Stream) -> PlayLoop<'a> {
        let pages = stream.cfg.framer.numbered_pages;
        let ogg_headers = pages.then(HeaderTracker::default);
        let ogg_quiet = pages.then(|| Muter::new(stream.cfg.framer));
        PlayLoop {
            link,
            stream,
            playout: Playout::new(i64::try_from(link.cfg.delay.as_micros()).unwrap_or(i64::MAX)),
            cutter: Cutter::new(link.cfg.fragment),
            out: Vec::new(),
            breaks: Vec::new(),
            ogg_headers,
            header_pages: Vec::new(),
            ogg_quiet,
            last_report: Instant::now(),
            epoch: None,
            filling: SilenceFill::default(),
            arrivals: Arrivals::default(),
        }
    }

    /// Takes `first` and every message waiting behind it.
    fn take_batch(&mut self, first: Inbound, inbox: &Receiver<Inbound>) {
        let mut player = Player {
            link: self.link,
            stream: self.stream,
            playout: &mut self.playout,
            epoch: &mut self.epoch,
            max_frame: self.stream.cfg.frame_bytes,
            arrivals: &mut self.arrivals,
        };
        player.take(first);
        while let Ok(more) = inbox.try_recv() {
            player.take(more);
        }
        // A receiver joining mid-stream learns the format from the header the
        // origin's meta message set.
        if let Some(h) = self.stream.ring.header() {
            hear_opus(self.ogg_quiet.as_mut(), &mut self.playout, &h);
        }
    }

    /// Puts the frames due now into the ring, then lets the cutter close a fragment whose
    /// time is up.
    fn release_due(&mut self) {
        self.out.clear();
        self.breaks.clear();
        let silent_before = self.playout.stats.silence_frames;
        self.playout
            .due(local_us(), &mut self.out, &mut self.breaks);
        self.filling.note(
            self.playout
                .stats
                .silence_frames
                .saturating_sub(silent_before),
            self.out.len(),
        );
        // Taken out for the loop (and put back, keeping its allocation): `put` needs `self`.
        let out = std::mem::take(&mut self.out);
        for (i, f) in out.iter().enumerate() {
            self.put(i, f);
        }
        self.out = out;
        self.cutter.tick(&self.link.log);
    }

    /// Puts released frame `i` into the ring and the fragment log; Ogg header pages are
    /// gathered into the ring's header instead.
    fn put(&mut self, i: usize, f: &[u8]) {
        let (link, stream) = (self.link, self.stream);
        let silent = self.playout.silent_at.contains(&i);
        let header = !silent && self.ogg_headers.as_mut().is_some_and(|t| t.is_header(f));
        let Some(f) = ogg_page(self.ogg_quiet.as_mut(), f, silent, header) else {
            return;
        };
        let f = f.as_ref();
        if self.breaks.contains(&i) {
            stream.breaks.mark(&stream.ring);
        }
        // Ogg: header pages become the ring's header before the page after them, as
        // the origin's framer made them (a new listener gets them first).
        if header {
            hear_opus(self.ogg_quiet.as_mut(), &mut self.playout, f);
            self.header_pages.push(f.to_vec());
            self.cutter.frame(f, None, &link.log);
            return;
        }
        if !self.header_pages.is_empty() {
            // The header the origin sent when we connected comes again in-stream when
            // its log still holds it: listeners have it already.
            let same = stream
                .ring
                .header()
                .is_some_and(|h| *h == self.header_pages.concat()[..]);
            if !same {
                stream.ring.push_header(&self.header_pages);
            }
            self.header_pages.clear();
        }
        stream.ring.push(f);
        Stats::add(&stream.stats.frames_in, 1);
        Stats::add(&stream.stats.bytes_in, f.len() as u64);
        let duration = super::frame_duration(&stream.cfg, f);
        stream.note_frame(f.len(), duration);
        self.cutter.frame(f, duration, &link.log);
    }

    /// Every 200 ms: flushes the ring and publishes the playout's counters.
    fn report(&mut self) {
        if self.last_report.elapsed() >= Duration::from_millis(200) {
            self.last_report = Instant::now();
            self.stream.ring.flush();
            let s = self.playout.stats;
            let link = self.link;
            link.stats.silence_frames.store(s.silence_frames, Relaxed);
            link.stats.frames_dropped.store(s.frames_dropped, Relaxed);
            link.stats.buffer_ms.store(
                u64::try_from(self.playout.buffered_us(local_us()) / 1000).unwrap_or(0),
                Relaxed,
            );
        }
    }
}

/// What goes out for released frame `f` (`quiet`: set for Ogg): Ogg Opus silence becomes
/// silent pages numbered on from the last page, and the pages after it are renumbered to
/// follow (a player's clock never goes back). `None`: nothing goes out for it.
fn ogg_page<'f>(
    quiet: Option<&mut Muter>,
    f: &'f [u8],
    silent: bool,
    header: bool,
) -> Option<Cow<'f, [u8]>> {
    match quiet {
        Some(q) if silent => q.filler(|_| None).map(|(page, _)| Cow::Owned(page)),
        Some(q) if !header => {
            // A stream's end (EOS) would leave the silence that may follow with no
            // stream to belong to: the receiver's Opus streams run on to the next
            // beginning (BOS) instead, which players take as the chain's next link.
            let open = q.opus.then(|| without_eos(f)).flatten();
            let page = q.pass(open.as_deref().unwrap_or(f), false)?;
            Some(Cow::Owned(page.into_owned()))
        }
        _ => Some(Cow::Borrowed(f)),
    }
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
    arrivals: &'a mut Arrivals,
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
