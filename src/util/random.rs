//! Unpredictable numbers, all from the system's CSPRNG (ring's `SystemRandom`, which is
//! `getrandom(2)` on Linux): link nonces and their key, stream epochs, session ids, backoff
//! jitter. There is no fallback: `main` checks at start-up that the CSPRNG answers, and a
//! later failure is an error to the caller, never a guessable value.

use ring::rand::{SecureRandom, SystemRandom};
use std::io;

/// `n` random bytes.
pub fn bytes(n: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    SystemRandom::new()
        .fill(&mut buf)
        .map_err(|_| io::Error::other("the system's random number generator failed"))?;
    Ok(buf)
}

/// A random `u64` (never 0).
pub fn u64() -> io::Result<u64> {
    let mut b = [0u8; 8];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| io::Error::other("the system's random number generator failed"))?;
    Ok(u64::from_be_bytes(b).max(1))
}

/// `n` random bytes as lowercase hex.
pub fn hex(n: usize) -> io::Result<String> {
    bytes(n).map(|b| to_hex(&b))
}

pub fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn values_differ_and_have_the_asked_size() {
        let (a, b) = (super::hex(16).unwrap(), super::hex(16).unwrap());
        assert_eq!((a.len(), b.len()), (32, 32));
        assert_ne!(a, b);
        assert_ne!(super::u64().unwrap(), super::u64().unwrap());
    }
}
