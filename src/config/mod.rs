//! `Config::from_args`: the typed, validated configuration built from the raw flags.
//!
//! Every check that can fail on a user's input lives here and produces one clear sentence;
//! `main` prints it and exits 1. Nothing here does I/O except resolving the listen address
//! and looking the `-exec` command up in `PATH`.

use crate::cli::Args;
use crate::frame::{self, FramerInfo};
use crate::http::url::Url;
use crate::icy::meta::Info;
use crate::link::LinkConfig;
use log::LevelFilter;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the stream comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum InputSpec {
    /// A file, FIFO or device, opened when needed and on each reopen.
    Path(PathBuf),
    /// A command whose stdout is the stream (`program` resolved through `PATH`).
    Exec { program: PathBuf, args: Vec<String> },
    /// The built-in test tone.
    Tone,
    /// An upstream HTTP/Icecast/SHOUTcast stream (`-url`).
    Url(Url),
    /// Source clients push the stream (`-source-password`); `fallback` plays meanwhile.
    Push { fallback: Option<PathBuf> },
    /// The link from another ringcast (`-link-pull` or `-link-receive`).
    Link,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub address: SocketAddr,
    pub input: InputSpec,
    pub framer: &'static FramerInfo,
    pub frame_bytes: usize,
    pub header_bytes: usize,
    pub source_buffer: usize,
    pub source_bandwidth: u64,
    pub client_max_bytes: u64,
    pub close_idle: bool,
    pub content_type: String,
    /// `-content-type` was given (a link origin's does not replace it).
    pub content_type_given: bool,
    pub cpu_max: Option<usize>,
    pub reopen: bool,
    pub stat_log_interval: Option<Duration>,
    pub max_quiet_interval: Option<Duration>,
    pub uid: Option<u32>,
    pub log_level: LevelFilter,
    pub burst_bytes: usize,
    pub write_timeout: Duration,
    pub header_timeout: Duration,
    pub max_clients: usize,
    /// Connections per client address still sending their request (`-max-pending-per-ip`).
    pub max_pending_per_ip: u32,
    pub source_user: String,
    pub source_password: Option<String>,
    pub source_timeout: Duration,
    /// `-icecast`: an Icecast server to send the stream to.
    pub icecast: Option<Url>,
    /// Stream name, genre… from the flags (sources may override).
    pub info: Info,
    pub title: String,
    pub icy_metaint: usize,
    pub admin_password: Option<String>,
    /// The link, when `-link-key` (or a key file) is given.
    pub link: Option<LinkConfig>,
    /// `-tls-ca`: extra CA certificates for `https://` (checked readable here).
    pub tls_ca: Option<String>,
}

/// Largest frame we accept: 16 MiB (streamserve's raw PCM recipes use 44100-byte frames).
const MAX_FRAME_BYTES: i64 = 16 << 20;
/// Largest ring we allocate: 1 GiB of slots is certainly a typo on a Raspberry Pi.
const MAX_RING_BYTES: u64 = 1 << 30;
/// The tone's frame: 100 ms of 22.05 kHz 16-bit mono.
pub const TONE_FRAME_BYTES: usize = 4410;

