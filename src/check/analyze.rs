//! Workflow bodies: names, arguments, types, binding cycles, and at every agent call
//! the context budget and the rules of the protocols that govern the workflow.
//!
//! Each expression is evaluated abstractly to a [`Value`]: its type, the worst-case
//! size of what it renders to, and what it carries (`read(...)` values, results,
//! full outputs). Bindings are evaluated in dependency order, workflows callees first
//! (in the order `levels.rs` gives), so the analysis never recurses deeper than the
//! source nests, but for the workflows of one cycle (at most [`MAX_NESTED_ANALYSES`]).
//! The analysis only reads the checker; what it finds is kept apart ([`Findings`]).

use std::collections::BTreeSet;

use foldhash::{HashMap, HashMapExt, HashSet};
use petgraph::algo::kosaraju_scc;

use super::budget::{self, Bound};
use super::cost::{self, Size};
use super::graph::{binding_graph, cycle_path};
use super::items::{literal_rendered_bytes, literal_type, AgentInfo};
use super::modules::ModuleId;
use super::scope::{Binding, ItemKind, ItemRef};
use super::types::{Type, RESULT_FIELDS};
use super::{Checker, Findings};
use crate::diagnostics;
use crate::source::{FileId, Span};
use crate::syntax::ast::{
    self, BinOp, Call, Expr, ExprKind, Ident, Item, Let, ProtocolRule, Value as SettingValue,
};

/// What the checker knows of a value before the run.
#[derive(Clone, Debug)]
pub struct Value {
    pub ty: Type,
    pub bound: Bound,
    /// For lists: the bound of one element.
    pub elem: Option<Bound>,
    /// For lists: an upper bound on the length, when one is known before the run.
    pub len: Option<u64>,
    /// For lists of lists: an upper bound on the length of every element.
    pub elem_len: Option<u64>,
    /// For lists: an upper bound on the length even where `len` is unknown (a model's
    /// list holds as many elements as its budget has room for at their smallest).
    pub len_bound: Option<u64>,
    /// How many `read(...)` values it carries.
    pub reads: u64,
    /// How many agent results it carries.
    pub results: u64,
    /// Whether it is (part of) a model's structured answer, whose lists its summary
    /// budget bounds.
    pub answer: bool,
    /// Where a child's full `output` flows into it.
    pub outputs: Vec<Span>,
    /// Whether it is a text literal (which may stand for a path).
    pub literal_text: bool,
    /// Whether it lists the file system (`dirs`, `files`): a recursion over it ends
    /// where the directory tree does.
    pub listing: bool,
}

impl Value {
    fn of(ty: Type, bound: Bound) -> Value {
        Value {
            ty,
            bound,
            elem: None,
            len: None,
            elem_len: None,
            len_bound: None,
            reads: 0,
            results: 0,
            answer: false,
            outputs: Vec::new(),
            literal_text: false,
            listing: false,
        }
    }

    fn scalar(ty: Type) -> Value {
        Value::of(ty, Bound::of(budget::SCALAR_TOKENS))
    }

    fn unknown() -> Value {
        Value::of(Type::Unknown, Bound::default())
    }

    /// Its worst case as a template sees it.
    fn size(&self) -> Size {
        Size {
            whole: self.bound.clone(),
            len: self.len,
            len_bound: self.len.or(self.len_bound),
            elem_len: self.elem_len,
            elem: self.elem.clone().unwrap_or_else(|| self.bound.element()),
            results: self.results,
            answer: self.answer,
            list: self.ty.is_list(),
        }
    }

    /// Whether this value, taken as what a recursive call returns, is at least as
    /// large as `found`, what the body returned with it.
    fn covers(&self, found: &Value) -> bool {
        let elem = |value: &Value| value.elem.as_ref().map_or(0, Bound::total);
        found.bound.total() <= self.bound.total() && elem(found) <= elem(self)
    }

    /// `found`, grown to cover this value as well: the next pass's guess.
    fn widened(&self, mut found: Value) -> Value {
        found.bound = found.bound.max(self.bound.clone());
        found.elem = match (found.elem.take(), &self.elem) {
            (Some(a), Some(b)) => Some(a.max(b.clone())),
            (a, b) => a.or_else(|| b.clone()),
        };
        found.len_bound = match (found.len_bound, self.len_bound) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        };
        found
    }

    /// The value of an agent's answer: its summary budget, and what a `result` adds
    /// around it (its fence and other fields). A structured answer's own fences are in
    /// its budget, but one that failed enters a prompt as a `result` all the same.
    fn answer(ty: Type, summary: u64) -> Value {
        let structured = ty != Type::Result;
        let bound = Bound::of(summary.saturating_add(budget::RESULT_OVERHEAD));
        let mut value = Value::of(ty, bound.clone());
        if value.ty.is_list() {
            value.elem = Some(bound);
        }
        value.results = 1;
        value.answer = structured;
        if value.ty.is_list() {
            value.len_bound = Some(budget::most_elements_in(value.bound.total()));
        }
        value
    }
}

/// Where a workflow's analysis stands.
#[derive(Debug)]
pub enum WorkflowState {
    /// Under analysis: what a call of it met meanwhile (a recursion) is taken to return.
    InProgress(Box<Value>),
    Done(Box<Value>),
}

/// The limits of one protocol.
#[derive(Debug, Default)]
struct Rules {
    name: String,
    depth: Option<(u64, Span)>,
    fanout: Option<(u64, Span)>,
    summary: Option<(u64, Span)>,
    reads: Option<(u64, Span)>,
    steps: Option<(u64, Span)>,
    /// The file the protocol is declared in, where its rules' labels point.
    file: Option<FileId>,
}

impl Rules {
    /// Points the diagnostic's "rule set here" labels at the protocol's file.
    fn locate(&self, mut diagnostic: diagnostics::Diagnostic) -> diagnostics::Diagnostic {
        for related in &mut diagnostic.related {
            if related.file.is_none() {
                related.file = self.file;
            }
        }
        diagnostic
    }
}

enum SlotState {
    Pending,
    /// On a cycle of bindings (reported): evaluated once, in order, for the errors in
    /// its own value; a reference to it is unknown, so that evaluating a long cycle does
    /// not recurse round it.
    Cyclic,
    InProgress,
    Done(Box<Value>),
}

struct LetSlot<'a> {
    decl: &'a Let,
    state: SlotState,
    used: bool,
}

struct Frame<'a> {
    lets: Vec<LetSlot<'a>>,
    /// The first binding of each name, by position in `lets`.
    index: HashMap<&'a str, usize>,
    var: Option<(&'a Ident, Value)>,
}

impl Frame<'_> {
    fn defines(&self, name: &str) -> bool {
        self.index.contains_key(name) || self.var.as_ref().is_some_and(|(v, _)| v.name == name)
    }
}

struct ParamSlot {
    name: String,
    span: Span,
    value: Value,
    used: bool,
}

/// One strongly connected component's analysis: its workflows' values and what it found.
#[derive(Default)]
pub(super) struct Share {
    pub(super) states: HashMap<ItemRef, WorkflowState>,
    pub(super) findings: Findings,
    /// Agents without `context` already warned about in this share, by calling module.
    warned_no_context: HashSet<(ItemRef, ModuleId)>,
    /// Workflows whose analysis is under way, one inside the other.
    nested: usize,
    /// The workflows whose states were set, and the W010s recorded, in order: what a
    /// pass over a recursive body that is done again takes back ([`Mark`]).
    analysed: Vec<ItemRef>,
    warned: Vec<(ItemRef, ModuleId)>,
}

/// How far a [`Share`] had got, so that what one pass found can be taken back.
struct Mark {
    diagnostics: usize,
    analysed: usize,
    warned: usize,
}

impl Share {
    fn mark(&self) -> Mark {
        Mark {
            diagnostics: self.findings.diagnostics.len(),
            analysed: self.analysed.len(),
            warned: self.warned.len(),
        }
    }

