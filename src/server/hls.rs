//! HLS over HTTP (`-hls`): `/hls/index.m3u8` and its segments (with `-mount`, under the
//! mount: `/live/hls/index.m3u8`), made to be cached. Segments never change once made, so
//! they say so (`immutable`, a strong `ETag`, `Last-Modified`); the playlist lives at most
//! half a segment. `HEAD`, `If-None-Match`, `If-Modified-Since` and single `Range`s work,
//! CORS headers are as on the plain stream, and each request counts its client (an address
//! and user agent) as an HLS listener for two target durations.
//!
//! A private stream's HLS (`-listener-users`) is as private as the stream: the playlist
//! takes the listener's login, and the segment URLs it lists carry a token the login
//! issued (`hls_token.rs`); a segment without a valid token takes the login itself.

use super::Server;
use crate::frame::HlsPacking;
use crate::http::conn::Conn;
use crate::http::server::{self as http, Request};
use crate::http::url::query_param;
use crate::stream::segments::Segments;
use crate::util::timefmt;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::time::SystemTime;

/// The mount and file an HLS path names: `/hls/x` → ("/", "x"), `/live/hls/x` → ("/live", "x").
/// The file is one path segment.
pub fn split(path: &str) -> Option<(&str, &str)> {
    let (mount, file) = path.rsplit_once("/hls/")?;
    if file.is_empty() || file.contains('/') {
        return None;
    }
    Some((if mount.is_empty() { "/" } else { mount }, file))
}

/// Whether `path` is an HLS path of a stream that publishes HLS (any other path is the
/// stream's as before). Without `-mount` it is `/hls/…` only: no other prefix reaches it.
pub fn is_hls(path: &str, server: &Server) -> bool {
    split(path)
        .filter(|(mount, _)| server.cfg.mounted || *mount == "/")
        .and_then(|(mount, _)| server.stream_for(mount))
        .is_some_and(|s| s.hls.is_some())
}

/// The mount and segment duration of an HLS path (what the access log folds its requests
/// into sessions by); `None` for any other path.
pub fn session_of(path: &str, server: &Server) -> Option<(String, std::time::Duration)> {
    let (mount, _) = split(path).filter(|(mount, _)| server.cfg.mounted || *mount == "/")?;
    let stream = server.stream_for(mount)?;
    let target = stream.hls.as_ref()?.target;
    Some((mount.to_string(), target))
}

/// Lets a private stream's HLS request in, or answers it (401, 429). `Ok(None)` for a
/// public stream, `Ok(Some(user))` for a good login or a segment's valid token.
fn admit(
    conn: &mut Conn,
    peer: SocketAddr,
    req: &Request,
    server: &Server,
    mount: &str,
    cors: &[(&str, String)],
    segment: bool,
) -> Result<Option<String>, ()> {
    let Some(users) = server.users() else {
        return Ok(None);
    };
    if segment {
        let user = query_param(&req.path, "t")
            .and_then(|t| super::hls_token::check(&server.hls_key, mount, &t))
            .filter(|u| users.has(u));
        if let Some(u) = user {
            return Ok(Some(u));
        }
    }
    let cors: Vec<(&str, &str)> = cors.iter().map(|(n, v)| (*n, v.as_str())).collect();
    super::users::admit(conn, peer, req, server, &cors)
}

pub fn serve(conn: &mut Conn, peer: SocketAddr, req: &Request, server: &Server) {
    let Some((mount, file)) = split(req.path_only()) else {
        return http::respond(conn, req.minor, 404, "not found", &[]);
    };
    let stream = server.stream_for(mount);
    let Some(window) = stream.as_ref().and_then(|s| s.hls.as_ref()) else {
        return http::respond(conn, req.minor, 404, "no HLS here (-hls)", &[]);
    };
    let mut extra: Vec<(&str, String)> = super::cors::headers(server, req);
    let Ok(user) = admit(conn, peer, req, server, mount, &extra, file != "index.m3u8") else {
        return;
    };
    let client = super::peers::Client::of(peer.ip()).ip();
    window.seen(client, req.header("User-Agent").unwrap_or_default());
    // `-hls` is only given to a format with packed audio (config); MP3's stands in otherwise.
    let packing = stream.as_ref().and_then(|s| s.cfg.framer.hls);
    let packing = packing.unwrap_or(HlsPacking::MPEG_AUDIO);
    let ext = packing.extension;
    if file == "index.m3u8" {
        window.playlist_requests.fetch_add(1, Relaxed);
        // At a live start the first segment is at most a target duration away: wait for it
        // (2 s more for the segmenter's batch on a busy Pi) rather than send players a 503.
        // Only while a source is on air or its input is opening (a mount waiting for its
        // encoder answers at once), and only a few requests at a time (`MAX_WAITING`):
        // nobody can hold threads with it.
        let first_within = match stream.as_ref().is_some_and(|s| s.on_air() || s.opening()) {
            true => window
                .target
                .saturating_add(std::time::Duration::from_secs(2)),
            false => std::time::Duration::ZERO,
        };
        let Some((newest, made)) = window.newest_within(first_within) else {
            extra.push(("Retry-After", "1".into()));
            let h: Vec<(&str, &str)> = extra.iter().map(|(n, v)| (*n, v.as_str())).collect();
            return http::respond(conn, req.minor, 503, "no segment yet", &h);
        };
        let max_age = (window.target.as_secs() / 2).max(1);
        // A private playlist is the listener's own (its segment URLs carry its token).
        let (scope, query) = match &user {
            Some(u) => match super::hls_token::issue(&server.hls_key, mount, u) {
                Some(t) => ("private", format!("?t={t}")),
                None => return http::respond(conn, req.minor, 400, "user name too long", &[]),
            },
            None => ("public", String::new()),
        };
        extra.push(("Cache-Control", format!("{scope}, max-age={max_age}")));
        let etag = format!("\"p{:x}-{newest}{query}\"", window.epoch);
        let body = window.playlist(ext, &query);
        return send(
            conn,
            req,
            "application/vnd.apple.mpegurl",
            extra,
            (etag, made),
            body.as_bytes(),
        );
    }
    window.segment_requests.fetch_add(1, Relaxed);
    let Some(seg) = segment_number(file, window, ext).and_then(|n| window.get(n)) else {
        return http::respond(
            conn,
            req.minor,
            404,
            "no such segment (it left the window)",
            &[],
        );
    };
    extra.push(("Cache-Control", "public, max-age=86400, immutable".into()));
    let etag = format!("\"{:x}-{}\"", window.epoch, seg.seq);
    let ct = packing.content_type;
    send(conn, req, ct, extra, (etag, seg.made), &seg.bytes);
}

