//! Lowering a checked workflow to the IR, expanding at plan time what the file system
//! already knows: `for` over `files`/`dirs` unfolds into one subtree per entry,
//! recursive workflows unfold down to their `depth`, and a `for` over a model's answer
//! becomes an expansion point sized by its `max`, which the run grows with
//! [`Planner::instantiate`] when the list arrives.
//!
//! Node ids are deterministic whatever order the run finishes things in: a node's
//! segment is its callee's name, `#k` when it is the k-th call of that name in its
//! workflow's source (k ≥ 2), and `[label]` for the `for` element that made it.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::{Path, PathBuf};

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use petgraph::graph::{DiGraph, NodeIndex};

use super::fs::{self, ListError, Listing};
use super::ir::{
    fit_segment, safe_label, safe_segment, CallRecipe, EdgeKind, ExpansionSite, Node, NodeKind,
    Plan,
};
use super::node_map::NodeMap;
use super::value::{PlanValue, Val, UNMEASURED_FILE};
use super::PlanError;
use crate::check::budget::{
    bounded_text_tokens, most_elements_in, tokens_of_bytes, Bound, ASSUMED_TEXT, DEFAULT_SUMMARY,
    FENCE_TOKENS, RESULT_OVERHEAD, SCALAR_TOKENS,
};
use crate::check::cost::{self, Size};
use crate::check::graph::{binding_graph, walk_exprs};
use crate::check::modules::ModuleId;
use crate::check::scope::{skill_workflow, ItemKind, ItemRef};
use crate::check::shape::Shape;
use crate::check::Outcome;
use crate::syntax::ast::{
    self, BinOp, Block, Call, CompareOp, Expr, ExprKind, Item, Let, Value as SettingValue,
};

/// The most nodes one plan may have: a plan past it is refused, not truncated.
pub const MAX_NODES: usize = 2_000_000;

/// The deepest a plan may nest: a workflow calling a workflow calling ... this many
/// levels down. Planning recurses once per level, and a `depth 5000` (or a chain of
/// 4,000 workflows) ran the stack out; no tree this deep is one a model can oversee.
pub const MAX_DEPTH: usize = 256;

/// Where new nodes go.
#[derive(Clone, Debug)]
struct Ctx {
    module: ModuleId,
    parent: NodeIndex,
    depth: usize,
    multiplicity: u64,
    /// The label of the `for` element being planned, for the nodes its body calls.
    label: Option<String>,
    /// Nodes that new nodes must wait for (`after`).
    after: Vec<NodeIndex>,
    /// Conditions new nodes run under.
    guards: Vec<(PlanValue, bool)>,
    /// Inside an expansion point's template subtree.
    template: bool,
}

impl Ctx {
    /// Whether a condition new nodes run under reads what `node` answers: a limit on
    /// `node`'s list set here would decide the branch it stands in.
    fn guarded_by(&self, node: NodeIndex) -> bool {
        self.guards
            .iter()
            .any(|(cond, _)| cond.deps.contains(&node))
    }
}

/// Scopes of names, innermost last.
type Frames = Vec<HashMap<String, PlanValue>>;

/// A frame binding one name, as a `for` binds its variable.
fn frame(name: String, value: PlanValue) -> HashMap<String, PlanValue> {
    let mut frame = HashMap::with_capacity(1);
    frame.insert(name, value);
    frame
}

/// Lowers workflows of one checked program.
pub struct Planner<'o> {
    outcome: &'o Outcome,
    /// Paths in labels are shown relative to this directory.
    base: Option<PathBuf>,
    /// Workflows being planned, outermost first.
    activations: Vec<ItemRef>,
    /// For each call site (module, callee span start): its `#k` suffix, when k ≥ 2.
    suffixes: HashMap<(ModuleId, usize), usize>,
    suffixed_workflows: HashSet<ItemRef>,
}

impl<'o> Planner<'o> {
    pub fn new(outcome: &'o Outcome, base: Option<PathBuf>) -> Self {
        Planner {
            outcome,
            base,
            activations: Vec::new(),
            suffixes: HashMap::new(),
            suffixed_workflows: HashSet::new(),
        }
    }