    /// Forgets what was found, analysed and warned about since `mark`.
    fn take_back(&mut self, mark: &Mark) {
        self.findings.diagnostics.truncate(mark.diagnostics);
        for item in self.analysed.drain(mark.analysed..) {
            self.states.remove(&item);
        }
        for warned in self.warned.drain(mark.warned..) {
            self.warned_no_context.remove(&warned);
        }
    }
}

/// How many workflows of one cycle may be analysed one inside the other (each call of
/// a workflow not yet analysed analyses it there and then). Past this, a call sees the
/// callee as a call of a recursive workflow does, and the callee is analysed after:
/// a cycle of thousands of workflows ran the stack out.
const MAX_NESTED_ANALYSES: usize = 16;

struct Analysis<'c, 'p> {
    checker: &'c Checker<'p>,
    share: &'c mut Share,
    /// The workflow analysed.
    item: ItemRef,
    /// Inside the body of a `for` over a model's answer (its list).
    model_for: Option<Span>,
    /// Inside the body of a `for` over a list parameter of the workflow analysed (its
    /// name and the list): a recursive call that hands it a model's answer is E034.
    param_for: Option<(&'p str, Span)>,
    /// Inside how many `for`s over `dirs` or `files`, where a recursion ends with the
    /// directory tree.
    listing_fors: usize,
    /// Inside how many `if`s whose condition the plan can decide, which may end a
    /// recursion there (E034 is not reported inside one).
    decided_ifs: usize,
    module: ModuleId,
    rules: Vec<Rules>,
    params: Vec<ParamSlot>,
    frames: Vec<Frame<'p>>,
}

impl<'p> Checker<'p> {
    /// The value a call of `item` yields: from its analysis if it is done (in an
    /// earlier component, or in `share`), analysing its body now if not.
    pub(super) fn workflow_value(&self, share: &mut Share, item: ItemRef) -> Value {
        match share
            .states
            .get(&item)
            .or_else(|| self.workflows.get(&item))
        {
            Some(WorkflowState::Done(value) | WorkflowState::InProgress(value)) => {
                return (**value).clone()
            }
            None if share.nested >= MAX_NESTED_ANALYSES => return self.recursive_value(item),
            None => {}
        }
        let program = self.program;
        let Item::Workflow(workflow) = &program.module(item.module).ast.items[item.index] else {
            return Value::unknown();
        };
        // A recursive call is first taken to return what `recursive_value` guesses. Where
        // the body returns more, it is analysed again with that, each pass one level
        // deeper, until the guess holds or the passes reach its `depth`: the plan unfolds
        // no more levels than that.
        let levels = (workflow.depth.first())
            .and_then(|depth| depth.as_count())
            .map_or(1, |depth| depth.clamp(1, 256));
        let mut assumed = self.recursive_value(item);
        let mut pass = 1;
        let mut value = loop {
            let mark = share.mark();
            share.analysed.push(item);
            share
                .states
                .insert(item, WorkflowState::InProgress(Box::new(assumed.clone())));
            let value = self.analyse_body(share, item, workflow);
            if pass >= levels || assumed.covers(&value) {
                break value;
            }
            share.take_back(&mark);
            assumed = assumed.widened(value);
            pass += 1;
        };
        value.reads = 0;
        value.outputs.clear();
        share
            .states
            .insert(item, WorkflowState::Done(Box::new(value.clone())));
        value
    }

    /// One pass of analysis over `workflow`'s body.
    fn analyse_body(&self, share: &mut Share, item: ItemRef, workflow: &'p ast::Workflow) -> Value {
        let rules = self
            .governed
            .get(&item)
            .map(|protocols| protocols.iter().map(|&p| self.rules(p)).collect())
            .unwrap_or_default();
        let mut analysis = Analysis {
            checker: self,
            share,
            item,
            model_for: None,
            param_for: None,
            listing_fors: 0,
            decided_ifs: 0,
            module: item.module,
            rules,
            params: Vec::new(),
            frames: Vec::new(),
        };
        analysis.share.nested += 1;
        let value = analysis.workflow(workflow);
        analysis.share.nested -= 1;
        value
    }

    /// The value of a workflow met again while its own body is being analysed, at
    /// first: its declared type, bounded by the summary of the agent its `return` calls
    /// (the analysis tries again with more where the body returns more).
    fn recursive_value(&self, item: ItemRef) -> Value {
        let program = self.program;
        let Item::Workflow(workflow) = &program.module(item.module).ast.items[item.index] else {
            return Value::unknown();
        };
        let ty = workflow
            .returns
            .as_ref()
            .map_or(Type::Unknown, |t| self.resolve_type_quiet(item.module, t));
        let summary = workflow
            .returns_stmts
            .first()
            .and_then(|stmt| match &stmt.value.kind {
                ExprKind::Call(call) if call.method.is_none() => {
                    let binding = self
                        .scopes
                        .get(item.module.0)?
                        .names
                        .get(&call.callee.name)?;
                    self.agents.get(&binding.item)?.summary
                }
                _ => None,
            })
            .unwrap_or(budget::DEFAULT_SUMMARY);
        Value::answer(ty, summary)
    }

    fn rules(&self, protocol: ItemRef) -> Rules {
        let Item::Protocol(decl) = self.item(protocol) else {
            return Rules::default();
        };
        let mut rules = Rules {
            name: decl.name.name.clone(),
            file: Some(self.program.module(protocol.module).file),
            ..Rules::default()
        };
        for rule in &decl.rules {
            match rule {
                ProtocolRule::Max { what, limit, span } => {
                    let value = limit.as_count().map(|n| (n, *span));
                    match what.name.as_str() {
                        "depth" => rules.depth = rules.depth.or(value),
                        "fanout" => rules.fanout = rules.fanout.or(value),
                        _ => {}
                    }
                }
                ProtocolRule::Delegate {
                    what, limit, span, ..
                } if what.name == "reads" => {
                    rules.reads = rules.reads.or(limit.as_count().map(|n| (n, *span)));
                }
                ProtocolRule::Delegate {
                    what, limit, span, ..
                } if what.name == "steps" => {
                    rules.steps = rules.steps.or(limit.as_count().map(|n| (n, *span)));
                }
                ProtocolRule::Delegate { .. } => {}
            }
        }
        for setting in &decl.settings {
            if let ("summary", SettingValue::Quantity(q)) =
                (setting.key.name.as_str(), &setting.value)
            {
                rules.summary = rules.summary.or(q.as_count().map(|n| (n, setting.span)));
            }
        }
        rules
    }
}

impl<'c, 'p> Analysis<'c, 'p> {
    fn emit(&mut self, diagnostic: diagnostics::Diagnostic) {
        self.share.findings.emit(self.module, diagnostic);
    }

    /// What `name` means in this workflow's module, marking it used.
    fn lookup(&mut self, name: &str) -> Option<Binding> {
        (self.share.findings).lookup(self.checker, self.module, name)
    }

    fn workflow(&mut self, workflow: &'p ast::Workflow) -> Value {
        if let Some(depth) = workflow.depth.first() {
            let declared = depth.as_count().unwrap_or(0);
            let found: Vec<diagnostics::Diagnostic> = self
                .rules
                .iter()
                .filter_map(|r| {
                    let (limit, rule) = r.depth?;
                    (declared > limit).then(|| {
                        r.locate(diagnostics::protocol_depth(
                            depth.span, &r.name, declared, limit, rule,
                        ))
                    })
                })
                .collect();
            for diagnostic in found {
                self.emit(diagnostic);
            }
        }
        for param in &workflow.params {
            let value = self.param_value(param);
            self.params.push(ParamSlot {
                name: param.name.name.clone(),
                span: param.name.span,
                value,
                used: false,
            });
        }
        let returned = self.frame(&workflow.lets, |analysis| {
            let mut value = None;
            for stmt in &workflow.returns_stmts {
                analysis.after(&stmt.after);
                let returned = analysis.expr(&stmt.value);
                if value.is_none() {
                    value = Some(returned);
                }
            }
            value.unwrap_or_else(Value::unknown)
        });
        if let (Some(declared), Some(stmt)) = (&workflow.returns, workflow.returns_stmts.first()) {
            let expected = self.checker.resolve_type_quiet(self.module, declared);
            if !returned.ty.fits(&expected) {
                self.emit(diagnostics::type_mismatch(
                    stmt.value.span,
                    &format!("the return of workflow `{}`", workflow.name.name),
                    &expected.to_string(),
                    &returned.ty.to_string(),
                ));
            }
        }
        let params = std::mem::take(&mut self.params);
        for param in params.iter().filter(|p| !p.used) {
            self.emit(diagnostics::unused_parameter(
                param.span,
                &workflow.name.name,
                &param.name,
                false,
            ));
        }
        let mut value = returned;
        if let Some(declared) = &workflow.returns {
            let expected = self.checker.resolve_type_quiet(self.module, declared);
            if expected != Type::Unknown {
                value.ty = expected;
            }
        }
        value
    }

