//! The link flags of a stream: a key (inline or from a file) and what to do with it.

use super::web_url;
use crate::cli::Args;
use crate::http::url::Url;
use std::time::Duration;

#[derive(Debug, Clone)]
/// A stream's link: its key and which way it goes.
pub struct LinkConfig {
    pub key: Vec<u8>,
    pub pull: Option<Url>,
    pub push: Option<Url>,
    pub receive: bool,
    pub delay: Duration,
    pub fragment: Duration,
    /// How much the origin keeps for receivers that come back.
    pub keep: Duration,
}

/// `None` when the stream has no link key (and asks for no link).
pub fn link_config(a: &Args) -> Result<Option<LinkConfig>, String> {
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
    let base = |flag: &str, s: &Option<String>| s.as_deref().map(|u| web_url(flag, u)).transpose();
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
