//! `pai run` (DESIGN §4): executes a plan's DAG against a provider, writing a manifest
//! per node, and `pai status`, which reads them back.

mod call;
pub(crate) mod child;
mod executor;
pub use executor::interrupted_exit_code;
pub mod expect;
pub mod manifest;
mod progress;
pub mod provider;
mod ready;
pub mod resolve;
pub mod status;
mod trace;
pub mod writer;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::check::Outcome;
use crate::compile::{self, prices::Prices, Request as PlanRequest};
use manifest::{RunManifest, RunTotals};
use provider::registry::Providers;
use resolve::Status;

/// How to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where runs live: `<runs_dir>/<run-id>/`.
    pub runs_dir: PathBuf,
    /// The run's id; a new one is made when absent.
    pub run_id: Option<String>,
    /// Reuse the complete nodes of the run `run_id`.
    pub resume: bool,
    /// Calls in flight at most.
    pub jobs: usize,
    pub max_agents: Option<u64>,
    pub max_tokens: Option<u64>,
    pub max_cost: Option<f64>,
    /// Start even when the plan's worst case passes a limit.
    pub yes: bool,
    pub trace: Option<PathBuf>,
    /// Print a line per node event on standard error.
    pub progress: bool,
    /// The first retry's wait; it doubles each time.
    pub backoff: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            runs_dir: PathBuf::from(".pai/runs"),
            run_id: None,
            resume: false,
            jobs: 8,
            max_agents: None,
            max_tokens: None,
            max_cost: None,
            yes: false,
            trace: None,
            progress: false,
            backoff: Duration::from_millis(200),
        }
    }
}

/// Why a run could not start or finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunError {
    pub message: String,
    pub help: String,
    /// The plan breaks a bound of the workflow (exit 1, as `pai plan`), rather than bad
    /// usage or an environment that cannot hold the run (exit 2).
    pub plan_broken: bool,
}

impl RunError {
    fn io(path: &Path, error: std::io::Error) -> RunError {
        RunError {
            plan_broken: false,
            message: format!(
                "cannot write `{}`: {}",
                path.display(),
                error.to_string().to_lowercase()
            ),
            help: "check that the runs directory is writable, or pick another with `--runs-dir`"
                .to_string(),
        }
    }
}

