//! The server: its ports, the accept loops, one thread per connection, routing, admin and
//! monitoring.
//!
//! A boundary module: it reads bytes from outside, so the compiler refuses string slicing,
//! indexing, unchecked arithmetic and lossy casts here (README, Security).
#![cfg_attr(
    not(test),
    deny(
        clippy::string_slice,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects,
        clippy::cast_possible_truncation,
        clippy::cast_possible_wrap,
        clippy::cast_sign_loss
    )
)]

pub mod accept;
pub mod access_log;
pub mod admin;
pub mod consumers;
pub mod cors;
pub mod hls;
pub mod hls_token;
pub mod keepalive;
pub mod leaves;
pub mod listener;
pub mod listeners_admin;
pub mod login_budget;
pub mod logins;
pub mod metric_series;
pub mod metrics;
pub mod mounts;
pub mod page;
pub mod peers;
pub mod played;
pub mod playlist_files;
pub mod ports;
pub mod route;
pub mod source_client;
pub mod status;
pub mod url_auth;
pub mod users;

use crate::config::ServerConfig;
use crate::error::Error;
use crate::http::identity::Identity;
use crate::os::shutdown::Shutdown;
use crate::sink::audience::Audience;
use crate::stream::stats::Stats;
use crate::stream::Stream;
use leaves::Leaves;
use log::{error, info};
use parking_lot::RwLock;
use peers::Peers;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::SystemTime;
use users::Users;

/// A stream and what its leaves keep of their own.
pub type Served = (Arc<Stream>, Leaves);

/// The server: what every connection thread holds — its configuration, the streams it
/// serves, the per-address limits, the counters that belong to no stream, the stop flag.
pub struct Server {
    pub cfg: ServerConfig,
    /// Per client address: pending connections and failed logins.
    pub peers: Arc<Peers>,
    pub shutdown: Shutdown,
    /// The accept loop is running (it blocks in accept, so it cannot beat).
    pub accepting: AtomicBool,
    pub started: SystemTime,
    /// Counters of connections that reached no stream (refusals, bad requests).
    pub stats: Stats,
    /// The streams, in `-mount` order, each with what its leaves keep of their own
    /// (`leaves.rs`): one list, so a stream found has its leaves in the same snapshot. A
    /// reload swaps the list; a connection keeps the `Arc<Stream>` it found for as long as it
    /// lives.
    served: RwLock<Vec<Served>>,
    /// Listeners of every stream, against the server-wide `-max-clients`.
    listeners: AtomicUsize,
    /// Connections kept open between short answers (`keepalive.rs`), also against
    /// `-max-clients`.
    pub kept: AtomicUsize,
    /// Who is listening, for the admin's list and kick.
    pub audience: Audience,
    /// The HTTPS port's certificate (reloaded on SIGHUP) and the configuration built on it.
    tls: Option<(Arc<Identity>, Arc<rustls::ServerConfig>)>,
    /// `-listener-users`, swapped whole on SIGHUP.
    users: RwLock<Option<Arc<Users>>>,
    /// Key of private streams' HLS segment tokens (`hls_token.rs`): random, this process.
    pub hls_key: Vec<u8>,
    /// `-access-log`.
    pub access_log: Option<access_log::AccessLog>,
    /// `-listener-auth-url`'s client ids and removals.
    pub url_auth: url_auth::UrlAuth,
}

/// A connection that has not sent its whole request (or TLS handshake) this long after it
/// was accepted counts against its address's `-max-pending-per-ip`: a prompt client, even
/// on a slow path, is done well within it, so a burst of them is never refused for it.
pub const SLOW_AFTER: std::time::Duration = std::time::Duration::from_secs(2);

impl Server {
    /// The server, with its certificate and users read (the config checked they load, so
    /// an error here is a file changed in between).
    pub fn new(cfg: ServerConfig) -> Result<Server, Error> {
        let tls = match &cfg.tls {
            Some(t) => {
                let id = Identity::load(&t.cert, &t.key)?;
                let config = id.server_config()?;
                Some((id, config))
            }
            None => None,
        };
        let users = match &cfg.listener_users {
            Some(path) => Some(Arc::new(Users::load(path)?)),
            None => None,
        };
        let access_log = match &cfg.access_log {
            Some(path) => Some(
                access_log::AccessLog::start(path, cfg.access_log_hash)
                    .map_err(|e| e.to_string())?,
            ),
            None => None,
        };
        Ok(Server {
            peers: Arc::new(Peers::new(peers::Limits {
                max_slow: cfg.max_pending_per_ip,
                max_listeners: cfg.max_listeners_per_ip,
                // A prompt burst of listeners is served up to the address's share of them.
                max_unread: match cfg.max_listeners_per_ip {
                    0 => u32::MAX,
                    n => n.max(cfg.max_pending_per_ip),
                },
            })),
            hls_key: crate::util::random::bytes(32)
                .map_err(|e| format!("no random bytes for HLS tokens: {e}"))?,
            cfg,
            shutdown: Shutdown::default(),
            accepting: AtomicBool::new(true),
            started: SystemTime::now(),
            stats: Stats::default(),
            served: RwLock::new(Vec::new()),
            listeners: AtomicUsize::new(0),
            kept: AtomicUsize::new(0),
            audience: Audience::default(),
            tls,
            users: RwLock::new(users),
            access_log,
            url_auth: url_auth::UrlAuth::default(),
        })
    }

