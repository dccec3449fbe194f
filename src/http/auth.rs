//! HTTP Basic credentials: base64 both ways, a comparison that does not leak how much of a
//! password matched through its timing, and what a login check came to ([`Login`]: the
//! server's login budget gives it, its HTTP answers and the link's handshake read it).

use std::time::Duration;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The alphabet's character for the low 6 bits of `v`.
fn symbol(v: u32) -> char {
    ALPHABET
        .get(usize::try_from(v & 63).unwrap_or(0))
        .map_or('=', |&c| char::from(c))
}

pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3).saturating_mul(4));
    for chunk in data.chunks(3) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = byte(0) << 16 | byte(1) << 8 | byte(2);
        // A chunk of k bytes gives k + 1 symbols, then padding.
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(symbol(n >> shift));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes base64 (padding optional); `None` for a character outside the alphabet.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim().trim_end_matches('=');
    let mut out = Vec::with_capacity((s.len() / 4).saturating_mul(3));
    let mut acc: u32 = 0;
    let mut bits: u32 = 0;
    for c in s.bytes() {
        let v = u32::try_from(ALPHABET.iter().position(|&a| a == c)?).ok()?;
        // Only the low 14 bits are ever needed: keep acc from growing.
        acc = (acc << 6 | v) & 0x3fff;
        bits = bits.checked_add(6)?;
        if bits >= 8 {
            bits = bits.checked_sub(8)?;
            out.push(u8::try_from(acc >> bits & 0xff).ok()?);
        }
    }
    Some(out)
}

/// The `Authorization: Basic …` header value for `user:password`.
pub fn basic_header(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64_encode(format!("{user}:{password}").as_bytes())
    )
}

/// The (user, password) of an `Authorization: Basic …` header value.
pub fn parse_basic(header: &str) -> Option<(String, String)> {
    let (scheme, value) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let text = String::from_utf8(base64_decode(value)?).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// The outcome of a login check through the server's login budget (`Peers::login`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Login {
    Ok,
    /// Wrong or missing credentials: answer 401.
    Wrong,
    /// Refused unchecked: the address's next turn is this far away (answer 429).
    Locked(Duration),
}

/// Compares secrets in time that depends only on their lengths.
pub fn same_secret(a: &str, b: &str) -> bool {
    same_secret_bytes(a.as_bytes(), b.as_bytes())
}

/// [`same_secret`] on bytes.
pub fn same_secret_bytes(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).unwrap_or(&0) ^ b.get(i).unwrap_or(&0);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_takes_any_bytes() {
        crate::util::fuzz::run(
            "auth::parse_basic",
            &[
                b"Basic c291cmNlOmhhY2ttZQ==",
                b"Basic \xc3\xa9==",
                b"basic ====",
            ],
            128,
            |b| {
                let s = String::from_utf8_lossy(b);
                if let Some(d) = base64_decode(&s) {
                    assert!(d.len() <= s.len());
                }
                let _ = parse_basic(&s);
                assert_eq!(base64_decode(&base64_encode(b)).as_deref(), Some(b));
            },
        );
    }

    #[test]
    fn base64_round_trips_known_values() {
        assert_eq!(base64_encode(b"source:hackme"), "c291cmNlOmhhY2ttZQ==");
        assert_eq!(base64_encode(b"ab"), "YWI=");
        assert_eq!(base64_encode(b""), "");
        assert_eq!(
            base64_decode("c291cmNlOmhhY2ttZQ==").unwrap(),
            b"source:hackme"
        );
        assert!(base64_decode("***").is_none());
        assert_eq!(
            parse_basic("Basic c291cmNlOmhhY2ttZQ=="),
            Some(("source".into(), "hackme".into()))
        );
        assert_eq!(
            parse_basic(&basic_header("admin", "p:w")),
            Some(("admin".into(), "p:w".into()))
        );
        assert!(parse_basic("Bearer x").is_none());
    }

    #[test]
    fn secrets() {
        assert!(same_secret("hackme", "hackme"));
        assert!(!same_secret("hackme", "hackmf"));
        assert!(!same_secret("hackme", "hack"));
    }
}
