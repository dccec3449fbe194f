//! The station's records (issue 23): what played.

use crate::common::*;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const T: Duration = Duration::from_secs(10);

fn get_text(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut l = Listener::get(addr, path, 1);
    l.read_to_eof(T);
    (l.status, String::from_utf8_lossy(&l.body).into_owned())
}

/// Three titles set in turn come back from `/played.html?type=json`, newest first, with the
/// times they began, in SHOUTcast's shape; the page for people lists them; status has them.
#[test]
fn titles_set_in_turn_come_back_newest_first_with_their_times() {
    let s = Server::start(&[
        "-tone",
        "-admin-password",
        "hackme",
        "-station-name",
        "Radio <Pi>",
    ]);
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for song in [
        "First%20-%20One",
        "Second%20-%20Two",
        "Third%20-%20%22Three%22",
    ] {
        let mut l = get_with_auth(
            s.addr,
            &format!("/admin/metadata?mode=updinfo&song={song}"),
            "admin",
            "hackme",
        );
        l.read_to_eof(T);
        assert_eq!(l.status, 200, "{}", String::from_utf8_lossy(&l.body));
    }
    let after = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (status, body) = get_text(s.addr, "/played.html?type=json");
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).expect(&body);
    let items = v.as_array().expect(&body);
    let titles: Vec<&str> = items.iter().map(|i| i["title"].as_str().unwrap()).collect();
    assert_eq!(
        titles,
        ["Third - \"Three\"", "Second - Two", "First - One"],
        "{body}"
    );
    for i in items {
        let at = i["playedat"].as_u64().expect(&body);
        assert!(
            (before..=after).contains(&at),
            "{at} not in {before}..={after}"
        );
    }
    let (_, page) = get_text(s.addr, "/played.html");
    let third = page.find("Third - &quot;Three&quot;").expect(&page);
    let first = page.find("First - One").expect(&page);
    assert!(third < first, "newest first on the page too");
    assert!(page.contains("Radio &lt;Pi&gt;"), "{page}");
    let (_, status) = get_text(s.addr, "/status-json.xsl");
    let v: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(
        v["icestats"]["source"][0]["played"][0]["title"],
        "Third - \"Three\""
    );
}

/// One parsed access-log line: (address, user, request, status, bytes, referer, agent, secs).
fn parse_line(line: &str) -> (String, String, String, u16, u64, String, String, u64) {
    let (head, rest) = line.split_once(" [").expect(line);
    let mut w = head.split(' ');
    let (addr, _, user) = (w.next().unwrap(), w.next().unwrap(), w.next().unwrap());
    let (_, rest) = rest.split_once("] \"").expect(line);
    let (request, rest) = rest.split_once("\" ").expect(line);
    let mut w = rest.splitn(3, ' ');
    let status = w.next().unwrap().parse().expect(line);
    let bytes = w.next().unwrap().parse().expect(line);
    // Two quoted fields (quotes and backslashes escaped inside), then the seconds.
    let mut rest = w.next().unwrap().chars();
    let mut quoted = || {
        assert_eq!(rest.next(), Some('"'), "{line}");
        let mut out = String::new();
        while let Some(c) = rest.next() {
            match c {
                '\\' => out.push(rest.next().unwrap()),
                '"' => break,
                c => out.push(c),
            }
        }
        assert_eq!(rest.next(), Some(' '), "{line}");
        out
    };
    let (referer, agent) = (quoted(), quoted());
    let secs = rest.as_str().trim().parse().expect(line);
    (
        addr.into(),
        user.into(),
        request.into(),
        status,
        bytes,
        referer,
        agent,
        secs,
    )
}

/// A listener from `from` that reads to the end (`-client-max-bytes` ends it); the bytes it
/// got, head included, and how long it listened.
fn listen_from(addr: std::net::SocketAddr, from: &str, agent: &str) -> (usize, Duration) {
    use std::io::{Read, Write};
    let began = std::time::Instant::now();
    let mut c = connect_from(from.parse().unwrap(), addr).unwrap();
    c.set_read_timeout(Some(T)).unwrap();
    write!(
        c,
        "GET /live HTTP/1.1\r\nHost: x\r\nUser-Agent: {agent}\r\nReferer: https://radio.example/\r\n\r\n"
    )
    .unwrap();
    let mut all = Vec::new();
    c.read_to_end(&mut all).unwrap();
    (all.len(), began.elapsed())
}

