//! Condensed copies of prompt templates, so that handlebars' parser reads the tags and
//! not the prose between them.
//!
//! handlebars' pest grammar takes several parsing steps per character of literal text,
//! and literal text is most of a prompt: parsing it was a third of `pai check`'s time.
//! The checker only needs the tags (`{{x}}`, `{{#each xs}}`, ...), where they are, and
//! how many bytes of literal text there are. So before handlebars sees a template, the
//! middle of each literal run is replaced by one character:
//!
//! - tags are copied as they are, so handlebars parses the same tags;
//! - the whitespace (Unicode's) at both ends of a run is kept, so whitespace control (`{{~x~}}`)
//!   and standalone block lines are decided as before, and they only ever remove
//!   whitespace, never the condensed middle;
//! - a run holding `\` is copied as it is, and a template holding an escaped `\{{`
//!   is not condensed at all;
//! - a template whose tags hold string literals, comments, `[...]` keys or raw blocks
//!   (where `}}` may not end the tag), partials or decorators (whose insides the
//!   checker does not visit), or whose tags are not closed, is not condensed at all.
//!
//! Positions handlebars reports in the condensed text map back to the original, and the
//! literal bytes handlebars counts are topped up with the bytes condensing removed.
//! `tests` checks that a condensed and an uncondensed check agree on every template.

/// A template ready for handlebars: either the original text or a condensed copy.
pub(super) struct Condensed {
    /// What handlebars parses.
    pub text: String,
    /// Byte offsets where each line of `text` starts.
    line_starts: Vec<usize>,
    /// `(offset in text, offset in the original)` at the start of every copied or
    /// condensed piece, in order; empty when `text` is the original.
    anchors: Vec<(usize, usize)>,
    /// The literal runs condensed: `(start, end)` in the original and the bytes
    /// removed from the middle, in order.
    runs: Vec<(usize, usize, usize)>,
}

impl Condensed {
    /// The text handlebars should parse for `original`.
    pub fn new(original: &str) -> Self {
        condense(original).unwrap_or_else(|| Self::identity(original))
    }

    /// The original text, unchanged.
    pub fn identity(original: &str) -> Self {
        Self::with(original.to_string(), Vec::new(), Vec::new())
    }

    fn with(text: String, anchors: Vec<(usize, usize)>, runs: Vec<(usize, usize, usize)>) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self {
            text,
            line_starts,
            anchors,
            runs,
        }
    }

    /// The bytes condensing removed from the literal run holding `offset` (in the
    /// original): what a literal handlebars read there is short of the original.
    pub fn removed_at(&self, offset: usize) -> usize {
        let run = self.runs.partition_point(|&(start, _, _)| start <= offset);
        match run.checked_sub(1).and_then(|i| self.runs.get(i)) {
            Some(&(_, end, removed)) if offset < end => removed,
            _ => 0,
        }
    }

    /// Whether this is a shortened copy rather than the original.
    pub fn is_condensed(&self) -> bool {
        !self.anchors.is_empty()
    }

    /// The byte offset in the original of 1-based `line`, `col` (in characters) of
    /// the text handlebars parsed.
    pub fn offset_of(&self, line: usize, col: usize) -> Option<usize> {
        let start = *self.line_starts.get(line.checked_sub(1)?)?;
        let rest = self.text.get(start..)?;
        let within = rest
            .char_indices()
            .nth(col.saturating_sub(1))
            .map_or(rest.len(), |(i, _)| i);
        Some(self.original_offset(start + within))
    }

    fn original_offset(&self, at: usize) -> usize {
        let piece = self.anchors.partition_point(|&(here, _)| here <= at);
        match piece.checked_sub(1).and_then(|i| self.anchors.get(i)) {
            Some(&(here, there)) => there + (at - here),
            None => at,
        }
    }
}

/// The condensed copy of `original`, or `None` when it must be parsed as it is.
fn condense(original: &str) -> Option<Condensed> {
    // Blocks nested past the checker's limit are not visited: leave the template whole
    // so that the literal bytes counted are the same.
    if original.matches("{{#").count() >= super::templates::MAX_BLOCK_DEPTH {
        return None;
    }
    // An escaped `\{{x}}` is literal text: handlebars reads it and the runs around it
    // as one literal, which the literal bytes of one run would not account for.
    if original.contains("\\{{") {
        return None;
    }
    let mut text = String::with_capacity(original.len() / 4);
    let mut anchors = Vec::new();
    let mut runs = Vec::new();
    let mut rest = original;
    let mut at = 0;
    while !rest.is_empty() {
        let run_len = rest.find("{{").unwrap_or(rest.len());
        let (run, after) = rest.split_at(run_len);
        if !run.is_empty() {
            let removed = copy_run(run, at, &mut text, &mut anchors);
            if removed > 0 {
                runs.push((at, at + run_len, removed));
            }
        }
        at += run_len;
        rest = after;
        if rest.is_empty() {
            break;
        }
        let tag_len = tag_len(rest)?;
        let (tag, after) = rest.split_at(tag_len);
        anchors.push((text.len(), at));
        text.push_str(tag);
        at += tag_len;
        rest = after;
    }
    // Nothing to gain: let handlebars read the original.
    if runs.is_empty() {
        return None;
    }
    Some(Condensed::with(text, anchors, runs))
}

