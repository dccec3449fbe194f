//! HLS (`-hls`): ffmpeg plays the playlist live; the playlist advances one segment at a time
//! with durations that match the clock; a source restart is a discontinuity; segments are
//! made to be cached.

use crate::common::*;
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(15);

fn get(s: &Server, path: &str, extra: &str) -> Listener {
    let mut l = Listener::request(
        s.addr,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\nUser-Agent: hls-test\r\n{extra}\r\n"),
    );
    l.read_to_eof(T);
    l
}

/// (sequence, EXTINF seconds, program date-time in ms since 1970, discontinuity, file).
type Entry = (u64, f64, i64, bool, String);

fn parse(playlist: &str) -> Vec<Entry> {
    let mut seq: u64 = playlist
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .and_then(|v| v.parse().ok())
        .expect("media sequence");
    let (mut dur, mut pdt, mut disc) = (0.0, 0, false);
    let mut out = Vec::new();
    for l in playlist.lines() {
        if let Some(v) = l.strip_prefix("#EXTINF:") {
            dur = v.trim_end_matches(',').parse().unwrap();
        } else if let Some(v) = l.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            pdt = millis(v);
        } else if l == "#EXT-X-DISCONTINUITY" {
            disc = true;
        } else if !l.starts_with('#') && !l.is_empty() {
            out.push((seq, dur, pdt, disc, l.to_string()));
            seq += 1;
            disc = false;
        }
    }
    out
}

/// `2026-11-23T05:40:26.127Z` as milliseconds (only differences matter here).
fn millis(v: &str) -> i64 {
    let (date, time) = v.trim_end_matches('Z').split_once('T').unwrap();
    let d: Vec<i64> = date.split('-').map(|x| x.parse().unwrap()).collect();
    let (hms, ms) = time.split_once('.').unwrap();
    let t: Vec<i64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
    let days = d[0] * 372 + d[1] * 31 + d[2]; // monotonic within a test run
    ((days * 24 + t[0]) * 60 + t[1]) * 60_000 + t[2] * 1000 + ms.parse::<i64>().unwrap()
}

fn hls_server(extra: &[&str]) -> Server {
    let mut args = vec![
        "-path",
        fixture("tone-128k-44k1.mp3")
            .to_str()
            .unwrap()
            .to_string()
            .leak() as &str,
        "-frame-filter",
        "mp3",
        "-frame-bytes",
        "2881",
        "-hls",
        "-hls-segment",
        "2s",
    ];
    args.extend_from_slice(extra);
    Server::start(&args)
}

