//! A connection either way: plain TCP, or TLS over TCP. Outbound, the link and `-url` dial
//! through [`Conn::connect`] (`http://` or `https://`); inbound, `-tls-address` accepts
//! through [`Conn::accept`]. Everything that talks HTTP takes a `Conn`, so each of them
//! speaks both with one code path.
//!
//! Reads that must not block (the pusher polling for acks between fragments) go through
//! [`Conn::read_ready`]: with TLS, a readable socket does not mean readable plaintext, and
//! plaintext may already sit decrypted in rustls with nothing left on the socket.

use crate::http::url::Url;
use crate::util::deadline::{Deadline, Graced, Late};
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, Connection, ServerConfig, ServerConnection};
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

pub enum Conn {
    Plain(TcpStream),
    Tls(Box<Tls>),
}

/// A TLS session and its socket. Not rustls's `StreamOwned`: its reads loop until a whole
/// record is in and its writes swallow socket errors until the next call, and both would
/// let a peer hold a caller past its deadline (see `read` and `write` below).
pub struct Tls {
    pub conn: Connection,
    pub sock: TcpStream,
}

impl Conn {
    /// Dials `url`'s host (every address it resolves to, in turn), then for `https` makes
    /// the TLS handshake, all before `deadline`: a server that accepts and then trickles its
    /// handshake one byte at a time cannot hold the dial past it.
    pub fn connect(url: &Url, deadline: Deadline) -> io::Result<Conn> {
        Self::connect_from(url, None, deadline)
    }

    /// [`Conn::connect`] from local address `from` (a link path's `-link-from`).
    pub fn connect_from(
        url: &Url,
        from: Option<std::net::IpAddr>,
        deadline: Deadline,
    ) -> io::Result<Conn> {
        let mut last = io::Error::other(format!("{}: no address", url.host));
        let mut tcp = None;
        for addr in url.authority().to_socket_addrs()? {
            let left = deadline.left();
            if left.is_zero() {
                last = io::Error::new(io::ErrorKind::TimedOut, "connect: no answer in time");
                break;
            }
            let tried = match from {
                // An address of the other family cannot be reached from `from`: skip it.
                Some(f) if f.is_ipv4() != addr.is_ipv4() => continue,
                Some(f) => crate::os::connect_from::connect_from(f, &addr, left),
                None => TcpStream::connect_timeout(&addr, left),
            };
            match tried {
                Ok(c) => {
                    tcp = Some(c);
                    break;
                }
                Err(e) => last = e,
            }
        }
        let tcp = tcp.ok_or(last)?;
        let _ = tcp.set_nodelay(true);
        match url.scheme.as_str() {
            "https" => Self::tls(url, tcp, deadline),
            _ => Ok(Conn::Plain(tcp)),
        }
    }

