//! `-listener-users`: the file of who may listen to a private stream. One `name:hash` a
//! line (`#` comments and blank lines allowed), the hash from `ringcast -hash-password`.
//! Here, where the configuration is checked, so that a bad file stops the start; the
//! server (`server/users.rs`) keeps what it reads and checks logins against it.

use crate::error::Error;
use crate::util::password::Hash;
use std::collections::HashMap;

/// The most lines a users file may have: the file is read whole, on every reload.
const MAX_USERS: usize = 100_000;

/// A users file, read and checked.
pub struct UsersFile {
    pub path: String,
    pub hashes: HashMap<String, Hash>,
    /// A hash with the file's own cost, checked for a name not in the file.
    pub decoy: Hash,
}

impl UsersFile {
    /// Reads and checks the file; the error names the file and line.
    pub fn load(path: &str) -> Result<UsersFile, Error> {
        let bytes = std::fs::read(path).map_err(|e| format!("-listener-users {path}: {e}"))?;
        let hashes = parse(&bytes).map_err(|e| format!("-listener-users {path}: {e}"))?;
        let rounds = hashes.values().map(Hash::iterations).max();
        let decoy = Hash::decoy(rounds).map_err(|e| format!("-listener-users {path}: {e}"))?;
        Ok(UsersFile {
            path: path.to_string(),
            hashes,
            decoy,
        })
    }
}

/// The `name:hash` lines of a users file.
fn parse(bytes: &[u8]) -> Result<HashMap<String, Hash>, Error> {
    let mut out = HashMap::new();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let n = i.saturating_add(1);
        let line = std::str::from_utf8(line).map_err(|_| format!("line {n}: not UTF-8"))?;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, hash) = line
            .split_once(':')
            .ok_or_else(|| format!("line {n}: not name:hash"))?;
        let name = name.trim();
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(format!("line {n}: a name must be non-empty, without spaces").into());
        }
        let hash = Hash::parse(hash)
            .map_err(|e| format!("line {n}: {e} (make one with: ringcast -hash-password)"))?;
        if out.insert(name.to_string(), hash).is_some() {
            return Err(format!("line {n}: {name:?} is listed twice").into());
        }
        if out.len() > MAX_USERS {
            return Err(format!("more than {MAX_USERS} users").into());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::fuzz;

    #[test]
    fn bad_files_name_the_line() {
        let h = Hash::new("x").unwrap();
        for (text, why) in [
            ("anna\n".to_string(), "line 1: not name:hash"),
            (format!("\n:{h}\n"), "line 2: a name"),
            (format!("a b:{h}\n"), "line 1: a name"),
            ("anna:plain\n".to_string(), "line 1: not pbkdf2"),
            (format!("a:{h}\na:{h}\n"), "line 2: \"a\" is listed twice"),
        ] {
            let e = parse(text.as_bytes()).unwrap_err().to_string();
            assert!(e.contains(why), "{text:?}: {e}");
        }
        assert!(parse(b"a:x\xff\n")
            .unwrap_err()
            .to_string()
            .contains("not UTF-8"));
    }

    #[test]
    fn users_files_parse_or_fail_cleanly_on_any_bytes() {
        let seeds: &[&[u8]] = &[
            b"anna:pbkdf2-sha256$1000$00$abababababababababababababababababababababababababababababababab\n",
            b"# c\n\n:\n",
        ];
        fuzz::run("users::parse", seeds, 512, |b| {
            let _ = parse(b);
        });
    }
}
