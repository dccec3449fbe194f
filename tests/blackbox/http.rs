//! The HTTP side as players and the internet see it.

use crate::common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(10);

#[test]
fn any_path_http10_and_http11_get_a_plain_unchunked_stream() {
    let s = Server::start(&["-tone", "-content-type", "audio/x-wav"]);
    for (path, minor) in [("/", 1u8), ("/stream.wav?token=abc", 0), ("/a/b/c", 1)] {
        let mut l = Listener::get(s.addr, path, minor);
        assert_eq!(l.status, 200, "{path}");
        assert!(
            l.head.starts_with(&format!("HTTP/1.{minor} 200 OK")),
            "{}",
            l.head
        );
        assert!(l.head.contains("Content-Type: audio/x-wav"), "{}", l.head);
        assert!(
            !l.head.to_ascii_lowercase().contains("transfer-encoding"),
            "{}",
            l.head
        );
        assert!(
            !l.head.to_ascii_lowercase().contains("content-length"),
            "{}",
            l.head
        );
        // The body is the WAV stream itself: header first, no chunk framing.
        assert!(l.read_body(100, T).starts_with(b"RIFF"));
    }
}

#[test]
fn headers_go_out_at_once_while_the_source_is_silent() {
    let s = Server::start(&["-exec", "sleep", "30"]);
    let start = Instant::now();
    let l = s.listen();
    assert_eq!(l.status, 200);
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn malformed_requests_get_400_and_the_server_goes_on() {
    let s = Server::start(&["-tone"]);
    let bad = Listener::request(s.addr, "THIS IS NOT HTTP\r\n\r\n");
    assert_eq!(bad.status, 400, "{}", bad.head);
    let bad = Listener::request(s.addr, "GET / HTTP/1.1\r\nBad Header Line\r\n\r\n");
    assert_eq!(bad.status, 400, "{}", bad.head);
    let mut conn = TcpStream::connect(s.addr).unwrap();
    conn.write_all(b"\x00\xff\x16\x03\x01 garbage\r\n\r\n")
        .unwrap();
    assert_eq!(read_head(&mut conn).0, 400);
    assert_eq!(s.listen().status, 200);
}

#[test]
fn oversized_headers_get_431_without_buffering_them() {
    let s = Server::start(&["-tone"]);
    let mut conn = TcpStream::connect(s.addr).unwrap();
    conn.set_read_timeout(Some(T)).unwrap();
    conn.write_all(b"GET / HTTP/1.1\r\nX-Big: ").unwrap();
    // Keep sending a header line far larger than the limit; the server answers and closes
    // long before we finish (writes then fail, which is fine).
    let filler = vec![b'a'; 64 * 1024];
    for _ in 0..64 {
        if conn.write_all(&filler).is_err() {
            break;
        }
    }
    assert_eq!(read_head(&mut conn).0, 431);
    assert_eq!(s.listen().status, 200);
}

#[test]
fn other_methods_get_405() {
    let s = Server::start(&["-tone"]);
    let r = Listener::request(s.addr, "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(r.status, 405);
    assert!(r.head.contains("Allow: GET, HEAD"));
}

#[test]
fn a_silent_connection_is_closed_after_the_header_timeout() {
    let s = Server::start(&["-tone", "-header-timeout", "300ms"]);
    let mut conn = TcpStream::connect(s.addr).unwrap();
    conn.set_read_timeout(Some(T)).unwrap();
    let start = Instant::now();
    let (status, _, _) = read_head(&mut conn);
    assert_eq!(status, 408);
    let mut rest = Vec::new();
    let _ = conn.read_to_end(&mut rest);
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_flood_of_idle_connections_does_not_stop_real_listeners() {
    // From one address: the per-address cap is raised so that the global one is what acts.
    let s = Server::start(&[
        "-tone",
        "-max-clients",
        "20",
        "-header-timeout",
        "30s",
        "-max-pending-per-ip",
        "1000",
    ]);
    // 20 listener slots + 64 extra connections: 150 idle sockets exceed the connection cap.
    let idle: Vec<TcpStream> = (0..150)
        .map(|_| TcpStream::connect(s.addr).unwrap())
        .collect();
    assert!(
        s.wait_log("connections open", T).is_some(),
        "the cap refused the excess"
    );
    drop(idle);
    // Once the idle sockets go away, a listener is served again.
    assert!(eventually(T, || {
        let mut l = s.listen();
        l.status == 200 && l.read_body(44, Duration::from_secs(2)).starts_with(b"RIFF")
    }));
}

#[test]
fn max_clients_answers_503_and_frees_the_slot_on_leave() {
    // Both from one address, whose share would otherwise be half the slots.
    let s = Server::start(&["-tone", "-max-clients", "2", "-max-listeners-per-ip", "2"]);
    let a = s.listen();
    let b = s.listen();
    assert_eq!((a.status, b.status), (200, 200));
    let c = s.listen();
    assert_eq!(c.status, 503);
    drop(a);
    // The server notices on its next write to the closed socket.
    assert!(eventually(T, || s.listen().status == 200));
}

#[test]
fn a_listener_that_stops_reading_is_dropped_without_hurting_others() {
    // 4 MB/s of raw data: the stalled socket's buffers fill within a few seconds.
    let s = Server::start(&[
        "-path",
        "/dev/zero",
        "-frame-bytes",
        "65536",
        "-source-bandwidth",
        "4000000",
        "-write-timeout",
        "1s",
    ]);
    let stalled = s.listen();
    let mut good = s.listen();
    let start = Instant::now();
    let mut got = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    while s.log_count("not reading") == 0 && start.elapsed() < Duration::from_secs(20) {
        good.conn
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        got += good
            .conn
            .read(&mut buf)
            .expect("the good listener keeps getting data");
    }
    assert!(
        s.log_count("not reading") >= 1,
        "stalled listener was not dropped"
    );
    // The good listener received the stream the whole time (4 MB/s minus start-up).
    let secs = start.elapsed().as_secs_f64();
    assert!(
        got as f64 > 4_000_000.0 * secs * 0.5,
        "{got} bytes in {secs:.1}s"
    );
    drop(stalled);
}