    fn tls(url: &Url, mut tcp: TcpStream, deadline: Deadline) -> io::Result<Conn> {
        let config = crate::http::tls::client_config().map_err(io::Error::other)?;
        let name = ServerName::try_from(url.host.clone())
            .map_err(|e| io::Error::other(format!("{}: {e}", url.host)))?;
        let mut tls =
            Connection::Client(ClientConnection::new(config, name).map_err(io::Error::other)?);
        // Handshake now, so a bad certificate is reported as such and not as a failed read.
        handshake(&mut tls, &mut tcp, deadline).map_err(|e| {
            let why = match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                    "no answer in time".to_string()
                }
                // A plain HTTP server answers a TLS hello with an HTTP error page.
                _ if is_plain_http_answer(&e) => {
                    format!("{e} (an http:// server, not https://?)")
                }
                _ => e.to_string(),
            };
            io::Error::new(e.kind(), format!("TLS handshake with {}: {why}", url.host))
        })?;
        Ok(Conn::Tls(Box::new(Tls {
            conn: tls,
            sock: tcp,
        })))
    }

    /// The server's side of a TLS handshake on an accepted socket, before `deadline`. The
    /// socket's timeouts are left as the deadline armed them; the caller sets its own.
    /// The server's side of a handshake, within `phase` (a handshake slower than its grace
    /// asks it whether to go on).
    pub fn accept(
        mut tcp: TcpStream,
        config: Arc<ServerConfig>,
        phase: &mut Graced<'_>,
    ) -> io::Result<Conn> {
        let mut tls = Connection::Server(ServerConnection::new(config).map_err(io::Error::other)?);
        // A timed-out read leaves rustls's state as it was, so the handshake goes on.
        loop {
            match handshake(&mut tls, &mut tcp, phase.current()) {
                Ok(()) => break,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
                    ) =>
                {
                    match phase.timed_out() {
                        Late::GoOn => continue,
                        Late::Over => return Err(e),
                        Late::Refused => {
                            return Err(io::Error::other(
                                "too slow, and its address has too many slow connections \
                                 (-max-pending-per-ip)",
                            ))
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Conn::Tls(Box::new(Tls {
            conn: tls,
            sock: tcp,
        })))
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Conn::Tls(_))
    }

    /// Ends our half: TLS says close_notify first (a client that sees the socket close
    /// without it may take the end for a truncation), then the socket's write side closes.
    pub fn shutdown_write(&mut self) {
        if let Conn::Tls(s) = self {
            s.conn.send_close_notify();
            let _ = s.flush_tls();
        }
        let _ = self.tcp().shutdown(Shutdown::Write);
    }

    /// Writes what `bufs` hold (at least part of it) in one go: a plain socket with one
    /// `sendmsg` (`more`: MSG_MORE, more follows at once); TLS seals it all into records
    /// and writes them. The listener's sender uses it (`sink/gather.rs`).
    pub fn send_vectored(&mut self, bufs: &[IoSlice<'_>], more: bool) -> io::Result<usize> {
        let n = match self {
            Conn::Plain(s) => crate::os::sys::send_vectored(s, bufs, more)?,
            Conn::Tls(s) => {
                s.flush_tls()?;
                let n = s.conn.writer().write_vectored(bufs)?;
                s.flush_tls()?;
                n
            }
        };
        note_written(bufs.first().map_or(&[][..], |b| &b[..]), n);
        Ok(n)
    }

    /// The socket under the connection.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => &s.sock,
        }
    }

    pub fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.tcp().set_read_timeout(d)
    }

    pub fn set_write_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.tcp().set_write_timeout(d)
    }

    /// Reads what is there within `wait`: `Some(n)` for `n` bytes (0: the other side
    /// closed), `None` if nothing came.
    pub fn read_ready(&mut self, buf: &mut [u8], wait: Duration) -> io::Result<Option<usize>> {
        match self {
            Conn::Plain(s) => {
                if !crate::os::sys::wait_readable(s, wait)? {
                    return Ok(None);
                }
                s.read(buf).map(Some)
            }
            Conn::Tls(s) => {
                let mut wait = wait;
                loop {
                    if let Some(r) = plaintext(&mut s.conn, buf) {
                        return r.map(Some);
                    }
                    if !crate::os::sys::wait_readable(&s.sock, wait)? {
                        return Ok(None);
                    }
                    wait = Duration::ZERO;
                    // At end of stream (0) the next reader() call tells how it closed.
                    s.conn.read_tls(&mut s.sock)?;
                    s.conn
                        .process_new_packets()
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                    while s.conn.wants_write() {
                        s.conn.write_tls(&mut s.sock)?;
                    }
                }
            }
        }
    }
}

/// The plaintext rustls holds: `Some(Ok(n))` (0 at the end of the stream, closed cleanly or
/// not: a proxy that closes without close_notify ends it as plain TCP does), `Some(Err)`,
/// or `None` when it needs more bytes from the socket.
fn plaintext(tls: &mut Connection, buf: &mut [u8]) -> Option<io::Result<usize>> {
    match tls.reader().read(buf) {
        Ok(n) => Some(Ok(n)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Some(Ok(0)),
        Err(e) => Some(Err(e)),
    }
}

/// Runs the TLS handshake (either side) before `deadline`, arming the socket's timeouts before every read
/// and write. Not rustls's `complete_io`: that loops inside itself until the handshake is
/// done, so a server that trickles its handshake a byte at a time would hold the dial for as
/// long as it liked.
fn handshake(tls: &mut Connection, tcp: &mut TcpStream, deadline: Deadline) -> io::Result<()> {
    loop {
        while tls.wants_write() {
            deadline.arm(tcp)?;
            tls.write_tls(tcp)?;
        }
        if !tls.is_handshaking() {
            return Ok(());
        }
        deadline.arm(tcp)?;
        if tls.read_tls(tcp)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed during the handshake",
            ));
        }
        tls.process_new_packets()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    }
}

