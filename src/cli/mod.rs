//! The command line exactly as users type it: streamserve's flags in Go's `flag` syntax.
//!
//! Go's `flag` package accepts `-name v`, `-name=v`, `--name v`, bare bools (`-reopen`) and
//! `-name=false`, and stops at the first positional or `--`. argh speaks only `--name v` and
//! has no way to set a switch to false, so [`parse`] first rewrites argv into argh's dialect
//! (every Go bool becomes an option taking `true`/`false`) and splits off the positional tail
//! (the `-exec` command). No I/O, no validation beyond syntax: that is `config.rs`'s job.

pub mod flagsfile;

use argh::FromArgs;
use std::time::Duration;

/// ringcast: a live stream fan-out server (streamserve-compatible flags, Go flag syntax).
///
/// Reads a live stream (a file/FIFO, a command's stdout with -exec, or the built-in test tone
/// with -tone), cuts it into frames and serves it to every HTTP client on any path.
/// Example: ringcast -address :8000 -frame-filter mp3 -frame-bytes 2881 -exec arecord ...
#[derive(FromArgs, Debug, Default)]
pub struct Args {
    /// read more flags from this file, written as on a command line (quotes, # comments)
    #[argh(option)]
    #[allow(dead_code)] // for -help only: flagsfile.rs replaces it with the file's flags
    pub flags_file: Option<String>,
    /// listen address host:port (":1234" = all interfaces, ":0" = any free port)
    #[argh(option)]
    pub address: Option<String>,
    /// source file, FIFO or device to read (default /dev/stdin)
    #[argh(option)]
    pub path: Option<String>,
    /// run the command given after the flags and read its stdout (no shell, PATH lookup)
    #[argh(option, from_str_fn(parse_bool))]
    pub exec: Option<bool>,
    /// serve the built-in test tone (a 440 Hz sine as an endless WAV stream)
    #[argh(option, from_str_fn(parse_bool))]
    pub tone: Option<bool>,
    /// raw filter: exact frame size; other filters: maximum frame size (default 64)
    #[argh(option, from_str_fn(parse_int))]
    pub frame_bytes: Option<i64>,
    /// framer: raw (or ""), mp3, adts, ts (default raw)
    #[argh(option)]
    pub frame_filter: Option<String>,
    /// alias of -frame-filter
    #[argh(option)]
    pub filter: Option<String>,
    /// bytes of header read from each source when opened and sent to every client first
    #[argh(option, from_str_fn(parse_int))]
    pub header_bytes: Option<i64>,
    /// ring size in frames, must be > 2 (default 64)
    #[argh(option, from_str_fn(parse_int))]
    pub source_buffer: Option<i64>,
    /// limit how fast the source is read, bytes/s (0 = as fast as it comes)
    #[argh(option, from_str_fn(parse_int))]
    pub source_bandwidth: Option<i64>,
    /// disconnect a client after this many bytes, at a frame boundary (0 = never)
    #[argh(option, from_str_fn(parse_int))]
    pub client_max_bytes: Option<i64>,
    /// close the source when the last client leaves; reopen on the next client
    #[argh(option, from_str_fn(parse_bool))]
    pub close_idle: Option<bool>,
    /// content type of responses (default application/octet-stream; audio/wav with -tone)
    #[argh(option)]
    pub content_type: Option<String>,
    /// pin ringcast to this many CPU cores (default: all)
    #[argh(option, from_str_fn(parse_int))]
    pub cpu_max: Option<i64>,
    /// on source EOF or error reopen it and keep clients (default true); false = drain, exit
    #[argh(option, from_str_fn(parse_bool))]
    pub reopen: Option<bool>,
    /// log a statistics line this often, e.g. 30s (0 = never)
    #[argh(option, from_str_fn(parse_duration))]
    pub stat_log_interval: Option<Duration>,
    /// close the source when it produces nothing for this long, e.g. 5s (0 = never)
    #[argh(option, from_str_fn(parse_duration))]
    pub max_quiet_interval: Option<Duration>,
    /// setuid to this user id after binding (ignored if 0 or the current user)
    #[argh(option, from_str_fn(parse_int))]
    pub uid: Option<i64>,
    /// verbose logging (same as -log-level debug)
    #[argh(option, from_str_fn(parse_bool))]
    pub debug: Option<bool>,
    /// error, warn, info, debug or trace (default info)
    #[argh(option)]
    pub log_level: Option<String>,
    /// recent audio a new listener gets at once, in bytes, from a frame boundary (default 0)
    #[argh(option, from_str_fn(parse_int))]
    pub burst_bytes: Option<i64>,
    /// drop a listener whose socket accepts nothing for this long (default 10s)
    #[argh(option, from_str_fn(parse_duration))]
    pub write_timeout: Option<Duration>,
    /// close a connection whose request headers have not arrived in this long (default 10s)
    #[argh(option, from_str_fn(parse_duration))]
    pub header_timeout: Option<Duration>,
    /// most listeners at once; more get 503 (default 1500)
    #[argh(option, from_str_fn(parse_int))]
    pub max_clients: Option<i64>,
    /// most connections one client address may have open that have not sent their whole
    /// request yet (IPv6: per /64); more are closed at once (default 32)
    #[argh(option, from_str_fn(parse_int))]
    pub max_pending_per_ip: Option<i64>,
    /// pull the stream from this http:// URL (Icecast, SHOUTcast, any HTTP stream)
    #[argh(option)]
    pub url: Option<String>,
    /// take the stream from source clients (Icecast PUT/SOURCE, SHOUTcast v1 on port+1)
    #[argh(option)]
    pub source_password: Option<String>,
    /// user name of source clients (default source)
    #[argh(option)]
    pub source_user: Option<String>,
    /// drop a source client that sends nothing for this long (default 10s)
    #[argh(option, from_str_fn(parse_duration))]
    pub source_timeout: Option<Duration>,
    /// a file looped to listeners while no source client is connected
    #[argh(option)]
    pub fallback_path: Option<String>,
    /// also send the stream to an Icecast server: icecast://user:pass@host:port/mount
    #[argh(option)]
    pub icecast: Option<String>,
    /// stream name (icy-name); a source client's or upstream's own name wins
    #[argh(option)]
    pub icy_name: Option<String>,
    /// stream genre (icy-genre)
    #[argh(option)]
    pub icy_genre: Option<String>,
    /// stream description (icy-description)
    #[argh(option)]
    pub icy_description: Option<String>,
    /// stream home page (icy-url)
    #[argh(option)]
    pub icy_url: Option<String>,
    /// list the stream in public directories (icy-pub)
    #[argh(option, from_str_fn(parse_bool))]
    pub icy_pub: Option<bool>,
    /// audio bytes between ICY metadata blocks for listeners that ask (default 16000)
    #[argh(option, from_str_fn(parse_int))]
    pub icy_metaint: Option<i64>,
    /// the stream title until a source, upstream or admin call sets another
    #[argh(option)]
    pub title: Option<String>,
    /// password of user admin for admin calls (/admin/metadata, /metrics)
    #[argh(option)]
    pub admin_password: Option<String>,
    /// the link's shared secret (serves the link to pullers when set)
    #[argh(option)]
    pub link_key: Option<String>,
    /// read the link's shared secret from this file
    #[argh(option)]
    pub link_key_file: Option<String>,
    /// PEM file of CA certificates trusted for https:// URLs, besides the system's
    #[argh(option)]
    pub tls_ca: Option<String>,
    /// receive the stream over the link by pulling it from this origin (http(s)://host:port)
    #[argh(option)]
    pub link_pull: Option<String>,
    /// push the stream over the link to this receiver (http(s)://host:port)
    #[argh(option)]
    pub link_push: Option<String>,
    /// receive the stream over the link from a pusher
    #[argh(option, from_str_fn(parse_bool))]
    pub link_receive: Option<bool>,
    /// receiver: play the stream this far behind the origin (default 5s)
    #[argh(option, from_str_fn(parse_duration))]
    pub link_delay: Option<Duration>,
    /// origin: fragment length, cut at frame boundaries (default 250ms)
    #[argh(option, from_str_fn(parse_duration))]
    pub fragment_duration: Option<Duration>,
    /// origin: how much stream to keep for receivers that reconnect (default 30s)
    #[argh(option, from_str_fn(parse_duration))]
    pub link_buffer: Option<Duration>,
}

