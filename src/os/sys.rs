//! The few things std does not offer, as small safe wrappers over libc. All `unsafe` lives
//! here (and in `memory.rs`, the same kind of wrappers for what the process keeps resident):
//! each call is a plain syscall on values we own.

// Lives with the rest of memory in `memory.rs`; a listener's sender calls it by this path.
pub use super::memory::release_unused_stack;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::AtomicU32;
use std::time::Duration;

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Waits up to `wait` for `fd` to become readable (or hung up). `Ok(false)` on timeout.
pub fn wait_readable(fd: &impl AsRawFd, wait: Duration) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = wait.as_millis().min(i32::MAX as u128) as libc::c_int;
    // SAFETY: one valid pollfd for the duration of the call.
    match check(unsafe { libc::poll(&mut pfd, 1, ms) }) {
        Ok(n) => Ok(n > 0),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(false),
        Err(e) => Err(e),
    }
}

/// The signals ringcast handles on its own thread: blocked everywhere, taken by `sigwait`.
const HANDLED: [libc::c_int; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

fn handled_set() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data initialised by sigemptyset before use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in HANDLED {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

/// Blocks SIGTERM/SIGINT/SIGHUP in this thread and every thread it starts afterwards.
/// Call first thing in `main`. Children would inherit the mask: see `child_setup`.
pub fn block_signals() -> io::Result<()> {
    let set = handled_set();
    // SAFETY: valid set pointer; a null old-set pointer is allowed.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

/// Waits for one of the blocked signals and returns its number.
pub fn wait_signal() -> libc::c_int {
    let set = handled_set();
    let mut sig: libc::c_int = 0;
    // SAFETY: valid set and out pointer.
    unsafe { libc::sigwait(&set, &mut sig) };
    sig
}

pub fn signal_name(sig: libc::c_int) -> &'static str {
    match sig {
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGHUP => "SIGHUP",
        _ => "signal",
    }
}

/// Sends `sig` to the process group `pgid` (a child started with its own group).
pub fn kill_group(pgid: u32, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: kill has no memory arguments.
    check(unsafe { libc::kill(-(pgid as libc::pid_t), sig) }).map(drop)
}

/// In a freshly forked child, before exec: no blocked signals (the mask is inherited, and
/// a grandchild with SIGTERM blocked would survive us), its own process group (so the whole
/// pipeline of `sh -c 'a | b'` can be stopped) and SIGTERM if ringcast dies (never orphaned).
pub fn child_setup() -> io::Result<()> {
    // SAFETY: async-signal-safe syscalls; the empty set lives on this stack frame.
    unsafe {
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        let rc = libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        check(libc::setpgid(0, 0))?;
        check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM))?;
    }
    Ok(())
}

/// Pins the process to its first `n` allowed CPUs (`-cpu-max`).
pub fn limit_cpus(n: usize) -> io::Result<Vec<usize>> {
    // SAFETY: cpu_set_t is plain data; the calls get its exact size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        check(libc::sched_getaffinity(
            0,
            std::mem::size_of::<libc::cpu_set_t>(),
            &mut set,
        ))?;
        let allowed: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .take(n)
            .collect();
        let mut new: libc::cpu_set_t = std::mem::zeroed();
        for &c in &allowed {
            libc::CPU_SET(c, &mut new);
        }
        check(libc::sched_setaffinity(
            0,
            std::mem::size_of::<libc::cpu_set_t>(),
            &new,
        ))?;
        Ok(allowed)
    }
}

/// Raises the soft open-files limit to the hard limit; returns the new soft limit.
pub fn raise_nofile_limit() -> io::Result<u64> {
    // SAFETY: rlimit is plain data.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        check(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim))?;
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            check(libc::setrlimit(libc::RLIMIT_NOFILE, &lim))?;
        }
        Ok(lim.rlim_cur as u64)
    }
}

/// Drops privileges to `uid` (`-uid`): the user's own groups (`initgroups`, so none of
/// root's supplementary groups stay), then its primary group, then the uid. A uid with no
/// passwd entry is refused: there would be no group to switch to.
pub fn set_uid(uid: u32) -> io::Result<()> {
    // SAFETY: plain syscalls; pw points into libc's static buffer, read before any other
    // getpw* call (main runs this before starting threads).
    unsafe {
        if libc::getuid() == uid {
            return Ok(());
        }
        let pw = libc::getpwuid(uid);
        if pw.is_null() {
            return Err(io::Error::other("no such user (no passwd entry)"));
        }
        let gid = (*pw).pw_gid;
        check(libc::initgroups((*pw).pw_name, gid))?;
        check(libc::setgid(gid))?;
        check(libc::setuid(uid)).map(drop)
    }
}

