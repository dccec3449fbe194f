//! `-playlist`: files one after another in real time, titles from their tags (or names),
//! `/admin/next` skipping.

use crate::common::*;
use std::time::Duration;

fn title(s: &Server) -> String {
    let mut st = Listener::get(s.addr, "/status-json.xsl", 1);
    st.read_to_eof(Duration::from_secs(5));
    let v: serde_json::Value = serde_json::from_slice(&st.body).unwrap();
    v["icestats"]["source"][0]["title"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_playlist_plays_its_files_in_order_with_their_titles_and_next_skips() {
    let dir = scratch("playlist");
    let list = dir.join("list.m3u");
    std::fs::write(
        &list,
        format!(
            "#EXTM3U\n# the voice, then the tone, then the VBR file\n{}\n{}\n{}\n",
            fixture("voice-40k-16k-id3.mp3").display(),
            fixture("tone-128k-44k1.mp3").display(),
            fixture("vbr-6s.mp3").display()
        ),
    )
    .unwrap();
    let s = Server::start(&[
        "-playlist",
        list.to_str().unwrap(),
        "-frame-filter",
        "mp3",
        "-frame-bytes",
        "2881",
        "-admin-password",
        "adm",
    ]);
    let mut l = s.listen();
    // The voice file's ID3v2 title, then the tone (no tags: its name) after its 2 s.
    assert!(
        eventually(Duration::from_secs(5), || title(&s)
            .contains("Fixture title")),
        "{}",
        title(&s)
    );
    assert!(s
        .wait_log("playlist: 1/3", Duration::from_secs(5))
        .is_some());
    assert!(
        eventually(Duration::from_secs(10), || title(&s) == "tone-128k-44k1"),
        "{}",
        title(&s)
    );
    assert!(s
        .wait_log("playlist: 2/3", Duration::from_secs(1))
        .is_some());
    // The tone plays 4 s; /admin/next moves on at once.
    let mut next = get_with_auth(s.addr, "/admin/next", "admin", "adm");
    assert_eq!(next.status, 200, "{}", next.head);
    next.read_to_eof(Duration::from_secs(5));
    assert!(
        s.wait_log("playlist: 3/3", Duration::from_secs(2))
            .is_some(),
        "{}",
        s.log_text()
    );
    assert!(eventually(Duration::from_secs(2), || title(&s) == "vbr-6s"));
    // Then it loops.
    assert!(s
        .wait_log_count("playlist: 1/3", 2, Duration::from_secs(10))
        .is_some());
    // The listener got whole MP3 frames throughout, across the files' tags and rates.
    let body = l.read_body(40_000, Duration::from_secs(10)).to_vec();
    let frames = mp3_frames(&body);
    let covered: usize = frames.iter().map(|f| f.1).sum();
    assert!(
        covered + 2881 >= body.len(),
        "{covered} of {} bytes are frames",
        body.len()
    );
    // Not a playlist: /admin/next says so.
    let t = Server::start(&["-tone", "-admin-password", "adm"]);
    assert_eq!(
        get_with_auth(t.addr, "/admin/next", "admin", "adm").status,
        400
    );
}
