//! Test helpers: start the real binary on 127.0.0.1:0, watch its log, talk HTTP to it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_ringcast");

/// The binary under test: cargo's, or `$RINGCAST_TEST_BIN` (`make test-armv6` sets it to the
/// static ARMv6 build, which cargo cannot build for a test run).
pub fn bin() -> String {
    match std::env::var("RINGCAST_TEST_BIN") {
        Ok(path) if !path.trim().is_empty() => path,
        _ => BIN.to_string(),
    }
}

/// A `Command` that runs the ringcast binary, through `$RINGCAST_TEST_RUNNER` when set
/// (`make test-arm` sets it to `qemu-aarch64 -L …` so the ARM binary runs under qemu-user).
pub fn ringcast() -> Command {
    match std::env::var("RINGCAST_TEST_RUNNER") {
        Ok(runner) if !runner.trim().is_empty() => {
            let mut words = runner.split_whitespace();
            let mut cmd = Command::new(words.next().unwrap());
            cmd.args(words).arg(bin());
            // ringcast runs itself again with this set (src/os/sys.rs); under qemu-user that
            // exec would reach the host kernel without qemu, so it starts with it set.
            cmd.env("GLIBC_TUNABLES", "glibc.malloc.tcache_count=0");
            cmd
        }
        _ => Command::new(bin()),
    }
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A fresh scratch directory under target/ (removed and recreated).
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

type Log = Arc<(Mutex<Vec<String>>, Condvar)>;

/// A running ringcast. Killed on drop.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    log: Log,
}

impl Server {
    /// Starts ringcast with `args` plus `-address 127.0.0.1:0` and waits until it listens.
    pub fn start(args: &[&str]) -> Server {
        Self::start_with(args, Stdio::null())
    }

    pub fn start_with(args: &[&str], stdin: Stdio) -> Server {
        let mut cmd = ringcast();
        cmd.args(["-address", "127.0.0.1:0"]);
        cmd.args(args)
            .stdin(stdin)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        Self::from_command(cmd)
    }

