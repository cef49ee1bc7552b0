//! Rendering diagnostics: miette's graphical report for people, JSON for tools, SARIF
//! 2.1.0 for code scanning.

use std::fmt;
use std::sync::Arc;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, SourceCode};
use serde_json::{json, Value};

use crate::diagnostics::{Code, Diagnostic, Severity};
use crate::source::{SourceFile, SourceMap};

/// How the graphical report looks.
#[derive(Clone, Copy, Debug)]
pub struct HumanStyle {
    pub color: bool,
    pub width: usize,
}

/// Renders every diagnostic as miette's graphical report, one after the other.
pub fn human(sources: &SourceMap, diagnostics: &[Diagnostic], style: HumanStyle) -> String {
    let theme = if style.color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(style.width)
        .with_links(false);
    let mut out = String::new();
    for diagnostic in diagnostics {
        let report = Report::new(sources, diagnostic);
        // Rendering into a String cannot fail.
        let _ = handler.render_report(&mut out, &report);
    }
    out
}

/// One diagnostic as miette sees it.
struct Report {
    diagnostic: Diagnostic,
    source: Arc<SourceFile>,
    /// Labels in other files, shown as related reports.
    elsewhere: Vec<Related>,
}

struct Related {
    source: Arc<SourceFile>,
    span: crate::source::Span,
    label: String,
}

/// Related labels further than this many lines from the primary one get a snippet of
/// their own after the main one, so the report always opens at the primary location.
const INLINE_LINES: usize = 3;

impl Report {
    fn new(sources: &SourceMap, diagnostic: &Diagnostic) -> Report {
        let source = sources.get(diagnostic.file).clone();
        let (primary_line, _) = source.line_col(diagnostic.span.start);
        let mut inline = Vec::new();
        let mut elsewhere = Vec::new();
        for related in &diagnostic.related {
            let file = related.file.unwrap_or(diagnostic.file);
            let related_source = sources.get(file).clone();
            let (line, _) = related_source.line_col(related.span.start);
            if file == diagnostic.file && line.abs_diff(primary_line) <= INLINE_LINES {
                inline.push(related.clone());
            } else {
                elsewhere.push(Related {
                    source: related_source,
                    span: related.span,
                    label: related.label.clone(),
                });
            }
        }
        let mut diagnostic = diagnostic.clone();
        diagnostic.related = inline;
        Report {
            diagnostic,
            source,
            elsewhere,
        }
    }
}

impl fmt::Debug for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diagnostic.message)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diagnostic.message)
    }
}

impl std::error::Error for Report {}

impl miette::Diagnostic for Report {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(format!("pai::{}", self.diagnostic.code)))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diagnostic.code.severity() {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.diagnostic
            .help
            .as_ref()
            .map(|h| Box::new(h.clone()) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(self.source.miette_source())
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let primary = LabeledSpan::new_primary_with_span(
            Some(self.diagnostic.label.clone()),
            self.source.reportable(self.diagnostic.span),
        );
        let related = self.diagnostic.related.iter().map(|r| {
            LabeledSpan::new_with_span(Some(r.label.clone()), self.source.reportable(r.span))
        });
        Some(Box::new(std::iter::once(primary).chain(related)))
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        if self.elsewhere.is_empty() {
            return None;
        }
        Some(Box::new(
            self.elsewhere.iter().map(|r| r as &dyn miette::Diagnostic),
        ))
    }
}

impl fmt::Debug for Related {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label)
    }
}

impl fmt::Display for Related {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label)
    }
}

impl std::error::Error for Related {}

impl miette::Diagnostic for Related {
    fn severity(&self) -> Option<miette::Severity> {
        Some(miette::Severity::Advice)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(self.source.miette_source())
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(std::iter::once(LabeledSpan::new_with_span(
            Some(self.label.clone()),
            self.source.reportable(self.span),
        ))))
    }
}

fn location(source: &SourceFile, span: crate::source::Span) -> Value {
    let (line, column) = source.line_col(span.start);
    let (end_line, end_column) = source.line_col(span.end);
    json!({
        "file": source.name(),
        "line": line,
        "column": column,
        "end_line": end_line,
        "end_column": end_column,
        "start": span.start,
        "end": span.end,
    })
}

/// Every diagnostic as one JSON document (`pai check --format json`).
pub fn json(sources: &SourceMap, diagnostics: &[Diagnostic]) -> String {
    let items: Vec<Value> = diagnostics
        .iter()
        .map(|d| {
            let source = sources.get(d.file);
            json!({
                "code": format!("pai::{}", d.code),
                "severity": severity_name(d.code),
                "message": d.message,
                "label": d.label,
                "help": d.help,
                "location": location(source, d.span),
                "related": d.related.iter().map(|r| {
                    let file = sources.get(r.file.unwrap_or(d.file));
                    json!({ "label": r.label, "location": location(file, r.span) })
                }).collect::<Vec<_>>(),
            })
        })
        .collect();
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let document = json!({
        "diagnostics": items,
        "errors": errors,
        "warnings": diagnostics.len() - errors,
    });
    serde_json::to_string_pretty(&document).unwrap_or_default() + "\n"
}

