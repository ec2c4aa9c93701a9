//! Rolling replacement (issue 6): a template change replaces instances in steps bounded by
//! `maxSurge` / `maxUnavailable`, new instances before old ones go, with ClientTokens that
//! depend only on the state a step is planned from.

use cvmfleet_plan::plan::{CreateReason, TerminateReason};
use cvmfleet_plan::render::{RenderOptions, render_text};
use cvmfleet_plan::{ObservedInstance, Plan, PlanOptions, plan};
use cvmfleet_spec::Rollout;
use cvmfleet_spec::policy::Amount;

use crate::world::{CURRENT, OLD, apply_plan, fleet, group, observed, running};

const Z3: &str = "ap-guangzhou-3";

fn outdated(n: usize) -> Vec<ObservedInstance> {
    (0..n).map(|i| running(&format!("ins-old{i:05}"), Z3, OLD)).collect()
}

fn tokens(plan: &Plan) -> Vec<String> {
    plan.fleets[0].groups[0].creates.iter().filter_map(|c| c.request.client_token.clone()).collect()
}

/// Follows a rollout plan by plan; returns the number of steps and checks the bounds on the
/// way: never more than `n + surge` instances, never fewer than `n - unavailable` that are
/// not being terminated.
fn roll(rollout: Rollout, n: u32, surge: u32, unavailable: u32) -> usize {
    let mut g = group(&[(Z3, n)]);
    g.policies.rollout = rollout;
    let desired = [fleet(vec![g])];
    let mut world = outdated(n as usize);
    let mut next = 0;
    for step in 1..=50 {
        let p = plan(&desired, &observed(world.clone()), PlanOptions::default());
        assert!(p.refusals.is_empty(), "{:?}", p.refusals);
        if p.is_empty() {
            assert!(world.iter().all(|i| i.template.as_deref() == Some(CURRENT)));
            assert_eq!(world.len(), n as usize);
            return step - 1;
        }
        let gp = &p.fleets[0].groups[0];
        let created: u32 = gp.creates.iter().filter(|c| c.wait_for_gone.is_empty()).map(|c| c.count).sum();
        assert!(world.len() as u32 + created <= n + surge, "step {step}: surge exceeded");
        let going = gp.terminations.len() as u32;
        assert!(world.len() as u32 + created - going + unavailable >= n, "step {step}: too few left");
        assert!(gp.terminations.iter().all(|t| t.reason == TerminateReason::Outdated));
        apply_plan(&p, &mut world, &mut next);
    }
    panic!("the rollout did not finish in 50 steps");
}

#[test]
fn default_rollout_surges_a_quarter_and_never_drops_below_the_size() {
    // 25% of 8 = 2 per step.
    assert_eq!(roll(Rollout::default(), 8, 2, 0), 4);
    // A small group goes one at a time.
    assert_eq!(roll(Rollout::default(), 3, 1, 0), 3);
}

/// Terminate-first replacements are not planned ahead: the next plan fills their slots once
/// they are gone, as the pool's next generation (issue 9, cause 2).
#[test]
fn unavailable_only_terminates_first_and_the_next_plan_creates() {
    let rollout = Rollout { max_surge: Amount::Count(0), max_unavailable: Amount::Count(2) };
    let mut g = group(&[(Z3, 4)]);
    g.policies.rollout = rollout;
    let desired = [fleet(vec![g])];
    let p = plan(&desired, &observed(outdated(4)), PlanOptions::default());
    let gp = &p.fleets[0].groups[0];
    assert_eq!(gp.terminations.len(), 2);
    assert!(gp.creates.is_empty(), "nothing is created ahead of the old instances going");
    let mut world = outdated(4);
    apply_plan(&p, &mut world, &mut 0);
    let next = plan(&desired, &observed(world), PlanOptions::default());
    let gp = &next.fleets[0].groups[0];
    assert_eq!((gp.creates.len(), gp.creates[0].count, gp.terminations.len()), (1, 2, 0));
    assert_eq!(roll(rollout, 4, 0, 2), 4);
}

#[test]
fn surge_and_unavailable_together() {
    let rollout = Rollout { max_surge: Amount::Percent(50), max_unavailable: Amount::Count(1) };
    assert_eq!(roll(rollout, 6, 3, 1), 2);
}

