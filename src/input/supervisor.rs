//! The source reader thread (`src-read`): opens the input, has `pump.rs` read it (header,
//! frames into the ring), and owns every retry decision (reopen with capped, jittered
//! backoff; close when quiet; close when idle; drain and stop with `-reopen=false`).

use super::pump::{pump, End, Kept, BEAT, SLICE};
use super::{open, Close};
use crate::config::StreamConfig;
use crate::link::LinkState;
use crate::stream::stats::Stats;
use crate::stream::{SourceState, Stream};
use crate::util::retry::{Retry, Then};
use log::{error, info};
use std::io;
use std::sync::Arc;
use std::time::Duration;

/// A run this long resets the reopen backoff: a looped file or a command that streams for a
/// while restarts at once, one that exits at once backs off up to 5 s.
const HEALTHY_RUN: Duration = Duration::from_secs(2);
/// How a stream's stop reason begins when its source failed with `-reopen=false`.
pub const FAILED_PREFIX: &str = "the source failed and -reopen=false";
/// A stream's stop reason when its source ended with `-reopen=false`.
const ENDED: &str = "the source ended and -reopen=false";

/// Whether a stream's stop `reason` is its own source's end with `-reopen=false` (rather
/// than a reload, shutdown or anything else from outside).
pub fn ended_by_itself(reason: &str) -> bool {
    reason == ENDED || reason.starts_with(FAILED_PREFIX)
}

/// The thread body. Returns when the stream is over; the ring is ended by then.
pub fn run(stream: Arc<Stream>, link: Option<Arc<LinkState>>) {
    let cfg = Arc::clone(&stream.cfg);
    let mut was_idle = false;
    let mut kept = Kept::new(&stream, link);
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
        let result = open_and_pump(&cfg, &stream, &mut kept);
        after_input(&cfg, &stream, result)
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

/// Opens the input, reads it until it ends, fails or is no longer wanted, and closes it.
fn open_and_pump(cfg: &StreamConfig, stream: &Arc<Stream>, kept: &mut Kept) -> io::Result<End> {
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
    open(stream).and_then(|mut input| {
        stream.set_source_state(SourceState::Open);
        let r = pump(cfg, stream, input.as_mut(), kept);
        // Stopping a child can take two grace periods.
        stream.reader_beat.beat(BEAT.saturating_mul(3));
        input.close(match r {
            Ok(End::Eof) => Close::Finished,
            _ => Close::Stop,
        });
        r
    })
}

/// What the retry loop does once an input is over: logs how it ended, and with
/// `-reopen=false` stops the stream.
fn after_input(cfg: &StreamConfig, stream: &Stream, result: io::Result<End>) -> Then {
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
}
