//! Drift: every difference between the specs and the cloud, classified by kind, with what the
//! plan does about it under the group's policy (`policies.drift` in the spec).
//!
//! The planner produces the drift list as part of every [`Plan`], so `plan`, `apply`, `drift`
//! and `watch` share one classification. A difference whose policy is `ignore` is not listed.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::plan::Plan;
use crate::render::MARKDOWN_LIMIT;

/// The kinds of drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftKind {
    /// Fewer instances than wanted in a zone.
    Missing,
    /// More instances than wanted, or instances in a zone the group no longer lists.
    Surplus,
    /// Made from an older template.
    Outdated,
    /// `STOPPED` or `STOPPING`.
    Stopped,
    /// Display name changed out of band.
    InstanceName,
    /// Security groups changed out of band.
    SecurityGroups,
    /// Instance type differs from the template's, the template unchanged.
    InstanceType,
    /// Image differs from the template's, the template unchanged.
    ImageId,
    /// Tagged with the fleet, but its group is in no spec.
    Orphan,
    /// `LAUNCH_FAILED`.
    LaunchFailed,
}

impl DriftKind {
    /// Every kind, in report order.
    pub const ALL: [DriftKind; 10] = [
        DriftKind::Missing,
        DriftKind::Surplus,
        DriftKind::Outdated,
        DriftKind::Stopped,
        DriftKind::InstanceName,
        DriftKind::SecurityGroups,
        DriftKind::InstanceType,
        DriftKind::ImageId,
        DriftKind::Orphan,
        DriftKind::LaunchFailed,
    ];

    /// The kind's name as in JSON output and metrics labels, e.g. `instance_name`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            DriftKind::Missing => "missing",
            DriftKind::Surplus => "surplus",
            DriftKind::Outdated => "outdated",
            DriftKind::Stopped => "stopped",
            DriftKind::InstanceName => "instance_name",
            DriftKind::SecurityGroups => "security_groups",
            DriftKind::InstanceType => "instance_type",
            DriftKind::ImageId => "image_id",
            DriftKind::Orphan => "orphan",
            DriftKind::LaunchFailed => "launch_failed",
        }
    }
}

impl std::fmt::Display for DriftKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the plan does about one drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Handling {
    /// This plan removes it.
    Corrected,
    /// The policy is to correct it, but not in this plan: a later step of a rolling
    /// replacement, an orphan while pruning is off, termination protection.
    Pending,
    /// The policy is `report`: shown, never acted on.
    Reported,
}

impl Handling {
    /// Short human text.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Handling::Corrected => "corrected by this plan",
            Handling::Pending => "pending",
            Handling::Reported => "reported only (policy)",
        }
    }
}

/// One difference between the specs and the cloud.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drift {
    /// Fleet.
    pub fleet: String,
    /// Group; `None` for orphans whose group is in no spec (the tag's value is in `observed`).
    pub group: Option<String>,
    /// Zone.
    pub zone: String,
    /// Kind.
    pub kind: DriftKind,
    /// The instance; `None` for missing instances.
    pub instance_id: Option<String>,
    /// Instances concerned: 1 for an instance, the shortfall for `missing`.
    pub count: u32,
    /// What the cloud has (a state, a name, a list of security groups, a template hash…).
    pub observed: String,
    /// What the specs want.
    pub desired: String,
    /// What the plan does about it.
    pub handling: Handling,
}

/// Sorts drift into the order reports show it: by fleet, group, zone, kind, instance.
pub fn sort(drift: &mut [Drift]) {
    drift.sort_by(|a, b| {
        (&a.fleet, &a.group, &a.zone, a.kind, &a.instance_id).cmp(&(
            &b.fleet,
            &b.group,
            &b.zone,
            b.kind,
            &b.instance_id,
        ))
    });
}

/// Drift counted by fleet and kind (instances), for summaries and metrics.
#[must_use]
pub fn counts(drift: &[Drift]) -> BTreeMap<(String, DriftKind), u64> {
    let mut counts = BTreeMap::new();
    for d in drift {
        *counts.entry((d.fleet.clone(), d.kind)).or_insert(0) += u64::from(d.count);
    }
    counts
}

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