#[test]
fn a_rollout_step_is_snapshot_readable() {
    let mut g = group(&[(Z3, 4)]);
    g.template.instance_type = Some("S5.LARGE8".into());
    let p = plan(&[fleet(vec![g])], &observed(outdated(4)), PlanOptions::default());
    insta::assert_snapshot!(render_text(&p, "Target: test cloud", RenderOptions::default()));
}

/// A rollout killed after its creates landed, before its terminations: the next plan creates
/// nothing more, and terminates only once the new instances run.
#[test]
fn a_killed_rollout_step_resumes_without_creating_again() {
    let desired = [fleet(vec![group(&[(Z3, 4)])])];
    let before = observed(outdated(4));
    let first = plan(&desired, &before, PlanOptions::default());
    // Same state, same tokens: a re-run before anything landed replays the same request.
    assert_eq!(tokens(&first), tokens(&plan(&desired, &before, PlanOptions::default())));
    let create = &first.fleets[0].groups[0].creates[0];
    assert_eq!(create.count, 1);

    // The create landed (the new instance still boots); the process died before terminating.
    let mut world = outdated(4);
    let mut landed = running("ins-new00001", Z3, CURRENT);
    landed.state = "PENDING".into();
    landed.token = create.request.client_token.clone();
    world.push(landed);
    let resumed = plan(&desired, &observed(world.clone()), PlanOptions::default());
    let gp = &resumed.fleets[0].groups[0];
    assert!(gp.creates.is_empty(), "nothing is created twice: {:?}", gp.creates);
    assert_eq!(gp.terminations.len(), 1, "the step's termination is finished");
    assert_eq!(gp.await_running, ["ins-new00001"], "but only once the new instance runs");
    assert!(resumed.refusals.is_empty());

    // Killed again after the termination was sent: the next step is the same as if nothing
    // had happened, and its token differs from the first step's (other slots).
    let gone = gp.terminations[0].instance_id.clone();
    world.retain(|i| i.id != gone);
    world.iter_mut().for_each(|i| i.state = "RUNNING".into());
    let next = plan(&desired, &observed(world), PlanOptions::default());
    let gp = &next.fleets[0].groups[0];
    assert_eq!(gp.creates.len(), 1);
    assert_eq!(gp.creates[0].reason, CreateReason::Replacement);
    assert_ne!(tokens(&next), tokens(&first));
    assert_eq!(gp.rollout.map(|r| r.remaining), Some(3));
}

#[test]
fn zones_share_the_group_budget_in_spec_order() {
    let g = group(&[(Z3, 2), ("ap-guangzhou-4", 2)]);
    let mut world = outdated(2);
    world.extend((0..2).map(|i| running(&format!("ins-oldz4{i:03}"), "ap-guangzhou-4", OLD)));
    let p = plan(&[fleet(vec![g])], &observed(world), PlanOptions::default());
    let gp = &p.fleets[0].groups[0];
    // 25% of 4 = 1: one instance of the first zone in this step, none of the second.
    assert_eq!(gp.creates.len(), 1);
    assert_eq!(gp.creates[0].zone, Z3);
    assert_eq!(gp.rollout.map(|r| (r.remaining, r.replacing)), Some((4, 1)));
}

#[test]
fn scale_down_during_a_template_change_terminates_the_excess_at_once() {
    let desired = [fleet(vec![group(&[(Z3, 2)])])];
    let p = plan(
        &desired,
        &observed(outdated(4)),
        PlanOptions { allow_mass_termination: true, ..Default::default() },
    );
    let gp = &p.fleets[0].groups[0];
    let surplus = gp.terminations.iter().filter(|t| t.reason == TerminateReason::Surplus).count();
    let replaced = gp.terminations.iter().filter(|t| t.reason == TerminateReason::Outdated).count();
    // The excess uses up the surge budget: the replacement starts once it is gone.
    assert_eq!((surplus, replaced), (2, 0));
    // The excess counts toward the safety limit: 2 of 4 is within 50%.
    assert!(plan(&desired, &observed(outdated(4)), PlanOptions::default()).refusals.is_empty());
    let (mut world, mut next) = (outdated(4), 0);
    apply_plan(&p, &mut world, &mut next);
    let second = plan(&desired, &observed(world), PlanOptions::default());
    assert_eq!(second.fleets[0].groups[0].rollout.map(|r| (r.remaining, r.replacing)), Some((2, 1)));
}
