//! Text literals: escapes of `"..."` and indentation stripping of `"""..."""` blocks,
//! each with a map from the value back to the source for diagnostics.

use super::ast::Text;
use crate::diagnostics::{self, Diagnostic};
use crate::source::Span;

/// Decodes the inside of a `"..."` string that starts at source offset `start`.
pub fn escaped(raw: &str, start: usize, span: Span) -> Result<Text, Box<Diagnostic>> {
    let mut value = String::with_capacity(raw.len());
    let mut map = vec![(0, start)];
    let mut chars = raw.char_indices();
    while let Some((i, c)) = chars.next() {
        if c != '\\' {
            value.push(c);
            continue;
        }
        let escape = chars.next();
        let decoded = match escape {
            Some((_, 'n')) => '\n',
            Some((_, 't')) => '\t',
            Some((_, '"')) => '"',
            Some((_, '\\')) => '\\',
            Some((j, other)) => {
                let end = j + other.len_utf8();
                return Err(Box::new(diagnostics::invalid_escape(
                    Span::new(start + i, start + end),
                    raw.get(i..end).unwrap_or("\\"),
                )));
            }
            None => {
                return Err(Box::new(diagnostics::invalid_escape(
                    Span::new(start + i, start + i + 1),
                    "\\",
                )))
            }
        };
        value.push(decoded);
        // After an escape, value and source move together again from the next char.
        map.push((value.len(), start + i + 2));
    }
    Ok(Text { value, span, map })
}

/// Strips a `"""` block whose inside starts at source offset `start`: drops the first
/// line when empty and the last when blank, then removes the smallest indentation of
/// the non-blank lines.
pub fn block(raw: &str, start: usize, span: Span) -> Text {
    // (offset in raw, line text without its newline)
    let mut lines: Vec<(usize, &str)> = Vec::new();
    let mut offset = 0;
    for line in raw.split('\n') {
        lines.push((offset, line.strip_suffix('\r').unwrap_or(line)));
        offset += line.len() + 1;
    }
    if lines.len() > 1 && lines.first().is_some_and(|(_, l)| l.trim().is_empty()) {
        lines.remove(0);
    }
    if lines.len() > 1 && lines.last().is_some_and(|(_, l)| l.trim().is_empty()) {
        lines.pop();
    }
    let indent = lines
        .iter()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(_, line)| line.len() - line.trim_start_matches([' ', '\t']).len())
        .min()
        .unwrap_or(0);

    let mut value = String::with_capacity(raw.len());
    let mut map = Vec::with_capacity(lines.len());
    for (i, (line_offset, line)) in lines.iter().enumerate() {
        if i > 0 {
            value.push('\n');
        }
        let cut = indent.min(line.len() - line.trim_start_matches([' ', '\t']).len());
        map.push((value.len(), start + line_offset + cut));
        value.push_str(line.get(cut..).unwrap_or(""));
    }
    if map.is_empty() {
        map.push((0, start));
    }
    Text { value, span, map }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_decode_and_map_back() {
        let text = escaped(r#"a\nb"#, 10, Span::new(9, 15)).unwrap();
        assert_eq!(text.value, "a\nb");
        assert_eq!(text.source_offset(0), 10);
        assert_eq!(text.source_offset(2), 13); // `b` sits after the two-byte escape
    }

    #[test]
    fn unknown_escape_is_reported_at_the_backslash() {
        let err = escaped(r#"ab\q"#, 5, Span::new(4, 10)).unwrap_err();
        assert_eq!(err.span.start, 7);
        assert_eq!(err.span.end, 9);
    }

    #[test]
    fn blocks_strip_common_indentation_and_blank_edges() {
        let raw = "\n    Implement {{task}}.\n      Indented.\n  ";
        let text = block(raw, 100, Span::new(97, 150));
        assert_eq!(text.value, "Implement {{task}}.\n  Indented.");
        // `{{task}}` starts at value offset 10; in the source it is 1 + 4 + 10 bytes in.
        assert_eq!(text.source_offset(10), 100 + 1 + 4 + 10);
        // The second line's first kept char sits after its 4 stripped spaces.
        let second = text.value.find("  Indented").unwrap();
        assert_eq!(text.source_offset(second), 100 + 25 + 4);
    }

    #[test]
    fn single_line_block_is_kept_whole() {
        assert_eq!(block("hello", 0, Span::new(0, 11)).value, "hello");
    }
}
