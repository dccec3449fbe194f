//! `-trusted-proxies`: which TCP peers may name the client they forward for, and how the
//! client is read from their headers. Only a connection from a trusted address is asked;
//! anyone else's `X-Forwarded-For` is ignored, so a client cannot choose its own address.
//!
//! `X-Forwarded-For` (every line, in order) is read from its right end: each proxy appends
//! the address it got the request from, so the entries a client could have forged are on
//! the left. The client is the rightmost entry that is not itself a trusted proxy. Without
//! it, `Forwarded: for=` (RFC 7239) is read the same way. An entry that is not an address
//! (`unknown`, `_hidden`, garbage) stops the walk: the client is then the last trusted hop
//! that named it, never a guess.
//!
//! A boundary parser (header bytes from outside): no slicing, no panics; property-tested.

use crate::error::Error;
use std::net::{IpAddr, SocketAddr};

/// An address block: `10.0.0.0/8`, `2001:db8::/32`, or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    bits: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Result<Cidr, Error> {
        let text = text.trim();
        let (addr, bits) = match text.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (text, None),
        };
        let net: IpAddr = addr
            .parse()
            .map_err(|_| format!("{text:?} is not an address or address/bits"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            None => max,
            Some(b) => b
                .parse::<u8>()
                .ok()
                .filter(|b| *b <= max)
                .ok_or_else(|| format!("{text:?}: prefix length must be 0 to {max}"))?,
        };
        Ok(Cidr { net, bits })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), self.bits),
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), self.bits),
            _ => false,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.net, self.bits)
    }
}

/// IPv4-mapped IPv6 as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Whether the first `bits` bits of `a` and `b` agree.
fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let mut left = u32::from(bits);
    for (x, y) in a.iter().zip(b) {
        if left == 0 {
            return true;
        }
        let take = left.min(8);
        let mask = !0xFFu8.checked_shr(take).unwrap_or(0);
        if (x ^ y) & mask != 0 {
            return false;
        }
        left = left.saturating_sub(take);
    }
    true
}

/// `-trusted-proxies`: comma-separated blocks.
pub fn parse_list(text: &str) -> Result<Vec<Cidr>, Error> {
    text.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(Cidr::parse)
        .collect()
}

/// The client a request is for: `peer` itself unless `peer` is trusted and its headers
/// name another (see the module's doc). `headers` are the request's, in order.
pub fn client(peer: SocketAddr, headers: &[(String, String)], trusted: &[Cidr]) -> SocketAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if trusted.is_empty() || !is_trusted(peer.ip()) {
        return peer;
    }
    let named = |name: &str| {
        headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect::<Vec<&str>>()
    };
    let xff = named("X-Forwarded-For");
    let entries: Vec<Option<SocketAddr>> = if !xff.is_empty() {
        xff.iter()
            .flat_map(|v| v.split(','))
            .map(|e| node(e.trim()))
            .collect()
    } else {
        named("Forwarded")
            .iter()
            .flat_map(|v| v.split(','))
            .filter_map(forwarded_for)
            .collect()
    };
    let mut client = peer;
    for entry in entries.iter().rev() {
        match entry {
            Some(a) if is_trusted(a.ip()) => client = *a,
            Some(a) => return *a,
            None => return client,
        }
    }
    client
}

/// The `for=` of one `Forwarded` element, as a node (`None`: not an address); elements
/// without `for=` are skipped.
fn forwarded_for(element: &str) -> Option<Option<SocketAddr>> {
    element.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("for")
            .then(|| node(v.trim().trim_matches('"')))
    })
}

/// One node: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`, `[2001:db8::1]:4711`. The port,
/// when there is none, is 0.
fn node(text: &str) -> Option<SocketAddr> {
    if let Ok(a) = text.parse::<SocketAddr>() {
        return Some(SocketAddr::new(canonical(a.ip()), a.port()));
    }
    let bare = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    bare.parse::<IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(canonical(ip), 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn blocks_match_by_prefix() {
        let c = Cidr::parse("10.9.0.0/16").unwrap();
        assert!(c.contains("10.9.200.1".parse().unwrap()));
        assert!(!c.contains("10.10.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.9.0.1".parse().unwrap()));
        let one = Cidr::parse("127.0.5.1").unwrap();
        assert!(one.contains("127.0.5.1".parse().unwrap()));
        assert!(!one.contains("127.0.5.2".parse().unwrap()));
        let v6 = Cidr::parse("2001:db8::/33").unwrap();
        assert!(v6.contains("2001:db8:7fff::1".parse().unwrap()));
        assert!(!v6.contains("2001:db8:8000::1".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        for bad in ["10.0.0.0/33", "x", "10.0.0.0/", "::/129"] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_list("127.0.0.1, ::1/128,").unwrap().len(), 2);
    }

    #[test]
    fn the_client_is_the_rightmost_untrusted_entry_of_a_trusted_peer() {
        let trusted = parse_list("127.0.5.1,10.9.0.0/16").unwrap();
        let proxy: SocketAddr = "127.0.5.1:5000".parse().unwrap();
        let other: SocketAddr = "127.0.5.2:5000".parse().unwrap();
        let ip = |a: SocketAddr| a.ip().to_string();
        let xff = h(&[("X-Forwarded-For", "6.6.6.6, 198.51.100.7, 10.9.1.1")]);
        assert_eq!(ip(client(proxy, &xff, &trusted)), "198.51.100.7");
        assert_eq!(client(other, &xff, &trusted), other, "untrusted senders");
        assert_eq!(client(proxy, &xff, &[]), proxy);
        let two_lines = h(&[
            ("X-Forwarded-For", "198.51.100.9"),
            ("x-forwarded-for", "10.9.0.3"),
        ]);
        assert_eq!(ip(client(proxy, &two_lines, &trusted)), "198.51.100.9");
        let fwd = h(&[(
            "Forwarded",
            "for=\"[2001:db8::1]:4711\";proto=https, for=10.9.0.1",
        )]);
        assert_eq!(ip(client(proxy, &fwd, &trusted)), "2001:db8::1");
        let hidden = h(&[("X-Forwarded-For", "198.51.100.7, unknown, 10.9.0.2")]);
        assert_eq!(ip(client(proxy, &hidden, &trusted)), "10.9.0.2");
        assert_eq!(client(proxy, &h(&[]), &trusted), proxy);
    }

    #[test]
    fn forwarded_headers_parse_or_are_ignored_on_any_bytes() {
        let trusted = parse_list("127.0.0.1").unwrap();
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        crate::util::fuzz::run(
            "forwarded::client",
            &[b"1.2.3.4, [::1]:80", b"for=\"[::1]\";by=x, for=_h"],
            512,
            |b| {
                let v = String::from_utf8_lossy(b).into_owned();
                let _ = client(peer, &h(&[("X-Forwarded-For", &v)]), &trusted);
                let _ = client(peer, &h(&[("Forwarded", &v)]), &trusted);
                let _ = Cidr::parse(&v);
            },
        );
    }
}
