//! A file descriptor input: a file, FIFO, device or `/dev/stdin` (and a child's stdout).
//! Reads go through `poll` so the reader thread can time out, notice quiet sources and stop.

use super::{Close, Got, Input};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::Duration;

pub struct FdInput {
    file: Option<File>,
    regular: bool,
}

impl FdInput {
    /// Opens a path. A FIFO blocks here until a writer appears (as streamserve does).
    pub fn open(path: &Path) -> io::Result<FdInput> {
        let file = File::open(path).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot open {}: {e}", path.display()))
        })?;
        let regular = file.metadata().is_ok_and(|m| m.is_file());
        Ok(FdInput {
            file: Some(file),
            regular,
        })
    }

    pub fn from_fd(fd: OwnedFd) -> FdInput {
        FdInput {
            file: Some(File::from(fd)),
            regular: false,
        }
    }
}

impl Input for FdInput {
    fn read_timeout(&mut self, buf: &mut [u8], wait: Duration) -> io::Result<Got> {
        let Some(file) = self.file.as_mut() else {
            return Ok(Got::End);
        };
        if !crate::os::sys::wait_readable(file, wait)? {
            return Ok(Got::Nothing);
        }
        loop {
            match file.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other.map(Got::from_len),
            }
        }
    }

    fn close(&mut self, _how: Close) {
        self.file = None;
    }

    fn is_regular_file(&self) -> bool {
        self.regular
    }
}
