//! The executor against an in-process cloud (`cvmfleet-sim`) under paused time (issue 11): it
//! carries a plan out once and reports what the cloud said as data — created, spent tokens,
//! lost instances, failures with their codes, steps skipped — and never sends a token the
//! plan did not name.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use cvmfleet_plan::{DesiredFleet, Plan, PlanOptions};
use cvmfleet_reconcile::{
    Event, ExecError, ExecOptions, Interrupt, MAX_FAILED_POLLS, Progress, Silent, execute, observe,
};
use cvmfleet_sim::{FaultConfig, Rule, RuleKind, SimCloud, SimConfig, TokenMode};
use cvmfleet_wire::Action;
use cvmfleet_wire::api::RunInstancesRequest;

use crate::fixtures::one_group_fleet;

const ZONE: &str = "ap-guangzhou-3";

fn fleet(replicas: u32) -> Vec<DesiredFleet> {
    let mut fleet = one_group_fleet("exec", ZONE, replicas, &"4".repeat(16));
    fleet.groups[0].max_terminate_percent = 100;
    vec![fleet]
}

async fn plan_for(cloud: &SimCloud, desired: &[DesiredFleet]) -> Plan {
    let observed = observe(&cloud.client().unwrap(), desired).await.expect("observe");
    cvmfleet_plan::plan(desired, &observed, PlanOptions::default())
}

fn token_of(plan: &Plan) -> String {
    plan.fleets[0].groups[0].creates[0].request.client_token.clone().unwrap()
}

/// Records progress events.
#[derive(Default)]
struct Recorder(Mutex<Vec<Event>>);

impl Progress for Recorder {
    fn event(&self, event: Event) {
        self.0.lock().unwrap().push(event);
    }
}

#[tokio::test(start_paused = true)]
async fn a_plan_is_carried_out_once() {
    let cloud = SimCloud::new(SimConfig::seeded(1));
    let desired = fleet(3);
    let plan = plan_for(&cloud, &desired).await;
    let report =
        execute(&cloud.client().unwrap(), &plan, &ExecOptions::default(), &Silent, &Interrupt::new()).await;
    assert!(report.is_complete(), "{:?}", report.failures);
    assert_eq!(report.created.len(), 3);
    assert_eq!(cloud.created().len(), 3);
    assert!(plan_for(&cloud, &desired).await.is_empty());
}

