//! Lowering a checked workflow to the IR, expanding at plan time what the file system
//! already knows: `for` over `files`/`dirs` unfolds into one subtree per entry,
//! recursive workflows unfold down to their `depth`, and a `for` over a model's answer
//! becomes an expansion point sized by its `max`.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::graphmap::DiGraphMap;

use super::fs::{self, ListError, Listing};
use super::ir::{safe_segment, EdgeKind, Node, NodeKind, Plan};
use super::value::{PlanValue, Val};
use super::PlanError;
use crate::check::budget::{tokens_of_bytes, ASSUMED_TEXT, DEFAULT_SUMMARY, SCALAR_TOKENS};
use crate::check::graph::walk;
use crate::check::modules::ModuleId;
use crate::check::scope::{ItemKind, ItemRef};
use crate::check::Outcome;
use crate::syntax::ast::{
    self, BinOp, Block, Call, CompareOp, Expr, ExprKind, Item, Let, Value as SettingValue,
};

/// The most nodes one plan may have: a plan past it is refused, not truncated.
pub const MAX_NODES: usize = 2_000_000;

/// Where new nodes go.
#[derive(Clone)]
struct Ctx {
    module: ModuleId,
    parent: NodeIndex,
    depth: usize,
    multiplicity: u64,
    /// The label of the `for` element being planned, for the nodes its body calls.
    label: Option<String>,
    /// Nodes that new nodes must wait for (`after`).
    after: Vec<NodeIndex>,
}

/// One scope of names: a workflow's parameters and bindings, or a block's.
struct Frame {
    values: HashMap<String, PlanValue>,
}

pub(super) struct Planner<'o> {
    outcome: &'o Outcome,
    graph: DiGraph<Node, EdgeKind>,
    /// Workflows being planned, outermost first, with the node of each activation.
    activations: Vec<(ItemRef, NodeIndex)>,
    segments: HashMap<NodeIndex, HashSet<String>>,
    /// Paths in labels are shown relative to this directory.
    base: Option<std::path::PathBuf>,
}

impl<'o> Planner<'o> {
    pub fn new(outcome: &'o Outcome, base: Option<std::path::PathBuf>) -> Self {
        Planner {
            outcome,
            graph: DiGraph::new(),
            activations: Vec::new(),
            segments: HashMap::new(),
            base,
        }
    }

