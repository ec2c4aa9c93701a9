//! `plan --preflight`: every planned RunInstances sent with `DryRun`, so quota, stock and
//! parameter errors show up in the plan, before anyone approves it.

use cvmfleet_client::CvmClient;
use cvmfleet_plan::Plan;

use crate::error::ExecError;
use crate::execute::{create_step, prepare};

/// The answer to one dry run.
#[derive(Debug)]
pub struct PreflightOutcome {
    /// The create it checked.
    pub step: String,
    /// `Ok` when the service said the request would succeed.
    pub result: Result<(), ExecError>,
}

/// The code with which the service answers a dry run that would succeed.
const DRY_RUN_OK: &str = cvmfleet_wire::codes::DRY_RUN_OPERATION;

/// Dry-runs every create of the plan, one call each.
pub async fn preflight(client: &CvmClient, plan: &Plan) -> Vec<PreflightOutcome> {
    let mut outcomes = Vec::new();
    for fleet in &plan.fleets {
        for group in &fleet.groups {
            for create in &group.creates {
                let step = create_step(fleet, group, create);
                let result = match prepare(create, &step) {
                    Err(error) => Err(error),
                    Ok(mut request) => {
                        request.dry_run = Some(true);
                        match client.call(&fleet.region, &request).await {
                            // A service that ignores DryRun would have created instances:
                            // report it loudly rather than pretend the check passed.
                            Ok(answer) => Err(ExecError::DryRunIgnored {
                                step: step.clone(),
                                ids: answer.data.instance_id_set.join(", "),
                            }),
                            Err(error) if error.code() == Some(DRY_RUN_OK) => Ok(()),
                            Err(source) => Err(ExecError::Api { step: step.clone(), source }),
                        }
                    }
                };
                outcomes.push(PreflightOutcome { step, result });
            }
        }
    }
    outcomes
}
