use super::*;

const NO_WAIT: Duration = Duration::from_millis(1);

/// Wakes readers at every push.
const AT_ONCE: Wake = Wake {
    cap: Duration::ZERO,
    burst_bytes: 0,
};

fn ring(slots: usize) -> Ring {
    ring_with(slots, AT_ONCE)
}

fn ring_with(slots: usize, wake: Wake) -> Ring {
    Ring::new(slots, false, wake)
}

fn read_all(r: &Ring, c: &mut Cursor) -> (Vec<u8>, ReadOutcome) {
    let mut out = Vec::new();
    let o = r.read(c, &mut out, u64::MAX, usize::MAX, NO_WAIT);
    (out.concat(), o)
}

#[test]
fn new_listener_starts_at_newest_frame() {
    let r = ring(4);
    let mut c = r.join(0);
    assert_eq!(c.next, 0, "nothing held yet: start at frame 0");
    r.push(b"a");
    r.push(b"b");
    let mut late = r.join(0);
    assert_eq!(late.next, 1);
    assert_eq!(read_all(&r, &mut c).0, b"ab");
    assert_eq!(read_all(&r, &mut late).0, b"b");
    assert_eq!(read_all(&r, &mut late).1, ReadOutcome::Idle);
}

#[test]
fn burst_goes_back_by_whole_frames() {
    let r = ring(8);
    for f in [&b"aaa"[..], b"bbb", b"ccc", b"ddd"] {
        r.push(f);
    }
    assert_eq!(read_all(&r, &mut r.join(7)).0, b"cccddd");
    assert_eq!(read_all(&r, &mut r.join(9)).0, b"bbbcccddd");
    assert_eq!(read_all(&r, &mut r.join(1000)).0, b"aaabbbcccddd");
}

#[test]
fn burst_is_limited_by_the_ring_after_wrap() {
    let r = ring(3);
    for f in [&b"1"[..], b"2", b"3", b"4", b"5"] {
        r.push(f);
    }
    assert_eq!(read_all(&r, &mut r.join(1000)).0, b"345");
}

#[test]
fn lapped_reader_jumps_to_newest_and_counts_the_skip() {
    let r = ring(3);
    let mut c = r.join(0);
    for i in 0..10u8 {
        r.push(&[i]);
    }
    let (out, o) = read_all(&r, &mut c);
    assert_eq!(out, [9]);
    assert_eq!(
        o,
        ReadOutcome::Data {
            frames: 1,
            header_len: 0,
            skipped: 9,
            more: false
        }
    );
    r.push(&[10]);
    assert_eq!(read_all(&r, &mut c).0, [10]);
}

#[test]
fn reader_exactly_one_ring_behind_is_not_lapped() {
    let r = ring(3);
    let mut c = r.join(0);
    for i in 0..3u8 {
        r.push(&[i]);
    }
    let (out, o) = read_all(&r, &mut c);
    assert_eq!(out, [0, 1, 2]);
    assert_eq!(
        o,
        ReadOutcome::Data {
            frames: 3,
            header_len: 0,
            skipped: 0,
            more: false
        }
    );
}

#[test]
fn client_budget_cuts_at_frame_boundary() {
    let r = ring(8);
    let mut c = r.join(0);
    for f in [&b"aaaa"[..], b"bbbb", b"cccc"] {
        r.push(f);
    }
    let mut out = Vec::new();
    assert_eq!(
        r.read(&mut c, &mut out, 9, usize::MAX, NO_WAIT),
        ReadOutcome::Data {
            frames: 2,
            header_len: 0,
            skipped: 0,
            more: true
        }
    );
    assert_eq!(out.concat(), b"aaaabbbb");
    assert_eq!(
        r.read(&mut c, &mut out, 1, usize::MAX, NO_WAIT),
        ReadOutcome::NoRoom
    );
}

