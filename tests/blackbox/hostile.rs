//! Hostile clients against the real binary: malformed and non-ASCII requests at every route,
//! peers that trickle a byte at a time through each phase's deadline, a flood from one
//! address, a listener that stops reading, a password guesser. Through all of it the server
//! must not panic, and a good listener keeps its full rate.

use crate::common::*;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(10);
const PW: &str = "hackme";
const ADMIN: &str = "adminpw";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Sends `raw` on a new connection from `from` and reads what comes back until the
/// connection closes, or a response head and then 300 ms more, or `wait` passes.
fn send_raw(from: IpAddr, to: SocketAddr, raw: &[u8], wait: Duration) -> Vec<u8> {
    let Some(mut c) = connect_from(from, to) else {
        return Vec::new();
    };
    let _ = c.write_all(raw);
    let _ = c.shutdown(std::net::Shutdown::Write);
    let mut deadline = Instant::now() + wait;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let mut head_seen = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || c.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match c.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
        if !head_seen && out.windows(4).any(|w| w == b"\r\n\r\n") {
            // A stream never ends: the head and a little of the body are enough.
            head_seen = true;
            deadline = deadline.min(Instant::now() + Duration::from_millis(300));
        }
    }
    out
}

/// Every route ringcast has, with the methods it takes and some it does not.
const ROUTES: &[&str] = &[
    "/",
    "/live.mp3",
    "/admin/metadata",
    "/admin/metadata.xsl",
    "/admin.cgi",
    "/status-json.xsl",
    "/metrics",
    "/.ringcast/link/challenge",
    "/.ringcast/link/pull",
    "/.ringcast/link/push",
    "*",
];

/// Malformed, non-ASCII and hostile requests, built for one route.
fn corpus(route: &str) -> Vec<Vec<u8>> {
    let queries: &[&[u8]] = &[
        b"?a=%1\xc3\xa9",
        b"?mode=updinfo&song=%",
        b"?mode=updinfo&song=%c3&charset=ISO-8859-1",
        b"?mode=updinfo&artist=\xff\xfe&title=%00%0d%0aX-Injected:%201",
        b"?pass=%e9&mode=updinfo&song=x';StreamUrl='http://evil/';",
        b"?%%%%%%&&&==&=",
        b"?v=1&nonce=zz&cnonce=&after=18446744073709551615.99999999999999999999&want=99999999999999999999&rid=\xc3&mac=%",
        b"?\xc3\xa9\xc3",
    ];
    let auths: &[&[u8]] = &[
        b"",
        b"Authorization: Basic \xc3\xa9\r\n",
        b"Authorization: Basic ====\r\n",
        b"Authorization: Basic YWRtaW4=\r\n",
        b"Authorization: Basic YWRtaW46YWRtaW5wdw\r\n",
        b"Authorization: Digest x\r\n",
    ];
    let tails: &[&[u8]] = &[
        b"\r\n",
        b"Content-Length: 99999999999999999999999\r\n\r\nxx",
        b"Content-Length: -1\r\n\r\n",
        b"Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nab\r\nzz\r\n",
        b"Icy-MetaData: 1\r\nUser-Agent: \xff\xfe\x1b[31mred\r\n\r\n",
        b"Expect: 100-continue\r\n\r\n\x00\x01\x02",
    ];
    let methods: &[&[u8]] = &[
        b"GET", b"HEAD", b"PUT", b"SOURCE", b"POST", b"OPTIONS", b"G\xc3T",
    ];
    let mut out = Vec::new();
    for (i, m) in methods.iter().enumerate() {
        for (j, q) in queries.iter().enumerate() {
            let a = auths[(i + j) % auths.len()];
            let t = tails[(i * 3 + j) % tails.len()];
            let mut r = Vec::new();
            r.extend_from_slice(m);
            r.push(b' ');
            r.extend_from_slice(route.as_bytes());
            r.extend_from_slice(q);
            r.extend_from_slice(b" HTTP/1.");
            r.push(if (i + j) % 2 == 0 { b'0' } else { b'1' });
            r.extend_from_slice(b"\r\nHost: h\r\n");
            r.extend_from_slice(a);
            r.extend_from_slice(t);
            out.push(r);
        }
    }
    // Not HTTP at all, and heads that end early or never.
    out.push(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec());
    out.push(format!("GET {route} HTTP/9.9\r\n\r\n").into_bytes());
    out.push(format!("GET {route}\r\n\r\n").into_bytes());
    out.push([b"GET ".as_slice(), route.as_bytes(), &[b'a'; 9000]].concat());
    out
}

