//! `StreamConfig`: one stream's validated flags — its input, framing, ring, listener limits,
//! titles and outputs. Without `-mount` the command line's flags make the one stream; with
//! mounts each mount's file makes one.

use super::link::{link_config, LinkConfig};
use super::{nonempty, nonzero, positive, range, range_u64, web_url};
use crate::cli::Args;
use crate::frame::{self, FramerInfo};
use crate::http::url::Url;
use crate::icy::meta::Info;
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
    /// `-playlist`: local files one after another, looping (checked to read at start).
    Playlist(PathBuf),
    /// An upstream HTTP/Icecast/SHOUTcast stream (`-url`).
    Url(Url),
    /// Source clients push the stream (`-source-password`); `fallback` plays meanwhile.
    Push { fallback: Option<PathBuf> },
    /// The link from another ringcast (`-link-pull` or `-link-receive`).
    Link,
}

/// `-hls`, `-hls-segment`, `-hls-window`.
#[derive(Debug, Clone, PartialEq)]
pub struct HlsConfig {
    pub segment: std::time::Duration,
    pub window: usize,
}

/// One stream's validated configuration.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// Its path with `-mount` ("/live"); "/" for the one stream without mounts.
    pub mount: String,
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
    pub reopen: bool,
    pub max_quiet_interval: Option<Duration>,
    pub burst_bytes: usize,
    /// Most listeners of this stream at once.
    pub max_clients: usize,
    /// `-listener-auth-url` in this stream's flags (the server's applies otherwise).
    pub listener_auth_url: Option<crate::http::url::Url>,
    pub source_user: String,
    pub source_password: Option<String>,
    pub source_timeout: Duration,
    /// `-icecast`: an Icecast server to send the stream to.
    pub icecast: Option<Url>,
    /// Stream name, genre… from the flags (sources may override).
    pub info: Info,
    pub title: String,
    pub icy_metaint: usize,
    /// `-mute`: start muted (`/admin/mute` turns it off).
    pub mute: bool,
    /// `-hls`: publish HLS segments of this shape.
    pub hls: Option<HlsConfig>,
    /// `-record`: the recorder's folder, split and keep.
    pub record: Option<RecordConfig>,
    /// The link, when `-link-key` (or a key file) is given.
    pub link: Option<LinkConfig>,
    /// `-fallback-mount`: where listeners go while this stream has no source.
    pub fallback_mount: Option<String>,
}

/// Largest frame we accept: 16 MiB (streamserve's raw PCM recipes use 44100-byte frames).
const MAX_FRAME_BYTES: i64 = 16 << 20;
/// Largest ring we allocate: 1 GiB of slots is certainly a typo on a Raspberry Pi.
const MAX_RING_BYTES: u64 = 1 << 30;
/// The tone's frame: 100 ms of 22.05 kHz 16-bit mono.
pub const TONE_FRAME_BYTES: usize = 4410;