    /// The worst-case value of a workflow parameter, from its declaration, with the
    /// results it can carry: the protocols' `max fanout` holds inside the workflow too.
    fn param_value(&mut self, param: &ast::Param) -> Value {
        let mut value = self.param_bound(param);
        value.results = results_in(&value.ty, value.len, param.ty.element_max());
        value
    }

    fn param_bound(&mut self, param: &ast::Param) -> Value {
        let ty = self.checker.resolve_type_quiet(self.module, &param.ty);
        let max = param.max.as_ref().and_then(|q| q.as_count());
        let name = &param.name.name;
        let assumed = |tokens: u64, why: &str| {
            Bound::assumed(
                tokens,
                format!(
                    "`{name}` ({} tokens assumed for {why})",
                    diagnostics::thousands(tokens)
                ),
                param.name.span,
            )
        };
        match &ty {
            Type::Text => {
                let bound = match max {
                    Some(max) => Bound::of(max),
                    None => assumed(budget::ASSUMED_TEXT, "a text parameter without `max`"),
                };
                Value::of(ty, bound)
            }
            Type::Path => Value::of(ty, Bound::of(budget::PATH_TOKENS)),
            Type::Number | Type::Bool | Type::Duration => Value::scalar(ty),
            Type::List(element) => {
                let elem = match (param.ty.element_max(), &**element) {
                    (Some(max), _) => Bound::of(max),
                    (None, Type::Path) => Bound::of(budget::PATH_TOKENS),
                    (None, Type::Number | Type::Bool | Type::Duration) => {
                        Bound::of(budget::SCALAR_TOKENS)
                    }
                    (None, _) => assumed(
                        budget::ASSUMED_TEXT,
                        "each element of a list parameter without `list<T max N>`",
                    ),
                };
                let (len, bound) = match max {
                    Some(max) => (Some(max), elem.clone().times(max)),
                    None => {
                        let mut bound = elem.clone().times(budget::ASSUMED_LIST);
                        bound.assumed.push(budget::Assumption {
                            what: format!(
                                "`{name}` ({} elements assumed for a list parameter without `max`)",
                                budget::ASSUMED_LIST
                            ),
                            span: param.name.span,
                        });
                        (None, bound)
                    }
                };
                let mut value = Value::of(ty, bound);
                value.elem = Some(elem);
                value.len = len;
                value
            }
            _ => Value::of(
                ty,
                assumed(budget::ASSUMED_TEXT, "a parameter of unknown size"),
            ),
        }
    }

    /// Evaluates `body` with a frame holding `lets`, then reports the frame's cycles and
    /// unused bindings.
    fn frame<T>(&mut self, lets: &'p [Let], body: impl FnOnce(&mut Self) -> T) -> T {
        self.push_frame(lets, None);
        let value = body(self);
        self.pop_frame();
        value
    }

    fn push_frame(&mut self, lets: &'p [Let], var: Option<(&'p Ident, Value)>) {
        let mut index: HashMap<&'p str, usize> = HashMap::new();
        for (i, binding) in lets.iter().enumerate() {
            match index
                .get(binding.name.name.as_str())
                .and_then(|&first| lets.get(first))
            {
                Some(first) => self.emit(diagnostics::duplicate(
                    binding.name.span,
                    "binding",
                    &binding.name.name,
                    first.name.span,
                )),
                None => {
                    index.insert(&binding.name.name, i);
                }
            }
        }
        self.frames.push(Frame {
            index,
            lets: lets
                .iter()
                .map(|decl| LetSlot {
                    decl,
                    state: SlotState::Pending,
                    used: false,
                })
                .collect(),
            var,
        });
        let order = self.binding_order(lets);
        let level = self.frames.len() - 1;
        for index in order {
            if let Some(slot) = self
                .frames
                .get_mut(level)
                .and_then(|f| f.lets.get_mut(index))
            {
                if matches!(slot.state, SlotState::Cyclic) {
                    slot.state = SlotState::Pending;
                }
            }
            self.evaluate_let(level, index);
        }
    }

    fn pop_frame(&mut self) {
        let Some(frame) = self.frames.pop() else {
            return;
        };
        for slot in frame.lets.iter().filter(|slot| !slot.used) {
            self.emit(diagnostics::unused_binding(
                slot.decl.name.span,
                &slot.decl.name.name,
            ));
        }
    }

    /// The order to evaluate `lets` in (dependencies first), reporting cycles.
    fn binding_order(&mut self, lets: &'p [Let]) -> Vec<usize> {
        let graph = binding_graph(lets);
        let mut order = Vec::with_capacity(lets.len());
        for component in kosaraju_scc(&graph) {
            let cyclic = component.len() > 1
                || component
                    .first()
                    .is_some_and(|&n| graph.contains_edge(n, n));
            if cyclic {
                let members: BTreeSet<usize> = component.iter().copied().collect();
                if let Some(frame) = self.frames.last_mut() {
                    for &member in &members {
                        if let Some(slot) = frame.lets.get_mut(member) {
                            slot.state = SlotState::Cyclic;
                        }
                    }
                }
                if let Some(&first) = members.first() {
                    let path = cycle_path(first, |n| {
                        graph.neighbors(n).filter(|m| members.contains(m)).collect()
                    });
                    let names: Vec<&str> = path
                        .iter()
                        .filter_map(|&i| lets.get(i))
                        .map(|l| l.name.name.as_str())
                        .collect();
                    if let Some(binding) = lets.get(first) {
                        self.emit(diagnostics::binding_cycle(
                            binding.name.span,
                            &diagnostics::arrow_path(&names, 0),
                        ));
                    }
                }
            }
            order.extend(component);
        }
        order
    }

    fn evaluate_let(&mut self, level: usize, index: usize) -> Value {
        let Some(slot) = self
            .frames
            .get_mut(level)
            .and_then(|f| f.lets.get_mut(index))
        else {
            return Value::unknown();
        };
        match &slot.state {
            SlotState::Done(value) => return (**value).clone(),
            // A cycle, already reported by `binding_order`.
            SlotState::InProgress | SlotState::Cyclic => return Value::unknown(),
            SlotState::Pending => slot.state = SlotState::InProgress,
        }
        let decl = slot.decl;
        // Evaluate in the scope where the binding was written.
        let inner = self.frames.split_off(level + 1);
        self.after(&decl.after);
        let value = self.expr(&decl.value);
        self.frames.extend(inner);
        if let Some(slot) = self
            .frames
            .get_mut(level)
            .and_then(|f| f.lets.get_mut(index))
        {
            slot.state = SlotState::Done(Box::new(value.clone()));
        }
        value
    }

    fn after(&mut self, names: &[Ident]) {
        for name in names {
            let found = self.frames.iter_mut().rev().find_map(|frame| {
                let index = *frame.index.get(name.name.as_str())?;
                frame.lets.get_mut(index)
            });
            match found {
                Some(slot) => slot.used = true,
                None => {
                    let suggestion = self.suggest_local(&name.name);
                    self.emit(diagnostics::unknown_name(
                        name.span, "binding", &name.name, suggestion, None,
                    ));
                }
            }
        }
    }

