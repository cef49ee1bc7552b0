//! Robustness: hostile, broken and huge inputs must never crash the checker, and every
//! diagnostic it reports must point inside the text it was given.
//!
//! Two layers:
//! - the library (`decode`, `parse`, `check_text`) under proptest: random bytes, token
//!   soup, mutations and truncations of the design example;
//! - the real `pai` binary on files written to a scratch directory: empty, binary, huge
//!   and deeply nested inputs, exit statuses and the JSON report.
//!
//! Property tests use a fixed number of cases and write no regression files.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use pai::check::{check_text, Outcome};
use pai::diagnostics::{Code, Diagnostic};
use pai::report::{human as render_report, HumanStyle};
use pai::syntax::{decode, parse};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::Config as ProptestConfig;

/// Cases per property: 256, or `PROPTEST_CASES` to hunt longer
/// (`PROPTEST_CASES=20000 cargo test --release --test robustness`).
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `use` resolves relative to this directory, which does not exist: nothing a random
/// input names can pull in another file.
const NO_DIR: &str = "/nonexistent/pai-robustness";

fn design_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/design")
}

fn is_use_line(line: &str) -> bool {
    line.trim_start().starts_with("use ")
}

/// `execute.pai` without its `use` lines (so it has unknown names).
fn execute_without_use() -> String {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        let path = design_dir().join("execute.pai");
        let text = std::fs::read_to_string(&path).expect("examples/design/execute.pai");
        text.lines()
            .filter(|line| !is_use_line(line))
            .map(|line| format!("{line}\n"))
            .collect()
    })
    .clone()
}

/// Appends `path` to `out` with every `use "FILE"` replaced by FILE's own text (once).
fn inline_uses(path: &Path, seen: &mut Vec<PathBuf>, out: &mut String) {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut own = String::new();
    for line in text.lines() {
        let target = line
            .trim_start()
            .strip_prefix("use \"")
            .and_then(|rest| rest.trim_end().strip_suffix('"'));
        match target {
            Some(target) => {
                let used = path.parent().expect("a parent directory").join(target);
                if !seen.contains(&used) {
                    seen.push(used.clone());
                    inline_uses(&used, seen, out);
                }
            }
            None => {
                own.push_str(line);
                own.push('\n');
            }
        }
    }
    out.push_str(&own);
    out.push('\n');
}

/// The design example's `execute` in one text: every file it uses, inlined before it,
/// without the `use` lines. It checks without errors.
fn design_example() -> String {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        let mut out = String::new();
        inline_uses(&design_dir().join("execute.pai"), &mut Vec::new(), &mut out);
        assert!(!out.lines().any(is_use_line), "a `use` is left: {out}");
        out
    })
    .clone()
}

// ---------------------------------------------------------------- invariants

/// Every span lies inside `text` and on character boundaries.
fn assert_spans(text: &str, diagnostics: &[Diagnostic]) {
    for d in diagnostics {
        let (start, end) = (d.span.start, d.span.end);
        assert!(
            start <= end && end <= text.len(),
            "{} span {start}..{end} outside a text of {} bytes: {}\ntext: {text:?}",
            d.code.as_str(),
            text.len(),
            d.message
        );
        assert!(
            text.is_char_boundary(start) && text.is_char_boundary(end),
            "{} span {start}..{end} splits a character: {}\ntext: {text:?}",
            d.code.as_str(),
            d.message
        );
        assert!(
            !d.message.is_empty(),
            "{} has an empty message",
            d.code.as_str()
        );
        for related in &d.related {
            if related.file.is_none_or(|file| file == d.file) {
                assert!(
                    related.span.start <= related.span.end && related.span.end <= text.len(),
                    "{} related span {}..{} outside a text of {} bytes",
                    d.code.as_str(),
                    related.span.start,
                    related.span.end,
                    text.len()
                );
            }
        }
    }
}

/// Parses and checks `text`, asserting everything that must hold for any text.
fn check_any_text(text: &str) -> Outcome {
    let parsed = parse(text);
    assert_spans(text, &parsed.diagnostics);
    if text.trim().is_empty() {
        assert!(
            parsed.diagnostics.iter().any(|d| d.code == Code::E030),
            "blank text without E030: {text:?}"
        );
    }
    let outcome = check_text("fuzz.pai", text, Path::new(NO_DIR));
    assert_spans(text, &outcome.diagnostics);
    assert_eq!(
        outcome.error_count() + outcome.warning_count(),
        outcome.diagnostics.len()
    );
    // A syntax error found by the parser is never lost by the checker.
    if parsed.diagnostics.iter().any(Diagnostic::is_error) {
        assert!(
            outcome.error_count() > 0,
            "parse errors {:?} but check reports none\ntext: {text:?}",
            codes(&parsed.diagnostics)
        );
    }
    // Sorted by position, as documented on `check_program`.
    assert!(outcome
        .diagnostics
        .windows(2)
        .all(|w| w[0].span.start <= w[1].span.start));
    // The report renders whatever the spans (a panic in it is a crash of `pai check`).
    let style = HumanStyle {
        color: false,
        width: 100,
    };
    let report = render_report(&outcome.sources, &outcome.diagnostics, style);
    for diagnostic in &outcome.diagnostics {
        assert!(report.contains(diagnostic.code.as_str()), "{report}");
    }
    outcome
}

