//! What the specs ask for, in the shape the planner needs: per fleet and group, the launch
//! request (without zone, count, token or secrets) and the resolved spread over zones.

use serde::{Deserialize, Serialize};

use cvmfleet_wire::api::RunInstancesRequest;

/// Where a login password comes from. Plans carry the reference, never the value; the executor
/// resolves it at the moment it sends RunInstances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PasswordSource {
    /// An environment variable's name.
    FromEnv(String),
    /// A file whose content (trailing newline trimmed) is the password.
    FromFile(String),
}

impl std::fmt::Display for PasswordSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PasswordSource::FromEnv(var) => write!(f, "env:{var}"),
            PasswordSource::FromFile(path) => write!(f, "file:{path}"),
        }
    }
}

/// A fleet as the specs declare it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesiredFleet {
    /// Fleet name, unique across all specs; instances carry it in the `cvmfleet:fleet` tag.
    pub name: String,
    /// Region, e.g. `ap-guangzhou`.
    pub region: String,
    /// Whether instances of groups no longer in the spec may be terminated.
    pub prune: bool,
    /// Groups, in spec order.
    pub groups: Vec<DesiredGroup>,
}

/// A group of interchangeable instances.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesiredGroup {
    /// Group name, unique in its fleet.
    pub name: String,
    /// The launch request every instance is created from, without Placement.Zone,
    /// InstanceCount, ClientToken, password or ownership tags.
    pub template: RunInstancesRequest,
    /// Where the login password comes from, if any.
    pub password: Option<PasswordSource>,
    /// Canonical hash of the whole template (64 hex): any change reaching the API changes it.
    pub template_hash: String,
    /// Hash of the fields that cannot change in place (16 hex); instances whose
    /// `cvmfleet:template` tag differs are replaced.
    pub replacement_hash: String,
    /// The spread over zones.
    pub zones: Vec<DesiredZone>,
    /// Most of the group's present instances one plan may terminate without being told
    /// explicitly, in percent.
    pub max_terminate_percent: u8,
}

/// A group's share of one zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredZone {
    /// Zone, e.g. `ap-guangzhou-3`.
    pub zone: String,
    /// Instances wanted in this zone.
    pub replicas: u32,
    /// Subnet for this zone, overriding the template's.
    pub subnet_id: Option<String>,
    /// Explicit private IPs, one instance each (then `replicas` equals their count).
    pub private_ips: Vec<String>,
}

impl DesiredGroup {
    /// Instances the group wants in all zones.
    #[must_use]
    pub fn replicas(&self) -> u32 {
        self.zones.iter().map(|z| z.replicas).sum()
    }

    /// The template's display name (API default `未命名` when unset).
    #[must_use]
    pub fn instance_name(&self) -> Option<&str> {
        self.template.instance_name.as_deref()
    }

    /// The template's security groups, sorted, as the API treats them: a set.
    #[must_use]
    pub fn security_groups(&self) -> Option<Vec<String>> {
        self.template.security_group_ids.as_ref().map(|sgs| {
            let mut sorted = sgs.clone();
            sorted.sort();
            sorted.dedup();
            sorted
        })
    }
}
