//! The Icecast world, against the real programs: ffmpeg as a source client and as a
//! decoding listener, Debian's icecast2 as an upstream and as a downstream.

use crate::common::tls_proxy::TlsProxy;
use crate::common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(20);
const PW: &str = "s3cret";

fn push_server(extra: &[&str]) -> Server {
    Server::start(&push_args(extra))
}

/// The flags of a server taking source clients, plus `extra`.
fn push_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "-source-password",
        PW,
        "-frame-filter",
        "mp3",
        "-frame-bytes",
        "2881",
        "-source-buffer",
        "400",
    ];
    args.extend_from_slice(extra);
    args
}

fn tone() -> std::path::PathBuf {
    fixture("tone-128k-44k1.mp3")
}

#[test]
fn ffmpeg_pushes_with_put_and_listeners_decode_the_stream() {
    let s = push_server(&[]);
    let target = format!("icecast://source:{PW}@{}/live", s.addr);
    let mut ff = ffmpeg_push(
        &tone(),
        &target,
        &["-ice_name", "Test FM", "-ice_genre", "Jazz"],
    );
    assert!(
        s.wait_log("source client connected (PUT \"/live", T)
            .is_some(),
        "{}",
        s.log_text()
    );
    let l = s.listen();
    assert!(
        l.head.contains("icy-name: Test FM") && l.head.contains("icy-genre: Jazz"),
        "{}",
        l.head
    );
    let (ok, err) = ffmpeg_decode(&format!("http://{}/live", s.addr), 3);
    assert!(
        ok && err.trim().is_empty(),
        "ffmpeg could not decode ringcast's stream: {err}"
    );
    let _ = ff.kill();
    let _ = ff.wait();
    assert!(s.wait_log("source client left", T).is_some());
}

#[test]
fn ffmpeg_legacy_source_method_works_too() {
    let s = push_server(&[]);
    let target = format!("icecast://source:{PW}@{}/live", s.addr);
    let mut ff = ffmpeg_push(&tone(), &target, &["-legacy_icecast", "1"]);
    assert!(
        s.wait_log("source client connected (SOURCE \"/live", T)
            .is_some(),
        "{}",
        s.log_text()
    );
    let mut l = s.listen();
    let data = std::fs::read(tone()).unwrap();
    let frames = mp3_frames(&data);
    let body = l.read_body(20_000, T).to_vec();
    let idx = match_frames(&body, &data, &frames).unwrap_or_else(|e| panic!("{e}"));
    assert!(idx.len() > 20);
    let _ = ff.kill();
    let _ = ff.wait();
}

#[test]
fn wrong_password_gets_401_and_a_second_source_403() {
    let s = push_server(&[]);
    let target = format!("icecast://source:wrong@{}/live", s.addr);
    let mut ff = ffmpeg_push(&tone(), &target, &[]);
    let status = ff.wait().unwrap();
    assert!(!status.success(), "ffmpeg must fail with a wrong password");
    assert!(s.wait_log("source login: wrong credentials", T).is_some());
    let r = Listener::request(
        s.addr,
        &format!(
            "PUT /live HTTP/1.1\r\nAuthorization: {}\r\n\r\n",
            basic("source", "nope")
        ),
    );
    assert_eq!(r.status, 401);
    assert!(r.head.contains("WWW-Authenticate"));

    // A source that is connected keeps its mount: the next one gets 403.
    let mut first = TcpStream::connect(s.addr).unwrap();
    first
        .write_all(
            format!(
                "SOURCE /live HTTP/1.0\r\nAuthorization: {}\r\n\r\n",
                basic("source", PW)
            )
            .as_bytes(),
        )
        .unwrap();
    assert_eq!(read_head(&mut first).0, 200);
    let second = Listener::request(
        s.addr,
        &format!(
            "PUT /live HTTP/1.1\r\nAuthorization: {}\r\n\r\n",
            basic("source", PW)
        ),
    );
    assert_eq!(second.status, 403);
}

