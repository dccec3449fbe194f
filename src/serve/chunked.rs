//! Decoding a `Transfer-Encoding: chunked` request body (some source clients send one), fed
//! in pieces of any size.

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
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        let mut rest = input;
        while !rest.is_empty() {
            match self.state {
                State::Data(n) => {
                    let k = (n as usize).min(rest.len());
                    out.extend_from_slice(&rest[..k]);
                    rest = &rest[k..];
                    self.state = if n as usize == k {
                        State::DataEnd
                    } else {
                        State::Data(n - k as u64)
                    };
                }
                State::Done => return Ok(()),
                _ => {
                    let b = rest[0];
                    rest = &rest[1..];
                    if b != b'\n' {
                        if self.line.len() > 1024 {
                            return Err("chunked body: line too long".into());
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
                                    return Err(format!("chunked body: bad chunk size {line:?}"))
                                }
                            }
                        }
                        State::DataEnd if line.is_empty() => State::Size,
                        State::DataEnd => {
                            return Err("chunked body: missing CRLF after data".into())
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn rejects_garbage() {
        assert!(Dechunker::default()
            .feed(b"zz\r\n", &mut Vec::new())
            .is_err());
        assert!(Dechunker::default()
            .feed(b"2\r\nabXY\r\n", &mut Vec::new())
            .is_err());
    }
}
