//! Playlist files for players and directories: `/MOUNT.m3u`, `/MOUNT.pls` and
//! `/MOUNT.xspf` (Icecast serves `.m3u` and `.xspf` for every mount; `.pls` is what
//! SHOUTcast-era players open). Each names the stream's URL, built from the request's `Host`
//! (a player on the LAN and one through a domain each get the address they used) and the
//! scheme the request came in by (https on `-tls-address`). Without `-mount` the one stream
//! serves every path, so any `NAME.m3u` (`.pls`, `.xspf`) is its playlist, pointing at `/`.
//!
//! A boundary module (under `server/`): the `Host` header is checked, not trusted.

use super::Server;
use crate::http::conn::Conn;
use crate::http::server::{self as http, Request};
use crate::stream::Stream;
use std::sync::Arc;

/// A playlist file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    M3u,
    Pls,
    Xspf,
}

/// The stream and format a path names, if it is a playlist file of a stream.
pub fn find(path: &str, server: &Server) -> Option<(Arc<Stream>, Kind)> {
    let (stem, ext) = path.rsplit_once('.')?;
    let kind = match ext {
        "m3u" => Kind::M3u,
        "pls" => Kind::Pls,
        "xspf" => Kind::Xspf,
        _ => return None,
    };
    if stem.is_empty() || stem.contains("/hls/") {
        return None;
    }
    let stream = server.stream_for(if server.cfg.mounted { stem } else { "/" })?;
    Some((stream, kind))
}

/// The host a player should use: the request's `Host` when it is a plain host[:port], else
/// the address the request came in on.
fn host(req: &Request, local: Option<std::net::SocketAddr>) -> String {
    let ok = |h: &str| {
        !h.is_empty()
            && h.len() <= 255
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b))
    };
    match req.header("Host").map(str::trim) {
        Some(h) if ok(h) => h.to_string(),
        _ => local.map_or_else(|| "localhost".into(), |a| a.to_string()),
    }
}

/// Answers a playlist file.
pub fn serve(conn: &mut Conn, req: &Request, server: &Server, stream: &Stream, kind: Kind) {
    let scheme = if conn.is_tls() { "https" } else { "http" };
    let local = conn.tcp().local_addr().ok();
    let url = format!("{scheme}://{}{}", host(req, local), stream.mount());
    let info = stream.meta.info();
    // The stream's name, else the station's, else its mount ("/" says nothing to a player).
    let station = &server.cfg.station_name;
    let name = if !info.name.is_empty() {
        info.name.clone()
    } else if !station.is_empty() {
        station.clone()
    } else if stream.mount() == "/" {
        "ringcast".to_string()
    } else {
        stream.mount().trim_start_matches('/').to_string()
    };
    // One line each: a name cannot end its line or its element.
    let line = |s: &str| s.replace(['\r', '\n'], " ");
    let (ct, body) = match kind {
        Kind::M3u => (
            "audio/x-mpegurl",
            format!("#EXTM3U\n#EXTINF:-1,{}\n{url}\n", line(&name)),
        ),
        Kind::Pls => (
            "audio/x-scpls",
            format!(
                "[playlist]\nNumberOfEntries=1\nFile1={url}\nTitle1={}\nLength1=-1\nVersion=2\n",
                line(&name)
            ),
        ),
        Kind::Xspf => (
            "application/xspf+xml",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
                 <playlist version=\"1\" xmlns=\"http://xspf.org/ns/0/\">\n<trackList>\n\
                 <track><location>{}</location><title>{}</title></track>\n\
                 </trackList>\n</playlist>\n",
                xml(&url),
                xml(&name)
            ),
        ),
    };
    http::reply(conn, req, ct, &[("Cache-Control", "no-cache")], &body);
}

/// Text for XML and HTML content and attribute values.
pub(super) fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_text_is_escaped() {
        assert_eq!(xml("a<b>&\"c\n"), "a&lt;b&gt;&amp;&quot;c ");
    }
}
