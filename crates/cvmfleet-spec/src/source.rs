//! Source text of one spec file, with the lookups diagnostics need: position to line text, and
//! masking of secret values so that a literal password never reaches an error message.

use std::collections::{BTreeMap, BTreeSet};
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
#[derive(Debug, Clone)]
pub(crate) struct SourceFile {
    pub(crate) name: String,
    lines: Vec<Line>,
    /// Per line, ranges (first column, end column) whose characters are replaced by `*` when
    /// shown: literal passwords found in the file.
    masks: BTreeMap<usize, Vec<(usize, usize)>>,
}

/// One line's text, with what finding a column in it quickly needs: a file can be one line of
/// 400 KB with thousands of diagnostics on it, each of which shows a window of that line.
#[derive(Debug, Clone)]
struct Line {
    text: String,
    /// Number of characters.
    chars: usize,
    /// Byte offset of every [`CHECKPOINT`]th character, for long lines that are not ASCII (in
    /// ASCII, the character index is the byte offset).
    checkpoints: Vec<usize>,
}

/// Characters between two checkpoints of a long line.
const CHECKPOINT: usize = 256;

impl Line {
    fn new(text: &str) -> Line {
        let ascii = text.is_ascii();
        let chars = if ascii { text.len() } else { text.chars().count() };
        let checkpoints = if ascii || text.len() <= CHECKPOINT {
            Vec::new()
        } else {
            text.char_indices().step_by(CHECKPOINT).map(|(i, _)| i).collect()
        };
        Line { text: text.to_owned(), chars, checkpoints }
    }

    /// Byte offset of the character at 0-based `index` (the length at or past the end).
    fn byte_of(&self, index: usize) -> usize {
        if index >= self.chars {
            return self.text.len();
        }
        if self.text.len() == self.chars {
            return index;
        }
        let (from_char, from_byte) = match self.checkpoints.get(index / CHECKPOINT) {
            Some(&byte) => (index / CHECKPOINT * CHECKPOINT, byte),
            None => (0, 0),
        };
        self.text[from_byte..]
            .char_indices()
            .nth(index - from_char)
            .map_or(self.text.len(), |(i, _)| from_byte + i)
    }
}

impl SourceFile {
    pub(crate) fn new(name: &str, text: &str) -> SourceFile {
        let lines = split_lines(text).into_iter().map(Line::new).collect();
        SourceFile { name: name.to_owned(), lines, masks: BTreeMap::new() }
    }

    /// Hides the characters of `span` (on its first line) whenever a line of this file is shown.
    pub(crate) fn mask(&mut self, span: Span) {
        let end = if span.end.line == span.start.line { span.end.column } else { usize::MAX };
        self.masks.entry(span.start.line).or_default().push((span.start.column, end));
    }

    /// Masks, on every line, whatever follows a `Password:` key to the end of the line, unless
    /// it is a mapping keyed by a name (`{fromEnv: ...}`, `{fromFile: ...}`). This is lexical, done before the
    /// YAML parser runs, so that a literal password on a line that fails to parse (`Password:
    /// pw: [oops`, `{Password: pw, x: }}`) is masked in the parse error too; the parser's own
    /// masks (exact, multi-line scalars included) are added after.
    ///
    /// Lines in `exact` are left alone: the parser read every scalar on them and masked it.
    pub(crate) fn mask_password_lines(&mut self, exact: &BTreeSet<usize>) {
        const KEY: &str = "Password";
        for (index, line) in self.lines.iter().enumerate() {
            if exact.contains(&(index + 1)) {
                continue;
            }
            let text = line.text.as_str();
            let mut search = 0;
            while let Some(found) = text[search..].find(KEY) {
                let at = search + found;
                search = at + KEY.len();
                if text[..at].chars().next_back().is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                let rest = &text[search..];
                let rest = rest.strip_prefix(['"', '\'']).unwrap_or(rest);
                let Some(value) = rest.trim_start_matches([' ', '\t']).strip_prefix(':') else {
                    continue;
                };
                let value = value.trim_start_matches([' ', '\t']);
                // `{fromEnv: VAR}`, or another `{name: ...}` the schema will refuse: a mapping
                // keyed by a name is shown; `{pw}` or `{pw, ...` are masked.
                let reference = value.strip_prefix('{').is_some_and(|inner| {
                    let inner = inner.trim_start_matches([' ', '\t', '"', '\'']);
                    let key_len = inner.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(0);
                    let after =
                        inner[key_len..].trim_start_matches(['"', '\'']).trim_start_matches([' ', '\t']);
                    key_len > 0 && !inner.starts_with(|c: char| c.is_ascii_digit()) && after.starts_with(':')
                });
                // A comment is masked too: `Password: #pw` is a password to whoever wrote it.
                if value.is_empty() || reference {
                    continue;
                }
                let column = text[..text.len() - value.len()].chars().count() + 1;
                self.masks.entry(index + 1).or_default().push((column, usize::MAX));
                break;
            }
        }
    }

    /// The original text of every masked range on lines `first..=last` (for keeping it out of
    /// messages too).
    pub(crate) fn masked_texts(&self, first: usize, last: usize) -> Vec<&str> {
        let mut out = Vec::new();
        for (line, ranges) in self.masks.range(first..=last.max(first)) {
            let Some(l) = self.lines.get(line - 1) else { continue };
            for (start, end) in ranges {
                let from = l.byte_of(start.saturating_sub(1));
                let to = l.byte_of(end.saturating_sub(1));
                if from < to {
                    out.push(&l.text[from..to]);
                }
            }
        }
        out
    }

    /// The text of a 1-based line, with masked ranges replaced by `*`.
    #[cfg(test)]
    pub(crate) fn line(&self, line: usize) -> Option<String> {
        self.window(line, 0, usize::MAX).map(|(text, _)| text)
    }

    /// Number of characters of a 1-based line.
    pub(crate) fn line_chars(&self, line: usize) -> Option<usize> {
        Some(self.lines.get(line.checked_sub(1)?)?.chars)
    }

    /// Characters `from..to` (0-based, clamped to the line) of a 1-based line, masked, and the
    /// index actually started from.
    pub(crate) fn window(&self, line: usize, from: usize, to: usize) -> Option<(String, usize)> {
        let l = self.lines.get(line.checked_sub(1)?)?;
        let from = from.min(l.chars);
        let to = to.clamp(from, l.chars);
        let text = &l.text[l.byte_of(from)..l.byte_of(to)];
        let Some(masks) = self.masks.get(&line) else {
            return Some((text.to_owned(), from));
        };
        let shown = text
            .chars()
            .enumerate()
            .map(|(i, c)| {
                let col = from + i + 1;
                if masks.iter().any(|(start, end)| col >= *start && col < *end) { '*' } else { c }
            })
            .collect();
        Some((shown, from))
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
