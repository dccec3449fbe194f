//! The admin's view of the audience: `/admin/listeners` (JSON) and `/admin/kick?id=N`, and
//! Icecast's `/admin/listclients?mount=…` and `/admin/killclient?mount=…&id=N` in Icecast's
//! XML, for tools written against Icecast. All need the admin login.

use super::status::json;
use super::{admin, Server};
use crate::http::conn::Conn;
use crate::http::server::{self as http, Request};
use crate::http::url::query_param;
use crate::sink::audience::Entry;
use log::info;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;

/// `/admin/listeners[?mount=PATH]`: every connected listener.
pub fn list_json(conn: &mut Conn, peer: SocketAddr, req: &Request, server: &Server) {
    if !admin::require(conn, peer, req, server) {
        return;
    }
    let mount = text_param(req, "mount");
    let rows: Vec<String> = server
        .audience
        .list(mount.as_deref())
        .iter()
        .map(|e| row_json(e))
        .collect();
    let body = format!("{{\"listeners\":[{}]}}\n", rows.join(","));
    let extra = [("Cache-Control", "no-store")];
    http::reply(conn, req, "application/json; charset=utf-8", &extra, &body);
}

fn row_json(e: &Entry) -> String {
    format!(
        "{{\"id\":{},\"mount\":{},\"address\":{},\"user\":{},\"user_agent\":{},\"tls\":{},\
         \"connected_seconds\":{},\"bytes_sent\":{},\"skips\":{}}}",
        e.id,
        json(&e.mount),
        json(&e.peer.to_string()),
        e.user.as_deref().map_or("null".to_string(), json),
        json(&e.agent),
        e.tls,
        e.since.elapsed().as_secs(),
        e.bytes.load(Relaxed),
        e.skips.load(Relaxed),
    )
}

/// `/admin/kick?id=N[&mount=PATH]`: ends listener N.
pub fn kick(conn: &mut Conn, peer: SocketAddr, req: &Request, server: &Server) {
    if !admin::require(conn, peer, req, server) {
        return;
    }
    let Some(id) = id_param(req) else {
        return http::respond(
            conn,
            req.minor,
            400,
            "need id=N (from /admin/listeners)",
            &[],
        );
    };
    let mount = text_param(req, "mount");
    if server.audience.kick(id, mount.as_deref()) {
        info!("{peer}: kicked listener {id}");
        http::respond(conn, req.minor, 200, &format!("listener {id} kicked"), &[]);
    } else {
        http::respond(conn, req.minor, 404, &format!("no listener {id}"), &[]);
    }
}

/// Icecast's `/admin/listclients?mount=PATH`.
pub fn listclients(conn: &mut Conn, peer: SocketAddr, req: &Request, server: &Server) {
    if !admin::require(conn, peer, req, server) {
        return;
    }
    let Some(mount) = icecast_mount(conn, req, server) else {
        return;
    };
    let listeners = server.audience.list(Some(&mount));
    let mut body = format!(
        "<?xml version=\"1.0\"?>\n<icestats><source mount=\"{}\"><Listeners>{}</Listeners>",
        xml(&mount),
        listeners.len()
    );
    for e in &listeners {
        let _ = write!(
            body,
            "<listener><IP>{}</IP><UserAgent>{}</UserAgent><Connected>{}</Connected><ID>{}</ID>{}</listener>",
            e.peer.ip(),
            xml(&e.agent),
            e.since.elapsed().as_secs(),
            e.id,
            e.user.as_deref().map_or(String::new(), |u| format!("<username>{}</username>", xml(u))),
        );
    }
    body.push_str("</source></icestats>\n");
    http::reply(conn, req, "text/xml; charset=utf-8", &[], &body);
}

/// Icecast's `/admin/killclient?mount=PATH&id=N`.
pub fn killclient(conn: &mut Conn, peer: SocketAddr, req: &Request, server: &Server) {
    if !admin::require(conn, peer, req, server) {
        return;
    }
    let Some(mount) = icecast_mount(conn, req, server) else {
        return;
    };
    let kicked = id_param(req).filter(|&id| server.audience.kick(id, Some(&mount)));
    let (message, ok) = match kicked {
        Some(id) => {
            info!("{peer}: kicked listener {id} (killclient)");
            (format!("Client {id} removed"), 1)
        }
        None => ("Client not found".to_string(), 0),
    };
    let body = format!(
        "<?xml version=\"1.0\"?>\n<iceresponse><message>{message}</message><return>{ok}</return></iceresponse>\n"
    );
    http::reply(conn, req, "text/xml; charset=utf-8", &[], &body);
}

/// The mount an Icecast call names (without `-mount`, the one stream's "/"); 400 or 404
/// answered here when there is none.
fn icecast_mount(conn: &mut Conn, req: &Request, server: &Server) -> Option<String> {
    let mount = match text_param(req, "mount") {
        Some(m) => m,
        None if !server.cfg.mounted => "/".to_string(),
        None => {
            http::respond(conn, req.minor, 400, "need mount=", &[]);
            return None;
        }
    };
    if server.cfg.mounted && server.stream_for(&mount).is_none() {
        http::respond(conn, req.minor, 404, "no such mount", &[]);
        return None;
    }
    // Without -mount, entries are registered under "/".
    Some(if server.cfg.mounted {
        mount
    } else {
        "/".to_string()
    })
}

fn text_param(req: &Request, key: &str) -> Option<String> {
    query_param(&req.path, key).map(|v| String::from_utf8_lossy(&v).into_owned())
}

fn id_param(req: &Request) -> Option<u64> {
    text_param(req, "id").and_then(|v| v.trim().parse().ok())
}

/// Text for XML content and attribute values.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters are not allowed in XML 1.0.
            c if c.is_control() => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn xml_text_is_escaped() {
        assert_eq!(
            super::xml("a<b>&\"c'\u{1}"),
            "a&lt;b&gt;&amp;&quot;c&apos;?"
        );
    }
}
