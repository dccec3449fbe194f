//! The link's paths: every `-link-pull` or `-link-push` URL is one, carrying the whole stream
//! (a receiver taking pushes has a slot for each path number a pusher names). The receiver
//! plays each fragment from whichever path brings it first; this file keeps what each path
//! did, for status, metrics and the log, and tells a first copy from a late one.

use super::path_log::PathLog;
use crate::config::link::MAX_PATHS;
use crate::stream::stats::Stats;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

/// One path's state and counters.
#[derive(Default)]
pub struct PathStats {
    pub up: AtomicBool,
    /// Sessions that connected on it, and dials that did not.
    pub connects: AtomicU64,
    pub dial_failures: AtomicU64,
    /// Receiver: fragments this path brought before any other path.
    pub first: AtomicU64,
    /// Receiver: copies of fragments another path had brought already.
    pub late: AtomicU64,
    /// Receiver: fragments this path skipped between two it brought (it was down or
    /// resumed after what another path had delivered).
    pub lost: AtomicU64,
    /// Bytes of link messages carried (received on a receiver, sent on a pushing origin).
    pub bytes: AtomicU64,
    /// The last handshake's round trip, µs (0 = none yet).
    pub rtt_us: AtomicU64,
    /// Receiver: how far behind the first copy this path's last late copy came, µs.
    pub behind_us: AtomicU64,
    /// What the path is: its URL (redacted), or the pusher's address.
    pub label: Mutex<String>,
    /// The dialling side's path, as the log last told it.
    pub log: Mutex<PathLog>,
}

/// Every path slot of a link: at least one, at most [`MAX_PATHS`].
pub struct Paths {
    first: PathStats,
    rest: Vec<PathStats>,
}

impl Paths {
    pub fn new(n: usize) -> Paths {
        Paths {
            first: PathStats::default(),
            rest: (1..n.clamp(1, MAX_PATHS))
                .map(|_| PathStats::default())
                .collect(),
        }
    }

    /// Path `i`'s slot (the last slot for an index past them: a peer's claim is bounded).
    pub fn get(&self, i: usize) -> &PathStats {
        match i.checked_sub(1) {
            None => &self.first,
            Some(j) => self.rest.get(j).or(self.rest.last()).unwrap_or(&self.first),
        }
    }

    pub fn all(&self) -> impl Iterator<Item = (usize, &PathStats)> {
        std::iter::once(&self.first).chain(&self.rest).enumerate()
    }

    /// Whether any path is up.
    pub fn any_up(&self) -> bool {
        self.all().any(|(_, p)| p.up.load(Relaxed))
    }
}

/// How many fragments' first arrivals are remembered to tell how late another path's copy
/// came: at 250 ms fragments, a minute.
const REMEMBERED: usize = 256;

/// The link player's record of first arrivals: which path brought a fragment first and
/// when, and where each path's own run of fragments stands.
#[derive(Default)]
pub struct Arrivals {
    recent: VecDeque<((u64, u64), i64)>,
    /// Per path: the last fragment it brought (first or late).
    last: [Option<(u64, u64)>; MAX_PATHS],
}

impl Arrivals {
    /// A fragment taken first from `path` at `at` (local µs).
    pub fn first(&mut self, paths: &Paths, path: usize, pos: (u64, u64), at: i64) {
        if self.recent.len() >= REMEMBERED {
            self.recent.pop_front();
        }
        self.recent.push_back((pos, at));
        let p = paths.get(path);
        Stats::add(&p.first, 1);
        p.behind_us.store(0, Relaxed);
        self.step(paths, path, pos);
    }

    /// A copy of a fragment another path brought first came from `path` at `at`.
    pub fn late(&mut self, paths: &Paths, path: usize, pos: (u64, u64), at: i64) {
        let p = paths.get(path);
        Stats::add(&p.late, 1);
        if let Some((_, t)) = self.recent.iter().rev().find(|(q, _)| *q == pos) {
            let behind = u64::try_from(at.saturating_sub(*t)).unwrap_or(0);
            p.behind_us.store(behind, Relaxed);
        }
        self.step(paths, path, pos);
    }

    /// Counts what `path` skipped since its last fragment (same epoch only).
    fn step(&mut self, paths: &Paths, path: usize, pos: (u64, u64)) {
        let Some(slot) = self.last.get_mut(path) else {
            return;
        };
        if let Some((e, s)) = *slot {
            if e == pos.0 && pos.1 > s {
                let skipped = pos.1.saturating_sub(s).saturating_sub(1);
                Stats::add(&paths.get(path).lost, skipped);
            }
        }
        if slot.is_none_or(|(e, s)| e != pos.0 || pos.1 > s) {
            *slot = Some(pos);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_late_lost_and_behind_per_path() {
        let paths = Paths::new(2);
        let mut a = Arrivals::default();
        a.first(&paths, 0, (1, 1), 1_000);
        a.late(&paths, 1, (1, 1), 1_300);
        a.first(&paths, 0, (1, 2), 2_000);
        // Path 1 was away for 2 and 3, then brings 4 first.
        a.first(&paths, 0, (1, 3), 3_000);
        a.first(&paths, 1, (1, 4), 4_000);
        let (p0, p1) = (paths.get(0), paths.get(1));
        assert_eq!(p0.first.load(Relaxed), 3);
        assert_eq!(p1.first.load(Relaxed), 1);
        assert_eq!(p1.late.load(Relaxed), 1);
        assert_eq!(p1.lost.load(Relaxed), 2, "path 1 skipped 2 and 3");
        assert_eq!(p0.lost.load(Relaxed), 0);
        assert_eq!(p1.behind_us.load(Relaxed), 0, "its last copy was first");
        a.late(&paths, 0, (1, 4), 4_250);
        assert_eq!(p0.behind_us.load(Relaxed), 250);
        // A claimed path past the slots lands in the last one, never out of bounds.
        a.first(&paths, 99, (1, 5), 5_000);
        assert_eq!(paths.get(99).first.load(Relaxed), 2);
    }
}
