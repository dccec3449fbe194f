//! Reading one open input, for the reader thread (`supervisor.rs`, which opens it and
//! decides what follows its end): the header bytes, then reads framed into the ring, paced
//! to a file's real time or to `-source-bandwidth`, with silence while a file is muted. Apart
//! from the supervisor so that the retry decisions read on one page and the reading on
//! another.
//!
//! Reads wait at most one `SLICE`, so the thread notices shutdown, quiet sources and the
//! last listener leaving within that time, and flushes coalesced listener wake-ups.

use super::framing::{Emitted, FrameBuffer, Framing, HeaderPages};
use super::pacer::Pacer;
use super::{Got, Input};
use crate::config::StreamConfig;
use crate::link::cutter::LinkCutter;
use crate::link::LinkState;
use crate::stream::mute::Muter;
use crate::stream::stats::Stats;
use crate::stream::Stream;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The longest a read waits: bounds how late a paused source flushes its last frames.
pub const SLICE: Duration = Duration::from_millis(100);
const READ_CHUNK: usize = 16 * 1024;
/// The reader promises a sign of life this often while it works (see `heartbeat.rs`).
pub const BEAT: Duration = Duration::from_secs(5);

/// Why one open input stopped.
#[derive(Debug)]
pub enum End {
    /// The input ended by itself.
    Eof,
    /// No listeners and `-close-idle`.
    Idle,
    /// Shutdown was requested.
    Stop,
}

/// What the reader keeps across its inputs: the link's cutter, a regular file's real-time
/// clock (so that reopening it costs no time: README, files in real time), and mute's state
/// with Ogg's serial numbers (a file's loops go on where the last one ended).
pub struct Kept {
    /// Cuts link fragments from the frames, when this instance serves the link.
    cutter: Option<LinkCutter>,
    pacer: Option<Pacer>,
    muter: Muter,
}

impl Kept {
    pub fn new(stream: &Stream, link: Option<Arc<LinkState>>) -> Kept {
        let mut muter = Muter::new(stream.cfg.framer);
        if stream.cfg.framer.numbered_pages {
            muter.serials = Some(Default::default());
        }
        Kept {
            cutter: link.map(LinkCutter::new),
            pacer: None,
            muter,
        }
    }
}

/// Reads one open input until it ends, fails or is no longer wanted.
pub fn pump(
    cfg: &StreamConfig,
    stream: &Stream,
    input: &mut dyn Input,
    kept: &mut Kept,
) -> io::Result<End> {
    // Each source start is a new epoch on the link.
    if let Some(c) = kept.cutter.as_mut() {
        c.new_epoch();
    }
    let mut quiet = Quiet::new(cfg.max_quiet_interval);
    if cfg.header_bytes > 0 {
        if let Some(end) = read_header(cfg, stream, input, &mut quiet)? {
            return Ok(end);
        }
    }
    let framer = (cfg.framer.new)(cfg.frame_bytes);
    if cfg.source_bandwidth == 0 && input.is_regular_file() {
        kept.pacer.get_or_insert_with(Pacer::new);
    } else {
        kept.pacer = None;
    }
    let mut reader = Reader {
        framing: Framing {
            cfg,
            stream,
            framer,
            pending: FrameBuffer::default(),
            headers: HeaderPages::default(),
            muter: &mut kept.muter,
            pacer: &mut kept.pacer,
            cutter: &mut kept.cutter,
        },
        quiet,
        chunk: vec![0u8; read_size(cfg.source_bandwidth)],
        run_start: Instant::now(),
        read_total: 0,
        at_eof: false,
    };
    loop {
        if cfg.close_idle && stream.listeners() == 0 {
            return Ok(End::Idle);
        }
        let step = match paced_step(&mut reader.framing, reader.at_eof) {
            Step::On => reader.read_step(input)?,
            step => step,
        };
        if let Step::Done(end) = step {
            return Ok(end);
        }
    }
}

