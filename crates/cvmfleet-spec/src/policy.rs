//! Drift and rollout policies: what the reconciler does about each kind of difference between
//! the specs and the cloud, and how fast a template change replaces instances.
//!
//! Written at fleet level (`policies.drift`, `policies.rollout`) and overridden per group
//! (`groups[].policies.drift`, `groups[].policies.rollout`), key by key:
//!
//! ```yaml
//! policies:
//!   drift: {stopped: report, instanceName: ignore}
//!   rollout: {maxSurge: 25%, maxUnavailable: 0}
//! groups:
//!   - name: batch
//!     policies:
//!       drift: {stopped: replace}
//! ```

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What the reconciler does about one kind of drift.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum DriftPolicy {
    /// Report it and plan the change that removes it (`plan`, `apply` and `watch --auto-apply`
    /// carry it out).
    #[default]
    Correct,
    /// Report it and never act on it, in any command.
    Report,
    /// Neither report nor act on it: cvmfleet does not look at it.
    Ignore,
}

/// What the reconciler does about a stopped instance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum StoppedPolicy {
    /// Start it again (StartInstances).
    #[default]
    Correct,
    /// Terminate it and create a new instance in its place (through the rolling replacement,
    /// so `rollout` bounds how many go at once).
    Replace,
    /// Report it and never act on it.
    Report,
    /// Neither report nor act on it.
    Ignore,
}

/// Drift policies of a fleet, per kind of drift; each kind not given is `correct`. A group's own
/// `policies.drift` overrides them key by key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FleetDriftSpec {
    /// Instances tagged with the fleet whose group no spec declares. `correct` terminates them
    /// only when pruning is allowed (`prune: true` or `--prune`); otherwise they are reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orphan: Option<DriftPolicy>,
    /// Fewer instances than wanted. See the group's `policies.drift`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<DriftPolicy>,
    /// More instances than wanted. See the group's `policies.drift`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub surplus: Option<DriftPolicy>,
    /// Instances of an older template. See the group's `policies.drift`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outdated: Option<DriftPolicy>,
    /// Stopped instances. See the group's `policies.drift`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<StoppedPolicy>,
    /// Names changed out of band. See the group's `policies.drift`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_name: Option<DriftPolicy>,
    /// Security groups changed out of band. See the group's `policies.drift`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_groups: Option<DriftPolicy>,
    /// Instance types changed out of band. See the group's `policies.drift`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<DriftPolicy>,
    /// Images changed out of band. See the group's `policies.drift`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<DriftPolicy>,
    /// Instances in `LAUNCH_FAILED`. See the group's `policies.drift`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_failed: Option<DriftPolicy>,
}

impl FleetDriftSpec {
    /// The settings that apply to every group of the fleet.
    #[must_use]
    pub fn for_groups(&self) -> GroupDriftSpec {
        GroupDriftSpec {
            missing: self.missing,
            surplus: self.surplus,
            outdated: self.outdated,
            stopped: self.stopped,
            instance_name: self.instance_name,
            security_groups: self.security_groups,
            instance_type: self.instance_type,
            image_id: self.image_id,
            launch_failed: self.launch_failed,
        }
    }
}

/// Drift policies of a group, per kind of drift. Each kind not given here falls back to the
/// fleet's `policies.drift`, then to `correct`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GroupDriftSpec {
    /// Fewer instances than wanted (one was terminated out of band, a host failed, a spot
    /// instance was reclaimed, or `replicas` went up). `correct` creates them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<DriftPolicy>,
    /// More instances than wanted, or instances in a zone the group no longer lists.
    /// `correct` terminates them (unhealthy first, then the newest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub surplus: Option<DriftPolicy>,
    /// Instances made from an older template (the `cvmfleet:template` tag differs).
    /// `correct` replaces them in rolling batches bounded by `rollout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outdated: Option<DriftPolicy>,
    /// Instances in `STOPPED` (or `STOPPING`). `correct` starts them; `replace` replaces them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<StoppedPolicy>,
    /// A display name changed out of band. `correct` renames the instance back in place
    /// (ModifyInstancesAttribute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_name: Option<DriftPolicy>,
    /// Security groups changed out of band. `correct` sets them back in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_groups: Option<DriftPolicy>,
    /// The instance type differs from the template's although the template did not change (a
    /// resize out of band). `correct` replaces the instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<DriftPolicy>,
    /// The image differs from the template's although the template did not change (a reinstall
    /// out of band). `correct` replaces the instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<DriftPolicy>,
    /// Instances in `LAUNCH_FAILED`. `correct` creates replacements (the cloud removes failed
    /// instances itself; they cannot be terminated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_failed: Option<DriftPolicy>,
}

