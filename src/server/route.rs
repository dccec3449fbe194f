//! One HTTP connection: read its request, then hand it to what its method and path name —
//! the server's own pages (status, metrics, admin calls) or a stream (its listeners, its
//! source client, its link).

use super::access_log::Entry;
use super::keepalive::KeepAlive;
use super::listener::{self, Listening};
use super::{
    admin, cors, hls, listeners_admin, metrics, page, played, playlist_files, source_client,
    status, users, Server,
};
use crate::http::conn::Conn;
use crate::http::server::{self as http, HeadError, Request};
use crate::limited;
use crate::server::peers::Pending;
use crate::stream::stats::Stats;
use crate::stream::Stream;
use crate::util::deadline::Graced;
use crate::util::ratelimit::RateLimit;
use log::debug;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

static BAD_LOG: RateLimit = RateLimit::new(Duration::from_secs(5));
static TLS_LOG: RateLimit = RateLimit::new(Duration::from_secs(5));

/// What a port lets a request do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    /// `-address` and `-tls-address`: everything, less source clients when
    /// `-source-address` is set.
    Listeners,
    /// `-source-address`: everything, source clients included.
    Sources,
}

/// The connection thread's body on the plain HTTP port (`-address`).
pub fn handle_http(tcp: TcpStream, peer: SocketAddr, pending: Pending, server: &Server) {
    serve(Conn::Plain(tcp), peer, pending, server, Door::Listeners);
}

/// The connection thread's body on `-source-address`.
pub fn handle_source(tcp: TcpStream, peer: SocketAddr, pending: Pending, server: &Server) {
    serve(Conn::Plain(tcp), peer, pending, server, Door::Sources);
}

/// The connection thread's body on the HTTPS port (`-tls-address`): the TLS handshake,
/// within `-header-timeout`, then what the plain port does.
pub fn handle_https(tcp: TcpStream, peer: SocketAddr, mut pending: Pending, server: &Server) {
    let Some(tls) = server.tls_config() else {
        return;
    };
    let _ = tcp.set_nodelay(true);
    let mut slow = || pending.slow();
    let mut phase = Graced::new(server.cfg.header_timeout, super::SLOW_AFTER, &mut slow);
    let conn = match Conn::accept(tcp, tls, &mut phase) {
        Ok(c) => c,
        Err(e) => {
            Stats::add(&server.stats.bad_requests, 1);
            limited!(TLS_LOG, info, "{peer}: TLS handshake failed: {e}");
            return;
        }
    };
    serve(conn, peer, pending, server, Door::Listeners);
}

fn serve(conn: Conn, peer: SocketAddr, pending: Pending, server: &Server, door: Door) {
    // A listener's hours-long loop runs here, after the deep frames that read and answered
    // its request have returned: their stack stays out of the loop's way, and the pages they
    // touched are given back (README, Design notes: what a listener costs).
    if let Some((listening, entry)) = answer(conn, peer, pending, server, door) {
        listening.run(server);
        access_logged(server, entry, None);
    }
}

/// The access log's line for a request whose answer ended now (the status and bytes this
/// connection wrote since the request came); an HLS request (`hls`: its mount and segment
/// duration) joins its session's line.
fn access_logged(
    server: &Server,
    entry: Option<Entry>,
    hls: Option<(String, std::time::Duration)>,
) {
    if let (Some(log), Some(e)) = (&server.access_log, entry) {
        let (status, bytes) = crate::http::conn::take_written();
        match hls {
            Some((mount, target)) => log.log_hls(e, &mount, target, status, bytes),
            None => log.log(&e, status, bytes),
        }
    }
}

