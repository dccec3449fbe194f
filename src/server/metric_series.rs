//! The series of `/metrics`: each stream's and each link path's name, type, help and how to
//! read its value. Tables apart from their rendering (`metrics.rs`): they grow with every
//! counter, and reading what is reported should not mean reading how.

use super::leaves::Leaves;
use crate::link::paths::PathStats;
use crate::link::LinkStats;
use crate::stream::Stream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

/// A stream's value of a series; `None` where it does not apply (no link, no output).
pub(super) type Value = fn(&Stream, &Leaves) -> Option<u64>;

fn load(c: &AtomicU64) -> Option<u64> {
    Some(c.load(Relaxed))
}

fn flag(b: &AtomicBool) -> Option<u64> {
    Some(u64::from(b.load(Relaxed)))
}

fn link(l: &Leaves, f: fn(&LinkStats) -> u64) -> Option<u64> {
    l.link.as_ref().map(|l| f(&l.stats))
}

/// Each stream's series: name, type, help, value.
pub(super) const STREAM: &[(&str, &str, &str, Value)] = &[
    ("listeners", "gauge", "Listeners connected now.", |s, _| {
        Some(s.listeners() as u64)
    }),
    (
        "listener_peak",
        "gauge",
        "Most listeners at once since start.",
        |s, _| Some(s.listener_peak.load(Relaxed) as u64),
    ),
    (
        "listeners_total",
        "counter",
        "Listeners served since start.",
        |s, _| load(&s.stats.listeners_total),
    ),
    (
        "bytes_in_total",
        "counter",
        "Bytes read from the source.",
        |s, _| load(&s.stats.bytes_in),
    ),
    (
        "bytes_out_total",
        "counter",
        "Bytes sent to listeners.",
        |s, _| load(&s.stats.bytes_out),
    ),
    (
        "frames_in_total",
        "counter",
        "Frames put in the ring.",
        |s, _| load(&s.stats.frames_in),
    ),
    (
        "frames_skipped_total",
        "counter",
        "Frames slow listeners skipped.",
        |s, _| load(&s.stats.frames_skipped),
    ),
    (
        "junk_bytes_total",
        "counter",
        "Source bytes that were not frames.",
        |s, _| load(&s.stats.junk_bytes),
    ),
    (
        "source_opens_total",
        "counter",
        "Source opens (the first one and every reconnect).",
        |s, _| load(&s.stats.source_opens),
    ),
    (
        "source_failures_total",
        "counter",
        "Source opens or reads that failed.",
        |s, _| load(&s.stats.source_failures),
    ),
    (
        "source_up",
        "gauge",
        "1 while a source is on air (open, or a source client connected).",
        |s, _| Some(u64::from(s.on_air())),
    ),
    (
        "hls_listeners",
        "gauge",
        "HLS clients (an address and user agent) seen within two segment durations.",
        |s, _| s.hls.as_ref().map(|h| h.listeners() as u64),
    ),
    (
        "hls_playlist_requests_total",
        "counter",
        "HLS playlist requests answered.",
        |s, _| {
            s.hls.as_ref().map(|h| {
                h.playlist_requests
                    .load(std::sync::atomic::Ordering::Relaxed)
            })
        },
    ),
    (
        "hls_segment_requests_total",
        "counter",
        "HLS segment requests answered.",
        |s, _| {
            s.hls.as_ref().map(|h| {
                h.segment_requests
                    .load(std::sync::atomic::Ordering::Relaxed)
            })
        },
    ),
    (
        "muted",
        "gauge",
        "1 while muted (/admin/mute): listeners hear silence.",
        |s, _| Some(u64::from(s.is_muted())),
    ),
    (
        "source_client_connected",
        "gauge",
        "1 while a source client pushes to us.",
        |s, _| Some(u64::from(s.source_client.connected())),
    ),
    (
        "listeners_refused_total",
        "counter",
        "Listeners refused over -max-clients.",
        |s, _| load(&s.stats.listeners_refused),
    ),
    (
        "icecast_output_up",
        "gauge",
        "1 while connected to the -icecast server.",
        |_, l| l.icecast.as_ref().and_then(|o| flag(&o.up)),
    ),
    (
        "icecast_output_connects_total",
        "counter",
        "Connections made to the -icecast server.",
        |_, l| l.icecast.as_ref().and_then(|o| load(&o.connects)),
    ),
    (
        "record_bytes_total",
        "counter",
        "Bytes the recorder (-record) wrote.",
        |_, l| l.recorder.as_ref().and_then(|r| load(&r.bytes)),
    ),
    (
        "record_errors_total",
        "counter",
        "Recorder writes that failed (a full or failing disk).",
        |_, l| l.recorder.as_ref().and_then(|r| load(&r.errors)),
    ),
    (
        "record_frames_lost_total",
        "counter",
        "Frames the recorder did not write (the disk fell behind, or failed).",
        |_, l| l.recorder.as_ref().and_then(|r| load(&r.frames_lost)),
    ),
    (
        "link_up",
        "gauge",
        "1 while a link session is connected.",
        |_, l| l.link.as_ref().map(|l| u64::from(l.paths.any_up())),
    ),
    (
        "link_connects_total",
        "counter",
        "Link sessions that connected.",
        |_, l| link(l, |l| l.connects.load(Relaxed)),
    ),
    (
        "link_dial_failures_total",
        "counter",
        "Dials of the link that did not become a session (refused, unreachable, timed out).",
        |_, l| link(l, |l| l.dial_failures.load(Relaxed)),
    ),
    (
        "link_stalls_total",
        "counter",
        "Link sessions that stalled (no traffic for 2 s).",
        |_, l| link(l, |l| l.stalls.load(Relaxed)),
    ),
    (
        "link_refused_total",
        "counter",
        "Link handshakes refused (wrong key, stale nonce).",
        |_, l| link(l, |l| l.refused.load(Relaxed)),
    ),
    (
        "link_bad_messages_total",
        "counter",
        "Link messages that failed their MAC check.",
        |_, l| link(l, |l| l.bad_messages.load(Relaxed)),
    ),
    (
        "link_gaps_total",
        "counter",
        "Gaps: fragments the origin no longer had.",
        |_, l| link(l, |l| l.gaps.load(Relaxed)),
    ),
    (
        "link_duplicates_total",
        "counter",
        "Fragments received twice (ignored).",
        |_, l| link(l, |l| l.duplicates.load(Relaxed)),
    ),
    (
        "link_silence_frames_total",
        "counter",
        "Silent frames played while the link was down.",
        |_, l| link(l, |l| l.silence_frames.load(Relaxed)),
    ),
    (
        "link_frames_dropped_total",
        "counter",
        "Frames that arrived too late to play.",
        |_, l| link(l, |l| l.frames_dropped.load(Relaxed)),
    ),
    (
        "link_fragments_refused_total",
        "counter",
        "Fragments refused: absurd capture time, frames over -frame-bytes, or a full buffer.",
        |_, l| link(l, |l| l.fragments_refused.load(Relaxed)),
    ),
    (
        "link_buffer_ms",
        "gauge",
        "Receiver: stream buffered ahead of playout, ms.",
        |_, l| link(l, |l| l.buffer_ms.load(Relaxed)),
    ),
];

