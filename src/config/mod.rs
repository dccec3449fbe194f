//! The validated configuration: the server's (`ServerConfig`: ports, limits, admin, logging)
//! and each stream's (`stream.rs`), built from the command line and, with `-mount`, each
//! mount's file (`mounts.rs`).
//!
//! Every check that can fail on a user's input lives here and produces one clear sentence.
//! Nothing here does I/O except reading flags files, the `-playlist` list (`playlist.rs`)
//! and the `-listener-users` file (`users.rs`), resolving the listen address and looking the
//! `-exec` command up in `PATH`.

mod input;
pub mod link;
mod mounts;
pub mod playlist;
pub mod stream;
#[cfg(test)]
mod tests;
pub mod users;

pub use stream::{InputSpec, StreamConfig};

use crate::cli::{self, Args, Parsed};
use crate::error::Error;
use crate::http::url::Url;
use log::LevelFilter;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

/// The server-wide configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    pub address: SocketAddr,
    /// `-station-name` and `-station-description`, for the status page (empty: not given).
    pub station_name: String,
    pub station_description: String,
    pub cpu_max: Option<usize>,
    pub uid: Option<u32>,
    pub log_level: LevelFilter,
    pub stat_log_interval: Option<Duration>,
    /// `-access-log` and whether its addresses are hashed (`-access-log-hash`).
    pub access_log: Option<std::path::PathBuf>,
    pub access_log_hash: bool,
    pub write_timeout: Duration,
    pub header_timeout: Duration,
    /// Most listeners at once on the whole server.
    pub max_clients: usize,
    /// Connections per client address still sending their request (`-max-pending-per-ip`).
    pub max_pending_per_ip: u32,
    /// Listeners per client address (`-max-listeners-per-ip`; 0: no limit).
    pub max_listeners_per_ip: u32,
    /// `-trusted-proxies`: peers whose forwarding headers name the client.
    pub trusted_proxies: Vec<crate::http::forwarded::Cidr>,
    pub admin_password: Option<String>,
    /// `-tls-ca`: extra CA certificates for `https://` (checked readable here).
    pub tls_ca: Option<String>,
    /// `-mount` is in use: streams live at their paths and unknown paths get 404.
    pub mounted: bool,
    /// `-tls-address` with its certificate and key (checked to load here).
    pub tls: Option<TlsPort>,
    /// `-source-address`: source clients connect here, and only here.
    pub source_address: Option<SocketAddr>,
    /// `-listener-users`: the file of listeners' logins (checked to load here).
    pub listener_users: Option<String>,
    /// `-listener-auth-url` given server-wide (a mount's own wins).
    pub listener_auth_url: Option<crate::http::url::Url>,
    /// `-cors-origin`: `None` for `*`, else the origins allowed.
    pub cors_origins: Option<Vec<String>>,
    /// `-hash-password`: hash a password and exit.
    pub hash_password: bool,
    /// `-version`: print the version and exit.
    pub version: bool,
}

/// The HTTPS port.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsPort {
    pub address: SocketAddr,
    pub cert: String,
    pub key: String,
}

/// Everything the command line asks for: the server and its streams.
#[derive(Debug)]
pub struct Setup {
    pub server: ServerConfig,
    /// The one stream (at "/", serving every path) without `-mount`; else one per mount.
    pub streams: Vec<Mount>,
}

/// A stream and the words that made it: a reload restarts a mount whose words changed.
#[derive(Debug)]
pub struct Mount {
    pub cfg: StreamConfig,
    pub words: Vec<String>,
}

/// Why there is no setup.
#[derive(Debug)]
pub enum Failed {
    /// `-help`: print this, exit 0.
    Help(String),
    /// A syntax error: exit 2.
    Usage(String),
    /// A bad value or a file that cannot be read: exit 1.
    Invalid(String),
}

/// Reads the command line (without the program name) and every file it names.
pub fn load(
    argv: &[String],
    read: &dyn Fn(&Path) -> std::io::Result<String>,
) -> Result<Setup, Failed> {
    let argv = cli::flagsfile::expand(argv, read).map_err(|e| Failed::Invalid(e.to_string()))?;
    let (args, command) = match cli::parse(&argv) {
        Parsed::Run { args, command } => (args, command),
        Parsed::Help(text) => return Err(Failed::Help(text)),
        Parsed::Usage(text) => return Err(Failed::Usage(text)),
    };
    let server = ServerConfig::from_args(&args).map_err(|e| Failed::Invalid(e.to_string()))?;
    let streams = if args.mount.is_empty() {
        let cfg = StreamConfig::from_args(&args, &command, "/", server.max_clients)
            .map_err(|e| Failed::Invalid(e.to_string()))?;
        if cfg.fallback_mount.is_some() {
            return Err(Failed::Invalid(
                "-fallback-mount names another mount: it needs -mount".into(),
            ));
        }
        vec![Mount { cfg, words: argv }]
    } else {
        mounts::load(&args, &command, &server, read)?
    };
    Ok(Setup { server, streams })
}

