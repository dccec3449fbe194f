//! ringcast: parse the flags, build the config, start the threads, wait, exit.
//! `main` is the only place that exits the process.
//!
//! Threads: `signals` (sigwait), per stream `src-read` (its source; `src-read/live` with
//! mounts), `src-stderr` (an -exec child's stderr) and its outputs, `http-accept`, one
//! `tx-N` per connection, `stats` (with -stat-log-interval), `watchdog` (under systemd with
//! `WatchdogSec=`).

mod cli;
mod config;
mod error;
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

use crate::error::Error;
use config::{Failed, Setup};
use log::{error, info, warn};
use server::mounts::{spawn, Streams};
use server::Server;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let setup = match config::load(&argv, &|p| std::fs::read_to_string(p)) {
        Ok(s) => s,
        Err(Failed::Help(text)) => {
            println!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(Failed::Usage(text)) => {
            eprintln!("ringcast: {text}");
            return ExitCode::from(2);
        }
        Err(Failed::Invalid(text)) => {
            eprintln!("ringcast: {text}");
            return ExitCode::from(1);
        }
    };
    if setup.server.version {
        println!("ringcast {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    if setup.server.hash_password {
        return hash_password();
    }
    // Before any thread exists: a listener's thread would otherwise keep freed memory.
    let reexec_failed = os::memory::reexec_for_malloc();
    init_logging(setup.server.log_level);
    if let Some(e) = reexec_failed {
        warn!(
            "cannot restart with {}: {e} (each listener keeps ~2 KB more)",
            os::memory::MALLOC_TUNABLES
        );
    }
    http::tls::init(setup.server.tls_ca.as_deref());
    match run(setup, argv) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            ExitCode::from(1)
        }
    }
}

/// A ringcast flag typed after `-exec`'s command is the command's argument (Go's rule, and
/// streamserve's): say so at start, naming it, rather than let the command fail in a loop.
fn warn_flags_after_exec(setup: &Setup) {
    for m in &setup.streams {
        if let config::InputSpec::Exec { program, args } = &m.cfg.input {
            for flag in args.iter().filter_map(|a| cli::flags::written_as_flag(a)) {
                warn!(
                    "-exec: -{flag} comes after the command, so {} gets it as an argument, not \
                     ringcast: put ringcast's flags before the command",
                    program.display()
                );
            }
        }
    }
}

