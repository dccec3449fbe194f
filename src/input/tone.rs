//! The built-in test tone: a 440 Hz sine, 22.05 kHz 16-bit mono, as an endless WAV stream
//! produced in real time. It is the embedded default of `make run`, so a player can check a
//! ringcast install with no other program.
//!
//! It makes its own bytes from constants (nothing from outside), so the boundary lints of
//! `input/` are lifted here for its sample arithmetic.
#![allow(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]

use super::{Close, Got, Input};
use crate::config::stream::TONE_HEADER_BYTES as HEADER_BYTES;
use std::io;
use std::time::{Duration, Instant};

pub use crate::config::stream::TONE_SAMPLE_RATE as SAMPLE_RATE;
const FREQ: f32 = 440.0;
const AMPLITUDE: f32 = 0.25 * i16::MAX as f32;

/// The WAV header of an endless stream: both sizes are 0xFFFFFFFF ("unknown"), which
/// ffplay, mpv, VLC and browsers accept for live streams.
pub fn wav_header() -> [u8; HEADER_BYTES] {
    let mut h = [0u8; HEADER_BYTES];
    let byte_rate = SAMPLE_RATE * 2;
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    h[8..16].copy_from_slice(b"WAVEfmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&1u16.to_le_bytes()); // PCM
    h[22..24].copy_from_slice(&1u16.to_le_bytes()); // mono
    h[24..28].copy_from_slice(&SAMPLE_RATE.to_le_bytes());
    h[28..32].copy_from_slice(&byte_rate.to_le_bytes());
    h[32..34].copy_from_slice(&2u16.to_le_bytes()); // block align
    h[34..36].copy_from_slice(&16u16.to_le_bytes()); // bits per sample
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&u32::MAX.to_le_bytes());
    h
}

pub struct ToneInput {
    started: Instant,
    header_left: usize,
    samples_out: u64,
}

impl ToneInput {
    pub fn new() -> ToneInput {
        ToneInput {
            started: Instant::now(),
            header_left: HEADER_BYTES,
            samples_out: 0,
        }
    }

    fn samples_due(&self) -> u64 {
        (self.started.elapsed().as_secs_f64() * SAMPLE_RATE as f64) as u64
    }
}

impl Input for ToneInput {
    fn read_timeout(&mut self, buf: &mut [u8], wait: Duration) -> io::Result<Got> {
        if self.header_left > 0 {
            let h = wav_header();
            let from = HEADER_BYTES - self.header_left;
            let n = self.header_left.min(buf.len());
            buf[..n].copy_from_slice(&h[from..from + n]);
            self.header_left -= n;
            return Ok(Got::from_len(n));
        }
        let mut due = self.samples_due();
        if due <= self.samples_out {
            // Sleep until the next 10 ms of samples is due, or the wait runs out.
            let step = Duration::from_millis(10).min(wait);
            std::thread::sleep(step);
            due = self.samples_due();
            if due <= self.samples_out {
                return Ok(Got::Nothing);
            }
        }
        let n = ((due - self.samples_out) as usize).min(buf.len() / 2);
        let w = std::f32::consts::TAU * FREQ / SAMPLE_RATE as f32;
        for (k, out) in buf[..n * 2].chunks_exact_mut(2).enumerate() {
            // The phase restarts every second (440 whole cycles), which keeps f32 exact.
            let i = (self.samples_out + k as u64) % SAMPLE_RATE as u64;
            let s = (AMPLITUDE * (w * i as f32).sin()) as i16;
            out.copy_from_slice(&s.to_le_bytes());
        }
        self.samples_out += n as u64;
        Ok(Got::from_len(n * 2))
    }

    fn close(&mut self, _how: Close) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_then_real_time_samples() {
        let mut t = ToneInput::new();
        let mut buf = [0u8; 64];
        assert_eq!(
            t.read_timeout(&mut buf, Duration::from_secs(1)).unwrap(),
            Got::Bytes(44)
        );
        assert_eq!(&buf[..4], b"RIFF");
        assert_eq!(&buf[36..40], b"data");
        let mut got = 0;
        let start = Instant::now();
        let mut big = vec![0u8; 1 << 16];
        while got < 4410 {
            if let Ok(Got::Bytes(n)) = t.read_timeout(&mut big, Duration::from_millis(50)) {
                got += n;
            }
        }
        // 4410 bytes = 100 ms of audio: it cannot have come faster than real time.
        assert!(
            start.elapsed() >= Duration::from_millis(90),
            "{:?}",
            start.elapsed()
        );
        assert!(big.iter().any(|&b| b != 0));
    }
}
