//! `pai test FILE`: runs a workflow against its replay fixture (`FILE.replay.yaml`
//! beside it) and checks the expectations beside it (`FILE.expect.yaml`):
//!
//! ```yaml
//! workflow: execute                 # optional, as `--workflow`
//! args: ["request=add a login page", "root=tests/fixtures/app"]
//! status: complete                  # the run's status
//! agents: 12                        # agent calls made
//! max_tokens: 20000                 # tokens spent, at most
//! max_cost: 0.05                    # dollars spent, at most
//! nodes:
//!   execute/reporter:
//!     status: complete
//!     summary: "The exact summary."
//!   execute/orchestrate/synthesizer:
//!     summary_contains: "directory"
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::manifest;
use super::RunReport;

/// What a workflow's author expects of its run.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectations {
    #[serde(default)]
    pub workflow: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub agents: Option<u64>,
    #[serde(default)]
    pub max_tokens: Option<u64>,
    #[serde(default)]
    pub max_cost: Option<f64>,
    #[serde(default)]
    pub nodes: BTreeMap<String, NodeExpectation>,
}

/// What one node should have ended as.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeExpectation {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default)]
    pub summary_contains: Option<String>,
}

impl Expectations {
    /// Reads an expectations file, refusing ones that could never fail or never pass:
    /// `max_cost: .nan` passed every run, and `status: complet` failed every one.
    pub fn load(path: &Path) -> Result<Expectations, String> {
        let text = crate::source::read_text(path)?;
        let expectations: Expectations =
            serde_yaml::from_str(&text).map_err(|e| format!("`{}`: {e}", path.display()))?;
        expectations.problem().map_or(Ok(expectations), |problem| {
            Err(format!("`{}`: {problem}", path.display()))
        })
    }

    /// What makes these expectations meaningless, if anything.
    fn problem(&self) -> Option<String> {
        const RUN_STATUSES: &[&str] = &["complete", "partial", "failed"];
        const NODE_STATUSES: &[&str] = &["complete", "partial", "failed", "waiting"];
        if let Some(max) = self
            .max_cost
            .filter(|max| !(max.is_finite() && *max >= 0.0))
        {
            return Some(format!(
                "`max_cost: {max}` is not an amount of dollars, 0 or more"
            ));
        }
        if let Some(status) = self
            .status
            .as_ref()
            .filter(|s| !RUN_STATUSES.contains(&s.as_str()))
        {
            return Some(format!(
                "`status: {status}` is not a run status: {}",
                crate::diagnostics::backticked(RUN_STATUSES)
            ));
        }
        self.nodes.iter().find_map(|(id, node)| {
            let status = node.status.as_ref()?;
            (!NODE_STATUSES.contains(&status.as_str())).then(|| {
                format!(
                    "`{id}`: `status: {status}` is not a node status: {}",
                    crate::diagnostics::backticked(NODE_STATUSES)
                )
            })
        })
    }

    /// Every way the run differs from what was expected, as `what: expected …, got …`.
    pub fn mismatches(&self, report: &RunReport) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(status) = &self.status {
            if status != report.status.as_str() {
                out.push(format!(
                    "run status: expected `{status}`, got `{}`",
                    report.status.as_str()
                ));
            }
        }
        if let Some(agents) = self.agents {
            if agents != report.totals.agent_calls {
                out.push(format!(
                    "agent calls: expected {agents}, got {}",
                    report.totals.agent_calls
                ));
            }
        }
        let tokens = (report.totals.tokens.input).saturating_add(report.totals.tokens.output);
        if let Some(max) = self.max_tokens {
            if tokens > max {
                out.push(format!("tokens: expected at most {max}, got {tokens}"));
            }
        }
        if let Some(max) = self.max_cost {
            if report.totals.cost_usd > max {
                out.push(format!(
                    "cost: expected at most ${max}, got ${:.4}",
                    report.totals.cost_usd
                ));
            }
        }
        for (id, expected) in &self.nodes {
            // Ids come from a file: never read outside the run directory.
            if id.split('/').any(|s| s.is_empty() || s == "." || s == "..") || id.starts_with('/') {
                out.push(format!(
                    "{id}: not a node id (a path of the call tree, such as `execute/reporter`)"
                ));
                continue;
            }
            let path = manifest::node_dir(&report.run_dir, id).join("manifest.yaml");
            let Some(actual) = manifest::read(&path) else {
                out.push(format!("{id}: expected a node, but the run has none"));
                continue;
            };
            if let Some(status) = &expected.status {
                if *status != actual.status {
                    out.push(format!(
                        "{id}: status expected `{status}`, got `{}`",
                        actual.status
                    ));
                }
            }
            if let Some(summary) = &expected.summary {
                if *summary != actual.summary {
                    out.push(format!(
                        "{id}: summary\n  - expected: {summary:?}\n  + got:      {:?}",
                        actual.summary
                    ));
                }
            }
            if let Some(part) = &expected.summary_contains {
                if !actual.summary.contains(part.as_str()) {
                    out.push(format!(
                        "{id}: summary should contain {part:?}, got {:?}",
                        actual.summary
                    ));
                }
            }
        }
        out
    }
}
