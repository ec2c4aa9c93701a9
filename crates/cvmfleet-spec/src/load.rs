//! Loading: files and directories to text, text to validated fleets, and the checks that span
//! files (fleet names, private IPs).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::files::{self, ReadError};
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
/// Only regular files are spec files, and at most [`MAX_FILE_BYTES`] of each is read: a path
/// named here that is anything else (a FIFO, a device, a socket) is an error naming it, and so
/// is such an entry with a spec name inside a directory (never dropped in silence). Inside a
/// directory, symbolic links to files are followed only when their target stays inside that
/// directory (the spec tree), so that a link added to a repository cannot make `validate` or
/// `plan` print lines of a file outside it (`~/.tccli/default.credential`); a link that leaves
/// the tree, or leads nowhere, is an error naming the link. Symbolic links to directories are
/// not followed (no loops). Paths named here are followed as given. A file named twice (`a.yaml
/// a.yaml`, or `d d/a.yaml`) is read once.
///
/// # Errors
/// All diagnostics, when any file is unreadable or invalid.
pub fn load_paths(paths: &[PathBuf]) -> Result<SpecSet, Diagnostics> {
    let (files, problems) = spec_files(paths);
    let inputs = files.iter().map(|f| read_input(f)).collect();
    load_inputs(inputs, problems.into_vec())
}

/// The spec files `paths` name, by the rules of [`load_paths`] (regular files only, links kept
/// in the tree, each file once), in order, and the problems found on the way. For callers that
/// read the files themselves (`watch` re-reads them every cycle) with [`read_spec_file`].
#[must_use]
pub fn spec_files(paths: &[PathBuf]) -> (Vec<PathBuf>, Diagnostics) {
    let mut found = Vec::new();
    let mut problems = Vec::new();
    // Canonical paths already listed: the same file named twice is one file.
    let mut seen: HashSet<PathBuf> = HashSet::new();
    for path in paths {
        let name = path.display().to_string();
        match std::fs::metadata(path) {
            Err(err) => {
                problems.push(Diagnostic::file_level(&name, "io.read", format!("cannot read {name}: {err}")))
            }
            Ok(meta) if meta.is_dir() => {
                let Ok(root) = std::fs::canonicalize(path) else {
                    problems.push(Diagnostic::file_level(&name, "io.read", format!("cannot read {name}")));
                    continue;
                };
                let mut files = Vec::new();
                let before = problems.len();
                collect_dir(path, &Tree { root: &root, name: &name }, 0, &mut files, &mut problems);
                files.sort();
                if files.is_empty() && problems.len() == before {
                    problems.push(Diagnostic::file_level(
                        &name,
                        "io.no-spec-files",
                        format!("directory {name} holds no `*.yaml` or `*.yml` files"),
                    ));
                }
                for (file, canonical) in files {
                    if seen.insert(canonical) {
                        found.push(file);
                    }
                }
            }
            Ok(meta) if meta.is_file() => {
                if seen.insert(std::fs::canonicalize(path).unwrap_or_else(|_| path.clone())) {
                    found.push(path.clone());
                }
            }
            Ok(meta) => problems.push(not_a_file(&name, files::kind_of(meta.file_type()))),
        }
    }
    if paths.is_empty() {
        problems.push(Diagnostic::file_level("", "io.no-spec-files", "no spec files were given"));
    }
    (found, Diagnostics::from_vec(problems))
}

/// Reads one spec file's bytes: a regular file of at most [`MAX_FILE_BYTES`].
///
/// # Errors
/// The diagnostic (`io.not-a-file`, `yaml.file-too-large`, `io.read`) when it is not.
pub fn read_spec_file(path: &Path) -> Result<Vec<u8>, Box<Diagnostic>> {
    let name = path.display().to_string();
    files::read_bounded(path, MAX_FILE_BYTES).map_err(|error| {
        Box::new(match error {
            ReadError::TooLarge(size) => too_large(&name, size),
            ReadError::NotAFile(kind) => not_a_file(&name, kind),
            ReadError::Io(err) => {
                Diagnostic::file_level(&name, "io.read", format!("cannot read {name}: {err}"))
            }
        })
    })
}

fn not_a_file(name: &str, kind: &str) -> Diagnostic {
    Diagnostic::file_level(
        name,
        "io.not-a-file",
        format!("{name} is {kind}, not a regular file; only regular files are spec files"),
    )
}

