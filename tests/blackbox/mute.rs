//! `/admin/mute`: listeners stay connected and hear silence in the stream's own format
//! (checked with ffmpeg's `volumedetect`), sound comes back at unmute, and a muted file goes
//! on from the frame where it stopped.

use crate::common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(15);

fn admin_mute(s: &Server, on: bool) {
    let mode = if on { "on" } else { "off" };
    let mut l = get_with_auth(s.addr, &format!("/admin/mute?mode={mode}"), "admin", "adm");
    assert_eq!(l.status, 200, "{}", l.head);
    l.read_to_eof(Duration::from_secs(5));
}

/// ffmpeg's loudest sample of `data` (a file of `format`), in dB; `None` if it did not
/// decode cleanly. Silence is -91 dB or "-inf".
fn max_volume(name: &str, format: &str, data: &[u8]) -> Option<f64> {
    require_program("ffmpeg", "ffmpeg");
    let path = scratch(name).join("part");
    std::fs::write(&path, data).unwrap();
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "info", "-f", format, "-i"])
        .arg(&path)
        .args(["-af", "volumedetect", "-f", "null", "-"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let clean = out.status.success() && !err.contains("Error") && !err.contains("error");
    assert!(clean, "{name}: ffmpeg: {err}");
    let v = err.lines().find_map(|l| l.split("max_volume: ").nth(1))?;
    let v = v.trim_end_matches(" dB").trim();
    eprintln!("{name}: max_volume {v} dB");
    Some(if v == "-inf" {
        f64::NEG_INFINITY
    } else {
        v.parse().ok()?
    })
}

/// Reads from `l` until `done(body)` or `T`.
fn read_until(l: &mut Listener, done: impl Fn(&[u8]) -> bool) {
    let start = Instant::now();
    while !done(&l.body) && start.elapsed() < T {
        let want = l.body.len() + 1;
        l.read_body(want, T.saturating_sub(start.elapsed()));
    }
    assert!(done(&l.body), "timed out with {} bytes", l.body.len());
}

/// MP3 frames of `b`, each flagged silent (nothing after its header but zeros).
fn mp3_kinds(b: &[u8]) -> Vec<(usize, usize, bool)> {
    mp3_frames(b)
        .into_iter()
        .map(|(o, n)| (o, n, b[o + 4..o + n].iter().all(|&x| x == 0)))
        .collect()
}

#[test]
fn a_muted_mp3_file_sends_silence_and_goes_on_where_it_stopped() {
    let file = fixture("vbr-6s.mp3");
    let s = Server::start(&[
        "-path",
        file.to_str().unwrap(),
        "-frame-filter",
        "mp3",
        "-frame-bytes",
        "2881",
        "-admin-password",
        "adm",
    ]);
    let mut l = s.listen();
    // About a second of sound, then a mute of at least 40 frames (a second), then sound.
    read_until(&mut l, |b| mp3_kinds(b).len() >= 40);
    admin_mute(&s, true);
    assert!(s.wait_log("muted /", Duration::from_secs(5)).is_some());
    let m = Server::status_muted(&s);
    assert!(m, "status says muted");
    read_until(&mut l, |b| {
        mp3_kinds(b).iter().filter(|k| k.2).count() >= 40
    });
    admin_mute(&s, false);
    read_until(&mut l, |b| {
        let k = mp3_kinds(b);
        let last_silent = k.iter().rposition(|f| f.2).unwrap_or(0);
        k.len() > last_silent + 40
    });
    let body = l.body.clone();
    let kinds = mp3_kinds(&body);
    let first = kinds.iter().position(|k| k.2).unwrap();
    let last = kinds.iter().rposition(|k| k.2).unwrap();
    assert!(
        kinds[first..=last].iter().all(|k| k.2),
        "one run of silence"
    );
    // Each part decodes cleanly: the silence is silent, the sound around it is not.
    let part = |a: usize, b: usize| &body[kinds[a].0..kinds[b].0 + kinds[b].1];
    let quiet = max_volume("mute-mp3-quiet", "mp3", part(first, last)).unwrap();
    assert!(quiet < -80.0, "muted: {quiet} dB");
    let before = max_volume("mute-mp3-before", "mp3", part(0, first - 1)).unwrap();
    let after = max_volume("mute-mp3-after", "mp3", part(last + 1, kinds.len() - 1)).unwrap();
    assert!(
        before > -30.0 && after > -30.0,
        "sound: {before} dB, then {after} dB"
    );
    max_volume("mute-mp3-all", "mp3", part(0, kinds.len() - 1)).unwrap();
    // The file went on from the frame where it stopped: the frames either side of the
    // silence follow each other in the file.
    let data = std::fs::read(&file).unwrap();
    let file_frames: Vec<&[u8]> = mp3_frames(&data)
        .into_iter()
        .map(|(o, n)| &data[o..o + n])
        .collect();
    let frame = |i: usize| &body[kinds[i].0..kinds[i].0 + kinds[i].1];
    let at = file_frames
        .iter()
        .position(|f| *f == frame(first - 1))
        .expect("the frame before the silence is the file's");
    let next = file_frames[(at + 1) % file_frames.len()];
    assert_eq!(next, frame(last + 1), "resumed at the next frame");
}

#[test]
fn a_muted_opus_file_sends_silent_pages_that_decode_across_mute_and_unmute() {
    let s = Server::start(&[
        "-path",
        fixture("tone-opus.ogg").to_str().unwrap(),
        "-frame-filter",
        "ogg",
        "-admin-password",
        "adm",
    ]);
    let mut l = s.listen();
    let pages = |b: &[u8]| ogg::pages(b).len();
    read_until(&mut l, |b| pages(b) >= 12);
    let before = l.body.len();
    admin_mute(&s, true);
    read_until(&mut l, |b| pages(&b[before..]) >= 15);
    let muted_at = l.body.len();
    admin_mute(&s, false);
    read_until(&mut l, |b| pages(&b[muted_at..]) >= 15);
    // The whole capture decodes with no error (granule positions and page numbers go on
    // through the silence), and it holds silence and sound.
    let all = max_volume("mute-opus-all", "ogg", &l.body).unwrap();
    assert!(all > -30.0, "{all} dB");
    // The pages sent while muted (less the edges) are silent: decode them with the headers.
    let header_end = nth_page(&l.body, 2);
    let a = nth_page(&l.body, pages(&l.body[..before]) + 3);
    let b = nth_page(&l.body, pages(&l.body[..muted_at]) - 2);
    let quiet = [&l.body[..header_end], &l.body[a..b]].concat();
    let v = max_volume("mute-opus-quiet", "ogg", &quiet).unwrap();
    assert!(v < -60.0, "muted: {v} dB");
}

/// The offset of page `n` (0-based) in `b`.
fn nth_page(b: &[u8], n: usize) -> usize {
    ogg::pages(b)[n].at
}

#[test]
fn a_muted_raw_pcm_stream_sends_zeros_and_keeps_its_listeners() {
    let s = Server::start(&["-tone", "-admin-password", "adm", "-mute"]);
    assert!(Server::status_muted(&s), "-mute starts muted");
    let mut l = s.listen();
    read_until(&mut l, |b| b.len() >= 44 + 20_000);
    // The WAV header, then nothing but zeros.
    assert!(l.body[..4] == *b"RIFF");
    assert!(l.body[44..].iter().all(|&x| x == 0), "silence while muted");
    let muted = l.body.len();
    admin_mute(&s, false);
    read_until(&mut l, |b| {
        b[muted..].iter().filter(|&&x| x != 0).count() > 10_000
    });
    let v = max_volume("mute-raw", "wav", &l.body).unwrap();
    assert!(v > -30.0, "sound after unmute: {v} dB");
}

impl Server {
    /// `/status-json.xsl` says the (first) stream is muted.
    fn status_muted(s: &Server) -> bool {
        let mut st = Listener::get(s.addr, "/status-json.xsl", 1);
        st.read_to_eof(Duration::from_secs(5));
        let v: serde_json::Value = serde_json::from_slice(&st.body).unwrap();
        v["icestats"]["source"][0]["muted"] == true
    }
}
