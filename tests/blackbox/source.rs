//! Inputs and framing as a listener sees them: raw framing, headers, exec restarts,
//! backoff, quiet sources, bandwidth limits, client byte limits, identical streams.

use crate::common::*;
use std::io::Read;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(10);

/// A script that waits for `go` to exist before running `then`.
fn after_go(go: &std::path::Path, then: &str) -> String {
    format!(
        "while [ ! -e {} ]; do sleep 0.02; done; {then}",
        go.display()
    )
}

#[test]
fn raw_framing_sends_whole_blocks_and_drops_the_partial_tail() {
    let dir = scratch("raw-tail");
    let file = dir.join("data");
    let data: Vec<u8> = (0..1000u32).map(|i| (i % 256) as u8).collect();
    std::fs::write(&file, &data).unwrap();
    let go = dir.join("go");
    let script = after_go(&go, &format!("cat {}", file.display()));
    let s = Server::start(&[
        "-frame-bytes",
        "64",
        "-reopen=false",
        "-exec",
        "sh",
        "-c",
        &script,
    ]);
    let mut l = s.listen();
    std::fs::write(&go, b"").unwrap();
    assert!(l.read_to_eof(T));
    assert_eq!(
        l.body,
        &data[..960],
        "15 whole 64-byte frames, the 40-byte tail dropped"
    );
}

#[test]
fn header_bytes_reach_every_client_before_frame_aligned_data() {
    let dir = scratch("header");
    let file = dir.join("data");
    let mut data = b"HEADER-16-BYTES!".to_vec();
    for i in 0..2000u32 {
        let mut frame = format!("F{i:07}").into_bytes();
        frame.resize(32, b'.');
        data.extend_from_slice(&frame);
    }
    std::fs::write(&file, &data).unwrap();
    let path = file.to_str().unwrap();
    let s = Server::start(&[
        "-path",
        path,
        "-header-bytes",
        "16",
        "-frame-bytes",
        "32",
        "-source-bandwidth",
        "32000",
    ]);
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut l = s.listen();
        l.read_body(16 + 32 * 10, T);
        clients.push(l);
    }
    for l in &clients {
        assert_eq!(&l.body[..16], b"HEADER-16-BYTES!");
        for frame in l.body[16..].chunks_exact(32) {
            assert_eq!(
                frame[0],
                b'F',
                "frame-aligned: {:?}",
                String::from_utf8_lossy(frame)
            );
        }
    }
}

#[test]
fn every_reader_gets_identical_content() {
    let dir = scratch("identical");
    let file = dir.join("data");
    let mut data = Vec::new();
    for i in 0..4000u32 {
        let mut frame = i.to_be_bytes().to_vec();
        frame.extend((0..28).map(|k| (i as u8).wrapping_mul(31).wrapping_add(k)));
        data.extend_from_slice(&frame);
    }
    std::fs::write(&file, &data).unwrap();
    let s = Server::start(&[
        "-path",
        file.to_str().unwrap(),
        "-frame-bytes",
        "32",
        "-source-buffer",
        "4096",
        "-source-bandwidth",
        "64000",
    ]);
    let mut clients: Vec<Listener> = (0..6).map(|_| s.listen()).collect();
    for l in clients.iter_mut() {
        l.read_body(32 * 300, T);
    }
    // Map frame number → bytes for each client; every frame seen by two clients is equal,
    // and equal to the source file's frame.
    for l in &clients {
        let frames: Vec<&[u8]> = l.body.chunks_exact(32).collect();
        assert!(frames.len() >= 300);
        for pair in frames.windows(2) {
            let a = u32::from_be_bytes(pair[0][..4].try_into().unwrap());
            let b = u32::from_be_bytes(pair[1][..4].try_into().unwrap());
            assert_eq!(b, (a + 1) % 4000, "consecutive frames");
        }
        for f in frames {
            let n = u32::from_be_bytes(f[..4].try_into().unwrap()) as usize;
            assert_eq!(f, &data[n * 32..n * 32 + 32]);
        }
    }
}

#[test]
fn client_max_bytes_cuts_4mib_on_1mib_frames() {
    let s = Server::start(&[
        "-path",
        "/dev/zero",
        "-frame-bytes",
        "1048576",
        "-source-buffer",
        "8",
        "-client-max-bytes",
        "4194304",
        "-source-bandwidth",
        "16000000",
    ]);
    let mut l = s.listen();
    assert!(
        l.read_to_eof(Duration::from_secs(20)),
        "connection ends cleanly"
    );
    assert_eq!(l.body.len(), 4 * 1048576);
}

