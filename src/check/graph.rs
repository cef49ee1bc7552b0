//! The call graph between workflows: recursion must carry `depth`, skills must not
//! call each other in a cycle, and each protocol governs the workflow that `follows`
//! it plus every workflow that one calls directly (not through another skill).

use std::collections::{BTreeSet, VecDeque};

use super::DiGraphMap;
use foldhash::{HashMap, HashSet, HashSetExt};
use petgraph::algo::kosaraju_scc;

use super::modules::ModuleId;
use super::scope::{skill_workflow, Binding, ItemKind, ItemRef};
use super::Checker;
use crate::diagnostics;
use crate::syntax::ast::{self, Expr, ExprKind, Item};

/// One call from a workflow body to another workflow.
#[derive(Debug, Clone, Copy)]
pub struct Edge {
    pub target: ItemRef,
    /// The skill the call went through, if it named a skill.
    pub via_skill: Option<ItemRef>,
}

/// Workflow-to-workflow calls, by calling workflow.
#[derive(Debug, Default)]
pub struct CallGraph {
    pub edges: HashMap<ItemRef, Vec<Edge>>,
}

impl CallGraph {
    /// The calls as a graph, callers added in source order and each one's calls in the
    /// order written: walks over it (which workflow is analysed first, and so which of
    /// several calls of an agent without a `context` gets W010) do not depend on
    /// hashing.
    pub fn graph(&self) -> DiGraphMap<ItemRef, ()> {
        let mut callers: Vec<_> = self.edges.iter().collect();
        callers.sort_by_key(|(from, _)| **from);
        let mut graph = DiGraphMap::new();
        for (from, edges) in callers {
            graph.add_node(*from);
            for edge in edges {
                graph.add_edge(*from, edge.target, ());
            }
        }
        graph
    }
}

/// Walks every expression of a workflow body, inner ones included.
pub fn walk_exprs<'a>(workflow: &'a ast::Workflow, visit: &mut dyn FnMut(&'a Expr)) {
    for binding in &workflow.lets {
        walk(&binding.value, visit);
    }
    for stmt in &workflow.returns_stmts {
        walk(&stmt.value, visit);
    }
}

/// Walks `expr` and everything inside it, outermost first.
pub fn walk<'a>(expr: &'a Expr, visit: &mut dyn FnMut(&'a Expr)) {
    visit(expr);
    match &expr.kind {
        ExprKind::Text(_) | ExprKind::Quantity(_) | ExprKind::Bool(_) | ExprKind::Ref(_) => {}
        ExprKind::List(items) => items.iter().for_each(|item| walk(item, visit)),
        ExprKind::Field(base, _) => walk(base, visit),
        ExprKind::Call(call) => call.args.iter().for_each(|arg| walk(&arg.value, visit)),
        ExprKind::Binary(_, left, right) => {
            walk(left, visit);
            walk(right, visit);
        }
        ExprKind::Not(inner) => walk(inner, visit),
        ExprKind::For(f) => {
            walk(&f.iter, visit);
            walk_block(&f.body, visit);
        }
        ExprKind::If(i) => {
            walk(&i.cond, visit);
            walk_block(&i.then, visit);
            walk_block(&i.otherwise, visit);
        }
    }
}

fn walk_block<'a>(block: &'a ast::Block, visit: &mut dyn FnMut(&'a Expr)) {
    for binding in &block.lets {
        walk(&binding.value, visit);
    }
    walk(&block.value, visit);
}

/// The graph of `lets`: an edge `i -> j` when binding `i` references (or waits
/// `after`) binding `j` of the same block.
pub fn binding_graph(lets: &[ast::Let]) -> DiGraphMap<usize, ()> {
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
                graph.add_edge(i, j, ());
            }
        }
    }
    graph
}

