//! Drift: every difference between the specs and the cloud, classified by kind, with what the
//! plan does about it under the group's policy (`policies.drift` in the spec).
//!
//! The planner produces the drift list as part of every [`Plan`], so `plan`, `apply`, `drift`
//! and `watch` share one classification. A difference whose policy is `ignore` is not listed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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
