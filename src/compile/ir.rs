//! The IR a run executes: a petgraph DAG whose nodes are agent calls, `exec` steps,
//! workflow activations (the call tree's inner nodes) and expansion points, and whose
//! edges are data dependencies and `after` orderings.

use foldhash::HashMap;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

use petgraph::graph::{DiGraph, NodeIndex};

use super::node_map::NodeMap;
use super::value::PlanValue;
use crate::check::scope::ItemRef;
use crate::syntax::ast;

/// What a node does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    /// A workflow (or skill) activation: an inner node of the call tree.
    Workflow,
    /// One call of an agent.
    Agent,
    /// An `exec([...])` command step.
    Exec,
    /// A `for` over a list only known at run time (a model's answer): grows into at
    /// most `max` copies of its subtree when the list arrives.
    Expansion,
}

impl NodeKind {
    /// The word used in plans.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Workflow => "workflow",
            NodeKind::Agent => "agent",
            NodeKind::Exec => "exec",
            NodeKind::Expansion => "expansion",
        }
    }
}

/// Why one node waits for another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EdgeKind {
    /// The target is handed a value the source produces.
    Data,
    /// `after`: ordering without data.
    After,
}

/// One node of the plan.
#[derive(Clone, Debug)]
pub struct Node {
    /// A path in the call tree, safe as a relative directory path:
    /// `execute/orchestrate[src]/coder[login.rs]`.
    pub id: String,
    /// The agent, workflow or loop variable it stands for.
    pub name: String,
    pub kind: NodeKind,
    /// Depth in the call tree; the root workflow is 0.
    pub depth: usize,
    pub parent: Option<NodeIndex>,
    /// Children in the call tree, in the order they were planned.
    pub children: Vec<NodeIndex>,
    /// How many times the node runs in the worst case: the product of the `max` of the
    /// expansion points above it.
    pub multiplicity: u64,
    /// Agents: the worst-case prompt, in tokens, with the real sizes of arguments and
    /// files where they are known before the run.
    pub input_tokens: u64,
    /// Agents: the declared `context`.
    pub context: Option<u64>,
    /// Agents: the summary budget, what flows up.
    pub output_tokens: u64,
    pub model: Option<String>,
    /// Expansion points: the declared `max`.
    pub max: Option<u64>,
    /// Planned inside an expansion point to show its worst case: the run makes copies
    /// of it when the list arrives, and never runs the template itself.
    pub template: bool,
    /// An agent that answers a record or a list: failed, it has no value to hand on.
    pub structured: bool,
}

/// What an agent or exec node is handed, as recipes over other nodes' results.
#[derive(Clone, Debug)]
pub enum CallRecipe {
    Agent {
        item: ItemRef,
        args: Vec<(String, PlanValue)>,
    },
    Exec {
        argv: PlanValue,
        /// Where the command runs: the directory of the file that calls it.
        dir: PathBuf,
    },
}

/// What the run needs to grow an expansion point once its list arrives.
#[derive(Clone, Debug)]
pub struct ExpansionSite<'o> {
    pub(super) for_expr: &'o ast::For,
    /// The list the `for` iterates, as a recipe over the node that produces it.
    pub list: PlanValue,
    pub(super) frames: Vec<HashMap<String, PlanValue>>,
    pub(super) module: crate::check::ModuleId,
    pub(super) depth: usize,
    pub(super) guards: Vec<(PlanValue, bool)>,
    pub(super) after: Vec<NodeIndex>,
}

/// The planned DAG of one workflow.
#[derive(Debug)]
pub struct Plan<'o> {
    pub workflow: String,
    /// The file the workflow was planned from, as the user named it.
    pub file: String,
    pub graph: DiGraph<Node, EdgeKind>,
    pub root: NodeIndex,
    /// What each agent and exec node is handed; boxed, so that a node without a call
    /// or whose call has started holds a pointer's width.
    pub calls: NodeMap<Box<CallRecipe>>,
    /// Conditions (`if` on values only known at run time) a node runs under.
    pub guards: HashMap<NodeIndex, Vec<(PlanValue, bool)>>,
    /// What each workflow activation returns.
    pub returns: HashMap<NodeIndex, PlanValue>,
    /// Expansion points, for growing them at run time.
    pub sites: HashMap<NodeIndex, ExpansionSite<'o>>,
    /// The most elements a node's list answer may have: the smallest `max` of the
    /// `for`s that walk it and of the workflow parameters it is handed to. The model is
    /// told, and a longer answer is asked for again.
    pub list_limits: HashMap<NodeIndex, u64>,
}

impl Plan<'_> {
    /// Holds `node`'s list answer to at most `max` elements.
    pub fn limit_list(&mut self, node: NodeIndex, max: u64) {
        let limit = self.list_limits.entry(node).or_insert(max);
        *limit = (*limit).min(max);
    }
}

