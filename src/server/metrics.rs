//! `/metrics` in Prometheus text format. Each stream's series carry a `mount` label when
//! mounts are in use (`ringcast_listeners{mount="/live"} 3`); without mounts they are as
//! they always were (`ringcast_listeners 3`). Server-wide series have no label.

use super::Server;
use crate::http::conn::Conn;
use crate::http::server::{self as http, Request};
use crate::link::paths::PathStats;
use crate::link::LinkStats;
use crate::stream::Stream;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

/// A stream's value of a series; `None` where it does not apply (no link, no output).
type Value = fn(&Stream) -> Option<u64>;

fn load(c: &AtomicU64) -> Option<u64> {
    Some(c.load(Relaxed))
}

fn flag(b: &AtomicBool) -> Option<u64> {
    Some(u64::from(b.load(Relaxed)))
}

fn link(s: &Stream, f: fn(&LinkStats) -> u64) -> Option<u64> {
    s.link.as_ref().map(|l| f(&l.stats))
}

/// Each stream's series: name, type, help, value.
const STREAM: &[(&str, &str, &str, Value)] = &[
    ("listeners", "gauge", "Listeners connected now.", |s| {
        Some(s.listeners() as u64)
    }),
    (
        "listener_peak",
        "gauge",
        "Most listeners at once since start.",
        |s| Some(s.listener_peak.load(Relaxed) as u64),
    ),
    (
        "listeners_total",
        "counter",
        "Listeners served since start.",
        |s| load(&s.stats.listeners_total),
    ),
    (
        "bytes_in_total",
        "counter",
        "Bytes read from the source.",
        |s| load(&s.stats.bytes_in),
    ),
    (
        "bytes_out_total",
        "counter",
        "Bytes sent to listeners.",
        |s| load(&s.stats.bytes_out),
    ),
    (
        "frames_in_total",
        "counter",
        "Frames put in the ring.",
        |s| load(&s.stats.frames_in),
    ),
    (
        "frames_skipped_total",
        "counter",
        "Frames slow listeners skipped.",
        |s| load(&s.stats.frames_skipped),
    ),
    (
        "junk_bytes_total",
        "counter",
        "Source bytes that were not frames.",
        |s| load(&s.stats.junk_bytes),
    ),
    (
        "source_opens_total",
        "counter",
        "Source opens (the first one and every reconnect).",
        |s| load(&s.stats.source_opens),
    ),
    (
        "source_failures_total",
        "counter",
        "Source opens or reads that failed.",
        |s| load(&s.stats.source_failures),
    ),
    (
        "source_up",
        "gauge",
        "1 while a source is on air (open, or a source client connected).",
        |s| Some(u64::from(s.on_air())),
    ),
    (
        "hls_listeners",
        "gauge",
        "HLS clients (an address and user agent) seen within two segment durations.",
        |s| s.hls.as_ref().map(|h| h.listeners() as u64),
    ),
    (
        "hls_playlist_requests_total",
        "counter",
        "HLS playlist requests answered.",
        |s| {
            s.hls.as_ref().map(|h| {
                h.playlist_requests
                    .load(std::sync::atomic::Ordering::Relaxed)
            })
        },
    ),
    (
        "hls_segment_requests_total",
        "counter",
        "HLS segment requests answered.",
        |s| {
            s.hls.as_ref().map(|h| {
                h.segment_requests
                    .load(std::sync::atomic::Ordering::Relaxed)
            })
        },
    ),
    (
        "muted",
        "gauge",
        "1 while muted (/admin/mute): listeners hear silence.",
        |s| Some(u64::from(s.is_muted())),
    ),
    (
        "source_client_connected",
        "gauge",
        "1 while a source client pushes to us.",
        |s| Some(u64::from(s.push.connected())),
    ),
    (
        "listeners_refused_total",
        "counter",
        "Listeners refused over -max-clients.",
        |s| load(&s.stats.listeners_refused),
    ),
    (
        "icecast_output_up",
        "gauge",
        "1 while connected to the -icecast server.",
        |s| s.cfg.icecast.as_ref().and(flag(&s.output_up)),
    ),
    (
        "icecast_output_connects_total",
        "counter",
        "Connections made to the -icecast server.",
        |s| s.cfg.icecast.as_ref().and(load(&s.stats.output_connects)),
    ),
    (
        "record_bytes_total",
        "counter",
        "Bytes the recorder (-record) wrote.",
        |s| {
            s.cfg
                .record
                .as_ref()
                .map(|_| s.stats.record_bytes.load(Relaxed))
        },
    ),
    (
        "record_errors_total",
        "counter",
        "Recorder writes that failed (a full or failing disk).",
        |s| {
            s.cfg
                .record
                .as_ref()
                .map(|_| s.stats.record_errors.load(Relaxed))
        },
    ),
    (
        "record_frames_lost_total",
        "counter",
        "Frames the recorder did not write (the disk fell behind, or failed).",
        |s| {
            s.cfg
                .record
                .as_ref()
                .map(|_| s.stats.record_frames_lost.load(Relaxed))
        },
    ),
    (
        "link_up",
        "gauge",
        "1 while a link session is connected.",
        |s| s.link.as_ref().map(|l| u64::from(l.paths.any_up())),
    ),
    (
        "link_connects_total",
        "counter",
        "Link sessions that connected.",
        |s| link(s, |l| l.connects.load(Relaxed)),
    ),
    (
        "link_dial_failures_total",
        "counter",
        "Dials of the link that did not become a session (refused, unreachable, timed out).",
        |s| link(s, |l| l.dial_failures.load(Relaxed)),
    ),
    (
        "link_stalls_total",
        "counter",
        "Link sessions that stalled (no traffic for 2 s).",
        |s| link(s, |l| l.stalls.load(Relaxed)),
    ),
    (
        "link_refused_total",
        "counter",
        "Link handshakes refused (wrong key, stale nonce).",
        |s| link(s, |l| l.refused.load(Relaxed)),
    ),
    (
        "link_bad_messages_total",
        "counter",
        "Link messages that failed their MAC check.",
        |s| link(s, |l| l.bad_messages.load(Relaxed)),
    ),
    (
        "link_gaps_total",
        "counter",
        "Gaps: fragments the origin no longer had.",
        |s| link(s, |l| l.gaps.load(Relaxed)),
    ),
    (
        "link_duplicates_total",
        "counter",
        "Fragments received twice (ignored).",
        |s| link(s, |l| l.duplicates.load(Relaxed)),
    ),
    (
        "link_silence_frames_total",
        "counter",
        "Silent frames played while the link was down.",
        |s| link(s, |l| l.silence_frames.load(Relaxed)),
    ),
    (
        "link_frames_dropped_total",
        "counter",
        "Frames that arrived too late to play.",
        |s| link(s, |l| l.frames_dropped.load(Relaxed)),
    ),
    (
        "link_fragments_refused_total",
        "counter",
        "Fragments refused: absurd capture time, frames over -frame-bytes, or a full buffer.",
        |s| link(s, |l| l.fragments_refused.load(Relaxed)),
    ),
    (
        "link_buffer_ms",
        "gauge",
        "Receiver: stream buffered ahead of playout, ms.",
        |s| link(s, |l| l.buffer_ms.load(Relaxed)),
    ),
];

