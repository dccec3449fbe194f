//! `-listener-auth-url URL`: Icecast's URL authentication, which AzuraCast and station
//! panels speak. Before a listener is let in, the station's own service is asked with a form
//! POST (`action=listener_add`, `server`, `port`, `client`, `mount` with its query, `user`,
//! `pass`, `ip`, `agent`); an answer carrying `icecast-auth-user: 1` admits it, any other
//! refuses it with 403 (and `icecast-auth-message` as the reason when given). When it leaves,
//! `action=listener_remove` with the same `client` and its `duration` in seconds.
//!
//! The service being slow or down refuses new listeners after [`DEADLINE`] (503) and never
//! touches those already listening. Answers are not cached: every listener is one
//! `listener_add` and one `listener_remove`, so the service's own count stays right (a
//! reconnecting player costs a round trip). Removals go to the `auth-remove` thread through a
//! bounded queue (a full queue drops the removal and counts it): a listener's end never
//! waits for the service.

use crate::http::client::{self, Head};
use crate::http::conn::Conn;
use crate::http::server::Request;
use crate::http::url::{encode_component, Url};
use crate::util::deadline::Deadline;
use crossbeam_channel::{bounded, Sender};
use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long a new listener waits for the service's answer before it is refused.
pub const DEADLINE: Duration = Duration::from_secs(2);
/// Removals waiting for the `auth-remove` thread.
const REMOVALS: usize = 4096;

/// A listener let in by the service, to be removed when it leaves.
pub struct Admitted {
    url: Url,
    client: u64,
    since: Instant,
    form: Form,
}

/// The fields both calls share.
#[derive(Clone)]
struct Form {
    server: String,
    port: u16,
    mount: String,
    user: String,
    pass: String,
    ip: String,
    agent: String,
}

#[derive(Default)]
pub struct UrlAuth {
    next_client: AtomicU64,
    removals: OnceLock<Sender<(Admitted, u64)>>,
    /// Removals dropped because the queue was full.
    pub removals_dropped: AtomicU64,
}

impl UrlAuth {
    /// Asks `url` whether the listener of `req` from `ip` may come in: the listener to
    /// remove when it leaves, or the status to refuse it with and why.
    pub fn admit(
        &self,
        url: &Url,
        req: &Request,
        ip: IpAddr,
        port: u16,
    ) -> Result<Admitted, (u16, String)> {
        let (user, pass) = req
            .header("Authorization")
            .and_then(crate::http::auth::parse_basic)
            .unwrap_or_default();
        let host = req.header("Host").unwrap_or_default();
        let form = Form {
            server: host_only(host).to_string(),
            port,
            mount: req.path.clone(),
            user,
            pass,
            ip: ip.to_string(),
            agent: req.header("User-Agent").unwrap_or_default().to_string(),
        };
        let client = self.next_client.fetch_add(1, Relaxed).saturating_add(1);
        match post(url, "listener_add", client, &form, None) {
            Ok(head) if head.get("icecast-auth-user").map(str::trim) == Some("1") => Ok(Admitted {
                url: url.clone(),
                client,
                since: Instant::now(),
                form,
            }),
            Ok(head) => Err((
                403,
                head.get("icecast-auth-message")
                    .map(|m| m.chars().filter(|c| !c.is_control()).take(200).collect())
                    .unwrap_or_else(|| "not admitted by -listener-auth-url".to_string()),
            )),
            Err(e) => {
                log::warn!(
                    "{ip}: -listener-auth-url {}: {e}: the listener is refused",
                    url.redacted()
                );
                Err((503, "the admission service did not answer".to_string()))
            }
        }
    }

    /// The listener `a` left: `listener_remove` goes out on the `auth-remove` thread.
    pub fn left(&self, a: Admitted) {
        let tx = self.removals.get_or_init(|| {
            let (tx, rx) = bounded::<(Admitted, u64)>(REMOVALS);
            let spawned = std::thread::Builder::new()
                .name("auth-remove".into())
                .spawn(move || {
                    for (a, secs) in rx {
                        if let Err(e) =
                            post(&a.url, "listener_remove", a.client, &a.form, Some(secs))
                        {
                            log::info!(
                                "-listener-auth-url {}: listener_remove of client {}: {e}",
                                a.url.redacted(),
                                a.client
                            );
                        }
                    }
                });
            if let Err(e) = spawned {
                log::error!("auth-remove: {e}");
            }
            tx
        });
        let secs = a.since.elapsed().as_secs();
        if tx.try_send((a, secs)).is_err() {
            self.removals_dropped.fetch_add(1, Relaxed);
        }
    }
}

/// A `Host` header's host: without its port, an IPv6 literal kept whole (`[::1]`).
fn host_only(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((h, port)) if !port.contains(']') => h,
        _ => host,
    }
}

/// The form POST, within [`DEADLINE`]; the answer's head.
fn post(url: &Url, action: &str, client: u64, f: &Form, duration: Option<u64>) -> io::Result<Head> {
    let mut body = format!(
        "action={action}&server={}&port={}&client={client}&mount={}&user={}&pass={}&ip={}&agent={}",
        encode_component(&f.server),
        f.port,
        encode_component(&f.mount),
        encode_component(&f.user),
        encode_component(&f.pass),
        encode_component(&f.ip),
        encode_component(&f.agent),
    );
    if let Some(secs) = duration {
        body.push_str(&format!("&duration={secs}"));
    }
    let deadline = Deadline::after(DEADLINE);
    let mut conn = Conn::connect(url, deadline)?;
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        if url.path.is_empty() { "/" } else { &url.path },
        url.authority(),
        client::user_agent(),
        body.len()
    );
    let (head, _) = client::exchange(&mut conn, request.as_bytes(), deadline)?;
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::host_only;

    #[test]
    fn hosts_lose_their_port_only() {
        for (given, want) in [
            ("radio.test:8000", "radio.test"),
            ("radio.test", "radio.test"),
            ("[::1]:8000", "[::1]"),
            ("[::1]", "[::1]"),
            ("", ""),
        ] {
            assert_eq!(host_only(given), want);
        }
    }
}
