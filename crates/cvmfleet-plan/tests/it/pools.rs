//! Pool identity of creates (issue 9): whatever order creates land in, however a batch is
//! partly lost, whatever the rollout has done, two plans of the same state send the same
//! tokens, and a plan that sees some instances asks only for what is still missing, under the
//! pool's next generation.

use cvmfleet_plan::observed::tags;
use cvmfleet_plan::plan::Create;
use cvmfleet_plan::{ObservedInstance, Plan, PlanOptions, plan};
use cvmfleet_spec::Rollout;
use cvmfleet_spec::policy::Amount;

use crate::world::{CURRENT, OLD, apply_plan, fleet, group, observed, running};

const Z3: &str = "ap-guangzhou-3";

fn creates(plan: &Plan) -> &[Create] {
    &plan.fleets[0].groups[0].creates
}

/// The instances a create would make, tagged as the cloud would tag them.
fn landed(create: &Create, first_id: u32) -> Vec<ObservedInstance> {
    let mut world = Vec::new();
    let mut next = first_id;
    let plan_of_one = |c: &Create| {
        let mut p = plan(&[fleet(vec![group(&[(Z3, 0)])])], &observed(vec![]), PlanOptions::default());
        p.fleets[0].groups[0].creates = vec![c.clone()];
        p
    };
    apply_plan(&plan_of_one(create), &mut world, &mut next);
    world
}

/// Issue 9, cause 1: the second pool of a zone lands first. A plan made then asks for the
/// first pool with exactly the token the first plan sent for it.
#[test]
fn issue_9_pools_landing_out_of_order_keep_their_tokens() {
    let desired = [fleet(vec![group(&[(Z3, 150)])])];
    let first = plan(&desired, &observed(vec![]), PlanOptions::default());
    let sent = creates(&first);
    assert_eq!(sent.iter().map(|c| c.count).collect::<Vec<_>>(), [100, 50]);
    let second_landed = landed(&sent[1], 0);
    let again = plan(&desired, &observed(second_landed), PlanOptions::default());
    assert_eq!(creates(&again).len(), 1);
    assert_eq!(creates(&again)[0].request.client_token, sent[0].request.client_token);
    assert_eq!(creates(&again)[0].count, 100);
}

/// Issue 9, cause 3: one instance of a batch of three is lost. The refill asks for one, under
/// the pool's next generation; the two that live stay.
#[test]
fn issue_9_a_partly_lost_batch_is_refilled_by_what_is_missing() {
    let desired = [fleet(vec![group(&[(Z3, 3)])])];
    let first = plan(&desired, &observed(vec![]), PlanOptions::default());
    let mut world = landed(&creates(&first)[0], 0);
    world.remove(1);
    let refill = plan(&desired, &observed(world), PlanOptions::default());
    let c = &creates(&refill)[0];
    assert_eq!((c.count, c.generation), (1, 1));
    assert_eq!(c.token_seed, creates(&first)[0].token_seed);
    assert!(refill.fleets[0].groups[0].terminations.is_empty());
}

/// Issue 9, cause 5: a subnet is a parameter of the request, so a group moved to another
/// subnet never reuses a token first sent with the old one.
#[test]
fn issue_9_a_subnet_change_opens_a_fresh_token_space() {
    let with_subnet = |subnet: &str| {
        let mut g = group(&[(Z3, 2)]);
        g.zones[0].subnet_id = Some(subnet.into());
        [fleet(vec![g])]
    };
    let old = plan(&with_subnet("subnet-aaaaaaaa"), &observed(vec![]), PlanOptions::default());
    let new = plan(&with_subnet("subnet-bbbbbbbb"), &observed(vec![]), PlanOptions::default());
    assert_ne!(creates(&old)[0].request.client_token, creates(&new)[0].request.client_token);
}

/// Issue 9, cause 2: a rollout with maxUnavailable; every step's creates are the same pool's
/// next generations, whatever step a plan is made in, so two plans made at different points
/// of the rollout never send two tokens for the same capacity, and the sum of all creates is
/// exactly the group's size.
#[test]
fn issue_9_rollout_creates_stay_in_one_identity_space() {
    let mut g = group(&[(Z3, 4)]);
    g.policies.rollout = Rollout { max_surge: Amount::Count(1), max_unavailable: Amount::Count(1) };
    let desired = [fleet(vec![g])];
    let mut world: Vec<ObservedInstance> =
        (0..4).map(|i| running(&format!("ins-old{i:05}"), Z3, OLD)).collect();
    let mut next = 0;
    let mut generations = Vec::new();
    let mut created = 0;
    for _ in 0..20 {
        let p = plan(&desired, &observed(world.clone()), PlanOptions::default());
        if p.is_empty() {
            break;
        }
        for c in creates(&p) {
            assert_eq!(c.token_seed, creates(&p)[0].token_seed, "one pool");
            generations.push(c.generation);
            created += c.count;
        }
        apply_plan(&p, &mut world, &mut next);
    }
    assert_eq!(created, 4, "exactly one replacement per instance");
    let mut sorted = generations.clone();
    sorted.dedup();
    assert_eq!(sorted, (0..generations.len() as u32).collect::<Vec<_>>(), "generations follow each other");
    assert!(world.iter().all(|i| i.template.as_deref() == Some(CURRENT)));
}

/// Every create carries its pool in a tag, and untagged current instances (made before
/// pools) fill the lowest pools, so upgrading creates nothing for a full group.
#[test]
fn pools_are_tagged_and_untagged_instances_count() {
    let desired = [fleet(vec![group(&[(Z3, 120)])])];
    let first = plan(&desired, &observed(vec![]), PlanOptions::default());
    let pool_of = |c: &Create| {
        c.request
            .tag_specification
            .iter()
            .flatten()
            .flat_map(|s| &s.tags)
            .find(|t| t.key == tags::POOL)
            .map(|t| t.value.clone())
    };
    assert_eq!(pool_of(&creates(&first)[0]).as_deref(), Some("ap-guangzhou-3/0"));
    assert_eq!(pool_of(&creates(&first)[1]).as_deref(), Some("ap-guangzhou-3/1"));
    let legacy: Vec<ObservedInstance> =
        (0..120).map(|i| running(&format!("ins-leg{i:05}"), Z3, CURRENT)).collect();
    assert!(plan(&desired, &observed(legacy), PlanOptions::default()).is_empty());
}