/// Each link path's series (labelled `path="N"`): name, type, help, value.
type PathValue = fn(&PathStats) -> u64;
const PATH: &[(&str, &str, &str, PathValue)] = &[
    (
        "link_path_up",
        "gauge",
        "1 while this link path has a session.",
        |p| u64::from(p.up.load(Relaxed)),
    ),
    (
        "link_path_rtt_ms",
        "gauge",
        "The path's last handshake round trip, ms.",
        |p| p.rtt_us.load(Relaxed) / 1000,
    ),
    (
        "link_path_behind_ms",
        "gauge",
        "Receiver: how far behind another path's copy this path's last late copy came, ms.",
        |p| p.behind_us.load(Relaxed) / 1000,
    ),
    (
        "link_path_fragments_first_total",
        "counter",
        "Receiver: fragments this path brought before any other.",
        |p| p.first.load(Relaxed),
    ),
    (
        "link_path_fragments_late_total",
        "counter",
        "Receiver: copies this path brought after another path's.",
        |p| p.late.load(Relaxed),
    ),
    (
        "link_path_fragments_lost_total",
        "counter",
        "Receiver: fragments this path skipped (down, or resumed after another path).",
        |p| p.lost.load(Relaxed),
    ),
    (
        "link_path_bytes_total",
        "counter",
        "Link bytes carried by this path (received, or pushed).",
        |p| p.bytes.load(Relaxed),
    ),
    (
        "link_path_connects_total",
        "counter",
        "Sessions that connected on this path.",
        |p| p.connects.load(Relaxed),
    ),
];

