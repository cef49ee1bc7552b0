//! The order workflow bodies are analysed in, and the threads they are shared out to.
//!
//! The call graph's strongly connected components are analysed callees first. For a big
//! program they go level by level (a component's level is one more than the highest
//! level of the components it calls), a level's components shared out between the
//! cores, each analysed against the checker, which it only reads ([`Share`]). What each
//! found is applied in the order of a single thread, so the output never depends on the
//! threads (docs/checking.md, "Threads").

use std::sync::atomic::Ordering;

use foldhash::{HashMap, HashMapExt};
use petgraph::algo::kosaraju_scc;

use super::analyze::Share;
use super::scope::ItemRef;
use super::{Checker, Findings, SUGGESTION_BUDGET};
use crate::syntax::ast::Item;

impl Checker<'_> {
    /// The threads worth analysing the program's workflows on: one per core when
    /// their text is big, one otherwise.
    pub(super) fn analysis_threads(&self) -> usize {
        let workflow_bytes = (self.program.modules.iter())
            .flat_map(|module| &module.ast.items)
            .map(|item| match item {
                Item::Workflow(workflow) => workflow.span.len(),
                _ => 0,
            })
            .sum();
        crate::parallel::threads_for(workflow_bytes)
    }

    /// Analyses every workflow, on up to `threads` threads; what is found, and in
    /// which order, is the same for any number.
    pub(super) fn analyze_workflows(&mut self, threads: usize) {
        // Callees first (Kosaraju, iterative, yields strongly connected components in reverse
        // topological order), so calls find their callee already analysed.
        let components = kosaraju_scc(&self.calls.graph());
        if threads > 1 && components.len() > 1 {
            let spent = self.suggestions_spent.load(Ordering::Relaxed);
            let found = self.analyze_by_level(&components, threads);
            if self.suggestions_spent.load(Ordering::Relaxed) < SUGGESTION_BUDGET {
                for findings in found {
                    self.apply(findings);
                }
                return;
            }
            // A suggestion was refused, and which one depended on the order the threads
            // asked in: analyse again on this thread, where the order is fixed.
            self.workflows.clear();
            self.suggestions_spent.store(spent, Ordering::Relaxed);
        }
        for component in &components {
            let share = self.analyze_component(component);
            self.workflows.extend(share.states);
            self.apply(share.findings);
        }
    }

    /// Analyses `components` (in Kosaraju's order) level by level: a component's level
    /// is one more than the highest level of the components it calls, so a level's
    /// components only call into earlier levels and are shared out between `threads`.
    /// Returns what each component found, in the order of `components`.
    fn analyze_by_level(&mut self, components: &[Vec<ItemRef>], threads: usize) -> Vec<Findings> {
        let mut component_of: HashMap<ItemRef, usize> = HashMap::new();
        let mut levels: Vec<Vec<usize>> = Vec::new();
        let mut level_of = Vec::with_capacity(components.len());
        for (index, component) in components.iter().enumerate() {
            let level = component
                .iter()
                .filter_map(|workflow| self.calls.edges.get(workflow))
                .flatten()
                .filter_map(|edge| component_of.get(&edge.target))
                .filter_map(|&callee| level_of.get(callee).map(|level| level + 1))
                .max()
                .unwrap_or(0);
            level_of.push(level);
            for &workflow in component {
                component_of.insert(workflow, index);
            }
            if levels.len() <= level {
                levels.resize_with(level + 1, Vec::new);
            }
            if let Some(members) = levels.get_mut(level) {
                members.push(index);
            }
        }
        let mut found: Vec<Option<Findings>> = components.iter().map(|_| None).collect();
        for level in &levels {
            // Past the budget the results are thrown away: stop.
            if self.suggestions_spent.load(Ordering::Relaxed) >= SUGGESTION_BUDGET {
                break;
            }
            let checker = &*self;
            let shares = crate::parallel::map_each(level, threads, |&index| {
                let component = components.get(index)?;
                Some((index, checker.analyze_component(component)))
            });
            for (index, share) in shares.into_iter().flatten() {
                self.workflows.extend(share.states);
                if let Some(slot) = found.get_mut(index) {
                    *slot = Some(share.findings);
                }
            }
        }
        found.into_iter().flatten().collect()
    }

    /// Analyses the workflows of one strongly connected component, reading the checker
    /// (its callees outside the component are analysed already).
    fn analyze_component(&self, component: &[ItemRef]) -> Share {
        let mut share = Share::default();
        for &workflow in component {
            self.workflow_value(&mut share, workflow);
        }
        share
    }
}
