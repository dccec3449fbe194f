//! Which ring a listener reads: its own stream's, or, while its own has no source, its
//! `-fallback-mount`'s (Icecast's fallback-mount with fallback-override: listeners move
//! back as soon as the source returns). The two streams are one format (checked when the
//! mounts are loaded), and a move happens between batches of whole frames, so every byte a
//! listener gets stays a valid stream.

use crate::ring::{Cursor, Frame, ReadOutcome};
use crate::stream::Stream;
use std::sync::Arc;

/// Where a listener's fallback is looked up: the streams by mount (the server's, which
/// starts the listeners and routes them; `sink/` names no server type).
pub trait Mounts {
    /// The stream at `mount`, as a request path names it.
    fn stream(&self, mount: &str) -> Option<Arc<Stream>>;
}

pub struct Feed {
    own: Arc<Stream>,
    current: Arc<Stream>,
    cursor: Cursor,
}

impl Feed {
    /// Joins the stream the listener of `own` should hear now, `burst` bytes back.
    pub fn new(mounts: &dyn Mounts, own: &Arc<Stream>, burst: usize) -> Feed {
        let current = pick(mounts, own, own);
        let cursor = current.ring.join(burst);
        Feed {
            own: Arc::clone(own),
            current,
            cursor,
        }
    }

    /// The listener's own stream.
    pub fn own(&self) -> &Arc<Stream> {
        &self.own
    }

    /// The stream being read.
    pub fn stream(&self) -> &Arc<Stream> {
        &self.current
    }

    /// The next batch from the stream being read (see [`crate::ring::Ring::read`]).
    pub fn read(
        &mut self,
        out: &mut Vec<Frame>,
        client_left: u64,
        batch_cap: usize,
        wait: std::time::Duration,
    ) -> ReadOutcome {
        self.current
            .ring
            .read(&mut self.cursor, out, client_left, batch_cap, wait)
    }

    /// Whether the listener is on its fallback.
    pub fn on_fallback(&self) -> bool {
        !Arc::ptr_eq(&self.current, &self.own)
    }

    /// Moves to the stream the listener should hear now, at its newest frame; returns the
    /// mount it moved to.
    pub fn follow(&mut self, mounts: &dyn Mounts) -> Option<&str> {
        self.own.cfg.fallback_mount.as_ref()?;
        let want = pick(mounts, &self.own, &self.current);
        if Arc::ptr_eq(&want, &self.current) {
            return None;
        }
        self.cursor = want.ring.join_had_header();
        self.current = want;
        Some(self.current.mount())
    }
}

/// The listener's own stream while it is on air; else its fallback, if that is on air or
/// already being heard and not over (a fallback reopening its file for a moment keeps its
/// listeners rather than sending them to a silent home and back; one that ended for good
/// sends them home instead of answering every read with its end).
fn pick(mounts: &dyn Mounts, own: &Arc<Stream>, current: &Arc<Stream>) -> Arc<Stream> {
    if own.on_air() {
        return Arc::clone(own);
    }
    own.cfg
        .fallback_mount
        .as_deref()
        .and_then(|m| mounts.stream(m))
        .filter(|s| s.on_air() || (Arc::ptr_eq(s, current) && !s.source_ended()))
        .unwrap_or_else(|| Arc::clone(own))
}
