//! The configuration's checks, as a user meets them.

use super::stream::TONE_FRAME_BYTES;
use super::*;
use std::collections::HashMap;

fn load_with(args: &[&str], files: &[(&str, &str)]) -> Result<Setup, String> {
    let argv: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let files: HashMap<String, String> = files
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let read = move |p: &Path| {
        files
            .get(p.to_str().unwrap_or_default())
            .cloned()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    };
    load(&argv, &read).map_err(|e| match e {
        Failed::Help(t) | Failed::Usage(t) | Failed::Invalid(t) => t,
    })
}

/// The one stream of this command line.
fn config(args: &[&str]) -> Result<StreamConfig, String> {
    Ok(load_with(args, &[])?.streams.remove(0).cfg)
}

/// The server of this command line.
fn server(args: &[&str]) -> Result<ServerConfig, String> {
    Ok(load_with(args, &[])?.server)
}

#[test]
fn defaults_match_streamserve() {
    let c = config(&[]).unwrap();
    let server = server(&[]).unwrap();
    assert_eq!(server.address, "0.0.0.0:80".parse().unwrap());
    assert_eq!(server.write_timeout, Duration::from_secs(10));
    assert_eq!(c.input, InputSpec::Path("/dev/stdin".into()));
    assert_eq!(c.frame_bytes, 64);
    assert_eq!(c.source_buffer, 64);
    assert_eq!(c.framer.name, "raw");
    assert!(c.reopen);
    assert!(!c.close_idle);
    assert_eq!(c.content_type, "application/octet-stream");
}

#[test]
fn address_forms() {
    assert_eq!(
        server(&["-address", ":1234"]).unwrap().address,
        "0.0.0.0:1234".parse().unwrap()
    );
    assert_eq!(
        server(&["-address", "[::1]:0"]).unwrap().address,
        "[::1]:0".parse().unwrap()
    );
    assert!(server(&["-address", "nonsense"])
        .unwrap_err()
        .contains("-address"));
}

#[test]
fn source_buffer_must_exceed_two() {
    assert!(config(&["-source-buffer", "2"])
        .unwrap_err()
        .contains("-source-buffer"));
    assert!(config(&["-source-buffer", "3"]).is_ok());
}

#[test]
fn out_of_range_values_say_which_flag() {
    for (flag, v) in [
        ("-frame-bytes", "0"),
        ("-frame-bytes", "-5"),
        ("-header-bytes", "-1"),
        ("-client-max-bytes", "-1"),
        ("-max-clients", "0"),
        ("-write-timeout", "0"),
    ] {
        let err = config(&[flag, v]).unwrap_err();
        assert!(err.contains(flag), "{flag}: {err}");
    }
}

#[test]
fn filters_and_aliases() {
    assert_eq!(
        config(&["-filter", "mp3", "-frame-bytes", "2881"])
            .unwrap()
            .framer
            .name,
        "mp3"
    );
    assert_eq!(config(&["-frame-filter", ""]).unwrap().framer.name, "raw");
    assert_eq!(
        config(&["-frame-filter", "raw"]).unwrap().framer.name,
        "raw"
    );
    assert!(config(&["-frame-filter", "flac"])
        .unwrap_err()
        .contains("unknown filter"));
    // Ogg takes any page without -frame-bytes, and says it is Ogg.
    let ogg = config(&["-frame-filter", "ogg"]).unwrap();
    assert_eq!(
        (ogg.frame_bytes, ogg.content_type.as_str()),
        (65307, "audio/ogg")
    );
    assert!(config(&["-frame-filter", "ts", "-frame-bytes", "100"])
        .unwrap_err()
        .contains("188"));
    let mp3 = config(&["-frame-filter", "mp3", "-frame-bytes", "2881"]).unwrap();
    assert_eq!(mp3.content_type, "audio/mpeg");
    let explicit = config(&["-frame-filter", "mp3", "-content-type", "x/y"]).unwrap();
    assert_eq!(explicit.content_type, "x/y");
}

#[test]
fn exec_needs_a_findable_command() {
    let err = config(&["-exec"]).unwrap_err();
    assert!(err.contains("needs a command"), "{err}");
    let err = config(&["-exec", "no-such-command-ringcast"]).unwrap_err();
    assert!(err.contains("cannot find command"), "{err}");
    let c = config(&["-exec", "sh", "-c", "true"]).unwrap();
    assert!(matches!(c.input, InputSpec::Exec { ref args, .. } if args == &["-c", "true"]));
    assert!(config(&["stray"])
        .unwrap_err()
        .contains("only used with -exec"));
}

