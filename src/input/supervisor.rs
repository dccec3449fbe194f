//! The source reader thread (`src-read`): opens the input, reads the header, frames the bytes
//! into the ring, and owns every retry decision (reopen with capped, jittered backoff; close
//! when quiet; close when idle; drain and stop with `-reopen=false`).
//!
//! Reads wait at most one `SLICE`, so this thread notices shutdown, quiet sources and the
//! last listener leaving within that time, and flushes coalesced listener wake-ups.

use super::framing::{emit_frames, Emitted, FrameBuffer, HeaderPages};
use super::mute::Muter;
use super::pacer::Pacer;
use super::{open, Close, Got, Input};
use crate::config::StreamConfig;
use crate::link::fragments::Cutter;
use crate::stream::stats::Stats;
use crate::stream::{SourceState, Stream};
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
/// How a stream's stop reason begins when its source failed with `-reopen=false`.
pub const FAILED_PREFIX: &str = "the source failed and -reopen=false";
/// A stream's stop reason when its source ended with `-reopen=false`.
const ENDED: &str = "the source ended and -reopen=false";

/// Whether a stream's stop `reason` is its own source's end with `-reopen=false` (rather
/// than a reload, shutdown or anything else from outside).
pub fn ended_by_itself(reason: &str) -> bool {
    reason == ENDED || reason.starts_with(FAILED_PREFIX)
}

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
    // A regular file's real-time clock, kept across its loops so that reopening it costs
    // no time (README: files in real time).
    let mut pacer: Option<Pacer> = None;
    // Mute's state, and Ogg's serial numbers, also kept across a file's loops.
    let mut muter = Muter::default();
    if cfg.framer.name == "ogg" {
        muter.serials = Some(Default::default());
    }
    if stream.is_muted() {
        info!("-mute: muted until /admin/mute?mode=off");
    }
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
        // Whatever this open brings need not continue what was before it.
        stream.breaks.mark(&stream.ring);
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
            let r = pump(
                &cfg,
                &stream,
                input.as_mut(),
                &mut cutter,
                (&mut pacer, &mut muter),
            );
            // Stopping a child can take two grace periods.
            stream.reader_beat.beat(BEAT.saturating_mul(3));
            input.close(match r {
                Ok(End::Eof) => Close::Finished,
                _ => Close::Stop,
            });
            r
        });
        let failed = match result {
            Ok(End::Stop) => return Then::Done,
            Ok(End::Idle) => return Then::Again,
            Ok(End::Eof) => {
                info!("source {} ended", cfg.input_name());
                None
            }
            Err(e) => {
                Stats::add(&stream.stats.source_failures, 1);
                error!("source {}: {e}", cfg.input_name());
                Some(e)
            }
        };
        if !cfg.reopen {
            info!("-reopen=false: sending what is buffered to every listener, then ending");
            // A source that failed (a missing file, say) is an error to report, exit 1
            // without -mount (main.rs); one that ended is the normal end, exit 0.
            stream.stop.trigger(match failed {
                Some(e) => format!("{FAILED_PREFIX}: {e}"),
                None => ENDED.into(),
            });
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
    (pacer, muter): (&mut Option<Pacer>, &mut Muter),
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
    if cfg.source_bandwidth == 0 && input.is_regular_file() {
        pacer.get_or_insert_with(Pacer::new);
    } else {
        *pacer = None;
    }
    let mut chunk = vec![0u8; read_size(cfg.source_bandwidth)];
    let run_start = Instant::now();
    let mut read_total: u64 = 0;
    // A paced file has been read to its end; its last frames still go out in time.
    let mut at_eof = false;
    loop {
        if cfg.close_idle && stream.listeners() == 0 {
            return Ok(End::Idle);
        }
        if let Some(p) = pacer.as_mut() {
            let ahead = p.ahead();
            if !ahead.is_zero() {
                stream.reader_beat.beat(BEAT);
                if stream.stop.sleep(ahead.min(SLICE)) {
                    return Ok(End::Stop);
                }
                continue;
            }
            if stream.is_muted() {
                // The file waits where it is; silence made from its last frame goes out at
                // the same pace (none for a format without a silent form).
                match muter.filler(cfg.framer.name, |f| framer.frame_duration(f)) {
                    Some((quiet, d)) => {
                        stream.ring.push(&quiet);
                        p.add(d);
                    }
                    None => {
                        stream.reader_beat.beat(BEAT);
                        if stream.stop.sleep(SLICE) {
                            return Ok(End::Stop);
                        }
                    }
                }
                continue;
            }
            // Due again: release what is already read before reading more.
            let out = (&mut pending, &mut headers, &mut *muter, &mut *pacer);
            if emit_frames(cfg, stream, framer.as_mut(), out, at_eof, cutter) == Emitted::Paused {
                continue;
            }
            if at_eof {
                headers.publish(stream, cutter);
                stream.ring.flush();
                return Ok(End::Eof);
            }
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
                let out = (&mut pending, &mut headers, &mut *muter, &mut *pacer);
                emit_frames(cfg, stream, framer.as_mut(), out, false, cutter);
            }
            Slice::Eof if pacer.is_some() => at_eof = true,
            Slice::Eof => {
                let out = (&mut pending, &mut headers, &mut *muter, &mut *pacer);
                emit_frames(cfg, stream, framer.as_mut(), out, true, cutter);
                headers.publish(stream, cutter);
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

/// Read size: big for speed, small enough under `-source-bandwidth` to pace smoothly.
fn read_size(bandwidth: u64) -> usize {
    if bandwidth == 0 {
        READ_CHUNK
    } else {
        ((bandwidth / 20) as usize).clamp(1, READ_CHUNK)
    }
}
