//! HTTP Basic credentials: base64 both ways, and a comparison that does not leak how much of
//! a password matched through its timing.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim().trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in s.bytes() {
        let v = ALPHABET.iter().position(|&a| a == c)? as u32;
        acc = acc << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
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

/// Compares secrets in time that depends only on their lengths.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut diff = (a.len() != b.len()) as u8;
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).unwrap_or(&0) ^ b.get(i).unwrap_or(&0);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

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
