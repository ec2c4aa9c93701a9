//! The JSON Schema, generated from the Rust types, and validation against it with every error
//! turned into a positioned [`Diagnostic`]. `jsonschema` is wrapped here only, so that its
//! frequent 0.x upgrades touch one file.

use std::collections::HashSet;
use std::sync::OnceLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{ValidationError, Validator};
use serde_json::Value;

use crate::diagnostic::Diagnostic;
use crate::model::SpecFile;
use crate::source::{Source, Span};
use crate::yaml::{Document, push_token};

/// The JSON Schema of a spec file (draft 2020-12), generated from the Rust types with their
/// descriptions, enums, ranges and ID patterns. `schemas/fleet.schema.json` holds a copy and
/// `cvmfleet schema` prints it.
#[must_use]
pub fn json_schema() -> Value {
    let generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    let schema = generator.into_root_schema_for::<SpecFile>();
    let mut value = schema.to_value();
    unwrap_descriptions(&mut value);
    value
}

/// Joins the line breaks that doc comments leave inside descriptions, keeping paragraph breaks.
fn unwrap_descriptions(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if key == "description" {
                    if let Value::String(text) = v {
                        *text = text
                            .split("\n\n")
                            .map(|p| p.split('\n').map(str::trim).collect::<Vec<_>>().join(" "))
                            .collect::<Vec<_>>()
                            .join("\n\n");
                    }
                } else {
                    unwrap_descriptions(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(unwrap_descriptions),
        _ => {}
    }
}

/// The schema and its compiled validator, built once per process.
fn compiled() -> &'static (Value, Option<Validator>) {
    static COMPILED: OnceLock<(Value, Option<Validator>)> = OnceLock::new();
    COMPILED.get_or_init(|| {
        let schema = json_schema();
        let validator = jsonschema::draft202012::new(&schema).ok();
        (schema, validator)
    })
}

/// Validates a document against the schema. `skip` holds pointers already reported by a more
/// specific check (a literal password, a reserved field): errors at or below them are dropped,
/// as are errors below poisoned pointers.
pub(crate) fn validate(source: &Source, doc: &Document, skip: &[String]) -> Vec<Diagnostic> {
    let (schema, validator) = compiled();
    let Some(validator) = validator else {
        return vec![Diagnostic::file_level(
            &source.name,
            "schema.internal",
            "the built-in JSON Schema failed to compile; this is a bug in cvmfleet",
        )];
    };
    let mut out = Vec::new();
    for error in validator.iter_errors(&doc.value) {
        convert(source, doc, schema, &error, &mut out);
    }
    // One set lookup per ancestor of each diagnostic, rather than a scan of every poisoned
    // pointer per diagnostic (a file can hold tens of thousands of both).
    let dropped: HashSet<&str> = doc.poisoned.iter().chain(skip).map(String::as_str).collect();
    if !dropped.is_empty() {
        out.retain(|d| !is_at_or_below_any(&d.pointer, &dropped));
    }
    out
}

/// Whether `pointer` or one of its ancestors is in `prefixes`.
fn is_at_or_below_any(pointer: &str, prefixes: &HashSet<&str>) -> bool {
    let mut p = pointer;
    loop {
        if prefixes.contains(p) {
            return true;
        }
        match p.rfind('/') {
            Some(i) => p = &p[..i],
            None => return false,
        }
    }
}

/// Span of the node at `pointer`, or of its closest ancestor that has one.
pub(crate) fn span_of(doc: &Document, pointer: &str, prefer_key: bool) -> Span {
    let mut p = pointer;
    loop {
        if let Some(pos) = doc.index.get(p) {
            return if prefer_key { pos.key.unwrap_or(pos.value) } else { pos.value };
        }
        match p.rfind('/') {
            Some(i) => p = &p[..i],
            None => return Span::default(),
        }
    }
}

/// A short rendering of a value for messages: strings in backticks (cut when long), other
/// scalars as JSON, collections by kind.
pub(crate) fn show(value: &Value) -> String {
    match value {
        Value::String(s) => {
            let mut chars = s.chars();
            let short: String = chars.by_ref().take(48).collect();
            if chars.next().is_some() { format!("`{short}...`") } else { format!("`{short}`") }
        }
        Value::Array(_) => "a list".to_owned(),
        Value::Object(_) => "a mapping".to_owned(),
        Value::Null => "an empty value".to_owned(),
        other => format!("`{other}`"),
    }
}

