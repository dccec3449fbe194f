//! Go's `flag` syntax, which streamserve's users already type: `-name v`, `-name=v`,
//! `--name v`, bare bools (`-reopen`) and `-name=false`; parsing stops at the first positional
//! or `--`; a flag given twice keeps its last value. Values are Go's too: `strconv.ParseInt`
//! integers and `time.ParseDuration` durations.

use super::flags::{self, Args, Kind};
use crate::error::Error;
use std::time::Duration;

/// What went wrong, or `-help`.
#[derive(Debug)]
pub enum Stop {
    Help,
    Bad(String),
}

/// Parses argv (no program name) into flags and the positional tail (the `-exec` command).
pub fn parse(argv: &[String]) -> Result<(Args, Vec<String>), Stop> {
    let mut args = Args::default();
    let mut rest = argv.iter();
    while let Some(arg) = rest.next() {
        if arg == "--" {
            return Ok((args, rest.cloned().collect()));
        }
        // Go: a lone "-" or anything not starting with '-' is the first positional.
        let Some(body) = arg.strip_prefix('-').filter(|b| !b.is_empty()) else {
            let mut tail = vec![arg.clone()];
            tail.extend(rest.cloned());
            return Ok((args, tail));
        };
        let body = body.strip_prefix('-').unwrap_or(body);
        if body.is_empty() || body.starts_with(['-', '=']) {
            return Err(Stop::Bad(format!("bad flag syntax: {arg}")));
        }
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        if name == "h" || name == "help" {
            return Err(Stop::Help);
        }
        let flag = flags::find(name)
            .ok_or_else(|| Stop::Bad(format!("flag provided but not defined: -{name}")))?;
        let value = match (inline, flag.kind) {
            (Some(v), _) => v,
            (None, Kind::Bool) => "true",
            (None, _) => rest
                .next()
                .ok_or_else(|| Stop::Bad(format!("flag needs an argument: -{name}")))?,
        };
        args.set(name, value)
            .map_err(|e| Stop::Bad(format!("invalid value {value:?} for flag -{name}: {e}")))?;
    }
    Ok((args, Vec::new()))
}

/// Go's `strconv.ParseBool`.
pub fn parse_bool(s: &str) -> Result<bool, Error> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err("use true or false".into()),
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)`: decimal, `0x`, `0o`, `0b`, a leading `0` for octal, `_`
/// between digits after a base prefix.
pub fn parse_int(s: &str) -> Result<i64, Error> {
    let err = || Error::from(format!("invalid integer {s:?}"));
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits, prefixed) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d, true)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d, true)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d, true)
    } else if let Some(d) = lower.strip_prefix('0').filter(|d| !d.is_empty()) {
        (8, d, true)
    } else {
        (10, lower.as_str(), false)
    };
    let clean: String = if prefixed {
        digits.replace('_', "")
    } else {
        digits.to_string()
    };
    if clean.is_empty() || digits.starts_with('_') {
        return Err(err());
    }
    let v = i64::from_str_radix(&clean, radix).map_err(|_| err())?;
    if neg {
        v.checked_neg().ok_or_else(err)
    } else {
        Ok(v)
    }
}

/// Go's `time.ParseDuration`: `300ms`, `1.5s`, `1h30m`, `0`. Negative durations are refused.
pub fn parse_duration(s: &str) -> Result<Duration, Error> {
    let err = || Error::from(format!("invalid duration {s:?} (use e.g. 500ms, 2s, 1m)"));
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let rest = s.strip_prefix('+').unwrap_or(s);
    if rest.is_empty() {
        return Err(err());
    }
    let mut total = 0f64;
    let mut chars = rest.chars().peekable();
    while chars.peek().is_some() {
        let mut number = String::new();
        while let Some(c) = chars.next_if(|c| c.is_ascii_digit() || *c == '.') {
            number.push(c);
        }
        let mut unit = String::new();
        while let Some(c) = chars.next_if(|c| !(c.is_ascii_digit() || *c == '.')) {
            unit.push(c);
        }
        let value: f64 = number.parse().map_err(|_| err())?;
        let scale = match unit.as_str() {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(err()),
        };
        total += value * scale;
    }
    Duration::try_from_secs_f64(total).map_err(|_| err())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> (Args, Vec<String>) {
        let argv: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        parse(&argv).unwrap()
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
    fn a_repeated_flag_takes_its_last_value_as_in_go_and_lists_keep_all() {
        let (a, _) = run(&[
            "-address",
            ":80",
            "-reopen=false",
            "-mount",
            "/a=a.conf",
            "-address",
            ":8000",
            "-reopen",
            "-mount=/b=b.conf",
        ]);
        assert_eq!(a.address.as_deref(), Some(":8000"));
        assert_eq!(a.reopen, Some(true));
        assert_eq!(a.mount, ["/a=a.conf", "/b=b.conf"]);
    }

    #[test]
    fn bool_then_false_is_a_positional_as_in_go() {
        let (a, cmd) = run(&["-reopen", "false"]);
        assert_eq!(a.reopen, Some(true));
        assert_eq!(cmd, ["false"]);
    }

    #[test]
    fn mistakes_say_which_flag() {
        let bad =
            |args: &[&str]| match parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>()) {
                Err(Stop::Bad(msg)) => msg,
                other => panic!("{other:?}"),
            };
        assert!(bad(&["-bogus"]).contains("-bogus"));
        assert!(bad(&["-path"]).contains("needs an argument: -path"));
        assert!(bad(&["-reopen=maybe"]).contains("-reopen"));
        assert!(bad(&["-frame-bytes", "ten"]).contains("invalid integer"));
        assert!(bad(&["---x"]).contains("bad flag syntax"));
        assert!(matches!(parse(&["-help".into()]), Err(Stop::Help)));
    }

    #[test]
    fn every_flag_in_the_table_parses() {
        for f in flags::FLAGS {
            let value = match f.kind {
                Kind::Bool => "true",
                Kind::Int => "1",
                Kind::Dur => "1s",
                Kind::Text | Kind::List => "x",
            };
            let (a, cmd) = run(&[&format!("-{}={value}", f.name)]);
            assert!(cmd.is_empty());
            assert_eq!(a.given(), [f.name]);
        }
    }

    #[test]
    fn go_integers() {
        assert_eq!(parse_int("64"), Ok(64));
        assert_eq!(parse_int("0x40"), Ok(64));
        assert_eq!(parse_int("0100"), Ok(64));
        assert_eq!(parse_int("0b1000000"), Ok(64));
        assert_eq!(parse_int("0"), Ok(0));
        assert_eq!(parse_int("-3"), Ok(-3));
        assert!(parse_int("1k").is_err());
        assert!(parse_int("").is_err());
        assert!(parse_int("0x_1").is_err());
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
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn value_parsers_never_panic() {
        crate::util::fuzz::run(
            "go flag values",
            &[b"0x40", b"1h2m3.5s", b"-0b1", b"\xc2\xb5s"],
            24,
            |bytes| {
                let s = String::from_utf8_lossy(bytes);
                let _ = parse_int(&s);
                let _ = parse_duration(&s);
            },
        );
    }
}
