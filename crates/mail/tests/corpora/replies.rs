//! Quoted-reply stripping on the reply corpora: `reply-github` (github/email_reply_parser),
//! `reply-crisp` (crisp-oss/email-reply-parser, 70% of it; the rest is held back to evaluate
//! the stripper on unseen mail) and `reply-talon` (mailgun/talon). Every expectation JSON is run.
//!
//! How the upstream subjects map onto [`strip`]:
//!
//! * github and crisp split a body into fragments and hide the trailing quoted and signature
//!   ones; their `visible_text`/`parse_reply` is the help desk's visible text, so those and the
//!   first fragment of a top-posted reply are checked against [`strip::visible_text`]. Which
//!   fragments are visible comes from the fixture's own `hidden` flags; when it has none, the
//!   libraries' rule is applied to what the checks say: fragments up to the last one asserted
//!   to start with ordinary text are visible, later ones (asserted to start like a quote header,
//!   `>`, `-` or `_`) are hidden.
//!   - Only fragment 0 visible: its text must *equal* the visible text, and the patterns of the
//!     hidden fragments must *not* be found in it (that is how the quote is shown to be gone).
//!   - Several visible fragments (inline replies): fragment 0 must open the visible text and
//!     every other visible fragment must be found in it; checks on hidden fragments are not
//!     applicable there, because an inline reply shows quotes that look like them.
//!   - `fragments.count == 1` means nothing is hidden: the visible text is the whole body.
//! * talon's `plain_reply` (from `.eml` fixtures: the parsed mail's text part) and
//!   `html_reply*` (from `.html` fixtures, turned into text with html2text, as talon compares
//!   HTML replies with every whitespace removed) are checked against [`strip::strip_text`] /
//!   [`strip::strip_html`] with [`Signatures::Keep`]: talon removes quotations only and
//!   leaves signatures to a separate step (its iPhone and Sparrow expectations keep them).
//!   `html_reply.without_whitespace` names talon's serialised HTML; ours is serialised by
//!   another library, so the text a reader sees is compared.
//!
//! Texts are compared line by line without trailing whitespace and without blank lines at
//! either end: fragments keep the newline that separated them, talon trims, and trailing spaces
//! are invisible. Checks on what the stripper does not model (fragment counts above one,
//! `quoted`/`signature` flags, the quoted part on its own, the string encoding, a rule stated
//! in words) are counted as not applicable and listed by subject. `parse_seconds` is measured.
//!
//! The figure is the **exact-match rate**: fixtures whose visible-text checks all pass, over
//! fixtures that have at least one. The test fails below 90%, or when a time limit is missed.
//!
//! Run with `cargo test -p helpline-mail --test corpora replies -- --nocapture` to see it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use helpline_mail::parse::{DEFAULT_MAX_MESSAGE_BYTES, InboundMail};
use helpline_mail::strip::{self, Signatures};
use regex::Regex;
use serde_json::Value;

const MIN_EXACT_MATCH_RATE: f64 = 0.90;
const SETS: [&str; 3] = ["reply-github", "reply-crisp", "reply-talon"];

/// What the stripper made of one fixture.
struct Output {
    /// The body given to the stripper.
    input: String,
    /// The visible text (HTML fixtures: the visible HTML rendered as text).
    visible: String,
    /// How long stripping took.
    elapsed: Duration,
}

/// The outcome of one check.
enum Verdict {
    /// A check on the visible text.
    Visible(Result<(), String>),
    /// A check the stripper can meet that is not about the text (time limits).
    Other(Result<(), String>),
    /// Something the stripper does not model.
    NotApplicable,
}

/// Which fragments a github/crisp fixture shows.
struct Visibility {
    visible: BTreeSet<usize>,
    hidden: BTreeSet<usize>,
}

impl Visibility {
    fn only_first(&self) -> bool {
        self.visible.iter().all(|&i| i == 0)
    }
}

#[derive(Default)]
struct Tally {
    fixtures: usize,
    with_visible: usize,
    exact: usize,
    failures: Vec<String>,
    without_visible: Vec<String>,
    not_applicable: BTreeMap<String, usize>,
    other_passed: usize,
    other_failed: Vec<String>,
}