/// Directory depth followed when collecting files; deeper trees are a mistake (or a loop).
const MAX_DIR_DEPTH: usize = 32;

/// A directory named to the loader: symbolic links must stay inside it.
struct Tree<'a> {
    /// Its canonical path.
    root: &'a Path,
    /// As named, for messages.
    name: &'a str,
}

/// Collects `(path, canonical path)` of the spec files under `dir`.
fn collect_dir(
    dir: &Path,
    tree: &Tree<'_>,
    depth: usize,
    files: &mut Vec<(PathBuf, PathBuf)>,
    problems: &mut Vec<Diagnostic>,
) {
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
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => {
                problems.push(Diagnostic::file_level(
                    &name,
                    "io.read",
                    format!("cannot read directory {name}: {err}"),
                ));
                continue;
            }
        };
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let shown = path.display().to_string();
        let file_type = match entry.file_type() {
            Ok(file_type) => file_type,
            Err(err) => {
                problems.push(Diagnostic::file_level(
                    &shown,
                    "io.read",
                    format!("cannot read {shown}: {err}"),
                ));
                continue;
            }
        };
        if file_type.is_dir() {
            collect_dir(&path, tree, depth + 1, files, problems);
            continue;
        }
        if !matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
            continue;
        }
        if file_type.is_file() {
            let canonical = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
            files.push((path, canonical));
        } else if file_type.is_symlink() {
            match std::fs::canonicalize(&path) {
                Err(_) => problems.push(Diagnostic::file_level(
                    &shown,
                    "io.dangling-symlink",
                    format!("{shown} is a symbolic link to nothing (its target does not exist)"),
                )),
                Ok(target) if !target.starts_with(tree.root) => problems.push(Diagnostic::file_level(
                    &shown,
                    "io.symlink-outside",
                    format!(
                        "{shown} is a symbolic link to a file outside {}; links that leave the spec tree are not followed",
                        tree.name
                    ),
                )),
                Ok(target) => match std::fs::metadata(&target) {
                    Ok(meta) if meta.is_file() => files.push((path, target)),
                    Ok(meta) => problems.push(not_a_file(&shown, files::kind_of(meta.file_type()))),
                    Err(err) => problems.push(Diagnostic::file_level(
                        &shown,
                        "io.read",
                        format!("cannot read {shown}: {err}"),
                    )),
                },
            }
        } else {
            problems.push(not_a_file(&shown, files::kind_of(file_type)));
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
    decode(name, read_spec_file(path)?)
}

fn too_large(name: &str, size: u64) -> Diagnostic {
    Diagnostic::file_level(
        name,
        "yaml.file-too-large",
        format!("the file is {size} bytes; spec files may be at most {MAX_FILE_BYTES} bytes"),
    )
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
                Err(Box::new(too_large(name, text.len() as u64)))
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
        return Err(Diagnostics::from_vec(vec![too_large(name, bytes.len() as u64)]));
    }
    let text = decode(name, bytes.to_vec());
    load_inputs(vec![Input { name: name.to_owned(), text, base_dir: None }], Vec::new())
}

fn load_inputs(inputs: Vec<Input>, mut problems: Vec<Diagnostic>) -> Result<SpecSet, Diagnostics> {
    // Files are independent until the cross-file checks: check them on all cores.
    let threads = std::thread::available_parallelism().map_or(1, usize::from).min(inputs.len()).max(1);
    let chunk = inputs.len().div_ceil(threads).max(1);
    let results: Vec<Checked> = std::thread::scope(|scope| {
        let handles: Vec<_> = inputs
            .chunks(chunk)
            .map(|chunk| scope.spawn(move || chunk.iter().map(check_input).collect::<Vec<_>>()))
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
    });
    let mut fleets = Vec::new();
    let mut projects = Vec::new();
    for checked in results {
        fleets.extend(checked.fleets);
        projects.extend(checked.project);
        problems.extend(checked.problems);
    }
    cross_file(&fleets, &mut problems);
    let project = one_project(&projects, &mut problems);
    if problems.is_empty() {
        let mut fleets: Vec<_> = fleets.into_iter().map(|l| l.fleet).collect();
        fleets.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(SpecSet { project, fleets })
    } else {
        Err(Diagnostics::from_vec(problems))
    }
}

/// What one file holds, checked.
struct Checked {
    fleets: Vec<LocatedFleet>,
    /// Its `project:`, with where it is written.
    project: Option<(String, Source, Span)>,
    problems: Vec<Diagnostic>,
}

