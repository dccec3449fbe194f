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
            stats: PlayStats::default(),
        }
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
        for f in frag.frames() {
            if self.silence.is_none() {
                self.silence = silent_frame(f);
            }
            self.queued_bytes = self.queued_bytes.saturating_add(f.len());
            self.queue.push_back(Planned {
                release,
                dur,
                data: f.to_vec(),
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

    /// Frames (real or silent) due by `now`, in order.
    pub fn due(&mut self, now: i64, out: &mut Vec<Vec<u8>>) {
        // Frames overlapping what was already played (or filled with silence) by more than
        // this are late: dropping them is how the stream rejoins live after an outage.
        let late = self.frame_us.saturating_mul(4).max(100_000);
        loop {
            if let Some(front) = self.queue.front() {
                if self
                    .play_head
                    .is_some_and(|ph| front.release < ph.saturating_sub(late))
                {
                    self.pop();
                    self.stats.frames_dropped = self.stats.frames_dropped.saturating_add(1);
                    continue;
                }
                if front.release <= now {
                    if let Some(f) = self.pop() {
                        // Anchored to the frame's own release time, not a running sum of
                        // durations: under clock drift the origin's pace differs from nominal
                        // by ppm, and a running sum would slowly call healthy frames late.
                        self.play_head = Some(f.release.saturating_add(f.dur));
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
                    out.push(s.clone());
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

/// A frame of silence for the stream `sample` belongs to: for MP3, a frame with the same
/// header (CRC off) and zeroed side information and data, which decoders play as silence;
/// for MPEG-TS, null packets (PID 0x1FFF); for raw PCM, zeros. Other formats (ADTS/AAC):
/// none — listeners stay connected and get nothing until the link is back.
pub fn silent_frame(sample: &[u8]) -> Option<Vec<u8>> {
    if let (Some(h), &[b0, b1, b2, b3, ..]) = (Mp3Header::parse(sample), sample) {
        let header = [b0, b1 | 0x01, b2, b3];
        // Keep the padding bit's length consistent with the header we send.
        let len = Mp3Header::parse(&header).map_or(h.len, |h2| h2.len);
        let mut f = header.to_vec();
        f.resize(len, 0);
        return Some(f);
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
mod tests {
    use super::*;

    #[test]
    fn absurd_capture_times_are_refused_and_never_block_the_queue() {
        let mut p = Playout::new(DELAY);
        let t0 = 1_700_000_000_000_000u64;
        let mut out = Vec::new();
        p.add(0, t0 + FRAG_US as u64, &fragment(1, t0)).unwrap();
        // A fragment claiming to be captured a day later, or in 1970, or at u64::MAX.
        for cap in [t0 + 86_400_000_000, 1, u64::MAX] {
            assert_eq!(
                p.add(10_000, t0 + FRAG_US as u64, &fragment(2, cap)),
                Err(Refused::AbsurdTime)
            );
        }
        p.add(
            FRAG_US,
            t0 + 2 * FRAG_US as u64,
            &fragment(3, t0 + FRAG_US as u64),
        )
        .unwrap();
        // Both good fragments play on time; no silence was made for the absurd ones.
        p.due(DELAY + 2 * FRAG_US, &mut out);
        assert_eq!(out.len(), 20);
        assert_eq!(p.stats.silence_frames, 0);
    }

    #[test]
    fn an_origin_clock_stepping_back_is_followed_within_seconds() {
        let mut c = ClockSync::new(60_000_000);
        let t0 = 1_700_000_000_000_000i64;
        for i in 0..100 {
            c.sample(i * 500_000, t0 + i * 500_000);
        }
        assert_eq!(c.offset(), Some(-t0));
        // The origin's clock steps back 30 s (NTP on a Pi without a clock battery).
        let step = 30_000_000;
        let mut followed_after = None;
        for i in 100..200 {
            c.sample(i * 500_000, t0 + i * 500_000 - step);
            if c.offset() == Some(-t0 + step) {
                followed_after = Some((i - 100) * 500_000);
                break;
            }
        }
        let after = followed_after.expect("the step was never followed");
        assert!(
            after <= STEP_CONFIRM_US + 500_000,
            "followed after {after} µs"
        );
    }

    #[test]
    fn one_absurd_send_time_does_not_move_the_clock() {
        let mut c = ClockSync::new(60_000_000);
        let t0 = 1_700_000_000_000_000i64;
        for i in 0..10 {
            c.sample(i * 500_000, t0 + i * 500_000);
        }
        c.sample(5_000_000, i64::MAX);
        c.sample(5_100_000, 0);
        assert_eq!(c.offset(), Some(-t0));
    }

    #[test]
    fn fragments_from_a_peer_take_any_values() {
        crate::util::fuzz::run("playout::add", &[&[0u8; 40]], 64, |b| {
            let mut r = crate::util::fuzz::Rng::new(b.iter().map(|&x| u64::from(x)).sum());
            let mut p = Playout::new(DELAY);
            let mut out = Vec::new();
            let mut now = 0i64;
            for i in 0..4 {
                let n = 1 + r.below(4);
                let frag = Fragment {
                    epoch: 1,
                    seq: i,
                    capture_us: r.next_u64(),
                    duration_us: r.next_u64() as u32,
                    frame_lens: vec![3; n],
                    data: vec![0; 3 * n],
                };
                // Our clock only moves forward; the peer's values are anything.
                now += (r.next_u64() >> 8) as i64;
                let _ = p.add(now, r.next_u64(), &frag);
                out.clear();
                p.due(now, &mut out);
                assert!(out.len() <= 1024, "{} frames at once", out.len());
                assert!(p.buffered_us(now) >= 0);
            }
        });
    }

    const DELAY: i64 = 5_000_000;
    const FRAG_US: i64 = 261_224; // 10 MP3 frames at 44.1 kHz

    fn fragment(seq: u64, capture_us: u64) -> Fragment {
        let mut frame = vec![0xff, 0xfb, 0x90, 0x64];
        frame.resize(417, 0x55);
        Fragment {
            epoch: 1,
            seq,
            capture_us,
            duration_us: FRAG_US as u32,
            frame_lens: vec![417; 10],
            data: frame.repeat(10),
        }
    }

    /// A deterministic jitter source.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self, max: i64) -> i64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 33) % max as u64) as i64
        }
    }

    /// Simulates `hours` of a live link whose origin clock runs `ppm` fast (negative: slow)
    /// against ours, with 20–70 ms of network delay; returns the buffer levels seen after
    /// warm-up and the stats.
    fn simulate(ppm: f64, hours: i64) -> (i64, i64, PlayStats) {
        let mut p = Playout::new(DELAY);
        let mut rng = Lcg(7);
        let origin_clock =
            |local: i64| 1_700_000_000_000_000u64 + (local as f64 * (1.0 + ppm * 1e-6)) as u64;
        let end = hours * 3_600_000_000;
        // The origin captures a fragment every FRAG_US of its own clock.
        let mut next_capture_local = 0i64;
        let mut seq = 0;
        let mut in_flight: VecDeque<(i64, u64, u64)> = VecDeque::new();
        let (mut min_level, mut max_level) = (i64::MAX, i64::MIN);
        let mut out = Vec::new();
        let mut now = 0;
        while now < end {
            while next_capture_local <= now {
                seq += 1;
                let cap = origin_clock(next_capture_local);
                let sent_local = next_capture_local + FRAG_US; // sent when complete
                in_flight.push_back((
                    sent_local + 20_000 + rng.next(50_000),
                    origin_clock(sent_local),
                    cap,
                ));
                next_capture_local += (FRAG_US as f64 / (1.0 + ppm * 1e-6)) as i64;
            }
            while in_flight
                .front()
                .is_some_and(|&(arrive, _, _)| arrive <= now)
            {
                let (_, sent, cap) = in_flight.pop_front().unwrap();
                p.add(now, sent, &fragment(seq, cap)).unwrap();
            }
            out.clear();
            p.due(now, &mut out);
            if now > 60_000_000 {
                let level = p.buffered_us(now);
                min_level = min_level.min(level);
                max_level = max_level.max(level);
            }
            now += 50_000;
        }
        (min_level, max_level, p.stats)
    }

    #[test]
    fn drift_of_100_ppm_either_way_neither_grows_nor_drains_the_buffer_over_a_day() {
        for ppm in [100.0, -100.0, 0.0] {
            let (min, max, stats) = simulate(ppm, 24);
            // The buffer stays around the delay: no trend over 24 virtual hours.
            assert!(
                min > DELAY - 1_000_000 && max < DELAY + 1_000_000,
                "{ppm} ppm: buffer {min}..{max} µs"
            );
            assert_eq!(
                stats.silence_frames, 0,
                "{ppm} ppm: no silence on a healthy link"
            );
            assert_eq!(
                stats.frames_dropped, 0,
                "{ppm} ppm: nothing dropped on a healthy link"
            );
        }
    }

    #[test]
    fn a_short_outage_is_bridged_and_a_long_one_filled_then_rejoined() {
        let mut p = Playout::new(DELAY);
        let t0 = 1_700_000_000_000_000u64;
        let mut out = Vec::new();
        // 20 s of fragments arrive on time, 4 s outage (< delay), then the backlog at once.
        let mut now = 0i64;
        let mut seq = 0u64;
        // Runs the clock in 10 ms steps to `until`; fragments arrive as they complete, except
        // while `down` (then all at once when it ends). Returns the frames released.
        let mut run = |p: &mut Playout, until: i64, down: &dyn Fn(i64) -> bool| {
            let mut released = 0;
            while now < until {
                let captured = (now - 30_000) / FRAG_US; // fragments complete by now
                if !down(now) {
                    while seq < captured as u64 {
                        seq += 1;
                        let cap = t0 + (seq as i64 * FRAG_US) as u64;
                        p.add(now, cap + FRAG_US as u64 + 30_000, &fragment(seq, cap))
                            .unwrap();
                    }
                }
                out.clear();
                p.due(now, &mut out);
                released += out.len();
                now += 10_000;
            }
            (released, now)
        };
        let (released, end) = run(&mut p, 40_000_000, &|t| {
            (20_000_000..24_000_000).contains(&t)
        });
        assert_eq!(
            p.stats.silence_frames, 0,
            "a 4 s outage is bridged by the 5 s delay"
        );
        assert_eq!(p.stats.frames_dropped, 0);
        assert!(released > 1000);

        // Now a 12 s outage: silence fills, then live frames resume and late ones drop.
        let before = p.stats;
        run(&mut p, end + 30_000_000, &|t| t < end + 12_000_000);
        assert!(
            p.stats.silence_frames > before.silence_frames,
            "silence filled the long outage"
        );
        assert!(
            p.stats.frames_dropped > before.frames_dropped,
            "late frames were dropped to rejoin live"
        );
        let level = p.buffered_us(now);
        assert!(
            (DELAY - 1_000_000..DELAY + 1_000_000).contains(&level),
            "back at the delay: {level}"
        );
    }

    #[test]
    fn silent_frames_per_format() {
        let mut mp3 = vec![0xff, 0xfa, 0x92, 0x64]; // CRC on, padded
        mp3.resize(418, 7);
        let s = silent_frame(&mp3).unwrap();
        assert_eq!(s.len(), 418);
        assert_eq!(&s[..4], &[0xff, 0xfb, 0x92, 0x64]);
        assert!(s[4..].iter().all(|&b| b == 0));
        let ts = [0x47u8; 188].repeat(2);
        let s = silent_frame(&ts).unwrap();
        assert_eq!((s.len(), s[0], s[1], s[2]), (376, 0x47, 0x1F, 0xFF));
        assert_eq!(silent_frame(&[1, 2, 3, 4]).unwrap(), vec![0; 4]);
        assert!(silent_frame(&[0xFF, 0xF1, 0x50, 0x80, 0, 0, 0]).is_none());
    }
}
