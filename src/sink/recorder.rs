//! The recorder (`-record DIR`, thread `record`): a logger of what went out. It reads the
//! stream from the ring with a cursor of its own, like a listener, and writes it into files
//! cut on the clock every `-record-split` (files begin at multiples of the split since the
//! Unix epoch, so a 1h split begins them at the top of the hour), named by their UTC start
//! (`2026-12-02T18-00-00Z.mp3`). Each file begins with the stream's header (Ogg's header
//! pages, the tone's WAV header, `-header-bytes`), so it plays on its own; every frame goes
//! to exactly one file, whole. A restart starts a new file named by its own start.
//!
//! The disk never holds the stream up: the recorder is a reader like any other, and one
//! that falls behind is lapped by the ring (the frames it missed are counted). Writes go
//! through a 256 KiB buffer; a file is synced when it is closed (SD cards wear). A failing
//! write (a full disk) is logged, counted, and the file closed; recording starts again with
//! a new file [`RETRY`] later. `-record-keep` deletes files older than that, looked for at
//! the start and whenever a new file begins.

use crate::ring::{Frame, ReadOutcome};
use crate::stream::stats::Stats;
use crate::stream::Stream;
use log::{error, info, warn};
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// After a failing write, recording starts again this much later.
pub const RETRY: Duration = Duration::from_secs(5);

/// The file being written: where, and when the next one begins (Unix seconds).
struct Open {
    path: PathBuf,
    out: BufWriter<File>,
    until: u64,
}

/// The recorder's counters, its own (the server keeps them beside the stream for `/metrics`).
#[derive(Debug, Default)]
pub struct RecorderCounts {
    /// Bytes written.
    pub bytes: AtomicU64,
    /// Writes, opens and syncs that failed.
    pub errors: AtomicU64,
    /// Frames not recorded: the disk fell behind, or a failure paused the recording.
    pub frames_lost: AtomicU64,
}

/// What the thread keeps between frames: where the files go, the one being written, and
/// the pause after a failure.
struct Recorder<'a> {
    stream: &'a Stream,
    counts: &'a RecorderCounts,
    dir: &'a Path,
    keep: Option<Duration>,
    /// `-record-split` in seconds (at least 1).
    split: u64,
    /// Known at the first frame: the source has set the stream's header by then.
    ext: &'static str,
    file: Option<Open>,
    /// Frames before then are not recorded (a write failed).
    paused_until: Option<Instant>,
}

/// The thread body.
pub fn run(stream: &Stream, counts: &RecorderCounts) {
    let Some(rec) = stream.cfg.record.as_ref() else {
        return;
    };
    if let Err(e) = fs::create_dir_all(&rec.dir) {
        error!("-record {}: {e}: not recording", rec.dir.display());
        return;
    }
    let split = rec.split.as_secs().max(1);
    info!(
        "record: a file every {} into {}",
        crate::util::timefmt::span(rec.split),
        rec.dir.display()
    );
    let mut cursor = stream.ring.join(0);
    let mut batch: Vec<Frame> = Vec::new();
    let mut recorder = Recorder {
        stream,
        counts,
        dir: &rec.dir,
        keep: rec.keep,
        split,
        ext: "",
        file: None,
        paused_until: None,
    };
    loop {
        batch.clear();
        let wait = Duration::from_secs(1);
        let (frames, header_len, skipped) =
            match stream
                .ring
                .read(&mut cursor, &mut batch, u64::MAX, 256 * 1024, wait)
            {
                ReadOutcome::Data {
                    frames,
                    header_len,
                    skipped,
                    ..
                } => (frames, header_len, skipped),
                ReadOutcome::Ended => break,
                ReadOutcome::Idle | ReadOutcome::NoRoom => {
                    if stream.stop.is_set() {
                        break;
                    }
                    continue;
                }
            };
        if skipped > 0 {
            Stats::add(&counts.frames_lost, skipped);
            warn!("record: the disk fell behind: {skipped} frames not recorded");
        }
        let audio = batch.get(usize::from(header_len > 0)..).unwrap_or_default();
        debug_assert_eq!(audio.len(), frames);
        if recorder.ext.is_empty() && !audio.is_empty() {
            recorder.ext = extension(stream);
        }
        for f in audio {
            recorder.write(f);
        }
    }
    if let Some(o) = recorder.file {
        close(o);
    }
}