impl Checker<'_> {
    /// The workflow a call resolves to from `module`, with the skill it went through.
    pub(super) fn call_target(&mut self, module: ModuleId, call: &ast::Call) -> Option<Edge> {
        let binding = self.lookup(module, &call.callee.name)?;
        let edge = self.call_edge(binding, call)?;
        if edge.via_skill.is_some() {
            self.used_items.insert(edge.target);
        }
        Some(edge)
    }

    /// The workflow a call of `binding` (its callee, already looked up) resolves to,
    /// without marking anything used: [`Checker::call_target`] marks a skill's workflow
    /// as the edge's target.
    pub(super) fn call_edge(&self, binding: Binding, call: &ast::Call) -> Option<Edge> {
        match binding.kind {
            ItemKind::Workflow if call.method.is_none() => Some(Edge {
                target: binding.item,
                via_skill: None,
            }),
            ItemKind::Skill => Some(Edge {
                target: skill_workflow(
                    self.program,
                    &self.scopes,
                    binding.item,
                    call.method.as_ref(),
                )?,
                via_skill: Some(binding.item),
            }),
            _ => None,
        }
    }

    /// Whether workflow `from` calls `to`, directly or through others (or is it).
    pub(super) fn calls_reach(&self, from: ItemRef, to: ItemRef) -> bool {
        let mut seen: HashSet<ItemRef> = HashSet::new();
        let mut next = vec![from];
        while let Some(item) = next.pop() {
            if item == to {
                return true;
            }
            if !seen.insert(item) {
                continue;
            }
            if let Some(edges) = self.calls.edges.get(&item) {
                next.extend(edges.iter().map(|edge| edge.target));
            }
        }
        false
    }

    pub(super) fn build_call_graph(&mut self) {
        let program = self.program;
        for (id, module) in program.modules.iter().enumerate() {
            for (index, item) in module.ast.items.iter().enumerate() {
                let Item::Workflow(workflow) = item else {
                    continue;
                };
                let mut calls = Vec::new();
                walk_exprs(workflow, &mut |expr| {
                    if let ExprKind::Call(call) = &expr.kind {
                        calls.push(call);
                    }
                });
                let from = ItemRef {
                    module: ModuleId(id),
                    index,
                };
                let edges: Vec<Edge> = calls
                    .into_iter()
                    .filter_map(|call| self.call_target(ModuleId(id), call))
                    .collect();
                self.calls.edges.insert(from, edges);
            }
        }
        self.check_recursion();
        self.check_skill_cycles();
        self.assign_protocols();
    }

    fn check_recursion(&mut self) {
        // A workflow that declares `depth` may recurse: its cycle is not worth a path.
        let without_depth =
            |workflow| matches!(self.item(workflow), Item::Workflow(decl) if decl.depth.is_empty());
        for (workflow, path, omitted) in cycles(&self.calls.graph(), without_depth) {
            let Item::Workflow(decl) = self.item(workflow) else {
                continue;
            };
            let names = self.render_path(&path, omitted);
            let (name, span) = (decl.name.name.clone(), decl.name.span);
            self.emit(
                workflow.module,
                diagnostics::recursion_without_depth(span, &name, &names),
            );
        }
    }

    fn check_skill_cycles(&mut self) {
        let mut graph: DiGraphMap<ItemRef, ()> = DiGraphMap::new();
        let program = self.program;
        for (id, module) in program.modules.iter().enumerate() {
            for (index, item) in module.ast.items.iter().enumerate() {
                let Item::Skill(skill) = item else { continue };
                let from = ItemRef {
                    module: ModuleId(id),
                    index,
                };
                graph.add_node(from);
                let starts: Vec<ItemRef> = skill
                    .workflows
                    .iter()
                    .filter_map(|w| {
                        let binding = self.scopes.get(id)?.names.get(&w.name)?;
                        (binding.kind == ItemKind::Workflow).then_some(binding.item)
                    })
                    .collect();
                for called in self.skills_called_from(starts) {
                    graph.add_edge(from, called, ());
                }
            }
        }
        for (skill, path, omitted) in cycles(&graph, |_| true) {
            let names = self.render_path(&path, omitted);
            let span = self.item_ident(skill).span;
            self.emit(skill.module, diagnostics::skill_cycle(span, &names));
        }
    }

    /// The skills called (through a skill call) by `starts` or any workflow they call
    /// directly.
    fn skills_called_from(&self, starts: Vec<ItemRef>) -> BTreeSet<ItemRef> {
        let mut skills = BTreeSet::new();
        let mut seen = BTreeSet::new();
        let mut queue: VecDeque<ItemRef> = starts.into_iter().collect();
        while let Some(workflow) = queue.pop_front() {
            if !seen.insert(workflow) {
                continue;
            }
            for edge in self.calls.edges.get(&workflow).into_iter().flatten() {
                match edge.via_skill {
                    Some(skill) => {
                        skills.insert(skill);
                    }
                    None => queue.push_back(edge.target),
                }
            }
        }
        skills
    }

    fn assign_protocols(&mut self) {
        let program = self.program;
        for (id, module) in program.modules.iter().enumerate() {
            for (index, item) in module.ast.items.iter().enumerate() {
                let Item::Workflow(workflow) = item else {
                    continue;
                };
                let Some(follows) = workflow.follows.first() else {
                    continue;
                };
                let Some(binding) = self
                    .scopes
                    .get(id)
                    .and_then(|s| s.names.get(&follows.name))
                    .filter(|b| b.kind == ItemKind::Protocol)
                    .copied()
                else {
                    continue;
                };
                let mut seen = BTreeSet::new();
                let mut queue = VecDeque::from([ItemRef {
                    module: ModuleId(id),
                    index,
                }]);
                while let Some(current) = queue.pop_front() {
                    if !seen.insert(current) {
                        continue;
                    }
                    let list = self.governed.entry(current).or_default();
                    if !list.contains(&binding.item) {
                        list.push(binding.item);
                    }
                    for edge in self.calls.edges.get(&current).into_iter().flatten() {
                        if edge.via_skill.is_none() {
                            queue.push_back(edge.target);
                        }
                    }
                }
            }
        }
    }

    /// `a -> b -> a` ([`diagnostics::arrow_path`]).
    fn render_path(&self, path: &[ItemRef], omitted: usize) -> String {
        let names: Vec<&str> = path
            .iter()
            .map(|item| self.item_ident(*item).name.as_str())
            .collect();
        diagnostics::arrow_path(&names, omitted)
    }
}

