//! The source reader thread (`src-read`): opens the input, reads the header, frames the bytes
//! into the ring, and owns every retry decision (reopen with capped, jittered backoff; close
//! when quiet; close when idle; drain and stop with `-reopen=false`).
//!
//! Reads wait at most one `SLICE`, so this thread notices shutdown, quiet sources and the
//! last listener leaving within that time, and flushes coalesced listener wake-ups.

use super::{open, Close, Got, Input};
use crate::config::StreamConfig;
use crate::frame::{Framer, Scan, ScanCounts};
use crate::limited;
use crate::link::fragments::Cutter;
use crate::stream::stats::Stats;
use crate::stream::{SourceState, Stream};
use crate::util::ratelimit::RateLimit;
use crate::util::retry::{Retry, Then};
use log::{error, info};
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The longest a read waits: bounds how late a paused source flushes its last frames.
const SLICE: Duration = Duration::from_millis(100);
/// A run this long resets the reopen backoff: a looped file or a command that streams for a
/// while restarts at once, one that exits at once backs off up to 5 s.
const HEALTHY_RUN: Duration = Duration::from_secs(2);
const READ_CHUNK: usize = 16 * 1024;
/// The reader promises a sign of life this often while it works (see `heartbeat.rs`).
const BEAT: Duration = Duration::from_secs(5);

static JUNK_LOG: RateLimit = RateLimit::new(Duration::from_secs(10));
static OVERSIZE_LOG: RateLimit = RateLimit::new(Duration::from_secs(10));

/// Why one open input stopped.
#[derive(Debug)]
enum End {
    /// The input ended by itself.
    Eof,
    /// No listeners and `-close-idle`.
    Idle,
    /// Shutdown was requested.
    Stop,
}

/// The thread body. Returns when the stream is over; the ring is ended by then.
pub fn run(stream: Arc<Stream>) {
    let cfg = Arc::clone(&stream.cfg);
    let mut was_idle = false;
    // Cuts link fragments from the frames, when this instance serves the link.
    let mut cutter = stream.link.as_ref().map(|l| Cutter::new(l.cfg.fragment));
    let attempt = || {
        stream.reader_beat.beat(BEAT);
        if cfg.close_idle && stream.listeners() == 0 {
            if !was_idle {
                info!("no listeners: source closed until one connects");
                stream.set_source_state(SourceState::Idle);
                stream.ring.mark_stale();
                was_idle = true;
            }
            stream.wait_listeners(SLICE.saturating_mul(5), |n| n > 0);
            return Then::Again;
        }
        was_idle = false;
        Stats::add(&stream.stats.source_opens, 1);
        stream.set_source_state(SourceState::Opening);
        // Opening a FIFO waits for a writer as long as it takes: that is not a hang. Dialling
        // an upstream is bounded by its deadlines, and so is the watchdog's patience.
        match cfg.input {
            crate::config::InputSpec::Url(_) => stream
                .reader_beat
                .beat(super::upstream::CONNECT_BOUND.saturating_add(BEAT)),
            _ => stream.reader_beat.waiting(),
        }
        let result = open(&stream).and_then(|mut input| {
            stream.set_source_state(SourceState::Open);
            let r = pump(&cfg, &stream, input.as_mut(), &mut cutter);
            // Stopping a child can take two grace periods.
            stream.reader_beat.beat(BEAT.saturating_mul(3));
            input.close(match r {
                Ok(End::Eof) => Close::Finished,
                _ => Close::Stop,
            });
            r
        });
        match result {
            Ok(End::Stop) => return Then::Done,
            Ok(End::Idle) => return Then::Again,
            Ok(End::Eof) => info!("source {} ended", cfg.input_name()),
            Err(e) => {
                Stats::add(&stream.stats.source_failures, 1);
                error!("source {}: {e}", cfg.input_name());
            }
        }
        if !cfg.reopen {
            info!("-reopen=false: sending what is buffered to every listener, then ending");
            stream.stop.trigger("the source ended and -reopen=false");
            return Then::Done;
        }
        Then::Retry
    };
    let waiting = |delay: Duration| {
        info!("reopening the source in {:.1}s", delay.as_secs_f64());
        stream.set_source_state(SourceState::Reopening);
        stream.reader_beat.beat(delay.saturating_add(BEAT));
    };
    Retry::new(
        Duration::from_millis(100),
        Duration::from_secs(5),
        HEALTHY_RUN,
    )
    .run(&stream.stop, attempt, waiting);
    stream.set_source_state(SourceState::Ended);
    stream.reader_beat.waiting();
    stream.ring.end();
}

