//! The one reader of `/metrics`: a sample missing is a failed test, never a zero (a renamed
//! metric must not turn an assertion such as `<= 64` into one that always holds).

use super::*;

/// The `/metrics` page of the server at `addr`.
pub fn metrics_text(addr: SocketAddr) -> String {
    let mut m = Listener::get(addr, "/metrics", 1);
    m.read_to_eof(Duration::from_secs(10));
    String::from_utf8_lossy(&m.body).into_owned()
}

/// The value of the first sample named `name` in a `/metrics` page: `name` alone matches any
/// labels (`ringcast_listeners` matches `ringcast_listeners{mount="/live"}`), `name{…}` only
/// those labels. Panics, showing the page, when there is none.
pub fn metric_in(text: &str, name: &str) -> u64 {
    let series = |line: &str| {
        line.strip_prefix(name).is_some_and(|rest| {
            rest.starts_with(' ') || !name.contains('{') && rest.starts_with('{')
        })
    };
    text.lines()
        .find(|l| series(l))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no metric {name} in:\n{text}"))
}

/// [`metric_in`] the server's `/metrics` now.
pub fn metric(addr: SocketAddr, name: &str) -> u64 {
    metric_in(&metrics_text(addr), name)
}
