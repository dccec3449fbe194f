//! `Transfer-Encoding: chunked` bodies: decoding those some source clients send (fed in pieces
//! of any size), and both ways on the link, whose streams cross HTTP/1.1 reverse proxies.

use crate::error::Error;
use std::io::{self, Read, Write};

#[derive(Debug, Default)]
pub struct Dechunker {
    state: State,
    line: Vec<u8>,
}

#[derive(Debug, Default, PartialEq, Eq)]
enum State {
    /// Reading a chunk-size line.
    #[default]
    Size,
    /// `n` data bytes to go.
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    /// Trailer lines after the last (zero) chunk, until an empty line.
    Trailer,
    Done,
}

impl Dechunker {
    /// Appends the decoded data of `input` to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        let mut rest = input;
        while !rest.is_empty() {
            match self.state {
                State::Data(n) => {
                    // A chunk size larger than the address space is simply "all of rest".
                    let k = usize::try_from(n).unwrap_or(usize::MAX).min(rest.len());
                    let (data, after) = rest.split_at(k);
                    out.extend_from_slice(data);
                    rest = after;
                    // k <= n, so this cannot go below zero.
                    let left = n.saturating_sub(u64::try_from(k).unwrap_or(u64::MAX));
                    self.state = if left == 0 {
                        State::DataEnd
                    } else {
                        State::Data(left)
                    };
                }
                State::Done => return Ok(()),
                _ => {
                    let Some((&b, after)) = rest.split_first() else {
                        break;
                    };
                    rest = after;
                    if b != b'\n' {
                        if self.line.len() > 1024 {
                            return Err(Error::Malformed("chunked body: line too long".into()));
                        }
                        self.line.push(b);
                        continue;
                    }
                    let line = String::from_utf8_lossy(&self.line).trim().to_string();
                    self.line.clear();
                    self.state = match self.state {
                        State::Size => {
                            let hex = line.split(';').next().unwrap_or_default().trim();
                            match u64::from_str_radix(hex, 16) {
                                Ok(0) => State::Trailer,
                                Ok(n) => State::Data(n),
                                Err(_) => {
                                    return Err(Error::Malformed(format!(
                                        "chunked body: bad chunk size {line:?}"
                                    )))
                                }
                            }
                        }
                        State::DataEnd if line.is_empty() => State::Size,
                        State::DataEnd => {
                            return Err(Error::Malformed(
                                "chunked body: missing CRLF after data".into(),
                            ))
                        }
                        State::Trailer if line.is_empty() => State::Done,
                        State::Trailer => State::Trailer,
                        _ => unreachable!("data states handled above"),
                    };
                }
            }
        }
        Ok(())
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }
}

/// Whether a `Transfer-Encoding` header value says chunked.
pub fn is_chunked(transfer_encoding: Option<&str>) -> bool {
    transfer_encoding.is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
}

/// A reader of a chunked body: yields the data, then end of stream after the last chunk.
pub struct ChunkedReader<R> {
    inner: R,
    dechunker: Dechunker,
    decoded: Vec<u8>,
    at: usize,
    raw: Vec<u8>,
}

impl<R: Read> ChunkedReader<R> {
    pub fn new(inner: R) -> ChunkedReader<R> {
        ChunkedReader {
            inner,
            dechunker: Dechunker::default(),
            decoded: Vec::new(),
            at: 0,
            raw: vec![0; 8192],
        }
    }
}

impl<R: Read> Read for ChunkedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.decoded.len() {
            if self.dechunker.is_done() {
                return Ok(0);
            }
            self.decoded.clear();
            self.at = 0;
            let n = self.inner.read(&mut self.raw)?.min(self.raw.len());
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "chunked body: closed before its last chunk",
                ));
            }
            self.dechunker
                .feed(self.raw.get(..n).unwrap_or_default(), &mut self.decoded)
                .map_err(io::Error::from)?; // Malformed: InvalidData
        }
        let ready = self.decoded.get(self.at..).unwrap_or_default();
        let n = ready.len().min(buf.len());
        if let (Some(to), Some(from)) = (buf.get_mut(..n), ready.get(..n)) {
            to.copy_from_slice(from);
        }
        self.at = self.at.saturating_add(n);
        Ok(n)
    }
}

/// A writer that sends each write as one chunk of a chunked body.
pub struct ChunkedWriter<W>(pub W);

impl<W: Write> Write for ChunkedWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        // An empty chunk would end the body.
        if !data.is_empty() {
            let mut out = Vec::with_capacity(data.len().saturating_add(12));
            out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
            out.extend_from_slice(data);
            out.extend_from_slice(b"\r\n");
            self.0.write_all(&out)?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dechunking_takes_any_bytes_in_any_split() {
        crate::util::fuzz::run(
            "chunked::Dechunker",
            &[
                b"4\r\nWiki\r\n0\r\n\r\n",
                b"ffffffffffffffff\r\nab",
                b"10000000000000000\r\n",
                b"3;x=\xc3\xa9\r\nabc\r\n",
            ],
            256,
            |b| {
                let mut d = Dechunker::default();
                let mut out = Vec::new();
                for piece in b.chunks(7) {
                    if d.feed(piece, &mut out).is_err() {
                        break;
                    }
                }
                assert!(out.len() <= b.len(), "data never exceeds the input");
            },
        );
    }

    #[test]
    fn decodes_in_any_split() {
        let body = b"4\r\nWiki\r\n6;ext=1\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nX-Trailer: y\r\n\r\n";
        for size in [1, 2, 5, 100] {
            let mut d = Dechunker::default();
            let mut out = Vec::new();
            for piece in body.chunks(size) {
                d.feed(piece, &mut out).unwrap();
            }
            assert_eq!(out, b"Wikipedia in \r\n\r\nchunks.", "split {size}");
            assert!(d.is_done());
        }
    }

    #[test]
    fn reader_and_writer_round_trip() {
        let mut w = ChunkedWriter(Vec::new());
        for piece in [&b"one "[..], b"", b"two three"] {
            w.write_all(piece).unwrap();
        }
        let mut wire = w.0;
        wire.extend_from_slice(b"0\r\n\r\ntrailing bytes are not the body");
        let mut out = String::new();
        ChunkedReader::new(&wire[..])
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "one two three");
        let cut = &wire[..10];
        let e = ChunkedReader::new(cut).read_to_end(&mut Vec::new());
        assert_eq!(e.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn rejects_garbage() {
        assert!(Dechunker::default()
            .feed(b"zz\r\n", &mut Vec::new())
            .is_err());
        assert!(Dechunker::default()
            .feed(b"2\r\nabXY\r\n", &mut Vec::new())
            .is_err());
    }
}
