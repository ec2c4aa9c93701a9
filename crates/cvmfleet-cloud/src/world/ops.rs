//! Operations on existing instances: TerminateInstances, StartInstances, StopInstances and
//! ModifyInstancesAttribute. Each checks every instance first and changes nothing unless all
//! pass.

use std::collections::BTreeSet;

use cvmfleet_wire::MAX_BATCH;
use cvmfleet_wire::api::{
    ModifyInstancesAttributeRequest, StartInstancesRequest, StopInstancesRequest, TerminateInstancesRequest,
};

use super::checks::check_user_data;
use cvmfleet_wire::codes;
use cvmfleet_wire::vocab::{INSTANCE_NAME_MAX_BYTES, InstanceChargeType, InstanceState};

use super::{Ctx, Mutation, Record, Step, Transition, World, set_operation};
use crate::api_error::ApiError;
use crate::names;

/// The error for an instance whose state forbids the operation.
pub(super) fn state_error(record: &Record) -> ApiError {
    let st = record.instance.state();
    ApiError::new(
        st.unsupported_code(),
        format!(
            "The instance `{}` is {st}, which does not allow this operation.",
            record.instance.instance_id
        ),
    )
}

impl World {
    /// Checks a list of instance IDs of the caller's region and returns their records' keys,
    /// in the order given, without repeats.
    pub(super) fn resolve_ids(&self, region: &str, ids: &[String]) -> Result<Vec<u64>, ApiError> {
        if ids.is_empty() {
            return Err(ApiError::missing("InstanceIds"));
        }
        if ids.len() > MAX_BATCH {
            return Err(ApiError::new(
                codes::INVALID_PARAMETER_VALUE_LIMIT_EXCEEDED,
                format!(
                    "{} instance IDs were given; at most {MAX_BATCH} are allowed per request.",
                    ids.len()
                ),
            ));
        }
        let mut seen = BTreeSet::new();
        let mut missing = Vec::new();
        let mut seqs = Vec::new();
        for id in ids {
            if !names::is_resource_id(id, "ins") {
                return Err(ApiError::new(
                    codes::INVALID_INSTANCE_ID_MALFORMED,
                    format!("The instance ID `{id}` is malformed; instance IDs look like ins-xxxxxxxx."),
                ));
            }
            match self.record_by_id(id).filter(|r| r.region == region) {
                Some(r) => {
                    if seen.insert(r.seq) {
                        seqs.push(r.seq);
                    }
                }
                None => missing.push(id.as_str()),
            }
        }
        if !missing.is_empty() {
            return Err(ApiError::new(
                codes::INVALID_INSTANCE_ID_NOT_FOUND,
                format!("The instances {} do not exist in region `{region}`.", missing.join(", ")),
            ));
        }
        Ok(seqs)
    }

    fn records_of(&self, seqs: &[u64]) -> Vec<Record> {
        seqs.iter().filter_map(|s| self.records.get(s).cloned()).collect()
    }

    pub(super) fn commit(&mut self, records: Vec<Record>) -> Mutation {
        let mutation = Mutation { put: records, ..Mutation::default() };
        self.apply(mutation.clone());
        mutation
    }

    /// TerminateInstances: postpaid instances (and prepaid ones already in the recycle bin) go
    /// `TERMINATING` and disappear after the terminate delay; running or stopped prepaid
    /// instances go to the recycle bin (`SHUTDOWN`).
    pub fn terminate(&mut self, ctx: &Ctx, req: &TerminateInstancesRequest) -> Result<Mutation, ApiError> {
        let seqs = self.resolve_ids(&ctx.region, &req.instance_ids)?;
        let mut records = self.records_of(&seqs);
        let mut charge_types = BTreeSet::new();
        for r in &records {
            match r.instance.state() {
                InstanceState::Running | InstanceState::Stopped | InstanceState::Shutdown => {}
                _ => return Err(state_error(r)),
            }
            if r.instance.disable_api_termination {
                return Err(ApiError::new(
                    codes::UNSUPPORTED_OPERATION_INSTANCES_PROTECTED,
                    format!(
                        "The instance `{}` has termination protection; turn DisableApiTermination off first.",
                        r.instance.instance_id
                    ),
                ));
            }
            charge_types.insert(r.instance.instance_charge_type == InstanceChargeType::Prepaid.as_str());
        }
        if charge_types.len() > 1 {
            return Err(ApiError::new(
                codes::UNSUPPORTED_OPERATION_INSTANCE_MIXED_PRICING_MODEL,
                "Prepaid and postpaid instances cannot be terminated in one request.",
            ));
        }
        for r in &mut records {
            let to_recycle_bin = r.instance.instance_charge_type == InstanceChargeType::Prepaid.as_str()
                && r.instance.state() != InstanceState::Shutdown;
            set_operation(&mut r.instance, "TerminateInstances", "OPERATING", Some(&ctx.request_id));
            r.terminate_at = None;
            if to_recycle_bin {
                r.instance.instance_state = InstanceState::Shutdown.into();
                r.instance.latest_operation_state = Some("SUCCESS".into());
                r.instance.restrict_state = "PROTECTIVELY_ISOLATED".into();
                r.instance.isolated_source = "MANMADE".into();
                r.next = None;
            } else {
                r.instance.instance_state = InstanceState::Terminating.into();
                r.next =
                    Some(Transition { at: ctx.now_ms + self.settings.terminate_delay_ms, to: Step::Gone });
            }
        }
        Ok(self.commit(records))
    }

