//! Loading: files and directories to text, text to validated fleets, and the checks that span
//! files (fleet names, private IPs).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::resolve::{LocatedFleet, SpecSet, resolve_fleet};
use crate::schema::{self, span_of};
use crate::source::{Position, Source, SourceFile, Span};
use crate::yaml::{self, Document, push_token};

/// Largest spec file accepted, in bytes. Real specs are a few KiB; 4 MiB leaves room for
/// generated ones while keeping a stray log or binary from being parsed.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// One input: a display name, its text, and the directory relative `fromFile` secrets resolve
/// against.
struct Input {
    name: String,
    text: Result<String, Box<Diagnostic>>,
    base_dir: Option<PathBuf>,
}

/// Loads spec files and directories (read recursively for `*.yaml` and `*.yml`, in sorted
/// order; entries starting with `.` are skipped). Every problem of every file is reported.
///
/// # Errors
/// All diagnostics, when any file is unreadable or invalid.
pub fn load_paths(paths: &[PathBuf]) -> Result<SpecSet, Diagnostics> {
    let mut inputs = Vec::new();
    let mut problems = Vec::new();
    for path in paths {
        let name = path.display().to_string();
        match std::fs::metadata(path) {
            Err(err) => {
                problems.push(Diagnostic::file_level(&name, "io.read", format!("cannot read {name}: {err}")))
            }
            Ok(meta) if meta.is_dir() => {
                let mut files = Vec::new();
                collect_dir(path, 0, &mut files, &mut problems);
                files.sort();
                if files.is_empty() {
                    problems.push(Diagnostic::file_level(
                        &name,
                        "io.no-spec-files",
                        format!("directory {name} holds no `*.yaml` or `*.yml` files"),
                    ));
                }
                inputs.extend(files.into_iter().map(|f| read_input(&f)));
            }
            Ok(_) => inputs.push(read_input(path)),
        }
    }
    if paths.is_empty() {
        problems.push(Diagnostic::file_level("", "io.no-spec-files", "no spec files were given"));
    }
    load_inputs(inputs, problems)
}

/// Directory depth followed when collecting files; deeper trees are a mistake (or a loop).
const MAX_DIR_DEPTH: usize = 32;

fn collect_dir(dir: &Path, depth: usize, files: &mut Vec<PathBuf>, problems: &mut Vec<Diagnostic>) {
    let name = dir.display().to_string();
    if depth > MAX_DIR_DEPTH {
        problems.push(Diagnostic::file_level(&name, "io.read", format!("{name} is nested too deeply")));
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) => {
            problems.push(Diagnostic::file_level(
                &name,
                "io.read",
                format!("cannot read directory {name}: {err}"),
            ));
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        // Symlinked directories are not followed (no loops); symlinked files are read.
        if file_type.is_dir() {
            collect_dir(&path, depth + 1, files, problems);
        } else if matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) && path.is_file()
        {
            files.push(path);
        }
    }
}

fn read_input(path: &Path) -> Input {
    let name = path.display().to_string();
    let base_dir = path.parent().map(Path::to_path_buf);
    let text = read_text(path, &name);
    Input { name, text, base_dir }
}

fn read_text(path: &Path, name: &str) -> Result<String, Box<Diagnostic>> {
    let too_large = |size: u64| {
        Box::new(Diagnostic::file_level(
            name,
            "yaml.file-too-large",
            format!("the file is {size} bytes; spec files may be at most {MAX_FILE_BYTES} bytes"),
        ))
    };
    let meta = std::fs::metadata(path).map_err(|err| {
        Box::new(Diagnostic::file_level(name, "io.read", format!("cannot read {name}: {err}")))
    })?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_large(meta.len()));
    }
    let bytes = std::fs::read(path).map_err(|err| {
        Box::new(Diagnostic::file_level(name, "io.read", format!("cannot read {name}: {err}")))
    })?;
    decode(name, bytes)
}

/// Bytes to text: UTF-8 only, with the position of the first invalid byte otherwise.
fn decode(name: &str, bytes: Vec<u8>) -> Result<String, Box<Diagnostic>> {
    match String::from_utf8(bytes) {
        Ok(text) => Ok(text),
        Err(err) => {
            let valid_up_to = err.utf8_error().valid_up_to();
            let bytes = err.into_bytes();
            let prefix = String::from_utf8_lossy(&bytes[..valid_up_to]);
            let line = prefix.matches('\n').count() + 1;
            let column = prefix.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            let mut d = Diagnostic::file_level(
                name,
                "yaml.invalid-utf8",
                format!(
                    "byte 0x{:02x} at offset {valid_up_to} is not valid UTF-8; spec files must be UTF-8 text",
                    bytes.get(valid_up_to).copied().unwrap_or(0)
                ),
            );
            d.line = line;
            d.column = column;
            Err(Box::new(d))
        }
    }
}

