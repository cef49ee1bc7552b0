//! The scheduler: runs the plan's DAG on tokio. A node starts the moment its inputs are
//! ready; among ready nodes the shallowest starts first; at most `jobs` calls are in
//! flight. Expansion points grow the graph when their list arrives. A failed node never
//! aborts its siblings: its failure flows on as data, and its parents are `partial`.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use foldhash::{HashMap, HashMapExt, HashSet};
use futures_util::FutureExt;
use petgraph::graph::NodeIndex;
use petgraph::Direction;
use serde_json::Value;
use tokio::task::JoinSet;

use super::call::{self, CallResult, Policy};
use super::manifest::{self, Manifest, RunManifest, RunTotals, Spend, Timestamp, Tokens};
use super::progress::Progress;
use super::provider::registry::Providers;
use super::provider::{Request, Shape};
use super::ready::ReadyQueue;
use super::resolve::{self, Argument, NodeResult, Scope, Status};
use super::trace::Trace;
use super::writer::Writer;
use super::{Options, RunError, RunReport};
use crate::check::scope::ItemRef;
use crate::check::types::ResultFields;
use crate::check::Outcome;
use crate::compile::value::PlanValue;
use crate::compile::{CallRecipe, NodeKind, NodeMap, Plan, Planner};
use crate::syntax::ast::Value as SettingValue;

/// Ready nodes started before the scheduler lets the started calls run.
const START_BATCH: usize = 256;

/// A call in flight. Its result is boxed: a task's memory is the larger of its future and
/// its output for its whole life, and thousands of tasks can wait to run at once.
type Pending = std::pin::Pin<Box<dyn std::future::Future<Output = Box<CallResult>> + Send>>;

/// An agent's arguments by parameter name, resolved; made into the JSON object its
/// templates render only when its call runs (a `serde_json` object costs 632 bytes at
/// least, and a call can wait long before it runs).
type Arguments = Vec<(String, Argument)>;

/// The JSON object a call's templates render.
fn arguments_json(arguments: Arguments) -> Value {
    Value::Object(
        arguments
            .into_iter()
            .map(|(name, argument)| (name, argument.into_json()))
            .collect(),
    )
}

/// A node whose files wait to be handed to the writer: its manifest is built from the
/// run's state then, with this status.
struct Unwritten {
    node: NodeIndex,
    status: Status,
    output: Option<Arc<str>>,
}

/// Per-node bookkeeping beyond the result.
#[derive(Default)]
struct Record {
    attempts: u32,
    started: Option<(Instant, Timestamp)>,
    finished_at: Option<Timestamp>,
    duration: Duration,
    tokens: Tokens,
    cost_usd: f64,
    inputs_hash: Option<String>,
    summary_cut: bool,
    reused: bool,
    /// What most nodes never have, boxed: one pointer instead of three strings each.
    rare: Option<Box<RareRecord>>,
}

/// The parts of a [`Record`] that most nodes leave empty.
#[derive(Default)]
struct RareRecord {
    error: Option<String>,
    /// Why an answer is only partly done.
    partial: Option<String>,
    /// The provider's conversation id.
    session: Option<String>,
}

impl Record {
    fn rare(&self) -> Option<&RareRecord> {
        self.rare.as_deref()
    }

    fn rare_mut(&mut self) -> &mut RareRecord {
        self.rare.get_or_insert_with(Box::default)
    }
}

/// What every call of one agent shares: worked out at its first call, not at each.
struct AgentSpec {
    /// Its templates' names in the registry.
    templates: call::TemplateNames,
    name: String,
    model: Option<String>,
    tools: Vec<String>,
    shape: Shape,
    timeout: Duration,
    retries: u32,
    /// Its `summary` budget, which a structured answer must fit.
    summary: u64,
    /// Its `context`, which no prompt it is sent may pass.
    context: Option<u64>,
}

pub(super) struct Executor<'o> {
    outcome: &'o Outcome,
    planner: Planner<'o>,
    plan: Plan<'o>,
    providers: Providers,
    options: Options,
    /// Shared with every job of the writer's queue, which holds node ids, not paths.
    run_dir: Arc<std::path::Path>,
    writer: Writer,
    /// Nodes whose files are still to be handed to the writer, in order: their
    /// manifests are built when the writer has room (`writer::NODE_WINDOW`).
    unwritten: VecDeque<Unwritten>,
    trace: Trace,
    started: Instant,
    /// Shared with the calls whose prompts hand them on (`resolve::Argument`).
    results: NodeMap<Arc<NodeResult>>,
    expansions: HashMap<NodeIndex, Vec<PlanValue>>,
    records: NodeMap<Record>,
    /// Unfinished inputs each waiting node still needs.
    waiting: HashMap<NodeIndex, usize>,
    ready: ReadyQueue,
    /// Copies an expansion point is still waiting for.
    pending: HashMap<NodeIndex, usize>,
    /// Why the run stopped starting work, if it did.
    stopped: Option<String>,
    agents_started: u64,
    tokens_used: u64,
    cost_used: f64,
    /// Every agent's templates, compiled once, shared with the calls that render them.
    templates: Arc<handlebars::Handlebars<'static>>,
    /// Agents whose templates do not compile (a checked file has none).
    template_errors: HashMap<ItemRef, String>,
    /// Each agent called so far, as its calls share it.
    specs: HashMap<ItemRef, Arc<AgentSpec>>,
    progress: Progress,
}

impl Drop for Executor<'_> {
    /// Hands the writer whatever was still waiting for room, so that a scheduler that
    /// stops early (a bug that panics) loses no finished node's manifest: the writer's
    /// own drop then writes them. A normal run has drained them already.
    fn drop(&mut self) {
        while let Some(next) = self.unwritten.pop_front() {
            self.queue_files(next.node, next.status, next.output);
        }
    }
}