#[test]
fn tone_sets_its_own_format() {
    let c = config(&["-tone"]).unwrap();
    assert_eq!(c.input, InputSpec::Tone);
    assert_eq!(c.content_type, "audio/wav");
    assert_eq!(c.frame_bytes, TONE_FRAME_BYTES);
    assert_eq!(c.header_bytes, 44);
    assert!(config(&["-tone", "-exec", "cat"]).is_err());
}

#[test]
fn tls_ca_must_be_a_readable_pem_file() {
    let e = config(&["-tone", "-tls-ca", "/nonexistent/ca.pem"]).unwrap_err();
    assert!(e.starts_with("-tls-ca /nonexistent/ca.pem: "), "{e}");
    let dir = std::env::temp_dir().join(format!("ringcast-tls-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let e = config(&["-tone", "-tls-ca", empty.to_str().unwrap()]).unwrap_err();
    assert!(e.contains("no PEM certificates"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn close_idle_refuses_inputs_that_do_not_wait_for_listeners() {
    assert!(config(&["-close-idle", "-source-password", "pw"])
        .unwrap_err()
        .contains("-close-idle cannot be used with -source-password"));
    assert!(config(&["-close-idle", "-tone", "-link-key", "0123456789"])
        .unwrap_err()
        .contains("-close-idle cannot be used with the link"));
    assert!(config(&["-close-idle", "-tone"]).unwrap().close_idle);
}

#[test]
fn icecast_side_inputs_and_outputs() {
    let c = config(&["-url", "http://127.0.0.1:8000/live"]).unwrap();
    assert!(matches!(c.input, InputSpec::Url(ref u) if u.path == "/live"));
    let c = config(&["-url", "https://x/y"]).unwrap();
    assert!(matches!(c.input, InputSpec::Url(ref u) if u.port == 443));
    assert!(config(&["-url", "ftp://x/y"])
        .unwrap_err()
        .contains("http:// or https://"));
    assert!(config(&["-url", "http://x/y", "-tone"])
        .unwrap_err()
        .contains("cannot be used together"));
    let c = config(&["-source-password", "pw", "-fallback-path", "/f.mp3"]).unwrap();
    assert_eq!(
        c.input,
        InputSpec::Push {
            fallback: Some("/f.mp3".into())
        }
    );
    assert_eq!(c.source_user, "source");
    assert!(config(&["-fallback-path", "/f.mp3"])
        .unwrap_err()
        .contains("-source-password"));
    assert!(config(&["-source-password", ""]).is_err());
    let c = config(&["-tone", "-icecast", "icecast://src:pw@127.0.0.1:8000/ring"]).unwrap();
    let ice = c.icecast.unwrap();
    assert_eq!(
        (ice.user.as_deref(), ice.path.as_str()),
        (Some("src"), "/ring")
    );
    assert!(
        config(&["-tone", "-icecast", "icecast://127.0.0.1:8000/ring"])
            .unwrap_err()
            .contains("password")
    );
    assert!(
        config(&["-tone", "-icecast", "icecast://s:p@127.0.0.1:8000"])
            .unwrap_err()
            .contains("mount")
    );
    assert!(config(&["-icy-metaint", "0"]).is_err());
    assert_eq!(config(&["-icy-pub", "-title", "Hi"]).unwrap().title, "Hi");
}

#[test]
fn link_flags() {
    let c = config(&[
        "-link-pull",
        "http://127.0.0.1:9000",
        "-link-key",
        "0123456789",
    ])
    .unwrap();
    assert_eq!(c.input, InputSpec::Link);
    assert_eq!(c.link.as_ref().unwrap().delay, Duration::from_secs(5));
    assert!(config(&["-link-pull", "http://x:1"])
        .unwrap_err()
        .contains("shared secret"));
    assert!(config(&["-link-receive", "-link-key", "short"])
        .unwrap_err()
        .contains("8 characters"));
    assert!(
        config(&["-link-receive", "-link-key", "0123456789", "-tone"])
            .unwrap_err()
            .contains("together")
    );
    assert!(
        config(&["-tone", "-link-push", "ws://x", "-link-key", "0123456789"])
            .unwrap_err()
            .contains("http:// or https://")
    );
    let origin = config(&[
        "-tone",
        "-link-key",
        "0123456789",
        "-link-push",
        "http://r:8000",
    ])
    .unwrap();
    assert_eq!(origin.input, InputSpec::Tone);
    assert_eq!(origin.link.unwrap().push.len(), 1);
    // Two paths, each from its own address; -link-from pairs with the paths in order.
    let two = config(&[
        "-link-key",
        "0123456789",
        "-link-pull",
        "http://a:8000",
        "-link-pull",
        "http://b:8000",
        "-link-from",
        "-",
        "-link-from",
        "127.0.0.3",
    ])
    .unwrap();
    let pull = &two.link.as_ref().unwrap().pull;
    assert_eq!(pull.len(), 2);
    assert_eq!(pull[0].from, None);
    assert_eq!(pull[1].from, Some("127.0.0.3".parse().unwrap()));
    assert_eq!(pull[1].url.host, "b");
    let err = config(&[
        "-link-key",
        "0123456789",
        "-link-pull",
        "http://a:8000",
        "-link-from",
        "eth0",
    ])
    .unwrap_err();
    assert!(err.contains("not an IP address"), "{err}");
    let err = config(&[
        "-link-key",
        "0123456789",
        "-link-pull",
        "http://a:8000",
        "-link-from",
        "127.0.0.2",
        "-link-from",
        "127.0.0.3",
    ])
    .unwrap_err();
    assert!(err.contains("one per -link-pull"), "{err}");
    let five: Vec<&str> = ["-link-key", "0123456789"]
        .into_iter()
        .chain(std::iter::repeat_n(["-link-pull", "http://a:1"], 5).flatten())
        .collect();
    assert!(config(&five).unwrap_err().contains("at most 4 paths"));
    assert!(config(&[
        "-link-receive",
        "-link-key",
        "0123456789",
        "-link-delay",
        "1h"
    ])
    .is_err());
}

#[test]
fn ring_memory_is_bounded() {
    let err = config(&["-frame-bytes", "16777216", "-source-buffer", "1000"]).unwrap_err();
    assert!(err.contains("1 GiB"), "{err}");
}

#[test]
fn cpu_max_and_log_level() {
    assert_eq!(server(&["-cpu-max", "0"]).unwrap().cpu_max, None);
    assert!(config(&["-cpu-max", "-1"]).is_err());
    assert_eq!(server(&["-debug"]).unwrap().log_level, LevelFilter::Debug);
    assert_eq!(
        server(&["-log-level", "warn"]).unwrap().log_level,
        LevelFilter::Warn
    );
    assert!(config(&["-log-level", "loud"]).is_err());
}

#[test]
fn mounts_read_their_files_and_keep_server_flags_apart() {
    let files = [
        ("/a.conf", "-tone -max-clients 5"),
        (
            "/b.conf",
            "-frame-filter mp3 -frame-bytes 2881 -source-password pw -fallback-mount /c # main",
        ),
        (
            "/c.conf",
            "-frame-filter mp3 -frame-bytes 2881 -path /dev/null",
        ),
    ];
    let s = load_with(
        &[
            "-max-clients",
            "9",
            "-mount",
            "/a=/a.conf",
            "-mount",
            "/b=/b.conf",
            "-mount=/c=/c.conf",
        ],
        &files,
    )
    .unwrap();
    assert!(s.server.mounted);
    let paths: Vec<&str> = s.streams.iter().map(|m| m.cfg.mount.as_str()).collect();
    assert_eq!(paths, ["/a", "/b", "/c"]);
    assert_eq!(s.streams[0].cfg.max_clients, 5);
    assert_eq!(
        s.streams[1].cfg.max_clients, 9,
        "the server's is the default"
    );
    assert_eq!(s.streams[1].cfg.fallback_mount.as_deref(), Some("/c"));

    let err = |args: &[&str], files: &[(&str, &str)]| load_with(args, files).unwrap_err();
    assert!(err(&["-tone", "-mount", "/a=/a.conf"], &files)
        .contains("-tone belong(s) in a mount's file"));
    let e = err(
        &["-mount", "/a=/x.conf"],
        &[("/x.conf", "-tone -address :9")],
    );
    assert!(
        e.contains("-mount /a (/x.conf): -address is server-wide"),
        "{e}"
    );
    assert!(err(&["-mount", "/a=/missing.conf"], &[]).contains("/missing.conf"));
    assert!(err(&["-mount", "a=/a.conf"], &files).contains("starts with /"));
    assert!(err(&["-mount", "/metrics=/a.conf"], &files).contains("answers this path"));
    assert!(err(&["-mount", "/a"], &files).contains("PATH=FILE"));
    assert!(err(&["-mount", "/a=/a.conf", "-mount", "/a=/a.conf"], &files).contains("twice"));
    let e = err(&["-mount", "/b=/b.conf"], &files);
    assert!(e.contains("-fallback-mount /c: no such mount"), "{e}");
    let e = err(&["-mount", "/b=/b.conf", "-mount", "/c=/a.conf"], &files);
    assert!(e.contains("same format"), "{e}");
    let e = err(&["-mount", "/x=/x.conf"], &[("/x.conf", "-tone -bogus")]);
    assert!(e.contains("-bogus"), "{e}");
    assert!(err(&["-tone", "-fallback-mount", "/x"], &[]).contains("needs -mount"));
}