    /// Plans `workflow` with its bound arguments.
    pub fn plan(
        &mut self,
        workflow: ItemRef,
        args: HashMap<String, PlanValue>,
        file: String,
    ) -> Result<Plan<'o>, PlanError> {
        let name = self.workflow(workflow)?.name.name.clone();
        let mut plan = Plan {
            workflow: name.clone(),
            file,
            graph: DiGraph::new(),
            root: NodeIndex::new(0),
            calls: NodeMap::default(),
            guards: HashMap::new(),
            returns: HashMap::new(),
            sites: HashMap::new(),
            list_limits: HashMap::new(),
        };
        let root_ctx = Ctx {
            module: workflow.module,
            parent: NodeIndex::new(0),
            depth: 0,
            multiplicity: 1,
            label: None,
            after: Vec::new(),
            guards: Vec::new(),
            template: false,
        };
        let root = add_node(&mut plan, None, &name, &name, NodeKind::Workflow, &root_ctx)?;
        plan.root = root;
        self.activate(&mut plan, workflow, root, args, Vec::new(), Vec::new())?;
        // The graph grew by doubling; a run holds it to the end, so give back the slack
        // now (up to half of it: 1.3 MB of a 10,000-call plan) before the run allocates.
        plan.graph.shrink_to_fit();
        plan.calls.shrink_to_fit();
        Ok(plan)
    }

    /// Grows expansion point `expansion` into one copy of its body per element of
    /// `elements` (the list `source` produced). Returns what each copy yields.
    ///
    /// `planned` holds the elements as plan values when the list is the copies of
    /// another `for`: each copy is then bound as what it is (a result, a list of them),
    /// entering prompts with the fields their templates read, not as JSON of all of it.
    pub fn instantiate(
        &mut self,
        plan: &mut Plan<'o>,
        expansion: NodeIndex,
        elements: &[serde_json::Value],
        planned: Option<&[PlanValue]>,
        source: NodeIndex,
    ) -> Result<Vec<PlanValue>, PlanError> {
        let Some(site) = plan.sites.get(&expansion).cloned() else {
            return Err(PlanError::internal("an expansion point without its site"));
        };
        // Calls inside re-entered workflows keep their place in the activation stack.
        let activations = std::mem::take(&mut self.activations);
        let mut values = Vec::with_capacity(elements.len());
        let labels = unique_labels(elements.iter().enumerate().map(|(i, e)| match e {
            serde_json::Value::String(s) if !s.trim().is_empty() => s.chars().take(32).collect(),
            serde_json::Value::Number(n) => n.to_string(),
            _ => i.to_string(),
        }));
        for (i, (element, label)) in elements.iter().zip(labels).enumerate() {
            let ctx = Ctx {
                module: site.module,
                parent: expansion,
                depth: site.depth + 1,
                multiplicity: 1,
                label: Some(label),
                after: site.after.clone(),
                guards: site.guards.clone(),
                template: false,
            };
            let mut frames = site.frames.clone();
            let bound = match planned.and_then(|planned| planned.get(i)) {
                Some(copy) => copy.clone(),
                None => PlanValue {
                    val: Val::Json {
                        value: element.clone(),
                        source,
                    },
                    deps: vec![source],
                },
            };
            frames.push(frame(site.for_expr.var.name.clone(), bound));
            let value = self.block(plan, &site.for_expr.body, &mut frames, &ctx);
            match value {
                Ok(value) => values.push(value),
                Err(error) => {
                    self.activations = activations;
                    return Err(error);
                }
            }
        }
        self.activations = activations;
        Ok(values)
    }

    fn workflow(&self, item: ItemRef) -> Result<&'o ast::Workflow, PlanError> {
        match self.item(item) {
            Item::Workflow(workflow) => Ok(workflow),
            _ => Err(PlanError::internal(
                "a call resolved to something other than a workflow",
            )),
        }
    }

    fn item(&self, item: ItemRef) -> &'o Item {
        let outcome: &'o Outcome = self.outcome;
        &outcome.program.module(item.module).ast.items[item.index]
    }

    /// Numbers the call sites of `workflow` that share a callee: the second `coder(...)`
    /// in the source is `coder#2` wherever and whenever it runs.
    fn number_call_sites(&mut self, item: ItemRef, workflow: &'o ast::Workflow) {
        if !self.suffixed_workflows.insert(item) {
            return;
        }
        // Calls by their callee, and `for`s by their variable (an expansion point is
        // `x[*]`): the second of a name in a body is `#2`, and so on, so that no two
        // nodes under one parent share an id and a manifest.
        let mut sites: Vec<(usize, String)> = Vec::new();
        walk_exprs(workflow, &mut |expr| match &expr.kind {
            ExprKind::Call(call) => sites.push((
                call.callee.span.start,
                match &call.method {
                    Some(method) => format!("{}.{}", call.callee.name, method.name),
                    None => call.callee.name.clone(),
                },
            )),
            ExprKind::For(f) => sites.push((f.var.span.start, format!("{}[*]", f.var.name))),
            _ => {}
        });
        sites.sort_by_key(|(start, _)| *start);
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (start, name) in sites {
            let k = seen.entry(name).or_insert(0);
            *k += 1;
            if *k >= 2 {
                self.suffixes.insert((item.module, start), *k);
            }
        }
    }

    /// Plans the body of one workflow activation whose node is `node`.
    fn activate(
        &mut self,
        plan: &mut Plan<'o>,
        item: ItemRef,
        node: NodeIndex,
        args: HashMap<String, PlanValue>,
        after: Vec<NodeIndex>,
        guards: Vec<(PlanValue, bool)>,
    ) -> Result<PlanValue, PlanError> {
        let workflow = self.workflow(item)?;
        self.number_call_sites(item, workflow);
        let activations = self.activations.iter().filter(|w| **w == item).count() + 1;
        if let Some(limit) = workflow.depth.first().and_then(|q| q.as_count()) {
            if activations as u64 > limit {
                return Err(PlanError::plan(
                    format!(
                        "workflow `{}` would recurse past its `depth {limit}` at `{}`",
                        workflow.name.name, plan.graph[node].id
                    ),
                    "raise `depth`, or plan a smaller part of the tree (a deeper directory as the root)",
                ));
            }
        }
        self.activations.push(item);
        let ctx = Ctx {
            module: item.module,
            parent: node,
            depth: plan.graph[node].depth,
            multiplicity: plan.graph[node].multiplicity,
            label: None,
            after,
            guards,
            template: plan.graph[node].template,
        };
        let mut frames: Frames = vec![args];
        let result = self
            .bind_lets(plan, &workflow.lets, &mut frames, &ctx)
            .and_then(|()| match workflow.returns_stmts.first() {
                Some(stmt) => {
                    let mut ctx = ctx.clone();
                    ctx.after.extend(after_nodes(&stmt.after, &frames));
                    self.expr(plan, &stmt.value, &mut frames, &ctx)
                }
                None => Ok(PlanValue::constant(Val::List(Vec::new()))),
            });
        self.activations.pop();
        let value = result?;
        plan.returns.insert(node, value.clone());
        Ok(value)
    }

    /// Plans `lets` in dependency order into the innermost frame.
    fn bind_lets(
        &mut self,
        plan: &mut Plan<'o>,
        lets: &'o [Let],
        frames: &mut Frames,
        ctx: &Ctx,
    ) -> Result<(), PlanError> {
        for index in dependency_order(lets) {
            let Some(binding) = lets.get(index) else {
                continue;
            };
            let mut ctx = ctx.clone();
            ctx.after.extend(after_nodes(&binding.after, frames));
            let value = self.expr(plan, &binding.value, frames, &ctx)?;
            if let Some(frame) = frames.last_mut() {
                frame.insert(binding.name.name.clone(), value);
            }
        }
        Ok(())
    }

    fn expr(
        &mut self,
        plan: &mut Plan<'o>,
        expr: &'o Expr,
        frames: &mut Frames,
        ctx: &Ctx,
    ) -> Result<PlanValue, PlanError> {
        Ok(match &expr.kind {
            ExprKind::Text(text) => PlanValue::constant(Val::Text(text.value.clone())),
            ExprKind::Quantity(q) => PlanValue::constant(match q.as_duration() {
                Some(d) => Val::Duration(d.as_secs_f64()),
                None => Val::Number(q.as_number()),
            }),
            ExprKind::Bool(b) => PlanValue::constant(Val::Bool(*b)),
            ExprKind::List(items) => {
                let mut values = Vec::with_capacity(items.len());
                for item in items {
                    values.push(self.expr(plan, item, frames, ctx)?);
                }
                let deps = PlanValue::merge_deps(&values);
                PlanValue {
                    val: Val::List(values),
                    deps,
                }
            }
            ExprKind::Ref(ident) => lookup(frames, &ident.name)
                .cloned()
                .ok_or_else(|| PlanError::internal("a name that does not resolve"))?,
            ExprKind::Field(base, field) => {
                let base = self.expr(plan, base, frames, ctx)?;
                let tokens = match (field.name.as_str(), &base.val) {
                    ("status", _) => SCALAR_TOKENS,
                    // A grown element: the field itself is known.
                    (name, Val::Json { value, .. }) => value
                        .get(name)
                        .map_or(SCALAR_TOKENS, crate::check::budget::answer_tokens),
                    ("output", _) => ASSUMED_TEXT,
                    _ => base.tokens(),
                };
                let deps = base.deps.clone();
                PlanValue {
                    val: Val::Field {
                        base: Box::new(base),
                        field: field.name.clone(),
                        tokens,
                    },
                    deps,
                }
            }
            ExprKind::Call(call) => self.call(plan, call, frames, ctx)?,
            ExprKind::Binary(op, left, right) => {
                let l = self.expr(plan, left, frames, ctx)?;
                let r = self.expr(plan, right, frames, ctx)?;
                binary(*op, l, r)
            }
            ExprKind::Not(inner) => {
                let value = self.expr(plan, inner, frames, ctx)?;
                match value.val {
                    Val::Bool(b) => PlanValue::constant(Val::Bool(!b)),
                    _ => PlanValue::derived(Val::Not(Box::new(value.clone())), &[&value]),
                }
            }
            ExprKind::For(f) => self.for_expr(plan, f, frames, ctx)?,
            ExprKind::If(i) => {
                let cond = self.expr(plan, &i.cond, frames, ctx)?;
                match cond.val {
                    Val::Bool(true) => self.block(plan, &i.then, frames, ctx)?,
                    Val::Bool(false) => self.block(plan, &i.otherwise, frames, ctx)?,
                    // Known only at run time: plan both branches, each guarded.
                    _ => {
                        let mut then_ctx = ctx.clone();
                        then_ctx.guards.push((cond.clone(), true));
                        let then = self.block(plan, &i.then, frames, &then_ctx)?;
                        let mut else_ctx = ctx.clone();
                        else_ctx.guards.push((cond.clone(), false));
                        let otherwise = self.block(plan, &i.otherwise, frames, &else_ctx)?;
                        PlanValue::derived(
                            Val::Choice {
                                cond: Box::new(cond.clone()),
                                then: Box::new(then.clone()),
                                otherwise: Box::new(otherwise.clone()),
                            },
                            &[&cond, &then, &otherwise],
                        )
                    }
                }
            }
        })
    }

    fn block(
        &mut self,
        plan: &mut Plan<'o>,
        block: &'o Block,
        frames: &mut Frames,
        ctx: &Ctx,
    ) -> Result<PlanValue, PlanError> {
        frames.push(HashMap::new());
        let result = self
            .bind_lets(plan, &block.lets, frames, ctx)
            .and_then(|()| self.expr(plan, &block.value, frames, ctx));
        frames.pop();
        result
    }

    fn for_expr(
        &mut self,
        plan: &mut Plan<'o>,
        f: &'o ast::For,
        frames: &mut Frames,
        ctx: &Ctx,
    ) -> Result<PlanValue, PlanError> {
        let list = self.expr(plan, &f.iter, frames, ctx)?;
        let max = f.max.as_ref().and_then(|q| q.as_count());
        if let Val::List(items) = list.val {
            if let Some(max) = max {
                if items.len() as u64 > max {
                    return Err(PlanError::plan(
                        format!(
                            "`for {} in ...` has {} elements, more than its `max {max}`, at `{}`",
                            f.var.name,
                            items.len(),
                            plan.graph[ctx.parent].id
                        ),
                        "raise the `max`, or split the work one level deeper",
                    ));
                }
            }
            let labels = unique_labels(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| self.label_of(item, i)),
            );
            let mut results = Vec::with_capacity(items.len());
            for (item, label) in items.into_iter().zip(labels) {
                let mut inner = ctx.clone();
                inner.label = Some(match &ctx.label {
                    Some(outer) => format!("{outer},{label}"),
                    None => label,
                });
                frames.push(frame(f.var.name.clone(), item));
                let value = self.block(plan, &f.body, frames, &inner);
                frames.pop();
                results.push(value?);
            }
            let deps = PlanValue::merge_deps(&results);
            return Ok(PlanValue {
                val: Val::List(results),
                deps,
            });
        }
        // A list whose length the plan bounds (the copies of another `for`, a list handed
        // to a parameter declared with a `max`, a model's list, which holds no more than
        // its budget has room for) needs no `max` of its own: the checker takes the same
        // bound, and warns (W007).
        let listed = plan_size(&list, &|node| self.answer_len(plan, node));
        let max = max.or(listed.len).or(listed.len_bound);
        // Known only at run time: an expansion point that grows up to `max`.
        let Some(max) = max else {
            return Err(PlanError::plan(
                format!(
                    "`for {} in ...` iterates a list only known at run time and has no `max`, at `{}`",
                    f.var.name, plan.graph[ctx.parent].id
                ),
                "bound it: `for x in ... max N { ... }`",
            ));
        };
        let segment = match self.suffixes.get(&(ctx.module, f.var.span.start)) {
            Some(k) => format!("{}#{k}[*]", f.var.name),
            None => format!("{}[*]", f.var.name),
        };
        let expansion = add_node(
            plan,
            Some(ctx.parent),
            &segment,
            &f.var.name,
            NodeKind::Expansion,
            ctx,
        )?;
        plan.graph[expansion].max = Some(max);
        if let Val::Node { node, .. } = &list.unbounded().val {
            if !ctx.guarded_by(*node) {
                plan.limit_list(*node, max);
            }
        }
        // A model's list holds no more than its budget has room for, whatever the `max`.
        let copies = listed
            .len
            .or(listed.len_bound)
            .map_or(max, |len| len.min(max));
        link(plan, expansion, list.deps.clone(), ctx);
        plan.sites.insert(
            expansion,
            ExpansionSite {
                for_expr: f,
                list: list.clone(),
                frames: frames.clone(),
                module: ctx.module,
                depth: ctx.depth + 1,
                guards: ctx.guards.clone(),
                after: ctx.after.clone(),
            },
        );
        // The template: the body planned once, counted `max` times, never run itself.
        let mut inner = ctx.clone();
        inner.parent = expansion;
        inner.depth = ctx.depth + 1;
        inner.multiplicity = ctx.multiplicity.saturating_mul(copies);
        inner.label = None;
        inner.template = true;
        let element = PlanValue {
            val: Val::Node {
                node: expansion,
                tokens: self.element_tokens(plan, &list),
            },
            deps: vec![expansion],
        };
        frames.push(frame(f.var.name.clone(), element));
        let body = self.block(plan, &f.body, frames, &inner);
        frames.pop();
        let body = body?;
        // Dependants wait for the expansion point (the run completes it when every copy
        // has finished) and, for the plan's critical path, for the template's nodes;
        // the run never waits on a template node itself.
        let mut deps = body.deps.clone();
        deps.push(expansion);
        Ok(PlanValue {
            val: Val::Expansion {
                node: expansion,
                copies,
                tokens: body.tokens().saturating_mul(copies),
                elem_len: plan_size(&body, &|node| self.answer_len(plan, node)).len,
            },
            deps,
        })
    }

    /// A readable label for the `index`th element of a `for`.
    fn label_of(&self, item: &PlanValue, index: usize) -> String {
        match &item.val {
            Val::Path(path) => {
                let shown = self
                    .base
                    .as_ref()
                    .and_then(|base| path.strip_prefix(base).ok())
                    .filter(|p| !p.as_os_str().is_empty())
                    .and_then(|p| p.file_name())
                    .or_else(|| path.file_name())
                    .map(|n| n.to_string_lossy().into_owned());
                shown.unwrap_or_else(|| index.to_string())
            }
            Val::Text(text) if !text.trim().is_empty() => text.chars().take(32).collect(),
            Val::Number(n) => n.to_string(),
            _ => index.to_string(),
        }
    }

    fn call(
        &mut self,
        plan: &mut Plan<'o>,
        call: &'o Call,
        frames: &mut Frames,
        ctx: &Ctx,
    ) -> Result<PlanValue, PlanError> {
        let binding = self
            .outcome
            .scopes
            .get(ctx.module.0)
            .and_then(|scope| scope.names.get(&call.callee.name))
            .copied();
        let Some(binding) = binding else {
            return self.builtin(plan, call, frames, ctx);
        };
        match binding.kind {
            ItemKind::Agent => self.agent_call(plan, binding.item, call, frames, ctx),
            ItemKind::Workflow | ItemKind::Skill => {
                let target = self.workflow_target(binding.item, binding.kind, call)?;
                self.workflow_call(plan, target, call, frames, ctx)
            }
            _ => Err(PlanError::internal(
                "a call of something that is not callable",
            )),
        }
    }

    fn workflow_target(
        &self,
        item: ItemRef,
        kind: ItemKind,
        call: &Call,
    ) -> Result<ItemRef, PlanError> {
        if kind == ItemKind::Workflow {
            return Ok(item);
        }
        skill_workflow(
            &self.outcome.program,
            &self.outcome.scopes,
            item,
            call.method.as_ref(),
        )
        .ok_or_else(|| PlanError::internal("a skill workflow that does not resolve"))
    }

    /// The arguments of a call, in parameter order, defaults filled in.
    fn named_args(
        &mut self,
        plan: &mut Plan<'o>,
        call: &'o Call,
        params: &'o [ast::Param],
        frames: &mut Frames,
        ctx: &Ctx,
    ) -> Result<Vec<(String, PlanValue)>, PlanError> {
        let mut given: HashMap<&str, PlanValue> = HashMap::new();
        for arg in &call.args {
            let value = self.expr(plan, &arg.value, frames, ctx)?;
            if let Some(name) = &arg.name {
                given.insert(&name.name, value);
            }
        }
        let mut values = Vec::with_capacity(params.len());
        for param in params {
            let value = match given.remove(param.name.name.as_str()) {
                Some(value) => value,
                None => match &param.default {
                    Some(default) => self.expr(plan, default, frames, ctx)?,
                    None => continue,
                },
            };
            // A text handed to a `path` parameter is a path.
            let value = match (&param.ty, value.val) {
                (ast::TypeExpr::Named(t), Val::Text(text)) if t.name == "path" => PlanValue {
                    val: Val::Path(text.into()),
                    deps: value.deps,
                },
                (_, val) => PlanValue {
                    val,
                    deps: value.deps,
                },
            };
            values.push((param.name.name.clone(), value));
        }
        Ok(values)
    }

    fn workflow_call(
        &mut self,
        plan: &mut Plan<'o>,
        target: ItemRef,
        call: &'o Call,
        frames: &mut Frames,
        ctx: &Ctx,
    ) -> Result<PlanValue, PlanError> {
        let workflow = self.workflow(target)?;
        let args = self.named_args(plan, call, &workflow.params, frames, ctx)?;
        let args = self.hold_to_list_max(plan, &workflow.name.name, &workflow.params, args, ctx)?;
        let segment = self.segment(call, &workflow.name.name, ctx);
        let node = add_node(
            plan,
            Some(ctx.parent),
            &segment,
            &workflow.name.name,
            NodeKind::Workflow,
            ctx,
        )?;
        self.activate(
            plan,
            target,
            node,
            args.into_iter().collect(),
            ctx.after.clone(),
            ctx.guards.clone(),
        )
    }

    /// Holds the lists handed to parameters declared `list<...> max N` to N: one the
    /// plan has measured is refused here, one only known at run time is wrapped so that
    /// the plan counts it at N and the run refuses it longer (a model is told N).
    fn hold_to_list_max(
        &self,
        plan: &mut Plan<'o>,
        workflow: &str,
        params: &[ast::Param],
        args: Vec<(String, PlanValue)>,
        ctx: &Ctx,
    ) -> Result<Vec<(String, PlanValue)>, PlanError> {
        let mut held = Vec::with_capacity(args.len());
        for (name, value) in args {
            let param = params.iter().find(|p| p.name.name == name);
            let declared = param.filter(|p| matches!(p.ty, ast::TypeExpr::List(..)));
            let Some((max, param)) = declared.and_then(|p| Some((p.max.as_ref()?.as_count()?, p)))
            else {
                held.push((name, value));
                continue;
            };
            match plan_size(&value, &|node| self.answer_len(plan, node)).len {
                Some(len) if len > max => {
                    return Err(PlanError::plan(
                        format!(
                            "workflow `{workflow}` is handed {len} elements for `{name}`, more than its `max {max}`, at `{}`",
                            plan.graph[ctx.parent].id
                        ),
                        "hand it fewer, or raise the parameter's `max`",
                    ));
                }
                Some(_) => held.push((name, value)),
                None => {
                    // Not where the branch depends on the list itself (the run refuses a
                    // longer list there).
                    if let Val::Node { node, .. } = &value.unbounded().val {
                        if !ctx.guarded_by(*node) {
                            plan.limit_list(*node, max);
                        }
                    }
                    let deps = value.deps.clone();
                    let val = Val::Bounded {
                        list: Box::new(value),
                        max,
                        element_max: param.ty.element_max(),
                    };
                    held.push((name, PlanValue { val, deps }));
                }
            }
        }
        Ok(held)
    }

    /// Whether node `node` answers with a record or a list, and the most elements its
    /// list answer can hold (the checker's bound).
    fn answer_len(&self, plan: &Plan<'o>, node: NodeIndex) -> (bool, bool, Option<u64>) {
        let info = match plan.calls.get(node).map(|recipe| &**recipe) {
            Some(CallRecipe::Agent { item, .. }) => self.outcome.agents.get(item),
            _ => None,
        };
        info.map_or((false, false, None), |info| {
            let structured = info.returns != crate::check::types::Type::Result;
            (structured, info.returns.is_list(), info.answer_len)
        })
    }

    /// The most tokens one element of `list`, a list only known at run time, enters a
    /// prompt with: the whole list's, or for an answer of `list<text max N>`, N and its
    /// fence.
    fn element_tokens(&self, plan: &Plan<'o>, list: &PlanValue) -> u64 {
        let whole = list.tokens();
        // The largest element of any of the lists it is made of, as the checker has it.
        let parts = match &list.val {
            Val::Concat(parts) => Some(parts.iter().collect::<Vec<_>>()),
            Val::Choice {
                then, otherwise, ..
            } => Some(vec![&**then, &**otherwise]),
            _ => None,
        };
        if let Some(parts) = parts {
            return (parts.into_iter())
                .map(|part| match &part.val {
                    Val::List(items) => items.iter().map(PlanValue::tokens).max().unwrap_or(0),
                    _ => self.element_tokens(plan, part),
                })
                .max()
                .unwrap_or(0)
                .min(whole);
        }
        match &list.val {
            Val::Bounded { list, .. } => return self.element_tokens(plan, list),
            // Every copy yields the body's value, as the checker counts it; a grown
            // copy's fields are measured as they are (`Val::Json`).
            Val::Expansion { copies, tokens, .. } => return tokens.div_ceil((*copies).max(1)),
            _ => {}
        }
        // A model's list, or a list field of a model's record.
        let (node, field) = match &list.val {
            Val::Node { node, .. } => (*node, None),
            Val::Field { base, field, .. } => match &base.val {
                Val::Node { node, .. } => (*node, Some(field.as_str())),
                _ => return whole,
            },
            _ => return whole,
        };
        let Some(CallRecipe::Agent { item, .. }) = plan.calls.get(node).map(|recipe| &**recipe)
        else {
            return whole;
        };
        let Some(info) = self.outcome.agents.get(item) else {
            return whole;
        };
        let shape = match (field, &info.shape) {
            (None, shape) => Some(shape),
            (Some(name), Shape::Record(fields)) => fields
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, shape)| shape),
            _ => None,
        };
        match shape {
            Some(Shape::List {
                text_max: Some(max),
                ..
            }) => bounded_text_tokens(*max, whole),
            _ => whole,
        }
    }

    fn agent_call(
        &mut self,
        plan: &mut Plan<'o>,
        item: ItemRef,
        call: &'o Call,
        frames: &mut Frames,
        ctx: &Ctx,
    ) -> Result<PlanValue, PlanError> {
        let Item::Agent(agent) = self.item(item) else {
            return Err(PlanError::internal(
                "an agent call resolved to something else",
            ));
        };
        let args = self.named_args(plan, call, &agent.params, frames, ctx)?;
        let info = self.outcome.agents.get(&item);
        let input = info.map_or(0, |info| {
            let size_of = |name: &str| {
                args.iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, value)| plan_size(value, &|node| self.answer_len(plan, node)))
            };
            // A structured answer's JSON Schema follows the prompt (`check::shape`).
            (cost::price(&info.cost, &size_of).chain.total()).saturating_add(info.schema_tokens)
        });
        let summary = info.and_then(|i| i.summary).unwrap_or(DEFAULT_SUMMARY);
        // A `result` enters the next prompt fenced, with its status, and so does a
        // structured answer that failed.
        let handed_on = summary.saturating_add(RESULT_OVERHEAD);
        let segment = self.segment(call, &agent.name.name, ctx);
        let node = add_node(
            plan,
            Some(ctx.parent),
            &segment,
            &agent.name.name,
            NodeKind::Agent,
            ctx,
        )?;
        // The checker proved the budget from bounds and assumed sizes; here the files
        // `read(...)` hands on are measured, and one larger than assumed can pass it.
        if let Some(context) = info.and_then(|i| i.context).filter(|&c| input > c) {
            return Err(PlanError::plan(
                format!(
                    "agent `{}` at `{}` would be handed {} tokens, more than its `context {}`",
                    agent.name.name,
                    plan.graph[node].id,
                    crate::diagnostics::thousands(input),
                    crate::diagnostics::thousands(context)
                ),
                "what it reads is measured now and is larger than assumed: hand it a smaller file or a part of it, or raise its `context`",
            ));
        }
        {
            let n = &mut plan.graph[node];
            n.input_tokens = input;
            n.context = info.and_then(|i| i.context);
            n.output_tokens = summary;
            n.structured = info.is_some_and(|i| i.shape != Shape::Result);
            n.model = match agent.setting("model").map(|s| &s.value) {
                Some(SettingValue::Text(model)) => Some(model.value.clone()),
                _ => None,
            };
        }
        link(
            plan,
            node,
            PlanValue::merge_deps(args.iter().map(|(_, v)| v)),
            ctx,
        );
        plan.calls
            .insert(node, Box::new(CallRecipe::Agent { item, args }));
        Ok(PlanValue::produced(node, handed_on))
    }

    fn builtin(
        &mut self,
        plan: &mut Plan<'o>,
        call: &'o Call,
        frames: &mut Frames,
        ctx: &Ctx,
    ) -> Result<PlanValue, PlanError> {
        let mut args = Vec::with_capacity(call.args.len());
        for arg in &call.args {
            args.push(self.expr(plan, &arg.value, frames, ctx)?);
        }
        let deps = PlanValue::merge_deps(&args);
        let name = call.callee.name.as_str();
        match name {
            "files" | "dirs" => {
                let dir = args
                    .first()
                    .filter(|a| a.is_known())
                    .and_then(PlanValue::as_path);
                let glob = args.get(1).and_then(PlanValue::as_text);
                let Some(dir) = dir else {
                    return Err(PlanError::plan(
                        format!(
                            "`{name}(...)` at `{}` lists a directory only known at run time",
                            plan.graph[ctx.parent].id
                        ),
                        "list directories given as arguments or found by other listings",
                    ));
                };
                let listing = if name == "files" {
                    Listing::Files
                } else {
                    Listing::Dirs
                };
                let entries = fs::list(&dir, listing, glob.as_deref()).map_err(|error| {
                    let at = &plan.graph[ctx.parent].id;
                    match error {
                        ListError::NotADirectory(path) => PlanError::plan(
                            format!("`{name}({})` at `{at}`: not a directory", path.display()),
                            "pass a directory that exists",
                        ),
                        ListError::BadGlob(glob, reason) => PlanError::plan(
                            format!("`{glob}` at `{at}` is not a valid glob: {reason}"),
                            "use a glob such as `*.rs` or `*.{md,txt}` (it matches names in the one directory listed)",
                        ),
                        ListError::Io(path, reason) => PlanError::plan(
                            format!("cannot list `{}` at `{at}`: {reason}", path.display()),
                            "check the directory's permissions",
                        ),
                    }
                })?;
                let values = entries
                    .into_iter()
                    .map(|path| PlanValue {
                        val: Val::Path(path),
                        deps: deps.clone(),
                    })
                    .collect();
                Ok(PlanValue {
                    val: Val::List(values),
                    deps,
                })
            }
            "read" => {
                let path = args
                    .first()
                    .and_then(PlanValue::as_path)
                    .unwrap_or_default();
                let tokens = std::fs::metadata(&path)
                    .map_or(UNMEASURED_FILE, |meta| tokens_of_bytes(meta.len() as usize))
                    .saturating_add(FENCE_TOKENS);
                Ok(PlanValue {
                    val: Val::File { path, tokens },
                    deps,
                })
            }
            "len" => Ok(match args.first().map(|a| &a.val) {
                Some(Val::List(items)) if args.first().is_some_and(PlanValue::is_known) => {
                    PlanValue {
                        val: Val::Number(items.len() as f64),
                        deps,
                    }
                }
                Some(Val::Text(text)) => PlanValue {
                    val: Val::Number(text.chars().count() as f64),
                    deps,
                },
                _ => match args.into_iter().next() {
                    Some(arg) => PlanValue {
                        val: Val::Len(Box::new(arg)),
                        deps,
                    },
                    None => PlanValue::constant(Val::Number(0.0)),
                },
            }),
            "exec" => {
                let argv = args
                    .into_iter()
                    .next()
                    .unwrap_or_else(|| PlanValue::constant(Val::List(Vec::new())));
                let program = match &argv.val {
                    Val::List(items) => items.first().and_then(PlanValue::as_text),
                    _ => None,
                };
                // Made safe: a program such as `sub/..` has no file name, and its whole
                // text was the segment, a directory outside the node's own.
                let label = program.map(|p| {
                    let name = Path::new(&p)
                        .file_name()
                        .map_or(p.clone(), |n| n.to_string_lossy().into_owned());
                    safe_label(&name)
                });
                let segment =
                    self.segment(call, &format!("exec-{}", label.unwrap_or_default()), ctx);
                let node = add_node(
                    plan,
                    Some(ctx.parent),
                    &segment,
                    "exec",
                    NodeKind::Exec,
                    ctx,
                )?;
                plan.graph[node].output_tokens = DEFAULT_SUMMARY;
                link(plan, node, deps, ctx);
                let dir = self.outcome.program.module(ctx.module).dir.clone();
                plan.calls
                    .insert(node, Box::new(CallRecipe::Exec { argv, dir }));
                Ok(PlanValue::produced(
                    node,
                    DEFAULT_SUMMARY.saturating_add(RESULT_OVERHEAD),
                ))
            }
            _ => Err(PlanError::internal("a call of an unknown builtin")),
        }
    }

    /// `name`, `name#k` for the k-th call site of `name` in its workflow, then
    /// `[label]` for the `for` element being planned.
    fn segment(&self, call: &Call, name: &str, ctx: &Ctx) -> String {
        let mut segment = name.to_string();
        if let Some(k) = self.suffixes.get(&(ctx.module, call.callee.span.start)) {
            segment.push_str(&format!("#{k}"));
        }
        if let Some(label) = &ctx.label {
            segment.push_str(&format!("[{}]", safe_segment(label)));
        }
        fit_segment(segment)
    }
}

