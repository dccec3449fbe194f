//! `make soak`: everything at once for `SOAK_SECS` (default 900 s, 15 minutes), on loopback.
//!
//! One ringcast serves four mounts while this process keeps it busy:
//! - `/linked` pulls numbered frames over the link from a second ringcast, through a fault
//!   proxy that blackholes or resets the path for 2 s every 20 s (shorter than the 5 s
//!   `-link-delay`, so never heard);
//! - `/live` takes a source client that comes for 8–20 s and goes again; while it is away,
//!   its listeners fall back to `/list`;
//! - `/list` plays an .m3u in real time, publishes HLS, and gets a title update every 5 s;
//! - `/extra` (a tone) is added and removed by a `SIGHUP` every 30 s;
//! - listeners come and go on every mount (about 10 a second), HLS clients poll the playlist
//!   and fetch its segments, and garbage arrives (random bytes, broken requests, slow heads).
//!
//! Held throughout: two listeners of `/linked` (every frame, in order, once, no pause over a
//! second), two of `/live` and one of `/list` (never cut off, no pause over 3 s).
//!
//! Memory (RSS), descriptors and threads of both processes are printed at the start, every
//! minute and after the load stops. It ends with a verdict and exits 1 when a held listener
//! lost anything or the server kept what the load left behind (threads, descriptors).
//! Every loop here is bounded by the run's deadline; nothing leaves 127.0.0.1.

#[path = "../tests/common/mod.rs"]
mod common;

use common::proxy::{FaultProxy, Mode};
use common::{
    basic, fixture, mp3_frames, numbered_frames, numbered_origin, scratch, Listener, Server,
};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const KEY: &str = "soak link key";
const FRAME: usize = common::NUMBERED_FRAME;
const ADMIN: &str = "soak-admin";
const SOURCE_PW: &str = "soak-source";

