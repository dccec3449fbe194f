//! Listener passwords at rest: PBKDF2-HMAC-SHA256 with a random salt (ring's, already linked
//! for the link's HMACs), written as `pbkdf2-sha256$ITERATIONS$SALT$HASH` (hex).
//! `ringcast -hash-password` makes one; `-listener-users` files hold them.
//!
//! Slow on purpose: a stolen users file costs an attacker ITERATIONS hashes per guess.
//! Checking one costs the server as much, so a good login is remembered (`server/users.rs`)
//! and failed ones go through the per-address login limit.
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

use crate::error::Error;
use ring::pbkdf2;
use std::num::NonZeroU32;

const SCHEME: &str = "pbkdf2-sha256";
/// 100 000 rounds: 30 ms on the x86_64 machine the README's figures come from, several
/// times that on a Pi; once per listener password (a good login is remembered).
pub const ITERATIONS: u32 = 100_000;
/// Fewer rounds than this are refused in a users file: a hash that cheap is no protection.
const MIN_ITERATIONS: u32 = 1_000;
/// More than this would let one login hold a core for minutes.
const MAX_ITERATIONS: u32 = 10_000_000;
const SALT_BYTES: usize = 16;
const HASH_BYTES: usize = 32;

/// A parsed hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hash {
    iterations: NonZeroU32,
    salt: Vec<u8>,
    hash: [u8; HASH_BYTES],
}

impl Hash {
    /// A new hash of `password` with a random salt.
    pub fn new(password: &str) -> std::io::Result<Hash> {
        let salt = crate::util::random::bytes(SALT_BYTES)?;
        let iterations = NonZeroU32::new(ITERATIONS).unwrap_or(NonZeroU32::MIN);
        let mut hash = [0u8; HASH_BYTES];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            iterations,
            &salt,
            password.as_bytes(),
            &mut hash,
        );
        Ok(Hash {
            iterations,
            salt,
            hash,
        })
    }

    /// A hash no password matches (random salt and value), costing `iterations` rounds to
    /// check (the default's without): what a login for an unknown name is checked against.
    pub fn decoy(iterations: Option<NonZeroU32>) -> std::io::Result<Hash> {
        let salt = crate::util::random::bytes(SALT_BYTES)?;
        let mut hash = [0u8; HASH_BYTES];
        hash.copy_from_slice(&crate::util::random::bytes(HASH_BYTES)?);
        Ok(Hash {
            iterations: iterations
                .unwrap_or(NonZeroU32::new(ITERATIONS).unwrap_or(NonZeroU32::MIN)),
            salt,
            hash,
        })
    }

    /// Its rounds.
    pub fn iterations(&self) -> NonZeroU32 {
        self.iterations
    }

    /// Reads `pbkdf2-sha256$N$SALT$HASH`; `Err` says what is wrong.
    pub fn parse(text: &str) -> Result<Hash, Error> {
        let mut parts = text.trim().split('$');
        let (Some(scheme), Some(n), Some(salt), Some(hash), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(format!("not {SCHEME}$ITERATIONS$SALT$HASH").into());
        };
        if scheme != SCHEME {
            return Err(format!("unknown scheme {scheme:?} (ringcast writes {SCHEME})").into());
        }
        let iterations = n
            .parse::<u32>()
            .ok()
            .filter(|n| (MIN_ITERATIONS..=MAX_ITERATIONS).contains(n))
            .and_then(NonZeroU32::new)
            .ok_or_else(|| {
                format!("iterations {n:?}: not a number from {MIN_ITERATIONS} to {MAX_ITERATIONS}")
            })?;
        let salt = from_hex(salt)
            .filter(|s| !s.is_empty())
            .ok_or("bad salt (hex)")?;
        let hash = from_hex(hash)
            .and_then(|h| <[u8; HASH_BYTES]>::try_from(h).ok())
            .ok_or("bad hash (64 hex digits)")?;
        Ok(Hash {
            iterations,
            salt,
            hash,
        })
    }

    /// Whether `password` is the one hashed (in constant time over the hash).
    pub fn verify(&self, password: &[u8]) -> bool {
        pbkdf2::verify(
            pbkdf2::PBKDF2_HMAC_SHA256,
            self.iterations,
            &self.salt,
            password,
            &self.hash,
        )
        .is_ok()
    }
}

impl std::fmt::Display for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::util::random::to_hex;
        write!(
            f,
            "{SCHEME}${}${}${}",
            self.iterations,
            to_hex(&self.salt),
            to_hex(&self.hash)
        )
    }
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if b.len() % 2 != 0 || b.len() > 256 {
        return None;
    }
    b.chunks(2)
        .map(|pair| {
            let digit = |c: u8| char::from(c).to_digit(16);
            let (hi, lo) = (digit(*pair.first()?)?, digit(*pair.get(1)?)?);
            u8::try_from(hi.checked_mul(16)?.checked_add(lo)?).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::fuzz;

    #[test]
    fn a_hash_verifies_its_password_and_no_other() {
        let h = Hash::new("s3cret pässword").unwrap();
        let text = h.to_string();
        assert!(text.starts_with("pbkdf2-sha256$100000$"), "{text}");
        let back = Hash::parse(&text).unwrap();
        assert_eq!(back, h);
        assert!(back.verify("s3cret pässword".as_bytes()));
        assert!(!back.verify(b"s3cret passwort"));
        assert!(!back.verify(b""));
        // Two hashes of one password differ (the salt).
        assert_ne!(
            Hash::new("x").unwrap().to_string(),
            Hash::new("x").unwrap().to_string()
        );
    }

    #[test]
    fn bad_hashes_are_refused_with_a_reason() {
        let salt = "00".repeat(16);
        let hash = "ab".repeat(32);
        for (text, why) in [
            ("", "not pbkdf2"),
            (format!("md5$1000${salt}${hash}").as_str(), "unknown scheme"),
            (
                format!("pbkdf2-sha256$10${salt}${hash}").as_str(),
                "iterations",
            ),
            (
                format!("pbkdf2-sha256$x${salt}${hash}").as_str(),
                "iterations",
            ),
            (format!("pbkdf2-sha256$1000$zz${hash}").as_str(), "bad salt"),
            (
                format!("pbkdf2-sha256$1000${salt}$abc").as_str(),
                "bad hash",
            ),
            (
                format!("pbkdf2-sha256$1000${salt}${hash}$x").as_str(),
                "not pbkdf2",
            ),
        ] {
            let e = Hash::parse(text).unwrap_err().to_string();
            assert!(e.contains(why), "{text:?}: {e}");
        }
    }

    #[test]
    fn hashes_parse_or_fail_cleanly_on_any_bytes() {
        let seeds: &[&[u8]] = &[
            b"pbkdf2-sha256$1000$00112233$abababababababababababababababababababababababababababababababab",
            b"pbkdf2-sha256$4294967295$0$0",
            b"pbkdf2-sha256$$$",
        ];
        fuzz::run("password::Hash::parse", seeds, 256, |b| {
            if let Ok(h) = Hash::parse(&String::from_utf8_lossy(b)) {
                let _ = h.to_string();
            }
        });
    }
}