    /// Starts a prepared command (stderr piped, listening on 127.0.0.1:0).
    pub fn from_command(mut cmd: Command) -> Server {
        let mut child = cmd.spawn().expect("start ringcast");
        let log: Log = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if std::env::var_os("RINGCAST_TEST_LOG").is_some() {
                    eprintln!("{line}");
                }
                sink.0.lock().unwrap().push(line);
                sink.1.notify_all();
            }
        });
        let mut server = Server {
            child,
            addr: "127.0.0.1:0".parse().unwrap(),
            log,
        };
        let line = server
            .wait_log("listening on ", Duration::from_secs(10))
            .unwrap_or_else(|| panic!("ringcast did not start: {}", server.log_text()));
        let addr = line.rsplit("listening on ").next().unwrap().trim();
        server.addr = addr.parse().unwrap();
        server
    }

    /// Waits for a log line containing `needle`; returns it.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> Option<String> {
        self.wait_log_count(needle, 1, timeout)
    }

    /// Waits until `n` log lines contain `needle`; returns the n-th.
    pub fn wait_log_count(&self, needle: &str, n: usize, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let mut lines = self.log.0.lock().unwrap();
        loop {
            let found: Vec<&String> = lines.iter().filter(|l| l.contains(needle)).collect();
            if found.len() >= n {
                return Some(found[n - 1].clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            lines = self.log.1.wait_timeout(lines, left).unwrap().0;
        }
    }

    pub fn log_count(&self, needle: &str) -> usize {
        self.log
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    pub fn log_text(&self) -> String {
        self.log.0.lock().unwrap().join("\n")
    }

    pub fn signal(&self, sig: i32) {
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Opens a listener connection with a GET request.
    pub fn listen(&self) -> Listener {
        Listener::get(self.addr, "/", 1)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs ringcast to completion with `args` (no server expected); returns status, stdout,
/// stderr.
pub fn run_cli(args: &[&str]) -> (i32, String, String) {
    let mut child = ringcast()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let drain = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            String::from_utf8_lossy(&v).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    // A command line that should end at once must not hang the suite.
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "ringcast {args:?} did not exit within 30 s: {}",
                err.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (
        status.code().unwrap_or(-1),
        out.join().unwrap(),
        err.join().unwrap(),
    )
}

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

/// Polls `f` every 20 ms until it is true or `timeout` passes.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Lines in a file (0 if it does not exist).
pub fn line_count(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

/// A test oracle for MPEG audio frame lengths, written from the spec independently of
/// ringcast's framer: (offset, length) of each frame in a clean file, after any ID3v2 tag
/// and before any ID3v1 tag.
pub fn mp3_frames(data: &[u8]) -> Vec<(usize, usize)> {
    let mut pos = 0;
    if data.starts_with(b"ID3") {
        let size = data[6..10].iter().fold(0usize, |a, &b| a << 7 | b as usize);
        pos = 10 + size;
    }
    let mut frames = Vec::new();
    while pos + 4 <= data.len() && data[pos] == 0xFF && data[pos + 1] & 0xE0 == 0xE0 {
        let h = &data[pos..pos + 4];
        let mpeg1 = h[1] & 0x18 == 0x18;
        let layer3 = h[1] & 0x06 == 0x02;
        assert!(layer3, "fixtures are layer III");
        let kbps: [u32; 15] = if mpeg1 {
            [
                0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
            ]
        } else {
            [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160]
        };
        let rates: [u32; 3] = match h[1] & 0x18 {
            0x18 => [44100, 48000, 32000],
            0x10 => [22050, 24000, 16000],
            _ => [11025, 12000, 8000],
        };
        let br = kbps[(h[2] >> 4) as usize] * 1000;
        let sr = rates[((h[2] >> 2) & 3) as usize];
        let coef = if mpeg1 { 144 } else { 72 };
        let len = (coef * br / sr + ((h[2] >> 1) & 1) as u32) as usize;
        if pos + len > data.len() {
            break;
        }
        frames.push((pos, len));
        pos += len;
    }
    frames
}

/// Splits `body` into a sequence of indices into `frames` (whole frames of `source`),
/// requiring it to start on a frame boundary and to consist only of whole source frames.
/// Returns the indices, or an error describing the first mismatch.
pub fn match_frames(
    body: &[u8],
    source: &[u8],
    frames: &[(usize, usize)],
) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < body.len() {
        let rest = &body[pos..];
        // Prefer the successor of the previous frame; else search all (after a skip/wrap).
        let candidates = out
            .last()
            .map(|&i: &usize| vec![(i + 1) % frames.len()])
            .unwrap_or_default()
            .into_iter()
            .chain(0..frames.len());
        let mut found = None;
        for i in candidates {
            let (off, len) = frames[i];
            let f = &source[off..off + len];
            if rest.len() >= len && &rest[..len] == f {
                found = Some((i, len));
                break;
            }
            if rest.len() < len && f.starts_with(rest) {
                return Ok(out); // a partial last frame: the read stopped mid-frame
            }
        }
        match found {
            Some((i, len)) => {
                out.push(i);
                pos += len;
            }
            None => return Err(format!("byte {pos}: not a whole frame of the source")),
        }
    }
    Ok(out)
}

/// Panics with an install hint when a peer program the test drives is missing.
pub fn require_program(name: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).exists()))
        .unwrap_or(false);
    assert!(
        found,
        "this test drives the real `{name}`: apt-get install {package}"
    );
}

/// Starts a peer program with no stdin and its output discarded (it logs to its own files).
pub fn spawn_quiet(mut cmd: Command) -> Child {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {:?}: {e}", cmd.get_program()))
}

/// A free TCP port on 127.0.0.1 (bound and released; good enough for a test peer).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub const ICECAST_SOURCE_PASSWORD: &str = "hackme";
pub const ICECAST_ADMIN_PASSWORD: &str = "adminpw";

/// Debian's icecast2 on 127.0.0.1:`port`, with its own config and logs under target/.
pub struct Icecast {
    pub child: Child,
    pub port: u16,
    pub dir: PathBuf,
}

impl Icecast {
    /// icecast2 on `port` (a restart on the port it had before).
    pub fn start(name: &str, port: u16) -> Icecast {
        Icecast::launch(name, port, 1100).unwrap_or_else(|why| panic!("{why}"))
    }

    /// icecast2 on a free port of its own.
    pub fn start_free(name: &str) -> Icecast {
        Icecast::start_free_for(name, 1100)
    }

    /// The same, allowing `clients` connections (the bench's 5000 listeners need more). A
    /// port found free can be taken before icecast2 binds it, by another test's peer
    /// restarting on it (the pull test restarts its Icecast on the same port): icecast2 then
    /// exits, and another port is tried.
    pub fn start_free_for(name: &str, clients: usize) -> Icecast {
        let mut last = String::new();
        for _ in 0..5 {
            match Icecast::launch(name, free_port(), clients) {
                Ok(ice) => return ice,
                Err(why) => {
                    eprintln!("icecast2 did not start, trying another port: {why}");
                    last = why;
                }
            }
        }
        panic!("icecast2 did not start on five ports: {last}")
    }

    fn launch(name: &str, port: u16, clients: usize) -> Result<Icecast, String> {
        require_program("icecast2", "icecast2");
        // icecast2 refuses to run as root: it switches to nobody when we are root, and
        // nobody must reach its files. A clone in a private folder (mktemp -d, a home
        // directory: 0700) keeps nobody out of target/, so as root its files go under the
        // system's temporary folder instead, named for this test process.
        let root = unsafe { libc::getuid() } == 0;
        let dir = if root {
            let d = std::env::temp_dir()
                .join(format!("ringcast-tests-{}", std::process::id()))
                .join(name);
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).unwrap();
            for p in [d.parent().unwrap(), d.as_path()] {
                std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                    .unwrap();
            }
            d
        } else {
            scratch(name)
        };
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .unwrap();
        let owner = if root {
            "<changeowner><user>nobody</user><group>nogroup</group></changeowner>"
        } else {
            ""
        };
        let conf = format!(
            r#"<icecast>
  <limits><clients>{clients}</clients><sources>4</sources><queue-size>524288</queue-size>
    <client-timeout>30</client-timeout><header-timeout>15</header-timeout><source-timeout>10</source-timeout>
    <burst-on-connect>1</burst-on-connect><burst-size>65535</burst-size></limits>
  <authentication><source-password>{src}</source-password><admin-user>admin</admin-user><admin-password>{adm}</admin-password></authentication>
  <hostname>127.0.0.1</hostname>
  <listen-socket><port>{port}</port><bind-address>127.0.0.1</bind-address></listen-socket>
  <fileserve>1</fileserve>
  <paths><basedir>/usr/share/icecast2</basedir><logdir>{dir}</logdir><webroot>/usr/share/icecast2/web</webroot><adminroot>/usr/share/icecast2/admin</adminroot><pidfile>{dir}/icecast.pid</pidfile></paths>
  <logging><accesslog>access.log</accesslog><errorlog>error.log</errorlog><loglevel>3</loglevel></logging>
  <security><chroot>0</chroot>{owner}</security>
</icecast>"#,
            src = ICECAST_SOURCE_PASSWORD,
            adm = ICECAST_ADMIN_PASSWORD,
            dir = dir.display(),
        );
        let conf_path = dir.join("icecast.xml");
        std::fs::write(&conf_path, conf).unwrap();
        // Debian's icecast2 2.4.4 now and then dies of SIGSEGV while starting, before it
        // answers anything (CI saw it once, with nothing of ours connected yet). That is the
        // peer's fault, not a finding about ringcast: start it again, at most three times, and
        // say so on stderr. A crash after it answered still fails the test.
        for attempt in 1..=3 {
            let mut cmd = Command::new("icecast2");
            cmd.arg("-c").arg(&conf_path);
            let child = spawn_quiet(cmd);
            let mut ice = Icecast {
                child,
                port,
                dir: dir.clone(),
            };
            // This icecast2 must answer, not whatever else holds the port (another test's
            // Icecast, a loopback socket connected to itself): the probe names its PID and
            // must show up in this one's log.
            let probe = format!("/ringcast-probe-{}.txt", ice.child.id());
            let settled = eventually(Duration::from_secs(10), || {
                (ice.answers(&probe) && ice.logged(&probe)) || ice.exited()
            });
            if settled && !ice.exited() {
                return Ok(ice);
            }
            let crashed = matches!(ice.child.try_wait(), Ok(Some(st)) if st.signal().is_some());
            let why = ice.describe();
            if !crashed || attempt == 3 {
                return Err(format!("icecast2 did not start: {why}"));
            }
            eprintln!(
                "icecast2 crashed while starting (attempt {attempt}), starting it again: {why}"
            );
        }
        unreachable!("the loop returns")
    }

    /// Whether an icecast2 answers `probe` on the port. The file is not there: the 404 comes
    /// from Icecast's own file server (its Server header says so) and, unlike the status
    /// page, involves no XSLT while the server is still starting.
    fn answers(&self, probe: &str) -> bool {
        let Ok(mut c) = TcpStream::connect(self.addr()) else {
            return false;
        };
        let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
        let req = format!("GET {probe} HTTP/1.0\r\nHost: test\r\n\r\n");
        let mut answer = Vec::new();
        c.write_all(req.as_bytes()).is_ok()
            && c.read_to_end(&mut answer).is_ok()
            && String::from_utf8_lossy(&answer).contains("Icecast")
    }

    /// Whether this icecast2's error log mentions `text` (its file server logs every path).
    fn logged(&self, text: &str) -> bool {
        std::fs::read_to_string(self.dir.join("error.log")).is_ok_and(|l| l.contains(text))
    }

    fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// Whether the process still runs, and its error log: for failure messages.
    pub fn describe(&mut self) -> String {
        let state = match self.child.try_wait() {
            Ok(None) => "running".to_string(),
            Ok(Some(status)) => format!("exited ({status})"),
            Err(e) => format!("unknown ({e})"),
        };
        let log = std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default();
        format!("icecast2 on port {} {state}; error.log:\n{log}", self.port)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills icecast2 and waits until its port is free again.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        eventually(Duration::from_secs(10), || {
            TcpStream::connect(self.addr()).is_err()
        });
    }
}

impl Drop for Icecast {
    fn drop(&mut self) {
        self.stop();
        // Files put under the system's temporary folder (as root) go with it.
        if self.dir.starts_with(std::env::temp_dir()) {
            let _ = std::fs::remove_dir_all(&self.dir);
            let _ = std::fs::remove_dir(self.dir.parent().unwrap());
        }
    }
}

/// ffmpeg sending `mp3` (looped, in real time, frames copied as they are) to `target`
/// (an `icecast://` URL) with `extra` options before the output.
pub fn ffmpeg_push(mp3: &Path, target: &str, extra: &[&str]) -> Child {
    let mut args = vec!["-content_type", "audio/mpeg"];
    args.extend_from_slice(extra);
    ffmpeg_push_as(mp3, "mp3", target, &args)
}

/// ffmpeg sending `file` (looped, in real time, copied as it is) as `format` to `target`,
/// with `extra` options before the output.
pub fn ffmpeg_push_as(file: &Path, format: &str, target: &str, extra: &[&str]) -> Child {
    require_program("ffmpeg", "ffmpeg");
    Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-loglevel",
            "error",
            "-re",
            "-stream_loop",
            "-1",
            "-i",
        ])
        .arg(file)
        .args(["-c:a", "copy"])
        .args(extra)
        .args(["-f", format, target])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ffmpeg")
}

