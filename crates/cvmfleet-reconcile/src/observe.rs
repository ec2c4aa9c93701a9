//! Observation: list every fleet's instances by its ownership tag, ⌈N/100⌉ DescribeInstances
//! calls per fleet, fleets observed concurrently within the client's rate limits.

use std::collections::BTreeMap;

use tokio::task::JoinSet;

use cvmfleet_client::CvmClient;
use cvmfleet_plan::observed::tags;
use cvmfleet_plan::{DesiredFleet, ObservedFleet, ObservedInstance};
use cvmfleet_wire::model::Filter;

use crate::error::ExecError;

/// Lists the instances of each fleet (by its `cvmfleet:fleet` tag, in its region).
///
/// # Errors
/// The first API failure, naming the fleet.
pub async fn observe(
    client: &CvmClient,
    fleets: &[DesiredFleet],
) -> Result<BTreeMap<String, ObservedFleet>, ExecError> {
    let mut tasks = JoinSet::new();
    for fleet in fleets {
        let client = client.clone();
        let name = fleet.name.clone();
        let region = fleet.region.clone();
        tasks.spawn(async move {
            let filter = Filter::new(format!("tag:{}", tags::FLEET), [name.clone()]);
            let result = client.describe_instances_all(&region, vec![filter]).await;
            (name, result)
        });
    }
    let mut observed = BTreeMap::new();
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        let Ok((name, result)) = joined else { continue };
        match result {
            Ok(instances) => {
                let mut instances: Vec<ObservedInstance> =
                    instances.iter().map(ObservedInstance::from_wire).collect();
                instances.sort_by(|a, b| a.id.cmp(&b.id));
                observed.insert(name, ObservedFleet { instances });
            }
            Err(source) => {
                first_error.get_or_insert(ExecError::Observe { fleet: name, source });
            }
        }
    }
    match first_error {
        Some(error) => Err(error),
        None => Ok(observed),
    }
}