/// Reads a request and answers it, and the next on a kept connection while the answers are
/// short; a listener comes back to be run, with its access-log entry.
#[inline(never)]
fn answer<'s>(
    mut conn: Conn,
    sock_peer: SocketAddr,
    mut pending: Pending,
    server: &'s Server,
    door: Door,
) -> Option<(Listening<'s>, Option<Entry>)> {
    let _ = conn.tcp().set_nodelay(true);
    let _ = conn.set_write_timeout(Some(server.cfg.write_timeout));
    http::set_keep_alive(false);
    let mut slow = || pending.slow();
    let mut phase = Graced::new(server.cfg.header_timeout, super::SLOW_AFTER, &mut slow);
    let read = http::read_request(&mut conn, &mut phase);
    pending.done();
    let mut req = match read {
        Ok(r) => r,
        Err(e) => {
            if let Some((status, what)) = head_error(e, sock_peer) {
                refuse(&mut conn, sock_peer, None, server, status, &what, &[]);
            }
            return None;
        }
    };
    let mut keep = KeepAlive::new(server);
    loop {
        // Behind a -trusted-proxies proxy, the client it names is the peer from here on:
        // every limit, login budget, the listener list and the log see it.
        let peer =
            crate::http::forwarded::client(sock_peer, &req.headers, &server.cfg.trusted_proxies);
        let kept = keep.wants(&req, peer);
        http::set_keep_alive(kept);
        crate::http::conn::take_written();
        let entry = server
            .access_log
            .as_ref()
            .map(|_| Entry::new(peer.ip(), &req));
        if !short(&mut conn, peer, &req, server, door) {
            http::set_keep_alive(false);
            drop(keep);
            let listening = long(conn, peer, req, server, door);
            if listening.is_none() {
                access_logged(server, entry, None);
                return None;
            }
            return listening.map(|l| (l, entry));
        }
        let hls = entry
            .as_ref()
            .and_then(|_| hls::session_of(req.path_only(), server));
        access_logged(server, entry, hls);
        // Kept only when the answer went out whole (a failed write turned it off).
        if !kept || !http::keeps_alive() {
            return None;
        }
        req = next_request(
            &mut conn,
            sock_peer,
            server,
            std::mem::take(&mut req.leftover),
        )?;
    }
}

/// What a request head that could not be read gets: a status and why, or nothing (the peer
/// left).
fn head_error(e: HeadError, peer: SocketAddr) -> Option<(u16, String)> {
    Some(match e {
        HeadError::Closed => {
            debug!("{peer}: closed before a request");
            return None;
        }
        HeadError::Io(e) => {
            debug!("{peer}: {e}");
            return None;
        }
        HeadError::Timeout => (408, "no request within -header-timeout".to_string()),
        HeadError::TooSlow => (
            503,
            "request too slow, and too many from this address are (-max-pending-per-ip)"
                .to_string(),
        ),
        HeadError::TooLarge => (
            431,
            format!("request head larger than {} bytes", http::MAX_HEAD),
        ),
        HeadError::Malformed(m) => (400, format!("malformed request: {m}")),
    })
}

/// The next request on a kept connection, within [`http::KEEP_IDLE`]; none when the client
/// is done (it closed, or stayed idle), or sent what is not a request (answered, closed).
fn next_request(
    conn: &mut Conn,
    peer: SocketAddr,
    server: &Server,
    after: Vec<u8>,
) -> Option<Request> {
    http::set_keep_alive(false);
    // An idle kept connection is no slow request: its address's pending cap is not asked.
    let mut go_on = || true;
    let mut phase = Graced::new(http::KEEP_IDLE, http::KEEP_IDLE, &mut go_on);
    match http::read_request_after(conn, &mut phase, after) {
        Ok(r) => Some(r),
        Err(HeadError::Timeout) => None,
        Err(e) => {
            if let Some((status, what)) = head_error(e, peer) {
                refuse(conn, peer, None, server, status, &what, &[]);
            }
            None
        }
    }
}

