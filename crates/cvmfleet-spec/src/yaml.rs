//! YAML to `serde_json::Value`, once, with a span for every node.
//!
//! We read the event stream of `saphyr-parser` (the parser under `saphyr`) instead of loading a
//! `saphyr::MarkedYaml` tree, because the tree loader silently expands aliases, reports only the
//! first duplicate key (with one position) and recurses on input depth. Reading events lets us
//! reject every YAML feature a fleet spec has no use for, each with its own position, and keep
//! going to report all of them: anchors, aliases, merge keys, tags, several documents, duplicate
//! and non-string keys, non-finite numbers and excessive nesting. Scalars are resolved with
//! `saphyr::Scalar` (YAML 1.2 core schema: `on`/`yes` stay strings, `0123` is an integer).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use saphyr::Scalar;
use saphyr_parser::{Event, Parser, ScalarStyle};
use serde_json::{Map, Number, Value};

use crate::diagnostic::Diagnostic;
use crate::source::{Position, Source, Span};

/// Deepest nesting of collections accepted. A fleet spec needs about 8 levels
/// (`fleets/0/groups/0/template/DataDisks/0/...`); 64 leaves room while keeping every later
/// recursive walk (schema validation, serde, drop) far from the stack limit.
pub const MAX_DEPTH: usize = 64;

/// Where a node is: the span of its key (for mapping values) and of the value itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NodePos {
    pub(crate) key: Option<Span>,
    pub(crate) value: Span,
}

/// Span of every node, keyed by JSON pointer.
pub(crate) type SpanIndex = BTreeMap<String, NodePos>;

/// A parsed document: its value, where each node is, and the pointers whose value is a
/// placeholder for something rejected (schema errors beneath them are noise and are dropped).
#[derive(Debug)]
pub(crate) struct Document {
    pub(crate) value: Value,
    pub(crate) index: SpanIndex,
    pub(crate) poisoned: Vec<String>,
}

/// Appends one reference token to a JSON pointer, escaping `~` and `/` (RFC 6901).
pub(crate) fn push_token(pointer: &str, token: &str) -> String {
    let mut out = String::with_capacity(pointer.len() + token.len() + 1);
    out.push_str(pointer);
    out.push('/');
    for c in token.chars() {
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            c => out.push(c),
        }
    }
    out
}

enum Frame {
    Seq {
        pointer: String,
        span: Span,
        items: Vec<Value>,
    },
    Map {
        pointer: String,
        span: Span,
        map: Map<String, Value>,
        /// The key whose value comes next, with its span; `None` when a key comes next.
        key: Option<PendingKey>,
        seen: HashMap<String, Span>,
    },
    /// A subtree that is being skipped (a complex key or the value of a rejected key).
    Skip,
}

enum PendingKey {
    Key(String, Span),
    /// The key was rejected; its value is read and dropped.
    Discard,
    /// The key is a collection being skipped; its value is dropped next.
    DiscardingKey,
}

struct Builder<'a> {
    source: &'a Source,
    stack: Vec<Frame>,
    index: SpanIndex,
    poisoned: Vec<String>,
    errors: Vec<Diagnostic>,
    root: Option<Value>,
    secret_spans: Vec<Span>,
    /// The last key read was `Password`: the next scalar is a secret.
    secret_next: bool,
}

enum Slot {
    /// The node is a mapping key.
    Key,
    /// The node is a value at this pointer (with the span of its key, if any).
    Value(String, Option<Span>),
    /// The node is dropped.
    Skip,
}

