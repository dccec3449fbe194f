//! `make bench`: fan-out figures for N listeners of a 128 kb/s MP3 stream on loopback.
//!
//! For N = 1, 100, 1000 it starts a fresh server, connects N listeners from one epoll loop
//! in this process (so the load generator costs one thread, not N), and prints the server's
//! CPU seconds per minute, RSS, threads, bytes delivered against the bytes a real-time
//! listener should get, and time to first byte for a new listener. When Debian's icecast2
//! is installed, the same load runs against it in the same run, fed the same file at the
//! same rate, and its figures are printed beside ours.
//!
//! Bounded: each measurement lasts `BENCH_SECS` (default 20) seconds.

#[path = "../tests/blackbox/common.rs"]
mod common;
#[path = "../tests/blackbox/proxy.rs"]
#[allow(dead_code)] // the bench uses the proxy only to count bytes
mod proxy;

use common::{fixture, Icecast, Server};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

const RATE: u64 = 16_000; // 128 kb/s
const COUNTS: [usize; 3] = [1, 100, 1000];

struct Figures {
    cpu_s_per_min: f64,
    idle_rss_kb: u64,
    rss_kb: u64,
    threads: u64,
    delivered_min: f64,
    delivered_avg: f64,
    ttfb_median_ms: f64,
    ttfb_max_ms: f64,
}

fn main() {
    let secs: u64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    raise_nofile();
    let mp3 = fixture("tone-128k-44k1.mp3");
    println!(
        "fan-out of {} ({} B/s) for {secs} s per run; loopback; {} cores",
        mp3.display(),
        RATE,
        cores()
    );
    let mut rows: Vec<(String, usize, Figures)> = Vec::new();
    let data = std::fs::read(&mp3).unwrap();
    for &n in &COUNTS {
        let mut server = Server::start_with(
            &[
                "-frame-filter",
                "mp3",
                "-frame-bytes",
                "2881",
                "-max-clients",
                "1100",
                // Every bench listener comes from 127.0.0.1, all at once.
                "-max-pending-per-ip",
                "2000",
            ],
            Stdio::piped(),
        );
        let stdin = server.child.stdin.take().unwrap();
        let fed = Arc::new(AtomicU64::new(0));
        let (d, f2) = (data.clone(), Arc::clone(&fed));
        std::thread::spawn(move || feed(stdin, &d, &f2));
        let pid = server.child.id();
        let f = measure(pid, server.addr, "/", n, secs, &fed);
        rows.push(("ringcast".into(), n, f));
        drop(server);
    }
    let have_icecast = std::process::Command::new("icecast2")
        .arg("-v")
        .output()
        .is_ok();
    if let Some(ice) = have_icecast.then(|| IcecastPeer::start(&data)).flatten() {
        for &n in &COUNTS {
            let f = measure(ice.pid(), ice.addr, "/bench.mp3", n, secs, &ice.fed);
            rows.push(("icecast2".into(), n, f));
        }
    } else {
        println!("(icecast2 not installed: `apt-get install icecast2` to compare in the same run)");
    }
    println!();
    println!(
        "{:<9} {:>5} {:>11} {:>10} {:>9} {:>8} {:>14} {:>14} {:>12}",
        "server",
        "N",
        "CPU s/min",
        "idle RSS",
        "RSS",
        "threads",
        "delivered min",
        "delivered avg",
        "TTFB med/max"
    );
    for (name, n, f) in &rows {
        println!(
            "{:<9} {:>5} {:>11.2} {:>7} kB {:>6} kB {:>8} {:>13.1}% {:>13.1}% {:>5.1}/{:.1} ms",
            name,
            n,
            f.cpu_s_per_min,
            f.idle_rss_kb,
            f.rss_kb,
            f.threads,
            f.delivered_min * 100.0,
            f.delivered_avg * 100.0,
            f.ttfb_median_ms,
            f.ttfb_max_ms
        );
    }
    println!();
    println!(
        "targets: 1000 listeners all at 100%; RSS < 40 MB at 1000; idle RSS < 4 MB; TTFB < 50 ms"
    );
    link_figures(secs);
}