/// Reads `-header-bytes` into the ring's header, or checks that a reopened source's are the
/// first one's. `Some` when the input ended or the stream stopped first.
fn read_header(
    cfg: &StreamConfig,
    stream: &Stream,
    input: &mut dyn Input,
    quiet: &mut Quiet,
) -> io::Result<Option<End>> {
    let mut header = vec![0u8; cfg.header_bytes];
    let mut got = 0;
    while let Some(rest) = header.get_mut(got..).filter(|r| !r.is_empty()) {
        match read_slice(stream, input, rest, quiet)? {
            Slice::Data(n) => got = got.saturating_add(n),
            Slice::Eof => return Ok(Some(End::Eof)),
            Slice::Stop => return Ok(Some(End::Stop)),
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
    Ok(None)
}

/// Where one turn of the reader's loop goes after a step.
enum Step {
    /// On to the turn's next step.
    On,
    /// Round again: the next turn.
    Again,
    /// The input is over: `pump` returns this.
    Done(End),
}

/// A paced file's turn: waits for its time, sends silence while muted, releases the frames
/// already read when due, and ends once those of a file read to its end are out.
fn paced_step(f: &mut Framing<'_>, at_eof: bool) -> Step {
    let stream = f.stream;
    let Some(p) = f.pacer.as_mut() else {
        return Step::On;
    };
    let ahead = p.ahead();
    if !ahead.is_zero() {
        stream.reader_beat.beat(BEAT);
        if stream.stop.sleep(ahead.min(SLICE)) {
            return Step::Done(End::Stop);
        }
        return Step::Again;
    }
    if stream.is_muted() {
        // The file waits where it is; silence made from its last frame goes out at the same
        // pace (none for a format without a silent form).
        let framer = &*f.framer;
        match f.muter.filler(|frame| framer.frame_duration(frame)) {
            Some((quiet, d)) => {
                stream.ring.push(&quiet);
                p.add(d);
            }
            None => {
                stream.reader_beat.beat(BEAT);
                if stream.stop.sleep(SLICE) {
                    return Step::Done(End::Stop);
                }
            }
        }
        return Step::Again;
    }
    // Due again: release what is already read before reading more.
    if f.emit_frames(at_eof) == Emitted::Paused {
        return Step::Again;
    }
    if at_eof {
        f.headers.publish(stream, f.cutter);
        stream.ring.flush();
        return Step::Done(End::Eof);
    }
    Step::On
}

/// One open input being read: its framing, and what paces `-source-bandwidth`.
struct Reader<'a> {
    framing: Framing<'a>,
    quiet: Quiet,
    chunk: Vec<u8>,
    run_start: Instant,
    read_total: u64,
    /// A paced file has been read to its end; its last frames still go out in time.
    at_eof: bool,
}

impl Reader<'_> {
    /// Under `-source-bandwidth`, waits until the next read is due; then reads once and
    /// frames what came.
    fn read_step(&mut self, input: &mut dyn Input) -> io::Result<Step> {
        let (cfg, stream) = (self.framing.cfg, self.framing.stream);
        if cfg.source_bandwidth > 0 {
            // Pace: never be more than one chunk ahead of `bandwidth × elapsed`.
            let due = Duration::from_secs_f64(self.read_total as f64 / cfg.source_bandwidth as f64);
            let ahead = due.saturating_sub(self.run_start.elapsed());
            if !ahead.is_zero() {
                if stream.stop.sleep(ahead.min(SLICE)) {
                    return Ok(Step::Done(End::Stop));
                }
                return Ok(Step::Again);
            }
        }
        let f = &mut self.framing;
        match read_slice(stream, input, &mut self.chunk, &mut self.quiet)? {
            Slice::Data(n) => {
                self.read_total = self.read_total.saturating_add(n as u64);
                Stats::add(&stream.stats.bytes_in, n as u64);
                f.pending.extend(self.chunk.get(..n).unwrap_or_default());
                f.emit_frames(false);
            }
            Slice::Eof if f.pacer.is_some() => self.at_eof = true,
            Slice::Eof => {
                f.emit_frames(true);
                f.headers.publish(stream, f.cutter);
                stream.ring.flush();
                return Ok(Step::Done(End::Eof));
            }
            Slice::Stop => return Ok(Step::Done(End::Stop)),
            Slice::Nothing => {
                if let Some(c) = f.cutter.as_mut() {
                    c.tick();
                }
            }
        }
        Ok(Step::Again)
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

/// Read size: big for speed, small enough under `-source-bandwidth` to pace smoothly.
fn read_size(bandwidth: u64) -> usize {
    if bandwidth == 0 {
        READ_CHUNK
    } else {
        ((bandwidth / 20) as usize).clamp(1, READ_CHUNK)
    }
}