/// A number of instances, or a percentage of the group's `replicas` written like `25%`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum CountSpec {
    /// A number of instances.
    Count(#[schemars(range(max = 1000))] u32),
    /// A percentage of the group's replicas, e.g. `25%`.
    Percent(#[schemars(regex(pattern = r"^(100|[1-9]?[0-9])%$"))] String),
}

/// Bounds of a rolling replacement (a template change, or instances replaced for drift).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RolloutSpec {
    /// How many instances a group may have above `replicas` while it is being replaced: new
    /// instances are created first and must run before old ones are terminated. A percentage
    /// is rounded up. Default: `25%` (at least one instance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_surge: Option<CountSpec>,
    /// How many instances a group may have below `replicas` while it is being replaced: that
    /// many old instances may be terminated before their replacements exist (useful when the
    /// quota leaves no room to surge). A percentage is rounded down. Default: 0. `maxSurge`
    /// and `maxUnavailable` must not both be 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<CountSpec>,
}

/// Policies a group overrides.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GroupPoliciesSpec {
    /// Drift policies of this group, over the fleet's `policies.drift`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<GroupDriftSpec>,
    /// Rolling replacement bounds of this group, over the fleet's `policies.rollout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutSpec>,
    /// The most one plan may add to this group's monthly cost, in the currency the cloud
    /// quotes (yuan): a plan that adds more is refused unless `--allow-cost-increase` is given.
    /// Overrides the fleet's `maxMonthlyCostIncrease` for this group: the group is checked on
    /// its own and leaves the fleet's sum. Default: none (no bound).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub max_monthly_cost_increase: Option<f64>,
}

/// A resolved instance count: absolute, or a percentage of the group's replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Amount {
    /// That many instances.
    Count(u32),
    /// That percentage (0–100) of the group's replicas.
    Percent(u8),
}

impl Amount {
    /// The amount for a group of `replicas`, rounding a percentage up or down.
    #[must_use]
    pub fn of(self, replicas: u32, round_up: bool) -> u32 {
        match self {
            Amount::Count(n) => n,
            Amount::Percent(p) => {
                let scaled = u64::from(replicas) * u64::from(p);
                let value = if round_up { scaled.div_ceil(100) } else { scaled / 100 };
                u32::try_from(value).unwrap_or(u32::MAX)
            }
        }
    }

    fn from_spec(spec: &CountSpec) -> Option<Amount> {
        match spec {
            CountSpec::Count(n) => Some(Amount::Count(*n)),
            CountSpec::Percent(text) => {
                text.strip_suffix('%')?.parse::<u8>().ok().filter(|p| *p <= 100).map(Amount::Percent)
            }
        }
    }

    /// Whether the amount is zero for every group size.
    #[must_use]
    pub fn is_zero(self) -> bool {
        matches!(self, Amount::Count(0) | Amount::Percent(0))
    }
}

impl std::fmt::Display for Amount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Amount::Count(n) => write!(f, "{n}"),
            Amount::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// Resolved rolling replacement bounds of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollout {
    /// Instances allowed above `replicas` during a replacement.
    pub max_surge: Amount,
    /// Instances allowed below `replicas` during a replacement.
    pub max_unavailable: Amount,
}

impl Rollout {
    /// `maxSurge` when unset: a quarter of the group (Kubernetes' default), rounded up, so a
    /// group of 100 is replaced in four steps and a small group one instance at a time.
    pub const DEFAULT_MAX_SURGE: Amount = Amount::Percent(25);
    /// `maxUnavailable` when unset: capacity never drops below `replicas`.
    pub const DEFAULT_MAX_UNAVAILABLE: Amount = Amount::Count(0);

