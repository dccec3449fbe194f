//! HTTP/1, both ways: the server side (`server.rs`: request heads in, responses out;
//! `identity`: the TLS port's certificate) and the client side (`url`, `client` heads,
//! `chunked` bodies, `auth`), over `conn` (TCP or TLS, either way).
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

pub mod auth;
pub mod chunked;
pub mod client;
pub mod conn;
pub mod forwarded;
pub mod identity;
pub mod server;
pub mod tls;
pub mod url;

/// The value of header `name` (any case) among `headers`: the one lookup every head uses.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}
