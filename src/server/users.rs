//! `-listener-users`: who may listen to a private stream. The file (its lines and checks:
//! `config/users.rs`) is read at start-up (a bad file stops the start) and on `SIGHUP` (a
//! bad file is logged and the old list kept).
//!
//! A hash takes a tenth of a second or more to check on a Pi (`util/password.rs`), and
//! players reconnect often, so a good login is remembered: the next login with the same
//! password is checked against a fast digest kept in memory. A reload forgets them all.

use super::peers::Login;
use super::Server;
use crate::config::users::UsersFile;
use crate::error::Error;
use crate::http::conn::Conn;
use crate::http::server::{self as http, Request};
use crate::http::url::query_param;
use crate::util::password::Hash;
use log::debug;
use parking_lot::Mutex;
use ring::digest;
use std::collections::HashMap;

/// The listeners' logins.
pub struct Users {
    path: String,
    hashes: HashMap<String, Hash>,
    /// Checked instead for a name not in the file, with the file's own cost: a login takes
    /// as long whether or not its name exists, so names do not leak through timing.
    decoy: Hash,
    /// Per name, a digest of the last password that passed.
    remembered: Mutex<HashMap<String, digest::Digest>>,
}

impl Users {
    /// Reads and checks the file; the error names the file and line.
    pub fn load(path: &str) -> Result<Users, Error> {
        let UsersFile {
            path,
            hashes,
            decoy,
        } = UsersFile::load(path)?;
        Ok(Users {
            path,
            hashes,
            decoy,
            remembered: Mutex::new(HashMap::new()),
        })
    }

    /// The file again (for a reload).
    pub fn reload(&self) -> Result<Users, Error> {
        Users::load(&self.path)
    }

    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// Whether `name` is in the file (a segment token's user must still be).
    pub fn has(&self, name: &str) -> bool {
        self.hashes.contains_key(name)
    }

    /// Whether `name`'s last good login was with `password` (a fast digest compare): such
    /// a login needs no slow check and no place in the address's budget, so a reconnect
    /// storm of players that logged in before is let in at once.
    pub fn remembered(&self, name: &str, password: &str) -> bool {
        let quick = remember_digest(name, password);
        self.remembered.lock().get(name).is_some_and(|known| {
            crate::http::auth::same_secret_bytes(known.as_ref(), quick.as_ref())
        })
    }

    /// Whether `name` may listen with `password`. The slow check runs for any name (the
    /// decoy for one not in the file), without the lock: other logins go on meanwhile.
    pub fn check(&self, name: &str, password: &str) -> bool {
        if self.remembered(name, password) {
            return true;
        }
        let (hash, known) = match self.hashes.get(name) {
            Some(h) => (h, true),
            None => (&self.decoy, false),
        };
        if !hash.verify(password.as_bytes()) || !known {
            return false;
        }
        let quick = remember_digest(name, password);
        self.remembered.lock().insert(name.to_string(), quick);
        true
    }
}

/// The realm players and browsers show when they ask for the login.
const REALM: &str = "Basic realm=\"ringcast listeners\", charset=\"UTF-8\"";

/// Lets a listener in, or answers for it: `Ok(None)` without `-listener-users`,
/// `Ok(Some(name))` for a good login, `Err(())` when refused here (401, or 429 for an
/// address with too many failed logins). The login comes as HTTP Basic (players take
/// `https://name:pass@host/`), or as `?user=NAME&pass=PASSWORD` for web players that cannot
/// set headers (README, Private streams).
pub fn admit(
    conn: &mut Conn,
    peer: std::net::SocketAddr,
    req: &Request,
    server: &Server,
    cors: &[(&str, &str)],
) -> Result<Option<String>, ()> {
    let Some(users) = server.users() else {
        return Ok(None);
    };
    let given = credentials(req);
    if let Some((u, p)) = &given {
        if users.remembered(u, p) {
            return Ok(Some(u.clone()));
        }
    }
    let login = server.peers.login(peer.ip(), "listener login", None, || {
        given.as_ref().map(|(u, p)| users.check(u, p))
    });
    let mut extra: Vec<(&str, &str)> = cors.to_vec();
    match login {
        Login::Ok => return Ok(given.map(|(u, _)| u)),
        Login::Wrong => {
            debug!("{peer}: listener login wrong or missing");
            extra.push(("WWW-Authenticate", REALM));
            http::respond(conn, req.minor, 401, "login required", &extra);
        }
        Login::Locked(left) => {
            let retry = left.as_secs().max(1).to_string();
            extra.push(("Retry-After", &retry));
            http::respond(conn, req.minor, 429, "too many failed logins", &extra);
        }
    }
    Err(())
}

/// The (name, password) a request carries.
fn credentials(req: &Request) -> Option<(String, String)> {
    if let Some(basic) = req
        .header("Authorization")
        .and_then(crate::http::auth::parse_basic)
    {
        return Some(basic);
    }
    let text = |k| query_param(&req.path, k).map(|v| String::from_utf8_lossy(&v).into_owned());
    Some((text("user")?, text("pass")?))
}

/// A fast digest of a login that passed; it never leaves memory.
fn remember_digest(name: &str, password: &str) -> digest::Digest {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(name.as_bytes());
    ctx.update(&[0]);
    ctx.update(password.as_bytes());
    ctx.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_pass_with_the_right_password_only_and_are_remembered() {
        let dir = std::env::temp_dir().join(format!("ringcast-users-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("users");
        let h = Hash::new("pw1").unwrap();
        std::fs::write(&path, format!("# studio\n\nanna:{h}\n")).unwrap();
        let users = Users::load(path.to_str().unwrap()).unwrap();
        assert_eq!(users.len(), 1);
        assert!(!users.check("anna", "pw2"));
        assert!(!users.check("bob", "pw1"));
        assert!(users.check("anna", "pw1"));
        assert!(users.remembered.lock().contains_key("anna"));
        assert!(users.check("anna", "pw1"));
        assert!(
            !users.check("anna", "pw2"),
            "a remembered login does not open other passwords"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
