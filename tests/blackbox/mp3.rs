//! Real MP3 streams (made with lame, in tests/fixtures): listeners get whole frames only.

use crate::common::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(15);

fn serve_looped(name: &str, rate: &str) -> (Server, Vec<u8>, Vec<(usize, usize)>) {
    let path = fixture(name);
    let data = std::fs::read(&path).unwrap();
    let frames = mp3_frames(&data);
    assert!(frames.len() > 20, "fixture has frames");
    let s = mp3_server(&path, rate, &["-source-buffer", "400"]);
    (s, data, frames)
}

#[test]
fn a_listener_joining_mid_stream_gets_whole_frames_from_a_boundary() {
    let (s, data, frames) = serve_looped("tone-128k-44k1.mp3", "32000");
    assert!(
        frames
            .iter()
            .skip(1)
            .all(|&(_, len)| len == 417 || len == 418),
        "lame 128k/44.1k frames"
    );
    let mut first = s.listen();
    assert_eq!(first.status, 200);
    assert!(first.head.contains("Content-Type: audio/mpeg"));
    // Join once the stream is well under way (the first listener has heard 20 KB of it).
    first.read_body(20_000, T);
    for _ in 0..3 {
        let mut l = s.listen();
        let body = l.read_body(12_000, T).to_vec();
        assert!(body.len() >= 12_000);
        let idx = match_frames(&body, &data, &frames).unwrap_or_else(|e| panic!("{e}"));
        assert!(idx.len() >= 25, "{} frames", idx.len());
        for w in idx.windows(2) {
            assert!(
                w[1] == w[0] + 1 || w[1] == 0,
                "frames in order: {} then {}",
                w[0],
                w[1]
            );
        }
    }
}

#[test]
fn id3_tags_are_skipped_and_mpeg2_frames_pass_whole() {
    let (s, data, frames) = serve_looped("voice-40k-16k-id3.mp3", "10000");
    assert!(data.starts_with(b"ID3") && data[data.len() - 128..].starts_with(b"TAG"));
    assert!(
        frames.iter().skip(1).all(|&(_, len)| len == 180),
        "lame 40k/16k frames are 180 bytes"
    );
    let mut l = s.listen();
    // 12 KB is more than one pass of the file: the tags at the loop point come by.
    let body = l.read_body(12_000, T).to_vec();
    assert!(body.len() >= 12_000);
    let idx = match_frames(&body, &data, &frames).unwrap_or_else(|e| panic!("{e}"));
    assert!(idx.len() >= 60);
    assert!(
        !body.windows(3).any(|w| w == b"ID3" || w == b"TAG"),
        "no tag bytes sent"
    );
    assert!(s.wait_log("tag(s)", T).is_some());
}

#[test]
fn burst_bytes_gives_a_new_listener_recent_audio_at_once_from_a_boundary() {
    let path = fixture("tone-128k-44k1.mp3");
    let data = std::fs::read(&path).unwrap();
    let frames = mp3_frames(&data);
    let s = mp3_server(
        &path,
        "16000",
        &["-source-buffer", "400", "-burst-bytes", "16000"],
    );
    // Let a second of audio build up in the ring (a first listener hears it arrive).
    let mut first = s.listen();
    first.read_body(20_000, T);
    let start = std::time::Instant::now();
    let mut l = s.listen();
    // ~16 KB arrive at once: far faster than the 16 KB/s the stream runs at.
    let body = l.read_body(14_000, Duration::from_millis(400)).to_vec();
    assert!(
        body.len() >= 14_000,
        "{} bytes in {:?}",
        body.len(),
        start.elapsed()
    );
    let idx = match_frames(&body, &data, &frames).unwrap_or_else(|e| panic!("{e}"));
    assert!(idx.len() >= 33);
}
