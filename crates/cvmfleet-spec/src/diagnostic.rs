//! Diagnostics: every problem found in a set of spec files, positioned and rendered the same way
//! whether it came from the YAML parser, the JSON Schema, the typed model or a semantic rule.

use std::fmt;

use serde::Serialize;

use crate::source::{Source, Span};

/// One problem in a spec file.
///
/// `file:line:column` is 1-based (columns count characters). `code` is stable and meant for
/// scripts and tests (`yaml.duplicate-key`, `schema.pattern`, `semantic.prepaid-needs-period`...);
/// `message` names the offending value and what was expected. Serializing (for
/// `--format json`) yields exactly `file`, `line`, `column`, `pointer`, `code` and `message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// The file as it was named to the loader.
    pub file: String,
    /// Line, starting at 1.
    pub line: usize,
    /// Column in characters, starting at 1.
    pub column: usize,
    /// JSON pointer of the offending node in the file's document (`/fleets/0/groups/1/replicas`);
    /// empty for the whole document.
    pub pointer: String,
    /// Stable identifier of the rule that failed.
    pub code: String,
    /// What is wrong: the offending value and what was expected.
    pub message: String,
    /// How to fix it, when there is more to say than the message.
    #[serde(skip)]
    pub help: Option<String>,
    /// The source line and the characters to underline; absent when the file has no such line.
    #[serde(skip)]
    pub snippet: Option<Snippet>,
    /// Other places that take part in the problem (the first of two duplicates).
    #[serde(skip)]
    pub related: Vec<Related>,
}

/// A source line with the range to underline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snippet {
    /// The line's text, with secrets masked; for a line longer than [`MAX_SNIPPET_CHARS`], a
    /// window of it around the column, `…` marking the cuts.
    pub text: String,
    /// First underlined column in `text` (1-based, characters).
    pub column: usize,
    /// Number of characters to underline (at least 1).
    pub width: usize,
}

/// A secondary position attached to a diagnostic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Related {
    /// File of the related position.
    pub file: String,
    /// Line, starting at 1.
    pub line: usize,
    /// Column, starting at 1.
    pub column: usize,
    /// What is there.
    pub message: String,
    /// Its source line.
    pub snippet: Option<Snippet>,
}

impl Diagnostic {
    /// Builds a diagnostic for `span` in `source`.
    pub(crate) fn new(
        source: &Source,
        span: Span,
        pointer: &str,
        code: &str,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic {
            file: source.name.clone(),
            line: span.start.line,
            column: span.start.column,
            pointer: pointer.to_owned(),
            code: code.to_owned(),
            message: scrub(source, span, message.into()),
            help: None,
            snippet: snippet(source, span),
            related: Vec::new(),
        }
    }

    /// A diagnostic about a file as a whole (it could not be read, it is empty...).
    pub(crate) fn file_level(file: &str, code: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: file.to_owned(),
            line: 1,
            column: 1,
            pointer: String::new(),
            code: code.to_owned(),
            message: message.into(),
            help: None,
            snippet: None,
            related: Vec::new(),
        }
    }

    /// Adds a help line.
    #[must_use]
    pub(crate) fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    /// Adds a related position.
    #[must_use]
    pub(crate) fn with_related(
        mut self,
        source: &Source,
        span: Span,
        message: impl Into<String>,
    ) -> Diagnostic {
        self.related.push(Related {
            file: source.name.clone(),
            line: span.start.line,
            column: span.start.column,
            message: message.into(),
            snippet: snippet(source, span),
        });
        self
    }

    fn sort_key(&self) -> (&str, usize, usize, &str, &str) {
        (&self.file, self.line, self.column, &self.code, &self.message)
    }
}

/// Withholds every `quoted` part of a message about a node on a line holding a masked secret
/// when it shares four characters in a row with the secret: messages quote values (`found
/// string `…``, `unknown field `…``), and a value read from a mangled password line must not
/// show what its snippet masks.
fn scrub(source: &Source, span: Span, message: String) -> String {
    let secrets = source.masked_texts(span.start.line, span.end.line);
    if secrets.is_empty() {
        return message;
    }
    let shares = |quoted: &str| {
        let chars: Vec<char> = quoted.trim_end_matches("...").chars().collect();
        let run = chars.len().min(4);
        run > 0
            && chars.windows(run).any(|w| {
                let w: String = w.iter().collect();
                secrets.iter().any(|s| s.contains(&w))
            })
    };
    let mut out = String::with_capacity(message.len());
    let mut rest = message.as_str();
    while let Some(open) = rest.find('`') {
        let Some(len) = rest[open + 1..].find('`') else { break };
        let quoted = &rest[open + 1..open + 1 + len];
        out.push_str(&rest[..open]);
        out.push_str(if shares(quoted) { "`(masked)`" } else { &rest[open..open + len + 2] });
        rest = &rest[open + len + 2..];
    }
    out.push_str(rest);
    out
}

/// Longest snippet shown, in characters: a window of the line around the column, so that a
/// one-line 400 KB file with thousands of problems prints a few hundred bytes per problem.
pub const MAX_SNIPPET_CHARS: usize = 160;
/// Characters of the window shown before the column.
const SNIPPET_LEAD: usize = 40;

