//! The accept loop (`http-accept`) and each connection's thread (`tx-N`).
//!
//! It must never die: running out of file descriptors or threads is logged (rate-limited)
//! and backed off, connections beyond the cap are refused at once, and each connection's
//! request head must arrive within `-header-timeout` in at most 8 KiB.

use super::{admin, status};
use crate::config::Config;
use crate::http::server::{self as http, HeadError};
use crate::input::push;
use crate::limited;
use crate::server::peers::Pending;
use crate::sink::listener;
use crate::stream::stats::Stats;
use crate::stream::Shared;
use crate::util::backoff::Backoff;
use crate::util::ratelimit::RateLimit;
use log::{debug, info};
use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// Stack of a connection thread. It holds a request head parse and a few small buffers;
/// everything large is on the heap. Only touched pages count towards RSS.
pub const CONN_STACK: usize = 128 * 1024;
/// Connections allowed beyond `-max-clients` (requests still being read, refusals).
const EXTRA_CONNECTIONS: usize = 64;

static ACCEPT_LOG: RateLimit = RateLimit::new(Duration::from_secs(5));
static REFUSE_LOG: RateLimit = RateLimit::new(Duration::from_secs(5));
static SPAWN_LOG: RateLimit = RateLimit::new(Duration::from_secs(5));
static BAD_LOG: RateLimit = RateLimit::new(Duration::from_secs(5));
static PENDING_LOG: RateLimit = RateLimit::new(Duration::from_secs(5));

/// Which port an accept loop serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// The HTTP port: listeners, admin, sources, the link. The watchdog watches its loop.
    Http,
    /// SHOUTcast v1 sources on the HTTP port + 1.
    SourceV1,
}

impl Port {
    /// Connection threads are named `{prefix}-N`.
    fn thread_prefix(self) -> &'static str {
        match self {
            Port::Http => "tx",
            Port::SourceV1 => "sc",
        }
    }
}

/// What a connection thread does with its connection. `Pending` counts it against its
/// address's `-max-pending-per-ip` until the handler has read the request (or drops it).
pub type Handler = fn(TcpStream, SocketAddr, Pending, &Config, &Shared);

/// Accepts on `sock` until shutdown; each connection gets a thread named for its `port` running
/// `handler` (HTTP: [`handle_http`]; SHOUTcast v1 sources on port+1).
pub fn run(sock: TcpListener, cfg: Arc<Config>, shared: Arc<Shared>, port: Port, handler: Handler) {
    let open = Arc::new(AtomicUsize::new(0));
    let cap = cfg.max_clients.saturating_add(EXTRA_CONNECTIONS);
    let mut backoff = Backoff::new(Duration::from_millis(10), Duration::from_secs(1));
    let mut next_id: u64 = 0;
    loop {
        let (conn, peer) = match sock.accept() {
            Ok(c) => c,
            Err(_) if shared.shutdown.is_set() => break,
            Err(e) => {
                if is_resource_error(&e) {
                    let d = backoff.next_delay();
                    limited!(
                        ACCEPT_LOG,
                        error,
                        "accept: {e}: backing off (raise LimitNOFILE / ulimit -n)"
                    );
                    shared.shutdown.sleep(d);
                } else {
                    debug!("accept: {e}");
                }
                continue;
            }
        };
        backoff.reset();
        if shared.shutdown.is_set() {
            break;
        }
        if open.load(Ordering::Relaxed) >= cap {
            Stats::add(&shared.stats.connections_refused, 1);
            limited!(REFUSE_LOG, warn, "{peer}: refused, {cap} connections open");
            refuse(conn);
            continue;
        }
        // One address cannot hold every slot with requests it never finishes.
        let Some(pending) = shared.peers.admit(peer.ip()) else {
            Stats::add(&shared.stats.connections_refused, 1);
            limited!(
                PENDING_LOG,
                warn,
                "{}: refused, {} connections from it have not finished their request \
                 (-max-pending-per-ip)",
                peer.ip(),
                cfg.max_pending_per_ip
            );
            refuse(conn);
            continue;
        };
        next_id = next_id.wrapping_add(1);
        let guard = ConnGuard::new(&open);
        let (cfg2, shared2) = (Arc::clone(&cfg), Arc::clone(&shared));
        let spawned = thread::Builder::new()
            .name(format!("{}-{next_id}", port.thread_prefix()))
            .stack_size(CONN_STACK)
            .spawn(move || {
                let _guard = guard;
                handler(conn, peer, pending, &cfg2, &shared2);
            });
        if let Err(e) = spawned {
            // The closure (with the socket and guard) is dropped: the connection closes.
            limited!(SPAWN_LOG, error, "{peer}: cannot start a thread: {e}");
            shared.shutdown.sleep(backoff.next_delay());
        }
    }
    if port == Port::Http {
        shared.accepting.store(false, Ordering::Relaxed);
    }
    info!("no longer accepting connections");
}