impl Builder<'_> {
    fn error(&mut self, span: Span, pointer: &str, code: &str, message: impl Into<String>) {
        self.errors.push(Diagnostic::new(self.source, span, pointer, code, message));
    }

    /// Where the next node goes.
    fn slot(&self) -> Slot {
        match self.stack.last() {
            None => Slot::Value(String::new(), None),
            Some(Frame::Skip) => Slot::Skip,
            Some(Frame::Seq { pointer, items, .. }) => {
                Slot::Value(push_token(pointer, &items.len().to_string()), None)
            }
            Some(Frame::Map { key: None, .. }) => Slot::Key,
            Some(Frame::Map { key: Some(PendingKey::Discard | PendingKey::DiscardingKey), .. }) => Slot::Skip,
            Some(Frame::Map { pointer, key: Some(PendingKey::Key(k, span)), .. }) => {
                Slot::Value(push_token(pointer, k), Some(*span))
            }
        }
    }

    /// Places a finished value into its parent.
    fn insert(&mut self, value: Value) {
        match self.stack.last_mut() {
            None => self.root = Some(value),
            Some(Frame::Skip) => {}
            Some(Frame::Seq { items, .. }) => items.push(value),
            Some(Frame::Map { map, key, .. }) => {
                if let Some(PendingKey::Key(k, _)) = key.take() {
                    map.insert(k, value);
                }
            }
        }
    }

    /// Handles a scalar that sits in key position.
    fn key(&mut self, text: &str, style: ScalarStyle, span: Span) {
        let Some(Frame::Map { pointer, seen, .. }) = self.stack.last() else {
            return;
        };
        let pointer = pointer.clone();
        self.secret_next = text == "Password";
        let plain = style == ScalarStyle::Plain;
        let pending = if plain && text == "<<" {
            self.error(
                span,
                &pointer,
                "yaml.merge-key",
                "merge keys (`<<`) are not supported; write the keys out, or put shared settings in the fleet's `defaults`",
            );
            self.poisoned.push(pointer.clone());
            PendingKey::Discard
        } else if plain && !matches!(Scalar::parse_from_cow(Cow::Borrowed(text)), Scalar::String(_)) {
            self.error(
                span,
                &pointer,
                "yaml.non-string-key",
                format!(
                    "mapping key `{text}` is not a string; expected a name (quote it if it is meant as text)"
                ),
            );
            PendingKey::Discard
        } else if let Some(first) = seen.get(text).copied() {
            let message = format!(
                "duplicate key `{text}`; it is already set at line {}, column {}",
                first.start.line, first.start.column
            );
            let d = Diagnostic::new(
                self.source,
                span,
                &push_token(&pointer, text),
                "yaml.duplicate-key",
                message,
            )
            .with_related(self.source, first, "first set here");
            self.errors.push(d);
            PendingKey::Discard
        } else {
            if let Some(Frame::Map { seen, .. }) = self.stack.last_mut() {
                seen.insert(text.to_owned(), span);
            }
            PendingKey::Key(text.to_owned(), span)
        };
        if let Some(Frame::Map { key, .. }) = self.stack.last_mut() {
            *key = Some(pending);
        }
    }

    /// Rejects anchors and tags on a node; returns true when the node's value is unreliable.
    fn check_node_props(
        &mut self,
        anchor: usize,
        tag: Option<&Cow<'_, saphyr_parser::Tag>>,
        span: Span,
        pointer: &str,
    ) -> bool {
        if anchor > 0 {
            self.error(
                span,
                pointer,
                "yaml.anchor",
                "anchors (`&name`) are not supported; write the value out, or put shared settings in the fleet's `defaults`",
            );
        }
        if let Some(tag) = tag {
            let shown = match tag.handle.as_str() {
                "tag:yaml.org,2002:" => format!("!!{}", tag.suffix),
                "!" => format!("!{}", tag.suffix),
                handle => format!("{handle}{}", tag.suffix),
            };
            self.error(
                span,
                pointer,
                "yaml.tag",
                format!("tags (`{shown}`) are not supported; remove the tag and write a plain value"),
            );
            return true;
        }
        false
    }

    /// A skipped node used up its parent's pending (rejected) key.
    fn consume_discard(&mut self) {
        if let Some(Frame::Map { key, .. }) = self.stack.last_mut() {
            match key {
                Some(PendingKey::Discard) => *key = None,
                Some(PendingKey::DiscardingKey) => *key = Some(PendingKey::Discard),
                _ => {}
            }
        }
    }

    fn scalar(
        &mut self,
        text: Cow<'_, str>,
        style: ScalarStyle,
        anchor: usize,
        tag: Option<Cow<'_, saphyr_parser::Tag>>,
        span: Span,
    ) {
        let slot = self.slot();
        if self.secret_next && !matches!(slot, Slot::Key) {
            self.secret_spans.push(span);
        }
        self.secret_next = false;
        match slot {
            Slot::Skip => self.consume_discard(),
            Slot::Key => {
                self.check_node_props(anchor, tag.as_ref(), span, "");
                self.key(&text, style, span);
            }
            Slot::Value(pointer, key) => {
                let poisoned = self.check_node_props(anchor, tag.as_ref(), span, &pointer);
                let value = match Scalar::parse_from_cow_and_metadata(text, style, None) {
                    None | Some(Scalar::Null) => Value::Null,
                    Some(Scalar::Boolean(b)) => Value::Bool(b),
                    Some(Scalar::Integer(i)) => Value::Number(i.into()),
                    Some(Scalar::FloatingPoint(f)) => match Number::from_f64(f.into_inner()) {
                        Some(n) => Value::Number(n),
                        None => {
                            self.error(
                                span,
                                &pointer,
                                "yaml.non-finite-number",
                                "infinite and NaN numbers are not supported; expected a finite number",
                            );
                            self.poisoned.push(pointer.clone());
                            Value::Null
                        }
                    },
                    Some(Scalar::String(s)) => Value::String(s.into_owned()),
                };
                if poisoned {
                    self.poisoned.push(pointer.clone());
                }
                self.index.insert(pointer, NodePos { key, value: span });
                self.insert(value);
            }
        }
    }

    fn start(
        &mut self,
        is_map: bool,
        anchor: usize,
        tag: Option<Cow<'_, saphyr_parser::Tag>>,
        span: Span,
    ) -> Result<(), ()> {
        self.secret_next = false;
        let depth = self.stack.len() + 1;
        let frame = match self.slot() {
            Slot::Skip => Frame::Skip,
            Slot::Key => {
                self.error(span, "", "yaml.non-string-key", "mapping key is a collection; expected a name");
                if let Some(Frame::Map { key, .. }) = self.stack.last_mut() {
                    *key = Some(PendingKey::DiscardingKey);
                }
                Frame::Skip
            }
            Slot::Value(pointer, key) => {
                if depth > MAX_DEPTH {
                    self.error(
                        span,
                        &pointer,
                        "yaml.too-deep",
                        format!(
                            "nesting is deeper than {MAX_DEPTH} levels; a fleet spec needs fewer than 10"
                        ),
                    );
                    return Err(());
                }
                if self.check_node_props(anchor, tag.as_ref(), span, &pointer) {
                    self.poisoned.push(pointer.clone());
                }
                self.index.insert(pointer.clone(), NodePos { key, value: span });
                if is_map {
                    Frame::Map { pointer, span, map: Map::new(), key: None, seen: HashMap::new() }
                } else {
                    Frame::Seq { pointer, span, items: Vec::new() }
                }
            }
        };
        self.stack.push(frame);
        Ok(())
    }

    fn end(&mut self, span: Span) {
        let value = match self.stack.pop() {
            Some(Frame::Seq { pointer, span: start, items }) => {
                self.extend_span(&pointer, start, span);
                Some(Value::Array(items))
            }
            Some(Frame::Map { pointer, span: start, map, .. }) => {
                self.extend_span(&pointer, start, span);
                Some(Value::Object(map))
            }
            Some(Frame::Skip) | None => None,
        };
        match value {
            Some(value) => self.insert(value),
            None => self.consume_discard(),
        }
    }

    fn extend_span(&mut self, pointer: &str, start: Span, end: Span) {
        if let Some(pos) = self.index.get_mut(pointer) {
            pos.value = Span { start: start.start, end: end.end };
        }
    }
}