/// The whole pipeline on raw bytes, as `pai check` runs it on a file.
fn check_any_bytes(bytes: &[u8]) {
    let expected_text = std::str::from_utf8(bytes)
        .ok()
        .filter(|t| !t.contains('\0'));
    match decode(bytes) {
        Ok(text) => {
            assert_eq!(Some(text), expected_text, "decode accepted non-text");
            check_any_text(text);
        }
        Err(d) => {
            assert!(
                expected_text.is_none(),
                "decode refused valid text: {bytes:?}"
            );
            assert_eq!(d.code, Code::E031);
            assert!(
                d.span.start < d.span.end && d.span.end <= bytes.len(),
                "E031 span {}..{} outside {} bytes",
                d.span.start,
                d.span.end,
                bytes.len()
            );
        }
    }
}

fn codes(diagnostics: &[Diagnostic]) -> Vec<&'static str> {
    diagnostics.iter().map(|d| d.code.as_str()).collect()
}

// ---------------------------------------------------------------- the library, by hand

#[test]
fn design_example_checks_clean() {
    let text = design_example();
    let outcome = check_any_text(&text);
    assert_eq!(
        outcome.error_count(),
        0,
        "{:?}",
        codes(&outcome.diagnostics)
    );
    // Without the agents of coding.pai, `execute` names things that do not exist.
    let broken = execute_without_use();
    let outcome = check_any_text(&broken);
    assert!(
        outcome.diagnostics.iter().any(|d| d.code == Code::E004),
        "{:?}",
        codes(&outcome.diagnostics)
    );
}

#[test]
fn decode_refuses_binary() {
    let nul = decode(b"agent a() {}\0").unwrap_err();
    assert_eq!(
        (nul.code, nul.span.start, nul.span.end),
        (Code::E031, 12, 13)
    );
    let invalid = decode(b"agent \xff\xfe a").unwrap_err();
    assert_eq!((invalid.code, invalid.span.start), (Code::E031, 6));
    assert_eq!(decode("agent é".as_bytes()).ok(), Some("agent é"));
}

#[test]
fn blank_texts_are_empty_files() {
    for text in [
        "",
        " ",
        "\n\n\t\r\n",
        "# only a comment\n",
        "# pai:allow(W003)\n",
        "\u{feff}",
        "\u{feff}\n# a byte order mark, then nothing\n",
    ] {
        let outcome = check_any_text(text);
        assert!(
            outcome.diagnostics.iter().any(|d| d.code == Code::E030),
            "{text:?}: {:?}",
            codes(&outcome.diagnostics)
        );
    }
}

/// Every prefix of the design example, cut at a character boundary (every third one,
/// plus every line end), checks without panicking and with spans inside the prefix.
#[test]
fn truncations_of_the_design_example() {
    let text = design_example();
    let mut cuts: Vec<usize> = (0..=text.len())
        .filter(|&i| text.is_char_boundary(i))
        .step_by(3)
        .collect();
    cuts.extend(text.match_indices('\n').map(|(i, _)| i));
    cuts.push(text.len());
    let mut with_errors = 0;
    for cut in cuts {
        if check_any_text(&text[..cut]).error_count() > 0 {
            with_errors += 1;
        }
    }
    assert!(with_errors > 0, "no truncation produced an error");
}

/// A prefix that ends just before an item keyword is syntactically complete: the
/// parser must accept it without syntax errors.
#[test]
fn truncation_at_item_boundaries_parses() {
    let text = design_example();
    let mut boundaries = 0;
    for (at, _) in text.match_indices('\n') {
        let rest = &text[at + 1..];
        if ["agent ", "workflow ", "protocol "]
            .iter()
            .any(|k| rest.starts_with(k))
        {
            boundaries += 1;
            let prefix = &text[..at + 1];
            let parsed = parse(prefix);
            let syntax: Vec<_> = parsed
                .diagnostics
                .iter()
                .filter(|d| matches!(d.code, Code::E001 | Code::E002 | Code::E003 | Code::E032))
                .collect();
            assert!(
                syntax.is_empty(),
                "prefix of {at} bytes: {:?}",
                codes(&parsed.diagnostics)
            );
        }
    }
    assert!(boundaries >= 6, "only {boundaries} item boundaries found");
}

// ---------------------------------------------------------------- the library, proptest

/// Tokens worth inserting: brackets, quotes, keywords, template markers, comments.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    "<",
    ">",
    "\"",
    "\"\"\"",
    "\\",
    ",",
    ":",
    ".",
    "=",
    "==",
    "->",
    "+",
    "#",
    "\n",
    "\t",
    " ",
    "let",
    "max",
    "return",
    "for",
    "in",
    "if",
    "else",
    "not",
    "and",
    "or",
    "after",
    "agent",
    "workflow",
    "protocol",
    "skill",
    "provider",
    "type",
    "use",
    "use when",
    "depth",
    "follows",
    "delegate when",
    "env(\"K\")",
    "list<",
    "200k",
    "1.5M",
    "80 tokens",
    "0",
    "10m",
    "x",
    "é",
    "😀",
    "{{",
    "}}",
    "{{task}}",
    "{{#each children}}",
    "{{/each}}",
    "{{this.summary}}",
    "{{#if x}}",
    "# pai:allow(W003)",
    "# pai:allow(Z9)",
    "\r\n",
];

