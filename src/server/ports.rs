//! The server's listening sockets and their accept loops: `-address` (plain HTTP),
//! `-tls-address` (HTTPS), `-source-address` (source clients), and SHOUTcast v1 sources on
//! the source port + 1 (`-source-address`'s, else `-address`'s).
//!
//! Every port is bound before `-uid` drops privileges, so each may be below 1024.

use super::accept::{self, Handler, Port};
use super::mounts::spawn;
use super::{route, source_client, Server};
use crate::config::ServerConfig;
use crate::error::Error;
use log::{info, warn};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::thread::JoinHandle;

/// The bound sockets, not yet accepting.
pub struct Bound {
    socks: Vec<(TcpListener, Port)>,
}

/// The accept loops, to be stopped at shutdown.
pub struct Running {
    loops: Vec<(RawFd, JoinHandle<()>)>,
}

/// Binds every port the configuration asks for. `takes_sources`: some stream takes source
/// clients (then the SHOUTcast v1 port is opened too, best effort, as SHOUTcast's DNAS has it).
pub fn bind(cfg: &ServerConfig, takes_sources: bool) -> Result<Bound, Error> {
    let listen = |addr: SocketAddr, what: &str| {
        TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr} ({what}): {e}"))
    };
    let http = listen(cfg.address, "-address")?;
    let http_local = http.local_addr().map_err(|e| e.to_string())?;
    let mut socks = vec![(http, Port::Http)];
    if let Some(t) = &cfg.tls {
        socks.push((listen(t.address, "-tls-address")?, Port::Https));
    }
    let mut v1_base = http_local;
    if let Some(addr) = cfg.source_address {
        let s = listen(addr, "-source-address")?;
        v1_base = s.local_addr().map_err(|e| e.to_string())?;
        socks.push((s, Port::Source));
    }
    if takes_sources {
        let v1 = SocketAddr::new(v1_base.ip(), v1_base.port().wrapping_add(1));
        match TcpListener::bind(v1) {
            Ok(s) => socks.push((s, Port::SourceV1)),
            Err(e) => warn!("SHOUTcast v1 sources: cannot listen on {v1}: {e}"),
        }
    }
    Ok(Bound { socks })
}

impl Bound {
    /// Logs each port and starts its accept loop.
    pub fn start(self, server: &Arc<Server>) -> Result<Running, Error> {
        let mut loops = Vec::new();
        for (sock, port) in self.socks {
            let local = sock.local_addr().map_err(|e| e.to_string())?;
            let (what, name, handler): (&str, &str, Handler) = match port {
                Port::Http => ("listening on", "http-accept", route::handle_http),
                Port::Https => ("HTTPS on", "https-accept", route::handle_https),
                Port::Source => ("source clients on", "src-accept", route::handle_source),
                Port::SourceV1 => (
                    "SHOUTcast v1 sources on",
                    "sc-accept",
                    source_client::serve_shoutcast,
                ),
            };
            info!("{what} {local}");
            let fd = sock.as_raw_fd();
            let sv = Arc::clone(server);
            let h = spawn(name, move || accept::run(sock, sv, port, handler))?;
            loops.push((fd, h));
        }
        Ok(Running { loops })
    }
}

impl Running {
    /// Stops accepting: each loop sees the error and the shutdown flag and returns.
    pub fn stop(self) {
        for (fd, h) in self.loops {
            crate::os::sys::shutdown_read(fd);
            let _ = h.join();
        }
    }
}