    /// Instances one step may create above `replicas` for a group of `replicas`: at least one
    /// when nothing may be unavailable, so that a replacement always progresses.
    #[must_use]
    pub fn surge(&self, replicas: u32) -> u32 {
        let surge = self.max_surge.of(replicas, true);
        if surge == 0 && self.unavailable(replicas) == 0 { 1 } else { surge }
    }

    /// Instances one step may take below `replicas` for a group of `replicas`.
    #[must_use]
    pub fn unavailable(&self, replicas: u32) -> u32 {
        self.max_unavailable.of(replicas, false)
    }
}

impl Default for Rollout {
    fn default() -> Self {
        Rollout { max_surge: Rollout::DEFAULT_MAX_SURGE, max_unavailable: Rollout::DEFAULT_MAX_UNAVAILABLE }
    }
}

/// Resolved drift policies of a group: one per kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftPolicies {
    /// Missing instances.
    pub missing: DriftPolicy,
    /// Surplus instances.
    pub surplus: DriftPolicy,
    /// Instances of an older template.
    pub outdated: DriftPolicy,
    /// Stopped instances.
    pub stopped: StoppedPolicy,
    /// Names changed out of band.
    pub instance_name: DriftPolicy,
    /// Security groups changed out of band.
    pub security_groups: DriftPolicy,
    /// Instance types changed out of band.
    pub instance_type: DriftPolicy,
    /// Images changed out of band.
    pub image_id: DriftPolicy,
    /// Instances in `LAUNCH_FAILED`.
    pub launch_failed: DriftPolicy,
}

impl DriftPolicies {
    /// This policy set with the kinds `over` names replaced.
    #[must_use]
    pub fn over(self, over: Option<&GroupDriftSpec>) -> DriftPolicies {
        let Some(o) = over else { return self };
        DriftPolicies {
            missing: o.missing.unwrap_or(self.missing),
            surplus: o.surplus.unwrap_or(self.surplus),
            outdated: o.outdated.unwrap_or(self.outdated),
            stopped: o.stopped.unwrap_or(self.stopped),
            instance_name: o.instance_name.unwrap_or(self.instance_name),
            security_groups: o.security_groups.unwrap_or(self.security_groups),
            instance_type: o.instance_type.unwrap_or(self.instance_type),
            image_id: o.image_id.unwrap_or(self.image_id),
            launch_failed: o.launch_failed.unwrap_or(self.launch_failed),
        }
    }
}

/// Resolved policies of a group: the fleet's, overridden by the group's own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupPolicies {
    /// What to do about each kind of drift.
    pub drift: DriftPolicies,
    /// Rolling replacement bounds.
    pub rollout: Rollout,
    /// The group's own `maxMonthlyCostIncrease`, when it sets one (the fleet's bound is the
    /// fleet's, [`crate::FleetPolicies::max_monthly_cost_increase`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_monthly_cost_increase: Option<MonthlyAmount>,
}

/// An amount of money per month in the currency the cloud quotes (yuan on Tencent Cloud):
/// finite and not negative, so amounts compare as a total order.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct MonthlyAmount(f64);

// Never NaN (see `new`), so equality is total.
impl Eq for MonthlyAmount {}

impl MonthlyAmount {
    /// The amount, when `value` is finite and not negative.
    #[must_use]
    pub fn new(value: f64) -> Option<MonthlyAmount> {
        (value.is_finite() && value >= 0.0).then_some(MonthlyAmount(value))
    }