/// `string `x``, `integer `3``, `a list`...: the value with its kind, for type errors.
fn found(value: &Value) -> String {
    match value {
        Value::Array(_) | Value::Object(_) | Value::Null => show(value),
        other => format!("{} {}", kind_name(other), show(other)),
    }
}

fn kind_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "mapping",
    }
}

fn type_name(t: &str) -> &str {
    match t {
        "object" => "a mapping",
        "array" => "a list",
        "string" => "a string",
        "integer" => "an integer",
        "number" => "a number",
        "boolean" => "true or false",
        "null" => "nothing",
        other => other,
    }
}

/// Human hints for the ID and name patterns, so that messages say what a valid value looks like.
fn pattern_hint(pattern: &str) -> Option<&'static str> {
    Some(match pattern {
        r"^img-[a-z0-9]{8}$" => "an image ID like `img-pmqg1cw7`",
        r"^sg-[a-z0-9]{8}$" => "a security group ID like `sg-5ld3mz1q`",
        r"^(vpc-[a-z0-9]{8}|DEFAULT)$" => "a VPC ID like `vpc-2zxc8w1p` (or `DEFAULT`)",
        r"^(subnet-[a-z0-9]{8}|DEFAULT)$" => "a subnet ID like `subnet-g3a1x7k2` (or `DEFAULT`)",
        r"^subnet-[a-z0-9]{8}$" => "a subnet ID like `subnet-g3a1x7k2`",
        r"^host-[a-z0-9]{8}$" => "a dedicated host ID like `host-q88gab4i`",
        r"^skey-[a-z0-9]{8}$" => "a key pair ID like `skey-3glfot13`",
        r"^snap-[a-z0-9]{8}$" => "a snapshot ID like `snap-0a1b2c3d`",
        r"^bwp-[a-z0-9]{8}$" => "a bandwidth package ID like `bwp-0a1b2c3d`",
        r"^[a-z]+(-[a-z]+)+-[0-9]+$" => "a zone name like `ap-guangzhou-3`",
        r"^[a-z]+(-[a-z]+)+$" => "a region name like `ap-guangzhou`",
        crate::model::NAME_PATTERN => {
            "a name of lowercase letters, digits and `-`, starting with a letter, at most 32 characters"
        }
        r"^(CDH_[0-9]+C[0-9]+G|[A-Za-z0-9]+\.[A-Z0-9]+)$" => {
            "an instance type like `S5.MEDIUM2`, or `CDH_<cpu>C<memory>G` for dedicated hosts"
        }
        r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$" => {
            "a UTC time like `2030-05-29T11:26:40Z`"
        }
        r"^[A-Za-z0-9+/]*={0,2}$" => "base64 text",
        r"^[A-Za-z_][A-Za-z0-9_]*$" => "an environment variable name like `SEED_PASSWORD`",
        _ => return None,
    })
}

/// Property names allowed by the schema node at `schema_path` (the parent of the failing
/// `additionalProperties` keyword).
fn allowed_properties(schema: &Value, keyword_path: &str) -> Vec<String> {
    let parent = keyword_path.rsplit_once('/').map_or("", |(p, _)| p);
    schema
        .pointer(parent)
        .and_then(|node| node.get("properties"))
        .and_then(Value::as_object)
        .map(|props| props.keys().cloned().collect())
        .unwrap_or_default()
}

/// Edit distance, case-insensitive, for "did you mean" suggestions.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

pub(crate) fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a String>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (distance(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.as_str())
}

fn list(items: &[String]) -> String {
    items.iter().map(|i| format!("`{i}`")).collect::<Vec<_>>().join(", ")
}