#[test]
fn malformed_requests_at_every_route_never_crash_or_disturb_a_listener() {
    // The tone: 44100 bytes a second, real time. The link's paths exist (-link-key makes
    // this an origin); source methods get 405 (the tone is the input).
    let s = Server::start(&[
        "-tone",
        "-admin-password",
        ADMIN,
        "-link-key",
        "linkkey123",
        "-header-timeout",
        "2s",
    ]);
    let good = Recorder::start(&s);
    let started = Instant::now();
    let before = good.bytes() as u64;
    let addr = s.addr;
    // Four senders from another address, each its share of the corpus.
    let all: Vec<Vec<u8>> = ROUTES.iter().flat_map(|r| corpus(r)).collect();
    let n = all.len();
    let all = Arc::new(all);
    let senders: Vec<_> = (0..4)
        .map(|k| {
            let all = Arc::clone(&all);
            std::thread::spawn(move || {
                for req in all.iter().skip(k).step_by(4) {
                    send_raw(ip("127.0.0.4"), addr, req, Duration::from_secs(3));
                }
            })
        })
        .collect();
    for t in senders {
        t.join().unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let got = (good.bytes() as u64 - before) as f64;
    assert!(s.child.id() > 0);
    assert!(
        std::fs::metadata(format!("/proc/{}", s.child.id())).is_ok(),
        "ringcast is still running after {n} hostile requests"
    );
    let log = s.log_text();
    assert!(!log.contains("panicked"), "no panic: {log}");
    // Full rate: the listener got what the tone made in that time (batches lag up to
    // 0.5 s; a second more for a busy or emulated machine).
    let expected = 44100.0 * elapsed;
    assert!(
        got >= expected - 1.5 * 44100.0,
        "the good listener got {got} bytes in {elapsed:.1}s (expected {expected:.0})"
    );
    // And the server still answers as it should.
    assert_eq!(Listener::get(s.addr, "/status-json.xsl", 1).status, 200);
    // No forged log lines: escapes stay escaped.
    assert!(
        !log.contains("\x1b[31m"),
        "control characters reach the log"
    );
}

/// ringcast taking source clients, with a 2 s -header-timeout; and its SHOUTcast v1 port.
fn shoutcast_server() -> (Server, SocketAddr) {
    start_with_v1_port(&[
        "-source-password",
        PW,
        "-frame-filter",
        "mp3",
        "-header-timeout",
        "2s",
    ])
}

#[test]
fn the_shoutcast_port_takes_garbage() {
    let (s, v1) = shoutcast_server();
    let good = Recorder::start(&s);
    for raw in [
        &b"\xc3\xa9\xff:#\x00\r\n"[..],
        &[b'x'; 5000][..],
        b"hackme\r\nicy-name:\xff\x1b\r\nicy-genre: a\r\n\r\n\xff\xfb\x92",
        b"\r\n\r\n\r\n",
        b"hackme:#1\n",
    ] {
        send_raw(ip("127.0.0.4"), v1, raw, Duration::from_secs(3));
    }
    assert!(!s.log_text().contains("panicked"));
    assert!(std::fs::metadata(format!("/proc/{}", s.child.id())).is_ok());
    drop(good);
    assert_eq!(Listener::get(s.addr, "/", 0).status, 200);
}

/// Writes `bytes` one at a time, one every `every`, until the peer closes or `limit`
/// passes. Returns how long the peer let it go on.
fn trickle(conn: &mut TcpStream, bytes: &[u8], every: Duration, limit: Duration) -> Duration {
    trickle_until(conn, bytes, every, limit, true)
}

/// [`trickle`]; with `eof_ends` false a half-close (the peer's end of response) does not
/// count, only a write that fails (the peer closed for good).
fn trickle_until(
    conn: &mut TcpStream,
    bytes: &[u8],
    every: Duration,
    limit: Duration,
    eof_ends: bool,
) -> Duration {
    let start = Instant::now();
    conn.set_read_timeout(Some(Duration::from_millis(10)))
        .unwrap();
    let mut sink = [0u8; 4096];
    for b in bytes.iter().cycle() {
        if start.elapsed() > limit {
            break;
        }
        if conn.write_all(&[*b]).is_err() {
            break;
        }
        // A read of 0 is the server closing on us.
        let until = Instant::now() + every;
        let mut closed = false;
        while Instant::now() < until {
            match conn.read(&mut sink) {
                Ok(0) if eof_ends => {
                    closed = true;
                    break;
                }
                Ok(0) => std::thread::sleep(Duration::from_millis(10)),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => {
                    closed = true;
                    break;
                }
            }
        }
        if closed {
            break;
        }
    }
    start.elapsed()
}

#[test]
fn a_trickled_request_head_is_cut_at_header_timeout() {
    let s = Server::start(&["-tone", "-header-timeout", "2s"]);
    let mut c = TcpStream::connect(s.addr).unwrap();
    let held = trickle(
        &mut c,
        b"GET / HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        Duration::from_millis(400),
        Duration::from_secs(20),
    );
    // 2 s for the head, then at most LINGER (2 s) of lingering after the 408.
    assert!(held < Duration::from_secs(5), "held for {held:?}");
}

#[test]
fn a_peer_trickling_after_an_error_response_is_let_go() {
    let s = Server::start(&["-tone"]);
    let mut c = TcpStream::connect(s.addr).unwrap();
    c.write_all(b"BREW / HTTP/1.1\r\n\r\n").unwrap();
    // The 405 is sent and the server half-closes; it then reads what the peer still sends
    // until it closes, but for 2 s in all, however often a byte comes.
    let held = trickle_until(
        &mut c,
        b"x",
        Duration::from_millis(500),
        Duration::from_secs(20),
        false,
    );
    assert!(held < Duration::from_secs(4), "held for {held:?}");
}

#[test]
fn a_shoutcast_source_trickling_its_password_or_headers_is_dropped() {
    let (s, v1) = shoutcast_server();
    let mut c = TcpStream::connect(v1).unwrap();
    let held = trickle(
        &mut c,
        b"hackm",
        Duration::from_millis(400),
        Duration::from_secs(20),
    );
    assert!(
        held < Duration::from_secs(4),
        "password phase held for {held:?}"
    );

    let mut c = TcpStream::connect(v1).unwrap();
    c.write_all(b"hackme\r\n").unwrap();
    let mut ok = [0u8; 5];
    c.read_exact(&mut ok).unwrap();
    assert_eq!(&ok, b"OK2\r\n");
    let held = trickle(
        &mut c,
        b"icy-name:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        Duration::from_millis(400),
        Duration::from_secs(20),
    );
    assert!(
        held < Duration::from_secs(4),
        "header phase held for {held:?}"
    );
    assert!(s.wait_log("dropped in its headers", T).is_some());
}

/// A server that accepts and then answers a byte every 400 ms, forever.
fn trickling_server() -> (SocketAddr, Arc<AtomicBool>) {
    trickling_server_with(b"", b'H')
}

/// A server that accepts, sends `prefix`, then one `byte` every 400 ms, forever.
fn trickling_server_with(prefix: &'static [u8], byte: u8) -> (SocketAddr, Arc<AtomicBool>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let st = Arc::clone(&stop);
    l.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut conns: Vec<TcpStream> = Vec::new();
        while !st.load(Relaxed) && Instant::now() < deadline {
            if let Ok((mut c, _)) = l.accept() {
                let _ = c.write_all(prefix);
                conns.push(c);
            }
            for c in &mut conns {
                let _ = c.write_all(&[byte]);
            }
            std::thread::sleep(Duration::from_millis(400));
        }
    });
    (addr, stop)
}