#[test]
fn reply_corpora_exact_match_rate() {
    let mut total = Tally::default();
    for set in SETS {
        let dir = crate::corpus(set);
        let mut expectations = Vec::new();
        collect_json(&dir.join("expected"), &mut expectations);
        expectations.sort();
        assert!(
            !expectations.is_empty(),
            "{set}: no expectation files under {}",
            dir.join("expected").display()
        );
        let mut tally = Tally::default();
        for path in &expectations {
            let name = path
                .strip_prefix(dir.join("expected"))
                .unwrap_or(path)
                .display()
                .to_string();
            run_fixture(set, &dir, path, &name, &mut tally);
        }
        report(set, &tally);
        merge(&mut total, tally);
    }
    report("TOTAL", &total);

    let rate = ratio(total.exact, total.with_visible);
    assert!(
        rate >= MIN_EXACT_MATCH_RATE,
        "exact-match rate {:.1}% is below {:.0}%",
        rate * 100.0,
        MIN_EXACT_MATCH_RATE * 100.0
    );
    assert!(
        total.other_failed.is_empty(),
        "checks failed: {:?}",
        total.other_failed
    );
}

fn collect_json(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_json(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
}

fn run_fixture(set: &str, dir: &Path, json: &Path, name: &str, tally: &mut Tally) {
    let bytes =
        std::fs::read(json).unwrap_or_else(|e| panic!("cannot read {}: {e}", json.display()));
    let expectation: Value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", json.display()));
    let fixture = expectation["fixture"]
        .as_str()
        .unwrap_or_else(|| panic!("{name}: no fixture"));
    let output = strip_fixture(set, &dir.join(fixture));
    let checks = expectation["checks"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let visibility = visibility(&checks);

    tally.fixtures += 1;
    let mut visible_checks = 0;
    let mut failed = Vec::new();
    let mut skipped = Vec::new();
    for check in &checks {
        let subject = check["subject"].as_str().unwrap_or("?");
        match evaluate(check, &output, &visibility, dir) {
            Verdict::Visible(result) => {
                visible_checks += 1;
                if let Err(why) = result {
                    failed.push(format!("{subject} {}: {why}", op(check)));
                }
            }
            Verdict::Other(result) => {
                skipped.push(subject.to_owned());
                match result {
                    Ok(()) => tally.other_passed += 1,
                    Err(why) => tally
                        .other_failed
                        .push(format!("{set}/{name}: {subject}: {why}")),
                }
            }
            Verdict::NotApplicable => {
                *tally
                    .not_applicable
                    .entry(format!("{subject} {}", op(check)))
                    .or_default() += 1;
                skipped.push(subject.to_owned());
            }
        }
    }
    if visible_checks == 0 {
        tally
            .without_visible
            .push(format!("{name} (its checks: {})", skipped.join(", ")));
        return;
    }
    tally.with_visible += 1;
    if failed.is_empty() {
        tally.exact += 1;
    } else {
        tally.failures.push(format!(
            "{name}: {}\n      visible text: {:?}",
            failed.join("; "),
            shorten(&output.visible, 300)
        ));
    }
}

/// Runs the stripper the way the fixture's set calls for (see the module comment).
fn strip_fixture(set: &str, path: &Path) -> Output {
    let bytes =
        std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if set == "reply-talon" && extension == "html" {
        let html = String::from_utf8_lossy(&bytes).into_owned();
        let started = Instant::now();
        let stripped = strip::strip_html(&html, Signatures::Keep);
        let elapsed = started.elapsed();
        return Output {
            visible: html_to_text(&stripped.text),
            input: html,
            elapsed,
        };
    }
    let input = if extension == "eml" {
        let mail = InboundMail::parse(&bytes, DEFAULT_MAX_MESSAGE_BYTES)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        mail.text.unwrap_or_default()
    } else {
        String::from_utf8_lossy(&bytes).into_owned()
    };
    let signatures = if set == "reply-talon" {
        Signatures::Keep
    } else {
        Signatures::Strip
    };
    let started = Instant::now();
    let visible = strip::strip_text(&input, signatures).text;
    Output {
        elapsed: started.elapsed(),
        input,
        visible,
    }
}

fn html_to_text(html: &str) -> String {
    html2text::config::plain_no_decorate()
        .string_from_read(html.as_bytes(), 10_000)
        .unwrap_or_else(|e| panic!("html2text failed: {e}"))
}

fn op(check: &Value) -> &str {
    check["op"].as_str().unwrap_or("?")
}

/// `fragments[3].text.trim` → 3.
fn fragment_index(subject: &str) -> Option<usize> {
    let rest = subject.strip_prefix("fragments[")?;
    let (index, tail) = rest.split_once(']')?;
    matches!(tail, ".text" | ".text.trim")
        .then(|| index.parse().ok())
        .flatten()
}

/// The fixture's visible fragments: from its `hidden` flags, else inferred (module comment).
fn visibility(checks: &[Value]) -> Visibility {
    let mut visible = BTreeSet::new();
    let mut hidden = BTreeSet::new();
    for check in checks {
        let subject = check["subject"].as_str().unwrap_or("");
        if op(check) != "equals" {
            continue;
        }
        if subject == "fragments[*].hidden"
            && let Some(flags) = check["value"].as_array()
        {
            for (i, flag) in flags.iter().enumerate() {
                if flag.as_bool() == Some(true) {
                    hidden.insert(i);
                } else {
                    visible.insert(i);
                }
            }
        } else if let Some(index) = subject
            .strip_prefix("fragments[")
            .and_then(|r| r.strip_suffix("].hidden"))
            .and_then(|i| i.parse::<usize>().ok())
        {
            if check["value"].as_bool() == Some(true) {
                hidden.insert(index);
            } else {
                visible.insert(index);
            }
        }
    }
    if !visible.is_empty() || !hidden.is_empty() {
        return Visibility { visible, hidden };
    }

    // No flags: the libraries hide only a trailing run of quote and signature fragments.
    let mut asserted = BTreeSet::new();
    let mut last_ordinary = 0;
    for check in checks {
        let Some(index) = check["subject"].as_str().and_then(fragment_index) else {
            continue;
        };
        asserted.insert(index);
        let start = match op(check) {
            "matches" => check["regex"].as_str().and_then(|r| r.strip_prefix('^')),
            "equals" => check["value"].as_str().map(str::trim_start),
            _ => None,
        };
        let looks_quoted = |s: &str| ["On", ">", "-", "_"].iter().any(|p| s.starts_with(p));
        if let Some(start) = start
            && !looks_quoted(start)
        {
            last_ordinary = last_ordinary.max(index);
        }
    }
    for index in asserted.into_iter().chain([0]) {
        if index <= last_ordinary {
            visible.insert(index);
        } else {
            hidden.insert(index);
        }
    }
    Visibility { visible, hidden }
}

fn evaluate(check: &Value, out: &Output, visibility: &Visibility, dir: &Path) -> Verdict {
    let subject = check["subject"].as_str().unwrap_or("");
    let op = op(check);
    match subject {
        "visible_text" | "visible_text.trim" | "parse_reply" | "plain_reply" => match op {
            "equals_subject" | "equals_expression" => Verdict::NotApplicable,
            _ => Verdict::Visible(text_check(check, &out.visible, dir, false)),
        },
        "fragments.count" => match (op, check["value"].as_u64()) {
            ("equals", Some(1)) => Verdict::Visible(same(&out.visible, &out.input)),
            _ => Verdict::NotApplicable,
        },
        "html_reply_as_text.without_whitespace" | "html_reply.without_whitespace"
            if op == "equals" =>
        {
            let expected = check["value"].as_str().unwrap_or("");
            let expected = if subject.starts_with("html_reply.") {
                html_to_text(expected)
            } else {
                expected.to_owned()
            };
            let (got, want) = (squeeze(&out.visible), squeeze(&expected));
            Verdict::Visible(if got == want {
                Ok(())
            } else {
                Err(format!("expected {want:?}, got {got:?}"))
            })
        }
        "parse_seconds" if op == "less_than" => {
            let limit = check["value"].as_f64().unwrap_or(0.0);
            let took = out.elapsed.as_secs_f64();
            Verdict::Other(if took < limit {
                Ok(())
            } else {
                Err(format!("took {took:.3}s, limit {limit}s"))
            })
        }
        _ => match fragment_index(subject) {
            Some(index) => fragment_check(check, index, out, visibility, dir),
            None => Verdict::NotApplicable,
        },
    }
}

/// A check on fragment `index`, turned into a check on the visible text (module comment).
fn fragment_check(
    check: &Value,
    index: usize,
    out: &Output,
    visibility: &Visibility,
    dir: &Path,
) -> Verdict {
    let op = op(check);
    let value = check["value"].as_str().unwrap_or("");
    if visibility.visible.contains(&index) {
        if visibility.only_first() {
            return Verdict::Visible(text_check(check, &out.visible, dir, false));
        }
        return Verdict::Visible(match op {
            "equals" | "contains" => {
                let found = if index == 0 {
                    normalise(&out.visible).starts_with(&normalise(value))
                } else {
                    normalise(&out.visible).contains(&normalise(value))
                };
                if found {
                    Ok(())
                } else {
                    Err(format!("{:?} not in the visible text", shorten(value, 80)))
                }
            }
            // Later fragments start somewhere inside the visible text: `^` means a line start.
            _ => text_check(check, &out.visible, dir, index > 0),
        });
    }
    if !visibility.hidden.contains(&index) || !visibility.only_first() {
        return Verdict::NotApplicable;
    }
    // A hidden fragment's text must be gone from the visible text.
    let gone = match op {
        "equals" | "contains" if !value.trim().is_empty() => {
            !normalise(&out.visible).contains(&normalise(value))
        }
        "matches" => match pattern(check, true) {
            Ok(regex) => !regex.is_match(&out.visible),
            Err(e) => return Verdict::Visible(Err(e)),
        },
        _ => return Verdict::NotApplicable,
    };
    Verdict::Visible(if gone {
        Ok(())
    } else {
        Err("hidden text still visible".to_owned())
    })
}

fn text_check(check: &Value, visible: &str, dir: &Path, multiline: bool) -> Result<(), String> {
    let value = check["value"].as_str().unwrap_or("");
    match op(check) {
        "equals" => same(visible, value),
        "equals_file_stripped" => {
            let path = dir.join(value);
            let expected =
                std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            same(visible, &String::from_utf8_lossy(&expected))
        }
        "contains" if visible.contains(value) => Ok(()),
        "contains" => Err(format!("{value:?} not found")),
        "not_contains" if !visible.contains(value) => Ok(()),
        "not_contains" => Err(format!("{value:?} found")),
        "not_empty" if !visible.trim().is_empty() => Ok(()),
        "not_empty" => Err("empty".to_owned()),
        "matches" => {
            let regex = pattern(check, multiline)?;
            if regex.is_match(visible) {
                Ok(())
            } else {
                Err(format!("/{}/ does not match", regex.as_str()))
            }
        }
        other => Err(format!("unsupported op {other}")),
    }
}

/// The check's regex in Rust syntax. Ruby's `^` matches at every line start; JavaScript's only
/// at the start unless the `m` flag is set. JavaScript escapes such as `\/` are valid here too.
fn pattern(check: &Value, multiline: bool) -> Result<Regex, String> {
    let source = check["regex"].as_str().unwrap_or("");
    let flags = check["flags"].as_str().unwrap_or("");
    let mut prefix = String::new();
    if multiline || check["dialect"].as_str() == Some("ruby") || flags.contains('m') {
        prefix.push_str("(?m)");
    }
    if flags.contains('i') {
        prefix.push_str("(?i)");
    }
    if flags.contains('s') {
        prefix.push_str("(?s)");
    }
    Regex::new(&format!("{prefix}{source}")).map_err(|e| format!("bad regex {source:?}: {e}"))
}

/// Line by line without trailing whitespace, without blank lines at either end.
fn normalise(text: &str) -> String {
    text.replace("\r\n", "\n")
        .split('\n')
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_owned()
}

fn same(got: &str, expected: &str) -> Result<(), String> {
    let (got, expected) = (normalise(got), normalise(expected));
    if got == expected {
        Ok(())
    } else {
        Err(format!("expected {:?}", shorten(&expected, 200)))
    }
}

fn squeeze(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(max).collect();
    short.push('…');
    short
}

fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn merge(total: &mut Tally, tally: Tally) {
    total.fixtures += tally.fixtures;
    total.with_visible += tally.with_visible;
    total.exact += tally.exact;
    total.failures.extend(tally.failures);
    total.without_visible.extend(tally.without_visible);
    for (subject, count) in tally.not_applicable {
        *total.not_applicable.entry(subject).or_default() += count;
    }
    total.other_passed += tally.other_passed;
    total.other_failed.extend(tally.other_failed);
}

fn report(label: &str, tally: &Tally) {
    println!(
        "{label}: {} fixtures, {} with a visible-text expectation, {} exact matches ({:.1}%)",
        tally.fixtures,
        tally.with_visible,
        tally.exact,
        ratio(tally.exact, tally.with_visible) * 100.0
    );
    let not_applicable: usize = tally.not_applicable.values().sum();
    println!(
        "  checks not applicable: {not_applicable} ({})",
        tally
            .not_applicable
            .iter()
            .map(|(subject, n)| format!("{subject} ×{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  other checks (time limits): {} passed, {} failed",
        tally.other_passed,
        tally.other_failed.len()
    );
    if label == "TOTAL" {
        return;
    }
    for fixture in &tally.without_visible {
        println!("  no visible-text expectation: {fixture}");
    }
    for failure in &tally.failures {
        println!("  FAIL {failure}");
    }
    for failure in &tally.other_failed {
        println!("  FAIL {failure}");
    }
}