fn token() -> impl Strategy<Value = &'static str> {
    prop::sample::select(TOKENS)
}

/// Mostly printable ASCII, sometimes any byte.
fn some_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![8 => 0x20u8..0x7f, 1 => Just(b'\n'), 1 => any::<u8>()],
        1..12,
    )
}

#[derive(Clone, Debug)]
enum Mutation {
    Delete { at: Index, len: usize },
    InsertToken { at: Index, token: &'static str },
    InsertBytes { at: Index, bytes: Vec<u8> },
    Duplicate { from: Index, len: usize, to: Index },
    Truncate { at: Index },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Index>(), 1usize..40).prop_map(|(at, len)| Mutation::Delete { at, len }),
        4 => (any::<Index>(), token()).prop_map(|(at, token)| Mutation::InsertToken { at, token }),
        2 => (any::<Index>(), some_bytes()).prop_map(|(at, bytes)| Mutation::InsertBytes { at, bytes }),
        2 => (any::<Index>(), 1usize..200, any::<Index>())
            .prop_map(|(from, len, to)| Mutation::Duplicate { from, len, to }),
        1 => any::<Index>().prop_map(|at| Mutation::Truncate { at }),
    ]
}

/// A position in `buf`, moved back to a character boundary while `buf` is text, so
/// that most mutations keep the input decodable.
fn position(buf: &[u8], at: &Index) -> usize {
    let mut i = at.index(buf.len() + 1);
    if let Ok(text) = std::str::from_utf8(buf) {
        while !text.is_char_boundary(i) {
            i -= 1;
        }
    }
    i
}

fn apply(buf: &mut Vec<u8>, mutation: &Mutation) {
    match mutation {
        Mutation::Delete { at, len } => {
            let start = position(buf, at);
            let end = (start + len).min(buf.len());
            buf.drain(start..end);
        }
        Mutation::InsertToken { at, token } => {
            let at = position(buf, at);
            buf.splice(at..at, token.bytes());
        }
        Mutation::InsertBytes { at, bytes } => {
            let at = position(buf, at);
            buf.splice(at..at, bytes.iter().copied());
        }
        Mutation::Duplicate { from, len, to } => {
            let start = position(buf, from);
            let end = (start + len).min(buf.len());
            let copy = buf[start..end].to_vec();
            let to = position(buf, to);
            buf.splice(to..to, copy);
        }
        Mutation::Truncate { at } => {
            let at = position(buf, at);
            buf.truncate(at);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(256),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check_any_bytes(&bytes);
    }

    #[test]
    fn random_text_never_panics(text in any::<String>()) {
        check_any_text(&text);
    }

    /// Grammar tokens in random order: gets much further into the parser and checker
    /// than random bytes.
    #[test]
    fn token_soup_never_panics(
        tokens in prop::collection::vec((token(), prop::sample::select(&[" ", "", "\n"][..])), 0..120)
    ) {
        let text: String = tokens.iter().flat_map(|(t, sep)| [*t, *sep]).collect();
        check_any_text(&text);
    }

    #[test]
    fn mutated_design_example_never_panics(
        whole in any::<bool>(),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let base = if whole { design_example() } else { execute_without_use() };
        let mut buf = base.into_bytes();
        for m in &mutations {
            apply(&mut buf, m);
        }
        check_any_bytes(&buf);
    }

    #[test]
    fn truncated_design_example_never_panics(at in any::<Index>()) {
        let text = design_example();
        let mut cut = at.index(text.len() + 1);
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        check_any_text(&text[..cut]);
    }

    /// Comments and blank lines between items change nothing: the same diagnostics
    /// (codes and messages) before and after.
    #[test]
    fn comments_between_items_change_nothing(line in any::<Index>(), comment in "[ -~]{0,40}") {
        let text = design_example();
        let starts: Vec<usize> = std::iter::once(0)
            .chain(text.match_indices("\n\n").map(|(i, _)| i + 1))
            .collect();
        let at = starts[line.index(starts.len())];
        let inserted = format!("\n# {comment}\n\n");
        let mutated = format!("{}{inserted}{}", &text[..at], &text[at..]);
        let before = check_any_text(&text);
        let after = check_any_text(&mutated);
        let summary = |o: &Outcome| -> Vec<(&'static str, String)> {
            o.diagnostics.iter().map(|d| (d.code.as_str(), d.message.clone())).collect()
        };
        prop_assert_eq!(summary(&before), summary(&after));
    }
}

// ---------------------------------------------------------------- the binary

static SCRATCH_COUNT: AtomicUsize = AtomicUsize::new(0);

/// A scratch directory under the system temp dir, removed on drop.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new(name: &str) -> Scratch {
        let n = SCRATCH_COUNT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("pai-robustness-{}-{name}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch { dir }
    }

    fn file(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, contents).expect("write scratch file");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

const TIME_LIMIT: Duration = Duration::from_secs(60);

/// Runs `pai` with `args`, waiting at most `limit`; the process is killed and the test
/// fails past it. Output is drained on threads so a large report cannot block it.
fn pai_within(args: &[&std::ffi::OsStr], limit: Duration) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pai"))
        .args(args)
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .env_remove("PAI_PATH")
        .env_remove("PAI_PARSE_STEPS_PER_BYTE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pai starts");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for pai") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("pai {args:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let run = Run {
        code: status.code().unwrap_or(-1),
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    };
    assert!(
        !run.stderr.contains("panicked") && !run.stderr.contains("overflowed its stack"),
        "pai crashed: {}",
        tail(&run.stderr)
    );
    assert!(
        status.code().is_some(),
        "pai was killed by a signal ({status:?}): {}",
        tail(&run.stderr)
    );
    run
}

fn pai(args: &[&std::ffi::OsStr]) -> Run {
    pai_within(args, TIME_LIMIT)
}

/// `pai check --format json PATH`, with the report parsed and its counts verified.
fn check_json(path: &Path) -> (Run, serde_json::Value) {
    let run = pai(&[
        "check".as_ref(),
        "--format".as_ref(),
        "json".as_ref(),
        path.as_ref(),
    ]);
    let report: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("JSON report does not parse: {e}\n{}", tail(&run.stdout)));
    let diagnostics = report["diagnostics"].as_array().expect("diagnostics array");
    let count = |severity: &str| {
        diagnostics
            .iter()
            .filter(|d| d["severity"] == severity)
            .count()
    };
    assert_eq!(report["errors"].as_u64(), Some(count("error") as u64));
    assert_eq!(report["warnings"].as_u64(), Some(count("warning") as u64));
    let expected_exit = if count("error") > 0 { 1 } else { 0 };
    assert_eq!(
        run.code, expected_exit,
        "exit status disagrees with the report"
    );
    let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    for d in diagnostics {
        let (start, end) = (
            d["location"]["start"].as_u64(),
            d["location"]["end"].as_u64(),
        );
        let (Some(start), Some(end)) = (start, end) else {
            panic!("diagnostic without a location: {d}");
        };
        assert!(
            start <= end && end <= len.max(1),
            "span {start}..{end} outside {len} bytes"
        );
    }
    (run, report)
}

