//! `-playlist FILE`: the local files an `.m3u` lists (one path a line, `#` lines are
//! comments, relative paths are relative to the list), played one after another and looped,
//! as one paced source: each file's frames go out in real time (`input/pacer.rs`), and the
//! stream title becomes each file's own (its ID3v2 or Vorbis comment tags, else its name)
//! when the reader opens it, a read ahead of its first frame (at most 16 KiB). `/admin/next` skips to the next file. The list is read again at each loop, so
//! an edited list takes effect without a restart; a file that cannot be opened is logged and
//! skipped.

use super::{Close, Got, Input};
use crate::error::Error;
use crate::stream::Stream;
use log::{info, warn};
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The most entries a list may have, and the most bytes of it read.
const MAX_ENTRIES: usize = 100_000;
const MAX_LIST_BYTES: u64 = 16 * 1024 * 1024;
/// The front of a file read for its tags.
const TAG_BYTES: u64 = 256 * 1024;

/// The files `list` names, in order.
pub fn read(list: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut bytes = Vec::new();
    File::open(list)
        .and_then(|f| f.take(MAX_LIST_BYTES).read_to_end(&mut bytes))
        .map_err(|e| format!("-playlist {}: {e}", list.display()))?;
    let dir = list.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    for line in bytes.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let line = line.trim_ascii();
        if line.is_empty() || line.starts_with(b"#") {
            continue;
        }
        let path = Path::new(std::ffi::OsStr::from_bytes(line));
        out.push(if path.is_absolute() {
            path.to_path_buf()
        } else {
            dir.join(path)
        });
        if out.len() >= MAX_ENTRIES {
            break;
        }
    }
    Ok(out)
}

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

#[cfg(test)]
mod tests {
    #[test]
    fn lists_skip_comments_and_resolve_relative_paths() {
        let dir = std::env::temp_dir().join(format!("ringcast-m3u-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let list = dir.join("a.m3u");
        std::fs::write(
            &list,
            "#EXTM3U\n#EXTINF:1,x\none.mp3\r\n\n/abs/two.ogg\n  three.mp3  \n",
        )
        .unwrap();
        let got = super::read(&list).unwrap();
        assert_eq!(
            got,
            [
                dir.join("one.mp3"),
                "/abs/two.ogg".into(),
                dir.join("three.mp3")
            ]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
