//! An outbound connection: plain TCP for `http://`, TLS over TCP for `https://`. The link and
//! `-url` dial through this, so every stream client speaks both with one code path.
//!
//! Reads that must not block (the pusher polling for acks between fragments) go through
//! [`Conn::read_ready`]: with TLS, a readable socket does not mean readable plaintext, and
//! plaintext may already sit decrypted in rustls with nothing left on the socket.

use crate::http::url::Url;
use crate::util::deadline::Deadline;
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

pub enum Conn {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Conn {
    /// Dials `url`'s host (every address it resolves to, in turn), then for `https` makes
    /// the TLS handshake, all before `deadline`: a server that accepts and then trickles its
    /// handshake one byte at a time cannot hold the dial past it.
    pub fn connect(url: &Url, deadline: Deadline) -> io::Result<Conn> {
        let mut last = io::Error::other(format!("{}: no address", url.host));
        let mut tcp = None;
        for addr in url.authority().to_socket_addrs()? {
            let left = deadline.left();
            if left.is_zero() {
                last = io::Error::new(io::ErrorKind::TimedOut, "connect: no answer in time");
                break;
            }
            match TcpStream::connect_timeout(&addr, left) {
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
        let mut tls = ClientConnection::new(config, name).map_err(io::Error::other)?;
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
        Ok(Conn::Tls(Box::new(StreamOwned::new(tls, tcp))))
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
fn plaintext(tls: &mut ClientConnection, buf: &mut [u8]) -> Option<io::Result<usize>> {
    match tls.reader().read(buf) {
        Ok(n) => Some(Ok(n)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Some(Ok(0)),
        Err(e) => Some(Err(e)),
    }
}

/// Runs the TLS handshake before `deadline`, arming the socket's timeouts before every read
/// and write. Not rustls's `complete_io`: that loops inside itself until the handshake is
/// done, so a server that trickles its handshake a byte at a time would hold the dial for as
/// long as it liked.
fn handshake(
    tls: &mut ClientConnection,
    tcp: &mut TcpStream,
    deadline: Deadline,
) -> io::Result<()> {
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

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}