fn json_codes(report: &serde_json::Value) -> Vec<String> {
    report["diagnostics"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["code"].as_str().map(str::to_string))
        .collect()
}

/// The last part of a possibly huge output, for failure messages.
fn tail(text: &str) -> &str {
    let mut start = text.len().saturating_sub(2000);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

fn human(path: &Path) -> Run {
    pai(&["check".as_ref(), path.as_ref()])
}

#[test]
fn binary_empty_file() {
    let scratch = Scratch::new("empty");
    let run = human(&scratch.file("empty.pai", ""));
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("pai::E030"), "{}", run.stderr);
    let run = human(&scratch.file("blank.pai", "\n   \n# nothing here\n"));
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("pai::E030"), "{}", run.stderr);
}

#[test]
fn binary_not_text() {
    let scratch = Scratch::new("binary");
    let mut elf = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0".to_vec();
    elf.extend((0u8..=255).cycle().take(4096));
    let run = human(&scratch.file("binary.pai", &elf));
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("pai::E031"), "{}", run.stderr);
    // Valid UTF-8 with a NUL byte is still not text.
    let run = human(&scratch.file("nul.pai", "agent a() {\n  context 8k\n}\0\n"));
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("pai::E031"), "{}", run.stderr);
    // Invalid UTF-8 after valid text.
    let run = human(&scratch.file("latin1.pai", b"agent caf\xe9() {\n  context 8k\n}\n"));
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("pai::E031"), "{}", run.stderr);
}

const MB: usize = 1 << 20;

/// A valid agent whose prompt is one string of 1 MB on one line.
#[test]
fn binary_one_megabyte_prompt() {
    let scratch = Scratch::new("big-prompt");
    let filler = "lorem ipsum dolor sit amet ".repeat(MB / 27 + 1);
    let text = format!(
        "agent big(task: text) -> result {{\n  model \"sonnet\"\n  context 2000k\n  summary 80 tokens\n  prompt \"Do {{{{task}}}}. {filler}\"\n}}\n\nworkflow run(task: text max 1k) -> result {{\n  return big(task: task)\n}}\n"
    );
    assert!(text.len() > MB);
    let path = scratch.file("big.pai", &text);
    let (_, report) = check_json(&path);
    // Valid syntax: neither a syntax error nor a parser limit.
    let codes = json_codes(&report);
    for bad in ["pai::E001", "pai::E002", "pai::E003", "pai::E032"] {
        assert!(!codes.iter().any(|c| c == bad), "{codes:?}");
    }
}

/// 10,000 files, each of which `use`s the next: loading them recursed once per file
/// and overflowed the stack (the process aborted) from about 5,000 on.
#[test]
fn binary_a_long_chain_of_uses() {
    let scratch = Scratch::new("use-chain");
    let count = 10_000;
    for i in 0..count {
        let next = if i + 1 < count {
            format!("use \"f{}.pai\"\n", i + 1)
        } else {
            String::new()
        };
        scratch.file(
            &format!("f{i}.pai"),
            format!("{next}\nagent a{i}(x: text max 100) -> result {{\n  context 8k\n  summary 20 tokens\n  prompt \"Do {{{{x}}}}.\"\n}}\n"),
        );
    }
    let run = human(&scratch.dir.join("f0.pai"));
    // Only the root's own findings are shown: it uses nothing from `f1.pai`.
    assert_eq!(run.code, 0, "{}", tail(&run.stderr));
    assert!(run.stderr.contains("pai::W012"), "{}", tail(&run.stderr));
    assert!(
        run.stderr.contains("checked 1 file: 0 errors, 1 warning"),
        "{}",
        tail(&run.stderr)
    );
}

