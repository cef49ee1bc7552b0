//! Parsing: pest grammar (`grammar/pai.pest`) to AST, with our own diagnostics.

pub mod ast;
mod lower;
mod parser;
mod text;

pub use parser::MAX_NESTING;

use crate::diagnostics::{self, Diagnostic};
use crate::source::Span;

/// The AST of one file and every syntax error found in it.
#[derive(Debug)]
pub struct Parsed {
    pub file: ast::File,
    pub diagnostics: Vec<Diagnostic>,
}

/// Parses one file's text. Never panics and never stops at the first error: a broken
/// item is skipped to the next line that starts an item, and parsing goes on.
pub fn parse(text: &str) -> Parsed {
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
    if let Err(diagnostic) = parser::check_nesting(text) {
        parsed.diagnostics.push(*diagnostic);
        return parsed;
    }
    match parser::parse_rule(parser::Rule::file, text) {
        Ok(mut pairs) => {
            let mut lowerer = lower::Lowerer::new(text);
            if let Some(file) = pairs.next() {
                parsed.file = lowerer.file(file);
            }
            parsed.diagnostics = lowerer.diagnostics;
            if parsed.file.items.is_empty() && parsed.diagnostics.is_empty() {
                parsed
                    .diagnostics
                    .push(diagnostics::empty_file(Span::new(0, text.len())));
            }
        }
        Err(error) => parsed
            .diagnostics
            .push(parser::convert_error(&error, text, 0)),
    }
    parsed
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
