//! Worst-case sizes of values, in tokens, and the chain of terms a budget error prints.
//!
//! Tokens are estimated as bytes ÷ 4, rounded up (docs/checking.md, "Context budgets"). A bound is a sum of
//! terms `count × each`, so that an error can say where the tokens come from:
//! `6 × 80 + 10 × 80 (children) + 12 (template) = 1,292 > context 1,000`.

use crate::diagnostics::thousands;
use crate::source::Span;

/// Tokens assumed for a workflow `text` parameter without `max`, and for `read(...)`.
pub const ASSUMED_TEXT: u64 = 4_000;
/// Tokens of a path: PATH_MAX (4,096 bytes) ÷ 4. A proven bound, not a guess.
pub const PATH_TOKENS: u64 = 1_024;
/// Tokens of a number, bool or duration as rendered.
pub const SCALAR_TOKENS: u64 = 6;
/// The summary budget of an agent that declares none; the runtime cuts summaries to it.
pub const DEFAULT_SUMMARY: u64 = 200;
/// Length assumed for a list parameter without `max`.
pub const ASSUMED_LIST: u64 = 16;

/// The most bytes of a node id or path a fence names as its source; a longer one
/// keeps its end, the part that tells nodes apart.
pub const FENCE_SOURCE_BYTES: usize = 64;
/// Tokens of the `<untrusted source="...">` fence around text a model or a file wrote,
/// with a source of at most [`FENCE_SOURCE_BYTES`]: 35 bytes of markup and the source.
pub const FENCE_TOKENS: u64 = (35 + FENCE_SOURCE_BYTES as u64).div_ceil(4);
/// Tokens a `result` adds to its summary when it enters a prompt: the summary's fence,
/// and its other fields (`status` at most 8 bytes, `outputs` 11, `children` 2).
pub const RESULT_OVERHEAD: u64 = (35 + FENCE_SOURCE_BYTES as u64 + 8 + 11 + 2).div_ceil(4);

/// Bytes of the `<untrusted>...</untrusted>` fence around each text of a model's
/// structured answer, which the answer's `summary` budget pays for.
pub const STRUCTURED_FENCE_BYTES: usize = 23;
/// [`STRUCTURED_FENCE_BYTES`] in tokens.
pub const STRUCTURED_FENCE_TOKENS: u64 = (STRUCTURED_FENCE_BYTES as u64).div_ceil(4);

/// The tokens a model's structured answer (or any part of it) enters a prompt with:
/// its JSON, and the [`STRUCTURED_FENCE_BYTES`] fence around each of its texts. Its
/// JSON is at least its rendering but for one byte per separator, which its quotes
/// and brackets outweigh. The run holds an answer to its `summary` budget by this.
pub fn answer_tokens(value: &serde_json::Value) -> u64 {
    fn texts(value: &serde_json::Value) -> usize {
        match value {
            serde_json::Value::String(_) => 1,
            serde_json::Value::Array(items) => items.iter().map(texts).sum(),
            serde_json::Value::Object(fields) => fields.values().map(texts).sum(),
            _ => 0,
        }
    }
    let fences = texts(value).saturating_mul(STRUCTURED_FENCE_BYTES);
    tokens_of_bytes(value.to_string().len().saturating_add(fences))
}

/// The bytes a list of `elements` elements renders as, its elements' own renderings
/// taking `element_bytes`: handlebars writes `[a, b]`, two bytes of brackets and two of
/// `, ` between elements (`[]` when empty).
pub fn rendered_list_bytes(elements: usize, element_bytes: usize) -> usize {
    element_bytes.saturating_add(2 * elements.max(1))
}

/// The most elements a list inside a model's answer of `tokens` can hold: its JSON is
/// at most 4 bytes a token, and each element takes at least a byte and a comma.
pub fn most_elements_in(tokens: u64) -> u64 {
    tokens.saturating_mul(2)
}

/// The tokens a text of `list<text max N>` in a model's answer enters a prompt with:
/// its N (the run refuses a longer one) and its fence, or the whole answer's `whole` if
/// that is smaller.
pub fn bounded_text_tokens(max: u64, whole: u64) -> u64 {
    max.saturating_add(STRUCTURED_FENCE_TOKENS).min(whole)
}

/// Estimated tokens of `bytes` bytes of text.
pub fn tokens_of_bytes(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(4)
}

/// [`tokens_of_bytes`] of a byte count that may not fit a `usize`.
pub fn tokens_of_bytes_u64(bytes: u64) -> u64 {
    bytes.div_ceil(4)
}

/// One term of a bound: `count` values of at most `each` tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Term {
    pub count: u64,
    pub each: u64,
}

/// A size that the proof had to guess, with where the guess comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assumption {
    pub what: String,
    pub span: Span,
}

/// The worst-case size of a value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bound {
    pub terms: Vec<Term>,
    /// Sizes that were guessed (W008).
    pub assumed: Vec<Assumption>,
    /// Set when no bound can be proven at all (a `for` without `max` over a list of
    /// unknown length): the span of the culprit.
    pub unproven: Option<Span>,
}