/// Loads one spec from text; `name` is used in diagnostics. Relative `fromFile` secret paths
/// resolve against the current directory.
///
/// # Errors
/// All diagnostics, when the text is not a valid spec.
pub fn load_str(name: &str, text: &str) -> Result<SpecSet, Diagnostics> {
    load_sources(&[(name, text)])
}

/// Loads several specs from text at once, with the checks that span files (fleet names and
/// private IPs unique).
///
/// # Errors
/// All diagnostics, when any text is not a valid spec.
pub fn load_sources(sources: &[(&str, &str)]) -> Result<SpecSet, Diagnostics> {
    let inputs = sources
        .iter()
        .map(|(name, text)| {
            let text = if text.len() as u64 > MAX_FILE_BYTES {
                Err(Box::new(Diagnostic::file_level(
                    name,
                    "yaml.file-too-large",
                    format!(
                        "the file is {} bytes; spec files may be at most {MAX_FILE_BYTES} bytes",
                        text.len()
                    ),
                )))
            } else {
                Ok((*text).to_owned())
            };
            Input { name: (*name).to_owned(), text, base_dir: None }
        })
        .collect();
    load_inputs(inputs, Vec::new())
}

/// Bytes from any source (for the fuzzer and callers holding raw bytes).
///
/// # Errors
/// All diagnostics, when the bytes are not a valid spec.
pub fn load_bytes(name: &str, bytes: &[u8]) -> Result<SpecSet, Diagnostics> {
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(Diagnostics::from_vec(vec![Diagnostic::file_level(
            name,
            "yaml.file-too-large",
            format!("the file is {} bytes; spec files may be at most {MAX_FILE_BYTES} bytes", bytes.len()),
        )]));
    }
    let text = decode(name, bytes.to_vec());
    load_inputs(vec![Input { name: name.to_owned(), text, base_dir: None }], Vec::new())
}

fn load_inputs(inputs: Vec<Input>, mut problems: Vec<Diagnostic>) -> Result<SpecSet, Diagnostics> {
    // Files are independent until the cross-file checks: check them on all cores.
    let threads = std::thread::available_parallelism().map_or(1, usize::from).min(inputs.len()).max(1);
    let chunk = inputs.len().div_ceil(threads).max(1);
    let results: Vec<(Vec<LocatedFleet>, Vec<Diagnostic>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = inputs
            .chunks(chunk)
            .map(|chunk| scope.spawn(move || chunk.iter().map(check_input).collect::<Vec<_>>()))
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
    });
    let mut fleets = Vec::new();
    for (located, diagnostics) in results {
        fleets.extend(located);
        problems.extend(diagnostics);
    }
    cross_file(&fleets, &mut problems);
    if problems.is_empty() {
        let mut fleets: Vec<_> = fleets.into_iter().map(|l| l.fleet).collect();
        fleets.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(SpecSet { fleets })
    } else {
        Err(Diagnostics::from_vec(problems))
    }
}

fn check_input(input: &Input) -> (Vec<LocatedFleet>, Vec<Diagnostic>) {
    match &input.text {
        Err(d) => (Vec::new(), vec![(**d).clone()]),
        Ok(text) => check_text(&input.name, text, input.base_dir.as_deref()),
    }
}

/// Everything about one file: YAML, schema, typed model, semantic rules.
fn check_text(name: &str, text: &str, base_dir: Option<&Path>) -> (Vec<LocatedFleet>, Vec<Diagnostic>) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut file = SourceFile::new(name, text);
    let (doc, yaml_errors) = {
        let unmasked: Source = Arc::new(SourceFile::new(name, text));
        yaml::parse(&unmasked, text)
    };
    let Some(mut doc) = doc else {
        return (Vec::new(), yaml_errors);
    };
    // Every scalar under a `Password` key is masked before any line is shown.
    for span in &doc.secret_spans {
        file.mask(*span);
    }
    let source: Source = Arc::new(file);
    // Re-anchor the YAML errors to the masked source (their snippets were built unmasked).
    let mut out: Vec<Diagnostic> = yaml_errors.into_iter().map(|d| reanchor(&source, d)).collect();
    let literal_passwords = find_literal_passwords(&doc);
    for pointer in &literal_passwords {
        let span = span_of(&doc, pointer, false);
        out.push(
            Diagnostic::new(
                &source,
                span,
                pointer,
                "spec.literal-password",
                "LoginSettings.Password is a literal; a spec never holds a password, only a reference to one",
            )
            .with_help("write `Password: {fromEnv: MY_PASSWORD}` (an environment variable) or `Password: {fromFile: secrets/password}` (a file, relative to this spec)"),
        );
    }
    out.extend(schema::validate(&source, &doc, &literal_passwords));
    // A literal password or a reserved field leaves the rest of the fleet meaningful: drop the
    // value and keep checking, so that the semantic problems are reported in the same run.
    for d in out.iter().filter(|d| SELF_CONTAINED.contains(&d.code.as_str())) {
        remove_pointer(&mut doc.value, &d.pointer);
    }
    let mut fleets = Vec::new();
    let count = doc.value.get("fleets").and_then(Value::as_array).map_or(0, Vec::len);
    let blocking: Vec<String> = out
        .iter()
        .filter(|d| !SELF_CONTAINED.contains(&d.code.as_str()))
        .map(|d| d.pointer.clone())
        .collect();
    let file_level_problem = blocking.iter().any(|p| !p.starts_with("/fleets/"));
    if !file_level_problem {
        for index in 0..count {
            let prefix = format!("/fleets/{index}");
            let clean = !blocking.iter().any(|p| *p == prefix || p.starts_with(&format!("{prefix}/")));
            if clean {
                let mut local = Vec::new();
                if let Some(fleet) = resolve_fleet(&source, &doc, index, base_dir, &mut local) {
                    fleets.push(fleet);
                }
                out.extend(local);
            }
        }
    }
    (fleets, out)
}