/// Reads one open input until it ends, fails or is no longer wanted.
fn pump(
    cfg: &StreamConfig,
    stream: &Stream,
    input: &mut dyn Input,
    cutter: &mut Option<Cutter>,
) -> io::Result<End> {
    // Each source start is a new epoch on the link.
    if let (Some(c), Some(l)) = (cutter.as_mut(), stream.link.as_ref()) {
        c.new_epoch(&l.log);
    }
    let mut quiet = Quiet::new(cfg.max_quiet_interval);
    if cfg.header_bytes > 0 {
        let mut header = vec![0u8; cfg.header_bytes];
        let mut got = 0;
        while let Some(rest) = header.get_mut(got..).filter(|r| !r.is_empty()) {
            match read_slice(stream, input, rest, &mut quiet)? {
                Slice::Data(n) => got = got.saturating_add(n),
                Slice::Eof => return Ok(End::Eof),
                Slice::Stop => return Ok(End::Stop),
                Slice::Nothing => {}
            }
        }
        Stats::add(&stream.stats.bytes_in, got as u64);
        match stream.ring.header() {
            None => stream.ring.set_header(header.into()),
            Some(h) if *h == header[..] => {}
            Some(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the reopened source's header differs from the first one (-header-bytes); \
                     listeners cannot follow a format change",
                ))
            }
        }
    }

    let mut framer = (cfg.framer.new)(cfg.frame_bytes);
    let mut pending = FrameBuffer::default();
    let mut headers = HeaderPages::default();
    let mut chunk = vec![0u8; read_size(cfg.source_bandwidth)];
    let run_start = Instant::now();
    let mut read_total: u64 = 0;
    loop {
        if cfg.close_idle && stream.listeners() == 0 {
            return Ok(End::Idle);
        }
        if cfg.source_bandwidth > 0 {
            // Pace: never be more than one chunk ahead of `bandwidth × elapsed`.
            let due = Duration::from_secs_f64(read_total as f64 / cfg.source_bandwidth as f64);
            let ahead = due.saturating_sub(run_start.elapsed());
            if !ahead.is_zero() {
                if stream.stop.sleep(ahead.min(SLICE)) {
                    return Ok(End::Stop);
                }
                continue;
            }
        }
        match read_slice(stream, input, &mut chunk, &mut quiet)? {
            Slice::Data(n) => {
                read_total = read_total.saturating_add(n as u64);
                Stats::add(&stream.stats.bytes_in, n as u64);
                pending.extend(chunk.get(..n).unwrap_or_default());
                let out = (&mut pending, &mut headers);
                emit_frames(cfg, stream, framer.as_mut(), out, false, cutter);
            }
            Slice::Eof => {
                let out = (&mut pending, &mut headers);
                emit_frames(cfg, stream, framer.as_mut(), out, true, cutter);
                headers.publish(stream);
                stream.ring.flush();
                return Ok(End::Eof);
            }
            Slice::Stop => return Ok(End::Stop),
            Slice::Nothing => {
                if let (Some(c), Some(l)) = (cutter.as_mut(), stream.link.as_ref()) {
                    c.tick(&l.log);
                }
            }
        }
    }
}

enum Slice {
    Data(usize),
    Eof,
    Stop,
    Nothing,
}