    fn suggest_local(&mut self, name: &str) -> Option<String> {
        if !self.checker.spend_suggestion() {
            return None;
        }
        let mut names: Vec<String> = self.params.iter().map(|p| p.name.clone()).collect();
        for frame in &self.frames {
            names.extend(frame.lets.iter().map(|s| s.decl.name.name.clone()));
            names.extend(frame.var.as_ref().map(|(v, _)| v.name.clone()));
        }
        diagnostics::suggest(name, names.iter().map(String::as_str))
    }

    /// Looks up a binding, loop variable or parameter.
    fn local(&mut self, name: &str) -> Option<Value> {
        for level in (0..self.frames.len()).rev() {
            let frame = &mut self.frames[level];
            if let Some((var, value)) = &frame.var {
                if var.name == name {
                    return Some(value.clone());
                }
            }
            if let Some(&index) = frame.index.get(name) {
                if let Some(slot) = frame.lets.get_mut(index) {
                    slot.used = true;
                }
                return Some(self.evaluate_let(level, index));
            }
        }
        let param = self.params.iter_mut().find(|p| p.name == name)?;
        param.used = true;
        Some(param.value.clone())
    }

    fn expr(&mut self, expr: &'p Expr) -> Value {
        match &expr.kind {
            ExprKind::Text(text) => {
                let mut value = Value::of(
                    Type::Text,
                    Bound::of(budget::tokens_of_bytes(text.value.len())),
                );
                value.literal_text = true;
                value
            }
            ExprKind::Quantity(q) => Value::scalar(if q.is_duration() {
                Type::Duration
            } else {
                Type::Number
            }),
            ExprKind::Bool(_) => Value::scalar(Type::Bool),
            ExprKind::List(items) => self.list(items),
            ExprKind::Ref(ident) => self.reference(ident),
            ExprKind::Field(base, field) => self.field(base, field),
            ExprKind::Call(call) => self.call(call, expr.span),
            ExprKind::Binary(op, left, right) => self.binary(*op, left, right),
            ExprKind::Not(inner) => {
                let value = self.expr(inner);
                self.expect_bool(&value, inner.span, "`not`");
                Value::scalar(Type::Bool)
            }
            ExprKind::For(f) => self.for_expr(f),
            ExprKind::If(i) => self.if_expr(i),
        }
    }

    fn list(&mut self, items: &'p [Expr]) -> Value {
        let mut element: Option<Type> = None;
        let mut value = Value::of(Type::EmptyList, Bound::default());
        let mut elem = Bound::default();
        let mut longest = Some(0u64);
        for item in items {
            let item_value = self.expr(item);
            longest = longest.zip(item_value.len).map(|(a, b)| a.max(b));
            match &element {
                None => element = Some(item_value.ty.clone()),
                Some(first) if item_value.ty.fits(first) => {}
                Some(first) if first.fits(&item_value.ty) => element = Some(item_value.ty.clone()),
                Some(first) => {
                    let first = first.to_string();
                    self.emit(diagnostics::type_mismatch(
                        item.span,
                        "a list whose first element is of this type",
                        &first,
                        &item_value.ty.to_string(),
                    ));
                }
            }
            elem = elem.max(item_value.bound.clone());
            value.bound = value.bound.plus(item_value.bound);
            value.reads += item_value.reads;
            value.results += item_value.results;
            value.answer |= item_value.answer;
            value.outputs.extend(item_value.outputs);
        }
        if let Some(element) = element {
            value.ty = Type::List(Box::new(element));
        }
        value.elem = Some(elem);
        value.len = Some(items.len() as u64);
        value.elem_len = longest;
        value
    }

    fn reference(&mut self, ident: &Ident) -> Value {
        if let Some(value) = self.local(&ident.name) {
            return value;
        }
        // A name with `-` whose parts exist: the user meant a minus that does not exist.
        let minus = ident.name.split_once('-').and_then(|(left, right)| {
            let exists = |this: &mut Self, n: &str| {
                this.params.iter().any(|p| p.name == n) || this.frames.iter().any(|f| f.defines(n))
            };
            (exists(self, left) && exists(self, right))
                .then(|| (left.to_string(), right.to_string()))
        });
        let kind_hint = self
            .checker
            .scopes
            .get(self.module.0)
            .and_then(|s| s.names.get(&ident.name))
            .map(|b| b.kind);
        let suggestion = match kind_hint {
            Some(kind @ (ItemKind::Agent | ItemKind::Workflow | ItemKind::Skill)) => Some(format!(
                "`{}` is {} {}: call it with named arguments, `{}(...)`",
                ident.name,
                if kind == ItemKind::Agent { "an" } else { "a" },
                kind.noun(),
                ident.name
            )),
            _ => self.suggest_local(&ident.name),
        };
        self.emit(diagnostics::unknown_name(
            ident.span,
            "binding or parameter",
            &ident.name,
            suggestion,
            minus.as_ref().map(|(l, r)| (l.as_str(), r.as_str())),
        ));
        Value::unknown()
    }

    fn field(&mut self, base: &'p Expr, field: &Ident) -> Value {
        let value = self.expr(base);
        let name = field.name.as_str();
        match &value.ty {
            Type::Unknown => Value::unknown(),
            Type::Result => match name {
                "summary" => Value {
                    ty: Type::Text,
                    literal_text: false,
                    elem: None,
                    len: None,
                    ..value
                },
                "status" => Value::scalar(Type::Text),
                "output" => {
                    let mut out = Value::of(
                        Type::Text,
                        Bound::assumed(
                            budget::ASSUMED_TEXT,
                            format!(
                                "`.output` ({} tokens assumed for a full output)",
                                diagnostics::thousands(budget::ASSUMED_TEXT)
                            ),
                            field.span,
                        ),
                    );
                    out.outputs.push(field.span);
                    out.outputs.extend(value.outputs);
                    out.results = value.results;
                    out
                }
                "outputs" | "children" => {
                    let ty = Type::result_field(name).unwrap_or(Type::Unknown);
                    let elem = if name == "outputs" {
                        Bound::of(budget::PATH_TOKENS)
                    } else {
                        value.bound.clone()
                    };
                    let mut bound = elem.clone().times(budget::ASSUMED_LIST);
                    bound.assumed.push(budget::Assumption {
                        what: format!("`.{name}` ({} elements assumed)", budget::ASSUMED_LIST),
                        span: field.span,
                    });
                    let mut out = Value::of(ty, bound);
                    out.elem = Some(elem);
                    out
                }
                _ => {
                    self.emit(diagnostics::unknown_field(
                        field.span,
                        "result",
                        name,
                        RESULT_FIELDS,
                    ));
                    Value::unknown()
                }
            },
            Type::Record(record) => {
                let record = record.clone();
                let fields = self
                    .checker
                    .record_fields(self.module, &record)
                    .unwrap_or_default();
                match fields.iter().find(|(n, _)| n == name) {
                    Some((_, ty)) => {
                        let mut out = Value::of(ty.clone(), value.bound.clone());
                        if ty.is_list() {
                            out.elem = Some(value.bound.clone());
                            // A list in a model's record holds what its JSON has room
                            // for, as the plan counts it.
                            if value.answer {
                                out.len_bound = Some(budget::most_elements_in(value.bound.total()));
                                // `list<text max N>`: the run holds each text to N tokens,
                                // and it enters a prompt fenced.
                                let text_max =
                                    self.checker
                                        .record_field_text_max(self.module, &record, name);
                                if let Some(max) = text_max {
                                    let each =
                                        budget::bounded_text_tokens(max, value.bound.total());
                                    out.elem = Some(Bound::of(each));
                                }
                            }
                        }
                        out.results = value.results;
                        out.answer = value.answer;
                        out.reads = value.reads;
                        out.outputs = value.outputs;
                        out
                    }
                    None => {
                        let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
                        self.emit(diagnostics::unknown_field(
                            field.span, &record, name, &names,
                        ));
                        Value::unknown()
                    }
                }
            }
            other => {
                let other = other.to_string();
                self.emit(diagnostics::unknown_field(field.span, &other, name, &[]));
                Value::unknown()
            }
        }
    }

