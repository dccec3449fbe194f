//! The receiver's jitter buffer: frames are released into the ring at the origin's pace —
//! each at its capture time, moved onto our clock, plus `-link-delay` — not in bursts as they
//! arrive. An outage shorter than the delay is bridged by what is buffered; a longer one is
//! filled with silence at the stream's pace, and when the link is back, frames that would
//! play late are dropped so the stream rejoins live at the configured delay.
//!
//! Pure logic over microsecond timestamps: the link player thread feeds it real times, the
//! tests feed it simulated clocks that drift 100 ppm for days.

use super::wire::Fragment;
use crate::frame::Mp3Header;
use std::collections::VecDeque;

/// Origin-to-local clock mapping: the smallest (arrival − sent) seen in a sliding window is
/// the clock offset plus the fastest path's delay. Taking the minimum ignores queueing
/// jitter and backlog; the window lets it follow drift (100 ppm is 6 ms a minute).
///
/// An origin whose wall clock steps backward (NTP setting a Pi without a clock battery)
/// makes every new difference larger by the step, which the minimum would ignore for the
/// whole window. A sample more than [`STEP_US`] away from the offset, either way, is held
/// back (a peer's one absurd send time must not become the minimum); when every sample for
/// [`STEP_CONFIRM_US`] has been that far away, the clock did step, and the window starts
/// again from the new samples: the step is followed within seconds.
pub struct ClockSync {
    window_us: i64,
    /// (local arrival, arrival − sent), oldest first.
    samples: VecDeque<(i64, i64)>,
    offset: Option<i64>,
    /// Since when (local µs) every sample has been more than STEP_US from the offset.
    away_since: Option<i64>,
}

/// How far from the offset a sample must be to count as a clock step, not jitter.
pub const STEP_US: i64 = 2_000_000;
/// How long samples must stay that far away before the offset follows them.
pub const STEP_CONFIRM_US: i64 = 3_000_000;

impl ClockSync {
    pub fn new(window_us: i64) -> ClockSync {
        ClockSync {
            window_us,
            samples: VecDeque::new(),
            offset: None,
            away_since: None,
        }
    }

    pub fn sample(&mut self, local_us: i64, sent_us: i64) {
        let diff = local_us.saturating_sub(sent_us);
        match self.offset {
            Some(o) if diff.saturating_sub(o).saturating_abs() > STEP_US => {
                let since = *self.away_since.get_or_insert(local_us);
                if local_us.saturating_sub(since) < STEP_CONFIRM_US {
                    return;
                }
                self.samples.clear();
                self.away_since = None;
            }
            _ => self.away_since = None,
        }
        // Keep a monotonic deque: a newer, smaller diff makes older larger ones useless.
        while self.samples.back().is_some_and(|&(_, d)| d >= diff) {
            self.samples.pop_back();
        }
        self.samples.push_back((local_us, diff));
        let oldest = local_us.saturating_sub(self.window_us);
        while self.samples.front().is_some_and(|&(t, _)| t < oldest) && self.samples.len() > 1 {
            self.samples.pop_front();
        }
        self.offset = self.samples.front().map(|&(_, d)| d);
    }

    /// Origin wall-clock µs → local µs.
    pub fn offset(&self) -> Option<i64> {
        self.offset
    }
}

struct Planned {
    release: i64,
    dur: i64,
    data: Vec<u8>,
    /// The first frame of a fragment from a new epoch (the origin's source restarted).
    new_run: bool,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PlayStats {
    pub fragments: u64,
    pub silence_frames: u64,
    pub frames_dropped: u64,
}

/// A fragment whose frames would play further than this beyond the delay, into the future
/// or the past, has an absurd capture time: it is refused, never queued (it would block the
/// queue, or have the player fill silence up to it).
pub const ABSURD_US: i64 = 60_000_000;
/// A play head further behind `now` than this skips ahead instead of catching up with
/// silence frame by frame.
const MAX_SILENCE_BEHIND_US: i64 = 1_000_000;
/// The most audio bytes the playout holds (a minute of 4 Mb/s, far above any delay's worth).
pub const MAX_QUEUE_BYTES: usize = 32 << 20;

/// Why a fragment was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// It would play more than [`ABSURD_US`] away from where it should.
    AbsurdTime,
    /// The queue holds [`MAX_QUEUE_BYTES`].
    QueueFull,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refused::AbsurdTime => "its capture time is more than a minute off our clock",
            Refused::QueueFull => "the playout buffer is full",
        })
    }
}