impl ServerConfig {
    pub fn from_args(a: &Args) -> Result<ServerConfig, Error> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let cpu_max = match range("cpu-max", a.cpu_max.unwrap_or(0), 0, 4096)? {
            0 => None,
            n if n >= cores => None,
            n => Some(n),
        };
        let uid = match a.uid.as_deref().map(user_id).transpose()? {
            Some(0) | None => None,
            n => n,
        };
        let log_level = match (a.log_level.as_deref(), a.debug.unwrap_or(false)) {
            (Some(l), _) => l.parse::<LevelFilter>().map_err(|_| {
                format!("-log-level: unknown level {l:?} (error, warn, info, debug, trace)")
            })?,
            (None, true) => LevelFilter::Debug,
            (None, false) => LevelFilter::Info,
        };
        Ok(ServerConfig {
            address: parse_address("address", a.address.as_deref().unwrap_or("0.0.0.0:80"))?,
            cpu_max,
            uid,
            log_level,
            stat_log_interval: nonzero(a.stat_log_interval),
            access_log: a.access_log.as_ref().map(std::path::PathBuf::from),
            access_log_hash: a.access_log_hash.unwrap_or(false),
            write_timeout: positive(
                "write-timeout",
                a.write_timeout.unwrap_or(Duration::from_secs(10)),
            )?,
            header_timeout: positive(
                "header-timeout",
                a.header_timeout.unwrap_or(Duration::from_secs(10)),
            )?,
            max_clients: range("max-clients", a.max_clients.unwrap_or(1500), 1, 1_000_000)?,
            max_pending_per_ip: u32::try_from(range_u64(
                "max-pending-per-ip",
                a.max_pending_per_ip.unwrap_or(32),
                1,
                65_536,
            )?)
            .unwrap_or(u32::MAX),
            max_listeners_per_ip: listener_share(a)?,
            trusted_proxies: match &a.trusted_proxies {
                Some(list) => crate::http::forwarded::parse_list(list)
                    .map_err(|e| format!("-trusted-proxies: {e}"))?,
                None => Vec::new(),
            },
            admin_password: nonempty("admin-password", &a.admin_password)?,
            station_name: a.station_name.clone().unwrap_or_default(),
            station_description: a.station_description.clone().unwrap_or_default(),
            tls_ca: match &a.tls_ca {
                Some(path) => crate::http::tls::read_pem(path).map(|_| Some(path.clone()))?,
                None => None,
            },
            mounted: !a.mount.is_empty(),
            tls: tls_port(a)?,
            source_address: a
                .source_address
                .as_deref()
                .map(|s| parse_address("source-address", s))
                .transpose()?,
            listener_auth_url: a
                .listener_auth_url
                .as_deref()
                .map(|u| web_url("listener-auth-url", u))
                .transpose()?,
            listener_users: match &a.listener_users {
                Some(path) => {
                    users::UsersFile::load(path)?;
                    Some(path.clone())
                }
                None => None,
            },
            cors_origins: cors_origins(a.cors_origin.as_deref().unwrap_or("*"))?,
            hash_password: a.hash_password.unwrap_or(false),
            version: a.version.unwrap_or(false),
        })
    }
}

/// `-uid`: a number (Go's integer syntax, as streamserve) or a user name from the passwd
/// database (`-uid nobody`).
fn user_id(v: &str) -> Result<u32, Error> {
    if let Ok(n) = crate::cli::parse_int(v) {
        let n = range_u64("uid", n, 0, u32::MAX.into())?;
        return u32::try_from(n).map_err(|_| format!("-uid {n} is out of range").into());
    }
    crate::os::sys::user_id(v)
        .map_err(|e| format!("-uid {v:?}: {e}"))?
        .ok_or_else(|| {
            format!("-uid {v:?}: no such user (not a number nor a name in the passwd database)")
                .into()
        })
}

