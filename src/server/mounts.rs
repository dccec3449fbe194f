//! The server's streams: starting each one's threads, stopping them, and `SIGHUP`'s reload,
//! which starts new mounts, stops removed ones and restarts changed ones while every other
//! mount's listeners and source clients carry on untouched.

use super::consumers::{Context, CONSUMERS};
use super::leaves::Leaves;
use super::Server;
use crate::config::{self, Mount};
use crate::error::Error;
use crate::link::{self, LinkState};
use crate::stream::Stream;
use crate::util::deadline::Deadline;
use log::{error, info, warn};
use parking_lot::Mutex;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// A stream's reader gets this long to stop before it is left behind (a FIFO with no writer
/// can hold it in `open`).
const STOP_WAIT: Duration = Duration::from_secs(6);

/// A started stream, its threads, and the words its mount was made from.
pub struct Running {
    pub stream: Arc<Stream>,
    /// What its leaves keep of their own (the server holds it, not the stream).
    pub leaves: Leaves,
    words: Vec<String>,
    /// The thread that fills the ring (`src-read` or `link-play`), then the others.
    reader: JoinHandle<()>,
    others: Vec<JoinHandle<()>>,
}

impl Running {
    /// What the server's list holds of it: the stream and its link.
    fn served(&self) -> (Arc<Stream>, Leaves) {
        (Arc::clone(&self.stream), self.leaves.clone())
    }
}

/// Every running stream, in `-mount` order. Only `main` and the reload touch it.
#[derive(Default)]
pub struct Streams(Mutex<Vec<Running>>);

impl Streams {
    /// Starts every stream of `mounts` and publishes them to the router.
    pub fn start_all(&self, server: &Arc<Server>, mounts: Vec<Mount>) -> Result<(), Error> {
        let mut list = self.0.lock();
        for m in mounts {
            list.push(start(server, m)?);
        }
        server.set_streams(list.iter().map(Running::served).collect());
        Ok(())
    }

    /// Stops every stream (shutdown).
    pub fn stop_all(&self, why: &str) {
        let list = std::mem::take(&mut *self.0.lock());
        stop(list, why);
    }

    /// `SIGHUP`: reads `argv` and every file it names again and brings the mounts in line.
    /// A setup that does not load changes nothing.
    pub fn reload(&self, server: &Arc<Server>, argv: &[String]) {
        let setup = match config::load(argv, &|p| std::fs::read_to_string(p)) {
            Ok(s) => s,
            Err(config::Failed::Invalid(e) | config::Failed::Usage(e)) => {
                return error!("reload: {e}: the mounts stay as they are");
            }
            Err(config::Failed::Help(_)) => return,
        };
        if setup.server.mounted != server.cfg.mounted {
            return warn!(
                "reload: -mount was {}: restart to switch between one stream and mounts",
                if server.cfg.mounted {
                    "removed"
                } else {
                    "added"
                }
            );
        }
        if setup.server != server.cfg {
            warn!("reload: server-wide flags changed: they take effect at the next restart");
        }
        let mut list = self.0.lock();
        let (keep, gone): (Vec<Running>, Vec<Running>) = list.drain(..).partition(|r| {
            setup
                .streams
                .iter()
                .any(|m| m.cfg.mount == r.stream.mount() && m.words == r.words)
        });
        // Stop what goes first: a changed mount's new input may need the device, port or
        // encoder connection its old one holds.
        server.set_streams(keep.iter().map(Running::served).collect());
        for r in &gone {
            info!("reload: stopping {}", r.stream.mount());
        }
        stop(gone, "its mount was removed or changed (reload)");
        let mut keep: Vec<Option<Running>> = keep.into_iter().map(Some).collect();
        for m in setup.streams {
            let kept = keep
                .iter_mut()
                .find(|r| r.as_ref().is_some_and(|r| r.stream.mount() == m.cfg.mount))
                .and_then(Option::take);
            match kept {
                Some(r) => list.push(r),
                None => {
                    let mount = m.cfg.mount.clone();
                    match start(server, m) {
                        Ok(r) => {
                            info!("reload: started {mount}");
                            list.push(r);
                        }
                        Err(e) => error!("reload: {mount}: {e}"),
                    }
                }
            }
        }
        server.set_streams(list.iter().map(Running::served).collect());
        if server.cfg.mounted {
            info!("reload: {} mount(s)", list.len());
        } else {
            info!("reload: done");
        }
    }

    /// Whether every stream's reader shows signs of life (for the systemd watchdog).
    pub fn alive(&self) -> bool {
        self.0.lock().iter().all(|r| r.stream.reader_beat.alive())
    }
}