#[test]
fn exec_is_restarted_and_listeners_stay_connected() {
    let dir = scratch("exec-restart");
    let count = dir.join("count");
    let script = format!("echo run >> {}; printf 0123456789abcdef", count.display());
    let s = Server::start(&["-frame-bytes", "16", "-exec", "sh", "-c", &script]);
    let mut l = s.listen();
    let body = l.read_body(16 * 3, Duration::from_secs(20)).to_vec();
    assert!(body.len() >= 48, "{}", s.log_text());
    for frame in body.chunks_exact(16) {
        assert_eq!(frame, b"0123456789abcdef");
    }
    assert!(line_count(&count) >= 3);
}

#[test]
fn a_command_that_exits_at_once_is_restarted_with_backoff() {
    // streamserve respawns such a command ~7 times a second, forever.
    let s = Server::start(&["-exec", "true"]);
    let first = Instant::now();
    assert!(s
        .wait_log_count("reopening the source in", 5, Duration::from_secs(20))
        .is_some());
    // Delays of at least 75+150+300+600 ms (the ±25% jittered 100, 200, 400, 800 ms steps).
    assert!(
        first.elapsed() >= Duration::from_millis(1100),
        "{:?}",
        first.elapsed()
    );
    assert!(s.log_count("started true") <= 6);
}

#[test]
fn max_quiet_interval_closes_and_reopens_a_silent_source() {
    let dir = scratch("quiet");
    let count = dir.join("count");
    let script = format!(
        "echo run >> {}; printf ABCD; exec sleep 30",
        count.display()
    );
    let s = Server::start(&[
        "-frame-bytes",
        "4",
        "-max-quiet-interval",
        "500ms",
        "-exec",
        "sh",
        "-c",
        &script,
    ]);
    let mut l = s.listen();
    assert!(s.wait_log("-max-quiet-interval", T).is_some());
    assert!(
        eventually(T, || line_count(&count) >= 2),
        "restarted after the quiet interval"
    );
    assert!(l.read_body(8, T).starts_with(b"ABCD"));
}

#[test]
fn source_bandwidth_is_honoured_within_20_percent() {
    let rate = 50_000.0;
    let s = Server::start(&[
        "-path",
        "/dev/zero",
        "-frame-bytes",
        "500",
        "-source-bandwidth",
        "50000",
    ]);
    let mut l = s.listen();
    l.read_body(10_000, T); // settle
                            // Listeners get the stream in batches (one wake-up per 500 ms): measure from one batch's
                            // arrival to another's, so the window does not cut a batch in two.
    let mut buf = [0u8; 8192];
    let _first_batch = l.conn.read(&mut buf).unwrap();
    let start = Instant::now();
    let mut got = 0usize;
    let mut last = start;
    while start.elapsed() < Duration::from_secs(4) {
        got += l.conn.read(&mut buf).unwrap();
        last = Instant::now();
    }
    let measured = got as f64 / last.duration_since(start).as_secs_f64();
    assert!((measured - rate).abs() / rate < 0.2, "{measured:.0} B/s");
}

#[test]
fn garbage_in_an_mp3_source_never_reaches_listeners() {
    let dir = scratch("garbage");
    let mp3 = std::fs::read(fixture("tone-128k-44k1.mp3")).unwrap();
    let frames = mp3_frames(&mp3);
    // Junk full of false syncs, a truncated frame, then the real frames; looped.
    let mut junk: Vec<u8> = (0..3000u32)
        .map(|i| if i % 7 == 0 { 0xFF } else { (i * 13) as u8 })
        .collect();
    junk.extend_from_slice(&mp3[frames[5].0..frames[5].0 + 200]);
    let file = dir.join("input");
    std::fs::write(&file, [junk.clone(), mp3.clone(), junk].concat()).unwrap();
    let s = mp3_server(&file, "64000", &["-burst-bytes", "100000"]);
    let mut l = s.listen();
    let body = l.read_body(60_000, Duration::from_secs(15)).to_vec();
    assert!(body.len() >= 60_000);
    let matched = match_frames(&body, &mp3, &frames).unwrap_or_else(|e| panic!("{e}"));
    assert!(matched.len() > 100);
    assert!(s.wait_log("not mp3 frames", T).is_some(), "junk is logged");
}
