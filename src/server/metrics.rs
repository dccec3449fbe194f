//! `/metrics` in Prometheus text format. Each stream's series carry a `mount` label when
//! mounts are in use (`ringcast_listeners{mount="/live"} 3`); without mounts they are as
//! they always were (`ringcast_listeners 3`). Server-wide series have no label. The tables of
//! each stream's and each link path's series are in `metric_series.rs`.

use super::metric_series::{PATH, STREAM};
use super::Served;
use super::Server;
use crate::http::conn::Conn;
use crate::http::server::{self as http, Request};

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

/// The per-path series of every stream's link paths that have been used.
fn path_series(m: &mut String, streams: &[Served], mounted: bool) {
    for (name, kind, help, value) in PATH {
        let mut lines = String::new();
        for (s, link) in streams {
            let Some(link) = &link.link else {
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
    let streams = server.served();
    let mut m = String::new();
    for (name, kind, help, value) in STREAM {
        let values: Vec<(&str, u64)> = streams
            .iter()
            .filter_map(|(s, l)| value(s, l).map(|v| (s.mount(), v)))
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
        .map(|(s, _)| s.stats.listeners_refused.load(Relaxed))
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
