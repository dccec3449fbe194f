//! The server: its ports, the accept loops, one thread per connection, routing, admin and
//! monitoring.
//!
//! A boundary module: it reads bytes from outside, so the compiler refuses string slicing,
//! indexing, unchecked arithmetic and lossy casts here (README, Security).
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

pub mod accept;
pub mod admin;
pub mod peers;
pub mod status;
