//! Source clients' stream, as an input: the stream's reader reads what the client
//! connection threads (`server/source_client.rs`) put in the stream's [`SourceClientSlot`]. It never
//! ends: while no client is connected it plays `-fallback-path` (`fallback.rs`) or nothing,
//! and listeners stay connected either way.

use super::fallback::Fallback;
use super::{Close, Got, Input};
use crate::stream::Stream;
use crate::util::deadline::Deadline;
use crossbeam_channel::{Receiver, RecvTimeoutError};
use log::{info, warn};
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The reader's view of the pushed stream.
pub struct PushInput {
    stream: Arc<Stream>,
    live: Option<Receiver<Vec<u8>>>,
    pending: Vec<u8>,
    fallback: Option<Fallback>,
}

impl PushInput {
    pub fn new(stream: &Arc<Stream>, fallback: Option<&Path>) -> PushInput {
        let fallback = fallback.and_then(|p| match Fallback::load(p) {
            Ok(f) => Some(f),
            Err(e) => {
                warn!(
                    "-fallback-path {}: {e}; listeners hear nothing while no source is connected",
                    p.display()
                );
                None
            }
        });
        PushInput {
            stream: Arc::clone(stream),
            live: None,
            pending: Vec::new(),
            fallback,
        }
    }

    /// A source client took over, or the fallback took over from one: another encoder, so
    /// the stream's timeline breaks here (within the frame the framer holds).
    fn new_run(&self) {
        self.stream.breaks.mark(&self.stream.ring);
    }
}

impl Input for PushInput {
    fn read_timeout(&mut self, buf: &mut [u8], wait: Duration) -> io::Result<Got> {
        if !self.pending.is_empty() {
            return Ok(Got::from_len(super::take_pending(&mut self.pending, buf)));
        }
        if self.live.is_none() {
            self.live = self.stream.source_client.receiver();
            if self.live.is_some() {
                if let Some(f) = &mut self.fallback {
                    f.pause();
                }
                self.new_run();
            }
        }
        if self.live.is_none() && self.fallback.is_none() {
            // Nothing to play: watch for a source client to connect.
            let deadline = Deadline::after(wait);
            while self.live.is_none() && !deadline.passed() {
                std::thread::sleep(Duration::from_millis(20));
                self.live = self.stream.source_client.receiver();
            }
            if self.live.is_some() {
                self.new_run();
            }
        }
        if let Some(rx) = &self.live {
            match rx.recv_timeout(wait) {
                Ok(chunk) => {
                    self.pending = chunk;
                    return self.read_timeout(buf, wait);
                }
                Err(RecvTimeoutError::Timeout) => return Ok(Got::Nothing),
                Err(RecvTimeoutError::Disconnected) => {
                    self.live = None;
                    if self.fallback.is_some() {
                        info!("no source client: playing the fallback");
                        self.new_run();
                    }
                }
            }
        }
        match &mut self.fallback {
            Some(f) => f.read(buf, wait),
            None => Ok(Got::Nothing),
        }
    }

    fn close(&mut self, _how: Close) {
        self.live = None;
    }
}