/// Every node that lies on a cycle of `graph` and that `wanted` accepts, with a path
/// from it back to itself: shortened as [`diagnostics::arrow_path`] shows it (its
/// first and last nodes, and how many are left out between them), so that the paths of
/// a cycle of N members take space linear in N, not quadratic.
pub fn cycles(
    graph: &DiGraphMap<ItemRef, ()>,
    wanted: impl Fn(ItemRef) -> bool,
) -> Vec<(ItemRef, Vec<ItemRef>, usize)> {
    let mut found = Vec::new();
    for component in kosaraju_scc(graph) {
        let Some(&first) = component.first() else {
            continue;
        };
        if component.len() == 1 && !graph.contains_edge(first, first) {
            continue;
        }
        let members: BTreeSet<ItemRef> = component.iter().copied().collect();
        let next = |node| {
            graph
                .neighbors(node)
                .filter(|n| members.contains(n))
                .collect()
        };
        // One search finds a cycle through the first member; every member on it gets
        // that cycle, turned to start at it, so a ring of N costs one search, not N.
        let mut known: Option<Vec<ItemRef>> = None;
        for &member in members.iter().filter(|&&member| wanted(member)) {
            let ring = known.get_or_insert_with(|| cycle_path(member, next));
            let (path, omitted) = match ring.iter().position(|&n| n == member) {
                Some(at) if ring.len() > 1 => shortened_ring(ring, at),
                _ => shortened(cycle_path(member, next)),
            };
            found.push((member, path, omitted));
        }
    }
    found
}

