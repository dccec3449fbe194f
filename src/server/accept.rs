//! The accept loop (`http-accept`) and each connection's thread (`tx-N`).
//!
//! It must never die: running out of file descriptors or threads is logged (rate-limited)
//! and backed off, connections beyond the cap are refused at once, and each connection's
//! request head must arrive within `-header-timeout` in at most 8 KiB.

use super::Server;
use crate::http::server as http;
use crate::limited;
use crate::server::peers::Pending;
use crate::stream::stats::Stats;
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
static PENDING_LOG: RateLimit = RateLimit::new(Duration::from_secs(5));

/// Which port an accept loop serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// The HTTP port: listeners, admin, sources, the link. The watchdog watches its loop.
    Http,
    /// The HTTPS port: what the HTTP port serves, over TLS.
    Https,
    /// `-source-address`: what the HTTP port serves, and source clients.
    Source,
    /// SHOUTcast v1 sources on the source port + 1.
    SourceV1,
}

impl Port {
    /// Connection threads are named `{prefix}-N`.
    fn thread_prefix(self) -> &'static str {
        match self {
            Port::Http => "tx",
            Port::Https => "tls",
            Port::Source => "in",
            Port::SourceV1 => "sc",
        }
    }
}

/// What a connection thread does with its connection. `Pending` counts it against its
/// address's `-max-pending-per-ip` until the handler has read the request (or drops it).
pub type Handler = fn(TcpStream, SocketAddr, Pending, &Server);

/// Accepts on `sock` until shutdown; each connection gets a thread named for its `port` running
/// `handler` (HTTP: `route::handle_http`; SHOUTcast v1 sources on port+1).
pub fn run(sock: TcpListener, server: Arc<Server>, port: Port, handler: Handler) {
    let open = Arc::new(AtomicUsize::new(0));
    let cap = server.cfg.max_clients.saturating_add(EXTRA_CONNECTIONS);
    let mut backoff = Backoff::new(Duration::from_millis(10), Duration::from_secs(1));
    let mut next_id: u64 = 0;
    loop {
        let (conn, peer) = match sock.accept() {
            Ok(c) => c,
            Err(_) if server.shutdown.is_set() => break,
            Err(e) => {
                if is_resource_error(&e) {
                    let d = backoff.next_delay();
                    limited!(
                        ACCEPT_LOG,
                        error,
                        "accept: {e}: backing off (raise LimitNOFILE / ulimit -n)"
                    );
                    server.shutdown.sleep(d);
                } else {
                    debug!("accept: {e}");
                }
                continue;
            }
        };
        backoff.reset();
        if server.shutdown.is_set() {
            break;
        }
        if open.load(Ordering::Relaxed) >= cap {
            Stats::add(&server.stats.connections_refused, 1);
            limited!(REFUSE_LOG, warn, "{peer}: refused, {cap} connections open");
            refuse(conn);
            continue;
        }
        // One address cannot hold every slot with requests it never finishes. A trusted
        // proxy carries many clients' requests: only its slow ones are capped.
        let proxy = server
            .cfg
            .trusted_proxies
            .iter()
            .any(|c| c.contains(peer.ip()));
        let pending = match server.peers.admit(peer.ip(), proxy) {
            Ok(p) => p,
            Err(limit) => {
                Stats::add(&server.stats.connections_refused, 1);
                limited!(
                    PENDING_LOG,
                    warn,
                    "{}: refused, too many of its connections have not sent their request \
                     ({limit})",
                    peer.ip()
                );
                refuse(conn);
                continue;
            }
        };
        next_id = next_id.wrapping_add(1);
        let guard = ConnGuard::new(&open);
        let server2 = Arc::clone(&server);
        let spawned = thread::Builder::new()
            .name(format!("{}-{next_id}", port.thread_prefix()))
            .stack_size(CONN_STACK)
            .spawn(move || {
                let _guard = guard;
                handler(conn, peer, pending, &server2);
            });
        if let Err(e) = spawned {
            // The closure (with the socket and guard) is dropped: the connection closes.
            limited!(SPAWN_LOG, error, "{peer}: cannot start a thread: {e}");
            server.shutdown.sleep(backoff.next_delay());
        }
    }
    if port == Port::Http {
        server.accepting.store(false, Ordering::Relaxed);
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
