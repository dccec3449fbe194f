//! Ogg streams (`-frame-filter ogg`): Opus, Vorbis and FLAC in Ogg, made with Debian's ffmpeg.
//! A listener joining mid-stream gets the header pages first, then whole pages, and ffmpeg
//! decodes what it got with no error; a chained stream decodes across the chain boundary.

use crate::common::ogg::whole_pages;
use crate::common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

const T: Duration = Duration::from_secs(15);

/// ffmpeg's complaints about `data` as an Ogg file (empty: it decoded cleanly).
fn decode_errors(name: &str, data: &[u8]) -> String {
    require_program("ffmpeg", "ffmpeg");
    let path = scratch(name).join("capture.ogg");
    std::fs::write(&path, data).unwrap();
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(&path)
        .args(["-f", "null", "-"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() {
        err
    } else {
        format!("exit {:?}: {err}", out.status)
    }
}

/// Positions of beginning-of-stream pages.
fn bos_pages(b: &[u8]) -> Vec<usize> {
    ogg::pages(b)
        .iter()
        .filter(|p| p.bos())
        .map(|p| p.at)
        .collect()
}

fn ogg_server(file: &str, rate: &str) -> Server {
    Server::start(&[
        "-path",
        fixture(file).to_str().unwrap(),
        "-frame-filter",
        "ogg",
        "-source-bandwidth",
        rate,
    ])
}

#[test]
fn opus_vorbis_and_flac_join_mid_stream_with_their_headers_and_decode() {
    for (file, rate, magic) in [
        ("tone-opus.ogg", "4200", &b"OpusHead"[..]),
        ("tone-vorbis.ogg", "1900", b"\x01vorbis"),
        ("tone-flac.ogg", "4000", b"\x7fFLAC"),
    ] {
        let s = ogg_server(file, rate);
        // Someone listening from the start, so the second one joins mid-stream.
        let mut first = s.listen();
        assert_eq!(first.status, 200);
        assert!(
            first.head.contains("Content-Type: audio/ogg"),
            "{}",
            first.head
        );
        first.read_body(3000, Duration::from_secs(10));
        let mut late = s.listen();
        let got = late.read_body(6000, Duration::from_secs(10)).to_vec();
        assert!(got.len() >= 6000, "{file}: {} bytes", got.len());
        assert_eq!(
            bos_pages(&got).first(),
            Some(&0),
            "{file}: starts with its BOS page"
        );
        assert!(
            got[..200].windows(magic.len()).any(|w| w == magic),
            "{file}: the codec's header first"
        );
        let errors = decode_errors(&format!("ogg-{file}"), whole_pages(&got));
        assert!(errors.is_empty(), "{file}: {errors}");
        if file == "tone-vorbis.ogg" {
            // The title comes from the comment header.
            let mut st = Listener::get(s.addr, "/status-json.xsl", 1);
            st.read_to_eof(Duration::from_secs(5));
            let v: serde_json::Value = serde_json::from_slice(&st.body).unwrap();
            assert_eq!(
                v["icestats"]["source"][0]["title"],
                "ringcast - Vorbis Tone"
            );
        }
        let had = first.body.len();
        first.read_body(had + 6000, Duration::from_secs(10));
        let errors = decode_errors(&format!("ogg-first-{file}"), whole_pages(&first.body));
        assert!(errors.is_empty(), "{file} (from the start): {errors}");
    }
}

#[test]
fn a_chained_stream_decodes_across_the_chain_for_a_listener_already_there() {
    // Two Opus streams back to back (a track change), played at about their rate.
    let s = ogg_server("chained-opus.ogg", "6000");
    let mut l = s.listen();
    let len = std::fs::metadata(fixture("chained-opus.ogg"))
        .unwrap()
        .len() as usize;
    let got = l.read_body(len + 2000, Duration::from_secs(15)).to_vec();
    // Both chains' headers arrived once each in-stream (and the next loop's first one).
    let bos = bos_pages(&got);
    assert!(bos.len() >= 2, "{bos:?}");
    let errors = decode_errors("ogg-chained", whole_pages(&got));
    assert!(errors.is_empty(), "{errors}");
    // A listener joining in the second chain starts with the second chain's headers.
    let mut late = s.listen();
    let start = late.read_body(200, Duration::from_secs(10)).to_vec();
    assert_eq!(bos_pages(&start).first(), Some(&0));
}

/// Decodes `secs` of the Ogg stream at `url` with ffmpeg; its complaints (empty: clean).
fn decode_url(url: &str) -> String {
    let (ok, err) = ffmpeg_decode(url, 3);
    if ok {
        err.trim().to_string()
    } else {
        format!("failed: {err}")
    }
}

#[test]
fn ogg_from_a_source_client_into_icecast2_and_back_through_url() {
    // An encoder pushes Opus in Ogg to ringcast A, which sends it on to a real icecast2;
    // ringcast B pulls it from icecast2's Ogg mount. Every listener decodes.
    let ice = Icecast::start_free("ogg-icecast");
    let target = format!(
        "icecast://source:{ICECAST_SOURCE_PASSWORD}@127.0.0.1:{}/ogg",
        ice.port
    );
    let a = Server::start(&[
        "-source-password",
        "hackme",
        "-frame-filter",
        "ogg",
        "-icecast",
        &target,
    ]);
    let target = format!("icecast://source:hackme@127.0.0.1:{}/live", a.addr.port());
    let mut ff = ffmpeg_push_as(
        &fixture("tone-opus.ogg"),
        "ogg",
        &target,
        &["-content_type", "audio/ogg"],
    );
    assert!(
        a.wait_log("source client connected", T).is_some(),
        "{}",
        a.log_text()
    );
    let errors = decode_url(&format!("http://127.0.0.1:{}/live", a.addr.port()));
    assert!(errors.is_empty(), "ringcast's listener: {errors}");
    // Icecast's mount is up once ringcast has connected to it.
    assert!(
        a.wait_log("icecast output: sending the stream", T)
            .is_some(),
        "{}",
        a.log_text()
    );
    let errors = decode_url(&format!("http://127.0.0.1:{}/ogg", ice.port));
    assert!(errors.is_empty(), "icecast2's listener: {errors}");
    let b = Server::start(&[
        "-url",
        &format!("http://127.0.0.1:{}/ogg", ice.port),
        "-frame-filter",
        "ogg",
    ]);
    let errors = decode_url(&format!("http://127.0.0.1:{}/", b.addr.port()));
    assert!(
        errors.is_empty(),
        "the puller's listener: {errors}\n{}",
        b.log_text()
    );
    let _ = ff.kill();
    let _ = ff.wait();
}

#[test]
fn a_looping_ogg_file_decodes_across_its_loops() {
    // Each loop begins the same logical stream again; ringcast gives it a serial number of
    // its own, so players take it for the new chain it is.
    let s = Server::start(&[
        "-path",
        fixture("tone-opus.ogg").to_str().unwrap(),
        "-frame-filter",
        "ogg",
    ]);
    let mut l = s.listen();
    let start = std::time::Instant::now();
    while bos_pages(&l.body).len() < 2 && start.elapsed() < T {
        let want = l.body.len() + 1;
        l.read_body(want, T);
    }
    let had = l.body.len();
    l.read_body(had + 4000, T);
    let bos = bos_pages(&l.body);
    assert!(bos.len() >= 2, "{bos:?}");
    let serial = |at: usize| &l.body[at + 14..at + 18];
    assert_ne!(serial(bos[0]), serial(bos[1]), "a serial number of its own");
    let errors = decode_errors("ogg-loop", whole_pages(&l.body));
    assert!(errors.is_empty(), "{errors}");
}
