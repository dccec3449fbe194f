//! Admin calls: title updates as Icecast (`/admin/metadata?mount=…&mode=updinfo&song=…`)
//! and SHOUTcast (`/admin.cgi?pass=…&mode=updinfo&song=…`) take them. Allowed with the
//! source login or user `admin` with `-admin-password`. The song is UTF-8 unless the call
//! says `charset=ISO-8859-1` (what some old encoders send).

use super::http::{self, Request};
use crate::auth;
use crate::config::Config;
use crate::shared::Shared;
use crate::source::push::source_login;
use crate::url::query_pairs;
use log::{info, warn};
use std::net::{SocketAddr, TcpStream};

/// Whether the request carries admin or source credentials (Basic auth).
pub fn authorized(req: &Request, cfg: &Config) -> bool {
    let Some((user, password)) = req.header("Authorization").and_then(auth::parse_basic) else {
        return false;
    };
    admin_login(cfg, &user, &password) || source_login(cfg, &user, &password)
}

fn admin_login(cfg: &Config, user: &str, password: &str) -> bool {
    cfg.admin_password
        .as_deref()
        .is_some_and(|p| auth::same_secret(user, "admin") && auth::same_secret(password, p))
}

/// Answers 401 unless the request may make admin calls.
pub fn require(conn: &mut TcpStream, peer: SocketAddr, req: &Request, cfg: &Config) -> bool {
    if authorized(req, cfg) {
        return true;
    }
    warn!(
        "{peer}: {} {}: wrong or missing admin credentials",
        req.method,
        path_only(&req.path)
    );
    http::respond(
        conn,
        req.minor,
        401,
        "authentication required",
        &[("WWW-Authenticate", "Basic realm=\"ringcast admin\"")],
    );
    false
}

pub fn metadata(
    mut conn: TcpStream,
    peer: SocketAddr,
    req: &Request,
    cfg: &Config,
    shared: &Shared,
) {
    if !require(&mut conn, peer, req, cfg) {
        return;
    }
    update(conn, peer, req, shared, true);
}

/// SHOUTcast's `/admin.cgi`: the password may come as `pass=` in the query.
pub fn shoutcast(
    mut conn: TcpStream,
    peer: SocketAddr,
    req: &Request,
    cfg: &Config,
    shared: &Shared,
) {
    let pass = query_pairs(&req.path)
        .into_iter()
        .find(|(k, _)| k == "pass")
        .map(|(_, v)| v);
    let by_pass = pass.is_some_and(|p| {
        cfg.source_password
            .as_deref()
            .is_some_and(|s| auth::same_secret(&p, s))
            || cfg
                .admin_password
                .as_deref()
                .is_some_and(|a| auth::same_secret(&p, a))
    });
    if !by_pass && !require(&mut conn, peer, req, cfg) {
        return;
    }
    update(conn, peer, req, shared, false);
}

fn update(
    mut conn: TcpStream,
    peer: SocketAddr,
    req: &Request,
    shared: &Shared,
    icecast_reply: bool,
) {
    let query = req.path.split_once('?').map_or("", |(_, q)| q);
    let mode = param(query, "mode").map(|b| String::from_utf8_lossy(&b).into_owned());
    let Some(song) = param(query, "song").filter(|_| mode.as_deref() == Some("updinfo")) else {
        http::respond(
            &mut conn,
            req.minor,
            400,
            "need mode=updinfo and song=…",
            &[],
        );
        return;
    };
    let latin1 = param(query, "charset").is_some_and(|c| {
        let c = String::from_utf8_lossy(&c).to_ascii_lowercase();
        c == "iso-8859-1" || c == "latin1"
    });
    let title: String = if latin1 {
        song.iter().map(|&b| b as char).collect()
    } else {
        String::from_utf8_lossy(&song).into_owned()
    };
    // A title is one line; control characters would break the ICY text.
    let title: String = title.chars().filter(|c| !c.is_control()).collect();
    if shared.meta.set_title(&title) {
        info!("{peer}: title set to {title:?}");
    }
    let (ct, body) = if icecast_reply {
        ("text/xml", "<?xml version=\"1.0\"?>\n<iceresponse><message>Metadata update successful</message><return>1</return></iceresponse>\n")
    } else {
        ("text/html", "<html><body>Updated</body></html>\n")
    };
    let length = body.len().to_string();
    let out = http::head(req.minor, 200, ct, &[("Content-Length", length.as_str())]) + body;
    if std::io::Write::write_all(&mut conn, out.as_bytes()).is_ok() {
        http::close_gracefully(&mut conn);
    }
}

/// A query parameter's raw bytes, percent- and `+`-decoded.
fn param(query: &str, key: &str) -> Option<Vec<u8>> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == key).then(|| crate::url::decode_bytes(v, true))
    })
}

pub fn path_only(path: &str) -> &str {
    path.split('?').next().unwrap_or(path)
}
