//! Changes made out of band, by a person in the console rather than through the API: the
//! simulation's harness injects them to test that the reconciler repairs what others did.
//! Each returns the change made (a [`Mutation`]), or `None` when it does not apply.

use cvmfleet_wire::vocab::InstanceState;

use super::{Mutation, Step, Transition, World, set_operation};

impl World {
    /// Terminates an instance out of band: it goes `TERMINATING` from any state but
    /// `TERMINATING` (`PENDING` included) and is gone after the terminate delay; a
    /// `LAUNCH_FAILED` one is removed at once. The state it was in, and the change; `None` when
    /// it is not listed or already `TERMINATING`.
    pub fn terminate_out_of_band(&mut self, id: &str, now_ms: i64) -> Option<(InstanceState, Mutation)> {
        self.advance(now_ms);
        let mut record = self.record_by_id(id)?.clone();
        let was = record.instance.state();
        match was {
            InstanceState::Terminating => return None,
            InstanceState::LaunchFailed => record.next = Some(Transition { at: now_ms, to: Step::Gone }),
            _ => {
                set_operation(&mut record.instance, "TerminateInstances", "OPERATING", None);
                record.instance.instance_state = InstanceState::Terminating.into();
                record.terminate_at = None;
                record.reclaim_at = None;
                let gone = now_ms.saturating_add(self.settings.terminate_delay_ms);
                record.next = Some(Transition { at: gone, to: Step::Gone });
            }
        }
        let mutation = self.commit(vec![record]);
        self.advance(now_ms);
        Some((was, mutation))
    }

    /// Stops a `RUNNING` instance out of band: `STOPPING`, then `STOPPED` after the stop delay.
    /// `None` in any other state.
    pub fn stop_out_of_band(&mut self, id: &str, now_ms: i64) -> Option<Mutation> {
        self.advance(now_ms);
        let mut record =
            self.record_by_id(id).filter(|r| r.instance.state() == InstanceState::Running)?.clone();
        set_operation(&mut record.instance, "StopInstances", "OPERATING", None);
        record.instance.instance_state = InstanceState::Stopping.into();
        let stopped = now_ms.saturating_add(self.settings.stop_delay_ms);
        record.next = Some(Transition { at: stopped, to: Step::Stopped });
        Some(self.commit(vec![record]))
    }

    /// Renames an instance out of band; `None` when it is not listed.
    pub fn rename_out_of_band(&mut self, id: &str, name: &str, now_ms: i64) -> Option<Mutation> {
        self.advance(now_ms);
        let mut record = self.record_by_id(id)?.clone();
        name.clone_into(&mut record.instance.instance_name);
        Some(self.commit(vec![record]))
    }

    /// Removes a tag out of band; `None` when the instance or the tag is missing.
    pub fn remove_tag_out_of_band(&mut self, id: &str, key: &str, now_ms: i64) -> Option<Mutation> {
        self.advance(now_ms);
        let mut record = self.record_by_id(id)?.clone();
        let before = record.instance.tags.len();
        record.instance.tags.retain(|t| t.key != key);
        (record.instance.tags.len() != before).then(|| self.commit(vec![record]))
    }
}
