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
        // Whole seconds, as Icecast writes them: the session's length, truncated.
        let took = took.as_secs_f64();
        assert!(
            logged > 300_000 && secs as f64 <= took + 0.5 && secs as f64 >= took - 1.5,
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