fn main() {
    let secs: u64 = std::env::var("SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(900);
    let dir = scratch("soak");
    let frames = numbered_frames("soak-frames", u32::try_from(secs * 40 + 8000).unwrap());
    let origin = numbered_origin(&frames, KEY, &[]);
    let proxy = Arc::new(FaultProxy::start(origin.addr));
    let flags = write_config(&dir, &proxy.addr, false);
    let s = Server::start(&["-flags-file", flags.to_str().unwrap()]);
    assert!(
        s.wait_log("link pull: connected", Duration::from_secs(20))
            .is_some(),
        "the link did not connect: {}",
        s.log_text()
    );
    let pids = [("ringcast", s.child.id()), ("origin", origin.child.id())];
    println!(
        "soak: {secs} s on 127.0.0.1:{} (origin {})",
        s.addr.port(),
        origin.addr
    );
    let start = sample(&pids);
    print_sample("start", &start);

    // The held listeners first, once the link's buffer has filled (it plays after 5 s).
    std::thread::sleep(Duration::from_secs(6));
    let held: Vec<Held> = ["/linked", "/linked", "/live", "/live", "/list"]
        .iter()
        .map(|p| Held::start(s.addr, p))
        .collect();

    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let counts = Arc::new(Counts::default());
    let mut load: Vec<JoinHandle<()>> = Vec::new();
    let addr = s.addr;
    let go = |f: Box<dyn FnOnce() + Send>| std::thread::spawn(f);
    {
        let (stop, c) = (Arc::clone(&stop), Arc::clone(&counts));
        load.push(go(Box::new(move || source_client(addr, &stop, &c))));
    }
    for _ in 0..2 {
        let (stop, c) = (Arc::clone(&stop), Arc::clone(&counts));
        load.push(go(Box::new(move || churn(addr, &stop, &c))));
    }
    for _ in 0..2 {
        let (stop, c) = (Arc::clone(&stop), Arc::clone(&counts));
        load.push(go(Box::new(move || hls_client(addr, &stop, &c))));
    }
    {
        let (stop, c) = (Arc::clone(&stop), Arc::clone(&counts));
        load.push(go(Box::new(move || titles(addr, &stop, &c))));
    }
    {
        let (stop, c) = (Arc::clone(&stop), Arc::clone(&counts));
        load.push(go(Box::new(move || garbage(addr, &stop, &c))));
    }
    {
        let (stop, p) = (Arc::clone(&stop), Arc::clone(&proxy));
        load.push(go(Box::new(move || dropouts(&p, &stop))));
    }

    // Reloads from here, each minute a sample.
    let mut extra = false;
    let mut reloads = 0;
    let mut next_sample = Instant::now() + Duration::from_secs(60);
    let mut next_reload = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(250));
        if Instant::now() >= next_reload {
            extra = !extra;
            write_config(&dir, &proxy.addr, extra);
            s.signal(libc::SIGHUP);
            reloads += 1;
            next_reload += Duration::from_secs(30);
        }
        if Instant::now() >= next_sample {
            let t = secs - deadline.saturating_duration_since(Instant::now()).as_secs();
            print_sample(&format!("{t} s"), &sample(&pids));
            println!("       {}", counts.line());
            next_sample += Duration::from_secs(60);
        }
    }
    stop.store(true, Relaxed);
    for t in load {
        let _ = t.join();
    }
    let results: Vec<(String, Outcome)> = held
        .into_iter()
        .map(|h| (h.path.clone(), h.finish()))
        .collect();
    // Back to the quiet of the start: no load, no held listener, the extra mount gone.
    if extra {
        write_config(&dir, &proxy.addr, false);
        s.signal(libc::SIGHUP);
        reloads += 1;
    }
    let settled = s.wait_log_count(" mount(s)", reloads, Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(5));
    let after = sample(&pids);
    print_sample("after", &after);
    println!("       {}; reloads {reloads}", counts.line());

    let mut failures = Vec::new();
    let unexpected = counts.errors.load(Relaxed);
    if unexpected > 0 {
        failures.push(format!("{unexpected} unexpected answers to the load"));
    }
    if settled.is_none() {
        failures.push(format!(
            "only {} of {reloads} reloads were done",
            s.log_count("reload: done")
        ));
    }
    for (path, o) in &results {
        println!(
            "held {path}: {} bytes, {} frames, longest pause {:.2} s, {}",
            o.bytes,
            o.frames,
            o.longest.as_secs_f64(),
            if o.cut {
                "cut off"
            } else {
                "connected to the end"
            }
        );
        let limit = if path == "/linked" { 1.0 } else { 3.0 };
        if o.cut {
            failures.push(format!("a held listener of {path} was cut off"));
        }
        if o.longest.as_secs_f64() > limit {
            failures.push(format!("{path} paused {:.2} s", o.longest.as_secs_f64()));
        }
        if let Some(e) = &o.order_error {
            failures.push(format!("{path}: {e}"));
        }
    }
    // What the load left behind: a few threads and descriptors of slack for the stats and
    // reload threads' timing; a leak over 15 minutes is hundreds.
    let (s0, s1) = (&start[0], &after[0]);
    if s1.threads > s0.threads + 4 {
        failures.push(format!(
            "threads {} at the start, {} after",
            s0.threads, s1.threads
        ));
    }
    if s1.fds > s0.fds + 8 {
        failures.push(format!(
            "descriptors {} at the start, {} after",
            s0.fds, s1.fds
        ));
    }
    // Both servers stop before the verdict's exit (exit skips their drops).
    drop(s);
    drop(origin);
    if failures.is_empty() {
        println!("soak: passed ({secs} s)");
    } else {
        for f in &failures {
            println!("soak: FAILED: {f}");
        }
        std::process::exit(1);
    }
}

