//! Compile and plan (DESIGN §3): a checked workflow lowered to a DAG of agent calls,
//! expanded at plan time from the file system, with its worst case computed before any
//! model is called.

mod args;
pub mod expand;
pub mod fs;
pub mod ir;
mod node_map;
pub mod prices;
pub mod render;
pub mod value;

use petgraph::algo::toposort;

pub use expand::Planner;
pub use ir::{CallRecipe, EdgeKind, Node, NodeKind, Plan};
pub use node_map::NodeMap;

use crate::check::scope::{ItemKind, ItemRef};
use crate::check::Outcome;
use crate::syntax::ast::Item;

/// Why a plan could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    pub message: String,
    pub help: String,
    /// Bad arguments or a missing choice (exit 2), rather than a plan that breaks a
    /// bound of the workflow (exit 1).
    pub usage: bool,
}

impl PlanError {
    fn usage(message: impl Into<String>, help: impl Into<String>) -> PlanError {
        PlanError {
            message: message.into(),
            help: help.into(),
            usage: true,
        }
    }

    fn plan(message: impl Into<String>, help: impl Into<String>) -> PlanError {
        PlanError {
            message: message.into(),
            help: help.into(),
            usage: false,
        }
    }

    pub(crate) fn internal(what: &str) -> PlanError {
        PlanError::plan(
            format!("cannot plan: {what}"),
            "run `pai check` on the file; if it is clean, this is a bug in pai",
        )
    }
}

/// What to plan.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The workflow; by default the first workflow of the file's first skill, or the
    /// file's only workflow.
    pub workflow: Option<String>,
    /// `--arg name=value`, as given.
    pub args: Vec<String>,
}

/// Plans a workflow of the first root of a clean `outcome`.
pub fn plan<'o>(outcome: &'o Outcome, request: &Request) -> Result<Plan<'o>, PlanError> {
    prepare(outcome, request)
        .and_then(|(mut planner, workflow, args, file)| planner.plan(workflow, args, file))
}

/// The parameters of workflow `name` of the first root, each with whether it is `text`
/// (where `pai run --request` puts the request). Empty when there is no such workflow.
pub fn workflow_params(outcome: &Outcome, name: &str) -> Vec<(String, bool)> {
    let Some(root) = outcome.roots.first() else {
        return Vec::new();
    };
    let Ok(workflow) = select_workflow(outcome, *root, Some(name)) else {
        return Vec::new();
    };
    let Item::Workflow(decl) = &module_item(outcome, workflow) else {
        return Vec::new();
    };
    decl.params
        .iter()
        .map(|p| {
            let is_text = resolve(outcome, workflow, &p.ty) == crate::check::types::Type::Text;
            (p.name.name.clone(), is_text)
        })
        .collect()
}

/// Everything `plan` needs before lowering: the planner, the workflow, its bound
/// arguments and the file's name. The run keeps the planner to grow expansion points.
pub fn prepare<'o>(
    outcome: &'o Outcome,
    request: &Request,
) -> Result<
    (
        Planner<'o>,
        ItemRef,
        foldhash::HashMap<String, value::PlanValue>,
        String,
    ),
    PlanError,
> {
    let root = *outcome
        .roots
        .first()
        .ok_or_else(|| PlanError::usage("no file to plan", "name a `.pai` file"))?;
    let module = outcome.program.module(root);
    let file = outcome.sources.get(module.file).name().to_string();
    let workflow = select_workflow(outcome, root, request.workflow.as_deref())?;
    let Item::Workflow(decl) = &module_item(outcome, workflow) else {
        return Err(PlanError::internal("the chosen workflow is not a workflow"));
    };
    let params: Vec<_> = decl
        .params
        .iter()
        .map(|p| (p.clone(), resolve(outcome, workflow, &p.ty)))
        .collect();
    let given = request
        .args
        .iter()
        .map(|raw| args::split(raw))
        .collect::<Result<Vec<_>, _>>()?;
    let bound = args::bind(&decl.name.name, &params, &given)?;
    // Labels of paths read relative to the first path argument.
    let base = decl
        .params
        .iter()
        .filter_map(|p| bound.get(&p.name.name))
        .find_map(|v| match &v.val {
            value::Val::Path(path) if path.is_dir() => Some(path.clone()),
            _ => None,
        });
    Ok((Planner::new(outcome, base), workflow, bound, file))
}

fn module_item(outcome: &Outcome, item: ItemRef) -> &Item {
    &outcome.program.module(item.module).ast.items[item.index]
}

fn resolve(
    outcome: &Outcome,
    item: ItemRef,
    ty: &crate::syntax::ast::TypeExpr,
) -> crate::check::types::Type {
    resolve_type(outcome, item.module, ty)
}

/// The type a written type denotes in `module`.
pub fn resolve_type(
    outcome: &Outcome,
    module: crate::check::ModuleId,
    ty: &crate::syntax::ast::TypeExpr,
) -> crate::check::types::Type {
    crate::check::scope::resolve_type_in(&outcome.scopes, module, ty)
}