/// The link at 128 kb/s with 250 ms fragments: wire bytes against payload bytes (through a
/// counting proxy) and the delay from an origin listener to a receiver listener (on frames
/// numbered here, 400 bytes = 25 ms each).
fn link_figures(secs: u64) {
    const KEY: &str = "bench link key";
    let dir = common::scratch("bench-link");
    let frames = dir.join("frames.raw");
    let n: u32 = 40 * (secs as u32 + 30);
    let data: Vec<u8> = (0..n)
        .flat_map(|i| {
            let mut f = i.to_be_bytes().to_vec();
            f.resize(400, 0x5A);
            f
        })
        .collect();
    std::fs::write(&frames, data).unwrap();
    let origin = Server::start(&[
        "-path",
        frames.to_str().unwrap(),
        "-frame-bytes",
        "400",
        "-source-bandwidth",
        "16000",
        "-link-key",
        KEY,
    ]);
    let proxy = proxy::FaultProxy::start(origin.addr);
    let pull = format!("http://{}", proxy.addr);
    let receiver = Server::start(&[
        "-frame-bytes",
        "400",
        "-source-buffer",
        "800",
        "-link-key",
        KEY,
        "-link-delay",
        "5s",
        "-link-pull",
        &pull,
    ]);
    let at_origin = watch_frames(origin.addr);
    let at_receiver = watch_frames(receiver.addr);
    std::thread::sleep(Duration::from_secs(7)); // the receiver's delay fills
    let (wire0, _) = proxy.bytes();
    let payload0 = metric(receiver.addr, "ringcast_bytes_in_total");
    std::thread::sleep(Duration::from_secs(secs));
    let (wire1, _) = proxy.bytes();
    let payload1 = metric(receiver.addr, "ringcast_bytes_in_total");
    let overhead = (wire1 - wire0) as f64 / (payload1 - payload0).max(1) as f64 - 1.0;
    let (o, r) = (at_origin.lock().unwrap(), at_receiver.lock().unwrap());
    let mut lat: Vec<f64> = r
        .iter()
        .filter_map(|(k, t)| o.get(k).map(|t0| t.duration_since(*t0).as_secs_f64()))
        .collect();
    lat.sort_by(|a, b| a.total_cmp(b));
    println!();
    println!("link, 128 kb/s, 250 ms fragments, -link-delay 5s, {secs} s:");
    println!(
        "  overhead: {:.2}% ({} wire bytes for {} bytes of frames; target < 3%)",
        overhead * 100.0,
        wire1 - wire0,
        payload1 - payload0
    );
    match lat.len() {
        0 => println!("  latency: no frame seen at both ends"),
        k => println!(
            "  latency, origin listener to receiver listener: median {:.2} s, min {:.2} s, max {:.2} s ({k} frames)",
            lat[k / 2],
            lat[0],
            lat[k - 1]
        ),
    }
}

/// When each numbered frame first reached a listener of `addr`.
fn watch_frames(addr: SocketAddr) -> Arc<std::sync::Mutex<HashMap<u32, Instant>>> {
    let seen = Arc::new(std::sync::Mutex::new(HashMap::new()));
    let s2 = Arc::clone(&seen);
    std::thread::spawn(move || {
        let mut l = common::Listener::get(addr, "/", 0);
        let mut pending = std::mem::take(&mut l.body);
        let mut buf = vec![0u8; 65536];
        while let Ok(k) = l.conn.read(&mut buf) {
            if k == 0 {
                break;
            }
            let now = Instant::now();
            pending.extend_from_slice(&buf[..k]);
            let whole = pending.len() / 400 * 400;
            for f in pending[..whole].chunks_exact(400) {
                s2.lock()
                    .unwrap()
                    .entry(u32::from_be_bytes(f[..4].try_into().unwrap()))
                    .or_insert(now);
            }
            pending.drain(..whole);
        }
    });
    seen
}

