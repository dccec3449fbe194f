//! Clients of the server under test: a listener reading a response, a raw request head,
//! a connection from a chosen loopback address, a listener that records every read.

use super::*;

/// A client connection after the response head.
pub struct Listener {
    pub conn: TcpStream,
    pub status: u16,
    pub head: String,
    /// Body bytes read along with the head.
    pub body: Vec<u8>,
}

impl Listener {
    pub fn get(addr: SocketAddr, path: &str, minor: u8) -> Listener {
        Self::request(
            addr,
            &format!("GET {path} HTTP/1.{minor}\r\nHost: test\r\nUser-Agent: blackbox\r\n\r\n"),
        )
    }

    /// Sends a raw request and reads the response head (10 s at most).
    pub fn request(addr: SocketAddr, raw: &str) -> Listener {
        let mut conn = TcpStream::connect(addr).expect("connect");
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        conn.write_all(raw.as_bytes()).unwrap();
        let (status, head, body) = read_head(&mut conn);
        Listener {
            conn,
            status,
            head,
            body,
        }
    }

    /// Reads until `n` body bytes are held (or EOF, or `timeout`).
    pub fn read_body(&mut self, n: usize, timeout: Duration) -> &[u8] {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 64 * 1024];
        while self.body.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            self.conn.set_read_timeout(Some(left)).unwrap();
            match self.conn.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(k) => self.body.extend_from_slice(&buf[..k]),
            }
        }
        &self.body
    }

    /// Reads to EOF within `timeout`; true if EOF was seen.
    pub fn read_to_eof(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.conn.set_read_timeout(Some(left)).unwrap();
            match self.conn.read(&mut buf) {
                Ok(0) => return true,
                Ok(k) => self.body.extend_from_slice(&buf[..k]),
                Err(_) => return false,
            }
        }
    }
}

/// The value of header `name` (any case) in a response head's text.
pub fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Reads an HTTP response head; returns status, head text and any body bytes after it.
pub fn read_head(conn: &mut TcpStream) -> (u16, String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let status = head
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            return (status, head, buf[end + 4..].to_vec());
        }
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return (0, String::from_utf8_lossy(&buf).into_owned(), Vec::new()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// A GET with Basic credentials; the response head is read.
pub fn get_with_auth(addr: SocketAddr, path: &str, user: &str, pass: &str) -> Listener {
    Listener::request(
        addr,
        &format!(
            "GET {path} HTTP/1.1\r\nAuthorization: {}\r\n\r\n",
            basic(user, pass)
        ),
    )
}

/// Connects to `target` from local address `ip` (any loopback address works on Linux).
pub fn connect_from(ip: IpAddr, target: SocketAddr) -> Option<TcpStream> {
    dial(ip, target, None)
}

/// Connects to `target` from `ip`, with a receive buffer of `rcvbuf` bytes when given (set
/// before connecting, as a player with a small buffer has).
pub fn dial(ip: IpAddr, target: SocketAddr, rcvbuf: Option<i32>) -> Option<TcpStream> {
    let (IpAddr::V4(v4), SocketAddr::V4(t)) = (ip, target) else {
        return None;
    };
    let addr = |ip: std::net::Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(ip.octets()),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: plain socket calls on a descriptor we own; closed on every failure.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        if fd < 0 {
            return None;
        }
        let local = addr(v4, 0);
        let remote = addr(*t.ip(), t.port());
        let ok = rcvbuf.is_none_or(|size| {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                &size as *const i32 as *const libc::c_void,
                std::mem::size_of::<i32>() as libc::socklen_t,
            ) == 0
        }) && libc::bind(fd, &local as *const _ as *const libc::sockaddr, len) == 0
            && libc::connect(fd, &remote as *const _ as *const libc::sockaddr, len) == 0;
        if !ok {
            libc::close(fd);
            return None;
        }
        Some(<TcpStream as std::os::fd::FromRawFd>::from_raw_fd(fd))
    }
}

/// Every read a listener made: (when, bytes).
pub type Reads = Arc<Mutex<Vec<(Instant, Vec<u8>)>>>;

/// A listener that records every read.
pub struct Recorder {
    pub reads: Reads,
    stop: Arc<Mutex<bool>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Recorder {
    pub fn start(s: &Server) -> Recorder {
        Self::start_at(s, "/")
    }

    /// Records a listener of `path`.
    pub fn start_at(s: &Server, path: &str) -> Recorder {
        let mut l = Listener::get(s.addr, path, 1);
        assert_eq!(l.status, 200);
        let reads = Arc::new(Mutex::new(vec![(
            Instant::now(),
            std::mem::take(&mut l.body),
        )]));
        let stop = Arc::new(Mutex::new(false));
        let (r, st) = (Arc::clone(&reads), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            l.conn
                .set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            while !*st.lock().unwrap() {
                match l.conn.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => r.lock().unwrap().push((Instant::now(), buf[..n].to_vec())),
                    Err(_) => {}
                }
            }
        });
        Recorder {
            reads,
            stop,
            thread: Some(thread),
        }
    }

    pub fn bytes(&self) -> usize {
        self.reads
            .lock()
            .unwrap()
            .iter()
            .map(|(_, b)| b.len())
            .sum()
    }

    /// Waits until `n` more bytes arrived.
    pub fn wait_more(&self, n: usize, timeout: Duration) -> bool {
        let target = self.bytes() + n;
        eventually(timeout, || self.bytes() >= target)
    }

    /// Stops and returns (all bytes, longest pause between reads once data flowed).
    pub fn finish(mut self) -> (Vec<u8>, Duration) {
        *self.stop.lock().unwrap() = true;
        let _ = self.thread.take().unwrap().join();
        let reads = self.reads.lock().unwrap();
        let mut all = Vec::new();
        let mut longest = Duration::ZERO;
        let mut prev: Option<Instant> = None;
        for (t, b) in reads.iter() {
            if b.is_empty() {
                continue;
            }
            if let Some(p) = prev {
                longest = longest.max(t.duration_since(p));
            }
            prev = Some(*t);
            all.extend_from_slice(b);
        }
        (all, longest)
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        *self.stop.lock().unwrap() = true;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
