//! `pai plan` through the real binary, over fixture directory trees in
//! `tests/fixtures/`: snapshots of the tree and JSON outputs (regenerated with
//! `PAI_BLESS=1 cargo test --test plan`), and structural checks that do not depend on
//! the rendering.

use std::path::Path;
use std::process::{Command, Output};

/// `text` written as `file` in a scratch directory named after `name`; the directory
/// is returned too, to be removed when the test is done with it.
fn scratch_file(name: &str, file: &str, text: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("pai-plan-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let path = dir.join(file);
    std::fs::write(&path, text).expect("written");
    (dir, path)
}

/// The node ids of a successful `pai plan --format json`.
fn plan_ids(output: &Output) -> Vec<String> {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    plan["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|node| node["id"].as_str().expect("id").to_string())
        .collect()
}

fn pai(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pai"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .env_remove("PAI_PATH")
        .output()
        .expect("pai runs")
}

/// Runs `pai plan ARGS` and compares everything it printed with the snapshot `name`.
fn snapshot(name: &str, args: &[&str]) -> Output {
    let mut full = vec!["plan"];
    full.extend_from_slice(args);
    let output = pai(&full);
    let shown: Vec<String> = full
        .iter()
        .map(|a| {
            if a.len() > 60 {
                format!("{}…({} bytes)", &a[..20], a.len())
            } else {
                a.to_string()
            }
        })
        .collect();
    let rendered = format!(
        "$ pai {}\n--- stdout\n{}--- stderr\n{}--- exit status: {}\n",
        shown.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        output.status.code().unwrap_or(-1)
    );
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots/plan")
        .join(format!("{name}.snap"));
    if std::env::var_os("PAI_BLESS").is_some() {
        std::fs::write(&path, &rendered).expect("write snapshot");
    } else {
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            expected == rendered,
            "snapshot {name} differs (PAI_BLESS=1 regenerates)\n--- expected\n{expected}\n+++ actual\n{rendered}"
        );
    }
    output
}

const ORCHESTRATE: &str = "tests/fixtures/orchestrate.pai";
const APP: &str = "dir=tests/fixtures/app";

#[test]
fn tree_over_a_codebase() {
    let output = snapshot(
        "app-tree",
        &[ORCHESTRATE, "--arg", "task=add auth", "--arg", APP],
    );
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn json_over_a_codebase() {
    let output = snapshot(
        "app-json",
        &[
            ORCHESTRATE,
            "--arg",
            "task=add auth",
            "--arg",
            APP,
            "--format",
            "json",
        ],
    );
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn recursion_past_depth_names_the_path() {
    let output = snapshot(
        "deep-past-depth",
        &[
            ORCHESTRATE,
            "--arg",
            "task=x",
            "--arg",
            "dir=tests/fixtures/deep",
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    // `pai run` refuses the same plan with the same exit status.
    let runs = std::env::temp_dir().join(format!("pai-plan-deep-runs-{}", std::process::id()));
    let run = pai(&[
        "run",
        ORCHESTRATE,
        "--arg",
        "task=x",
        "--arg",
        "dir=tests/fixtures/deep",
        "--runs-dir",
        runs.to_str().expect("utf-8"),
        "-q",
    ]);
    let _ = std::fs::remove_dir_all(&runs);
    assert_eq!(
        run.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(String::from_utf8_lossy(&run.stderr).contains("would recurse past its `depth"));
}

#[test]
fn expansion_points_and_exec_steps() {
    snapshot(
        "research-tree",
        &[
            "tests/fixtures/research.pai",
            "--arg",
            "question=why is the sky blue",
        ],
    );
    snapshot(
        "research-json",
        &[
            "tests/fixtures/research.pai",
            "--arg",
            "question=why",
            "--format",
            "json",
        ],
    );
    snapshot(
        "research-dot",
        &[
            "tests/fixtures/research.pai",
            "--arg",
            "question=why",
            "--format",
            "dot",
        ],
    );
    snapshot(
        "research-mermaid",
        &[
            "tests/fixtures/research.pai",
            "--arg",
            "question=why",
            "--format",
            "mermaid",
        ],
    );
}

#[test]
fn bad_arguments_exit_two_with_a_fix() {
    let cases: &[(&str, &[&str])] = &[
        ("arg-missing", &[ORCHESTRATE, "--arg", "task=x"]),
        (
            "arg-unknown",
            &[
                ORCHESTRATE,
                "--arg",
                "task=x",
                "--arg",
                APP,
                "--arg",
                "tsk=y",
            ],
        ),
        (
            "arg-no-such-path",
            &[
                ORCHESTRATE,
                "--arg",
                "task=x",
                "--arg",
                "dir=tests/fixtures/nowhere",
            ],
        ),
        (
            "arg-bad-bool",
            &[
                "tests/fixtures/research.pai",
                "--arg",
                "question=x",
                "--arg",
                "check=maybe",
            ],
        ),
        (
            "arg-too-long",
            &[
                "tests/fixtures/research.pai",
                "--arg",
                &format!("question={}", "x".repeat(2_100)),
            ],
        ),
        ("arg-not-name-value", &[ORCHESTRATE, "--arg", "task"]),
        (
            "workflow-unknown",
            &[
                ORCHESTRATE,
                "--workflow",
                "orchestrat",
                "--arg",
                "task=x",
                "--arg",
                APP,
            ],
        ),
    ];
    for (name, args) in cases {
        let output = snapshot(name, args);
        assert_eq!(output.status.code(), Some(2), "{name}");
    }
}

#[test]
fn a_file_with_errors_is_not_planned() {
    let output = pai(&["plan", "tests/ui/e004_unknown_name.pai"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("pai::E004"), "{stderr}");
    assert!(
        stderr.contains("has 4 errors; `pai plan` needs a file that checks"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
    let one = pai(&["plan", "tests/ui/e003_invalid_escape.pai"]);
    let stderr = String::from_utf8_lossy(&one.stderr);
    assert!(stderr.contains("has 1 error; `pai plan`"), "{stderr}");
}

/// The DESIGN promise: the plan follows the folder depth — each directory's activation
/// holds its subdirectories' activations, then one agent per matching file, then one
/// synthesis.
#[test]
fn plan_follows_the_folder_depth() {
    let output = pai(&[
        "plan",
        ORCHESTRATE,
        "--arg",
        "task=x",
        "--arg",
        APP,
        "--format",
        "json",
    ]);
    assert_eq!(output.status.code(), Some(0));
    let plan: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    let nodes = plan["nodes"].as_array().expect("nodes");
    let by_id = |id: &str| {
        nodes
            .iter()
            .find(|n| n["id"] == id)
            .unwrap_or_else(|| panic!("no node {id}"))
    };
    let children = |id: &str| -> Vec<String> {
        by_id(id)["children"]
            .as_array()
            .expect("children")
            .iter()
            .map(|c| c.as_str().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(
        children("orchestrate"),
        [
            "orchestrate/orchestrate[api]",
            "orchestrate/orchestrate[docs]",
            "orchestrate/orchestrate[empty]",
            "orchestrate/orchestrate[ui]",
            "orchestrate/coder[lib.rs]",
            "orchestrate/coder[main.rs]",
            "orchestrate/synthesizer",
        ]
    );
    assert_eq!(
        children("orchestrate/orchestrate[api]"),
        [
            "orchestrate/orchestrate[api]/orchestrate[v1]",
            "orchestrate/orchestrate[api]/coder[login.rs]",
            "orchestrate/orchestrate[api]/coder[routes.rs]",
            "orchestrate/orchestrate[api]/synthesizer",
        ]
    );
    // Ignored (`target/`, `generated/`, `*.tmp`) and hidden entries are not planned.
    for node in nodes {
        let id = node["id"].as_str().unwrap_or("");
        for hidden in [
            "target",
            "generated",
            "hidden",
            "secret",
            "scratch",
            "debug.rs",
        ] {
            assert!(!id.contains(hidden), "{id} should have been ignored");
        }
    }
    // Each synthesis waits for its directory's subtrees and files.
    let synthesis = by_id("orchestrate/orchestrate[api]/synthesizer");
    let inputs: Vec<&str> = synthesis["inputs"]
        .as_array()
        .expect("inputs")
        .iter()
        .filter_map(|i| i["id"].as_str())
        .collect();
    assert_eq!(
        inputs,
        [
            "orchestrate/orchestrate[api]/coder[login.rs]",
            "orchestrate/orchestrate[api]/coder[routes.rs]",
            "orchestrate/orchestrate[api]/orchestrate[v1]/synthesizer",
        ]
    );
    assert_eq!(plan["totals"]["agents"], 12);
    assert_eq!(plan["totals"]["depth"], 3);
}

/// Node ids are safe relative paths: no `..`, no absolute paths, no control characters.
#[test]
fn node_ids_are_safe_directory_paths() {
    let output = pai(&[
        "plan",
        ORCHESTRATE,
        "--arg",
        "task=x",
        "--arg",
        APP,
        "--format",
        "json",
    ]);
    let plan: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    for node in plan["nodes"].as_array().expect("nodes") {
        let id = node["id"].as_str().expect("id");
        assert!(!id.starts_with('/'), "{id}");
        assert!(
            id.split('/')
                .all(|segment| !segment.is_empty() && segment != ".." && segment != "."),
            "{id}"
        );
        assert!(!id.chars().any(char::is_control), "{id}");
    }
}

#[test]
fn list_arguments_are_held_to_their_element_bound() {
    let long = format!("items=ok,{}", "x".repeat(100));
    let output = pai(&[
        "plan",
        "benches/plan_workflow.pai",
        "--workflow",
        "wide",
        "--arg",
        "groups=a",
        "--arg",
        &long,
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("element 1 of `--arg items` is 25 tokens, more than its `max 20`"),
        "{stderr}"
    );
}

/// Lists of lists come from the command line as JSON, and each element is held to
/// `list<T max N>` as it renders (`[aaaa, aaaa]`, brackets and separators included),
/// which is the size the checker counts it at.
#[test]
fn nested_list_arguments_parse_and_are_held_as_they_render() {
    let (dir, file) = scratch_file(
        "nested-args",
        "nested.pai",
        "agent show(rows: list<list<text> max 3>) -> result {\n  context 8k\n  summary 10 tokens\n  prompt \"{{rows}}\"\n}\n\nworkflow main(rows: list<list<text> max 3> max 2) -> result {\n  return show(rows: rows)\n}\n",
    );
    let file = file.to_str().expect("utf-8");
    // `[aaaa, aaaa]` is 12 bytes: 3 tokens.
    let fits = pai(&["plan", file, "--arg", r#"rows=[["aaaa","aaaa"],["b"]]"#]);
    assert_eq!(
        fits.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&fits.stderr)
    );
    // `[aaaa, aaaa, aaaa]` is 18 bytes: 5 tokens, though its texts are 3.
    let over = pai(&["plan", file, "--arg", r#"rows=[["aaaa","aaaa","aaaa"]]"#]);
    assert_eq!(over.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&over.stderr);
    assert!(
        stderr.contains("element 0 of `--arg rows` is 5 tokens, more than its `max 3`"),
        "{stderr}"
    );
    let object = pai(&["plan", file, "--arg", r#"rows=[{"a":1}]"#]);
    assert_eq!(object.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(dir);
}

/// A model's list handed to a parameter `list<text max 16> max 4` counts in the plan
/// as the checker counts it, 4 × 16 tokens, not at the whole of the model's budget:
/// an agent at exactly the checker's total is planned.
#[test]
fn a_list_handed_to_a_bounded_parameter_is_planned_as_checked() {
    let text = |context: u32| {
        format!(
            "agent split(task: text) -> list<text max 10> {{\n  context 8k\n  summary 200 tokens\n  prompt \"Split {{{{task}}}}\"\n}}\n\nagent join(parts: list<text>) -> result {{\n  context {context}\n  summary 10 tokens\n  prompt \"{{{{#each parts}}}}{{{{this}}}}{{{{/each}}}}\"\n}}\n\nworkflow sub(items: list<text max 16> max 4) -> result {{\n  return join(parts: items)\n}}\n\nworkflow main(task: text max 10) -> result {{\n  return sub(items: split(task: task))\n}}\n"
        )
    };
    let (dir, at) = scratch_file("bounded-param", "tight.pai", &text(63));
    let refused = pai(&["check", at.to_str().expect("utf-8")]);
    assert_eq!(refused.status.code(), Some(1));
    let (_, fits) = scratch_file("bounded-param", "fits.pai", &text(64));
    let file = fits.to_str().expect("utf-8");
    let checked = pai(&["check", file]);
    assert_eq!(checked.status.code(), Some(0));
    let planned = pai(&["plan", file, "--workflow", "main", "--arg", "task=go"]);
    assert_eq!(
        planned.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&planned.stderr)
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// A `for` without `max` over a model's list checks with a warning (W007), so it plans
/// too: it grows to as many copies as the list's budget has room for, the bound the
/// checker proved. The plan refused it, though `pai check` had passed.
#[test]
fn a_for_without_max_over_a_models_list_plans_to_its_budget() {
    let text = "agent split(task: text) -> list<text max 10> {\n  context 8k\n  summary 40 tokens\n  prompt \"Split {{task}}\"\n}\n\nagent leaf(part: text max 20) -> result {\n  context 1k\n  summary 10 tokens\n  prompt \"Do {{part}}\"\n}\n\nworkflow main(task: text max 10) -> list<result> {\n  return for p in split(task: task) { leaf(part: p) }\n}\n";
    let (dir, at) = scratch_file("for-without-max", "split.pai", text);
    let file = at.to_str().expect("utf-8");
    let checked = pai(&["check", file]);
    assert_eq!(checked.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&checked.stderr).contains("W007"));
    let planned = pai(&["plan", file, "--format", "json", "--arg", "task=go"]);
    assert!(
        planned.status.success(),
        "{}",
        String::from_utf8_lossy(&planned.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&planned.stdout).expect("json");
    let expansion = plan["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .find(|node| node["kind"] == "expansion")
        .expect("an expansion point");
    // 40 tokens of summary hold at most 80 elements; the checker's `answer_len` is
    // tighter for texts of up to 10 tokens.
    let max = expansion["max"].as_u64().expect("max");
    assert!((1..=80).contains(&max), "{expansion}");
    let _ = std::fs::remove_dir_all(dir);
}

/// Two `for`s with one variable over models' lists are two expansion points with ids of
/// their own (`x[*]`, `x#2[*]`), as calls of one agent are: they were both `x[*]`, and
/// the second one's manifest overwrote the first one's.
#[test]
fn expansion_points_of_one_variable_get_ids_of_their_own() {
    let (dir, file) = scratch_file(
        "same-var",
        "same.pai",
        "agent lister(task: text max 50) -> list<text max 10> {\n  context 8k\n  summary 200 tokens\n  prompt \"List {{task}}\"\n}\n\nagent leaf(task: text max 300) -> result {\n  context 8k\n  summary 50 tokens\n  prompt \"Do {{task}}\"\n}\n\nworkflow w() -> list<result> {\n  let a = for x in lister(task: \"a\") max 3 { leaf(task: x) }\n  let b = for x in lister(task: \"b\") max 1 { leaf(task: x) }\n  return a + b\n}\n",
    );
    let ids = plan_ids(&pai(&[
        "plan",
        file.to_str().expect("utf-8"),
        "--format",
        "json",
    ]));
    let _ = std::fs::remove_dir_all(dir);
    assert!(ids.contains(&"w/x[*]".to_string()), "{ids:?}");
    assert!(ids.contains(&"w/x#2[*]".to_string()), "{ids:?}");
}

/// Elements whose labels differ only where a node id cannot hold them (`a/b` and
/// `a_b`), a label that reads like a repeat's (`x#2` after two `x`), long labels that
/// share their start, labels that hold the `,` nested labels are joined with, and a
/// label of 63 four-byte characters: every node still gets an id of its own (two nodes
/// with one id wrote one directory, each over the other's manifest), and every segment
/// fits a file name.
#[test]
fn every_node_id_is_unique_whatever_the_labels() {
    let (dir, file) = scratch_file(
        "unique",
        "fan.pai",
        r#"agent worker(part: text, other: text) {
  context 4k
  summary 40
  prompt "{{part}} {{other}}"
}

workflow fan(items: list<text max 100> max 20, inner: list<text max 100> max 20) {
  return for p in items max 20 {
    for q in inner max 20 {
      worker(part: p, other: q)
    }
  }
}
"#,
    );
    let long = "y".repeat(70);
    let items = serde_json::json!([
        "a/b",
        "a_b",
        "x",
        "x",
        "x#2",
        "a,b",
        "a",
        format!("{long}1"),
        format!("{long}2"),
        "😀".repeat(63),
    ]);
    let inner = serde_json::json!(["c", "b,c", "😀".repeat(63)]);
    let output = pai(&[
        "plan",
        file.to_str().expect("utf-8"),
        "--arg",
        &format!("items={items}"),
        "--arg",
        &format!("inner={inner}"),
        "--format",
        "json",
    ]);
    let _ = std::fs::remove_dir_all(&dir);
    let ids = plan_ids(&output);
    let workers = ids.iter().filter(|id| id.contains("/worker")).count();
    assert_eq!(workers, 30, "{ids:#?}");
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "{ids:#?}");
    for id in &ids {
        assert!(id.split('/').all(|segment| segment.len() <= 200), "{id}");
    }
}

/// `1k` in an expression is 1,000, as everywhere else: `n < 1k` compared with 1, and a
/// default of `2k` was 2.
#[test]
fn thousands_and_millions_count_inside_expressions() {
    let (dir, file) = scratch_file(
        "kilo",
        "kilo.pai",
        r#"agent s(document: text max 100) {
  context 4k
  summary 40
  prompt "Summarise {{document}}"
}

workflow v(n: number = 1.5k) -> list<result> {
  return if n < 1k { [s(document: "small")] } else if n < 0.002M { [s(document: "a"), s(document: "b")] } else { [s(document: "a"), s(document: "b"), s(document: "c")] }
}
"#,
    );
    let agents = |args: &[&str]| {
        let mut all = vec!["plan", file.to_str().expect("utf-8"), "--format", "json"];
        all.extend_from_slice(args);
        let output = pai(&all);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let plan: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
        plan["totals"]["agents"].as_u64().expect("a count")
    };
    let small = agents(&["--arg", "n=500"]);
    let default = agents(&[]);
    let large = agents(&["--arg", "n=2500"]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!((small, default, large), (1, 2, 3));
}

/// A file `read(...)` hands an agent is measured when the plan is made: one larger
/// than the checker assumed puts the agent past its `context`, which the plan showed
/// (`135,003 / 16,000`) and then let run.
#[test]
fn a_measured_read_past_the_context_is_refused() {
    let (dir, file) = scratch_file(
        "measured",
        "digest.pai",
        "agent summarize(document: text) {\n  context 16k\n  summary 40\n  prompt \"Summarise {{document}}\"\n}\n\nworkflow digest(file: path) -> result {\n  return summarize(document: read(file))\n}\n",
    );
    let big = dir.join("big.txt");
    std::fs::write(&big, "x".repeat(540_000)).expect("written");
    let small = dir.join("small.txt");
    std::fs::write(&small, "x".repeat(4_000)).expect("written");
    let plan = |input: &Path| {
        pai(&[
            "plan",
            file.to_str().expect("utf-8"),
            "--arg",
            &format!("file={}", input.display()),
        ])
    };
    let refused = plan(&big);
    let fits = plan(&small);
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    // 540,000 bytes, its fence (25) and the template (3).
    assert!(
        stderr.contains("would be handed 135,028 tokens, more than its `context 16,000`"),
        "{stderr}"
    );
    assert_eq!(
        fits.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&fits.stderr)
    );
}

/// An `exec` node is named after its program, and a program written as a path that
/// ends in `..` has no file name: the whole text became the segment (`exec-sub/..`),
/// so the node's directory was its parent's, or outside the run.
#[test]
fn exec_nodes_are_named_safely_whatever_the_program() {
    let (dir, file) = scratch_file(
        "exec-names",
        "steps.pai",
        "workflow steps() -> list<result> {\n  return [exec([\"sub/..\", \"x\"]), exec([\"../../..\"]), exec([\"a\\tb\"])]\n}\n",
    );
    let output = pai(&["plan", file.to_str().expect("utf-8"), "--format", "json"]);
    let _ = std::fs::remove_dir_all(&dir);
    let ids = plan_ids(&output);
    assert_eq!(ids.len(), 4, "{ids:?}");
    for id in &ids {
        assert!(
            id.split('/')
                .all(|s| !s.is_empty() && s != ".." && s != "."),
            "{id}"
        );
        assert!(id.split('/').count() <= 2, "{id}");
        assert!(!id.chars().any(char::is_control), "{id}");
    }
}

/// A duration argument is written as the language writes durations: `1e300s` was
/// accepted and rendered as 301 digits into a prompt whose budget counted 6 tokens.
#[test]
fn duration_arguments_are_plain_numbers_with_a_unit() {
    let (dir, file) = scratch_file(
        "durations",
        "wait.pai",
        "agent waiter(wait: duration) {\n  context 50\n  summary 10\n  prompt \"Wait {{wait}}.\"\n}\n\nworkflow w(wait: duration) -> result {\n  return waiter(wait: wait)\n}\n",
    );
    let plan = |value: &str| {
        pai(&[
            "plan",
            file.to_str().expect("utf-8"),
            "--arg",
            &format!("wait={value}"),
        ])
        .status
        .code()
    };
    let refused: Vec<Option<i32>> = ["1e300s", "inf s", "NaNs", "1.2.3s", "1234567890123s"]
        .iter()
        .map(|v| plan(v))
        .collect();
    let fine: Vec<Option<i32>> = ["30s", "1.5m", "250ms"].iter().map(|v| plan(v)).collect();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(refused.iter().all(|code| *code == Some(2)), "{refused:?}");
    assert!(fine.iter().all(|code| *code == Some(0)), "{fine:?}");
}
