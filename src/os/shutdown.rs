//! A stop flag: set once, seen by every thread, and a sleep that ends early when it is set.
//! The server has one (a signal, or the one stream ending with `-reopen=false`); so does each
//! stream (the server stopping, or its mount removed or changed by a reload).

use parking_lot::{Condvar, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
pub struct Shutdown {
    reason: Mutex<Option<String>>,
    cond: Condvar,
}

impl Shutdown {
    /// Asks every thread to stop. The first reason wins.
    pub fn trigger(&self, reason: impl Into<String>) {
        let mut r = self.reason.lock();
        if r.is_none() {
            *r = Some(reason.into());
        }
        self.cond.notify_all();
    }

    /// The reason it was triggered with, if it was.
    pub fn reason(&self) -> Option<String> {
        self.reason.lock().clone()
    }

    pub fn is_set(&self) -> bool {
        self.reason.lock().is_some()
    }

    /// Sleeps for `d`, or less if shutdown is triggered. Returns true if it was.
    pub fn sleep(&self, d: Duration) -> bool {
        let deadline = Instant::now() + d;
        let mut r = self.reason.lock();
        while r.is_none() {
            if self.cond.wait_until(&mut r, deadline).timed_out() {
                break;
            }
        }
        r.is_some()
    }

    /// Waits until shutdown is triggered and returns the reason.
    pub fn wait(&self) -> String {
        let mut r = self.reason.lock();
        loop {
            if let Some(reason) = r.as_ref() {
                return reason.clone();
            }
            self.cond.wait(&mut r);
        }
    }
}
