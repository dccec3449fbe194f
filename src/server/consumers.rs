//! The consumers of a stream: everything that reads its ring with a cursor of its own on a
//! thread of its own, declared in one table ([`CONSUMERS`]) that `mounts.rs` starts for every
//! stream. A new consumer (the dead-air monitor, say) is its file in `sink/` and a row here:
//! the thread's name, how many of it a stream's configuration asks for, and its body.
//!
//! Listeners are consumers too, one per connection: they are started by the request that
//! asks (`route.rs`), not by the stream, so they are not rows. The stream's producer (its
//! input, or the link receiver's player and dialers) is not a consumer: `mounts.rs` starts it
//! first.

use super::leaves::Leaves;
use crate::stream::Stream;
use std::time::Duration;

/// What a consumer's thread is given besides its stream.
#[derive(Clone)]
pub struct Context {
    /// Which of the stream's consumers of this kind (a link path's number; 0 for the rest).
    pub instance: usize,
    /// `-write-timeout`: how long a write to a peer may block.
    pub write_timeout: Duration,
    /// What the stream's leaves keep of their own (`leaves.rs`): the consumer's is there.
    pub leaves: Leaves,
}

/// One kind of consumer.
pub struct Consumer {
    /// Its thread's name (with mounts, the mount is added; the instances after the first get
    /// `-1`, `-2`, …).
    pub thread: &'static str,
    /// How many of it `stream` runs (0: none).
    pub count: fn(&Stream) -> usize,
    /// The thread's body: returns when the stream stops.
    pub run: fn(&Stream, Context),
}

/// Every per-stream consumer, in the order their threads start.
pub static CONSUMERS: &[Consumer] = &[
    Consumer {
        thread: "link-push",
        count: |s| s.cfg.link.as_ref().map_or(0, |l| l.push.len()),
        run: |s, c| {
            if let Some(link) = &c.leaves.link {
                crate::link::origin::run_push(s, link, c.instance)
            }
        },
    },
    Consumer {
        thread: "hls",
        count: |s| usize::from(s.hls.is_some()),
        run: |s, _| crate::sink::hls::run(s),
    },
    Consumer {
        thread: "record",
        count: |s| usize::from(s.cfg.record.is_some()),
        run: |s, c| {
            if let Some(counts) = &c.leaves.recorder {
                crate::sink::recorder::run(s, counts)
            }
        },
    },
    Consumer {
        thread: "out-icecast",
        count: |s| usize::from(s.cfg.icecast.is_some()),
        run: |s, c| {
            if let Some(state) = &c.leaves.icecast {
                crate::sink::icecast::run(s, state, c.write_timeout)
            }
        },
    },
];