    /// StopInstances: `RUNNING` → `STOPPING` → `STOPPED` after the stop delay.
    pub fn stop(&mut self, ctx: &Ctx, req: &StopInstancesRequest) -> Result<Mutation, ApiError> {
        if let Some(mode) = &req.stopped_mode
            && mode != "KEEP_CHARGING"
            && mode != "STOP_CHARGING"
        {
            return Err(ApiError::invalid_value(format!(
                "`StoppedMode` `{mode}` is not KEEP_CHARGING or STOP_CHARGING."
            )));
        }
        if let Some(kind) = &req.stop_type
            && !matches!(kind.as_str(), "SOFT" | "HARD" | "SOFT_FIRST")
        {
            return Err(ApiError::invalid_value(format!(
                "`StopType` `{kind}` is not SOFT, HARD or SOFT_FIRST."
            )));
        }
        let seqs = self.resolve_ids(&ctx.region, &req.instance_ids)?;
        let mut records = self.records_of(&seqs);
        if let Some(r) = records.iter().find(|r| !r.instance.state().is_running()) {
            return Err(state_error(r));
        }
        for r in &mut records {
            set_operation(&mut r.instance, "StopInstances", "OPERATING", Some(&ctx.request_id));
            r.instance.instance_state = InstanceState::Stopping.into();
            let stop_charging = req.stopped_mode.as_deref() == Some("STOP_CHARGING")
                && r.instance.instance_charge_type == InstanceChargeType::PostpaidByHour.as_str();
            r.instance.stop_charging_mode =
                if stop_charging { "STOP_CHARGING" } else { "KEEP_CHARGING" }.into();
            r.next = Some(Transition { at: ctx.now_ms + self.settings.stop_delay_ms, to: Step::Stopped });
        }
        Ok(self.commit(records))
    }

    /// StartInstances: `STOPPED` → `STARTING` → `RUNNING` after the boot delay.
    pub fn start(&mut self, ctx: &Ctx, req: &StartInstancesRequest) -> Result<Mutation, ApiError> {
        let seqs = self.resolve_ids(&ctx.region, &req.instance_ids)?;
        let mut records = self.records_of(&seqs);
        if let Some(r) = records.iter().find(|r| r.instance.state() != InstanceState::Stopped) {
            return Err(state_error(r));
        }
        for r in &mut records {
            set_operation(&mut r.instance, "StartInstances", "OPERATING", Some(&ctx.request_id));
            r.instance.instance_state = InstanceState::Starting.into();
            r.instance.stop_charging_mode = "NOT_APPLICABLE".into();
            r.next = Some(Transition { at: ctx.now_ms + self.settings.boot_delay_ms, to: Step::Running });
        }
        Ok(self.commit(records))
    }

    /// ModifyInstancesAttribute: exactly one attribute per request.
    pub fn modify(&mut self, ctx: &Ctx, req: &ModifyInstancesAttributeRequest) -> Result<Mutation, ApiError> {
        let set = req.attributes_set();
        match set.len() {
            0 => {
                return Err(ApiError::new(
                    codes::MISSING_PARAMETER,
                    "The request must set one attribute: InstanceName, UserData, SecurityGroups, HostName or \
                     DisableApiTermination.",
                ));
            }
            1 => {}
            _ => {
                return Err(ApiError::combination(format!(
                    "Only one attribute can be changed per request; this one sets {}.",
                    set.join(", ")
                )));
            }
        }
        let seqs = self.resolve_ids(&ctx.region, &req.instance_ids)?;
        let mut records = self.records_of(&seqs);
        if let Some(r) = records.iter().find(|r| {
            matches!(
                r.instance.state(),
                InstanceState::Pending
                    | InstanceState::LaunchFailed
                    | InstanceState::Shutdown
                    | InstanceState::Terminating
            )
        }) {
            return Err(state_error(r));
        }
        if let Some(name) = &req.instance_name {
            if name.is_empty() {
                return Err(ApiError::invalid_value("`InstanceName` must not be empty."));
            }
            if name.len() > INSTANCE_NAME_MAX_BYTES {
                return Err(ApiError::new(
                    codes::INVALID_INSTANCE_NAME_TOO_LONG,
                    format!("The InstanceName `{name}` is longer than {INSTANCE_NAME_MAX_BYTES} bytes."),
                ));
            }
        }
        if let Some(groups) = &req.security_groups {
            self.check_security_groups(&ctx.region, groups, "SecurityGroups")?;
        }
        if let Some(data) = &req.user_data {
            check_user_data(data)?;
        }
        if let Some(host_name) = &req.host_name {
            for r in &records {
                let windows = self.catalog.image(&r.instance.image_id).is_some_and(|i| i.windows);
                names::check_host_name(host_name, windows).map_err(|why| {
                    ApiError::new(codes::ILLEGAL_HOST_NAME, format!("The host name `{host_name}` {why}."))
                })?;
            }
        }
        for r in &mut records {
            let i = &mut r.instance;
            if let Some(name) = &req.instance_name {
                i.instance_name.clone_from(name);
            }
            if let Some(groups) = &req.security_groups {
                i.security_group_ids.clone_from(groups);
            }
            if let Some(host_name) = &req.host_name {
                i.host_name.clone_from(host_name);
            }
            if let Some(protect) = req.disable_api_termination {
                i.disable_api_termination = protect;
            }
            set_operation(i, "ModifyInstancesAttribute", "SUCCESS", Some(&ctx.request_id));
        }
        Ok(self.commit(records))
    }
}
