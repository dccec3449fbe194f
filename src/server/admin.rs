//! Admin calls: title updates as Icecast (`/admin/metadata?mount=…&mode=updinfo&song=…`)
//! and SHOUTcast (`/admin.cgi?pass=…&mode=updinfo&song=…`) take them. Roles (README,
//! Security): a call on one stream's source (its title, mute, next) takes user `admin` with
//! `-admin-password` or that stream's own source login; calls over every stream (the
//! listener list, kicks, metrics) take the admin login only. The song
//! is UTF-8 unless the call says `charset=ISO-8859-1` (what some old encoders send).
//!
//! With mounts, `mount=` names the stream (a SHOUTcast call may leave it out when its
//! password is one mount's source password); without, the one stream is meant.

use super::logins::{answer_login, source_login};
use super::Server;
use crate::http::auth;
use crate::http::conn::Conn;
use crate::http::server::{self as http, Request};
use crate::http::url::query_param;
use crate::stream::Stream;
use log::info;
use std::net::SocketAddr;
use std::sync::Arc;

/// Whether the request's Basic credentials are the admin login, or the source login of
/// `stream` when one is given. `None`: it has none.
fn credentials_ok(req: &Request, server: &Server, stream: Option<&Stream>) -> Option<bool> {
    let (user, password) = req.header("Authorization").and_then(auth::parse_basic)?;
    Some(
        admin_login(server, &user, &password)
            || stream.is_some_and(|s| source_login(&s.cfg, &user, &password)),
    )
}

fn admin_login(server: &Server, user: &str, password: &str) -> bool {
    server
        .cfg
        .admin_password
        .as_deref()
        .is_some_and(|p| auth::same_secret(user, "admin") && auth::same_secret(password, p))
}

/// Answers 401 (or 429 for an address past its login budget) unless the request carries
/// the admin login: no source login opens calls over every stream.
pub fn require(conn: &mut Conn, peer: SocketAddr, req: &Request, server: &Server) -> bool {
    let login = server.peers.login(peer.ip(), "admin login", None, || {
        credentials_ok(req, server, None)
    });
    answer_login(conn, peer, req.minor, login, "ringcast admin")
}

/// The stream an admin call names with `mount=` (without mounts: the one stream). Answers
/// 400 or 404 itself when there is none.
fn named_stream(conn: &mut Conn, req: &Request, server: &Server) -> Option<Arc<Stream>> {
    let mount = query_param(&req.path, "mount").map(|m| String::from_utf8_lossy(&m).into_owned());
    let found = match &mount {
        _ if !server.cfg.mounted => server.stream_for("/"),
        Some(m) => server.stream_for(m),
        None => {
            http::respond(conn, req.minor, 400, "need mount=", &[]);
            return None;
        }
    };
    if found.is_none() {
        http::respond(conn, req.minor, 404, "no such mount", &[]);
    }
    found
}

/// Icecast's `/admin/metadata`.
pub fn metadata(mut conn: Conn, peer: SocketAddr, req: &Request, server: &Server) {
    if let Some(stream) = stream_call(&mut conn, peer, req, server) {
        update(conn, peer, req, server, &stream, true);
    }
}

/// The stream a call on one stream names, once its caller has logged in (the admin, or
/// that stream's source login); `None` when it has been answered here (400, 404, 401, 429).
fn stream_call(
    conn: &mut Conn,
    peer: SocketAddr,
    req: &Request,
    server: &Server,
) -> Option<Arc<Stream>> {
    let stream = named_stream(conn, req, server)?;
    let login = server.peers.login(peer.ip(), "admin login", None, || {
        credentials_ok(req, server, Some(&stream))
    });
    answer_login(conn, peer, req.minor, login, "ringcast admin").then_some(stream)
}

/// `/admin/mute?mode=on|off`: listeners hear silence while muted (`stream/mute.rs`).
pub fn mute(mut conn: Conn, peer: SocketAddr, req: &Request, server: &Server) {
    let Some(stream) = stream_call(&mut conn, peer, req, server) else {
        return;
    };
    let on = match query_param(&req.path, "mode").as_deref() {
        Some(b"on") => true,
        Some(b"off") => false,
        _ => return http::respond(&mut conn, req.minor, 400, "need mode=on or mode=off", &[]),
    };
    if stream.set_muted(on) {
        info!(
            "{peer}: {} {}",
            if on { "muted" } else { "unmuted" },
            stream.mount()
        );
    }
    let state = if on { "muted" } else { "not muted" };
    http::respond(&mut conn, req.minor, 200, state, &[]);
}

