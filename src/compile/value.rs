//! Values at plan time. What is known before the run is concrete (texts, paths,
//! numbers, lists from the file system); what only the run produces is a recipe that
//! names the nodes it comes from, so the runtime can compute the value once they finish.

use std::path::PathBuf;

use petgraph::graph::NodeIndex;

use crate::check::budget::{tokens_of_bytes, ASSUMED_TEXT, PATH_TOKENS, SCALAR_TOKENS};
use crate::syntax::ast::CompareOp;

/// A value and the nodes that must finish before it can be computed.
#[derive(Clone, Debug)]
pub struct PlanValue {
    pub val: Val,
    pub deps: Vec<NodeIndex>,
}

/// What a value is, as far as the plan knows.
#[derive(Clone, Debug)]
pub enum Val {
    Text(String),
    Path(PathBuf),
    Number(f64),
    Bool(bool),
    /// Seconds.
    Duration(f64),
    List(Vec<PlanValue>),
    /// What an agent or exec node yields, at most `tokens` big.
    Node {
        node: NodeIndex,
        tokens: u64,
    },
    /// A field of another value: `work.summary`.
    Field {
        base: Box<PlanValue>,
        field: String,
        tokens: u64,
    },
    /// The values an expansion point's copies yield, once the list has arrived.
    Expansion {
        node: NodeIndex,
        /// The most copies it can make: its `max`, or fewer when the list it walks
        /// is a model's, whose budget bounds its length.
        copies: u64,
        tokens: u64,
        /// The length of each copy's value, when it is a list of known length.
        elem_len: Option<u64>,
    },
    /// One element of a list a model produced, bound at run time (`source` made it).
    Json {
        value: serde_json::Value,
        source: NodeIndex,
    },
    /// A file the run reads (`read(path)`), about `tokens` big.
    File {
        path: PathBuf,
        tokens: u64,
    },
    /// `a + b` where a part is only known at run time.
    Concat(Vec<PlanValue>),
    /// `not x`, comparisons, `and`/`or`, `len` on values only known at run time.
    Not(Box<PlanValue>),
    Compare {
        op: CompareOp,
        left: Box<PlanValue>,
        right: Box<PlanValue>,
    },
    Logic {
        and: bool,
        left: Box<PlanValue>,
        right: Box<PlanValue>,
    },
    Len(Box<PlanValue>),
    /// A list only known at run time handed to a workflow parameter declared
    /// `list<...> max N`: the plan counts it at N elements at most, and the run refuses
    /// a longer one. Each element is at most `element_max` tokens when the parameter
    /// says `list<T max M>` (the checker held the argument to it).
    Bounded {
        list: Box<PlanValue>,
        max: u64,
        element_max: Option<u64>,
    },
    /// `if` on a condition only known at run time: both branches are planned.
    Choice {
        cond: Box<PlanValue>,
        then: Box<PlanValue>,
        otherwise: Box<PlanValue>,
    },
}

impl PlanValue {
    /// A value that depends on no node.
    pub fn constant(val: Val) -> PlanValue {
        PlanValue {
            val,
            deps: Vec::new(),
        }
    }

    /// What `node` yields, at most `tokens` big.
    pub fn produced(node: NodeIndex, tokens: u64) -> PlanValue {
        PlanValue {
            val: Val::Node { node, tokens },
            deps: vec![node],
        }
    }

    /// A value computed at run time from `parts`.
    pub fn derived(val: Val, parts: &[&PlanValue]) -> PlanValue {
        PlanValue {
            val,
            deps: PlanValue::merge_deps(parts.iter().copied()),
        }
    }

    /// The size of the value as rendered into a prompt, in tokens: real where known,
    /// the producer's budget where not.
    pub fn tokens(&self) -> u64 {
        match &self.val {
            Val::Text(text) => tokens_of_bytes(text.len()),
            Val::Path(path) => tokens_of_bytes(path.as_os_str().len()).min(PATH_TOKENS),
            Val::Number(_) | Val::Bool(_) | Val::Duration(_) => SCALAR_TOKENS,
            Val::List(items) | Val::Concat(items) => items
                .iter()
                .fold(0u64, |sum, item| sum.saturating_add(item.tokens())),
            Val::Node { tokens, .. }
            | Val::Field { tokens, .. }
            | Val::Expansion { tokens, .. }
            | Val::File { tokens, .. } => *tokens,
            Val::Json { value, .. } => crate::check::budget::answer_tokens(value),
            Val::Not(_) | Val::Compare { .. } | Val::Logic { .. } | Val::Len(_) => SCALAR_TOKENS,
            Val::Choice {
                then, otherwise, ..
            } => then.tokens().max(otherwise.tokens()),
            Val::Bounded { list, .. } => list.tokens(),
        }
    }

    /// The value under any [`Val::Bounded`] around it.
    pub fn unbounded(&self) -> &PlanValue {
        match &self.val {
            Val::Bounded { list, .. } => list.unbounded(),
            _ => self,
        }
    }

    /// The value as a path, when it is known to be one (or a text that can stand for one).
    pub fn as_path(&self) -> Option<PathBuf> {
        match &self.val {
            Val::Path(path) => Some(path.clone()),
            Val::Text(text) => Some(PathBuf::from(text)),
            _ => None,
        }
    }

    /// The value as a text, when it is known.
    pub fn as_text(&self) -> Option<String> {
        match &self.val {
            Val::Text(text) => Some(text.clone()),
            Val::Path(path) => Some(path.display().to_string()),
            Val::Number(n) => Some(n.to_string()),
            Val::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// Whether the plan knows the value itself (no node must run first).
    pub fn is_known(&self) -> bool {
        match &self.val {
            Val::Text(_) | Val::Path(_) | Val::Number(_) | Val::Bool(_) | Val::Duration(_) => true,
            Val::List(items) => items.iter().all(PlanValue::is_known),
            _ => false,
        }
    }

    /// Joins the dependencies of several values, without repeats.
    pub fn merge_deps<'a>(values: impl IntoIterator<Item = &'a PlanValue>) -> Vec<NodeIndex> {
        let mut deps: Vec<NodeIndex> = values
            .into_iter()
            .flat_map(|v| v.deps.iter().copied())
            .collect();
        deps.sort_unstable();
        deps.dedup();
        deps
    }
}

/// The size assumed for a file the plan cannot measure.
pub const UNMEASURED_FILE: u64 = ASSUMED_TEXT;