/// Too many connections: a best-effort 503 without blocking the accept loop.
fn refuse(conn: TcpStream) {
    let _ = conn.set_nonblocking(true);
    let _ = (&conn).write_all(http::head::<&str>(0, 503, "text/plain", &[]).as_bytes());
}

fn is_resource_error(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// One connection: read the request, route it.
pub fn handle_http(
    mut conn: TcpStream,
    peer: SocketAddr,
    mut pending: Pending,
    cfg: &Config,
    shared: &Shared,
) {
    let _ = conn.set_nodelay(true);
    let _ = conn.set_write_timeout(Some(cfg.write_timeout));
    let req = match http::read_request(&mut conn, cfg.header_timeout) {
        Ok(r) => {
            pending.done();
            r
        }
        Err(e) => {
            let (status, what) = match e {
                HeadError::Closed => return debug!("{peer}: closed before a request"),
                HeadError::Io(e) => return debug!("{peer}: {e}"),
                HeadError::Timeout => (408, "no request within -header-timeout".to_string()),
                HeadError::TooLarge => (
                    431,
                    format!("request head larger than {} bytes", http::MAX_HEAD),
                ),
                HeadError::Malformed(m) => (400, format!("malformed request: {m}")),
            };
            Stats::add(&shared.stats.bad_requests, 1);
            limited!(BAD_LOG, warn, "{peer}: {what}");
            http::respond(&mut conn, 0, status, &what, &[]);
            return;
        }
    };
    let path = super::admin::path_only(&req.path);
    match (req.method.as_str(), path) {
        ("GET" | "HEAD", "/status-json.xsl") => status::status_json(&mut conn, &req, shared),
        ("GET" | "HEAD", "/metrics") => {
            if cfg.admin_password.is_none() || admin::require(&mut conn, peer, &req, cfg, shared) {
                status::metrics(&mut conn, &req, cfg, shared);
            }
        }
        ("GET", "/admin/metadata" | "/admin/metadata.xsl") => {
            admin::metadata(conn, peer, &req, cfg, shared)
        }
        ("GET", "/admin.cgi") => admin::shoutcast(conn, peer, &req, cfg, shared),
        ("GET", crate::link::PATH_CHALLENGE) if shared.link.is_some() => {
            // unwrap ok: checked in the guard.
            crate::link::origin::challenge(&mut conn, &req, shared.link.as_ref().unwrap())
        }
        ("GET", crate::link::PATH_PULL) if shared.link.is_some() => {
            crate::link::origin::serve_pull(conn, peer, &req, shared)
        }
        ("POST", crate::link::PATH_PUSH) if cfg.link.as_ref().is_some_and(|l| l.receive) => {
            crate::link::receiver::serve_push(conn, peer, &req, shared)
        }
        // libshout opens with `OPTIONS *` and picks its method from `Allow` (Icecast 2.5
        // answers the same way); browsers' CORS preflights land here too.
        ("OPTIONS", _) => {
            let allow = if cfg.source_password.is_some() {
                "GET, HEAD, OPTIONS, PUT, SOURCE"
            } else {
                "GET, HEAD, OPTIONS"
            };
            http::respond(&mut conn, req.minor, 200, "", &[("Allow", allow)]);
        }
        ("GET" | "HEAD", _) => listener::serve(conn, peer, &req, cfg, shared),
        ("PUT" | "SOURCE", _) if cfg.source_password.is_some() => {
            push::serve_source(conn, peer, &req, cfg, shared)
        }
        (other, _) => {
            Stats::add(&shared.stats.bad_requests, 1);
            limited!(BAD_LOG, warn, "{peer}: method {other} not allowed");
            http::respond(
                &mut conn,
                req.minor,
                405,
                "only GET and HEAD",
                &[("Allow", "GET, HEAD")],
            );
        }
    }
}

/// Counts an open connection for as long as it lives.
struct ConnGuard(Arc<AtomicUsize>);

impl ConnGuard {
    fn new(open: &Arc<AtomicUsize>) -> ConnGuard {
        open.fetch_add(1, Ordering::Relaxed);
        ConnGuard(Arc::clone(open))
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