impl Bound {
    /// A single value of at most `tokens` tokens.
    pub fn of(tokens: u64) -> Bound {
        Bound {
            terms: vec![Term {
                count: 1,
                each: tokens,
            }],
            ..Bound::default()
        }
    }

    /// A single value whose size is a guess.
    pub fn assumed(tokens: u64, what: String, span: Span) -> Bound {
        let mut bound = Bound::of(tokens);
        bound.assumed.push(Assumption { what, span });
        bound
    }

    /// The total, saturating.
    pub fn total(&self) -> u64 {
        self.terms.iter().fold(0u64, |sum, term| {
            sum.saturating_add(term.count.saturating_mul(term.each))
        })
    }

    /// Both bounds together (`a + b`, a list literal, several arguments).
    pub fn plus(mut self, other: Bound) -> Bound {
        self.terms.extend(other.terms);
        self.assumed.extend(other.assumed);
        self.unproven = self.unproven.or(other.unproven);
        self.merge_terms();
        self
    }

    /// `times` copies of this bound (a fan-out).
    pub fn times(mut self, times: u64) -> Bound {
        for term in &mut self.terms {
            term.count = term.count.saturating_mul(times);
        }
        self
    }

    /// The bound of one element of a list with this bound: its largest term's `each`.
    pub fn element(&self) -> Bound {
        Bound {
            terms: vec![Term {
                count: 1,
                each: self.terms.iter().map(|t| t.each).max().unwrap_or(0),
            }],
            assumed: self.assumed.clone(),
            unproven: self.unproven,
        }
    }

    /// The larger of two bounds (the branches of an `if`).
    pub fn max(self, other: Bound) -> Bound {
        let (mut larger, smaller) = if other.total() > self.total() {
            (other, self)
        } else {
            (self, other)
        };
        larger.assumed.extend(smaller.assumed);
        larger.unproven = larger.unproven.or(smaller.unproven);
        larger
    }

    /// Merges terms of equal `each` so `80 + 80` reads `2 × 80`.
    fn merge_terms(&mut self) {
        let mut merged: Vec<Term> = Vec::with_capacity(self.terms.len());
        for term in self.terms.drain(..) {
            match merged.last_mut() {
                Some(last) if last.each == term.each => {
                    last.count = last.count.saturating_add(term.count)
                }
                _ => merged.push(term),
            }
        }
        self.terms = merged;
    }

    /// `6 × 80 + 10 × 80` (terms only).
    pub fn render_terms(&self) -> String {
        let mut out = String::new();
        for (i, term) in self.terms.iter().filter(|t| t.count > 0).enumerate() {
            if i > 0 {
                out.push_str(" + ");
            }
            if term.count == 1 {
                out.push_str(&thousands(term.each));
            } else {
                out.push_str(&format!(
                    "{} × {}",
                    thousands(term.count),
                    thousands(term.each)
                ));
            }
        }
        if out.is_empty() {
            out.push('0');
        }
        out
    }
}

/// The chain of labelled parts that makes up an agent's worst-case input.
#[derive(Debug, Default)]
pub struct Chain {
    parts: Vec<(Bound, String)>,
}

impl Chain {
    /// Adds `bound`, labelled `label` (a parameter name, or `template`).
    pub fn push(&mut self, bound: Bound, label: impl Into<String>) {
        if bound.total() > 0 {
            self.parts.push((bound, label.into()));
        }
    }

    /// The total of every part, saturating.
    pub fn total(&self) -> u64 {
        self.parts
            .iter()
            .fold(0u64, |sum, (bound, _)| sum.saturating_add(bound.total()))
    }

    /// `64 × 500 (parts) + 12 (template) = 32,012`
    pub fn render(&self) -> String {
        let terms: Vec<String> = self
            .parts
            .iter()
            .map(|(bound, label)| format!("{} ({label})", bound.render_terms()))
            .collect();
        format!("{} = {}", terms.join(" + "), thousands(self.total()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_up() {
        assert_eq!(tokens_of_bytes(0), 0);
        assert_eq!(tokens_of_bytes(1), 1);
        assert_eq!(tokens_of_bytes(8), 2);
        assert_eq!(tokens_of_bytes(9), 3);
    }

    #[test]
    fn fan_out_multiplies_and_lists_join() {
        let subtrees = Bound::of(80).times(6);
        let leaves = Bound::of(80).times(10);
        let children = subtrees.plus(leaves);
        assert_eq!(children.total(), 1_280);
        assert_eq!(children.render_terms(), "16 × 80");
        let mixed = Bound::of(80).times(6).plus(Bound::of(500).times(2));
        assert_eq!(mixed.render_terms(), "6 × 80 + 2 × 500");
    }

    #[test]
    fn chain_names_every_part() {
        let mut chain = Chain::default();
        chain.push(Bound::of(500).times(64), "parts");
        chain.push(Bound::of(12), "template");
        assert_eq!(chain.render(), "64 × 500 (parts) + 12 (template) = 32,012");
    }

    #[test]
    fn totals_saturate_instead_of_overflowing() {
        let huge = Bound::of(u64::MAX).times(u64::MAX);
        assert_eq!(huge.total(), u64::MAX);
    }
}