/// A file larger than `pai` reads (a sparse 65 MiB file; `/dev/zero`, which never ends)
/// is an I/O error, not a read until memory runs out.
#[test]
fn binary_a_file_too_large_to_read() {
    let scratch = Scratch::new("too-large");
    let path = scratch.file("huge.pai", "");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|file| file.set_len(65 << 20))
        .expect("a sparse file");
    let mut paths = vec![path];
    if Path::new("/dev/zero").exists() {
        paths.push(PathBuf::from("/dev/zero"));
    }
    for path in paths {
        let run = human(&path);
        assert_eq!(run.code, 2, "{}: {}", path.display(), tail(&run.stderr));
        assert!(
            run.stderr.contains(&format!(
                "cannot read `{}`: it is larger than the 64 mebibytes `pai` reads",
                path.display()
            )),
            "{}",
            tail(&run.stderr)
        );
    }
}

/// A 1 MB line with an error at its far end. miette printed the whole line and padded
/// the label out to its column, and a column past 65,535 panicked in its formatter;
/// the report now shows a window of the line around the label.
#[test]
fn binary_an_error_at_the_end_of_a_one_megabyte_line() {
    let scratch = Scratch::new("far-error");
    let filler = "lorem ipsum dolor sit amet ".repeat(MB / 27 + 1);
    let head = format!(
        "agent big(task: text) -> result {{ context 2000k summary 80 tokens prompt \"Do {{{{task}}}}. {filler}\" }} workflow run(task: text max 1k) -> result {{ return big(task: task, "
    );
    let text = format!("{head}bogus: 1) }}\n");
    let path = scratch.file("far.pai", &text);
    let run = human(&path);
    assert_eq!(run.code, 1, "{}", tail(&run.stderr));
    assert!(!run.stderr.contains("panicked"), "{}", tail(&run.stderr));
    assert!(run.stderr.contains("`bogus`"), "{}", tail(&run.stderr));
    // The location is the label's own: line 1, the column of `bogus` (ASCII: bytes).
    assert!(
        run.stderr
            .contains(&format!("far.pai:1:{}]", head.len() + 1)),
        "{}",
        tail(&run.stderr)
    );
    // A window of the line, not the megabyte.
    assert!(run.stderr.len() < 4_000, "{} bytes", run.stderr.len());
}

/// Deterministic printable garbage (no opening brackets, so the nesting check lets it
/// through to the parser).
fn garbage(len: usize, seed: u64) -> String {
    const ALPHABET: &[u8] =
        b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 \t.,:;=+-*/<>!?)]}\"'#@$%^&|~`_\\";
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ALPHABET[(state % ALPHABET.len() as u64) as usize] as char
        })
        .collect()
}

#[test]
fn binary_one_megabyte_of_garbage() {
    let scratch = Scratch::new("garbage");
    // Starting with a word makes the first item look like something for a while.
    let text = format!("agent {}\n", garbage(MB, 0x9e37_79b9_7f4a_7c15));
    let (_, report) = check_json(&scratch.file("garbage.pai", &text));
    assert!(report["errors"].as_u64().unwrap_or(0) >= 1);
    // The same garbage without any newline at all, and as an item keyword soup.
    let words = [
        "agent", "workflow", "let", "return", "{", "}", "(", ")", "max", "\"\"\"", "x",
    ];
    let soup: String = (0..MB / 4)
        .map(|i| words[(i * 7 + i / 3) % words.len()])
        .collect::<Vec<_>>()
        .join(" ");
    let (_, report) = check_json(&scratch.file("soup.pai", &soup));
    assert!(report["errors"].as_u64().unwrap_or(0) >= 1);
}

#[test]
fn binary_deep_brackets() {
    let scratch = Scratch::new("deep");
    let brackets = "[".repeat(100_000);
    let run = pai(&[
        "check".as_ref(),
        "--format".as_ref(),
        "json".as_ref(),
        scratch.file("brackets.pai", &brackets).as_ref(),
    ]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("pai::E002"), "{}", tail(&run.stdout));

    let parens = format!(
        "workflow w(x: text) -> text {{\n  return {}x{}\n}}\n",
        "(".repeat(100_000),
        ")".repeat(100_000)
    );
    let run = human(&scratch.file("parens.pai", &parens));
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("pai::E002"), "{}", tail(&run.stderr));
    // Only the first problem is reported, not one per bracket.
    assert!(
        run.stderr.contains("checked 1 file: 1 error"),
        "{}",
        tail(&run.stderr)
    );
}