impl Plan<'_> {
    /// The node at `index`.
    pub fn node(&self, index: NodeIndex) -> &Node {
        &self.graph[index]
    }

    /// The nodes that feed `index` (data and `after` edges), in id order.
    pub fn inputs(&self, index: NodeIndex) -> Vec<NodeIndex> {
        let mut inputs: Vec<NodeIndex> = self
            .graph
            .neighbors_directed(index, petgraph::Direction::Incoming)
            .collect();
        inputs.sort_by(|a, b| self.graph[*a].id.cmp(&self.graph[*b].id));
        inputs.dedup();
        inputs
    }
}

/// The most bytes of one element's label in a node id (`coder[main.rs]`).
pub const LABEL_BYTES: usize = 64;

/// The most bytes of a node's whole bracketed label, nested `for`s' labels joined with
/// `,`: with the agent's name, a segment stays well under the 255 bytes a file name
/// may have.
pub const SEGMENT_BYTES: usize = 160;

/// One element's label made safe as part of a path segment: no separators, no control
/// characters, no `,` (which joins nested labels, so a joined label reads back one
/// way), never `.` or `..`, at most [`LABEL_BYTES`] bytes.
pub fn safe_label(label: &str) -> String {
    let mut out = never_dots(sanitized(label, &[',']));
    cut_at_bytes(&mut out, LABEL_BYTES);
    out
}

/// Makes a label safe as one path segment: no separators, no control characters, never
/// `.` or `..`. One longer than [`SEGMENT_BYTES`] keeps its start and ends in `~` and
/// eight hex digits of a hash of the whole, so that labels which share a long start
/// stay apart.
pub fn safe_segment(label: &str) -> String {
    let mut out = sanitized(label, &[]);
    cut_with_hash(&mut out, SEGMENT_BYTES);
    never_dots(out)
}

/// `label` with separators, brackets, control characters and `also` made `_`.
fn sanitized(label: &str, also: &[char]) -> String {
    label
        .chars()
        .map(|c| match c {
            '/' | '\\' | '[' | ']' => '_',
            c if c.is_control() || also.contains(&c) => '_',
            c => c,
        })
        .collect()
}

/// `segment`, or `_` before it when it is empty, `.` or `..`: never a name that
/// stands for a directory other than its own.
fn never_dots(segment: String) -> String {
    if segment.chars().all(|c| c == '.') {
        format!("_{segment}")
    } else {
        segment
    }
}

/// The most bytes of a whole segment (`name#k[label]`), under the 255 a file name may
/// have: names are as long as their author wrote them.
pub const NAME_BYTES: usize = 240;

/// A node's whole segment, cut to [`NAME_BYTES`] as [`safe_segment`] cuts a label.
pub fn fit_segment(mut segment: String) -> String {
    cut_with_hash(&mut segment, NAME_BYTES);
    segment
}

/// Cuts `text` over `max` bytes to its start and `~` and eight hex digits of a hash of
/// the whole, `max` bytes in all, so that texts which share a long start stay apart.
fn cut_with_hash(text: &mut String, max: usize) {
    if text.len() > max {
        let digest = Sha256::digest(text.as_bytes());
        let short = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
        cut_at_bytes(text, max - 9);
        text.push_str(&format!("~{short:08x}"));
    }
}

/// Cuts `text` to at most `max` bytes, at a character boundary.
fn cut_at_bytes(text: &mut String, max: usize) {
    if text.len() > max {
        let end = (0..=max)
            .rev()
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        text.truncate(end);
    }
}

#[cfg(test)]
mod tests {
    use super::{fit_segment, safe_label, safe_segment, NAME_BYTES, SEGMENT_BYTES};

    #[test]
    fn segments_cannot_escape_their_directory() {
        assert_eq!(safe_segment(".."), "_..");
        assert_eq!(safe_segment("."), "_.");
        assert_eq!(safe_segment("a/b\\c"), "a_b_c");
        assert_eq!(safe_segment("x\u{7}y\n"), "x_y_");
        assert_eq!(safe_segment(""), "_");
        assert_eq!(safe_label(&"é".repeat(100)).len(), 64);
        assert_eq!(safe_label("a,b/c"), "a_b_c");
        assert_eq!(safe_label(".."), "_..");
    }

    #[test]
    fn long_segments_keep_their_start_and_a_hash_of_the_whole() {
        let a = safe_segment(&format!("{}1", "y".repeat(200)));
        let b = safe_segment(&format!("{}2", "y".repeat(200)));
        assert_ne!(a, b);
        assert_eq!(a.len(), SEGMENT_BYTES);
        assert!(a.starts_with(&"y".repeat(150)), "{a}");
        let wide = safe_segment(&"😀".repeat(100));
        assert!(wide.len() <= SEGMENT_BYTES, "{}", wide.len());
        assert_eq!(
            safe_segment(&"y".repeat(SEGMENT_BYTES)),
            "y".repeat(SEGMENT_BYTES)
        );
    }

    #[test]
    fn whole_segments_fit_a_file_name() {
        let long = format!("{}[{}]", "agent".repeat(40), "y".repeat(150));
        let fitted = fit_segment(long.clone());
        assert_eq!(fitted.len(), NAME_BYTES);
        assert_ne!(fit_segment(format!("{long}x")), fitted);
        assert_eq!(fit_segment("coder[main.rs]".to_string()), "coder[main.rs]");
    }
}