    fn binary(&mut self, op: BinOp, left: &'p Expr, right: &'p Expr) -> Value {
        let l = self.expr(left);
        let r = self.expr(right);
        match op {
            BinOp::Add => {
                let Some(ty) = l.ty.join(&r.ty) else {
                    let (bad, span) = if l.ty.is_list() {
                        (&r.ty, right.span)
                    } else {
                        (&l.ty, left.span)
                    };
                    let message = if l.ty.is_list() && r.ty.is_list() {
                        format!(
                            "`+` joins lists of one element type, found `{}` and `{}`",
                            l.ty, r.ty
                        )
                    } else {
                        format!("`+` joins two lists, found `{bad}`")
                    };
                    self.emit(diagnostics::invalid_operand(span, message, &bad.to_string(), "there is no arithmetic or text concatenation; to combine texts, pass both to an agent"));
                    return Value::unknown();
                };
                let mut value = Value::of(ty, l.bound.plus(r.bound));
                value.elem = Some(l.elem.unwrap_or_default().max(r.elem.unwrap_or_default()));
                value.len = l.len.zip(r.len).map(|(a, b)| a.saturating_add(b));
                value.elem_len = l.elem_len.zip(r.elem_len).map(|(a, b)| a.max(b));
                value.len_bound = (l.len.or(l.len_bound))
                    .zip(r.len.or(r.len_bound))
                    .map(|(a, b)| a.saturating_add(b));
                value.reads = l.reads + r.reads;
                value.results = l.results + r.results;
                value.answer = l.answer || r.answer;
                value.listing = l.listing || r.listing;
                value.outputs = [l.outputs, r.outputs].concat();
                value
            }
            BinOp::And | BinOp::Or => {
                let name = if op == BinOp::And { "`and`" } else { "`or`" };
                self.expect_bool(&l, left.span, name);
                self.expect_bool(&r, right.span, name);
                Value::scalar(Type::Bool)
            }
            BinOp::Compare(cmp) => {
                if !(l.ty.fits(&r.ty) || r.ty.fits(&l.ty)) {
                    self.emit(diagnostics::invalid_operand(
                        right.span,
                        format!(
                            "`{cmp}` compares values of one type, found `{}` and `{}`",
                            l.ty, r.ty
                        ),
                        &r.ty.to_string(),
                        "compare two values of the same type",
                    ));
                }
                Value::scalar(Type::Bool)
            }
        }
    }

    fn expect_bool(&mut self, value: &Value, span: Span, operator: &str) {
        if !value.ty.fits(&Type::Bool) {
            self.emit(diagnostics::invalid_operand(
                span,
                format!("{operator} takes `bool`, found `{}`", value.ty),
                &value.ty.to_string(),
                "use a comparison such as `len(xs) > 0` to get a `bool`",
            ));
        }
    }

    fn for_expr(&mut self, f: &'p ast::For) -> Value {
        let iter = self.expr(&f.iter);
        let element = match iter.ty.element() {
            Some(element) => element,
            None => {
                self.emit(diagnostics::invalid_operand(
                    f.iter.span,
                    format!("`for` iterates a list, found `{}`", iter.ty),
                    &iter.ty.to_string(),
                    "iterate a list: `files(dir, \"*.rs\")`, `dirs(dir)`, a list parameter or an agent that returns `list<T>`",
                ));
                Type::Unknown
            }
        };
        let declared = f.max.as_ref().and_then(|max| {
            let count = max.as_count().filter(|&n| n > 0 && !max.is_duration());
            if count.is_none() {
                self.emit(diagnostics::invalid_quantity(
                    max.span,
                    "`max`",
                    "a whole number of items, 1 or more",
                ));
            }
            count.map(|n| (n, max.span))
        });
        if let (Some((declared, _)), ExprKind::List(items)) = (declared, &f.iter.kind) {
            // A literal list's length is known: past the `max`, the plan would refuse it.
            if items.len() as u64 > declared {
                self.emit(diagnostics::over_bound(
                    f.iter.span,
                    "the list `for` iterates",
                    items.len() as u64,
                    "elements",
                    declared,
                ));
            }
        }
        if let Some((declared, span)) = declared {
            let found: Vec<diagnostics::Diagnostic> = self
                .rules
                .iter()
                .filter_map(|r| {
                    let (limit, rule) = r.fanout?;
                    (declared > limit).then(|| {
                        r.locate(diagnostics::protocol_fanout(
                            span,
                            &r.name,
                            &format!("`max {declared}`"),
                            limit,
                            rule,
                        ))
                    })
                })
                .collect();
            for diagnostic in found {
                self.emit(diagnostic);
            }
        }
        let count = match (declared, iter.len) {
            (Some((declared, _)), Some(len)) => Some(declared.min(len)),
            (Some((declared, _)), None) => Some(declared),
            (None, len) => len,
        };
        let mut unproven = None;
        // A `max` that is written but invalid has its own error (E029).
        let unbounded = iter.len.is_none() && iter.ty != Type::Unknown && f.max.is_none();
        if unbounded {
            let what = match &f.iter.kind {
                ExprKind::Call(call) => format!("`{}(...)`", call.callee.name),
                _ if iter.len_bound.is_some() => "a model's list".to_string(),
                _ => "a list of unknown length".to_string(),
            };
            self.emit(diagnostics::for_without_max(
                f.iter.span,
                &what,
                iter.len_bound,
            ));
            if iter.len_bound.is_none() {
                unproven = Some(f.iter.span);
            }
        }
        // A model's list holds no more than its budget has room for, whatever the `max`
        // (and without one, as the plan counts it).
        let count = match (count, iter.len_bound) {
            (Some(count), Some(bound)) => Some(count.min(bound)),
            (None, Some(bound)) if unbounded => Some(bound),
            (count, _) => count,
        };
        let mut var_value = Value::of(
            element,
            iter.elem.clone().unwrap_or_else(|| iter.bound.element()),
        );
        var_value.results = iter.results.min(1);
        var_value.answer = iter.answer;
        var_value.reads = iter.reads.min(1);
        var_value.outputs = iter.outputs.clone();
        if var_value.ty.is_list() {
            var_value.elem = Some(var_value.bound.element());
            var_value.len = iter.elem_len;
        }
        let outer = (self.model_for, self.param_for);
        if iter.answer {
            self.model_for = Some(f.iter.span);
        }
        if let ExprKind::Ref(ident) = &f.iter.kind {
            let local = self.frames.iter().any(|frame| frame.defines(&ident.name));
            if !local && self.params.iter().any(|p| p.name == ident.name) {
                self.param_for = Some((ident.name.as_str(), f.iter.span));
            }
        }
        self.listing_fors += usize::from(iter.listing);
        self.push_frame(&f.body.lets, Some((&f.var, var_value)));
        let body = self.expr(&f.body.value);
        self.pop_frame();
        self.listing_fors -= usize::from(iter.listing);
        (self.model_for, self.param_for) = outer;

        let times = count.unwrap_or(1);
        let mut bound = body.bound.clone().times(times);
        bound.unproven = bound.unproven.or(unproven);
        let mut value = Value::of(Type::List(Box::new(body.ty.clone())), bound);
        value.elem = Some(body.bound);
        value.len = count;
        value.elem_len = body.len;
        value.reads = body.reads.saturating_mul(times);
        value.results = body.results.saturating_mul(times);
        value.answer = body.answer;
        value.outputs = body.outputs;
        value
    }

