//! Bytes in, diagnostics out: decoding, parsing, checking and rendering the report must
//! never panic, and every diagnostic must point inside the text, on character boundaries.
//!
//! `cargo fuzz run parse_check fuzz/corpus/parse_check fuzz/seeds`

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use pai::diagnostics::{Code, Diagnostic};

fn assert_spans(text: &str, diagnostics: &[Diagnostic]) {
    for d in diagnostics {
        let (start, end) = (d.span.start, d.span.end);
        assert!(
            start <= end && end <= text.len(),
            "{} span {start}..{end} outside a text of {} bytes",
            d.code.as_str(),
            text.len()
        );
        assert!(
            text.is_char_boundary(start) && text.is_char_boundary(end),
            "{} span {start}..{end} splits a character",
            d.code.as_str()
        );
        for related in &d.related {
            if related.file.is_none_or(|file| file == d.file) {
                assert!(
                    related.span.start <= related.span.end && related.span.end <= text.len(),
                    "{} related span {}..{} outside a text of {} bytes",
                    d.code.as_str(),
                    related.span.start,
                    related.span.end,
                    text.len()
                );
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let text = match pai::syntax::decode(data) {
        Ok(text) => text,
        Err(d) => {
            assert_eq!(d.code, Code::E031);
            assert!(d.span.start < d.span.end && d.span.end <= data.len());
            return;
        }
    };
    let parsed = pai::syntax::parse(text);
    assert_spans(text, &parsed.diagnostics);
    let outcome = pai::check::check_text("fuzz.pai", text, Path::new("."));
    assert_spans(text, &outcome.diagnostics);
    if parsed.diagnostics.iter().any(Diagnostic::is_error) {
        assert!(
            outcome.error_count() > 0,
            "a syntax error was lost by the checker"
        );
    }
    // The report renders whatever the spans.
    let style = pai::report::HumanStyle {
        color: false,
        width: 100,
    };
    pai::report::human(&outcome.sources, &outcome.diagnostics, style);
});
