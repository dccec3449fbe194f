//! `InputSpec`: where a stream's bytes come from, from its input flags. Exactly one input
//! is given (`-exec` needs its command after the flags, found in `PATH` here); the flags
//! that only make sense with some inputs are refused with the others. Apart from the rest of
//! `stream.rs` because which input is a question of its own, with checks of its own.

use super::web_url;
use crate::cli::Args;
use crate::error::Error;
use crate::http::url::Url;
use std::path::{Path, PathBuf};

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

/// The input flags: exactly one input (the tone may be named with -exec/-path only to be
/// refused with a clear message).
pub fn input(a: &Args, command: &[String], link: bool) -> Result<InputSpec, Error> {
    let tone = a.tone.unwrap_or(false);
    let exec = a.exec.unwrap_or(false);
    let receive = a.link_receive.unwrap_or(false);
    let chosen = chosen(a);
    if chosen.len() > 1 {
        return Err(format!(
            "{} cannot be used together: choose one input (for a file while no source client \
             is connected, use -fallback-path)",
            chosen.join(" and ")
        )
        .into());
    }
    if a.fallback_path.is_some() && a.source_password.is_none() {
        return Err(
            "-fallback-path plays while no source client is connected: it needs -source-password"
                .into(),
        );
    }
    if let Some(why) = close_idle_refusal(a, link) {
        return Err(why.into());
    }
    if let Some(first) = command.first().filter(|_| !exec) {
        return Err(format!(
            "unexpected argument {first:?}: arguments after the flags are only used with -exec"
        )
        .into());
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
        let entries = super::playlist::read(std::path::Path::new(list))?;
        if entries.is_empty() {
            return Err(format!("-playlist {list}: no files in it").into());
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

/// The input flags given, by name: a stream reads one input.
fn chosen(a: &Args) -> Vec<&'static str> {
    [
        (a.tone.unwrap_or(false), "-tone"),
        (a.exec.unwrap_or(false), "-exec"),
        (a.path.is_some(), "-path"),
        (a.playlist.is_some(), "-playlist"),
        (a.url.is_some(), "-url"),
        (a.source_password.is_some(), "-source-password"),
        (!a.link_pull.is_empty(), "-link-pull"),
        (a.link_receive.unwrap_or(false), "-link-receive"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, name)| *name)
    .collect()
}

/// Why `-close-idle` cannot be used with this input, if it cannot. Closing the source while
/// nobody listens here would starve what does not count as a listener: an encoder pushing
/// to us, or the far end of the link.
fn close_idle_refusal(a: &Args, link: bool) -> Option<&'static str> {
    if !a.close_idle.unwrap_or(false) {
        return None;
    }
    if a.source_password.is_some() {
        return Some(
            "-close-idle cannot be used with -source-password: a source client \
                    pushes whether or not anyone listens",
        );
    }
    link.then_some(
        "-close-idle cannot be used with the link: it carries the stream \
                whether or not anyone listens here",
    )
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