/// Issue 23: listeners of known length and bytes from several addresses appear as
/// Icecast-format lines with the right address, user, path, status, bytes and seconds; a
/// 404 and an admin's login are logged; after `mv` and SIGHUP the next line goes to a new
/// file.
#[test]
fn requests_get_icecast_access_log_lines_and_sighup_starts_a_new_file() {
    let dir = scratch("access-log");
    let log = dir.join("access.log");
    let live = dir.join("live.conf");
    // 300 000 bytes of the tone: a session of a few seconds.
    std::fs::write(&live, "-tone -client-max-bytes 300000").unwrap();
    let s = Server::start(&[
        "-mount",
        &format!("/live={}", live.display()),
        "-admin-password",
        "hackme",
        "-access-log",
        log.to_str().unwrap(),
    ]);
    let got: Vec<(String, (usize, Duration))> = std::thread::scope(|sc| {
        let hs: Vec<_> = [
            ("127.0.0.2", "VLC/3.0.20 LibVLC/3.0.20"),
            ("127.0.0.3", "ffplay \"test\""),
        ]
        .into_iter()
        .map(|(from, agent)| sc.spawn(move || (from.to_string(), listen_from(s.addr, from, agent))))
        .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut l = Listener::get(s.addr, "/nope", 1);
    l.read_to_eof(T);
    assert_eq!(l.status, 404);
    get_with_auth(s.addr, "/metrics", "admin", "hackme").read_to_eof(T);
    let lines = |path: &std::path::Path, n: usize| {
        let mut text = String::new();
        let found = eventually(T, || {
            text = std::fs::read_to_string(path).unwrap_or_default();
            text.lines().count() >= n
        });
        assert!(found, "{n} lines expected in {}: {text}", path.display());
        text
    };
    let text = lines(&log, 4);
    for (from, (bytes, took)) in &got {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{from} ")))
            .expect(&text);
        let (_, user, request, status, logged, referer, agent, secs) = parse_line(line);
        assert_eq!(
            (user.as_str(), request.as_str(), status),
            ("-", "GET /live HTTP/1.1", 200),
            "{line}"
        );
        assert_eq!(
            logged as usize, *bytes,
            "the bytes the listener got, head included: {line}"
        );
        // Whole seconds, as Icecast writes them: the session's length as the server saw it,
        // truncated, and written once its thread has closed the connection (on a busy
        // machine that thread may run a second or two after the listener saw the end).
        let took = took.as_secs_f64();
        assert!(
            logged > 300_000 && secs as f64 <= took + 2.5 && secs as f64 >= took - 1.5,
            "{line} (the listener took {took:.2} s)"
        );
        assert_eq!(referer, "https://radio.example/");
        assert!(
            agent == "VLC/3.0.20 LibVLC/3.0.20" || agent == "ffplay \"test\"",
            "{line}"
        );
    }
    let nope = text
        .lines()
        .find(|l| l.contains("\"GET /nope HTTP/1.1\""))
        .expect(&text);
    assert_eq!(parse_line(nope).3, 404, "{nope}");
    let admin = text.lines().find(|l| l.contains("/metrics")).expect(&text);
    assert_eq!(parse_line(admin).1, "admin", "{admin}");
    assert!(text.lines().all(|l| l.contains(" +0000] \"")), "{text}");
    // logrotate's way: move the file, SIGHUP, and the next line starts a new one.
    let rotated = dir.join("access.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    s.signal(libc::SIGHUP);
    assert!(s.wait_log("access-log", T).is_some(), "{}", s.log_text());
    let mut l = Listener::get(s.addr, "/after-rotation", 1);
    l.read_to_eof(T);
    let fresh = lines(&log, 1);
    assert!(fresh.contains("/after-rotation"), "{fresh}");
    assert!(!std::fs::read_to_string(&rotated)
        .unwrap()
        .contains("/after-rotation"));
}

/// A station's admission service, as AzuraCast's would answer Icecast's URL authentication:
/// `listener_add` with `token=good` in the mount is let in, anything else refused with a
/// message; every call is recorded. `hang` makes it accept and never answer (a stuck service).
struct AuthService {
    addr: std::net::SocketAddr,
    calls: std::sync::Arc<std::sync::Mutex<Vec<std::collections::HashMap<String, String>>>>,
    hang: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

fn form_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 3 <= b.len() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

impl AuthService {
    fn start() -> AuthService {
        use std::io::{Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let calls = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let hang = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (c2, h2) = (calls.clone(), hang.clone());
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for conn in l.incoming() {
                let Ok(mut conn) = conn else { continue };
                if h2.load(std::sync::atomic::Ordering::SeqCst) {
                    held.push(conn); // never answered
                    continue;
                }
                conn.set_read_timeout(Some(T)).unwrap();
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let body = loop {
                    let n = conn.read(&mut chunk).unwrap_or(0);
                    if n == 0 {
                        break None;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).into_owned();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let len: usize = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap())
                            })
                            .unwrap_or(0);
                        if body.len() >= len {
                            assert!(head.starts_with("POST /auth HTTP/1.1"), "{head}");
                            break Some(body.to_string());
                        }
                    }
                };
                let Some(body) = body else { continue };
                let form: std::collections::HashMap<String, String> = body
                    .split('&')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_string(), form_decode(v)))
                    .collect();
                let yes = form["action"] == "listener_add" && form["mount"].contains("token=good");
                c2.lock().unwrap().push(form);
                let answer = if yes {
                    "HTTP/1.1 200 OK\r\nicecast-auth-user: 1\r\nContent-Length: 0\r\n\r\n"
                } else {
                    "HTTP/1.1 200 OK\r\nicecast-auth-message: token refused\r\nContent-Length: 0\r\n\r\n"
                };
                let _ = conn.write_all(answer.as_bytes());
            }
        });
        AuthService { addr, calls, hang }
    }

    fn calls(&self, action: &str) -> Vec<std::collections::HashMap<String, String>> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c["action"] == action)
            .cloned()
            .collect()
    }
}

