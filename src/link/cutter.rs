//! The link's fragment cutting as the stream's producer drives it: the cutter and the log it
//! cuts into, handed to the input's reader by the server (the stream does not hold the link).
//! The reader cuts as frames are made because it never loses one; a consumer of the ring can,
//! if it falls a whole ring behind (docs/architecture.md).

use super::fragments::Cutter;
use super::LinkState;
use std::sync::Arc;
use std::time::Duration;

pub struct LinkCutter {
    cutter: Cutter,
    link: Arc<LinkState>,
}

impl LinkCutter {
    pub fn new(link: Arc<LinkState>) -> LinkCutter {
        LinkCutter {
            cutter: Cutter::new(link.cfg.fragment),
            link,
        }
    }

    /// A source start: a new epoch on the link.
    pub fn new_epoch(&mut self) {
        self.cutter.new_epoch(&self.link.log);
    }

    /// A frame made: `dur` is its audio, when known.
    pub fn frame(&mut self, frame: &[u8], dur: Option<Duration>) {
        self.cutter.frame(frame, dur, &self.link.log);
    }

    /// No frame for a while: closes a fragment whose frames are older than the target.
    pub fn tick(&mut self) {
        self.cutter.tick(&self.link.log);
    }
}
