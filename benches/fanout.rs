//! `make bench`: fan-out figures for N listeners of a 128 kb/s MP3 stream on loopback.
//!
//! For N = 1, 100, 1000, 5000 it starts a fresh server, connects N listeners from one epoll
//! loop in this process (so the load generator costs one thread, not N), and prints the
//! server's CPU seconds per minute, RSS (idle, under load, and per listener), threads, the
//! kernel-side cost (thread kernel stacks and TCP buffer memory, from /proc/meminfo and
//! /proc/net/sockstat), bytes delivered against the bytes a real-time listener should get
//! (and how many listeners got at least 95% of them), and time to first byte for a new
//! listener. When Debian's icecast2 is installed, the same load runs against it in the same
//! run, fed the same file at the same rate, and its figures and the ratios are printed.
//!
//! Then 1000 listeners over TLS (`-tls-address`, a certificate made by openssl here, each
//! listener a rustls client in the same epoll loop) beside 1000 plain ones, and the cost of
//! TLS per listener in CPU and memory.
//!
//! Then HLS (`hls.rs`): 1000 HLS clients without a cache beside 1000 plain listeners, and
//! the glass-to-ear delay of each, on numbered frames.
//!
//! Bounded: each measurement lasts `BENCH_SECS` (default 20) seconds, after at most 120 s
//! of connecting. `BENCH_N=1000,5000` measures only those audiences; `BENCH_TLS_N=0` leaves
//! out the TLS run, `BENCH_HLS_N=0` the HLS runs.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "fanout/hls.rs"]
mod hls;
#[path = "fanout/link_paths.rs"]
mod link_paths;

use common::{fixture, metric, proxy, tls_proxy, Icecast, Server};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

const RATE: u64 = 16_000; // 128 kb/s
const COUNTS: [usize; 4] = [1, 100, 1000, 5000];
/// Listeners of the TLS run (and of the plain run it is compared with).
const TLS_N: usize = 1000;
/// Connections either server must allow: the largest N plus the first-byte probes.
const MAX_CLIENTS: usize = 5100;
/// A listener is "at full rate" when it got the bytes fed in the window less at most this
/// much audio: ringcast sends a large audience its frames in batches of up to 2 s, so a
/// listener that keeps up can be that far behind the feed at the window's end.
const FULL_RATE_LAG_SECS: f64 = 2.5;

struct Figures {
    cpu_s_per_min: f64,
    idle_rss_kb: u64,
    rss_kb: u64,
    threads: u64,
    delivered_min: f64,
    delivered_avg: f64,
    /// Listeners that got the bytes fed less at most [`FULL_RATE_LAG_SECS`] of audio.
    at_full_rate: usize,
    /// Growth of the kernel's thread stacks (/proc/meminfo KernelStack) under the load.
    kernel_stack_kb: i64,
    /// Growth of TCP buffer memory (/proc/net/sockstat, both ends of loopback) under the load.
    tcp_mem_kb: i64,
    /// At the peak: resident kB in thread stacks, in the rest of anonymous memory (the
    /// heap), and in files (code), from /proc/PID/smaps.
    rss_split: (u64, u64, u64),
    ttfb_median_ms: f64,
    ttfb_max_ms: f64,
}

