//! Source files and byte spans.
//!
//! Every AST node carries a [`Span`] into the [`SourceFile`] it came from. Spans are
//! ignored by equality (as cedar's locations are), so tests can compare trees built
//! from different texts.

use std::path::Path;
use std::sync::{Arc, OnceLock};

/// Reads a whole file as text; the error names the file: ``cannot read `x`: reason``.
pub fn read_text(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read `{}`: {}",
            path.display(),
            e.to_string().to_lowercase()
        )
    })
}

/// A half-open byte range `start..end` in one source file.
#[derive(Clone, Copy, Debug, Default, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    /// A span from `start` to `end` (byte offsets).
    pub fn new(start: usize, end: usize) -> Span {
        Span {
            start,
            end: end.max(start),
        }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }

    /// The length in bytes.
    pub fn len(self) -> usize {
        self.end - self.start
    }

    /// Whether the span covers no byte.
    pub fn is_empty(self) -> bool {
        self.end == self.start
    }
}

/// Spans never take part in equality: two trees are equal when their shapes are.
impl PartialEq for Span {
    fn eq(&self, _: &Span) -> bool {
        true
    }
}

impl std::hash::Hash for Span {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}

impl From<Span> for miette::SourceSpan {
    fn from(span: Span) -> miette::SourceSpan {
        (span.start, span.len()).into()
    }
}

/// One file's name (as the user should see it) and its text.
#[derive(Debug)]
pub struct SourceFile {
    named: miette::NamedSource<Arc<str>>,
    text: Arc<str>,
    /// Where each line starts, found the first time a position is asked for: a file
    /// that checks clean never needs them (100,000 lines hold 800 KB of them).
    line_starts: OnceLock<Vec<usize>>,
}

impl SourceFile {
    /// A source file named `name` holding `text`.
    pub fn new(name: impl Into<String>, text: impl Into<Arc<str>>) -> SourceFile {
        let name = name.into();
        let text: Arc<str> = text.into();
        SourceFile {
            named: miette::NamedSource::new(&name, text.clone()),
            text,
            line_starts: OnceLock::new(),
        }
    }

    fn line_starts(&self) -> &[usize] {
        self.line_starts.get_or_init(|| {
            std::iter::once(0)
                .chain(self.text.match_indices('\n').map(|(i, _)| i + 1))
                .collect()
        })
    }

    /// The file's name, as given on the command line or by a `use`.
    pub fn name(&self) -> &str {
        self.named.name()
    }

    /// The whole text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The text as miette reads it.
    pub fn miette_source(&self) -> &miette::NamedSource<Arc<str>> {
        &self.named
    }

    /// The 1-based line and column (in characters) of byte `offset`.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line_starts = self.line_starts();
        let line = match line_starts.binary_search(&offset) {
            Ok(line) => line,
            Err(next) => next.saturating_sub(1),
        };
        let start = line_starts.get(line).copied().unwrap_or(0);
        let column = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        (line + 1, column + 1)
    }
}

/// Index of a [`SourceFile`] in a [`SourceMap`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub usize);

/// Every file a check has read, so diagnostics can name files by id.
#[derive(Debug, Default)]
pub struct SourceMap {
    files: Vec<Arc<SourceFile>>,
}

impl SourceMap {
    /// Adds a file and returns its id.
    pub fn add(&mut self, file: SourceFile) -> FileId {
        self.files.push(Arc::new(file));
        FileId(self.files.len() - 1)
    }

    /// The file with id `id`.
    pub fn get(&self, id: FileId) -> &Arc<SourceFile> {
        // Ids are only made by `add`, so they are always in range.
        &self.files[id.0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters_from_one() {
        let file = SourceFile::new("a.pai", "ab\nçd\n");
        assert_eq!(file.line_col(0), (1, 1));
        assert_eq!(file.line_col(3), (2, 1));
        assert_eq!(file.line_col(5), (2, 2)); // after the two-byte `ç`
        assert_eq!(file.line_col(100), (3, 1));
    }
}
