//! The actions cvmfleet speaks, with the facts about each that both ends need: the service it
//! belongs to, its published rate limit, whether it needs a region, whether it only reads.

use std::fmt;
use std::str::FromStr;

use crate::service::Service;

/// An API action supported by cvmfleet's client and emulator, of the CVM or the Tag service
/// ([`Action::service`]).
///
/// The string form is the exact `X-TC-Action` / `Action` value; action names are unique across
/// the services cvmfleet speaks.
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
    /// List the regions (CVM; needs no region).
    DescribeRegions,
    /// Tag service: bind tags to resources (at most 10 resources and 10 tags a call).
    TagResources,
    /// Tag service: unbind tag keys from resources (at most 10 resources and 10 keys a call).
    UnTagResources,
    /// Tag service: set and remove tags of one resource in one call.
    ModifyResourceTags,
    /// Tag service: list resources whose tags match filters, in every region, paged.
    DescribeResourcesByTags,
    /// Tag service: the tags of given resources of one region, paged.
    DescribeResourceTagsByResourceIds,
    /// Tag service: resources with their tags, by names or tag filters, token-paged.
    GetResources,
    /// List each zone's instance types per charge type, with their stock and prices.
    DescribeZoneInstanceConfigInfos,
    /// Quote the price of a RunInstances request without creating anything.
    InquiryPriceRunInstances,
}

impl Action {
    /// Every supported action, in a stable order.
    pub const ALL: [Action; 19] = [
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
        Action::DescribeRegions,
        Action::TagResources,
        Action::UnTagResources,
        Action::ModifyResourceTags,
        Action::DescribeResourcesByTags,
        Action::DescribeResourceTagsByResourceIds,
        Action::GetResources,
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
            Action::DescribeRegions => "DescribeRegions",
            Action::TagResources => "TagResources",
            Action::UnTagResources => "UnTagResources",
            Action::ModifyResourceTags => "ModifyResourceTags",
            Action::DescribeResourcesByTags => "DescribeResourcesByTags",
            Action::DescribeResourceTagsByResourceIds => "DescribeResourceTagsByResourceIds",
            Action::GetResources => "GetResources",
            Action::DescribeZoneInstanceConfigInfos => "DescribeZoneInstanceConfigInfos",
            Action::InquiryPriceRunInstances => "InquiryPriceRunInstances",
        }
    }

    /// The service the action belongs to: it is signed with that service's name and version
    /// and sent to its host.
    #[must_use]
    pub const fn service(self) -> Service {
        match self {
            Action::TagResources
            | Action::UnTagResources
            | Action::ModifyResourceTags
            | Action::DescribeResourcesByTags
            | Action::DescribeResourceTagsByResourceIds
            | Action::GetResources => Service::Tag,
            _ => Service::Cvm,
        }
    }

    /// Whether the call names a region (`X-TC-Region`). The API pages of DescribeRegions and of
    /// every Tag action say of `Region`: "本接口不需要传递此参数" (this API does not need it);
    /// the Tag actions name regions inside their resource names instead.
    #[must_use]
    pub const fn needs_region(self) -> bool {
        !matches!(self, Action::DescribeRegions) && !matches!(self.service(), Service::Tag)
    }

    /// Tencent's published default request rate for the action, per second, per
    /// (action, access region, sub-account). Sources: the per-action API pages
    /// (RunInstances, TerminateInstances, ModifyInstancesAttribute 10/s; Describe* 40/s;
    /// DescribeZoneInstanceConfigInfos 40/s, https://cloud.tencent.com/document/product/213/17378;
    /// InquiryPriceRunInstances 10/s although it only reads,
    /// https://cloud.tencent.com/document/api/213/15726). Start/Stop are mutations and share the
    /// mutation rate. DescribeRegions 20/s (document 213/15708, "默认接口请求频率限制：20次/秒").
    /// Tag service pages (product 651): TagResources 20/s (72280), UnTagResources 20/s (46532),
    /// ModifyResourceTags 20/s (33012), GetResources 20/s (46539), DescribeResourcesByTags
    /// 100/s (33021), DescribeResourceTagsByResourceIds 100/s (33022).
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
            Action::DescribeRegions
            | Action::TagResources
            | Action::UnTagResources
            | Action::ModifyResourceTags
            | Action::GetResources => 20,
            Action::DescribeResourcesByTags | Action::DescribeResourceTagsByResourceIds => 100,
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
                | Action::DescribeRegions
                | Action::DescribeResourcesByTags
                | Action::DescribeResourceTagsByResourceIds
                | Action::GetResources
                | Action::DescribeZoneInstanceConfigInfos
                | Action::InquiryPriceRunInstances
        )
    }

    /// Whether sending the request twice leaves the cloud as sending it once: reads, and the
    /// Tag mutations, which set or remove named keys to given values (a repeated TagResources
    /// sets the same values again). Such a call may be retried after an ambiguous failure.
    #[must_use]
    pub const fn is_idempotent(self) -> bool {
        self.is_read_only()
            || matches!(self, Action::TagResources | Action::UnTagResources | Action::ModifyResourceTags)
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
    fn services_and_regions() {
        assert_eq!(Action::DescribeInstances.service(), Service::Cvm);
        assert_eq!(Action::DescribeRegions.service(), Service::Cvm);
        assert_eq!(Action::GetResources.service(), Service::Tag);
        assert!(Action::RunInstances.needs_region());
        assert!(!Action::DescribeRegions.needs_region());
        assert!(!Action::TagResources.needs_region());
        assert!(Action::TagResources.is_idempotent() && !Action::TagResources.is_read_only());
        assert!(!Action::TerminateInstances.is_idempotent());
        assert_eq!(Action::DescribeResourcesByTags.published_rate_limit(), 100);
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
