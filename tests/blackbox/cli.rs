//! The command line as users type it: exit codes and messages.

use crate::common::run_cli;

#[test]
fn help_prints_usage_and_exits_0() {
    for flag in ["-h", "-help", "--help"] {
        let (code, out, _) = run_cli(&[flag]);
        assert_eq!(code, 0, "{flag}");
        assert!(
            out.contains("-frame-filter NAME") && out.contains("-source-buffer FRAMES"),
            "{out}"
        );
        // As users type it, grouped by concern, in Go's syntax only.
        assert!(out.contains("ringcast [flags] -exec CMD [ARGS…]"), "{out}");
        for group in [
            "Input",
            "Framing",
            "Listeners",
            "Mounts",
            "Icecast",
            "Link",
            "TLS",
            "Logging",
        ] {
            assert!(out.lines().any(|l| l.starts_with(group)), "{group}: {out}");
        }
        assert!(!out.contains("--"), "{out}");
    }
}

#[test]
fn unknown_flag_names_itself_and_exits_2() {
    let (code, _, err) = run_cli(&["-address", ":0", "-no-such-flag"]);
    assert_eq!(code, 2);
    assert!(err.contains("-no-such-flag"), "{err}");
    // Only the mistake and a hint, not the whole flag list.
    assert!(err.contains("ringcast -help"), "{err}");
    assert!(
        err.lines().count() <= 3 && !err.contains("-frame-filter"),
        "{err}"
    );
}

#[test]
fn invalid_configuration_says_what_and_exits_1() {
    let cases: &[(&[&str], &str)] = &[
        (&["-source-buffer", "2"], "-source-buffer"),
        (&["-frame-filter", "wav"], "unknown filter"),
        (&["-address", "not-an-address"], "-address"),
        (&["-exec"], "needs a command"),
        (&["-max-quiet-interval", "5"], "invalid duration"),
    ];
    for (args, needle) in cases {
        let (code, _, err) = run_cli(args);
        assert!(code == 1 || code == 2, "{args:?}: exit {code}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn exec_with_a_missing_command_is_an_error_not_a_panic() {
    // streamserve panics here.
    let (code, _, err) = run_cli(&[
        "-address",
        "127.0.0.1:0",
        "-exec",
        "ringcast-no-such-program",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot find command"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn port_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, _, err) = run_cli(&["-address", &addr, "-tone"]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot listen on"), "{err}");
}