/// `/admin/next`: a `-playlist` stream moves on to its next file.
pub fn next(mut conn: Conn, peer: SocketAddr, req: &Request, server: &Server) {
    let Some(stream) = stream_call(&mut conn, peer, req, server) else {
        return;
    };
    if !matches!(stream.cfg.input, crate::config::InputSpec::Playlist(_)) {
        return http::respond(&mut conn, req.minor, 400, "not a -playlist stream", &[]);
    }
    stream.request_skip();
    info!("{peer}: next file asked for on {}", stream.mount());
    http::respond(&mut conn, req.minor, 200, "skipping to the next file", &[]);
}

/// SHOUTcast's `/admin.cgi`: the password may come as `pass=` in the query, and with mounts
/// it may pick the mount. That pick happens inside the login gate: a guesser learns whether
/// a password is right only from answers that count as failed logins.
pub fn shoutcast(mut conn: Conn, peer: SocketAddr, req: &Request, server: &Server) {
    let pass = query_param(&req.path, "pass").map(|p| String::from_utf8_lossy(&p).into_owned());
    let mut stream = None;
    if !server.cfg.mounted || query_param(&req.path, "mount").is_some() {
        match named_stream(&mut conn, req, server) {
            Some(s) => stream = Some(s),
            None => return,
        }
    }
    let login = server.peers.login(peer.ip(), "admin.cgi login", None, || {
        let Some(p) = &pass else {
            return credentials_ok(req, server, stream.as_deref());
        };
        if stream.is_none() {
            stream = server.streams().into_iter().find(|s| {
                s.cfg
                    .source_password
                    .as_deref()
                    .is_some_and(|sp| auth::same_secret(p, sp))
            });
        }
        let source = stream.as_ref().and_then(|s| s.cfg.source_password.as_ref());
        Some(
            [source, server.cfg.admin_password.as_ref()]
                .into_iter()
                .flatten()
                .any(|secret| auth::same_secret(p, secret)),
        )
    });
    if !answer_login(&mut conn, peer, req.minor, login, "ringcast admin") {
        return;
    }
    match stream {
        Some(s) => update(conn, peer, req, server, &s, false),
        // The admin login, with mounts and no mount named.
        None => http::respond(&mut conn, req.minor, 400, "need mount=", &[]),
    }
}

fn update(
    mut conn: Conn,
    peer: SocketAddr,
    req: &Request,
    server: &Server,
    stream: &Stream,
    icecast_reply: bool,
) {
    let Some(title) = title_from_query(&req.path) else {
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
    if stream.meta.set_title(&title) {
        info!("{peer}: title set to {title:?}");
    }
    let (ct, body) = if icecast_reply {
        ("text/xml", "<?xml version=\"1.0\"?>\n<iceresponse><message>Metadata update successful</message><return>1</return></iceresponse>\n")
    } else {
        ("text/html", "<html><body>Updated</body></html>\n")
    };
    let cors = super::cors::headers(server, req);
    let cors: Vec<(&str, &str)> = cors.iter().map(|(n, v)| (*n, v.as_str())).collect();
    http::reply(&mut conn, req, ct, &cors, body);
}

/// The title an update call sets: `song=`, or as libshout sends it (`shout_set_metadata`),
/// `artist=` and `title=`, joined as Icecast joins them (`Artist - Title`, or whichever one
/// is given). UTF-8 unless `charset=` says Latin-1. `None` unless `mode=updinfo` and one of
/// them is there.
fn title_from_query(path: &str) -> Option<String> {
    let param = |key: &str| query_param(path, key);
    if param("mode")? != b"updinfo" {
        return None;
    }
    let latin1 = param("charset").is_some_and(|c| {
        c.eq_ignore_ascii_case(b"iso-8859-1") || c.eq_ignore_ascii_case(b"latin1")
    });
    let text = |bytes: Vec<u8>| -> String {
        if latin1 {
            bytes.into_iter().map(char::from).collect()
        } else {
            String::from_utf8_lossy(&bytes).into_owned()
        }
    };
    if let Some(song) = param("song") {
        return Some(text(song));
    }
    let artist = param("artist").map(text).filter(|a| !a.is_empty());
    let title = param("title").map(text).filter(|t| !t.is_empty());
    match (artist, title) {
        (Some(a), Some(t)) => Some(format!("{a} - {t}")),
        (a, t) => a.or(t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_from_song_or_from_libshouts_artist_and_title() {
        let t = |q: &str| title_from_query(&format!("/admin/metadata?{q}"));
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
