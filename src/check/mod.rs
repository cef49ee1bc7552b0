//! The checker: everything `pai check` proves before anything runs (DESIGN §2).
//!
//! Passes, each in its own module:
//! - [`modules`]: read and parse every file once, resolve `use`;
//! - [`scope`]: the names each file sees, duplicates;
//! - [`items`]: settings of agents, skills, protocols and providers, record types,
//!   prompt templates ([`templates`]);
//! - [`graph`]: the call graph: recursion bounds, skill cycles, which workflows each
//!   protocol governs;
//! - [`analyze`]: workflow bodies: names, arguments, types, binding cycles, context
//!   budgets ([`budget`]) and protocol rules at each call, in the order, and on the
//!   threads, that [`levels`] gives;
//! - [`lints`]: unused things and overlapping triggers.
//!
//! Every pass collects all it finds; nothing stops at the first error.

mod analyze;
pub mod budget;
mod condense;
pub mod cost;
pub(crate) mod graph;
pub(crate) mod items;
mod levels;
mod lints;
pub mod modules;
pub(crate) mod scope;
pub mod shape;
mod templates;
pub mod types;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

pub use modules::{LoadError, ModuleId, Program};

use crate::diagnostics::{self, Code, Diagnostic, Severity};
use crate::source::SourceMap;
use scope::Scope;

/// A graph keyed by its nodes, hashed like the checker's maps.
pub(crate) type DiGraphMap<N, E> =
    petgraph::graphmap::GraphMap<N, E, petgraph::Directed, foldhash::fast::RandomState>;

/// The result of checking some files: their sources, every diagnostic (sorted), and
/// what later stages need of the checked program.
#[derive(Debug)]
pub struct Outcome {
    pub sources: SourceMap,
    pub diagnostics: Vec<Diagnostic>,
    /// The loaded modules (their sources are in `sources`).
    pub program: Program,
    /// The modules named by the caller, in order.
    pub roots: Vec<ModuleId>,
    pub(crate) scopes: Vec<Scope>,
    pub(crate) agents: HashMap<scope::ItemRef, items::AgentInfo>,
}

impl Outcome {
    /// How many errors were found.
    pub fn error_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    /// How many warnings were found.
    pub fn warning_count(&self) -> usize {
        self.diagnostics.len() - self.error_count()
    }

    /// The agent declared at `item`, if `item` is an agent.
    pub(crate) fn agent(&self, item: scope::ItemRef) -> Option<&crate::syntax::ast::Agent> {
        match self.program.module(item.module).ast.items.get(item.index)? {
            crate::syntax::ast::Item::Agent(agent) => Some(agent),
            _ => None,
        }
    }
}

/// Checks files on disk. Fails only when a named file cannot be read at all.
pub fn check_paths(paths: &[PathBuf]) -> Result<Outcome, LoadError> {
    let mut program = Program::default();
    let mut roots = Vec::new();
    for path in paths {
        roots.push(program.load_root(path)?);
    }
    Ok(check_program(program, &roots))
}

/// Checks one text that is not on disk; `use` resolves relative to `dir`.
pub fn check_text(name: &str, text: &str, dir: &Path) -> Outcome {
    let mut program = Program::default();
    let root = program.load_text(name, text, dir);
    check_program(program, &[root])
}

/// Runs every pass over a loaded program and keeps the diagnostics of `roots`.
pub fn check_program(mut program: Program, roots: &[ModuleId]) -> Outcome {
    let mut checker = Checker::new(&program);
    checker.run(None);
    let mut found = std::mem::take(&mut checker.diagnostics);
    let scopes = std::mem::take(&mut checker.scopes);
    let agents = std::mem::take(&mut checker.agents);
    drop(checker);
    found.extend(program.diagnostics.iter().cloned());

    let root_files: HashSet<_> = roots.iter().map(|&r| program.module(r).file).collect();
    let mut allows: HashMap<_, Vec<(usize, Code)>> = HashMap::new();
    for &root in roots {
        let module = program.module(root);
        let source = program.sources.get(module.file);
        for allow in &module.ast.allows {
            let (line, _) = source.line_col(allow.span.start);
            for code in &allow.codes {
                match code.name.parse::<Code>() {
                    Ok(parsed) if parsed.severity() == Severity::Warning => allows
                        .entry(module.file)
                        .or_default()
                        .push((line + 1, parsed)),
                    _ => found.push(
                        diagnostics::unknown_allow(code.span, &code.name).in_file(module.file),
                    ),
                }
            }
        }
    }
    let mut seen = BTreeSet::new();
    let mut kept: Vec<Diagnostic> = found
        .into_iter()
        .filter(|d| root_files.contains(&d.file))
        .filter(|d| {
            if d.is_error() {
                return true;
            }
            let (line, _) = program.sources.get(d.file).line_col(d.span.start);
            !allows
                .get(&d.file)
                .is_some_and(|list| list.contains(&(line, d.code)))
        })
        .filter(|d| seen.insert((d.file, d.span.start, d.span.end, d.code, d.message.clone())))
        .collect();
    kept.sort_by_key(|d| (d.file, d.span.start, d.code));
    Outcome {
        sources: std::mem::take(&mut program.sources),
        diagnostics: kept,
        program,
        roots: roots.to_vec(),
        scopes,
        agents,
    }
}