/// Starts one stream's threads: the one that fills its ring, and its outputs.
fn start(server: &Arc<Server>, m: Mount) -> Result<Running, Error> {
    let cfg = m.cfg;
    info!(
        "{}source: {} ({} frames of up to {} bytes, ring of {})",
        if server.cfg.mounted {
            format!("{} ", cfg.mount)
        } else {
            String::new()
        },
        cfg.input_name(),
        cfg.framer.name,
        cfg.frame_bytes,
        cfg.source_buffer
    );
    let receiver = link::is_receiver(&cfg);
    let pulls = cfg.link.as_ref().map_or(0, |l| l.pull.len());
    let cannot = |e: std::io::Error| Error::io("cannot start", e);
    let leaves = Leaves::new(&cfg).map_err(cannot)?;
    let link = leaves.link.clone();
    let stream = Arc::new(Stream::new(cfg).map_err(cannot)?);
    let names = ThreadNames::new(server, &stream.cfg.mount);
    let mut others = Vec::new();
    let reader = if receiver {
        // The link is the source: the player fills the ring, a dialler feeds the player.
        let Some(lk) = link.as_ref() else {
            return Err(Error::from("a link receiver without its link state"));
        };
        for i in 0..pulls {
            let (st, lk) = (Arc::clone(&stream), Arc::clone(lk));
            let name = path_name(&names.of("link-pull"), i);
            others.push(spawn(&name, move || link::receiver::run_pull(&st, &lk, i))?);
        }
        let (st, lk) = (Arc::clone(&stream), Arc::clone(lk));
        spawn(&names.of("link-play"), move || {
            link::receiver::run_play(&st, &lk)
        })?
    } else {
        spawn(
            &names.of("src-read"),
            read_input(&stream, link.clone(), server),
        )?
    };
    for consumer in CONSUMERS {
        for instance in 0..(consumer.count)(&stream) {
            let st = Arc::clone(&stream);
            let context = Context {
                instance,
                write_timeout: server.cfg.write_timeout,
                leaves: leaves.clone(),
            };
            let name = path_name(&names.of(consumer.thread), instance);
            others.push(spawn(&name, move || (consumer.run)(&st, context))?);
        }
    }
    Ok(Running {
        stream,
        leaves,
        words: m.words,
        reader,
        others,
    })
}

/// The names of a stream's threads: with mounts, each ends with its mount.
struct ThreadNames<'a> {
    mount: Option<&'a str>,
}

impl<'a> ThreadNames<'a> {
    fn new(server: &Server, mount: &'a str) -> ThreadNames<'a> {
        ThreadNames {
            mount: server.cfg.mounted.then_some(mount),
        }
    }

    /// `what`'s thread name for this stream (`src-read`, `hls/live`).
    fn of(&self, what: &str) -> String {
        match self.mount {
            Some(mount) => format!("{what}{mount}"),
            None => what.to_string(),
        }
    }
}

/// A thread per link path: `link-pull`, `link-pull-1`, … (path 0 keeps the plain name).
fn path_name(base: &str, i: usize) -> String {
    if i == 0 {
        base.to_string()
    } else {
        format!("{base}-{i}")
    }
}

/// The body of the thread that reads the stream's input into its ring.
fn read_input(
    stream: &Arc<Stream>,
    link: Option<Arc<LinkState>>,
    server: &Arc<Server>,
) -> impl FnOnce() + Send + 'static {
    let (st, sv) = (Arc::clone(stream), Arc::clone(server));
    move || {
        crate::input::supervisor::run(Arc::clone(&st), link);
        // Without mounts the one stream ending by itself (-reopen=false) is the server's
        // end; one a reload stopped is not. The reason tells, not whether the stream is
        // among the server's yet: a missing file fails before it is registered.
        match st.stop.reason() {
            Some(why) if !sv.cfg.mounted && crate::input::supervisor::ended_by_itself(&why) => {
                sv.shutdown.trigger(why)
            }
            _ => {}
        }
    }
}

/// Stops streams: each one's threads are asked at once, then joined (a stuck reader is left
/// behind after [`STOP_WAIT`] and its ring ended for it, so its listeners still finish).
fn stop(list: Vec<Running>, why: &str) {
    for r in &list {
        r.stream.stop.trigger(why);
    }
    let deadline = Deadline::after(STOP_WAIT);
    for r in list {
        if !join_by(r.reader, &deadline) {
            warn!(
                "{}: the source is stuck (a FIFO waiting for a writer?): leaving it",
                r.stream.mount()
            );
            r.stream.ring.end();
        }
        for t in r.others {
            // Outputs and link sessions notice the stop flag within a second or two.
            let _ = join_by(t, &deadline);
        }
    }
}

/// Joins `h` if it finishes by `deadline`.
fn join_by(h: JoinHandle<()>, deadline: &Deadline) -> bool {
    while !h.is_finished() {
        if deadline.passed() {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
    let _ = h.join();
    true
}

/// Starts a named thread with the small stack every ringcast thread has.
pub fn spawn<F: FnOnce() + Send + 'static>(name: &str, f: F) -> Result<JoinHandle<()>, Error> {
    thread::Builder::new()
        .name(name.into())
        .stack_size(256 * 1024)
        .spawn(f)
        .map_err(|e| Error::io(format!("cannot start thread {name}"), e))
}
