//! From bytes read to frames in the ring: the buffer of bytes not yet framed, the framer's
//! scan, header frames gathered into the stream header (Ogg), the pacer's say on when a
//! frame may go, and the counts and log lines of what was skipped.

use super::pacer::Pacer;
use crate::config::StreamConfig;
use crate::frame::{Framer, Scan, ScanCounts};
use crate::limited;
use crate::link::cutter::LinkCutter;
use crate::stream::mute::Muter;
use crate::stream::stats::Stats;
use crate::stream::Stream;
use crate::util::ratelimit::RateLimit;
use log::info;
use std::time::Duration;

static JUNK_LOG: RateLimit = RateLimit::new(Duration::from_secs(10));
static OVERSIZE_LOG: RateLimit = RateLimit::new(Duration::from_secs(10));

/// Bytes read but not yet framed. Consumed from the front without shifting on every frame.
#[derive(Default)]
pub struct FrameBuffer {
    data: Vec<u8>,
    start: usize,
}

impl FrameBuffer {
    pub fn extend(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start >= self.data.len() / 2 {
            self.data.drain(..self.start);
            self.start = 0;
        }
        self.data.extend_from_slice(bytes);
    }

    fn bytes(&self) -> &[u8] {
        self.data.get(self.start..).unwrap_or_default()
    }

    fn consume(&mut self, n: usize) {
        self.start = self.start.saturating_add(n).min(self.data.len());
    }
}

/// Header frames (Ogg's header pages) gathered until the first frame after them, when they
/// become the ring's header at once ([`crate::ring::Ring::push_header`]).
#[derive(Default)]
pub struct HeaderPages {
    pages: Vec<Vec<u8>>,
    bytes: usize,
    /// The last header published was Opus's.
    pub opus: bool,
}

/// More header than this (Ogg comment headers may carry cover art) is dropped, logged.
const MAX_HEADER_BYTES: usize = 1024 * 1024;

impl HeaderPages {
    fn add(&mut self, page: &[u8]) {
        self.bytes = self.bytes.saturating_add(page.len());
        if self.bytes > MAX_HEADER_BYTES {
            if !self.pages.is_empty() {
                log::error!(
                    "source: stream header over {MAX_HEADER_BYTES} bytes (cover art in the \
                     comments?): dropped; new listeners cannot decode until the next one"
                );
            }
            self.pages.clear();
            return;
        }
        self.pages.push(page.to_vec());
    }

    /// Makes the gathered pages the stream's header (if any were gathered), and hands them
    /// to the link in their place in the stream (a receiver finds them there).
    pub fn publish(&mut self, stream: &Stream, cutter: &mut Option<LinkCutter>) {
        if let Some(c) = cutter.as_mut() {
            for p in &self.pages {
                c.frame(p, None);
            }
        }
        if !self.pages.is_empty() {
            self.opus = self
                .pages
                .first()
                .is_some_and(|p| p.windows(8).any(|w| w == b"OpusHead"));
            stream.ring.push_header(&self.pages);
            // The stream's title from its comment header (Ogg: TITLE and ARTIST).
            if let Some(t) = super::tags::title(&self.pages.concat()) {
                if stream.meta.set_title(&t) {
                    info!("source: title {t:?} (from the stream's comment header)");
                }
            }
            log::debug!(
                "source: stream header of {} page(s), {} bytes",
                self.pages.len(),
                self.bytes
            );
        }
        self.pages.clear();
        self.bytes = 0;
    }
}

/// Whether [`Framing::emit_frames`] framed all it could, or stopped for the pacer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emitted {
    Done,
    Paused,
}

/// What [`Framing::emit_frames`] works on: where the frames go (the stream, its ring and the
/// link's cutter), and the reader's state between reads (bytes not yet framed, header pages,
/// mute, a file's pacer). One struct, so the reader hands it over whole.
pub struct Framing<'a> {
    pub cfg: &'a StreamConfig,
    pub stream: &'a Stream,
    pub framer: Box<dyn Framer>,
    pub pending: FrameBuffer,
    pub headers: HeaderPages,
    pub muter: &'a mut Muter,
    pub pacer: &'a mut Option<Pacer>,
    pub cutter: &'a mut Option<LinkCutter>,
}

