//! Drift classification and policies (issue 6): every kind of difference is listed with what
//! the plan does about it; `report` lists and never acts; `ignore` neither lists nor acts.

use cvmfleet_plan::drift::{self, DriftKind, Handling};
use cvmfleet_plan::drift_report;
use cvmfleet_plan::plan::TerminateReason;
use cvmfleet_plan::{ObservedInstance, Plan, PlanOptions, plan};
use cvmfleet_spec::{DriftPolicies, DriftPolicy, StoppedPolicy};

use crate::world::{CURRENT, OLD, fleet, group, observed, running};

const Z3: &str = "ap-guangzhou-3";

/// One instance of every kind of drift, plus a healthy one, in a group of 8.
fn drifted() -> Vec<ObservedInstance> {
    let mut stopped = running("ins-stopped1", Z3, CURRENT);
    stopped.state = "STOPPED".into();
    let mut renamed = running("ins-renamed1", Z3, CURRENT);
    renamed.name = "hand-edited".into();
    let mut regrouped = running("ins-sgs00001", Z3, CURRENT);
    regrouped.security_groups = vec!["sg-p1ezv4wz".into()];
    let mut resized = running("ins-resized1", Z3, CURRENT);
    resized.instance_type = "S5.LARGE8".into();
    let mut reimaged = running("ins-reimage1", Z3, CURRENT);
    reimaged.image_id = "img-8toqc6s3".into();
    let mut failed = running("ins-failed01", Z3, CURRENT);
    failed.state = "LAUNCH_FAILED".into();
    let mut orphan = running("ins-orphan01", Z3, CURRENT);
    orphan.group = Some("retired".into());
    vec![
        running("ins-healthy1", Z3, CURRENT),
        running("ins-outdate1", Z3, OLD),
        stopped,
        renamed,
        regrouped,
        resized,
        reimaged,
        failed,
        orphan,
    ]
}

fn plan_with(policies: DriftPolicies, replicas: u32, instances: Vec<ObservedInstance>) -> Plan {
    let mut g = group(&[(Z3, replicas)]);
    g.policies.drift = policies;
    plan(&[fleet(vec![g])], &observed(instances), PlanOptions::default())
}

fn kinds(plan: &Plan) -> Vec<(DriftKind, Option<&str>, Handling)> {
    plan.drift.iter().map(|d| (d.kind, d.instance_id.as_deref(), d.handling)).collect()
}

#[test]
fn every_kind_is_classified_and_corrected_by_default() {
    // 8 wanted, 7 present in the group (one failed): one missing besides the failed one.
    let p = plan_with(DriftPolicies::default(), 9, drifted());
    let found: Vec<DriftKind> = p.drift.iter().map(|d| d.kind).collect();
    for kind in DriftKind::ALL.into_iter().filter(|k| *k != DriftKind::Surplus) {
        assert!(found.contains(&kind), "{kind} not found in {found:?}");
    }
    let gp = &p.fleets[0].groups[0];
    assert_eq!(gp.starts.len(), 1);
    assert_eq!(gp.starts[0].instance_ids, ["ins-stopped1"]);
    assert_eq!(gp.updates.len(), 2, "rename and security groups, in place");
    // The outdated and the two changed instances are replaced, one per step (25% of 9 = 3).
    let replaced: Vec<(&str, TerminateReason)> =
        gp.terminations.iter().map(|t| (t.instance_id.as_str(), t.reason)).collect();
    assert_eq!(replaced.len(), 3, "{replaced:?}");
    assert!(replaced.contains(&("ins-outdate1", TerminateReason::Outdated)));
    assert!(replaced.contains(&("ins-resized1", TerminateReason::Changed)));
    let orphan = p.drift.iter().find(|d| d.kind == DriftKind::Orphan).unwrap();
    assert_eq!(orphan.handling, Handling::Pending, "orphans go only with prune");
    insta::assert_snapshot!(drift_report::render_text(&p, "Target: test cloud"));
}

