//! `-playlist FILE`: the lines of an `.m3u` list (one path a line, `#` lines are comments,
//! relative paths are relative to the list). Here, where the configuration is checked, so
//! that a list that cannot be read or names no file stops the start; the playlist input
//! (`input/playlist.rs`) reads it again at each loop.

use crate::error::Error;
use std::fs::File;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The most entries a list may have, and the most bytes of it read.
const MAX_ENTRIES: usize = 100_000;
const MAX_LIST_BYTES: u64 = 16 * 1024 * 1024;

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
