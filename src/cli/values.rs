//! Go's value syntax, which the flag table's parsers (`flags.rs`) read: `strconv.ParseBool`
//! bools, `strconv.ParseInt` integers and `time.ParseDuration` durations. Apart from the
//! argv walk (`goflag.rs`) so that the table and the walk do not name each other.

use crate::error::Error;
use std::time::Duration;

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
