//! Wall-clock times as Icecast's status pages print them (UTC), without a date crate.

use std::time::{SystemTime, UNIX_EPOCH};

/// (year, month, day, hour, minute, second, weekday 0 = Sunday) in UTC.
fn civil(t: SystemTime) -> (i64, u32, u32, u32, u32, u32, u32) {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + (m <= 2) as i64;
    let wd = (days + 4).rem_euclid(7) as u32;
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        (rem % 60) as u32,
        wd,
    )
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's days_from_civil); `None` for a
/// month or day out of range.
pub fn days_from_civil(y: i64, m: i64, d: i64) -> Option<i64> {
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || !(0..=9999).contains(&y) {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// `2026-11-22T16:52:45+0000`
pub fn iso8601(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s, _) = civil(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}+0000")
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `02/Dec/2026:18:00:00 +0000`, the access logs' time (Apache's and Icecast's).
pub fn clf(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s, _) = civil(t);
    let month = MONTHS
        .get((mo as usize).saturating_sub(1))
        .unwrap_or(&"Jan");
    format!("{d:02}/{month}/{y:04}:{h:02}:{mi:02}:{s:02} +0000")
}

/// `Sun, 22 Nov 2026 16:52:45 +0000`
pub fn rfc2822(t: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    let (y, mo, d, h, mi, s, wd) = civil(t);
    format!(
        "{}, {d:02} {} {y} {h:02}:{mi:02}:{s:02} +0000",
        DAYS[wd as usize],
        MONTHS[mo as usize - 1]
    )
}

/// `Sun, 22 Nov 2026 16:52:45 GMT` (HTTP's date: `Last-Modified`).
pub fn http_date(t: SystemTime) -> String {
    rfc2822(t).replace("+0000", "GMT")
}

/// `2026-11-22T16:52:45.250Z` (RFC 3339 with milliseconds: HLS's program date-time).
pub fn rfc3339_ms(t: SystemTime) -> String {
    let ms = t
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_millis());
    let base = iso8601(t);
    format!("{}.{ms:03}Z", base.trim_end_matches("+0000"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn known_dates() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_366_365); // 2026-11-22 16:52:45 UTC
        assert_eq!(iso8601(t), "2026-11-22T16:52:45+0000");
        assert_eq!(rfc2822(t), "Sun, 22 Nov 2026 16:52:45 +0000");
        assert_eq!(iso8601(UNIX_EPOCH), "1970-01-01T00:00:00+0000");
        assert_eq!(http_date(t), "Sun, 22 Nov 2026 16:52:45 GMT");
        let ms = t + Duration::from_millis(250);
        assert_eq!(rfc3339_ms(ms), "2026-11-22T16:52:45.250Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(&iso8601(leap)[..10], "2000-02-29");
    }
}

/// A span as people write it: "0.4 s", "12.3 s", "4 min 5 s", "1 h 12 min", "3 d 4 h".
pub fn span(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{:.1} s", d.as_secs_f64()),
        60..=3599 => format!("{} min {} s", s / 60, s % 60),
        3600..=86_399 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

#[cfg(test)]
mod span_tests {
    use super::span;
    use std::time::Duration;

    #[test]
    fn spans_read_as_people_write_them() {
        assert_eq!(span(Duration::from_millis(400)), "0.4 s");
        assert_eq!(span(Duration::from_millis(12_340)), "12.3 s");
        assert_eq!(span(Duration::from_secs(245)), "4 min 5 s");
        assert_eq!(span(Duration::from_secs(4320)), "1 h 12 min");
        assert_eq!(
            span(Duration::from_secs(3 * 86_400 + 4 * 3600 + 9)),
            "3 d 4 h"
        );
        assert!(span(Duration::MAX).starts_with("213503982334601 d"));
    }
}
