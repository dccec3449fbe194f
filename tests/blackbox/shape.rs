//! The shape of `src/`, from its text: eight figures, each at most its ceiling in [`CEILINGS`],
//! which are the figures of the day they were set and only go down. `make shape` prints them
//! with their offenders, one a line: what to fix. Left out: files named `tests.rs`, a file
//! from a `#[cfg(test)]` line followed by `mod tests {` on (unit tests end every file here),
//! comments, and the insides of literals wherever code is read. A figure counts:
//!
//! - folder import cycles: pairs of top-level folders of `src/` (`main`: files directly in it)
//!   (a file directly in it is its own: `main`, `error`) naming each other's modules by
//!   `crate::b::…`, `super::…`, a child's name or a path of
//!   `use a::{b, c::d}`; a path names the file of its longest prefix that is a module (`mod.rs`
//!   is its folder's), never the crate root (`crate::limited` is a macro of `util/`).
//! - file import cycles: pairs of files naming each other so (not a `mod.rs` and its child).
//! - core to leaf imports: lines of stream/, ring/, frame/ naming input, sink, link, server, http.
//! - format name matches outside frame: lines outside `frame/` comparing a literal naming a
//!   format (mp3, adts, aac, ogg, opus, vorbis, flac, raw, ts, mpegts; any case) or a content
//!   type (`audio/…`, `video/…`): after `==`, `!=`, `== Some(`, `eq_ignore_ascii_case(`,
//!   `starts_with(`, `ends_with(`; before `==`, `!=`, `|`; in `matches!(`; in a match arm's
//!   pattern (before its line's `=>`: `"raw" if … =>`, `Some("adts") =>`). No enum names
//!   formats: the framer table in `frame/mod.rs` is the one place a name is matched.
//!   Names passed to functions (`silent("mp3", …)`) and magic bytes (`b"OpusHead"`) don't.
//! - string error results: `Result<…, String>` (`<` matched to its `>` by depth).
//! - long functions: over 80 lines, `fn` line to closing brace; long files: over 400 lines.
//! - metric readers in tests: functions of `tests/` and `benches/` named `metric…` that go
//!   through a /metrics page's lines, each its own way (this file left out).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// Each figure and the most it may be, in the order the test measures them.
const CEILINGS: [(&str, usize); 8] = [
    ("folder import cycles", 0),
    ("file import cycles", 0),
    ("core to leaf imports", 0),
    ("format name matches outside frame", 0),
    ("string error results", 1),
    ("long functions", 0),
    ("long files", 0),
    ("metric readers in tests", 1),
];

const LONG_FUNCTION_LINES: usize = 80;
const LONG_FILE_LINES: usize = 400;
const CORE: [&str; 3] = ["stream", "ring", "frame"];
const LEAVES: [&str; 5] = ["input", "sink", "link", "server", "http"];
const FORMATS: [&str; 10] = [
    "mp3", "adts", "aac", "ogg", "opus", "vorbis", "flac", "raw", "ts", "mpegts",
];
/// What a format name's literal compared comes after (with `SKIPPED` and `Some` between).
const COMPARED_AFTER: [&str; 4] = ["==", "!=", "_case", "_with"];
const SKIPPED: [char; 3] = [' ', '&', '('];
/// How a raw string ends, by its number of `#` (up to three).
const RAW_ENDS: [&str; 4] = ["\"", "\"#", "\"##", "\"###"];

/// A figure's offenders, one line each: the figure is how many.
type Figure = Vec<String>;
/// A file naming another: (file, line, file named), the files by index in `sources`.
type Ref = (usize, usize, usize);

/// One file of `src/`, its test code left out.
struct Source {
    /// From the crate root: `src/link/wire/mod.rs`.
    path: String,
    text: String,
    /// `text` with comments and the insides of literals made spaces, byte for byte.
    code: String,
}

impl Source {
    /// Its module below `crate`: `["link", "wire"]` for `src/link/wire/mod.rs`; none for `main`.
    fn module(&self) -> Vec<String> {
        let name = self.path.trim_start_matches("src/").trim_end_matches(".rs");
        let mut module: Vec<String> = name.split('/').map(String::from).collect();
        if matches!(module.last().map(String::as_str), Some("mod" | "main")) {
            module.pop();
        }
        module
    }