/// ffmpeg reading `secs` of audio from the playlist of the server at `addr`, at `-v error`.
fn play_hls(addr: std::net::SocketAddr, secs: u32) -> std::process::Output {
    require_program("ffmpeg", "ffmpeg");
    let url = format!("http://{addr}/hls/index.m3u8");
    Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i", &url, "-t"])
        .arg(secs.to_string())
        .args(["-f", "null", "-"])
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// ffmpeg's options for a live encoder of a 440 Hz sine, up to the codec.
const LIVE_SINE: &[&str] = &[
    "-nostdin",
    "-v",
    "error",
    "-re",
    "-f",
    "lavfi",
    "-i",
    "sine=frequency=440:sample_rate=44100",
];

/// A live MP3 source that never restarts: ffmpeg encoding a sine in real time.
pub fn live_hls_server() -> Server {
    live_mp3_server(&["-hls", "-hls-segment", "2s"])
}

/// ffmpeg encoding a sine to MP3 in real time as the source, with `extra` flags.
fn live_mp3_server(extra: &[&str]) -> Server {
    require_program("ffmpeg", "ffmpeg");
    let mut args = vec![
        "-frame-filter",
        "mp3",
        "-frame-bytes",
        "2881",
        "-exec",
        "ffmpeg",
    ];
    args.extend_from_slice(LIVE_SINE);
    args.extend_from_slice(&[
        "-c:a",
        "libmp3lame",
        "-b:a",
        "128k",
        "-write_xing",
        "0",
        "-f",
        "mp3",
        "-",
    ]);
    // -exec takes the rest of the line: the server's own flags go first.
    for (i, a) in extra.iter().enumerate() {
        args.insert(i, a);
    }
    Server::start(&args)
}

#[test]
fn ffmpeg_plays_hls_live_and_the_playlist_advances_with_the_clock() {
    let s = live_hls_server();
    assert!(
        eventually(T, || get(&s, "/hls/index.m3u8", "").status == 200),
        "{}",
        s.log_text()
    );
    // ffmpeg reads the live playlist for 20 s of audio while the playlist is watched.
    require_program("ffmpeg", "ffmpeg");
    let addr = s.addr;
    let ff = std::thread::spawn(move || play_hls(addr, 20));
    let mut seen: BTreeMap<u64, Entry> = BTreeMap::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(22) {
        let l = get(&s, "/hls/index.m3u8", "");
        let text = String::from_utf8_lossy(&l.body).into_owned();
        assert!(text.contains("#EXT-X-TARGETDURATION:2\n"), "{text}");
        for e in parse(&text) {
            if let Some(old) = seen.get(&e.0) {
                assert_eq!(
                    (old.1, old.2, &old.4),
                    (e.1, e.2, &e.4),
                    "a segment never changes"
                );
            }
            seen.insert(e.0, e);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let out = ff.join().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && err.trim().is_empty(),
        "ffmpeg: {err}"
    );
    // One segment after another, no gap, no repeat.
    let seqs: Vec<u64> = seen.keys().copied().collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    assert!(seqs.len() >= 10, "{seqs:?}");
    // Each segment at most the target; together they match the clock (program date-times)
    // within a frame per segment and the segmenter's wake-ups.
    let entries: Vec<&Entry> = seen.values().collect();
    assert!(entries.iter().all(|e| e.1 <= 2.0), "EXTINF over the target");
    let (first, last) = (entries[0], entries[entries.len() - 1]);
    let audio: f64 = entries[..entries.len() - 1].iter().map(|e| e.1).sum();
    let wall = (last.2 - first.2) as f64 / 1000.0;
    let slack = 0.0262 * entries.len() as f64 + 0.25;
    assert!(
        (audio - wall).abs() <= slack,
        "{audio:.3} s of segments in {wall:.3} s of program time"
    );
    assert!(!entries.iter().any(|e| e.3), "no restart, no discontinuity");
}

#[test]
fn a_source_restart_is_a_discontinuity_and_playback_goes_on() {
    // The 4 s file loops: each loop opens the source again.
    let s = hls_server(&[]);
    assert!(eventually(T, || {
        let l = get(&s, "/hls/index.m3u8", "");
        l.status == 200 && parse(&String::from_utf8_lossy(&l.body)).iter().any(|e| e.3)
    }));
    // ffmpeg reads across restarts and ends well. Its one allowed line: when it starts on a
    // run's short tail (a segment of a few frames before a discontinuity), its muxer warns
    // once of a repeated timestamp (README, HLS); anything else fails.
    let out = play_hls(s.addr, 10);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ffmpeg: {err}");
    assert!(
        err.lines()
            .all(|l| l.contains("non monotonically increasing dts")),
        "ffmpeg: {err}"
    );
}

/// An encoder pushing AAC (ADTS) as a source client: the segments are packed AAC, and
/// ffmpeg plays the playlist with nothing to say at `-v error`.
#[test]
fn aac_from_a_source_client_is_published_as_packed_aac() {
    require_program("ffmpeg", "ffmpeg");
    let s = Server::start(&[
        "-source-password",
        "hackme",
        "-frame-filter",
        "adts",
        "-hls",
        "-hls-segment",
        "2s",
    ]);
    let target = format!("icecast://source:hackme@127.0.0.1:{}/live", s.addr.port());
    let mut encoder = Command::new("ffmpeg")
        .args(LIVE_SINE)
        .args([
            "-c:a",
            "aac",
            "-b:a",
            "96k",
            "-content_type",
            "audio/aac",
            "-f",
            "adts",
            &target,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let listed =
        |l: &Listener| l.status == 200 && parse(&String::from_utf8_lossy(&l.body)).len() >= 3;
    let ready = eventually(Duration::from_secs(20), || {
        listed(&get(&s, "/hls/index.m3u8", ""))
    });
    let playlist = get(&s, "/hls/index.m3u8", "");
    let text = String::from_utf8_lossy(&playlist.body).into_owned();
    assert!(ready, "{text}\n{}", s.log_text());
    let first = &parse(&text)[0];
    assert!(first.4.ends_with(".aac"), "{text}");
    let seg = get(&s, &format!("/hls/{}", first.4), "");
    assert_eq!(header(&seg.head, "Content-Type"), Some("audio/aac"));
    assert!(seg.body.starts_with(b"ID3"), "the timestamp tag first");
    let out = play_hls(s.addr, 10);
    let _ = encoder.kill();
    let _ = encoder.wait();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && err.trim().is_empty(),
        "ffmpeg: {err}"
    );
}

/// A far server publishes HLS from the studio's stream over the link; an outage longer
/// than its `-link-delay` is filled with silence, and where live audio resumes the playlist
/// says `EXT-X-DISCONTINUITY`, while ffmpeg plays on across it.
#[test]
fn a_link_receiver_publishes_hls_and_marks_where_a_long_outage_ends() {
    const KEY: &str = "hls over the link";
    let origin = live_mp3_server(&["-link-key", KEY]);
    let proxy = crate::common::proxy::FaultProxy::start(origin.addr);
    let r = Server::start(&[
        "-frame-filter",
        "mp3",
        "-frame-bytes",
        "2881",
        "-link-key",
        KEY,
        "-link-delay",
        "2s",
        "-link-pull",
        &format!("http://{}", proxy.addr),
        "-hls",
        "-hls-segment",
        "2s",
    ]);
    // The playlist's entries (none while it is 503: no segment yet).
    let playlist = || {
        let l = get(&r, "/hls/index.m3u8", "");
        match l.status {
            200 => parse(&String::from_utf8_lossy(&l.body)),
            _ => Vec::new(),
        }
    };
    assert!(
        eventually(Duration::from_secs(30), || playlist().len() >= 3),
        "{}",
        r.log_text()
    );
    assert!(!playlist().iter().any(|e| e.3), "no discontinuity yet");
    // ffmpeg plays the receiver's HLS across the outage.
    let addr = r.addr;
    let ff = std::thread::spawn(move || play_hls(addr, 24));
    // Once ffmpeg is playing: 6 s down (the 2 s buffer runs dry: about 4 s of silence),
    // then back.
    assert!(eventually(T, || metric(
        r.addr,
        "ringcast_hls_segment_requests_total"
    ) >= 2));
    proxy.set(crate::common::proxy::Mode::Blackhole);
    std::thread::sleep(Duration::from_secs(6));
    proxy.set(crate::common::proxy::Mode::Pass);
    let mut marked: BTreeMap<u64, Entry> = BTreeMap::new();
    assert!(
        eventually(Duration::from_secs(20), || {
            marked.extend(playlist().into_iter().filter(|e| e.3).map(|e| (e.0, e)));
            !marked.is_empty()
        }),
        "a discontinuity where the audio resumed: {}",
        r.log_text()
    );
    let out = ff.join().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ffmpeg: {err}");
    assert!(!err.contains("rror while decoding"), "ffmpeg: {err}");
    // One outage, one discontinuity (silence began without one: nothing changed there).
    for _ in 0..3 {
        marked.extend(playlist().into_iter().filter(|e| e.3).map(|e| (e.0, e)));
    }
    assert_eq!(marked.len(), 1, "{marked:?}");
    assert!(metric(r.addr, "ringcast_link_silence_frames_total") > 50);
}

#[test]
fn segments_are_made_to_be_cached() {
    let s = hls_server(&["-hls-window", "3"]);
    assert!(eventually(T, || get(&s, "/hls/index.m3u8", "").status == 200));
    let pl = get(&s, "/hls/index.m3u8", "Origin: https://player.example\r\n");
    assert_eq!(
        header(&pl.head, "Content-Type"),
        Some("application/vnd.apple.mpegurl")
    );
    assert_eq!(header(&pl.head, "Cache-Control"), Some("public, max-age=1"));
    assert_eq!(header(&pl.head, "Access-Control-Allow-Origin"), Some("*"));
    let text = String::from_utf8_lossy(&pl.body).into_owned();
    let seg = parse(&text).last().unwrap().4.clone();
    let path = format!("/hls/{seg}");
    let full = get(&s, &path, "");
    assert_eq!(full.status, 200);
    assert_eq!(
        header(&full.head, "Cache-Control"),
        Some("public, max-age=86400, immutable")
    );
    assert!(full.body.starts_with(b"ID3\x04"), "the timestamp tag first");
    assert!(full
        .body
        .windows(44)
        .any(|w| w == &b"com.apple.streaming.transportStreamTimestamp"[..]));
    let etag = header(&full.head, "ETag").unwrap().to_string();
    let modified = header(&full.head, "Last-Modified").unwrap().to_string();
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "a strong ETag"
    );
    // Conditional requests, HEAD and ranges.
    let again = get(&s, &path, &format!("If-None-Match: {etag}\r\n"));
    assert_eq!((again.status, again.body.len()), (304, 0));
    let since = get(&s, &path, &format!("If-Modified-Since: {modified}\r\n"));
    assert_eq!(since.status, 304);
    let mut head = Listener::request(s.addr, &format!("HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n"));
    head.read_to_eof(T);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(
        header(&head.head, "Content-Length"),
        Some(full.body.len().to_string().as_str())
    );
    let part = get(&s, &path, "Range: bytes=10-19\r\n");
    assert_eq!(part.status, 206);
    assert_eq!(part.body, full.body[10..20]);
    assert_eq!(
        header(&part.head, "Content-Range"),
        Some(format!("bytes 10-19/{}", full.body.len()).as_str())
    );
    assert_eq!(get(&s, &path, "Range: bytes=999999-\r\n").status, 416);
    // A segment that left the window (or never was) is gone.
    assert_eq!(get(&s, "/hls/seg-0-999999.mp3", "").status, 404);
    // The HLS client counts as a listener beside the plain ones.
    let mut st = Listener::get(s.addr, "/status-json.xsl", 1);
    st.read_to_eof(T);
    let v: serde_json::Value = serde_json::from_slice(&st.body).unwrap();
    assert!(
        v["icestats"]["source"][0]["hls_listeners"].as_u64() >= Some(1),
        "{v}"
    );
    // Without -hls, /hls/ paths are the stream's, as any path is.
    let plain = Server::start(&["-tone"]);
    assert_eq!(Listener::get(plain.addr, "/hls/index.m3u8", 1).status, 200);
}

/// Debian's nginx caching `/hls/` in front of `backend` (the configuration the README gives).
struct CacheFront {
    child: std::process::Child,
    addr: std::net::SocketAddr,
}

impl CacheFront {
    fn start(backend: std::net::SocketAddr) -> CacheFront {
        require_program("nginx", "nginx-light");
        let dir = scratch("hls-nginx");
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
        let d = dir.display();
        let conf = format!(
            r#"daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  proxy_cache_path {d}/cache keys_zone=hls:10m max_size=100m inactive=10m;
  server {{
    listen {addr};
    location /hls/ {{
      proxy_pass http://{backend};
      proxy_http_version 1.1;
      proxy_cache hls;
      proxy_cache_lock on;
      proxy_cache_use_stale updating;
      proxy_cache_revalidate on;
    }}
  }}
}}
"#
        );
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let mut cmd = Command::new("nginx");
        cmd.arg("-e").arg(dir.join("error.log"));
        cmd.arg("-p").arg(&dir).arg("-c").arg(&conf_path);
        let child = spawn_quiet(cmd);
        assert!(
            eventually(T, || std::net::TcpStream::connect(addr).is_ok()),
            "nginx did not start"
        );
        CacheFront { child, addr }
    }
}

