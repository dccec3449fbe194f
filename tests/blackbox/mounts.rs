//! Several streams on one port (`-mount PATH=FILE`): each listener gets its own mount's
//! frames, unknown paths 404, source clients pick their mount by path (each with its own
//! password), `-fallback-mount` moves listeners away and back, `SIGHUP` adds and removes
//! mounts while the others play on, and status and metrics list every mount.

use crate::common::*;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(10);
/// The 128 kb/s fixture's rate, bytes a second.
const RATE: usize = 16_000;

/// Writes a mount's flags file and returns `PATH=FILE` for `-mount`.
fn mount(dir: &Path, path: &str, flags: &str) -> String {
    let file = dir.join(format!("{}.conf", path.trim_start_matches('/')));
    std::fs::write(&file, flags).unwrap();
    format!("{path}={}", file.display())
}

fn mp3_flags(file: &str, extra: &str) -> String {
    format!(
        "-path {} -frame-filter mp3 -frame-bytes 2881 -source-bandwidth {RATE} {extra}",
        fixture(file).display()
    )
}

/// Frames of the fixture a listener got: the body must be whole frames of it.
fn frames_of(body: &[u8], file: &str) -> usize {
    let src = std::fs::read(fixture(file)).unwrap();
    let frames = mp3_frames(&src);
    match_frames(body, &src, &frames)
        .unwrap_or_else(|e| panic!("not {file}'s frames: {e}"))
        .len()
}

