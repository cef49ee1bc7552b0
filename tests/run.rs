//! `pai run` and `pai status` through the real binary: manifests on disk, partial
//! parents, timeouts and retries, budgets, resume, traces.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::scratch::Scratch;

/// A runs directory of its own, removed when the test ends.
struct Runs(PathBuf);

impl Runs {
    fn new(name: &str) -> Runs {
        let dir = std::env::temp_dir().join(format!("pai-run-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Runs(dir)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 temp dir")
    }

    /// The only run in the directory.
    fn run_dir(&self) -> PathBuf {
        let mut runs: Vec<PathBuf> = std::fs::read_dir(&self.0)
            .expect("runs dir exists")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        runs.sort();
        runs.pop().expect("a run")
    }

    /// The id of the only run in the directory.
    fn run_id(&self) -> String {
        self.run_dir()
            .file_name()
            .and_then(|n| n.to_str())
            .expect("a run id")
            .to_string()
    }

    fn manifest(&self, id: &str) -> serde_yaml::Value {
        let mut path = self.run_dir();
        for segment in id.split('/') {
            path.push(segment);
        }
        let text = std::fs::read_to_string(path.join("manifest.yaml"))
            .unwrap_or_else(|e| panic!("{id}: {e}"));
        serde_yaml::from_str(&text).expect("manifest parses")
    }

    fn run_yaml(&self) -> serde_yaml::Value {
        let text = std::fs::read_to_string(self.run_dir().join("run.yaml")).expect("run.yaml");
        serde_yaml::from_str(&text).expect("run.yaml parses")
    }
}

impl Drop for Runs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn pai(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pai"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .env_remove("PAI_PROVIDER")
        .output()
        .expect("pai runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

const ORCHESTRATE: &str = "tests/fixtures/orchestrate.pai";

/// Every file under `dir`, at any depth.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("readable").flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

fn every_manifest(dir: &Path, out: &mut Vec<serde_yaml::Value>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if path.is_dir() {
            every_manifest(&path, out);
        } else if path.file_name().is_some_and(|n| n == "manifest.yaml") {
            let text = std::fs::read_to_string(&path).expect("readable");
            out.push(
                serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
            );
        }
    }
}

#[test]
fn a_tree_over_a_codebase_leaves_a_manifest_per_node() {
    let runs = Runs::new("tree");
    let output = pai(&[
        "run",
        ORCHESTRATE,
        "--arg",
        "task=add auth",
        "--arg",
        "dir=tests/fixtures/app",
        "--runs-dir",
        runs.path(),
        "-q",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stderr(&output).starts_with("provider: sim"),
        "every sim run says so first"
    );

    let mut manifests = Vec::new();
    every_manifest(&runs.run_dir(), &mut manifests);
    // 6 workflow activations, 6 coders, 6 syntheses: the plan's 18 nodes.
    assert_eq!(manifests.len(), 18);
    for manifest in &manifests {
        for field in [
            "status",
            "summary",
            "depth",
            "parent",
            "children",
            "children_status",
            "outputs",
            "id",
            "kind",
            "attempts",
            "tokens",
            "cost_usd",
        ] {
            assert!(
                manifest.get(field).is_some(),
                "{field} missing in {manifest:?}"
            );
        }
        assert_eq!(manifest["status"], "complete", "{manifest:?}");
    }
    let api = runs.manifest("orchestrate/orchestrate[api]");
    assert_eq!(api["depth"], 1);
    assert_eq!(api["parent"], "orchestrate");
    let children: Vec<&str> = api["children"]
        .as_sequence()
        .expect("list")
        .iter()
        .filter_map(|c| c.as_str())
        .collect();
    assert_eq!(
        children,
        [
            "orchestrate[v1]/",
            "coder[login.rs]/",
            "coder[routes.rs]/",
            "synthesizer/"
        ]
    );
    assert_eq!(api["children_status"]["coder[login.rs]/"], "complete");
    let leaf = runs.manifest("orchestrate/orchestrate[api]/coder[login.rs]");
    assert_eq!(leaf["agent"], "coder");
    assert_eq!(leaf["outputs"][0], "output.md");
    assert_eq!(leaf["attempts"], 1);
    assert!(leaf["inputs_hash"].as_str().is_some_and(|h| h.len() == 24));
    // The root's summary is the final synthesis.
    let root = runs.manifest("orchestrate");
    assert!(
        root["summary"]
            .as_str()
            .is_some_and(|s| s.starts_with("synthesizer finished")),
        "{root:?}"
    );
    assert_eq!(runs.run_yaml()["status"], "complete");
}

#[test]
fn a_failed_leaf_makes_its_parent_partial_and_spares_its_sibling() {
    let runs = Runs::new("partial");
    let output = pai(&[
        "run",
        ORCHESTRATE,
        "--arg",
        "task=x",
        "--arg",
        "dir=tests/fixtures/app",
        "--runs-dir",
        runs.path(),
        "-q",
        "--provider",
        "replay",
        "--fixture",
        "tests/fixtures/run/app.replay.yaml",
    ]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "a partial run exits 1: {}",
        stderr(&output)
    );
    let failed = runs.manifest("orchestrate/orchestrate[api]/coder[login.rs]");
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error"], "the model refused to edit login.rs");
    // A call that failed without an answer wrote no `output.md`, and its manifest says so.
    assert_eq!(failed["outputs"], serde_yaml::Value::Sequence(Vec::new()));
    assert!(!runs
        .run_dir()
        .join("orchestrate/orchestrate[api]/coder[login.rs]/output.md")
        .exists());
    assert_eq!(
        runs.manifest("orchestrate/orchestrate[api]/coder[routes.rs]")["status"],
        "complete"
    );
    // The synthesis still runs on what it has; its directory is partial.
    assert_eq!(
        runs.manifest("orchestrate/orchestrate[api]/synthesizer")["status"],
        "complete"
    );
    let api = runs.manifest("orchestrate/orchestrate[api]");
    assert_eq!(api["status"], "partial");
    assert_eq!(api["children_status"]["coder[login.rs]/"], "failed");
    assert_eq!(
        runs.manifest("orchestrate/orchestrate[ui]")["status"],
        "complete"
    );
    assert_eq!(runs.manifest("orchestrate")["status"], "partial");
}

#[test]
fn timeouts_fail_and_transient_errors_are_retried() {
    let runs = Runs::new("flaky");
    let output = pai(&[
        "run",
        "tests/fixtures/run/flaky.pai",
        "--arg",
        "x=go",
        "--runs-dir",
        runs.path(),
        "-q",
        "--provider",
        "replay",
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let slow = runs.manifest("flaky-run/slow");
    assert_eq!(slow["status"], "failed");
    assert_eq!(slow["error"], "timed out after 200ms");
    let flaky = runs.manifest("flaky-run/flaky");
    assert_eq!(flaky["status"], "complete");
    assert_eq!(flaky["attempts"], 2);
    assert_eq!(flaky["summary"], "Flaky answered on the second try.");
    // The fold found its replay answer only because the flaky answer reached its
    // prompt fenced as untrusted.
    assert_eq!(
        runs.manifest("flaky-run/fold")["summary"],
        "Folded, with the flaky answer fenced as untrusted."
    );
}

#[test]
fn a_run_past_its_budget_does_not_start_unless_told() {
    let runs = Runs::new("budget");
    let args = [
        "run",
        ORCHESTRATE,
        "--arg",
        "task=x",
        "--arg",
        "dir=tests/fixtures/app",
        "--runs-dir",
        runs.path(),
        "-q",
        "--max-agents",
        "3",
    ];
    let refused = pai(&args);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains("12 agent calls > --max-agents 3"),
        "{}",
        stderr(&refused)
    );
    assert!(!runs.0.exists(), "a refused run writes nothing");

    let mut forced = args.to_vec();
    forced.push("--yes");
    let output = pai(&forced);
    assert_eq!(
        output.status.code(),
        Some(1),
        "a run stopped by its budget exits 1"
    );
    let run = runs.run_yaml();
    assert_eq!(run["stopped"], "reached --max-agents 3");
    assert_eq!(run["totals"]["agent_calls"], 3);
    assert_eq!(run["status"], "waiting");

    // Every call the progress lines say started also says how it ended: the one the
    // budget stopped is `waiting (not started)`, not left hanging at `start`.
    let runs = Runs::new("budget-lines");
    let output = pai(&[
        "run",
        ORCHESTRATE,
        "--arg",
        "task=x",
        "--arg",
        "dir=tests/fixtures/app",
        "--runs-dir",
        runs.path(),
        "--max-agents",
        "3",
        "--yes",
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let lines = stderr(&output);
    let ended = |id: &str| {
        lines.lines().any(|line| {
            let mut words = line.split_whitespace().skip(1);
            words.next() != Some("start") && words.next() == Some(id)
        })
    };
    let started: Vec<&str> = (lines.lines())
        .filter_map(|line| {
            let mut words = line.split_whitespace().skip(1);
            (words.next() == Some("start"))
                .then(|| words.next())
                .flatten()
        })
        .collect();
    assert_eq!(started.len(), 4, "{lines}");
    for id in started {
        assert!(ended(id), "`{id}` started and never ended:\n{lines}");
    }
    assert!(lines.contains("(not started)"), "{lines}");
}

#[test]
fn resume_reruns_only_what_did_not_complete() {
    let runs = Runs::new("resume");
    let first = pai(&[
        "run",
        ORCHESTRATE,
        "--arg",
        "task=x",
        "--arg",
        "dir=tests/fixtures/app",
        "--runs-dir",
        runs.path(),
        "-q",
        "--provider",
        "replay",
        "--fixture",
        "tests/fixtures/run/app.replay.yaml",
    ]);
    assert_eq!(first.status.code(), Some(1));
    let run_id = runs.run_id();
    // Without `--provider`, the resume chooses replay again, whose fixture still has no
    // answer for the failed leaf: it fails again, and sim answers nothing (it used to
    // step in, mixing simulated answers into a replayed run that then read complete).
    // An exported `PAI_PROVIDER` does not count as a choice.
    let again = Command::new(env!("CARGO_BIN_EXE_pai"))
        .args(["run", "--resume", &run_id, "--runs-dir", runs.path(), "-q"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .env("PAI_PROVIDER", "sim")
        .output()
        .expect("pai runs");
    assert_eq!(again.status.code(), Some(1), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("provider: replay"),
        "{}",
        stderr(&again)
    );
    assert_eq!(runs.run_yaml()["provider"], "replay");
    assert_eq!(
        runs.manifest("orchestrate/orchestrate[api]/coder[login.rs]")["status"],
        "failed"
    );
    // With sim chosen on purpose (and said so), the failed leaf runs again; so do the
    // syntheses above it, whose input changed. Every other node is reused.
    let second = pai(&[
        "run",
        "--resume",
        &run_id,
        "--runs-dir",
        runs.path(),
        "-q",
        "--provider",
        "sim",
    ]);
    assert_eq!(second.status.code(), Some(0), "{}", stderr(&second));
    assert!(
        stderr(&second).contains(&format!(
            "note: run `{run_id}` was started with provider `replay`; it goes on with provider `sim`"
        )),
        "{}",
        stderr(&second)
    );
    let run = runs.run_yaml();
    assert_eq!(run["status"], "complete");
    assert_eq!(
        run["totals"]["agent_calls"], 3,
        "login.rs, api's and the root's syntheses"
    );
    assert_eq!(run["totals"]["reused"], 9);
    assert_eq!(
        runs.manifest("orchestrate/orchestrate[api]/coder[login.rs]")["status"],
        "complete"
    );
}

#[test]
fn status_shows_the_tree_and_trace_is_chrome_json() {
    let runs = Runs::new("status");
    let trace = runs.0.with_extension("trace.json");
    let output = pai(&[
        "run",
        "tests/fixtures/research.pai",
        "--arg",
        "question=why",
        "--runs-dir",
        runs.path(),
        "-q",
        "--trace",
        trace.to_str().expect("utf-8"),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let run_id = runs.run_id();
    let status = pai(&["status", &run_id, "--runs-dir", runs.path()]);
    assert_eq!(status.status.code(), Some(0));
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains("`research` in tests/fixtures/research.pai  complete"),
        "{text}"
    );
    assert!(text.contains("├── angle[*]"), "{text}");
    assert!(
        text.contains("│   ├── researcher[") && text.contains("complete"),
        "{text}"
    );

    let events: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&trace).expect("trace written")).expect("json");
    let events = events["traceEvents"].as_array().expect("events");
    // planner, 3 researchers, the exec step, writer, and the expansion point.
    assert_eq!(events.len(), 7);
    assert!(events
        .iter()
        .all(|e| e["ph"] == "X" && e["dur"].is_u64() && e["ts"].is_u64()));
    let _ = std::fs::remove_file(trace);
}

#[test]
fn a_replay_without_an_answer_says_what_to_add() {
    let runs = Runs::new("missing");
    let fixture = runs.0.with_extension("replay.yaml");
    std::fs::write(
        &fixture,
        "answers:\n  - agent: planner\n    value: [\"a\"]\n",
    )
    .expect("write fixture");
    let output = pai(&[
        "run",
        "tests/fixtures/research.pai",
        "--arg",
        "question=why",
        "--runs-dir",
        runs.path(),
        "-q",
        "--provider",
        "replay",
        "--fixture",
        fixture.to_str().expect("utf-8"),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let researcher = runs.manifest("research/angle[*]/researcher[a]");
    assert_eq!(researcher["status"], "failed");
    assert!(
        researcher["error"].as_str().is_some_and(
            |e| e.contains("add to the fixture:\n  - node: research/angle[*]/researcher[a]")
        ),
        "{researcher:?}"
    );
    let _ = std::fs::remove_file(fixture);
}

#[test]
fn pai_test_passes_on_expectations_and_shows_each_mismatch() {
    let passing = pai(&["test", "tests/fixtures/run/flaky.pai"]);
    assert_eq!(
        passing.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&passing.stdout)
    );
    let design = pai(&["test", "examples/design/execute.pai"]);
    assert_eq!(
        design.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&design.stdout)
    );

    // The same workflow and fixture with wrong expectations.
    let dir = std::env::temp_dir().join(format!("pai-test-mismatch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    for name in ["flaky.pai", "flaky.replay.yaml"] {
        std::fs::copy(Path::new("tests/fixtures/run").join(name), dir.join(name)).expect("copy");
    }
    std::fs::write(
        dir.join("flaky.expect.yaml"),
        "args: [\"x=go\"]\nstatus: complete\nagents: 9\nnodes:\n  flaky-run/flaky:\n    summary: \"Something else.\"\n  flaky-run/nope:\n    status: complete\n",
    )
    .expect("write expectations");
    let failing = pai(&["test", dir.join("flaky.pai").to_str().expect("utf-8")]);
    let stdout = String::from_utf8_lossy(&failing.stdout).into_owned();
    assert_eq!(failing.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("run status: expected `complete`, got `partial`"),
        "{stdout}"
    );
    assert!(
        stdout.contains("agent calls: expected 9, got 3"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "- expected: \"Something else.\"\n  + got:      \"Flaky answered on the second try.\""
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("flaky-run/nope: expected a node, but the run has none"),
        "{stdout}"
    );
    assert!(stdout.contains("4 mismatches"), "{stdout}");

    // Expectations that could never fail, or never pass, are refused before the run.
    for (expectations, says) in [
        (
            "args: [\"x=go\"]\nmax_cost: .nan\n",
            "`max_cost: NaN` is not an amount of dollars",
        ),
        (
            "args: [\"x=go\"]\nmax_cost: -1\n",
            "`max_cost: -1` is not an amount of dollars",
        ),
        (
            "args: [\"x=go\"]\nstatus: complet\n",
            "`status: complet` is not a run status",
        ),
        (
            "args: [\"x=go\"]\nnodes:\n  flaky-run/flaky:\n    status: done\n",
            "`status: done` is not a node status",
        ),
    ] {
        std::fs::write(dir.join("flaky.expect.yaml"), expectations).expect("write expectations");
        let refused = pai(&["test", dir.join("flaky.pai").to_str().expect("utf-8")]);
        assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
        assert!(stderr(&refused).contains(says), "{}", stderr(&refused));
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn ctrl_c_records_calls_in_flight_as_waiting_and_exits_130() {
    let runs = Runs::new("interrupt");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pai"))
        .args([
            "run",
            ORCHESTRATE,
            "--arg",
            "task=x",
            "--arg",
            "dir=tests/fixtures/app",
            "--runs-dir",
            runs.path(),
            "-q",
            "--sim-latency",
            "2s",
            "--run-id",
            "interrupted",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("PAI_PROVIDER")
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawns");
    // Let the first calls start, then interrupt as a terminal would.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let status = child.wait().expect("exits");
    assert_eq!(status.code(), Some(130));
    let run = runs.run_yaml();
    assert_eq!(run["stopped"], "interrupted (Ctrl-C)");
    assert_eq!(run["status"], "waiting");
    let mut manifests = Vec::new();
    every_manifest(&runs.run_dir(), &mut manifests);
    let waiting = manifests
        .iter()
        .filter(|m| m["kind"] == "agent" && m["status"] == "waiting")
        .count();
    assert!(
        waiting >= 1,
        "the calls in flight are recorded waiting: {manifests:?}"
    );
    assert!(
        manifests
            .iter()
            .all(|m| m["status"] != "complete" || m["kind"] != "agent"),
        "nothing finished in 2 s"
    );
}

/// SIGTERM (`kill`, a CI runner's cancel) and SIGHUP (the terminal closed) stop a run
/// as Ctrl-C does: the step in flight is killed with its process group, recorded
/// `waiting`, and the exit status is 128 and the signal's number. Both used to kill
/// `pai` alone, leaving the step running and `run.yaml` at `running`.
#[test]
fn sigterm_and_sighup_stop_a_run_as_ctrl_c_does() {
    let (runs, scratch, workflow) = runs_and_file(
        "terminate",
        "slow.pai",
        "workflow slow() -> result {\n  return exec([\"sh\", \"-c\", \"echo $$ > step.pid; exec sleep 30\"])\n}\n",
    );
    for (signal, code, reason) in [("TERM", 143, "SIGTERM"), ("HUP", 129, "SIGHUP")] {
        let run_id = format!("stopped-by-{signal}");
        let _ = std::fs::remove_file(scratch.join("step.pid"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_pai"))
            .args(["run", workflow.to_str().expect("utf-8"), "--runs-dir"])
            .args([runs.path(), "-q", "--run-id", &run_id])
            .env_remove("PAI_PROVIDER")
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawns");
        // Wait (a bounded while) for the step to start.
        let pid_file = scratch.join("step.pid");
        for _ in 0..100 {
            if std::fs::read_to_string(&pid_file).is_ok_and(|pid| pid.ends_with('\n')) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let step = std::fs::read_to_string(&pid_file).expect("the step started");
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success());
        let status = child.wait().expect("exits");
        assert_eq!(status.code(), Some(code), "{signal}");
        let run: serde_yaml::Value = serde_yaml::from_str(
            &std::fs::read_to_string(runs.0.join(&run_id).join("run.yaml")).expect("run.yaml"),
        )
        .expect("parses");
        assert_eq!(run["stopped"], format!("interrupted ({reason})"));
        assert_eq!(run["status"], "waiting");
        let alive = Command::new("kill")
            .args(["-0", step.trim()])
            .stderr(std::process::Stdio::null())
            .status()
            .expect("kill runs");
        assert!(!alive.success(), "the step outlived the run ({signal})");
    }
}

#[test]
fn a_fan_out_wider_than_the_writer_window_writes_every_manifest() {
    let runs = Runs::new("wide");
    let items: Vec<String> = (0..1500).map(|i| format!("i{i}")).collect();
    let items = format!("items={}", items.join(","));
    let output = pai(&[
        "run",
        "tests/fixtures/wide.pai",
        "--arg",
        &items,
        "--runs-dir",
        runs.path(),
        "-q",
        "--sim-latency",
        "0ms",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let mut manifests = Vec::new();
    every_manifest(&runs.run_dir(), &mut manifests);
    // The workflow, 1,500 leaves and the fold.
    assert_eq!(manifests.len(), 1502);
    assert!(
        manifests.iter().all(|m| m["status"] == "complete"),
        "every node is written in its final state"
    );
    let leaves = manifests
        .iter()
        .filter(|m| m["agent"] == "leaf" && m["summary"].as_str().is_some_and(|s| !s.is_empty()))
        .count();
    assert_eq!(leaves, 1500);
    assert_eq!(runs.run_yaml()["status"], "complete");
    assert_eq!(
        runs.manifest("wide")["children"]
            .as_sequence()
            .map(Vec::len),
        Some(1501)
    );
}

#[test]
fn an_if_on_a_model_answer_runs_one_branch_and_skips_the_other() {
    let runs = Runs::new("branch");
    let output = pai(&[
        "run",
        "tests/fixtures/run/branch.pai",
        "--arg",
        "x=app",
        "--runs-dir",
        runs.path(),
        "-q",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    // `sim` answers `true` to the judge, so `ship` runs and `rework` is skipped.
    assert_eq!(runs.manifest("decide/judge")["value"], true);
    assert_eq!(runs.manifest("decide/ship")["status"], "complete");
    let rework = runs.manifest("decide/rework");
    assert_eq!(rework["status"], "skipped");
    assert_eq!(rework["attempts"], 0);
    let root = runs.manifest("decide");
    assert_eq!(root["status"], "complete");
    assert!(
        root["summary"]
            .as_str()
            .is_some_and(|s| s.starts_with("ship finished")),
        "{root:?}"
    );
}

#[test]
fn a_model_list_longer_than_its_max_is_retried_with_the_reason() {
    let runs = Runs::new("toolong");
    let output = pai(&[
        "run",
        "tests/fixtures/run/toolong.pai",
        "--arg",
        "question=why",
        "--runs-dir",
        runs.path(),
        "-q",
        "--provider",
        "replay",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let planner = runs.manifest("research/planner");
    assert_eq!(
        planner["attempts"], 2,
        "the first answer had 4 elements for a `max 2`"
    );
    assert_eq!(
        planner["value"],
        serde_yaml::to_value(["speed", "cost"]).expect("yaml")
    );
    assert_eq!(
        runs.manifest("research/angle[*]/researcher[cost]")["status"],
        "complete"
    );
}

/// An agent `echo` and a workflow `one` that calls it once.
const ECHO_ONE: &str = "agent echo(x: text max 10) {\n  context 4k\n  summary 40\n  prompt \"Echo {{x}}\"\n}\n\nworkflow one() {\n  return echo(x: \"hello\")\n}\n";

/// Runs of their own named after `name`, and `text` written to a scratch file kept as
/// long as they are (a resume reads the file again).
fn runs_and_file(name: &str, file: &str, text: &str) -> (Runs, Scratch, PathBuf) {
    let runs = Runs::new(name);
    let scratch = Scratch::new(&format!("{name}-workflow"));
    let path = scratch.join(file);
    std::fs::write(&path, text).expect("workflow written");
    (runs, scratch, path)
}

/// `pai run FILE --runs-dir RUNS -q ARGS...`
fn run_in(runs: &Runs, file: &Path, args: &[&str]) -> Output {
    let mut all = vec![
        "run",
        file.to_str().expect("utf-8"),
        "--runs-dir",
        runs.path(),
        "-q",
    ];
    all.extend_from_slice(args);
    pai(&all)
}

/// The error node `id` of `runs` failed with (it must have failed).
fn failed_node_error(runs: &Runs, id: &str) -> String {
    let manifest = runs.manifest(id);
    assert_eq!(manifest["status"], "failed", "{manifest:?}");
    manifest["error"].as_str().unwrap_or_default().to_string()
}

/// `run_in` with the replay provider, answering from `fixture` (written beside the
/// workflow in its scratch directory).
fn run_replayed(
    (runs, scratch, workflow): (&Runs, &Scratch, &Path),
    fixture: &str,
    args: &[&str],
) -> Output {
    let path = scratch.join("answers.replay.yaml");
    std::fs::write(&path, fixture).expect("fixture written");
    let path = path.to_str().expect("utf-8").to_string();
    let mut all = args.to_vec();
    all.extend_from_slice(&["--provider", "replay", "--fixture", &path]);
    run_in(runs, workflow, &all)
}

/// Runs the only workflow of `text` (written to a scratch file) quietly, into runs of
/// its own named after `name`.
fn run_one_workflow(name: &str, text: &str) -> (Runs, Output) {
    let runs = Runs::new(name);
    let scratch = Scratch::new(&format!("{name}-workflow"));
    let workflow = scratch.join("one.pai");
    std::fs::write(&workflow, text).expect("workflow written");
    let output = pai(&[
        "run",
        workflow.to_str().expect("utf-8"),
        "--runs-dir",
        runs.path(),
        "-q",
    ]);
    (runs, output)
}

/// `pai` runs without transparent huge pages (src/process.rs), but the processes it
/// starts keep the setting `pai` was started with.
#[cfg(target_os = "linux")]
#[test]
fn exec_steps_keep_the_huge_page_setting_pai_was_started_with() {
    let thp_line = |status: &str| {
        status
            .lines()
            .find(|line| line.starts_with("THP_enabled:"))
            .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
    };
    let ours = std::fs::read_to_string("/proc/self/status").expect("proc status");
    let Some(expected) = thp_line(&ours) else {
        return; // a kernel that does not report it
    };
    let (runs, output) = run_one_workflow(
        "thp",
        "workflow probe() -> result {\n  return exec([\"cat\", \"/proc/self/status\"])\n}\n",
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let outputs: Vec<String> = files_under(&runs.run_dir())
        .into_iter()
        .filter(|path| path.file_name().is_some_and(|n| n == "output.md"))
        .map(|path| std::fs::read_to_string(path).expect("output"))
        .collect();
    let seen: Vec<_> = outputs.iter().filter_map(|o| thp_line(o)).collect();
    assert_eq!(seen, vec![expected]);
}

/// An `exec` step that writes without end (`yes`) fails its node once it has written
/// more than `pai` keeps, rather than filling memory until its ten-minute timeout.
#[test]
fn an_exec_step_that_writes_without_end_fails_its_node() {
    let (runs, output) = run_one_workflow(
        "exec-flood",
        "workflow flood() -> result {\n  return exec([\"yes\", \"flood\"])\n}\n",
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let mut manifests = Vec::new();
    every_manifest(&runs.run_dir(), &mut manifests);
    let exec = manifests
        .iter()
        .find(|m| m["kind"] == "exec")
        .expect("the exec node's manifest");
    assert_eq!(exec["status"], "failed");
    let error = exec["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("`yes` wrote more than 16 MiB to its standard output"),
        "{error}"
    );
}

/// An `exec` step runs with the whole environment, so `exec(["env"])` printed every key
/// into its manifest, its `output.md` and the prompt of whatever read it. Values of
/// credential-named variables are redacted from what it prints; other variables are
/// kept.
#[test]
fn an_exec_step_that_prints_the_environment_leaks_no_key() {
    let canary = format!("sk-exec-canary-{}-4d2e", std::process::id());
    let (runs, _scratch, workflow) = runs_and_file(
        "exec-env",
        "one.pai",
        "workflow probe() -> result {\n  return exec([\"env\"])\n}\n",
    );
    let output = Command::new(env!("CARGO_BIN_EXE_pai"))
        .args(["run", workflow.to_str().expect("utf-8"), "--runs-dir"])
        .arg(runs.path())
        .env("NO_COLOR", "1")
        .env_remove("PAI_PROVIDER")
        .env("EXEC_CANARY_API_KEY", &canary)
        .env("EXEC_CANARY_PLAIN", "plain-value-kept")
        .output()
        .expect("pai runs");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let all: String = files_under(&runs.run_dir())
        .into_iter()
        .map(|path| std::fs::read_to_string(path).expect("text"))
        .collect();
    assert!(all.contains("EXEC_CANARY_PLAIN=plain-value-kept"), "{all}");
    assert!(all.contains("EXEC_CANARY_API_KEY=[redacted]"), "{all}");
    assert!(!all.contains(&canary));
    assert!(!String::from_utf8_lossy(&output.stdout).contains(&canary));
    assert!(!stderr(&output).contains(&canary));
}

/// `--resume` goes on with what the run was started with, and nothing else takes the
/// run over: a new run with an id in use is refused (it replaced `run.yaml` and left
/// the old nodes among the new); an `--arg` given to the resume replaces its own
/// argument and keeps the others (it dropped them); a resume from another directory is
/// refused with the command to run (its relative paths named nothing there); and a run
/// in use by one `pai` is refused to a second (both ran every call).
#[test]
fn a_run_is_resumed_as_it_was_started_and_by_one_pai_at_a_time() {
    let (runs, scratch, workflow) = runs_and_file(
        "resume-as-started",
        "two.pai",
        "agent echo(x: text max 10, y: text max 10) {\n  context 4k\n  summary 40\n  prompt \"{{x}} {{y}}\"\n}\n\nworkflow two(x: text max 10, y: text max 10) {\n  return echo(x: x, y: y)\n}\n",
    );
    let file = workflow.to_str().expect("utf-8");
    let start = |id: &str, extra: &[&str]| {
        let mut args = vec![
            "run",
            file,
            "--arg",
            "x=1",
            "--arg",
            "y=2",
            "--run-id",
            id,
            "--runs-dir",
            runs.path(),
            "-q",
        ];
        args.extend_from_slice(extra);
        args.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let first = pai(&start("r1", &[])
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>());
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let run_yaml = runs.0.join("r1/run.yaml");
    let before = std::fs::read_to_string(&run_yaml).expect("run.yaml");

    let again = pai(&start("r1", &[])
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>());
    assert_eq!(again.status.code(), Some(2), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("run `r1` already exists"),
        "{}",
        stderr(&again)
    );
    assert!(stderr(&again).contains("--resume r1"), "{}", stderr(&again));
    assert_eq!(
        std::fs::read_to_string(&run_yaml).expect("run.yaml"),
        before
    );

    let resumed = pai(&[
        "run",
        "--resume",
        "r1",
        "--arg",
        "y=3",
        "--runs-dir",
        runs.path(),
        "-q",
    ]);
    assert_eq!(resumed.status.code(), Some(0), "{}", stderr(&resumed));
    let run: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&run_yaml).expect("run.yaml"))
            .expect("parses");
    let args: Vec<&str> = run["args"]
        .as_sequence()
        .expect("args")
        .iter()
        .filter_map(serde_yaml::Value::as_str)
        .collect();
    assert_eq!(args, ["x=1", "y=3"]);
    assert_eq!(run["totals"]["agent_calls"], 1, "the prompt changed");

    // Its own file may be named again; another file or workflow is refused, and the
    // run is left as it was (it used to plan the other tree into the same directory).
    let same = pai(&[
        "run",
        file,
        "--resume",
        "r1",
        "--runs-dir",
        runs.path(),
        "-q",
    ]);
    assert_eq!(same.status.code(), Some(0), "{}", stderr(&same));
    let before = std::fs::read_to_string(&run_yaml).expect("run.yaml");
    let other = scratch.join("other.pai");
    std::fs::copy(&workflow, &other).expect("copied");
    for switched in [
        vec!["run", other.to_str().expect("utf-8"), "--resume", "r1"],
        vec!["run", "--workflow", "echo", "--resume", "r1"],
    ] {
        let mut args = switched.clone();
        args.extend_from_slice(&["--runs-dir", runs.path(), "-q"]);
        let refused = pai(&args);
        assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
        assert!(
            stderr(&refused).contains("error: run `r1` was started with workflow `two` of"),
            "{}",
            stderr(&refused)
        );
        assert_eq!(
            std::fs::read_to_string(&run_yaml).expect("run.yaml"),
            before
        );
    }

    let elsewhere = scratch.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).expect("dir");
    let moved = Command::new(env!("CARGO_BIN_EXE_pai"))
        .args(["run", "--resume", "r1", "--runs-dir", runs.path(), "-q"])
        .current_dir(&elsewhere)
        .env("NO_COLOR", "1")
        .env_remove("PAI_PROVIDER")
        .output()
        .expect("pai runs");
    assert_eq!(moved.status.code(), Some(2), "{}", stderr(&moved));
    assert!(
        stderr(&moved).contains("error: run `r1` was started in"),
        "{}",
        stderr(&moved)
    );
    assert!(stderr(&moved).contains("help: resume it from there: cd "));

    // A run in flight holds its directory; killed, it frees it at once.
    let mut slow = Command::new(env!("CARGO_BIN_EXE_pai"))
        .args(start("r2", &["--sim-latency", "30s"]))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("PAI_PROVIDER")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("pai starts");
    let started = runs.0.join("r2/run.yaml");
    for _ in 0..400 {
        if started.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    assert!(started.exists(), "the slow run never started");
    let second = pai(&["run", "--resume", "r2", "--runs-dir", runs.path(), "-q"]);
    let _ = slow.kill();
    let _ = slow.wait();
    assert_eq!(second.status.code(), Some(2), "{}", stderr(&second));
    assert!(
        stderr(&second).contains("run `r2` is in use by another `pai`"),
        "{}",
        stderr(&second)
    );
    let after_kill = pai(&["run", "--resume", "r2", "--runs-dir", runs.path(), "-q"]);
    assert_eq!(after_kill.status.code(), Some(0), "{}", stderr(&after_kill));
}

/// A complete node whose `output.md` is gone runs again on `--resume`: it was reused
/// with an empty answer, which changed every prompt downstream, and the file was never
/// written again.
#[test]
fn a_complete_node_whose_output_is_gone_runs_again() {
    let (runs, _scratch, workflow) = runs_and_file("lost-output", "one.pai", ECHO_ONE);
    let output = run_in(&runs, &workflow, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let run_dir = runs.run_dir();
    let answer = run_dir.join("one/echo/output.md");
    let written = std::fs::read_to_string(&answer).expect("the answer");
    assert!(!written.is_empty());
    std::fs::remove_file(&answer).expect("removed");
    let id = runs.run_id();
    let resumed = pai(&["run", "--resume", &id, "--runs-dir", runs.path(), "-q"]);
    assert_eq!(resumed.status.code(), Some(0), "{}", stderr(&resumed));
    assert_eq!(runs.run_yaml()["totals"]["reused"], 0);
    assert_eq!(runs.run_yaml()["totals"]["agent_calls"], 1);
    assert_eq!(
        std::fs::read_to_string(&answer).expect("written again"),
        written
    );
}

/// A trace that cannot be written does not cost the run its result: a directory given as
/// `--trace` is refused before anything runs, and a trace whose file cannot be made is
/// a warning after the run, whose status stays its own (both ended in exit 2 after the
/// whole run, with the summary lost).
#[test]
fn a_trace_that_cannot_be_written_costs_the_run_nothing() {
    let (runs, scratch, workflow) = runs_and_file("trace-path", "one.pai", ECHO_ONE);
    let dir = scratch.join("a-directory");
    std::fs::create_dir_all(&dir).expect("dir");
    let refused = run_in(&runs, &workflow, &["--trace", dir.to_str().expect("utf-8")]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("is a directory"),
        "{}",
        stderr(&refused)
    );
    assert!(!runs.0.exists(), "nothing ran");

    let blocker = scratch.join("a-file");
    std::fs::write(&blocker, "not a directory").expect("written");
    let unwritable = blocker.join("trace.json");
    let output = run_in(
        &runs,
        &workflow,
        &["--trace", unwritable.to_str().expect("utf-8")],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("warning: cannot write"),
        "{}",
        stderr(&output)
    );
    assert!(
        !String::from_utf8_lossy(&output.stdout).is_empty(),
        "the summary"
    );
    assert_eq!(runs.run_yaml()["status"], "complete");
}

/// `pai status` reads manifests that a user (or a crash) may have changed, and walks
/// only the run's own directories, each once: a `children: [d/, d/]` on each of forty
/// nested manifests walked 2^40 rows (20 s and 684 MB before it was stopped), and a
/// `workflow: ../other` in `run.yaml` walked another directory.
#[test]
fn status_walks_each_directory_of_the_run_once() {
    let (runs, output) = run_one_workflow("status-hostile", ECHO_ONE);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let run_dir = runs.run_dir();
    let id = runs.run_id();
    // Eighteen nested directories below the root, each listing its child twice (2^18
    // rows before; few enough that a regression fails rather than hangs).
    let mut dir = run_dir.join("one");
    for _ in 0..18 {
        std::fs::write(
            dir.join("manifest.yaml"),
            "status: complete\nsummary: s\ndepth: 0\nparent: null\nchildren: [d/, d/, ../, /etc/]\nchildren_status: {}\noutputs: []\nid: x\nkind: workflow\ninputs: []\nattempts: 0\ntokens:\n  input: 0\n  output: 0\ncost_usd: 0.0\n",
        )
        .expect("manifest");
        dir = dir.join("d");
        std::fs::create_dir_all(&dir).expect("dir");
    }
    let started = std::time::Instant::now();
    let status = pai(&["status", &id, "--runs-dir", runs.path()]);
    assert_eq!(status.status.code(), Some(0), "{}", stderr(&status));
    let shown = String::from_utf8_lossy(&status.stdout);
    assert_eq!(shown.matches("── d").count(), 18, "{shown}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));

    let run_yaml = run_dir.join("run.yaml");
    let text = std::fs::read_to_string(&run_yaml).expect("run.yaml");
    std::fs::write(
        &run_yaml,
        text.replace("workflow: one", "workflow: ../elsewhere"),
    )
    .expect("written");
    let status = pai(&["status", &id, "--runs-dir", runs.path()]);
    assert_eq!(status.status.code(), Some(2), "{}", stderr(&status));
    assert!(
        stderr(&status).contains("is not a directory of the run"),
        "{}",
        stderr(&status)
    );
}

/// A complete node whose recorded structured answer no longer fits its agent (edited,
/// or written for an older return type) runs again on `--resume` instead of being
/// reused: its `for` could never grow ("has not grown yet"), and resuming never
/// recovered.
#[test]
fn a_recorded_answer_that_no_longer_fits_runs_again() {
    let (runs, _scratch, workflow) = runs_and_file(
        "unfit-value",
        "fan.pai",
        "agent planner(topic: text max 10) -> list<text max 20> {\n  context 4k\n  summary 80\n  prompt \"Split {{topic}}\"\n}\n\nagent worker(part: text max 40) {\n  context 4k\n  summary 40\n  prompt \"Do {{part}}\"\n}\n\nworkflow fan() -> list<result> {\n  let parts = planner(topic: \"x\")\n  return for p in parts max 3 { worker(part: p) }\n}\n",
    );
    let first = run_in(&runs, &workflow, &[]);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let run_dir = runs.run_dir();
    let planner = run_dir.join("fan/planner/manifest.yaml");
    let text = std::fs::read_to_string(&planner).expect("planner manifest");
    assert!(text.contains("\nvalue:"), "{text}");
    // The list the planner answered, replaced by a number.
    let edited: String = text
        .lines()
        .scan(false, |in_value, line| {
            if line.starts_with("value:") {
                *in_value = true;
                return Some(Some("value: 42".to_string()));
            }
            if *in_value && (line.starts_with("- ") || line.starts_with("  ")) {
                return Some(None);
            }
            *in_value = false;
            Some(Some(line.to_string()))
        })
        .flatten()
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&planner, edited + "\n").expect("edited");
    let id = runs.run_id();
    let resumed = pai(&["run", "--resume", &id, "--runs-dir", runs.path(), "-q"]);
    assert_eq!(resumed.status.code(), Some(0), "{}", stderr(&resumed));
    assert_eq!(runs.run_yaml()["status"], "complete");
    assert!(runs.manifest("fan/planner")["value"].is_sequence());
}

/// A structured answer is handed on whole, so it is held to its agent's `summary`
/// budget, which is what the checker counted it at: a list of 1,000 elements went into
/// a prompt whose budget counted one token.
#[test]
fn a_structured_answer_over_its_summary_fails_its_node() {
    let (runs, scratch, workflow) = runs_and_file(
        "typed-summary",
        "typed.pai",
        "agent planner(task: text max 10) -> list<text> {\n  context 200\n  summary 40 tokens\n  prompt \"Split {{task}}\"\n}\n\nagent consumer(items: list<text>) -> result {\n  context 200\n  summary 10 tokens\n  prompt \"Do {{items}}\"\n}\n\nworkflow main(task: text max 10) -> result {\n  let parts = planner(task: task)\n  return consumer(items: parts)\n}\n",
    );
    // A model that answers 1,000 elements, asked again, answers them again.
    let long: Vec<String> = (0..1000).map(|i| format!("\"p{i}\"")).collect();
    let fixture = format!(
        "answers:\n  - agent: planner\n    value: [{}]\n  - agent: consumer\n    text: done\n",
        long.join(", ")
    );
    let output = run_replayed(
        (&runs, &scratch, &workflow),
        &fixture,
        &["--arg", "task=go"],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let planner = runs.manifest("main/planner");
    assert_eq!(planner["status"], "failed");
    let error = planner["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("more than the agent's `summary 40`"),
        "{error}"
    );
    // `sim` answers within the budget, whatever `--sim-list` asks.
    let fits = run_in(
        &runs,
        &workflow,
        &["--arg", "task=go", "--sim-list", "1000"],
    );
    assert_eq!(fits.status.code(), Some(0), "{}", stderr(&fits));
}

/// The checker assumes 4,000 tokens for a full `output` (with W009); a run holds the
/// call to the agent's `context` itself, and does not send a larger prompt.
#[test]
fn a_prompt_past_its_context_is_not_sent() {
    let (runs, _scratch, workflow) = runs_and_file(
        "past-context",
        "reads.pai",
        "agent reader(log: result) -> result {\n  context 5k\n  summary 10 tokens\n  prompt \"Read {{log.output}}\"\n}\n\nworkflow main() -> result {\n  let log = exec([\"seq\", \"1\", \"20000\"])\n  return reader(log: log)\n}\n",
    );
    let output = run_in(&runs, &workflow, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let reader = runs.manifest("main/reader");
    assert_eq!(reader["status"], "failed");
    let error = reader["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("the prompt is 27,")
            && error.contains("more than the agent's `context 5,000`, and was not sent"),
        "{error}"
    );
    assert_eq!(reader["tokens"]["input"].as_u64(), Some(0), "{reader:?}");
    assert_eq!(reader["attempts"].as_u64(), Some(0), "{reader:?}");
}

/// An agent whose `context` holds exactly what the checker counts (the prompt at its
/// worst, then its answer's JSON Schema) is sent its prompt, whatever `for` bounds the
/// list it answers; before the schema was counted, this checked clean and then failed.
#[test]
fn a_structured_agent_at_its_proven_context_is_sent_its_prompt() {
    let text = |context: u64| {
        format!(
            "agent split(task: text) -> list<text max 5> {{\n  context {context}\n  summary 100 tokens\n  prompt \"Split {{{{task}}}}\"\n}}\n\nagent fold(parts: list<text>) -> result {{\n  context 8k\n  summary 10 tokens\n  prompt \"Fold {{{{parts}}}}\"\n}}\n\nworkflow main(task: text max 10) -> result {{\n  let parts = for p in split(task: task) max 1000000 {{ p }}\n  return fold(parts: parts)\n}}\n"
        )
    };
    let refused = pai::check::check_text("split.pai", &text(12), Path::new("."));
    let message = refused
        .diagnostics
        .iter()
        .find(|d| d.code == pai::diagnostics::Code::E017)
        .map(|d| d.message.clone())
        .unwrap_or_else(|| panic!("no E017: {:?}", refused.diagnostics));
    let proven: u64 = message
        .split(" = ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|total| total.replace(',', "").parse().ok())
        .unwrap_or_else(|| panic!("no total in {message}"));
    let (runs, _scratch, workflow) = runs_and_file("schema-counted", "split.pai", &text(proven));
    // The task at its `max`: 10 tokens, 40 bytes.
    let task = format!("task={}", "t".repeat(40));
    let output = run_in(&runs, &workflow, &["--arg", &task, "--sim-list", "3"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(runs.manifest("main/split")["status"], "complete");
}

/// Workflows whose parameter is `list<text max 16> max 4` (ten tokens of text and its
/// fence), handed a model's list.
const HANDED_A_MODELS_LIST: &str = r#"agent split(task: text) -> list<text max 10> {
  context 8k
  summary 200 tokens
  prompt "Split {{task}}"
}

agent leaf(x: text) -> result {
  context 8k
  summary 10 tokens
  prompt "Do {{x}}"
}

agent fold(parts: list<result>) -> result {
  context 8k
  summary 10 tokens
  prompt "{{#each parts}}{{this.summary}}{{/each}}"
}

agent join(parts: list<text>) -> result {
  context 8k
  summary 10 tokens
  prompt "{{#each parts}}{{this}}{{/each}}"
}

workflow sub(items: list<text max 16> max 4) -> result {
  let parts = for i in items { leaf(x: i) }
  return fold(parts: parts)
}

workflow joined(items: list<text max 16> max 4) -> result {
  return join(parts: items)
}

workflow one(task: text max 10) -> result {
  return sub(items: split(task: task))
}

workflow two(task: text max 10) -> result {
  return joined(items: split(task: task) + split(task: task))
}
"#;

/// The checker takes a list parameter's `max` as the length of what it is handed, and
/// so does the run: a `for` over it needs no `max` of its own, the model that makes
/// the list is told the `max`, and a list longer than it is refused where it is handed
/// on. Before, the plan refused the `for` as having no `max`.
#[test]
fn a_list_parameters_max_holds_what_it_is_handed() {
    let (runs, _scratch, workflow) = runs_and_file("param-max", "param.pai", HANDED_A_MODELS_LIST);
    let one = run_in(
        &runs,
        &workflow,
        &["--workflow", "one", "--arg", "task=go", "--sim-list", "6"],
    );
    assert_eq!(one.status.code(), Some(0), "{}", stderr(&one));
    let split = runs.manifest("one/split");
    assert_eq!(split["status"], "complete");
    let leaves = files_under(&runs.run_dir().join("one/sub"))
        .into_iter()
        .filter(|p| p.ends_with("manifest.yaml") && p.to_string_lossy().contains("/leaf"))
        .count();
    assert_eq!(leaves, 4, "the model was told `maxItems` 4");

    // Two lists of three, joined: six elements for a parameter of four.
    let runs = Runs::new("param-max-two");
    let two = run_in(
        &runs,
        &workflow,
        &["--workflow", "two", "--arg", "task=go", "--sim-list", "3"],
    );
    assert_eq!(two.status.code(), Some(1), "{}", stderr(&two));
    let error = failed_node_error(&runs, "two/joined/join");
    assert!(
        error.contains("a list of 6 elements is handed to a parameter declared `max 4`"),
        "{error}"
    );
}

/// A list the plan measures (files found) past a parameter's `max` is refused before
/// anything runs; before, all five became children that the proof had counted as four.
#[test]
fn a_measured_list_past_a_parameters_max_is_refused_by_the_plan() {
    let (_runs, scratch, workflow) = runs_and_file(
        "param-max-files",
        "files.pai",
        "agent leaf(x: path) -> result {\n  context 8k\n  summary 10 tokens\n  prompt \"Do {{x}}\"\n}\n\nworkflow sub(items: list<path> max 4) -> list<result> {\n  return for i in items { leaf(x: i) }\n}\n\nworkflow main(dir: path) -> list<result> {\n  return sub(items: files(dir, \"*.txt\"))\n}\n",
    );
    let dir = scratch.join("d");
    std::fs::create_dir_all(&dir).expect("dir");
    for name in ["a", "b", "c", "d", "e"] {
        std::fs::write(dir.join(format!("{name}.txt")), name).expect("file");
    }
    let arg = format!("dir={}", dir.display());
    let output = pai(&[
        "plan",
        workflow.to_str().expect("utf-8"),
        "--workflow",
        "main",
        "--arg",
        &arg,
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output)
            .contains("workflow `sub` is handed 5 elements for `items`, more than its `max 4`"),
        "{}",
        stderr(&output)
    );
    std::fs::remove_file(dir.join("e.txt")).expect("removed");
    let output = pai(&[
        "plan",
        workflow.to_str().expect("utf-8"),
        "--workflow",
        "main",
        "--arg",
        &arg,
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

/// A `for` over the copies of another `for` takes their number as its bound, as the
/// checker does; the plan used to refuse it as having no `max`.
#[test]
fn a_for_over_the_copies_of_another_needs_no_max() {
    let (_runs, _scratch, workflow) = runs_and_file(
        "for-over-copies",
        "copies.pai",
        "agent leaf(x: text) -> result {\n  context 8k\n  summary 10 tokens\n  prompt \"Do {{x}}\"\n}\n\nagent split(task: text) -> list<text max 10> {\n  context 8k\n  summary 200 tokens\n  prompt \"Split {{task}}\"\n}\n\nworkflow main(task: text max 10) -> list<result> {\n  let firsts = for t in split(task: task) max 3 { leaf(x: t) }\n  return for r in firsts { leaf(x: r.summary) }\n}\n",
    );
    let output = pai(&[
        "plan",
        workflow.to_str().expect("utf-8"),
        "--arg",
        "task=go",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let plan = String::from_utf8_lossy(&output.stdout);
    assert!(plan.contains("r[*]") && plan.contains("up to 3"), "{plan}");
}

/// A `for` over the copies of another `for` binds each copy as what it is (a result, a
/// list of results), so the prompts it makes are the size the plan and the checker
/// counted; bound as JSON of whole results, outputs and all, they were refused at run
/// time after check and plan had passed them.
#[test]
fn a_for_over_copies_runs_at_its_proven_context() {
    let (runs, _scratch, workflow) = runs_and_file(
        "over-copies",
        "copies.pai",
        "agent split(task: text) -> list<text max 10> {\n  context 8k\n  summary 200 tokens\n  prompt \"Split {{task}}\"\n}\n\nagent leaf(x: text) -> result {\n  context 8k\n  summary 10 tokens\n  prompt \"Do {{x}}\"\n}\n\nagent again(x: text) -> result {\n  context 41\n  summary 10 tokens\n  prompt \"Do {{x}}\"\n}\n\nagent fold(parts: list<result>) -> result {\n  context 80\n  summary 10 tokens\n  prompt \"{{#each parts}}{{this.summary}}{{/each}}\"\n}\n\nworkflow one(task: text max 10) -> list<result> {\n  let firsts = for t in split(task: task) max 3 { leaf(x: t) }\n  return for r in firsts { again(x: r.summary) }\n}\n\nworkflow two(task: text max 10) -> list<result> {\n  let groups = for t in split(task: task) max 3 { for u in split(task: t) max 2 { leaf(x: u) } }\n  return for g in groups { fold(parts: g) }\n}\n",
    );
    for name in ["one", "two"] {
        let output = run_in(
            &runs,
            &workflow,
            &[
                "--workflow",
                name,
                "--arg",
                "task=abcdefghij",
                "--sim-list",
                "3",
            ],
        );
        assert_eq!(output.status.code(), Some(0), "{name}: {}", stderr(&output));
    }
}

/// A list parameter's `max` holds the model that makes the list only where the call
/// surely runs: on a branch an `if` may not take, a longer answer is fine (and the run
/// refuses it there only if the branch is taken).
#[test]
fn a_bound_on_a_branch_not_taken_does_not_hold_the_model() {
    let (runs, scratch, workflow) = runs_and_file(
        "branch-bound",
        "branch.pai",
        "agent split(task: text) -> list<text max 10> {\n  context 8k\n  summary 200 tokens\n  prompt \"Split {{task}}\"\n}\n\nagent leaf(x: text) -> result {\n  context 8k\n  summary 10 tokens\n  prompt \"Do {{x}}\"\n}\n\nagent join(parts: list<text>) -> result {\n  context 8k\n  summary 10 tokens\n  prompt \"{{#each parts}}{{this}}{{/each}}\"\n}\n\nworkflow small(items: list<text max 16> max 3) -> result {\n  return join(parts: items)\n}\n\nworkflow main(task: text max 10) -> list<result> {\n  let l = split(task: task)\n  return if len(l) > 3 { for x in l max 10 { leaf(x: x) } } else { [small(items: l)] }\n}\n",
    );
    let output = run_replayed(
        (&runs, &scratch, &workflow),
        "answers:\n  - agent: split\n    value: [\"a\", \"b\", \"c\", \"d\", \"e\"]\n  - agent: leaf\n    text: \"done\"\n",
        &["--arg", "task=go"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(runs.manifest("main/split")["status"], "complete");
}

/// The critical path runs through the calls an expansion point grew: a list's maker,
/// the calls over its elements, then what waits on them (`after`) are three calls in a
/// row; it counted two, leaving out the grown ones.
#[test]
fn the_critical_path_runs_through_grown_calls() {
    let (runs, _scratch, workflow) = runs_and_file(
        "critical-grown",
        "fan.pai",
        "agent step(x: text max 100) {\n  context 8k\n  summary 50 tokens\n  prompt \"Do {{x}}\"\n}\n\nagent lister(x: text max 100) -> list<text max 20> {\n  context 8k\n  summary 200 tokens\n  prompt \"List {{x}}\"\n}\n\nworkflow fan(x: text max 100) -> result {\n  let items = lister(x: x)\n  let done = for i in items max 3 { step(x: i) }\n  return step(x: x) after done\n}\n",
    );
    let output = run_in(
        &runs,
        &workflow,
        &["--arg", "x=go", "--sim-latency", "200ms"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let totals = &runs.run_yaml()["totals"];
    let critical = totals["critical_path_seconds"].as_f64().unwrap_or_default();
    let wall = totals["wall_seconds"].as_f64().unwrap_or_default();
    assert!(critical >= 0.6 && critical <= wall, "{critical} of {wall}");
}

/// When an agent that answers a record or a list fails, what expects its value says so
/// (`input ... is unavailable: ... failed: ...`) instead of a template error, and a
/// `for` over it grows nothing, so the synthesis after it still runs on what there is
/// and the run ends `partial`.
#[test]
fn a_failed_structured_answer_is_reported_where_it_was_expected() {
    let (runs, scratch, workflow) = runs_and_file(
        "failed-typed",
        "typed.pai",
        "type Item { name: text, tags: list<text> }\n\nagent lister(x: text max 10) -> list<Item> {\n  context 8k\n  summary 300 tokens\n  prompt \"List {{x}}\"\n}\n\nagent show(items: list<Item>) {\n  context 8k\n  summary 50 tokens\n  prompt \"{{#each items}}{{this.name}}{{/each}}\"\n}\n\nagent judge(item: Item) {\n  context 8k\n  summary 50 tokens\n  prompt \"Judge {{item.name}}\"\n}\n\nagent fold(parts: list<result>) {\n  context 8k\n  summary 50 tokens\n  prompt \"{{#each parts}}{{this.summary}}{{/each}}\"\n}\n\nworkflow shown(x: text max 10) -> result {\n  return show(items: lister(x: x))\n}\n\nworkflow judged(x: text max 10) -> result {\n  return fold(parts: for i in lister(x: x) max 5 { judge(item: i) })\n}\n\nworkflow joined(x: text max 10) -> result {\n  return show(items: lister(x: x) + [])\n}\n",
    );
    let fixture = "answers:\n  - agent: lister\n    error: \"the model refused\"\n    retryable: false\n  - agent: fold\n    text: folded\n";
    let shown = run_replayed(
        (&runs, &scratch, &workflow),
        fixture,
        &["--workflow", "shown", "--arg", "x=go"],
    );
    assert_eq!(shown.status.code(), Some(1), "{}", stderr(&shown));
    let error = failed_node_error(&runs, "shown/show");
    assert_eq!(
        error,
        "input `items` is unavailable: `shown/lister` failed: the model refused"
    );

    // Through `+` (or a field, or a list literal) as well.
    let runs = Runs::new("failed-typed-joined");
    let joined = run_replayed(
        (&runs, &scratch, &workflow),
        fixture,
        &["--workflow", "joined", "--arg", "x=go"],
    );
    assert_eq!(joined.status.code(), Some(1), "{}", stderr(&joined));
    assert_eq!(
        failed_node_error(&runs, "joined/show"),
        "input `items` is unavailable: `joined/lister` failed: the model refused"
    );

    let runs = Runs::new("failed-typed-for");
    let judged = run_replayed(
        (&runs, &scratch, &workflow),
        fixture,
        &["--workflow", "judged", "--arg", "x=go"],
    );
    assert_eq!(judged.status.code(), Some(1), "{}", stderr(&judged));
    assert_eq!(runs.run_yaml()["status"], "partial");
    let error = failed_node_error(&runs, "judged/i[*]");
    assert_eq!(
        error,
        "the list is unavailable: `judged/lister` failed: the model refused"
    );
    assert_eq!(runs.manifest("judged/fold")["status"], "complete");
}

/// A `for`'s `max` holds the model that makes its list even inside an `if` decided at
/// run time, unless the condition reads that list (then the limit would decide it).
#[test]
fn a_for_under_an_if_on_another_answer_still_tells_the_model_its_max() {
    let (runs, _scratch, workflow) = runs_and_file(
        "guarded-for",
        "guard.pai",
        "agent lister(task: text max 50) -> list<text max 10> {\n  context 8k\n  summary 200 tokens\n  prompt \"List {{task}}\"\n}\n\nagent leaf(task: text max 300) -> result {\n  context 8k\n  summary 50 tokens\n  prompt \"Do {{task}}\"\n}\n\nagent fold(parts: list<result>) -> result {\n  context 8k\n  summary 50 tokens\n  prompt \"{{#each parts}}{{this.summary}}{{/each}}\"\n}\n\nworkflow g() -> result {\n  let l = lister(task: \"x\")\n  let first = leaf(task: \"probe\")\n  return if first.status == \"complete\" { fold(parts: for x in l max 3 { leaf(task: x) }) } else { first }\n}\n",
    );
    let output = run_in(&runs, &workflow, &["--sim-list", "10"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(runs.manifest("g/x[*]")["status"], "complete");
}

/// A failed node hands its error on as its summary, cut to the agent's `summary`
/// budget, which is what the parent's proof counted; it used to be at least 20 tokens.
#[test]
fn a_failed_node_hands_on_an_error_within_its_summary_budget() {
    let (runs, _scratch, workflow) = runs_and_file(
        "failed-summary",
        "tiny.pai",
        "agent leaf(x: text) -> result {\n  context 8k\n  summary 2 tokens\n  prompt \"Do {{x}}\"\n}\n\nagent fold(children: list<result>) -> result {\n  context 1k\n  summary 10 tokens\n  prompt \"{{#each children}}{{this.summary}}{{/each}}\"\n}\n\nworkflow w() -> result {\n  return fold(children: [leaf(x: read(\"missing.txt\"))])\n}\n",
    );
    // The file is missing when the leaf's input is read, which fails the leaf.
    let output = run_in(&runs, &workflow, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let leaf = runs.manifest("w/leaf");
    assert_eq!(leaf["status"], "failed");
    let summary = leaf["summary"].as_str().unwrap_or_default();
    assert!(!summary.is_empty() && summary.len() <= 2 * 4, "{summary:?}");
}

/// `--max-cost` cannot count a call whose model has no known price: the run says so
/// rather than let the limit look like it holds.
#[test]
fn max_cost_says_which_calls_it_cannot_count() {
    let runs = Runs::new("unpriced");
    let output = pai(&[
        "run",
        "tests/fixtures/research.pai",
        "--arg",
        "question=why",
        "--runs-dir",
        runs.path(),
        "-q",
        "--max-cost",
        "5",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(
            "warning: --max-cost $5.00 could not count 1 agent call whose model has no known price"
        ),
        "{}",
        stderr(&output)
    );
    let priced = pai(&[
        "run",
        "tests/fixtures/research.pai",
        "--arg",
        "question=why",
        "--runs-dir",
        runs.path(),
        "-q",
    ]);
    assert!(
        !stderr(&priced).contains("could not count"),
        "{}",
        stderr(&priced)
    );
}

/// An answer of `list<text max N>` whose text is longer is asked for again with the
/// reason, then fails: the checker counted each text at N tokens.
#[test]
fn a_text_over_its_list_bound_is_refused() {
    let (runs, scratch, workflow) = runs_and_file(
        "element-max",
        "split.pai",
        "agent splitter(task: text max 10) -> list<text max 2> {\n  context 1k\n  summary 80 tokens\n  prompt \"Split {{task}}\"\n}\n\nworkflow w(task: text max 10) -> list<text> {\n  return splitter(task: task)\n}\n",
    );
    let output = run_replayed(
        (&runs, &scratch, &workflow),
        "answers:\n  - agent: splitter\n    value: [\"ok\", \"a text far longer than two tokens\"]\n",
        &["--arg", "task=go"],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let error = failed_node_error(&runs, "w/splitter");
    assert!(
        error.contains(
            "the answer[1] is 33 bytes, more than the 8 (`list<text max 2>`, 4 bytes a token)"
        ),
        "{error}"
    );
    // `sim` answers within the bound.
    let simulated = run_in(&runs, &workflow, &["--arg", "task=go"]);
    assert_eq!(simulated.status.code(), Some(0), "{}", stderr(&simulated));
}

/// A record answer whose `list<text max N>` field holds a longer text is refused as a
/// list answer's is: the checker counted each text at N tokens.
#[test]
fn a_text_over_its_record_list_bound_is_refused() {
    let (runs, scratch, workflow) = runs_and_file(
        "record-element-max",
        "plan.pai",
        "type Plan { steps: list<text max 2> }\n\nagent planner(task: text max 10) -> Plan {\n  context 1k\n  summary 80 tokens\n  prompt \"Plan {{task}}\"\n}\n\nagent worker(step: text max 10) {\n  context 100\n  summary 10 tokens\n  prompt \"Do {{step}}\"\n}\n\nworkflow w(task: text max 10) -> list<result> {\n  let p = planner(task: task)\n  return for s in p.steps max 4 { worker(step: s) }\n}\n",
    );
    let output = run_replayed(
        (&runs, &scratch, &workflow),
        "answers:\n  - agent: planner\n    value: {steps: [\"ok\", \"a text far longer than two tokens\"]}\n",
        &["--arg", "task=go"],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let error = failed_node_error(&runs, "w/planner");
    assert!(
        error.contains(
            "the answer.steps[1] is 33 bytes, more than the 8 (`list<text max 2>`, 4 bytes a token)"
        ),
        "{error}"
    );
    // `sim` answers within the bound, and every step's call fits its `context`.
    let simulated = run_in(&runs, &workflow, &["--arg", "task=go"]);
    assert_eq!(simulated.status.code(), Some(0), "{}", stderr(&simulated));
}

/// `--resume` reuses a complete `exec` step as it reuses a complete agent: its effects
/// happen once (a deploy ran twice), and the agents after it are not asked again.
#[test]
fn a_resume_does_not_run_a_complete_exec_step_again() {
    let (runs, scratch, workflow) = runs_and_file(
        "resume-exec",
        "side.pai",
        "agent note(x: result) -> result {\n  context 8k\n  summary 40 tokens\n  prompt \"Deployed: {{x.summary}}\"\n}\n\nworkflow side() -> result {\n  let d = exec([\"sh\", \"-c\", \"echo deploy >> deploys.log; date +%s%N\"])\n  return note(x: d)\n}\n",
    );
    let first = run_in(&runs, &workflow, &["--run-id", "r1"]);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let resumed = pai(&["run", "--resume", "r1", "--runs-dir", runs.path(), "-q"]);
    assert_eq!(resumed.status.code(), Some(0), "{}", stderr(&resumed));
    assert!(
        stderr(&resumed).contains("0 calls made (1 reused)"),
        "{}",
        stderr(&resumed)
    );
    let log = std::fs::read_to_string(scratch.join("deploys.log")).expect("the step ran");
    assert_eq!(log.lines().count(), 1, "{log}");
}

/// A record answer with a field its type does not declare is refused: templates that
/// walk its fields would hand it on, past what the checker counted.
#[test]
fn a_record_answer_with_an_undeclared_field_is_refused() {
    let (runs, scratch, workflow) = runs_and_file(
        "extra-field",
        "one.pai",
        "type One { a: number }\n\nagent stats(t: text max 10) -> One {\n  context 1k\n  summary 40 tokens\n  prompt \"Count {{t}}\"\n}\n\nworkflow w(t: text max 10) -> One {\n  return stats(t: t)\n}\n",
    );
    let output = run_replayed(
        (&runs, &scratch, &workflow),
        "answers:\n  - agent: stats\n    value: {a: 1, b: 2}\n",
        &["--arg", "t=x"],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let error = failed_node_error(&runs, "w/stats");
    assert!(
        error.contains("has a field `b` its type does not declare; answer with only `a`"),
        "{error}"
    );
}
