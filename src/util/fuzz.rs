//! The property-test harness (tests only; stable Rust, no dependencies): feeds a parser its
//! regression cases, then random byte strings and mutations of them, for a bounded count and
//! time, and reports the input that broke a property. Every parser that reads bytes from
//! outside has a test in its own file that calls [`run`] (README, Security).
//!
//! Runs are reproducible: the generator is seeded from the test's name, or from
//! `RINGCAST_FUZZ_SEED` to explore further. An input that once failed goes into that test's
//! seed list, so it is tried first on every run after.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

/// At most this many inputs per test...
const ITERATIONS: u32 = 20_000;
/// ...and at most this long (qemu runs fewer inputs in the same time).
const BUDGET: Duration = Duration::from_millis(1500);

/// splitmix64: small, fast, good enough to pick bytes.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn byte(&mut self) -> u8 {
        // Bytes parsers care about come up more often than chance would have them.
        const INTERESTING: &[u8] =
            b"\x00\xff\x80\x7f%+=&?;:'\r\n \t0123456789abcdefABCDEF\xc3\xa9\x47\xfb";
        if self.below(3) == 0 {
            INTERESTING[self.below(INTERESTING.len())]
        } else {
            self.next_u64() as u8
        }
    }

    pub fn bytes(&mut self, max_len: usize) -> Vec<u8> {
        let n = self.below(max_len + 1);
        (0..n).map(|_| self.byte()).collect()
    }

    /// `input` changed in one to four places: bits flipped, bytes inserted, removed,
    /// duplicated or overwritten, or cut short.
    pub fn mutate(&mut self, input: &[u8]) -> Vec<u8> {
        let mut v = input.to_vec();
        for _ in 0..=self.below(4) {
            let at = self.below(v.len() + 1);
            match self.below(6) {
                0 if at < v.len() => v[at] ^= 1 << self.below(8),
                1 => v.insert(at, self.byte()),
                2 if at < v.len() => {
                    let end = (at + 1 + self.below(16)).min(v.len());
                    v.drain(at..end);
                }
                3 if at < v.len() => {
                    let end = (at + 1 + self.below(64)).min(v.len());
                    let piece = v[at..end].to_vec();
                    v.splice(at..at, piece);
                }
                4 if at < v.len() => v[at] = self.byte(),
                5 => v.truncate(at),
                _ => v.push(self.byte()),
            }
        }
        v
    }
}

fn seed_for(name: &str) -> u64 {
    if let Some(s) = std::env::var("RINGCAST_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return s;
    }
    // FNV-1a of the name: each test its own stream, the same on every run.
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Runs `check` on every seed as it is, then on random inputs (up to `max_len` bytes) and
/// mutations of the seeds and of earlier inputs, until the count or time budget is spent.
/// `check` asserts the property; a panic in it (or in the parser) fails the test with the
/// input that caused it, escaped, ready to be added to the seeds.
pub fn run(name: &str, seeds: &[&[u8]], max_len: usize, mut check: impl FnMut(&[u8])) {
    let mut rng = Rng::new(seed_for(name));
    let mut try_one = |input: &[u8]| {
        if catch_unwind(AssertUnwindSafe(|| check(input))).is_err() {
            panic!(
                "{name}: property failed for input b\"{}\" ({} bytes); add it to the seeds",
                input.escape_ascii(),
                input.len()
            );
        }
    };
    for s in seeds {
        try_one(s);
    }
    let started = Instant::now();
    let mut last = Vec::new();
    for i in 0..ITERATIONS {
        if i % 64 == 0 && started.elapsed() > BUDGET {
            break;
        }
        let input = match rng.below(4) {
            0 => rng.bytes(max_len),
            1 if !last.is_empty() => rng.mutate(&last),
            _ if !seeds.is_empty() => {
                let seed = seeds[rng.below(seeds.len())];
                rng.mutate(seed)
            }
            _ => rng.bytes(max_len),
        };
        try_one(&input);
        last = input;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_harness_reports_the_input_that_breaks_a_property() {
        let caught = catch_unwind(|| {
            run("harness", &[b"fine"], 64, |b| assert!(!b.contains(&b'!')));
        });
        let msg = caught.unwrap_err();
        let text = msg.downcast_ref::<String>().unwrap();
        assert!(text.contains("property failed for input"), "{text}");
    }

    #[test]
    fn mutations_stay_near_their_seed_and_random_inputs_vary() {
        let mut rng = Rng::new(1);
        let m = rng.mutate(b"GET / HTTP/1.0\r\n\r\n");
        assert!(m.len() < 18 + 4 * 64 + 4);
        let (a, b) = (rng.bytes(32), rng.bytes(32));
        assert_ne!(a, b);
    }
}