/// Adds a node under `parent` with the context's depth, copies, guards and template flag.
fn add_node(
    plan: &mut Plan<'_>,
    parent: Option<NodeIndex>,
    segment: &str,
    name: &str,
    kind: NodeKind,
    ctx: &Ctx,
) -> Result<NodeIndex, PlanError> {
    if plan.graph.node_count() >= MAX_NODES {
        return Err(PlanError::plan(
            format!("the plan has more than {MAX_NODES} nodes"),
            "lower the `max` of the widest fan-outs, or plan a smaller part of the tree",
        ));
    }
    let (id, depth) = match parent {
        Some(parent) => (
            format!("{}/{segment}", plan.graph[parent].id),
            ctx.depth + 1,
        ),
        None => (segment.to_string(), 0),
    };
    if depth > MAX_DEPTH {
        return Err(PlanError::plan(
            format!("the plan nests more than {MAX_DEPTH} levels deep, at `{id}`"),
            "lower the workflow's `depth`, or call fewer workflows one inside another",
        ));
    }
    let index = plan.graph.add_node(Node {
        id,
        name: name.to_string(),
        kind,
        depth,
        parent,
        children: Vec::new(),
        multiplicity: ctx.multiplicity,
        input_tokens: 0,
        context: None,
        output_tokens: 0,
        model: None,
        max: None,
        template: ctx.template,
        structured: false,
    });
    if let Some(parent) = parent {
        plan.graph[parent].children.push(index);
    }
    if !ctx.guards.is_empty() {
        plan.guards.insert(index, ctx.guards.clone());
    }
    Ok(index)
}