    /// Its top-level folder in `src/` (`main` for a file directly in it).
    fn folder(&self) -> &str {
        match self.path.split('/').collect::<Vec<_>>()[..] {
            [_, folder, _, ..] => folder,
            [_, file] => file.strip_suffix(".rs").unwrap_or(file),
            _ => "main",
        }
    }
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn line_of(text: &str, at: usize) -> usize {
    text.get(..at).unwrap_or(text).matches('\n').count() + 1
}

/// `text` with comments and the insides of string and char literals made spaces, newlines
/// kept. `'{'` is a char, `'a` a lifetime, `r#"…"#` a raw string.
fn lex(text: &str) -> String {
    let b = text.as_bytes();
    let mut code = b.to_vec();
    let at = |i: usize| char::from(b.get(i).copied().unwrap_or(0));
    let until = |from: usize, end: &str| {
        let found = text.get(from..).and_then(|rest| rest.find(end));
        found.map_or(b.len(), |k| from + k)
    };
    let mut i = 0;
    while i < b.len() {
        let hashes = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
        let raw = at(i) == 'r' && (i == 0 || !is_ident(at(i - 1))) && at(i + 1 + hashes) == '"';
        let (start, close) = (i + 2 + hashes, RAW_ENDS[hashes.min(3)]);
        // What to blank (from, to), and what to skip after it.
        let (from, to, skip) = match (at(i), at(i + 1)) {
            ('/', '/') => (i, until(i, "\n"), 0),
            ('/', '*') => (i, until(i + 2, "*/") + 2, 0),
            _ if raw => (start, until(start, close), close.len()),
            ('"', _) => {
                let mut j = i + 1;
                while j < b.len() && at(j) != '"' {
                    j += if at(j) == '\\' { 2 } else { 1 };
                }
                (i + 1, j, 1)
            }
            ('\'', '\\') => (i + 1, until(i + 3, "'"), 1),
            ('\'', _) if at(i + 2) == '\'' => (i + 1, i + 2, 1),
            _ => (i, i, 1),
        };
        for k in (from..to.min(b.len())).filter(|&k| b[k] != b'\n') {
            code[k] = b' ';
        }
        i = to + skip;
    }
    String::from_utf8(code).expect("blanking keeps UTF-8")
}

/// The `.rs` files under `root/dir`, by path: (path from `root`, text).
fn rust_files(root: &Path, dir: &str) -> Vec<(String, String)> {
    let mut files = Vec::new();
    let entries = fs::read_dir(root.join(dir)).unwrap_or_else(|e| panic!("read {dir}: {e}"));
    for entry in entries {
        let name = entry.expect("read a directory entry").file_name();
        let path = format!("{dir}/{}", name.to_string_lossy());
        if root.join(&path).is_dir() {
            files.extend(rust_files(root, &path));
        } else if path.ends_with(".rs") {
            let text = fs::read_to_string(root.join(&path));
            let text = text.unwrap_or_else(|e| panic!("read {path}: {e}"));
            files.push((path, text));
        }
    }
    files.sort();
    files
}

fn sources(root: &Path) -> Vec<Source> {
    let files = rust_files(root, "src").into_iter();
    let files = files.filter(|(path, _)| !path.ends_with("/tests.rs"));
    let source = |(path, text): (String, String)| {
        let tests = text.find("\n#[cfg(test)]\nmod tests {");
        let text = text[..tests.map_or(text.len(), |at| at + 1)].to_string();
        let code = lex(&text);
        Source { path, text, code }
    };
    files.map(source).collect()
}

/// The paths `code` names, with their lines: each `a::b::c`, and each path of a `use` tree
/// (`use a::{b, c::d as e}` names `a::b` and `a::c::d`).
fn paths(code: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in code.lines().enumerate() {
        let pieces = line.split(|c: char| !is_ident(c) && c != ':');
        let chains = pieces.filter(|p| p.contains("::") && !p.ends_with("::"));
        found.extend(chains.map(|chain| (n + 1, chain.to_string())));
    }
    for (at, _) in code.match_indices("use ") {
        if !code[..at].ends_with(is_ident) {
            let end = code[at..].find(';').map_or(code.len(), |end| at + end);
            let tree = expand(code[at + 4..end].trim());
            found.extend(tree.into_iter().map(|path| (line_of(code, at), path)));
        }
    }
    found
}

/// The paths of a `use` tree: `a::{b, c::{d as e, self}}` is `a::b`, `a::c::d`, `a::c::self`.
fn expand(tree: &str) -> Vec<String> {
    let Some((prefix, group)) = tree.split_once('{') else {
        let path = tree.split(" as ").next().unwrap_or(tree);
        return vec![path.split_whitespace().collect::<String>()];
    };
    let group = group.trim_end().strip_suffix('}').unwrap_or(group);
    let mut depth = 0;
    let items = group.split(|c: char| {
        depth += i32::from(c == '{') - i32::from(c == '}');
        c == ',' && depth == 0
    });
    let trees = items.map(|item| expand(&format!("{prefix}{item}")));
    trees.flatten().collect()
}

/// Every file's naming of another: a path names the file of its longest prefix that is a
/// module, read from the file's module (a bare first name: a child module's).
fn references(sources: &[Source]) -> Vec<Ref> {
    let modules: BTreeMap<Vec<String>, usize> =
        sources.iter().map(Source::module).zip(0..).collect();
    let mut found = Vec::new();
    for (i, s) in sources.iter().enumerate() {
        let module = &s.module()[..];
        for (line, path) in paths(&s.code) {
            let path: Vec<String> = path.split("::").map(String::from).collect();
            let ups = path.iter().take_while(|s| s.as_str() == "super").count();
            let absolute = match path[0].as_str() {
                "crate" => path[1..].to_vec(),
                "self" => [module, &path[1..]].concat(),
                "super" => [&module[..module.len().saturating_sub(ups)], &path[ups..]].concat(),
                _ if modules.contains_key([module, &path[..1]].concat().as_slice()) => {
                    [module, path.as_slice()].concat()
                }
                _ => continue,
            };
            let mut prefixes = (1..=absolute.len()).rev();
            let to = prefixes.find_map(|k| modules.get(&absolute[..k]));
            found.extend(to.filter(|&&to| to != i).map(|&to| (i, line, to)));
        }
    }
    found
}

/// The pairs of files, or of their `key`s, naming each other, and a line where each does.
fn cycles(sources: &[Source], refs: &[Ref], key: fn(&Source) -> &str) -> Figure {
    let mut first = BTreeMap::new();
    for &(from, line, to) in refs {
        let (a, b) = (key(&sources[from]), key(&sources[to]));
        if a != b {
            let at = || format!("{}:{line}", sources[from].path);
            first.entry((a, b)).or_insert_with(at);
        }
    }
    let pairs = first.iter().filter(|((a, b), _)| a < b);
    let both = pairs.filter_map(|((a, b), ab)| Some((a, b, ab, first.get(&(*b, *a))?)));
    both.map(|(a, b, ab, ba)| format!("{a} <-> {b}: {ab} / {ba}"))
        .collect()
}

fn folder_import_cycles(sources: &[Source], refs: &[Ref]) -> Figure {
    cycles(sources, refs, Source::folder)
}

/// A `mod.rs` and a file of its own folder naming each other is how Rust declares a module
/// and its children use what it re-exports: not counted.
fn file_import_cycles(sources: &[Source], refs: &[Ref]) -> Figure {
    let parent = |a: &Source, b: &Source| {
        a.path
            .strip_suffix("mod.rs")
            .is_some_and(|folder| b.path.starts_with(folder))
    };
    let apart = |&&(from, _, to): &&Ref| {
        let (a, b) = (&sources[from], &sources[to]);
        !parent(a, b) && !parent(b, a)
    };
    let refs: Vec<Ref> = refs.iter().filter(apart).copied().collect();
    cycles(sources, &refs, |s| s.path.as_str())
}

fn core_to_leaf_imports(sources: &[Source], refs: &[Ref]) -> Figure {
    let leaf = |&&(from, _, to): &&Ref| {
        CORE.contains(&sources[from].folder()) && LEAVES.contains(&sources[to].folder())
    };
    let lines: BTreeSet<(usize, usize)> = refs.iter().filter(leaf).map(|r| (r.0, r.1)).collect();
    let at = |(from, line): (usize, usize)| format!("{}:{line}", sources[from].path);
    lines.into_iter().map(at).collect()
}

fn format_name_matches_outside_frame(sources: &[Source]) -> Figure {
    let mut found = Vec::new();
    for s in sources.iter().filter(|s| s.folder() != "frame") {
        for (n, (line, text)) in s.code.lines().zip(s.text.lines()).enumerate() {
            let quotes: Vec<usize> = line.match_indices('"').map(|(at, _)| at).collect();
            let matched = quotes.chunks_exact(2).any(|pair| {
                let literal = text[pair[0] + 1..pair[1]].to_lowercase();
                let (before, after) = (&line[..pair[0]], line[pair[1] + 1..].trim_start());
                let b = before.trim_end_matches(SKIPPED).trim_end_matches("Some");
                let b = b.trim_end_matches(SKIPPED);
                let named = FORMATS.contains(&literal.as_str())
                    || matches!(literal.split_once('/'), Some(("audio" | "video", _)));
                named
                    && (COMPARED_AFTER.iter().any(|&op| b.ends_with(op))
                        || ["==", "!=", "|"].iter().any(|&op| after.starts_with(op))
                        || (after.contains("=>") && !before.contains("=>"))
                        || before.contains("matches!("))
            });
            if matched {
                found.push(format!("{}:{}: {}", s.path, n + 1, text.trim()));
            }
        }
    }
    found
}

fn string_error_results(sources: &[Source]) -> Figure {
    let mut found = Vec::new();
    for s in sources {
        let code = s.code.as_bytes();
        for (at, _) in s.code.match_indices("Result<") {
            // The depth in `<>` (`->` and `=>` are no `>`), and where the last argument starts.
            let (mut depth, mut last, mut j) = (1, at + 7, at + 7);
            while let Some(&byte) = code.get(j).filter(|_| depth > 0) {
                match byte {
                    b'<' => depth += 1,
                    b'>' if !matches!(code[j - 1], b'-' | b'=') => depth -= 1,
                    b',' if depth == 1 => last = j + 1,
                    _ => {}
                }
                j += 1;
            }
            let ident = s.code[..at].ends_with(is_ident);
            if !ident && depth == 0 && last > at + 7 && s.code[last..j - 1].trim() == "String" {
                found.push(format!("{}:{}", s.path, line_of(&s.code, at)));
            }
        }
    }
    found
}

/// The functions with a body in file `path`: (`name path:line`, lines from `fn` to the
/// closing brace). A `;` outside brackets before any `{` ends a declaration without one.
fn functions(path: &str, code: &str) -> Vec<(String, usize)> {
    let mut found = Vec::new();
    for (at, _) in code.match_indices("fn ") {
        let rest = code[at + 3..].trim_start();
        let name: String = rest.chars().take_while(|&c| is_ident(c)).collect();
        let (mut nest, mut depth, mut j) = (0, 0, code.len() - rest.len() + name.len());
        let close = loop {
            match code.as_bytes().get(j) {
                Some(b'(' | b'[') => nest += 1,
                Some(b')' | b']') => nest -= 1,
                Some(b'{') => depth += 1,
                Some(b'}') if depth == 1 => break Some(j),
                Some(b'}') => depth -= 1,
                Some(b';') if nest == 0 && depth == 0 => break None,
                None => break None,
                _ => {}
            }
            j += 1;
        };
        if let Some(close) = close.filter(|_| !name.is_empty() && !code[..at].ends_with(is_ident)) {
            let line = line_of(code, at);
            let length = line_of(code, close) - line + 1;
            found.push((format!("{name} {path}:{line}"), length));
        }
    }
    found
}

fn long_functions(sources: &[Source]) -> Figure {
    let all = sources.iter().flat_map(|s| functions(&s.path, &s.code));
    let long = all.filter(|&(_, n)| n > LONG_FUNCTION_LINES);
    long.map(|(at, n)| format!("{at} {n} lines")).collect()
}

fn long_files(sources: &[Source]) -> Figure {
    let lengths = sources.iter().map(|s| (s, s.code.lines().count()));
    let long = lengths.filter(|&(_, n)| n > LONG_FILE_LINES);
    long.map(|(s, n)| format!("{} {n} lines", s.path)).collect()
}

fn metric_readers_in_tests(root: &Path) -> Figure {
    let mut found = Vec::new();
    for (path, text) in [rust_files(root, "tests"), rust_files(root, "benches")].concat() {
        if path == "tests/blackbox/shape.rs" {
            continue; // its own figure's function has such a name
        }
        let code = lex(&text);
        let lines: Vec<&str> = code.lines().collect();
        for (at, length) in functions(&path, &code) {
            // `name path:line`: a reader is a `metric…` function going through a page's lines.
            let line: usize = at
                .rsplit(':')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(1);
            let body = lines.get(line - 1..line - 1 + length).unwrap_or_default();
            if at.starts_with("metric") && body.iter().any(|l| l.contains(".lines()")) {
                found.push(at);
            }
        }
    }
    found
}

#[test]
fn the_source_keeps_its_shape() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sources = sources(root);
    let refs = references(&sources);
    let figures = [
        folder_import_cycles(&sources, &refs),
        file_import_cycles(&sources, &refs),
        core_to_leaf_imports(&sources, &refs),
        format_name_matches_outside_frame(&sources),
        string_error_results(&sources),
        long_functions(&sources),
        long_files(&sources),
        metric_readers_in_tests(root),
    ];
    let mut over = Vec::new();
    for (&(name, ceiling), offenders) in CEILINGS.iter().zip(&figures) {
        let n = offenders.len();
        println!("shape: {name} {n} (ceiling {ceiling})");
        offenders.iter().for_each(|o| println!("    {o}"));
        if n > ceiling {
            over.push(format!("{name} {n} > {ceiling}"));
        }
    }
    assert!(
        over.is_empty(),
        "src/ grew out of its shape ({}): `make shape` lists the offenders; ceilings only go down",
        over.join(", ")
    );
}