/// Every diagnostic as a SARIF 2.1.0 log (`pai check --format sarif`).
pub fn sarif(sources: &SourceMap, diagnostics: &[Diagnostic]) -> String {
    let rules: Vec<Value> = Code::ALL
        .iter()
        .map(|code| {
            json!({
                "id": format!("pai::{code}"),
                "shortDescription": { "text": code.summary() },
                "fullDescription": { "text": code.explain() },
                "defaultConfiguration": { "level": sarif_level(*code) },
            })
        })
        .collect();
    let results: Vec<Value> = diagnostics
        .iter()
        .map(|d| {
            let source = sources.get(d.file);
            let (line, column) = source.line_col(d.span.start);
            let (end_line, end_column) = source.line_col(d.span.end);
            let mut text = d.message.clone();
            if let Some(help) = &d.help {
                text.push_str("\nhelp: ");
                text.push_str(help);
            }
            json!({
                "ruleId": format!("pai::{}", d.code),
                "ruleIndex": Code::ALL.iter().position(|c| *c == d.code),
                "level": sarif_level(d.code),
                "message": { "text": text },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": source.name() },
                        "region": {
                            "startLine": line,
                            "startColumn": column,
                            "endLine": end_line,
                            "endColumn": end_column,
                        }
                    }
                }],
                "relatedLocations": d.related.iter().enumerate().map(|(i, r)| {
                    let file = sources.get(r.file.unwrap_or(d.file));
                    let (line, column) = file.line_col(r.span.start);
                    json!({
                        "id": i,
                        "message": { "text": r.label },
                        "physicalLocation": {
                            "artifactLocation": { "uri": file.name() },
                            "region": { "startLine": line, "startColumn": column }
                        }
                    })
                }).collect::<Vec<_>>(),
            })
        })
        .collect();
    let log = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "pai",
                    "version": env!("CARGO_PKG_VERSION"),
                    "rules": rules,
                }
            },
            "results": results,
        }]
    });
    serde_json::to_string_pretty(&log).unwrap_or_default() + "\n"
}

fn severity_name(code: Code) -> &'static str {
    match code.severity() {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

fn sarif_level(code: Code) -> &'static str {
    match code.severity() {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::Related;
    use crate::source::Span;

    fn render(text: &str, span: Span, label: &str, related: Vec<Related>) -> String {
        let mut sources = SourceMap::default();
        let file = sources.add(SourceFile::new("long.pai", text));
        let diagnostic = Diagnostic {
            code: Code::E001,
            file,
            span,
            message: "something is wrong".to_string(),
            label: label.to_string(),
            related,
            help: None,
        };
        let style = HumanStyle {
            color: false,
            width: 100,
        };
        human(&sources, &[diagnostic], style)
    }

    #[test]
    fn labels_far_apart_on_a_long_line_are_both_drawn() {
        let text = format!(
            "{}FIRST{}SECOND{}\nnext\n",
            "a".repeat(5_000),
            "b".repeat(5_000),
            "c".repeat(5_000)
        );
        let first = text.find("FIRST").unwrap();
        let second = text.find("SECOND").unwrap();
        let related = vec![Related {
            file: None,
            span: Span::new(second, second + 6),
            label: "the second one".to_string(),
        }];
        let report = render(&text, Span::new(first, first + 5), "the first one", related);
        assert!(
            report.contains("the first one") && report.contains("FIRST"),
            "{report}"
        );
        assert!(
            report.contains("the second one") && report.contains("SECOND"),
            "{report}"
        );
        assert!(report.len() < 3_000, "{report}");
    }

    #[test]
    fn a_label_at_the_end_of_a_long_line_is_drawn() {
        let text = format!("{}\nnext\n", "a".repeat(5_000));
        let report = render(&text, Span::new(5_000, 5_000), "ends here", Vec::new());
        assert!(report.contains("ends here"), "{report}");
        assert!(report.contains("long.pai:1:5001"), "{report}");
    }

    #[test]
    fn a_label_next_to_a_long_line_shows_its_own_line_whole() {
        let own = format!("let x = {}", "y".repeat(390));
        let text = format!("{own}\n{}\n", "z".repeat(5_000));
        let report = render(&text, Span::new(0, own.len()), "the whole line", Vec::new());
        assert!(report.contains(&own), "{report}");
        assert!(report.contains("the whole line"), "{report}");
        assert!(!report.contains("zzz"), "{report}");
    }
}
