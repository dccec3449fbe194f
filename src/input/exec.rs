//! An `-exec` input: a child process whose stdout is the stream.
//!
//! Like ripgrep's `CommandReader`: stdout is read as the input, stderr is drained line by
//! line into the log on its own thread (`src-stderr`), and `close` is idempotent with `Drop`
//! as a backstop. The child runs in its own process group and gets SIGTERM if ringcast dies,
//! so a `sh -c 'curl | lame'` pipeline is stopped whole and never orphaned. After a clean
//! EOF the child is given time to exit by itself; it is only signalled when it lingers.

use super::{fd::FdInput, Close, Got, Input};
use crate::os::sys;
use log::{debug, info, warn};
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

/// How long a child may take to exit after EOF or SIGTERM before the next step.
const GRACE: Duration = Duration::from_secs(2);
/// Longest stderr line logged as one line.
const MAX_LINE: usize = 4096;

pub struct ExecInput {
    child: Option<Child>,
    stdout: FdInput,
    name: String,
}

impl ExecInput {
    pub fn spawn(program: &Path, args: &[String]) -> io::Result<ExecInput> {
        let name = program.file_name().map_or_else(
            || program.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // The child's notifications would be taken for ours.
        for var in crate::os::notify::ENV_VARS {
            cmd.env_remove(var);
        }
        // SAFETY: child_setup only makes async-signal-safe syscalls.
        unsafe { cmd.pre_exec(sys::child_setup) };
        let mut child = cmd.spawn().map_err(|e| {
            io::Error::new(e.kind(), format!("cannot run {}: {e}", program.display()))
        })?;
        info!("started {} (pid {})", name, child.id());
        // unwrap ok: both were configured as piped above.
        let stdout = OwnedFd::from(child.stdout.take().unwrap());
        let stderr = child.stderr.take().unwrap();
        let tag = name.clone();
        let spawned = thread::Builder::new()
            .name("src-stderr".into())
            .stack_size(64 * 1024)
            .spawn(move || log_lines(stderr, &tag));
        if let Err(e) = spawned {
            warn!("cannot start the stderr logger for {name}: {e}; its stderr is dropped");
        }
        Ok(ExecInput {
            child: Some(child),
            stdout: FdInput::from_fd(stdout),
            name,
        })
    }

    /// Waits up to `d` for the child to exit.
    fn wait_for(child: &mut Child, d: Duration) -> Option<std::process::ExitStatus> {
        let deadline = crate::util::deadline::Deadline::after(d);
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if !deadline.passed() => thread::sleep(Duration::from_millis(20)),
                _ => return None,
            }
        }
    }
}

impl Input for ExecInput {
    fn read_timeout(&mut self, buf: &mut [u8], wait: Duration) -> io::Result<Got> {
        self.stdout.read_timeout(buf, wait)
    }

    fn close(&mut self, how: Close) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // Closing our end first makes a child still writing get EPIPE/SIGPIPE.
        self.stdout.close(how);
        let pgid = child.id();
        let mut status = match how {
            Close::Finished => Self::wait_for(&mut child, GRACE),
            Close::Stop => None,
        };
        if status.is_none() {
            debug!("stopping {} (pid {pgid}) with SIGTERM", self.name);
            let _ = sys::kill_group(pgid, libc::SIGTERM);
            status = Self::wait_for(&mut child, GRACE);
        }
        if status.is_none() {
            warn!(
                "{} (pid {pgid}) ignored SIGTERM for {GRACE:?}: SIGKILL",
                self.name
            );
            let _ = sys::kill_group(pgid, libc::SIGKILL);
            status = child.wait().ok();
        }
        match status {
            Some(s) if s.success() => info!("{} exited", self.name),
            // We stopped it (a reload, close-idle, shutdown): whatever it exits with then is
            // its way of stopping (ffmpeg: 255), not a failure.
            Some(s) if how == Close::Stop => match s.signal() {
                Some(sig) => info!("{} stopped (ended by signal {sig})", self.name),
                None => info!(
                    "{} stopped (exit status {})",
                    self.name,
                    s.code().unwrap_or(-1)
                ),
            },
            Some(s) => match s.signal() {
                Some(sig) => info!("{} ended by signal {sig}", self.name),
                None => warn!(
                    "{} exited with status {}",
                    self.name,
                    s.code().unwrap_or(-1)
                ),
            },
            None => warn!("{} could not be reaped", self.name),
        }
        // Stop anything left in its process group (a pipeline's other members).
        let _ = sys::kill_group(pgid, libc::SIGTERM);
    }
}

impl Drop for ExecInput {
    fn drop(&mut self) {
        self.close(Close::Stop);
    }
}

/// Logs a child's stderr line by line until it closes. Long lines are cut at `MAX_LINE`.
fn log_lines(mut stderr: impl Read, name: &str) {
    let mut buf = [0u8; 1024];
    let mut line = Vec::new();
    loop {
        let n = match stderr.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for &b in buf.get(..n).unwrap_or_default() {
            if b == b'\n' || line.len() >= MAX_LINE {
                emit(name, &line);
                line.clear();
                if b != b'\n' {
                    line.push(b);
                }
            } else {
                line.push(b);
            }
        }
    }
    if !line.is_empty() {
        emit(name, &line);
    }
}

fn emit(name: &str, line: &[u8]) {
    let text = String::from_utf8_lossy(line);
    let text = text.trim_end_matches('\r');
    if !text.is_empty() {
        info!("{name}: {text}");
    }
}