/// `-max-listeners-per-ip`: by default half of `-max-clients` (rounded up), so one address
/// (a flood, or one big NAT) always leaves the other half to everyone else.
fn listener_share(a: &Args) -> Result<u32, Error> {
    let max_clients = a.max_clients.unwrap_or(1500);
    let default = max_clients.clamp(1, 1_000_000).saturating_add(1) / 2;
    let n = range_u64(
        "max-listeners-per-ip",
        a.max_listeners_per_ip.unwrap_or(default),
        0,
        1_000_000,
    )?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// `-tls-address`, `-tls-cert` and `-tls-key` go together; the pair must load.
fn tls_port(a: &Args) -> Result<Option<TlsPort>, Error> {
    match (&a.tls_address, &a.tls_cert, &a.tls_key) {
        (None, None, None) => Ok(None),
        (Some(addr), Some(cert), Some(key)) => {
            crate::http::identity::Identity::load(cert, key)?;
            Ok(Some(TlsPort {
                address: parse_address("tls-address", addr)?,
                cert: cert.clone(),
                key: key.clone(),
            }))
        }
        _ => Err("-tls-address, -tls-cert and -tls-key go together: give all three".into()),
    }
}

/// `*`, or origins such as `https://radio.example` separated by commas.
fn cors_origins(v: &str) -> Result<Option<Vec<String>>, Error> {
    if v.trim() == "*" {
        return Ok(None);
    }
    let list: Vec<String> = v
        .split(',')
        .map(|o| o.trim().trim_end_matches('/').to_string())
        .filter(|o| !o.is_empty())
        .collect();
    for o in &list {
        if !(o.starts_with("http://") || o.starts_with("https://")) || o.contains(['\r', '\n', ' '])
        {
            return Err(format!(
                "-cors-origin {o:?}: an origin is scheme://host[:port], e.g. https://radio.example"
            )
            .into());
        }
    }
    if list.is_empty() {
        return Err("-cors-origin is empty: give * or origins".into());
    }
    Ok(Some(list))
}

/// A size or count flag in `min..=max`, as a `usize`: on a 32-bit Pi a value past 4 GiB is
/// refused, never wrapped (`5000000000 as usize` is 705032704 there).
fn range(flag: &str, v: i64, min: i64, max: i64) -> Result<usize, Error> {
    let v = range_u64(flag, v, min, max)?;
    usize::try_from(v)
        .map_err(|_| format!("-{flag} {v} is too large for this 32-bit system").into())
}

/// A flag in `min..=max` (`min` >= 0), as a `u64`.
fn range_u64(flag: &str, v: i64, min: i64, max: i64) -> Result<u64, Error> {
    if v < min || v > max {
        return Err(format!("-{flag} {v} is out of range ({min} to {max})").into());
    }
    u64::try_from(v).map_err(|_| format!("-{flag} {v} must not be negative").into())
}

fn positive(flag: &str, d: Duration) -> Result<Duration, Error> {
    if d.is_zero() {
        Err(format!("-{flag} must be greater than 0").into())
    } else {
        Ok(d)
    }
}

fn nonempty(flag: &str, v: &Option<String>) -> Result<Option<String>, Error> {
    match v {
        Some(s) if s.is_empty() => Err(format!("-{flag} must not be empty").into()),
        other => Ok(other.clone()),
    }
}

fn nonzero(d: Option<Duration>) -> Option<Duration> {
    d.filter(|d| !d.is_zero())
}

/// An `http://` or `https://` URL given to `-flag`.
fn web_url(flag: &str, s: &str) -> Result<Url, Error> {
    let url = Url::parse(s, 80).map_err(|e| format!("-{flag}: {e}"))?;
    if url.scheme != "http" && url.scheme != "https" {
        return Err(format!(
            "-{flag}: {}:// is not supported: use http:// or https://",
            url.scheme
        )
        .into());
    }
    Ok(url)
}

/// streamserve's address forms: `host:port`, `:port` (all interfaces), `[::1]:port`, given
/// to `-flag`.
pub fn parse_address(flag: &str, s: &str) -> Result<SocketAddr, Error> {
    let full = if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_string()
    };
    full.to_socket_addrs()
        .ok()
        .and_then(|mut it| it.next())
        .ok_or_else(|| {
            let hint = if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
                format!(" (port {s} on every interface is \":{s}\")")
            } else {
                String::new()
            };
            format!("-{flag} {s:?} is not a valid host:port{hint}").into()
        })
}
