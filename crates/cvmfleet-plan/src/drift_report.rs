//! The drift report `cvmfleet drift` prints: one line per difference with what `apply` would
//! do about it, as text (logs, mail) or Markdown (a CI job summary).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::drift::{Drift, DriftKind, Handling};
use crate::plan::Plan;
use crate::render::MARKDOWN_LIMIT;

/// The one-line summary of a drift report.
#[must_use]
pub fn summary_line(plan: &Plan) -> String {
    if plan.drift.is_empty() {
        return format!("No drift. {} instance(s) match the spec.", plan.summary.unchanged);
    }
    let mut by_kind: BTreeMap<DriftKind, u64> = BTreeMap::new();
    for d in &plan.drift {
        *by_kind.entry(d.kind).or_insert(0) += u64::from(d.count);
    }
    let kinds: Vec<String> = by_kind.iter().map(|(k, n)| format!("{n} {k}")).collect();
    let reported = plan.drift.iter().filter(|d| d.handling == Handling::Reported).count();
    let pending = plan.drift.iter().filter(|d| d.handling == Handling::Pending).count();
    format!(
        "Drift: {} ({} item(s); {reported} reported only, {pending} pending, {} corrected by `apply`).",
        kinds.join(", "),
        plan.drift.len(),
        plan.drift.len() - reported - pending
    )
}

fn subject(d: &Drift) -> String {
    match &d.instance_id {
        Some(id) => id.clone(),
        None => format!("{} instance(s)", d.count),
    }
}

fn detail(d: &Drift) -> String {
    if d.observed.is_empty() && d.desired.is_empty() {
        String::new()
    } else {
        format!(": {} -> {}", d.observed, d.desired)
    }
}

/// Renders the drift report for a terminal (no colour: it is meant for logs and mail too).
#[must_use]
pub fn render_text(plan: &Plan, header: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{header}\n");
    let mut current: Option<(&str, Option<&str>)> = None;
    for d in &plan.drift {
        let scope = (d.fleet.as_str(), d.group.as_deref());
        if current != Some(scope) {
            match scope.1 {
                Some(group) => {
                    let _ = writeln!(out, "fleet {} group {group}", scope.0);
                }
                None => {
                    let _ = writeln!(out, "fleet {} (no group)", scope.0);
                }
            }
            current = Some(scope);
        }
        let _ = writeln!(
            out,
            "  {:<15} {} in {}{} [{}]",
            d.kind.as_str(),
            subject(d),
            d.zone,
            detail(d),
            d.handling.as_str()
        );
    }
    if !plan.drift.is_empty() {
        out.push('\n');
    }
    for refusal in &plan.refusals {
        let _ = writeln!(out, "refused: fleet {}: {}", refusal.fleet, refusal.message);
    }
    let _ = writeln!(out, "{}", summary_line(plan));
    out
}

/// Renders the drift report as Markdown (an issue or a pull-request comment), kept under
/// [`MARKDOWN_LIMIT`] characters.
#[must_use]
pub fn render_markdown(plan: &Plan, header: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### cvmfleet drift\n\n{header}\n\n**{}**\n", summary_line(plan));
    if plan.drift.is_empty() {
        return out;
    }
    out.push_str("| fleet | group | zone | kind | instance | observed | desired | handling |\n");
    out.push_str("|---|---|---|---|---|---|---|---|\n");
    let mut cut = 0usize;
    for d in &plan.drift {
        let row = format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            d.fleet,
            d.group.as_deref().unwrap_or("-"),
            d.zone,
            d.kind,
            subject(d),
            d.observed.replace('|', "\\|"),
            d.desired.replace('|', "\\|"),
            d.handling.as_str()
        );
        if out.len() + row.len() + 200 > MARKDOWN_LIMIT {
            cut += 1;
            continue;
        }
        out.push_str(&row);
    }
    if cut > 0 {
        let _ =
            writeln!(out, "\n_{cut} more row(s) were cut to fit a comment; run `cvmfleet drift` for all._");
    }
    out
}