    /// Plans `workflow` with its bound arguments.
    pub fn plan(
        mut self,
        workflow: ItemRef,
        args: HashMap<String, PlanValue>,
        file: String,
    ) -> Result<Plan, PlanError> {
        let name = self.workflow(workflow)?.name.name.clone();
        let root = self.add_node(None, &name, &name, NodeKind::Workflow, 0, 1)?;
        self.activate(workflow, root, args, Vec::new())?;
        Ok(Plan {
            workflow: name,
            file,
            graph: self.graph,
            root,
        })
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

    /// Plans the body of one workflow activation whose node is `node`.
    fn activate(
        &mut self,
        item: ItemRef,
        node: NodeIndex,
        args: HashMap<String, PlanValue>,
        after: Vec<NodeIndex>,
    ) -> Result<PlanValue, PlanError> {
        let workflow = self.workflow(item)?;
        let activations = self.activations.iter().filter(|(w, _)| *w == item).count() + 1;
        if let Some(limit) = workflow.depth.first().and_then(|q| q.as_count()) {
            if activations as u64 > limit {
                return Err(PlanError::plan(
                    format!(
                        "workflow `{}` would recurse past its `depth {limit}` at `{}`",
                        workflow.name.name, self.graph[node].id
                    ),
                    "raise `depth`, or plan a smaller part of the tree (a deeper directory as the root)",
                ));
            }
        }
        self.activations.push((item, node));
        let depth = self.graph[node].depth;
        let ctx = Ctx {
            module: item.module,
            parent: node,
            depth,
            multiplicity: self.graph[node].multiplicity,
            label: None,
            after,
        };
        let mut frames = vec![Frame { values: args }];
        self.bind_lets(&workflow.lets, &mut frames, &ctx)?;
        let value = match workflow.returns_stmts.first() {
            Some(stmt) => {
                let mut ctx = ctx.clone();
                ctx.after.extend(self.after_nodes(&stmt.after, &frames));
                self.expr(&stmt.value, &mut frames, &ctx)?
            }
            None => PlanValue::constant(Val::Unknown {
                tokens: 0,
                list: false,
            }),
        };
        self.activations.pop();
        Ok(value)
    }

    /// Plans `lets` in dependency order into the innermost frame.
    fn bind_lets(
        &mut self,
        lets: &'o [Let],
        frames: &mut Vec<Frame>,
        ctx: &Ctx,
    ) -> Result<(), PlanError> {
        for index in dependency_order(lets) {
            let Some(binding) = lets.get(index) else {
                continue;
            };
            let mut ctx = ctx.clone();
            ctx.after.extend(self.after_nodes(&binding.after, frames));
            let value = self.expr(&binding.value, frames, &ctx)?;
            if let Some(frame) = frames.last_mut() {
                frame.values.insert(binding.name.name.clone(), value);
            }
        }
        Ok(())
    }

    fn after_nodes(&self, names: &[ast::Ident], frames: &[Frame]) -> Vec<NodeIndex> {
        names
            .iter()
            .filter_map(|name| lookup(frames, &name.name))
            .flat_map(|value| value.deps.clone())
            .collect()
    }

    fn expr(
        &mut self,
        expr: &'o Expr,
        frames: &mut Vec<Frame>,
        ctx: &Ctx,
    ) -> Result<PlanValue, PlanError> {
        Ok(match &expr.kind {
            ExprKind::Text(text) => PlanValue::constant(Val::Text(text.value.clone())),
            ExprKind::Quantity(q) => PlanValue::constant(match q.as_duration() {
                Some(d) => Val::Duration(d.as_secs_f64()),
                None => Val::Number(q.amount),
            }),
            ExprKind::Bool(b) => PlanValue::constant(Val::Bool(*b)),
            ExprKind::List(items) => {
                let mut values = Vec::with_capacity(items.len());
                for item in items {
                    values.push(self.expr(item, frames, ctx)?);
                }
                let deps = PlanValue::merge_deps(&values);
                PlanValue {
                    val: Val::List(values),
                    deps,
                }
            }
            ExprKind::Ref(ident) => lookup(frames, &ident.name).cloned().unwrap_or_else(|| {
                PlanValue::constant(Val::Unknown {
                    tokens: 0,
                    list: false,
                })
            }),
            ExprKind::Field(base, field) => {
                let base = self.expr(base, frames, ctx)?;
                let tokens = match field.name.as_str() {
                    "status" => SCALAR_TOKENS,
                    "output" => ASSUMED_TEXT,
                    _ => base.tokens(),
                };
                let list = matches!(field.name.as_str(), "outputs" | "children");
                PlanValue {
                    val: Val::Unknown { tokens, list },
                    deps: base.deps,
                }
            }
            ExprKind::Call(call) => self.call(call, frames, ctx)?,
            ExprKind::Binary(op, left, right) => {
                let l = self.expr(left, frames, ctx)?;
                let r = self.expr(right, frames, ctx)?;
                binary(*op, l, r)
            }
            ExprKind::Not(inner) => {
                let value = self.expr(inner, frames, ctx)?;
                let val = match value.val {
                    Val::Bool(b) => Val::Bool(!b),
                    _ => Val::Unknown {
                        tokens: SCALAR_TOKENS,
                        list: false,
                    },
                };
                PlanValue {
                    val,
                    deps: value.deps,
                }
            }
            ExprKind::For(f) => self.for_expr(f, frames, ctx)?,
            ExprKind::If(i) => {
                let cond = self.expr(&i.cond, frames, ctx)?;
                match cond.val {
                    Val::Bool(true) => self.block(&i.then, frames, ctx)?,
                    Val::Bool(false) => self.block(&i.otherwise, frames, ctx)?,
                    // Unknown until the run: plan both branches, the worst case.
                    _ => {
                        let then = self.block(&i.then, frames, ctx)?;
                        let otherwise = self.block(&i.otherwise, frames, ctx)?;
                        let tokens = then.tokens().max(otherwise.tokens());
                        let deps = PlanValue::merge_deps([&cond, &then, &otherwise]);
                        PlanValue {
                            val: Val::Unknown {
                                tokens,
                                list: false,
                            },
                            deps,
                        }
                    }
                }
            }
        })
    }

    fn block(
        &mut self,
        block: &'o Block,
        frames: &mut Vec<Frame>,
        ctx: &Ctx,
    ) -> Result<PlanValue, PlanError> {
        frames.push(Frame {
            values: HashMap::new(),
        });
        let result = self
            .bind_lets(&block.lets, frames, ctx)
            .and_then(|()| self.expr(&block.value, frames, ctx));
        frames.pop();
        result
    }

    fn for_expr(
        &mut self,
        f: &'o ast::For,
        frames: &mut Vec<Frame>,
        ctx: &Ctx,
    ) -> Result<PlanValue, PlanError> {
        let list = self.expr(&f.iter, frames, ctx)?;
        let max = f.max.as_ref().and_then(|q| q.as_count());
        match list.val {
            Val::List(items) => {
                if let Some(max) = max {
                    if items.len() as u64 > max {
                        return Err(PlanError::plan(
                            format!(
                                "`for {} in ...` has {} elements, more than its `max {max}`, at `{}`",
                                f.var.name,
                                items.len(),
                                self.graph[ctx.parent].id
                            ),
                            "raise the `max`, or split the work one level deeper",
                        ));
                    }
                }
                let mut results = Vec::with_capacity(items.len());
                for (index, item) in items.into_iter().enumerate() {
                    let mut inner = ctx.clone();
                    let label = self.label_of(&item, index);
                    inner.label = Some(match &ctx.label {
                        Some(outer) => format!("{outer},{label}"),
                        None => label,
                    });
                    frames.push(Frame {
                        values: HashMap::from([(f.var.name.clone(), item)]),
                    });
                    let value = self.block(&f.body, frames, &inner);
                    frames.pop();
                    results.push(value?);
                }
                let deps = PlanValue::merge_deps(&results);
                Ok(PlanValue {
                    val: Val::List(results),
                    deps,
                })
            }
            _ => {
                // Known only at run time: an expansion point that grows up to `max`.
                let Some(max) = max else {
                    return Err(PlanError::plan(
                        format!(
                            "`for {} in ...` iterates a list only known at run time and has no `max`, at `{}`",
                            f.var.name, self.graph[ctx.parent].id
                        ),
                        "bound it: `for x in ... max N { ... }`",
                    ));
                };
                let segment = format!("{}[*]", f.var.name);
                let expansion = self.add_node(
                    Some(ctx.parent),
                    &segment,
                    &f.var.name,
                    NodeKind::Expansion,
                    ctx.depth + 1,
                    ctx.multiplicity,
                )?;
                self.graph[expansion].max = Some(max);
                self.link(expansion, list.deps.clone(), ctx);
                let element_tokens = list.tokens();
                let mut inner = ctx.clone();
                inner.parent = expansion;
                inner.depth = ctx.depth + 1;
                inner.multiplicity = ctx.multiplicity.saturating_mul(max);
                inner.label = None;
                frames.push(Frame {
                    values: HashMap::from([(
                        f.var.name.clone(),
                        PlanValue::produced(expansion, element_tokens, false),
                    )]),
                });
                let body = self.block(&f.body, frames, &inner);
                frames.pop();
                let body = body?;
                Ok(PlanValue {
                    val: Val::Unknown {
                        tokens: body.tokens().saturating_mul(max),
                        list: true,
                    },
                    deps: body.deps,
                })
            }
        }
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
            Val::Text(text) if !text.is_empty() => text.chars().take(32).collect(),
            Val::Number(n) => n.to_string(),
            _ => index.to_string(),
        }
    }