/// A listener from `from` asking for `path` with `agent`; its status and the connection.
fn ask_from(
    addr: std::net::SocketAddr,
    from: &str,
    path: &str,
    agent: &str,
) -> (u16, String, std::net::TcpStream) {
    use std::io::Write;
    let mut c = connect_from(from.parse().unwrap(), addr).unwrap();
    c.set_read_timeout(Some(T)).unwrap();
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: radio.test:8000\r\nUser-Agent: {agent}\r\n\r\n"
    )
    .unwrap();
    let (status, text, _) = read_head(&mut c);
    (status, text, c)
}

/// Issue 23: Icecast's URL authentication. A token the service accepts plays, one it refuses
/// gets 403 with the service's message; the service saw `listener_add` with the listener's
/// address and agent, then `listener_remove` with the duration; with the service stuck, a
/// new listener is refused after the deadline and one already listening keeps playing.
#[test]
fn a_listener_auth_url_service_admits_refuses_and_hears_of_the_end() {
    use std::io::Read;
    let svc = AuthService::start();
    let url = format!("http://{}/auth", svc.addr);
    let s = Server::start(&["-tone", "-listener-auth-url", &url]);
    let (status, head, mut good) =
        ask_from(s.addr, "127.0.0.2", "/live?token=good", "TestPlayer/1.0");
    assert_eq!(status, 200, "{head}");
    let mut buf = [0u8; 4096];
    assert!(good.read(&mut buf).unwrap() > 0);
    let (status, head, _bad) = ask_from(s.addr, "127.0.0.3", "/live?token=bad", "TestPlayer/1.0");
    assert_eq!(status, 403, "{head}");
    let add = svc.calls("listener_add");
    let first = add
        .iter()
        .find(|c| c["ip"] == "127.0.0.2")
        .expect("listener_add for 127.0.0.2");
    assert_eq!(first["agent"], "TestPlayer/1.0");
    assert_eq!(first["mount"], "/live?token=good");
    assert_eq!(first["server"], "radio.test");
    assert!(
        !first["client"].is_empty() && first.contains_key("port") && first.contains_key("user")
    );
    // The listener stays a second, then leaves: listener_remove with its client and duration.
    std::thread::sleep(Duration::from_millis(1200));
    let _ = good.read(&mut buf);
    drop(good);
    assert!(
        eventually(T, || !svc.calls("listener_remove").is_empty()),
        "no listener_remove: {}",
        s.log_text()
    );
    let remove = &svc.calls("listener_remove")[0];
    assert_eq!(remove["client"], first["client"]);
    assert!(
        remove["duration"].parse::<u64>().unwrap() >= 1,
        "{remove:?}"
    );
    // One listening, then the service gets stuck: the new one is refused after the
    // deadline, the old one keeps playing.
    let (status, _, mut old) = ask_from(s.addr, "127.0.0.4", "/live?token=good", "TestPlayer/1.0");
    assert_eq!(status, 200);
    svc.hang.store(true, std::sync::atomic::Ordering::SeqCst);
    let asked = std::time::Instant::now();
    let (status, head, _) = ask_from(s.addr, "127.0.0.5", "/live?token=good", "TestPlayer/1.0");
    let waited = asked.elapsed();
    assert_eq!(status, 503, "{head}");
    assert!(
        waited >= Duration::from_millis(1500) && waited < Duration::from_secs(8),
        "{waited:?}"
    );
    let mut got = 0;
    let until = std::time::Instant::now() + Duration::from_secs(2);
    while std::time::Instant::now() < until {
        got += old.read(&mut buf).unwrap();
    }
    assert!(
        got > 100_000,
        "the listener already in kept playing: {got} bytes in 2 s"
    );
}

