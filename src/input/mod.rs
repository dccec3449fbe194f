//! Inputs: where the stream's bytes come from. One file per kind of input; `supervisor.rs`
//! is the one thread that opens them, frames their bytes into the ring and owns retry/backoff.
//!
//! A boundary module: inputs read bytes from outside, so the compiler refuses string
//! slicing, indexing, unchecked arithmetic and lossy casts in all of `input/` (README,
//! Security).
#![cfg_attr(
    not(test),
    deny(
        clippy::string_slice,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects,
        clippy::cast_possible_truncation,
        clippy::cast_possible_wrap,
        clippy::cast_sign_loss
    )
)]

pub mod exec;
pub mod fallback;
pub mod fd;
mod framing;
mod pacer;
pub mod playlist;
mod pump;
pub mod push;
pub mod supervisor;
mod tags;
pub mod tone;
pub mod upstream;

use crate::config::InputSpec;
use crate::stream::Stream;
use std::io;
use std::sync::Arc;
use std::time::Duration;

/// How an input is being closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Close {
    /// It reached its end by itself: let a child exit on its own.
    Finished,
    /// We are stopping it (error, quiet, idle, shutdown): stop a child now.
    Stop,
}

/// What one read of an input got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Got {
    /// This many bytes are at the front of the buffer.
    Bytes(usize),
    /// The input has ended.
    End,
    /// Nothing arrived within the wait: not an error (a real `TimedOut` from a socket or a
    /// pipe is one, and ends the input).
    Nothing,
}

impl Got {
    /// From a `read`'s count: 0 is the end.
    pub fn from_len(n: usize) -> Got {
        if n == 0 {
            Got::End
        } else {
            Got::Bytes(n)
        }
    }
}

/// An open source of stream bytes, read only by the reader thread.
pub trait Input: Send {
    /// Reads into `buf`, waiting at most `wait`.
    fn read_timeout(&mut self, buf: &mut [u8], wait: Duration) -> io::Result<Got>;

    /// Releases the input. Called once; `Drop` is the backstop.
    fn close(&mut self, how: Close);

    /// A regular file: it can be read faster than real time, so it is paced by its frames'
    /// durations (pipes, devices and the network come at their own pace).
    fn is_regular_file(&self) -> bool {
        false
    }
}

/// Opens the configured input.
pub fn open(stream: &Arc<Stream>) -> io::Result<Box<dyn Input>> {
    let cfg = &stream.cfg;
    Ok(match &cfg.input {
        InputSpec::Path(p) => Box::new(fd::FdInput::open(p)?),
        InputSpec::Exec { program, args } => Box::new(exec::ExecInput::spawn(program, args)?),
        InputSpec::Tone => Box::new(tone::ToneInput::new()),
        InputSpec::Playlist(list) => Box::new(playlist::PlaylistInput::new(list, stream)?),
        InputSpec::Url(url) => Box::new(upstream::UpstreamInput::connect(
            url,
            cfg.source_timeout,
            stream,
        )?),
        InputSpec::Push { fallback } => Box::new(push::PushInput::new(stream, fallback.as_deref())),
        InputSpec::Link => {
            return Err(io::Error::other(
                "the link is read by the link player, not the source reader",
            ))
        }
    })
}

/// Moves as much of `pending` as fits into `buf` (an input's bytes kept from an earlier,
/// larger piece); returns how many.
pub fn take_pending(pending: &mut Vec<u8>, buf: &mut [u8]) -> usize {
    let n = pending.len().min(buf.len());
    if let (Some(to), Some(from)) = (buf.get_mut(..n), pending.get(..n)) {
        to.copy_from_slice(from);
    }
    pending.drain(..n);
    n
}