impl Framing<'_> {
    /// Cuts every whole frame out of `pending` into the ring (header frames into `headers`,
    /// which go to the ring before the next frame) and accounts for what was skipped. With a
    /// pacer, stops while the audio released is ahead of the clock.
    pub fn emit_frames(&mut self, eof: bool) -> Emitted {
        let (cfg, stream) = (self.cfg, self.stream);
        let mut emitted = Emitted::Done;
        let mut counts = ScanCounts::default();
        let mut frames = 0u64;
        loop {
            // A paced file waits for its time, and while muted does not go on at all (the
            // reader sends silence meanwhile: stream/mute.rs).
            if self
                .pacer
                .as_ref()
                .is_some_and(|p| !p.ahead().is_zero() || stream.is_muted())
            {
                emitted = Emitted::Paused;
                break;
            }
            match self.framer.scan(self.pending.bytes(), eof, &mut counts) {
                Scan::Frame { skip, len } => {
                    let end = skip.saturating_add(len);
                    let Some(frame) = self.pending.bytes().get(skip..end) else {
                        // A framer promises frames inside the buffer (its property tests
                        // check); should one not, drop what is held rather than panic.
                        log::error!(
                            "framer {}: frame {skip}+{len} outside the buffer",
                            cfg.framer.name
                        );
                        self.pending.consume(usize::MAX);
                        break;
                    };
                    // Ogg: a stream that begins again gets a serial number of its own.
                    let frame = match self.muter.serials.as_mut() {
                        Some(serials) => serials.map(frame),
                        None => std::borrow::Cow::Borrowed(frame),
                    };
                    let frame = &*frame;
                    if self.framer.frame_is_header() {
                        self.headers.add(frame);
                        self.pending.consume(end);
                        frames = frames.saturating_add(1);
                        continue;
                    }
                    self.headers.publish(stream, self.cutter);
                    self.muter.opus = self.headers.opus;
                    let duration = self.framer.frame_duration(frame);
                    stream.note_frame(frame.len(), duration);
                    if let (Some(p), Some(d)) = (self.pacer.as_mut(), duration) {
                        p.add(d);
                    }
                    if let Some(out) = self.muter.pass(frame, stream.is_muted()) {
                        stream.ring.push(&out);
                        if let Some(c) = self.cutter.as_mut() {
                            let d = duration.or_else(|| crate::link::frame_duration(cfg, &out));
                            c.frame(&out, d);
                        }
                    }
                    self.pending.consume(end);
                    frames = frames.saturating_add(1);
                }
                Scan::NeedMore { skip } => {
                    self.pending.consume(skip);
                    break;
                }
            }
        }
        account(cfg, stream, &counts, frames);
        emitted
    }
}

/// Counts one [`Framing::emit_frames`]'s frames and what its scan skipped, and logs the
/// skipping (junk and oversize frames rate-limited: a broken source repeats them).
fn account(cfg: &StreamConfig, stream: &Stream, counts: &ScanCounts, frames: u64) {
    let st = &stream.stats;
    Stats::add(&st.frames_in, frames);
    Stats::add(&st.junk_bytes, counts.junk_bytes);
    Stats::add(&st.tags_skipped, counts.tags);
    Stats::add(&st.oversize_frames, counts.oversize_frames);
    if counts.junk_bytes > 0 {
        limited!(
            JUNK_LOG,
            warn,
            "source: skipped {} bytes that are not {} frames",
            counts.junk_bytes,
            cfg.framer.name
        );
    }
    if counts.oversize_frames > 0 {
        limited!(
            OVERSIZE_LOG,
            error,
            "source: dropped {} {} frame(s) larger than -frame-bytes {} (raise -frame-bytes: 2881 holds any MP3 frame, 8191 any ADTS frame)",
            counts.oversize_frames,
            cfg.framer.name,
            cfg.frame_bytes
        );
    }
    if counts.tags > 0 {
        info!(
            "source: skipped {} tag(s), {} bytes (never sent to listeners)",
            counts.tags, counts.tag_bytes
        );
    }
}