/// Workflows calling one another in a ring of 3,000 (one strongly connected component,
/// whose analysis nested a workflow inside the one calling it until the stack ran out),
/// and a big file (checked on every core) whose workflows each nest brackets as deep
/// as allowed.
#[test]
fn binary_long_call_cycles_and_deep_bodies_on_threads() {
    let scratch = Scratch::new("cycles");
    let agent =
        "agent leaf(x: text) -> result {\n  context 8k\n  summary 50 tokens\n  prompt \"{{x}}\"\n}\n";
    let n = 3_000;
    let mut ring = String::from(agent);
    for i in 0..n {
        ring.push_str(&format!(
            "workflow r{i}(x: text) -> result depth 3 {{\n  let a = r{}(x: x)\n  return leaf(x: a.summary)\n}}\n",
            (i + 1) % n
        ));
    }
    let (run, _) = check_json(&scratch.file("ring.pai", &ring));
    assert!(run.code <= 1, "{}", tail(&run.stderr));

    let mut deep = String::from(agent);
    let nested = format!("{}x{}", "(".repeat(250), ")".repeat(250));
    for i in 0..300 {
        deep.push_str(&format!(
            "workflow d{i}(x: text) -> result {{\n  let y = {nested}\n  return leaf(x: y)\n}}\n"
        ));
    }
    assert!(deep.len() > 64 * 1024);
    let (run, report) = check_json(&scratch.file("deep.pai", &deep));
    assert_eq!(run.code, 0, "{}", tail(&run.stderr));
    // Only W008 (nothing calls the workflows), once each.
    let codes = json_codes(&report);
    assert_eq!(codes.len(), 300, "{codes:?}");
    assert!(codes.iter().all(|code| code == "pai::W008"), "{codes:?}");
}

/// Long chains that nest the syntax tree without brackets: operators, `not`,
/// `else if`, `if` and `for` in the condition or iterable of another, and `list<...>`
/// types; and brackets after a comment ended by `\r`.
#[test]
fn binary_deep_chains_without_brackets() {
    let scratch = Scratch::new("chains");
    let n = 100_000;
    let cases = [
        (
            "not.pai",
            format!(
                "workflow w(a: bool) -> bool {{\n  return {}a\n}}\n",
                "not ".repeat(n)
            ),
        ),
        (
            "add.pai",
            format!(
                "workflow w(a: text) -> text {{\n  return a{}\n}}\n",
                " + a".repeat(n)
            ),
        ),
        (
            "if-conditions.pai",
            format!(
                "workflow w(a: bool) -> text {{\n  return {}a {{ \"x\" }} else {{ \"y\" }}\n}}\n",
                "if ".repeat(n)
            ),
        ),
        (
            "for-iterables.pai",
            format!(
                "workflow w(a: list<text>) -> list<text> {{\n  return {}a {{ x }}\n}}\n",
                "for x in ".repeat(n)
            ),
        ),
        (
            // Regression (review): `else` blocks must not use up the count of the
            // `if`s still open around them.
            "ifs-with-else-blocks.pai",
            format!(
                "workflow w(a: bool) -> bool {{\n  return {}a {{ a }} else {{ a }}\n}}\n",
                format!(
                    "{}{}",
                    "if ".repeat(200),
                    "if a { a } else { a } + ".repeat(200)
                )
                .repeat(n / 200)
            ),
        ),
        (
            "compared-ifs.pai",
            format!(
                "workflow w(a: bool) -> bool {{\n  return {}a\n}}\n",
                "if a == ".repeat(n)
            ),
        ),
        (
            "carriage-return.pai",
            format!(
                "workflow w(a: text) -> text {{\n  return # a comment ends at a CR\r{}a{}\n}}\n",
                "(".repeat(n),
                ")".repeat(n)
            ),
        ),
        (
            "elif.pai",
            format!(
                "workflow w(a: bool) -> text {{\n  return {}{{ \"y\" }}\n}}\n",
                "if a { \"x\" } else ".repeat(n)
            ),
        ),
    ];
    for (name, text) in &cases {
        let (_, report) = check_json(&scratch.file(name, text));
        let codes = json_codes(&report);
        assert!(codes.iter().any(|c| c == "pai::E002"), "{name}: {codes:?}");
    }
    let types = format!(
        "workflow w(x: {}text{}) -> result {{\n  return x\n}}\n",
        "list<".repeat(n),
        ">".repeat(n)
    );
    let (_, report) = check_json(&scratch.file("types.pai", &types));
    assert!(report["errors"].as_u64().unwrap_or(0) >= 1);
}

/// Regression: a chain of field accesses `a.summary.summary...` used to lower into an
/// unbounded chain of nested `Field` expressions that the checker recursed through
/// until the stack overflowed (2,000 links in a debug build). Past 256 links it is now
/// E002.
#[test]
fn binary_long_field_chain() {
    let scratch = Scratch::new("fields");
    let text = format!(
        "workflow w(a: result) -> text {{\n  return a{}\n}}\n",
        ".summary".repeat(20_000)
    );
    let (_, report) = check_json(&scratch.file("fields.pai", &text));
    assert!(report["errors"].as_u64().unwrap_or(0) >= 1);
    assert!(report.to_string().contains("pai::E002"), "{report}");
}