#[test]
fn batch_cap_splits_but_always_moves() {
    let r = ring(8);
    let mut c = r.join(0);
    for f in [&b"aaaa"[..], b"bbbb", b"cccc"] {
        r.push(f);
    }
    let mut out = Vec::new();
    r.read(&mut c, &mut out, u64::MAX, 2, NO_WAIT);
    assert_eq!(
        out.concat(),
        b"aaaa",
        "one frame even when bigger than the batch"
    );
    out.clear();
    r.read(&mut c, &mut out, u64::MAX, 8, NO_WAIT);
    assert_eq!(out.concat(), b"bbbbcccc");
}

#[test]
fn header_comes_first_and_once() {
    let r = Ring::new(4, true, AT_ONCE);
    let mut c = r.join(0);
    assert_eq!(
        read_all(&r, &mut c).1,
        ReadOutcome::Idle,
        "no header yet: wait"
    );
    r.set_header(Arc::from(&b"HDR"[..]));
    r.push(b"x");
    assert_eq!(read_all(&r, &mut c).0, b"HDRx");
    r.push(b"y");
    assert_eq!(read_all(&r, &mut c).0, b"y");
}

#[test]
fn a_header_set_later_reaches_new_listeners_with_its_length() {
    // A link receiver reads no header itself (-header-bytes 0), but relays the origin's.
    let r = Ring::new(4, false, AT_ONCE);
    r.set_header(Arc::from(&b"RIFFhead"[..]));
    r.push(b"x");
    let mut c = r.join(0);
    let mut out = Vec::new();
    let o = r.read(&mut c, &mut out, u64::MAX, 64, NO_WAIT);
    assert_eq!(out.concat(), b"RIFFheadx");
    assert!(matches!(
        o,
        ReadOutcome::Data {
            header_len: 8,
            frames: 1,
            ..
        }
    ));
}

#[test]
fn end_drains_then_reports_ended() {
    let r = ring(4);
    let mut c = r.join(0);
    r.push(b"a");
    r.end();
    assert_eq!(read_all(&r, &mut c).0, b"a");
    assert_eq!(read_all(&r, &mut c).1, ReadOutcome::Ended);
}

#[test]
fn stale_frames_are_not_given_to_new_listeners() {
    let r = ring(4);
    r.push(b"old");
    r.mark_stale();
    let mut c = r.join(1000);
    assert_eq!(read_all(&r, &mut c).1, ReadOutcome::Idle);
    r.push(b"new");
    assert_eq!(read_all(&r, &mut c).0, b"new");
}

#[test]
fn coalesced_wakeups_are_flushed() {
    let hour = Wake {
        cap: Duration::from_secs(3600),
        burst_bytes: 0,
    };
    let r = Arc::new(Ring::new(64, false, hour));
    let mut c = r.join(0);
    let r2 = Arc::clone(&r);
    // The reader sleeps in read() for up to 30 s; only a wake-up returns it sooner.
    let t = std::thread::spawn(move || {
        r2.read(
            &mut c,
            &mut Vec::new(),
            u64::MAX,
            usize::MAX,
            Duration::from_secs(30),
        )
    });
    let asleep = Instant::now();
    while r.bell.sleepers() == 0 {
        assert!(
            asleep.elapsed() < Duration::from_secs(10),
            "reader never slept"
        );
        std::thread::yield_now();
    }
    // A push just after a wake-up, inside the interval, wakes nobody...
    r.state.lock().last_wake = Instant::now();
    r.push(b"a");
    assert_eq!(r.state.lock().held.frames, 1, "the push was held back");
    // ...and the flush the source reader sends when it pauses delivers it.
    let flushed = Instant::now();
    r.flush();
    assert!(matches!(
        t.join().unwrap(),
        ReadOutcome::Data { frames: 1, .. }
    ));
    assert!(
        flushed.elapsed() < Duration::from_secs(10),
        "woken by the flush"
    );
}