impl Recorder<'_> {
    /// Writes one frame into the file of its time: a new file when the clock has cut the
    /// last (or none is open). A failure is logged and counted, and pauses the recording.
    fn write(&mut self, f: &Frame) {
        if self.paused_until.is_some_and(|t| Instant::now() < t) {
            Stats::add(&self.counts.frames_lost, 1);
            return;
        }
        self.paused_until = None;
        let now = unix_now();
        if self.file.as_ref().is_none_or(|o| now >= o.until) {
            // The file's start: its boundary when the clock cut it, else now.
            let start = match self.file.take() {
                Some(o) => {
                    close(o);
                    floor_to(now, self.split)
                }
                None => now,
            };
            prune(self.dir, self.ext, self.keep);
            match begin(self.dir, self.ext, start, self.split, self.stream) {
                Ok(o) => self.file = Some(o),
                Err(e) => {
                    failed(self.counts, self.dir, &e);
                    self.paused_until = Instant::now().checked_add(RETRY);
                    return;
                }
            }
        }
        if let Some(o) = self.file.as_mut() {
            if let Err(e) = o.out.write_all(f) {
                failed(self.counts, &o.path, &e);
                self.file = None;
                self.paused_until = Instant::now().checked_add(RETRY);
                return;
            }
            Stats::add(&self.counts.bytes, f.len() as u64);
        }
    }
}

/// A new file starting at `start` (Unix seconds), its stream header first.
fn begin(dir: &Path, ext: &str, start: u64, split: u64, stream: &Stream) -> io::Result<Open> {
    let path = dir.join(format!("{}.{ext}", name(start)));
    let f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)?;
    let mut out = BufWriter::with_capacity(256 * 1024, f);
    if let Some(h) = stream.ring.header() {
        out.write_all(&h)?;
    }
    Ok(Open {
        path,
        out,
        until: floor_to(start, split).saturating_add(split),
    })
}

/// Flushes and syncs a finished file.
fn close(mut o: Open) {
    let done = o.out.flush().and_then(|()| o.out.get_ref().sync_all());
    if let Err(e) = done {
        warn!("record: {}: {e}", o.path.display());
    }
}

fn failed(counts: &RecorderCounts, path: &Path, e: &io::Error) {
    Stats::add(&counts.errors, 1);
    error!(
        "record: {}: {e}: recording again in {}s",
        path.display(),
        RETRY.as_secs()
    );
}

/// `2026-12-02T18-00-00Z` for a Unix time.
fn name(unix: u64) -> String {
    let t = UNIX_EPOCH
        .checked_add(Duration::from_secs(unix))
        .unwrap_or(UNIX_EPOCH);
    // iso8601 is `2026-12-02T18:00:00+0000`; a file name takes no colons.
    let iso = crate::util::timefmt::iso8601(t);
    format!("{}Z", iso.trim_end_matches("+0000").replace(':', "-"))
}

/// The Unix time a file name of ours stands for (`None`: not ours).
fn time_of(file_name: &str, ext: &str) -> Option<u64> {
    let stem = file_name.strip_suffix(ext)?.strip_suffix('.')?;
    parse_name(stem)
}

/// `2026-12-02T18-00-00Z` back to Unix seconds.
fn parse_name(stem: &str) -> Option<u64> {
    let b = stem.as_bytes();
    if b.len() != 20 || b.get(19) != Some(&b'Z') {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i64> {
        std::str::from_utf8(b.get(from..to)?).ok()?.parse().ok()
    };
    let (y, mo, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (h, mi, s) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    let days = crate::util::timefmt::days_from_civil(y, mo, d)?;
    let secs = days
        .checked_mul(86_400)?
        .checked_add(h.checked_mul(3600)?)?
        .checked_add(mi.checked_mul(60)?)?
        .checked_add(s)?;
    u64::try_from(secs).ok()
}

/// Deletes this stream's files that began more than `keep` ago.
fn prune(dir: &Path, ext: &str, keep: Option<Duration>) {
    let Some(keep) = keep else { return };
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let oldest = unix_now().saturating_sub(keep.as_secs());
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(t) = name.to_str().and_then(|n| time_of(n, ext)) else {
            continue;
        };
        if t < oldest {
            match fs::remove_file(e.path()) {
                Ok(()) => info!(
                    "record: {} is older than -record-keep: deleted",
                    e.path().display()
                ),
                Err(err) => warn!("record: {}: {err}", e.path().display()),
            }
        }
    }
}

/// The file extension of the stream's format (raw PCM behind a WAV header, as the tone
/// sends it, is a `.wav`).
fn extension(stream: &Stream) -> &'static str {
    match stream.ring.header() {
        Some(h) if h.starts_with(b"RIFF") => "wav",
        _ => stream.cfg.framer.extension,
    }
}

/// `t` rounded down to a multiple of `step` (at least 1).
fn floor_to(t: u64, step: u64) -> u64 {
    t.checked_div(step)
        .and_then(|n| n.checked_mul(step))
        .unwrap_or(t)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back_as_their_times() {
        for t in [0u64, 1_764_698_400, 1_764_698_399, 4_102_444_800] {
            let n = name(t);
            assert_eq!(parse_name(&n), Some(t), "{n}");
            assert_eq!(time_of(&format!("{n}.mp3"), "mp3"), Some(t));
        }
        assert_eq!(name(1_764_698_400), "2025-12-02T18-00-00Z");
        assert_eq!(time_of("2025-12-02T18-00-00Z.ogg", "mp3"), None);
        assert_eq!(time_of("notes.mp3", "mp3"), None);
        assert_eq!(parse_name("2025-13-02T18-00-00Z"), None);
    }
}