impl Config {
    /// Builds the configuration from parsed flags and the positional tail.
    pub fn from_args(a: &Args, command: &[String]) -> Result<Config, String> {
        let tone = a.tone.unwrap_or(false);
        let exec = a.exec.unwrap_or(false);
        let chosen: Vec<&str> = [
            (tone, "-tone"),
            (exec, "-exec"),
            (a.path.is_some(), "-path"),
            (a.url.is_some(), "-url"),
            (a.source_password.is_some(), "-source-password"),
            (a.link_pull.is_some(), "-link-pull"),
            (a.link_receive.unwrap_or(false), "-link-receive"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, name)| *name)
        .collect();
        if chosen.len() > 1 && !(chosen == ["-tone", "-exec"] || chosen == ["-tone", "-path"]) {
            return Err(format!(
                "{} cannot be used together: choose one input (for a file while no source client \
                 is connected, use -fallback-path)",
                chosen.join(" and ")
            ));
        }
        if a.fallback_path.is_some() && a.source_password.is_none() {
            return Err("-fallback-path plays while no source client is connected: it needs -source-password".into());
        }
        let link = link_config(a)?;
        if a.close_idle.unwrap_or(false) {
            // Closing the source while nobody listens here would starve what does not count
            // as a listener: an encoder pushing to us, or the far end of the link.
            if a.source_password.is_some() {
                return Err(
                    "-close-idle cannot be used with -source-password: a source client \
                            pushes whether or not anyone listens"
                        .into(),
                );
            }
            if link.is_some() {
                return Err(
                    "-close-idle cannot be used with the link: it carries the stream \
                            whether or not anyone listens here"
                        .into(),
                );
            }
        }
        let input = match (tone, exec, &a.path) {
            _ if a.link_pull.is_some() || a.link_receive.unwrap_or(false) => InputSpec::Link,
            _ if a.url.is_some() => {
                // unwrap ok: checked just above.
                let url =
                    Url::parse(a.url.as_deref().unwrap(), 80).map_err(|e| format!("-url: {e}"))?;
                if url.scheme != "http" && url.scheme != "https" {
                    return Err(format!(
                        "-url: {}:// is not supported: use http:// or https://",
                        url.scheme
                    ));
                }
                InputSpec::Url(url)
            }
            _ if a.source_password.is_some() => InputSpec::Push {
                fallback: a.fallback_path.as_ref().map(PathBuf::from),
            },
            (true, true, _) => return Err("-tone and -exec cannot be used together".into()),
            (true, _, Some(_)) => return Err("-tone and -path cannot be used together".into()),
            (true, false, None) => InputSpec::Tone,
            (false, true, _) => {
                let (prog, args) = command
                    .split_first()
                    .ok_or("-exec needs a command after the flags, e.g. -exec arecord -f cd")?;
                let program = find_in_path(prog)
                    .ok_or_else(|| format!("-exec: cannot find command {prog:?} in PATH"))?;
                InputSpec::Exec {
                    program,
                    args: args.to_vec(),
                }
            }
            (false, false, path) => {
                InputSpec::Path(PathBuf::from(path.as_deref().unwrap_or("/dev/stdin")))
            }
        };
        if !exec && !command.is_empty() {
            return Err(format!(
                "unexpected argument {:?}: arguments after the flags are only used with -exec",
                command[0]
            ));
        }

        let filter_name = match (&a.frame_filter, &a.filter) {
            (Some(f), Some(g)) if f != g => {
                return Err(format!("-frame-filter {f:?} and -filter {g:?} disagree"))
            }
            (Some(f), _) | (None, Some(f)) => f.as_str(),
            (None, None) => "raw",
        };
        let framer = frame::find(filter_name).ok_or_else(|| {
            format!(
                "-frame-filter: unknown filter {filter_name:?} (known: {})",
                frame::names().join(", ")
            )
        })?;

        let default_frame = if tone { TONE_FRAME_BYTES as i64 } else { 64 };
        let frame_bytes = range(
            "frame-bytes",
            a.frame_bytes.unwrap_or(default_frame),
            1,
            MAX_FRAME_BYTES,
        )?;
        if frame_bytes < framer.min_frame_bytes {
            return Err(format!(
                "-frame-bytes {frame_bytes} is too small for the {} filter (at least {})",
                framer.name, framer.min_frame_bytes
            ));
        }
        if link.is_some() && frame_bytes > crate::link::fragments::MAX_FRAGMENT_BYTES {
            return Err(format!(
                "-frame-bytes {frame_bytes} is too large for the link (at most {})",
                crate::link::fragments::MAX_FRAGMENT_BYTES
            ));
        }
        let header_bytes = if tone {
            crate::input::tone::HEADER_BYTES
        } else {
            range("header-bytes", a.header_bytes.unwrap_or(0), 0, 1 << 20)?
        };
        let source_buffer = range("source-buffer", a.source_buffer.unwrap_or(64), 3, 1_000_000)?;
        if (source_buffer as u64) * (frame_bytes as u64) > MAX_RING_BYTES {
            return Err(format!(
                "-source-buffer {source_buffer} × -frame-bytes {frame_bytes} needs more than 1 GiB"
            ));
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let cpu_max = match range("cpu-max", a.cpu_max.unwrap_or(0), 0, 4096)? {
            0 => None,
            n if n >= cores => None,
            n => Some(n),
        };
        let uid = match range_u64("uid", a.uid.unwrap_or(0), 0, u32::MAX.into())? {
            0 => None,
            n => Some(u32::try_from(n).map_err(|_| format!("-uid {n} is out of range"))?),
        };
        let log_level = match (a.log_level.as_deref(), a.debug.unwrap_or(false)) {
            (Some(l), _) => l.parse::<LevelFilter>().map_err(|_| {
                format!("-log-level: unknown level {l:?} (error, warn, info, debug, trace)")
            })?,
            (None, true) => LevelFilter::Debug,
            (None, false) => LevelFilter::Info,
        };
        let write_timeout = positive(
            "write-timeout",
            a.write_timeout.unwrap_or(Duration::from_secs(10)),
        )?;
        let header_timeout = positive(
            "header-timeout",
            a.header_timeout.unwrap_or(Duration::from_secs(10)),
        )?;
        let content_type = match &a.content_type {
            Some(ct) if ct.is_empty() || ct.contains(['\r', '\n']) => {
                return Err(format!("-content-type {ct:?} is not a valid header value"))
            }
            Some(ct) => ct.clone(),
            None if tone => "audio/wav".into(),
            None => framer.content_type.into(),
        };
        Ok(Config {
            address: parse_address(a.address.as_deref().unwrap_or("0.0.0.0:80"))?,
            input,
            framer,
            frame_bytes,
            header_bytes,
            source_buffer,
            source_bandwidth: range_u64(
                "source-bandwidth",
                a.source_bandwidth.unwrap_or(0),
                0,
                i64::MAX,
            )?,
            client_max_bytes: range_u64(
                "client-max-bytes",
                a.client_max_bytes.unwrap_or(0),
                0,
                i64::MAX,
            )?,
            close_idle: a.close_idle.unwrap_or(false),
            content_type,
            content_type_given: a.content_type.is_some(),
            cpu_max,
            reopen: a.reopen.unwrap_or(true),
            stat_log_interval: nonzero(a.stat_log_interval),
            max_quiet_interval: nonzero(a.max_quiet_interval),
            uid,
            log_level,
            burst_bytes: range("burst-bytes", a.burst_bytes.unwrap_or(0), 0, 1 << 30)?,
            write_timeout,
            header_timeout,
            max_clients: range("max-clients", a.max_clients.unwrap_or(1500), 1, 1_000_000)?,
            max_pending_per_ip: u32::try_from(range_u64(
                "max-pending-per-ip",
                a.max_pending_per_ip.unwrap_or(32),
                1,
                65_536,
            )?)
            .unwrap_or(u32::MAX),
            source_user: a.source_user.clone().unwrap_or_else(|| "source".into()),
            source_password: nonempty("source-password", &a.source_password)?,
            source_timeout: positive(
                "source-timeout",
                a.source_timeout.unwrap_or(Duration::from_secs(10)),
            )?,
            icecast: a.icecast.as_deref().map(parse_icecast).transpose()?,
            info: Info {
                name: a.icy_name.clone().unwrap_or_default(),
                genre: a.icy_genre.clone().unwrap_or_default(),
                description: a.icy_description.clone().unwrap_or_default(),
                url: a.icy_url.clone().unwrap_or_default(),
                public: a.icy_pub.unwrap_or(false),
                bitrate: String::new(),
            },
            title: a.title.clone().unwrap_or_default(),
            icy_metaint: range("icy-metaint", a.icy_metaint.unwrap_or(16000), 1, 1 << 20)?,
            admin_password: nonempty("admin-password", &a.admin_password)?,
            link,
            tls_ca: match &a.tls_ca {
                Some(path) => crate::http::tls::read_pem(path).map(|_| Some(path.clone()))?,
                None => None,
            },
        })
    }

    /// A short human description of the input for logs.
    pub fn input_name(&self) -> String {
        match &self.input {
            InputSpec::Path(p) => p.display().to_string(),
            InputSpec::Exec { program, args } => {
                let mut s = program.display().to_string();
                for a in args {
                    s.push(' ');
                    s.push_str(a);
                }
                s
            }
            InputSpec::Tone => "built-in test tone".into(),
            InputSpec::Url(u) => u.redacted(),
            InputSpec::Push { fallback: None } => "source clients".into(),
            InputSpec::Push { fallback: Some(f) } => {
                format!("source clients (fallback {})", f.display())
            }
            InputSpec::Link => match self.link.as_ref().and_then(|l| l.pull.as_ref()) {
                Some(u) => format!("the link from {}", u.redacted()),
                None => "the link (pushed to us)".into(),
            },
        }
    }
}

/// A size or count flag in `min..=max`, as a `usize`: on a 32-bit Pi a value past 4 GiB is
/// refused, never wrapped (`5000000000 as usize` is 705032704 there).
fn range(flag: &str, v: i64, min: i64, max: i64) -> Result<usize, String> {
    let v = range_u64(flag, v, min, max)?;
    usize::try_from(v).map_err(|_| format!("-{flag} {v} is too large for this 32-bit system"))
}

/// A flag in `min..=max` (`min` >= 0), as a `u64`.
fn range_u64(flag: &str, v: i64, min: i64, max: i64) -> Result<u64, String> {
    if v < min || v > max {
        return Err(format!("-{flag} {v} is out of range ({min} to {max})"));
    }
    u64::try_from(v).map_err(|_| format!("-{flag} {v} must not be negative"))
}

fn positive(flag: &str, d: Duration) -> Result<Duration, String> {
    if d.is_zero() {
        Err(format!("-{flag} must be greater than 0"))
    } else {
        Ok(d)
    }
}

/// The link flags: a key (inline or from a file) and what to do with it.
fn link_config(a: &Args) -> Result<Option<LinkConfig>, String> {
    let key = match (&a.link_key, &a.link_key_file) {
        (Some(_), Some(_)) => return Err("-link-key and -link-key-file: give one".into()),
        (Some(k), None) => Some(k.clone()),
        (None, Some(f)) => Some(
            std::fs::read_to_string(f)
                .map_err(|e| format!("-link-key-file {f}: {e}"))?
                .trim()
                .to_string(),
        ),
        (None, None) => None,
    };
    let wants_link =
        a.link_pull.is_some() || a.link_push.is_some() || a.link_receive.unwrap_or(false);
    let Some(key) = key else {
        return if wants_link {
            Err("the link needs a shared secret: -link-key or -link-key-file".into())
        } else {
            Ok(None)
        };
    };
    if key.len() < 8 {
        return Err("the link key must be at least 8 characters".into());
    }
    let base = |flag: &str, s: &Option<String>| -> Result<Option<Url>, String> {
        s.as_deref()
            .map(|u| {
                let url = Url::parse(u, 80).map_err(|e| format!("-{flag}: {e}"))?;
                if url.scheme != "http" && url.scheme != "https" {
                    return Err(format!(
                        "-{flag}: {}:// is not supported: use http:// or https://",
                        url.scheme
                    ));
                }
                Ok(url)
            })
            .transpose()
    };
    if a.link_pull.is_some() && a.link_receive.unwrap_or(false) {
        return Err("-link-pull and -link-receive: a receiver either pulls or is pushed to".into());
    }
    let delay = a.link_delay.unwrap_or(Duration::from_secs(5));
    if delay < Duration::from_millis(500) || delay > Duration::from_secs(600) {
        return Err(format!(
            "-link-delay {delay:?} is out of range (500ms to 10m)"
        ));
    }
    let fragment = a.fragment_duration.unwrap_or(Duration::from_millis(250));
    if fragment < Duration::from_millis(20) || fragment > Duration::from_secs(5) {
        return Err(format!(
            "-fragment-duration {fragment:?} is out of range (20ms to 5s)"
        ));
    }
    let keep = a.link_buffer.unwrap_or(Duration::from_secs(30));
    if keep < Duration::from_secs(1) || keep > Duration::from_secs(3600) {
        return Err(format!("-link-buffer {keep:?} is out of range (1s to 1h)"));
    }
    Ok(Some(LinkConfig {
        key: key.into_bytes(),
        pull: base("link-pull", &a.link_pull)?,
        push: base("link-push", &a.link_push)?,
        receive: a.link_receive.unwrap_or(false),
        delay,
        fragment,
        keep,
    }))
}

fn nonempty(flag: &str, v: &Option<String>) -> Result<Option<String>, String> {
    match v {
        Some(s) if s.is_empty() => Err(format!("-{flag} must not be empty")),
        other => Ok(other.clone()),
    }
}

/// `icecast://user:pass@host:port/mount` (or `http://`); the user defaults to `source`.
fn parse_icecast(s: &str) -> Result<Url, String> {
    let mut url = Url::parse(s, 8000).map_err(|e| format!("-icecast: {e}"))?;
    if url.scheme != "icecast" && url.scheme != "http" {
        return Err(format!(
            "-icecast: use icecast://user:pass@host:port/mount, not {}://",
            url.scheme
        ));
    }
    if url.password.as_deref().unwrap_or("").is_empty() {
        return Err("-icecast: the URL needs the source password: icecast://source:PASSWORD@host:port/mount".into());
    }
    if url.path == "/" {
        return Err(
            "-icecast: the URL needs a mount point, e.g. icecast://source:pw@host:8000/live".into(),
        );
    }
    url.user.get_or_insert_with(|| "source".into());
    Ok(url)
}

fn nonzero(d: Option<Duration>) -> Option<Duration> {
    d.filter(|d| !d.is_zero())
}

/// streamserve's address forms: `host:port`, `:port` (all interfaces), `[::1]:port`.
pub fn parse_address(s: &str) -> Result<SocketAddr, String> {
    let full = if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_string()
    };
    full.to_socket_addrs()
        .ok()
        .and_then(|mut it| it.next())
        .ok_or_else(|| format!("-address {s:?} is not a valid host:port"))
}

