//! Crash test: a run killed with SIGKILL at several moments, then resumed, completes;
//! every manifest on disk always parses; no node that was complete before a kill runs
//! again; and the result equals an uninterrupted run's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const ORCHESTRATE: &str = "tests/fixtures/orchestrate.pai";

fn pai() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pai"));
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .env_remove("PAI_PROVIDER")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

fn run_args<'a>(runs: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "run",
        "--runs-dir",
        runs,
        "-q",
        "-j",
        "2",
        "--sim-latency",
        "25ms",
    ];
    args.extend_from_slice(extra);
    args
}

/// Every `manifest.yaml` under `dir`, by path, with its bytes. Panics if one does not
/// parse: a torn write is exactly what this test exists to catch.
fn manifests(dir: &Path) -> BTreeMap<PathBuf, (String, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n == "manifest.yaml") {
                let bytes = std::fs::read(&path).expect("readable");
                let value: serde_yaml::Value = serde_yaml::from_slice(&bytes)
                    .unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()));
                let status = value["status"].as_str().unwrap_or("").to_string();
                out.insert(path, (status, bytes));
            }
        }
    }
    out
}

#[test]
fn kill_9_then_resume_completes_without_rerunning_complete_nodes() {
    let root = std::env::temp_dir().join(format!("pai-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let runs = root.to_str().expect("utf-8").to_string();

    // The reference: the same run, uninterrupted.
    let clean = pai()
        .args(run_args(
            &runs,
            &[
                ORCHESTRATE,
                "--arg",
                "task=x",
                "--arg",
                "dir=tests/fixtures/app",
                "--run-id",
                "clean",
            ],
        ))
        .status()
        .expect("runs");
    assert_eq!(clean.code(), Some(0));

    let crashed = root.join("crashed");
    let mut complete_before: BTreeMap<PathBuf, Vec<u8>> = BTreeMap::new();
    // Kill after these many milliseconds (fixed, so the test repeats itself); the loop
    // ends by itself after the last one.
    for (round, delay) in [5u64, 60, 110, 45, 150].into_iter().enumerate() {
        let started_fresh = !crashed.join("run.yaml").exists();
        let args = if started_fresh {
            run_args(
                &runs,
                &[
                    ORCHESTRATE,
                    "--arg",
                    "task=x",
                    "--arg",
                    "dir=tests/fixtures/app",
                    "--run-id",
                    "crashed",
                ],
            )
        } else {
            run_args(&runs, &["--resume", "crashed"])
        };
        let mut child = pai().args(args).spawn().expect("spawns");
        std::thread::sleep(Duration::from_millis(delay));
        let _ = child.kill(); // SIGKILL on Unix
        let _ = child.wait();

        let now = manifests(&crashed);
        eprintln!(
            "round {round}: {} manifests, {} complete",
            now.len(),
            now.values().filter(|(s, _)| s == "complete").count()
        );
        for (path, bytes) in &complete_before {
            let (_, after) = now
                .get(path)
                .unwrap_or_else(|| panic!("round {round}: {} vanished", path.display()));
            assert_eq!(
                after,
                bytes,
                "round {round}: {} was complete and changed",
                path.display()
            );
        }
        for (path, (status, bytes)) in now {
            if status == "complete" && !path.ends_with("orchestrate/manifest.yaml") {
                complete_before.entry(path).or_insert(bytes);
            }
        }
    }

    // Resume to the end.
    let mut finished = false;
    for _ in 0..5 {
        let status = pai()
            .args(run_args(&runs, &["--resume", "crashed"]))
            .status()
            .expect("runs");
        if status.code() == Some(0) {
            finished = true;
            break;
        }
    }
    assert!(finished, "the resumed run completes");
    let after = manifests(&crashed);
    for (path, bytes) in &complete_before {
        let is_agent = after
            .get(path)
            .is_some_and(|(_, b)| String::from_utf8_lossy(b).contains("kind: agent"));
        if is_agent {
            assert_eq!(
                &after[path].1,
                bytes,
                "{} ran again after it completed",
                path.display()
            );
        }
    }

    // Same outcome as the uninterrupted run: every node's status and summary.
    let summaries = |dir: &Path| -> BTreeMap<PathBuf, (String, String)> {
        manifests(dir)
            .into_iter()
            .map(|(path, (status, bytes))| {
                let value: serde_yaml::Value = serde_yaml::from_slice(&bytes).expect("parses");
                let summary = value["summary"].as_str().unwrap_or("").to_string();
                (
                    path.strip_prefix(dir).expect("inside").to_path_buf(),
                    (status, summary),
                )
            })
            .collect()
    };
    assert_eq!(summaries(&crashed), summaries(&root.join("clean")));
    let _ = std::fs::remove_dir_all(&root);
}
