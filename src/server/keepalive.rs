//! Keep-alive for short answers: an HLS player, a status poller or a page asks again every
//! few seconds, and a new TCP connection (and thread) for each request cost ringcast far
//! more than the answers themselves. A connection that asks for it (`Connection:
//! keep-alive`) and whose answers are all short (status, metrics, the page, playlist files,
//! HLS) stays open for its next request, for at most
//! [`KEEP_IDLE`](crate::http::server::KEEP_IDLE) between requests and [`MAX_REQUESTS`]
//! in all. A kept connection holds a thread while it waits, as a listener does, so an
//! address may keep as many as its listener share (`-max-listeners-per-ip`, counted apart
//! from its listeners), and kept connections use only the room listeners leave under
//! `-max-clients`, checked at every request: past either, the answer says `Connection:
//! close` and the client simply connects again next time. Nothing is refused for it.

use super::peers::{Client, Share};
use super::Server;
use crate::http::server::Request;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;

/// Requests one kept connection may carry (nginx's `keepalive_requests` default): then it
/// closes, and the client's next connection takes its share afresh.
pub const MAX_REQUESTS: u32 = 1000;

/// One connection's keep-alive: its place in its address's share and the server's count
/// while it holds one.
pub struct KeepAlive<'s> {
    server: &'s Server,
    held: Option<Share>,
    served: u32,
}

impl<'s> KeepAlive<'s> {
    pub fn new(server: &'s Server) -> KeepAlive<'s> {
        KeepAlive {
            server,
            held: None,
            served: 0,
        }
    }

    /// Whether the short answer to `req` may keep the connection open: the client asked
    /// for it (`Connection: keep-alive`, as browsers (hls.js in them) and ffmpeg's HLS reader
    /// send), the request has no body, it is within [`MAX_REQUESTS`], and `peer`'s share and
    /// the server's have room.
    ///
    /// Decision: only on request. HTTP/1.1 makes every connection persistent unless it says
    /// `close`, but scripts and probes that read an answer "until the connection closes"
    /// would then hang for `KEEP_IDLE`; every client that reuses connections asks.
    pub fn wants(&mut self, req: &Request, peer: SocketAddr) -> bool {
        self.served = self.served.saturating_add(1);
        let says = |token: &str| {
            req.headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("Connection"))
                .flat_map(|(_, v)| v.split(','))
                .any(|t| t.trim().eq_ignore_ascii_case(token))
        };
        let asked = says("keep-alive")
            && !says("close")
            // Every Content-Length says 0: a body would be read as the next request.
            && req
                .headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("Content-Length"))
                .all(|(_, v)| v.trim() == "0")
            && req.header("Transfer-Encoding").is_none();
        if !asked || self.served >= MAX_REQUESTS {
            self.release();
            return false;
        }
        // Behind a trusted proxy the client can change from one request to the next: the
        // place is the client's.
        let client = Client::of(peer.ip()).ip();
        if self.held.as_ref().is_some_and(|h| h.ip() != client) {
            self.release();
        }
        // Listeners come first: a kept connection gives its room back, at its next request,
        // once listeners need it.
        let room = self.server.cfg.max_clients;
        let used = self
            .server
            .kept
            .load(Relaxed)
            .saturating_add(self.server.listeners());
        if self.held.is_some() && used > room {
            self.release();
            return false;
        }
        if self.held.is_none() {
            self.held = self.take(peer);
        }
        self.held.is_some()
    }

    /// A place in `peer`'s share and under `-max-clients`, if both have room. Kept
    /// connections only use room the listeners leave: the accept loop's cap on open
    /// connections (`-max-clients` and 64 more) must not turn listeners away for them.
    fn take(&self, peer: SocketAddr) -> Option<Share> {
        let max = self.server.cfg.max_clients;
        let kept = &self.server.kept;
        let before = kept.fetch_add(1, Relaxed);
        if before.saturating_add(self.server.listeners()) >= max {
            kept.fetch_sub(1, Relaxed);
            return None;
        }
        let share = self.server.peers.enter_kept(peer.ip());
        if share.is_none() {
            kept.fetch_sub(1, Relaxed);
        }
        share
    }

    /// Gives the places back (the connection closes, or becomes a listener).
    pub fn release(&mut self) {
        if self.held.take().is_some() {
            self.server.kept.fetch_sub(1, Relaxed);
        }
    }
}

impl Drop for KeepAlive<'_> {
    fn drop(&mut self) {
        self.release();
    }
}
