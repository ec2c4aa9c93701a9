//! Source text of one spec file, with the lookups diagnostics need: position to line text, and
//! masking of secret values so that a literal password never reaches an error message.

use std::sync::Arc;

/// A position in a source file: 1-based line and 1-based column, both counted in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Position {
    /// Line, starting at 1.
    pub line: usize,
    /// Column in characters, starting at 1.
    pub column: usize,
}

/// A range of characters on one or more lines (`end` exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    /// First character.
    pub start: Position,
    /// One past the last character.
    pub end: Position,
}

impl Span {
    /// Converts a span reported by the YAML parser, whose lines are 1-based and columns 0-based
    /// (verified in `saphyr-parser` 0.3.4 `scanner.rs`: `Marker { index: chars, line: 1-based,
    /// col: 0-based }`).
    pub(crate) fn from_parser(span: saphyr_parser::Span) -> Span {
        Span {
            start: Position { line: span.start.line(), column: span.start.col() + 1 },
            end: Position { line: span.end.line(), column: span.end.col() + 1 },
        }
    }

    /// An empty span at one position.
    pub(crate) fn at(position: Position) -> Span {
        Span { start: position, end: position }
    }
}

/// A loaded file: its display name and its text (BOM removed), shared by every diagnostic of the
/// file so that rendering can show the offending line.
#[derive(Debug)]
pub(crate) struct SourceFile {
    pub(crate) name: String,
    lines: Vec<String>,
    /// Ranges (line, first column, end column) whose characters are replaced by `*` when shown:
    /// literal passwords found in the file.
    masks: Vec<(usize, usize, usize)>,
}

impl SourceFile {
    pub(crate) fn new(name: &str, text: &str) -> SourceFile {
        let lines = split_lines(text).into_iter().map(str::to_owned).collect();
        SourceFile { name: name.to_owned(), lines, masks: Vec::new() }
    }

    /// Hides the characters of `span` (on its first line) whenever a line of this file is shown.
    pub(crate) fn mask(&mut self, span: Span) {
        let end = if span.end.line == span.start.line { span.end.column } else { usize::MAX };
        self.masks.push((span.start.line, span.start.column, end));
    }

    /// The text of a 1-based line, with masked ranges replaced by `*`.
    pub(crate) fn line(&self, line: usize) -> Option<String> {
        let text = self.lines.get(line.checked_sub(1)?)?;
        let masks: Vec<_> = self.masks.iter().filter(|(l, _, _)| *l == line).collect();
        if masks.is_empty() {
            return Some(text.clone());
        }
        Some(
            text.chars()
                .enumerate()
                .map(|(i, c)| {
                    let col = i + 1;
                    if masks.iter().any(|(_, start, end)| col >= *start && col < *end) { '*' } else { c }
                })
                .collect(),
        )
    }
}

/// Splits text into lines the way YAML counts them: `\n`, `\r\n` and a lone `\r` each end a
/// line, so that the parser's line numbers find the right text.
pub(crate) fn split_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                lines.push(&text[start..i]);
                start = i + 1;
            }
            b'\r' => {
                lines.push(&text[start..i]);
                if bytes.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < text.len() {
        lines.push(&text[start..]);
    }
    lines
}

/// Shared handle to a source file.
pub(crate) type Source = Arc<SourceFile>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_lines_drop_carriage_return() {
        let file = SourceFile::new("a.yaml", "a: 1\r\nb: 2\r\n");
        assert_eq!(file.line(1).as_deref(), Some("a: 1"));
        assert_eq!(file.line(2).as_deref(), Some("b: 2"));
        assert_eq!(file.line(3), None);
        assert_eq!(file.line(0), None);
    }

    #[test]
    fn lone_carriage_return_ends_a_line() {
        assert_eq!(split_lines("a\rb\r\nc\nd"), ["a", "b", "c", "d"]);
        assert_eq!(split_lines("a\n"), ["a"]);
        assert!(split_lines("").is_empty());
    }

    #[test]
    fn masked_range_is_starred() {
        let mut file = SourceFile::new("a.yaml", "Password: hunter2\n");
        file.mask(Span { start: Position { line: 1, column: 11 }, end: Position { line: 1, column: 18 } });
        assert_eq!(file.line(1).as_deref(), Some("Password: *******"));
    }
}