fn convert(
    source: &Source,
    doc: &Document,
    schema: &Value,
    error: &ValidationError<'_>,
    out: &mut Vec<Diagnostic>,
) {
    let pointer = error.instance_path().as_str().to_owned();
    let instance: &Value = error.instance();
    let at = |code: &str, message: String| {
        Diagnostic::new(source, span_of(doc, &pointer, false), &pointer, code, message)
    };
    match error.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let allowed = allowed_properties(schema, error.schema_path().as_str());
            let in_template = error.schema_path().as_str().starts_with("/$defs/Template/");
            for key in unexpected {
                let key_pointer = push_token(&pointer, key);
                let span = span_of(doc, &key_pointer, true);
                if in_template && (key == "InstanceCount" || key == "ClientToken") {
                    let what = if key == "InstanceCount" {
                        "the group's `replicas` (or the number of its private IPs)"
                    } else {
                        "a hash of the launch template, so that retries are idempotent"
                    };
                    out.push(
                        Diagnostic::new(
                            source,
                            span,
                            &key_pointer,
                            "spec.reserved-field",
                            format!("`{key}` cannot be set in a spec: the reconciler derives it from {what}"),
                        )
                        .with_help(if key == "InstanceCount" {
                            "remove it and set `replicas:` on the group"
                        } else {
                            "remove it"
                        }),
                    );
                    continue;
                }
                let mut d = Diagnostic::new(
                    source,
                    span,
                    &key_pointer,
                    "schema.unknown-field",
                    format!("unknown field `{key}`; expected one of {}", list(&allowed)),
                );
                if let Some(s) = suggest(key, &allowed) {
                    d = d.with_help(format!("did you mean `{s}`?"));
                }
                out.push(d);
            }
        }
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or_default();
            let span = span_of(doc, &pointer, true);
            out.push(Diagnostic::new(
                source,
                span,
                &pointer,
                "schema.required",
                format!("missing required field `{name}`"),
            ));
        }
        ValidationErrorKind::Type { kind } => {
            let expected = match kind {
                TypeKind::Single(t) => type_name(&t.to_string()).to_owned(),
                TypeKind::Multiple(set) => {
                    let names: Vec<String> = set
                        .iter()
                        .filter(|t| t.to_string() != "null")
                        .map(|t| type_name(&t.to_string()).to_owned())
                        .collect();
                    names.join(" or ")
                }
            };
            out.push(at("schema.type", format!("expected {expected}, found {}", found(instance))));
        }
        ValidationErrorKind::Enum { options } => {
            let options: Vec<String> = options
                .as_array()
                .map(|a| a.iter().map(|o| o.as_str().map_or_else(|| o.to_string(), str::to_owned)).collect())
                .unwrap_or_default();
            let mut d = at("schema.enum", format!("{} is not one of {}", show(instance), list(&options)));
            if let Some(s) = instance.as_str().and_then(|v| suggest(v, &options)) {
                d = d.with_help(format!("did you mean `{s}`?"));
            }
            out.push(d);
        }
        ValidationErrorKind::Pattern { pattern } => {
            let expected =
                pattern_hint(pattern).map_or_else(|| format!("text matching `{pattern}`"), str::to_owned);
            out.push(at("schema.pattern", format!("{} is not valid; expected {expected}", show(instance))));
        }
        ValidationErrorKind::Minimum { limit } => {
            out.push(at("schema.minimum", format!("{} is less than the minimum of {limit}", show(instance))));
        }
        ValidationErrorKind::Maximum { limit } => {
            out.push(at("schema.maximum", format!("{} is more than the maximum of {limit}", show(instance))));
        }
        ValidationErrorKind::MultipleOf { multiple_of } => {
            out.push(at(
                "schema.multiple-of",
                format!("{} is not a multiple of {multiple_of}", show(instance)),
            ));
        }
        ValidationErrorKind::MinLength { limit } => {
            out.push(at(
                "schema.min-length",
                format!(
                    "{} is shorter than {limit} character{}",
                    show(instance),
                    if *limit == 1 { "" } else { "s" }
                ),
            ));
        }
        ValidationErrorKind::MaxLength { limit } => {
            let len = instance.as_str().map_or(0, |s| s.chars().count());
            out.push(at(
                "schema.max-length",
                format!("{} is {len} characters long; at most {limit} are allowed", show(instance)),
            ));
        }
        ValidationErrorKind::MinItems { limit } => {
            out.push(at(
                "schema.min-items",
                format!(
                    "the list is empty; expected at least {limit} item{}",
                    if *limit == 1 { "" } else { "s" }
                ),
            ));
        }
        ValidationErrorKind::MaxItems { limit } => {
            let len = instance.as_array().map_or(0, Vec::len);
            out.push(at(
                "schema.max-items",
                format!("the list has {len} items; at most {limit} are allowed"),
            ));
        }
        ValidationErrorKind::UniqueItems => {
            out.push(at("schema.unique-items", "the list has duplicate items".to_owned()));
        }
        ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context }
            if all_constants(context, &pointer).is_some() =>
        {
            // An enum whose variants carry descriptions is a `oneOf` of constants.
            let options = all_constants(context, &pointer).unwrap_or_default();
            let mut d = at("schema.enum", format!("{} is not one of {}", show(instance), list(&options)));
            if let Some(s) = instance.as_str().and_then(|v| suggest(v, &options)) {
                d = d.with_help(format!("did you mean `{s}`?"));
            }
            out.push(d);
        }
        ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } => {
            // Report the branch the user most likely meant: the one that does not reject the
            // value's type outright, with the fewest errors.
            let candidate = context
                .iter()
                .filter(|branch| {
                    !branch.iter().any(|e| {
                        e.instance_path().as_str() == pointer
                            && matches!(e.kind(), ValidationErrorKind::Type { .. })
                    })
                })
                .min_by_key(|branch| branch.len());
            // Mappings told apart by which key they have (`{fromEnv: ..}` or `{fromFile: ..}`):
            // name the forms instead of guessing one.
            let by_key = candidate.is_some_and(|branch| {
                branch.iter().any(|e| {
                    e.instance_path().as_str() == pointer
                        && matches!(e.kind(), ValidationErrorKind::Required { .. })
                })
            }) && context.len() > 1;
            match candidate {
                Some(_) if by_key => {
                    let expected = describe_alternatives(schema, error.schema_path().as_str());
                    out.push(at(
                        "schema.one-of",
                        format!("{} is not valid here; expected {expected}", show(instance)),
                    ));
                }
                Some(branch) if !branch.is_empty() => {
                    for e in branch {
                        convert(source, doc, schema, e, out);
                    }
                }
                _ => {
                    let expected = describe_alternatives(schema, error.schema_path().as_str());
                    out.push(at(
                        "schema.type",
                        format!("{} is not valid here; expected {expected}", show(instance)),
                    ));
                }
            }
        }
        ValidationErrorKind::OneOfMultipleValid { .. } => {
            out.push(at(
                "schema.one-of",
                format!("{} matches more than one form; expected exactly one", show(instance)),
            ));
        }
        _ => {
            out.push(at("schema.other", format!("{} is not valid: {}", show(instance), error.masked())));
        }
    }
}

