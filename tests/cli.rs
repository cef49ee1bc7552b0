//! The command line, through the real binary: formats, exit statuses, `explain`.

use std::path::Path;
use std::process::{Command, Output};

fn pai(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pai"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .env_remove("PAI_PATH")
        .output()
        .expect("pai runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn clean_directory_exits_zero_and_says_so() {
    let output = pai(&["check", "examples/design"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stderr(&output).contains("checked 5 files: 0 errors, 0 warnings"));
}

#[test]
fn errors_exit_one_with_code_and_location() {
    let output = pai(&["check", "tests/ui/e007_unknown_argument.pai"]);
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(text.contains("pai::E007"), "{text}");
    assert!(
        text.contains("tests/ui/e007_unknown_argument.pai:7:31"),
        "{text}"
    );
}

#[test]
fn warnings_pass_unless_denied() {
    let file = "tests/ui/w002_unused_binding.pai";
    assert_eq!(pai(&["check", file]).status.code(), Some(0));
    assert_eq!(
        pai(&["check", "--deny", "warnings", file]).status.code(),
        Some(1)
    );
}

#[test]
fn json_lists_every_diagnostic_with_locations() {
    let output = pai(&[
        "check",
        "--format",
        "json",
        "tests/ui/e004_unknown_name.pai",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(document["errors"], 4);
    let first = &document["diagnostics"][0];
    assert_eq!(first["code"], "pai::E004");
    assert_eq!(first["severity"], "error");
    assert_eq!(first["location"]["line"], 8);
    assert_eq!(first["location"]["column"], 16);
    assert_eq!(first["help"], "did you mean `coder`?");
}

#[test]
fn sarif_is_a_2_1_0_log_with_rules_and_results() {
    let output = pai(&[
        "check",
        "--format",
        "sarif",
        "tests/ui/e009_repeated_argument.pai",
    ]);
    let log: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(log["version"], "2.1.0");
    let run = &log["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().expect("rules");
    assert_eq!(rules.len(), pai::diagnostics::Code::ALL.len());
    let result = &run["results"][0];
    assert_eq!(result["ruleId"], "pai::E009");
    assert_eq!(result["level"], "error");
    let region = &result["locations"][0]["physicalLocation"]["region"];
    assert_eq!(region["startLine"], 7);
    assert_eq!(region["startColumn"], 31);
}

#[test]
fn unreadable_paths_and_bad_usage_exit_two() {
    let missing = pai(&["check", "no/such/file.pai"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("cannot read `no/such/file.pai`"));
    assert_eq!(
        pai(&["check", "--format", "yaml", "examples"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(pai(&["check"]).status.code(), Some(2));
    let empty_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let none = pai(&["check", empty_dir.to_str().expect("utf-8 path")]);
    assert_eq!(
        none.status.code(),
        Some(2),
        "a directory without .pai files"
    );
}

/// Limits that cannot mean anything are refused before anything runs, rather than read
/// as something else (`-j 0` was one call at a time; a `NaN` cost was no limit at all).
#[test]
fn run_refuses_meaningless_limits() {
    let workflow = "benches/run_workflow.pai";
    for (flag, value, says) in [
        ("-j", "0", "at least 1"),
        ("--max-cost", "NaN", "a number of dollars"),
        ("--max-cost=-1", "", "a number of dollars"),
        ("--max-agents=-3", "", "must be a whole number, 0 or more"),
        // A negative value after a space is the flag's value, said wrong as such, not
        // an unknown flag.
        ("--max-cost", "-1", "a number of dollars"),
        ("-j", "-1", "at least 1"),
        ("--max-tokens", "-5", "must be a whole number, 0 or more"),
        (
            "--sim-latency",
            "-5s",
            "`--sim-latency -5s` is not a duration",
        ),
        ("--sim-list", "18446744073709551615", "from 1 to 10000"),
        ("--sim-list", "0", "from 1 to 10000"),
    ] {
        let mut args = vec![
            "run",
            workflow,
            "--workflow",
            "flat",
            "--arg",
            "items=a",
            "--yes",
            "-q",
            flag,
        ];
        args.extend((!value.is_empty()).then_some(value));
        let output = pai(&args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{flag} {value}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(says),
            "{flag} {value}: {}",
            stderr(&output)
        );
        assert!(
            !stderr(&output).contains("provider: sim"),
            "{flag} {value} started a run"
        );
    }
}

/// `pai status` reads runs under `--runs-dir` only, as `--resume` does.
#[test]
fn status_refuses_a_path_for_a_run_id() {
    for id in ["../elsewhere", "/tmp", "a/b"] {
        let output = pai(&["status", id, "--runs-dir", "target"]);
        assert_eq!(output.status.code(), Some(2), "{id}: {}", stderr(&output));
        assert!(
            stderr(&output).contains(&format!("`{id}` is not a run id")),
            "{id}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn explain_prints_the_long_form() {
    let output = pai(&["explain", "E017"]);
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.starts_with("pai::E017: context budget exceeded"),
        "{text}"
    );
    assert!(text.contains("bytes / 4"));
    let unknown = pai(&["explain", "E999"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(stderr(&unknown).contains("`E999` is not a diagnostic code"));
}

#[test]
fn color_follows_the_flag_and_no_color() {
    let file = "tests/ui/e007_unknown_argument.pai";
    let plain = pai(&["check", file]);
    assert!(
        !stderr(&plain).contains('\u{1b}'),
        "NO_COLOR leaves no escapes"
    );
    let colored = pai(&["check", "--color", "always", file]);
    assert!(
        stderr(&colored).contains('\u{1b}'),
        "--color always colours"
    );
}

/// Standard output that cannot be written (a full disk) is an error, exit 2, even for
/// the last line before exit, which Rust would otherwise drop silently.
#[test]
fn output_to_a_full_disk_is_an_error() {
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        return; // no `/dev/full` on this system
    };
    for args in [
        vec![
            "plan",
            "benches/run_workflow.pai",
            "--workflow",
            "flat",
            "--arg",
            "items=a",
        ],
        vec!["explain", "E001"],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_pai"))
            .args(&args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(full.try_clone().expect("a second handle"))
            .output()
            .expect("pai runs");
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains("cannot write to standard output: no space left on device"),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}