/// Problems that do not make the rest of their fleet unreliable: the semantic checks still run.
const SELF_CONTAINED: &[&str] = &["spec.literal-password", "spec.reserved-field"];

/// Removes the node at a JSON pointer (if it is a mapping entry).
fn remove_pointer(value: &mut Value, pointer: &str) {
    let Some((parent, token)) = pointer.rsplit_once('/') else {
        return;
    };
    let key = token.replace("~1", "/").replace("~0", "~");
    if let Some(map) = value.pointer_mut(parent).and_then(Value::as_object_mut) {
        map.remove(&key);
    }
}

/// Rebuilds a diagnostic's snippets against `source` (same file, secrets masked).
fn reanchor(source: &Source, d: Diagnostic) -> Diagnostic {
    let span = Span {
        start: Position { line: d.line, column: d.column },
        end: Position { line: d.line, column: d.column + d.snippet.as_ref().map_or(1, |s| s.width) },
    };
    let mut out = Diagnostic::new(source, span, &d.pointer, &d.code, d.message);
    if d.snippet.is_none() {
        out.snippet = None;
    }
    out.help = d.help;
    for r in d.related {
        let rspan = Span {
            start: Position { line: r.line, column: r.column },
            end: Position { line: r.line, column: r.column + r.snippet.as_ref().map_or(1, |s| s.width) },
        };
        out = out.with_related(source, rspan, r.message);
    }
    out
}

/// Pointers of `LoginSettings.Password` values that are literals rather than references.
fn find_literal_passwords(doc: &Document) -> Vec<String> {
    let mut found = Vec::new();
    let Some(fleets) = doc.value.get("fleets").and_then(Value::as_array) else {
        return found;
    };
    let mut check = |pointer: String, template: Option<&Value>| {
        let password = template.and_then(|t| t.get("LoginSettings")).and_then(|l| l.get("Password"));
        if matches!(password, Some(Value::String(_) | Value::Number(_) | Value::Bool(_))) {
            found.push(push_token(&push_token(&pointer, "LoginSettings"), "Password"));
        }
    };
    for (f, fleet) in fleets.iter().enumerate() {
        check(format!("/fleets/{f}/defaults"), fleet.get("defaults"));
        for (g, group) in fleet.get("groups").and_then(Value::as_array).into_iter().flatten().enumerate() {
            check(format!("/fleets/{f}/groups/{g}/template"), group.get("template"));
        }
    }
    found
}

/// Checks that need every file: fleet names and private IPs are unique.
fn cross_file(fleets: &[LocatedFleet], out: &mut Vec<Diagnostic>) {
    let mut names: BTreeMap<&str, &LocatedFleet> = BTreeMap::new();
    for fleet in fleets {
        if let Some(first) = names.get(fleet.fleet.name.as_str()) {
            out.push(
                Diagnostic::new(
                    &fleet.source,
                    fleet.name_span,
                    &fleet.name_pointer,
                    "semantic.duplicate-fleet",
                    format!(
                        "fleet name `{}` is already used; fleet names are unique across all spec files",
                        fleet.fleet.name
                    ),
                )
                .with_related(&first.source, first.name_span, "first used here"),
            );
        } else {
            names.insert(&fleet.fleet.name, fleet);
        }
    }
    let mut ips: BTreeMap<Ipv4Addr, (&LocatedFleet, Span)> = BTreeMap::new();
    for fleet in fleets {
        for (ip, span, pointer) in &fleet.ips {
            if let Some((first, first_span)) = ips.get(ip) {
                out.push(
                    Diagnostic::new(
                        &fleet.source,
                        *span,
                        pointer,
                        "semantic.duplicate-private-ip",
                        format!("private IP `{ip}` is already used; an IP can belong to one instance only"),
                    )
                    .with_related(&first.source, *first_span, "first used here"),
                );
            } else {
                ips.insert(*ip, (fleet, *span));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_utf8_is_positioned() {
        let d = decode("x.yaml", b"a: 1\nb: \xff\n".to_vec()).expect_err("invalid");
        assert_eq!((d.code.as_str(), d.line, d.column), ("yaml.invalid-utf8", 2, 4));
    }
}