/// Decodes `secs` seconds of the stream at `url` with ffmpeg; returns (success, stderr).
pub fn ffmpeg_decode(url: &str, secs: u32) -> (bool, String) {
    require_program("ffmpeg", "ffmpeg");
    let out = Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-v",
            "error",
            "-rw_timeout",
            "10000000",
            "-i",
            url,
            "-t",
            &secs.to_string(),
            "-f",
            "null",
            "-",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run ffmpeg");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// An `Authorization: Basic …` value, encoded here independently of ringcast's code.
pub fn basic(user: &str, pass: &str) -> String {
    let data = format!("{user}:{pass}").into_bytes();
    let abc = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            out.push(if i <= c.len() {
                abc[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    format!("Basic {out}")
}

/// ringcast playing the MP3 file at `path` in a loop, in real time at `rate` bytes/s (mp3
/// framing), with `extra` flags.
pub fn mp3_server(path: &Path, rate: &str, extra: &[&str]) -> Server {
    let mut args = vec![
        "-path",
        path.to_str().unwrap(),
        "-frame-filter",
        "mp3",
        "-frame-bytes",
        "2881",
        "-source-bandwidth",
        rate,
    ];
    args.extend_from_slice(extra);
    Server::start(&args)
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

/// Starts ringcast with `args` (which take source clients) until its SHOUTcast v1 port (the
/// HTTP port + 1) is its own: with tests in parallel, the port after a free one may be another
/// server's. Returns the server and that port.
pub fn start_with_v1_port(args: &[&str]) -> (Server, SocketAddr) {
    for _ in 0..10 {
        let s = Server::start(args);
        let found = eventually(Duration::from_secs(10), || {
            s.log_count("SHOUTcast v1 sources on") + s.log_count("SHOUTcast v1 sources: cannot") > 0
        });
        assert!(found, "no word on the SHOUTcast port: {}", s.log_text());
        if s.log_count("SHOUTcast v1 sources on") > 0 {
            let v1 = SocketAddr::new(s.addr.ip(), s.addr.port() + 1);
            return (s, v1);
        }
    }
    panic!("the port after ringcast's was taken ten times in a row");
}

/// The size of a numbered frame ([`numbered_frames`]).
pub const NUMBERED_FRAME: usize = 400;

/// A file of `n` numbered frames of [`NUMBERED_FRAME`] bytes (the number first, big-endian),
/// so a listener can tell whether it got every frame, in order, once.
pub fn numbered_frames(name: &str, n: u32) -> PathBuf {
    let dir = scratch(name);
    let path = dir.join("frames.raw");
    let mut data = Vec::with_capacity(n as usize * NUMBERED_FRAME);
    for i in 0..n {
        let mut f = i.to_be_bytes().to_vec();
        f.resize(NUMBERED_FRAME, (i % 251) as u8);
        data.extend_from_slice(&f);
    }
    std::fs::write(&path, data).unwrap();
    path
}

/// A ringcast playing a [`numbered_frames`] file in real time (16 KB/s, 25 ms a frame) as
/// a link origin with `key`, plus `extra` flags.
pub fn numbered_origin(path: &Path, key: &str, extra: &[&str]) -> Server {
    let mut args = vec![
        "-path",
        path.to_str().unwrap(),
        "-frame-bytes",
        "400",
        "-source-bandwidth",
        "16000",
        "-source-buffer",
        "800",
        "-link-key",
        key,
    ];
    args.extend_from_slice(extra);
    Server::start(&args)
}
