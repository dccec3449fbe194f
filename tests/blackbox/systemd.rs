//! Running under systemd: the notify protocol, and flags kept in a file.

use crate::common::*;
use std::os::unix::net::UnixDatagram;
use std::process::Stdio;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(10);

fn next_message(sock: &UnixDatagram, deadline: Instant) -> Option<String> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return None;
    }
    sock.set_read_timeout(Some(left)).unwrap();
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[test]
fn notify_socket_sees_ready_watchdog_then_stopping() {
    let dir = scratch("notify");
    let sock_path = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    let env_seen = dir.join("child-env");
    // Flags in a file, as /etc/ringcast/NAME.conf holds them: quotes and comments.
    let conf = dir.join("stream.conf");
    std::fs::write(
        &conf,
        format!(
            "# test stream\n-address 127.0.0.1:0\n-frame-bytes 4\n\
             -exec sh -c 'echo \"${{NOTIFY_SOCKET:-unset}}\" > {}; while :; do printf abcd; sleep 0.1; done'\n",
            env_seen.display()
        ),
    )
    .unwrap();
    let mut cmd = ringcast();
    cmd.args(["-flags-file", conf.to_str().unwrap()])
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "200000")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut s = Server::from_command(cmd);

    let deadline = Instant::now() + T;
    let mut seen = Vec::new();
    while seen
        .iter()
        .filter(|m: &&String| m.contains("WATCHDOG=1"))
        .count()
        < 3
    {
        seen.push(next_message(&sock, deadline).expect("messages keep coming"));
    }
    assert!(seen[0].contains("READY=1"), "READY first: {seen:?}");
    assert!(seen[0].contains("STATUS="), "{seen:?}");
    assert!(
        seen.iter().any(|m| m.contains("source open")),
        "STATUS tells the source state: {seen:?}"
    );
    // The stream flows and the child did not inherit our notify socket.
    let mut l = s.listen();
    assert!(l.read_body(8, T).starts_with(b"abcd"));
    assert!(eventually(T, || std::fs::read_to_string(&env_seen)
        .is_ok_and(|t| t.trim() == "unset")));

    s.signal(libc::SIGTERM);
    let mut stopping = false;
    while let Some(m) = next_message(&sock, Instant::now() + T) {
        if m.contains("STOPPING=1") {
            stopping = true;
            break;
        }
    }
    assert!(stopping, "STOPPING=1 on shutdown");
    assert_eq!(s.wait_exit(T).and_then(|st| st.code()), Some(0));
}

#[test]
fn a_missing_flags_file_is_a_clear_error() {
    let (code, _, err) = run_cli(&["-flags-file", "/nonexistent/ringcast.conf"]);
    assert_eq!(code, 1);
    assert!(err.contains("/nonexistent/ringcast.conf"), "{err}");
}
