//! Parsing: pest grammar (`grammar/pai.pest`) to AST, with our own diagnostics.

pub mod ast;
mod lower;
mod parser;
mod text;

pub(crate) use parser::without_limits;
pub use parser::MAX_NESTING;

use crate::diagnostics::{self, Diagnostic};
use crate::source::Span;

/// The AST of one file and every syntax error found in it.
#[derive(Debug)]
pub struct Parsed {
    pub file: ast::File,
    pub diagnostics: Vec<Diagnostic>,
}

/// Files are parsed in pieces of about this many bytes, cut between items: pest keeps
/// a token for every rule it matched until the parse ends, and one piece's tokens fit
/// in memory that is already mapped, where a whole file's take fresh pages. At 16 KB
/// a piece's token queue grew to 320 KB, and the allocator gave that back to the
/// system between pieces (`pai` has it purge freed memory after 10 ms, for `pai run`),
/// so every piece touched it fresh again: 8 KB pieces take about 17% fewer page faults
/// and 6% less time on a 3 MB file (docs/performance.md).
const PIECE_BYTES: usize = 8 * 1024;

/// Parses one file's text. Never panics and never stops at the first error: a broken
/// item is skipped to the next line that starts an item, and parsing goes on.
///
/// The file is parsed and lowered in pieces cut between items, on parallel threads
/// when it is long; the result is the same as parsing it whole.
pub fn parse(text: &str) -> Parsed {
    parse_in_pieces(text, PIECE_BYTES, crate::parallel::threads_for(text.len()))
}

/// [`parse`], with pieces of at least `piece_len` bytes shared out between `threads`.
fn parse_in_pieces(text: &str, piece_len: usize, threads: usize) -> Parsed {
    let mut parsed = Parsed {
        file: ast::File::default(),
        diagnostics: Vec::new(),
    };
    if text.trim().is_empty() {
        parsed
            .diagnostics
            .push(diagnostics::empty_file(Span::new(0, text.len())));
        return parsed;
    }
    let starts = match parser::prescan(text, piece_len) {
        Ok(starts) => starts,
        Err(diagnostic) => {
            parsed.diagnostics.push(*diagnostic);
            return parsed;
        }
    };
    match parse_pieces(text, &starts, threads) {
        Some((file, diagnostics)) => {
            parsed.file = file;
            parsed.diagnostics = diagnostics;
        }
        None => match parser::parse_rule(parser::Rule::file, text) {
            Ok(mut pairs) => {
                let mut lowerer = lower::Lowerer::new(text);
                if let Some(file) = pairs.next() {
                    parsed.file = lowerer.file(file);
                }
                parsed.diagnostics = lowerer.diagnostics;
            }
            Err(error) => {
                parsed
                    .diagnostics
                    .push(parser::convert_error(&error, text, 0));
                return parsed;
            }
        },
    }
    if parsed.file.items.is_empty() && parsed.diagnostics.is_empty() {
        parsed
            .diagnostics
            .push(diagnostics::empty_file(Span::new(0, text.len())));
    }
    parsed
}

/// Parses and lowers the pieces starting at `starts` and joins them in order. `None`
/// when there is only one piece, or when a piece fails or skips an item it cannot
/// parse: the whole parse then reports the errors, so that what an error says never
/// depends on where the file was cut.
fn parse_pieces(
    text: &str,
    starts: &[usize],
    threads: usize,
) -> Option<(ast::File, Vec<Diagnostic>)> {
    if starts.is_empty() {
        return None;
    }
    let lowered = parser::parse_pieces(text, starts, threads, |start, mut pairs| {
        let mut lowerer = lower::Lowerer::for_piece(text, start);
        let file = pairs.next().map(|pair| lowerer.file(pair));
        (file, lowerer.diagnostics, lowerer.skipped_item)
    })?;
    let mut pieces = Vec::with_capacity(lowered.len());
    for (file, found, skipped_item) in lowered {
        if skipped_item {
            return None;
        }
        pieces.push((file?, found));
    }
    let mut joined = ast::File::default();
    // Sized once: grown by doubling, the items of a big file held up to twice their
    // room.
    joined
        .items
        .reserve_exact(pieces.iter().map(|(file, _)| file.items.len()).sum());
    let mut diagnostics = Vec::new();
    for (file, found) in pieces {
        joined.items.extend(file.items);
        joined.allows.extend(file.allows);
        diagnostics.extend(found);
    }
    Some((joined, diagnostics))
}

