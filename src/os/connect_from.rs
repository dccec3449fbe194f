//! A TCP connection from a chosen local address: a link path out of one interface (a Pi
//! with Ethernet and a 4G stick routes by source address; docs/link.md shows the rules).
//! std cannot bind a socket before connecting it, so this is the one socket ringcast makes
//! by hand.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::{FromRawFd, OwnedFd};
use std::time::Duration;

/// Connects to `to` from `from` (any port), within `timeout`.
pub fn connect_from(from: IpAddr, to: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let family = match to {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    if from.is_ipv4() != to.is_ipv4() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("cannot reach {to} from {from}: not the same address family"),
        ));
    }
    // SAFETY: a plain syscall; the descriptor is owned at once.
    let fd = unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor nobody else owns.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let tcp = TcpStream::from(owned);
    // Linux bounds a blocking connect() by the send timeout (it fails with EINPROGRESS).
    tcp.set_write_timeout(Some(timeout.max(Duration::from_millis(1))))?;
    let (local, len) = sockaddr(&SocketAddr::new(from, 0));
    // SAFETY: `local` is a valid sockaddr of `len` bytes for the duration of the call.
    if unsafe { libc::bind(fd, std::ptr::addr_of!(local).cast(), len) } < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("bind to {from}: {e}")));
    }
    let (remote, len) = sockaddr(to);
    // SAFETY: as above.
    if unsafe { libc::connect(fd, std::ptr::addr_of!(remote).cast(), len) } < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EINPROGRESS) {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "connect: no answer in time",
            ));
        }
        return Err(e);
    }
    tcp.set_write_timeout(None)?;
    Ok(tcp)
}

/// `addr` as the kernel's sockaddr (in a sockaddr_storage) and its length.
fn sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data; all-zero is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write(std::ptr::addr_of_mut!(storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { std::ptr::write(std::ptr::addr_of_mut!(storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    #[test]
    fn the_peer_sees_the_chosen_source_address() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let to = l.local_addr().unwrap();
        for from in ["127.0.0.2", "127.0.0.3"] {
            let mut c = connect_from(from.parse().unwrap(), &to, Duration::from_secs(5)).unwrap();
            let (mut s, peer) = l.accept().unwrap();
            assert_eq!(peer.ip().to_string(), from);
            c.write_all(b"x").unwrap();
            let mut b = [0u8; 1];
            s.read_exact(&mut b).unwrap();
        }
        let v6 = connect_from(
            "127.0.0.2".parse().unwrap(),
            &"[::1]:1".parse().unwrap(),
            Duration::from_secs(1),
        );
        assert!(v6.unwrap_err().to_string().contains("address family"));
    }
}