/// When every failing branch (but a `null` one) is a constant at `pointer`, the constants.
fn all_constants(context: &[Vec<ValidationError<'static>>], pointer: &str) -> Option<Vec<String>> {
    let mut options = Vec::new();
    for branch in context {
        for e in branch {
            if e.instance_path().as_str() != pointer {
                return None;
            }
            match e.kind() {
                ValidationErrorKind::Constant { expected_value } => {
                    options.push(
                        expected_value.as_str().map_or_else(|| expected_value.to_string(), str::to_owned),
                    );
                }
                ValidationErrorKind::Type { kind: TypeKind::Single(t) } if t.to_string() == "null" => {}
                _ => return None,
            }
        }
    }
    if options.is_empty() { None } else { Some(options) }
}

/// Describes the alternatives of an `anyOf`/`oneOf` for a message.
fn describe_alternatives(schema: &Value, keyword_path: &str) -> String {
    let Some(branches) = schema.pointer(keyword_path).and_then(Value::as_array) else {
        return "another form".to_owned();
    };
    let mut names = Vec::new();
    for branch in branches {
        let branch = match branch.get("$ref").and_then(Value::as_str) {
            Some(r) => schema.pointer(r.trim_start_matches('#')).unwrap_or(branch),
            None => branch,
        };
        if let Some(hint) = branch.get("pattern").and_then(Value::as_str).and_then(pattern_hint) {
            names.push(hint.to_owned());
        } else if let Some(required) = branch.get("required").and_then(Value::as_array) {
            let keys: Vec<String> =
                required.iter().filter_map(Value::as_str).map(|k| format!("`{k}: ...`")).collect();
            names.push(format!("a mapping with {}", keys.join(" and ")));
        } else if let Some(t) = branch.get("type").and_then(Value::as_str)
            && t != "null"
        {
            names.push(type_name(t).to_owned());
        }
    }
    if names.is_empty() { "another form".to_owned() } else { names.join(", or ") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_compiles() {
        assert!(compiled().1.is_some());
    }

    #[test]
    fn suggestions_are_close_matches() {
        let candidates = vec!["ImageId".to_owned(), "InstanceType".to_owned()];
        assert_eq!(suggest("imageid", &candidates), Some("ImageId"));
        assert_eq!(suggest("ImagId", &candidates), Some("ImageId"));
        assert_eq!(suggest("Zone", &candidates), None);
    }
}