/// Starts ringcast with `args` (dialling a trickling peer) and checks it logs `needle` (the
/// dial cut at its deadline) within `within`; then stops the peer.
fn assert_dial_cut(args: &[&str], stop: Arc<AtomicBool>, needle: &str, within: Duration) {
    let s = Server::start(args);
    let t0 = Instant::now();
    let line = s.wait_log(needle, within + Duration::from_secs(7));
    stop.store(true, Relaxed);
    assert!(line.is_some(), "{}", s.log_text());
    assert!(t0.elapsed() < within, "{:?}", t0.elapsed());
}

#[test]
fn an_upstream_trickling_its_answer_is_redialled_after_the_dial_deadline() {
    let (up, stop) = trickling_server();
    let url = format!("http://{up}/live");
    // The dial's deadline is 10 s, whatever the trickle.
    let args = ["-url", &url, "-frame-filter", "mp3"];
    assert_dial_cut(&args, stop, "no answer in time", Duration::from_secs(13));
}

#[test]
fn a_link_origin_trickling_its_challenge_is_redialled_after_the_handshake_deadline() {
    let (up, stop) = trickling_server();
    let url = format!("http://{up}");
    // The handshake's deadline is at most 3 s.
    let args = ["-link-key", "linkkey123", "-link-pull", &url];
    assert_dial_cut(&args, stop, "no answer in time", Duration::from_secs(5));
}

