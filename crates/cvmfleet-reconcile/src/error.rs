//! Execution errors: each says which step failed and carries the API error (action, code,
//! RequestId) underneath.

use cvmfleet_client::Error as ApiError;

/// A step of a plan that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExecError {
    /// Listing a fleet's instances failed.
    #[error("observing fleet {fleet} failed")]
    Observe {
        /// Fleet.
        fleet: String,
        /// The API error (shared by every fleet of the region whose listing failed).
        #[source]
        source: std::sync::Arc<ApiError>,
    },
    /// Finding the regions where the project has instances failed (DescribeRegions, or a
    /// region's probe).
    #[error(transparent)]
    Regions(ApiError),
    /// Listing a fleet's instances stopped before it finished (its task died).
    #[error("observing fleet {fleet} was aborted")]
    ObserveAborted {
        /// Fleet.
        fleet: String,
    },
    /// An API call of a step failed.
    #[error("{step} failed")]
    Api {
        /// What was being done, e.g. `create 3 in ap-guangzhou-3 (fleet web, group frontend)`.
        step: String,
        /// The API error.
        #[source]
        source: ApiError,
    },
    /// The login password could not be read.
    #[error("{step}: cannot read the password from {source_ref}: {reason}")]
    Secret {
        /// The step.
        step: String,
        /// Where the password should come from (a reference, never a value).
        source_ref: String,
        /// Why it could not be read.
        reason: String,
    },
    /// New instances ended in LAUNCH_FAILED.
    #[error("{step}: {} instance(s) failed to launch: {}", .ids.len(), .ids.join(", "))]
    LaunchFailed {
        /// The step.
        step: String,
        /// Their IDs.
        ids: Vec<String>,
    },
    /// Waiting gave up.
    #[error("{step}: still not done after {waited_secs} s")]
    Timeout {
        /// The step.
        step: String,
        /// Seconds waited.
        waited_secs: u64,
    },
    /// The instances could not be watched: status polls kept failing (the endpoint is gone).
    #[error("{step}: {polls} status polls failed in a row; the last: {last_error}")]
    Unobservable {
        /// The step.
        step: String,
        /// Failed polls in a row.
        polls: u32,
        /// The last poll's error, with its action, code and RequestId.
        last_error: String,
    },
    /// A plan step names an instance that the cloud does not show as the step's: it is not
    /// acted on (a plan edited by hand, or an instance whose tags changed).
    #[error("refused to act on {instance_id}: {reason}")]
    NotOwned {
        /// The instance.
        instance_id: String,
        /// Whose it is instead.
        reason: String,
    },
    /// A dry run created instances: the endpoint ignored `DryRun`.
    #[error("{step}: the endpoint ignored DryRun and created {ids}")]
    DryRunIgnored {
        /// The step.
        step: String,
        /// What it created.
        ids: String,
    },
    /// Instances being started or waited for disappeared (terminated out of band meanwhile).
    #[error("{step}: the instances disappeared before they ran")]
    Gone {
        /// The step.
        step: String,
    },
    /// The run was interrupted before the step started.
    #[error("{step}: not started (interrupted)")]
    Interrupted {
        /// The step.
        step: String,
    },
}