/// `-hash-password`: one line from stdin (the password), its hash on stdout, for a
/// `-listener-users` line `name:HASH`.
fn hash_password() -> ExitCode {
    let mut line = String::new();
    if let Err(e) = std::io::stdin().read_line(&mut line) {
        eprintln!("ringcast: -hash-password: cannot read stdin: {e}");
        return ExitCode::from(1);
    }
    let password = line.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        eprintln!("ringcast: -hash-password: give the password on stdin (an empty one is refused)");
        return ExitCode::from(1);
    }
    match util::password::Hash::new(password) {
        Ok(h) => {
            println!("{h}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ringcast: -hash-password: {e}");
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

fn run(setup: Setup, argv: Vec<String>) -> Result<(), Error> {
    let cfg = &setup.server;
    os::sys::block_signals().map_err(|e| format!("cannot block signals: {e}"))?;
    os::memory::limit_malloc_arenas();
    if let Some(n) = cfg.cpu_max {
        let cpus = os::sys::limit_cpus(n).map_err(|e| format!("-cpu-max: {e}"))?;
        info!("-cpu-max {n}: running on CPU(s) {cpus:?}");
    }
    check_nofile_limit(cfg.max_clients);

    warn_flags_after_exec(&setup);
    let takes_sources = setup
        .streams
        .iter()
        .any(|m| m.cfg.source_password.is_some());
    let ports = server::ports::bind(cfg, takes_sources)?;
    if let Some(uid) = cfg.uid {
        os::sys::set_uid(uid).map_err(|e| format!("-uid {uid}: {e}"))?;
        info!("running as uid {uid}");
    }

    // Nonces, epochs and jitter need the CSPRNG: find out now, not at the first handshake.
    util::random::u64().map_err(|e| format!("cannot start: {e}"))?;
    let server = Arc::new(Server::new(setup.server)?);
    let streams = Arc::new(Streams::default());
    streams.start_all(&server, setup.streams)?;
    let (sv, st) = (Arc::clone(&server), Arc::clone(&streams));
    spawn("signals", move || signals(&sv, &st, &argv))?;
    let accepting = ports.start(&server)?;
    if let Some(every) = server.cfg.stat_log_interval {
        let sv = Arc::clone(&server);
        spawn("stats", move || {
            while !sv.shutdown.sleep(every) {
                log_stats(&sv);
            }
        })?;
    }

    let notifier = os::notify::Notifier::from_env().map(Arc::new);
    if let Some(n) = &notifier {
        n.send(&format!("READY=1\nSTATUS={}", status_line(&server)));
        if let Some(every) = os::notify::watchdog_interval() {
            let (n, sv, st) = (Arc::clone(n), Arc::clone(&server), Arc::clone(&streams));
            spawn("watchdog", move || watchdog(&n, &sv, &st, every))?;
        }
    }

    let reason = server.shutdown.wait();
    info!("stopping: {reason}");
    if let Some(n) = &notifier {
        n.send(&format!("STOPPING=1\nSTATUS=stopping: {reason}"));
    }
    // Stop accepting; the accept threads see the error and the flag and return.
    accepting.stop();
    // Each reader stops its input (and child) within one read slice, then ends its ring.
    let live = server.streams();
    streams.stop_all(&reason);
    drain_listeners(&server, &live);
    log_stats(&server);
    // The one stream's source failing with -reopen=false is an error (a missing file).
    if reason.starts_with(input::supervisor::FAILED_PREFIX) {
        return Err(reason.into());
    }
    Ok(())
}

/// Raises the open-files limit as far as allowed, and warns when it is still too low for
/// `-max-clients` listeners (each is a socket) and some files besides.
fn check_nofile_limit(max_clients: usize) {
    match os::sys::raise_nofile_limit() {
        Ok(limit) if usize::try_from(limit).unwrap_or(usize::MAX) < max_clients + 100 => warn!(
            "open-files limit {limit} is below -max-clients {max_clients} + 100: raise LimitNOFILE"
        ),
        Ok(_) => {}
        Err(e) => warn!("cannot read the open-files limit: {e}"),
    }
}

/// Waits for the listeners of the `live` streams to drain what they have and close cleanly;
/// a stuck one is bounded by -write-timeout.
fn drain_listeners(server: &Server, live: &[Arc<stream::Stream>]) {
    let drain = Instant::now() + server.cfg.write_timeout + Duration::from_secs(2);
    for s in live {
        let left = drain.saturating_duration_since(Instant::now());
        if !s.wait_listeners(left, |n| n == 0) {
            warn!(
                "{} listener(s) still connected after the drain: closing",
                server.listeners()
            );
            break;
        }
    }
}

/// `SIGTERM`/`SIGINT` stop the server. `SIGHUP` (`systemctl reload`) re-reads what there
/// is to re-read and never stops it: the flags and their files (a stream whose flags changed
/// restarts, the others play on), the certificate (`-tls-cert`), the logins
/// (`-listener-users`). streamserve died of SIGHUP only because Go's default does; this is
/// the one deliberate difference (README, streamserve compatibility).
fn signals(server: &Arc<Server>, streams: &Streams, argv: &[String]) {
    loop {
        let sig = os::sys::wait_signal();
        if sig == libc::SIGHUP {
            info!("SIGHUP received: reloading");
            server.reload_files();
            streams.reload(server, argv);
            continue;
        }
        server
            .shutdown
            .trigger(format!("{} received", os::sys::signal_name(sig)));
        return;
    }
}

/// The statistics lines: one per stream.
fn log_stats(server: &Server) {
    for s in server.streams() {
        let line = s.stats.line(s.listeners(), &server.stats);
        if server.cfg.mounted {
            info!("stats {}: {line}", s.mount());
        } else {
            info!("stats: {line}");
        }
    }
}

/// A one-line summary for systemd's STATUS.
fn status_line(server: &Server) -> String {
    let streams = server.streams();
    match streams.as_slice() {
        [one] if !server.cfg.mounted => one.status_line(),
        all => format!(
            "{} mount(s), {} on air; {} listener(s)",
            all.len(),
            all.iter().filter(|s| s.on_air()).count(),
            server.listeners()
        ),
    }
}

/// Tells systemd all is well while it is: every stream's reader beats and the accept loop
/// runs. When either is stuck, the pings stop and systemd restarts the service.
fn watchdog(n: &os::notify::Notifier, server: &Server, streams: &Streams, every: Duration) {
    while !server.shutdown.sleep(every) {
        let readers = streams.alive();
        let accepting = server.accepting.load(std::sync::atomic::Ordering::Relaxed);
        if readers && accepting {
            n.send(&format!("WATCHDOG=1\nSTATUS={}", status_line(server)));
        } else {
            error!("not pinging the systemd watchdog: source readers alive={readers}, accepting={accepting}");
        }
    }
}
