//! `-playlist FILE`: the local files an `.m3u` lists (one path a line, `#` lines are
//! comments, relative paths are relative to the list), played one after another and looped,
//! as one paced source: each file's frames go out in real time (`input/pacer.rs`), and the
//! stream title becomes each file's own (its ID3v2 or Vorbis comment tags, else its name)
//! when the reader opens it, a read ahead of its first frame (at most 16 KiB).
//! `/admin/next` skips to the next file. The list (read by `config/playlist.rs`) is read
//! again at each loop, so an edited list takes effect without a restart; a file that cannot
//! be opened is logged and skipped.

use super::{Close, Got, Input};
use crate::config::playlist::read;
use crate::stream::Stream;
use log::{info, warn};
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The front of a file read for its tags.
const TAG_BYTES: u64 = 256 * 1024;

pub struct PlaylistInput {
    list: PathBuf,
    entries: Vec<PathBuf>,
    /// The entry playing (or next to open).
    index: usize,
    file: Option<File>,
    stream: Arc<Stream>,
}

impl PlaylistInput {
    pub fn new(list: &Path, stream: &Arc<Stream>) -> io::Result<PlaylistInput> {
        let entries = read(list).map_err(io::Error::other)?;
        Ok(PlaylistInput {
            list: list.to_path_buf(),
            entries,
            index: 0,
            file: None,
            stream: Arc::clone(stream),
        })
    }

    /// Opens the entry at `index` or the next that opens; an error once a whole loop of
    /// the list failed.
    fn open_next(&mut self) -> io::Result<()> {
        let total = self.entries.len();
        for _ in 0..total.max(1) {
            if self.index >= self.entries.len() {
                self.index = 0;
                // The list again, so that edits take effect at the next loop.
                match read(&self.list) {
                    Ok(e) if !e.is_empty() => self.entries = e,
                    Ok(_) => warn!(
                        "-playlist {}: now empty; playing the old list",
                        self.list.display()
                    ),
                    Err(e) => warn!("{e}; playing the old list"),
                }
            }
            let Some(path) = self.entries.get(self.index).cloned() else {
                break;
            };
            match File::open(&path) {
                Ok(f) => {
                    let n = self.index.saturating_add(1);
                    info!("playlist: {n}/{}: {}", self.entries.len(), path.display());
                    if let Some(t) = file_title(&path) {
                        if self.stream.meta.set_title(&t) {
                            info!("playlist: title {t:?}");
                        }
                    }
                    self.file = Some(f);
                    // Another file: its encoding need not continue the last one's.
                    self.stream.breaks.mark(&self.stream.ring);
                    return Ok(());
                }
                Err(e) => {
                    warn!("playlist: cannot open {}: {e}: skipped", path.display());
                    self.index = self.index.saturating_add(1);
                }
            }
        }
        Err(io::Error::other(format!(
            "-playlist {}: no file in it could be opened",
            self.list.display()
        )))
    }
}

/// The title a file's tags give, else its name without the extension.
fn file_title(path: &Path) -> Option<String> {
    let mut front = Vec::new();
    let tagged = File::open(path)
        .and_then(|f| f.take(TAG_BYTES).read_to_end(&mut front))
        .ok()
        .and_then(|_| super::tags::title(&front));
    tagged.or_else(|| Some(path.file_stem()?.to_string_lossy().into_owned()))
}

impl Input for PlaylistInput {
    fn read_timeout(&mut self, buf: &mut [u8], _wait: Duration) -> io::Result<Got> {
        loop {
            if self.stream.take_skip() && self.file.take().is_some() {
                info!("playlist: skipped to the next file (/admin/next)");
                self.index = self.index.saturating_add(1);
            }
            if self.file.is_none() {
                self.open_next()?;
            }
            let Some(file) = self.file.as_mut() else {
                return Ok(Got::Nothing);
            };
            match file.read(buf) {
                Ok(0) => {
                    self.file = None;
                    self.index = self.index.saturating_add(1);
                }
                Ok(n) => return Ok(Got::Bytes(n)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn close(&mut self, _how: Close) {
        self.file = None;
    }

    fn is_regular_file(&self) -> bool {
        true
    }
}