/// An HTTP/1.0 request from 127.0.0.1 with `agent`: everything the server sent (head and
/// body).
fn raw_get(addr: std::net::SocketAddr, path: &str, agent: &str) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(T)).unwrap();
    write!(c, "GET {path} HTTP/1.0\r\nUser-Agent: {agent}\r\n\r\n").unwrap();
    let mut all = Vec::new();
    c.read_to_end(&mut all).unwrap();
    all
}

/// Issue 23: an HLS player's requests are one session in the access log: one line, with
/// the first request, the bytes of all of them, and the seconds from first to last, written
/// once no request came for twice the segment duration.
#[test]
fn an_hls_players_requests_are_one_access_log_line() {
    let dir = scratch("access-log-hls");
    let log = dir.join("access.log");
    let s = Server::start(&[
        "-path",
        fixture("tone-128k-44k1.mp3").to_str().unwrap(),
        "-frame-filter",
        "mp3",
        "-frame-bytes",
        "2881",
        "-hls",
        "-hls-segment",
        "1s",
        "-access-log",
        log.to_str().unwrap(),
    ]);
    // Asked before the file is open, the playlist answers 503 at once (no source on air yet):
    // another agent waits for a playlist, so the session below is all 200s.
    let probe = || raw_get(s.addr, "/hls/index.m3u8", "probe").starts_with(b"HTTP/1.0 200");
    assert!(eventually(T, probe), "no playlist");
    let agent = "HLS-Test/1.0";
    let began = std::time::Instant::now();
    let mut sent = 0usize;
    let mut segment = None;
    for _ in 0..3 {
        let playlist = raw_get(s.addr, "/hls/index.m3u8", agent);
        sent += playlist.len();
        let text = String::from_utf8_lossy(&playlist).into_owned();
        assert!(text.starts_with("HTTP/1.0 200"), "{text}");
        segment = text
            .lines()
            .rev()
            .find(|l| l.starts_with("seg-"))
            .map(str::to_string);
        std::thread::sleep(Duration::from_millis(600));
    }
    let seg = raw_get(
        s.addr,
        &format!("/hls/{}", segment.expect("a segment")),
        agent,
    );
    assert!(seg.starts_with(b"HTTP/1.0 200"));
    sent += seg.len();
    let took = began.elapsed().as_secs_f64();
    let mut text = String::new();
    let found = eventually(T, || {
        text = std::fs::read_to_string(&log).unwrap_or_default();
        text.contains(agent)
    });
    assert!(found, "no HLS session line: {text}");
    let lines: Vec<&str> = text.lines().filter(|l| l.contains(agent)).collect();
    assert_eq!(lines.len(), 1, "one line for the session: {text}");
    let (addr, _, request, status, bytes, _, _, secs) = parse_line(lines[0]);
    assert_eq!(
        (addr.as_str(), request.as_str(), status),
        ("127.0.0.1", "GET /hls/index.m3u8 HTTP/1.0", 200),
        "{text}"
    );
    assert_eq!(
        bytes as usize, sent,
        "the bytes of all its requests: {text}"
    );
    assert!(
        secs as f64 <= took + 1.5 && secs as f64 >= took - 1.5,
        "{text} ({took:.2} s)"
    );
}

