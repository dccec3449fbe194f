//! `-mount PATH=FILE`: a stream at PATH, its flags in FILE (the `-flags-file` syntax). The
//! command line then holds server-wide flags only, and each file a stream's flags only, so a
//! flag never means two things depending on where it sits.
//!
//! A boundary module: it reads files, so the compiler refuses string slicing, indexing,
//! unchecked arithmetic and lossy casts here (README, Security).
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

use super::{Failed, Mount, ServerConfig, StreamConfig};
use crate::cli::flags::{self, Scope};
use crate::cli::{self, Args, Parsed};
use crate::error::Error;
use std::path::Path;

/// Paths the server answers itself: no mount may hide them.
const RESERVED: &[&str] = &["/status-json.xsl", "/metrics", "/admin.cgi"];

/// Builds every mount's stream from its file.
pub fn load(
    args: &Args,
    command: &[String],
    server: &ServerConfig,
    read: &dyn Fn(&Path) -> std::io::Result<String>,
) -> Result<Vec<Mount>, Failed> {
    let misplaced = names_with_scope(args, Scope::Stream);
    if !misplaced.is_empty() {
        return Err(Failed::Invalid(format!(
            "with -mount, {} belong(s) in a mount's file: the command line holds server-wide \
             flags only",
            misplaced.join(", ")
        )));
    }
    if let Some(first) = command.first() {
        return Err(Failed::Invalid(format!(
            "unexpected argument {first:?}: with -mount, -exec and its command go in the \
             mount's file"
        )));
    }
    let mut out: Vec<Mount> = Vec::with_capacity(args.mount.len());
    for spec in &args.mount {
        let (path, file) = spec.split_once('=').ok_or_else(|| {
            Failed::Invalid(format!(
                "-mount {spec:?}: write PATH=FILE, e.g. -mount /live=/etc/ringcast/live.conf"
            ))
        })?;
        check_path(path).map_err(|e| Failed::Invalid(format!("-mount {path:?}: {e}")))?;
        if out.iter().any(|m| m.cfg.mount == path) {
            return Err(Failed::Invalid(format!("-mount {path}: given twice")));
        }
        let bad = |e: Error| Failed::Invalid(format!("-mount {path} ({file}): {e}"));
        let text = read(Path::new(file)).map_err(|e| bad(Error::from(e.to_string())))?;
        let words = cli::flagsfile::split_words(&text).map_err(bad)?;
        let words = cli::flagsfile::expand(&words, read).map_err(bad)?;
        let (margs, mcommand) = match cli::parse(&words) {
            Parsed::Run { args, command } => (args, command),
            Parsed::Help(_) => return Err(bad("-help has no place in a mount's file".into())),
            Parsed::Usage(e) => return Err(bad(e.lines().next().unwrap_or_default().into())),
        };
        let misplaced = names_with_scope(&margs, Scope::Server);
        if !misplaced.is_empty() {
            return Err(bad(format!(
                "{} is server-wide: it belongs on the command line",
                misplaced.join(", ")
            )
            .into()));
        }
        let cfg =
            StreamConfig::from_args(&margs, &mcommand, path, server.max_clients).map_err(bad)?;
        let mut words = words;
        words.insert(0, spec.clone());
        out.push(Mount { cfg, words });
    }
    check_fallbacks(&out).map_err(|e| Failed::Invalid(e.to_string()))?;
    Ok(out)
}

/// The flags given in `args` whose scope is `scope`, as `-name`.
fn names_with_scope(args: &Args, scope: Scope) -> Vec<String> {
    args.given()
        .into_iter()
        .filter(|n| flags::find(n).is_some_and(|f| f.scope == scope))
        .map(|n| format!("-{n}"))
        .collect()
}

/// A mount path: absolute, printable, no query, not one of the server's own paths.
fn check_path(path: &str) -> Result<(), Error> {
    if !path.starts_with('/') {
        return Err("a mount path starts with /".into());
    }
    if path.len() > 200 {
        return Err("a mount path is at most 200 bytes".into());
    }
    if path
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || matches!(c, '?' | '#' | '%'))
    {
        return Err("a mount path has no spaces, control characters, ?, # or %".into());
    }
    if RESERVED.contains(&path) || path.starts_with("/admin/") || path.contains("/.ringcast") {
        return Err("the server answers this path itself".into());
    }
    Ok(())
}

/// Every `-fallback-mount` names another mount of the same format.
fn check_fallbacks(mounts: &[Mount]) -> Result<(), Error> {
    for m in mounts {
        let Some(target) = &m.cfg.fallback_mount else {
            continue;
        };
        let here = &m.cfg.mount;
        if target == here {
            return Err(format!("-mount {here}: -fallback-mount names the mount itself").into());
        }
        let t = mounts
            .iter()
            .find(|o| &o.cfg.mount == target)
            .ok_or_else(|| format!("-mount {here}: -fallback-mount {target}: no such mount"))?;
        // Listeners hear both without reconnecting: the bytes must be one format.
        if t.cfg.framer.name != m.cfg.framer.name
            || t.cfg.content_type != m.cfg.content_type
            || t.cfg.header_bytes != m.cfg.header_bytes
        {
            return Err(format!(
                "-mount {here}: -fallback-mount {target} must be the same format ({} {}, not \
                 {} {})",
                m.cfg.framer.name, m.cfg.content_type, t.cfg.framer.name, t.cfg.content_type
            )
            .into());
        }
    }
    Ok(())
}