/// Sends what the socket takes of `bufs` in order (one `sendmsg`); the bytes sent. `more`:
/// more follows at once (MSG_MORE), so TCP may hold a partial segment back for it instead of
/// sending a packet now: a batch written in several calls leaves as if written in one.
pub fn send_vectored(
    sock: &impl AsRawFd,
    bufs: &[std::io::IoSlice<'_>],
    more: bool,
) -> io::Result<usize> {
    // SAFETY: a zeroed msghdr is valid (no name, no control data).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    // IoSlice is guaranteed ABI-compatible with iovec on Unix; the kernel only reads them.
    msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
    // size_t in glibc, int in musl (the static ARMv6 build): a handful of slices either way.
    #[allow(clippy::useless_conversion, clippy::unnecessary_fallible_conversions)]
    {
        msg.msg_iovlen = bufs
            .len()
            .try_into()
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    }
    let flags = libc::MSG_NOSIGNAL | if more { libc::MSG_MORE } else { 0 };
    // SAFETY: `msg` points at `bufs`, alive and unchanged for the call.
    let n = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, flags) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// Sleeps while `word` holds `expected`, at most `timeout` (a private futex wait). Returns
/// at once when the word differs; a wake-up, a signal or the timeout all just return: the
/// caller looks at its state again either way.
pub fn futex_wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    // c_long is 32 bits on armv7: a conversion that cannot fail here can there.
    #[allow(clippy::useless_conversion, clippy::unnecessary_fallible_conversions)]
    let ts = libc::timespec {
        tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
        // Below 1e9: fits every c_long.
        tv_nsec: libc::c_long::try_from(timeout.subsec_nanos()).unwrap_or(0),
    };
    // SAFETY: `word` is a live, aligned u32 for the whole call; the kernel only reads it
    // and `ts`.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            &ts as *const libc::timespec,
        );
    }
}

/// Wakes every thread sleeping in [`futex_wait`] on `word`, with one system call.
pub fn futex_wake_all(word: &AtomicU32) {
    // SAFETY: as above; the kernel does not touch the word on a wake.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            libc::c_int::MAX,
        );
    }
}

/// Makes the kernel give up on a connection whose sent data stays unacknowledged for `d`
/// (a blackholed path that never sends a RST): writes then fail instead of queueing.
pub fn set_tcp_user_timeout(sock: &impl AsRawFd, d: Duration) -> io::Result<()> {
    let ms = d.as_millis().min(u32::MAX as u128) as libc::c_uint;
    // SAFETY: a plain option value of the right size.
    check(unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_USER_TIMEOUT,
            &ms as *const libc::c_uint as *const libc::c_void,
            std::mem::size_of::<libc::c_uint>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// Asks the kernel for a send buffer of `bytes` (it doubles the figure for its own
/// bookkeeping; `SO_SNDBUF` also turns off autotuning, which would grow it to 4 MB).
pub fn set_send_buffer(sock: &impl AsRawFd, bytes: usize) -> io::Result<()> {
    let v = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: a plain option value of the right size.
    check(unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            &v as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// Shuts a connected socket down both ways: the peer sees its end at once, and a thread
/// writing to it fails (a kicked listener).
pub fn shutdown_both(fd: RawFd) {
    // SAFETY: the caller guarantees fd is a socket still open; an error is harmless.
    unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
}

/// Half-closes a socket's read side: wakes a thread blocked in `accept` on it.
pub fn shutdown_read(fd: RawFd) {
    // SAFETY: fd is a socket we own; an error (not connected) is harmless.
    unsafe { libc::shutdown(fd, libc::SHUT_RD) };
}

/// Whether the peer of a connected socket has hung up (closed or shut its sending side
/// down, or reset), asked without waiting: `poll` reports `POLLRDHUP` even while bytes the
/// peer sent before its end (a TLS close_notify) are still unread.
pub fn peer_hung_up(sock: &impl AsRawFd) -> bool {
    let mut pfd = libc::pollfd {
        fd: sock.as_raw_fd(),
        events: libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: one pollfd we own, a zero timeout.
    let n = unsafe { libc::poll(&mut pfd, 1, 0) };
    n > 0 && pfd.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0
}

/// Makes the socket's close a reset (`SO_LINGER` on, 0 s): the kernel drops what is still
/// queued to send at once instead of keeping it, in FIN-WAIT-1, for a peer that reads
/// nothing (a listener dropped for not reading).
pub fn reset_on_close(sock: &impl AsRawFd) -> io::Result<()> {
    let v = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a plain option value of the right size.
    check(unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &v as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// The uid of user `name` in the passwd database (`None`: no such user).
pub fn user_id(name: &str) -> io::Result<Option<u32>> {
    let c = std::ffi::CString::new(name).map_err(|_| io::Error::other("a name with a NUL byte"))?;
    let mut size = 16 * 1024;
    loop {
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut buf = vec![0u8; size];
        let mut out: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: getpwnam_r writes into pwd and buf, which we own and size correctly.
        let rc = unsafe {
            libc::getpwnam_r(
                c.as_ptr(),
                &mut pwd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut out,
            )
        };
        match rc {
            0 => return Ok((!out.is_null()).then_some(pwd.pw_uid)),
            // An entry larger than the buffer: a bigger one, up to 1 MiB.
            libc::ERANGE if size < 1024 * 1024 => size = size.saturating_mul(4),
            // POSIX lets "not found" come back as any of these.
            libc::ENOENT | libc::ESRCH | libc::EBADF | libc::EPERM => return Ok(None),
            e => return Err(io::Error::from_raw_os_error(e)),
        }
    }
}