/// A source client pushing `file` to `path` at about its real rate (`bytes_per_s`) until
/// `stop` is set; returns the connection's status line code.
fn push(
    addr: SocketAddr,
    path: &str,
    password: &str,
    file: &Path,
    bytes_per_s: usize,
    stop: Arc<AtomicBool>,
) -> (u16, std::thread::JoinHandle<()>) {
    let mut conn = TcpStream::connect(addr).unwrap();
    let head = format!(
        "SOURCE {path} HTTP/1.0\r\nAuthorization: {}\r\nContent-Type: audio/mpeg\r\n\r\n",
        basic("source", password)
    );
    conn.write_all(head.as_bytes()).unwrap();
    let (status, _, _) = read_head(&mut conn);
    let data = std::fs::read(file).unwrap();
    let t = std::thread::spawn(move || {
        if status != 200 {
            return;
        }
        // Paced in tenths of a second, bounded to two minutes.
        let step = bytes_per_s / 10;
        let started = Instant::now();
        let mut sent = 0usize;
        while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(120) {
            let off = sent % data.len();
            let end = (off + step).min(data.len());
            if conn.write_all(&data[off..end]).is_err() {
                return;
            }
            sent += end - off;
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    (status, t)
}

#[test]
fn three_mounts_on_one_port_each_listener_gets_only_its_own() {
    let dir = scratch("mounts-three");
    let tone = mount(&dir, "/tone", "-tone -icy-name 'The tone'");
    let mp3 = mount(&dir, "/mp3", &mp3_flags("tone-128k-44k1.mp3", ""));
    let live = mount(
        &dir,
        "/live",
        "-source-password live-pw -frame-filter mp3 -frame-bytes 2881",
    );
    let other = mount(
        &dir,
        "/other",
        "-source-password other-pw -frame-filter mp3 -frame-bytes 2881",
    );
    let s = Server::start(&[
        "-mount", &tone, "-mount", &mp3, "-mount", &live, "-mount", &other,
    ]);

    let mut t = Listener::get(s.addr, "/tone", 1);
    assert_eq!(t.status, 200, "{}", t.head);
    assert!(t.head.contains("audio/wav") && t.head.contains("icy-name: The tone"));
    assert!(t.read_body(44, T).starts_with(b"RIFF"));

    let mut m = Listener::get(s.addr, "/mp3", 1);
    assert!(m.head.contains("audio/mpeg"), "{}", m.head);
    m.read_body(2 * RATE, T);
    assert!(frames_of(&m.body, "tone-128k-44k1.mp3") > 20);

    // A source client's path picks its mount; each mount has its own password.
    let stop = Arc::new(AtomicBool::new(false));
    let voice = fixture("voice-40k-16k-id3.mp3");
    let (wrong, _) = push(s.addr, "/live", "other-pw", &voice, 5000, Arc::clone(&stop));
    assert_eq!(wrong, 401, "another mount's password");
    let (ok, pusher) = push(s.addr, "/live", "live-pw", &voice, 5000, Arc::clone(&stop));
    assert_eq!(ok, 200);
    let mut l = Listener::get(s.addr, "/live", 1);
    l.read_body(10_000, T);
    assert!(frames_of(&l.body, "voice-40k-16k-id3.mp3") > 10);
    // The mount without a source client is silent: nothing of /live leaks into it.
    let mut o = Listener::get(s.addr, "/other", 1);
    assert_eq!(o.status, 200);
    assert!(o.read_body(1, Duration::from_millis(1500)).is_empty());

    assert_eq!(Listener::get(s.addr, "/nope", 1).status, 404);
    assert_eq!(Listener::get(s.addr, "/tone/x", 1).status, 404);
    // A browser's preflight for a server page is answered, not refused as an unknown mount.
    let pre = Listener::request(
        s.addr,
        "OPTIONS /status-json.xsl HTTP/1.1\r\nOrigin: https://a.example\r\n\
         Access-Control-Request-Method: GET\r\n\r\n",
    );
    assert_eq!(pre.status, 200, "{}", pre.head);
    assert!(
        pre.head.contains("Access-Control-Allow-Origin: *"),
        "{}",
        pre.head
    );
    let put = Listener::request(
        s.addr,
        &format!(
            "PUT /nope HTTP/1.1\r\nAuthorization: {}\r\n\r\n",
            basic("source", "live-pw")
        ),
    );
    assert_eq!(put.status, 404);

    // A SHOUTcast title call finds its mount by password; a wrong one learns nothing but 401.
    let cgi = |q: &str| Listener::get(s.addr, &format!("/admin.cgi?{q}&mode=updinfo"), 1).status;
    assert_eq!(cgi("pass=guess&song=x"), 401);
    assert_eq!(cgi("pass=live-pw&song=Hello"), 200);
    assert_eq!(
        cgi("pass=live-pw&mount=/other&song=x"),
        401,
        "not /other's password"
    );

    // Status lists every mount as a source; metrics label each series with its mount.
    let mut st = Listener::get(s.addr, "/status-json.xsl", 1);
    st.read_to_eof(T);
    let json = String::from_utf8_lossy(&st.body);
    for path in ["/tone", "/mp3", "/live", "/other"] {
        assert!(
            json.contains(&format!("\"listenurl\":\"http://test{path}\"")),
            "{json}"
        );
    }
    assert!(json.contains("\"server_name\":\"The tone\""), "{json}");
    // The title went to /live's source object, and to no other.
    let live_at = json.find("\"http://test/live\"").unwrap();
    let live_title = json[live_at..].split("\"title\":").nth(1).unwrap();
    assert!(live_title.starts_with("\"Hello\""), "{json}");
    // Each source's own title (its played history, issue 23, names titles too).
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let titled: Vec<&str> = v["icestats"]["source"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["title"] == "Hello")
        .map(|s| s["listenurl"].as_str().unwrap())
        .collect();
    assert_eq!(titled, ["http://test/live"], "{json}");
    let mut met = Listener::get(s.addr, "/metrics", 1);
    met.read_to_eof(T);
    let text = String::from_utf8_lossy(&met.body);
    for path in ["/tone", "/mp3", "/live"] {
        assert!(
            text.contains(&format!("ringcast_listeners{{mount=\"{path}\"}} 1")),
            "{text}"
        );
    }
    assert!(text.contains("ringcast_source_client_connected{mount=\"/live\"} 1"));
    assert!(text.contains("ringcast_source_client_connected{mount=\"/other\"} 0"));
    assert_eq!(text.matches("# TYPE ringcast_listeners gauge").count(), 1);
    stop.store(true, Ordering::Relaxed);
    let _ = pusher.join();
}

/// Splits an MP3 body into its frames' sample rates, requiring nothing but whole frames.
fn sample_rates(body: &[u8]) -> Vec<u32> {
    let frames = mp3_frames(body);
    let covered = frames.last().map_or(0, |(o, l)| o + l);
    assert!(
        body.len() - covered < 2881,
        "byte {covered} of {} is not a frame",
        body.len()
    );
    frames
        .iter()
        .map(
            |&(o, _)| match (body[o + 1] & 0x18, (body[o + 2] >> 2) & 3) {
                (0x18, 0) => 44100,
                (0x10, 2) => 16000,
                other => panic!("unexpected header {other:?}"),
            },
        )
        .collect()
}

#[test]
fn a_fallback_mount_takes_listeners_while_the_source_is_away_and_gives_them_back() {
    let dir = scratch("mounts-fallback");
    let main = mount(
        &dir,
        "/main",
        "-source-password pw -frame-filter mp3 -frame-bytes 2881 -fallback-mount /backup",
    );
    let backup = mount(&dir, "/backup", &mp3_flags("tone-128k-44k1.mp3", ""));
    let s = Server::start(&["-mount", &main, "-mount", &backup]);
    // /backup's file opens beside the server's start: a listener of /main before that has no
    // fallback on air to go to yet (it failed 1 run in 2 on a busy machine).
    let backup_up = || metric(s.addr, "ringcast_source_up{mount=\"/backup\"}") == 1;
    assert!(eventually(T, backup_up), "/backup is on air");

    // No source on /main: its listener hears /backup (44.1 kHz frames).
    let mut l = Listener::get(s.addr, "/main", 1);
    assert_eq!(l.status, 200);
    l.read_body(RATE, T);
    assert!(s.wait_log("/main has no source: on /backup", T).is_some());

    // The source comes: the listener moves to it (16 kHz frames), without reconnecting.
    let stop = Arc::new(AtomicBool::new(false));
    let voice = fixture("voice-40k-16k-id3.mp3");
    let (ok, pusher) = push(s.addr, "/main", "pw", &voice, 5000, Arc::clone(&stop));
    assert_eq!(ok, 200);
    assert!(
        s.wait_log("moved to /main", T).is_some(),
        "{}",
        s.log_text()
    );
    let mark = l.body.len();
    l.read_body(mark + 8_000, T);
    // The source leaves: back to /backup.
    stop.store(true, Ordering::Relaxed);
    let _ = pusher.join();
    assert!(
        s.wait_log("moved to /backup", T).is_some(),
        "{}",
        s.log_text()
    );
    let mark = l.body.len();
    l.read_body(mark + RATE, T);

    let rates = sample_rates(&l.body);
    let mut runs: Vec<u32> = Vec::new();
    for r in rates {
        if runs.last() != Some(&r) {
            runs.push(r);
        }
    }
    assert_eq!(
        runs,
        [44100, 16000, 44100],
        "every byte a frame, in that order"
    );
}

#[test]
fn sighup_adds_changes_and_removes_a_mount_while_another_keeps_its_full_rate() {
    let dir = scratch("mounts-reload");
    let a = mount(&dir, "/a", &mp3_flags("tone-128k-44k1.mp3", ""));
    let b = mount(&dir, "/b", "-tone");
    let flags: PathBuf = dir.join("ringcast.conf");
    std::fs::write(&flags, format!("-mount {a}\n")).unwrap();
    let s = Server::start(&["-flags-file", flags.to_str().unwrap()]);
    assert_eq!(Listener::get(s.addr, "/b", 1).status, 404);
    let rec = Recorder::start_at(&s, "/a");
    assert!(rec.wait_more(RATE / 2, T));
    let started = Instant::now();
    let before = rec.bytes();

    std::fs::write(&flags, format!("-mount {a}\n-mount {b}\n")).unwrap();
    s.signal(libc::SIGHUP);
    assert!(
        s.wait_log("reload: started /b", T).is_some(),
        "{}",
        s.log_text()
    );
    // The routing table changes after the mounts start: "N mount(s)" says it has.
    assert!(s.wait_log_count("reload: 2 mount(s)", 1, T).is_some());
    let mut lb = Listener::get(s.addr, "/b", 1);
    assert_eq!(lb.status, 200);
    assert!(lb.read_body(44, T).starts_with(b"RIFF"));

    // A changed mount file restarts that mount: its listeners end, new ones hear the change.
    mount(&dir, "/b", "-tone -icy-name Changed");
    s.signal(libc::SIGHUP);
    assert!(s.wait_log_count("reload: started /b", 2, T).is_some());
    assert!(s.wait_log_count("reload: 2 mount(s)", 2, T).is_some());
    assert!(
        lb.read_to_eof(T),
        "a restarted mount ends its listeners cleanly"
    );
    let mut lb = Listener::get(s.addr, "/b", 1);
    assert!(lb.head.contains("icy-name: Changed"), "{}", lb.head);

    std::fs::write(&flags, format!("-mount {a}\n")).unwrap();
    s.signal(libc::SIGHUP);
    assert!(s.wait_log_count("reload: stopping /b", 2, T).is_some());
    assert!(s.wait_log("reload: 1 mount(s)", T).is_some());
    assert!(
        lb.read_to_eof(T),
        "a removed mount ends its listeners cleanly"
    );
    assert_eq!(Listener::get(s.addr, "/b", 1).status, 404);

    // A reload that cannot load (a bad file) changes nothing.
    std::fs::write(&flags, "-mount /c=/nonexistent.conf\n").unwrap();
    s.signal(libc::SIGHUP);
    assert!(s.wait_log("the mounts stay as they are", T).is_some());
    assert!(rec.wait_more(RATE / 2, T));

    // /a never noticed: full rate, no pause, whole frames only.
    let got = rec.bytes() - before;
    let secs = started.elapsed().as_secs_f64();
    let (body, longest) = rec.finish();
    assert!(
        got as f64 >= RATE as f64 * secs * 0.8,
        "{got} bytes in {secs:.1}s"
    );
    assert!(longest < Duration::from_millis(1500), "paused {longest:?}");
    assert!(frames_of(&body, "tone-128k-44k1.mp3") > 0);
    assert_eq!(s.log_count("reload: started /a"), 0);
}