/// One read of at most `SLICE`, with the housekeeping a pause allows.
fn read_slice(
    stream: &Stream,
    input: &mut dyn Input,
    buf: &mut [u8],
    quiet: &mut Quiet,
) -> io::Result<Slice> {
    if stream.stop.is_set() {
        return Ok(Slice::Stop);
    }
    stream.reader_beat.beat(BEAT);
    match input.read_timeout(buf, SLICE)? {
        Got::End => Ok(Slice::Eof),
        Got::Bytes(n) => {
            quiet.heard();
            Ok(Slice::Data(n))
        }
        Got::Nothing => {
            stream.ring.flush();
            quiet.check()?;
            Ok(Slice::Nothing)
        }
    }
}

/// `-max-quiet-interval`: how long the source may stay silent.
struct Quiet {
    limit: Option<Duration>,
    last: Instant,
}

impl Quiet {
    fn new(limit: Option<Duration>) -> Quiet {
        Quiet {
            limit,
            last: Instant::now(),
        }
    }

    fn heard(&mut self) {
        self.last = Instant::now();
    }

    fn check(&self) -> io::Result<()> {
        match self.limit {
            Some(limit) if self.last.elapsed() >= limit => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "no data for {:.1}s (-max-quiet-interval): closing it",
                    limit.as_secs_f64()
                ),
            )),
            _ => Ok(()),
        }
    }
}

/// Bytes read but not yet framed. Consumed from the front without shifting on every frame.
#[derive(Default)]
struct FrameBuffer {
    data: Vec<u8>,
    start: usize,
}

impl FrameBuffer {
    fn extend(&mut self, bytes: &[u8]) {
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
struct HeaderPages {
    pages: Vec<Vec<u8>>,
    bytes: usize,
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

    /// Makes the gathered pages the stream's header (if any were gathered).
    fn publish(&mut self, stream: &Stream) {
        if !self.pages.is_empty() {
            stream.ring.push_header(&self.pages);
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

/// Cuts every whole frame out of `pending` into the ring (header frames into `headers`,
/// which go to the ring before the next frame) and accounts for what was skipped.
fn emit_frames(
    cfg: &StreamConfig,
    stream: &Stream,
    framer: &mut dyn Framer,
    (pending, headers): (&mut FrameBuffer, &mut HeaderPages),
    eof: bool,
    cutter: &mut Option<Cutter>,
) {
    let mut counts = ScanCounts::default();
    let mut frames = 0u64;
    loop {
        match framer.scan(pending.bytes(), eof, &mut counts) {
            Scan::Frame { skip, len } => {
                let end = skip.saturating_add(len);
                let Some(frame) = pending.bytes().get(skip..end) else {
                    // A framer promises frames inside the buffer (its property tests check);
                    // should one not, drop what is held rather than panic.
                    log::error!(
                        "framer {}: frame {skip}+{len} outside the buffer",
                        cfg.framer.name
                    );
                    pending.consume(usize::MAX);
                    break;
                };
                if framer.frame_is_header() {
                    headers.add(frame);
                    pending.consume(end);
                    frames = frames.saturating_add(1);
                    continue;
                }
                headers.publish(stream);
                stream.ring.push(frame);
                if let (Some(c), Some(l)) = (cutter.as_mut(), stream.link.as_ref()) {
                    c.frame(frame, crate::link::frame_duration(cfg, frame), &l.log);
                }
                pending.consume(end);
                frames = frames.saturating_add(1);
            }
            Scan::NeedMore { skip } => {
                pending.consume(skip);
                break;
            }
        }
    }
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
            "source: dropped {} {} frame(s) larger than -frame-bytes {} (raise -frame-bytes; the largest MP3 frame is 2881)",
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

/// Read size: big for speed, small enough under `-source-bandwidth` to pace smoothly.
fn read_size(bandwidth: u64) -> usize {
    if bandwidth == 0 {
        READ_CHUNK
    } else {
        ((bandwidth / 20) as usize).clamp(1, READ_CHUNK)
    }
}