impl Drop for CacheFront {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn behind_an_nginx_cache_200_clients_cost_about_one_request_per_segment() {
    let s = live_hls_server();
    assert!(eventually(T, || get(&s, "/hls/index.m3u8", "").status == 200));
    let front = CacheFront::start(s.addr);
    let (p0, s0) = (
        metric(s.addr, "ringcast_hls_playlist_requests_total"),
        metric(s.addr, "ringcast_hls_segment_requests_total"),
    );
    let run_for = Duration::from_secs(30);
    let start = Instant::now();
    // 200 players: each reloads the playlist every second and fetches segments it has not had.
    let fetched: Vec<usize> = std::thread::scope(|sc| {
        let clients: Vec<_> = (0..200)
            .map(|i| {
                let addr = front.addr;
                sc.spawn(move || {
                    let mut had = std::collections::HashSet::new();
                    let mut n = 0;
                    while start.elapsed() < run_for {
                        let pl = Listener::request(
                            addr,
                            &format!("GET /hls/index.m3u8 HTTP/1.0\r\nUser-Agent: p{i}\r\n\r\n"),
                        );
                        let mut pl = pl;
                        pl.read_to_eof(T);
                        let text = String::from_utf8_lossy(&pl.body).into_owned();
                        for line in text.lines().filter(|l| l.starts_with("seg-")) {
                            if had.insert(line.to_string()) {
                                let mut seg = Listener::request(
                                    addr,
                                    &format!("GET /hls/{line} HTTP/1.0\r\n\r\n"),
                                );
                                seg.read_to_eof(T);
                                assert_eq!(seg.status, 200);
                                n += 1;
                            }
                        }
                        std::thread::sleep(Duration::from_millis(1000));
                    }
                    n
                })
            })
            .collect();
        clients.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let served: usize = fetched.iter().sum();
    let playlists = metric(s.addr, "ringcast_hls_playlist_requests_total") - p0;
    let segments = metric(s.addr, "ringcast_hls_segment_requests_total") - s0;
    eprintln!(
        "200 clients through nginx for 30 s: {served} segments served to them; ringcast \
         answered {playlists} playlist and {segments} segment requests"
    );
    assert!(served >= 200 * 10, "every client kept up: {served}");
    // The playlist lives a second in the cache: about one request a second, not 200.
    assert!(
        playlists <= 2 * 32,
        "{playlists} playlist requests reached ringcast"
    );
    // Each segment once (the window's first ones, and the ~15 made meanwhile).
    assert!(
        segments <= 30,
        "{segments} segment requests reached ringcast"
    );
}

/// Issue 25: a player asking at a live start gets the playlist as soon as the first segment
/// is made (it waits up to a segment and 2 s), not a 503 to retry.
#[test]
fn a_playlist_asked_at_a_live_start_waits_for_the_first_segment() {
    let s = mp3_server(
        &fixture("tone-128k-44k1.mp3"),
        "16000",
        &["-hls", "-hls-segment", "2s"],
    );
    let began = Instant::now();
    let mut l = Listener::get(s.addr, "/hls/index.m3u8", 1);
    l.read_to_eof(T);
    let took = began.elapsed();
    assert_eq!(l.status, 200, "{}", l.head);
    assert!(String::from_utf8_lossy(&l.body).contains("#EXTINF:"));
    eprintln!("first playlist answered after {took:?}");
}

/// Issue 25: a live start plays for a minute in ffmpeg with not one warning, with the
/// default 4 s segments (ffmpeg's MP3 reader used to step its timestamps back about 12 s
/// in, where a segment's end moved across one of its 1024-byte reads).
#[test]
fn a_live_start_plays_a_minute_in_ffmpeg_without_a_warning() {
    let s = live_mp3_server(&["-hls"]);
    assert!(
        eventually(T, || get(&s, "/hls/index.m3u8", "").status == 200),
        "{}",
        s.log_text()
    );
    let url = format!("http://{}/hls/index.m3u8", s.addr);
    let out = Command::new("ffmpeg")
        .args([
            "-nostdin", "-v", "warning", "-i", &url, "-t", "60", "-f", "null", "-",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(err.trim(), "", "ffmpeg warned");
}

/// A mount waiting for its encoder answers its playlist at once (503): only a live start
/// waits for the first segment, so nobody can hold threads by asking off air.
#[test]
fn an_off_air_playlist_is_answered_at_once() {
    let s = Server::start(&["-source-password", "pw", "-frame-filter", "mp3", "-hls"]);
    let began = Instant::now();
    let mut l = Listener::get(s.addr, "/hls/index.m3u8", 1);
    l.read_to_eof(T);
    assert_eq!(l.status, 503, "{}", l.head);
    // A wait would have been the 4 s segment and 2 s more.
    assert!(
        began.elapsed() < Duration::from_secs(3),
        "{:?}",
        began.elapsed()
    );
}