/// Waits for Ctrl-C, or on Unix for SIGTERM (`kill`, a CI runner's cancel) or SIGHUP
/// (the terminal closed), and names it: each stops the run the same way, so that no
/// step or agent CLI is left running and every node in flight is recorded `waiting`.
async fn interruption() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let received = |kind: SignalKind| async move {
            match signal(kind) {
                Ok(mut signal) => signal.recv().await,
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => "Ctrl-C",
            _ = received(SignalKind::terminate()) => "SIGTERM",
            _ = received(SignalKind::hangup()) => "SIGHUP",
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}

/// The exit status of a run stopped by `reason`: 128 and the signal's number, as a
/// shell reports a process the signal killed.
pub fn interrupted_exit_code(reason: &str) -> Option<u8> {
    match reason.strip_prefix("interrupted (")?.strip_suffix(')')? {
        "SIGHUP" => Some(129),
        "SIGTERM" => Some(143),
        _ => Some(130),
    }
}

impl<'o> Executor<'o> {
    /// Compiles the templates of every agent of the program.
    fn compile_templates(
        outcome: &Outcome,
    ) -> (handlebars::Handlebars<'static>, HashMap<ItemRef, String>) {
        let mut registry = call::registry();
        let mut errors = HashMap::new();
        for item in outcome.agents.keys() {
            let Some(agent) = outcome.agent(*item) else {
                continue;
            };
            let names = call::TemplateNames::of(*item);
            for (part, name) in [("prompt", &names.prompt), ("system", &names.system)] {
                if let Some(SettingValue::Text(source)) = agent.setting(part).map(|s| &s.value) {
                    let registered = crate::syntax::without_limits(|| {
                        registry.register_template_string(name, &source.value)
                    });
                    if let Err(error) = registered {
                        errors.insert(
                            *item,
                            format!(
                                "cannot compile the {part}: {}",
                                error.to_string().to_lowercase()
                            ),
                        );
                    }
                }
            }
        }
        (registry, errors)
    }

    pub(super) fn new(
        outcome: &'o Outcome,
        planner: Planner<'o>,
        plan: Plan<'o>,
        providers: Providers,
        options: Options,
        run_dir: PathBuf,
    ) -> Self {
        let (templates, template_errors) = Self::compile_templates(outcome);
        Executor {
            outcome,
            planner,
            plan,
            providers,
            options,
            run_dir: run_dir.into(),
            writer: Writer::start(),
            unwritten: VecDeque::new(),
            trace: Trace::default(),
            started: Instant::now(),
            results: NodeMap::default(),
            expansions: HashMap::new(),
            records: NodeMap::default(),
            waiting: HashMap::new(),
            ready: ReadyQueue::default(),
            pending: HashMap::new(),
            stopped: None,
            agents_started: 0,
            tokens_used: 0,
            cost_used: 0.0,
            templates: Arc::new(templates),
            template_errors,
            specs: HashMap::new(),
            progress: Progress::Quiet,
        }
    }

    fn is_work(&self, node: NodeIndex) -> bool {
        let n = &self.plan.graph[node];
        !n.template
            && matches!(
                n.kind,
                NodeKind::Agent | NodeKind::Exec | NodeKind::Expansion
            )
    }

    /// Counts the unfinished inputs of `nodes` and queues those that need none.
    fn admit(&mut self, nodes: impl IntoIterator<Item = NodeIndex>) {
        for node in nodes {
            if !self.is_work(node) {
                continue;
            }
            let count = self
                .plan
                .graph
                .neighbors_directed(node, Direction::Incoming)
                .filter(|input| self.is_work(*input) && !self.results.contains(*input))
                .collect::<HashSet<_>>()
                .len();
            if count == 0 {
                self.queue(node);
            } else {
                self.waiting.insert(node, count);
            }
        }
    }

    fn queue(&mut self, node: NodeIndex) {
        let depth = self.plan.graph[node].depth;
        self.ready.push(depth, node.index());
    }

    pub(super) async fn run(mut self, meta: RunManifest) -> Result<RunReport, RunError> {
        std::fs::create_dir_all(&self.run_dir).map_err(|e| RunError::io(&self.run_dir, e))?;
        let _in_use = manifest::lock_run(&self.run_dir, &meta.run_id)?;
        let mut run_manifest = meta;
        run_manifest.status = "running".to_string();
        self.writer
            .yaml(self.run_dir.join("run.yaml"), run_manifest.clone());

        self.reserve_for_nodes();
        let all: Vec<NodeIndex> = self.plan.graph.node_indices().collect();
        let calls = all
            .iter()
            .filter(|n| self.is_work(**n) && self.plan.graph[**n].kind != NodeKind::Expansion)
            .count();
        self.progress = Progress::new(!self.options.progress, calls as u64);
        self.admit(all);

        let mut running: JoinSet<(NodeIndex, std::thread::Result<Box<CallResult>>)> =
            JoinSet::new();
        // The nodes of the calls in flight, recorded `waiting` if the run is cut off.
        let mut in_flight: NodeMap<()> = NodeMap::default();
        in_flight.reserve_for(self.plan.graph.node_count());
        let mut interrupted = false;
        let interruption = interruption();
        tokio::pin!(interruption);
        let room = self.writer.room();
        loop {
            // Start ready work in batches, letting started calls run between them.
            let mut batch = 0;
            while running.len() < self.options.jobs.max(1)
                && self.stopped.is_none()
                && batch < START_BATCH
            {
                let Some(index) = self.ready.pop() else {
                    break;
                };
                let node = NodeIndex::new(index);
                batch += 1;
                if let Some(started) = self.start(node) {
                    // A call that panics fails its own node, not the scheduler: the
                    // panic is caught in its task, which knows the node.
                    let call = AssertUnwindSafe(started).catch_unwind();
                    running.spawn(async move { (node, call.await) });
                    in_flight.insert(node, ());
                }
            }
            let more_to_start = !self.ready.is_empty()
                && running.len() < self.options.jobs.max(1)
                && self.stopped.is_none();
            // Starting calls comes first: the writer shares the cores, and a manifest can
            // wait where a call that could start cannot.
            if !more_to_start {
                self.hand_to_writer();
            }
            // The lines of this round's events go out together, before any wait.
            self.progress.flush();
            if running.is_empty() {
                // Everything ready was started or finished synchronously; anything left
                // waits on something that can no longer finish.
                if self.ready.is_empty() || self.stopped.is_some() {
                    break;
                }
                continue;
            }
            tokio::select! {
                biased;
                signal = &mut interruption => {
                    interrupted = true;
                    self.stopped = Some(format!("interrupted ({signal})"));
                    running.abort_all();
                    break;
                }
                done = running.join_next() => {
                    if let Some(done) = done {
                        self.joined(done, &mut in_flight);
                    }
                    // Take every other call that has finished too: a finished task keeps
                    // its call's whole future until it is joined, and its dependants wait.
                    while let Some(done) = running.try_join_next() {
                        self.joined(done, &mut in_flight);
                    }
                }
                _ = room.notified(), if !self.unwritten.is_empty() && !more_to_start => {}
                _ = tokio::task::yield_now(), if more_to_start => {}
            }
        }
        // Nodes cut off mid-flight are recorded as waiting: a resume starts them again.
        for (node, ()) in in_flight.iter() {
            self.write_node(node, Status::Waiting);
        }
        self.progress.end();
        self.write_tree();
        // The run's work is done; what follows waits for the disk.
        let wall = self.started.elapsed();
        loop {
            self.hand_to_writer();
            if self.unwritten.is_empty() {
                break;
            }
            // Bounded, in case the writer thread stops without a word.
            let _ = tokio::time::timeout(Duration::from_millis(100), room.notified()).await;
        }
        let report = self.finish_run(run_manifest, interrupted, wall)?;
        Ok(report)
    }

    /// Takes a finished task: its call's result, or a failure if the call panicked.
    fn joined(
        &mut self,
        done: Result<(NodeIndex, std::thread::Result<Box<CallResult>>), tokio::task::JoinError>,
        in_flight: &mut NodeMap<()>,
    ) {
        // A task fails to join only when aborted (Ctrl-C), since its call's panic is
        // caught inside it: its node stays in flight and is recorded as waiting.
        let Ok((node, outcome)) = done else {
            return;
        };
        in_flight.take(node);
        match outcome {
            Ok(result) => self.complete_call(node, *result),
            Err(payload) => {
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "no message".to_string());
                self.fail(node, &format!("the call panicked: {message}"));
            }
        }
    }

    /// Starts one ready node. Returns the future of a call to run, or `None` when the
    /// node finished at once (skipped, reused, failed to resolve, an expansion point).
    fn start(&mut self, node: NodeIndex) -> Option<Pending> {
        let kind = self.plan.graph[node].kind;
        let id = self.plan.graph[node].id.clone();
        self.records.get_or_default(node).started = Some((Instant::now(), Timestamp::now()));
        if matches!(kind, NodeKind::Agent | NodeKind::Exec) {
            let depth = self.plan.graph[node].depth;
            self.progress.start(&id, depth);
        }
        // Guards: an `if` whose branch is not taken skips the node.
        if let Some(guards) = self.plan.guards.get(&node).cloned() {
            for (cond, expected) in guards {
                match self.resolve_with(&cond, false) {
                    Ok(value) if resolve::truthy(&value) == expected => {}
                    Ok(_) => {
                        // Its recipe is not needed: the call never starts.
                        self.take_recipe(node);
                        self.finish(node, skipped(&id));
                        return None;
                    }
                    Err(error) => {
                        self.take_recipe(node);
                        self.fail(node, &format!("cannot evaluate its condition: {error}"));
                        return None;
                    }
                }
            }
        }
        match kind {
            NodeKind::Expansion => {
                self.grow(node);
                None
            }
            NodeKind::Exec => {
                // A recipe is needed until its call starts; taken, its memory serves later nodes.
                let Some(CallRecipe::Exec { argv, dir }) = self.take_recipe(node) else {
                    self.fail(node, "an exec step without its command");
                    return None;
                };
                let argv = match self.resolve(&argv) {
                    Ok(Value::Array(items)) => items
                        .into_iter()
                        .map(|v| match v {
                            Value::String(s) => s,
                            other => other.to_string(),
                        })
                        .collect::<Vec<_>>(),
                    Ok(other) => {
                        self.fail(node, &format!("`exec` needs a list of texts, got {other}"));
                        return None;
                    }
                    Err(error) => {
                        self.fail(node, &format!("input unavailable: {error}"));
                        return None;
                    }
                };
                // `--resume`: a step that completed with the same argv in the same
                // directory is not run again (its effects happened once).
                let mut parts = vec!["exec", dir.to_str().unwrap_or_default()];
                parts.extend(argv.iter().map(String::as_str));
                let hash = call::inputs_hash(&parts);
                self.records.get_or_default(node).inputs_hash = Some(hash.clone());
                if let Some((previous, output)) = self.reusable(&id, &hash) {
                    self.records.get_or_default(node).reused = true;
                    let result = CallResult {
                        ok: true,
                        text: output,
                        attempts: previous.attempts,
                        ..CallResult::default()
                    };
                    self.complete_call(node, result);
                    return None;
                }
                let timeout = Duration::from_secs(600);
                Some(Box::pin(async move {
                    Box::new(call::call_exec(argv, dir, timeout).await)
                }))
            }
            NodeKind::Agent => self.start_agent(node, id),
            NodeKind::Workflow => None,
        }
    }

    fn start_agent(&mut self, node: NodeIndex, id: String) -> Option<Pending> {
        let (item, mut arguments) = match self.agent_inputs(node) {
            Ok(inputs) => inputs,
            Err(error) => {
                self.fail(node, &error);
                return None;
            }
        };
        if let Some(error) = self.template_errors.get(&item) {
            let error = error.clone();
            self.fail(node, &error);
            return None;
        }
        let Some(spec) = self.spec(item) else {
            self.fail(node, "an agent call that is not an agent");
            return None;
        };

        // `--resume`: a node that completed before with the same inputs is not run again.
        // Only then is the prompt rendered here; otherwise the call renders it where it
        // runs, off the scheduler's thread.
        let mut rendered = None;
        if self.options.resume {
            let inputs = arguments_json(std::mem::take(&mut arguments));
            let prepared = match call::prepare(
                &self.templates,
                &spec.templates,
                inputs,
                spec.model.as_deref(),
            ) {
                Ok(prepared) => prepared,
                Err(error) => {
                    self.fail(node, &error);
                    return None;
                }
            };
            self.records.get_or_default(node).inputs_hash = Some(prepared.hash.clone());
            // One whose recorded answer no longer fits its agent's shape runs again.
            let max_items = self.list_limit(node);
            let fits = call::Fits {
                shape: &spec.shape,
                max_items,
                summary: spec.summary,
            };
            let reusable = self
                .reusable(&id, &prepared.hash)
                .filter(|(previous, _)| call::still_fits(&fits, previous.value.as_ref()));
            if let Some((previous, output)) = reusable {
                self.records.get_or_default(node).reused = true;
                let result = CallResult {
                    ok: true,
                    text: output,
                    value: previous.value.clone(),
                    attempts: previous.attempts,
                    ..CallResult::default()
                };
                self.complete_call(node, result);
                return None;
            }
            rendered = Some(prepared);
        }
        // Budgets: stop starting work once a limit is reached.
        if let Some(reason) = self.budget_reached() {
            self.stopped = Some(reason);
            self.progress.withdraw(&id);
            self.write_node(node, Status::Waiting);
            return None;
        }
        self.agents_started += 1;
        let left = call::Left {
            tokens: (self.options.max_tokens)
                .map(|max| (max, max.saturating_sub(self.tokens_used))),
            cost: (self.options.max_cost).map(|max| (max, (max - self.cost_used).max(0.0))),
        };
        let max_items = self.list_limit(node);
        let backoff = self.options.backoff;
        // No manifest is written as a call starts: a node without one has not completed,
        // which is all `--resume` needs, and Ctrl-C records the calls in flight.
        let provider = self.providers.for_agent(item);
        let templates = self.templates.clone();
        // The request is put together where the call runs, off the scheduler's thread.
        Some(Box::pin(async move {
            // A call's duration is all of its own work: rendering its prompt (a fold's
            // is as big as its inputs), then the provider's answer with any retries.
            let began = Instant::now();
            let ready = provider.and_then(|provider| {
                let prepared = match rendered {
                    Some(prepared) => prepared,
                    None => {
                        let data = arguments_json(arguments);
                        call::prepare(&templates, &spec.templates, data, spec.model.as_deref())?
                    }
                };
                Ok((provider, prepared))
            });
            let (provider, prepared) = match ready {
                Ok(ready) => ready,
                Err(error) => {
                    let result = CallResult {
                        error: Some(error),
                        duration: began.elapsed(),
                        ..CallResult::default()
                    };
                    return Box::new(result);
                }
            };
            let request = Request {
                node: id,
                agent: spec.name.clone(),
                model: spec.model.clone(),
                system: prepared.system,
                prompt: prepared.prompt,
                tools: spec.tools.clone(),
                shape: spec.shape.clone(),
                max_items,
                summary: Some(spec.summary),
                attempt: 1,
            };
            let policy = Policy {
                timeout: spec.timeout,
                retries: spec.retries,
                summary: spec.summary,
                backoff,
                context: spec.context,
                left,
            };
            // Boxed: the call's future (retries, the provider's request) is most of
            // the task's size, and a task's memory is reserved for its whole life, from
            // spawn until it is joined. Boxed, it exists only while the call runs.
            let mut result = Box::pin(call::call_agent(provider, request, policy)).await;
            result.inputs_hash = Some(prepared.hash);
            result.duration = began.elapsed();
            Box::new(result)
        }))
    }

    /// The settings every call of agent `item` shares; `None` when `item` is no agent.
    fn spec(&mut self, item: ItemRef) -> Option<Arc<AgentSpec>> {
        if let Some(spec) = self.specs.get(&item) {
            return Some(spec.clone());
        }
        let outcome = self.outcome;
        let agent = outcome.agent(item)?;
        let duration = |key: &str| match agent.setting(key).map(|s| &s.value) {
            Some(SettingValue::Quantity(q)) => q.as_duration(),
            _ => None,
        };
        let retries = match agent.setting("retries").map(|s| &s.value) {
            Some(SettingValue::Quantity(q)) => q
                .as_count()
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(2),
            _ => 2,
        };
        let spec = Arc::new(AgentSpec {
            templates: call::TemplateNames::of(item),
            name: agent.name.name.clone(),
            model: agent
                .setting("model")
                .and_then(|s| s.value.as_text())
                .map(str::to_string),
            tools: agent
                .setting("tools")
                .map_or_else(Vec::new, |s| s.value.words()),
            shape: (outcome.agents.get(&item)).map_or(Shape::Result, |info| info.shape.clone()),
            timeout: duration("timeout").unwrap_or(Duration::from_secs(600)),
            retries,
            summary: (outcome.agents.get(&item))
                .and_then(|info| info.summary)
                .unwrap_or(crate::check::budget::DEFAULT_SUMMARY),
            context: outcome.agents.get(&item).and_then(|info| info.context),
        });
        self.specs.insert(item, spec.clone());
        Some(spec)
    }

    /// Takes the recipe of a call that starts (a call starts once): its arguments'
    /// memory serves the nodes that come after it.
    fn take_recipe(&mut self, node: NodeIndex) -> Option<CallRecipe> {
        self.plan.calls.take(node).map(|recipe| *recipe)
    }

    /// The agent a call runs and the data its templates render, from the call's recipe.
    /// The recipe is taken out of the plan: a call starts once, and the memory of 10,000
    /// recipes serves the nodes that come after them.
    fn agent_inputs(&mut self, node: NodeIndex) -> Result<(ItemRef, Arguments), String> {
        let Some(CallRecipe::Agent { item, args }) = self.take_recipe(node) else {
            return Err("an agent call without its arguments".to_string());
        };
        // The prompt gets only the fields of results its templates can read: a parent
        // over 10,000 children reads their summaries, not their whole outputs.
        let fields = self
            .outcome
            .agents
            .get(&item)
            .map_or(ResultFields::ALL, |info| info.result_fields);
        let mut arguments = Vec::with_capacity(args.len());
        for (name, value) in args {
            let argument = self
                .argument(&value, fields)
                .map_err(|error| format!("input `{name}` is unavailable: {error}"))?;
            arguments.push((name, argument));
        }
        Ok((item, arguments))
    }

    /// The most elements `node`'s answer may have (`Plan::list_limits`). A longer
    /// answer is retried with the validation error.
    fn list_limit(&self, node: NodeIndex) -> Option<usize> {
        self.plan
            .list_limits
            .get(&node)
            .and_then(|m| usize::try_from(*m).ok())
    }

    /// A complete node `id` of an earlier attempt of this run with the same inputs, and
    /// its `output.md`: a node is reused with its output or not at all (one whose
    /// `output.md` is gone runs again; an empty one would change every prompt after it).
    fn reusable(&self, id: &str, hash: &str) -> Option<(Manifest, String)> {
        let previous = self.previous(id, hash)?;
        let output = if previous.outputs.iter().any(|o| o == "output.md") {
            crate::source::read_text(&manifest::node_dir(&self.run_dir, id).join("output.md"))
                .ok()?
        } else {
            String::new()
        };
        Some((previous, output))
    }

    /// A complete manifest of `id` from an earlier attempt of this run with the same
    /// inputs.
    fn previous(&self, id: &str, hash: &str) -> Option<Manifest> {
        if !self.options.resume {
            return None;
        }
        let previous =
            manifest::read(&manifest::node_dir(&self.run_dir, id).join("manifest.yaml"))?;
        (previous.status == "complete" && previous.inputs_hash.as_deref() == Some(hash))
            .then_some(previous)
    }

    fn budget_reached(&self) -> Option<String> {
        if let Some(max) = self.options.max_agents {
            if self.agents_started >= max {
                return Some(format!("reached --max-agents {max}"));
            }
        }
        if let Some(max) = self.options.max_tokens {
            if self.tokens_used >= max {
                return Some(format!(
                    "reached --max-tokens {max} ({} used)",
                    self.tokens_used
                ));
            }
        }
        if let Some(max) = self.options.max_cost {
            if self.cost_used >= max {
                return Some(format!(
                    "reached --max-cost {} ({} spent)",
                    super::dollars(max),
                    super::dollars(self.cost_used)
                ));
            }
        }
        None
    }

    /// Computes a value for a prompt: what models and files wrote comes fenced.
    fn resolve(&self, value: &PlanValue) -> Result<Value, String> {
        self.resolve_with(value, true)
    }

    fn resolve_with(&self, value: &PlanValue, fence: bool) -> Result<Value, String> {
        self.in_scope(fence, ResultFields::ALL, |scope| {
            resolve::resolve(value, scope)
        })
    }

    /// Computes an argument for a prompt (fenced), its `result`s with only `fields`,
    /// and referred to rather than made into JSON here.
    fn argument(&self, value: &PlanValue, fields: ResultFields) -> Result<Argument, String> {
        self.in_scope(true, fields, |scope| {
            resolve::resolve_argument(value, scope)
        })
    }

    /// Runs `f` with what resolution can see of the run now.
    fn in_scope<T>(&self, fence: bool, fields: ResultFields, f: impl FnOnce(&Scope<'_>) -> T) -> T {
        let graph = &self.plan.graph;
        let ids = |node: NodeIndex| graph[node].id.clone();
        f(&Scope {
            results: &self.results,
            expansions: &self.expansions,
            ids: &ids,
            fence,
            fields,
        })
    }

    /// Turns a finished call into the node's result.
    fn complete_call(&mut self, node: NodeIndex, call: CallResult) {
        let n = &self.plan.graph[node];
        let id = n.id.clone();
        let budget = n.output_tokens.max(1);
        let record = self.records.get_or_default(node);
        record.attempts = call.attempts;
        if let Some(hash) = &call.inputs_hash {
            record.inputs_hash = Some(hash.clone());
        }
        record.duration = call.duration;
        record.tokens = Tokens {
            input: call.tokens_in,
            output: call.tokens_out,
        };
        record.cost_usd = call.cost_usd;
        if call.error.is_some() || call.partial.is_some() || call.session.is_some() {
            let rare = record.rare_mut();
            rare.error = call.error.clone();
            rare.partial = call.partial.clone();
            rare.session = call.session.clone();
        } else {
            record.rare = None;
        }
        self.tokens_used = self
            .tokens_used
            .saturating_add(call.tokens_in.saturating_add(call.tokens_out));
        self.cost_used += call.cost_usd;
        if let Some(reason) = &call.stopped {
            self.stopped.get_or_insert_with(|| reason.clone());
        }
        let summary_source = match &call.value {
            Some(value) => value.to_string(),
            None if call.ok => call.text.clone(),
            None => call.error.clone().unwrap_or_default(),
        };
        let (summary, cut) = call::summarize(&summary_source, budget);
        record.summary_cut = cut;
        let reused = record.reused;
        let text: Arc<str> = call.text.into();
        let wrote_output = !text.is_empty() || call.ok;
        let output = (!reused && wrote_output).then(|| text.clone());
        let result = NodeResult {
            id,
            status: match (call.ok, &call.partial) {
                (true, None) => Status::Complete,
                (true, Some(_)) => Status::Partial,
                (false, _) => Status::Failed,
            },
            summary,
            output: text,
            wrote_output,
            value: call.value.map(Box::new),
            structured: false,
        };
        self.finish_with_output(node, result, output);
    }

    fn fail(&mut self, node: NodeIndex, error: &str) {
        let id = self.plan.graph[node].id.clone();
        self.records.get_or_default(node).rare_mut().error = Some(error.to_string());
        let (summary, _) = call::summarize(error, self.plan.graph[node].output_tokens);
        self.finish(
            node,
            NodeResult {
                id,
                status: Status::Failed,
                summary,
                output: "".into(),
                wrote_output: false,
                value: None,
                structured: false,
            },
        );
    }

    /// Records a result, writes the manifest and releases the dependants.
    fn finish(&mut self, node: NodeIndex, result: NodeResult) {
        self.finish_with_output(node, result, None);
    }

    /// [`Executor::finish`], writing `output` as the node's `output.md` with its manifest.
    fn finish_with_output(
        &mut self,
        node: NodeIndex,
        mut result: NodeResult,
        output: Option<Arc<str>>,
    ) {
        result.structured = self.plan.graph[node].structured;
        let status = result.status;
        let record = self.records.get_or_default(node);
        if let Some((started, _)) = &record.started {
            // Calls measure themselves where they run; what finished at once took no time.
            let duration = record.duration;
            let began = Instant::now()
                .checked_sub(duration)
                .unwrap_or(*started)
                .max(*started);
            if self.options.trace.is_some() {
                self.trace
                    .push(&result.id, self.started, began, duration, status);
            }
        }
        record.finished_at = Some(Timestamp::now());
        let reused = record.reused;
        let counted = matches!(self.plan.graph[node].kind, NodeKind::Agent | NodeKind::Exec);
        self.progress.finish(&result.id, status, reused, counted);
        self.results.insert(node, Arc::new(result));
        // A reused node keeps the manifest it completed with, byte for byte.
        if !reused {
            self.write_files(node, status, output);
        }
        let dependants: Vec<NodeIndex> = self
            .plan
            .graph
            .neighbors_directed(node, Direction::Outgoing)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        for dependant in dependants {
            if let Some(count) = self.waiting.get_mut(&dependant) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    self.waiting.remove(&dependant);
                    self.queue(dependant);
                }
            }
        }
        // The copies of an expansion point finish it together.
        if let Some(owner) = self.owner_expansion(node) {
            if let Some(left) = self.pending.get_mut(&owner) {
                *left = left.saturating_sub(1);
                if *left == 0 {
                    self.pending.remove(&owner);
                    self.finish_expansion(owner);
                }
            }
        }
    }

    /// The nearest expansion point above `node` that the run grew (not a template).
    fn owner_expansion(&self, node: NodeIndex) -> Option<NodeIndex> {
        let mut current = self.plan.graph[node].parent;
        while let Some(parent) = current {
            let p = &self.plan.graph[parent];
            if p.kind == NodeKind::Expansion && !p.template {
                return Some(parent);
            }
            current = p.parent;
        }
        None
    }

    /// Makes room in the per-node state for every node of the plan as planned, exactly.
    /// (Nodes grown later from a model's list make the vectors grow as vectors do:
    /// reserving exactly at each growth would copy them each time.)
    fn reserve_for_nodes(&mut self) {
        let count = self.plan.graph.node_count();
        self.records.reserve_for(count);
        self.results.reserve_for(count);
    }

    /// Grows an expansion point from the list it iterates.
    fn grow(&mut self, node: NodeIndex) {
        let Some(site) = self.plan.sites.get(&node) else {
            self.fail(node, "an expansion point without its site");
            return;
        };
        let list = site.list.clone();
        let max = self.plan.graph[node].max.unwrap_or(0);
        let source = list.deps.first().copied().unwrap_or(node);
        // The copies bind the elements as the model wrote them; they are fenced again
        // where they enter a prompt.
        let elements = match self.resolve_with(&list, false) {
            Ok(Value::Array(items)) => items,
            Ok(other) => {
                self.fail(node, &format!("expected a list to iterate, got {other}"));
                return;
            }
            Err(error) => {
                self.fail(node, &format!("the list is unavailable: {error}"));
                return;
            }
        };
        if elements.len() as u64 > max {
            self.fail(
                node,
                &format!(
                    "the list has {} elements, more than its `max {max}`",
                    elements.len()
                ),
            );
            return;
        }
        let before = self.plan.graph.node_count();
        // The copies of another `for` are bound as the values they are.
        let planned = match &list.unbounded().val {
            crate::compile::value::Val::Expansion { node: copies, .. } => {
                self.expansions.get(copies).cloned()
            }
            _ => None,
        };
        match self
            .planner
            .instantiate(&mut self.plan, node, &elements, planned.as_deref(), source)
        {
            Ok(values) => {
                self.expansions.insert(node, values);
                let new: Vec<NodeIndex> = (before..self.plan.graph.node_count())
                    .map(NodeIndex::new)
                    .collect();
                let owned = new
                    .iter()
                    .filter(|n| self.is_work(**n) && self.owner_expansion(**n) == Some(node))
                    .count();
                if owned == 0 {
                    self.finish_expansion(node);
                } else {
                    self.pending.insert(node, owned);
                    let calls = new
                        .iter()
                        .filter(|n| {
                            self.is_work(**n) && self.plan.graph[**n].kind != NodeKind::Expansion
                        })
                        .count();
                    self.progress.grow(calls as u64);
                    self.admit(new);
                }
            }
            Err(error) => self.fail(node, &error.message),
        }
    }

    fn finish_expansion(&mut self, node: NodeIndex) {
        let id = self.plan.graph[node].id.clone();
        let children: Vec<NodeIndex> = self.plan.graph[node]
            .children
            .iter()
            .copied()
            .filter(|c| !self.plan.graph[*c].template)
            .collect();
        let failed = children
            .iter()
            .any(|c| self.subtree_status(*c) != Status::Complete);
        let count = children.len();
        self.finish(
            node,
            NodeResult {
                id,
                status: if failed {
                    Status::Partial
                } else {
                    Status::Complete
                },
                summary: format!("{count} copies"),
                output: "".into(),
                wrote_output: false,
                value: None,
                structured: false,
            },
        );
    }

    /// The status of a node from its own result or, for inner nodes, its subtree.
    fn subtree_status(&self, node: NodeIndex) -> Status {
        let n = &self.plan.graph[node];
        if n.template {
            return Status::Skipped;
        }
        if let Some(result) = self.results.get(node) {
            if n.kind != NodeKind::Workflow {
                return result.status;
            }
        }
        match n.kind {
            NodeKind::Agent | NodeKind::Exec | NodeKind::Expansion => Status::Waiting,
            NodeKind::Workflow => {
                let statuses: Vec<Status> =
                    n.children.iter().map(|c| self.subtree_status(*c)).collect();
                if statuses.contains(&Status::Waiting) {
                    return Status::Waiting;
                }
                let returned = self
                    .plan
                    .returns
                    .get(&node)
                    .and_then(|r| match r.unbounded().val {
                        crate::compile::value::Val::Node { node, .. } => {
                            self.results.get(node).map(|r| r.status)
                        }
                        _ => None,
                    });
                if returned == Some(Status::Failed) {
                    Status::Failed
                } else if statuses
                    .iter()
                    .any(|s| matches!(s, Status::Failed | Status::Partial))
                {
                    Status::Partial
                } else {
                    Status::Complete
                }
            }
        }
    }

    fn write_node(&mut self, node: NodeIndex, status: Status) {
        self.write_files(node, status, None);
    }

    /// Writes the node's manifest, after its `output.md` when it has one, as soon as
    /// the writer has room for them.
    fn write_files(&mut self, node: NodeIndex, status: Status, output: Option<Arc<str>>) {
        self.unwritten.push_back(Unwritten {
            node,
            status,
            output,
        });
    }

    /// Builds the manifests of the nodes waiting to be written, in order, while the
    /// writer has room for them.
    fn hand_to_writer(&mut self) {
        while self.writer.has_room() {
            let Some(next) = self.unwritten.pop_front() else {
                break;
            };
            self.queue_files(next.node, next.status, next.output);
        }
    }

    /// Queues the node's manifest, after its `output.md` when it has one: one job, so
    /// the queue holds one directory path per node (the writer keeps the order).
    fn queue_files(&mut self, node: NodeIndex, status: Status, output: Option<Arc<str>>) {
        let n = &self.plan.graph[node];
        let record = self.records.get(node);
        let rare = record.and_then(Record::rare);
        let result = self.results.get(node);
        // The writer lists them in the manifest (`manifest::Queued`), off this thread.
        let children: Vec<(String, &'static str)> = n
            .children
            .iter()
            .filter(|c| !self.plan.graph[**c].template)
            .map(|c| {
                (
                    self.plan.graph[*c].id.clone(),
                    self.subtree_status(*c).as_str(),
                )
            })
            .collect();
        let agent = (n.kind == NodeKind::Agent).then(|| n.name.clone());
        let summary = match (n.kind, result) {
            (NodeKind::Workflow, _) => self.workflow_summary(node),
            (_, Some(result)) => result.summary.clone(),
            (_, None) => String::new(),
        };
        let inputs = self
            .plan
            .inputs(node)
            .into_iter()
            .filter(|i| !self.plan.graph[*i].template)
            .map(|i| self.plan.graph[i].id.clone())
            .collect();
        let queued = manifest::Queued {
            status: status.as_str(),
            kind: n.kind.as_str(),
            depth: n.depth,
            summary,
            id: n.id.clone(),
            parent: n.parent.map(|p| self.plan.graph[p].id.clone()),
            agent,
            model: n.model.clone(),
            inputs,
            inputs_hash: record.and_then(|r| r.inputs_hash.clone()),
            outputs: result.map(|r| r.outputs()).unwrap_or_default(),
            attempts: record.map_or(0, |r| r.attempts),
            summary_cut: record.is_some_and(|r| r.summary_cut),
            started_at: record.and_then(|r| r.started.map(|(_, at)| at)),
            finished_at: record.and_then(|r| r.finished_at),
            tokens: record.map(|r| r.tokens).unwrap_or_default(),
            cost_usd: record.map_or(0.0, |r| r.cost_usd),
            rare: manifest::Rare {
                error: rare.and_then(|r| r.error.clone()),
                value: result.and_then(|r| r.value.as_deref().cloned()),
                partial_reason: rare.and_then(|r| r.partial.clone()),
                session: rare.and_then(|r| r.session.clone()),
                subtree: (!children.is_empty()).then(|| self.spend_under(node)),
            }
            .boxed(),
            children,
        };
        self.writer.node(&self.run_dir, output, queued);
    }

    /// What `node` and everything under it spent so far.
    fn spend_under(&self, node: NodeIndex) -> Spend {
        let mut spend = Spend::default();
        let mut stack = vec![node];
        while let Some(next) = stack.pop() {
            let n = &self.plan.graph[next];
            if n.template {
                continue;
            }
            if let Some(record) = self.records.get(next) {
                if n.kind == NodeKind::Agent && record.started.is_some() {
                    spend.agent_calls += 1;
                }
                spend.tokens.input = spend.tokens.input.saturating_add(record.tokens.input);
                spend.tokens.output = spend.tokens.output.saturating_add(record.tokens.output);
                spend.cost_usd += record.cost_usd;
            }
            stack.extend(n.children.iter().copied());
        }
        spend
    }

    fn workflow_summary(&self, node: NodeIndex) -> String {
        self.plan
            .returns
            .get(&node)
            .map_or_else(String::new, |value| self.summary_of(value))
    }

    /// The summary a value stands for: its node's summary, the branch an `if` took, or a
    /// count for lists.
    fn summary_of(&self, value: &PlanValue) -> String {
        use crate::compile::value::Val;
        match &value.val {
            Val::Node { node, .. } => self
                .results
                .get(*node)
                .map(|r| r.summary.clone())
                .unwrap_or_default(),
            Val::Field { base, .. } => self.summary_of(base),
            Val::Bounded { list, .. } => self.summary_of(list),
            Val::Choice {
                cond,
                then,
                otherwise,
            } => match self.resolve_with(cond, false) {
                Ok(taken) if resolve::truthy(&taken) => self.summary_of(then),
                Ok(_) => self.summary_of(otherwise),
                Err(_) => String::new(),
            },
            Val::List(items) => format!("{} results", items.len()),
            Val::Expansion { node, .. } => {
                format!("{} results", self.expansions.get(node).map_or(0, Vec::len))
            }
            _ => String::new(),
        }
    }

    /// Writes the manifests of the inner nodes (workflows, expansion points), whose
    /// status is their subtree's.
    fn write_tree(&mut self) {
        let inner: Vec<NodeIndex> = self
            .plan
            .graph
            .node_indices()
            .filter(|n| !self.plan.graph[*n].template)
            .filter(|n| {
                self.plan.graph[*n].kind == NodeKind::Workflow || !self.results.contains(*n)
            })
            .collect();
        for node in inner {
            let status = self.subtree_status(node);
            self.write_node(node, status);
        }
    }

    fn finish_run(
        &mut self,
        mut run: RunManifest,
        interrupted: bool,
        wall: Duration,
    ) -> Result<RunReport, RunError> {
        let status = if interrupted || self.stopped.is_some() {
            Status::Waiting
        } else {
            self.subtree_status(self.plan.root)
        };
        let mut totals = RunTotals {
            wall_seconds: wall.as_secs_f64(),
            ..RunTotals::default()
        };
        for (node, record) in self.records.iter() {
            if self.plan.graph[node].kind != NodeKind::Agent {
                continue;
            }
            totals.agent_calls += u64::from(!record.reused && record.attempts > 0);
            totals.reused += u64::from(record.reused);
            totals.tokens.input = totals.tokens.input.saturating_add(record.tokens.input);
            totals.tokens.output = totals.tokens.output.saturating_add(record.tokens.output);
            totals.cost_usd += record.cost_usd;
        }
        for node in self.plan.graph.node_indices() {
            if self.plan.graph[node].kind != NodeKind::Agent || self.plan.graph[node].template {
                continue;
            }
            match self.results.get(node).map(|r| r.status) {
                Some(Status::Complete) => totals.complete += 1,
                Some(Status::Partial) => totals.partial += 1,
                Some(Status::Failed) => totals.failed += 1,
                Some(_) => {}
                None => totals.waiting += 1,
            }
        }
        totals.critical_path_seconds = self.critical_path_seconds();
        run.status = status.as_str().to_string();
        run.stopped = self.stopped.clone();
        run.finished_at = Some(manifest::now());
        run.totals = totals.clone();
        self.writer.yaml(self.run_dir.join("run.yaml"), run.clone());
        let errors = self.writer.flush();
        if let Some(error) = errors.into_iter().next() {
            return Err(RunError {
                plan_broken: false,
                message: error,
                help: "check that the runs directory is writable".to_string(),
            });
        }
        // The trace is written after the run's own files, and failing to write it is a
        // warning: the run's result, already on disk, is not lost to it.
        let mut warnings = Vec::new();
        if let Some(path) = &self.options.trace {
            self.writer
                .bytes(path.clone(), self.trace.to_json().into_bytes());
            warnings.extend(self.writer.flush());
        }
        let root_summary = self.workflow_summary(self.plan.root);
        Ok(RunReport {
            run_id: run.run_id,
            run_dir: self.run_dir.to_path_buf(),
            status,
            stopped: self.stopped.clone(),
            totals,
            summary: root_summary,
            warnings,
        })
    }

    /// The longest chain of dependent calls, by their measured durations.
    fn critical_path_seconds(&self) -> f64 {
        // An expansion point finishes when the copies it grew have, so what waits on it
        // waits on them: the chain runs through its calls (edges from each grown node to
        // the expansion that owns it, which the plan's graph does not hold).
        let mut graph = self.plan.graph.map(|_, _| (), |_, _| ());
        for node in self.plan.graph.node_indices() {
            if let Some(owner) = self.owner_expansion(node) {
                graph.add_edge(node, owner, ());
            }
        }
        let order = petgraph::algo::toposort(&graph, None)
            .or_else(|_| petgraph::algo::toposort(&self.plan.graph, None));
        let Ok(order) = order else {
            return 0.0;
        };
        // By node index: a hash map here was a tenth of a 10,000-node run's tail.
        let mut longest = vec![0.0f64; self.plan.graph.node_count()];
        let mut best = 0.0f64;
        for node in order {
            let own = self
                .records
                .get(node)
                .map_or(0.0, |r| r.duration.as_secs_f64());
            let before = graph
                .neighbors_directed(node, Direction::Incoming)
                .map(|p| longest.get(p.index()).copied().unwrap_or(0.0))
                .fold(0.0, f64::max);
            let own = if self.plan.graph[node].kind == NodeKind::Expansion {
                0.0
            } else {
                own
            };
            if let Some(slot) = longest.get_mut(node.index()) {
                *slot = before + own;
            }
            best = best.max(before + own);
        }
        best
    }
}

fn skipped(id: &str) -> NodeResult {
    NodeResult {
        id: id.to_string(),
        status: Status::Skipped,
        summary: "skipped: its `if` branch was not taken".to_string(),
        output: "".into(),
        wrote_output: false,
        value: None,
        structured: false,
    }
}
