//! The CVM actions cvmfleet speaks, with the facts about each that both ends need.

use std::fmt;
use std::str::FromStr;

/// A CVM API action supported by cvmfleet's client and emulator.
///
/// The string form is the exact `X-TC-Action` / `Action` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Action {
    /// Create one or more instances.
    RunInstances,
    /// List instances by IDs or filters, paged.
    DescribeInstances,
    /// Report the state of instances, paged.
    DescribeInstancesStatus,
    /// Return (destroy) instances.
    TerminateInstances,
    /// Change one attribute of a set of instances.
    ModifyInstancesAttribute,
    /// Start stopped instances.
    StartInstances,
    /// Stop running instances.
    StopInstances,
    /// List the zones of a region.
    DescribeZones,
    /// List images.
    DescribeImages,
    /// List instance types and their sizes per zone.
    DescribeInstanceTypeConfigs,
    /// List each zone's instance types per charge type, with their stock and prices.
    DescribeZoneInstanceConfigInfos,
    /// Quote the price of a RunInstances request without creating anything.
    InquiryPriceRunInstances,
}

impl Action {
    /// Every supported action, in a stable order.
    pub const ALL: [Action; 12] = [
        Action::RunInstances,
        Action::DescribeInstances,
        Action::DescribeInstancesStatus,
        Action::TerminateInstances,
        Action::ModifyInstancesAttribute,
        Action::StartInstances,
        Action::StopInstances,
        Action::DescribeZones,
        Action::DescribeImages,
        Action::DescribeInstanceTypeConfigs,
        Action::DescribeZoneInstanceConfigInfos,
        Action::InquiryPriceRunInstances,
    ];

    /// The action's name on the wire.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::RunInstances => "RunInstances",
            Action::DescribeInstances => "DescribeInstances",
            Action::DescribeInstancesStatus => "DescribeInstancesStatus",
            Action::TerminateInstances => "TerminateInstances",
            Action::ModifyInstancesAttribute => "ModifyInstancesAttribute",
            Action::StartInstances => "StartInstances",
            Action::StopInstances => "StopInstances",
            Action::DescribeZones => "DescribeZones",
            Action::DescribeImages => "DescribeImages",
            Action::DescribeInstanceTypeConfigs => "DescribeInstanceTypeConfigs",
            Action::DescribeZoneInstanceConfigInfos => "DescribeZoneInstanceConfigInfos",
            Action::InquiryPriceRunInstances => "InquiryPriceRunInstances",
        }
    }

    /// Tencent's published default request rate for the action, per second, per
    /// (action, access region, sub-account). Sources: the per-action API pages
    /// (RunInstances, TerminateInstances, ModifyInstancesAttribute 10/s; Describe* 40/s;
    /// DescribeZoneInstanceConfigInfos 40/s, https://cloud.tencent.com/document/product/213/17378;
    /// InquiryPriceRunInstances 10/s although it only reads,
    /// https://cloud.tencent.com/document/api/213/15726). Start/Stop are mutations and share the
    /// mutation rate.
    #[must_use]
    pub const fn published_rate_limit(self) -> u32 {
        match self {
            Action::RunInstances
            | Action::TerminateInstances
            | Action::ModifyInstancesAttribute
            | Action::StartInstances
            | Action::StopInstances
            | Action::InquiryPriceRunInstances => 10,
            Action::DescribeInstances
            | Action::DescribeInstancesStatus
            | Action::DescribeZones
            | Action::DescribeImages
            | Action::DescribeInstanceTypeConfigs
            | Action::DescribeZoneInstanceConfigInfos => 40,
        }
    }

    /// Whether the action only reads: reads may be retried freely. A price quote changes nothing,
    /// so it counts as a read.
    #[must_use]
    pub const fn is_read_only(self) -> bool {
        matches!(
            self,
            Action::DescribeInstances
                | Action::DescribeInstancesStatus
                | Action::DescribeZones
                | Action::DescribeImages
                | Action::DescribeInstanceTypeConfigs
                | Action::DescribeZoneInstanceConfigInfos
                | Action::InquiryPriceRunInstances
        )
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The action name is not one cvmfleet supports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown action `{0}`")]
pub struct UnknownAction(pub String);

impl FromStr for Action {
    type Err = UnknownAction;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Action::ALL.into_iter().find(|a| a.as_str() == s).ok_or_else(|| UnknownAction(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for action in Action::ALL {
            assert_eq!(action.as_str().parse::<Action>(), Ok(action));
        }
        assert!("runinstances".parse::<Action>().is_err());
    }

    #[test]
    fn mutations_are_slower_than_reads() {
        assert_eq!(Action::RunInstances.published_rate_limit(), 10);
        assert_eq!(Action::DescribeInstances.published_rate_limit(), 40);
        assert!(!Action::TerminateInstances.is_read_only());
        assert_eq!(Action::DescribeZoneInstanceConfigInfos.published_rate_limit(), 40);
        assert_eq!(Action::InquiryPriceRunInstances.published_rate_limit(), 10);
        assert!(Action::InquiryPriceRunInstances.is_read_only());
    }
}
