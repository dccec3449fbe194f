//! Issue 25, the first hour's traps: SIGHUP reloads and never stops a single-stream server,
//! MP3 plays without `-frame-bytes`, a ringcast flag after `-exec`'s command is warned
//! about, `-version`, a hint for `-address 8000`, `-uid` takes a name, a missing file with
//! `-reopen=false` is an error, a child stopped on purpose is no warning, the bitrate is
//! known from the frames (MP3 and Ogg), on air means a source, and every stream has
//! playlist files. (The link's log is in `link.rs`, keep-alive in `keepalive.rs`, the
//! status page in `browser.rs`, HLS's clean start in `hls.rs`.)

use crate::common::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

fn get_text(s: &Server, path: &str, host: &str) -> (u16, String, String) {
    let mut l = Listener::request(
        s.addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: t\r\n\r\n"),
    );
    l.read_to_eof(T);
    let body = String::from_utf8_lossy(&l.body).into_owned();
    (l.status, l.head, body)
}

fn status_source(s: &Server) -> serde_json::Value {
    let (status, _, body) = get_text(s, "/status-json.xsl", "t");
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let src = v["icestats"]["source"].clone();
    if src.is_array() {
        src[0].clone()
    } else {
        src
    }
}

#[test]
fn sighup_reloads_a_single_stream_server_and_never_stops_it() {
    let dir = scratch("first-hour-sighup");
    let flags = dir.join("ringcast.conf");
    std::fs::write(&flags, "-tone -title First\n").unwrap();
    let s = Server::start(&["-flags-file", flags.to_str().unwrap()]);
    let mut l = s.listen();
    assert_eq!(l.status, 200);
    // One at a time: signals sent at once may arrive as one.
    for n in 1..=3 {
        s.signal(libc::SIGHUP);
        let done = s.wait_log_count("reload: done", n, T);
        assert!(done.is_some(), "{}", s.log_text());
    }
    // Unchanged flags: the listener plays on.
    let had = l.body.len();
    assert!(l.read_body(had + 20_000, T).len() >= had + 20_000);
    // Changed flags: the stream restarts with them, the server stays.
    std::fs::write(&flags, "-tone -title Second\n").unwrap();
    s.signal(libc::SIGHUP);
    assert!(s.wait_log_count("reload: done", 4, T).is_some());
    assert!(s.wait_log_count("reload: done", 4, T).is_some());
    assert!(eventually(T, || status_source(&s)["title"] == "Second"));
    assert_eq!(s.listen().status, 200);
}

#[test]
fn the_units_reload_with_sighup() {
    for unit in ["systemd/ringcast.service", "systemd/ringcast@.service"] {
        let text = std::fs::read_to_string(unit).unwrap();
        assert!(
            text.contains("ExecReload=/bin/kill -HUP $MAINPID"),
            "{unit}"
        );
    }
}

#[test]
fn mp3_plays_without_frame_bytes() {
    let s = Server::start(&[
        "-path",
        fixture("tone-128k-44k1.mp3").to_str().unwrap(),
        "-frame-filter",
        "mp3",
        "-source-bandwidth",
        "16000",
    ]);
    let mut l = s.listen();
    assert_eq!(l.status, 200);
    let body = l.read_body(8000, T).to_vec();
    assert!(mp3_frames(&body).len() >= 10, "{} bytes", body.len());
    assert_eq!(
        s.log_count("larger than -frame-bytes"),
        0,
        "{}",
        s.log_text()
    );
}

#[test]
fn a_ringcast_flag_after_the_exec_command_is_warned_about() {
    let s = Server::start(&[
        "-exec",
        "sh",
        "-c",
        "exec cat /dev/zero",
        "-icecast",
        "icecast://source:x@127.0.0.1:1/live",
    ]);
    let line = s.wait_log("-exec: -icecast comes after the command", T);
    assert!(line.is_some(), "{}", s.log_text());
    assert!(line.unwrap().contains("WARN"));
}

#[test]
fn version_and_address_hints() {
    let (code, out, _) = run_cli(&["-version"]);
    assert_eq!(code, 0);
    assert_eq!(
        out.trim(),
        format!("ringcast {}", env!("CARGO_PKG_VERSION"))
    );
    let (code, _, err) = run_cli(&["-tone", "-address", "8000"]);
    assert_eq!(code, 1);
    assert!(err.contains("\":8000\""), "{err}");
}

#[test]
fn a_child_stopped_on_purpose_is_not_a_warning() {
    let s = Server::start(&[
        "-close-idle",
        "-exec",
        "sh",
        "-c",
        "trap 'exit 3' TERM; while :; do printf xxxxxxxxxxxxxxxx; sleep 0.05; done",
    ]);
    let mut l = s.listen();
    assert_eq!(l.status, 200);
    assert!(l.read_body(64, T).len() >= 64);
    drop(l);
    let line = s.wait_log("stopped (exit status 3)", T);
    assert!(line.is_some(), "{}", s.log_text());
    assert!(line.unwrap().contains("INFO"));
    assert_eq!(s.log_count("exited with status"), 0, "{}", s.log_text());
}