/// What a pass run on a shared, read-only checker found, applied to the checker in one
/// fixed order ([`Checker::apply`]) whichever thread found it: the passes that run on
/// several threads (agents' items, workflow bodies) keep their findings apart.
#[derive(Default)]
pub(crate) struct Findings {
    /// Diagnostics in the order found, with the module they are in. W010 (an agent
    /// without `context`) carries its agent: it is reported once per agent and calling
    /// module, at the first such call in the fixed order.
    diagnostics: Vec<(ModuleId, Diagnostic, Option<scope::ItemRef>)>,
    /// Names looked up, with the module that looked them up.
    used: Vec<(ModuleId, scope::Binding)>,
    /// Items used without being named (a workflow called through its skill).
    used_items: Vec<scope::ItemRef>,
}

impl Findings {
    fn emit(&mut self, module: ModuleId, diagnostic: Diagnostic) {
        self.diagnostics.push((module, diagnostic, None));
    }

    /// W010 for a call in `module` of `agent`, which has no `context`: kept only if no
    /// earlier call in the fixed order was warned about.
    fn emit_no_context(&mut self, module: ModuleId, agent: scope::ItemRef, diagnostic: Diagnostic) {
        self.diagnostics.push((module, diagnostic, Some(agent)));
    }

    /// Looks `name` up in the scope of `module`, marking it (and its `use`) used.
    fn lookup(
        &mut self,
        checker: &Checker,
        module: ModuleId,
        name: &str,
    ) -> Option<scope::Binding> {
        let binding = checker.binding(module, name)?;
        self.used.push((module, binding));
        Some(binding)
    }
}

/// "did you mean" costs a pass over every name in scope; past this many, a file full
/// of unknown names would make checking quadratic, so suggestions stop.
const SUGGESTION_BUDGET: usize = 200;

/// Shared state of the passes over one program.
pub(crate) struct Checker<'p> {
    program: &'p Program,
    scopes: Vec<Scope>,
    diagnostics: Vec<Diagnostic>,
    agents: HashMap<scope::ItemRef, items::AgentInfo>,
    calls: graph::CallGraph,
    /// Workflows (by item) and the protocols (by item) that govern them.
    governed: HashMap<scope::ItemRef, Vec<scope::ItemRef>>,
    /// Items referenced from anywhere, for the unused lints.
    used_items: HashSet<scope::ItemRef>,
    /// `use` items whose names were referenced: (module, import index).
    used_imports: HashSet<(ModuleId, usize)>,
    workflows: HashMap<scope::ItemRef, analyze::WorkflowState>,
    /// Agents without a `context` warned about, by the module of the call (each file
    /// gets its own warning, since only the files named are reported): where in
    /// `diagnostics` the warning is, so that an earlier call in the file can take its
    /// place whatever order the workflows were analysed in.
    warned_no_context: HashMap<(scope::ItemRef, ModuleId), usize>,
    /// How many "did you mean" suggestions were asked for (an atomic, since workflows
    /// are analysed on several threads); see [`SUGGESTION_BUDGET`].
    suggestions_spent: AtomicUsize,
}

impl<'p> Checker<'p> {
    fn new(program: &'p Program) -> Self {
        Checker {
            program,
            scopes: Vec::new(),
            diagnostics: Vec::new(),
            agents: HashMap::new(),
            calls: graph::CallGraph::default(),
            governed: HashMap::new(),
            used_items: HashSet::new(),
            used_imports: HashSet::new(),
            workflows: HashMap::new(),
            warned_no_context: HashMap::new(),
            suggestions_spent: AtomicUsize::new(0),
        }
    }

    /// Runs every pass; the parallel ones on `threads` threads, or on as many as the
    /// program's size is worth when `None`.
    fn run(&mut self, threads: Option<usize>) {
        self.build_scopes();
        self.check_items(threads.unwrap_or_else(|| self.item_threads()));
        self.build_call_graph();
        self.analyze_workflows(threads.unwrap_or_else(|| self.analysis_threads()));
        self.lint();
    }

    /// Whether one more "did you mean" may be computed.
    fn spend_suggestion(&self) -> bool {
        self.suggestions_spent.fetch_add(1, Ordering::Relaxed) + 1 < SUGGESTION_BUDGET
    }

    /// Applies what a pass found: diagnostics, and names used.
    fn apply(&mut self, findings: Findings) {
        for (module, binding) in findings.used {
            self.mark_used(module, binding);
        }
        self.used_items.extend(findings.used_items);
        for (module, diagnostic, no_context) in findings.diagnostics {
            if let Some(agent) = no_context {
                let file = self.program.module(module).file;
                match self.warned_no_context.get(&(agent, module)) {
                    Some(&at) => {
                        if let Some(warned) = self.diagnostics.get_mut(at) {
                            if diagnostic.span.start < warned.span.start {
                                *warned = with_file(diagnostic, file);
                            }
                        }
                        continue;
                    }
                    None => {
                        self.warned_no_context
                            .insert((agent, module), self.diagnostics.len());
                    }
                }
            }
            self.emit(module, diagnostic);
        }
    }

