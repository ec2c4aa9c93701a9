//! `cvmfleet validate`: load spec files and report every problem, positioned, or a summary.
//!
//! Exit codes: 0 when every spec is valid, 1 when any is not (or cannot be read).

use std::io::Write;
use std::path::PathBuf;

use crate::commands::exit::Exit;
use anstyle::{AnsiColor, Style};
use cvmfleet_spec::{Diagnostic, Diagnostics, Snippet, SpecSet};

/// Arguments of `cvmfleet validate`.
#[derive(Debug, clap::Args)]
pub(crate) struct ValidateArgs {
    /// Spec files, or directories read recursively for `*.yaml` and `*.yml`.
    #[arg(value_name = "PATH", default_value = "specs")]
    paths: Vec<PathBuf>,
    /// `human`: positioned messages with the source line; `json`: a list of
    /// `{file, line, column, pointer, code, message}`.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

/// Output format of `validate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// For people.
    Human,
    /// For programs.
    Json,
}

/// Validates the specs; exit 0 when valid, 1 when not.
pub(crate) fn run(args: &ValidateArgs) -> anyhow::Result<Exit> {
    let result = cvmfleet_spec::load_paths(&args.paths);
    match args.format {
        Format::Json => {
            let empty = Diagnostics::default();
            let diagnostics = result.as_ref().err().unwrap_or(&empty);
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", serde_json::to_string_pretty(diagnostics)?)?;
            out.flush()?;
        }
        Format::Human => match &result {
            Ok(specs) => {
                let mut out = anstream::stdout().lock();
                writeln!(out, "{}", summary(specs))?;
                out.flush()?;
            }
            Err(diagnostics) => print_diagnostics(diagnostics)?,
        },
    }
    Ok(if result.is_ok() { Exit::Success } else { Exit::Failure })
}

/// Most diagnostics printed for people: past a hundred, more are noise (one mistake repeated,
/// or a file that is not a spec), and printing tens of thousands floods a terminal or a CI log.
/// `--format json` lists them all.
pub(crate) const MAX_PRINTED: usize = 100;

/// Prints the diagnostics (at most [`MAX_PRINTED`], then how many were left out), then a count,
/// to stderr: what `validate` shows, and what `plan` and `apply` show before refusing invalid
/// specs.
pub(crate) fn print_diagnostics(diagnostics: &Diagnostics) -> std::io::Result<()> {
    let mut err = anstream::stderr().lock();
    for d in diagnostics.iter().take(MAX_PRINTED) {
        writeln!(err, "{}\n", render(d))?;
    }
    let n = diagnostics.len();
    if n > MAX_PRINTED {
        let rest = n - MAX_PRINTED;
        writeln!(
            err,
            "... and {rest} more problem{} not shown (`cvmfleet validate --format json` lists them all)\n",
            if rest == 1 { "" } else { "s" }
        )?;
    }
    let files = diagnostics.file_count();
    writeln!(
        err,
        "{ERROR}error{ERROR:#}: {n} problem{} in {files} file{}",
        if n == 1 { "" } else { "s" },
        if files == 1 { "" } else { "s" }
    )?;
    err.flush()
}

fn summary(specs: &SpecSet) -> String {
    let fleets = specs.fleets.len();
    let groups: usize = specs.fleets.iter().map(|f| f.groups.len()).sum();
    let instances: u64 = specs.fleets.iter().flat_map(|f| &f.groups).map(|g| u64::from(g.replicas)).sum();
    let plural = |n: u64, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    format!(
        "valid: {}, {}, {}",
        plural(fleets as u64, "fleet"),
        plural(groups as u64, "group"),
        plural(instances, "instance")
    )
}

const ERROR: Style = AnsiColor::Red.on_default().bold();
const LOCATION: Style = Style::new().bold();
const GUTTER: Style = AnsiColor::Blue.on_default().bold();
const NOTE: Style = AnsiColor::Cyan.on_default().bold();

/// The library's rendering (`file:line:col: code: message`, source line, caret, help, notes),
/// with colour. Stripped of its escape codes it is exactly `Diagnostic`'s `Display`.
fn render(d: &Diagnostic) -> String {
    let mut out = format!(
        "{LOCATION}{}:{}:{}:{LOCATION:#} {ERROR}{}{ERROR:#}: {}",
        d.file, d.line, d.column, d.code, d.message
    );
    let gutter = d.line.to_string().len();
    if let Some(snippet) = &d.snippet {
        out.push('\n');
        out.push_str(&render_snippet(d.line, snippet, ERROR));
    }
    if let Some(help) = &d.help {
        out.push_str(&format!("\n{} {GUTTER}={GUTTER:#} {NOTE}help{NOTE:#}: {help}", " ".repeat(gutter)));
    }
    for r in &d.related {
        out.push_str(&format!(
            "\n{LOCATION}{}:{}:{}:{LOCATION:#} {NOTE}note{NOTE:#}: {}",
            r.file, r.line, r.column, r.message
        ));
        if let Some(snippet) = &r.snippet {
            out.push('\n');
            out.push_str(&render_snippet(r.line, snippet, NOTE));
        }
    }
    out
}

fn render_snippet(line: usize, snippet: &Snippet, caret: Style) -> String {
    let pad = " ".repeat(line.to_string().len());
    let lead: String = if snippet.text.chars().count() < snippet.column - 1 {
        " ".repeat(snippet.column - 1)
    } else {
        snippet.text.chars().take(snippet.column - 1).map(|c| if c == '\t' { '\t' } else { ' ' }).collect()
    };
    format!(
        "{pad} {GUTTER}|{GUTTER:#}\n{GUTTER}{line} |{GUTTER:#} {}\n{pad} {GUTTER}|{GUTTER:#} {lead}{caret}{}{caret:#}",
        snippet.text,
        "^".repeat(snippet.width)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coloured_rendering_strips_to_the_library_display() {
        // Three diagnostics: one plain, one with help, one with a related position.
        let text = "fleets:\n  - name: web\n    region: ap-guangzhou\n    groups:\n      - {name: a, zones: [ap-guangzhou-3], template: {ImageId: img-pmqg1cw7, InstanceChargeType: PREPAID}}\n      - {name: a, replicas: 1, zones: [ap-guangzhou-3], template: {ImageId: img-pmqg1cw7}}\n";
        let diagnostics = cvmfleet_spec::load_str("t.yaml", text).err().unwrap_or_default();
        assert_eq!(diagnostics.len(), 3, "{diagnostics}");
        for d in &diagnostics {
            let coloured = render(d);
            assert_ne!(coloured, d.to_string());
            assert_eq!(anstream::adapter::strip_str(&coloured).to_string(), d.to_string());
        }
    }
}
