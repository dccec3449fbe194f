use super::*;

#[test]
fn messages_take_any_bytes_before_and_after_the_mac() {
    let key = session_key(b"secret", "sn", "cn");
    let mut good = Vec::new();
    write_msg(
        &mut good,
        &key,
        &Msg::Fragment {
            sent_us: 5,
            frag: frag(),
        },
    )
    .unwrap();
    let seeds: &[&[u8]] = &[&good, b"F\xff\xff\xff\xff", b"M\x00\x00\x00\x04"];
    crate::util::fuzz::run("wire::read_msg", seeds, 2048, |b| {
        // As bytes off the wire (the MAC check stops nearly all of them)...
        let _ = read_msg(&mut &b[..], &key);
        // ...and as a body a peer holding the key sends, with a valid MAC.
        for t in [T_FRAGMENT, T_HEARTBEAT, T_GAP, T_META] {
            if let Ok(Msg::Fragment { frag, .. }) = decode(t, b) {
                let total: usize = frag.frames().map(<[u8]>::len).sum();
                assert_eq!(total, frag.data.len());
                assert!(!frag.frame_lens.is_empty());
            }
        }
    });
}

#[test]
fn a_message_too_large_for_the_receiver_is_never_sent() {
    let key = session_key(b"k", "a", "b");
    let big = Fragment {
        frame_lens: vec![1; 70_000],
        data: vec![0; 70_000],
        ..frag()
    };
    let mut out = Vec::new();
    assert!(write_msg(
        &mut out,
        &key,
        &Msg::Fragment {
            sent_us: 0,
            frag: big
        }
    )
    .is_err());
    assert!(out.is_empty());
}

#[test]
fn hmac_is_hmac_sha256() {
    // RFC 4231, test case 2, given in two parts.
    let mac = hmac(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
    assert_eq!(
        crate::link::hex(&mac),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

fn frag() -> Fragment {
    Fragment {
        epoch: 7,
        seq: 42,
        capture_us: 1_700_000_000_000_000,
        duration_us: 261_224,
        frame_lens: vec![418, 417, 418],
        data: (0..1253u32).map(|i| i as u8).collect(),
    }
}

#[test]
fn messages_round_trip() {
    let key = session_key(b"secret", "sn", "cn");
    let msgs = [
        Msg::Fragment {
            sent_us: 5,
            frag: frag(),
        },
        Msg::Heartbeat {
            sent_us: 9,
            epoch: 7,
            newest: 42,
        },
        Msg::Gap {
            epoch: 7,
            from: 3,
            to: 9,
        },
        Msg::Meta {
            content_type: "audio/mpeg".into(),
            header: vec![1, 2],
            title: "Café".into(),
        },
    ];
    let mut wire = Vec::new();
    for m in &msgs {
        write_msg(&mut wire, &key, m).unwrap();
    }
    let mut r = &wire[..];
    for m in &msgs {
        assert_eq!(&read_msg(&mut r, &key).unwrap(), m);
    }
    assert!(matches!(read_msg(&mut r, &key), Err(ReadError::Io(_))));
    let Msg::Fragment { frag, .. } = &msgs[0] else {
        unreachable!()
    };
    assert_eq!(
        frag.frames().map(<[u8]>::len).collect::<Vec<_>>(),
        [418, 417, 418]
    );
}

#[test]
fn any_flipped_bit_or_other_key_is_rejected() {
    let key = session_key(b"secret", "sn", "cn");
    let mut wire = Vec::new();
    write_msg(
        &mut wire,
        &key,
        &Msg::Fragment {
            sent_us: 5,
            frag: frag(),
        },
    )
    .unwrap();
    for i in [0usize, 3, 10, 100, wire.len() - 1] {
        let mut bad = wire.clone();
        bad[i] ^= 0x10;
        assert!(read_msg(&mut &bad[..], &key).is_err(), "byte {i}");
    }
    let other = session_key(b"secret", "sn", "other");
    assert!(matches!(
        read_msg(&mut &wire[..], &other),
        Err(ReadError::BadMac)
    ));
}

#[test]
fn overhead_is_under_3_percent_at_128k_with_250ms_fragments() {
    // 250 ms of 128 kb/s MP3: 4000 bytes in about 10 frames.
    let overhead = fragment_overhead(10) as f64 / 4000.0;
    assert!(overhead < 0.03, "{overhead}");
}