/// The Go-syntax bool flags. Each is an argh option taking `true`/`false` after rewriting.
const BOOL_FLAGS: &[&str] = &[
    "exec",
    "tone",
    "close-idle",
    "reopen",
    "debug",
    "icy-pub",
    "link-receive",
];

/// The flags that take a value (the next argument, or the text after `=`).
const VALUE_FLAGS: &[&str] = &[
    "flags-file",
    "address",
    "path",
    "frame-bytes",
    "frame-filter",
    "filter",
    "header-bytes",
    "source-buffer",
    "source-bandwidth",
    "client-max-bytes",
    "content-type",
    "cpu-max",
    "stat-log-interval",
    "max-quiet-interval",
    "uid",
    "log-level",
    "burst-bytes",
    "write-timeout",
    "header-timeout",
    "max-clients",
    "max-pending-per-ip",
    "url",
    "source-password",
    "source-user",
    "source-timeout",
    "fallback-path",
    "icecast",
    "icy-name",
    "icy-genre",
    "icy-description",
    "icy-url",
    "icy-metaint",
    "title",
    "admin-password",
    "link-key",
    "link-key-file",
    "tls-ca",
    "link-pull",
    "link-push",
    "link-delay",
    "fragment-duration",
    "link-buffer",
];

/// What the command line asked for.
#[derive(Debug)]
pub enum Parsed {
    /// Run with these flags; `command` is everything after the flags (the `-exec` command).
    Run {
        args: Box<Args>,
        command: Vec<String>,
    },
    /// `-h`/`-help`: print this on stdout, exit 0.
    Help(String),
    /// A syntax error (unknown flag, missing or bad value): print on stderr, exit 2.
    Usage(String),
}

