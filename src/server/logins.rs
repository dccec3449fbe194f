//! The logins the HTTP front shares between its admin calls (`admin.rs`) and its source
//! clients (`source_client.rs`): a stream's source login, and how a login that did not
//! pass is answered (401 or 429). Apart from both so that neither names the other.

use super::peers::Login;
use crate::config::StreamConfig;
use crate::http::auth;
use crate::http::conn::Conn;
use crate::http::server as http;
use log::debug;
use std::net::SocketAddr;

/// Whether user/password are the source login.
pub fn source_login(cfg: &StreamConfig, user: &str, password: &str) -> bool {
    let Some(expected) = &cfg.source_password else {
        return false;
    };
    auth::same_secret(user, &cfg.source_user) && auth::same_secret(password, expected)
}

/// Answers a login that did not pass: 401 with a Basic challenge for `realm`, or 429 with
/// `Retry-After` for a locked-out address. True when it passed.
pub fn answer_login(
    conn: &mut Conn,
    peer: SocketAddr,
    minor: u8,
    login: Login,
    realm: &str,
) -> bool {
    match login {
        Login::Ok => true,
        Login::Wrong => {
            debug!("{peer}: wrong or missing credentials ({realm})");
            let challenge = format!("Basic realm=\"{realm}\"");
            http::respond(
                conn,
                minor,
                401,
                "authentication required",
                &[("WWW-Authenticate", &challenge)],
            );
            false
        }
        Login::Locked(left) => {
            let retry = left.as_secs().max(1).to_string();
            http::respond(
                conn,
                minor,
                429,
                "too many failed logins from this address: try again later",
                &[("Retry-After", &retry)],
            );
            false
        }
    }
}
