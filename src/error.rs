//! The one error type of what can fail before and outside the byte paths: flags, flags files
//! and configuration, certificates and keys, logins, ports, the start of a stream's threads.
//! (The byte paths themselves speak `io::Error`, which the sockets and files give them.)
//!
//! ureq's shape: an enum whose variants say whose the problem is, a hand-written `Display`
//! that is the whole message a user reads (`ringcast: …` on stderr, or a log line), and `From`
//! for what a `?` meets. An `Io` error says what was being done (`Error::io`).

use std::fmt;
use std::io;

#[derive(Debug)]
pub enum Error {
    /// What the user gave (a flag, a flags file, a setting, a file it names) cannot be used:
    /// the message says which and why.
    Config(String),
    /// The system refused what was being done (`doing`): a socket, a file, a signal mask.
    Io { doing: String, err: io::Error },
    /// Bytes from outside are not what their protocol says (a chunked body's framing).
    Malformed(String),
}

impl Error {
    /// The system refused `doing`.
    pub fn io(doing: impl Into<String>, err: io::Error) -> Error {
        Error::Io {
            doing: doing.into(),
            err,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(m) | Error::Malformed(m) => f.write_str(m),
            Error::Io { doing, err } => write!(f, "{doing}: {err}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { err, .. } => Some(err),
            _ => None,
        }
    }
}

/// A message built where the problem was found is the user's to fix.
impl From<String> for Error {
    fn from(m: String) -> Error {
        Error::Config(m)
    }
}

impl From<&str> for Error {
    fn from(m: &str) -> Error {
        Error::Config(m.to_string())
    }
}

/// Turned back into what the byte paths speak (a malformed chunked body is `InvalidData`).
impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        match e {
            Error::Io { err, .. } => err,
            Error::Malformed(m) => io::Error::new(io::ErrorKind::InvalidData, m),
            Error::Config(m) => io::Error::other(m),
        }
    }
}

/// Unit tests compare results whole (`assert_eq!(parse_int("64"), Ok(64))`): two errors are
/// the same when they say the same.
#[cfg(test)]
impl PartialEq for Error {
    fn eq(&self, other: &Error) -> bool {
        self.to_string() == other.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_is_the_whole_text_and_what_was_being_done_goes_first() {
        let e = Error::from("-uid radio: no such user".to_string());
        assert_eq!(e.to_string(), "-uid radio: no such user");
        let e = Error::io(
            "reading /etc/x.conf",
            io::Error::from(io::ErrorKind::NotFound),
        );
        assert!(e.to_string().starts_with("reading /etc/x.conf: "), "{e}");
        let back: io::Error = Error::Malformed("bad chunk size".into()).into();
        assert_eq!(back.kind(), io::ErrorKind::InvalidData);
    }
}
