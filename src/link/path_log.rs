//! What the dialling side of a link says about its path, in state changes: a line when the
//! path goes down (with why), one a minute while it stays down, one when it comes back (how
//! long it was away and, on a receiver, whether anyone heard it). A failed dial is counted
//! (`ringcast_link_dial_failures_total`) and logged at debug level only: an outage of an
//! hour is about sixty lines, not thirteen thousand.

use crate::util::timefmt::span;
use std::time::{Duration, Instant};

/// How often a path that stays down is mentioned again.
const REMIND: Duration = Duration::from_secs(60);

/// The path's state as the log last told it.
#[derive(Default)]
pub struct PathLog {
    /// "link pull from http://…", "link push to …".
    name: String,
    down: Option<Down>,
    /// A session has connected since the dialler began.
    was_up: bool,
}

struct Down {
    since: Instant,
    failed_dials: u64,
    next_reminder: Instant,
    /// The receiver's count of silence frames when the path went down.
    silence_at_start: Option<u64>,
}

/// A line to log and how loud.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    Warn(String),
    Info(String),
}

impl PathLog {
    /// The dialler starts: the path counts as down until the first session connects, and
    /// that first connection says nothing of an outage.
    pub fn begin(&mut self, name: String, now: Instant) {
        self.name = name;
        self.down = None;
        self.was_up = false;
        self.down_since(now, None);
    }

    fn down_since(&mut self, now: Instant, silence: Option<u64>) {
        self.down = Some(Down {
            since: now,
            failed_dials: 0,
            next_reminder: now.checked_add(REMIND).unwrap_or(now),
            silence_at_start: silence,
        });
    }

    /// A session connected. `silence` is the receiver's silence-frame count (None on the
    /// pushing origin, which cannot know what the far side heard).
    pub fn connected(&mut self, now: Instant, silence: Option<u64>) -> Option<Line> {
        let d = self.down.take()?;
        let first = !std::mem::replace(&mut self.was_up, true);
        if first && d.failed_dials == 0 {
            return None; // the first connection, at once
        }
        if first {
            return Some(Line::Info(format!(
                "{}: connected after {} ({} dials failed)",
                self.name,
                span(now.saturating_duration_since(d.since)),
                d.failed_dials
            )));
        }
        let heard = match (d.silence_at_start, silence) {
            (Some(a), Some(b)) if b > a => {
                format!(
                    "; heard: {} frames of silence were played",
                    b.saturating_sub(a)
                )
            }
            (Some(_), Some(_)) => "; not heard (the buffer covered it)".into(),
            _ => String::new(),
        };
        Some(Line::Info(format!(
            "{}: back after {} away ({} dials failed){heard}",
            self.name,
            span(now.saturating_duration_since(d.since)),
            d.failed_dials
        )))
    }

    /// A session that had connected ended with `why`.
    pub fn lost(&mut self, now: Instant, silence: Option<u64>, why: &str) -> Line {
        self.down_since(now, silence);
        Line::Warn(format!(
            "{}: down: {why} (redialling; a line a minute while it stays down)",
            self.name
        ))
    }

    /// A dial failed with `why`; says so once a minute while the path stays down.
    pub fn dial_failed(&mut self, now: Instant, why: &str) -> Option<Line> {
        if self.down.is_none() {
            self.down_since(now, None);
        }
        let never_up = !self.was_up;
        let d = self.down.as_mut()?;
        d.failed_dials = d.failed_dials.saturating_add(1);
        if never_up && d.failed_dials == 1 {
            // The very first dial failed: say so at once, it is often a typo.
            return Some(Line::Warn(format!("{}: cannot connect: {why}", self.name)));
        }
        if now < d.next_reminder {
            return None;
        }
        d.next_reminder = now.checked_add(REMIND).unwrap_or(now);
        Some(Line::Warn(format!(
            "{}: still down after {} ({} dials failed; the last: {why})",
            self.name,
            span(now.saturating_duration_since(d.since)),
            d.failed_dials
        )))
    }
}

/// Logs a line at its level.
pub fn emit(line: Option<Line>) {
    match line {
        Some(Line::Warn(s)) => log::warn!("{s}"),
        Some(Line::Info(s)) => log::info!("{s}"),
        None => {}
    }
}

/// A resume position from the handshake ("EPOCH.SEQ", or "-" for nothing held) as an
/// operator reads it.
pub fn position(after: &str) -> String {
    match after.split_once('.') {
        Some((_, seq)) if seq.bytes().all(|b| b.is_ascii_digit()) && !seq.is_empty() => {
            format!("fragment {seq} of the origin's current run")
        }
        _ if after == "-" => "the live edge (nothing held yet)".into(),
        _ => "the live edge".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(l: Line) -> String {
        match l {
            Line::Warn(s) | Line::Info(s) => s,
        }
    }

    #[test]
    fn an_hour_down_is_about_sixty_lines_and_one_for_the_return() {
        let t0 = Instant::now();
        let mut p = PathLog::default();
        p.begin("link pull from http://o".into(), t0);
        assert_eq!(
            p.connected(t0, Some(0)),
            None,
            "the first connection is no return"
        );
        let down = p.lost(t0, Some(10), "stalled");
        assert!(matches!(down, Line::Warn(ref s) if s.contains("down: stalled")));
        let mut lines = 0;
        // A dial every 0.27 s for an hour.
        let mut t = t0;
        while t < t0 + Duration::from_secs(3600) {
            t += Duration::from_millis(270);
            lines += usize::from(p.dial_failed(t, "connection refused").is_some());
        }
        assert!((58..=61).contains(&lines), "{lines}");
        let back = text(p.connected(t, Some(10)).unwrap());
        assert!(back.contains("back after 1 h 0 min away"), "{back}");
        assert!(back.contains("not heard"), "{back}");
        p.lost(t, Some(10), "reset");
        let back = text(p.connected(t + Duration::from_secs(9), Some(250)).unwrap());
        assert!(back.contains("heard: 240 frames of silence"), "{back}");
    }

    #[test]
    fn a_first_dial_that_fails_is_said_at_once() {
        let t0 = Instant::now();
        let mut p = PathLog::default();
        p.begin("link push to http://r".into(), t0);
        let l = text(
            p.dial_failed(t0, "the receiver refused our key (401)")
                .unwrap(),
        );
        assert!(l.contains("cannot connect"), "{l}");
        assert_eq!(p.dial_failed(t0 + Duration::from_secs(1), "x"), None);
        let back = text(p.connected(t0 + Duration::from_secs(2), None).unwrap());
        assert!(
            back.contains("2 dials failed") && !back.contains("heard"),
            "{back}"
        );
    }

    #[test]
    fn positions_read_as_words() {
        assert_eq!(position("-"), "the live edge (nothing held yet)");
        assert_eq!(
            position("1569355416469625652.45"),
            "fragment 45 of the origin's current run"
        );
        assert_eq!(position("x.y"), "the live edge");
    }
}