/// Decodes a file's bytes as text, refusing invalid UTF-8 and NUL bytes.
pub fn decode(bytes: &[u8]) -> Result<&str, Box<Diagnostic>> {
    let text = std::str::from_utf8(bytes).map_err(|error| {
        let at = error.valid_up_to();
        Box::new(diagnostics::not_text(
            Span::new(at, at + 1),
            &format!("invalid UTF-8 at byte {at}"),
        ))
    })?;
    if let Some(at) = text.find('\0') {
        return Err(Box::new(diagnostics::not_text(
            Span::new(at, at + 1),
            &format!("NUL byte at byte {at}"),
        )));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::ast::{Expr, ExprKind, Item};
    use super::*;
    use proptest::prelude::*;

    /// Fragments of files: items that parse, items that do not, and the text between
    /// items that could mislead a cut (strays, comments, `\r`, unclosed brackets).
    const FRAGMENTS: &[&str] = &[
        "agent a(task: text) {\n  context 8k\n  prompt \"Do {{task}}\"\n}\n",
        "workflow w(t: text) -> result {\n  let x = a(task: t)\n  return x\n}\n",
        "workflow v(b: bool) -> text {\n  return if b { \"x\" } else if b { \"y\" } else { \"z\" }\n}\n",
        "type T { a: text, b: list<text max 20> }\n",
        "use pai-council\n",
        "use\n",
        "skill s {\n  use when \"x\"\n  workflow w\n}\n",
        "protocol p {\n  max depth 3\n}\n",
        "provider q {\n  model \"m\"\n}\n",
        "# pai:allow(W001)\n",
        "# a comment }\n",
        "# a comment ending at a CR\r{\n",
        "}\n",
        "{\n",
        "(\n",
        "\"unclosed\n",
        "\"\"\"\nagent in a block\n\"\"\"\n",
        "\"\"\"\nan unclosed block {\n",
        "agent broken(task: text) {\n  context\n}\n",
        "workflow let(t: text) -> text {\n  return t\n}\n",
        "agent a(task: text) {\n  prompt \"{{#if task}}\"\n}\n",
        "\n",
        "agent",
    ];

    fn outcome(parsed: &Parsed) -> String {
        format!("{:?}\n{:?}", parsed.file, parsed.diagnostics)
    }

    proptest! {
        /// Cutting a file into pieces, on one thread or several, never changes what
        /// parsing it finds.
        #[test]
        fn pieces_parse_as_the_whole_file(
            fragments in proptest::collection::vec(0..FRAGMENTS.len(), 1..40),
            piece_len in 1usize..200,
            threads in 1usize..4,
        ) {
            let text: String = fragments.iter().filter_map(|&i| FRAGMENTS.get(i).copied()).collect();
            let whole = outcome(&parse_in_pieces(&text, usize::MAX, 1));
            prop_assert_eq!(outcome(&parse_in_pieces(&text, piece_len, threads)), whole, "{:?}", text);
        }
    }

    /// Arm k of an `else if` chain sits k levels deep: brackets inside a late arm count
    /// on top of the chain, so the tree never nests past the cap.
    #[test]
    fn late_else_if_arms_count_their_depth() {
        let chain = |arms: usize, parens: usize| {
            format!(
                "workflow w(a: bool) -> text {{\n  return if a {{ \"x\" }} {}else if {}a{} {{ \"y\" }} else {{ \"z\" }}\n}}\n",
                "else if a { \"x\" } ".repeat(arms),
                "(".repeat(parens),
                ")".repeat(parens)
            )
        };
        let too_deep = parse(&chain(200, 100));
        assert!(
            too_deep
                .diagnostics
                .iter()
                .any(|d| d.code == diagnostics::Code::E002),
            "{:?}",
            too_deep.diagnostics
        );
        assert!(parse(&chain(100, 100)).diagnostics.is_empty());
    }

    #[test]
    fn a_long_file_is_cut_between_items() {
        let item = FRAGMENTS.first().copied().unwrap_or_default();
        let text = item.repeat(100);
        let starts = parser::prescan(&text, 1).unwrap_or_default();
        assert_eq!(starts.len(), 99);
        assert!(starts.iter().all(|&at| text
            .get(at..)
            .is_some_and(|rest| rest.starts_with("agent a("))));
        let whole = outcome(&parse_in_pieces(&text, usize::MAX, 1));
        assert_eq!(outcome(&parse_in_pieces(&text, 1, 2)), whole);
    }

    fn returned(text: &str) -> Expr {
        let parsed = parse(text);
        assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
        match parsed.file.items.into_iter().next() {
            Some(Item::Workflow(workflow)) => match workflow.returns_stmts.into_iter().next() {
                Some(ret) => ret.value,
                None => panic!("no return"),
            },
            other => panic!("not a workflow: {other:?}"),
        }
    }

    /// The grammar reads an `else if` chain flat; lowering nests it from the right,
    /// each `if` spanning from its keyword to the end of the chain.
    #[test]
    fn else_if_chains_nest_from_the_right() {
        let text = "workflow w(a: bool, b: bool) -> text {\n  return if a { \"x\" } else if b { \"y\" } else { \"z\" }\n}\n";
        let outer = returned(text);
        let source = |e: &Expr| text.get(e.span.start..e.span.end).unwrap_or("").to_string();
        assert_eq!(
            source(&outer),
            "if a { \"x\" } else if b { \"y\" } else { \"z\" }"
        );
        let ExprKind::If(outer_if) = outer.kind else {
            panic!("not an if: {outer:?}")
        };
        let inner = *outer_if.otherwise.value;
        assert_eq!(source(&inner), "if b { \"y\" } else { \"z\" }");
        let ExprKind::If(inner_if) = inner.kind else {
            panic!("not an if: {inner:?}")
        };
        assert!(matches!(inner_if.otherwise.value.kind, ExprKind::Text(_)));
    }
}
