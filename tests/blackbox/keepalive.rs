//! Issue 25: keep-alive for short answers. A player that asks for it (`Connection:
//! keep-alive`) keeps one connection for its status polls, playlist files and HLS; a
//! stream, a client that did not ask, an address past its share, an idle client and
//! garbage all end it.

use crate::common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(20);

/// One client connection that reads answers by their Content-Length.
struct Client {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(T)).unwrap();
        Client { s, buf: Vec::new() }
    }

    fn send(&mut self, path: &str, keep: bool) {
        let conn = if keep {
            "Connection: keep-alive\r\n"
        } else {
            ""
        };
        let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\nUser-Agent: ka\r\n{conn}\r\n");
        self.s.write_all(req.as_bytes()).unwrap();
    }

    /// The next answer: status, head, body (by Content-Length).
    fn answer(&mut self) -> (u16, String, Vec<u8>) {
        let mut chunk = [0u8; 8192];
        let end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = self.s.read(&mut chunk).unwrap();
            assert!(n > 0, "closed before an answer");
            self.buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        let len: usize = header(&head, "Content-Length").unwrap().parse().unwrap();
        while self.buf.len() < end + len {
            let n = self.s.read(&mut chunk).unwrap();
            assert!(n > 0, "closed inside a body");
            self.buf.extend_from_slice(&chunk[..n]);
        }
        let body = self.buf[end..end + len].to_vec();
        self.buf.drain(..end + len);
        (status, head, body)
    }

    fn get(&mut self, path: &str) -> (u16, String, Vec<u8>) {
        self.send(path, true);
        self.answer()
    }

    /// Whether the server closed the connection (within `within`).
    fn closed(&mut self, within: Duration) -> bool {
        self.s.set_read_timeout(Some(within)).unwrap();
        let mut b = [0u8; 256];
        match self.s.read(&mut b) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        }
    }
}

fn kept(head: &str) -> bool {
    header(head, "Connection") == Some("keep-alive")
}

#[test]
fn a_player_keeps_one_connection_for_status_playlists_and_hls() {
    let s = mp3_server(
        &fixture("tone-128k-44k1.mp3"),
        "16000",
        &["-hls", "-hls-segment", "2s"],
    );
    let mut c = Client::connect(s.addr);
    let (status, head, _) = c.get("/status-json.xsl");
    assert_eq!(status, 200);
    assert!(kept(&head), "{head}");
    assert_eq!(header(&head, "Keep-Alive"), Some("timeout=15"));
    let (status, head, m3u) = c.get("/listen.m3u");
    assert_eq!(status, 200, "{head}");
    assert!(kept(&head) && m3u.starts_with(b"#EXTM3U"));
    // The HLS playlist on the same connection, polled until it lists a segment (a 503
    // "no segment yet" keeps the connection too).
    let began = Instant::now();
    let playlist = loop {
        let (status, head, body) = c.get("/hls/index.m3u8");
        assert!(kept(&head), "{head}");
        if status == 200 {
            break String::from_utf8(body).unwrap();
        }
        assert_eq!(status, 503);
        assert!(began.elapsed() < T, "no playlist");
        std::thread::sleep(Duration::from_millis(200));
    };
    let segment = playlist
        .lines()
        .find(|l| !l.starts_with('#'))
        .unwrap()
        .to_string();
    let (status, head, body) = c.get(&format!("/hls/{segment}"));
    assert_eq!(status, 200);
    assert!(kept(&head) && body.starts_with(b"ID3"), "{head}");
    // Two requests in one write (pipelined): both answered, in order.
    c.s.write_all(
        b"GET /status-json.xsl HTTP/1.1\r\nHost: t\r\nConnection: keep-alive\r\n\r\n\
          GET /hls/index.m3u8 HTTP/1.1\r\nHost: t\r\nConnection: keep-alive\r\n\r\n",
    )
    .unwrap();
    let (_, _, first) = c.answer();
    let (_, _, second) = c.answer();
    assert!(first.starts_with(b"{\"icestats\""));
    assert!(second.starts_with(b"#EXTM3U"));
    // The stream itself on the same connection: a listener, and then the end of it.
    c.send("/", true);
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(c.s.read(&mut b).unwrap(), 1);
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(header(&head, "Connection"), Some("close"));
    let mut audio = [0u8; 4096];
    c.s.read_exact(&mut audio).unwrap();
}

#[test]
fn keep_alive_only_when_asked_and_within_the_address_share() {
    let s = Server::start(&["-tone", "-max-listeners-per-ip", "2"]);
    // Not asked: answered and closed, as before.
    let mut c = Client::connect(s.addr);
    c.send("/status-json.xsl", false);
    let (status, head, _) = c.answer();
    assert_eq!(status, 200);
    assert_eq!(header(&head, "Connection"), Some("close"));
    assert!(c.closed(T));
    // An address's share of kept connections is its listener share: the third is closed.
    let mut a = Client::connect(s.addr);
    let mut b = Client::connect(s.addr);
    let mut third = Client::connect(s.addr);
    assert!(kept(&a.get("/status-json.xsl").1));
    assert!(kept(&b.get("/status-json.xsl").1));
    let (status, head, _) = third.get("/status-json.xsl");
    assert_eq!(status, 200, "answered all the same");
    assert_eq!(header(&head, "Connection"), Some("close"));
    assert!(third.closed(T));
    // Kept connections have a share of their own: the address's listener still plays.
    let l = Listener::get(s.addr, "/", 1);
    assert_eq!(l.status, 200, "{}", l.head);
    drop(l);
    // A body (any Content-Length but 0) is never kept: it would be read as the next request.
    let mut c = Client::connect(s.addr);
    c.s.write_all(
        b"GET /status-json.xsl HTTP/1.1\r\nHost: t\r\nConnection: keep-alive\r\n\
          Content-Length: 0\r\nContent-Length: 12\r\n\r\n",
    )
    .unwrap();
    let (_, head, _) = c.answer();
    assert_eq!(header(&head, "Connection"), Some("close"), "{head}");
    // One leaves: its place is free again.
    drop(a);
    assert!(eventually(T, || {
        let mut d = Client::connect(s.addr);
        kept(&d.get("/status-json.xsl").1)
    }));
    // Garbage on a kept connection: a 400, then the end.
    b.s.write_all(b"\x16\x03\x01 not http\r\n\r\n").unwrap();
    let (status, _, _) = b.answer();
    assert_eq!(status, 400);
    assert!(b.closed(T));
}

#[test]
fn an_idle_kept_connection_is_closed_after_15_s() {
    let s = Server::start(&["-tone"]);
    let mut c = Client::connect(s.addr);
    let began = Instant::now();
    assert!(kept(&c.get("/status-json.xsl").1));
    assert!(c.closed(Duration::from_secs(25)), "closed");
    let idle = began.elapsed();
    assert!(
        idle >= Duration::from_secs(14) && idle <= Duration::from_secs(20),
        "closed after {idle:?}"
    );
}