#[test]
fn report_lists_and_never_acts() {
    let report = DriftPolicies {
        missing: DriftPolicy::Report,
        surplus: DriftPolicy::Report,
        outdated: DriftPolicy::Report,
        stopped: StoppedPolicy::Report,
        instance_name: DriftPolicy::Report,
        security_groups: DriftPolicy::Report,
        instance_type: DriftPolicy::Report,
        image_id: DriftPolicy::Report,
        launch_failed: DriftPolicy::Report,
    };
    let p = plan_with(report, 9, drifted());
    assert!(p.is_empty(), "{}", cvmfleet_plan::render::summary_line(&p));
    assert!(
        p.drift.iter().filter(|d| d.kind != DriftKind::Orphan).all(|d| d.handling == Handling::Reported),
        "{:?}",
        kinds(&p)
    );
    assert!(p.drift.len() >= 9);
    // Surplus too: 2 wanted, 7 present and kept.
    let p = plan_with(report, 2, drifted());
    assert!(p.is_empty());
    assert!(p.drift.iter().any(|d| d.kind == DriftKind::Surplus && d.handling == Handling::Reported));
}

#[test]
fn ignore_neither_lists_nor_acts() {
    let ignore = DriftPolicies {
        stopped: StoppedPolicy::Ignore,
        instance_name: DriftPolicy::Ignore,
        security_groups: DriftPolicy::Ignore,
        instance_type: DriftPolicy::Ignore,
        image_id: DriftPolicy::Ignore,
        ..DriftPolicies::default()
    };
    let p = plan_with(ignore, 9, drifted());
    let listed: Vec<DriftKind> = p.drift.iter().map(|d| d.kind).collect();
    for kind in [
        DriftKind::Stopped,
        DriftKind::InstanceName,
        DriftKind::SecurityGroups,
        DriftKind::InstanceType,
        DriftKind::ImageId,
    ] {
        assert!(!listed.contains(&kind), "{kind} listed");
    }
    let gp = &p.fleets[0].groups[0];
    assert!(gp.starts.is_empty() && gp.updates.is_empty());
    assert!(gp.terminations.iter().all(|t| t.reason == TerminateReason::Outdated));
}

#[test]
fn stopped_instances_may_be_replaced_instead() {
    let mut stopped = running("ins-stopped1", Z3, CURRENT);
    stopped.state = "STOPPED".into();
    let mut stopping = running("ins-stopping", Z3, CURRENT);
    stopping.state = "STOPPING".into();
    let instances = vec![running("ins-healthy1", Z3, CURRENT), stopped, stopping];
    let started = plan_with(DriftPolicies::default(), 3, instances.clone());
    assert_eq!(started.fleets[0].groups[0].starts[0].instance_ids, ["ins-stopped1", "ins-stopping"]);
    assert_eq!(started.summary.start, 2);
    let replace = DriftPolicies { stopped: StoppedPolicy::Replace, ..DriftPolicies::default() };
    let replaced = plan_with(replace, 3, instances);
    let gp = &replaced.fleets[0].groups[0];
    assert!(gp.starts.is_empty());
    assert_eq!(gp.terminations.len(), 1, "one per step (25% of 3 rounds up to 1)");
    assert_eq!(gp.terminations[0].reason, TerminateReason::Stopped);
    assert_eq!(gp.creates[0].count, 1);
    let pending = replaced.drift.iter().filter(|d| d.handling == Handling::Pending).count();
    assert_eq!(pending, 1, "the second stopped instance waits for the next step");
}

#[test]
fn orphans_follow_their_policy() {
    let mut orphan = running("ins-orphan01", Z3, CURRENT);
    orphan.group = Some("retired".into());
    let seen = observed(vec![running("ins-healthy1", Z3, CURRENT), orphan]);
    let mut f = fleet(vec![group(&[(Z3, 1)])]);
    let pruned = plan(&[f.clone()], &seen, PlanOptions { prune: true, ..Default::default() });
    assert_eq!(pruned.summary.terminate, 1);
    assert_eq!(pruned.drift[0].handling, Handling::Corrected);
    f.orphans = DriftPolicy::Report;
    let reported = plan(&[f.clone()], &seen, PlanOptions { prune: true, ..Default::default() });
    assert_eq!(reported.summary.terminate, 0, "report wins over --prune");
    assert_eq!(reported.drift[0].handling, Handling::Reported);
    f.orphans = DriftPolicy::Ignore;
    let ignored = plan(&[f], &seen, PlanOptions { prune: true, ..Default::default() });
    assert!(ignored.drift.is_empty() && ignored.fleets[0].orphans.is_empty());
}