/// The command line's flags file and the mounts' files; `extra` adds `/extra`.
fn write_config(dir: &Path, link: &SocketAddr, extra: bool) -> std::path::PathBuf {
    let list = dir.join("list.m3u");
    std::fs::write(
        &list,
        format!(
            "#EXTM3U\n{}\n{}\n",
            fixture("tone-128k-44k1.mp3").display(),
            fixture("vbr-6s.mp3").display()
        ),
    )
    .unwrap();
    let files = [
        (
            "linked.conf",
            format!(
                "-frame-bytes 400 -source-buffer 800 -link-key '{KEY}' -link-delay 5s \
                 -link-pull http://{link}\n"
            ),
        ),
        (
            "list.conf",
            format!("-playlist {} -frame-filter mp3 -hls\n", list.display()),
        ),
        (
            "live.conf",
            format!("-source-password {SOURCE_PW} -frame-filter mp3 -fallback-mount /list\n"),
        ),
        ("extra.conf", "-tone\n".to_string()),
    ];
    for (name, text) in &files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let mut main = format!(
        "-max-clients 400 -max-listeners-per-ip 0 -admin-password {ADMIN} \
         -stat-log-interval 60s\n"
    );
    for m in ["linked", "list", "live"] {
        main += &format!("-mount /{m}={}\n", dir.join(format!("{m}.conf")).display());
    }
    if extra {
        main += &format!("-mount /extra={}\n", dir.join("extra.conf").display());
    }
    let flags = dir.join("ringcast.conf");
    std::fs::write(&flags, main).unwrap();
    flags
}

// ------------------------------------------------------------------ held listeners ----

struct Held {
    path: String,
    done: Arc<AtomicBool>,
    thread: JoinHandle<Outcome>,
}

#[derive(Default)]
struct Outcome {
    bytes: u64,
    frames: u64,
    longest: Duration,
    cut: bool,
    order_error: Option<String>,
}

impl Held {
    fn start(addr: SocketAddr, path: &str) -> Held {
        let mut l = Listener::get(addr, path, 1);
        assert_eq!(l.status, 200, "{path}: {}", l.head);
        let done = Arc::new(AtomicBool::new(false));
        let d = Arc::clone(&done);
        let numbered = path == "/linked";
        let thread = std::thread::Builder::new()
            .name(format!("held{path}"))
            .spawn(move || {
                let mut o = Outcome::default();
                let mut pending = std::mem::take(&mut l.body);
                let mut last_frame: Option<u32> = None;
                let mut last_read = Instant::now();
                let mut buf = vec![0u8; 64 * 1024];
                l.conn
                    .set_read_timeout(Some(Duration::from_millis(200)))
                    .unwrap();
                while !d.load(Relaxed) {
                    match l.conn.read(&mut buf) {
                        Ok(0) => {
                            o.cut = true;
                            break;
                        }
                        Ok(n) => {
                            let now = Instant::now();
                            o.longest = o.longest.max(now - last_read);
                            last_read = now;
                            o.bytes += n as u64;
                            if numbered {
                                pending.extend_from_slice(&buf[..n]);
                                let whole = pending.len() / FRAME * FRAME;
                                for f in pending[..whole].chunks_exact(FRAME) {
                                    let k = u32::from_be_bytes([f[0], f[1], f[2], f[3]]);
                                    if let Some(p) = last_frame {
                                        if k != p + 1 && o.order_error.is_none() {
                                            o.order_error = Some(format!("frame {k} after {p}"));
                                        }
                                    }
                                    last_frame = Some(k);
                                    o.frames += 1;
                                }
                                pending.drain(..whole);
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                        Err(_) => {
                            o.cut = true;
                            break;
                        }
                    }
                }
                o.longest = o
                    .longest
                    .max(last_read.elapsed().min(Duration::from_secs(3600)));
                o
            })
            .unwrap();
        Held {
            path: path.to_string(),
            done,
            thread,
        }
    }

    fn finish(self) -> Outcome {
        self.done.store(true, Relaxed);
        self.thread.join().unwrap()
    }
}

// ------------------------------------------------------------------------- the load ----

#[derive(Default)]
struct Counts {
    listeners: AtomicU64,
    hls: AtomicU64,
    source_runs: AtomicU64,
    titles: AtomicU64,
    garbage: AtomicU64,
    errors: AtomicU64,
}

impl Counts {
    fn line(&self) -> String {
        format!(
            "load so far: listeners {}, HLS requests {}, source runs {}, titles {}, garbage {}, \
             unexpected answers {}",
            self.listeners.load(Relaxed),
            self.hls.load(Relaxed),
            self.source_runs.load(Relaxed),
            self.titles.load(Relaxed),
            self.garbage.load(Relaxed),
            self.errors.load(Relaxed)
        )
    }
}

/// A pseudo-random sequence (xorshift), so a run needs no crate and repeats itself.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn pause(stop: &AtomicBool, d: Duration) {
    let end = Instant::now() + d;
    while !stop.load(Relaxed) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50).min(end - Instant::now()));
    }
}

