//! `/status-json.xsl` in Icecast's shape, so dashboards and monitors written for Icecast
//! work: one `source` per stream (every mount), with its `listenurl`. It does not count as a
//! listener. One Icecast wart is fixed on purpose: `source` is always an array, even with
//! one source.

use super::Server;
use crate::http::conn::Conn;
use crate::http::server::{self as http, Request};
use crate::stream::Stream;
use crate::util::timefmt;
use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

pub fn status_json(conn: &mut Conn, req: &Request, server: &Server) {
    let host = req.header("Host").unwrap_or("localhost").to_string();
    let base = format!("{}://{host}", if conn.is_tls() { "https" } else { "http" });
    let streams = server.served();
    let source = |(s, l): &super::Served| source(s, l.link.as_deref(), &base);
    let sources: Vec<String> = streams.iter().map(source).collect();
    let body = format!(
        "{{\"icestats\":{{\"admin\":\"\",\"host\":{},\"location\":\"\",\"server_id\":{},\
         \"server_start\":{},\"server_start_iso8601\":{},\"station_description\":{},\
         \"station_name\":{},\"source\":[{}]}}}}\n",
        json(host.split(':').next().unwrap_or_default()),
        json(&format!("ringcast {}", env!("CARGO_PKG_VERSION"))),
        json(&timefmt::rfc2822(server.started)),
        json(&timefmt::iso8601(server.started)),
        json(&server.cfg.station_description),
        json(&server.cfg.station_name),
        sources.join(","),
    );
    let mut extra = vec![("Cache-Control", "no-cache".to_string())];
    extra.extend(super::cors::headers(server, req));
    let extra: Vec<(&str, &str)> = extra.iter().map(|(n, v)| (*n, v.as_str())).collect();
    http::reply(conn, req, "application/json; charset=utf-8", &extra, &body);
}

/// One stream as an Icecast source object.
fn source(stream: &Stream, link: Option<&crate::link::LinkState>, base: &str) -> String {
    let info = stream.meta.info();
    let (title, _) = stream.meta.title();
    let mut source = format!(
        "{{\"audio_info\":{},\"genre\":{},\"listener_peak\":{},\"listeners\":{},\"listenurl\":{},\
         \"server_description\":{},\"server_name\":{},\"server_type\":{},\"server_url\":{},\
         \"title\":{},\"public\":{}",
        json(&format!("bitrate={}", stream.bitrate())),
        json(&info.genre),
        stream.listener_peak.load(Relaxed),
        stream.listeners(),
        json(&format!("{base}{}", stream.mount())),
        json(&info.description),
        json(&info.name),
        json(&stream.content_type()),
        json(&info.url),
        json(&title),
        u8::from(info.public),
    );
    if let Some(t) = stream.on_air_since() {
        let _ = write!(
            source,
            ",\"stream_start\":{},\"stream_start_iso8601\":{}",
            json(&timefmt::rfc2822(t)),
            json(&timefmt::iso8601(t))
        );
    }
    let _ = write!(source, ",\"server_mount\":{}", json(stream.mount()));
    let _ = write!(source, ",\"muted\":{}", stream.is_muted());
    // Whether a source is on air now (a mount waiting for its source client is not).
    let _ = write!(source, ",\"on_air\":{}", stream.on_air());
    if let Some(h) = &stream.hls {
        let _ = write!(source, ",\"hls_listeners\":{}", h.listeners());
    }
    if let Some(link) = link {
        let _ = write!(source, ",\"link\":{}", link_json(link));
    }
    let played = played_json(&stream.meta.played());
    let _ = write!(source, ",\"played\":{played}");
    source.push_str(",\"dummy\":null}");
    source
}

/// The link and each path it has used: up, round trip, how far behind the first copy its
/// late copies come, fragments first, late and lost, bytes.
fn link_json(link: &crate::link::LinkState) -> String {
    let paths: Vec<String> = link
        .paths
        .all()
        .filter_map(|(i, p)| {
            let name = p.label.lock().clone();
            (!name.is_empty()).then(|| {
                format!(
                    "{{\"path\":{i},\"name\":{},\"up\":{},\"rtt_ms\":{},\"behind_ms\":{},\"first\":{},\"late\":{},\"lost\":{},\"bytes\":{},\"connects\":{}}}",
                    json(&name),
                    p.up.load(Relaxed),
                    p.rtt_us.load(Relaxed) / 1000,
                    p.behind_us.load(Relaxed) / 1000,
                    p.first.load(Relaxed),
                    p.late.load(Relaxed),
                    p.lost.load(Relaxed),
                    p.bytes.load(Relaxed),
                    p.connects.load(Relaxed),
                )
            })
        })
        .collect();
    format!(
        "{{\"up\":{},\"buffer_ms\":{},\"paths\":[{}]}}",
        link.paths.any_up(),
        link.stats.buffer_ms.load(Relaxed),
        paths.join(",")
    )
}

/// The played list (`/played.html?type=json` serves it too), in SHOUTcast's shape:
/// `[{"playedat": SECONDS, "title": "…"}, …]`.
pub fn played_json(played: &[(u64, Arc<str>)]) -> String {
    let items: Vec<String> = played
        .iter()
        .map(|(at, title)| format!("{{\"playedat\":{at},\"title\":{}}}", json(title)))
        .collect();
    format!("[{}]", items.join(","))
}

/// A JSON string literal.
pub fn json(s: &str) -> String {
    let mut out = String::with_capacity(s.len().saturating_add(2));
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(
            super::json("a\"b\\c\nd\u{1}é"),
            "\"a\\\"b\\\\c\\nd\\u0001é\""
        );
    }
}