    fn call(
        &mut self,
        call: &'o Call,
        frames: &mut Vec<Frame>,
        ctx: &Ctx,
    ) -> Result<PlanValue, PlanError> {
        let binding = self
            .outcome
            .scopes
            .get(ctx.module.0)
            .and_then(|scope| scope.names.get(&call.callee.name))
            .copied();
        let Some(binding) = binding else {
            return self.builtin(call, frames, ctx);
        };
        match binding.kind {
            ItemKind::Agent => self.agent_call(binding.item, call, frames, ctx),
            ItemKind::Workflow | ItemKind::Skill => {
                let target = self.workflow_target(binding.item, binding.kind, call)?;
                self.workflow_call(target, call, frames, ctx)
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
        let Item::Skill(skill) = self.item(item) else {
            return Err(PlanError::internal(
                "a skill call resolved to something else",
            ));
        };
        let name = match &call.method {
            Some(method) => skill.workflows.iter().find(|w| w.name == method.name),
            None => skill.workflows.first(),
        }
        .ok_or_else(|| PlanError::internal("a skill without that workflow"))?;
        self.outcome
            .scopes
            .get(item.module.0)
            .and_then(|scope| scope.names.get(&name.name))
            .filter(|b| b.kind == ItemKind::Workflow)
            .map(|b| b.item)
            .ok_or_else(|| PlanError::internal("a skill workflow that does not resolve"))
    }

    fn named_args(
        &mut self,
        call: &'o Call,
        params: &'o [ast::Param],
        frames: &mut Vec<Frame>,
        ctx: &Ctx,
    ) -> Result<HashMap<String, PlanValue>, PlanError> {
        let mut values = HashMap::new();
        for arg in &call.args {
            let value = self.expr(&arg.value, frames, ctx)?;
            if let Some(name) = &arg.name {
                values.insert(name.name.clone(), value);
            }
        }
        for param in params {
            if values.contains_key(&param.name.name) {
                continue;
            }
            if let Some(default) = &param.default {
                let value = self.expr(default, frames, ctx)?;
                values.insert(param.name.name.clone(), value);
            }
        }
        Ok(values)
    }

    fn workflow_call(
        &mut self,
        target: ItemRef,
        call: &'o Call,
        frames: &mut Vec<Frame>,
        ctx: &Ctx,
    ) -> Result<PlanValue, PlanError> {
        let workflow = self.workflow(target)?;
        let mut args = self.named_args(call, &workflow.params, frames, ctx)?;
        // Paths handed to a workflow's `path` parameters are paths, even when written
        // as text literals.
        for param in &workflow.params {
            if matches!(&param.ty, ast::TypeExpr::Named(t) if t.name == "path") {
                if let Some(value) = args.get_mut(&param.name.name) {
                    if let Val::Text(text) = &value.val {
                        value.val = Val::Path(text.into());
                    }
                }
            }
        }
        let segment = self.segment(&workflow.name.name, ctx);
        let node = self.add_node(
            Some(ctx.parent),
            &segment,
            &workflow.name.name,
            NodeKind::Workflow,
            ctx.depth + 1,
            ctx.multiplicity,
        )?;
        self.activate(target, node, args, ctx.after.clone())
    }

    fn agent_call(
        &mut self,
        item: ItemRef,
        call: &'o Call,
        frames: &mut Vec<Frame>,
        ctx: &Ctx,
    ) -> Result<PlanValue, PlanError> {
        let Item::Agent(agent) = self.item(item) else {
            return Err(PlanError::internal(
                "an agent call resolved to something else",
            ));
        };
        let args = self.named_args(call, &agent.params, frames, ctx)?;
        let info = self.outcome.agents.get(&item);
        let mut input = info.map_or(0, |i| i.template_tokens);
        for (name, value) in &args {
            let uses = info.and_then(|i| i.uses.get(name)).copied().unwrap_or(0);
            input = input.saturating_add(value.tokens().saturating_mul(uses));
        }
        let summary = info.and_then(|i| i.summary).unwrap_or(DEFAULT_SUMMARY);
        let segment = self.segment(&agent.name.name, ctx);
        let node = self.add_node(
            Some(ctx.parent),
            &segment,
            &agent.name.name,
            NodeKind::Agent,
            ctx.depth + 1,
            ctx.multiplicity,
        )?;
        {
            let n = &mut self.graph[node];
            n.input_tokens = input;
            n.context = info.and_then(|i| i.context);
            n.output_tokens = summary;
            n.model = match agent.setting("model").map(|s| &s.value) {
                Some(SettingValue::Text(model)) => Some(model.value.clone()),
                _ => None,
            };
        }
        self.link(node, PlanValue::merge_deps(args.values()), ctx);
        let list = info.is_some_and(|i| i.returns.is_list());
        Ok(PlanValue::produced(node, summary, list))
    }

    fn builtin(
        &mut self,
        call: &'o Call,
        frames: &mut Vec<Frame>,
        ctx: &Ctx,
    ) -> Result<PlanValue, PlanError> {
        let mut args = Vec::with_capacity(call.args.len());
        for arg in &call.args {
            args.push(self.expr(&arg.value, frames, ctx)?);
        }
        let deps = PlanValue::merge_deps(&args);
        let name = call.callee.name.as_str();
        match name {
            "files" | "dirs" => {
                let dir = args.first().and_then(PlanValue::as_path);
                let glob = args.get(1).and_then(PlanValue::as_text);
                let Some(dir) = dir else {
                    return Ok(PlanValue {
                        val: Val::Unknown {
                            tokens: 0,
                            list: true,
                        },
                        deps,
                    });
                };
                let listing = if name == "files" {
                    Listing::Files
                } else {
                    Listing::Dirs
                };
                let entries = fs::list(&dir, listing, glob.as_deref()).map_err(|error| {
                    let at = &self.graph[ctx.parent].id;
                    match error {
                        ListError::NotADirectory(path) => PlanError::plan(
                            format!("`{name}({})` at `{at}`: not a directory", path.display()),
                            "pass a directory that exists",
                        ),
                        ListError::BadGlob(glob, reason) => PlanError::plan(
                            format!("`{glob}` at `{at}` is not a valid glob: {reason}"),
                            "use a glob such as `*.rs` or `**/*.md`",
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
                let tokens = args
                    .first()
                    .and_then(PlanValue::as_path)
                    .and_then(|path| std::fs::metadata(path).ok())
                    .map_or(ASSUMED_TEXT, |meta| tokens_of_bytes(meta.len() as usize));
                Ok(PlanValue {
                    val: Val::Unknown {
                        tokens,
                        list: false,
                    },
                    deps,
                })
            }
            "len" => Ok(match args.first().map(|a| &a.val) {
                Some(Val::List(items)) => PlanValue {
                    val: Val::Number(items.len() as f64),
                    deps,
                },
                Some(Val::Text(text)) => PlanValue {
                    val: Val::Number(text.chars().count() as f64),
                    deps,
                },
                _ => PlanValue {
                    val: Val::Unknown {
                        tokens: SCALAR_TOKENS,
                        list: false,
                    },
                    deps,
                },
            }),
            "exec" => {
                let argv: Vec<String> = match args.first().map(|a| &a.val) {
                    Some(Val::List(items)) => items
                        .iter()
                        .map(|i| i.as_text().unwrap_or_else(|| "…".to_string()))
                        .collect(),
                    _ => Vec::new(),
                };
                let label = argv.first().map(|a| {
                    Path::new(a)
                        .file_name()
                        .map_or(a.clone(), |n| n.to_string_lossy().into_owned())
                });
                let segment = self.segment(&format!("exec-{}", label.unwrap_or_default()), ctx);
                let node = self.add_node(
                    Some(ctx.parent),
                    &segment,
                    "exec",
                    NodeKind::Exec,
                    ctx.depth + 1,
                    ctx.multiplicity,
                )?;
                self.graph[node].output_tokens = DEFAULT_SUMMARY;
                self.link(node, deps, ctx);
                Ok(PlanValue::produced(node, DEFAULT_SUMMARY, false))
            }
            _ => Err(PlanError::internal("a call of an unknown builtin")),
        }
    }

    /// Makes `node` wait for the producers of its inputs and for the `after` of `ctx`.
    fn link(&mut self, node: NodeIndex, inputs: Vec<NodeIndex>, ctx: &Ctx) {
        for input in inputs {
            self.graph.update_edge(input, node, EdgeKind::Data);
        }
        for &before in &ctx.after {
            if before != node && self.graph.find_edge(before, node).is_none() {
                self.graph.add_edge(before, node, EdgeKind::After);
            }
        }
    }

    /// `name` or `name[label]` for a node created under `ctx`.
    fn segment(&self, name: &str, ctx: &Ctx) -> String {
        match &ctx.label {
            Some(label) => format!("{name}[{}]", safe_segment(label)),
            None => name.to_string(),
        }
    }

    fn add_node(
        &mut self,
        parent: Option<NodeIndex>,
        segment: &str,
        name: &str,
        kind: NodeKind,
        depth: usize,
        multiplicity: u64,
    ) -> Result<NodeIndex, PlanError> {
        if self.graph.node_count() >= MAX_NODES {
            return Err(PlanError::plan(
                format!("the plan has more than {MAX_NODES} nodes"),
                "lower the `max` of the widest fan-outs, or plan a smaller part of the tree",
            ));
        }
        let id = match parent {
            Some(parent) => {
                let used = self.segments.entry(parent).or_default();
                let mut segment = segment.to_string();
                let mut n = 2;
                while used.contains(&segment) {
                    segment = format!(
                        "{}#{n}",
                        segment
                            .trim_end_matches(|c: char| c.is_ascii_digit())
                            .trim_end_matches('#')
                    );
                    n += 1;
                }
                used.insert(segment.clone());
                format!("{}/{segment}", self.graph[parent].id)
            }
            None => segment.to_string(),
        };
        let index = self.graph.add_node(Node {
            id,
            name: name.to_string(),
            kind,
            depth,
            parent,
            children: Vec::new(),
            multiplicity,
            input_tokens: 0,
            context: None,
            output_tokens: 0,
            model: None,
            max: None,
        });
        if let Some(parent) = parent {
            self.graph[parent].children.push(index);
        }
        Ok(index)
    }
}

fn lookup<'f>(frames: &'f [Frame], name: &str) -> Option<&'f PlanValue> {
    frames.iter().rev().find_map(|frame| frame.values.get(name))
}

fn binary(op: BinOp, l: PlanValue, r: PlanValue) -> PlanValue {
    let deps = PlanValue::merge_deps([&l, &r]);
    let val = match (op, l.val, r.val) {
        (BinOp::Add, Val::List(mut a), Val::List(b)) => {
            a.extend(b);
            Val::List(a)
        }
        (BinOp::Add, a, b) => Val::Unknown {
            tokens: PlanValue::constant(a)
                .tokens()
                .saturating_add(PlanValue::constant(b).tokens()),
            list: true,
        },
        (BinOp::And, Val::Bool(a), Val::Bool(b)) => Val::Bool(a && b),
        (BinOp::Or, Val::Bool(a), Val::Bool(b)) => Val::Bool(a || b),
        (BinOp::Compare(cmp), a, b) => match compare(cmp, &a, &b) {
            Some(result) => Val::Bool(result),
            None => Val::Unknown {
                tokens: SCALAR_TOKENS,
                list: false,
            },
        },
        _ => Val::Unknown {
            tokens: SCALAR_TOKENS,
            list: false,
        },
    };
    PlanValue { val, deps }
}

fn compare(op: CompareOp, a: &Val, b: &Val) -> Option<bool> {
    let ordering = match (a, b) {
        (Val::Number(a), Val::Number(b)) | (Val::Duration(a), Val::Duration(b)) => {
            a.partial_cmp(b)?
        }
        (Val::Text(a), Val::Text(b)) => a.cmp(b),
        (Val::Path(a), Val::Path(b)) => a.cmp(b),
        (Val::Bool(a), Val::Bool(b)) => a.cmp(b),
        _ => return None,
    };
    Some(match op {
        CompareOp::Eq => ordering.is_eq(),
        CompareOp::Ne => ordering.is_ne(),
        CompareOp::Lt => ordering.is_lt(),
        CompareOp::Le => ordering.is_le(),
        CompareOp::Gt => ordering.is_gt(),
        CompareOp::Ge => ordering.is_ge(),
    })
}

/// The order to plan `lets` in: what a binding references first (a checked file has no
/// cycles), otherwise source order.
fn dependency_order(lets: &[Let]) -> Vec<usize> {
    let index_of: HashMap<&str, usize> = lets
        .iter()
        .enumerate()
        .map(|(i, l)| (l.name.name.as_str(), i))
        .collect();
    let mut graph: DiGraphMap<usize, ()> = DiGraphMap::new();
    for (i, binding) in lets.iter().enumerate() {
        graph.add_node(i);
        let mut refs = Vec::new();
        walk(&binding.value, &mut |expr| {
            if let ExprKind::Ref(ident) = &expr.kind {
                refs.push(ident.name.as_str());
            }
        });
        refs.extend(binding.after.iter().map(|a| a.name.as_str()));
        for name in refs {
            if let Some(&j) = index_of.get(name) {
                if j != i {
                    graph.add_edge(i, j, ());
                }
            }
        }
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
