//! Memory the process keeps resident, over libc: glibc's malloc arenas and per-thread cache
//! (one thread per listener multiplies both), and the stack pages a listener's thread
//! touched once while it set up. Apart from `sys.rs` because each of these is a measured
//! cost of the thread-per-connection design, with its own why; the `unsafe` here is of the
//! same kind as there: plain syscalls on values we own.

use std::io;

/// Caps glibc's per-thread malloc arenas: with one thread per listener, glibc would
/// otherwise keep up to 8 arenas per core, each holding freed memory as RSS.
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt takes plain integers.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// glibc's setting that turns its per-thread malloc cache off (see [`reexec_for_malloc`]).
pub const MALLOC_TUNABLES: &str = "glibc.malloc.tcache_count=0";

/// Runs this program again, once, with glibc's per-thread malloc cache ("tcache") turned
/// off, and returns only if that is not done: `GLIBC_TUNABLES` is already set (the
/// operator's own settings, or this re-run), or the exec failed (logged by the caller).
///
/// Why: every thread that frees memory keeps up to 7 freed chunks of each small size in its
/// own cache, for as long as it lives. A listener's thread frees its request, its response
/// head and its log lines once, then lives for hours: measured, that parked 2 KB per
/// listener (10 MB at 5000). glibc reads the setting only when a program starts, so it has to
/// be in the environment before then; a listener's loop allocates nothing, so the cache
/// bought nothing. The process keeps its PID (exec), so systemd sees no difference.
pub fn reexec_for_malloc() -> Option<io::Error> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt;
        if std::env::var_os("GLIBC_TUNABLES").is_some() {
            return None;
        }
        let mut args = std::env::args_os();
        let arg0 = args.next().unwrap_or_default();
        // This very binary (from /proc/self/exe), by its own path rather than that link: the
        // process is named after the file it runs (`ps`, `top`, `pkill ringcast`).
        let exe = match std::env::current_exe() {
            Ok(p) if p.is_file() => p,
            Ok(p) => return Some(io::Error::other(format!("{} is gone", p.display()))),
            Err(e) => return Some(e),
        };
        let e = std::process::Command::new(exe)
            .arg0(arg0)
            .args(args)
            .env("GLIBC_TUNABLES", MALLOC_TUNABLES)
            .exec();
        Some(e)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    None
}

/// Gives back to the kernel the pages of this thread's stack below the caller's frame. A
/// connection thread touches deep stack once, while it reads a request, logs and builds its
/// answer; a listener then loops for hours in a few shallow calls. Touched pages stay resident for the thread's life, so without this each listener
/// keeps what its setup once touched. The pages released read as zeros when touched again
/// (MADV_DONTNEED on private anonymous memory), which is all a stack below its pointer may
/// hold. Does nothing when the stack's bounds are unknown.
#[inline(never)]
pub fn release_unused_stack() {
    /// Stack the call to madvise needs under this function's frame (a libc wrapper
    /// around one syscall instruction), with room to spare.
    const CALL_ROOM: usize = 512;
    let page = page_size();
    // An address in this function's own frame: everything in use is above it.
    let marker = 0u8;
    let here = std::hint::black_box(&marker) as *const u8 as usize;
    let Some(low) = stack_low() else {
        return;
    };
    // A little under this frame stays (madvise's own call runs there); the page boundary
    // below that is where the release starts.
    let end = here.saturating_sub(CALL_ROOM) & !(page.saturating_sub(1));
    let Some(len) = end.checked_sub(low).filter(|&n| n > 0) else {
        return;
    };
    // SAFETY: [low, end) is this thread's own stack below its stack pointer: no frame lives
    // there, and nothing else refers to it. MADV_DONTNEED only drops the pages.
    // A failure leaves the pages resident, which is all it costs.
    unsafe { libc::madvise(low as *mut libc::c_void, len, libc::MADV_DONTNEED) };
}

/// The lowest usable address of the calling thread's stack (above its guard page).
fn stack_low() -> Option<usize> {
    let mut attr = std::mem::MaybeUninit::<libc::pthread_attr_t>::uninit();
    let mut addr: *mut libc::c_void = std::ptr::null_mut();
    let mut size: libc::size_t = 0;
    // SAFETY: pthread_getattr_np fills `attr` for the calling thread; it is destroyed after
    // its stack bounds are read.
    unsafe {
        if libc::pthread_getattr_np(libc::pthread_self(), attr.as_mut_ptr()) != 0 {
            return None;
        }
        let rc = libc::pthread_attr_getstack(attr.as_ptr(), &mut addr, &mut size);
        libc::pthread_attr_destroy(attr.as_mut_ptr());
        (rc == 0 && !addr.is_null()).then_some(addr as usize)
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf takes a plain integer.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n)
        .ok()
        .filter(|&n| n.is_power_of_two())
        .unwrap_or(4096)
}