/// Whether a handshake error is rustls seeing a record that is not TLS (what a plain HTTP
/// server's answer looks like), matched on rustls's error type, not its text.
fn is_plain_http_answer(e: &io::Error) -> bool {
    matches!(
        e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()),
        Some(rustls::Error::InvalidMessage(
            rustls::InvalidMessage::InvalidContentType
        ))
    )
}

impl Read for Conn {
    /// For TLS, at most one read of the socket per call: rustls's own `Stream` reads until
    /// a whole record is in, so a server trickling one record a byte at a time would hold a
    /// caller whose deadline is armed between reads. A call that read bytes but completed no
    /// record yet returns `Interrupted`, which `read_exact`, `read_to_end` and our head
    /// readers retry, re-arming their deadline first.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => {
                if let Some(r) = plaintext(&mut s.conn, buf) {
                    return r;
                }
                let n = s.conn.read_tls(&mut s.sock)?;
                s.conn
                    .process_new_packets()
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                while s.conn.wants_write() {
                    s.conn.write_tls(&mut s.sock)?;
                }
                match plaintext(&mut s.conn, buf) {
                    Some(r) => r,
                    None if n == 0 => Ok(0),
                    None => Err(io::ErrorKind::Interrupted.into()),
                }
            }
        }
    }
}

impl Tls {
    /// Writes every sealed record rustls holds to the socket, under the socket's write
    /// timeout: a peer that stops reading makes this fail, as a plain write would.
    fn flush_tls(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            if self.conn.write_tls(&mut self.sock)? == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
        }
        Ok(())
    }
}

thread_local! {
    /// What this thread's connection wrote since [`take_written`]: the response's status
    /// (0 while none was seen) and its bytes. A connection has a thread of its own, so
    /// this is per connection; the access log reads it.
    static WRITTEN: std::cell::Cell<(u16, u64)> = const { std::cell::Cell::new((0, 0)) };
}

/// The status and bytes this thread's connection wrote since the last call (and starts
/// counting afresh).
pub fn take_written() -> (u16, u64) {
    WRITTEN.with(|w| w.replace((0, 0)))
}

/// Counts `n` bytes of `buf` written; the first status line seen gives the status.
fn note_written(buf: &[u8], n: usize) {
    WRITTEN.with(|w| {
        let (mut status, bytes) = w.get();
        if status == 0 {
            status = status_of(buf);
        }
        w.set((status, bytes.saturating_add(n as u64)));
    });
}

/// The status of a response head at the start of `buf` (`HTTP/1.1 200 …`, `ICY 200 OK`),
/// or 0.
fn status_of(buf: &[u8]) -> u16 {
    let rest = if let Some(r) = buf.strip_prefix(b"HTTP/1.") {
        r.get(2..)
    } else {
        buf.strip_prefix(b"ICY ")
    };
    rest.and_then(|r| r.get(..3))
        .and_then(|d| std::str::from_utf8(d).ok())
        .and_then(|d| d.parse().ok())
        .unwrap_or(0)
}

impl Write for Conn {
    /// For TLS, the records are on the socket when this returns, and a socket error is
    /// reported by the call that met it (rustls's `Stream` reports it one call late).
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = match self {
            Conn::Plain(s) => s.write(buf)?,
            Conn::Tls(s) => {
                s.flush_tls()?;
                let n = s.conn.writer().write(buf)?;
                s.flush_tls()?;
                n
            }
        };
        note_written(buf, n);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush_tls(),
        }
    }
}