/// The workflow to plan: the one asked for, else the default of the file's first skill,
/// else the file's only workflow, else the only one no other workflow of the file calls.
fn select_workflow(
    outcome: &Outcome,
    root: crate::check::ModuleId,
    wanted: Option<&str>,
) -> Result<ItemRef, PlanError> {
    let scope = outcome
        .scopes
        .get(root.0)
        .ok_or_else(|| PlanError::internal("the file has no scope"))?;
    let workflows: Vec<&str> = {
        let mut names: Vec<&str> = scope
            .names
            .iter()
            .filter(|(_, b)| b.kind == ItemKind::Workflow && b.import.is_none())
            .map(|(n, _)| n.as_str())
            .collect();
        names.sort_unstable();
        names
    };
    if let Some(wanted) = wanted {
        return match scope.names.get(wanted) {
            Some(b) if b.kind == ItemKind::Workflow => Ok(b.item),
            _ => Err(PlanError::usage(
                format!("no workflow `{wanted}` in this file"),
                crate::diagnostics::suggest(wanted, workflows.iter().copied())
                    .unwrap_or_else(|| format!("its workflows are {}", list(&workflows))),
            )),
        };
    }
    let module = outcome.program.module(root);
    for item in &module.ast.items {
        if let Item::Skill(skill) = item {
            if let Some(first) = skill.workflows.first() {
                if let Some(b) = scope
                    .names
                    .get(&first.name)
                    .filter(|b| b.kind == ItemKind::Workflow)
                {
                    return Ok(b.item);
                }
            }
        }
    }
    // Several workflows: the one no other workflow of the file calls, if it is alone.
    let mut called = std::collections::HashSet::new();
    for item in &module.ast.items {
        if let Item::Workflow(workflow) = item {
            crate::check::graph::walk_exprs(workflow, &mut |expr| {
                if let crate::syntax::ast::ExprKind::Call(call) = &expr.kind {
                    if call.callee.name != workflow.name.name {
                        called.insert(call.callee.name.as_str());
                    }
                }
            });
        }
    }
    let roots: Vec<&str> = workflows
        .iter()
        .copied()
        .filter(|w| !called.contains(w))
        .collect();
    let candidates = if roots.len() == 1 { &roots } else { &workflows };
    match candidates.as_slice() {
        [only] => scope
            .names
            .get(*only)
            .map(|b| b.item)
            .ok_or_else(|| PlanError::internal("a workflow vanished")),
        [] => Err(PlanError::usage(
            "the file defines no workflow",
            "plan a file that defines one",
        )),
        _ => Err(PlanError::usage(
            "the file has several workflows",
            format!("choose one with `--workflow`: {}", list(&workflows)),
        )),
    }
}

fn list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The worst case of a whole run, shown above every plan.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Totals {
    /// Agent calls, counting every copy an expansion point may make.
    pub agents: u64,
    pub exec_steps: u64,
    /// Nodes of the planned graph (expansion points counted once).
    pub nodes: usize,
    pub depth: usize,
    pub widest_fanout: u64,
    /// Agent and exec calls on the longest chain of data dependencies.
    pub critical_path: u64,
    pub tokens_in: u64,
    pub tokens_out: u64,
    /// US dollars, for the calls whose model has a known price.
    pub cost_usd: f64,
    /// Agent calls whose model has no known price.
    pub unpriced_agents: u64,
}

impl Plan<'_> {
    /// The worst case of the whole run.
    pub fn totals(&self, prices: &prices::Prices) -> Totals {
        let mut totals = Totals {
            agents: 0,
            exec_steps: 0,
            nodes: self.graph.node_count(),
            depth: 0,
            widest_fanout: 0,
            critical_path: 0,
            tokens_in: 0,
            tokens_out: 0,
            cost_usd: 0.0,
            unpriced_agents: 0,
        };
        for node in self.graph.node_weights() {
            totals.depth = totals.depth.max(node.depth);
            let fanout = node.max.unwrap_or(node.children.len() as u64);
            totals.widest_fanout = totals.widest_fanout.max(fanout);
            match node.kind {
                NodeKind::Agent => {
                    let times = node.multiplicity;
                    totals.agents = totals.agents.saturating_add(times);
                    let tokens_in = node.input_tokens.saturating_mul(times);
                    let tokens_out = node.output_tokens.saturating_mul(times);
                    totals.tokens_in = totals.tokens_in.saturating_add(tokens_in);
                    totals.tokens_out = totals.tokens_out.saturating_add(tokens_out);
                    match node.model.as_deref().and_then(|m| prices.of(m)) {
                        Some(price) => totals.cost_usd += price.cost(tokens_in, tokens_out),
                        None => {
                            totals.unpriced_agents = totals.unpriced_agents.saturating_add(times)
                        }
                    }
                }
                NodeKind::Exec => {
                    totals.exec_steps = totals.exec_steps.saturating_add(node.multiplicity)
                }
                NodeKind::Workflow | NodeKind::Expansion => {}
            }
        }
        totals.critical_path = self.critical_path();
        totals
    }

    /// The longest chain of agent and exec calls along data and `after` edges.
    fn critical_path(&self) -> u64 {
        let Ok(order) = toposort(&self.graph, None) else {
            return 0;
        };
        let mut longest = vec![0u64; self.graph.node_count()];
        let mut best = 0;
        for index in order {
            let weight = u64::from(matches!(
                self.graph[index].kind,
                NodeKind::Agent | NodeKind::Exec
            ));
            let before = self
                .graph
                .neighbors_directed(index, petgraph::Direction::Incoming)
                .map(|p| longest.get(p.index()).copied().unwrap_or(0))
                .max()
                .unwrap_or(0);
            let here = before + weight;
            if let Some(slot) = longest.get_mut(index.index()) {
                *slot = here;
            }
            best = best.max(here);
        }
        best
    }
}