/// An encoder on `/live`: pushes the MP3 fixture in real time for 8–20 s, hangs up, comes
/// back 5–15 s later.
fn source_client(addr: SocketAddr, stop: &AtomicBool, c: &Counts) {
    let mp3 = std::fs::read(fixture("tone-128k-44k1.mp3")).unwrap();
    let frames = mp3_frames(&mp3);
    let mut rng = Rng(7);
    while !stop.load(Relaxed) {
        let Ok(mut conn) = TcpStream::connect(addr) else {
            pause(stop, Duration::from_secs(1));
            continue;
        };
        let head = format!(
            "PUT /live HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nContent-Type: audio/mpeg\r\n\
             Ice-Name: soak\r\n\r\n",
            basic("source", SOURCE_PW)
        );
        c.source_runs.fetch_add(1, Relaxed);
        if conn.write_all(head.as_bytes()).is_err() {
            c.errors.fetch_add(1, Relaxed);
            continue;
        }
        let run = Duration::from_secs(8 + rng.below(13));
        let began = Instant::now();
        let mut sent = Duration::ZERO;
        'run: while !stop.load(Relaxed) && began.elapsed() < run {
            for &(at, len) in &frames {
                // 1152 samples at 44.1 kHz: 26.1 ms a frame.
                sent += Duration::from_micros(26_122);
                if let Some(wait) = sent.checked_sub(began.elapsed()) {
                    std::thread::sleep(wait);
                }
                if conn.write_all(&mp3[at..at + len]).is_err() {
                    c.errors.fetch_add(1, Relaxed);
                    break 'run;
                }
                if stop.load(Relaxed) || began.elapsed() >= run {
                    break 'run;
                }
            }
        }
        drop(conn);
        pause(stop, Duration::from_secs(5 + rng.below(11)));
    }
}

/// Listeners that come and go: a mount at random, a few KB, gone (some without reading).
fn churn(addr: SocketAddr, stop: &AtomicBool, c: &Counts) {
    let mut rng = Rng(0x5eed ^ u64::from(std::process::id()));
    let paths = [
        "/linked",
        "/live",
        "/list",
        "/extra",
        "/list.m3u",
        "/status-json.xsl",
    ];
    while !stop.load(Relaxed) {
        let path = paths[rng.below(paths.len() as u64) as usize];
        if let Ok(mut conn) = TcpStream::connect(addr) {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
            let req = format!("GET {path} HTTP/1.1\r\nHost: soak\r\nUser-Agent: churn\r\n\r\n");
            if conn.write_all(req.as_bytes()).is_ok() && rng.below(4) != 0 {
                let want = rng.below(16 * 1024) as usize;
                let mut got = 0;
                let mut buf = [0u8; 4096];
                while got < want {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got += n,
                    }
                }
            }
            c.listeners.fetch_add(1, Relaxed);
        }
        pause(stop, Duration::from_millis(100 + rng.below(150)));
    }
}

/// An HLS player: the playlist every 2 s, each new segment once.
fn hls_client(addr: SocketAddr, stop: &AtomicBool, c: &Counts) {
    let mut seen: Vec<String> = Vec::new();
    while !stop.load(Relaxed) {
        let (status, body) = get(addr, "/list/hls/index.m3u8");
        c.hls.fetch_add(1, Relaxed);
        if status == 200 {
            for seg in body
                .lines()
                .filter(|l| !l.starts_with('#') && !l.is_empty())
            {
                if seen.iter().any(|s| s == seg) {
                    continue;
                }
                let path = if seg.starts_with('/') {
                    seg.to_string()
                } else {
                    format!("/list/hls/{seg}")
                };
                let (st, _) = get(addr, &path);
                c.hls.fetch_add(1, Relaxed);
                if st != 200 {
                    c.errors.fetch_add(1, Relaxed);
                }
                seen.push(seg.to_string());
                if seen.len() > 64 {
                    seen.remove(0);
                }
            }
        } else if status != 503 {
            c.errors.fetch_add(1, Relaxed);
        }
        pause(stop, Duration::from_secs(2));
    }
}