/// One counter from a server's /metrics.
fn metric(addr: SocketAddr, name: &str) -> u64 {
    let mut m = common::Listener::get(addr, "/metrics", 1);
    m.read_to_eof(Duration::from_secs(5));
    String::from_utf8_lossy(&m.body)
        .lines()
        .find_map(|l| {
            l.strip_prefix(name)
                .map(str::trim)
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Runs N listeners against a server for `secs` and reads its figures from /proc.
/// `fed` counts the stream bytes fed to the server: what a real-time listener should get.
fn measure(
    pid: u32,
    addr: SocketAddr,
    path: &str,
    n: usize,
    secs: u64,
    fed: &AtomicU64,
) -> Figures {
    // Let the source start and the stream flow before measuring idle memory.
    std::thread::sleep(Duration::from_millis(1500));
    let idle_rss_kb = proc_status(pid, "VmRSS:");
    let mut load = Load::connect(addr, path, n);
    // Warm up: every listener has its response head and the first burst.
    load.pump(Duration::from_secs(2));
    load.reset_counts();
    let cpu0 = cpu_ticks(pid);
    let fed0 = fed.load(Relaxed);
    let t0 = Instant::now();
    let mut ttfb = Vec::new();
    let mut peak_rss = 0;
    let mut threads = 0;
    while t0.elapsed() < Duration::from_secs(secs) {
        load.pump(Duration::from_millis(500));
        peak_rss = peak_rss.max(proc_status(pid, "VmRSS:"));
        threads = threads.max(proc_status(pid, "Threads:"));
        if ttfb.len() < 20 && t0.elapsed() > Duration::from_secs(1) {
            ttfb.push(first_byte_ms(addr, path));
        }
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = (cpu_ticks(pid) - cpu0) as f64 / ticks_per_second();
    let expected = (fed.load(Relaxed) - fed0) as f64;
    let ratios: Vec<f64> = load.counts().iter().map(|&b| b as f64 / expected).collect();
    ttfb.sort_by(|a, b| a.total_cmp(b));
    Figures {
        cpu_s_per_min: cpu / elapsed * 60.0,
        idle_rss_kb,
        rss_kb: peak_rss,
        threads,
        delivered_min: ratios.iter().copied().fold(f64::MAX, f64::min),
        delivered_avg: ratios.iter().sum::<f64>() / ratios.len() as f64,
        ttfb_median_ms: ttfb.get(ttfb.len() / 2).copied().unwrap_or(f64::NAN),
        ttfb_max_ms: ttfb.last().copied().unwrap_or(f64::NAN),
    }
}

/// Milliseconds from connect to the first body byte for a new listener.
fn first_byte_ms(addr: SocketAddr, path: &str) -> f64 {
    let start = Instant::now();
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
        .unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match c.read(&mut chunk) {
            Ok(0) | Err(_) => return f64::NAN,
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
        }
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            if buf.len() > end + 4 {
                return start.elapsed().as_secs_f64() * 1000.0;
            }
        }
    }
}

/// N listener sockets read from one epoll loop.
struct Load {
    epoll: i32,
    conns: Vec<(TcpStream, bool, Vec<u8>)>,
    body: Vec<u64>,
}

impl Load {
    fn connect(addr: SocketAddr, path: &str, n: usize) -> Load {
        let epoll = unsafe { libc::epoll_create1(0) };
        assert!(epoll >= 0);
        let mut conns = Vec::with_capacity(n);
        for i in 0..n {
            let mut c = TcpStream::connect(addr).expect("connect");
            c.write_all(format!("GET {path} HTTP/1.0\r\nUser-Agent: bench\r\n\r\n").as_bytes())
                .unwrap();
            c.set_nonblocking(true).unwrap();
            let mut ev = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: i as u64,
            };
            unsafe { libc::epoll_ctl(epoll, libc::EPOLL_CTL_ADD, c.as_raw_fd(), &mut ev) };
            conns.push((c, false, Vec::new()));
        }
        Load {
            epoll,
            conns,
            body: vec![0; n],
        }
    }

    fn pump(&mut self, d: Duration) {
        let deadline = Instant::now() + d;
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
        let mut buf = vec![0u8; 64 * 1024];
        while Instant::now() < deadline {
            let k = unsafe {
                libc::epoll_wait(self.epoll, events.as_mut_ptr(), events.len() as i32, 50)
            };
            for ev in events.iter().take(k.max(0) as usize) {
                let i = ev.u64 as usize;
                let (conn, head_done, head) = &mut self.conns[i];
                loop {
                    match conn.read(&mut buf) {
                        Ok(0) => {
                            unsafe {
                                libc::epoll_ctl(
                                    self.epoll,
                                    libc::EPOLL_CTL_DEL,
                                    conn.as_raw_fd(),
                                    std::ptr::null_mut(),
                                )
                            };
                            break;
                        }
                        Ok(m) if *head_done => self.body[i] += m as u64,
                        Ok(m) => {
                            head.extend_from_slice(&buf[..m]);
                            if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                                *head_done = true;
                                self.body[i] += (head.len() - end - 4) as u64;
                                head.clear();
                            }
                        }
                        Err(_) => break,
                    }
                }
            }
        }
    }

    fn reset_counts(&mut self) {
        self.body.iter_mut().for_each(|b| *b = 0);
    }

    fn counts(&self) -> &[u64] {
        &self.body
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        unsafe { libc::close(self.epoll) };
    }
}

