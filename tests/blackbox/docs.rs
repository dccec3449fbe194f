//! Issue 25, the README as a front door: every relative link in README.md and docs/*.md
//! resolves (to a file, and to a heading when it names an anchor), the README stays within
//! 400 lines, and its first code block is still `make run` and `make test`.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

const README_MAX_LINES: usize = 400;

/// The lines of `text`, with those of fenced code blocks (fences included) made empty.
fn outside_fences(text: &str) -> Vec<&str> {
    let mut fenced = false;
    text.lines()
        .map(|line| {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
                ""
            } else if fenced {
                ""
            } else {
                line
            }
        })
        .collect()
}

/// The prose of `text`: outside fenced blocks, with inline code spans left out (a span ends
/// at a blank line at the latest), so that code is never taken for a link.
fn prose(text: &str) -> String {
    let mut out = String::new();
    let mut in_code = false;
    for line in outside_fences(text) {
        if line.trim().is_empty() {
            in_code = false;
        }
        for c in line.chars() {
            if c == '`' {
                in_code = !in_code;
            } else if !in_code {
                out.push(c);
            }
        }
        out.push('\n');
    }
    out
}

/// The targets of the markdown links `[text](target)` in `text` (the text may span lines).
fn link_targets(text: &str) -> Vec<String> {
    let prose = prose(text);
    let mut targets = Vec::new();
    let mut rest = prose.as_str();
    while let Some(at) = rest.find("](") {
        rest = rest.get(at + 2..).unwrap_or_default();
        let Some(end) = rest.find(')') else { break };
        targets.push(rest.get(..end).unwrap_or_default().trim().to_string());
        rest = rest.get(end + 1..).unwrap_or_default();
    }
    targets
}

/// GitHub's anchor for a heading: lowercase, characters other than alphanumerics, spaces,
/// `-` and `_` dropped, spaces turned into `-`.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|&c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of the ATX headings (`# …` to `###### …`) of a markdown text.
fn anchors(text: &str) -> BTreeSet<String> {
    outside_fences(text)
        .into_iter()
        .filter_map(|line| {
            let title = line.trim_start_matches('#');
            let level = line.len() - title.len();
            ((1..=6).contains(&level) && title.starts_with(' ')).then(|| anchor(title))
        })
        .collect()
}

/// The first fenced code block of `text`, without its fences.
fn first_code_block(text: &str) -> String {
    let mut block = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            if inside {
                break;
            }
            inside = true;
        } else if inside {
            block.push(line);
        }
    }
    block.join("\n")
}

/// The problems with one link `target` found in the document at `doc`, if any.
fn check_link(root: &Path, doc: &Path, target: &str) -> Option<String> {
    let (file, fragment) = match target.split_once('#') {
        Some((file, fragment)) => (file, Some(fragment)),
        None => (target, None),
    };
    let resolved = if file.is_empty() {
        doc.to_path_buf()
    } else {
        doc.parent().unwrap_or(root).join(file)
    };
    let shown = doc.strip_prefix(root).unwrap_or(doc).display();
    if !resolved.exists() {
        return Some(format!(
            "{shown}: ({target}): {} does not exist",
            resolved.display()
        ));
    }
    let fragment = fragment.filter(|f| !f.is_empty())?;
    if resolved.extension().is_some_and(|e| e == "md") {
        let text = fs::read_to_string(&resolved).unwrap_or_default();
        if !anchors(&text).contains(fragment) {
            return Some(format!(
                "{shown}: ({target}): no heading in {} makes #{fragment}",
                resolved.display()
            ));
        }
    }
    None
}

#[test]
fn every_relative_link_in_the_readme_and_docs_resolves() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let readme = root.join("README.md");
    let mut docs = vec![readme.clone()];
    let mut guides: Vec<PathBuf> = fs::read_dir(root.join("docs"))
        .expect("read docs/")
        .map(|entry| entry.expect("read docs/").path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .collect();
    guides.sort();
    docs.extend(guides);

    let mut failures = Vec::new();
    let mut checked = 0usize;
    for doc in &docs {
        let text = fs::read_to_string(doc).expect("read a markdown file");
        for target in link_targets(&text) {
            let external = ["http://", "https://", "mailto:"]
                .into_iter()
                .any(|scheme| target.starts_with(scheme));
            if target.is_empty() || external {
                continue;
            }
            checked += 1;
            failures.extend(check_link(&root, doc, &target));
        }
    }

    let readme_text = fs::read_to_string(&readme).expect("read README.md");
    let lines = readme_text.lines().count();
    if lines > README_MAX_LINES {
        failures.push(format!(
            "README.md has {lines} lines, more than {README_MAX_LINES}"
        ));
    }
    let first = first_code_block(&readme_text);
    for command in ["make run", "make test"] {
        if !first.contains(command) {
            failures.push(format!(
                "README.md's first code block does not contain `{command}`"
            ));
        }
    }

    assert!(
        checked > 0,
        "no relative links found in {} files",
        docs.len()
    );
    assert!(
        failures.is_empty(),
        "{} problem(s) in README.md and docs/:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