/// The per-path series of every stream's link paths that have been used.
fn path_series(m: &mut String, streams: &[std::sync::Arc<Stream>], mounted: bool) {
    for (name, kind, help, value) in PATH {
        let mut lines = String::new();
        for s in streams {
            let Some(link) = s.link.as_ref() else {
                continue;
            };
            for (i, p) in link.paths.all() {
                if p.label.lock().is_empty() {
                    continue;
                }
                let v = value(p);
                if mounted {
                    let _ = writeln!(
                        lines,
                        "ringcast_{name}{{mount=\"{}\",path=\"{i}\"}} {v}",
                        label(s.mount())
                    );
                } else {
                    let _ = writeln!(lines, "ringcast_{name}{{path=\"{i}\"}} {v}");
                }
            }
        }
        if !lines.is_empty() {
            let _ = write!(
                m,
                "# HELP ringcast_{name} {help}\n# TYPE ringcast_{name} {kind}\n{lines}"
            );
        }
    }
}

pub fn metrics(conn: &mut Conn, req: &Request, server: &Server) {
    let streams = server.streams();
    let mut m = String::new();
    for (name, kind, help, value) in STREAM {
        let values: Vec<(&str, u64)> = streams
            .iter()
            .filter_map(|s| value(s).map(|v| (s.mount(), v)))
            .collect();
        if values.is_empty() {
            continue;
        }
        let _ = write!(
            m,
            "# HELP ringcast_{name} {help}\n# TYPE ringcast_{name} {kind}\n"
        );
        for (mount, v) in values {
            if server.cfg.mounted {
                let _ = writeln!(m, "ringcast_{name}{{mount=\"{}\"}} {v}", label(mount));
            } else {
                let _ = writeln!(m, "ringcast_{name} {v}");
            }
        }
    }
    path_series(&mut m, &streams, server.cfg.mounted);
    let st = &server.stats;
    let listeners_refused: u64 = streams
        .iter()
        .map(|s| s.stats.listeners_refused.load(Relaxed))
        .sum();
    let server_series = [
        (
            "refused_total",
            "counter",
            "Listeners or connections refused over a limit.",
            listeners_refused.saturating_add(st.connections_refused.load(Relaxed)),
        ),
        (
            "bad_requests_total",
            "counter",
            "Malformed or unsupported requests, and unknown paths.",
            st.bad_requests.load(Relaxed),
        ),
        (
            "access_log_dropped_total",
            "counter",
            "Access-log lines dropped because the writer was behind (a slow or full disk).",
            server
                .access_log
                .as_ref()
                .map_or(0, |l| l.dropped.load(Relaxed)),
        ),
        (
            "uptime_seconds",
            "gauge",
            "Seconds since start.",
            server.started.elapsed().map_or(0, |d| d.as_secs()),
        ),
    ];
    for (name, kind, help, v) in server_series {
        let _ = write!(
            m,
            "# HELP ringcast_{name} {help}\n# TYPE ringcast_{name} {kind}\nringcast_{name} {v}\n"
        );
    }
    let extra = [("Cache-Control", "no-cache")];
    http::reply(
        conn,
        req,
        "text/plain; version=0.0.4; charset=utf-8",
        &extra,
        &m,
    );
}

/// A label value: Prometheus escapes backslash, quote and line feed.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
