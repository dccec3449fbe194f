//! The link flags of a stream: a key (inline or from a file) and what to do with it.

use super::web_url;
use crate::cli::Args;
use crate::error::Error;
use crate::http::url::Url;
use std::net::IpAddr;
use std::time::Duration;

/// The most paths a link may have (`-link-pull` or `-link-push` given this many times).
pub const MAX_PATHS: usize = 4;
/// The most audio bytes in one link fragment (`link/fragments.rs`): a burst at the origin
/// is cut into several fragments, each of which fits a link message with room to spare; a
/// frame larger than this cannot go over the link at all.
pub const MAX_FRAGMENT_BYTES: usize = 256 * 1024;

/// One way to the far end: its URL and the local address it leaves from (`-link-from`).
#[derive(Debug, Clone)]
pub struct LinkPath {
    pub url: Url,
    pub from: Option<IpAddr>,
}

#[derive(Debug, Clone)]
/// A stream's link: its key and which way it goes.
pub struct LinkConfig {
    pub key: Vec<u8>,
    /// `-link-pull`, each a path carrying the whole stream (empty: not pulling).
    pub pull: Vec<LinkPath>,
    /// `-link-push`, likewise.
    pub push: Vec<LinkPath>,
    pub receive: bool,
    pub delay: Duration,
    pub fragment: Duration,
    /// How much the origin keeps for receivers that come back.
    pub keep: Duration,
}

/// `None` when the stream has no link key (and asks for no link).
pub fn link_config(a: &Args) -> Result<Option<LinkConfig>, Error> {
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
        !a.link_pull.is_empty() || !a.link_push.is_empty() || a.link_receive.unwrap_or(false);
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
    if !a.link_pull.is_empty() && a.link_receive.unwrap_or(false) {
        return Err("-link-pull and -link-receive: a receiver either pulls or is pushed to".into());
    }
    let delay = a.link_delay.unwrap_or(Duration::from_secs(5));
    if delay < Duration::from_millis(500) || delay > Duration::from_secs(600) {
        return Err(format!("-link-delay {delay:?} is out of range (500ms to 10m)").into());
    }
    let fragment = a.fragment_duration.unwrap_or(Duration::from_millis(250));
    if fragment < Duration::from_millis(20) || fragment > Duration::from_secs(5) {
        return Err(format!("-fragment-duration {fragment:?} is out of range (20ms to 5s)").into());
    }
    let keep = a.link_buffer.unwrap_or(Duration::from_secs(30));
    if keep < Duration::from_secs(1) || keep > Duration::from_secs(3600) {
        return Err(format!("-link-buffer {keep:?} is out of range (1s to 1h)").into());
    }
    let pull = paths("link-pull", &a.link_pull, &a.link_from)?;
    let push = paths("link-push", &a.link_push, &a.link_from)?;
    if a.link_from.len() > pull.len().max(push.len()) {
        return Err(format!(
            "-link-from is given {} times for {} link paths: one per -link-pull or -link-push, in order",
            a.link_from.len(),
            pull.len().max(push.len())
        ).into());
    }
    Ok(Some(LinkConfig {
        key: key.into_bytes(),
        pull,
        push,
        receive: a.link_receive.unwrap_or(false),
        delay,
        fragment,
        keep,
    }))
}

/// The paths of `-link-pull` or `-link-push`, each with its `-link-from` (by position).
fn paths(flag: &str, urls: &[String], from: &[String]) -> Result<Vec<LinkPath>, Error> {
    if urls.len() > MAX_PATHS {
        return Err(format!(
            "-{flag} is given {} times: a link has at most {MAX_PATHS} paths",
            urls.len()
        )
        .into());
    }
    urls.iter()
        .enumerate()
        .map(|(i, u)| {
            let from = match from.get(i).map(|f| f.trim()) {
                None | Some("" | "-") => None,
                Some(f) => Some(f.parse::<IpAddr>().map_err(|_| {
                    format!("-link-from {f:?}: not an IP address (a path leaves from one of this machine's addresses)")
                })?),
            };
            Ok(LinkPath {
                url: web_url(flag, u)?,
                from,
            })
        })
        .collect()
}