/// Answers a short request (the server's pages, status, playlist files, HLS, `OPTIONS *`);
/// false when `req` is none of those.
fn short(conn: &mut Conn, peer: SocketAddr, req: &Request, server: &Server, door: Door) -> bool {
    match (req.method.as_str(), req.path_only()) {
        ("GET" | "HEAD", "/status-json.xsl") => status::status_json(conn, req, server),
        ("GET" | "HEAD", "/metrics") => {
            if server.cfg.admin_password.is_none() || admin::require(conn, peer, req, server) {
                metrics::metrics(conn, req, server);
            }
        }
        ("GET" | "HEAD", path) if hls::is_hls(path, server) => hls::serve(conn, peer, req, server),
        ("GET" | "HEAD", path) if playlist_files::find(path, server).is_some() => {
            if let Some((stream, kind)) = playlist_files::find(path, server) {
                playlist_files::serve(conn, req, server, &stream, kind);
            }
        }
        ("GET" | "HEAD", "/status.html" | "/status.xsl") => {
            page::status_page(conn, peer, req, server)
        }
        ("GET" | "HEAD", "/played.html" | "/played") => played::played(conn, req, server),
        // libshout opens with `OPTIONS *` and picks its method from `Allow` (Icecast 2.5
        // answers the same way); browsers' CORS preflights land here too.
        ("OPTIONS", "*") => {
            let sources_here = door == Door::Sources || server.cfg.source_address.is_none();
            let push = sources_here
                && server
                    .streams()
                    .iter()
                    .any(|s| s.cfg.source_password.is_some());
            cors::options(conn, req, server, allow(push));
        }
        _ => return false,
    }
    true
}

/// Answers the rest: admin calls and streams (their listeners, source clients, the link).
/// A listener comes back to be run.
fn long(
    mut conn: Conn,
    peer: SocketAddr,
    req: Request,
    server: &Server,
    door: Door,
) -> Option<Listening<'_>> {
    match (req.method.as_str(), req.path_only()) {
        ("GET", "/admin/metadata" | "/admin/metadata.xsl") => {
            admin::metadata(conn, peer, &req, server)
        }
        ("GET", "/admin.cgi") => admin::shoutcast(conn, peer, &req, server),
        ("GET", "/admin/mute") => admin::mute(conn, peer, &req, server),
        ("GET", "/admin/next") => admin::next(conn, peer, &req, server),
        ("GET" | "HEAD", "/admin/listeners") => {
            listeners_admin::list_json(&mut conn, peer, &req, server)
        }
        ("GET", "/admin/kick") => listeners_admin::kick(&mut conn, peer, &req, server),
        ("GET", "/admin/listclients") => {
            listeners_admin::listclients(&mut conn, peer, &req, server)
        }
        ("GET", "/admin/killclient") => listeners_admin::killclient(&mut conn, peer, &req, server),
        _ => return to_stream(conn, peer, req, server, door),
    }
    None
}

