//! `/played.html`: the last titles of a stream and when each began, as SHOUTcast serves
//! them, since station websites scrape that: `?type=json` answers
//! `[{"playedat": 1764698400, "title": "Artist - Title"}, …]`, newest first; without it, a
//! page for people. `mount=` picks the stream when there are mounts (the first one
//! otherwise). Titles from every side count: they all pass `Meta::set_title`. Public, as
//! `/status-json.xsl` (which carries the same list as `played`) is.

use super::playlist_files::xml;
use super::status::played_json;
use super::Server;
use crate::http::conn::Conn;
use crate::http::server::{self as http, Request};
use crate::http::url::query_param;
use std::fmt::Write as _;

pub fn played(conn: &mut Conn, req: &Request, server: &Server) {
    let stream = match query_param(&req.path, "mount") {
        Some(m) => server.stream_for(&String::from_utf8_lossy(&m)),
        None => server.streams().first().cloned(),
    };
    let Some(stream) = stream else {
        http::respond(conn, req.minor, 404, "no such mount", &[]);
        return;
    };
    let played = stream.meta.played();
    let mut extra = vec![("Cache-Control", "no-cache".to_string())];
    extra.extend(super::cors::headers(server, req));
    let extra: Vec<(&str, &str)> = extra.iter().map(|(n, v)| (*n, v.as_str())).collect();
    if query_param(&req.path, "type").as_deref() == Some(b"json") {
        let body = format!("{}\n", played_json(&played));
        http::reply(conn, req, "application/json; charset=utf-8", &extra, &body);
        return;
    }
    let mut rows = String::new();
    for (at, title) in &played {
        let at = std::time::UNIX_EPOCH
            .checked_add(std::time::Duration::from_secs(*at))
            .unwrap_or(std::time::UNIX_EPOCH);
        let when = crate::util::timefmt::iso8601(at);
        let _ = writeln!(
            rows,
            "<tr><td><time datetime=\"{when}\">{when}</time></td><td>{}</td></tr>",
            xml(title)
        );
    }
    let name = if server.cfg.station_name.is_empty() {
        "ringcast".to_string()
    } else {
        server.cfg.station_name.clone()
    };
    let body = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>Played on {name}</title></head>\n<body><h1>Played on {name}</h1>\n\
         <p>{mount}, newest first (UTC).</p>\n<table>\n{rows}</table>\n</body></html>\n",
        name = xml(&name),
        mount = xml(stream.mount()),
    );
    let mut extra = extra;
    extra.push(("Content-Security-Policy", "default-src 'none'"));
    http::reply(conn, req, "text/html; charset=utf-8", &extra, &body);
}
