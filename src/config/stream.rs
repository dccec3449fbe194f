//! `StreamConfig`: one stream's validated flags — its input, framing, ring, listener limits,
//! titles and outputs. Without `-mount` the command line's flags make the one stream; with
//! mounts each mount's file makes one.

use super::input::input;
pub use super::input::InputSpec;
use super::link::{link_config, LinkConfig, MAX_FRAGMENT_BYTES};
use super::{nonempty, nonzero, positive, range, range_u64};
use crate::cli::Args;
use crate::error::Error;
use crate::frame::{self, FramerInfo};
use crate::http::url::Url;
use crate::icy::meta::Info;
use std::time::Duration;

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
/// The tone's stream header: its WAV header (`input/tone.rs`).
pub const TONE_HEADER_BYTES: usize = 44;
/// The tone's sample rate (16-bit mono), which the link's fragment durations also use.
pub const TONE_SAMPLE_RATE: u32 = 22_050;

impl StreamConfig {
    /// Builds a stream's configuration from its flags and positional tail; `max_clients` is
    /// the server's, the default of a stream's own.
    pub fn from_args(
        a: &Args,
        command: &[String],
        mount: &str,
        max_clients: usize,
    ) -> Result<StreamConfig, Error> {
        let link = link_config(a)?;
        let input = input(a, command, link.is_some())?;
        let framing = framing(a, input == InputSpec::Tone, link.is_some())?;
        let max_clients = match a.max_clients {
            Some(n) => range("max-clients", n, 1, 1_000_000)?,
            None => max_clients,
        };
        Ok(StreamConfig {
            mount: mount.to_string(),
            input,
            framer: framing.framer,
            frame_bytes: framing.frame_bytes,
            header_bytes: framing.header_bytes,
            source_buffer: framing.source_buffer,
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
            content_type: framing.content_type,
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
            info: icy_info(a),
            title: a.title.clone().unwrap_or_default(),
            icy_metaint: range("icy-metaint", a.icy_metaint.unwrap_or(16000), 1, 1 << 20)?,
            mute: a.mute.unwrap_or(false),
            hls: hls(a, framing.framer)?,
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

/// How a stream's bytes are cut and held: the framer and its largest frame, the header sent
/// before the frames, the ring's slots, and the content type listeners are told.
struct Framing {
    framer: &'static FramerInfo,
    frame_bytes: usize,
    header_bytes: usize,
    source_buffer: usize,
    content_type: String,
}

/// `-frame-filter` (or `-filter`), `-frame-bytes`, `-header-bytes`, `-source-buffer` and
/// `-content-type`. The tone has defaults of its own, and the link a largest frame.
fn framing(a: &Args, tone: bool, link: bool) -> Result<Framing, Error> {
    let filter_name = match (&a.frame_filter, &a.filter) {
        (Some(f), Some(g)) if f != g => {
            return Err(format!("-frame-filter {f:?} and -filter {g:?} disagree").into())
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
        )
        .into());
    }
    if link && frame_bytes > MAX_FRAGMENT_BYTES {
        return Err(format!(
            "-frame-bytes {frame_bytes} is too large for the link (at most {})",
            MAX_FRAGMENT_BYTES
        )
        .into());
    }
    let header_bytes = if tone {
        TONE_HEADER_BYTES
    } else {
        range("header-bytes", a.header_bytes.unwrap_or(0), 0, 1 << 20)?
    };
    let source_buffer = range("source-buffer", a.source_buffer.unwrap_or(64), 3, 1_000_000)?;
    if (source_buffer as u64).saturating_mul(frame_bytes as u64) > MAX_RING_BYTES {
        return Err(format!(
            "-source-buffer {source_buffer} × -frame-bytes {frame_bytes} needs more than 1 GiB"
        )
        .into());
    }
    let content_type = match &a.content_type {
        Some(ct) if ct.is_empty() || ct.contains(['\r', '\n']) => {
            return Err(format!("-content-type {ct:?} is not a valid header value").into())
        }
        Some(ct) => ct.clone(),
        None if tone => "audio/wav".into(),
        None => framer.content_type.into(),
    };
    Ok(Framing {
        framer,
        frame_bytes,
        header_bytes,
        source_buffer,
        content_type,
    })
}

/// The stream's name, genre, description, URL and listing from `-icy-*` (sources may
/// override them).
fn icy_info(a: &Args) -> Info {
    Info {
        name: a.icy_name.clone().unwrap_or_default(),
        genre: a.icy_genre.clone().unwrap_or_default(),
        description: a.icy_description.clone().unwrap_or_default(),
        url: a.icy_url.clone().unwrap_or_default(),
        public: a.icy_pub.unwrap_or(false),
        bitrate: String::new(),
    }
}

/// `-hls` and its shape: packed audio needs MP3 or ADTS frames.
fn hls(a: &Args, framer: &FramerInfo) -> Result<Option<HlsConfig>, Error> {
    if !a.hls.unwrap_or(false) {
        if a.hls_segment.is_some() || a.hls_window.is_some() {
            return Err("-hls-segment and -hls-window shape -hls: give -hls too".into());
        }
        return Ok(None);
    }
    if framer.hls.is_none() {
        return Err(format!(
            "-hls needs -frame-filter mp3 or adts (packed audio segments); not {}",
            framer.name
        )
        .into());
    }
    let segment = a.hls_segment.unwrap_or(std::time::Duration::from_secs(4));
    if segment < std::time::Duration::from_secs(1) || segment > std::time::Duration::from_secs(30) {
        return Err(format!("-hls-segment {segment:?} is out of range (1s to 30s)").into());
    }
    let window = range("hls-window", a.hls_window.unwrap_or(6), 3, 1000)?;
    Ok(Some(HlsConfig { segment, window }))
}

/// `icecast://user:pass@host:port/mount` (or `http://`); the user defaults to `source`.
fn parse_icecast(s: &str) -> Result<Url, Error> {
    let mut url = Url::parse(s, 8000).map_err(|e| format!("-icecast: {e}"))?;
    if url.scheme != "icecast" && url.scheme != "http" {
        return Err(format!(
            "-icecast: use icecast://user:pass@host:port/mount, not {}://",
            url.scheme
        )
        .into());
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

/// `-record DIR`, `-record-split` and `-record-keep`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordConfig {
    pub dir: std::path::PathBuf,
    pub split: Duration,
    pub keep: Option<Duration>,
}

fn record_config(a: &Args) -> Result<Option<RecordConfig>, Error> {
    let Some(dir) = a.record.as_ref() else {
        if a.record_split.is_some() || a.record_keep.is_some() {
            return Err("-record-split and -record-keep need -record DIR".into());
        }
        return Ok(None);
    };
    let split = a.record_split.unwrap_or(Duration::from_secs(3600));
    if split < Duration::from_secs(1) || split > Duration::from_secs(86_400) {
        return Err(format!("-record-split {split:?} is out of range (1s to 24h)").into());
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
