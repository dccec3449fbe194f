//! A fault-injecting TCP proxy on loopback that the link tests drive: pass, blackhole (keep
//! connections open, move nothing, close nothing: what was sent waits in the kernel's buffers
//! as it would wait for TCP's retransmissions, and flows once the path is back), reset (RST
//! every connection, refuse new ones), throttle (both ways, to a byte rate: a congested
//! uplink), corrupt (flip a byte in what flows towards the client), and a switch of the local address it dials the target from (a pusher "changing
//! IP").

use super::connect_from;
use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Pass,
    Blackhole,
    Reset,
    /// Bytes per second, each direction, each connection.
    Throttle(u32),
}

struct State {
    mode: Mutex<Mode>,
    /// Flip one byte of the next chunk flowing target → client.
    corrupt_next: AtomicBool,
    from_ip: Mutex<Option<IpAddr>>,
    conns: Mutex<Vec<(TcpStream, TcpStream)>>,
    /// The address of every client that connected.
    clients: Mutex<Vec<IpAddr>>,
    /// Bytes forwarded target → client and client → target.
    pub down_bytes: AtomicU64,
    pub up_bytes: AtomicU64,
    stop: AtomicBool,
}

pub struct FaultProxy {
    pub addr: SocketAddr,
    state: Arc<State>,
}

impl FaultProxy {
    pub fn start(target: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            mode: Mutex::new(Mode::Pass),
            corrupt_next: AtomicBool::new(false),
            from_ip: Mutex::new(None),
            conns: Mutex::new(Vec::new()),
            clients: Mutex::new(Vec::new()),
            down_bytes: AtomicU64::new(0),
            up_bytes: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let st = Arc::clone(&state);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if st.stop.load(Relaxed) {
                    return;
                }
                let Ok(client) = client else { continue };
                if let Ok(peer) = client.peer_addr() {
                    st.clients.lock().unwrap().push(peer.ip());
                }
                let st = Arc::clone(&st);
                std::thread::spawn(move || connection(client, target, &st));
            }
        });
        FaultProxy { addr, state }
    }

    pub fn set(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = mode;
        if mode == Mode::Reset {
            for (c, s) in self.state.conns.lock().unwrap().drain(..) {
                rst(&c);
                rst(&s);
            }
        }
    }

    /// Flips a byte in the next chunk sent towards the client.
    pub fn corrupt_next(&self) {
        self.state.corrupt_next.store(true, Relaxed);
    }

    /// New connections to the target come from `ip` (e.g. 127.0.0.2).
    pub fn dial_from(&self, ip: &str) {
        *self.state.from_ip.lock().unwrap() = Some(ip.parse().unwrap());
    }

    /// The distinct addresses clients connected from, in order of first connection.
    #[allow(dead_code)] // not every user of this file asks
    pub fn clients(&self) -> Vec<IpAddr> {
        let mut seen: Vec<IpAddr> = Vec::new();
        for ip in self.state.clients.lock().unwrap().iter() {
            if !seen.contains(ip) {
                seen.push(*ip);
            }
        }
        seen
    }

    /// (bytes towards the client, bytes towards the target) forwarded so far.
    #[allow(dead_code)] // read by `make bench` (link overhead), which shares this file
    pub fn bytes(&self) -> (u64, u64) {
        (
            self.state.down_bytes.load(Relaxed),
            self.state.up_bytes.load(Relaxed),
        )
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.state.stop.store(true, Relaxed);
        let _ = TcpStream::connect(self.addr);
        for (c, s) in self.state.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

fn connection(client: TcpStream, target: SocketAddr, st: &Arc<State>) {
    // In a blackhole a new connection's packets go nowhere, until they do.
    while *st.mode.lock().unwrap() == Mode::Blackhole && !st.stop.load(Relaxed) {
        std::thread::sleep(Duration::from_millis(10));
    }
    if *st.mode.lock().unwrap() == Mode::Reset {
        rst(&client);
        return;
    }
    let from = *st.from_ip.lock().unwrap();
    let server = match from {
        Some(ip) => connect_from(ip, target),
        None => TcpStream::connect(target).ok(),
    };
    let Some(server) = server else {
        rst(&client);
        return;
    };
    st.conns
        .lock()
        .unwrap()
        .push((client.try_clone().unwrap(), server.try_clone().unwrap()));
    let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let up = Arc::clone(st);
    std::thread::spawn(move || pump(c2, s2, false, &up));
    pump(server, client, true, st);
}

fn pump(mut from: TcpStream, mut to: TcpStream, down: bool, st: &State) {
    let _ = from.set_read_timeout(Some(Duration::from_millis(50)));
    let mut buf = [0u8; 16 * 1024];
    loop {
        if st.stop.load(Relaxed) {
            return;
        }
        // Copy the mode out: a guard in the match would be held across the sleep.
        let mode = *st.mode.lock().unwrap();
        let want = match mode {
            // Nothing moves; the kernel keeps what was sent.
            Mode::Blackhole => {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            Mode::Reset => return,
            Mode::Pass => buf.len(),
            // Reads of 1/20 s worth, each followed by 1/20 s: the rate, in small steps.
            Mode::Throttle(rate) => (rate as usize / 20).clamp(1, buf.len()),
        };
        let n = match from.read(&mut buf[..want]) {
            Ok(0) => {
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => {
                let _ = to.shutdown(Shutdown::Both);
                return;
            }
        };
        if down && n > 40 && st.corrupt_next.swap(false, Relaxed) {
            buf[n / 2] ^= 0x5A;
        }
        if to.write_all(&buf[..n]).is_err() {
            return;
        }
        let counter = if down { &st.down_bytes } else { &st.up_bytes };
        counter.fetch_add(n as u64, Relaxed);
        if matches!(mode, Mode::Throttle(_)) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Closes with a RST (SO_LINGER 0), as a router dropping state would look.
fn rst(s: &TcpStream) {
    let lin = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(s),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &lin as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    let _ = s.shutdown(Shutdown::Both);
}