/// A title update on `/list` every 5 s.
fn titles(addr: SocketAddr, stop: &AtomicBool, c: &Counts) {
    let mut n = 0u64;
    while !stop.load(Relaxed) {
        n += 1;
        let path = format!("/admin/metadata?mount=/list&mode=updinfo&song=Soak%20{n}");
        let raw = format!(
            "GET {path} HTTP/1.1\r\nHost: soak\r\nAuthorization: {}\r\n\r\n",
            basic("admin", ADMIN)
        );
        let mut l = Listener::request(addr, &raw);
        l.read_to_eof(Duration::from_secs(5));
        if l.status != 200 {
            c.errors.fetch_add(1, Relaxed);
        }
        c.titles.fetch_add(1, Relaxed);
        pause(stop, Duration::from_secs(5));
    }
}

/// Garbage: random bytes, a head that never ends, an absurd request line, a half request.
fn garbage(addr: SocketAddr, stop: &AtomicBool, c: &Counts) {
    let mut rng = Rng(99);
    let mut slow: Vec<(TcpStream, Instant)> = Vec::new();
    while !stop.load(Relaxed) {
        if let Ok(mut conn) = TcpStream::connect(addr) {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
            let junk: Vec<u8> = match rng.below(4) {
                0 => (0..rng.below(3000) + 1).map(|_| rng.next() as u8).collect(),
                1 => b"GET /"
                    .iter()
                    .copied()
                    .chain(std::iter::repeat_n(b'a', 20_000))
                    .collect(),
                2 => b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec(),
                _ => b"GET /live HTTP/1.1\r\nHost: x\r\nX-Long: ".to_vec(),
            };
            let _ = conn.write_all(&junk);
            if junk.ends_with(b": ") && slow.len() < 8 {
                // Held open until `-header-timeout` ends it.
                slow.push((conn, Instant::now()));
            } else {
                let mut buf = [0u8; 1024];
                let _ = conn.read(&mut buf);
            }
            c.garbage.fetch_add(1, Relaxed);
        }
        slow.retain(|(_, t)| t.elapsed() < Duration::from_secs(30));
        pause(stop, Duration::from_millis(300 + rng.below(700)));
    }
}

/// The link's path goes away for 2 s every 20 s, blackholed and reset by turns.
fn dropouts(proxy: &FaultProxy, stop: &AtomicBool) {
    let mut n = 0u64;
    while !stop.load(Relaxed) {
        pause(stop, Duration::from_secs(18));
        if stop.load(Relaxed) {
            break;
        }
        n += 1;
        proxy.set(if n % 2 == 0 {
            Mode::Reset
        } else {
            Mode::Blackhole
        });
        pause(stop, Duration::from_secs(2));
        proxy.set(Mode::Pass);
    }
}

/// One short request: (status, body as text).
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut l = Listener::get(addr, path, 1);
    l.read_to_eof(Duration::from_secs(5));
    (l.status, String::from_utf8_lossy(&l.body).into_owned())
}

// ------------------------------------------------------------------------ /proc ----

struct Sample {
    name: &'static str,
    rss_kb: u64,
    fds: usize,
    threads: u64,
}

fn sample(pids: &[(&'static str, u32)]) -> Vec<Sample> {
    pids.iter()
        .map(|&(name, pid)| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let field = |k: &str| {
                status
                    .lines()
                    .find(|l| l.starts_with(k))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            };
            Sample {
                name,
                rss_kb: field("VmRSS:"),
                threads: field("Threads:"),
                fds: std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count()),
            }
        })
        .collect()
}

fn print_sample(when: &str, s: &[Sample]) {
    let parts: Vec<String> = s
        .iter()
        .map(|x| {
            format!(
                "{}: RSS {} kB, {} descriptors, {} threads",
                x.name, x.rss_kb, x.fds, x.threads
            )
        })
        .collect();
    println!("{when:>7}  {}", parts.join("; "));
}