/// The recorder's files in `dir` with extension `ext`, sorted by name (by start time), with
/// the Unix time each name stands for.
fn recordings(dir: &std::path::Path, ext: &str) -> Vec<(u64, std::path::PathBuf)> {
    let mut out: Vec<(u64, std::path::PathBuf)> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .map(|p| {
            let stem = p.file_stem().unwrap().to_str().unwrap().to_string();
            // 2026-12-07T23-40-02Z, read with the test's own arithmetic.
            let n = |a: usize, b: usize| stem[a..b].parse::<i64>().unwrap();
            let (y, mo, d, h, mi, s) =
                (n(0, 4), n(5, 7), n(8, 10), n(11, 13), n(14, 16), n(17, 19));
            assert_eq!(&stem[19..], "Z", "{stem}");
            let (yy, mm) = if mo <= 2 {
                (y - 1, mo + 9)
            } else {
                (y, mo - 3)
            };
            let days =
                365 * yy + yy / 4 - yy / 100 + yy / 400 + (153 * mm + 2) / 5 + d - 1 - 719_468;
            ((days * 86_400 + h * 3600 + mi * 60 + s) as u64, p)
        })
        .collect();
    out.sort();
    out
}

/// Issue 23: the recorder. A stream of numbered frames in real time, split every 2 s: files
/// named by their start (the first by the server's start, the rest on multiples of 2 s),
/// each whole one 2 s long, the frames of consecutive files consecutive in the source, none
/// lost or twice; files older than -record-keep go; a restart starts a new file.
#[test]
fn the_recorder_cuts_on_the_clock_loses_nothing_and_prunes() {
    let dir = scratch("record-numbered");
    let rec = dir.join("rec");
    let frames = numbered_frames("record-numbered-src", 4000);
    let args = [
        "-record",
        rec.to_str().unwrap(),
        "-record-split",
        "2s",
        "-record-keep",
        "6s",
    ];
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut s = numbered_origin(&frames, "unused link key", &args);
    // Files of 2 s kept 6 s: wait until the first files have gone and three are there.
    assert!(
        eventually(Duration::from_secs(40), || {
            let r = recordings(&rec, "raw");
            r.len() >= 3 && r[0].0 > started + 1
        }),
        "{}",
        s.log_text()
    );
    std::thread::sleep(Duration::from_secs(3));
    s.signal(libc::SIGTERM);
    assert!(s.wait_exit(T).is_some());
    let files = recordings(&rec, "raw");
    let (first_t, _) = files[0];
    let nums: Vec<Vec<u32>> = files
        .iter()
        .map(|(_, p)| {
            let b = std::fs::read(p).unwrap();
            assert_eq!(
                b.len() % NUMBERED_FRAME,
                0,
                "whole frames only: {}",
                p.display()
            );
            b.chunks(NUMBERED_FRAME)
                .map(|f| u32::from_be_bytes(f[..4].try_into().unwrap()))
                .collect()
        })
        .collect();
    // -record-keep 6s: the first files went while the later ones were written.
    assert!(first_t > started + 1, "old files were pruned: {files:?}");
    // Names: the ones after the first on multiples of 2 s, 2 s apart.
    for w in files.windows(2) {
        assert_eq!(w[1].0 - w[0].0, 2, "{files:?}");
        assert_eq!(w[1].0 % 2, 0, "{files:?}");
    }
    // Consecutive across files, none lost or twice; each whole file 2 s (80 frames of 25 ms).
    let all: Vec<u32> = nums.concat();
    for w in all.windows(2) {
        assert_eq!(w[1], w[0] + 1, "frames {} then {}", w[0], w[1]);
    }
    for n in &nums[1..nums.len() - 1] {
        assert!(
            (72..=88).contains(&n.len()),
            "a whole file holds 2 s: {} frames",
            n.len()
        );
    }
    // A restart starts a new file, named by its own start (a second after the last began:
    // a restart within the same second as a file's start would continue that file).
    let before = files.len();
    let last_t = files.last().unwrap().0;
    assert!(eventually(T, || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            > last_t
    }));
    let s2 = numbered_origin(&frames, "unused link key", &args);
    // Its first file has the frames once it is closed at the next boundary (writes are
    // buffered): any file of the new run with data will do, and one may be pruned meanwhile.
    assert!(
        eventually(T, || recordings(&rec, "raw").iter().any(|(t, p)| {
            *t > last_t && std::fs::metadata(p).is_ok_and(|m| m.len() > 0)
        })),
        "{}",
        s2.log_text()
    );
    assert!(recordings(&rec, "raw").len() >= before.min(3));
}

