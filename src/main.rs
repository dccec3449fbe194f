//! ringcast: parse the flags, build the config, start the threads, wait, exit.
//! `main` is the only place that exits the process.
//!
//! Threads: `signals` (sigwait), `src-read` (the source), `src-stderr` (an -exec child's
//! stderr), `http-accept`, one `tx-N` per connection, `stats` (with -stat-log-interval),
//! `watchdog` (under systemd with `WatchdogSec=`).

mod cli;
mod config;
mod frame;
mod http;
mod icy;
mod input;
mod link;
mod os;
mod ring;
mod server;
mod sink;
mod stream;
mod util;

use config::Config;
use log::{error, info, warn};
use server::accept::Port;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::sync::Arc;
use std::thread;
use std::time::Duration;
use stream::Shared;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let argv = match cli::flagsfile::expand(&argv, |p| std::fs::read_to_string(p)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("ringcast: {e}");
            return ExitCode::from(1);
        }
    };
    let (args, command) = match cli::parse(&argv) {
        cli::Parsed::Run { args, command } => (args, command),
        cli::Parsed::Help(text) => {
            println!("{text}");
            return ExitCode::SUCCESS;
        }
        cli::Parsed::Usage(text) => {
            eprintln!("ringcast: {text}");
            return ExitCode::from(2);
        }
    };
    let cfg = match Config::from_args(&args, &command) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!("ringcast: {e}");
            return ExitCode::from(1);
        }
    };
    init_logging(cfg.log_level);
    http::tls::init(cfg.tls_ca.as_deref());
    match run(cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            ExitCode::from(1)
        }
    }
}

fn init_logging(level: log::LevelFilter) {
    let mut b = simplelog::ConfigBuilder::new();
    b.set_thread_level(log::LevelFilter::Error)
        .set_thread_mode(simplelog::ThreadLogMode::Names)
        .set_thread_padding(simplelog::ThreadPadding::Right(10))
        .set_target_level(log::LevelFilter::Off)
        .set_location_level(log::LevelFilter::Off);
    // journald stamps every line itself; a terminal gets our own time.
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        b.set_time_level(log::LevelFilter::Off);
    } else {
        b.set_time_format_rfc3339();
    }
    let _ = simplelog::WriteLogger::init(level, b.build(), std::io::stderr());
}