#[test]
fn a_batch_holds_at_most_max_batch_frames_and_the_rest_follows() {
    let r = ring(4 * MAX_BATCH_FRAMES);
    let mut c = r.join(0);
    let n = 2 * MAX_BATCH_FRAMES + 3;
    for i in 0..n {
        r.push(&(i as u32).to_be_bytes());
    }
    let mut out = Vec::new();
    let o = r.read(&mut c, &mut out, u64::MAX, usize::MAX, NO_WAIT);
    assert!(
        matches!(o, ReadOutcome::Data { frames, more: true, .. } if frames == MAX_BATCH_FRAMES)
    );
    assert_eq!(out.len(), MAX_BATCH_FRAMES);
    let mut got = out.concat();
    while let (body, ReadOutcome::Data { .. }) = read_all(&r, &mut c) {
        got.extend_from_slice(&body);
    }
    let want: Vec<u8> = (0..n as u32).flat_map(u32::to_be_bytes).collect();
    assert_eq!(got, want, "every frame once, in order, across batches");
}

#[test]
fn a_frame_being_written_survives_the_writer_lapping_its_slot() {
    let r = ring(3);
    let mut c = r.join(0);
    r.push(b"first");
    let mut out = Vec::new();
    r.read(&mut c, &mut out, u64::MAX, usize::MAX, NO_WAIT);
    // The sender holds its batch (it is writing it) while the writer goes round twice.
    for i in 0..6u8 {
        r.push(&[i; 7]);
    }
    assert_eq!(out.concat(), b"first", "the held frame is untouched");
    assert_eq!(
        Arc::strong_count(&out[0]),
        1,
        "and only the sender holds it now"
    );
}

/// A reader that keeps up gets every frame exactly once, whole and in order, whatever the
/// frame sizes, batch caps and client budgets; a reader lapped by the writer resumes at a
/// frame boundary (the newest frame) and is told how many it skipped, so what it got plus
/// what it skipped is the stream in order. Random schedules, seeded (reproducible).
#[test]
fn readers_get_whole_frames_in_order_or_a_counted_skip_under_random_schedules() {
    let mut rng = crate::util::fuzz::Rng::new(0x5eed_0011);
    for round in 0..300 {
        let slots = 3 + rng.below(8);
        let r = ring(slots);
        let mut c = r.join(0);
        let mut next = 0u32; // the next frame number the writer pushes
        let mut expect = 0u32; // the next frame number the reader should get
        for _ in 0..200 {
            for _ in 0..rng.below(slots + 2) {
                // Frame k: its number then k % 13 filler bytes (sizes vary, boundaries matter).
                let mut f = next.to_be_bytes().to_vec();
                f.resize(4 + (next % 13) as usize, next as u8);
                r.push(&f);
                next += 1;
            }
            let cap = 1 + rng.below(64);
            let mut out = Vec::new();
            match r.read(&mut c, &mut out, u64::MAX, cap, NO_WAIT) {
                ReadOutcome::Data {
                    frames, skipped, ..
                } => {
                    assert_eq!(frames, out.len(), "round {round}");
                    expect += skipped as u32;
                    for f in &out {
                        let k = u32::from_be_bytes(f[..4].try_into().unwrap());
                        assert_eq!(k, expect, "round {round}: frames in order, none twice");
                        assert_eq!(f.len(), 4 + (k % 13) as usize, "round {round}: whole");
                        expect += 1;
                    }
                    if skipped > 0 {
                        assert_eq!(
                            expect, next,
                            "round {round}: a lapped reader resumes at the newest frame"
                        );
                    }
                }
                ReadOutcome::Idle => {
                    assert_eq!(expect, next, "round {round}: idle only when caught up")
                }
                o => panic!("round {round}: {o:?}"),
            }
        }
    }
}

