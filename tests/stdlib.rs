//! The standard library (`skills/`, `workflows/`, `agents/`, `protocols/`) and the
//! examples, through the real binary: they check clean with `--deny warnings`, pass
//! `pai test`, plan by folder depth, run end to end, and are embedded so `use
//! pai-council` works from any directory.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::scratch::Scratch;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn pai_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pai"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("PAI_PROVIDER")
        .env_remove("PAI_PATH")
        .output()
        .expect("pai runs")
}

fn pai(args: &[&str]) -> Output {
    pai_in(&root(), args)
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn the_library_and_the_examples_check_clean_with_warnings_denied() {
    let output = pai(&[
        "check",
        "--deny",
        "warnings",
        "skills",
        "workflows",
        "protocols",
        "agents",
        "examples",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(
        text(&output).contains("0 errors, 0 warnings"),
        "{}",
        text(&output)
    );
}

#[test]
fn every_workflow_with_expectations_passes_pai_test() {
    let mut files = Vec::new();
    let mut stack = vec![root().join("examples"), root().join("workflows")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)
            .expect("readable")
            .filter_map(Result::ok)
        {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.to_string_lossy().ends_with(".expect.yaml") {
                let name = path.to_string_lossy().replace(".expect.yaml", ".pai");
                files.push(PathBuf::from(name));
            }
        }
    }
    files.sort();
    assert!(files.len() >= 5, "four examples and execute: {files:?}");
    for file in files {
        let relative = file.strip_prefix(root()).expect("inside the repository");
        let output = pai(&["test", relative.to_str().expect("utf-8")]);
        assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    }
}

#[test]
fn the_plan_of_execute_follows_the_sample_apps_folders() {
    let output = pai(&[
        "plan",
        "workflows/execute.pai",
        "--arg",
        "request=add a login page",
        "--arg",
        "root=examples/sample-app",
        "--format",
        "json",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let plan: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    let nodes = plan["nodes"].as_array().expect("nodes");
    let coder_depth = |file: &str| {
        nodes
            .iter()
            .find(|n| {
                n["id"]
                    .as_str()
                    .is_some_and(|id| id.ends_with(&format!("coder[{file}]")))
            })
            .and_then(|n| n["depth"].as_u64())
            .unwrap_or_else(|| panic!("no coder for {file}"))
    };
    // execute is depth 0, the root folder's activation 1, its files 2; one more per folder.
    assert_eq!(coder_depth("README.md"), 2);
    assert_eq!(coder_depth("main.py"), 3);
    assert_eq!(coder_depth("routes.py"), 4);
    assert_eq!(coder_depth("models.py"), 4);
    assert_eq!(coder_depth("test_api.py"), 3);
    let ids: Vec<&str> = nodes.iter().filter_map(|n| n["id"].as_str()).collect();
    assert!(ids.contains(&"execute/orchestrate/orchestrate[app]/orchestrate[api]/coder[routes.py]"));
    assert!(ids.contains(&"execute/orchestrate/orchestrate[app]/orchestrate[store]/synthesizer"));
    let coders = ids.iter().filter(|id| id.contains("/coder[")).count();
    assert_eq!(coders, 8, "one coder per file of the sample app");
}

#[test]
fn execute_runs_over_the_sample_app_with_sim_and_with_replay() {
    let scratch = Scratch::new("stdlib-execute");
    for (name, provider) in [
        ("sim", &["--provider", "sim"][..]),
        ("replay", &["--provider", "replay"][..]),
    ] {
        let runs = scratch.0.join(name);
        let mut args = vec![
            "run",
            "workflows/execute.pai",
            "--arg",
            "request=add a login page",
            "--arg",
            "root=examples/sample-app",
            "--runs-dir",
            runs.to_str().expect("utf-8"),
            "--run-id",
            "r",
            "-q",
        ];
        args.extend_from_slice(provider);
        let output = pai(&args);
        assert_eq!(output.status.code(), Some(0), "{}", text(&output));
        let run = runs.join("r");
        let read = |id: &str| -> serde_yaml::Value {
            let path = run.join(id).join("manifest.yaml");
            serde_yaml::from_str(
                &std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display())),
            )
            .expect("manifest parses")
        };
        let root = read("execute");
        let reporter = read("execute/reporter");
        assert_eq!(root["status"], "complete");
        assert_eq!(
            root["summary"], reporter["summary"],
            "the root's summary is the final report"
        );
        assert_eq!(root["depth"], 0);
        let leaf = read("execute/orchestrate/orchestrate[app]/orchestrate[api]/coder[routes.py]");
        assert_eq!(leaf["status"], "complete");
        assert_eq!(leaf["depth"], 4);
        assert_eq!(
            leaf["parent"],
            "execute/orchestrate/orchestrate[app]/orchestrate[api]"
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(
            stdout.trim(),
            reporter["summary"].as_str().expect("a summary")
        );
        if name == "replay" {
            assert_eq!(
                root["summary"],
                "Login page added: routes and a signed-cookie check in app/api; the council says proceed."
            );
        }
    }
}

#[test]
fn the_embedded_library_answers_use_from_any_directory_and_a_project_shadows_it() {
    let scratch = Scratch::new("stdlib-embedded");
    std::fs::write(
        scratch.0.join("decide.pai"),
        "use pai-council\n\nworkflow decide(question: text max 1k) -> result {\n  return pai-council.quick(proposal: question)\n}\n",
    )
    .expect("write");
    let output = pai_in(&scratch.0, &["check", "--deny", "warnings", "decide.pai"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let output = pai_in(
        &scratch.0,
        &[
            "plan",
            "decide.pai",
            "--arg",
            "question=ship it?",
            "--format",
            "summary",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(text(&output).contains("5 agent calls"), "{}", text(&output));

    // A project's own skills/pai-council.pai wins over the embedded one.
    std::fs::create_dir_all(scratch.0.join("skills")).expect("mkdir");
    std::fs::write(
        scratch.0.join("skills/pai-council.pai"),
        "skill pai-council {\n  description \"ours\"\n  use when \"ours\"\n  workflow solo\n}\n\nagent voice(proposal: text max 1k) {\n  context 8k\n  summary 40\n  prompt \"{{proposal}}\"\n}\n\nworkflow solo(proposal: text max 1k) -> result {\n  return voice(proposal: proposal)\n}\n",
    )
    .expect("write");
    let output = pai_in(&scratch.0, &["check", "decide.pai"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        text(&output).contains("skill `pai-council` has no workflow `quick`"),
        "the shadowing skill has no `quick`: {}",
        text(&output)
    );
}

#[test]
fn a_diagnostic_inside_the_library_names_its_virtual_path() {
    let scratch = Scratch::new("stdlib-virtual");
    std::fs::write(
        scratch.0.join("wrong.pai"),
        "use pai-research\n\nworkflow w(topic: text max 1k) -> result {\n  return pai-research(topc: topic)\n}\n",
    )
    .expect("write");
    let output = pai_in(&scratch.0, &["check", "wrong.pai"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        text(&output).contains("<stdlib>/skills/pai-research.pai"),
        "{}",
        text(&output)
    );
}

#[test]
fn route_names_the_skill_workflow_trigger_and_runner_up() {
    let scratch = Scratch::new("stdlib-route");
    let output = pai_in(&scratch.0, &["route", "plan the refactor of the parser"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let shown = text(&output);
    assert!(shown.contains("skill      pai-orchestrate"), "{shown}");
    assert!(
        shown.contains("workflow   plan (named in the request)"),
        "{shown}"
    );
    assert!(
        shown.contains("trigger    \"refactor\" (phrase)"),
        "{shown}"
    );

    let output = pai_in(
        &scratch.0,
        &[
            "route",
            "research and debate: should we get perspectives on caching",
            "--format",
            "json",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let routing: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(routing["chosen"]["skill"], "pai-council");
    assert_eq!(routing["runner_up"]["skill"], "pai-research");

    let output = pai_in(&scratch.0, &["route", "bake a cake"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        text(&output).contains("no skill's `use when` trigger matches"),
        "{}",
        text(&output)
    );

    // A project's own skill takes part, and wins with a better trigger.
    std::fs::create_dir_all(scratch.0.join("skills")).expect("mkdir");
    std::fs::write(
        scratch.0.join("skills/bake.pai"),
        "skill bake {\n  description \"Bakes\"\n  use when \"bake a cake\"\n  workflow oven\n}\n\nagent baker(what: text max 100) {\n  context 4k\n  summary 40\n  prompt \"Bake {{what}}\"\n}\n\nworkflow oven(what: text max 100) -> result {\n  return baker(what: what)\n}\n",
    )
    .expect("write");
    let output = pai_in(&scratch.0, &["route", "bake a cake"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(
        text(&output).contains("skill      bake"),
        "{}",
        text(&output)
    );
}

#[test]
fn run_request_routes_then_runs_with_the_request_as_the_first_text_argument() {
    let scratch = Scratch::new("stdlib-run-request");
    let runs = scratch.0.join("runs");
    let output = pai_in(
        &scratch.0,
        &[
            "run",
            "--request",
            "quick research on tokio cancellation",
            "--runs-dir",
            runs.to_str().expect("utf-8"),
            "--run-id",
            "r",
            "-q",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(
        text(&output).contains("route: pai-research `quick`"),
        "{}",
        text(&output)
    );
    let run: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(runs.join("r/run.yaml")).expect("run.yaml"))
            .expect("parses");
    assert_eq!(run["workflow"], "quick");
    assert_eq!(run["file"], "<stdlib>/skills/pai-research.pai");
    assert_eq!(
        run["args"],
        serde_yaml::to_value(["topic=quick research on tokio cancellation"]).expect("yaml")
    );
}

#[test]
fn a_synthesis_that_is_not_complete_gets_a_continuation() {
    let scratch = Scratch::new("stdlib-continuation");
    let runs = scratch.0.join("runs");
    let output = pai(&[
        "run",
        "examples/research/question.pai",
        "--arg",
        "question=should we batch",
        "--provider",
        "replay",
        "--fixture",
        "tests/fixtures/run/continuation.replay.yaml",
        "--runs-dir",
        runs.to_str().expect("utf-8"),
        "--run-id",
        "r",
        "-q",
    ]);
    let read = |id: &str| -> serde_yaml::Value {
        let path = runs.join("r").join(id).join("manifest.yaml");
        serde_yaml::from_str(
            &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        )
        .expect("manifest parses")
    };
    assert_eq!(
        read("investigate/extensive/synthesizer")["status"],
        "failed",
        "{}",
        text(&output)
    );
    assert_eq!(
        read("investigate/extensive/continuer")["status"],
        "complete"
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "Completed synthesis: batching trades latency for cost."
    );
}

#[test]
fn execute_validates_with_the_red_team_only_when_asked() {
    let plan = |redteam: &str| {
        let output = pai(&[
            "plan",
            "workflows/execute.pai",
            "--arg",
            "request=add a login page",
            "--arg",
            "root=examples/sample-app",
            "--arg",
            &format!("redteam={redteam}"),
            "--format",
            "json",
        ]);
        assert_eq!(output.status.code(), Some(0), "{}", text(&output));
        let plan: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
        plan["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .filter_map(|n| n["id"].as_str().map(str::to_string))
            .collect::<Vec<_>>()
    };
    let with = plan("true");
    assert!(
        with.iter().any(|id| id.starts_with("execute/attack")),
        "{with:?}"
    );
    assert!(with.iter().any(|id| id.contains("/debate/chair")));
    let without = plan("false");
    assert!(
        !without.iter().any(|id| id.contains("attack")),
        "{without:?}"
    );
}
