//! Starting, stopping and draining: signals, -reopen=false, children never orphaned.

use crate::common::*;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(10);

fn alive(pid: i32) -> bool {
    // A zombie still answers kill(0); read its state to tell.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s.split(") ").nth(1).is_some_and(|r| r.starts_with('Z')),
        Err(_) => false,
    }
}

#[test]
fn sigterm_closes_listeners_and_exits_0() {
    let mut s = Server::start(&["-tone"]);
    let mut l = s.listen();
    assert_eq!(l.status, 200);
    assert!(l.read_body(1000, T).len() >= 1000);
    s.signal(libc::SIGTERM);
    assert!(l.read_to_eof(T), "listener got a clean end");
    let status = s.wait_exit(T).expect("exits");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn sigterm_stops_the_exec_child_and_its_group() {
    let dir = scratch("sigterm-child");
    let pids = dir.join("pids");
    let script = format!(
        "echo $$ > {p}; sleep 1000 & echo $! >> {p}; while :; do printf x; sleep 0.1; done",
        p = pids.display()
    );
    let mut s = Server::start(&["-frame-bytes", "1", "-exec", "sh", "-c", &script]);
    assert!(eventually(T, || line_count(&pids) == 2));
    let list: Vec<i32> = std::fs::read_to_string(&pids)
        .unwrap()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    assert!(list.iter().all(|&p| alive(p)));
    s.signal(libc::SIGTERM);
    assert_eq!(s.wait_exit(T).and_then(|st| st.code()), Some(0));
    assert!(
        eventually(T, || list.iter().all(|&p| !alive(p))),
        "children left behind: {list:?}"
    );
}

#[test]
fn exec_child_is_not_killed_after_a_clean_eof() {
    // streamserve SIGKILLs the child even after it closed its stdout cleanly.
    let dir = scratch("clean-eof");
    let marker = dir.join("finished");
    let script = format!(
        "printf 0123456789abcdef; exec >&-; sleep 0.3; echo done > {}",
        marker.display()
    );
    let mut s = Server::start(&[
        "-frame-bytes",
        "16",
        "-reopen=false",
        "-exec",
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(s.wait_exit(T).and_then(|st| st.code()), Some(0));
    assert!(
        marker.exists(),
        "the child was killed before it finished: {}",
        s.log_text()
    );
}

#[test]
fn reopen_false_drains_every_listener_then_exits_0() {
    let dir = scratch("drain");
    let data: Vec<u8> = (0..64 * 500).map(|i| (i % 251) as u8).collect();
    let file = dir.join("data");
    std::fs::write(&file, &data).unwrap();
    let go = dir.join("go");
    // The source waits for the test's go-ahead, so both listeners are connected first.
    let script = format!(
        "while [ ! -e {} ]; do sleep 0.02; done; cat {}",
        go.display(),
        file.display()
    );
    let mut s = Server::start(&[
        "-source-buffer",
        "1000",
        "-reopen=false",
        "-exec",
        "sh",
        "-c",
        &script,
    ]);
    let mut a = s.listen();
    let mut b = Listener::get(s.addr, "/other?x=1", 0);
    // Headers arrive at once although the source has produced nothing yet.
    assert_eq!((a.status, b.status), (200, 200));
    assert!(s.wait_log_count(": listening (GET", 2, T).is_some());
    std::fs::write(&go, b"").unwrap();
    assert!(
        a.read_to_eof(T) && b.read_to_eof(T),
        "clean end of response"
    );
    assert_eq!(a.body, data);
    assert_eq!(b.body, data);
    assert_eq!(s.wait_exit(T).and_then(|st| st.code()), Some(0));
}

#[test]
fn head_requests_finish_and_do_not_hold_a_listener_slot() {
    // streamserve's HEAD never finishes and counts as a listener forever.
    let s = Server::start(&["-tone", "-max-clients", "1"]);
    for _ in 0..3 {
        let start = Instant::now();
        let mut h = Listener::request(s.addr, "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(h.status, 200);
        assert!(h.head.contains("audio/wav"));
        assert!(h.read_to_eof(T), "HEAD response ends");
        assert!(h.body.is_empty());
        assert!(start.elapsed() < Duration::from_secs(3));
    }
    // The single slot is free for a real listener, whose stream starts with the WAV header.
    let mut l = s.listen();
    assert_eq!(l.status, 200);
    assert!(l.read_body(44, T).starts_with(b"RIFF"));
}

#[test]
fn cpu_max_pins_the_process() {
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        return; // nothing to pin on a one-core machine
    }
    let s = Server::start(&["-tone", "-cpu-max", "1"]);
    let status = std::fs::read_to_string(format!("/proc/{}/status", s.child.id())).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("Cpus_allowed_list"))
        .unwrap();
    let list = line.split(':').nth(1).unwrap().trim();
    assert!(
        !list.contains(',') && !list.contains('-'),
        "one CPU expected: {list}"
    );
}

#[test]
fn close_idle_runs_the_source_only_while_someone_listens() {
    let dir = scratch("close-idle");
    let count = dir.join("count");
    let script = format!(
        "echo run >> {}; while :; do printf 0123456789abcdef; sleep 0.05; done",
        count.display()
    );
    let s = Server::start(&[
        "-frame-bytes",
        "16",
        "-close-idle",
        "-stat-log-interval",
        "200ms",
        "-exec",
        "sh",
        "-c",
        &script,
    ]);
    assert!(s.wait_log("no listeners: source closed", T).is_some());
    assert_eq!(line_count(&count), 0, "not started without listeners");
    let mut l = s.listen();
    assert!(l.read_body(32, T).len() >= 32, "started for the listener");
    assert_eq!(line_count(&count), 1);
    drop(l);
    // The listener's departure is noticed on the next write; then the child is stopped.
    assert!(s
        .wait_log_count("no listeners: source closed", 2, T)
        .is_some());
    assert!(
        s.wait_log("ended by signal", T).is_some(),
        "child stopped: {}",
        s.log_text()
    );
    assert!(
        s.wait_log("stats: listeners=0", T).is_some(),
        "-stat-log-interval lines"
    );
    // A new listener gets fresh frames, not the stale ones from before.
    let mut again = s.listen();
    assert!(again.read_body(16, T).starts_with(b"0123456789abcdef"));
    assert_eq!(line_count(&count), 2);
}

#[test]
fn running_out_of_file_descriptors_never_stops_the_accept_loop() {
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;
    // A hard limit of 32 descriptors: a flood of connections hits EMFILE (from one address,
    // so the per-address cap is raised out of the way).
    let mut cmd = ringcast();
    cmd.args(["-address", "127.0.0.1:0", "-tone", "-header-timeout", "2s"])
        .args(["-max-pending-per-ip", "1000"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 32,
                rlim_max: 32,
            };
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            Ok(())
        });
    }
    let s = Server::from_command(cmd);
    let flood: Vec<std::net::TcpStream> = (0..60)
        .filter_map(|_| std::net::TcpStream::connect(s.addr).ok())
        .collect();
    assert!(
        s.wait_log("backing off", T).is_some(),
        "EMFILE is logged: {}",
        s.log_text()
    );
    drop(flood);
    // Once descriptors are free again, listeners are served.
    assert!(eventually(T, || {
        let mut l = s.listen();
        l.status == 200 && l.read_body(44, Duration::from_secs(2)).starts_with(b"RIFF")
    }));
}

