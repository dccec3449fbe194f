//! The dialling side's loop (`link-pull`, `link-push`): one session after another, with a
//! short, capped backoff between them, and each session's end (or failed dial) told in its
//! path's log. Kept out of `mod.rs`, which holds the state the link's threads share, so the
//! one place that decides when to dial again reads on its own.

use super::{path_log, LinkState, REDIAL_MAX, REDIAL_MIN};
use crate::stream::Stream;
use crate::util::retry::{Retry, Then};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// The dialling side's loop (`link-pull`, `link-push`): run a session until it ends, then
/// redial after a short, capped, jittered backoff, reset by a session that lasted.
pub fn redial(
    stream: &Stream,
    link: &LinkState,
    what: &str,
    receiver: bool,
    path: usize,
    mut session: impl FnMut() -> std::io::Result<()>,
) {
    let p = link.paths.get(path);
    let label = p.label.lock().clone();
    p.log
        .lock()
        .begin(format!("link {what} {label}"), Instant::now());
    let attempt = || {
        let sessions = p.connects.load(Relaxed);
        let result = session();
        link.set_up(path, false);
        if stream.stop.is_set() {
            return Then::Retry; // stopping: the retry loop sees it
        }
        let why = match &result {
            Ok(()) => "the session ended".to_string(),
            Err(e) => e.to_string(),
        };
        let line = if p.connects.load(Relaxed) > sessions {
            Some(
                p.log
                    .lock()
                    .lost(Instant::now(), link.silence(receiver), &why),
            )
        } else {
            link.stats.dial_failures.fetch_add(1, Relaxed);
            p.dial_failures.fetch_add(1, Relaxed);
            log::debug!("link {what} {label}: dial failed: {why}");
            p.log.lock().dial_failed(Instant::now(), &why)
        };
        path_log::emit(line);
        Then::Retry
    };
    let waiting = |d: Duration| {
        log::debug!("link {what} {label}: redialling in {:.2}s", d.as_secs_f64());
    };
    let healthy = Duration::from_secs(10);
    Retry::new(REDIAL_MIN, REDIAL_MAX, healthy).run(&stream.stop, attempt, waiting);
}