#[test]
fn a_burst_starts_on_a_frame_boundary_within_its_budget() {
    let mut rng = crate::util::fuzz::Rng::new(0xb0b5);
    for _ in 0..200 {
        let r = ring(16);
        let sizes: Vec<usize> = (0..40).map(|_| 1 + rng.below(50)).collect();
        for (k, &len) in sizes.iter().enumerate() {
            r.push(&vec![k as u8; len]);
        }
        let burst = rng.below(600);
        let mut c = r.join(burst);
        let got = read_all(&r, &mut c).0;
        // The frames held are the last 16; the burst is a suffix of them made of whole frames:
        // as many as fit in `burst` bytes, and at least the newest.
        let held = &sizes[sizes.len() - 16..];
        let mut take = 1;
        while take < held.len() && held[held.len() - take - 1..].iter().sum::<usize>() <= burst {
            take += 1;
        }
        let first = sizes.len() - take;
        let want: Vec<u8> = (first..sizes.len())
            .flat_map(|k| vec![k as u8; sizes[k]])
            .collect();
        assert_eq!(got, want, "burst {burst}");
    }
}

#[test]
fn the_audience_at_the_last_wake_up_sets_the_budget_while_its_readers_are_busy() {
    let big = Wake {
        cap: Duration::from_millis(500),
        burst_bytes: 65536,
    };
    let r = ring_with(512, big);
    // 5000 readers were asleep at the last wake-up, 100 ms ago; none is asleep now (all are
    // sending). A frame now is held back: the 5000 share a 2 s budget.
    {
        let mut s = r.state.lock();
        s.audience = 5000;
        s.last_wake = Instant::now() - Duration::from_millis(100);
    }
    r.push(b"frame");
    assert_eq!(r.state.lock().held.frames, 1, "held back for the audience");
    // Counting only the readers asleep now (none) would have woken at 100 ms.
    r.state.lock().audience = 0;
    r.push(b"frame");
    assert_eq!(r.state.lock().held.frames, 0, "a lone reader's 100 ms");
}

#[test]
fn in_stream_headers_reach_every_listener_exactly_once_across_a_chain() {
    let r = ring(16);
    let mut early = r.join(0);
    r.push_header(&[b"H1".to_vec(), b"h1".to_vec()]);
    r.push(b"a1");
    // Read through in place: the header pages once, not again as a header.
    assert_eq!(read_all(&r, &mut early).0, b"H1h1a1");
    // A later listener (even with a burst) starts after the pages and gets them first.
    let mut late = r.join(1000);
    assert_eq!(read_all(&r, &mut late).0, b"H1h1a1");
    r.push(b"a2");
    // A new chain: connected listeners get its pages in-stream, once.
    r.push_header(&[b"H2".to_vec()]);
    r.push(b"b1");
    assert_eq!(read_all(&r, &mut early).0, b"a2H2b1");
    assert_eq!(read_all(&r, &mut late).0, b"a2H2b1");
    // A new listener's burst never reaches back into the old chain.
    let mut newer = r.join(1000);
    assert_eq!(read_all(&r, &mut newer).0, b"H2b1");
    r.push(b"b2");
    for c in [&mut early, &mut late, &mut newer] {
        assert_eq!(read_all(&r, c).0, b"b2", "nothing twice");
    }
}

#[test]
fn a_lapped_reader_gets_the_header_of_the_chain_it_lands_in() {
    let r = ring(4);
    let mut c = r.join(0);
    r.push_header(&[b"H1".to_vec()]);
    r.push(b"a");
    assert_eq!(read_all(&r, &mut c).0, b"H1a");
    // The ring laps the reader across a chain boundary: it lands in the new chain's audio
    // and is handed that chain's header first.
    r.push_header(&[b"H2".to_vec(), b"h2".to_vec()]);
    for f in [&b"b"[..], b"c", b"d", b"e"] {
        r.push(f);
    }
    assert_eq!(read_all(&r, &mut c).0, b"H2h2e");
    // Lapped while the newest frames are header pages: it starts at their beginning.
    let mut d = r.join(0);
    assert_eq!(read_all(&r, &mut d).0, b"H2h2e");
    for f in [&b"f"[..], b"g", b"h"] {
        r.push(f);
    }
    r.push_header(&[b"H3".to_vec(), b"h3".to_vec()]);
    assert_eq!(read_all(&r, &mut d).0, b"H3h3");
}