/// What [`parse`] found.
pub(crate) struct Parsed {
    /// The document, when the file is structurally usable (possibly with poisoned pointers).
    pub(crate) doc: Option<Document>,
    pub(crate) errors: Vec<Diagnostic>,
    /// Spans of every scalar written under a `Password` key, kept or rejected, found before the
    /// parse ended (even when it ended in an error): they are masked whenever a source line is
    /// shown.
    pub(crate) secret_spans: Vec<Span>,
}

/// Parses one YAML document. Errors are returned as diagnostics built against `source` (whose
/// password lines must be masked already).
pub(crate) fn parse(source: &Source, text: &str) -> Parsed {
    let mut parser = Parser::new_from_str(text);
    let mut b = Builder {
        source,
        stack: Vec::new(),
        index: SpanIndex::new(),
        poisoned: Vec::new(),
        errors: Vec::new(),
        root: None,
        secret_spans: Vec::new(),
        secret_next: false,
    };
    let mut documents = 0usize;
    let mut fatal = false;
    while let Some(next) = parser.next_event() {
        let (event, span) = match next {
            Ok((event, span)) => (event, Span::from_parser(span)),
            Err(err) => {
                let marker = err.marker();
                let info = err.info();
                let lines = crate::source::split_lines(text);
                let at = Position { line: marker.line(), column: marker.col() + 1 };
                // Words, not substrings: "unprintable" holds "tab".
                let about_tabs =
                    info.split(|c: char| !c.is_ascii_alphabetic()).any(|w| matches!(w, "tab" | "tabs"));
                let tab = find_tab(&lines, at);
                let (code, message, position) = if about_tabs {
                    (
                        "yaml.tab",
                        format!("{info}; indent with spaces, YAML does not allow tabs for indentation"),
                        tab.unwrap_or(at),
                    )
                } else if let Some(tab) = tab.filter(|t| t.line == at.line) {
                    // The parser also refuses a tab right after `:`; say so plainly.
                    ("yaml.tab", format!("invalid YAML: {info}; this is a tab, write a space instead"), tab)
                } else if let Some(c) = char_at(&lines, at).filter(|c| c.is_control()) {
                    let message = format!(
                        "invalid YAML: {info} U+{:04X}; spec files are text without control characters",
                        u32::from(c)
                    );
                    ("yaml.syntax", message, at)
                } else {
                    ("yaml.syntax", format!("invalid YAML: {info}"), at)
                };
                b.error(Span::at(position), "", code, message);
                fatal = true;
                break;
            }
        };
        // Only the first parse error of a file is meaningful: the parser cannot resynchronise.
        let pointer_for_span = String::new();
        match event {
            Event::Nothing | Event::StreamStart | Event::DocumentEnd => {}
            Event::StreamEnd => break,
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    b.error(
                        span,
                        &pointer_for_span,
                        "yaml.multiple-documents",
                        "a spec file holds one YAML document; this `---` starts a second one (split it into its own file)",
                    );
                    fatal = true;
                    break;
                }
            }
            Event::Alias(_) => match b.slot() {
                Slot::Skip => b.consume_discard(),
                Slot::Key => {
                    b.error(
                        span,
                        "",
                        "yaml.alias",
                        "aliases (`*name`) are not supported; write the value out",
                    );
                    if let Some(Frame::Map { key, .. }) = b.stack.last_mut() {
                        *key = Some(PendingKey::Discard);
                    }
                }
                Slot::Value(pointer, key) => {
                    b.error(
                            span,
                            &pointer,
                            "yaml.alias",
                            "aliases (`*name`) are not supported; write the value out, or put shared settings in the fleet's `defaults`",
                        );
                    b.poisoned.push(pointer.clone());
                    b.index.insert(pointer, NodePos { key, value: span });
                    b.insert(Value::Null);
                }
            },
            Event::Scalar(text, style, anchor, tag) => b.scalar(text, style, anchor, tag, span),
            Event::SequenceStart(anchor, tag) => {
                if b.start(false, anchor, tag, span).is_err() {
                    fatal = true;
                    break;
                }
            }
            Event::MappingStart(anchor, tag) => {
                if b.start(true, anchor, tag, span).is_err() {
                    fatal = true;
                    break;
                }
            }
            Event::SequenceEnd | Event::MappingEnd => b.end(span),
        }
    }
    let errors = std::mem::take(&mut b.errors);
    let secret_spans = std::mem::take(&mut b.secret_spans);
    if fatal {
        return Parsed { doc: None, errors, secret_spans };
    }
    let Some(value) = b.root.take() else {
        let d = Diagnostic::file_level(
            &source.name,
            "yaml.empty",
            "the file holds no YAML document; expected a mapping with a `fleets:` list",
        );
        return Parsed { doc: None, errors: vec![d], secret_spans };
    };
    let doc = Document { value, index: b.index, poisoned: b.poisoned };
    Parsed { doc: Some(doc), errors, secret_spans }
}

