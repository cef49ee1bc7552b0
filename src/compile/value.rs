//! Values at plan time: what is known before the run (texts, paths, numbers, lists from
//! the file system) and what is not (a model's answer), with the nodes each depends on.

use std::path::PathBuf;

use petgraph::graph::NodeIndex;

use crate::check::budget::{tokens_of_bytes, PATH_TOKENS, SCALAR_TOKENS};

/// A value and the nodes that produce it.
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
    /// Something only the run will produce, at most `tokens` big; `list` when it is a
    /// list (whose length is unknown).
    Unknown {
        tokens: u64,
        list: bool,
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

    /// A value produced by `node`, at most `tokens` big.
    pub fn produced(node: NodeIndex, tokens: u64, list: bool) -> PlanValue {
        PlanValue {
            val: Val::Unknown { tokens, list },
            deps: vec![node],
        }
    }

    /// The size of the value as rendered into a prompt, in tokens: real where known,
    /// the producer's budget where not.
    pub fn tokens(&self) -> u64 {
        match &self.val {
            Val::Text(text) => tokens_of_bytes(text.len()),
            Val::Path(path) => tokens_of_bytes(path.as_os_str().len()).min(PATH_TOKENS),
            Val::Number(_) | Val::Bool(_) | Val::Duration(_) => SCALAR_TOKENS,
            Val::List(items) => items
                .iter()
                .fold(0u64, |sum, item| sum.saturating_add(item.tokens())),
            Val::Unknown { tokens, .. } => *tokens,
        }
    }

    /// The value as a path, when it is one (or a text that can stand for one).
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