/// Parses argv (without the program name) with Go's `flag` rules.
pub fn parse(argv: &[String]) -> Parsed {
    let (flags, command) = match normalize(argv) {
        Ok(split) => split,
        Err(Help) => return Parsed::Help(usage()),
        Err(Bad(msg)) => return Parsed::Usage(format!("{msg}\n{}", usage())),
    };
    let refs: Vec<&str> = flags.iter().map(String::as_str).collect();
    match Args::from_args(&["ringcast"], &refs) {
        Ok(args) => Parsed::Run {
            args: Box::new(args),
            command,
        },
        Err(early) => Parsed::Usage(format!("{}\n{}", early.output.trim_end(), usage())),
    }
}

/// The usage text (argh renders it from the doc comments above).
pub fn usage() -> String {
    match Args::from_args(&["ringcast"], &["--help"]) {
        Err(early) => early
            .output
            .replace("  --help, help", "  -h, -help")
            .replace("\n  --", "\n  -"),
        Ok(_) => String::new(),
    }
}

enum NormError {
    Help,
    Bad(String),
}
use NormError::{Bad, Help};

/// Rewrites Go flag syntax into argh's: returns (argh argv, positional tail).
fn normalize(argv: &[String]) -> Result<(Vec<String>, Vec<String>), NormError> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < argv.len() {
        let arg = &argv[i];
        if arg == "--" {
            return Ok((last_wins(out), argv[i + 1..].to_vec()));
        }
        // Go: a lone "-" or anything not starting with '-' is the first positional.
        if !arg.starts_with('-') || arg == "-" {
            return Ok((last_wins(out), argv[i..].to_vec()));
        }
        let body = arg.strip_prefix("--").unwrap_or(&arg[1..]);
        if body.starts_with('-') || body.starts_with('=') {
            return Err(Bad(format!("bad flag syntax: {arg}")));
        }
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        if name == "h" || name == "help" {
            return Err(Help);
        }
        if BOOL_FLAGS.contains(&name) {
            let value = match inline {
                None => true,
                Some(v) => go_bool(v).ok_or_else(|| {
                    Bad(format!(
                        "invalid boolean value {v:?} for -{name}: use true or false"
                    ))
                })?,
            };
            out.push(format!("--{name}"));
            out.push(value.to_string());
        } else if VALUE_FLAGS.contains(&name) {
            let value = match inline {
                Some(v) => v.to_string(),
                None => {
                    i += 1;
                    argv.get(i)
                        .cloned()
                        .ok_or_else(|| Bad(format!("flag needs an argument: -{name}")))?
                }
            };
            out.push(format!("--{name}"));
            out.push(value);
        } else {
            return Err(Bad(format!("flag provided but not defined: -{name}")));
        }
        i += 1;
    }
    Ok((last_wins(out), Vec::new()))
}

/// Go's `flag` lets a flag given twice take its last value (`-address :80 … -address :8000`,
/// as a wrapper script appending to a unit's flags does); argh refuses duplicates.
fn last_wins(pairs: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(pairs.len());
    for pair in pairs.chunks(2) {
        if let Some(i) = out.iter().step_by(2).position(|n| *n == pair[0]) {
            out.drain(i * 2..i * 2 + 2);
        }
        out.extend_from_slice(pair);
    }
    out
}

/// Go's `strconv.ParseBool`.
fn go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

fn parse_bool(s: &str) -> Result<bool, String> {
    go_bool(s).ok_or_else(|| format!("invalid boolean {s:?}"))
}

/// Go's `strconv.ParseInt(s, 0, 64)`: decimal, `0x`, `0o`, `0b`, a leading `0` for octal, `_`.
pub fn parse_int(s: &str) -> Result<i64, String> {
    let err = || format!("invalid integer {s:?}");
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    // Go allows underscores only between digits when a base prefix is used.
    let clean: String = if radix != 10 || lower.starts_with('0') {
        digits.replace('_', "")
    } else {
        digits.to_string()
    };
    if clean.is_empty() || clean.starts_with('_') {
        return Err(err());
    }
    let v = i64::from_str_radix(&clean, radix).map_err(|_| err())?;
    Ok(if neg { -v } else { v })
}

