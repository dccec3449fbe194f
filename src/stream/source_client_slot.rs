//! The slot of a stream's one live source client: the connection thread that authenticated
//! it claims the slot and sends the body's bytes down a bounded channel; the stream's input
//! (`input/push.rs`) reads them.

use crate::util::deadline::Deadline;
use crossbeam_channel::{bounded, Receiver, Sender};
use parking_lot::Mutex;
use std::time::{Duration, SystemTime};

/// Chunks in flight between a source connection and the reader.
const CHANNEL_CHUNKS: usize = 64;

/// A connected source client: its id, the receiving end, and when it connected.
type Live = (u64, Receiver<Vec<u8>>, SystemTime);

/// The one live source client, if any.
#[derive(Default)]
pub struct SourceClientSlot {
    live: Mutex<Option<Live>>,
    next_id: Mutex<u64>,
}

impl SourceClientSlot {
    /// Claims the slot for a new client: its id and the sending end. `None` when taken.
    pub fn claim(&self) -> Option<(u64, Sender<Vec<u8>>)> {
        let mut live = self.live.lock();
        if live.is_some() {
            return None;
        }
        let id = {
            let mut n = self.next_id.lock();
            *n = n.wrapping_add(1);
            *n
        };
        let (tx, rx) = bounded(CHANNEL_CHUNKS);
        *live = Some((id, rx, SystemTime::now()));
        Some((id, tx))
    }

    /// Frees the slot once the reader has taken what was sent (or after 5 s), so a short
    /// source session is not lost between two of the reader's looks at the slot.
    pub fn release(&self, id: u64, tx: Sender<Vec<u8>>) {
        let deadline = Deadline::after(Duration::from_secs(5));
        while !tx.is_empty() && !deadline.passed() {
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(tx);
        let mut live = self.live.lock();
        if live.as_ref().is_some_and(|(i, _, _)| *i == id) {
            *live = None;
        }
    }

    pub fn receiver(&self) -> Option<Receiver<Vec<u8>>> {
        self.live.lock().as_ref().map(|(_, rx, _)| rx.clone())
    }

    pub fn connected(&self) -> bool {
        self.live.lock().is_some()
    }

    /// When the live source client connected.
    pub fn since(&self) -> Option<SystemTime> {
        self.live.lock().as_ref().map(|(_, _, t)| *t)
    }
}
