//! What a stream's leaves keep of their own, which the server holds beside the stream (the
//! stream, in the core, knows none of them): the link's state, the Icecast output's, the
//! recorder's counters. The server makes them when it starts the stream, hands each to its
//! threads (a consumer's `Context`) and to whoever asks for them: routing (the link's
//! handshake), status and `/metrics`. A new consumer with counters of its own adds a field.

use crate::config::StreamConfig;
use crate::link::LinkState;
use crate::sink::icecast::OutputState;
use crate::sink::recorder::RecorderCounts;
use std::io;
use std::sync::Arc;

#[derive(Clone, Default)]
pub struct Leaves {
    /// `-link-*`: the fragment log, paths, inbox and counters.
    pub link: Option<Arc<LinkState>>,
    /// `-icecast`: whether it is connected, and its sessions.
    pub icecast: Option<Arc<OutputState>>,
    /// `-record`: its bytes, failures and frames lost.
    pub recorder: Option<Arc<RecorderCounts>>,
}

impl Leaves {
    /// The state `cfg` asks for.
    pub fn new(cfg: &StreamConfig) -> io::Result<Leaves> {
        let link = cfg.link.clone().map(LinkState::new).transpose()?;
        Ok(Leaves {
            link: link.map(Arc::new),
            icecast: cfg.icecast.as_ref().map(|_| Arc::default()),
            recorder: cfg.record.as_ref().map(|_| Arc::default()),
        })
    }
}
