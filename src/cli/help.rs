//! `-help`: the usage as users type it and every flag, grouped by concern, from the one
//! table in `flags.rs`.

use super::flags::{Group, Scope, FLAGS};
use std::fmt::Write as _;

/// The whole help text.
pub fn text() -> String {
    let mut out = String::from(
        "ringcast: a live stream fan-out server (streamserve's flags, Icecast's protocols)\n\
         \n\
         Usage:\n  \
         ringcast [flags]                      read the stream from -path, -url, -tone, …\n  \
         ringcast [flags] -exec CMD [ARGS…]    read the stream from CMD's standard output\n  \
         ringcast [server flags] -mount PATH=FILE …   several streams, each one's flags in FILE\n\
         \n\
         Flags are written as in Go: -name value, -name=value, a bare -bool or -bool=false.\n\
         Flags marked * are server-wide: with -mount they stay on the command line; the\n\
         others belong in each mount's FILE.\n",
    );
    let width = FLAGS
        .iter()
        .map(|f| f.name.len().saturating_add(f.value.len()))
        .max()
        .unwrap_or(0)
        .saturating_add(4);
    for group in Group::ALL {
        let _ = write!(out, "\n{}:\n", group.title());
        for f in FLAGS.iter().filter(|f| f.group == group) {
            let usage = if f.value.is_empty() {
                format!("-{}", f.name)
            } else {
                format!("-{} {}", f.name, f.value)
            };
            let mark = if f.scope == Scope::Server { '*' } else { ' ' };
            let _ = writeln!(out, " {mark}{usage:width$}{}", f.help);
        }
    }
    out.push_str("\nREADME.md has recipes; every flag's details are there too.\n");
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_flag_is_listed_once_under_a_group() {
        let text = super::text();
        for f in super::FLAGS {
            let needle = format!("-{} ", f.name);
            let hits = text
                .lines()
                .filter(|l| l.trim_start_matches([' ', '*']).starts_with(&needle))
                .count();
            assert_eq!(hits, 1, "-{}", f.name);
        }
        assert!(!text.contains("--"), "Go syntax only");
    }
}
