//! The stream's descriptive metadata: name, genre, description, URL, public flag, and the
//! current title. Set from flags (`-icy-name`, `-title`, …), then by whoever knows better: a
//! source client's `Ice-*` headers, an upstream's `icy-*` headers and in-stream titles, an
//! admin metadata update. Listeners read it; title changes carry a sequence number so each
//! ICY listener sends a new title exactly once.

use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// How many titles the played history keeps (SHOUTcast keeps 20 by default).
pub const PLAYED: usize = 20;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Info {
    pub name: String,
    pub genre: String,
    pub description: String,
    pub url: String,
    pub public: bool,
    pub bitrate: String,
}

impl Info {
    /// The stream fields from headers, whichever spelling the sender uses: Icecast source
    /// clients send `Ice-Name`, `Ice-Public`…, SHOUTcast encoders and servers `icy-name`,
    /// `icy-pub`…. `get` looks a header up case-insensitively.
    pub fn from_headers<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Info {
        // Text from a peer: control characters go (they would break response headers and
        // log lines), as they do from titles.
        let field = |names: [&str; 2]| {
            names
                .iter()
                .find_map(|n| get(n))
                .unwrap_or_default()
                .trim()
                .chars()
                .filter(|c| !c.is_control())
                .collect::<String>()
        };
        Info {
            name: field(["ice-name", "icy-name"]),
            genre: field(["ice-genre", "icy-genre"]),
            description: field(["ice-description", "icy-description"]),
            url: field(["ice-url", "icy-url"]),
            public: field(["ice-public", "icy-pub"]) == "1",
            bitrate: field(["ice-bitrate", "icy-br"]),
        }
    }
}

#[derive(Default)]
struct State {
    info: Info,
    title: Arc<str>,
    title_seq: u64,
    /// The title's ICY metadata block, made once per title and shared by every listener
    /// that asked for metadata.
    block: Arc<[u8]>,
    /// The last [`PLAYED`] titles and when each began (Unix seconds), oldest first.
    played: VecDeque<(u64, Arc<str>)>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl State {
    /// The title just became current: into the history (an empty title is no song).
    fn played(&mut self) {
        if self.title.is_empty() {
            return;
        }
        if self.played.len() >= PLAYED {
            self.played.pop_front();
        }
        self.played.push_back((unix_now(), Arc::clone(&self.title)));
    }
}

#[derive(Default)]
pub struct Meta {
    state: Mutex<State>,
}

impl Meta {
    pub fn new(info: Info, title: &str) -> Meta {
        let title = crate::icy::clean_title(title);
        let mut state = State {
            info,
            block: Arc::from(crate::icy::block(&title)),
            title: Arc::from(title),
            title_seq: 1,
            played: VecDeque::new(),
        };
        state.played();
        Meta {
            state: Mutex::new(state),
        }
    }

    /// The played history, newest first: (Unix seconds the title began, title).
    pub fn played(&self) -> Vec<(u64, Arc<str>)> {
        self.state.lock().played.iter().rev().cloned().collect()
    }

    pub fn info(&self) -> Info {
        self.state.lock().info.clone()
    }

    /// Replaces the fields that `update` sets (non-empty), keeps the rest.
    pub fn merge_info(&self, update: &Info) {
        let mut s = self.state.lock();
        let i = &mut s.info;
        for (dst, src) in [
            (&mut i.name, &update.name),
            (&mut i.genre, &update.genre),
            (&mut i.description, &update.description),
            (&mut i.url, &update.url),
            (&mut i.bitrate, &update.bitrate),
        ] {
            if !src.is_empty() {
                dst.clone_from(src);
            }
        }
        i.public |= update.public;
    }

    /// Sets the title, cleaned by [`crate::icy::clean_title`] (every side's titles pass
    /// here); returns false when it did not change.
    pub fn set_title(&self, title: &str) -> bool {
        let title = crate::icy::clean_title(title);
        let mut s = self.state.lock();
        if *s.title == *title {
            return false;
        }
        let block = Arc::from(crate::icy::block(&title));
        s.title = Arc::from(title);
        s.block = block;
        s.title_seq = s.title_seq.wrapping_add(1);
        s.played();
        true
    }

    /// The current title's metadata block (see [`crate::icy::block`]) and its sequence
    /// number.
    pub fn block(&self) -> (Arc<[u8]>, u64) {
        let s = self.state.lock();
        (Arc::clone(&s.block), s.title_seq)
    }

    /// The current title and its sequence number.
    pub fn title(&self) -> (Arc<str>, u64) {
        let s = self.state.lock();
        (Arc::clone(&s.title), s.title_seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_played_history_keeps_the_last_titles_newest_first() {
        let m = Meta::new(Info::default(), "");
        assert!(m.played().is_empty(), "an empty title is no song");
        for i in 0..25 {
            assert!(m.set_title(&format!("Artist - Song {i}")));
        }
        assert!(
            !m.set_title("Artist - Song 24"),
            "the same title again is no change"
        );
        let played = m.played();
        assert_eq!(played.len(), PLAYED);
        assert_eq!(&*played[0].1, "Artist - Song 24");
        assert_eq!(&*played[PLAYED - 1].1, "Artist - Song 5");
        assert!(played.windows(2).all(|w| w[0].0 >= w[1].0));
    }

    #[test]
    fn info_from_either_header_spelling() {
        let headers = [
            ("Ice-Name", " Studio FM "),
            ("icy-genre", "Jazz"),
            ("ICE-PUBLIC", "1"),
            ("icy-br", "128"),
        ];
        let get = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| *v)
        };
        let i = Info::from_headers(get);
        assert_eq!(
            (
                i.name.as_str(),
                i.genre.as_str(),
                i.public,
                i.bitrate.as_str()
            ),
            ("Studio FM", "Jazz", true, "128")
        );
        assert_eq!(i.url, "");
    }

    #[test]
    fn titles_carry_a_sequence_and_info_merges() {
        let m = Meta::new(
            Info {
                name: "Flag name".into(),
                ..Info::default()
            },
            "",
        );
        let (_, s0) = m.title();
        assert!(m.set_title("Song"));
        assert!(!m.set_title("Song"));
        let (t, s1) = m.title();
        assert_eq!((&*t, s1), ("Song", s0 + 1));
        let (b, s2) = m.block();
        assert_eq!((&*b, s2), (&crate::icy::block("Song")[..], s1));
        m.merge_info(&Info {
            genre: "Jazz".into(),
            ..Info::default()
        });
        assert_eq!(m.info().name, "Flag name");
        assert_eq!(m.info().genre, "Jazz");
    }
}