/// Each recorded file of an MP3 and of an Ogg Opus stream decodes clean on its own (the Ogg
/// ones begin with the stream's header pages).
#[test]
fn recorded_mp3_and_ogg_files_each_decode_on_their_own() {
    for (fixture_name, filter, ext) in [
        ("tone-128k-44k1.mp3", "mp3", "mp3"),
        ("tone-opus.ogg", "ogg", "ogg"),
    ] {
        let dir = scratch(&format!("record-{ext}"));
        let s = Server::start(&[
            "-path",
            fixture(fixture_name).to_str().unwrap(),
            "-frame-filter",
            filter,
            "-record",
            dir.to_str().unwrap(),
            "-record-split",
            "2s",
        ]);
        assert!(
            eventually(Duration::from_secs(30), || recordings(&dir, ext).len() >= 4),
            "{}",
            s.log_text()
        );
        drop(s);
        // The first and the last file are partial: the run starts and ends between two
        // boundaries, and a first file of one MP3 frame is too short for ffmpeg's probe
        // ("Could not seek", seen when the server started just before a boundary).
        let files = recordings(&dir, ext);
        for (_, p) in &files[1..files.len() - 1] {
            let (ok, err) = ffmpeg_decode(p.to_str().unwrap(), 60);
            assert!(ok && err.trim().is_empty(), "{}: {err}", p.display());
        }
    }
}

/// A full disk (a 256 KiB tmpfs) does not stall a listener: the recorder logs and counts
/// the failed writes and the stream goes on.
#[test]
fn a_full_disk_does_not_stall_a_listener() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    }
    let dir = scratch("record-full");
    let mnt = dir.join("disk");
    std::fs::create_dir_all(&mnt).unwrap();
    let mounted = std::process::Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            "size=256k",
            "tmpfs",
            mnt.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(mounted.success(), "mount -t tmpfs failed");
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mnt.clone());
    // The tone fills a 256 KiB disk within a few seconds.
    let s = Server::start(&["-tone", "-record", mnt.to_str().unwrap()]);
    let rec = Recorder::start(&s);
    assert!(
        s.wait_log("No space left on device", Duration::from_secs(20))
            .is_some(),
        "{}",
        s.log_text()
    );
    let had = rec.bytes();
    assert!(
        rec.wait_more(100_000, T),
        "the listener goes on after the disk filled"
    );
    let (_, longest) = rec.finish();
    assert!(
        longest < Duration::from_secs(1),
        "delivery paused {longest:?}"
    );
    assert!(had > 0);
    let mut l = Listener::get(s.addr, "/metrics", 1);
    l.read_to_eof(T);
    let text = String::from_utf8_lossy(&l.body);
    assert!(text.contains("ringcast_record_errors_total "), "{text}");
    assert!(!text.contains("ringcast_record_errors_total 0\n"), "{text}");
}
