//! What the cloud runs, reduced to the facts planning needs.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use cvmfleet_wire::model::Instance;
use cvmfleet_wire::vocab::InstanceState;

/// Tag keys cvmfleet sets at creation (in the same RunInstances call, so ownership is atomic
/// with the create) and reads back to recognise its instances. There is no state file: the
/// cloud is the state.
pub mod tags {
    /// The project (spec set) the fleet belongs to; see [`crate::desired::DEFAULT_PROJECT`].
    pub const PROJECT: &str = "cvmfleet:project";
    /// The fleet's name.
    pub const FLEET: &str = "cvmfleet:fleet";
    /// The group's name.
    pub const GROUP: &str = "cvmfleet:group";
    /// The group's replacement hash when the instance was made.
    pub const TEMPLATE: &str = "cvmfleet:template";
    /// The ClientToken of the RunInstances call that made the instance.
    pub const TOKEN: &str = "cvmfleet:token";
    /// The pool (`<zone>/<index>`) the instance was created for; see [`crate::token`].
    pub const POOL: &str = "cvmfleet:pool";
}

/// How an instance's state counts for planning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    /// Exists and counts toward the group's size (PENDING, RUNNING, STOPPED, …).
    Present,
    /// `LAUNCH_FAILED`: final, will never run, must be replaced.
    Failed,
    /// `SHUTDOWN` / `TERMINATING`: on its way out; counts for nothing.
    Leaving,
}

impl Presence {
    /// Classifies an API `InstanceState`.
    #[must_use]
    pub fn of_state(state: &InstanceState) -> Presence {
        if state.is_failed() {
            Presence::Failed
        } else if state.is_leaving() {
            Presence::Leaving
        } else {
            Presence::Present
        }
    }
}

/// One observed instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedInstance {
    /// Instance ID.
    pub id: String,
    /// Zone.
    pub zone: String,
    /// API state, e.g. `RUNNING`.
    pub state: InstanceState,
    /// Display name.
    pub name: String,
    /// Security groups, sorted.
    pub security_groups: Vec<String>,
    /// Primary private IPs.
    pub private_ips: Vec<std::net::Ipv4Addr>,
    /// Creation time as the API gives it (ISO 8601, sorts chronologically).
    pub created_time: String,
    /// Subnet of the primary network interface (empty outside a VPC).
    #[serde(default)]
    pub subnet_id: String,
    /// Instance type.
    pub instance_type: String,
    /// Image.
    pub image_id: String,
    /// Termination protection.
    pub protected: bool,
    /// `cvmfleet:fleet` tag.
    pub fleet: Option<String>,
    /// `cvmfleet:group` tag.
    pub group: Option<String>,
    /// `cvmfleet:template` tag.
    pub template: Option<String>,
    /// `cvmfleet:token` tag.
    pub token: Option<String>,
    /// `cvmfleet:pool` tag.
    #[serde(default)]
    pub pool: Option<String>,
    /// `cvmfleet:project` tag; `None` on instances created before projects (see
    /// [`ObservedInstance::belongs_to`]).
    #[serde(default)]
    pub project: Option<String>,
    /// Billing mode (`InstanceChargeType`, e.g. `POSTPAID_BY_HOUR`), for pricing it as what it
    /// is; empty when the API did not say.
    #[serde(default)]
    pub instance_charge_type: String,
}

impl ObservedInstance {
    /// Reduces an API instance to the facts planning uses.
    #[must_use]
    pub fn from_wire(instance: &Instance) -> Self {
        let mut security_groups = instance.security_group_ids.clone();
        security_groups.sort();
        security_groups.dedup();
        let tag = |key: &str| instance.tag(key).map(str::to_owned);
        ObservedInstance {
            id: instance.instance_id.clone(),
            zone: instance.placement.zone.clone(),
            state: instance.state(),
            name: instance.instance_name.clone(),
            security_groups,
            private_ips: instance.private_ip_addresses.iter().filter_map(|ip| ip.parse().ok()).collect(),
            created_time: instance.created_time.clone(),
            subnet_id: instance.virtual_private_cloud.subnet_id.clone(),
            instance_type: instance.instance_type.clone(),
            image_id: instance.image_id.clone(),
            protected: instance.disable_api_termination,
            fleet: tag(tags::FLEET),
            group: tag(tags::GROUP),
            template: tag(tags::TEMPLATE),
            token: tag(tags::TOKEN),
            pool: tag(tags::POOL),
            project: tag(tags::PROJECT),
            instance_charge_type: instance.instance_charge_type.clone(),
        }
    }

    /// Whether the instance is `project`'s: it carries the project's tag, or no project tag at
    /// all (made before projects existed, when a fleet name was the whole identity: the project
    /// whose specs name its fleet counts it, so that none is created twice).
    #[must_use]
    pub fn belongs_to(&self, project: &str) -> bool {
        self.project.as_deref().is_none_or(|p| p == project)
    }

    /// How the instance's state counts.
    #[must_use]
    pub fn presence(&self) -> Presence {
        Presence::of_state(&self.state)
    }
}

/// The observation key of a fleet's instances in a region its spec does not name (the fleet
/// has no spec, or its spec moved to another region): `name@region`. A fleet's instances in its
/// own region are keyed by its name alone. Fleet names hold no `@`.
#[must_use]
pub fn elsewhere_key(fleet: &str, region: &str) -> String {
    format!("{fleet}@{region}")
}

/// The fleet and region of an [`elsewhere_key`]; `None` for a plain fleet name.
#[must_use]
pub fn parse_elsewhere_key(key: &str) -> Option<(&str, &str)> {
    key.split_once('@')
}

/// What the cloud showed of one fleet: its instances, as listed by its `cvmfleet:fleet` tag in
/// its region, and what it told us about the fleet's ClientTokens.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedFleet {
    /// Every instance carrying the fleet's tag.
    pub instances: Vec<ObservedInstance>,
    /// ClientTokens the cloud has used although no instance carries them any more: replayed
    /// with instances that are all gone, or refused as reused with other parameters. A
    /// token is never un-spent, so this only grows while a process runs.
    #[serde(default)]
    pub spent_tokens: BTreeSet<String>,
    /// The instances the fleet's groups adopt (`adopt:`) that are not yet the fleet's, looked
    /// up by ID, as the cloud shows them (absent: they do not exist in the fleet's region).
    #[serde(default)]
    pub adoptable: Vec<ObservedInstance>,
}