/// Looks a command up as `execvp` would: a name with a `/` is used as it is.
fn find_in_path(prog: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let runnable = |p: &Path| {
        p.metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if prog.contains('/') {
        let p = PathBuf::from(prog);
        return runnable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(prog))
        .find(|p| runnable(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{parse, Parsed};

    fn config(args: &[&str]) -> Result<Config, String> {
        let argv: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        match parse(&argv) {
            Parsed::Run { args, command } => Config::from_args(&args, &command),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn defaults_match_streamserve() {
        let c = config(&[]).unwrap();
        assert_eq!(c.address, "0.0.0.0:80".parse().unwrap());
        assert_eq!(c.input, InputSpec::Path("/dev/stdin".into()));
        assert_eq!(c.frame_bytes, 64);
        assert_eq!(c.source_buffer, 64);
        assert_eq!(c.framer.name, "raw");
        assert!(c.reopen);
        assert!(!c.close_idle);
        assert_eq!(c.content_type, "application/octet-stream");
        assert_eq!(c.write_timeout, Duration::from_secs(10));
    }

    #[test]
    fn address_forms() {
        assert_eq!(
            config(&["-address", ":1234"]).unwrap().address,
            "0.0.0.0:1234".parse().unwrap()
        );
        assert_eq!(
            config(&["-address", "[::1]:0"]).unwrap().address,
            "[::1]:0".parse().unwrap()
        );
        assert!(config(&["-address", "nonsense"])
            .unwrap_err()
            .contains("-address"));
    }

    #[test]
    fn source_buffer_must_exceed_two() {
        assert!(config(&["-source-buffer", "2"])
            .unwrap_err()
            .contains("-source-buffer"));
        assert!(config(&["-source-buffer", "3"]).is_ok());
    }

    #[test]
    fn out_of_range_values_say_which_flag() {
        for (flag, v) in [
            ("-frame-bytes", "0"),
            ("-frame-bytes", "-5"),
            ("-header-bytes", "-1"),
            ("-client-max-bytes", "-1"),
            ("-max-clients", "0"),
            ("-write-timeout", "0"),
        ] {
            let err = config(&[flag, v]).unwrap_err();
            assert!(err.contains(flag), "{flag}: {err}");
        }
    }

    #[test]
    fn filters_and_aliases() {
        assert_eq!(
            config(&["-filter", "mp3", "-frame-bytes", "2881"])
                .unwrap()
                .framer
                .name,
            "mp3"
        );
        assert_eq!(config(&["-frame-filter", ""]).unwrap().framer.name, "raw");
        assert_eq!(
            config(&["-frame-filter", "raw"]).unwrap().framer.name,
            "raw"
        );
        assert!(config(&["-frame-filter", "ogg"])
            .unwrap_err()
            .contains("unknown filter"));
        assert!(config(&["-frame-filter", "ts", "-frame-bytes", "100"])
            .unwrap_err()
            .contains("188"));
        let mp3 = config(&["-frame-filter", "mp3", "-frame-bytes", "2881"]).unwrap();
        assert_eq!(mp3.content_type, "audio/mpeg");
        let explicit = config(&["-frame-filter", "mp3", "-content-type", "x/y"]).unwrap();
        assert_eq!(explicit.content_type, "x/y");
    }

    #[test]
    fn exec_needs_a_findable_command() {
        let err = config(&["-exec"]).unwrap_err();
        assert!(err.contains("needs a command"), "{err}");
        let err = config(&["-exec", "no-such-command-ringcast"]).unwrap_err();
        assert!(err.contains("cannot find command"), "{err}");
        let c = config(&["-exec", "sh", "-c", "true"]).unwrap();
        assert!(matches!(c.input, InputSpec::Exec { ref args, .. } if args == &["-c", "true"]));
        assert!(config(&["stray"])
            .unwrap_err()
            .contains("only used with -exec"));
    }

    #[test]
    fn tone_sets_its_own_format() {
        let c = config(&["-tone"]).unwrap();
        assert_eq!(c.input, InputSpec::Tone);
        assert_eq!(c.content_type, "audio/wav");
        assert_eq!(c.frame_bytes, TONE_FRAME_BYTES);
        assert_eq!(c.header_bytes, 44);
        assert!(config(&["-tone", "-exec", "cat"]).is_err());
    }

    #[test]
    fn tls_ca_must_be_a_readable_pem_file() {
        let e = config(&["-tone", "-tls-ca", "/nonexistent/ca.pem"]).unwrap_err();
        assert!(e.starts_with("-tls-ca /nonexistent/ca.pem: "), "{e}");
        let dir = std::env::temp_dir().join(format!("ringcast-tls-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = config(&["-tone", "-tls-ca", empty.to_str().unwrap()]).unwrap_err();
        assert!(e.contains("no PEM certificates"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn close_idle_refuses_inputs_that_do_not_wait_for_listeners() {
        assert!(config(&["-close-idle", "-source-password", "pw"])
            .unwrap_err()
            .contains("-close-idle cannot be used with -source-password"));
        assert!(config(&["-close-idle", "-tone", "-link-key", "0123456789"])
            .unwrap_err()
            .contains("-close-idle cannot be used with the link"));
        assert!(config(&["-close-idle", "-tone"]).unwrap().close_idle);
    }

    #[test]
    fn icecast_side_inputs_and_outputs() {
        let c = config(&["-url", "http://127.0.0.1:8000/live"]).unwrap();
        assert!(matches!(c.input, InputSpec::Url(ref u) if u.path == "/live"));
        let c = config(&["-url", "https://x/y"]).unwrap();
        assert!(matches!(c.input, InputSpec::Url(ref u) if u.port == 443));
        assert!(config(&["-url", "ftp://x/y"])
            .unwrap_err()
            .contains("http:// or https://"));
        assert!(config(&["-url", "http://x/y", "-tone"])
            .unwrap_err()
            .contains("cannot be used together"));
        let c = config(&["-source-password", "pw", "-fallback-path", "/f.mp3"]).unwrap();
        assert_eq!(
            c.input,
            InputSpec::Push {
                fallback: Some("/f.mp3".into())
            }
        );
        assert_eq!(c.source_user, "source");
        assert!(config(&["-fallback-path", "/f.mp3"])
            .unwrap_err()
            .contains("-source-password"));
        assert!(config(&["-source-password", ""]).is_err());
        let c = config(&["-tone", "-icecast", "icecast://src:pw@127.0.0.1:8000/ring"]).unwrap();
        let ice = c.icecast.unwrap();
        assert_eq!(
            (ice.user.as_deref(), ice.path.as_str()),
            (Some("src"), "/ring")
        );
        assert!(
            config(&["-tone", "-icecast", "icecast://127.0.0.1:8000/ring"])
                .unwrap_err()
                .contains("password")
        );
        assert!(
            config(&["-tone", "-icecast", "icecast://s:p@127.0.0.1:8000"])
                .unwrap_err()
                .contains("mount")
        );
        assert!(config(&["-icy-metaint", "0"]).is_err());
        assert_eq!(config(&["-icy-pub", "-title", "Hi"]).unwrap().title, "Hi");
    }

    #[test]
    fn link_flags() {
        let c = config(&[
            "-link-pull",
            "http://127.0.0.1:9000",
            "-link-key",
            "0123456789",
        ])
        .unwrap();
        assert_eq!(c.input, InputSpec::Link);
        assert_eq!(c.link.as_ref().unwrap().delay, Duration::from_secs(5));
        assert!(config(&["-link-pull", "http://x:1"])
            .unwrap_err()
            .contains("shared secret"));
        assert!(config(&["-link-receive", "-link-key", "short"])
            .unwrap_err()
            .contains("8 characters"));
        assert!(
            config(&["-link-receive", "-link-key", "0123456789", "-tone"])
                .unwrap_err()
                .contains("together")
        );
        assert!(
            config(&["-tone", "-link-push", "ws://x", "-link-key", "0123456789"])
                .unwrap_err()
                .contains("http:// or https://")
        );
        let origin = config(&[
            "-tone",
            "-link-key",
            "0123456789",
            "-link-push",
            "http://r:8000",
        ])
        .unwrap();
        assert_eq!(origin.input, InputSpec::Tone);
        assert!(origin.link.unwrap().push.is_some());
        assert!(config(&[
            "-link-receive",
            "-link-key",
            "0123456789",
            "-link-delay",
            "1h"
        ])
        .is_err());
    }

    #[test]
    fn ring_memory_is_bounded() {
        let err = config(&["-frame-bytes", "16777216", "-source-buffer", "1000"]).unwrap_err();
        assert!(err.contains("1 GiB"), "{err}");
    }

    #[test]
    fn cpu_max_and_log_level() {
        assert_eq!(config(&["-cpu-max", "0"]).unwrap().cpu_max, None);
        assert!(config(&["-cpu-max", "-1"]).is_err());
        assert_eq!(config(&["-debug"]).unwrap().log_level, LevelFilter::Debug);
        assert_eq!(
            config(&["-log-level", "warn"]).unwrap().log_level,
            LevelFilter::Warn
        );
        assert!(config(&["-log-level", "loud"]).is_err());
    }
}