/// `seg-EPOCH-N.ext` of this run: N.
fn segment_number(file: &str, window: &Segments, ext: &str) -> Option<u64> {
    let rest = file
        .strip_prefix("seg-")?
        .strip_suffix(ext)?
        .strip_suffix('.')?;
    let (epoch, n) = rest.split_once('-')?;
    if u64::from_str_radix(epoch, 16).ok()? != window.epoch {
        return None;
    }
    n.parse().ok()
}

/// A cacheable response: 304 for a matching conditional request, 206 for a range, else 200.
fn send(
    conn: &mut Conn,
    req: &Request,
    content_type: &str,
    mut extra: Vec<(&str, String)>,
    (etag, made): (String, SystemTime),
    body: &[u8],
) {
    let last_modified = timefmt::http_date(made);
    extra.push(("ETag", etag.clone()));
    extra.push(("Last-Modified", last_modified.clone()));
    extra.push(("Accept-Ranges", "bytes".into()));
    let fresh = match req.header("If-None-Match") {
        Some(tags) => tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"),
        None => req
            .header("If-Modified-Since")
            .is_some_and(|since| since.trim() == last_modified),
    };
    let (status, part) = if fresh {
        (304, &[][..])
    } else {
        match req.header("Range").map(|r| range(r, body.len())) {
            Some(Some((from, to))) => {
                extra.push(("Content-Range", format!("bytes {from}-{to}/{}", body.len())));
                (206, body.get(from..=to).unwrap_or_default())
            }
            Some(None) => {
                extra.push(("Content-Range", format!("bytes */{}", body.len())));
                (416, &[][..])
            }
            None => (200, body),
        }
    };
    extra.push(("Content-Length", part.len().to_string()));
    let head = http::head(req.minor, status, content_type, &extra);
    let body = if req.method == "HEAD" { &[][..] } else { part };
    let wrote = http::write_parts(conn, &[head.as_bytes(), body]);
    http::finish_after(conn, wrote);
}

/// A single byte range (`bytes=a-b`, `bytes=a-`, `bytes=-n`) of a body of `len`: the first
/// and last byte, or `None` when it cannot be satisfied. Several ranges get the first only.
fn range(header: &str, len: usize) -> Option<(usize, usize)> {
    let spec = header.trim().strip_prefix("bytes=")?;
    let first = spec.split(',').next()?.trim();
    let (a, b) = first.split_once('-')?;
    let last = len.checked_sub(1)?;
    let (from, to) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: usize = n.parse().ok()?;
            (len.checked_sub(n.min(len))?, last)
        }
        (a, "") => (a.parse().ok()?, last),
        (a, b) => (a.parse().ok()?, b.parse::<usize>().ok()?.min(last)),
    };
    (from <= to && to <= last).then_some((from, to))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_the_mount() {
        assert_eq!(split("/hls/index.m3u8"), Some(("/", "index.m3u8")));
        assert_eq!(
            split("/live/hls/seg-1-2.mp3"),
            Some(("/live", "seg-1-2.mp3"))
        );
        assert_eq!(split("/live"), None);
    }

    #[test]
    fn ranges() {
        assert_eq!(range("bytes=0-9", 100), Some((0, 9)));
        assert_eq!(range("bytes=90-", 100), Some((90, 99)));
        assert_eq!(range("bytes=-10", 100), Some((90, 99)));
        assert_eq!(range("bytes=50-500", 100), Some((50, 99)));
        assert_eq!(range("bytes=100-", 100), None);
        assert_eq!(range("bytes=9-1", 100), None);
        assert_eq!(range("items=0-1", 100), None);
        crate::util::fuzz::run("hls::range", &[b"bytes=0-9", b"bytes=-0"], 64, |b| {
            let _ = range(&String::from_utf8_lossy(b), b.len());
        });
    }
}
