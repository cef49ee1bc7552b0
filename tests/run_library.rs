//! `pai::run::run` through the library, with providers a test defines: what the binary
//! cannot be made to do, such as a provider that panics.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use pai::run::provider::sim::Sim;
use pai::run::provider::{Answer, Provider, Request};
use pai::run::resolve::Status;

const WORKFLOW: &str = r#"
agent boom(x: text) {
  context 8k
  summary 10 tokens
  prompt "Explode on {{x}}."
}

agent calm(x: text) {
  context 8k
  summary 10 tokens
  prompt "Answer {{x}}."
}

agent fold(children: list<result>) {
  context 8k
  summary 10 tokens
  prompt "Fold: {{#each children}}{{this.summary}} {{/each}}"
}

workflow main(x: text) -> result {
  let a = boom(x: x)
  let b = calm(x: x)
  return fold(children: [a, b])
}
"#;

/// Panics on the agent `boom`; `sim` answers the others.
struct PanicsOnBoom(Sim);

impl Provider for PanicsOnBoom {
    fn name(&self) -> &str {
        "panics-on-boom"
    }

    fn complete<'a>(&'a self, request: &'a Request) -> Answer<'a> {
        if request.agent == "boom" {
            Box::pin(async { panic!("the provider broke on purpose") })
        } else {
            self.0.complete(request)
        }
    }
}

#[test]
fn a_call_that_panics_fails_its_node_and_the_run_goes_on() {
    let outcome = pai::check::check_text("t.pai", WORKFLOW, Path::new("."));
    assert_eq!(outcome.error_count(), 0, "{:?}", outcome.diagnostics);
    let runs = std::env::temp_dir().join(format!("pai-run-library-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&runs);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let provider = Arc::new(PanicsOnBoom(Sim {
        latency: Duration::ZERO,
        list_len: 3,
    }));
    let report = runtime
        .block_on(pai::run::run(
            &outcome,
            &pai::compile::Request {
                workflow: Some("main".to_string()),
                args: vec!["x=y".to_string()],
            },
            provider,
            pai::run::Options {
                runs_dir: runs.clone(),
                run_id: Some("r1".to_string()),
                backoff: Duration::from_millis(1),
                ..pai::run::Options::default()
            },
            &pai::compile::prices::Prices::default(),
        ))
        .expect("the run ends");

    let manifest = |id: &str| -> serde_yaml::Value {
        let text = std::fs::read_to_string(runs.join("r1").join(id).join("manifest.yaml"))
            .unwrap_or_else(|e| panic!("{id}: {e}"));
        serde_yaml::from_str(&text).expect("manifest parses")
    };
    let boom = manifest("main/boom");
    assert_eq!(boom["status"], "failed", "{boom:?}");
    let error = boom["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("panicked") && error.contains("the provider broke on purpose"),
        "{error}"
    );
    assert_eq!(manifest("main/calm")["status"], "complete");
    // The failure flows on as data: the fold still runs, and the root is partial.
    assert_eq!(manifest("main/fold")["status"], "complete");
    assert_eq!(report.status, Status::Partial);
    assert_eq!(report.totals.waiting, 0);
    let _ = std::fs::remove_dir_all(&runs);
}
