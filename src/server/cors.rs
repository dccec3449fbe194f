//! CORS: which web pages may read streams, status and titles from a browser, and the answer
//! to their preflights.
//!
//! By default any page may (`Access-Control-Allow-Origin: *`): a public stream is public.
//! With `-listener-users` a page's request must carry the listener's login, and browsers
//! send credentials only to a server that names the page's origin and allows credentials.
//! Credentials are granted only to the origins `-cors-origin` lists: with `*` (the default)
//! a private server still answers `*` but grants none, so no other site can use a visitor's
//! saved login; the page on ringcast's own origin needs no CORS and works as before.
//! Browsers hide response headers from scripts unless exposed: the `icy-*` headers are, so a
//! web player can read `icy-metaint` and the stream's name.

use super::Server;
use crate::http::conn::Conn;
use crate::http::server::{self as http, Request};

/// The stream headers a page's script may read.
const EXPOSE: &str = "icy-metaint, icy-name, icy-genre, icy-description, icy-url, icy-br, icy-pub";
/// The methods and request headers a page may use.
const METHODS: &str = "GET, HEAD, OPTIONS";
const REQUEST_HEADERS: &str = "Icy-MetaData, Range, Authorization";
/// How long a browser may keep a preflight's answer (a day).
const MAX_AGE: &str = "86400";

/// The CORS headers of a response to `req`.
pub fn headers(server: &Server, req: &Request) -> Vec<(&'static str, String)> {
    let logins = server.cfg.listener_users.is_some();
    // A header value cannot carry a line break or other control bytes.
    let origin = req
        .header("Origin")
        .map(str::trim)
        .filter(|o| !o.is_empty() && !o.bytes().any(|b| b.is_ascii_control()));
    let allowed = match (&server.cfg.cors_origins, origin) {
        (None, _) => Some("*".to_string()),
        (Some(list), Some(o)) if list.iter().any(|l| l.eq_ignore_ascii_case(o)) => {
            Some(o.to_string())
        }
        _ => None,
    };
    let mut h = Vec::new();
    let named = allowed.as_deref().is_some_and(|a| a != "*");
    if let Some(a) = allowed {
        h.push(("Access-Control-Allow-Origin", a));
        h.push(("Access-Control-Expose-Headers", EXPOSE.to_string()));
        // Browsers refuse credentials with `*`; only a listed origin gets them.
        if logins && named {
            h.push(("Access-Control-Allow-Credentials", "true".to_string()));
        }
    }
    // The answer depends on Origin whenever it is not `*`: caches must keep them apart.
    if named || server.cfg.cors_origins.is_some() {
        h.push(("Vary", "Origin".to_string()));
    }
    h
}

/// Answers an `OPTIONS` request: `Allow` for libshout (which picks its method from it) and,
/// for a browser's preflight, what it may ask for.
pub fn options(conn: &mut Conn, req: &Request, server: &Server, allow: &str) {
    let mut h: Vec<(&str, String)> = vec![("Allow", allow.to_string())];
    let cors = headers(server, req);
    if cors
        .iter()
        .any(|(n, _)| *n == "Access-Control-Allow-Origin")
    {
        h.extend(cors);
        h.push(("Access-Control-Allow-Methods", METHODS.to_string()));
        h.push(("Access-Control-Allow-Headers", REQUEST_HEADERS.to_string()));
        h.push(("Access-Control-Max-Age", MAX_AGE.to_string()));
    } else {
        h.extend(cors);
    }
    let h: Vec<(&str, &str)> = h.iter().map(|(n, v)| (*n, v.as_str())).collect();
    http::respond(conn, req.minor, 200, "", &h);
}