/// Makes `node` wait for the producers of its inputs, its guards, and the `after` of `ctx`.
fn link(plan: &mut Plan<'_>, node: NodeIndex, inputs: Vec<NodeIndex>, ctx: &Ctx) {
    let guard_deps = ctx
        .guards
        .iter()
        .flat_map(|(cond, _)| cond.deps.iter().copied());
    for input in inputs.into_iter().chain(guard_deps) {
        if input != node {
            plan.graph.update_edge(input, node, EdgeKind::Data);
        }
    }
    for &before in &ctx.after {
        if before != node && plan.graph.find_edge(before, node).is_none() {
            plan.graph.add_edge(before, node, EdgeKind::After);
        }
    }
}

fn after_nodes(names: &[ast::Ident], frames: &Frames) -> Vec<NodeIndex> {
    names
        .iter()
        .filter_map(|name| lookup(frames, &name.name))
        .flat_map(|value| value.deps.clone())
        .collect()
}

fn lookup<'f>(frames: &'f Frames, name: &str) -> Option<&'f PlanValue> {
    frames.iter().rev().find_map(|frame| frame.get(name))
}

/// Labels made safe ([`safe_label`]) and then unique: the second `a` is `a#2`, the
/// next free number after it. Unique after they are made safe, so `a/b` and `a_b`, or
/// `x#2` after two `x`, still name two nodes.
/// Of the node it is given: whether it answers with a record or a list, whether with a
/// list, and the most elements its list answer can hold, when known.
type Answers<'a> = dyn Fn(NodeIndex) -> (bool, bool, Option<u64>) + 'a;