    /// Whether the plan can decide `expr` before the run: it reads no agent's answer
    /// or result and no file (parameters count as decided: their values are known
    /// where the plan starts).
    fn decided_when_planned(&mut self, expr: &'p Expr) -> bool {
        match &expr.kind {
            ExprKind::Text(_) | ExprKind::Quantity(_) | ExprKind::Bool(_) => true,
            ExprKind::Ref(ident) => self
                .local(&ident.name)
                .is_none_or(|v| v.results == 0 && !v.answer && v.reads == 0),
            ExprKind::Field(base, _) | ExprKind::Not(base) => self.decided_when_planned(base),
            ExprKind::Binary(_, left, right) => {
                self.decided_when_planned(left) && self.decided_when_planned(right)
            }
            ExprKind::List(items) => items.iter().all(|item| self.decided_when_planned(item)),
            ExprKind::Call(call)
                if matches!(call.callee.name.as_str(), "len" | "files" | "dirs") =>
            {
                call.args
                    .iter()
                    .all(|arg| self.decided_when_planned(&arg.value))
            }
            ExprKind::Call(_) | ExprKind::For(_) | ExprKind::If(_) => false,
        }
    }

    fn if_expr(&mut self, i: &'p ast::If) -> Value {
        let cond = self.expr(&i.cond);
        self.expect_bool(&cond, i.cond.span, "an `if` condition");
        // A condition the plan decides may be where a recursion ends (E034 is not
        // reported inside one); on a model's value, the plan takes both branches.
        let decided = self.decided_when_planned(&i.cond);
        self.decided_ifs += usize::from(decided);
        self.push_frame(&i.then.lets, None);
        let then = self.expr(&i.then.value);
        self.pop_frame();
        self.push_frame(&i.otherwise.lets, None);
        let otherwise = self.expr(&i.otherwise.value);
        self.pop_frame();
        self.decided_ifs -= usize::from(decided);
        let ty = if otherwise.ty.fits(&then.ty) {
            then.ty.clone()
        } else if then.ty.fits(&otherwise.ty) {
            otherwise.ty.clone()
        } else {
            self.emit(diagnostics::type_mismatch(
                i.otherwise.value.span,
                "the `else` branch, like the `if` branch,",
                &then.ty.to_string(),
                &otherwise.ty.to_string(),
            ));
            Type::Unknown
        };
        let mut value = Value::of(ty, then.bound.max(otherwise.bound));
        value.elem = match (then.elem, otherwise.elem) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        value.len = then.len.zip(otherwise.len).map(|(a, b)| a.max(b));
        value.elem_len = then.elem_len.zip(otherwise.elem_len).map(|(a, b)| a.max(b));
        value.len_bound = (then.len.or(then.len_bound))
            .zip(otherwise.len.or(otherwise.len_bound))
            .map(|(a, b)| a.max(b));
        value.reads = then.reads.max(otherwise.reads);
        value.results = then.results.max(otherwise.results);
        value.listing = then.listing || otherwise.listing;
        value.answer = then.answer || otherwise.answer;
        value.outputs = [then.outputs, otherwise.outputs].concat();
        value
    }

    fn call(&mut self, call: &'p Call, span: Span) -> Value {
        let binding = self.lookup(&call.callee.name);
        let Some(binding) = binding else {
            if call.method.is_none() {
                if let Some(value) = self.builtin(call, span) {
                    return value;
                }
            }
            let suggestion = if self.checker.spend_suggestion() {
                let names = self.checker.visible_names(self.module);
                let mut candidates: Vec<&str> = names.iter().map(String::as_str).collect();
                candidates.extend(BUILTINS);
                diagnostics::suggest(&call.callee.name, candidates)
            } else {
                None
            };
            let kind = if call.method.is_some() {
                "skill"
            } else {
                "agent, workflow or skill"
            };
            self.emit(diagnostics::unknown_name(
                call.callee.span,
                kind,
                &call.callee.name,
                suggestion,
                None,
            ));
            self.discard_args(call);
            return Value::unknown();
        };
        match binding.kind {
            ItemKind::Agent if call.method.is_none() => self.agent_call(binding.item, call, span),
            ItemKind::Workflow | ItemKind::Skill => match self.checker.call_edge(binding, call) {
                Some(edge) => {
                    if edge.via_skill.is_some() {
                        self.share.findings.used_items.push(edge.target);
                    }
                    self.workflow_call(edge.target, call)
                }
                None => {
                    let (message, help) = match (&call.method, binding.kind) {
                        (Some(method), ItemKind::Skill) => {
                            let workflows = self.skill_workflows(binding.item);
                            (
                                format!(
                                    "skill `{}` has no workflow `{}`",
                                    call.callee.name, method.name
                                ),
                                diagnostics::suggest(
                                    &method.name,
                                    workflows.iter().map(String::as_str),
                                )
                                .unwrap_or_else(|| {
                                    format!(
                                        "its workflows are {}",
                                        diagnostics::backticked(&workflows)
                                    )
                                }),
                            )
                        }
                        (Some(_), _) => (
                            format!("`{}` is a workflow, not a skill", call.callee.name),
                            format!("call it directly: `{}(...)`", call.callee.name),
                        ),
                        (None, _) => (
                            format!("skill `{}` has no default workflow", call.callee.name),
                            "list a workflow in the skill; the first is its default".to_string(),
                        ),
                    };
                    self.emit(diagnostics::invalid_call(
                        call.callee
                            .span
                            .to(call.method.as_ref().map_or(call.callee.span, |m| m.span)),
                        message,
                        help,
                    ));
                    self.discard_args(call);
                    Value::unknown()
                }
            },
            kind => {
                self.emit(diagnostics::invalid_call(
                    call.callee.span,
                    format!(
                        "`{}` is a {}, which cannot be called",
                        call.callee.name,
                        kind.noun()
                    ),
                    "call an agent, a workflow or a skill".to_string(),
                ));
                self.discard_args(call);
                Value::unknown()
            }
        }
    }

    fn skill_workflows(&self, skill: ItemRef) -> Vec<String> {
        match self.checker.item(skill) {
            Item::Skill(s) => s.workflows.iter().map(|w| w.name.clone()).collect(),
            _ => Vec::new(),
        }
    }

    /// Evaluates arguments of a call that could not be resolved, for their own errors.
    fn discard_args(&mut self, call: &'p Call) {
        for arg in &call.args {
            self.expr(&arg.value);
        }
    }

    /// Holds a workflow call's arguments to the bounds its parameters declare
    /// (`pai::E033`): the callee's proof took them at their word. Sizes that are
    /// guesses are left to `pai plan`, which measures them. An agent's proof counts
    /// what it is actually handed, so its parameters' bounds are not needed there.
    fn hold_to_bounds(&mut self, call: &'p Call, params: &[ast::Param], args: &[(String, Value)]) {
        let callee = call.callee.name.as_str();
        for (name, value) in args {
            let Some(param) = params.iter().find(|p| &p.name.name == name) else {
                continue;
            };
            let Some(arg) =
                (call.args.iter()).find(|a| a.name.as_ref().is_some_and(|n| &n.name == name))
            else {
                continue; // a default, held to its bounds where it is declared
            };
            let span = arg.value.span;
            let what = format!("argument `{name}` of `{callee}`");
            let max = param.max.as_ref().and_then(ast::Quantity::as_count);
            let guessed = |bound: &Bound| !bound.assumed.is_empty() || bound.unproven.is_some();
            if value.ty.is_list() {
                if let (Some(max), Some(len)) = (max, value.len) {
                    if len > max {
                        self.emit(diagnostics::over_bound(span, &what, len, "elements", max));
                    }
                }
                let elem = value.elem.clone().unwrap_or_else(|| value.bound.element());
                // The elements of a literal list are measured as they render: a list
                // element with its brackets and separators.
                let literal = match &arg.value.kind {
                    ExprKind::List(items) => (items.iter())
                        .map(|item| literal_rendered_bytes(item).map(budget::tokens_of_bytes))
                        .try_fold(0u64, |largest, tokens| Some(largest.max(tokens?))),
                    _ => None,
                };
                if let Some(element_max) = param.ty.element_max() {
                    let largest = literal.unwrap_or(elem.total());
                    if (literal.is_some() || !guessed(&elem)) && largest > element_max {
                        self.emit(diagnostics::over_bound(
                            span,
                            &format!("an element of {what}"),
                            largest,
                            "tokens",
                            element_max,
                        ));
                    }
                }
            } else if value.ty == Type::Text {
                if let Some(max) =
                    max.filter(|&max| !guessed(&value.bound) && value.bound.total() > max)
                {
                    self.emit(diagnostics::over_bound(
                        span,
                        &what,
                        value.bound.total(),
                        "tokens",
                        max,
                    ));
                }
            }
        }
    }

