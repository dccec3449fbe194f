//! Files played in real time: a regular file given to `-path` is paced by its frames' own
//! durations (MP3 headers, Ogg granule positions), so a VBR file plays at its real speed.
//! Measured in audio received (frames and granules), not bytes.

use crate::common::*;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(20);

/// Seconds of audio in MP3 frames of 1152 samples at 44.1 kHz (the fixture's format).
fn mp3_seconds(b: &[u8]) -> f64 {
    mp3_frames(b).len() as f64 * 1152.0 / 44100.0
}

/// Seconds of Opus audio in whole Ogg pages: granule steps at 48 kHz, per logical stream,
/// from its beginning-of-stream page (a looping file starts again at 0).
fn opus_seconds(b: &[u8]) -> f64 {
    let mut last: std::collections::HashMap<u32, u64> = Default::default();
    let mut total = 0u64;
    for page in ogg::pages(b) {
        if page.bos() {
            last.insert(page.serial, 0);
        } else if page.granule != u64::MAX {
            if let Some(prev) = last.get_mut(&page.serial) {
                total += page.granule.saturating_sub(*prev);
                *prev = page.granule;
            }
        }
    }
    total as f64 / 48000.0
}

/// Listens for `WINDOW` from the first body byte; the audio received, by `seconds`.
fn audio_in_window(s: &Server, seconds: fn(&[u8]) -> f64) -> (f64, f64) {
    let mut l = s.listen();
    assert_eq!(l.status, 200);
    l.read_body(1, Duration::from_secs(10));
    let t0 = Instant::now();
    let start = l.body.len();
    while t0.elapsed() < WINDOW {
        let want = l.body.len() + 1;
        l.read_body(want, WINDOW.saturating_sub(t0.elapsed()));
    }
    let wall = t0.elapsed().as_secs_f64();
    // Count from a frame boundary inside what came first, so the first partial read does
    // not count.
    let audio = seconds(&l.body) - seconds(&l.body[..start]);
    (audio, wall)
}

#[test]
fn a_vbr_mp3_and_an_ogg_file_play_at_their_real_duration() {
    let mp3 = Server::start(&[
        "-path",
        fixture("vbr-6s.mp3").to_str().unwrap(),
        "-frame-filter",
        "mp3",
        "-frame-bytes",
        "2881",
    ]);
    let ogg = Server::start(&[
        "-path",
        fixture("tone-opus.ogg").to_str().unwrap(),
        "-frame-filter",
        "ogg",
    ]);
    let (m, o) = std::thread::scope(|sc| {
        let m = sc.spawn(|| audio_in_window(&mp3, mp3_seconds));
        let o = sc.spawn(|| audio_in_window(&ogg, opus_seconds));
        (m.join().unwrap(), o.join().unwrap())
    });
    for (name, (audio, wall)) in [("vbr mp3", m), ("opus", o)] {
        let off = (audio - wall) / wall;
        eprintln!(
            "{name}: {audio:.2} s of audio in {wall:.2} s ({:+.2}%)",
            off * 100.0
        );
        assert!(
            off.abs() <= 0.02,
            "{name}: {audio:.2} s of audio in {wall:.2} s ({:+.1}%)",
            off * 100.0
        );
    }
}