/// Go's `time.ParseDuration`: `300ms`, `1.5s`, `1h30m`, `0`. Negative durations are refused.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let err = || format!("invalid duration {s:?} (use e.g. 500ms, 2s, 1m)");
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest.is_empty() || rest.starts_with('-') {
        return Err(err());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(err)?;
        let value: f64 = rest[..num_len].parse().map_err(|_| err())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(err()),
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total).map_err(|_| err())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> (Args, Vec<String>) {
        let argv: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        match parse(&argv) {
            Parsed::Run { args, command } => (*args, command),
            other => panic!("expected Run, got {other:?}"),
        }
    }

    #[test]
    fn go_syntax_forms_all_parse() {
        let (a, cmd) = run(&[
            "-address",
            ":0",
            "--frame-bytes=0x100",
            "-reopen=false",
            "-close-idle",
            "--content-type",
            "audio/mpeg",
            "-max-quiet-interval=1m30s",
        ]);
        assert_eq!(a.address.as_deref(), Some(":0"));
        assert_eq!(a.frame_bytes, Some(256));
        assert_eq!(a.reopen, Some(false));
        assert_eq!(a.close_idle, Some(true));
        assert_eq!(a.content_type.as_deref(), Some("audio/mpeg"));
        assert_eq!(a.max_quiet_interval, Some(Duration::from_secs(90)));
        assert!(cmd.is_empty());
    }

    #[test]
    fn parsing_stops_at_first_positional_and_double_dash() {
        let (a, cmd) = run(&["-exec", "arecord", "-f", "cd", "--file-type", "raw"]);
        assert_eq!(a.exec, Some(true));
        assert_eq!(cmd, ["arecord", "-f", "cd", "--file-type", "raw"]);
        let (_, cmd) = run(&["-exec", "--", "-weird-name", "x"]);
        assert_eq!(cmd, ["-weird-name", "x"]);
    }

    #[test]
    fn a_repeated_flag_takes_its_last_value_as_in_go() {
        let (a, _) = run(&[
            "-address",
            ":80",
            "-reopen=false",
            "-address",
            ":8000",
            "-reopen",
        ]);
        assert_eq!(a.address.as_deref(), Some(":8000"));
        assert_eq!(a.reopen, Some(true));
    }

    #[test]
    fn bool_then_false_is_a_positional_as_in_go() {
        let (a, cmd) = run(&["-reopen", "false"]);
        assert_eq!(a.reopen, Some(true));
        assert_eq!(cmd, ["false"]);
    }

    #[test]
    fn unknown_flag_names_itself() {
        let argv = vec!["-bogus".to_string()];
        match parse(&argv) {
            Parsed::Usage(msg) => assert!(msg.contains("-bogus"), "{msg}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn help_forms() {
        for h in ["-h", "-help", "--help"] {
            match parse(&[h.to_string()]) {
                Parsed::Help(text) => assert!(text.contains("-frame-filter"), "{text}"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn every_listed_flag_is_known_to_argh() {
        for name in VALUE_FLAGS {
            let value = match *name {
                n if n.ends_with("interval")
                    || n.ends_with("timeout")
                    || n.ends_with("delay")
                    || n.ends_with("duration")
                    || n == "link-buffer" =>
                {
                    "1s"
                }
                "address" | "path" | "frame-filter" | "filter" | "content-type" | "log-level" => {
                    "x"
                }
                _ => "1",
            };
            let (_, cmd) = run(&[&format!("-{name}"), value]);
            assert!(cmd.is_empty());
        }
        for name in BOOL_FLAGS {
            run(&[&format!("-{name}")]);
        }
    }

    #[test]
    fn missing_value_and_bad_bool_are_usage_errors() {
        assert!(matches!(parse(&["-path".into()]), Parsed::Usage(_)));
        assert!(matches!(parse(&["-reopen=maybe".into()]), Parsed::Usage(_)));
        assert!(matches!(
            parse(&["-frame-bytes".into(), "ten".into()]),
            Parsed::Usage(_)
        ));
    }

    #[test]
    fn go_integers() {
        assert_eq!(parse_int("64"), Ok(64));
        assert_eq!(parse_int("0x40"), Ok(64));
        assert_eq!(parse_int("0100"), Ok(64));
        assert_eq!(parse_int("0b1000000"), Ok(64));
        assert_eq!(parse_int("-3"), Ok(-3));
        assert!(parse_int("1k").is_err());
        assert!(parse_int("").is_err());
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("150ms"), Ok(Duration::from_millis(150)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1h2m"), Ok(Duration::from_secs(3720)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("3 fortnights").is_err());
    }
}