/// A request for a stream: its mount is the path, less a link operation at its end.
/// A listener comes back to be run.
fn to_stream(
    mut conn: Conn,
    peer: SocketAddr,
    req: Request,
    server: &Server,
    door: Door,
) -> Option<Listening<'_>> {
    let (mount, link_op) = crate::link::split_path(req.path_only());
    let Some((stream, leaves)) = server.served_for(mount) else {
        // A browser's preflight for a server page (status, admin calls) under -mount.
        if req.method == "OPTIONS" {
            cors::options(&mut conn, &req, server, allow(false));
            return None;
        }
        let what = "no such mount";
        refuse(&mut conn, peer, Some(&req), server, 404, what, &[]);
        return None;
    };
    // With -source-address, source clients go there and nowhere else.
    let sources_here = door == Door::Sources || server.cfg.source_address.is_none();
    let takes_sources = stream.cfg.source_password.is_some() && sources_here;
    let link = leaves.link;
    use crate::link::Op;
    match (req.method.as_str(), link_op, link.as_deref()) {
        ("GET", Some(Op::Challenge), Some(link)) => {
            crate::link::handshake::challenge(&mut conn, &req, link)
        }
        ("GET", Some(Op::Pull), Some(link)) => {
            crate::link::origin::serve_pull(conn, peer, &req, server, &stream, link)
        }
        ("POST", Some(Op::Push), Some(link)) if is_receiver(&stream) => {
            crate::link::receiver::serve_push(conn, peer, &req, server, &stream, link)
        }
        ("OPTIONS", _, _) => cors::options(&mut conn, &req, server, allow(takes_sources)),
        ("GET" | "HEAD", None, _) => {
            let cors = cors::headers(server, &req);
            let cors: Vec<(&str, &str)> = cors.iter().map(|(n, v)| (*n, v.as_str())).collect();
            let user = users::admit(&mut conn, peer, &req, server, &cors).ok()?;
            // -listener-auth-url: the station's own service says yes or no (url_auth.rs).
            let auth = stream.cfg.listener_auth_url.as_ref();
            let mut admitted = None;
            if let Some(url) = auth.or(server.cfg.listener_auth_url.as_ref()) {
                let port = server.cfg.address.port();
                match server.url_auth.admit(url, &req, peer.ip(), port) {
                    Ok(a) => admitted = Some(a),
                    Err((status, why)) => {
                        log::info!("{peer}: refused by -listener-auth-url: {status} {why}");
                        http::respond(&mut conn, req.minor, status, &why, &cors);
                        return None;
                    }
                }
            }
            let listening = listener::start(conn, peer, req, server, &stream, user);
            return match (listening, admitted) {
                (Some(l), Some(a)) => Some(l.on_leave(move || server.url_auth.left(a))),
                (None, Some(a)) => {
                    server.url_auth.left(a);
                    None
                }
                (l, None) => l,
            };
        }
        ("PUT" | "SOURCE", None, _) if takes_sources => {
            source_client::serve_source(conn, peer, &req, server, &stream)
        }
        ("PUT" | "SOURCE", None, _) if stream.cfg.source_password.is_some() => {
            let what = "source clients connect to -source-address, not to this port";
            let allow = [("Allow", allow(false))];
            refuse(&mut conn, peer, Some(&req), server, 405, what, &allow)
        }
        (other, _, _) => {
            let what = format!("method {other} not allowed here");
            let allow = [("Allow", allow(takes_sources))];
            refuse(&mut conn, peer, Some(&req), server, 405, &what, &allow)
        }
    }
    None
}

fn is_receiver(stream: &Stream) -> bool {
    stream.cfg.link.as_ref().is_some_and(|l| l.receive)
}

/// The methods a stream answers.
fn allow(takes_sources: bool) -> &'static str {
    if takes_sources {
        "GET, HEAD, OPTIONS, PUT, SOURCE"
    } else {
        "GET, HEAD, OPTIONS"
    }
}

/// Counts, logs (rate-limited) and answers a request that reaches nothing.
fn refuse(
    conn: &mut Conn,
    peer: SocketAddr,
    req: Option<&Request>,
    server: &Server,
    status: u16,
    what: &str,
    extra: &[(&str, &str)],
) {
    Stats::add(&server.stats.bad_requests, 1);
    match req {
        Some(r) => {
            let path = crate::http::url::redacted(&r.path);
            limited!(BAD_LOG, warn, "{peer}: {what} ({} {path:?})", r.method)
        }
        None => limited!(BAD_LOG, warn, "{peer}: {what}"),
    }
    http::respond(conn, req.map_or(0, |r| r.minor), status, what, extra);
}

#[cfg(test)]
mod tests {
    use crate::link::{split_path, Op};

    #[test]
    fn a_link_operation_ends_a_streams_path() {
        assert_eq!(split_path("/.ringcast/link/pull"), ("/", Some(Op::Pull)));
        assert_eq!(
            split_path("/live/.ringcast/link/challenge"),
            ("/live", Some(Op::Challenge))
        );
        assert_eq!(
            split_path("/a/b/.ringcast/link/push"),
            ("/a/b", Some(Op::Push))
        );
        assert_eq!(split_path("/live"), ("/live", None));
        assert_eq!(
            split_path("/.ringcast/link/pullx"),
            ("/.ringcast/link/pullx", None)
        );
    }
}
