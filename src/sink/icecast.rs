//! `-icecast icecast://user:pass@host:port/mount`: ringcast as a source client of an Icecast
//! server (thread `out-icecast`), the way to scale out past one Pi onto an Icecast fleet.
//!
//! The stream goes as an identity-framed `PUT` (Icecast ≥ 2.4, as ffmpeg and libshout send
//! it) on a raw socket: a general HTTP client would want the whole body before reading
//! Icecast's answer, and this body never ends. Titles go with Icecast's admin metadata call,
//! a short request (`client::get`). The connection is redialled with capped, jittered
//! backoff; ringcast's own listeners never notice.

use crate::error::Error;
use crate::http::auth;
use crate::http::client;
use crate::http::conn::Conn;
use crate::http::url::{encode_component, Url};
use crate::ring::ReadOutcome;
use crate::stream::stats::Stats;
use crate::stream::Stream;
use crate::util::deadline::Deadline;
use crate::util::retry::{Retry, Then};
use log::{info, warn};
use std::io::{self, Write};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Duration;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
const ADMIN_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection that lasted this long resets the backoff.
const HEALTHY: Duration = Duration::from_secs(30);

/// The output's state, its own (the server keeps it beside the stream for `/metrics`).
#[derive(Debug, Default)]
pub struct OutputState {
    /// Connected to the `-icecast` server now.
    pub up: AtomicBool,
    /// Sessions begun.
    pub connects: AtomicU64,
}

pub fn run(stream: &Stream, state: &OutputState, write_timeout: Duration) {
    let cfg = &stream.cfg;
    let Some(url) = cfg.icecast.as_ref() else {
        return;
    };
    let attempt = || {
        if stream.source_ended() {
            return Then::Done;
        }
        Stats::add(&state.connects, 1);
        let result = session(url, stream, state, write_timeout);
        state.up.store(false, Relaxed);
        match result {
            Ok(()) => Then::Done,
            Err(e) => {
                warn!("icecast output {}: {e}", url.redacted());
                Then::Retry
            }
        }
    };
    let waiting = |delay: Duration| {
        info!(
            "icecast output: reconnecting in {:.1}s",
            delay.as_secs_f64()
        );
    };
    Retry::new(Duration::from_secs(1), Duration::from_secs(30), HEALTHY).run(
        &stream.stop,
        attempt,
        waiting,
    );
}

/// One connection: log in, then send the stream until it ends or the connection fails.
fn session(
    url: &Url,
    stream: &Stream,
    state: &OutputState,
    write_timeout: Duration,
) -> io::Result<()> {
    // Connecting, the TLS handshake and Icecast's answer share one deadline.
    let deadline = Deadline::after(CONNECT_TIMEOUT.saturating_add(ANSWER_TIMEOUT));
    let mut conn = Conn::connect(url, deadline)?;
    let head = put_head(url, stream);
    let (answer, _) = client::exchange(&mut conn, head.as_bytes(), deadline)
        .map_err(|e| io::Error::new(e.kind(), format!("Icecast: {e}")))?;
    conn.set_write_timeout(Some(write_timeout))?;
    conn.set_read_timeout(Some(ANSWER_TIMEOUT))?;
    match answer.status {
        100 | 200 => {}
        401 => {
            return Err(io::Error::other(
                "Icecast refused the source user or password (401)",
            ))
        }
        403 => {
            return Err(io::Error::other(
                "Icecast refused the mount (403: in use or not allowed)",
            ))
        }
        s => return Err(io::Error::other(format!("Icecast answered {s}"))),
    }
    info!("icecast output: sending the stream to {}", url.redacted());
    state.up.store(true, Relaxed);

    let mut cursor = stream.ring.join(0);
    let mut title_sent = 0;
    let mut out = Vec::new();
    // One output per stream: it copies its batch into one buffer for one write (TLS or not).
    let mut buf = Vec::new();
    loop {
        let (title, seq) = stream.meta.title();
        if seq != title_sent {
            title_sent = seq;
            if !title.is_empty() {
                match update_title(url, &title) {
                    Ok(()) => info!("icecast output: title {title:?} sent"),
                    Err(e) => warn!("icecast output: title update failed: {e}"),
                }
            }
        }
        out.clear();
        match stream.ring.read(
            &mut cursor,
            &mut out,
            u64::MAX,
            64 * 1024,
            Duration::from_secs(1),
        ) {
            ReadOutcome::Data { .. } => {
                buf.clear();
                out.iter().for_each(|f| buf.extend_from_slice(f));
                conn.write_all(&buf)?
            }
            ReadOutcome::Ended => return Ok(()),
            ReadOutcome::Idle | ReadOutcome::NoRoom => {}
        }
        if stream.stop.is_set() {
            return Ok(());
        }
    }
}

/// The `PUT` request's head: the login, the stream's content type and its `Ice-*` fields.
fn put_head(url: &Url, stream: &Stream) -> String {
    let info = stream.meta.info();
    let user = url.user.as_deref().unwrap_or("source");
    let password = url.password.as_deref().unwrap_or("");
    let mut head = format!(
        "PUT {} HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\nUser-Agent: {}\r\n\
         Content-Type: {}\r\nIce-Public: {}\r\nExpect: 100-continue\r\n",
        url.path,
        url.authority(),
        auth::basic_header(user, password),
        client::user_agent(),
        stream.content_type(),
        u8::from(info.public),
    );
    for (name, value) in [
        ("Ice-Name", &info.name),
        ("Ice-Genre", &info.genre),
        ("Ice-Description", &info.description),
        ("Ice-Url", &info.url),
        ("Ice-Bitrate", &info.bitrate),
    ] {
        if !value.is_empty() && !value.contains(['\r', '\n']) {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    head.push_str("\r\n");
    head
}

/// Icecast's admin metadata call with the source login.
fn update_title(url: &Url, title: &str) -> Result<(), Error> {
    let path = format!(
        "/admin/metadata?mount={}&mode=updinfo&charset=UTF-8&song={}",
        encode_component(&url.path),
        encode_component(title)
    );
    let user = url.user.as_deref().unwrap_or("source");
    let password = url.password.as_deref().unwrap_or("");
    let login = auth::basic_header(user, password);
    match client::get(url, &path, &[("Authorization", &login)], ADMIN_TIMEOUT) {
        Ok((head, _)) if head.status == 200 => Ok(()),
        Ok((head, _)) => Err(format!("Icecast answered {}", head.status).into()),
        Err(e) => Err(e.to_string().into()),
    }
}