fn snippet(source: &Source, span: Span) -> Option<Snippet> {
    let line_len = source.line_chars(span.start.line)?;
    let column = span.start.column.max(1);
    let end = if span.end == span.start {
        column + 1
    } else if span.end.line == span.start.line && span.end.column > column {
        span.end.column
    } else {
        line_len + 1
    };
    let end = end.min(line_len + 1).max(column + 1);
    let width = end.saturating_sub(column).max(1);
    if line_len <= MAX_SNIPPET_CHARS {
        let (text, _) = source.window(span.start.line, 0, line_len)?;
        return Some(Snippet { text, column, width });
    }
    // A window of the line: up to SNIPPET_LEAD characters before the column, the rest after,
    // with `…` where the line was cut.
    let at = (column - 1).min(line_len);
    let from = at.saturating_sub(SNIPPET_LEAD).min(line_len.saturating_sub(MAX_SNIPPET_CHARS));
    let (body, from) = source.window(span.start.line, from, from + MAX_SNIPPET_CHARS)?;
    let cut_before = from > 0;
    let cut_after = from + body.chars().count() < line_len;
    let mut text = String::with_capacity(body.len() + 8);
    if cut_before {
        text.push('…');
    }
    text.push_str(&body);
    if cut_after {
        text.push('…');
    }
    let column = column - from + usize::from(cut_before);
    let visible = (from + MAX_SNIPPET_CHARS + 1).saturating_sub(at + 1).max(1);
    Some(Snippet { text, column, width: width.min(visible) })
}

fn write_snippet(f: &mut fmt::Formatter<'_>, line: usize, snippet: &Snippet) -> fmt::Result {
    let gutter = line.to_string().len();
    let pad = " ".repeat(gutter);
    writeln!(f, "{pad} |")?;
    writeln!(f, "{line} | {}", snippet.text)?;
    // Keep tabs as tabs before the caret so that it lines up under the offending characters.
    let lead: String =
        snippet.text.chars().take(snippet.column - 1).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
    let short = snippet.text.chars().count() < snippet.column - 1;
    let lead = if short { " ".repeat(snippet.column - 1) } else { lead };
    write!(f, "{pad} | {lead}{}", "^".repeat(snippet.width))
}

impl fmt::Display for Diagnostic {
    /// Renders `file:line:col: code: message`, then the source line with a caret, then help and
    /// related positions.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}: {}", self.file, self.line, self.column, self.code, self.message)?;
        let gutter = self.line.to_string().len();
        if let Some(snippet) = &self.snippet {
            writeln!(f)?;
            write_snippet(f, self.line, snippet)?;
        }
        if let Some(help) = &self.help {
            write!(f, "\n{} = help: {help}", " ".repeat(gutter))?;
        }
        for related in &self.related {
            write!(f, "\n{}:{}:{}: note: {}", related.file, related.line, related.column, related.message)?;
            if let Some(snippet) = &related.snippet {
                writeln!(f)?;
                write_snippet(f, related.line, snippet)?;
            }
        }
        Ok(())
    }
}

/// Every diagnostic of a load, sorted by file, line and column.
///
/// `Display` renders them one after another, separated by blank lines; `Serialize` yields a
/// JSON list of `{file, line, column, pointer, code, message}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Diagnostics(Vec<Diagnostic>);

impl Diagnostics {
    /// Wraps and sorts a list of diagnostics, dropping exact duplicates.
    pub(crate) fn from_vec(mut list: Vec<Diagnostic>) -> Diagnostics {
        list.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        list.dedup();
        Diagnostics(list)
    }

    /// The diagnostics, in order.
    #[must_use]
    pub fn as_slice(&self) -> &[Diagnostic] {
        &self.0
    }

    /// Iterates over the diagnostics in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }

    /// Number of diagnostics.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there is none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of distinct files with at least one diagnostic.
    #[must_use]
    pub fn file_count(&self) -> usize {
        let mut files: Vec<&str> = self.0.iter().map(|d| d.file.as_str()).collect();
        files.dedup();
        files.len()
    }

    /// Takes the list out.
    #[must_use]
    pub fn into_vec(self) -> Vec<Diagnostic> {
        self.0
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, diagnostic) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
                writeln!(f)?;
            }
            write!(f, "{diagnostic}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::source::{Position, SourceFile};

    fn span(line: usize, column: usize, end: usize) -> Span {
        Span { start: Position { line, column }, end: Position { line, column: end } }
    }

    #[test]
    fn renders_line_and_caret() {
        let source = Arc::new(SourceFile::new("a.yaml", "fleets:\n  - name: Web\n"));
        let d = Diagnostic::new(&source, span(2, 11, 14), "/fleets/0/name", "schema.pattern", "bad")
            .with_help("use lowercase");
        assert_eq!(
            d.to_string(),
            "a.yaml:2:11: schema.pattern: bad\n  |\n2 |   - name: Web\n  |           ^^^\n  = help: use lowercase"
        );
    }

    #[test]
    fn caret_keeps_tabs() {
        let source = Arc::new(SourceFile::new("a.yaml", "\tx: 1\n"));
        let d = Diagnostic::new(&source, span(1, 2, 3), "", "yaml.syntax", "m");
        assert!(d.to_string().ends_with("  | \t^"), "{d}");
    }

    #[test]
    fn json_has_six_fields() {
        let d = Diagnostic::file_level("a.yaml", "io.read", "gone").with_help("h");
        let value = serde_json::to_value(Diagnostics::from_vec(vec![d])).unwrap_or_default();
        let keys: Vec<_> = value[0].as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
        assert_eq!(keys, ["file", "line", "column", "pointer", "code", "message"]);
    }
}
