//! An address's login budget (README, Security; how it works: `peers.rs`): its failures,
//! its login checks running or waiting for their turn, its next turn and the claimed
//! identities that failed lately. Apart from the table of addresses (`peers.rs`) because
//! it is arithmetic on one address's record, taken under the table's lock and tested on
//! its own.

use std::time::{Duration, Instant};

/// Failed logins an address may make before its attempts wait for turns...
pub const FREE_FAILURES: u32 = 5;
/// ...one turn this often...
pub const SPACING: Duration = Duration::from_secs(1);
/// ...and this often once it has failed [`LATER_AFTER`] times.
pub const SPACING_LATER: Duration = Duration::from_secs(5);
pub const LATER_AFTER: u32 = 20;
/// An attempt whose turn is further away than this is refused unchecked.
pub const MAX_WAIT: Duration = Duration::from_secs(8);
/// Failures are forgotten this long after an address's last one.
pub const FORGET_AFTER: Duration = Duration::from_secs(600);
/// A claimed identity (a link peer's instance id) whose login failed is refused unchecked
/// for this long after its last attempt, without costing its address anything more: a
/// peer with a mistyped key costs its address one failure, not one a dial.
const BAD_CLAIM_FOR: Duration = Duration::from_secs(600);
/// Claims remembered per address.
const MAX_BAD_CLAIMS: usize = 8;

/// One address's login budget.
#[derive(Default)]
pub(super) struct Budget {
    failures: u32,
    last_failure: Option<Instant>,
    /// Login checks running or waiting for their turn.
    in_flight: u32,
    /// The next free turn, once the address is past its free failures.
    next_turn: Option<Instant>,
    /// Claimed identities that failed, by a digest, with their last attempt.
    bad_claims: Vec<(u64, Instant)>,
}

impl Budget {
    /// Nothing to remember: no check running, no failure, no failed claim.
    pub(super) fn idle(&self) -> bool {
        self.in_flight == 0 && self.failures == 0 && self.bad_claims.is_empty()
    }

    /// A login check is running or waiting for its turn.
    pub(super) fn checking(&self) -> bool {
        self.in_flight > 0
    }

    pub(super) fn forget_old_failures(&mut self, now: Instant) {
        if self
            .last_failure
            .is_some_and(|t| now.duration_since(t) >= FORGET_AFTER)
        {
            self.failures = 0;
            self.last_failure = None;
            self.next_turn = None;
        }
        self.bad_claims
            .retain(|(_, t)| now.duration_since(*t) < BAD_CLAIM_FOR);
    }

    /// Gives an attempt its place in the budget (the caller holds the lock).
    pub(super) fn take_turn(&mut self, claim: Option<u64>, now: Instant) -> Turn {
        self.forget_old_failures(now);
        if let Some(c) = claim {
            if let Some(known) = self.bad_claims.iter_mut().find(|(d, _)| *d == c) {
                known.1 = now;
                return Turn::KnownBad;
            }
        }
        let charged = self.failures.saturating_add(self.in_flight);
        if charged < FREE_FAILURES {
            self.in_flight = self.in_flight.saturating_add(1);
            return Turn::Now;
        }
        let spacing = if charged >= LATER_AFTER {
            SPACING_LATER
        } else {
            SPACING
        };
        // Every slowed attempt waits a spacing at least, after the last turn given.
        let last = self.next_turn.map_or(now, |t| t.max(now));
        let turn = last.checked_add(spacing).unwrap_or(last);
        let wait = turn.duration_since(now);
        if wait > MAX_WAIT {
            return Turn::Refused(wait.saturating_sub(MAX_WAIT).max(SPACING));
        }
        self.next_turn = Some(turn);
        self.in_flight = self.in_flight.saturating_add(1);
        Turn::After(wait)
    }

    /// Counts a checked attempt's `outcome` (`None`: no credentials came, not a failure)
    /// at `now`; the address's failures when it failed.
    pub(super) fn settle(
        &mut self,
        outcome: Option<bool>,
        claim: Option<u64>,
        now: Instant,
    ) -> Option<u32> {
        self.in_flight = self.in_flight.saturating_sub(1);
        match outcome {
            Some(true) => {
                self.failures = 0;
                self.last_failure = None;
                self.next_turn = None;
                None
            }
            Some(false) => {
                self.failures = self.failures.saturating_add(1);
                self.last_failure = Some(now);
                if let Some(c) = claim {
                    if self.bad_claims.len() >= MAX_BAD_CLAIMS {
                        self.bad_claims.remove(0);
                    }
                    self.bad_claims.push((c, now));
                }
                Some(self.failures)
            }
            None => None,
        }
    }
}

/// What a login attempt may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Turn {
    Now,
    /// Its turn comes after this long.
    After(Duration),
    /// Its claim failed lately: refused unchecked, at no cost.
    KnownBad,
    /// No turn within [`MAX_WAIT`]: the next one is this far away.
    Refused(Duration),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_take_their_place_before_they_are_checked() {
        let mut b = Budget::default();
        let now = Instant::now();
        // Five at once from a fresh address go now; the sixth waits although none failed.
        for _ in 0..FREE_FAILURES {
            assert_eq!(b.take_turn(None, now), Turn::Now);
        }
        assert_eq!(b.take_turn(None, now), Turn::After(SPACING));
        // Turns are spaced; past MAX_WAIT attempts are refused unchecked.
        let mut waits = Vec::new();
        loop {
            match b.take_turn(None, now) {
                Turn::After(d) => waits.push(d),
                Turn::Refused(d) => {
                    assert!(d >= SPACING);
                    break;
                }
                t => panic!("{t:?}"),
            }
        }
        assert!(waits.windows(2).all(|w| w[1] > w[0]), "{waits:?}");
        assert!(waits.len() <= 8, "{waits:?}");
    }
}
