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
    p.due(DELAY + 2 * FRAG_US, &mut out, &mut Vec::new());
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
            p.due(now, &mut out, &mut Vec::new());
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
        p.due(now, &mut out, &mut Vec::new());
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
    // Where new runs begin, counted over all calls.
    let mut breaks = Vec::new();
    let mut runs = 0;
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
            p.due(now, &mut out, &mut breaks);
            released += out.len();
            runs += breaks.len();
            breaks.clear();
            now += 10_000;
        }
        (released, now, runs)
    };
    let (released, end, runs_before) = run(&mut p, 40_000_000, &|t| {
        (20_000_000..24_000_000).contains(&t)
    });
    assert_eq!(
        p.stats.silence_frames, 0,
        "a 4 s outage is bridged by the 5 s delay"
    );
    assert_eq!(p.stats.frames_dropped, 0);
    assert!(released > 1000);
    assert_eq!(
        runs_before, 1,
        "one run: from the first frame, across the short outage"
    );

    // Now a 12 s outage: silence fills, then live frames resume and late ones drop.
    let before = p.stats;
    let (_, _, runs) = run(&mut p, end + 30_000_000, &|t| t < end + 12_000_000);
    assert_eq!(
        runs, 2,
        "so far: the first run, and one where live audio resumed after the silence"
    );
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

#[test]
fn a_new_epoch_begins_a_new_run_at_its_first_frame() {
    let mut p = Playout::new(DELAY);
    let t0 = 1_700_000_000_000_000u64;
    let (mut out, mut breaks) = (Vec::new(), Vec::new());
    let sent = |cap: u64| cap + FRAG_US as u64;
    p.add(0, sent(t0), &fragment(1, t0)).unwrap();
    let mut restarted = fragment(1, t0 + FRAG_US as u64);
    restarted.epoch = 2;
    p.add(FRAG_US, sent(t0 + FRAG_US as u64), &restarted)
        .unwrap();
    p.due(DELAY + 2 * FRAG_US, &mut out, &mut breaks);
    assert_eq!(out.len(), 20);
    assert_eq!(
        breaks,
        [0, 10],
        "the first frame, and the new epoch's first"
    );
    assert_eq!(p.stats.silence_frames, 0);
}
