//! The link over two paths (two uplinks): every path carries the whole stream, the receiver
//! plays each fragment from whichever brings it first, so one path down for any length is
//! never heard, and both down for less than `-link-delay` is not heard either.

use crate::common::proxy::{FaultProxy, Mode};
use crate::common::*;
use crate::link::{origin, receiver};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(20);
/// A second of the numbered stream (16 KB/s).
const SECOND: usize = 16_000;
/// The bound: no pause over a second for the receiver's listener.
const MAX_PAUSE: Duration = Duration::from_secs(1);

fn frame_numbers(body: &[u8]) -> Vec<u32> {
    body.chunks_exact(NUMBERED_FRAME)
        .map(|f| u32::from_be_bytes(f[..4].try_into().unwrap()))
        .collect()
}

/// Two paths through two fault proxies, pulled (each from its own loopback address) or
/// pushed; each path down in turn for three times `-link-delay`, then both for half of it.
fn two_paths_never_heard(push: bool) {
    let name = format!("link-two-paths-{}", if push { "push" } else { "pull" });
    let frames = numbered_frames(&name, 4000);
    let delay = ["-link-delay", "1s"];
    let (o, r, a, b);
    if push {
        r = receiver(&["-link-receive", delay[0], delay[1]]);
        (a, b) = (FaultProxy::start(r.addr), FaultProxy::start(r.addr));
        let (ua, ub) = (format!("http://{}", a.addr), format!("http://{}", b.addr));
        o = origin(
            &frames,
            &[
                "-link-push",
                &ua,
                "-link-push",
                &ub,
                "-link-from",
                "127.0.0.2",
                "-link-from",
                "127.0.0.3",
            ],
        );
        let both = o.wait_log_count("link push: connected", 2, T);
        assert!(both.is_some(), "{}", o.log_text());
    } else {
        o = origin(&frames, &[]);
        (a, b) = (FaultProxy::start(o.addr), FaultProxy::start(o.addr));
        let (ua, ub) = (format!("http://{}", a.addr), format!("http://{}", b.addr));
        r = receiver(&[
            delay[0],
            delay[1],
            "-link-pull",
            &ua,
            "-link-pull",
            &ub,
            "-link-from",
            "127.0.0.2",
            "-link-from",
            "127.0.0.3",
        ]);
        let both = r.wait_log_count("link pull: connected", 2, T);
        assert!(both.is_some(), "{}", r.log_text());
    }
    // Each path left from its own address.
    assert_eq!(
        a.clients(),
        vec!["127.0.0.2".parse::<std::net::IpAddr>().unwrap()]
    );
    assert_eq!(
        b.clients(),
        vec!["127.0.0.3".parse::<std::net::IpAddr>().unwrap()]
    );
    let rec = Recorder::start(&r);
    assert!(rec.wait_more(SECOND, T), "the stream flows");
    let first = |p: usize| {
        metric_in(
            &metrics_text(r.addr),
            &format!("ringcast_link_path_fragments_first_total{{path=\"{p}\"}}"),
        )
    };
    // One path at a time, blackholed or reset, for 3 s (three times the delay).
    for (proxy, other, mode) in [
        (&a, 1, Mode::Blackhole),
        (&b, 0, Mode::Reset),
        (&a, 1, Mode::Reset),
        (&b, 0, Mode::Blackhole),
    ] {
        let began = Instant::now();
        proxy.set(mode);
        let before = first(other);
        std::thread::sleep(Duration::from_secs(3));
        // The other path carried the stream meanwhile.
        assert!(
            first(other) > before,
            "path {other} brought nothing first while the other was {mode:?}"
        );
        proxy.set(Mode::Pass);
        eprintln!("{name}: one path {mode:?} for {:?}", began.elapsed());
        assert!(
            rec.wait_more(3 * SECOND, T),
            "the stream flows after a {mode:?}"
        );
    }
    // Both down for half the delay: still nothing heard.
    a.set(Mode::Blackhole);
    b.set(Mode::Blackhole);
    std::thread::sleep(Duration::from_millis(500));
    a.set(Mode::Pass);
    b.set(Mode::Pass);
    assert!(
        rec.wait_more(3 * SECOND, T),
        "the stream flows after both paths were down"
    );
    // The path that came back carries traffic again: with the other one down, it brings
    // fragments first.
    b.set(Mode::Reset);
    let before = first(0);
    assert!(
        eventually(T, || first(0) > before + 8),
        "path 0 carries the stream again"
    );
    b.set(Mode::Pass);
    assert!(rec.wait_more(2 * SECOND, T));
    let (body, longest) = rec.finish();
    let nums = frame_numbers(&body);
    assert!(nums.len() > 500, "{} frames", nums.len());
    for w in nums.windows(2) {
        assert_eq!(
            w[1],
            w[0] + 1,
            "every frame once, in order: {} then {}",
            w[0],
            w[1]
        );
    }
    eprintln!("{name}: {} frames, longest pause {longest:?}", nums.len());
    assert!(longest <= MAX_PAUSE, "delivery paused {longest:?}");
    // What the receiver says of each path.
    let metrics = metrics_text(r.addr);
    for p in 0..2 {
        assert!(
            metric_in(
                &metrics,
                &format!("ringcast_link_path_fragments_late_total{{path=\"{p}\"}}")
            ) > 0,
            "{metrics}"
        );
        assert!(
            metric_in(
                &metrics,
                &format!("ringcast_link_path_bytes_total{{path=\"{p}\"}}")
            ) > 0,
            "{metrics}"
        );
        assert!(
            metric_in(
                &metrics,
                &format!("ringcast_link_path_fragments_lost_total{{path=\"{p}\"}}")
            ) > 0,
            "{metrics}"
        );
    }
    assert_eq!(
        metric_in(&metrics, "ringcast_link_silence_frames_total"),
        0,
        "{metrics}"
    );
    let mut l = Listener::get(r.addr, "/status-json.xsl", 1);
    l.read_to_eof(T);
    let status = String::from_utf8_lossy(&l.body).into_owned();
    assert!(
        status.contains("\"paths\":[{\"path\":0,") && status.contains("{\"path\":1,"),
        "{status}"
    );
    drop(o);
}

#[test]
fn two_pulled_paths_each_down_in_turn_are_never_heard() {
    two_paths_never_heard(false);
}

#[test]
fn two_pushed_paths_each_down_in_turn_are_never_heard() {
    two_paths_never_heard(true);
}