fn check_input(input: &Input) -> Checked {
    match &input.text {
        Err(d) => Checked { fleets: Vec::new(), project: None, problems: vec![(**d).clone()] },
        Ok(text) => check_text(&input.name, text, input.base_dir.as_deref()),
    }
}

/// The one project the files declare; a file naming another is an error at its `project:`.
fn one_project(projects: &[(String, Source, Span)], out: &mut Vec<Diagnostic>) -> Option<String> {
    let (first, first_source, first_span) = projects.first()?;
    for (name, source, span) in &projects[1..] {
        if name != first {
            out.push(
                Diagnostic::new(
                    source,
                    *span,
                    "/project",
                    "semantic.conflicting-project",
                    format!("project `{name}` differs from project `{first}`; the files of one spec set declare one project"),
                )
                .with_related(first_source, *first_span, "declared here")
                .with_help("declare the project in one file, or the same name in every file (or pass --project)"),
            );
        }
    }
    Some(first.clone())
}

/// Everything about one file: YAML, schema, typed model, semantic rules.
fn check_text(name: &str, text: &str, base_dir: Option<&Path>) -> Checked {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // Lines holding a literal password are masked before any diagnostic can be built: the
    // parser's errors come first, and a line that fails to parse yields no scalar to mask.
    let plain = SourceFile::new(name, text);
    let mut lexical = plain.clone();
    lexical.mask_password_lines(&BTreeSet::new());
    let parsed = yaml::parse(&Arc::new(lexical.clone()), text);
    // Then every scalar the parser read under a `Password` key (multi-line ones included). When
    // the whole file parsed, those are exact, and the lexical masks stay only on lines where the
    // parser found no such scalar (`Password: {pw}`).
    let mut file = if parsed.doc.is_some() {
        // An empty value (`Password: #pw`) is no exact mask of what follows it on the line.
        let exact: BTreeSet<usize> =
            parsed.secret_spans.iter().filter(|s| s.end != s.start).map(|s| s.start.line).collect();
        let mut file = plain;
        file.mask_password_lines(&exact);
        file
    } else {
        lexical
    };
    for span in &parsed.secret_spans {
        file.mask(*span);
    }
    let source: Source = Arc::new(file);
    // Re-anchor the YAML errors to the fully masked source.
    let mut out: Vec<Diagnostic> = parsed.errors.into_iter().map(|d| reanchor(&source, d)).collect();
    let Some(mut doc) = parsed.doc else {
        return Checked { fleets: Vec::new(), project: None, problems: out };
    };
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
    // The fleets a blocking problem sits in, in one pass (a file can hold 40,000 problems and as
    // many fleets: no fleet may scan them all).
    let mut blocked: BTreeSet<usize> = BTreeSet::new();
    let mut file_level_problem = false;
    for d in out.iter().filter(|d| !SELF_CONTAINED.contains(&d.code.as_str())) {
        match d.pointer.strip_prefix("/fleets/") {
            None => file_level_problem = true,
            Some(rest) => {
                if let Ok(index) = rest.split('/').next().unwrap_or_default().parse::<usize>() {
                    blocked.insert(index);
                }
            }
        }
    }
    if !file_level_problem {
        for index in 0..count {
            if !blocked.contains(&index) {
                let mut local = Vec::new();
                if let Some(fleet) = resolve_fleet(&source, &doc, index, base_dir, &mut local) {
                    fleets.push(fleet);
                }
                out.extend(local);
            }
        }
    }
    let project = match doc.value.get("project").and_then(Value::as_str) {
        Some(project) if !file_level_problem => {
            Some((project.to_owned(), source.clone(), span_of(&doc, "/project", false)))
        }
        _ => None,
    };
    Checked { fleets, project, problems: out }
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
    let mut adopted: BTreeMap<&str, (&LocatedFleet, Span)> = BTreeMap::new();
    for fleet in fleets {
        for (id, span, pointer) in &fleet.adopts {
            if let Some((first, first_span)) = adopted.get(id.as_str()) {
                out.push(
                    Diagnostic::new(
                        &fleet.source,
                        *span,
                        pointer,
                        "semantic.duplicate-adopt",
                        format!(
                            "instance `{id}` is already adopted; an instance can belong to one group only"
                        ),
                    )
                    .with_related(&first.source, *first_span, "first adopted here"),
                );
            } else {
                adopted.insert(id, (fleet, *span));
            }
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
