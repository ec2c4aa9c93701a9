//! A small YAML writer for tests: the same data in different layouts (block or flow, quoting,
//! key order, comments, indentation, CRLF, BOM), to show that layout never changes meaning.

use saphyr::Scalar;
use serde_json::Value;

/// Layout choices.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    /// Collections at this depth or deeper are written in flow style (`{a: 1}`).
    pub(crate) flow_from_depth: usize,
    /// 0: plain when safe, 1: single quotes, 2: double quotes.
    pub(crate) quoting: u8,
    /// Write mapping keys in reverse order.
    pub(crate) reverse_keys: bool,
    /// Add comments.
    pub(crate) comments: bool,
    /// Indentation step.
    pub(crate) indent: usize,
    /// CRLF line ends.
    pub(crate) crlf: bool,
    /// Leading byte order mark.
    pub(crate) bom: bool,
}

impl Default for Layout {
    fn default() -> Layout {
        Layout {
            flow_from_depth: usize::MAX,
            quoting: 0,
            reverse_keys: false,
            comments: false,
            indent: 2,
            crlf: false,
            bom: false,
        }
    }
}

fn plain_safe(s: &str) -> bool {
    !s.is_empty()
        && matches!(Scalar::parse_from_cow(s.into()), Scalar::String(_))
        && !s.starts_with(|c: char| "-?:,[]{}#&*!|>'\"%@` ".contains(c))
        && !s.ends_with(' ')
        && !s.contains(": ")
        && !s.contains(" #")
        && !s.contains(|c: char| c.is_control() || ",[]{}".contains(c))
        && !s.ends_with(':')
        // saphyr-parser ends a flow plain scalar at ` -` before a flow indicator (`{a: A -}`);
        // quote anything with a dash after a space or at the end.
        && !s.contains(" -")
        && !s.ends_with('-')
}

fn string(s: &str, layout: &Layout, is_key: bool) -> String {
    let quoting = if is_key { 0 } else { layout.quoting };
    match quoting {
        0 if plain_safe(s) => s.to_owned(),
        1 if !s.contains(|c: char| c.is_control()) => format!("'{}'", s.replace('\'', "''")),
        _ => Value::from(s).to_string(),
    }
}

fn scalar(v: &Value, layout: &Layout) -> String {
    match v {
        Value::String(s) => string(s, layout, false),
        Value::Null => "null".to_owned(),
        other => other.to_string(),
    }
}

fn keys(map: &serde_json::Map<String, Value>, layout: &Layout) -> Vec<String> {
    let mut keys: Vec<String> = map.keys().cloned().collect();
    if layout.reverse_keys {
        keys.reverse();
    }
    keys
}

fn flow(v: &Value, layout: &Layout) -> String {
    match v {
        Value::Object(map) => {
            let items: Vec<String> = keys(map, layout)
                .iter()
                .map(|k| format!("{}: {}", string(k, layout, true), flow(&map[k], layout)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        Value::Array(items) => {
            format!("[{}]", items.iter().map(|i| flow(i, layout)).collect::<Vec<_>>().join(", "))
        }
        other => scalar(other, layout),
    }
}

fn is_collection(v: &Value) -> bool {
    matches!(v, Value::Object(m) if !m.is_empty()) || matches!(v, Value::Array(a) if !a.is_empty())
}

fn block(v: &Value, indent: usize, depth: usize, layout: &Layout, out: &mut Vec<String>) {
    let pad = " ".repeat(indent);
    let comment = if layout.comments { "  # note" } else { "" };
    match v {
        Value::Object(map) => {
            for k in keys(map, layout) {
                let value = &map[&k];
                let key = string(&k, layout, true);
                if is_collection(value) && depth + 1 < layout.flow_from_depth {
                    out.push(format!("{pad}{key}:{comment}"));
                    block(value, indent + layout.indent, depth + 1, layout, out);
                } else {
                    out.push(format!("{pad}{key}: {}{comment}", flow(value, layout)));
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                if is_collection(item) && depth + 1 < layout.flow_from_depth {
                    let mut inner = Vec::new();
                    block(item, indent + 2, depth + 1, layout, &mut inner);
                    if let Some(first) = inner.first_mut() {
                        *first = format!("{pad}- {}", first.trim_start());
                    }
                    out.extend(inner);
                } else {
                    out.push(format!("{pad}- {}{comment}", flow(item, layout)));
                }
            }
        }
        other => out.push(format!("{pad}{}", scalar(other, layout))),
    }
}

/// Writes `v` (a mapping) as a YAML document in `layout`.
pub(crate) fn emit(v: &Value, layout: &Layout) -> String {
    let mut lines = Vec::new();
    if layout.comments {
        lines.push("# yaml-language-server: $schema=../schemas/fleet.schema.json".to_owned());
    }
    if layout.flow_from_depth == 0 {
        lines.push(flow(v, layout));
    } else {
        block(v, 0, 0, layout, &mut lines);
    }
    let newline = if layout.crlf { "\r\n" } else { "\n" };
    let mut text = lines.join(newline);
    text.push_str(newline);
    if layout.bom {
        text.insert(0, '\u{feff}');
    }
    text
}