#[test]
fn a_tls_handshake_trickled_by_the_server_is_cut_at_the_handshake_deadline() {
    // A TLS record header announcing a 16 KiB handshake record, whose body then comes a
    // byte every 400 ms: rustls waits for the whole record; the dial's deadline does not.
    let (up, stop) = trickling_server_with(&[0x16, 0x03, 0x03, 0x40, 0x00], 0);
    let url = format!("https://{up}");
    let args = ["-link-key", "linkkey123", "-link-pull", &url];
    let needle = "TLS handshake with 127.0.0.1: no answer in time";
    assert_dial_cut(&args, stop, needle, Duration::from_secs(5));
}

/// An https:// server (certificate from `ca`) that completes the handshake, then sends its
/// answer head as one TLS record, a byte every 400 ms.
fn trickling_tls_server(ca: &crate::common::tls_proxy::TestCa) -> (SocketAddr, Arc<AtomicBool>) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&ca.cert)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(&ca.key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let config = Arc::new(config);
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let st = Arc::clone(&stop);
    std::thread::spawn(move || {
        let Ok((mut sock, _)) = l.accept() else {
            return;
        };
        sock.set_read_timeout(Some(T)).unwrap();
        let mut tls = rustls::ServerConnection::new(config).unwrap();
        while tls.is_handshaking() {
            if tls.complete_io(&mut sock).is_err() {
                return;
            }
        }
        tls.writer()
            .write_all(b"HTTP/1.0 200 OK\r\nContent-Type: audio/mpeg\r\n\r\n")
            .unwrap();
        let mut record = Vec::new();
        while tls.wants_write() {
            tls.write_tls(&mut record).unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        for b in record {
            if st.load(Relaxed) || Instant::now() > deadline || sock.write_all(&[b]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(400));
        }
    });
    (addr, stop)
}

#[test]
fn an_https_upstream_trickling_its_answer_inside_one_record_is_cut_at_the_dial_deadline() {
    let dir = scratch("tls-trickle");
    let ca = crate::common::tls_proxy::TestCa::make(&dir, "trickle");
    let (up, stop) = trickling_tls_server(&ca);
    let url = format!("https://{up}/live");
    let args = [
        "-url",
        &url,
        "-tls-ca",
        ca.ca.to_str().unwrap(),
        "-frame-filter",
        "mp3",
    ];
    assert_dial_cut(&args, stop, "no answer in time", Duration::from_secs(13));
}

#[test]
fn a_flood_from_one_address_leaves_room_for_listeners_from_another() {
    let s = Server::start(&[
        "-tone",
        "-max-clients",
        "20",
        "-header-timeout",
        "30s",
        "-max-pending-per-ip",
        "8",
    ]);
    // 200 connections from 127.0.0.2 that never send a request: 20 slots + 64 spare would
    // all be taken without the per-address cap.
    let flood: Vec<TcpStream> = (0..200)
        .filter_map(|_| connect_from(ip("127.0.0.2"), s.addr))
        .collect();
    assert!(flood.len() > 100);
    assert!(s.wait_log("-max-pending-per-ip", T).is_some());
    let mut c = connect_from(ip("127.0.0.3"), s.addr).unwrap();
    c.set_read_timeout(Some(T)).unwrap();
    c.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let (status, _, mut body) = read_head(&mut c);
    assert_eq!(status, 200);
    let mut buf = [0u8; 4096];
    while body.len() < 44 {
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0);
        body.extend_from_slice(&buf[..n]);
    }
    assert!(body.starts_with(b"RIFF"));
    drop(flood);
}

