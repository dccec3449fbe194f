//! `-flags-file PATH`: flags kept in a file, written as on a command line.
//!
//! systemd's `EnvironmentFile=` + `$FLAGS` splits on whitespace and ignores quotes, so a
//! stream's `-exec sh -c 'arecord … | lame …'` cannot travel that way. A flags file is read
//! here, split into words like a shell would (single and double quotes, backslash escapes,
//! `#` comments to the end of a line), and its words replace `-flags-file PATH` in argv
//! before Go-syntax parsing. So `/etc/ringcast/NAME.conf` holds the streamserve command line
//! a user already has.

use crate::error::Error;
use std::path::Path;

/// Replaces each `-flags-file PATH` (or `=PATH`) before the first positional with the file's
/// words. Files may not name further flags files.
pub fn expand(
    argv: &[String],
    read: impl Fn(&Path) -> std::io::Result<String>,
) -> Result<Vec<String>, Error> {
    let mut out = Vec::with_capacity(argv.len());
    let mut args = argv.iter();
    while let Some(arg) = args.next() {
        if arg == "--" || !arg.starts_with('-') || arg == "-" {
            out.push(arg.clone());
            out.extend(args.cloned());
            break;
        }
        let path = match arg.as_str() {
            "-flags-file" | "--flags-file" => Some(
                args.next()
                    .ok_or("flag needs an argument: -flags-file")?
                    .clone(),
            ),
            a => a
                .strip_prefix("-flags-file=")
                .or_else(|| a.strip_prefix("--flags-file="))
                .map(str::to_string),
        };
        match path {
            Some(p) => {
                let text = read(Path::new(&p)).map_err(|e| format!("-flags-file {p}: {e}"))?;
                let words = split_words(&text).map_err(|e| format!("-flags-file {p}: {e}"))?;
                if words
                    .iter()
                    .any(|w| w.trim_start_matches('-').starts_with("flags-file"))
                {
                    return Err(format!("-flags-file {p}: a flags file cannot name another").into());
                }
                out.extend(words);
            }
            None => {
                out.push(arg.clone());
                // A flag's value is not the first positional (`-address :80 -flags-file f`).
                if takes_next(arg) {
                    out.extend(args.next().cloned());
                }
            }
        }
    }
    Ok(out)
}

/// Whether `arg` is a flag whose value is the next argument.
fn takes_next(arg: &str) -> bool {
    let name = arg.trim_start_matches('-');
    !name.contains('=')
        && super::flags::find(name).is_some_and(|f| f.kind != super::flags::Kind::Bool)
}

/// Splits text into words as `sh` would for plain words, quotes and escapes (no expansion).
pub fn split_words(text: &str) -> Result<Vec<String>, Error> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '#' if !in_word => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') if matches!(chars.peek(), Some('"' | '\\' | '$' | '`')) => {
                            // unwrap ok: peek just saw a character.
                            cur.push(chars.next().unwrap());
                        }
                        Some(c) => cur.push(c),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') => {}
                Some(c) => {
                    in_word = true;
                    cur.push(c);
                }
                None => return Err("backslash at the end".into()),
            },
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_files_take_any_bytes() {
        crate::util::fuzz::run(
            "flagsfile::split_words",
            &[b"-exec sh -c 'a | b' # c\n\"x\\\"y\"", b"'unclosed", b"\\"],
            256,
            |b| {
                let _ = split_words(&String::from_utf8_lossy(b));
            },
        );
    }

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn shell_words_with_quotes_comments_and_continuations() {
        let text = "# studio stream\n-address :8000   -frame-filter mp3\n\
                    -exec sh -c 'arecord -f cd | lame -r - -' \\\n  \"a \\\"b\\\" c\" d\\ e # tail\n";
        assert_eq!(
            split_words(text).unwrap(),
            args(&[
                "-address",
                ":8000",
                "-frame-filter",
                "mp3",
                "-exec",
                "sh",
                "-c",
                "arecord -f cd | lame -r - -",
                "a \"b\" c",
                "d e"
            ])
        );
        assert!(split_words("'open").is_err());
        assert_eq!(split_words("''").unwrap(), [""]);
    }

    #[test]
    fn expands_in_place_before_positionals_only() {
        let read = |_: &Path| Ok("-address :9 -reopen=false".to_string());
        let got = expand(&args(&["-debug", "-flags-file", "/x.conf", "-tone"]), read).unwrap();
        assert_eq!(
            got,
            args(&["-debug", "-address", ":9", "-reopen=false", "-tone"])
        );
        let got = expand(&args(&["--flags-file=/x.conf"]), read).unwrap();
        assert_eq!(got, args(&["-address", ":9", "-reopen=false"]));
        // After a flag's value it still counts (the value is not the first positional).
        let got = expand(&args(&["-address", ":9", "-flags-file", "/x.conf"]), read).unwrap();
        assert_eq!(
            got,
            args(&["-address", ":9", "-address", ":9", "-reopen=false"])
        );
        // After the first positional (the -exec command), it is the command's own argument.
        let got = expand(&args(&["-exec", "prog", "-flags-file", "x"]), read).unwrap();
        assert_eq!(got, args(&["-exec", "prog", "-flags-file", "x"]));
    }

    #[test]
    fn the_shipped_example_config_is_valid() {
        let text = include_str!("../../systemd/ringcast.conf");
        let argv = split_words(text).unwrap();
        let none = |_: &Path| Err(std::io::Error::from(std::io::ErrorKind::NotFound));
        if let Err(e) = crate::config::load(&argv, &none) {
            panic!("{e:?}");
        }
    }

    #[test]
    fn errors_name_the_file() {
        let missing = |_: &Path| Err(std::io::Error::from(std::io::ErrorKind::NotFound));
        assert!(expand(&args(&["-flags-file", "/nope"]), missing)
            .unwrap_err()
            .to_string()
            .contains("/nope"));
        assert!(expand(&args(&["-flags-file"]), missing).is_err());
        let nested = |_: &Path| Ok("-flags-file other".to_string());
        assert!(expand(&args(&["-flags-file", "a"]), nested)
            .unwrap_err()
            .to_string()
            .contains("another"));
    }
}