#[test]
fn the_bitrate_comes_from_the_frames() {
    let s = mp3_server(&fixture("tone-128k-44k1.mp3"), "16000", &[]);
    assert!(eventually(T, || status_source(&s)["audio_info"] == "bitrate=128"));
    let l = Listener::get(s.addr, "/", 1);
    assert_eq!(header(&l.head, "icy-br"), Some("128"), "{}", l.head);
    // Ogg Opus, from its pages: the fixture is 35.5 kb/s by ffprobe's count.
    let ogg = Server::start(&[
        "-path",
        fixture("tone-opus.ogg").to_str().unwrap(),
        "-frame-filter",
        "ogg",
    ]);
    let kbps = || {
        let info = status_source(&ogg)["audio_info"]
            .as_str()
            .unwrap_or("")
            .to_string();
        info.strip_prefix("bitrate=")
            .and_then(|k| k.parse::<u32>().ok())
    };
    assert!(
        eventually(T, || kbps().is_some_and(|k| (30..=45).contains(&k))),
        "{:?}",
        kbps()
    );
}

#[test]
fn on_air_means_a_source_is_on_air() {
    let s = Server::start(&["-source-password", "pw"]);
    let (_, _, metrics) = get_text(&s, "/metrics", "t");
    assert!(metrics.contains("ringcast_source_up 0"), "{metrics}");
    assert_eq!(status_source(&s)["on_air"], false);
    // Off air has no time on air; a source client's counts from its connection.
    assert!(status_source(&s)["stream_start_iso8601"].is_null());
    let mut src = std::net::TcpStream::connect(s.addr).unwrap();
    use std::io::Write;
    write!(
        src,
        "PUT /live HTTP/1.1\r\nHost: t\r\nAuthorization: {}\r\nContent-Type: audio/mpeg\r\n\r\n",
        basic("source", "pw")
    )
    .unwrap();
    src.write_all(&[0u8; 64]).unwrap();
    assert!(eventually(T, || status_source(&s)["on_air"] == true));
    assert!(status_source(&s)["stream_start_iso8601"].is_string());
    drop(src);
    assert!(eventually(T, || status_source(&s)["stream_start_iso8601"].is_null()));
    // The tone opens just after the port does: on air within moments.
    let t = Server::start(&["-tone"]);
    assert!(eventually(T, || status_source(&t)["on_air"] == true));
    let (_, _, metrics) = get_text(&t, "/metrics", "t");
    assert!(metrics.contains("ringcast_source_up 1"), "{metrics}");
}

#[test]
fn every_stream_has_playlist_files_naming_the_host_asked() {
    let dir = scratch("first-hour-playlists");
    let conf = dir.join("live.conf");
    std::fs::write(&conf, "-tone -icy-name \"Studio <One>\"\n").unwrap();
    let s = Server::start(&["-mount", &format!("/live={}", conf.display())]);
    let host = "radio.example:8000";
    let (status, head, m3u) = get_text(&s, "/live.m3u", host);
    assert_eq!(status, 200, "{head}");
    assert_eq!(header(&head, "Content-Type"), Some("audio/x-mpegurl"));
    assert!(m3u.starts_with("#EXTM3U\n"), "{m3u}");
    assert!(m3u.contains("\nhttp://radio.example:8000/live\n"), "{m3u}");
    let (status, _, pls) = get_text(&s, "/live.pls", host);
    assert_eq!(status, 200);
    assert!(
        pls.contains("File1=http://radio.example:8000/live\n"),
        "{pls}"
    );
    assert!(pls.contains("Title1=Studio <One>\n"), "{pls}");
    let (status, _, xspf) = get_text(&s, "/live.xspf", host);
    assert_eq!(status, 200);
    assert!(xspf.contains("<location>http://radio.example:8000/live</location>"));
    assert!(xspf.contains("Studio &lt;One&gt;"), "{xspf}");
    // A Host that is not a host is not echoed.
    let (_, _, m3u) = get_text(&s, "/live.m3u", "evil\"<x>");
    assert!(m3u.contains(&format!("http://{}/live", s.addr)), "{m3u}");
    assert_eq!(get_text(&s, "/nothing.m3u", host).0, 404);
    // A stream without a name is named for the station, else "ringcast": never "/".
    let named = Server::start(&["-tone", "-station-name", "Radio X"]);
    assert!(get_text(&named, "/x.pls", host)
        .2
        .contains("Title1=Radio X\n"));
    let bare = Server::start(&["-tone"]);
    assert!(get_text(&bare, "/x.pls", host)
        .2
        .contains("Title1=ringcast\n"));
}

#[test]
fn uid_takes_a_user_name() {
    let (code, _, err) = run_cli(&["-tone", "-address", "127.0.0.1:0", "-uid", "no-such-user-x"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no such user"), "{err}");
    if unsafe { libc::getuid() } != 0 {
        return; // only root can change user
    }
    let s = Server::start(&["-tone", "-uid", "nobody"]);
    let status = std::fs::read_to_string(format!("/proc/{}/status", s.child.id())).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid_line.split_whitespace().skip(1).all(|u| u == "65534"),
        "{uid_line}"
    );
    assert_eq!(s.listen().status, 200);
}

#[test]
fn a_missing_file_with_reopen_false_is_an_error() {
    let dir = scratch("first-hour-missing");
    let missing = dir.join("not-there.mp3");
    let (code, _, err) = run_cli(&[
        "-address",
        "127.0.0.1:0",
        "-path",
        missing.to_str().unwrap(),
        "-reopen=false",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not-there.mp3"), "{err}");
    // A file that plays to its end is the normal end: exit 0.
    let short = dir.join("short.raw");
    std::fs::write(&short, [7u8; 256]).unwrap();
    let (code, _, err) = run_cli(&[
        "-address",
        "127.0.0.1:0",
        "-path",
        short.to_str().unwrap(),
        "-reopen=false",
    ]);
    assert_eq!(code, 0, "{err}");
}
