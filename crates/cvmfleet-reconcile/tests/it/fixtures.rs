//! The one fleet the reconciler tests plan: a fleet of one group `app` in one zone of
//! `ap-guangzhou`, S5.MEDIUM2 from img-pmqg1cw7. Tests adjust the fields they care about.

use cvmfleet_plan::{DesiredFleet, DesiredGroup};
use cvmfleet_wire::api::RunInstancesRequest;

/// Fleet `name` with one group `app` of `replicas` in `zone`, tagged with `replacement_hash`.
pub(crate) fn one_group_fleet(name: &str, zone: &str, replicas: u32, replacement_hash: &str) -> DesiredFleet {
    DesiredFleet {
        project: "default".into(),
        name: name.into(),
        region: "ap-guangzhou".into(),
        prune: false,
        allow_deletion: false,
        orphans: Default::default(),
        max_monthly_cost_increase: None,
        groups: vec![
            DesiredGroup::new(
                "app",
                RunInstancesRequest {
                    image_id: Some("img-pmqg1cw7".into()),
                    instance_type: Some("S5.MEDIUM2".into()),
                    ..Default::default()
                },
                replacement_hash,
            )
            .in_zone(zone, replicas),
        ],
    }
}
