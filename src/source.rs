//! Source files and byte spans.
//!
//! Every AST node carries a [`Span`] into the [`SourceFile`] it came from. Spans are
//! ignored by equality (as cedar's locations are), so tests can compare trees built
//! from different texts.

use std::io::Read;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use miette::{MietteError, MietteSpanContents, SourceCode, SourceSpan, SpanContents};

/// The largest file `pai` reads: far more than any program, fixture or manifest, and
/// it keeps `pai check /dev/zero` from reading until memory runs out.
pub const MAX_FILE: u64 = 64 << 20;

/// Reads a whole file of at most [`MAX_FILE`] bytes.
pub fn read_bytes(path: &Path) -> std::io::Result<Vec<u8>> {
    let file = open_without_waiting(path)?;
    // Sized from the metadata, as `std::fs::read` does, so the file is read once.
    let size = file.metadata().map_or(0, |m| m.len()).min(MAX_FILE);
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(MAX_FILE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE {
        // Lowercase whole: callers lowercase I/O errors.
        return Err(std::io::Error::other(format!(
            "it is larger than the {} mebibytes `pai` reads",
            MAX_FILE >> 20
        )));
    }
    Ok(bytes)
}

/// Opens `path` for reading without waiting for a writer: opening a named pipe that no
/// program writes to waited for ever (a `x.pai` FIFO in a checked directory hung `pai
/// check`). Opened non-blocking, then made blocking again, such a pipe reads as empty,
/// while one that a program writes to (`pai check <(generate)`) is read to its end.
#[cfg(target_os = "linux")]
fn open_without_waiting(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    // SAFETY: `fcntl` on a descriptor this function owns, with flags it just read.
    let cleared = unsafe {
        let fd = file.as_raw_fd();
        let flags = libc::fcntl(fd, libc::F_GETFL);
        flags >= 0 && libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) >= 0
    };
    if !cleared {
        return Err(std::io::Error::last_os_error());
    }
    Ok(file)
}

#[cfg(not(target_os = "linux"))]
fn open_without_waiting(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::open(path)
}