    fn emit(&mut self, module: ModuleId, diagnostic: Diagnostic) {
        let file = self.program.module(module).file;
        self.diagnostics.push(with_file(diagnostic, file));
    }
}

/// `diagnostic` in `file`, its related locations too unless they name another.
fn with_file(diagnostic: Diagnostic, file: crate::source::FileId) -> Diagnostic {
    let mut diagnostic = diagnostic.in_file(file);
    for related in &mut diagnostic.related {
        related.file.get_or_insert(file);
    }
    diagnostic
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;
    use std::path::Path;

    use super::*;

    /// Every diagnostic the checker emits on `text`, in the order emitted (not sorted),
    /// with the workflows analysed on `threads` threads.
    fn emitted(text: &str, threads: usize) -> Vec<String> {
        let mut program = Program::default();
        program.load_text("many.pai", text, Path::new("."));
        let mut checker = Checker::new(&program);
        checker.run(Some(threads));
        checker
            .diagnostics
            .iter()
            .map(|d| format!("{d:?}"))
            .collect()
    }

    /// `chains` chains of `length` workflows, each calling the one before it (so the
    /// call graph has `length` levels of `chains` components), and in each workflow
    /// `unknown` misspelt names and a call of an agent without `context`; beside each
    /// workflow an agent with a misspelt type and setting, a template reading an
    /// unknown name, and an unused parameter; each workflow has a misspelt type too, and
    /// calls its chain's first workflow through a skill.
    fn chained_program(chains: usize, length: usize, unknown: usize) -> String {
        let mut text = String::from(
            "agent bare(x: text) -> result {\n  prompt \"{{x}}\"\n}\n\n\
             agent coder1(task: text) -> result {\n  context 8k\n  prompt \"Do {{task}}\"\n}\n\n",
        );
        for chain in 0..chains {
            let _ = writeln!(
                text,
                "skill sk{chain} {{\n  use when \"chain {chain}\"\n  workflow w{chain}-0\n}}\n"
            );
            for step in 0..length {
                let _ = writeln!(
                    text,
                    "agent a{chain}-{step}(x: txt) -> result {{\n  contxt 8k\n  prompt \"{{{{y}}}}\"\n}}\n"
                );
                let _ = writeln!(
                    text,
                    "workflow w{chain}-{step}(task: text, extra: txt) -> result {{"
                );
                if step > 0 {
                    let _ = writeln!(text, "  let before = w{chain}-{}(task: task)", step - 1);
                    let _ = writeln!(text, "  let first = sk{chain}(task: task)");
                }
                let _ = writeln!(text, "  let warned = bare(x: task)");
                for n in 0..unknown {
                    let _ = writeln!(text, "  let typo{n} = coder(task: tsak)");
                }
                let _ = writeln!(text, "  return coder1(task: task)\n}}\n");
            }
        }
        text
    }

    #[test]
    fn items_and_workflows_checked_on_threads_find_the_same_in_the_same_order() {
        let text = chained_program(5, 4, 2);
        let alone = emitted(&text, 1);
        // 20 W010 candidates reported once, 80 unknown names each with a suggestion.
        assert!(
            alone.iter().filter(|d| d.contains("W010")).count() == 1,
            "{alone:#?}"
        );
        assert!(alone.iter().filter(|d| d.contains("did you mean")).count() >= 80);
        for threads in [2, 3, 7] {
            assert_eq!(emitted(&text, threads), alone, "{threads} threads");
        }
    }

    #[test]
    fn threads_agree_on_either_side_of_the_suggestion_budget() {
        // Two suggestions are asked for a misspelt line, in 20 workflows: 5 lines each
        // make exactly the budget's 200 requests, the last of them refused.
        for lines in [4, 5, 6] {
            let text = chained_program(4, 5, lines);
            let alone = emitted(&text, 1);
            for threads in [2, 3] {
                assert_eq!(
                    emitted(&text, threads),
                    alone,
                    "{lines} lines, {threads} threads"
                );
            }
        }
    }

    #[test]
    fn threads_that_spend_every_suggestion_are_checked_again_in_order() {
        // 4 × 10 × 6 misspelt callees and as many misspelt arguments: the suggestion
        // budget runs out, and where depends on the order names are met.
        let text = chained_program(4, 10, 6);
        let alone = emitted(&text, 1);
        let suggested = (alone.iter())
            .filter(|d| d.contains("E004") && d.contains("did you mean"))
            .count();
        assert_eq!(suggested, SUGGESTION_BUDGET - 1, "{alone:#?}");
        for threads in [2, 3, 7] {
            assert_eq!(emitted(&text, threads), alone, "{threads} threads");
        }
    }
}
