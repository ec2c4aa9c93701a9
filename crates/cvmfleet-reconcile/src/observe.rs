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
    let mut observed = BTreeMap::new();
    for (name, result) in observe_each(client, fleets).await {
        observed.insert(name, result?);
    }
    Ok(observed)
}

/// Lists the instances of each fleet like [`observe`], with each fleet's own outcome, so that
/// one failing fleet does not hide the others (the watcher backs off per fleet).
pub async fn observe_each(
    client: &CvmClient,
    fleets: &[DesiredFleet],
) -> BTreeMap<String, Result<ObservedFleet, ExecError>> {
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
    while let Some(joined) = tasks.join_next().await {
        let Ok((name, result)) = joined else { continue };
        let result = match result {
            Ok(instances) => {
                let mut instances: Vec<ObservedInstance> =
                    instances.iter().map(ObservedInstance::from_wire).collect();
                instances.sort_by(|a, b| a.id.cmp(&b.id));
                Ok(ObservedFleet { instances })
            }
            Err(source) => Err(ExecError::Observe { fleet: name.clone(), source }),
        };
        observed.insert(name, result);
    }
    // A listing task that died must not read as an empty fleet (that would plan to create it all).
    for fleet in fleets {
        observed
            .entry(fleet.name.clone())
            .or_insert_with(|| Err(ExecError::ObserveAborted { fleet: fleet.name.clone() }));
    }
    observed
}
