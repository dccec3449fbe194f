//! Go's `flag` syntax, which streamserve's users already type: `-name v`, `-name=v`,
//! `--name v`, bare bools (`-reopen`) and `-name=false`; parsing stops at the first positional
//! or `--`; a flag given twice keeps its last value. Values are Go's too (`values.rs`).

use super::flags::{self, Args, Kind};

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
}
