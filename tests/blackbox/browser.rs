//! A real browser: Debian's headless Chromium, driven through chromedriver's WebDriver API
//! (plain HTTP and JSON on loopback, spoken here), plays the stream from `/status.html` over
//! HTTPS, sees a new title without reloading, and reads `icy-metaint` from another origin.

use crate::common::tls_proxy::TestCa;
use crate::common::*;
use crate::https::tls_server;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command};
use std::time::Duration;

/// chromedriver and one browser session. Both end on drop.
struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
}

impl Browser {
    fn start(name: &str) -> Browser {
        require_program("chromium", "chromium");
        require_program("chromedriver", "chromium-driver");
        let profile = scratch(name);
        // A port found free can be taken (by another test's server) before chromedriver
        // binds it: chromedriver then exits, or another program answers. Another port, then.
        let mut b = None;
        for _ in 0..3 {
            let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
            let mut cmd = Command::new("chromedriver");
            cmd.arg(format!("--port={}", addr.port()))
                .arg("--allowed-ips=127.0.0.1");
            let mut candidate = Browser {
                driver: spawn_quiet(cmd),
                addr,
                session: String::new(),
            };
            let ready = eventually(Duration::from_secs(60), || {
                candidate
                    .call("GET", "/status", None)
                    .is_some_and(|v| v["value"]["ready"] == true)
                    || !matches!(candidate.driver.try_wait(), Ok(None))
            }) && matches!(candidate.driver.try_wait(), Ok(None));
            if ready {
                b = Some(candidate);
                break;
            }
            eprintln!(
                "chromedriver did not start on port {}, trying another",
                addr.port()
            );
        }
        let mut b = b.expect("chromedriver did not start on three ports");
        // Chromium as it runs on a closed machine: no sandbox (root in CI), no calls home;
        // media may start without a click; the test CA is not in its store (curl and the
        // rustls client check the certificate in https.rs).
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "acceptInsecureCerts": true,
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                    "--autoplay-policy=no-user-gesture-required", "--mute-audio",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }
        }}});
        let v = b
            .call("POST", "/session", Some(caps))
            .expect("a browser session");
        b.session = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_string();
        b.call(
            "POST",
            &format!("/session/{}/timeouts", b.session),
            Some(json!({"script": 40000, "pageLoad": 30000})),
        );
        b
    }

    /// One WebDriver command; the JSON answer.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Option<Value> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut c = TcpStream::connect(self.addr).ok()?;
        c.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        c.write_all(req.as_bytes()).ok()?;
        // chromedriver keeps the connection open: read the head, then Content-Length bytes.
        let mut out = Vec::new();
        let mut chunk = [0u8; 8192];
        let end = loop {
            if let Some(i) = out.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = c.read(&mut chunk).ok().filter(|&n| n > 0)?;
            out.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&out[..end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))?
            .trim()
            .parse()
            .ok()?;
        while out.len() < end + len {
            let n = c.read(&mut chunk).ok().filter(|&n| n > 0)?;
            out.extend_from_slice(&chunk[..n]);
        }
        serde_json::from_slice(&out[end..end + len]).ok()
    }

    fn open(&self, url: &str) {
        let v = self.call(
            "POST",
            &format!("/session/{}/url", self.session),
            Some(json!({ "url": url })),
        );
        assert!(
            v.as_ref().is_some_and(|v| v["value"].is_null()),
            "open {url}: {v:?}"
        );
    }

    /// Runs `script` (its last argument is the callback to call with the result).
    fn run_async(&self, script: &str) -> Value {
        let v = self
            .call(
                "POST",
                &format!("/session/{}/execute/async", self.session),
                Some(json!({"script": script, "args": []})),
            )
            .expect("script answer");
        v["value"].clone()
    }

    fn run(&self, script: &str) -> Value {
        let v = self
            .call(
                "POST",
                &format!("/session/{}/execute/sync", self.session),
                Some(json!({"script": script, "args": []})),
            )
            .expect("script answer");
        v["value"].clone()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.call("DELETE", &format!("/session/{}", self.session), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

#[test]
fn chromium_plays_the_status_page_over_https_and_follows_the_title() {
    let dir = scratch("browser-ca");
    let ca = TestCa::make(&dir, "browser");
    let (s, tls) = tls_server(
        &ca.cert,
        &ca.key,
        &["-admin-password", "adm", "-icy-name", "Studio One"],
    );
    let b = Browser::start("browser-profile");
    b.open(&format!("https://localhost:{}/status.html", tls.port()));

    // The player plays: currentTime passes 3 s with no media error.
    let played = b.run_async(
        r#"const done = arguments[arguments.length - 1];
        const t0 = Date.now();
        (function wait() {
          const a = document.querySelector("audio");
          if (!a) { return Date.now() - t0 > 10000 ? done("no player") : setTimeout(wait, 100); }
          if (!a.dataset.started) { a.dataset.started = "1"; a.play().catch(e => done("play: " + e)); }
          if (a.error) return done("media error " + a.error.code + ": " + a.error.message);
          if (a.currentTime > 3) return done("played " + a.currentTime);
          if (Date.now() - t0 > 30000) return done("stuck at " + a.currentTime + ", readyState " + a.readyState);
          setTimeout(wait, 200);
        })();"#,
    );
    assert!(
        played.as_str().is_some_and(|p| p.starts_with("played")),
        "{played}\n{}",
        s.log_text()
    );
    assert_eq!(
        b.run("return document.querySelector('.name').textContent"),
        "Studio One"
    );
    // No -hls: no HLS row.
    assert_eq!(
        b.run("return document.querySelector('dd.hls').hidden"),
        true
    );

    // A new title shows without a reload (the marker would be gone after one).
    b.run("window.notReloaded = true; return 0");
    let mut admin = get_with_auth(
        s.addr,
        "/admin/metadata?mode=updinfo&song=Live%20%3C%26%3E%20Now",
        "admin",
        "adm",
    );
    assert_eq!(admin.status, 200);
    admin.read_to_eof(Duration::from_secs(5));
    let shown = eventually(Duration::from_secs(15), || {
        b.run("return document.querySelector('.title').textContent") == "Live <&> Now"
    });
    assert!(
        shown,
        "title on the page: {}",
        b.run("return document.body.innerText")
    );
    assert_eq!(b.run("return window.notReloaded === true"), true);

    // A page from another origin (127.0.0.1 is not localhost) fetches the stream with
    // Icy-MetaData: 1 (a preflight first) and may read icy-metaint. (Not from the status
    // page: its Content-Security-Policy lets it fetch from its own origin only.)
    b.open(&format!("https://127.0.0.1:{}/status-json.xsl", tls.port()));
    let cross = b.run_async(&format!(
        r#"const done = arguments[arguments.length - 1];
        const ctl = new AbortController();
        fetch("https://localhost:{}/", {{headers: {{"Icy-MetaData": "1"}}, signal: ctl.signal}})
          .then(r => {{ const m = r.headers.get("icy-metaint"); ctl.abort(); done(location.origin + " metaint=" + m); }})
          .catch(e => done("error: " + e));"#,
        tls.port()
    ));
    assert_eq!(
        cross,
        format!("https://127.0.0.1:{} metaint=16000", tls.port()),
        "{}",
        s.log_text()
    );
}

/// hls.js from the npm registry, installed once per build directory (not shipped: it is the
/// web player a station's page would use).
fn hls_js() -> std::path::PathBuf {
    require_program("npm", "npm");
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("npm");
    let js = dir.join("node_modules/hls.js/dist/hls.min.js");
    if !js.exists() {
        std::fs::create_dir_all(&dir).unwrap();
        let out = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .arg("hls.js@1")
            .output()
            .expect("run npm");
        assert!(
            out.status.success(),
            "npm install hls.js: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    js
}

#[test]
fn chromium_plays_hls_through_hls_js() {
    let js = hls_js();
    let s = crate::hls::live_hls_server();
    let playlist = format!("http://{}/hls/index.m3u8", s.addr);
    assert!(eventually(Duration::from_secs(15), || Listener::get(
        s.addr,
        "/hls/index.m3u8",
        1
    )
    .status
        == 200));
    // A page from another origin (a file), as a station's web player would be.
    let page = scratch("browser-hls").join("player.html");
    std::fs::write(
        &page,
        format!(
            r#"<!doctype html><audio id="a"></audio>
<script src="file://{}"></script>
<script>
window.fatal = [];
const a = document.getElementById("a");
const h = new Hls({{ lowLatencyMode: false }});
h.on(Hls.Events.ERROR, (e, d) => {{ if (d.fatal) window.fatal.push(d.type + ": " + d.details); }});
h.on(Hls.Events.MANIFEST_PARSED, () => a.play());
h.loadSource("{playlist}");
h.attachMedia(a);
</script>"#,
            js.display()
        ),
    )
    .unwrap();
    let b = Browser::start("browser-hls-profile");
    b.open(&format!("file://{}", page.display()));
    let played = b.run_async(
        r#"const done = arguments[arguments.length - 1];
        const a = document.getElementById("a");
        const t0 = Date.now();
        (function wait() {
          if (window.fatal.length) return done("fatal: " + window.fatal.join(", "));
          if (a.error) return done("media error " + a.error.code);
          if (a.currentTime > 10) return done("played " + a.currentTime);
          if (Date.now() - t0 > 35000) return done("stuck at " + a.currentTime + ", readyState " + a.readyState);
          setTimeout(wait, 250);
        })();"#,
    );
    assert!(
        played.as_str().is_some_and(|p| p.starts_with("played")),
        "{played}\n{}",
        s.log_text()
    );
    // The status page counts HLS listeners apart: here the test's own playlist requests
    // (Chromium's session may still count too, for two target durations).
    b.open(&format!("http://{}/status.html", s.addr));
    let counted = eventually(Duration::from_secs(15), || {
        let mut l = Listener::request(
            s.addr,
            "GET /hls/index.m3u8 HTTP/1.1\r\nUser-Agent: status-check\r\n\r\n",
        );
        l.read_to_eof(Duration::from_secs(5));
        let shown = b.run("const d = document.querySelector('dd.hls'); return d && !d.hidden ? d.textContent : ''");
        shown
            .as_str()
            .and_then(|t| t.parse::<u32>().ok())
            .is_some_and(|n| n >= 1)
    });
    assert!(
        counted,
        "HLS listeners on the page: {}",
        b.run("return document.body.innerText")
    );
}

/// Issue 25: a status page a station can show, on a phone-sized screen: the station's name
/// and description, each stream's name, state, title, listeners, bitrate, time on air as
/// people write it, its URL with playlist links, and a player. The screenshot is kept in
/// `target/tmp/status-page/phone.png` to look at.
#[test]
fn the_status_page_shows_the_station_on_a_phone() {
    let dir = scratch("status-page");
    let studio = dir.join("studio.conf");
    std::fs::write(
        &studio,
        format!(
            "-path {} -frame-filter mp3 -icy-name 'Studio One' -icy-description 'The studio, live'\n",
            fixture("tone-128k-44k1.mp3").display()
        ),
    )
    .unwrap();
    let live = dir.join("live.conf");
    std::fs::write(&live, "-source-password pw -frame-filter mp3\n").unwrap();
    let s = Server::start(&[
        "-station-name",
        "Radio Ringcast",
        "-station-description",
        "Community radio from a Raspberry Pi",
        "-mount",
        &format!("/studio={}", studio.display()),
        "-mount",
        &format!("/live={}", live.display()),
    ]);
    let b = Browser::start("status-page-profile");
    b.call(
        "POST",
        &format!("/session/{}/window/rect", b.session),
        Some(json!({"width": 390, "height": 844})),
    );
    let origin = format!("http://127.0.0.1:{}", s.addr.port());
    b.open(&format!("{origin}/status.html"));
    let text = |sel: &str| {
        b.run(&format!(
            "return document.querySelector({sel:?})?.textContent ?? null"
        ))
    };
    let in_box = |mount: &str, sel: &str, what: &str| {
        b.run(&format!(
            "const e = document.querySelector('section[data-mount=\"{mount}\"] {sel}'); return e ? e.{what} : null"
        ))
    };
    assert!(
        eventually(Duration::from_secs(15), || in_box(
            "/studio",
            ".bitrate",
            "textContent"
        ) == "128 kbit/s"),
        "{}",
        b.run("return document.body.innerText")
    );
    assert_eq!(text("h1"), "Radio Ringcast");
    assert_eq!(text("#about"), "Community radio from a Raspberry Pi");
    assert_eq!(b.run("return document.title"), "Radio Ringcast");
    assert_eq!(in_box("/studio", ".name", "textContent"), "Studio One");
    assert_eq!(
        in_box("/studio", ".desc", "textContent"),
        "The studio, live"
    );
    assert_eq!(in_box("/studio", ".state", "textContent"), "On air");
    assert_eq!(in_box("/studio", ".listeners", "textContent"), "0");
    assert_eq!(
        in_box("/studio", ".url", "textContent"),
        format!("{origin}/studio")
    );
    assert_eq!(
        in_box("/studio", ".m3u", "href"),
        format!("{origin}/studio.m3u")
    );
    assert_eq!(
        in_box("/studio", ".pls", "href"),
        format!("{origin}/studio.pls")
    );
    assert_eq!(in_box("/studio", "audio", "getAttribute('src')"), "/studio");
    let uptime = in_box("/studio", ".uptime", "textContent");
    let uptime = uptime.as_str().unwrap_or_default();
    let words: Vec<&str> = uptime.split(' ').collect();
    assert!(
        matches!(words[..], [n, "s"] | [n, "min"] if n.parse::<u32>().is_ok()),
        "on air for {uptime:?}"
    );
    // The mount waiting for its encoder says so, and shows its name from its path.
    assert_eq!(in_box("/live", ".state", "textContent"), "Off air");
    assert_eq!(in_box("/live", ".name", "textContent"), "live");
    assert_eq!(
        in_box("/live", ".uptime", "textContent"),
        "waiting for its source"
    );
    // The playlist link opens a file naming the stream's URL as the page shows it.
    let m3u = b.run_async(&format!(
        r#"const done = arguments[arguments.length - 1];
        fetch("{origin}/studio.m3u").then(r => r.text()).then(done, e => done("error: " + e));"#
    ));
    assert!(
        m3u.as_str()
            .is_some_and(|t| t.contains(&format!("{origin}/studio\n"))),
        "{m3u}"
    );
    // Readable on a phone: nothing wider than the screen.
    assert_eq!(
        b.run("return document.documentElement.scrollWidth <= window.innerWidth"),
        true,
        "{}",
        b.run("return document.documentElement.scrollWidth + ' > ' + window.innerWidth")
    );
    let shot = b
        .call("GET", &format!("/session/{}/screenshot", b.session), None)
        .expect("a screenshot");
    let png = base64_decode(shot["value"].as_str().unwrap_or_default());
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    std::fs::write(dir.join("phone.png"), png).unwrap();
}

/// Standard base64 (WebDriver's screenshots), without a crate.
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0);
    for v in text.bytes().filter_map(value) {
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}