impl From<compile::PlanError> for RunError {
    fn from(error: compile::PlanError) -> RunError {
        RunError {
            plan_broken: !error.usage,
            message: error.message,
            help: error.help,
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub run_id: String,
    pub run_dir: PathBuf,
    pub status: Status,
    /// Why the run stopped starting work, if it did (a budget, Ctrl-C).
    pub stopped: Option<String>,
    pub totals: RunTotals,
    /// The root workflow's summary: the final report.
    pub summary: String,
    /// What went wrong without changing the result (the trace could not be written).
    pub warnings: Vec<String>,
}

/// `$2.50`, or as many places as a small amount needs to show (`$0.0001`): two places
/// printed `$0.00 > --max-cost $0.00`.
pub fn dollars(amount: f64) -> String {
    if amount == 0.0 || amount.abs() >= 0.01 || !amount.is_finite() {
        return format!("${amount:.2}");
    }
    let text = format!("{amount:.8}");
    match text.trim_end_matches('0') {
        // Under a hundred-millionth of a dollar.
        zero if zero.ends_with('.') => format!("${zero}0"),
        places => format!("${places}"),
    }
}

/// A new run id: the time, then a few hex digits so two runs in one second differ.
pub fn new_run_id() -> String {
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let stamp: String = now.chars().filter(char::is_ascii_digit).collect();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let (date, time) = stamp.split_at(stamp.len().min(8));
    format!(
        "{date}-{time}-{:04x}",
        (nanos ^ std::process::id()) & 0xffff
    )
}

/// Plans `request` from `outcome` and runs it with `provider`.
pub async fn run(
    outcome: &Outcome,
    request: &PlanRequest,
    providers: impl Into<Providers>,
    options: Options,
    prices: &Prices,
) -> Result<RunReport, RunError> {
    let providers = providers.into();
    let (mut planner, workflow, args, file) = compile::prepare(outcome, request)?;
    let plan = planner.plan(workflow, args, file.clone())?;
    // Each agent once, in order: the first provider that cannot be made is the one
    // reported, the same on every run.
    let agents: std::collections::BTreeSet<_> = (plan.calls.values())
        .filter_map(|call| match &**call {
            compile::CallRecipe::Agent { item, .. } => Some(*item),
            _ => None,
        })
        .collect();
    providers.prepare(agents).map_err(|error| RunError {
        plan_broken: false,
        message: error.message,
        help: error.help,
    })?;
    let totals = plan.totals(prices);
    // `--max-cost` counts what providers report and what the price table knows; a
    // call whose model it does not know costs nothing as far as the limit can tell.
    let mut warnings = Vec::new();
    if let Some(max) = options.max_cost.filter(|_| totals.unpriced_agents > 0) {
        warnings.push(format!(
            "--max-cost {} could not count {} agent call{} whose model has no known price (unless its provider reported a cost); give its price with `--prices FILE` or `.pai/prices.yaml` to count it",
            dollars(max),
            totals.unpriced_agents,
            if totals.unpriced_agents == 1 { "" } else { "s" },
        ));
    }
    if !options.yes {
        let mut over = Vec::new();
        if let Some(max) = options.max_agents {
            if totals.agents > max {
                over.push(format!(
                    "{} agent calls > --max-agents {max}",
                    totals.agents
                ));
            }
        }
        if let Some(max) = options.max_tokens {
            let tokens = totals.tokens_in.saturating_add(totals.tokens_out);
            if tokens > max {
                over.push(format!("{tokens} tokens > --max-tokens {max}"));
            }
        }
        if let Some(max) = options.max_cost {
            if totals.cost_usd > max {
                over.push(format!(
                    "{} > --max-cost {}",
                    dollars(totals.cost_usd),
                    dollars(max)
                ));
            }
        }
        if !over.is_empty() {
            return Err(RunError { plan_broken: false,
                message: format!("the plan's worst case passes a limit: {}", over.join(", ")),
                help: "raise the limit, make the workflow smaller, or start anyway with `--yes` (the limits still stop the run when reached)".to_string(),
            });
        }
    }
    let run_id = options.run_id.clone().unwrap_or_else(new_run_id);
    let run_dir = options.runs_dir.join(&run_id);
    // A new run never takes over an old one's directory: its `run.yaml` would be
    // replaced and the old nodes' manifests left among the new ones.
    if !options.resume && run_dir.join("run.yaml").exists() {
        return Err(RunError {
            plan_broken: false,
            message: format!(
                "run `{run_id}` already exists in `{}`",
                options.runs_dir.display()
            ),
            help: format!("continue it with `--resume {run_id}`, or choose another `--run-id`"),
        });
    }
    let meta = RunManifest {
        run_id,
        file,
        workflow: plan.workflow.clone(),
        args: request.args.clone(),
        provider: providers.description(),
        chosen_provider: providers.choice().name.clone(),
        fixture: (providers.choice().fixture.as_deref())
            .map(|fixture| std::path::absolute(fixture).unwrap_or_else(|_| fixture.to_path_buf()))
            .map(|fixture| fixture.display().to_string()),
        directory: std::env::current_dir()
            .ok()
            .map(|dir| dir.display().to_string()),
        status: "running".to_string(),
        stopped: None,
        started_at: manifest::now(),
        finished_at: None,
        totals: RunTotals::default(),
    };
    let mut report = executor::Executor::new(outcome, planner, plan, providers, options, run_dir)
        .run(meta)
        .await?;
    warnings.append(&mut report.warnings);
    report.warnings = warnings;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::dollars;

    #[test]
    fn small_amounts_keep_their_places() {
        assert_eq!(dollars(2.5), "$2.50");
        assert_eq!(dollars(0.0), "$0.00");
        assert_eq!(dollars(0.0001), "$0.0001");
        assert_eq!(dollars(0.00012345), "$0.00012345");
        assert_eq!(dollars(0.000000001), "$0.0");
    }
}