/// The length of the tag at the start of `rest` (which starts with `{{`), or `None`
/// when its end cannot be found by looking for braces alone: a raw block, a comment
/// (which may hold `}}`), a string literal, or a tag that is not closed.
fn tag_len(rest: &str) -> Option<usize> {
    let (open, close) = if rest.get(2..3) == Some("{") {
        (3, "}}}")
    } else {
        (2, "}}")
    };
    let inner = rest.get(open..)?;
    let end = inner.find(close)?;
    let body = inner.get(..end)?;
    // `[...]` keys may hold `}}`; partials and decorators are not checked inside, so
    // the literal bytes condensed there would be counted where the whole template's
    // are not.
    let head = body.trim_start_matches('~').trim_start_matches('#');
    if body.contains(['"', '\'', '{', '}', '!', '[', ']']) || head.starts_with(['>', '*']) {
        return None;
    }
    Some(open + end + close.len())
}

/// Copies one literal run, condensing its middle; returns the bytes removed.
fn copy_run(run: &str, at: usize, text: &mut String, anchors: &mut Vec<(usize, usize)>) -> usize {
    let lead = run.len() - run.trim_start_matches(char::is_whitespace).len();
    let trail = run.len() - run.trim_end_matches(char::is_whitespace).len();
    let middle_len = run.len().saturating_sub(lead + trail);
    if run.contains('\\') || middle_len <= 1 {
        anchors.push((text.len(), at));
        text.push_str(run);
        return 0;
    }
    let (Some(lead_text), Some(trail_text)) = (run.get(..lead), run.get(lead + middle_len..))
    else {
        anchors.push((text.len(), at));
        text.push_str(run);
        return 0;
    };
    anchors.push((text.len(), at));
    text.push_str(lead_text);
    anchors.push((text.len(), at + lead));
    text.push('x');
    anchors.push((text.len(), at + lead + middle_len));
    text.push_str(trail_text);
    middle_len - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_text_is_condensed_and_tags_are_kept() {
        let original = "Map {{root}} for:\n  {{#each xs}}\n  - {{this.summary}} now\n{{/each}}\n";
        let condensed = Condensed::new(original);
        assert!(condensed.is_condensed());
        assert_eq!(
            condensed.text,
            "x {{root}} x\n  {{#each xs}}\n  - {{this.summary}} x\n{{/each}}\n"
        );
        // What each condensed run lost, found from any offset inside it.
        assert_eq!(condensed.removed_at(0), 2);
        assert_eq!(condensed.removed_at(original.find("for:").unwrap()), 3);
        assert_eq!(
            original.find("now").map(|at| condensed.removed_at(at)),
            Some(2)
        );
        assert_eq!(condensed.removed_at(original.find("{{root}}").unwrap()), 0);
        // `{{this.summary}}` is on line 3, column 5 of the condensed text.
        let at = condensed.offset_of(3, 5).expect("a position");
        assert_eq!(&original[at..at + 16], "{{this.summary}}");
    }

    #[test]
    fn templates_whose_tags_hide_braces_are_left_alone() {
        for original in [
            "say {{lookup x \"}}\"}} more text",
            "say {{! a comment }} more text",
            "say {{{{raw}}}} x {{{{/raw}}}} more text",
            "say {{unclosed more text",
            "say {{x '}}' }} more text",
            "use {{[a}} some words {{]}} more text",
            "use {{> partial}} more text",
            "use {{#> layout}} more text {{/layout}}",
            "use {{#*inline \"x\"}} more text {{/inline}}",
        ] {
            assert!(!Condensed::new(original).is_condensed(), "{original}");
        }
    }

    #[test]
    fn escapes_are_left_alone_and_short_runs_copied() {
        let escaped = "a \\{{x}} b {{y}} long prose";
        assert!(!Condensed::new(escaped).is_condensed());
        let condensed = Condensed::new("a {{x}} b {{y}} long prose");
        assert_eq!(condensed.text, "a {{x}} b {{y}} x");
    }

    #[test]
    fn triple_stash_tags_are_kept_whole() {
        let original = "some words {{{raw_value}}} more words";
        let condensed = Condensed::new(original);
        assert_eq!(condensed.text, "x {{{raw_value}}} x");
    }
}
