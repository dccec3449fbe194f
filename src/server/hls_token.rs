//! Segment tokens for private streams' HLS. A player logs in for the playlist (Basic or
//! `?user=&pass=`, as for the stream); hls.js, ffmpeg and Safari do not all send that login
//! again for each segment, so the playlist's segment URLs carry a token instead:
//! `seg-….mp3?t=EXPIRY.USER.MAC`, a MAC under this process's key over the mount, the user
//! and the expiry. A segment request is served with a valid token, or with a login.
//!
//! Tokens are cut to a ten-minute bucket and live two (10 to 20 minutes), so a player's
//! segment URLs stay the same for ten minutes and a cache in front keeps one copy per
//! listener and bucket rather than one per request. A token names its user: one removed
//! from the users file (SIGHUP) loses its tokens at once. A restart makes new keys, and
//! players fetch the playlist again anyway.
//!
//! The token is read from outside: a boundary parser, on bytes, property-tested.

use crate::util::random::to_hex;
use ring::hmac;
use std::time::{SystemTime, UNIX_EPOCH};

/// Tokens are issued per bucket of this many seconds...
const BUCKET_SECS: u64 = 600;
/// ...and stay valid this many buckets.
const BUCKETS: u64 = 2;
/// The MAC's bytes kept (128 bits).
const MAC_BYTES: usize = 16;
/// A user name longer than this gets no token (a users file's names are short).
const MAX_USER: usize = 128;

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn mac(key: &[u8], mount: &str, user: &str, expiry: u64) -> String {
    let k = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut ctx = hmac::Context::with_key(&k);
    ctx.update(b"ringcast-hls-token\0");
    ctx.update(mount.as_bytes());
    ctx.update(b"\0");
    ctx.update(user.as_bytes());
    ctx.update(b"\0");
    ctx.update(&expiry.to_be_bytes());
    let tag = ctx.sign();
    to_hex(tag.as_ref().get(..MAC_BYTES).unwrap_or_default())
}

/// The token for `user` on `mount` now.
pub fn issue(key: &[u8], mount: &str, user: &str) -> Option<String> {
    issue_at(key, mount, user, now_secs())
}

fn issue_at(key: &[u8], mount: &str, user: &str, now: u64) -> Option<String> {
    if user.len() > MAX_USER {
        return None;
    }
    let expiry = (now / BUCKET_SECS)
        .checked_add(BUCKETS)?
        .checked_mul(BUCKET_SECS)?;
    Some(format!(
        "{expiry:x}.{}.{}",
        to_hex(user.as_bytes()),
        mac(key, mount, user, expiry)
    ))
}

/// The user a token of `mount` names, when it is valid now.
pub fn check(key: &[u8], mount: &str, token: &[u8]) -> Option<String> {
    check_at(key, mount, token, now_secs())
}

fn check_at(key: &[u8], mount: &str, token: &[u8], now: u64) -> Option<String> {
    let text = std::str::from_utf8(token).ok()?;
    let mut parts = text.split('.');
    let (Some(exp), Some(user), Some(given), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let expiry = u64::from_str_radix(exp, 16).ok()?;
    if expiry <= now || expiry > now.saturating_add(BUCKET_SECS.saturating_mul(BUCKETS)) {
        return None;
    }
    let user = String::from_utf8(from_hex(user)?).ok()?;
    let want = mac(key, mount, &user, expiry);
    crate::http::auth::same_secret(given, &want).then_some(user)
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || s.len() > MAX_USER.saturating_mul(2) {
        return None;
    }
    s.as_bytes()
        .chunks(2)
        .map(|p| {
            std::str::from_utf8(p)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn a_token_names_its_user_on_its_mount_until_it_expires() {
        let now = 1_764_698_400;
        let t = issue_at(KEY, "/live", "anna", now).unwrap();
        assert_eq!(
            check_at(KEY, "/live", t.as_bytes(), now).as_deref(),
            Some("anna")
        );
        assert_eq!(
            issue_at(KEY, "/live", "anna", now + 60),
            Some(t.clone()),
            "stable within its bucket (caches keep one copy)"
        );
        assert!(check_at(KEY, "/other", t.as_bytes(), now).is_none());
        assert!(check_at(b"another key", "/live", t.as_bytes(), now).is_none());
        assert!(
            check_at(KEY, "/live", t.as_bytes(), now + 1200).is_none(),
            "expired"
        );
        let forged = t.replace("616e6e61", "626f62");
        assert!(check_at(KEY, "/live", forged.as_bytes(), now).is_none());
        let mut tampered = t.into_bytes();
        if let Some(last) = tampered.last_mut() {
            *last = if *last == b'0' { b'1' } else { b'0' };
        }
        assert!(check_at(KEY, "/live", &tampered, now).is_none());
    }

    #[test]
    fn tokens_check_or_fail_cleanly_on_any_bytes() {
        crate::util::fuzz::run(
            "hls_token::check",
            &[
                b"6930b400.616e6e61.00112233445566778899aabbccddeeff",
                b"..",
                b"ff.zz.1",
            ],
            256,
            |b| {
                let _ = check_at(KEY, "/", b, 1_764_698_400);
            },
        );
    }
}
