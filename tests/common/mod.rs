//! The one test harness, shared by the black-box suite and the benches: start the real binary
//! on 127.0.0.1:0, watch its log, talk HTTP to it (`listener`), read its metrics
//! (`metrics`), its Ogg pages (`ogg`) and MP3 frames (`mp3`), and run the peers: icecast2,
//! ffmpeg, a fault-injecting proxy, nginx in front with TLS.

// The black-box suite and the two benches each use a part of the harness.
#![allow(dead_code, unused_imports)]

mod ffmpeg;
mod icecast;
mod listener;
pub mod metrics;
mod mp3;
pub mod ogg;
pub mod proxy;
pub mod tls_proxy;

pub use ffmpeg::*;
pub use icecast::*;
pub use listener::*;
pub use metrics::*;
pub use mp3::*;

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
