//! Sinks: where frames go from the ring. Each reads the ring with its own cursor and never
//! holds the ring's lock across I/O. The link origin is a sink too (`link/origin.rs`).
//!
//! A boundary module: it writes to and reads from peers, so the compiler refuses string
//! slicing, indexing, unchecked arithmetic and lossy casts here (README, Security).
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

pub mod audience;
pub mod feed;
pub mod gather;
pub mod hls;
pub mod icecast;
pub mod recorder;
pub mod sender;