/// Each link path's series (labelled `path="N"`): name, type, help, value.
pub(super) type PathValue = fn(&PathStats) -> u64;
pub(super) const PATH: &[(&str, &str, &str, PathValue)] = &[
    (
        "link_path_up",
        "gauge",
        "1 while this link path has a session.",
        |p| u64::from(p.up.load(Relaxed)),
    ),
    (
        "link_path_rtt_ms",
        "gauge",
        "The path's last handshake round trip, ms.",
        |p| p.rtt_us.load(Relaxed) / 1000,
    ),
    (
        "link_path_behind_ms",
        "gauge",
        "Receiver: how far behind another path's copy this path's last late copy came, ms.",
        |p| p.behind_us.load(Relaxed) / 1000,
    ),
    (
        "link_path_fragments_first_total",
        "counter",
        "Receiver: fragments this path brought before any other.",
        |p| p.first.load(Relaxed),
    ),
    (
        "link_path_fragments_late_total",
        "counter",
        "Receiver: copies this path brought after another path's.",
        |p| p.late.load(Relaxed),
    ),
    (
        "link_path_fragments_lost_total",
        "counter",
        "Receiver: fragments this path skipped (down, or resumed after another path).",
        |p| p.lost.load(Relaxed),
    ),
    (
        "link_path_bytes_total",
        "counter",
        "Link bytes carried by this path (received, or pushed).",
        |p| p.bytes.load(Relaxed),
    ),
    (
        "link_path_connects_total",
        "counter",
        "Sessions that connected on this path.",
        |p| p.connects.load(Relaxed),
    ),
];
