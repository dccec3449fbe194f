//! systemd's notify protocol, spoken directly: datagrams to `$NOTIFY_SOCKET` (a path, or
//! `@name` for an abstract socket). READY once listening, WATCHDOG while the source and accept
//! threads are alive, STATUS with listeners and source state, STOPPING on shutdown.
//! Outside systemd (no `NOTIFY_SOCKET`) every call is a no-op.

use log::{debug, warn};
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

pub struct Notifier {
    sock: UnixDatagram,
    addr: SocketAddr,
}

impl Notifier {
    /// From the environment; `None` when not started by systemd with `Type=notify`.
    pub fn from_env() -> Option<Notifier> {
        let path = std::env::var_os("NOTIFY_SOCKET")?;
        let path = path.to_str()?;
        let addr = match path.strip_prefix('@') {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(name.as_bytes())
            }
            None => SocketAddr::from_pathname(path),
        };
        let made = addr.and_then(|addr| {
            Ok(Notifier {
                sock: UnixDatagram::unbound()?,
                addr,
            })
        });
        match made {
            Ok(n) => Some(n),
            Err(e) => {
                warn!("NOTIFY_SOCKET={path}: {e}; not notifying systemd");
                None
            }
        }
    }

    /// Sends one message (lines of `KEY=value`). Failures are logged, never fatal.
    pub fn send(&self, msg: &str) {
        if let Err(e) = self.sock.send_to_addr(msg.as_bytes(), &self.addr) {
            debug!("sd_notify: {e}");
        }
    }
}

/// How often to send WATCHDOG=1: half of `$WATCHDOG_USEC`, if the watchdog is meant for us.
pub fn watchdog_interval() -> Option<Duration> {
    if let Some(pid) = std::env::var_os("WATCHDOG_PID") {
        if pid.to_str()?.parse::<u32>().ok()? != std::process::id() {
            return None;
        }
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

/// The variables a child (`-exec`) must not inherit: its notifications are not ours.
pub const ENV_VARS: [&str; 3] = ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"];