/// The cycle `ring` (its first node repeated at its end) turned to start at
/// `ring[at]`, shortened: without building the whole turned path.
fn shortened_ring<T: Copy>(ring: &[T], at: usize) -> (Vec<T>, usize) {
    let open = ring.get(..ring.len().saturating_sub(1)).unwrap_or_default();
    let turned = || open.iter().skip(at).chain(open.iter().take(at)).copied();
    let len = open.len() + 1; // back to the start
    if len <= diagnostics::PATH_NAMES {
        let mut path: Vec<T> = turned().collect();
        path.extend(path.first().copied());
        return (path, 0);
    }
    let mut path: Vec<T> = turned().take(diagnostics::PATH_HEAD).collect();
    let last = turned().skip(len - diagnostics::PATH_TAIL);
    path.extend(last);
    path.extend(open.get(at).copied());
    (path, len - diagnostics::PATH_HEAD - diagnostics::PATH_TAIL)
}

/// `path` shortened as [`diagnostics::arrow_path`] shows it.
fn shortened<T: Copy>(path: Vec<T>) -> (Vec<T>, usize) {
    if path.len() <= diagnostics::PATH_NAMES {
        return (path, 0);
    }
    let omitted = path.len() - diagnostics::PATH_HEAD - diagnostics::PATH_TAIL;
    let mut kept = path;
    kept.drain(diagnostics::PATH_HEAD..diagnostics::PATH_HEAD + omitted);
    (kept, omitted)
}

/// A path from `start` back to `start`, found breadth-first over `next`.
pub fn cycle_path<T: Copy + Ord>(start: T, next: impl Fn(T) -> Vec<T>) -> Vec<T> {
    let mut parent: std::collections::BTreeMap<T, T> = std::collections::BTreeMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(node) = queue.pop_front() {
        for n in next(node) {
            if n == start {
                let mut path = vec![start];
                let mut current = node;
                while current != start {
                    path.push(current);
                    match parent.get(&current) {
                        Some(&p) => current = p,
                        None => break,
                    }
                }
                path.push(start);
                let last = path.len() - 1;
                if let Some(middle) = path.get_mut(1..last) {
                    middle.reverse();
                }
                return path;
            }
            if let std::collections::btree_map::Entry::Vacant(entry) = parent.entry(n) {
                entry.insert(node);
                queue.push_back(n);
            }
        }
    }
    vec![start, start]
}

#[cfg(test)]
mod tests {
    use super::{cycle_path, shortened, shortened_ring};

    #[test]
    fn cycle_path_goes_round_once() {
        // a(0) -> b(1) -> c(2) -> a(0)
        let next = |n: u8| vec![(n + 1) % 3];
        assert_eq!(cycle_path(0, next), vec![0, 1, 2, 0]);
        assert_eq!(cycle_path(5u8, |_| vec![5]), vec![5, 5]);
    }

    #[test]
    fn a_ring_turns_to_start_anywhere() {
        assert_eq!(shortened_ring(&[0, 1, 2, 0], 0), (vec![0, 1, 2, 0], 0));
        assert_eq!(shortened_ring(&[0, 1, 2, 0], 2), (vec![2, 0, 1, 2], 0));
        assert_eq!(shortened_ring(&[5, 5], 0), (vec![5, 5], 0));
        // A ring of 20 (and back): 21 names, 6 + 3 kept, 12 left out.
        let ring: Vec<u32> = (0..20).chain([0]).collect();
        let (path, omitted) = shortened_ring(&ring, 5);
        assert_eq!(path, vec![5, 6, 7, 8, 9, 10, 3, 4, 5]);
        assert_eq!(omitted, 12);
        let whole: Vec<u32> = (5..20).chain(0..6).collect();
        assert_eq!(shortened(whole), (vec![5, 6, 7, 8, 9, 10, 3, 4, 5], 12));
    }
}