pub struct Playout {
    delay_us: i64,
    sync: ClockSync,
    queue: VecDeque<Planned>,
    queued_bytes: usize,
    /// When the frame after the last one released should start (local µs).
    play_head: Option<i64>,
    frame_us: i64,
    silence: Option<Vec<u8>>,
    /// Ogg: the link player can make silent pages (Opus), so silence is filled with a
    /// stand-in it replaces (`silent_at`).
    ogg_silence: bool,
    /// Where in the last [`Playout::due`]'s output the silence frames are.
    pub silent_at: Vec<usize>,
    /// The epoch of the last fragment planned.
    last_epoch: Option<u64>,
    /// The next real frame released begins a new run: silence was filled before it, or the
    /// new epoch's first frame was dropped as late.
    run_pending: bool,
    pub stats: PlayStats,
}

/// A peer's µs timestamp as a signed clock value (a value past i64::MAX is absurd anyway:
/// it becomes i64::MAX and is refused as such).
fn signed(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

impl Playout {
    pub fn new(delay_us: i64) -> Playout {
        Playout {
            delay_us,
            sync: ClockSync::new(60_000_000),
            queue: VecDeque::new(),
            queued_bytes: 0,
            play_head: None,
            frame_us: 26_122,
            silence: None,
            ogg_silence: false,
            silent_at: Vec::new(),
            last_epoch: None,
            run_pending: false,
            stats: PlayStats::default(),
        }
    }

    /// The stream is Ogg Opus and the caller turns silence frames (a stand-in page, at
    /// `silent_at`) into silent pages that carry the numbering on (`player.rs`).
    pub fn fill_ogg_silence(&mut self) {
        self.ogg_silence = true;
    }

    /// A heartbeat's send time: one more clock sample.
    pub fn clock_sample(&mut self, now: i64, sent_us: u64) {
        self.sync.sample(now, signed(sent_us));
    }

    /// Plans a fragment's frames. `now` is its local arrival time. A fragment that would
    /// play absurdly far from now, or that the full queue cannot take, is refused and
    /// dropped whole (the caller counts it).
    pub fn add(&mut self, now: i64, sent_us: u64, frag: &Fragment) -> Result<(), Refused> {
        self.sync.sample(now, signed(sent_us));
        let offset = self.sync.offset().unwrap_or(0);
        let dur_total = i64::from(frag.duration_us);
        // A fragment leaves the origin when complete, `duration` after its capture began:
        // the delay counts from then, so none of it is spent waiting for the fragment.
        let base = signed(frag.capture_us)
            .saturating_add(dur_total)
            .saturating_add(offset)
            .saturating_add(self.delay_us);
        let expected = now.saturating_add(self.delay_us);
        if base.saturating_sub(expected).saturating_abs() > ABSURD_US {
            return Err(Refused::AbsurdTime);
        }
        if self.queued_bytes.saturating_add(frag.data.len()) > MAX_QUEUE_BYTES {
            return Err(Refused::QueueFull);
        }
        let n = i64::try_from(frag.frame_lens.len())
            .unwrap_or(i64::MAX)
            .max(1);
        let dur = dur_total.checked_div(n).unwrap_or(0).max(1);
        self.frame_us = dur;
        let mut release = base;
        let mut new_run = self.last_epoch.replace(frag.epoch) != Some(frag.epoch);
        for f in frag.frames() {
            if self.silence.is_none() {
                self.silence = if self.ogg_silence && f.starts_with(b"OggS") {
                    Some(f.to_vec())
                } else {
                    silent_frame(f)
                };
            }
            self.queued_bytes = self.queued_bytes.saturating_add(f.len());
            self.queue.push_back(Planned {
                release,
                dur,
                data: f.to_vec(),
                new_run: std::mem::take(&mut new_run),
            });
            release = release.saturating_add(dur);
        }
        self.stats.fragments = self.stats.fragments.saturating_add(1);
        Ok(())
    }

    fn pop(&mut self) -> Option<Planned> {
        let f = self.queue.pop_front()?;
        self.queued_bytes = self.queued_bytes.saturating_sub(f.data.len());
        Some(f)
    }

    /// Frames (real or silent) due by `now`, in order, appended to `out`. `breaks` gets the
    /// index in `out` of each frame that begins a new run, one that need not continue the
    /// audio before it: the first real frame after silence was filled (the outage may have
    /// hidden anything at the origin), and the first of a new epoch (its source restarted).
    pub fn due(&mut self, now: i64, out: &mut Vec<Vec<u8>>, breaks: &mut Vec<usize>) {
        self.silent_at.clear();
        // Frames overlapping what was already played (or filled with silence) by more than
        // this are late: dropping them is how the stream rejoins live after an outage.
        let late = self.frame_us.saturating_mul(4).max(100_000);
        loop {
            if let Some(front) = self.queue.front() {
                // An Opus stream's header pages are never dropped as late: a stream joined
                // after an outage needs them before its first page (Ogg chains).
                if self
                    .play_head
                    .is_some_and(|ph| front.release < ph.saturating_sub(late))
                    && !(self.ogg_silence && is_opus_header(&front.data))
                {
                    if self.pop().is_some_and(|f| f.new_run) {
                        self.run_pending = true;
                    }
                    self.stats.frames_dropped = self.stats.frames_dropped.saturating_add(1);
                    continue;
                }
                if front.release <= now {
                    if let Some(f) = self.pop() {
                        // Anchored to the frame's own release time, not a running sum of
                        // durations: under clock drift the origin's pace differs from nominal
                        // by ppm, and a running sum would slowly call healthy frames late.
                        self.play_head = Some(f.release.saturating_add(f.dur));
                        let pending = std::mem::take(&mut self.run_pending);
                        if f.new_run || pending {
                            breaks.push(out.len());
                        }
                        out.push(f.data);
                    }
                    continue;
                }
            }
            // Nothing real is due. Starving (the link has been down longer than the delay)?
            let starving = |ph: i64| now > ph.saturating_add(self.frame_us.saturating_mul(2));
            match (self.play_head, &self.silence) {
                // Silence is made at the stream's pace, a call's worth at a time: a play head
                // far behind (the player thread was held up) skips ahead, never floods.
                (Some(ph), Some(_)) if now.saturating_sub(ph) > MAX_SILENCE_BEHIND_US => {
                    self.play_head = Some(now);
                }
                (Some(ph), Some(s)) if starving(ph) => {
                    self.silent_at.push(out.len());
                    out.push(s.clone());
                    self.run_pending = true;
                    self.play_head = Some(ph.saturating_add(self.frame_us));
                    self.stats.silence_frames = self.stats.silence_frames.saturating_add(1);
                }
                _ => break,
            }
        }
    }

    /// How much is buffered ahead of `now`, in µs (0 when empty).
    pub fn buffered_us(&self, now: i64) -> i64 {
        self.queue.back().map_or(0, |b| {
            b.release.saturating_add(b.dur).saturating_sub(now).max(0)
        })
    }
}

/// Whether an Ogg page holds an Opus header packet (OpusHead or OpusTags first).
fn is_opus_header(page: &[u8]) -> bool {
    let Some(&segments) = page.get(26) else {
        return false;
    };
    let body = usize::from(segments).saturating_add(27);
    page.get(body..body.saturating_add(8))
        .is_some_and(|p| p == b"OpusHead" || p == b"OpusTags")
}

/// A frame of silence for the stream `sample` belongs to: for MP3, a frame with the same
/// header (CRC off) and zeroed side information and data, which decoders play as silence;
/// for MPEG-TS, null packets (PID 0x1FFF); for raw PCM, zeros. ADTS/AAC: none — listeners
/// stay connected and get nothing until the link is back. Ogg: none here; for Opus the link
/// player makes silent pages itself ([`Playout::fill_ogg_silence`]).
pub fn silent_frame(sample: &[u8]) -> Option<Vec<u8>> {
    if sample.starts_with(b"OggS") {
        // A page's granule positions and numbers must go on: the link player's job.
        return None;
    }
    if Mp3Header::parse(sample).is_some() {
        // The one MP3 silence rule, shared with /admin/mute.
        return crate::frame::silence::mp3_frame(sample);
    }
    let packets = sample.len() / 188;
    if packets > 0
        && sample.len() % 188 == 0
        && sample.chunks(188).all(|p| p.first() == Some(&0x47))
    {
        let mut null = vec![0x47, 0x1F, 0xFF, 0x10];
        null.resize(188, 0xFF);
        return Some(null.repeat(packets));
    }
    if let &[0xFF, b1, ..] = sample {
        if b1 & 0xF6 == 0xF0 {
            return None; // ADTS: no silent frame we can make without an encoder
        }
    }
    Some(vec![0; sample.len()])
}

#[cfg(test)]
mod tests;