#[test]
fn uid_drops_privileges_after_binding() {
    if unsafe { libc::getuid() } != 0 {
        return; // only root can change user
    }
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;
    // Started with supplementary groups, as root often is (disk, adm, …).
    let mut cmd = ringcast();
    cmd.args(["-address", "127.0.0.1:0", "-tone", "-uid", "65534"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    unsafe {
        cmd.pre_exec(|| {
            let groups: [libc::gid_t; 2] = [0, 6];
            if libc::setgroups(groups.len(), groups.as_ptr()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let s = Server::from_command(cmd);
    let status = std::fs::read_to_string(format!("/proc/{}/status", s.child.id())).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid_line.split_whitespace().skip(1).all(|u| u == "65534"),
        "{uid_line}"
    );
    // None of root's supplementary groups stay.
    let groups = status.lines().find(|l| l.starts_with("Groups:")).unwrap();
    assert!(
        groups
            .split_whitespace()
            .skip(1)
            .all(|g| g != "0" && g != "6"),
        "{groups}"
    );
    assert_eq!(s.listen().status, 200);
    // A uid with no passwd entry has no group to switch to: refused, with a reason.
    let (code, _, err) = run_cli(&["-tone", "-address", "127.0.0.1:0", "-uid", "3999999"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no such user"), "{err}");
}

/// The process's environment, one `NAME=value` a line.
fn environ(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .unwrap()
        .split(|&b| b == 0)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

/// ringcast starts itself again, once, with glibc's per-thread malloc cache off (README,
/// Design notes: what a listener costs): the same PID and name, and an operator's own
/// GLIBC_TUNABLES is left as it is.
#[test]
fn it_restarts_itself_with_the_malloc_cache_off_keeping_its_pid_and_name() {
    if std::env::var("RINGCAST_TEST_RUNNER").is_ok_and(|r| !r.trim().is_empty()) {
        // Under qemu-user the PID is qemu's, and the runner sets the variable itself.
        return;
    }
    for (given, want) in [
        (None, "GLIBC_TUNABLES=glibc.malloc.tcache_count=0"),
        (
            Some("glibc.malloc.arena_max=1"),
            "GLIBC_TUNABLES=glibc.malloc.arena_max=1",
        ),
    ] {
        let mut cmd = ringcast();
        match given {
            None => cmd.env_remove("GLIBC_TUNABLES"),
            Some(v) => cmd.env("GLIBC_TUNABLES", v),
        };
        cmd.args(["-address", "127.0.0.1:0", "-tone"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        let s = Server::from_command(cmd);
        // The child the test started is the server (exec keeps the PID), named as before.
        let pid = s.child.id();
        let env = environ(pid);
        let tunables: Vec<&String> = env
            .iter()
            .filter(|v| v.starts_with("GLIBC_TUNABLES="))
            .collect();
        assert_eq!(tunables, [want], "given {given:?}");
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
        assert_eq!(comm.trim(), "ringcast");
        assert_eq!(s.listen().status, 200);
        assert_eq!(s.log_count("cannot restart"), 0, "{}", s.log_text());
    }
}