#[test]
fn a_listener_that_stops_reading_is_dropped_within_write_timeout_plus_5s() {
    // 16 kB/s, played in real time.
    let s = mp3_server(
        &fixture("tone-128k-44k1.mp3"),
        "16000",
        &["-write-timeout", "2s"],
    );
    // Let the server measure the stream's rate: a second and more of it has played once a
    // first listener has heard 2 s of audio.
    let mut first = s.listen();
    assert!(first.read_body(32_000, T).len() >= 32_000);
    drop(first);
    // A player with a small buffer that reads the head, then never again.
    let mut c = dial(ip("127.0.0.1"), s.addr, Some(4096)).unwrap();
    c.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    c.set_read_timeout(Some(T)).unwrap();
    let (status, _, _) = read_head(&mut c);
    assert_eq!(status, 200);
    let stopped = Instant::now();
    let line = s.wait_log("(-write-timeout): dropped", Duration::from_secs(30));
    let after = stopped.elapsed();
    assert!(line.is_some(), "never dropped: {}", s.log_text());
    assert!(after < Duration::from_secs(7), "dropped after {after:?}");
}

#[test]
fn a_password_guesser_is_slowed_and_others_are_not() {
    let s = Server::start(&["-tone", "-admin-password", ADMIN]);
    let guess = |from: &str, pass: &str| -> (u16, Duration, String) {
        let t = Instant::now();
        let raw = format!(
            "GET /metrics HTTP/1.0\r\nAuthorization: {}\r\n\r\n",
            basic("admin", pass)
        );
        let out = send_raw(ip(from), s.addr, raw.as_bytes(), T);
        let text = String::from_utf8_lossy(&out).into_owned();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        (status, t.elapsed(), text)
    };
    for _ in 0..5 {
        assert_eq!(guess("127.0.0.5", "wrong").0, 401);
    }
    // Slowed from the sixth on.
    let (status, took, _) = guess("127.0.0.5", "wrong");
    assert_eq!(status, 401);
    assert!(took >= Duration::from_millis(900), "{took:?}");
    // In parallel each waits a turn of its own; those whose turn is too far off are refused
    // unchecked (issue 20: attempts at once cost what attempts in a row cost).
    let handles: Vec<_> = (0..14)
        .map(|_| {
            let addr = s.addr;
            std::thread::spawn(move || {
                let raw = format!(
                    "GET /metrics HTTP/1.0\r\nAuthorization: {}\r\n\r\n",
                    basic("admin", "wrong")
                );
                send_raw(ip("127.0.0.5"), addr, raw.as_bytes(), T)
            })
        })
        .collect();
    let answers: Vec<String> = handles
        .into_iter()
        .map(|h| String::from_utf8_lossy(&h.join().unwrap()).into_owned())
        .collect();
    let refused = answers
        .iter()
        .filter(|a| a.starts_with("HTTP/1.0 429"))
        .count();
    assert!(refused > 0, "{answers:?}");
    assert!(answers
        .iter()
        .filter(|a| a.starts_with("HTTP/1.0 429"))
        .all(|a| a.contains("Retry-After")));
    // Never locked out (issue 20): the right password gets in at its turn, slowed.
    let (status, took, text) = guess("127.0.0.5", ADMIN);
    assert_eq!(status, 200, "{text}");
    assert!(took >= Duration::from_millis(900), "{took:?}");
    // Another address logs in at once.
    let (status, took, _) = guess("127.0.0.6", ADMIN);
    assert_eq!(status, 200);
    assert!(took < Duration::from_millis(900));
    // The failures were logged, rate-limited (not one line per attempt).
    assert!(s.log_count("wrong credentials") < 10, "{}", s.log_text());
}

#[test]
fn client_max_bytes_past_4_gib_is_kept_not_wrapped() {
    // On armv7 (32-bit, run under qemu by make test-arm) `as usize` made this 705032704.
    let s = Server::start(&["-tone", "-client-max-bytes", "5000000000"]);
    let mut l = s.listen();
    assert_eq!(l.status, 200);
    assert!(l.read_body(100_000, T).len() >= 100_000);
    let (code, _, err) = run_cli(&["-tone", "-client-max-bytes", "-1"]);
    assert_eq!(code, 1, "{err}");
}