/// Regression: prompt templates nested thousands of `{{#each}}` deep used to take
/// seconds in handlebars' parser and then overflow the stack of the template checker.
/// Templates are now capped at 2,000 expressions and 64 nested blocks (E012).
#[test]
fn binary_deeply_nested_template() {
    let scratch = Scratch::new("nested-template");
    for n in [4_000, 20_000] {
        let text = format!(
            "agent g(a: list<result>) -> result {{\n  context 200k\n  prompt \"\"\"{}x{}\"\"\"\n}}\n\nworkflow w(a: list<result>) -> result {{\n  return g(a: a)\n}}\n",
            "{{#each a}}".repeat(n),
            "{{/each}}".repeat(n)
        );
        let (_, report) = check_json(&scratch.file(&format!("nested{n}.pai"), &text));
        assert!(report["errors"].as_u64().unwrap_or(0) >= 1, "depth {n}");
        assert!(
            report.to_string().contains("pai::E012"),
            "depth {n}: {report}"
        );
    }
}

/// handlebars' parser is quadratic in the number of `{{...}}` of a template, so a prompt
/// may hold at most 2,000 of them: one past the limit is refused with E012 (promptly:
/// the process is killed after 60 s), and the limit itself checks clean.
#[test]
fn binary_many_template_variables() {
    let scratch = Scratch::new("flat-template");
    let source = |n: usize| {
        format!(
            "agent g(task: text) -> result {{\n  context 2000k\n  prompt \"\"\"{}\"\"\"\n}}\n\nworkflow w(task: text max 1) -> result {{\n  return g(task: task)\n}}\n",
            "{{task}} ".repeat(n)
        )
    };
    for (n, code) in [(2_000, 0), (50_000, 1)] {
        let path = scratch.file(&format!("flat-{n}.pai"), source(n));
        let run = pai_within(
            &[
                "check".as_ref(),
                "--format".as_ref(),
                "json".as_ref(),
                path.as_ref(),
            ],
            Duration::from_secs(60),
        );
        assert_eq!(run.code, code, "{n}: {}", tail(&run.stdout));
        if code == 1 {
            assert!(run.stdout.contains("pai::E012"), "{}", tail(&run.stdout));
        }
    }
}

#[test]
fn binary_missing_file() {
    let scratch = Scratch::new("missing");
    let missing = scratch.dir.join("does-not-exist.pai");
    let run = human(&missing);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("does-not-exist.pai"), "{}", run.stderr);
    // Lowercase, like every message, and with a way on.
    assert!(
        run.stderr.contains(": no such file or directory"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("help: check the path"),
        "{}",
        run.stderr
    );
    // A missing file next to a good one still fails the whole run as usage.
    let good = scratch.file("good.pai", design_example());
    let run = pai(&["check".as_ref(), good.as_ref(), missing.as_ref()]);
    assert_eq!(run.code, 2, "{}", run.stderr);
}

#[test]
fn binary_json_report() {
    let scratch = Scratch::new("json");
    let text = "agent helper(x: text) -> result {\n  context 8k\n  prompt \"{{x}}\"\n}\n\nagent unused(x: text) -> result {\n  context 8k\n  prompt \"{{x}}\"\n}\n\nworkflow w(t: text max 1k) -> result {\n  let a = helper(x: t)\n  return missing(x: a.summary)\n}\n";
    let path = scratch.file("errors.pai", text);
    let (run, report) = check_json(&path);
    assert_eq!(run.code, 1);
    let codes = json_codes(&report);
    assert!(codes.iter().any(|c| c == "pai::E004"), "{codes:?}");
    assert!(codes.iter().any(|c| c == "pai::W003"), "{codes:?}");
    assert!(report["errors"].as_u64().unwrap_or(0) >= 1);
    assert!(report["warnings"].as_u64().unwrap_or(0) >= 1);
    // The E004 points at `missing`.
    let e004 = report["diagnostics"]
        .as_array()
        .and_then(|ds| ds.iter().find(|d| d["code"] == "pai::E004"))
        .expect("an E004");
    let start = e004["location"]["start"].as_u64().expect("start") as usize;
    let end = e004["location"]["end"].as_u64().expect("end") as usize;
    assert_eq!(&text[start..end], "missing");

    // A clean file: zero of both, exit 0.
    let (run, report) = check_json(&scratch.file("clean.pai", design_example()));
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(report["errors"].as_u64(), Some(0));
}