fn run(cfg: Arc<Config>) -> Result<(), String> {
    os::sys::block_signals().map_err(|e| format!("cannot block signals: {e}"))?;
    os::sys::limit_malloc_arenas();
    if let Some(n) = cfg.cpu_max {
        let cpus = os::sys::limit_cpus(n).map_err(|e| format!("-cpu-max: {e}"))?;
        info!("-cpu-max {n}: running on CPU(s) {cpus:?}");
    }
    match os::sys::raise_nofile_limit() {
        Ok(limit) if usize::try_from(limit).unwrap_or(usize::MAX) < cfg.max_clients + 100 => warn!(
            "open-files limit {limit} is below -max-clients {} + 100: raise LimitNOFILE",
            cfg.max_clients
        ),
        Ok(_) => {}
        Err(e) => warn!("cannot read the open-files limit: {e}"),
    }

    let sock = TcpListener::bind(cfg.address)
        .map_err(|e| format!("cannot listen on {}: {e}", cfg.address))?;
    let local = sock.local_addr().map_err(|e| e.to_string())?;
    if let Some(uid) = cfg.uid {
        os::sys::set_uid(uid).map_err(|e| format!("-uid {uid}: {e}"))?;
        info!("running as uid {uid}");
    }
    info!("listening on {local}");
    info!(
        "source: {} ({} frames of up to {} bytes, ring of {})",
        cfg.input_name(),
        cfg.framer.name,
        cfg.frame_bytes,
        cfg.source_buffer
    );

    // Nonces, epochs and jitter need the CSPRNG: find out now, not at the first handshake.
    util::random::u64().map_err(|e| format!("cannot start: {e}"))?;
    let shared = Arc::new(Shared::new(&cfg).map_err(|e| format!("cannot start: {e}"))?);
    let sh = Arc::clone(&shared);
    spawn("signals", move || {
        let sig = os::sys::wait_signal();
        sh.shutdown
            .trigger(format!("{} received", os::sys::signal_name(sig)));
    })?;
    let (c, sh) = (Arc::clone(&cfg), Arc::clone(&shared));
    let reader = if link::is_receiver(&cfg) {
        // The link is the source: the player fills the ring, a dialler feeds the player.
        if cfg.link.as_ref().is_some_and(|l| l.pull.is_some()) {
            let (c, sh) = (Arc::clone(&cfg), Arc::clone(&shared));
            spawn("link-pull", move || link::receiver::run_pull(&c, &sh))?;
        }
        spawn("link-play", move || link::receiver::run_play(&c, &sh))?
    } else {
        spawn("src-read", move || input::supervisor::run(c, sh))?
    };
    if cfg.link.as_ref().is_some_and(|l| l.push.is_some()) {
        let (c, sh) = (Arc::clone(&cfg), Arc::clone(&shared));
        spawn("link-push", move || link::origin::run_push(&c, &sh))?;
    }
    let sock_fd = sock.as_raw_fd();
    let (c, sh) = (Arc::clone(&cfg), Arc::clone(&shared));
    let accept = spawn("http-accept", move || {
        server::accept::run(sock, c, sh, Port::Http, server::accept::handle_http)
    })?;
    // SHOUTcast v1 source clients connect to the next port, as SHOUTcast's DNAS has it.
    let mut shoutcast = None;
    if matches!(cfg.input, config::InputSpec::Push { .. }) {
        let sc_addr = std::net::SocketAddr::new(local.ip(), local.port().wrapping_add(1));
        match TcpListener::bind(sc_addr) {
            Ok(sc) => {
                info!("SHOUTcast v1 sources on {sc_addr}");
                let fd = sc.as_raw_fd();
                let (c, sh) = (Arc::clone(&cfg), Arc::clone(&shared));
                let h = spawn("sc-accept", move || {
                    server::accept::run(sc, c, sh, Port::SourceV1, input::push::serve_shoutcast)
                })?;
                shoutcast = Some((fd, h));
            }
            Err(e) => warn!("SHOUTcast v1 sources: cannot listen on {sc_addr}: {e}"),
        }
    }
    if cfg.icecast.is_some() {
        let (c, sh) = (Arc::clone(&cfg), Arc::clone(&shared));
        spawn("out-icecast", move || sink::icecast::run(&c, &sh))?;
    }
    if let Some(every) = cfg.stat_log_interval {
        let sh = Arc::clone(&shared);
        spawn("stats", move || {
            while !sh.shutdown.sleep(every) {
                info!("stats: {}", sh.stats.line(sh.listeners()));
            }
        })?;
    }

    let notifier = os::notify::Notifier::from_env().map(Arc::new);
    if let Some(n) = &notifier {
        n.send(&format!("READY=1\nSTATUS={}", shared.status_line()));
        if let Some(every) = os::notify::watchdog_interval() {
            let (n, sh) = (Arc::clone(n), Arc::clone(&shared));
            spawn("watchdog", move || watchdog(&n, &sh, every))?;
        }
    }

    let reason = shared.shutdown.wait();
    info!("stopping: {reason}");
    if let Some(n) = &notifier {
        n.send(&format!("STOPPING=1\nSTATUS=stopping: {reason}"));
    }
    // Stop accepting; the accept thread sees the error and the flag and returns.
    os::sys::shutdown_read(sock_fd);
    let _ = accept.join();
    if let Some((fd, h)) = shoutcast {
        os::sys::shutdown_read(fd);
        let _ = h.join();
    }
    // The reader stops its input (and child) within one read slice, then ends the ring.
    // A FIFO with no writer can hold it in open(); do not wait for that forever.
    let stopped = join_within(reader, Duration::from_secs(6));
    if !stopped {
        warn!("the source is stuck (a FIFO waiting for a writer?): leaving it");
        shared.ring.end();
    }
    // Listeners drain what they have and close cleanly; a stuck one is bounded by
    // -write-timeout.
    let drain = cfg.write_timeout + Duration::from_secs(2);
    if !shared.wait_listeners(drain, |n| n == 0) {
        warn!(
            "{} listener(s) still connected after {drain:?}: closing",
            shared.listeners()
        );
    }
    info!("stats: {}", shared.stats.line(shared.listeners()));
    Ok(())
}

/// Tells systemd all is well while it is: the source reader beats and the accept loop runs.
/// When either is stuck, the pings stop and systemd restarts the service.
fn watchdog(n: &os::notify::Notifier, shared: &Shared, every: Duration) {
    while !shared.shutdown.sleep(every) {
        let reader = shared.reader_beat.alive();
        let accepting = shared.accepting.load(std::sync::atomic::Ordering::Relaxed);
        if reader && accepting {
            n.send(&format!("WATCHDOG=1\nSTATUS={}", shared.status_line()));
        } else {
            error!("not pinging the systemd watchdog: source reader alive={reader}, accepting={accepting}");
        }
    }
}

fn spawn<F: FnOnce() + Send + 'static>(name: &str, f: F) -> Result<thread::JoinHandle<()>, String> {
    thread::Builder::new()
        .name(name.into())
        .stack_size(256 * 1024)
        .spawn(f)
        .map_err(|e| format!("cannot start thread {name}: {e}"))
}

/// Joins `h` if it finishes within `d`.
fn join_within(h: thread::JoinHandle<()>, d: Duration) -> bool {
    let deadline = std::time::Instant::now() + d;
    while !h.is_finished() {
        if std::time::Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
    let _ = h.join();
    true
}