/// A token whose instances are all gone is replayed by the cloud: the executor reports it as
/// spent (and creates nothing); the next plan, told so, uses the pool's next generation.
#[tokio::test(start_paused = true)]
async fn a_replayed_token_of_gone_instances_is_reported_spent() {
    let cloud = SimCloud::new(SimConfig::seeded(2));
    let desired = fleet(2);
    let stale = plan_for(&cloud, &desired).await;
    let client = cloud.client().unwrap();
    let first = execute(&client, &stale, &ExecOptions::default(), &Silent, &Interrupt::new()).await;
    assert_eq!(first.created.len(), 2);
    for instance in cloud.live() {
        cloud.terminate_out_of_band(&instance.instance_id);
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    // The stale plan again (as a saved plan would be, or a plan made before the loss).
    let replay = execute(&client, &stale, &ExecOptions::default(), &Silent, &Interrupt::new()).await;
    assert_eq!(replay.spent_tokens, [token_of(&stale)]);
    assert!(replay.created.is_empty() && replay.failures.is_empty());
    assert!(replay.needs_replan());
    assert_eq!(cloud.created().len(), 2, "a replay creates nothing");
    let spent = replay.spent_tokens.iter().cloned().collect();
    let prices = cvmfleet_reconcile::PriceCache::new();
    let round = cvmfleet_reconcile::Round::new(PlanOptions::default(), &prices).spent(&spent);
    let next = round.plan(&client, &desired).await.unwrap();
    assert_eq!(next.fleets[0].groups[0].creates[0].generation, 1);
}

/// Under strict tokens, a token reused with other parameters (here another count) is refused:
/// reported spent, not a failure, and nothing is created.
#[tokio::test(start_paused = true)]
async fn a_refused_token_is_reported_spent() {
    let cloud = SimCloud::new(SimConfig { token_mode: TokenMode::Strict, ..SimConfig::seeded(3) });
    let client = cloud.client().unwrap();
    let mut plan = plan_for(&cloud, &fleet(2)).await;
    execute(&client, &plan, &ExecOptions::default(), &Silent, &Interrupt::new()).await;
    let create = &mut plan.fleets[0].groups[0].creates[0];
    create.count = 3;
    create.request.instance_count = Some(3);
    let report = execute(&client, &plan, &ExecOptions::default(), &Silent, &Interrupt::new()).await;
    assert_eq!(report.spent_tokens, [token_of(&plan)]);
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(cloud.created().len(), 2);
}

/// A response lost after the cloud acted: the client retries with the same token and gets the
/// original instances back.
#[tokio::test(start_paused = true)]
async fn a_lost_response_is_recovered_by_the_token() {
    let cloud = SimCloud::new(SimConfig::seeded(4));
    cloud.add_rule(Rule::next(Action::RunInstances, RuleKind::LoseResponse));
    let plan = plan_for(&cloud, &fleet(2)).await;
    let report =
        execute(&cloud.client().unwrap(), &plan, &ExecOptions::default(), &Silent, &Interrupt::new()).await;
    assert!(report.is_complete(), "{:?}", report.failures);
    assert_eq!((report.created.len(), cloud.created().len()), (2, 2));
}

/// Part of a batch vanishing before it runs is reported as lost, not as a failure, and the
/// replacement terminations of the group wait for the next round.
#[tokio::test(start_paused = true)]
async fn instances_lost_while_booting_are_reported() {
    let cloud = SimCloud::new(SimConfig::seeded(5));
    let plan = plan_for(&cloud, &fleet(3)).await;
    let client = cloud.client().unwrap();
    let (watcher, victim) = (cloud.clone(), tokio::sync::oneshot::channel::<String>());
    let (send, receive) = victim;
    tokio::spawn(async move {
        // As soon as the batch exists, one of it goes.
        loop {
            if let Some(first) = watcher.live().first() {
                watcher.terminate_out_of_band(&first.instance_id);
                let _ = send.send(first.instance_id.clone());
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let report = execute(&client, &plan, &ExecOptions::default(), &Silent, &Interrupt::new()).await;
    let lost = receive.await.unwrap();
    assert_eq!(report.lost, [lost]);
    assert_eq!(report.created.len(), 2);
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert!(report.needs_replan());
}

/// Regression test for issue 10, item 16: the endpoint dies after the creates. Failing polls
/// are reported as they happen, and the wait gives up after a bounded run of them with the
/// error, instead of waiting out the 15-minute bound in silence.
#[tokio::test(start_paused = true)]
async fn issue_10_failing_polls_are_reported_and_bounded() {
    let cloud = SimCloud::new(SimConfig::seeded(6));
    let plan = plan_for(&cloud, &fleet(1)).await;
    let client = cloud.client().unwrap();
    let dead = cloud.clone();
    tokio::spawn(async move {
        while dead.created().is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        dead.set_faults(FaultConfig { error_rate: 1.0, ..FaultConfig::default() });
    });
    let progress = Recorder::default();
    let started = tokio::time::Instant::now();
    let report = execute(&client, &plan, &ExecOptions::default(), &progress, &Interrupt::new()).await;
    let failed_polls =
        progress.0.lock().unwrap().iter().filter(|e| matches!(e, Event::PollFailed { .. })).count();
    assert_eq!(failed_polls as u32, MAX_FAILED_POLLS);
    assert!(matches!(report.failures.as_slice(), [ExecError::Unobservable { .. }]), "{:?}", report.failures);
    let text = cvmfleet_reconcile::error_chain(&report.failures[0]);
    assert!(text.contains("InternalError") && text.contains("DescribeInstancesStatus"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(15 * 60), "gave up long before the wait bound");
}

/// Ctrl-C before the run: nothing is sent, every step is reported skipped.
#[tokio::test(start_paused = true)]
async fn an_interrupted_run_skips_and_says_so() {
    let cloud = SimCloud::new(SimConfig::seeded(7));
    let plan = plan_for(&cloud, &fleet(2)).await;
    let interrupt = Interrupt::new();
    interrupt.trigger();
    let report = execute(&cloud.client().unwrap(), &plan, &ExecOptions::default(), &Silent, &interrupt).await;
    assert_eq!(report.skipped.len(), 1, "{:?}", report.skipped);
    assert!(cloud.created().is_empty());
    let calls: BTreeMap<Action, u64> = cloud.calls().into_iter().map(|(a, c)| (a, c.calls)).collect();
    assert_eq!(calls.get(&Action::RunInstances), None);
}

/// Regression test for issue 10, item 12: a saved plan edited to terminate an instance that
/// is not ours. The executor checks the cloud's ownership tags before any terminate, start or
/// change, whatever the plan says: the instance is left alone and the refusal reported.
#[tokio::test(start_paused = true)]
async fn issue_10_an_edited_plan_cannot_touch_what_we_do_not_own() {
    let cloud = SimCloud::new(SimConfig::seeded(8));
    let client = cloud.client().unwrap();
    let foreign = RunInstancesRequest {
        placement: Some(cvmfleet_wire::model::Placement { zone: ZONE.into(), ..Default::default() }),
        image_id: Some("img-pmqg1cw7".into()),
        ..Default::default()
    };
    let foreign = client.call("ap-guangzhou", &foreign).await.unwrap().data.instance_id_set.remove(0);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut plan = plan_for(&cloud, &fleet(0)).await;
    plan.fleets[0].groups[0].terminations.push(cvmfleet_plan::plan::Termination {
        instance_id: foreign.clone(),
        zone: ZONE.into(),
        name: "not ours".into(),
        state: "RUNNING".into(),
        reason: cvmfleet_plan::plan::TerminateReason::Surplus,
        waits_for_launches: false,
        waits_for_transition: false,
    });
    let report = execute(&client, &plan, &ExecOptions::default(), &Silent, &Interrupt::new()).await;
    assert!(report.terminated.is_empty());
    assert!(
        matches!(report.failures.as_slice(), [ExecError::NotOwned { instance_id, .. }] if *instance_id == foreign),
        "{:?}",
        report.failures
    );
    assert_eq!(cloud.get(&foreign).unwrap().instance_state, "RUNNING");
}

/// A scale-down that catches instances still booting: the plan says so
/// (`waits_for_transition`), the executor waits for the boot to end and then sends the batch
/// once.
#[tokio::test(start_paused = true)]
async fn terminating_booting_instances_waits_as_the_plan_says() {
    let cloud = SimCloud::new(SimConfig::seeded(7));
    let client = cloud.client().unwrap();
    let up = plan_for(&cloud, &fleet(3)).await;
    // Only the create calls: the instances are still PENDING when the scale-down is planned.
    for create in &up.fleets[0].groups[0].creates {
        client.call("ap-guangzhou", &create.request).await.unwrap();
    }
    let down = plan_for(&cloud, &fleet(1)).await;
    let terminations = &down.fleets[0].groups[0].terminations;
    assert_eq!(terminations.len(), 2);
    assert!(terminations.iter().all(|t| t.state == "PENDING" && t.waits_for_transition), "{terminations:?}");
    let report = execute(&client, &down, &ExecOptions::default(), &Silent, &Interrupt::new()).await;
    assert!(report.is_complete(), "{:?} {:?}", report.failures, report.deferred);
    assert_eq!(report.terminated.len(), 2);
    assert_eq!(cloud.calls()[&Action::TerminateInstances].calls, 1, "one call for the batch");
}

/// Another run terminated part of a planned batch: the cloud refuses the batch for that
/// instance's state; the executor does not re-choose a subset but defers the step, and the
/// converge loop's next plan (from a fresh observation) finishes it.
#[tokio::test(start_paused = true)]
async fn a_batch_changed_by_someone_else_is_deferred_not_narrowed() {
    let cloud = SimCloud::new(SimConfig::seeded(8));
    let client = cloud.client().unwrap();
    let first = plan_for(&cloud, &fleet(3)).await;
    execute(&client, &first, &ExecOptions::default(), &Silent, &Interrupt::new()).await;
    let down = plan_for(&cloud, &fleet(1)).await;
    let going: Vec<String> =
        down.fleets[0].groups[0].terminations.iter().map(|t| t.instance_id.clone()).collect();
    assert_eq!(going.len(), 2);
    cloud.terminate_out_of_band(&going[0]);
    let report = execute(&client, &down, &ExecOptions::default(), &Silent, &Interrupt::new()).await;
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert!(report.terminated.is_empty());
    assert_eq!(report.deferred_ids, going);
    assert!(report.deferred[0].contains("UnsupportedOperation.InstanceState"), "{:?}", report.deferred);
    assert!(report.needs_replan());
    let next = plan_for(&cloud, &fleet(1)).await;
    let again: Vec<&str> =
        next.fleets[0].groups[0].terminations.iter().map(|t| t.instance_id.as_str()).collect();
    assert_eq!(again, [going[1].as_str()]);
    let done = execute(&client, &next, &ExecOptions::default(), &Silent, &Interrupt::new()).await;
    assert_eq!(done.terminated, [going[1].clone()]);
}

/// Two runs terminating the same batch: the second's call is refused because every instance
/// already goes; that is the step done, not a failure.
#[tokio::test(start_paused = true)]
async fn a_batch_someone_else_already_terminated_is_done() {
    let cloud = SimCloud::new(SimConfig::seeded(9));
    let client = cloud.client().unwrap();
    let first = plan_for(&cloud, &fleet(2)).await;
    execute(&client, &first, &ExecOptions::default(), &Silent, &Interrupt::new()).await;
    let down = plan_for(&cloud, &fleet(0)).await;
    let one = execute(&client, &down, &ExecOptions::default(), &Silent, &Interrupt::new()).await;
    let two = execute(&client, &down, &ExecOptions::default(), &Silent, &Interrupt::new()).await;
    assert_eq!(one.terminated.len(), 2);
    assert!(two.is_complete(), "{:?} {:?}", two.failures, two.deferred);
    assert_eq!(two.terminated, one.terminated);
}

/// Issue 12 §1: two projects in one account may name a fleet alike. Each counts only its own
/// instances (and those made before projects, which carry no project tag), creates under its
/// own tokens, and never terminates the other's, even through an edited plan.
#[tokio::test(start_paused = true)]
async fn projects_in_one_account_neither_see_nor_touch_each_other() {
    let cloud = SimCloud::new(SimConfig::seeded(12));
    let client = cloud.client().unwrap();
    let mut shop = fleet(2);
    shop[0].project = "shop".into();
    let mut blog = fleet(1);
    blog[0].project = "blog".into();
    let first = plan_for(&cloud, &shop).await;
    let tags = &first.fleets[0].groups[0].creates[0].request.tag_specification.as_ref().unwrap()[0].tags;
    assert!(tags.iter().any(|t| t.key == "cvmfleet:project" && t.value == "shop"), "{tags:?}");
    execute(&client, &first, &ExecOptions::default(), &Silent, &Interrupt::new()).await;
    let blog_plan = plan_for(&cloud, &blog).await;
    assert_eq!(blog_plan.fleets[0].groups[0].present, 0, "shop's instances are not blog's");
    assert_ne!(token_of(&blog_plan), token_of(&first), "a project has its own tokens");
    execute(&client, &blog_plan, &ExecOptions::default(), &Silent, &Interrupt::new()).await;
    assert_eq!(cloud.created().len(), 3);
    assert!(plan_for(&cloud, &shop).await.is_empty());
    assert!(plan_for(&cloud, &blog).await.is_empty());

    // An edited plan of blog's that terminates one of shop's instances is refused.
    let shop_instance =
        cloud.live().into_iter().find(|i| i.tag("cvmfleet:project") == Some("shop")).unwrap().instance_id;
    let mut edited = plan_for(&cloud, &blog).await;
    edited.fleets[0].groups[0].terminations.push(cvmfleet_plan::plan::Termination {
        instance_id: shop_instance.clone(),
        zone: ZONE.into(),
        name: "shop's".into(),
        state: "RUNNING".into(),
        reason: cvmfleet_plan::plan::TerminateReason::Surplus,
        waits_for_launches: false,
        waits_for_transition: false,
    });
    let report = execute(&client, &edited, &ExecOptions::default(), &Silent, &Interrupt::new()).await;
    assert!(report.terminated.is_empty());
    assert!(
        matches!(report.failures.as_slice(), [ExecError::NotOwned { reason, .. }] if reason.contains("project shop")),
        "{:?}",
        report.failures
    );
}

/// Instances made before projects carry no project tag: the project whose specs name their
/// fleet counts them, so upgrading creates nothing.
#[tokio::test(start_paused = true)]
async fn instances_from_before_projects_count_for_the_project_naming_their_fleet() {
    let cloud = SimCloud::new(SimConfig::seeded(13));
    let client = cloud.client().unwrap();
    let mut old = plan_for(&cloud, &fleet(2)).await;
    for create in &mut old.fleets[0].groups[0].creates {
        for spec in create.request.tag_specification.iter_mut().flatten() {
            spec.tags.retain(|t| t.key != "cvmfleet:project");
        }
    }
    execute(&client, &old, &ExecOptions::default(), &Silent, &Interrupt::new()).await;
    assert_eq!(cloud.created().len(), 2);
    let mut renamed = fleet(2);
    renamed[0].project = "shop".into();
    assert!(plan_for(&cloud, &renamed).await.is_empty(), "legacy instances count; nothing is created");
}
