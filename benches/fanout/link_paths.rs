//! The link over one path and over two (issue 26): what the second path costs in wire bytes,
//! and in the origin's and the receiver's CPU and memory, measured in the same run. Each
//! path runs through its own counting proxy to the same origin; the receiver pulls.

use super::{common, cpu_ticks, metric, proc_status, proxy, ticks_per_second};
use std::time::{Duration, Instant};

const KEY: &str = "bench link key";

pub fn figures(secs: u64) {
    // 40 numbered frames a second (16 KB/s), enough for both runs and their warm-ups.
    let frames = common::numbered_frames("bench-link-paths", 40 * (2 * secs as u32 + 40));
    let origin = common::numbered_origin(&frames, KEY, &[]);
    println!();
    println!("link over one path and over two, 128 kb/s, 250 ms fragments, pulled, {secs} s each:");
    println!(
        "  {:>5} {:>12} {:>9} {:>14} {:>16} {:>12}",
        "paths", "wire bytes", "x payload", "origin CPU s/m", "receiver CPU s/m", "receiver RSS"
    );
    for paths in [1usize, 2] {
        let proxies: Vec<proxy::FaultProxy> = (0..paths)
            .map(|_| proxy::FaultProxy::start(origin.addr))
            .collect();
        let urls: Vec<String> = proxies
            .iter()
            .map(|p| format!("http://{}", p.addr))
            .collect();
        let mut args = vec![
            "-frame-bytes",
            "400",
            "-source-buffer",
            "800",
            "-link-key",
            KEY,
            "-link-delay",
            "5s",
        ];
        for u in &urls {
            args.extend(["-link-pull", u.as_str()]);
        }
        let receiver = common::Server::start(&args);
        std::thread::sleep(Duration::from_secs(7)); // the receiver's delay fills
        let wire = || proxies.iter().map(|p| p.bytes().0).sum::<u64>();
        let (o_pid, r_pid) = (origin.child.id(), receiver.child.id());
        let (w0, p0) = (wire(), metric(receiver.addr, "ringcast_bytes_in_total"));
        let (oc0, rc0, t0) = (cpu_ticks(o_pid), cpu_ticks(r_pid), Instant::now());
        std::thread::sleep(Duration::from_secs(secs));
        let (w1, p1) = (wire(), metric(receiver.addr, "ringcast_bytes_in_total"));
        let (oc1, rc1) = (cpu_ticks(o_pid), cpu_ticks(r_pid));
        let minutes = t0.elapsed().as_secs_f64() / 60.0;
        let per_min = |a: u64, b: u64| (b - a) as f64 / ticks_per_second() / minutes;
        println!(
            "  {:>5} {:>12} {:>9.2} {:>14.3} {:>16.3} {:>9} kB",
            paths,
            w1 - w0,
            (w1 - w0) as f64 / (p1 - p0).max(1) as f64,
            per_min(oc0, oc1),
            per_min(rc0, rc1),
            proc_status(r_pid, "VmRSS:")
        );
    }
}