#[test]
fn no_drift_when_the_cloud_matches() {
    let p = plan_with(
        DriftPolicies::default(),
        2,
        vec![running("ins-healthy1", Z3, CURRENT), running("ins-healthy2", Z3, CURRENT)],
    );
    assert!(p.drift.is_empty() && p.is_empty());
    insta::assert_snapshot!(drift_report::render_text(&p, "Target: test cloud"), @r"
    Target: test cloud

    No drift. 2 instance(s) match the spec.
    ");
}

#[test]
fn the_per_cycle_bound_refuses_large_terminations() {
    let seen = observed((0..5).map(|i| running(&format!("ins-surplus{i}"), Z3, CURRENT)).collect());
    let mut g = group(&[(Z3, 3)]);
    g.max_terminate_percent = 100;
    let desired = [fleet(vec![g])];
    let bounded = PlanOptions { max_terminations_per_group: Some(1), ..Default::default() };
    let p = plan(&desired, &seen, bounded);
    assert_eq!(p.refusals.len(), 1);
    insta::assert_snapshot!(p.refusals[0].message, @"would terminate 2 instances without replacement, more than the bound of 1 per group and cycle; run `cvmfleet apply` to do it by hand");
    assert!(
        plan(&desired, &seen, PlanOptions { max_terminations_per_group: Some(2), ..Default::default() })
            .refusals
            .is_empty()
    );
}

#[test]
fn drift_renders_as_markdown_and_counts_by_fleet_and_kind() {
    let p = plan_with(DriftPolicies::default(), 9, drifted());
    let counts = drift::counts(&p.drift);
    assert_eq!(counts.get(&("svc".to_owned(), DriftKind::Missing)), Some(&1));
    assert_eq!(counts.get(&("svc".to_owned(), DriftKind::Stopped)), Some(&1));
    insta::assert_snapshot!(drift_report::render_markdown(&p, "Target: test cloud"));
}

/// Regression test for issue 6: the same slot lost again and again. Each loss is refilled by a
/// newer generation of the pool; once an older generation's instance is gone, the next create
/// must still come after the highest generation a live instance carries (a replay of that one
/// would pass a live instance off as new).
#[test]
fn issue_6_generations_carried_by_live_instances_are_stepped_over() {
    let desired = [fleet(vec![group(&[(Z3, 3)])])];
    let keepers = || vec![running("ins-keeper01", Z3, CURRENT), running("ins-keeper02", Z3, CURRENT)];
    let first = plan(&desired, &observed(keepers()), PlanOptions::default());
    let create = &first.fleets[0].groups[0].creates[0];
    assert_eq!(create.generation, 0);
    let seed = create.token_seed.clone();
    // Generation 0's instance was lost and replaced by generation 1's; then a keeper was lost:
    // the pool misses one again, generation 0 is not carried, generation 1 is live.
    let mut replacement = running("ins-gen1live", Z3, CURRENT);
    replacement.token = Some(seed.token(1));
    let lost = plan(&desired, &observed(vec![keepers().remove(0), replacement]), PlanOptions::default());
    let create = &lost.fleets[0].groups[0].creates[0];
    assert_eq!(create.token_seed, seed);
    assert_eq!(create.generation, 2);
}

/// The plan document is the versioned contract `apply plan.json` reads (issue 11): every kind
/// of step in one plan, snapshotted as JSON, so that a renamed or dropped field fails here.
#[test]
fn the_plan_document_is_a_stable_contract() {
    let p = plan_with(DriftPolicies::default(), 9, drifted());
    assert_eq!(p.format_version, cvmfleet_plan::plan::FORMAT_VERSION);
    insta::assert_json_snapshot!(p);
}