impl StreamConfig {
    /// Builds a stream's configuration from its flags and positional tail; `max_clients` is
    /// the server's, the default of a stream's own.
    pub fn from_args(
        a: &Args,
        command: &[String],
        mount: &str,
        max_clients: usize,
    ) -> Result<StreamConfig, String> {
        let link = link_config(a)?;
        let input = input(a, command, link.is_some())?;
        let tone = input == InputSpec::Tone;
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
        let default_frame = if tone {
            TONE_FRAME_BYTES as i64
        } else {
            i64::try_from(framer.default_frame_bytes).unwrap_or(64)
        };
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
        if (source_buffer as u64).saturating_mul(frame_bytes as u64) > MAX_RING_BYTES {
            return Err(format!(
                "-source-buffer {source_buffer} × -frame-bytes {frame_bytes} needs more than 1 GiB"
            ));
        }
        let content_type = match &a.content_type {
            Some(ct) if ct.is_empty() || ct.contains(['\r', '\n']) => {
                return Err(format!("-content-type {ct:?} is not a valid header value"))
            }
            Some(ct) => ct.clone(),
            None if tone => "audio/wav".into(),
            None => framer.content_type.into(),
        };
        let max_clients = match a.max_clients {
            Some(n) => range("max-clients", n, 1, 1_000_000)?,
            None => max_clients,
        };
        Ok(StreamConfig {
            mount: mount.to_string(),
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
            reopen: a.reopen.unwrap_or(true),
            max_quiet_interval: nonzero(a.max_quiet_interval),
            burst_bytes: range("burst-bytes", a.burst_bytes.unwrap_or(0), 0, 1 << 30)?,
            max_clients,
            record: record_config(a)?,
            listener_auth_url: a
                .listener_auth_url
                .as_deref()
                .map(|u| super::web_url("listener-auth-url", u))
                .transpose()?,
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
            mute: a.mute.unwrap_or(false),
            hls: hls(a, framer)?,
            link,
            fallback_mount: a.fallback_mount.clone(),
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
            InputSpec::Playlist(p) => format!("playlist {}", p.display()),
            InputSpec::Url(u) => u.redacted(),
            InputSpec::Push { fallback: None } => "source clients".into(),
            InputSpec::Push { fallback: Some(f) } => {
                format!("source clients (fallback {})", f.display())
            }
            InputSpec::Link => match self.link.as_ref().map(|l| &l.pull[..]) {
                Some([p]) => format!("the link from {}", p.url.redacted()),
                Some([p, ..]) => format!(
                    "the link from {} ({} paths)",
                    p.url.redacted(),
                    self.link.as_ref().map_or(0, |l| l.pull.len())
                ),
                _ => "the link (pushed to us)".into(),
            },
        }
    }
}

/// `-hls` and its shape: packed audio needs MP3 or ADTS frames.
fn hls(a: &Args, framer: &FramerInfo) -> Result<Option<HlsConfig>, String> {
    if !a.hls.unwrap_or(false) {
        if a.hls_segment.is_some() || a.hls_window.is_some() {
            return Err("-hls-segment and -hls-window shape -hls: give -hls too".into());
        }
        return Ok(None);
    }
    if !matches!(framer.name, "mp3" | "adts") {
        return Err(format!(
            "-hls needs -frame-filter mp3 or adts (packed audio segments); not {}",
            framer.name
        ));
    }
    let segment = a.hls_segment.unwrap_or(std::time::Duration::from_secs(4));
    if segment < std::time::Duration::from_secs(1) || segment > std::time::Duration::from_secs(30) {
        return Err(format!(
            "-hls-segment {segment:?} is out of range (1s to 30s)"
        ));
    }
    let window = range("hls-window", a.hls_window.unwrap_or(6), 3, 1000)?;
    Ok(Some(HlsConfig { segment, window }))
}

/// The input flags: exactly one input (the tone may be named with -exec/-path only to be
/// refused with a clear message).
fn input(a: &Args, command: &[String], link: bool) -> Result<InputSpec, String> {
    let tone = a.tone.unwrap_or(false);
    let exec = a.exec.unwrap_or(false);
    let receive = a.link_receive.unwrap_or(false);
    let chosen: Vec<&str> = [
        (tone, "-tone"),
        (exec, "-exec"),
        (a.path.is_some(), "-path"),
        (a.playlist.is_some(), "-playlist"),
        (a.url.is_some(), "-url"),
        (a.source_password.is_some(), "-source-password"),
        (!a.link_pull.is_empty(), "-link-pull"),
        (receive, "-link-receive"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, name)| *name)
    .collect();
    if chosen.len() > 1 {
        return Err(format!(
            "{} cannot be used together: choose one input (for a file while no source client \
             is connected, use -fallback-path)",
            chosen.join(" and ")
        ));
    }
    if a.fallback_path.is_some() && a.source_password.is_none() {
        return Err(
            "-fallback-path plays while no source client is connected: it needs -source-password"
                .into(),
        );
    }
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
        if link {
            return Err(
                "-close-idle cannot be used with the link: it carries the stream \
                        whether or not anyone listens here"
                    .into(),
            );
        }
    }
    if let Some(first) = command.first().filter(|_| !exec) {
        return Err(format!(
            "unexpected argument {first:?}: arguments after the flags are only used with -exec"
        ));
    }
    Ok(if !a.link_pull.is_empty() || receive {
        InputSpec::Link
    } else if let Some(u) = &a.url {
        InputSpec::Url(web_url("url", u)?)
    } else if a.source_password.is_some() {
        InputSpec::Push {
            fallback: a.fallback_path.as_ref().map(PathBuf::from),
        }
    } else if tone {
        InputSpec::Tone
    } else if let Some(list) = &a.playlist {
        let entries = crate::input::playlist::read(std::path::Path::new(list))?;
        if entries.is_empty() {
            return Err(format!("-playlist {list}: no files in it"));
        }
        InputSpec::Playlist(PathBuf::from(list))
    } else if exec {
        let (prog, args) = command
            .split_first()
            .ok_or("-exec needs a command after the flags, e.g. -exec arecord -f cd")?;
        let program = find_in_path(prog)
            .ok_or_else(|| format!("-exec: cannot find command {prog:?} in PATH"))?;
        InputSpec::Exec {
            program,
            args: args.to_vec(),
        }
    } else {
        InputSpec::Path(PathBuf::from(a.path.as_deref().unwrap_or("/dev/stdin")))
    })
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

/// `-record DIR`, `-record-split` and `-record-keep`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordConfig {
    pub dir: std::path::PathBuf,
    pub split: Duration,
    pub keep: Option<Duration>,
}

fn record_config(a: &Args) -> Result<Option<RecordConfig>, String> {
    let Some(dir) = a.record.as_ref() else {
        if a.record_split.is_some() || a.record_keep.is_some() {
            return Err("-record-split and -record-keep need -record DIR".into());
        }
        return Ok(None);
    };
    let split = a.record_split.unwrap_or(Duration::from_secs(3600));
    if split < Duration::from_secs(1) || split > Duration::from_secs(86_400) {
        return Err(format!(
            "-record-split {split:?} is out of range (1s to 24h)"
        ));
    }
    let keep = a.record_keep.filter(|k| !k.is_zero());
    if keep.is_some_and(|k| k < split) {
        return Err(
            "-record-keep is shorter than -record-split: every file would go at once".into(),
        );
    }
    Ok(Some(RecordConfig {
        dir: std::path::PathBuf::from(dir),
        split,
        keep,
    }))
}