    /// Matches named arguments to parameters; returns each parameter's value.
    fn arguments(
        &mut self,
        call: &'p Call,
        target_module: ModuleId,
        params: &'p [ast::Param],
    ) -> Vec<(String, Value)> {
        let callee = call.callee.name.as_str();
        let mut given: HashMap<&str, (Span, Value)> = HashMap::new();
        let mut positional = false;
        for arg in &call.args {
            let value = self.expr(&arg.value);
            let Some(name) = &arg.name else {
                positional = true;
                let hint = params
                    .get(given.len())
                    .map_or("name", |p| p.name.name.as_str());
                self.emit(diagnostics::invalid_call(
                    arg.span,
                    format!("`{callee}` takes named arguments"),
                    format!("name the argument: `{hint}: ...`"),
                ));
                continue;
            };
            let Some(param) = params.iter().find(|p| p.name.name == name.name) else {
                let names: Vec<&str> = params.iter().map(|p| p.name.name.as_str()).collect();
                let list = if names.is_empty() {
                    "none".to_string()
                } else {
                    diagnostics::backticked(&names)
                };
                self.emit(diagnostics::unknown_argument(
                    name.span,
                    callee,
                    &name.name,
                    diagnostics::suggest(&name.name, names.iter().copied()),
                    &list,
                ));
                continue;
            };
            if let Some((first, _)) = given.get(name.name.as_str()) {
                self.emit(diagnostics::repeated_argument(
                    name.span, &name.name, *first,
                ));
                continue;
            }
            let expected = self.checker.resolve_type_quiet(target_module, &param.ty);
            let text_for_path = value.literal_text && expected == Type::Path;
            if !text_for_path && !value.ty.fits(&expected) {
                self.emit(diagnostics::type_mismatch(
                    arg.value.span,
                    &format!("argument `{}` of `{callee}`", name.name),
                    &expected.to_string(),
                    &value.ty.to_string(),
                ));
            }
            given.insert(&name.name, (name.span, value));
        }
        let mut out = Vec::new();
        for param in params {
            match given.remove(param.name.name.as_str()) {
                Some((_, value)) => out.push((param.name.name.clone(), value)),
                None => match &param.default {
                    Some(default) => {
                        let ty = literal_type(default).unwrap_or(Type::Unknown);
                        let tokens = match &default.kind {
                            ExprKind::Text(t) => budget::tokens_of_bytes(t.value.len()),
                            _ => budget::tokens_of_bytes(default.span.len()),
                        };
                        out.push((param.name.name.clone(), Value::of(ty, Bound::of(tokens))));
                    }
                    // A positional argument was already reported; it probably meant this.
                    None if positional => {}
                    None => {
                        let ty = self.checker.resolve_type_quiet(target_module, &param.ty);
                        let decl = param.name.span;
                        let mut diagnostic = diagnostics::missing_argument(
                            call.args_span,
                            callee,
                            &param.name.name,
                            &ty.to_string(),
                            decl,
                        );
                        if let Some(related) = diagnostic.related.first_mut() {
                            related.file = Some(self.checker.program.module(target_module).file);
                        }
                        self.emit(diagnostic);
                    }
                },
            }
        }
        out
    }

    fn workflow_call(&mut self, target: ItemRef, call: &'p Call) -> Value {
        let program = self.checker.program;
        let Item::Workflow(workflow) = &program.module(target.module).ast.items[target.index]
        else {
            return Value::unknown();
        };
        let args = self.arguments(call, target.module, &workflow.params);
        self.hold_to_bounds(call, &workflow.params, &args);
        if let (Some(list), 0) = (self.model_for, self.decided_ifs) {
            if self.checker.calls_reach(target, self.item) {
                self.emit(diagnostics::recursion_through_model_list(
                    call.callee.span,
                    &workflow.name.name,
                    list,
                ));
            }
        } else if target == self.item && self.decided_ifs == 0 && self.listing_fors == 0 {
            // The next level's `for` walks what this call hands it: a model's answer.
            let handed = self.param_for.and_then(|(param, list)| {
                let (_, value) = args.iter().find(|(name, _)| name == param)?;
                value.answer.then_some((param, list))
            });
            if let Some((param, list)) = handed {
                let argument = call
                    .args
                    .iter()
                    .find(|arg| arg.name.as_ref().is_some_and(|n| n.name == param))
                    .map_or(call.callee.span, |arg| arg.value.span);
                self.emit(diagnostics::recursion_through_model_list_argument(
                    call.callee.span,
                    &workflow.name.name,
                    param,
                    list,
                    argument,
                ));
            } else {
                // Nothing the plan evaluates changes from one level to the next.
                self.emit(diagnostics::recursion_without_end(
                    call.callee.span,
                    &workflow.name.name,
                ));
            }
        }
        // What the callee reads and hands on stays inside it: its own calls are checked
        // in its own body.
        let checker = self.checker;
        let mut value = checker.workflow_value(self.share, target);
        value.reads = 0;
        value.outputs.clear();
        value
    }

    fn agent_call(&mut self, target: ItemRef, call: &'p Call, span: Span) -> Value {
        let program = self.checker.program;
        let Item::Agent(agent) = &program.module(target.module).ast.items[target.index] else {
            return Value::unknown();
        };
        let args = self.arguments(call, target.module, &agent.params);
        // An agent's parameter `max` is a bound as a workflow's is (DESIGN §1).
        self.hold_to_bounds(call, &agent.params, &args);
        let Some(info) = self.checker.agents.get(&target) else {
            return Value::unknown();
        };
        self.prove_budget(info, target, &args, span);
        self.protocol_rules_at_call(info, &args, span);
        let summary = info.summary.unwrap_or(budget::DEFAULT_SUMMARY);
        let mut value = Value::answer(info.returns.clone(), summary);
        if info.answer_len.is_some() {
            value.len_bound = info.answer_len;
        }
        // `-> list<text max N>`: the run holds each text to N tokens, and it enters a
        // prompt fenced.
        if let Some(max) = agent.answer_element_max() {
            let each = budget::bounded_text_tokens(max, value.bound.total());
            value.elem = Some(Bound::of(each));
        }
        value
    }

    /// The context budget of one agent call (DESIGN §2).
    fn prove_budget(
        &mut self,
        info: &AgentInfo,
        target: ItemRef,
        args: &[(String, Value)],
        span: Span,
    ) {
        let agent_file = self.checker.program.module(target.module).file;
        let size_of = |name: &str| {
            args.iter()
                .find(|(n, _)| n == name)
                .map(|(_, value)| value.size())
        };
        let priced = cost::price(&info.cost, &size_of);
        let mut assumed = priced.assumed;
        let mut unproven = false;
        for (name, value) in args {
            if !info.cost.mentions(name) {
                continue;
            }
            assumed.extend(value.bound.assumed.iter().map(|a| a.what.clone()));
            unproven |= value.bound.unproven.is_some();
            for output in &value.outputs {
                self.emit(diagnostics::output_instead_of_summary(*output));
            }
        }
        // A template that reads a result's `output` (by name, or by rendering or
        // iterating it whole) is handed the full output, whose size is not its summary.
        for name in &priced.reads_output {
            assumed.push(format!(
                "the full `output` of `{name}` that the template reads ({} tokens assumed for each)",
                diagnostics::thousands(budget::ASSUMED_TEXT)
            ));
            self.emit(diagnostics::output_instead_of_summary(span));
        }
        let mut chain = priced.chain;
        // A structured answer's JSON Schema follows the prompt (`check::shape`).
        chain.push(Bound::of(info.schema_tokens), "answer schema");
        let Some(context) = info.context else {
            if !info.context_written && self.share.warned_no_context.insert((target, self.module)) {
                self.share.warned.push((target, self.module));
                let mut diagnostic = diagnostics::no_context(span, &info.name, info.span);
                if let Some(related) = diagnostic.related.first_mut() {
                    related.file = Some(agent_file);
                }
                (self.share.findings).emit_no_context(self.module, target, diagnostic);
            }
            return;
        };
        if unproven {
            // W007 already says why: the fan-out has no bound.
            return;
        }
        if chain.total() > context {
            let mut diagnostic =
                diagnostics::budget_exceeded(span, &info.name, &chain.render(), context, info.span);
            if let Some(related) = diagnostic.related.first_mut() {
                related.file = Some(agent_file);
            }
            self.emit(diagnostic);
        } else if !assumed.is_empty() {
            assumed.sort();
            assumed.dedup();
            self.emit(diagnostics::assumed_size(
                span,
                &info.name,
                &assumed.join(", "),
            ));
        }
    }

