//! Documentation and examples never rot: `docs/diagnostics.md` is generated from the
//! code table (and compared here), and every file under `examples/` is checked.

use std::path::{Path, PathBuf};

use pai::diagnostics::{Code, Severity};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn diagnostics_markdown() -> String {
    let mut out = String::from(
        "# Diagnostic codes\n\n\
         Generated from `src/diagnostics.rs` by `PAI_BLESS=1 cargo test --test docs_and_examples`;\n\
         do not edit by hand. `pai explain CODE` prints the same text. Codes are never reused.\n\n\
         | code | severity | summary |\n| --- | --- | --- |\n",
    );
    for code in Code::ALL {
        let severity = match code.severity() {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        out.push_str(&format!(
            "| [`pai::{code}`](#pai{}) | {severity} | {} |\n",
            code.as_str().to_lowercase(),
            code.summary()
        ));
    }
    for code in Code::ALL {
        out.push_str(&format!(
            "\n## pai::{code}\n\n{}\n\n```text\n{}\n```\n",
            code.summary(),
            code.explain()
        ));
    }
    out
}

#[test]
fn diagnostics_doc_matches_the_code_table() {
    let path = root().join("docs/diagnostics.md");
    let expected = diagnostics_markdown();
    if std::env::var_os("PAI_BLESS").is_some() {
        std::fs::write(&path, &expected).expect("write docs/diagnostics.md");
        return;
    }
    let actual = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        actual == expected,
        "docs/diagnostics.md is stale: run `PAI_BLESS=1 cargo test --test docs_and_examples`"
    );
}

fn pai_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            pai_files(&entry, out);
        } else if entry.extension().is_some_and(|e| e == "pai") {
            out.push(entry);
        }
    }
}

/// Every example checks clean, except those that say which codes they demonstrate with
/// `# expect: pai::CODE` lines: those must report exactly those codes.
#[test]
fn every_example_checks_as_documented() {
    let mut files = Vec::new();
    pai_files(&root().join("examples"), &mut files);
    pai_files(&root().join("tests/fixtures/errors"), &mut files);
    assert!(!files.is_empty(), "examples/ has .pai files");
    for file in files {
        let text = std::fs::read_to_string(&file).expect("example is text");
        let mut expected: Vec<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# expect: "))
            .map(|c| c.trim().to_string())
            .collect();
        expected.sort();
        let outcome = pai::check::check_paths(std::slice::from_ref(&file)).expect("readable");
        let mut found: Vec<String> = outcome
            .diagnostics
            .iter()
            .map(|d| format!("pai::{}", d.code))
            .collect();
        found.sort();
        assert_eq!(
            found,
            expected,
            "{}: {:#?}",
            file.display(),
            outcome.diagnostics
        );
    }
}

/// The README's first command checks this directory; it must stay clean.
#[test]
fn readme_quick_start_example_is_clean() {
    let outcome =
        pai::check::check_paths(&[root().join("examples/design/execute.pai")]).expect("readable");
    assert_eq!(outcome.diagnostics, Vec::new());
}

/// The README's "language in one screen" checks clean beside the design example's
/// `agents/coding.pai`, which its `use` names.
#[test]
fn readme_language_example_is_clean() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let section = readme
        .split("## The language in one screen")
        .nth(1)
        .expect("the section");
    let block = section
        .split("```")
        .nth(1)
        .expect("its code block")
        .trim_start_matches('\n');
    let dir = std::env::temp_dir().join(format!("pai-readme-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("agents")).expect("scratch dir");
    std::fs::copy(
        root().join("examples/design/agents/coding.pai"),
        dir.join("agents/coding.pai"),
    )
    .expect("copied");
    let file = dir.join("readme.pai");
    std::fs::write(&file, block).expect("written");
    let outcome = pai::check::check_paths(&[file]).expect("readable");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(outcome.diagnostics, Vec::new());
}

/// The sample `pai plan` output in docs/plan.md is what `pai plan` prints, line for
/// line, up to its `...`.
#[test]
fn plan_doc_sample_matches_the_binary() {
    let doc = std::fs::read_to_string(root().join("docs/plan.md")).expect("docs/plan.md");
    let command = "$ pai plan tests/fixtures/orchestrate.pai --arg task=\"add auth\" --arg dir=tests/fixtures/app\n";
    let sample = doc
        .split(command)
        .nth(1)
        .and_then(|rest| rest.split("...\n```").next())
        .expect("the sample in docs/plan.md");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_pai"))
        .args([
            "plan",
            "tests/fixtures/orchestrate.pai",
            "--arg",
            "task=add auth",
            "--arg",
            "dir=tests/fixtures/app",
        ])
        .current_dir(root())
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .output()
        .expect("pai runs");
    let printed = String::from_utf8_lossy(&output.stdout);
    for (line, (documented, actual)) in sample.lines().zip(printed.lines()).enumerate() {
        assert_eq!(documented, actual, "docs/plan.md sample, line {}", line + 1);
    }
}