fn main() {
    let secs: u64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    // BENCH_N=1000,5000 measures only those audiences (while tuning); the default is all.
    let counts: Vec<usize> = std::env::var("BENCH_N")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| COUNTS.to_vec());
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
    for &n in &counts {
        let (server, fed) = start_ringcast(&data, &[]);
        let f = measure(server.child.id(), server.addr, "/", n, secs, &fed, None);
        rows.push(("ringcast".into(), n, f));
        drop(server);
    }
    // BENCH_ICECAST=0 leaves the peer out (while tuning; the figures that count compare).
    let have_icecast = std::env::var("BENCH_ICECAST").as_deref() != Ok("0")
        && std::process::Command::new("icecast2")
            .arg("-v")
            .output()
            .is_ok();
    if let Some(ice) = have_icecast.then(|| IcecastPeer::start(&data)).flatten() {
        for &n in &counts {
            let f = measure(ice.pid(), ice.addr, "/bench.mp3", n, secs, &ice.fed, None);
            rows.push(("icecast2".into(), n, f));
        }
    } else if std::env::var("BENCH_ICECAST").as_deref() == Ok("0") {
        println!("(icecast2 left out: BENCH_ICECAST=0)");
    } else {
        println!("(icecast2 not installed: `apt-get install icecast2` to compare in the same run)");
    }
    println!();
    println!(
        "{:<9} {:>5} {:>9} {:>9} {:>9} {:>8} {:>7} {:>8} {:>8} {:>7} {:>7} {:>10} {:>13}",
        "server",
        "N",
        "CPU s/min",
        "idle RSS",
        "RSS",
        "RSS/lsnr",
        "threads",
        "kstack",
        "tcp mem",
        "dlv min",
        "dlv avg",
        "full rate",
        "TTFB med/max"
    );
    for (name, n, f) in &rows {
        let per = (f.rss_kb.saturating_sub(f.idle_rss_kb)) as f64 * 1024.0 / *n as f64;
        println!(
            "{:<9} {:>5} {:>9.2} {:>6} kB {:>6} kB {:>6.0} B {:>7} {:>5} kB {:>5} kB {:>6.1}% {:>6.1}% {:>10} {:>5.1}/{:.1} ms",
            name,
            n,
            f.cpu_s_per_min,
            f.idle_rss_kb,
            f.rss_kb,
            per,
            f.threads,
            f.kernel_stack_kb,
            f.tcp_mem_kb,
            f.delivered_min * 100.0,
            f.delivered_avg * 100.0,
            format!("{}/{n}", f.at_full_rate),
            f.ttfb_median_ms,
            f.ttfb_max_ms
        );
    }
    println!();
    println!("where the RSS is, at the peak (thread stacks / heap / code and data), per listener:");
    for (name, n, f) in &rows {
        let (st, heap, files) = f.rss_split;
        let per = |kb: u64| kb as f64 * 1024.0 / *n as f64;
        println!(
            "{name:<9} {n:>5}: stacks {st} kB ({:.0} B), heap {heap} kB ({:.0} B), files {files} kB",
            per(st),
            per(heap)
        );
    }
    let find = |name: &str, n: usize| rows.iter().find(|r| r.0 == name && r.1 == n);
    println!();
    for &n in &counts {
        if let (Some((_, _, r)), Some((_, _, i))) = (find("ringcast", n), find("icecast2", n)) {
            println!(
                "N = {n:>4}: ringcast/icecast2 CPU {:.2}x, RSS {:.2}x",
                r.cpu_s_per_min / i.cpu_s_per_min,
                r.rss_kb as f64 / i.rss_kb as f64
            );
        }
    }
    println!(
        "targets: CPU <= 0.5x icecast2 at 100 and 1000, <= 0.7x at 5000; RSS <= icecast2's at \
         1000, <= 60 MB at 5000; every listener at full rate; idle RSS < 4 MB; TTFB < 50 ms"
    );
    let tls_n: usize = std::env::var("BENCH_TLS_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(TLS_N);
    if tls_n > 0 {
        tls_figures(&data, tls_n, secs, find("ringcast", tls_n).map(|r| &r.2));
    }
    let hls_n: usize = std::env::var("BENCH_HLS_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(hls::N);
    if hls_n > 0 {
        hls::figures(&data, hls_n, secs);
    }
    link_figures(secs);
    link_paths::figures(secs);
}

/// ringcast fed `data` in real time on stdin, with the bench's flags and `extra`; the
/// server and the count of bytes fed.
fn start_ringcast(data: &[u8], extra: &[&str]) -> (Server, Arc<AtomicU64>) {
    let fed = Arc::new(AtomicU64::new(0));
    let (d, f2) = (data.to_vec(), Arc::clone(&fed));
    let server = start_ringcast_fed(extra, move |stdin| feed(stdin, &d, &f2));
    (server, fed)
}

/// ringcast with the bench's flags and `extra`, its stdin written by `feeder` on a thread
/// of its own.
fn start_ringcast_fed(
    extra: &[&str],
    feeder: impl FnOnce(std::process::ChildStdin) + Send + 'static,
) -> Server {
    let max = MAX_CLIENTS.to_string();
    let mut args = vec![
        "-frame-filter",
        "mp3",
        "-frame-bytes",
        "2881",
        "-max-clients",
        &max,
        // What the Icecast beside it is given: a 64 KiB burst on connect (Icecast's
        // default burst-size) and a ring of 13 s (its queue is 32 s). The burst is
        // also what lets ringcast batch a large audience's frames (ring/wake.rs).
        "-burst-bytes",
        "65536",
        "-source-buffer",
        "512",
        // Every bench listener comes from 127.0.0.1, all at once.
        "-max-pending-per-ip",
        "6000",
        "-max-listeners-per-ip",
        "0",
    ];
    args.extend_from_slice(extra);
    let mut server = Server::start_with(&args, Stdio::piped());
    let stdin = server.child.stdin.take().unwrap();
    std::thread::spawn(move || feeder(stdin));
    server
}

/// `n` listeners over TLS against `n` plain ones (measured here unless the plain runs had
/// that N): what TLS costs per listener.
fn tls_figures(data: &[u8], n: usize, secs: u64, plain: Option<&Figures>) {
    let dir = common::scratch("bench-tls");
    let ca = tls_proxy::TestCa::make(&dir, "bench");
    let plain_owned;
    let plain = match plain {
        Some(p) => p,
        None => {
            let (server, fed) = start_ringcast(data, &[]);
            plain_owned = measure(server.child.id(), server.addr, "/", n, secs, &fed, None);
            &plain_owned
        }
    };
    let (cert, key) = (ca.cert.to_str().unwrap(), ca.key.to_str().unwrap());
    let (server, fed) = start_ringcast(
        data,
        &[
            "-tls-address",
            "127.0.0.1:0",
            "-tls-cert",
            cert,
            "-tls-key",
            key,
        ],
    );
    let line = server
        .wait_log("HTTPS on ", Duration::from_secs(10))
        .expect("the HTTPS port");
    let addr: SocketAddr = line
        .rsplit("HTTPS on ")
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(&ca.ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let t = measure(
        server.child.id(),
        addr,
        "/",
        n,
        secs,
        &fed,
        Some(Arc::new(config)),
    );
    let per = |f: &Figures| f.rss_kb.saturating_sub(f.idle_rss_kb) as f64 * 1024.0 / n as f64;
    println!();
    println!("TLS (rustls, TLS 1.3) against plain HTTP, {n} listeners each, same flags:");
    for (name, f) in [("plain", plain), ("TLS", &t)] {
        println!(
            "  {name:<5}: CPU {:.2} s/min, RSS {} kB ({:.0} B/listener), heap {} kB, at full rate {}/{n}",
            f.cpu_s_per_min, f.rss_kb, per(f), f.rss_split.1, f.at_full_rate
        );
    }
    println!(
        "  TLS costs {:+.2} CPU s/min ({:.2}x) and {:+.0} B of RSS per listener",
        t.cpu_s_per_min - plain.cpu_s_per_min,
        t.cpu_s_per_min / plain.cpu_s_per_min,
        per(&t) - per(plain)
    );
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

/// Listeners of some kind that `measure_with` drives: each has a count of the stream bytes
/// it has had.
trait Audience {
    /// Runs the audience for `d` (or lets its own threads run).
    fn pump(&mut self, d: Duration);
    /// Whether every listener has had its first bytes.
    fn all_started(&self) -> bool;
    fn reset_counts(&mut self);
    fn counts(&self) -> Vec<u64>;
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
    tls: Option<Arc<ClientConfig>>,
) -> Figures {
    let how = Measure {
        secs,
        lag_secs: FULL_RATE_LAG_SECS,
        first_byte: Some((addr, path)),
    };
    measure_with(pid, fed, how, || {
        Box::new(Load::connect(addr, path, n, tls))
    })
}

/// How `measure_with` measures.
struct Measure<'a> {
    secs: u64,
    /// How far behind the feed a listener may be and count as at full rate.
    lag_secs: f64,
    /// Where new listeners' time to first byte is probed, if anywhere.
    first_byte: Option<(SocketAddr, &'a str)>,
}

/// `measure` with any audience, connected by `connect` once the idle server is measured.
fn measure_with(
    pid: u32,
    fed: &AtomicU64,
    how: Measure,
    connect: impl FnOnce() -> Box<dyn Audience>,
) -> Figures {
    let secs = how.secs;
    // Let the source start and the stream flow before measuring idle memory.
    std::thread::sleep(Duration::from_millis(1500));
    let idle_rss_kb = proc_status(pid, "VmRSS:");
    let kstack0 = meminfo("KernelStack:");
    let tcp0 = tcp_mem_kb();
    let mut load = connect();
    // Warm up: every listener has its response head and the first burst (bounded).
    let warm = Instant::now();
    load.pump(Duration::from_secs(2));
    while !load.all_started() && warm.elapsed() < Duration::from_secs(120) {
        load.pump(Duration::from_millis(500));
    }
    if !load.all_started() {
        println!("(only some of the listeners got a response within the warm-up)");
    }
    load.reset_counts();
    let mut kstack = 0;
    let mut tcp = 0;
    let cpu0 = cpu_ticks(pid);
    let fed0 = fed.load(Relaxed);
    let t0 = Instant::now();
    let mut ttfb = Vec::new();
    let mut peak_rss = 0;
    let mut rss_split = (0, 0, 0);
    let mut threads = 0;
    while t0.elapsed() < Duration::from_secs(secs) {
        load.pump(Duration::from_millis(500));
        let rss = proc_status(pid, "VmRSS:");
        if rss > peak_rss {
            peak_rss = rss;
            rss_split = smaps_split(pid);
        }
        threads = threads.max(proc_status(pid, "Threads:"));
        kstack = kstack.max(meminfo("KernelStack:") as i64 - kstack0 as i64);
        tcp = tcp.max(tcp_mem_kb() as i64 - tcp0 as i64);
        if let Some((addr, path)) = how.first_byte {
            if ttfb.len() < 20 && t0.elapsed() > Duration::from_secs(1) {
                ttfb.push(first_byte_ms(addr, path));
            }
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
        at_full_rate: load
            .counts()
            .iter()
            .filter(|&&b| b as f64 >= expected - how.lag_secs * RATE as f64)
            .count(),
        kernel_stack_kb: kstack,
        tcp_mem_kb: tcp,
        rss_split,
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

/// One bench listener: its socket, its TLS session (over TLS), and its response head
/// until the head is whole.
struct Client {
    sock: TcpStream,
    tls: Option<ClientConnection>,
    head_done: bool,
    head: Vec<u8>,
}

/// N listener sockets read from one epoll loop.
struct Load {
    epoll: i32,
    conns: Vec<Option<Client>>,
    arriving: std::sync::mpsc::Receiver<(usize, Client)>,
    body: Vec<u64>,
}

impl Load {
    /// Starts connecting `n` listeners. Connections are made by [`CONNECTORS`] threads at
    /// once, because a server with a short accept backlog (Icecast listens with 5) makes a
    /// serial client wait out SYN retries; the sockets join the epoll set as [`Load::pump`]
    /// runs, so early listeners are read while later ones connect.
    fn connect(addr: SocketAddr, path: &str, n: usize, tls: Option<Arc<ClientConfig>>) -> Load {
        const CONNECTORS: usize = 32;
        let epoll = unsafe { libc::epoll_create1(0) };
        assert!(epoll >= 0);
        let (tx, rx) = std::sync::mpsc::channel();
        for t in 0..CONNECTORS.min(n) {
            let (tx, req, tls) = (
                tx.clone(),
                format!("GET {path} HTTP/1.0\r\nUser-Agent: bench\r\n\r\n"),
                tls.clone(),
            );
            std::thread::spawn(move || {
                for i in (t..n).step_by(CONNECTORS) {
                    let mut c = TcpStream::connect(addr).expect("connect");
                    // Over TLS the handshake and the request are done here, blocking; the
                    // epoll loop only reads.
                    let session = tls.as_ref().map(|config| {
                        let name = ServerName::try_from("localhost").unwrap();
                        let s = ClientConnection::new(Arc::clone(config), name).unwrap();
                        let mut stream = StreamOwned::new(s, c.try_clone().unwrap());
                        stream.write_all(req.as_bytes()).unwrap();
                        stream.flush().unwrap();
                        stream.conn
                    });
                    if session.is_none() {
                        c.write_all(req.as_bytes()).unwrap();
                    }
                    c.set_nonblocking(true).unwrap();
                    let client = Client {
                        sock: c,
                        tls: session,
                        head_done: false,
                        head: Vec::new(),
                    };
                    if tx.send((i, client)).is_err() {
                        return;
                    }
                }
            });
        }
        Load {
            epoll,
            conns: (0..n).map(|_| None).collect(),
            arriving: rx,
            body: vec![0; n],
        }
    }

    /// Adds the connections made since the last call to the epoll set.
    fn register_new(&mut self) {
        while let Ok((i, c)) = self.arriving.try_recv() {
            let mut ev = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: i as u64,
            };
            unsafe {
                libc::epoll_ctl(self.epoll, libc::EPOLL_CTL_ADD, c.sock.as_raw_fd(), &mut ev)
            };
            self.conns[i] = Some(c);
        }
    }

    fn pump(&mut self, d: Duration) {
        let deadline = Instant::now() + d;
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
        let mut buf = vec![0u8; 64 * 1024];
        while Instant::now() < deadline {
            self.register_new();
            let k = unsafe {
                libc::epoll_wait(self.epoll, events.as_mut_ptr(), events.len() as i32, 50)
            };
            for ev in events.iter().take(k.max(0) as usize) {
                let i = ev.u64 as usize;
                let Some(c) = &mut self.conns[i] else {
                    continue;
                };
                let body = &mut self.body[i];
                let open = match &mut c.tls {
                    None => read_plain(&mut c.sock, &mut buf, &mut |b| {
                        count(&mut c.head_done, &mut c.head, body, b)
                    }),
                    Some(tls) => read_tls(tls, &mut c.sock, &mut buf, &mut |b| {
                        count(&mut c.head_done, &mut c.head, body, b)
                    }),
                };
                if !open {
                    unsafe {
                        libc::epoll_ctl(
                            self.epoll,
                            libc::EPOLL_CTL_DEL,
                            c.sock.as_raw_fd(),
                            std::ptr::null_mut(),
                        )
                    };
                }
            }
        }
    }
}

impl Audience for Load {
    fn pump(&mut self, d: Duration) {
        Load::pump(self, d);
    }

    /// Whether every listener has had its response head.
    fn all_started(&self) -> bool {
        self.conns
            .iter()
            .all(|c| c.as_ref().is_some_and(|c| c.head_done))
    }

    fn reset_counts(&mut self) {
        self.body.iter_mut().for_each(|b| *b = 0);
    }

    fn counts(&self) -> Vec<u64> {
        self.body.clone()
    }
}

/// Reads a plain socket until it would block; false once it closed.
fn read_plain(sock: &mut TcpStream, buf: &mut [u8], got: &mut dyn FnMut(&[u8])) -> bool {
    loop {
        match sock.read(buf) {
            Ok(0) => return false,
            Ok(m) => got(&buf[..m]),
            Err(_) => return true,
        }
    }
}

/// Reads a TLS session's socket until it would block, decrypting as it goes; false once
/// it closed.
fn read_tls(
    tls: &mut ClientConnection,
    sock: &mut TcpStream,
    buf: &mut [u8],
    got: &mut dyn FnMut(&[u8]),
) -> bool {
    loop {
        match tls.read_tls(sock) {
            Ok(0) => return false,
            Ok(_) => {}
            Err(_) => return true,
        }
        if tls.process_new_packets().is_err() {
            return false;
        }
        loop {
            match tls.reader().read(buf) {
                Ok(0) => return false,
                Ok(m) => got(&buf[..m]),
                Err(_) => break,
            }
        }
    }
}

/// Counts body bytes once the response head is whole.
fn count(head_done: &mut bool, head: &mut Vec<u8>, body: &mut u64, bytes: &[u8]) {
    if *head_done {
        *body += bytes.len() as u64;
        return;
    }
    head.extend_from_slice(bytes);
    if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
        *head_done = true;
        *body += (head.len() - end - 4) as u64;
        head.clear();
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
        let ice = Icecast::start_free_for("bench-icecast", MAX_CLIENTS);
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

/// Resident kB of `pid` in thread stacks, other anonymous memory, and file mappings. A
/// thread stack is an anonymous mapping right above a one-page guard (`---p`), as glibc lays
/// them out; malloc's arenas have their reserve above them instead.
fn smaps_split(pid: u32) -> (u64, u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let (mut stacks, mut anon, mut files) = (0, 0, 0);
    let mut prev: Option<(u64, bool)> = None; // end address, was a one-page guard
    let mut kind = 0;
    for line in s.lines() {
        let mut f = line.split_whitespace();
        let (Some(range), Some(perms)) = (f.next(), f.next()) else {
            continue;
        };
        if let Some((a, b)) = range.split_once('-') {
            if let (Ok(a), Ok(b)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)) {
                let path = line.split_whitespace().nth(5);
                let after_guard = prev == Some((a, true));
                kind = match path {
                    Some(p) if p.starts_with('/') => 2,
                    _ if after_guard && perms.starts_with("rw") => 0,
                    _ => 1,
                };
                prev = Some((b, perms == "---p" && b - a == 4096));
                continue;
            }
        }
        if range == "Rss:" {
            let kb: u64 = perms.parse().unwrap_or(0);
            match kind {
                0 => stacks += kb,
                1 => anon += kb,
                _ => files += kb,
            }
        }
    }
    (stacks, anon, files)
}

/// A field of /proc/meminfo, in kB.
fn meminfo(key: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// TCP buffer memory of the whole machine in kB (/proc/net/sockstat counts pages).
fn tcp_mem_kb() -> u64 {
    let s = std::fs::read_to_string("/proc/net/sockstat").unwrap_or_default();
    let pages: u64 = s
        .lines()
        .find_map(|l| l.strip_prefix("TCP:"))
        .and_then(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.windows(2)
                .find(|w| w[0] == "mem")
                .and_then(|w| w[1].parse().ok())
        })
        .unwrap_or(0);
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(0) as u64;
    pages * page / 1024
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