/// The worst case of a plan value as a template sees it: measured where the plan
/// knows the value, bounded by budgets and `max` where the run makes it.
fn plan_size(value: &PlanValue, answers: &Answers<'_>) -> Size {
    let tokens = value.tokens();
    let mut size = Size {
        whole: Bound::of(tokens),
        elem: Bound::of(tokens),
        ..Size::default()
    };
    size.list = matches!(
        value.val,
        Val::List(_) | Val::Concat(_) | Val::Expansion { .. }
    );
    match &value.val {
        Val::List(items) => {
            // Each item is sized once: sizing it again per field took 3^depth.
            let sizes: Vec<Size> = items.iter().map(|item| plan_size(item, answers)).collect();
            size.len = Some(items.len() as u64);
            // The sum of its items' bounds: its terms count its leaves, at every depth.
            size.whole =
                (sizes.iter()).fold(Bound::default(), |sum, item| sum.plus(item.whole.clone()));
            size.elem = Bound::of(sizes.iter().map(|s| s.whole.total()).max().unwrap_or(0));
            size.elem_len = sizes
                .iter()
                .try_fold(0u64, |longest, item| Some(longest.max(item.len?)));
            size.results = sizes.iter().map(|s| s.results).sum();
            size.answer = sizes.iter().any(|s| s.answer);
        }
        Val::Concat(parts) => {
            let sizes: Vec<Size> = parts.iter().map(|part| plan_size(part, answers)).collect();
            size.len = sizes
                .iter()
                .try_fold(0u64, |sum, part| Some(sum.saturating_add(part.len?)));
            size.len_bound = sizes.iter().try_fold(0u64, |sum, part| {
                Some(sum.saturating_add(part.len.or(part.len_bound)?))
            });
            size.elem = Bound::of(sizes.iter().map(|s| s.elem.total()).max().unwrap_or(0));
            size.elem_len = sizes
                .iter()
                .try_fold(0u64, |longest, part| Some(longest.max(part.elem_len?)));
            size.results = sizes.iter().map(|s| s.results).sum();
            size.answer = sizes.iter().any(|s| s.answer);
        }
        Val::Choice {
            then, otherwise, ..
        } => {
            let (a, b) = (plan_size(then, answers), plan_size(otherwise, answers));
            size.len = a.len.zip(b.len).map(|(x, y)| x.max(y));
            size.len_bound = (a.len.or(a.len_bound))
                .zip(b.len.or(b.len_bound))
                .map(|(x, y)| x.max(y));
            size.elem = Bound::of(a.elem.total().max(b.elem.total()));
            size.elem_len = a.elem_len.zip(b.elem_len).map(|(x, y)| x.max(y));
            size.results = a.results.max(b.results);
            size.answer = a.answer || b.answer;
        }
        Val::Expansion {
            copies,
            tokens,
            elem_len,
            ..
        } => {
            size.len = Some(*copies);
            size.len_bound = size.len;
            size.elem_len = *elem_len;
            // Its size is `copies` copies of the body's.
            size.elem = Bound::of(tokens.div_ceil((*copies).max(1)));
            size.results = *copies;
            size.answer = true;
        }
        Val::Node { node, .. } => {
            let (structured, list, len) = answers(*node);
            size.results = 1;
            size.answer = structured;
            size.list = list;
            size.len_bound = len.or(Some(most_elements_in(tokens)));
        }
        Val::Bounded {
            list,
            max,
            element_max,
        } => {
            let inner = plan_size(list, answers);
            let len = inner.len.map_or(*max, |len| len.min(*max));
            let elem = element_max.map_or(inner.elem.total(), |m| m.min(inner.elem.total()));
            // At most `len` elements of the largest the list holds.
            let whole = inner.whole.total().min(elem.saturating_mul(len));
            return Size {
                len: Some(len),
                len_bound: Some(len),
                whole: Bound::of(whole),
                elem: Bound::of(elem),
                ..inner
            };
        }
        Val::Field { .. } | Val::Json { .. } => {
            size.results = 1;
            size.answer = true;
            size.len_bound = Some(most_elements_in(tokens));
        }
        _ => {}
    }
    size
}