#[test]
fn a_silent_source_is_dropped_after_source_timeout() {
    let s = push_server(&["-source-timeout", "1s"]);
    let mut src = TcpStream::connect(s.addr).unwrap();
    src.write_all(
        format!(
            "PUT /live HTTP/1.1\r\nAuthorization: {}\r\nExpect: 100-continue\r\n\r\n",
            basic("source", PW)
        )
        .as_bytes(),
    )
    .unwrap();
    let (status, head, _) = read_head(&mut src);
    assert_eq!(status, 100, "{head}");
    assert!(
        s.wait_log("silent for 1s (-source-timeout)", T).is_some(),
        "{}",
        s.log_text()
    );
    // The mount is free again.
    let mut next = TcpStream::connect(s.addr).unwrap();
    next.write_all(
        format!(
            "SOURCE /live HTTP/1.0\r\nAuthorization: {}\r\n\r\n",
            basic("source", PW)
        )
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(read_head(&mut next).0, 200);
}

#[test]
fn a_chunked_put_body_is_decoded() {
    let s = push_server(&[]);
    let data = std::fs::read(tone()).unwrap();
    let frames = mp3_frames(&data);
    let mut l = s.listen();
    let mut src = TcpStream::connect(s.addr).unwrap();
    src.write_all(
        format!("PUT /live HTTP/1.1\r\nAuthorization: {}\r\nTransfer-Encoding: chunked\r\nContent-Type: audio/mpeg\r\n\r\n", basic("source", PW))
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(read_head(&mut src).0, 200);
    for piece in data.chunks(1000) {
        src.write_all(format!("{:x}\r\n", piece.len()).as_bytes())
            .unwrap();
        src.write_all(piece).unwrap();
        src.write_all(b"\r\n").unwrap();
    }
    src.write_all(b"0\r\n\r\n").unwrap();
    let body = l.read_body(30_000, T).to_vec();
    let idx = match_frames(&body, &data, &frames).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        idx.len() > 50,
        "chunk framing never reaches listeners: {} bytes, {} frames",
        body.len(),
        idx.len()
    );
}

#[test]
fn shoutcast_v1_source_on_the_next_port() {
    let (s, sc) = start_with_v1_port(&push_args(&[]));
    let mut bad = TcpStream::connect(sc).unwrap();
    bad.write_all(b"wrong\r\n").unwrap();
    let mut answer = String::new();
    let _ = bad.read_to_string(&mut answer);
    assert!(answer.starts_with("invalid password"), "{answer:?}");

    let mut src = TcpStream::connect(sc).unwrap();
    src.write_all(format!("{PW}\r\n").as_bytes()).unwrap();
    let mut ok = [0u8; 4];
    src.read_exact(&mut ok).unwrap();
    assert_eq!(&ok, b"OK2\r");
    src.write_all(b"icy-name:Old School FM\r\nicy-genre:Talk\r\nicy-pub:0\r\n\r\n")
        .unwrap();
    let data = std::fs::read(tone()).unwrap();
    src.write_all(&data).unwrap();
    assert!(s.wait_log("SHOUTcast source client connected", T).is_some());
    let l = s.listen();
    assert!(l.head.contains("icy-name: Old School FM"), "{}", l.head);
}

#[test]
fn fallback_plays_until_a_source_connects() {
    let voice = fixture("voice-40k-16k-id3.mp3");
    let s = push_server(&["-fallback-path", voice.to_str().unwrap()]);
    let vdata = std::fs::read(&voice).unwrap();
    let vframes = mp3_frames(&vdata);
    let mut l = s.listen();
    // Real time: 40 kb/s is 5 KB a second.
    let body = l.read_body(4_000, T).to_vec();
    let idx =
        match_frames(&body, &vdata, &vframes).unwrap_or_else(|e| panic!("fallback frames: {e}"));
    assert!(idx.len() >= 15);

    let data = std::fs::read(tone()).unwrap();
    let target = format!("icecast://source:{PW}@{}/live", s.addr);
    let mut ff = ffmpeg_push(&tone(), &target, &[]);
    assert!(s.wait_log("source client connected", T).is_some());
    // The listener, still connected, now hears the source: 128 kb/s frames (417/418 bytes).
    let start = Instant::now();
    let mut heard_live = false;
    while !heard_live && start.elapsed() < T {
        let before = l.body.len();
        l.read_body(before + 4000, Duration::from_secs(2));
        heard_live = l.body[before..]
            .windows(4)
            .any(|w| w == [0xff, 0xfb, 0x90, 0x64] || w == [0xff, 0xfb, 0x92, 0x64]);
    }
    assert!(heard_live, "the live source replaced the fallback");
    let _ = ff.kill();
    let _ = ff.wait();
    drop(data);
}

/// `-url https://…`: an upstream behind a TLS-terminating proxy (nginx, with the test CA
/// given by `-tls-ca`). The audio arrives whole, with ICY metadata taken out.
#[test]
fn pulls_an_https_upstream() {
    let data = std::fs::read(tone()).unwrap();
    let frames = mp3_frames(&data);
    let up = mp3_server(&tone(), "16000", &["-title", "Over TLS"]);
    let nginx = TlsProxy::start("pull-https-nginx", up.addr, "TLSv1.2 TLSv1.3");
    let s = Server::start(&[
        "-url",
        &format!("https://{}/", nginx.addr),
        "-tls-ca",
        nginx.ca.ca.to_str().unwrap(),
        "-frame-filter",
        "mp3",
        "-frame-bytes",
        "2881",
    ]);
    assert!(
        s.wait_log("upstream title: \"Over TLS\"", T).is_some(),
        "{}",
        s.log_text()
    );
    let mut l = s.listen();
    let body = l.read_body(20_000, T).to_vec();
    match_frames(&body, &data, &frames).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn pulls_from_icecast2_and_keeps_listeners_through_its_restart() {
    let mut ice = Icecast::start_free("pull-icecast");
    let port = ice.port;
    let target = format!("icecast://source:{ICECAST_SOURCE_PASSWORD}@127.0.0.1:{port}/live");
    let mut ff = ffmpeg_push(&tone(), &target, &["-ice_name", "Upstream FM"]);
    let url = format!("http://127.0.0.1:{port}/live");
    let s = Server::start(&[
        "-url",
        &url,
        "-frame-filter",
        "mp3",
        "-frame-bytes",
        "2881",
        "-source-buffer",
        "400",
        "-source-timeout",
        "3s",
    ]);
    assert!(
        s.wait_log("upstream http://127.0.0.1", T).is_some(),
        "{}",
        s.log_text()
    );
    let data = std::fs::read(tone()).unwrap();
    let frames = mp3_frames(&data);
    let mut l = s.listen();
    let body = l.read_body(20_000, T).to_vec();
    match_frames(&body, &data, &frames).unwrap_or_else(|e| panic!("{e}"));

    // Kill icecast2 (and its source); the listener stays connected while ringcast redials.
    let _ = ff.kill();
    let _ = ff.wait();
    ice.stop();
    assert!(
        s.wait_log("reopening the source", T).is_some(),
        "{}",
        s.log_text()
    );
    let mut ice = Icecast::start("pull-icecast-2", port);
    let mut ff = ffmpeg_push(&tone(), &target, &[]);
    let opens = s.log_count("connected: ");
    assert!(
        s.wait_log_count("connected: ", opens + 1, Duration::from_secs(40))
            .is_some(),
        "{}\n{}",
        s.log_text(),
        ice.describe()
    );
    let before = l.body.len();
    l.read_body(before + 20_000, T);
    assert!(
        l.body.len() >= before + 20_000,
        "the same listener hears the stream again"
    );
    let _ = ff.kill();
    let _ = ff.wait();
    ice.stop();
}

/// Reads one ICY listener's stream: returns (audio, titles in order).
fn read_icy(l: &mut Listener, metaint: usize, audio_wanted: usize) -> (Vec<u8>, Vec<String>) {
    let mut audio = Vec::new();
    let mut titles = Vec::new();
    let mut pos = 0;
    while audio.len() < audio_wanted {
        let need = pos + metaint + 1;
        l.read_body(need, T);
        assert!(l.body.len() >= need, "stream ended early");
        audio.extend_from_slice(&l.body[pos..pos + metaint]);
        let len = l.body[pos + metaint] as usize * 16;
        l.read_body(pos + metaint + 1 + len, T);
        let text = String::from_utf8_lossy(&l.body[pos + metaint + 1..pos + metaint + 1 + len])
            .into_owned();
        if let Some(t) = text.strip_prefix("StreamTitle='") {
            titles.push(t.split("';").next().unwrap_or_default().to_string());
        }
        pos += metaint + 1 + len;
    }
    // The next call starts at the next audio byte.
    l.body.drain(..pos);
    (audio, titles)
}

#[test]
fn metadata_updates_reach_icy_listeners_at_the_right_offsets_and_nobody_else() {
    let path = tone();
    let s = mp3_server(
        &path,
        "32000",
        &[
            "-icy-metaint",
            "4000",
            "-title",
            "First title",
            "-admin-password",
            "adm",
        ],
    );
    let data = std::fs::read(&path).unwrap();
    let frames = mp3_frames(&data);
    let mut icy = Listener::request(s.addr, "GET /live HTTP/1.0\r\nIcy-MetaData: 1\r\n\r\n");
    assert!(icy.head.contains("icy-metaint: 4000"), "{}", icy.head);
    let mut plain = s.listen();
    // No icy-metaint header (its name may appear in Access-Control-Expose-Headers).
    assert!(!plain.head.contains("\r\nicy-metaint:"), "{}", plain.head);
    let (audio1, titles1) = read_icy(&mut icy, 4000, 8000);
    assert_eq!(titles1.first().map(String::as_str), Some("First title"));

    let wrong = get_with_auth(
        s.addr,
        "/admin/metadata?mount=/live&mode=updinfo&song=x",
        "admin",
        "no",
    );
    assert_eq!(wrong.status, 401);
    let mut ok = get_with_auth(
        s.addr,
        "/admin/metadata?mount=/live&mode=updinfo&song=Caf%C3%A9+del+Mar",
        "admin",
        "adm",
    );
    assert_eq!(ok.status, 200);
    ok.read_to_eof(T);
    assert!(String::from_utf8_lossy(&ok.body).contains("<return>1</return>"));

    let (audio2, titles2) = read_icy(&mut icy, 4000, 40_000);
    assert!(titles2.iter().any(|t| t == "Café del Mar"), "{titles2:?}");
    // With the blocks taken out at exactly every 4000 bytes, the audio is whole frames.
    let all: Vec<u8> = [audio1, audio2].concat();
    match_frames(&all, &data, &frames).unwrap_or_else(|e| panic!("ICY listener audio: {e}"));
    // The plain listener's stream is nothing but whole frames: no metadata in it.
    let body = plain.read_body(40_000, T).to_vec();
    match_frames(&body, &data, &frames).unwrap_or_else(|e| panic!("plain listener: {e}"));
}

#[test]
fn pushes_to_icecast2_with_the_title() {
    let ice = Icecast::start_free("push-icecast");
    let port = ice.port;
    let path = tone();
    let target = format!("icecast://source:{ICECAST_SOURCE_PASSWORD}@127.0.0.1:{port}/ring");
    let s = mp3_server(
        &path,
        "16000",
        &[
            "-icecast",
            &target,
            "-icy-name",
            "Ringcast Relay",
            "-title",
            "Hello from ringcast",
        ],
    );
    assert!(
        s.wait_log("title \"Hello from ringcast\" sent", T)
            .is_some(),
        "{}",
        s.log_text()
    );
    // The output's own state, in /metrics: connected, after one session.
    let m = metrics_text(s.addr);
    assert_eq!(metric_in(&m, "ringcast_icecast_output_up"), 1, "{m}");
    assert_eq!(
        metric_in(&m, "ringcast_icecast_output_connects_total"),
        1,
        "{m}"
    );
    // An Icecast listener decodes the stream...
    let (ok, err) = ffmpeg_decode(&format!("http://127.0.0.1:{port}/ring"), 2);
    assert!(
        ok && err.trim().is_empty(),
        "icecast2's listener could not decode: {err}"
    );
    // ...and sees the title ringcast sent, in Icecast's own ICY metadata.
    let mut l = Listener::request(
        std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        "GET /ring HTTP/1.0\r\nIcy-MetaData: 1\r\n\r\n",
    );
    assert_eq!(l.status, 200, "{}", l.head);
    assert!(l.head.contains("Ringcast Relay"), "{}", l.head);
    let metaint: usize = l
        .head
        .lines()
        .find_map(|h| h.strip_prefix("icy-metaint:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("icy-metaint");
    let (_, titles) = read_icy(&mut l, metaint, metaint * 2);
    assert!(
        titles.iter().any(|t| t == "Hello from ringcast"),
        "{titles:?}"
    );
}

#[test]
fn status_json_and_metrics_do_not_count_as_listeners() {
    let s = Server::start(&[
        "-tone",
        "-title",
        "Tone \"test\"",
        "-icy-name",
        "Tone FM",
        "-admin-password",
        "adm",
    ]);
    let _l = s.listen();
    assert!(s.wait_log(": listening (GET", T).is_some());
    let mut st = Listener::get(s.addr, "/status-json.xsl", 1);
    assert_eq!(st.status, 200);
    st.read_to_eof(T);
    let v: serde_json::Value = serde_json::from_slice(&st.body).expect("valid JSON");
    let sources = v["icestats"]["source"]
        .as_array()
        .expect("source is an array, even with one source");
    assert_eq!(sources.len(), 1);
    assert_eq!(sources[0]["listeners"], 1);
    assert_eq!(sources[0]["title"], "Tone \"test\"");
    assert_eq!(sources[0]["server_name"], "Tone FM");
    assert!(v["icestats"]["server_id"]
        .as_str()
        .unwrap()
        .starts_with("ringcast"));

    let unauthorized = Listener::get(s.addr, "/metrics", 1);
    assert_eq!(unauthorized.status, 401);
    let mut m = get_with_auth(s.addr, "/metrics", "admin", "adm");
    assert_eq!(m.status, 200);
    m.read_to_eof(T);
    let text = String::from_utf8_lossy(&m.body);
    assert!(text.contains("ringcast_listeners 1\n"), "{text}");
    assert!(text.contains("ringcast_source_up 1\n"), "{text}");
    assert!(
        text.contains("# TYPE ringcast_bytes_out_total counter"),
        "{text}"
    );
}

#[test]
fn shoutcast_admin_cgi_sets_the_title_in_latin1_or_utf8() {
    let s = push_server(&[]);
    let mut r = Listener::get(
        s.addr,
        &format!("/admin.cgi?pass={PW}&mode=updinfo&song=Caf%E9&charset=ISO-8859-1"),
        0,
    );
    assert_eq!(r.status, 200);
    r.read_to_eof(T);
    let title = |s: &Server| {
        let mut st = Listener::get(s.addr, "/status-json.xsl", 1);
        st.read_to_eof(T);
        let v: serde_json::Value = serde_json::from_slice(&st.body).unwrap();
        v["icestats"]["source"][0]["title"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(title(&s), "Café");
    let wrong = Listener::get(s.addr, "/admin.cgi?pass=nope&mode=updinfo&song=x", 0);
    assert_eq!(wrong.status, 401);
    let mut utf8 = Listener::get(
        s.addr,
        &format!("/admin.cgi?pass={PW}&mode=updinfo&song=%E2%99%AB+Ode"),
        0,
    );
    assert_eq!(utf8.status, 200);
    utf8.read_to_eof(T);
    assert_eq!(title(&s), "♫ Ode");
}

#[test]
fn an_old_shoutcast_upstream_with_icy_status_metadata_and_a_stall() {
    // No SHOUTcast server is packaged: this scripted one answers as SHOUTcast v1 does.
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let up_addr = upstream.local_addr().unwrap();
    let data = std::fs::read(tone()).unwrap();
    let frames = mp3_frames(&data);
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let feed = data.clone();
    std::thread::spawn(move || {
        for round in 0..2 {
            let Ok((mut c, _)) = upstream.accept() else {
                return;
            };
            let mut req = [0u8; 2048];
            let n = c.read(&mut req).unwrap_or(0);
            let _ = tx.send(String::from_utf8_lossy(&req[..n]).into_owned());
            let _ = c.write_all(b"ICY 200 OK\r\nicy-name:Old Upstream\r\nicy-metaint:1000\r\ncontent-type:audio/mpeg\r\n\r\n");
            // 40 KB of audio with a title block every 1000 bytes, then (first round) a stall
            // that never closes the socket.
            for (i, piece) in feed[..40_000].chunks(1000).enumerate() {
                let mut block = vec![0u8];
                if i == 1 {
                    let text = b"StreamTitle='Upstream Song';";
                    let blocks = text.len().div_ceil(16);
                    block = vec![blocks as u8];
                    block.extend_from_slice(text);
                    block.resize(1 + blocks * 16, 0);
                }
                if c.write_all(piece)
                    .and_then(|_| c.write_all(&block))
                    .is_err()
                {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if round == 0 {
                // Hold the stalled socket open elsewhere and take the redial.
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_secs(30));
                    drop(c);
                });
            }
        }
    });
    let s = Server::start(&[
        "-url",
        &format!("http://{up_addr}/stream"),
        "-frame-filter",
        "mp3",
        "-frame-bytes",
        "2881",
        "-source-buffer",
        "400",
        "-source-timeout",
        "1s",
        "-burst-bytes",
        "100000",
    ]);
    let request = rx.recv_timeout(T).expect("ringcast connects upstream");
    assert!(request.contains("Icy-MetaData: 1"), "{request}");
    assert!(
        s.wait_log("upstream title: \"Upstream Song\"", T).is_some(),
        "{}",
        s.log_text()
    );
    let mut l = s.listen();
    assert!(l.head.contains("icy-name: Old Upstream"), "{}", l.head);
    let body = l.read_body(30_000, T).to_vec();
    let idx = match_frames(&body, &data, &frames)
        .unwrap_or_else(|e| panic!("metadata left in the audio? {e}"));
    assert!(idx.len() > 50);
    // The stalled upstream (socket open, no bytes) is detected and redialled.
    assert!(
        s.wait_log("upstream stalled", T).is_some(),
        "{}",
        s.log_text()
    );
    assert!(
        rx.recv_timeout(T).is_ok(),
        "ringcast reconnects after the stall"
    );
}

#[test]
fn restreams_mpeg_ts_from_an_upstream() {
    require_program("ffmpeg", "ffmpeg");
    let dir = scratch("ts-restream");
    let ts = dir.join("input.ts");
    let made = std::process::Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=330:duration=4",
            "-c:a",
            "mp2",
            "-b:a",
            "128k",
            "-f",
            "mpegts",
        ])
        .arg(&ts)
        .status()
        .unwrap();
    assert!(made.success());
    // One ringcast plays the file as a live TS stream; a second restreams it via -url.
    let origin = Server::start(&[
        "-path",
        ts.to_str().unwrap(),
        "-frame-filter",
        "ts",
        "-frame-bytes",
        "1316",
        "-source-bandwidth",
        "24000",
    ]);
    let relay = Server::start(&[
        "-url",
        &format!("http://{}/", origin.addr),
        "-frame-filter",
        "ts",
        "-frame-bytes",
        "1316",
    ]);
    let mut l = relay.listen();
    assert!(l.head.contains("video/mp2t"), "{}", l.head);
    let body = l.read_body(188 * 60, T).to_vec();
    assert!(body.len() >= 188 * 60);
    assert!(
        body.chunks_exact(188).all(|p| p[0] == 0x47),
        "whole TS packets from a packet boundary"
    );
    let (ok, err) = ffmpeg_decode(&format!("http://{}/", relay.addr), 1);
    assert!(
        ok && err.trim().is_empty(),
        "ffmpeg decodes the restreamed TS: {err}"
    );
}

#[test]
fn ezstream_streams_through_libshout_and_its_titles_arrive() {
    // libshout 2.4 (as MusicDB uses it) opens with `OPTIONS *`, then streams, then sends
    // each file's tags as `artist=` and `title=`, not `song=`.
    require_program("ezstream", "ezstream");
    let s = push_server(&[]);
    let dir = scratch("ezstream");
    let voice = fixture("voice-40k-16k-id3.mp3"); // artist "ringcast", title "Fixture title"
    std::fs::write(dir.join("playlist.m3u"), format!("{}\n", voice.display())).unwrap();
    let config = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<ezstream>
  <servers><server>
    <protocol>HTTP</protocol>
    <hostname>{ip}</hostname>
    <port>{port}</port>
    <user>source</user>
    <password>{PW}</password>
    <tls>None</tls>
  </server></servers>
  <streams><stream>
    <mountpoint>/live</mountpoint>
    <format>MP3</format>
    <stream_name>Ez Radio</stream_name>
  </stream></streams>
  <intakes><intake>
    <type>playlist</type>
    <filename>{playlist}</filename>
  </intake></intakes>
</ezstream>
"#,
        ip = s.addr.ip(),
        port = s.addr.port(),
        playlist = dir.join("playlist.m3u").display()
    );
    let cfg_path = dir.join("ezstream.xml");
    std::fs::write(&cfg_path, config).unwrap();
    // ezstream refuses a config file others can read (it holds the password).
    std::fs::set_permissions(
        &cfg_path,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let mut cmd = std::process::Command::new("ezstream");
    cmd.args(["-c", cfg_path.to_str().unwrap()]);
    let mut ez = spawn_quiet(cmd);
    let connected = s.wait_log("source client connected", T);
    let titled = s.wait_log("title set to \"ringcast - Fixture title\"", T);
    // And the audio flows to listeners: MP3 frames of the file (16 kHz, 40 kb/s).
    let mut l = s.listen();
    let heard = l.read_body(5000, T).to_vec();
    let _ = ez.kill();
    let _ = ez.wait();
    assert!(
        connected.is_some(),
        "ezstream never connected: {}",
        s.log_text()
    );
    assert!(
        titled.is_some(),
        "the title never arrived: {}",
        s.log_text()
    );
    assert!(mp3_frames(&heard).len() > 10, "{} bytes heard", heard.len());
    let status = Listener::get(s.addr, "/status-json.xsl", 1);
    let mut status = status;
    status.read_to_eof(T);
    let body = String::from_utf8_lossy(&status.body);
    assert!(body.contains("ringcast - Fixture title"), "{body}");
}