    fn protocol_rules_at_call(&mut self, info: &AgentInfo, args: &[(String, Value)], span: Span) {
        let results: u64 = args.iter().map(|(_, v)| v.results).sum();
        let reads: u64 = args.iter().map(|(_, v)| v.reads).sum();
        // Independent steps: the elements of lists of text. Lists of results are
        // children's summaries, which a parent is meant to fold; lists of paths are
        // what `reads` governs once they are read.
        let steps: Option<u64> = args
            .iter()
            .filter(|(_, v)| matches!(&v.ty, Type::List(element) if **element == Type::Text))
            .try_fold(0u64, |total, (_, v)| Some(total.saturating_add(v.len?)));
        let mut found = Vec::new();
        for rules in &self.rules {
            if let Some((limit, rule)) = rules.fanout {
                if results > limit {
                    found.push(rules.locate(diagnostics::protocol_fanout(
                        span,
                        &rules.name,
                        &format!("`{}` is handed {results} results, which", info.name),
                        limit,
                        rule,
                    )));
                }
            }
            if let Some((limit, rule)) = rules.summary {
                if info.summary.is_none_or(|s| s > limit) {
                    found.push(rules.locate(diagnostics::protocol_summary(
                        span,
                        &rules.name,
                        &info.name,
                        info.summary,
                        limit,
                        rule,
                    )));
                }
            }
            if let Some((limit, rule)) = rules.steps {
                if steps.is_none_or(|n| n >= limit) {
                    found.push(rules.locate(diagnostics::protocol_delegate_steps(
                        span,
                        &rules.name,
                        &info.name,
                        steps,
                        limit,
                        rule,
                    )));
                }
            }
            if let Some((limit, rule)) = rules.reads {
                if reads >= limit {
                    found.push(rules.locate(diagnostics::protocol_delegate(
                        span,
                        &rules.name,
                        &info.name,
                        reads,
                        limit,
                        rule,
                    )));
                }
            }
        }
        for diagnostic in found {
            self.emit(diagnostic);
        }
    }

    /// `files`, `dirs`, `read`, `len`, `exec`: positional arguments.
    fn builtin(&mut self, call: &'p Call, span: Span) -> Option<Value> {
        let name = call.callee.name.as_str();
        let params: &[(&str, Type)] = match name {
            "files" => &[("dir", Type::Path), ("glob", Type::Text)],
            "dirs" => &[("dir", Type::Path)],
            "read" => &[("path", Type::Path)],
            "len" => &[("value", Type::Unknown)],
            "exec" => &[("argv", Type::List(Box::new(Type::Text)))],
            _ => return None,
        };
        let mut values = Vec::new();
        for arg in &call.args {
            let value = self.expr(&arg.value);
            if let Some(arg_name) = &arg.name {
                self.emit(diagnostics::invalid_call(
                    arg_name.span,
                    format!("builtin `{name}` takes positional arguments"),
                    format!(
                        "drop the name: `{name}({})`",
                        params
                            .iter()
                            .map(|(p, _)| *p)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            values.push((arg.value.span, value));
        }
        if values.len() != params.len() {
            self.emit(diagnostics::invalid_call(
                call.args_span,
                format!(
                    "builtin `{name}` takes {} argument{}, found {}",
                    params.len(),
                    if params.len() == 1 { "" } else { "s" },
                    values.len()
                ),
                format!(
                    "write `{name}({})`",
                    params
                        .iter()
                        .map(|(p, _)| *p)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        for ((arg_span, value), (param, expected)) in values.iter().zip(params) {
            let text_for_path = value.literal_text && *expected == Type::Path;
            let ok = match (name, &value.ty) {
                ("len", ty) => ty.is_list() || matches!(ty, Type::Text | Type::Unknown),
                _ => text_for_path || value.ty.fits(expected),
            };
            if !ok {
                let expected = if name == "len" {
                    "list<_> or text".to_string()
                } else {
                    expected.to_string()
                };
                self.emit(diagnostics::type_mismatch(
                    *arg_span,
                    &format!("argument `{param}` of `{name}`"),
                    &expected,
                    &value.ty.to_string(),
                ));
            }
        }
        // An argv that is always empty (`[]`, `[] + []`) names no program: it passed check
        // and failed the run.
        if let (true, Some((_, argv))) = (name == "exec", values.first()) {
            if argv.ty.is_list() && argv.len == Some(0) {
                self.emit(diagnostics::invalid_call(
                    call.args_span,
                    "`exec` is handed an empty argv: it names no program to run".to_string(),
                    "give the program and its arguments: `exec([\"cargo\", \"test\"])`".to_string(),
                ));
            }
        }
        // A literal glob is compiled now: a bad one (`"["`) passed check and failed the plan.
        if name == "files" {
            let named = |arg: &&ast::Arg| arg.name.as_ref().is_some_and(|n| n.name == "glob");
            let glob =
                (call.args.iter().find(named).or_else(|| call.args.get(1))).and_then(|arg| {
                    match &arg.value.kind {
                        ExprKind::Text(text) => Some((arg.value.span, text.value.as_str())),
                        _ => None,
                    }
                });
            if let Some((span, pattern)) = glob {
                if let Err(error) = globset::Glob::new(pattern) {
                    self.emit(diagnostics::invalid_call(
                        span,
                        format!("`{pattern}` is not a valid glob: {}", error.kind()),
                        "use a glob such as `*.rs` or `*.{md,txt}` (it matches names in the one directory listed)".to_string(),
                    ));
                }
            }
        }
        Some(match name {
            "files" | "dirs" => {
                let mut value = Value::of(
                    Type::List(Box::new(Type::Path)),
                    Bound::of(budget::PATH_TOKENS),
                );
                value.bound.unproven = Some(span);
                value.elem = Some(Bound::of(budget::PATH_TOKENS));
                value.listing = true;
                value
            }
            "read" => {
                let mut value = Value::of(
                    Type::Text,
                    Bound::assumed(
                        budget::ASSUMED_TEXT,
                        format!(
                            "`read(...)` ({} tokens assumed for a file)",
                            diagnostics::thousands(budget::ASSUMED_TEXT)
                        ),
                        span,
                    ),
                );
                value.reads = 1;
                value
            }
            "len" => Value::scalar(Type::Number),
            _ => Value::answer(Type::Result, budget::DEFAULT_SUMMARY),
        })
    }
}

/// How many results a value of type `ty` (a list of `len` elements of at most
/// `element_max` tokens, when known) can carry: a list of unknown length counts
/// [`budget::ASSUMED_LIST`]; an element bounded in tokens holds no more results than
/// fit in them, each with what a result adds around its summary.
fn results_in(ty: &Type, len: Option<u64>, element_max: Option<u64>) -> u64 {
    match ty {
        Type::Result | Type::Record(_) => 1,
        Type::List(element) => {
            let inner = results_in(element, None, None);
            let each = match element_max {
                Some(max) if inner > 1 => inner.min((max / budget::RESULT_OVERHEAD).max(1)),
                _ => inner,
            };
            each.saturating_mul(len.unwrap_or(budget::ASSUMED_LIST))
        }
        _ => 0,
    }
}

/// The builtin functions, for suggestions.
pub const BUILTINS: &[&str] = &["files", "dirs", "read", "len", "exec"];