fn unique_labels(labels: impl Iterator<Item = String>) -> Vec<String> {
    let labels: Vec<String> = labels.map(|label| safe_label(&label)).collect();
    let mut taken: HashSet<String> = HashSet::with_capacity(labels.len());
    let mut next: HashMap<String, usize> = HashMap::new();
    labels
        .into_iter()
        .map(|label| {
            if taken.insert(label.clone()) {
                return label;
            }
            let n = next.entry(label.clone()).or_insert(2);
            loop {
                let candidate = format!("{label}#{n}");
                *n += 1;
                if taken.insert(candidate.clone()) {
                    return candidate;
                }
            }
        })
        .collect()
}

fn binary(op: BinOp, l: PlanValue, r: PlanValue) -> PlanValue {
    match (op, &l.val, &r.val) {
        (BinOp::Add, Val::List(a), Val::List(b)) => {
            let deps = PlanValue::merge_deps([&l, &r]);
            let mut items = a.clone();
            items.extend(b.iter().cloned());
            PlanValue {
                val: Val::List(items),
                deps,
            }
        }
        (BinOp::Add, _, _) => {
            PlanValue::derived(Val::Concat(vec![l.clone(), r.clone()]), &[&l, &r])
        }
        (BinOp::And, Val::Bool(a), Val::Bool(b)) => PlanValue::constant(Val::Bool(*a && *b)),
        (BinOp::Or, Val::Bool(a), Val::Bool(b)) => PlanValue::constant(Val::Bool(*a || *b)),
        (BinOp::And | BinOp::Or, _, _) => PlanValue::derived(
            Val::Logic {
                and: op == BinOp::And,
                left: Box::new(l.clone()),
                right: Box::new(r.clone()),
            },
            &[&l, &r],
        ),
        (BinOp::Compare(cmp), a, b) => match compare(cmp, a, b) {
            Some(result) => PlanValue::constant(Val::Bool(result)),
            None => PlanValue::derived(
                Val::Compare {
                    op: cmp,
                    left: Box::new(l.clone()),
                    right: Box::new(r.clone()),
                },
                &[&l, &r],
            ),
        },
    }
}

