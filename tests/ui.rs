//! UI tests: every `tests/ui/*.pai` is checked by the real `pai` binary, and its
//! rendered report (no colour, 100 columns) must equal `tests/ui/NAME.stderr`.
//!
//! Regenerate the expectations with `PAI_BLESS=1 cargo test --test ui`, then review
//! the diff like code.

use std::path::{Path, PathBuf};
use std::process::Command;

fn ui_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui")
}

fn cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(ui_dir())
        .expect("tests/ui exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "pai"))
        .collect();
    cases.sort();
    cases
}

/// Runs `pai check` on one case from the crate root, as a user would.
fn render(case: &Path) -> String {
    let relative = case
        .strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .expect("case is inside the crate");
    let mut command = Command::new(env!("CARGO_BIN_EXE_pai"));
    // `# ui-env: NAME=VALUE` lines set the environment of one case.
    let source = std::fs::read(case).unwrap_or_default();
    for line in String::from_utf8_lossy(&source).lines() {
        if let Some((name, value)) = line
            .strip_prefix("# ui-env: ")
            .and_then(|kv| kv.split_once('='))
        {
            command.env(name.trim(), value.trim());
        }
    }
    let output = command
        .arg("check")
        .arg(relative)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .env_remove("PAI_PATH")
        .output()
        .expect("pai runs");
    let mut text = String::from_utf8_lossy(&output.stderr).into_owned();
    text.push_str(&format!(
        "[exit status: {}]\n",
        output.status.code().unwrap_or(-1)
    ));
    text
}

#[test]
fn ui() {
    let bless = std::env::var_os("PAI_BLESS").is_some();
    let mut failures = Vec::new();
    for case in cases() {
        let expected_path = case.with_extension("stderr");
        let actual = render(&case);
        if bless {
            std::fs::write(&expected_path, &actual).expect("write expectation");
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected != actual {
            failures.push(format!(
                "--- {} (expected)\n{expected}\n+++ actual\n{actual}",
                expected_path.display()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} UI test(s) differ (PAI_BLESS=1 regenerates):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Every diagnostic code is shown by at least one UI test.
#[test]
fn every_code_has_a_ui_test() {
    let mut rendered = String::new();
    for case in cases() {
        rendered
            .push_str(&std::fs::read_to_string(case.with_extension("stderr")).unwrap_or_default());
    }
    let missing: Vec<&str> = pai::diagnostics::Code::ALL
        .iter()
        .map(|code| code.as_str())
        .filter(|code| !rendered.contains(&format!("pai::{code}")))
        .collect();
    assert!(missing.is_empty(), "codes without a UI test: {missing:?}");
}
