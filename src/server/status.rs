//! Monitoring: `/status-json.xsl` in Icecast's shape (so dashboards and monitors written for
//! Icecast work) and `/metrics` in Prometheus text format. Neither counts as a listener.
//! One Icecast wart is fixed on purpose: `source` is always an array, even with one source.

use crate::config::Config;
use crate::http::server::{self as http, Request};
use crate::stream::{Shared, SourceState};
use crate::util::timefmt;
use std::fmt::Write as _;
use std::net::TcpStream;
use std::sync::atomic::Ordering::Relaxed;

pub fn status_json(conn: &mut TcpStream, req: &Request, shared: &Shared) {
    let info = shared.meta.info();
    let (title, _) = shared.meta.title();
    let host = req.header("Host").unwrap_or("localhost").to_string();
    let mut source = format!(
        "{{\"audio_info\":{},\"genre\":{},\"listener_peak\":{},\"listeners\":{},\"listenurl\":{},\
         \"server_description\":{},\"server_name\":{},\"server_type\":{},\"server_url\":{},\
         \"title\":{},\"public\":{}",
        json(&format!("bitrate={}", info.bitrate)),
        json(&info.genre),
        shared.listener_peak.load(Relaxed),
        shared.listeners(),
        json(&format!("http://{host}/")),
        json(&info.description),
        json(&info.name),
        json(&shared.content_type()),
        json(&info.url),
        json(&title),
        u8::from(info.public),
    );
    if let Some(t) = *shared.stream_started.lock() {
        let _ = write!(
            source,
            ",\"stream_start\":{},\"stream_start_iso8601\":{}",
            json(&timefmt::rfc2822(t)),
            json(&timefmt::iso8601(t))
        );
    }
    source.push_str(",\"dummy\":null}");
    let body = format!(
        "{{\"icestats\":{{\"admin\":\"\",\"host\":{},\"location\":\"\",\"server_id\":{},\
         \"server_start\":{},\"server_start_iso8601\":{},\"source\":[{source}]}}}}\n",
        json(host.split(':').next().unwrap_or_default()),
        json(&format!("ringcast {}", env!("CARGO_PKG_VERSION"))),
        json(&timefmt::rfc2822(shared.started)),
        json(&timefmt::iso8601(shared.started)),
    );
    send(conn, req, "application/json; charset=utf-8", &body);
}

pub fn metrics(conn: &mut TcpStream, req: &Request, cfg: &Config, shared: &Shared) {
    let st = &shared.stats;
    let mut m = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
        let _ = write!(m, "# HELP ringcast_{name} {help}\n# TYPE ringcast_{name} {kind}\nringcast_{name} {value}\n");
    };
    metric(
        "listeners",
        "gauge",
        "Listeners connected now.",
        shared.listeners() as u64,
    );
    metric(
        "listener_peak",
        "gauge",
        "Most listeners at once since start.",
        shared.listener_peak.load(Relaxed) as u64,
    );
    metric(
        "listeners_total",
        "counter",
        "Listeners served since start.",
        st.listeners_total.load(Relaxed),
    );
    metric(
        "bytes_in_total",
        "counter",
        "Bytes read from the source.",
        st.bytes_in.load(Relaxed),
    );
    metric(
        "bytes_out_total",
        "counter",
        "Bytes sent to listeners.",
        st.bytes_out.load(Relaxed),
    );
    metric(
        "frames_in_total",
        "counter",
        "Frames put in the ring.",
        st.frames_in.load(Relaxed),
    );
    metric(
        "frames_skipped_total",
        "counter",
        "Frames slow listeners skipped.",
        st.frames_skipped.load(Relaxed),
    );
    metric(
        "junk_bytes_total",
        "counter",
        "Source bytes that were not frames.",
        st.junk_bytes.load(Relaxed),
    );
    metric(
        "source_opens_total",
        "counter",
        "Source opens (the first one and every reconnect).",
        st.source_opens.load(Relaxed),
    );
    metric(
        "source_failures_total",
        "counter",
        "Source opens or reads that failed.",
        st.source_failures.load(Relaxed),
    );
    metric(
        "source_up",
        "gauge",
        "1 while the source is open.",
        u64::from(shared.source_state() == SourceState::Open),
    );
    metric(
        "source_client_connected",
        "gauge",
        "1 while a source client pushes to us.",
        u64::from(shared.push.connected()),
    );
    metric(
        "refused_total",
        "counter",
        "Listeners or connections refused over a limit.",
        st.listeners_refused
            .load(Relaxed)
            .saturating_add(st.connections_refused.load(Relaxed)),
    );
    metric(
        "bad_requests_total",
        "counter",
        "Malformed or unsupported requests.",
        st.bad_requests.load(Relaxed),
    );
    if cfg.icecast.is_some() {
        metric(
            "icecast_output_up",
            "gauge",
            "1 while connected to the -icecast server.",
            u64::from(shared.output_up.load(Relaxed)),
        );
        metric(
            "icecast_output_connects_total",
            "counter",
            "Connections made to the -icecast server.",
            st.output_connects.load(Relaxed),
        );
    }
    if let Some(l) = &shared.link {
        let ls = &l.stats;
        metric(
            "link_up",
            "gauge",
            "1 while a link session is connected.",
            u64::from(ls.up.load(Relaxed)),
        );
        metric(
            "link_connects_total",
            "counter",
            "Link sessions started.",
            ls.connects.load(Relaxed),
        );
        metric(
            "link_stalls_total",
            "counter",
            "Link sessions that stalled (no traffic for 2 s).",
            ls.stalls.load(Relaxed),
        );
        metric(
            "link_refused_total",
            "counter",
            "Link handshakes refused (wrong key, stale nonce).",
            ls.refused.load(Relaxed),
        );
        metric(
            "link_bad_messages_total",
            "counter",
            "Link messages that failed their MAC check.",
            ls.bad_messages.load(Relaxed),
        );
        metric(
            "link_gaps_total",
            "counter",
            "Gaps: fragments the origin no longer had.",
            ls.gaps.load(Relaxed),
        );
        metric(
            "link_duplicates_total",
            "counter",
            "Fragments received twice (ignored).",
            ls.duplicates.load(Relaxed),
        );
        metric(
            "link_silence_frames_total",
            "counter",
            "Silent frames played while the link was down.",
            ls.silence_frames.load(Relaxed),
        );
        metric(
            "link_frames_dropped_total",
            "counter",
            "Frames that arrived too late to play.",
            ls.frames_dropped.load(Relaxed),
        );
        metric(
            "link_fragments_refused_total",
            "counter",
            "Fragments refused: absurd capture time, frames over -frame-bytes, or a full buffer.",
            ls.fragments_refused.load(Relaxed),
        );
        metric(
            "link_buffer_ms",
            "gauge",
            "Receiver: stream buffered ahead of playout, ms.",
            ls.buffer_ms.load(Relaxed),
        );
    }
    metric(
        "uptime_seconds",
        "gauge",
        "Seconds since start.",
        shared.started.elapsed().map_or(0, |d| d.as_secs()),
    );
    send(conn, req, "text/plain; version=0.0.4; charset=utf-8", &m);
}

fn send(conn: &mut TcpStream, req: &Request, content_type: &str, body: &str) {
    let length = body.len().to_string();
    let mut out = http::head(
        req.minor,
        200,
        content_type,
        &[
            ("Content-Length", length.as_str()),
            ("Cache-Control", "no-cache"),
        ],
    );
    if req.method != "HEAD" {
        out.push_str(body);
    }
    if std::io::Write::write_all(conn, out.as_bytes()).is_ok() {
        http::close_gracefully(conn);
    }
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