/// The character at a 1-based position.
fn char_at(lines: &[&str], at: Position) -> Option<char> {
    lines.get(at.line.checked_sub(1)?)?.chars().nth(at.column.checked_sub(1)?)
}

/// Where the tab an error is about is. The parser reports some tab errors past the tab (`a:\t1`
/// at the `1`, a tab indenting `- b` at the `-`) and some at the start of the value before it (a
/// tab indenting line 12 at the value of line 11): the tab is the one in the blanks just before
/// the position, else in the indentation of the next line that is not blank.
fn find_tab(lines: &[&str], at: Position) -> Option<Position> {
    let line = lines.get(at.line.checked_sub(1)?)?;
    let chars: Vec<char> = line.chars().collect();
    let col = at.column.saturating_sub(1).min(chars.len());
    if chars.get(col) == Some(&'\t') {
        return Some(at);
    }
    let mut start = col;
    while start > 0 && matches!(chars[start - 1], ' ' | '\t') {
        start -= 1;
    }
    if let Some(i) = chars[start..col].iter().position(|c| *c == '\t') {
        return Some(Position { line: at.line, column: start + i + 1 });
    }
    let (offset, next) =
        lines.iter().enumerate().skip(at.line).find(|(_, l)| !l.chars().all(|c| matches!(c, ' ' | '\t')))?;
    let indent = next.chars().take_while(|c| matches!(c, ' ' | '\t'));
    let i = indent.into_iter().position(|c| c == '\t')?;
    Some(Position { line: offset + 1, column: i + 1 })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::source::SourceFile;

    fn run(text: &str) -> (Option<Document>, Vec<Diagnostic>) {
        let source = Arc::new(SourceFile::new("t.yaml", text));
        let parsed = parse(&source, text);
        (parsed.doc, parsed.errors)
    }

    #[test]
    fn builds_value_and_index() {
        let (doc, errors) = run("a:\n  b: [1, x]\n  'c/d': true\n");
        assert!(errors.is_empty(), "{errors:?}");
        let doc = doc.expect("document");
        assert_eq!(doc.value, json!({"a": {"b": [1, "x"], "c/d": true}}));
        let pos = doc.index["/a/b/1"];
        assert_eq!((pos.value.start.line, pos.value.start.column), (2, 10));
        let pos = doc.index["/a/c~1d"];
        let key = pos.key.expect("key span");
        assert_eq!((key.start.line, key.start.column), (3, 3));
        assert_eq!((pos.value.start.line, pos.value.start.column), (3, 10));
    }

    /// The parser's columns are 0-based characters and lines 1-based: a multi-byte character
    /// before a value counts as one column.
    #[test]
    fn columns_count_characters() {
        let (doc, _) = run("名前: x\n");
        let pos = doc.expect("document").index["/名前"];
        assert_eq!((pos.value.start.line, pos.value.start.column), (1, 5));
    }

    #[test]
    fn duplicate_keys_are_all_reported() {
        let (_, errors) = run("a: 1\nb: 2\na: 3\nb: 4\n");
        let codes: Vec<_> = errors.iter().map(|e| (e.code.as_str(), e.line)).collect();
        assert_eq!(codes, [("yaml.duplicate-key", 3), ("yaml.duplicate-key", 4)]);
        assert_eq!(errors[0].related[0].line, 1);
    }

    #[test]
    fn deep_nesting_stops_early() {
        let text = "[".repeat(10_000) + &"]".repeat(10_000);
        let (doc, errors) = run(&text);
        assert!(doc.is_none());
        assert!(errors.iter().any(|e| e.code == "yaml.too-deep" || e.code == "yaml.syntax"), "{errors:?}");
    }

    #[test]
    fn quoted_keys_are_strings() {
        let (doc, errors) = run("'1': a\n\"true\": b\n");
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(doc.expect("document").value, json!({"1": "a", "true": "b"}));
    }
}