    /// The amount as a number.
    #[must_use]
    pub fn get(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for MonthlyAmount {
    type Error = String;

    fn try_from(value: f64) -> Result<Self, Self::Error> {
        MonthlyAmount::new(value).ok_or_else(|| format!("{value} is not an amount of 0 or more"))
    }
}

impl From<MonthlyAmount> for f64 {
    fn from(amount: MonthlyAmount) -> f64 {
        amount.0
    }
}

impl Rollout {
    /// These bounds with the ones `over` names replaced; `None` when a percentage is malformed
    /// (the schema rules that out).
    pub(crate) fn over(self, over: Option<&RolloutSpec>) -> Option<Rollout> {
        let Some(o) = over else { return Some(self) };
        Some(Rollout {
            max_surge: match &o.max_surge {
                Some(s) => Amount::from_spec(s)?,
                None => self.max_surge,
            },
            max_unavailable: match &o.max_unavailable {
                Some(s) => Amount::from_spec(s)?,
                None => self.max_unavailable,
            },
        })
    }

    /// Whether a replacement under these bounds can never progress.
    #[must_use]
    pub fn is_stuck(&self) -> bool {
        self.max_surge.is_zero() && self.max_unavailable.is_zero()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_round_up_for_surge_and_down_for_unavailable() {
        assert_eq!(Amount::Percent(25).of(10, true), 3);
        assert_eq!(Amount::Percent(25).of(10, false), 2);
        assert_eq!(Amount::Percent(25).of(0, true), 0);
        assert_eq!(Amount::Count(4).of(10, false), 4);
        let rollout = Rollout::default();
        assert_eq!((rollout.surge(3), rollout.unavailable(3)), (1, 0));
        assert_eq!((rollout.surge(100), rollout.unavailable(100)), (25, 0));
        assert_eq!(rollout.surge(0), 1, "a replacement always progresses");
    }

    #[test]
    fn group_settings_override_fleet_settings_key_by_key() {
        let fleet = DriftPolicies { stopped: StoppedPolicy::Report, ..DriftPolicies::default() }.over(Some(
            &GroupDriftSpec { instance_name: Some(DriftPolicy::Ignore), ..GroupDriftSpec::default() },
        ));
        assert_eq!(fleet.stopped, StoppedPolicy::Report);
        assert_eq!(fleet.instance_name, DriftPolicy::Ignore);
        let group = fleet.over(Some(&GroupDriftSpec {
            stopped: Some(StoppedPolicy::Replace),
            ..GroupDriftSpec::default()
        }));
        assert_eq!((group.stopped, group.instance_name), (StoppedPolicy::Replace, DriftPolicy::Ignore));
        let spec = RolloutSpec { max_surge: Some(CountSpec::Percent("50%".into())), max_unavailable: None };
        let rollout = Rollout::default().over(Some(&spec)).unwrap();
        assert_eq!(rollout.max_surge, Amount::Percent(50));
        assert!(
            Rollout::default()
                .over(Some(&RolloutSpec {
                    max_surge: Some(CountSpec::Percent("lots".into())),
                    max_unavailable: None
                }))
                .is_none()
        );
    }

    #[test]
    fn specs_resolve_fleet_policies_under_group_overrides() {
        let text = "fleets:
  - name: web
    region: ap-guangzhou
    policies:
      drift: {stopped: report, orphan: ignore, instanceName: ignore}
      rollout: {maxSurge: 50%, maxUnavailable: 1}
    groups:
      - name: a
        replicas: 2
        zones: [ap-guangzhou-3]
        template: {ImageId: img-pmqg1cw7}
      - name: b
        replicas: 2
        zones: [ap-guangzhou-3]
        policies:
          drift: {stopped: replace}
          rollout: {maxSurge: 0}
        template: {ImageId: img-pmqg1cw7}
";
        let specs = crate::load_str("web.yaml", text).unwrap_or_else(|d| panic!("{d}"));
        let fleet = &specs.fleets[0];
        assert_eq!(fleet.orphan, DriftPolicy::Ignore);
        let (a, b) = (&fleet.groups[0].policies, &fleet.groups[1].policies);
        assert_eq!((a.drift.stopped, a.drift.instance_name), (StoppedPolicy::Report, DriftPolicy::Ignore));
        assert_eq!(a.rollout, Rollout { max_surge: Amount::Percent(50), max_unavailable: Amount::Count(1) });
        assert_eq!((b.drift.stopped, b.drift.instance_name), (StoppedPolicy::Replace, DriftPolicy::Ignore));
        assert_eq!(b.rollout, Rollout { max_surge: Amount::Count(0), max_unavailable: Amount::Count(1) });
        assert_eq!(b.rollout.surge(2), 0, "no surge when one may be unavailable");
    }
}