#[test]
fn binary_deny_warnings() {
    let scratch = Scratch::new("deny");
    let text = "agent coder(task: text) -> result {\n  context 8k\n  prompt \"Do {{task}}\"\n}\n\nagent forgotten(task: text) -> result {\n  context 8k\n  prompt \"Do {{task}}\"\n}\n\nworkflow run(task: text max 1k) -> result {\n  return coder(task: task)\n}\n";
    let path = scratch.file("warn.pai", text);
    let run = human(&path);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("pai::W003"), "{}", run.stderr);
    assert!(run.stderr.contains("0 errors, 1 warning"), "{}", run.stderr);
    let run = pai(&[
        "check".as_ref(),
        "--deny".as_ref(),
        "warnings".as_ref(),
        path.as_ref(),
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    // Allowed warnings are not denied.
    let allowed = text.replace("agent forgotten", "# pai:allow(W003)\nagent forgotten");
    let path = scratch.file("allowed.pai", allowed);
    let run = pai(&[
        "check".as_ref(),
        "--deny".as_ref(),
        "warnings".as_ref(),
        path.as_ref(),
    ]);
    assert!(!run.stderr.contains("pai::W003"), "{}", run.stderr);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

/// Long chains and cycles of bindings and workflows, and deep recursion, in the checker
/// and the planner: each ran the stack out (exit 134), or, for a cycle of 20,000
/// workflows each reported with the whole cycle, took 6 GB and 25 s.
#[test]
fn binary_long_chains_and_cycles_of_bindings_and_workflows() {
    let scratch = Scratch::new("long-chains");
    let lets = |n: usize, last: &dyn Fn(usize) -> String| {
        let mut text = String::from("workflow w(d: text max 10) -> text {\n");
        for i in 0..n {
            text.push_str(&format!("  let b{i} = {}\n", last(i)));
        }
        text.push_str("  return b0\n}\n");
        text
    };
    let cycle = scratch.file(
        "cycle.pai",
        lets(6_000, &|i| format!("b{}", (i + 1) % 6_000)),
    );
    let (_, report) = check_json(&cycle);
    assert_eq!(
        json_codes(&report),
        ["pai::W001", "pai::E014"],
        "`d` is unused"
    );
    let message = report["diagnostics"][1]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("… 5,992 more …"), "{message}");

    let chain = scratch.file(
        "chain.pai",
        lets(50_000, &|i| {
            if i + 1 < 50_000 {
                format!("b{}", i + 1)
            } else {
                "d".to_string()
            }
        }),
    );
    let (_, report) = check_json(&chain);
    assert!(json_codes(&report).is_empty(), "{report}");

    let ring: String = (0..20_000)
        .map(|i| {
            format!(
                "workflow w{i}() -> result {{\n  return w{}()\n}}\n\n",
                (i + 1) % 20_000
            )
        })
        .collect();
    let ring = scratch.file("ring.pai", &ring);
    let (run, report) = check_json(&ring);
    let codes = json_codes(&report);
    assert_eq!(codes.len(), 20_000);
    assert!(codes.iter().all(|code| code == "pai::E015"));
    assert!(run.stdout.len() < 40_000_000, "{} bytes", run.stdout.len());

    let deep = scratch.file(
        "deep.pai",
        "workflow r() -> result\n  depth 5000\n{\n  return r()\n}\n",
    );
    let (_, report) = check_json(&deep);
    // The depth is refused, and so is a recursion nothing ends.
    assert_eq!(json_codes(&report), ["pai::E029", "pai::E034"]);

    let workflows: String = (0..300)
        .map(|i| {
            format!(
                "workflow w{i}() -> result {{\n  return w{}()\n}}\n\n",
                i + 1
            )
        })
        .chain(["agent w300() {\n  context 1k\n  prompt \"x\"\n}\n".to_string()])
        .collect();
    let nested = scratch.file("nested.pai", &workflows);
    let run = pai(&["plan".as_ref(), nested.as_ref()]);
    assert_eq!(run.code, 1, "{}", tail(&run.stderr));
    assert!(
        run.stderr
            .contains("the plan nests more than 256 levels deep"),
        "{}",
        tail(&run.stderr)
    );
}

/// Links back into a checked directory, and named pipes: three links to `.` made the
/// walk exponential (it never ended), one checked the same file 41 times, and a pipe
/// named `x.pai` (in the directory, or behind a `use`) waited for a writer for ever.
#[cfg(target_os = "linux")]
#[test]
fn binary_links_and_pipes_in_a_checked_directory() {
    let scratch = Scratch::new("links-pipes");
    let dir = scratch.dir.join("tree");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(
        dir.join("ok.pai"),
        "agent a(x: text max 10) {\n  context 1k\n  summary 10\n  prompt \"{{x}}\"\n}\n\nworkflow w() -> result {\n  return a(x: \"y\")\n}\n",
    )
    .expect("written");
    for link in ["l1", "l2", "l3"] {
        std::os::unix::fs::symlink(".", dir.join(link)).expect("link");
    }
    std::os::unix::fs::symlink("ok.pai", dir.join("also.pai")).expect("file link");
    let made = Command::new("mkfifo")
        .arg(dir.join("pipe.pai"))
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    let run = pai_within(
        &[std::ffi::OsStr::new("check"), dir.as_os_str()],
        Duration::from_secs(30),
    );
    assert_eq!(run.code, 0, "{}", tail(&run.stderr));
    assert!(
        run.stderr.contains("checked 2 files"),
        "{}",
        tail(&run.stderr)
    );

    let pipe = scratch.dir.join("pipe.pai");
    let made = Command::new("mkfifo")
        .arg(&pipe)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    let user = scratch.file("user.pai", "use \"pipe.pai\"\n");
    let run = pai_within(
        &[std::ffi::OsStr::new("check"), user.as_os_str()],
        Duration::from_secs(30),
    );
    assert_eq!(run.code, 1, "{}", tail(&run.stderr));
    let run = pai_within(
        &[std::ffi::OsStr::new("check"), pipe.as_os_str()],
        Duration::from_secs(30),
    );
    assert_eq!(run.code, 1, "{}", tail(&run.stderr));
    assert!(run.stderr.contains("pai::E030"), "{}", tail(&run.stderr));
}
