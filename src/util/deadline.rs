//! An absolute deadline for one phase of a connection: reading a request head, lingering
//! after an error response, a SHOUTcast source's password and headers, each step of an
//! outbound dial. However a peer trickles its bytes (one every timeout minus a little), the
//! phase ends when its deadline passes: before each read or write the socket's timeout is
//! set to what is left. Used by any thread; holds no state but the instant.

use std::io;
use std::net::TcpStream;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    at: Instant,
}

impl Deadline {
    /// `d` from now (a duration too large for the clock means "a day from now").
    pub fn after(d: Duration) -> Deadline {
        let now = Instant::now();
        let at = now
            .checked_add(d)
            .or_else(|| now.checked_add(Duration::from_secs(86_400)))
            .unwrap_or(now);
        Deadline { at }
    }

    /// Time left (zero once passed).
    pub fn left(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    pub fn passed(&self) -> bool {
        self.left().is_zero()
    }

    /// Sets `sock`'s read and write timeouts to the time left; `TimedOut` once it passed
    /// (a zero timeout would mean "no timeout" to the socket).
    pub fn arm(&self, sock: &TcpStream) -> io::Result<()> {
        self.arm_read(sock)?;
        sock.set_write_timeout(Some(self.left_or_timed_out()?))
    }

    /// Only the read timeout, for a phase that only reads: the write timeout the socket
    /// has (a listener's `-write-timeout`) stays as it is.
    pub fn arm_read(&self, sock: &TcpStream) -> io::Result<()> {
        sock.set_read_timeout(Some(self.left_or_timed_out()?))
    }

    fn left_or_timed_out(&self) -> io::Result<Duration> {
        let left = self.left();
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"));
        }
        Ok(left)
    }
}

/// A phase with a grace point (a connection's request head or TLS handshake): it runs to
/// the early deadline first; when that passes, `on_slow` says whether it may go on to the
/// full one (the connection now counts as slow against its address).
pub struct Graced<'a> {
    full: Deadline,
    early: Option<Deadline>,
    on_slow: &'a mut dyn FnMut() -> bool,
}

/// What a timeout in a [`Graced`] phase means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Late {
    /// The grace passed and the phase may go on: arm [`Graced::current`] again.
    GoOn,
    /// The full deadline passed.
    Over,
    /// The grace passed and `on_slow` refused more time.
    Refused,
}

impl<'a> Graced<'a> {
    pub fn new(full: Duration, grace: Duration, on_slow: &'a mut dyn FnMut() -> bool) -> Self {
        Graced {
            full: Deadline::after(full),
            early: (grace < full).then(|| Deadline::after(grace)),
            on_slow,
        }
    }

    /// The deadline to arm now.
    pub fn current(&self) -> Deadline {
        self.early.unwrap_or(self.full)
    }

    /// A read or the arming timed out.
    pub fn timed_out(&mut self) -> Late {
        match self.early.take() {
            Some(_) if (self.on_slow)() => Late::GoOn,
            Some(_) => Late::Refused,
            None => Late::Over,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_counts_down_and_refuses_to_arm_once_passed() {
        let d = Deadline::after(Duration::from_millis(30));
        assert!(!d.passed() && d.left() <= Duration::from_millis(30));
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        d.arm(&s).unwrap();
        assert!(s.write_timeout().unwrap().is_some());
        let t = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        t.set_write_timeout(Some(Duration::from_secs(77))).unwrap();
        d.arm_read(&t).unwrap();
        assert_eq!(t.write_timeout().unwrap(), Some(Duration::from_secs(77)));
        std::thread::sleep(Duration::from_millis(40));
        assert!(d.passed());
        assert_eq!(d.arm(&s).unwrap_err().kind(), io::ErrorKind::TimedOut);
        assert!(!Deadline::after(Duration::MAX).passed(), "no overflow");
    }
}