/// Reads a whole file as text; the error names the file: ``cannot read `x`: reason``.
pub fn read_text(path: &Path) -> Result<String, String> {
    read_bytes(path)
        .and_then(|bytes| {
            String::from_utf8(bytes).map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "stream did not contain valid utf-8",
                )
            })
        })
        .map_err(|e| {
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
    name: String,
    text: Arc<str>,
    /// Where each line starts, found the first time a position is asked for: a file
    /// that checks clean never needs them (100,000 lines hold 800 KB of them).
    line_starts: OnceLock<Vec<usize>>,
}

impl SourceFile {
    /// A source file named `name` holding `text`.
    pub fn new(name: impl Into<String>, text: impl Into<Arc<str>>) -> SourceFile {
        SourceFile {
            name: name.into(),
            text: text.into(),
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
        &self.name
    }

    /// The whole text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The text as miette reads it.
    pub fn miette_source(&self) -> &dyn SourceCode {
        self
    }

    /// The line holding byte `offset` (0-based), and where it starts.
    fn line_of(&self, offset: usize) -> (usize, usize) {
        let line_starts = self.line_starts();
        let line = line_starts
            .partition_point(|&start| start <= offset)
            .saturating_sub(1);
        (line, line_starts.get(line).copied().unwrap_or(0))
    }

    /// Where the line holding byte `offset` ends: its `\n`, or the end of the text.
    fn line_end(&self, offset: usize) -> usize {
        let (line, _) = self.line_of(offset);
        self.line_starts()
            .get(line + 1)
            .map_or(self.text.len(), |next| next - 1)
    }

    /// Whether the line holding byte `offset` is too long to show whole in a report.
    fn is_long_line(&self, offset: usize) -> bool {
        self.line_end(offset) - self.line_of(offset).1 > LONG_LINE
    }

    /// `span` cut so that a report can show it: a span over several lines, one of them
    /// long, to its first line; on a long line, to at most [`LABEL_WINDOW`] bytes.
    /// Other spans are unchanged.
    pub fn reportable(&self, span: Span) -> Span {
        let first_line_end = self.line_end(span.start);
        // The span's lines: up to its last byte's (an empty span, its own line).
        let last = span.end.saturating_sub(1).max(span.start);
        if !self.has_long_line(self.line_of(span.start).1..self.line_end(last)) {
            return span;
        }
        let mut end = span.end.min(first_line_end);
        if self.is_long_line(span.start) {
            end = end.min(span.start + LABEL_WINDOW);
        }
        Span::new(span.start, self.ceil_char_boundary(end))
    }

    fn floor_char_boundary(&self, mut offset: usize) -> usize {
        while offset > 0 && !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        offset
    }

    fn ceil_char_boundary(&self, mut offset: usize) -> usize {
        while offset < self.text.len() && !self.text.is_char_boundary(offset) {
            offset += 1;
        }
        offset.min(self.text.len())
    }

    /// The snippet miette's own `read_span` would give for `span` with `before` and
    /// `after` lines of context (the same data, line, byte column and count of lines
    /// up to its end), found with the line index instead of a scan from the start of
    /// the file for every snippet: rendering 200 diagnostics near the end of a 3 MB file
    /// took 4 s that way. One difference: a lone `\r` is not a line break here, as it
    /// is not in miette's drawing of the lines (`get_lines`) nor in [`Self::line_col`].
    fn context(&self, span: &SourceSpan, before: usize, after: usize) -> Option<Snippet> {
        let text = self.text.as_bytes();
        let start = span.offset();
        // miette's scan stops at the span's last byte (the byte before an empty span).
        let last = (start + span.len()).saturating_sub(1);
        if last > text.len() {
            return None;
        }
        let line_starts = self.line_starts();
        let (line, line_start) = self.line_of(start);
        let first = line.saturating_sub(before);
        let (data_start, column) = if before == 0 {
            // The `\r` of a `\r\n` is not a column.
            let crlf = start > line_start && text.get(start - 1..=start) == Some(b"\r\n");
            (start, start - line_start - usize::from(crlf))
        } else {
            (line_starts.get(first).copied().unwrap_or(0), 0)
        };
        // A `\r\n` whose `\r` is the last byte ends the span's line, not a later one.
        let last = if text.get(last) == Some(&b'\r') && text.get(last + 1) == Some(&b'\n') {
            last + 1
        } else {
            last
        };
        // The span's own line ends at the first newline after `last`.
        let next = line_starts.partition_point(|&s| s <= last + 1);
        let data_end = if after == 0 {
            (last + 1).min(text.len())
        } else {
            line_starts.get(next + after).copied().unwrap_or(text.len())
        };
        // miette zeroes the column at each newline it reads after the span.
        let column = if after > 0 && next < line_starts.len() {
            0
        } else {
            column
        };
        Some(Snippet {
            start: data_start.min(data_end),
            end: data_end,
            line: if before == 0 { line } else { first },
            column,
        })
    }

    /// Whether any line of `range` is longer than [`LONG_LINE`].
    fn has_long_line(&self, range: std::ops::Range<usize>) -> bool {
        self.text.as_bytes().get(range).is_some_and(|text| {
            text.split(|&b| b == b'\n')
                .any(|line| line.len() > LONG_LINE)
        })
    }

    /// A snippet of `span`'s own lines and no context, for a snippet that would hold a
    /// long line: on a long line, a window around the span; on short lines, those lines
    /// whole. It runs through the newline that ends its last line, so that a label on
    /// that newline (`found end of line`) is drawn. `None` when that cannot show all of
    /// `span`: miette asks for the span of two labels it would show together, and on
    /// `None` shows them one at a time.
    fn without_context(&self, span: &SourceSpan, before: usize) -> Option<Snippet> {
        let start = span.offset();
        let end = start + span.len();
        if end > self.text.len() {
            return None;
        }
        let (line, line_start) = self.line_of(start);
        let (from, to) = if self.is_long_line(start) {
            if span.len() > LABEL_WINDOW {
                return None;
            }
            let from = if before == 0 {
                start
            } else {
                self.floor_char_boundary(start.saturating_sub(WINDOW_BEFORE).max(line_start))
            };
            let to = (end + WINDOW_AFTER).min(self.line_end(start));
            (from, self.ceil_char_boundary(to))
        } else {
            let to = self.line_end(end.saturating_sub(1).max(start));
            if self.has_long_line(line_start..to) {
                return None;
            }
            (if before == 0 { start } else { line_start }, to)
        };
        let to = if self.text.as_bytes().get(to) == Some(&b'\n') {
            to + 1
        } else {
            to
        };
        Some(Snippet {
            start: from,
            end: to.max(from),
            line,
            column: from - line_start,
        })
    }

    /// The 1-based line and column (in characters) of byte `offset`.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let (line, start) = self.line_of(offset);
        let column = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        (line + 1, column + 1)
    }
}

/// Lines longer than this many bytes are shown as a window around what a label points
/// at: miette prints a label's line whole and pads up to the label's column, and a
/// column past 65,535 panicked in its formatter.
const LONG_LINE: usize = 512;
/// How much of a long line a label may cover.
const LABEL_WINDOW: usize = 160;
/// How much of a long line is shown before a label's start.
const WINDOW_BEFORE: usize = 80;
/// How much of a long line is shown after a label's end.
const WINDOW_AFTER: usize = 80;

/// Byte range of a snippet with the 0-based line and byte column it starts at.
struct Snippet {
    start: usize,
    end: usize,
    line: usize,
    column: usize,
}

impl SourceCode for SourceFile {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let mut snippet = self
            .context(span, before, after)
            .ok_or(MietteError::OutOfBounds)?;
        if self.has_long_line(snippet.start..snippet.end) {
            snippet = self
                .without_context(span, before)
                .ok_or(MietteError::OutOfBounds)?;
        }
        let data = self
            .text
            .as_bytes()
            .get(snippet.start..snippet.end)
            .unwrap_or_default();
        // miette's "line count" is the number of line breaks before the snippet's end.
        let lines_to_end = self
            .line_starts()
            .partition_point(|&s| s <= snippet.end)
            .saturating_sub(1);
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            data,
            (snippet.start, data.len()).into(),
            snippet.line,
            snippet.column,
            lines_to_end,
        )))
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

    /// A snippet's data, span (offset, length), line, column and count of lines.
    type Read = (String, (usize, usize), usize, usize, usize);

    /// What `source`'s `read_span` gives for `span` with `before` and `after` lines.
    fn snippet(
        source: &dyn SourceCode,
        span: (usize, usize),
        before: usize,
        after: usize,
    ) -> Option<Read> {
        let contents = source.read_span(&span.into(), before, after).ok()?;
        Some((
            String::from_utf8_lossy(contents.data()).into_owned(),
            (contents.span().offset(), contents.span().len()),
            contents.line(),
            contents.column(),
            contents.line_count(),
        ))
    }

    #[test]
    fn snippets_are_the_ones_miette_would_read() {
        let texts = [
            "",
            "one line",
            "agent a() {\n  context 8k\n}\n",
            "a\nbb\n\nçç d\r\ne\n\n",
            "x\n\n\ny\r\n\r\nz",
        ];
        for text in texts {
            let file = SourceFile::new("f.pai", text);
            for start in 0..=text.len() {
                for len in 0..=(text.len() - start) {
                    for (before, after) in [(0, 0), (1, 1), (2, 3), (0, 2), (3, 0)] {
                        let ours = snippet(&file, (start, len), before, after);
                        let theirs = snippet(&text, (start, len), before, after);
                        assert_eq!(ours, theirs, "{text:?} at {start}+{len}, {before}/{after}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_long_line_is_shown_around_the_label() {
        let long = format!("{}TARGET{}", "a".repeat(100_000), "b".repeat(100_000));
        let file = SourceFile::new("f.pai", format!("first\n{long}\nlast\n"));
        let at = 6 + 100_000;
        // A label over the rest of the line is cut to a window.
        let label = file.reportable(Span::new(at, at + 200_000));
        assert_eq!(label, Span::new(at, at + LABEL_WINDOW));
        assert_eq!(label.end - label.start, LABEL_WINDOW);
        let (data, (offset, len), line, column, _) = snippet(&file, (at, 6), 1, 1).unwrap();
        assert_eq!(offset, at - WINDOW_BEFORE);
        assert_eq!(len, WINDOW_BEFORE + 6 + WINDOW_AFTER);
        assert!(data.contains("TARGET") && !data.contains('\n'), "{data}");
        assert_eq!((line, column), (1, 100_000 - WINDOW_BEFORE));
        // Read for the header (no context): the label's own line and column.
        let (data, (offset, _), line, column, _) = snippet(&file, (at, 6), 0, 0).unwrap();
        assert!(data.starts_with("TARGET"));
        assert_eq!((offset, line, column), (at, 1, 100_000));
        // A span from a short line into the long one, or across it, stops at the end of
        // its first line.
        assert_eq!(file.reportable(Span::new(0, at)), Span::new(0, 5));
        let after_long = file.text().len() - 2;
        assert_eq!(file.reportable(Span::new(2, after_long)), Span::new(2, 5));
        // Short lines keep their spans.
        assert_eq!(file.reportable(Span::new(0, 3)), Span::new(0, 3));
        // miette asks for two labels far apart on the long line as one span: refused,
        // so that it shows them one at a time.
        let far = SourceSpan::from((at - 50_000, 50_006));
        assert!(file.read_span(&far, 1, 1).is_err());
        // A label on the newline that ends the long line: the window runs through it.
        let end_of_line = 6 + long.len();
        let (data, _, _, _, _) = snippet(&file, (end_of_line, 0), 1, 1).unwrap();
        assert!(data.ends_with("b\n"), "{data}");
    }

    #[test]
    fn a_lone_carriage_return_is_not_a_line_break() {
        // As in `line_col` and in miette's drawing of lines; miette's own `read_span`
        // would put `b` on a line of its own.
        let file = SourceFile::new("f.pai", "a\rb\r\nc");
        assert_eq!(
            snippet(&file, (2, 1), 0, 0).unwrap(),
            ("b".to_string(), (2, 1), 0, 2, 0)
        );
        assert_eq!(snippet(&file, (6, 1), 1, 0).unwrap().2, 0);
        assert_eq!(file.line_col(2), (1, 3));
    }

    #[test]
    fn line_col_counts_characters_from_one() {
        let file = SourceFile::new("a.pai", "ab\nçd\n");
        assert_eq!(file.line_col(0), (1, 1));
        assert_eq!(file.line_col(3), (2, 1));
        assert_eq!(file.line_col(5), (2, 2)); // after the two-byte `ç`
        assert_eq!(file.line_col(100), (3, 1));
    }
}
