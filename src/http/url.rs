//! The few URL forms ringcast takes: `http://[user:pass@]host[:port]/path` for `-url`,
//! `icecast://user:pass@host:port/mount` for `-icecast`, `http(s)://host[:port][/base]` for the
//! link. IPv6 hosts in brackets. The
//! user-info is percent-decoded.
use crate::error::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub scheme: String,
    pub user: Option<String>,
    pub password: Option<String>,
    pub host: String,
    pub port: u16,
    /// Path and query, always starting with `/`.
    pub path: String,
}

impl Url {
    pub fn parse(s: &str, default_port: u16) -> Result<Url, Error> {
        let bad = |why: &str| Error::from(format!("{s:?} is not a valid URL: {why}"));
        let (scheme, rest) = s.split_once("://").ok_or_else(|| bad("no scheme://"))?;
        let (authority, path) = match rest.find('/').and_then(|i| rest.split_at_checked(i)) {
            Some(parts) => parts,
            None => (rest, "/"),
        };
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| bad("unclosed ["))?;
            (h.to_string(), after.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (hostport.to_string(), None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = match port {
            Some(p) => p.parse().map_err(|_| bad("bad port"))?,
            None if scheme.eq_ignore_ascii_case("https") => 443,
            None => default_port,
        };
        let (user, password) = match userinfo {
            Some(u) => match u.split_once(':') {
                Some((a, b)) => (Some(percent_decode(a)), Some(percent_decode(b))),
                None => (Some(percent_decode(u)), None),
            },
            None => (None, None),
        };
        Ok(Url {
            scheme: scheme.to_ascii_lowercase(),
            user,
            password,
            host,
            port,
            path: path.to_string(),
        })
    }

    /// `host:port` for connecting (brackets for IPv6).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The URL without credentials, for logs.
    pub fn redacted(&self) -> String {
        format!("{}://{}{}", self.scheme, self.authority(), self.path)
    }
}

/// Decodes `%XX` escapes and `+` (as space, when `plus` is set); invalid UTF-8 is replaced.
pub fn decode_component(s: &str, plus: bool) -> String {
    String::from_utf8_lossy(&decode_bytes(s, plus)).into_owned()
}

/// Decodes `%XX` escapes and `+` (as space, when `plus` is set) to raw bytes. Works on
/// bytes: `%` followed by anything but two hex digits (a multi-byte character included) is
/// kept as it is.
pub fn decode_bytes(s: &str, plus: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut rest = s.as_bytes();
    while let Some((&c, tail)) = rest.split_first() {
        rest = tail;
        match c {
            b'%' => match tail {
                [h, l, after @ ..] if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {
                    out.push(hex_value(*h) << 4 | hex_value(*l));
                    rest = after;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus => out.push(b' '),
            c => out.push(c),
        }
    }
    out
}

/// The value of one ASCII hex digit (0 for anything else; callers check first).
fn hex_value(d: u8) -> u8 {
    char::from(d)
        .to_digit(16)
        .and_then(|v| u8::try_from(v).ok())
        .unwrap_or(0)
}

fn percent_decode(s: &str) -> String {
    decode_component(s, false)
}

/// Encodes a query value: unreserved characters stay, everything else becomes `%XX`.
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len().saturating_mul(3));
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The value of `key` in a path's query, as raw bytes (percent- and `+`-decoded, as forms
/// are): `None` when the query has no such key.
pub fn query_param(path: &str, key: &str) -> Option<Vec<u8>> {
    let (_, query) = path.split_once('?')?;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (decode_bytes(k, true) == key.as_bytes()).then(|| decode_bytes(v, true))
    })
}

/// A path fit for the log: the value of every `pass=` (a listener's or SHOUTcast's password
/// in the query) replaced by `***`.
pub fn redacted(path: &str) -> String {
    let Some((base, query)) = path.split_once('?') else {
        return path.to_string();
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if decode_bytes(k, true) == b"pass" => format!("{k}=***"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{base}?{}", pairs.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_kept_out_of_logged_paths() {
        assert_eq!(
            redacted("/live?user=a&pass=s3cret&x=1"),
            "/live?user=a&pass=***&x=1"
        );
        assert_eq!(redacted("/live?p%61ss=s3cret"), "/live?p%61ss=***");
        assert_eq!(redacted("/live"), "/live");
    }

    #[test]
    fn parses_the_forms_we_take() {
        let u = Url::parse("icecast://source:p%40ss@127.0.0.1:8000/live", 8000).unwrap();
        assert_eq!(u.user.as_deref(), Some("source"));
        assert_eq!(u.password.as_deref(), Some("p@ss"));
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("127.0.0.1", 8000, "/live")
        );
        let u = Url::parse("http://[::1]:9000/a?b=c", 80).unwrap();
        assert_eq!(
            (u.authority(), u.path.as_str()),
            ("[::1]:9000".to_string(), "/a?b=c")
        );
        let u = Url::parse("https://relay.example/radio", 80).unwrap();
        assert_eq!((u.port, u.path.as_str()), (443, "/radio"));
        let u = Url::parse("http://radio.example", 80).unwrap();
        assert_eq!((u.port, u.path.as_str()), (80, "/"));
        assert_eq!(u.redacted(), "http://radio.example:80/");
        assert!(Url::parse("radio.example/x", 80).is_err());
        assert!(Url::parse("http://host:99999/", 80).is_err());
    }

    #[test]
    fn decoding_takes_any_bytes() {
        // The request that aborted ringcast: '%' then a multi-byte character.
        assert_eq!(decode_component("%1é", false), "%1é");
        assert_eq!(decode_bytes("%é%", true), "%é%".as_bytes());
        crate::util::fuzz::run(
            "url::decode",
            &[b"a=%1\xc3\xa9", b"%%%41+%4", b"http://u:p%zz@[::1:80/x"],
            256,
            |b| {
                let s = String::from_utf8_lossy(b);
                let decoded = decode_bytes(&s, true);
                assert!(decoded.len() <= s.len());
                let _ = query_param(&s, "mount");
                if let Ok(u) = Url::parse(&s, 80) {
                    assert!(u.path.starts_with('/'));
                    let _ = (u.authority(), u.redacted());
                }
                // Encoding then decoding gives back the text.
                assert_eq!(decode_component(&encode_component(&s), false), s);
            },
        );
    }

    #[test]
    fn query_decoding_and_encoding() {
        let path = "/admin/metadata?mount=%2Flive&mode=updinfo&song=Caf%C3%A9+del+Mar&x";
        assert_eq!(query_param(path, "mount").as_deref(), Some(&b"/live"[..]));
        assert_eq!(
            query_param(path, "song"),
            Some("Café del Mar".as_bytes().to_vec())
        );
        assert_eq!(query_param(path, "x").as_deref(), Some(&b""[..]));
        assert_eq!(query_param(path, "y"), None);
        assert_eq!(query_param("/no-query", "x"), None);
        assert_eq!(encode_component("Café & co"), "Caf%C3%A9%20%26%20co");
        assert_eq!(decode_component(&encode_component("a/b'c"), false), "a/b'c");
        assert_eq!(decode_component("100%", true), "100%");
    }
}