/// Debian's icecast2 (the tests' launcher) with one mount fed by a paced SOURCE client.
struct IcecastPeer {
    ice: Icecast,
    addr: SocketAddr,
    fed: Arc<AtomicU64>,
}

impl IcecastPeer {
    fn start(data: &[u8]) -> Option<IcecastPeer> {
        let ice = Icecast::start("bench-icecast", common::free_port());
        let addr = ice.addr();
        let mut source = TcpStream::connect(addr).ok()?;
        let req = format!(
            "SOURCE /bench.mp3 HTTP/1.0\r\nAuthorization: {}\r\nContent-Type: audio/mpeg\r\n\r\n",
            common::basic("source", common::ICECAST_SOURCE_PASSWORD)
        );
        source.write_all(req.as_bytes()).ok()?;
        if common::read_head(&mut source).0 != 200 {
            println!("(icecast2 refused the source)");
            return None;
        }
        let fed = Arc::new(AtomicU64::new(0));
        let (d, f2) = (data.to_vec(), Arc::clone(&fed));
        std::thread::spawn(move || feed(source, &d, &f2));
        Some(IcecastPeer { ice, addr, fed })
    }

    fn pid(&self) -> u32 {
        self.ice.pid()
    }
}

/// Writes `data` in a loop at `RATE` bytes/s, counting into `fed`, until the reader goes.
fn feed(mut out: impl Write, data: &[u8], fed: &AtomicU64) {
    let start = Instant::now();
    let mut sent: u64 = 0;
    let step = (RATE / 50) as usize;
    let mut pos = 0;
    loop {
        let due = Duration::from_secs_f64(sent as f64 / RATE as f64);
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
        let end = (pos + step).min(data.len());
        if out.write_all(&data[pos..end]).is_err() {
            return;
        }
        sent += (end - pos) as u64;
        fed.fetch_add((end - pos) as u64, Relaxed);
        pos = if end == data.len() { 0 } else { end };
    }
}

fn proc_status(pid: u32, key: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let fields: HashMap<&str, &str> = s
        .lines()
        .filter_map(|l| l.split_once(char::is_whitespace))
        .collect();
    fields
        .get(key)
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn cpu_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = s.rsplit_once(") ").map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of /proc/PID/stat (11 and 12 after the name).
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

fn ticks_per_second() -> f64 {
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) as f64 }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn raise_nofile() {
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
}
