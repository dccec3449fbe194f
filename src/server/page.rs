//! `/status.html` (and `/status.xsl`, the path Icecast's users have bookmarked): a page for
//! people, with each stream's name, title, listeners, time on air, format and bitrate, and a
//! player. One static file compiled in (about 3 KB, no external assets): its script polls
//! `/status-json.xsl`, so a new title shows without a reload.
//!
//! With `-listener-users` the page needs a listener's login too: the browser then keeps the
//! login and sends it with the player's requests (README, Private streams).

use super::{users, Server};
use crate::http::conn::Conn;
use crate::http::server::{self as http, Request};
use std::net::SocketAddr;

const PAGE: &str = include_str!("status.html");

pub fn status_page(conn: &mut Conn, peer: SocketAddr, req: &Request, server: &Server) {
    if users::admit(conn, peer, req, server, &[]).is_err() {
        return;
    }
    let extra = [
        ("Cache-Control", "no-cache"),
        // Its own inline style and script, and media and data from this server only.
        (
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; \
             connect-src 'self'; media-src 'self'",
        ),
    ];
    http::reply(conn, req, "text/html; charset=utf-8", &extra, PAGE);
}
