//! Admin calls: title updates as Icecast (`/admin/metadata?mount=…&mode=updinfo&song=…`)
//! and SHOUTcast (`/admin.cgi?pass=…&mode=updinfo&song=…`) take them. Allowed with the
//! source login or user `admin` with `-admin-password`. The song is UTF-8 unless the call
//! says `charset=ISO-8859-1` (what some old encoders send).

use crate::config::Config;
use crate::http::auth;
use crate::http::server::{self as http, Request};
use crate::http::url::query_pairs;
use crate::input::push::source_login;
use crate::server::peers::Login;
use crate::stream::Shared;
use log::{debug, info};
use std::net::{SocketAddr, TcpStream};

/// Whether the request's Basic credentials are the admin or source login (`None`: it has
/// none).
fn credentials_ok(req: &Request, cfg: &Config) -> Option<bool> {
    let (user, password) = req.header("Authorization").and_then(auth::parse_basic)?;
    Some(admin_login(cfg, &user, &password) || source_login(cfg, &user, &password))
}

fn admin_login(cfg: &Config, user: &str, password: &str) -> bool {
    cfg.admin_password
        .as_deref()
        .is_some_and(|p| auth::same_secret(user, "admin") && auth::same_secret(password, p))
}

/// Answers 401 (or 429 for an address locked out by failed logins) unless the request may
/// make admin calls.
pub fn require(
    conn: &mut TcpStream,
    peer: SocketAddr,
    req: &Request,
    cfg: &Config,
    shared: &Shared,
) -> bool {
    let login = shared
        .peers
        .login(peer.ip(), "admin login", || credentials_ok(req, cfg));
    answer_login(conn, peer, req.minor, login, "ringcast admin")
}

/// Answers a login that did not pass: 401 with a Basic challenge for `realm`, or 429 with
/// `Retry-After` for a locked-out address. True when it passed.
pub fn answer_login(
    conn: &mut TcpStream,
    peer: SocketAddr,
    minor: u8,
    login: Login,
    realm: &str,
) -> bool {
    match login {
        Login::Ok => true,
        Login::Wrong => {
            debug!("{peer}: wrong or missing credentials ({realm})");
            let challenge = format!("Basic realm=\"{realm}\"");
            http::respond(
                conn,
                minor,
                401,
                "authentication required",
                &[("WWW-Authenticate", &challenge)],
            );
            false
        }
        Login::Locked(left) => {
            let retry = left.as_secs().max(1).to_string();
            http::respond(
                conn,
                minor,
                429,
                "too many failed logins from this address",
                &[("Retry-After", &retry)],
            );
            false
        }
    }
}

pub fn metadata(
    mut conn: TcpStream,
    peer: SocketAddr,
    req: &Request,
    cfg: &Config,
    shared: &Shared,
) {
    if !require(&mut conn, peer, req, cfg, shared) {
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
    let pass_ok = |p: &str| {
        [&cfg.source_password, &cfg.admin_password]
            .into_iter()
            .flatten()
            .any(|s| auth::same_secret(p, s))
    };
    let login = shared
        .peers
        .login(peer.ip(), "admin.cgi login", || match &pass {
            Some(p) => Some(pass_ok(p)),
            None => credentials_ok(req, cfg),
        });
    if !answer_login(&mut conn, peer, req.minor, login, "ringcast admin") {
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
    let Some(title) = title_from_query(query) else {
        http::respond(
            &mut conn,
            req.minor,
            400,
            "need mode=updinfo and song=… (or artist=… and title=…)",
            &[],
        );
        return;
    };
    // set_title cleans it (control characters, quotes that would end StreamTitle).
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

/// The title an update call sets: `song=`, or as libshout sends it (`shout_set_metadata`),
/// `artist=` and `title=`, joined as Icecast joins them (`Artist - Title`, or whichever one
/// is given). UTF-8 unless `charset=` says Latin-1. `None` unless `mode=updinfo` and one of
/// them is there.
fn title_from_query(query: &str) -> Option<String> {
    if param(query, "mode")? != b"updinfo" {
        return None;
    }
    let latin1 = param(query, "charset").is_some_and(|c| {
        c.eq_ignore_ascii_case(b"iso-8859-1") || c.eq_ignore_ascii_case(b"latin1")
    });
    let text = |bytes: Vec<u8>| -> String {
        if latin1 {
            bytes.into_iter().map(char::from).collect()
        } else {
            String::from_utf8_lossy(&bytes).into_owned()
        }
    };
    if let Some(song) = param(query, "song") {
        return Some(text(song));
    }
    let artist = param(query, "artist").map(text).filter(|a| !a.is_empty());
    let title = param(query, "title").map(text).filter(|t| !t.is_empty());
    match (artist, title) {
        (Some(a), Some(t)) => Some(format!("{a} - {t}")),
        (a, t) => a.or(t),
    }
}

/// A query parameter's raw bytes, percent- and `+`-decoded.
fn param(query: &str, key: &str) -> Option<Vec<u8>> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == key).then(|| crate::http::url::decode_bytes(v, true))
    })
}

pub fn path_only(path: &str) -> &str {
    path.split('?').next().unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_from_song_or_from_libshouts_artist_and_title() {
        let t = |q: &str| title_from_query(q);
        assert_eq!(t("mode=updinfo&song=A%20-%20B").as_deref(), Some("A - B"));
        assert_eq!(
            t("mode=updinfo&mount=%2Flive&charset=UTF-8&artist=Ez+Artist&title=Ez+Title")
                .as_deref(),
            Some("Ez Artist - Ez Title")
        );
        assert_eq!(t("mode=updinfo&title=Only").as_deref(), Some("Only"));
        assert_eq!(t("mode=updinfo&artist=Solo").as_deref(), Some("Solo"));
        assert_eq!(
            t("mode=updinfo&charset=ISO-8859-1&song=K%FCnstler").as_deref(),
            Some("Künstler")
        );
        assert_eq!(t("mode=updinfo"), None);
        assert_eq!(t("mode=other&song=x"), None);
        assert_eq!(t("song=x"), None);
    }
}