    /// The HTTPS port's configuration (with `-tls-address`).
    pub fn tls_config(&self) -> Option<Arc<rustls::ServerConfig>> {
        self.tls.as_ref().map(|(_, c)| Arc::clone(c))
    }

    /// The listeners' logins (with `-listener-users`).
    pub fn users(&self) -> Option<Arc<Users>> {
        self.users.read().clone()
    }

    /// SIGHUP: reads the certificate and the users file again. A file that does not load
    /// is logged, and what was in use stays.
    pub fn reload_files(&self) {
        if let Some(log) = &self.access_log {
            log.reopen();
        }
        if let Some((id, _)) = &self.tls {
            if let Err(e) = id.reload() {
                error!("reload: {e}: keeping the certificate in use");
            }
        }
        let current = self.users();
        if let Some(users) = current {
            match users.reload() {
                Ok(new) => {
                    // Logged once in use: whoever reads the line can log in with them.
                    let n = new.len();
                    *self.users.write() = Some(Arc::new(new));
                    info!("reload: {n} listener login(s)");
                }
                Err(e) => error!("reload: {e}: keeping the {} login(s) in use", users.len()),
            }
        }
    }

    /// Every stream now.
    pub fn streams(&self) -> Vec<Arc<Stream>> {
        self.served
            .read()
            .iter()
            .map(|(s, _)| Arc::clone(s))
            .collect()
    }

    /// Every stream now, with what its leaves keep.
    pub fn served(&self) -> Vec<Served> {
        self.served.read().clone()
    }

    /// Replaces the list of streams and their leaves' state (at start, and on reload).
    pub fn set_streams(&self, streams: Vec<Served>) {
        *self.served.write() = streams;
    }

    /// The stream a path (without its query) names: without mounts the one stream serves
    /// every path; with mounts the path must be a mount's.
    pub fn stream_for(&self, path: &str) -> Option<Arc<Stream>> {
        self.served_for(path).map(|(s, _)| s)
    }

    /// [`Server::stream_for`], with what the stream's leaves keep, from one snapshot.
    pub fn served_for(&self, path: &str) -> Option<Served> {
        let served = self.served.read();
        if !self.cfg.mounted {
            return served.first().cloned();
        }
        served.iter().find(|(s, _)| s.mount() == path).cloned()
    }

    /// Counts a listener against the server-wide `-max-clients`; `None` when it is reached.
    pub fn enter_listener(&self) -> Option<ServerListener<'_>> {
        let max = self.cfg.max_clients;
        self.listeners
            .fetch_update(Relaxed, Relaxed, |n| {
                (n < max).then_some(n.saturating_add(1))
            })
            .ok()
            .map(|_| ServerListener(self))
    }

    /// Listeners of every stream.
    pub fn listeners(&self) -> usize {
        self.listeners.load(Relaxed)
    }
}

/// A listener's feed looks its fallback up among the server's streams.
impl crate::sink::feed::Mounts for Server {
    fn stream(&self, mount: &str) -> Option<Arc<Stream>> {
        self.stream_for(mount)
    }
}

/// A link handshake goes through the server's login budget like every other login.
impl crate::link::handshake::LoginGate for Server {
    fn login(
        &self,
        ip: std::net::IpAddr,
        what: &str,
        claim: Option<&str>,
        check: &mut dyn FnMut() -> Option<bool>,
    ) -> peers::Login {
        self.peers.login(ip, what, claim, check)
    }
}

/// A listener counted by the server; dropping it un-counts it.
pub struct ServerListener<'a>(&'a Server);

impl Drop for ServerListener<'_> {
    fn drop(&mut self) {
        self.0.listeners.fetch_sub(1, Relaxed);
    }
}