/// Compares two values known at plan time.
pub fn compare(op: CompareOp, a: &Val, b: &Val) -> Option<bool> {
    let ordering = match (a, b) {
        (Val::Number(a), Val::Number(b)) | (Val::Duration(a), Val::Duration(b)) => {
            a.partial_cmp(b)?
        }
        (Val::Text(a), Val::Text(b)) => a.cmp(b),
        (Val::Path(a), Val::Path(b)) => a.cmp(b),
        (Val::Bool(a), Val::Bool(b)) => a.cmp(b),
        _ => return None,
    };
    Some(ordering_matches(op, ordering))
}

/// Whether `ordering` satisfies `op`.
pub fn ordering_matches(op: CompareOp, ordering: std::cmp::Ordering) -> bool {
    match op {
        CompareOp::Eq => ordering.is_eq(),
        CompareOp::Ne => ordering.is_ne(),
        CompareOp::Lt => ordering.is_lt(),
        CompareOp::Le => ordering.is_le(),
        CompareOp::Gt => ordering.is_gt(),
        CompareOp::Ge => ordering.is_ge(),
    }
}

/// The order to plan `lets` in: what a binding references first (a checked file has no
/// cycles), otherwise source order.
fn dependency_order(lets: &[Let]) -> Vec<usize> {
    let mut graph = binding_graph(lets);
    for i in 0..lets.len() {
        graph.remove_edge(i, i);
    }
    // Kahn's algorithm, always taking the earliest ready binding, so plans keep the
    // source order wherever the data allows.
    let mut waiting: Vec<usize> = (0..lets.len())
        .map(|i| graph.neighbors(i).count())
        .collect();
    let mut ready: BinaryHeap<Reverse<usize>> = waiting
        .iter()
        .enumerate()
        .filter(|(_, n)| **n == 0)
        .map(|(i, _)| Reverse(i))
        .collect();
    let mut order = Vec::with_capacity(lets.len());
    while let Some(Reverse(next)) = ready.pop() {
        order.push(next);
        for dependant in graph.neighbors_directed(next, petgraph::Direction::Incoming) {
            if let Some(count) = waiting.get_mut(dependant) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    ready.push(Reverse(dependant));
                }
            }
        }
    }
    // A cycle (only in a file that did not check) leaves the rest in source order.
    if order.len() < lets.len() {
        let placed: HashSet<usize> = order.iter().copied().collect();
        order.extend((0..lets.len()).filter(|i| !placed.contains(i)));
    }
    order
}
