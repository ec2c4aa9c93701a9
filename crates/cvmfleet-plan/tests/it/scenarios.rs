use std::collections::BTreeMap;

use cvmfleet_plan::observed::tags;
use cvmfleet_plan::plan::{AttributeChange, CreateReason, TerminateReason};
use cvmfleet_plan::render::{RenderOptions, render_markdown, render_text};
use cvmfleet_plan::{
    DesiredFleet, DesiredGroup, DesiredZone, ObservedFleet, ObservedInstance, PasswordSource, Plan,
    PlanOptions, plan,
};
use cvmfleet_wire::api::RunInstancesRequest;
use cvmfleet_wire::model::LoginSettings;

const REPLACEMENT: &str = "aaaaaaaaaaaaaaaa";
const OLD_REPLACEMENT: &str = "bbbbbbbbbbbbbbbb";

fn zone(name: &str, replicas: u32) -> DesiredZone {
    DesiredZone { zone: name.into(), replicas, subnet_id: None, private_ips: vec![] }
}

fn group(name: &str, zones: Vec<DesiredZone>) -> DesiredGroup {
    DesiredGroup {
        zones,
        ..DesiredGroup::new(
            name,
            RunInstancesRequest {
                instance_type: Some("S5.MEDIUM2".into()),
                image_id: Some("img-pmqg1cw7".into()),
                instance_name: Some("web".into()),
                security_group_ids: Some(vec!["sg-5ld3mz1q".into()]),
                ..Default::default()
            },
            REPLACEMENT,
        )
    }
}

fn fleet(groups: Vec<DesiredGroup>) -> DesiredFleet {
    DesiredFleet {
        project: "default".into(),
        name: "web".into(),
        region: "ap-guangzhou".into(),
        prune: false,
        allow_deletion: false,
        groups,
        orphans: Default::default(),
        max_monthly_cost_increase: None,
    }
}

fn instance(id: &str, zone: &str, group: &str, state: &str) -> ObservedInstance {
    ObservedInstance {
        id: id.into(),
        zone: zone.into(),
        state: state.into(),
        name: "web".into(),
        security_groups: vec!["sg-5ld3mz1q".into()],
        private_ips: vec![],
        subnet_id: String::new(),
        created_time: format!("2026-11-26T10:00:{:02}Z", id.len()),
        instance_type: "S5.MEDIUM2".into(),
        image_id: "img-pmqg1cw7".into(),
        protected: false,
        fleet: Some("web".into()),
        group: Some(group.into()),
        template: Some(REPLACEMENT.into()),
        token: Some("cvmf1-old".into()),
        pool: None,
        project: None,
        instance_charge_type: "POSTPAID_BY_HOUR".into(),
        latest_error: None,
    }
}

fn observed(instances: Vec<ObservedInstance>) -> BTreeMap<String, ObservedFleet> {
    BTreeMap::from([("web".to_owned(), ObservedFleet { instances, ..Default::default() })])
}

fn text(plan: &Plan) -> String {
    render_text(plan, "Target: test cloud", RenderOptions::default())
}

#[test]
fn empty_cloud_creates_the_whole_group_spread_over_zones() {
    let desired =
        [fleet(vec![group("frontend", vec![zone("ap-guangzhou-3", 2), zone("ap-guangzhou-4", 1)])])];
    let plan = plan(&desired, &BTreeMap::new(), PlanOptions::default());
    assert_eq!(plan.summary.create, 3);
    let creates = &plan.fleets[0].groups[0].creates;
    assert_eq!(creates.len(), 2);
    let request = &creates[0].request;
    assert_eq!(request.placement.as_ref().unwrap().zone, "ap-guangzhou-3");
    assert_eq!(request.instance_count, Some(2));
    let tags = &request.tag_specification.as_ref().unwrap()[0].tags;
    let keys: Vec<&str> = tags.iter().map(|t| t.key.as_str()).collect();
    assert_eq!(keys, [tags::PROJECT, tags::FLEET, tags::GROUP, tags::TEMPLATE, tags::POOL, tags::TOKEN]);
    assert_eq!(tags[0].value, "default");
    assert_eq!(tags[4].value, "ap-guangzhou-3/0");
    assert_eq!(tags[5].value, request.client_token.clone().unwrap());
    insta::assert_snapshot!(text(&plan));
}

#[test]
fn no_changes_when_the_cloud_matches() {
    let desired = [fleet(vec![group("frontend", vec![zone("ap-guangzhou-3", 2)])])];
    let seen = observed(vec![
        instance("ins-aaaaaaa1", "ap-guangzhou-3", "frontend", "RUNNING"),
        instance("ins-aaaaaaa2", "ap-guangzhou-3", "frontend", "PENDING"),
    ]);
    let plan = plan(&desired, &seen, PlanOptions::default());
    assert!(plan.is_empty(), "{plan:#?}");
    assert_eq!(plan.summary.unchanged, 2);
    insta::assert_snapshot!(text(&plan));
}

#[test]
fn scale_down_terminates_unhealthy_then_newest() {
    let desired = [fleet(vec![group("frontend", vec![zone("ap-guangzhou-3", 2)])])];
    let mut stopped = instance("ins-aaaaaaa1", "ap-guangzhou-3", "frontend", "STOPPED");
    stopped.created_time = "2026-01-01T00:00:00Z".into();
    let mut newest = instance("ins-aaaaaaa2", "ap-guangzhou-3", "frontend", "RUNNING");
    newest.created_time = "2026-11-01T00:00:00Z".into();
    let mut old1 = instance("ins-aaaaaaa3", "ap-guangzhou-3", "frontend", "RUNNING");
    old1.created_time = "2026-02-01T00:00:00Z".into();
    let mut old2 = instance("ins-aaaaaaa4", "ap-guangzhou-3", "frontend", "RUNNING");
    old2.created_time = "2026-03-01T00:00:00Z".into();
    let plan = plan(&desired, &observed(vec![stopped, newest, old1, old2]), PlanOptions::default());
    let gone: Vec<&str> =
        plan.fleets[0].groups[0].terminations.iter().map(|t| t.instance_id.as_str()).collect();
    assert_eq!(gone, ["ins-aaaaaaa1", "ins-aaaaaaa2"]);
    assert!(plan.refusals.is_empty(), "2 of 4 is exactly the 50% limit");
    insta::assert_snapshot!(text(&plan));
}

#[test]
fn mass_termination_is_refused_unless_allowed() {
    let desired = [fleet(vec![group("frontend", vec![zone("ap-guangzhou-3", 1)])])];
    let seen = observed(
        (1..=4)
            .map(|i| instance(&format!("ins-aaaaaaa{i}"), "ap-guangzhou-3", "frontend", "RUNNING"))
            .collect(),
    );
    let refused = plan(&desired, &seen, PlanOptions::default());
    assert_eq!(refused.refusals.len(), 1);
    insta::assert_snapshot!(refused.refusals[0].message);
    let allowed = plan(&desired, &seen, PlanOptions { allow_mass_termination: true, ..Default::default() });
    assert!(allowed.refusals.is_empty());
    assert_eq!(allowed.summary.terminate, 3);
}

#[test]
fn emptying_a_fleet_is_refused() {
    let desired = [fleet(vec![group("frontend", vec![zone("ap-guangzhou-3", 0)])])];
    let mut g = desired[0].groups[0].clone();
    g.max_terminate_percent = 100;
    let desired = [fleet(vec![g])];
    let seen = observed(vec![instance("ins-aaaaaaa1", "ap-guangzhou-3", "frontend", "RUNNING")]);
    let plan = plan(&desired, &seen, PlanOptions::default());
    assert_eq!(plan.refusals.len(), 1);
    assert!(plan.refusals[0].group.is_none());
}

#[test]
fn template_change_replaces_create_before_destroy() {
    let mut g = group("frontend", vec![zone("ap-guangzhou-3", 2)]);
    g.template.instance_type = Some("S5.LARGE8".into());
    let desired = [fleet(vec![g])];
    let mut a = instance("ins-aaaaaaa1", "ap-guangzhou-3", "frontend", "RUNNING");
    a.template = Some(OLD_REPLACEMENT.into());
    let mut b = instance("ins-aaaaaaa2", "ap-guangzhou-3", "frontend", "RUNNING");
    b.template = Some(OLD_REPLACEMENT.into());
    let plan = plan(&desired, &observed(vec![a, b]), PlanOptions::default());
    let gp = &plan.fleets[0].groups[0];
    // A rolling replacement: maxSurge 25% of 2 rounds up to one instance per step.
    assert_eq!(gp.creates.len(), 1);
    assert_eq!(gp.creates[0].count, 1);
    assert_eq!(gp.creates[0].reason, CreateReason::Replacement);
    assert_eq!(gp.terminations.len(), 1);
    assert!(gp.terminations.iter().all(|t| t.reason == TerminateReason::Outdated));
    assert_eq!(gp.rollout.map(|r| (r.remaining, r.replacing)), Some((2, 1)));
    assert_eq!(plan.summary.replace, 1);
    assert!(plan.refusals.is_empty(), "replacement keeps capacity and is not a mass termination");
    insta::assert_snapshot!(text(&plan));
}

#[test]
fn rename_and_security_groups_change_in_place() {
    let mut g = group("frontend", vec![zone("ap-guangzhou-3", 3)]);
    // Several instances created at once get the suffixes 1, 2, … (api.json, InstanceName).
    g.template.instance_name = Some("web-v2-".into());
    g.template.security_group_ids = Some(vec!["sg-new00001".into(), "sg-5ld3mz1q".into()]);
    let desired = [fleet(vec![g])];
    let mut suffixed = instance("ins-aaaaaaa3", "ap-guangzhou-3", "frontend", "RUNNING");
    suffixed.name = "web-v2-3".into();
    suffixed.security_groups = vec!["sg-5ld3mz1q".into(), "sg-new00001".into()];
    let seen = observed(vec![
        instance("ins-aaaaaaa1", "ap-guangzhou-3", "frontend", "RUNNING"),
        instance("ins-aaaaaaa2", "ap-guangzhou-3", "frontend", "RUNNING"),
        suffixed,
    ]);
    let plan = plan(&desired, &seen, PlanOptions::default());
    let gp = &plan.fleets[0].groups[0];
    assert!(gp.creates.is_empty() && gp.terminations.is_empty());
    assert_eq!(gp.updates.len(), 2);
    assert!(matches!(&gp.updates[0].change, AttributeChange::InstanceName { to, .. } if to == "web-v2-"));
    assert_eq!(gp.updates[0].instance_ids, ["ins-aaaaaaa1", "ins-aaaaaaa2"]);
    assert_eq!(plan.summary.update, 2);
    insta::assert_snapshot!(text(&plan));
}

#[test]
fn orphans_are_shown_and_pruned_only_when_allowed() {
    let desired = [fleet(vec![group("frontend", vec![zone("ap-guangzhou-3", 1)])])];
    let seen = observed(vec![
        instance("ins-aaaaaaa1", "ap-guangzhou-3", "frontend", "RUNNING"),
        instance("ins-orphan01", "ap-guangzhou-3", "old-api", "RUNNING"),
    ]);
    let kept = plan(&desired, &seen, PlanOptions::default());
    assert_eq!(kept.summary.terminate, 0);
    assert_eq!(kept.warnings.len(), 1);
    insta::assert_snapshot!("orphans_kept", text(&kept));
    let pruned = plan(&desired, &seen, PlanOptions { prune: true, ..Default::default() });
    assert_eq!(pruned.summary.terminate, 1);
    insta::assert_snapshot!("orphans_pruned", text(&pruned));
}

#[test]
fn launch_failed_instances_are_replaced_and_leaving_ones_ignored() {
    let desired = [fleet(vec![group("frontend", vec![zone("ap-guangzhou-3", 2)])])];
    let seen = observed(vec![
        instance("ins-aaaaaaa1", "ap-guangzhou-3", "frontend", "RUNNING"),
        instance("ins-aaaaaaa2", "ap-guangzhou-3", "frontend", "LAUNCH_FAILED"),
        instance("ins-aaaaaaa3", "ap-guangzhou-3", "frontend", "TERMINATING"),
    ]);
    let plan = plan(&desired, &seen, PlanOptions::default());
    let gp = &plan.fleets[0].groups[0];
    assert_eq!(gp.creates[0].count, 1);
    assert_eq!(gp.creates[0].reason, CreateReason::Replacement);
    // The API refuses to terminate LAUNCH_FAILED instances; the cloud removes them itself.
    assert!(gp.terminations.is_empty());
    assert_eq!(gp.launch_failed.len(), 1);
    assert_eq!(plan.summary.unchanged, 1);
    assert_eq!(plan.summary.replace, 1);
    insta::assert_snapshot!(text(&plan));
}

#[test]
fn instances_in_a_dropped_zone_go() {
    let desired = [fleet(vec![group("frontend", vec![zone("ap-guangzhou-3", 2)])])];
    let seen = observed(vec![
        instance("ins-aaaaaaa1", "ap-guangzhou-3", "frontend", "RUNNING"),
        instance("ins-aaaaaaa2", "ap-guangzhou-4", "frontend", "RUNNING"),
    ]);
    let plan = plan(&desired, &seen, PlanOptions { allow_mass_termination: true, ..Default::default() });
    let gp = &plan.fleets[0].groups[0];
    assert_eq!(gp.terminations[0].reason, TerminateReason::ZoneRemoved);
    assert_eq!(gp.creates[0].count, 1);
}

#[test]
fn large_groups_split_into_batches_of_100_on_absolute_boundaries() {
    let desired = [fleet(vec![group("frontend", vec![zone("ap-guangzhou-3", 250)])])];
    let first = plan(&desired, &BTreeMap::new(), PlanOptions::default());
    let counts: Vec<u32> = first.fleets[0].groups[0].creates.iter().map(|c| c.count).collect();
    assert_eq!(counts, [100, 100, 50]);

    // A concurrent apply that saw the first batch land plans exactly the remaining batches,
    // with the same tokens: the cloud replays them instead of creating twice.
    let first_token = first.fleets[0].groups[0].creates[0].request.client_token.clone().unwrap();
    let landed: Vec<ObservedInstance> = (0..100)
        .map(|i| {
            let mut inst = instance(&format!("ins-{i:08}"), "ap-guangzhou-3", "frontend", "PENDING");
            inst.token = Some(first_token.clone());
            inst
        })
        .collect();
    let second = plan(&desired, &observed(landed), PlanOptions::default());
    let tokens = |p: &Plan| -> Vec<String> {
        p.fleets[0].groups[0].creates.iter().map(|c| c.request.client_token.clone().unwrap()).collect()
    };
    assert_eq!(tokens(&second), tokens(&first)[1..]);
}

#[test]
fn a_token_carried_by_an_instance_is_not_reused() {
    let desired = [fleet(vec![group("frontend", vec![zone("ap-guangzhou-3", 2)])])];
    let one_missing = observed(vec![instance("ins-aaaaaaa1", "ap-guangzhou-3", "frontend", "RUNNING")]);
    let before = plan(&desired, &one_missing, PlanOptions::default());
    let create = &before.fleets[0].groups[0].creates[0];
    assert_eq!(create.generation, 0);
    // That token made ins-aaaaaaa2; later another instance died and the same slot is missing.
    let mut made = instance("ins-aaaaaaa2", "ap-guangzhou-3", "frontend", "RUNNING");
    made.token = create.request.client_token.clone();
    let after = plan(&desired, &observed(vec![made]), PlanOptions::default());
    let again = &after.fleets[0].groups[0].creates[0];
    assert_eq!(again.generation, 1);
    assert_ne!(again.request.client_token, create.request.client_token);
    assert_eq!(again.request.client_token, Some(again.token_seed.token(1)));
}

#[test]
fn private_ip_groups_fill_missing_ips_and_wait_for_ips_being_freed() {
    let mut g = group("db", vec![]);
    g.zones = vec![DesiredZone {
        zone: "ap-hongkong-1".into(),
        replicas: 2,
        subnet_id: Some("subnet-dcs9x3gz".into()),
        private_ips: vec![std::net::Ipv4Addr::new(10, 0, 0, 18), std::net::Ipv4Addr::new(10, 0, 0, 19)],
    }];
    g.template.virtual_private_cloud = Some(cvmfleet_wire::model::VirtualPrivateCloud {
        vpc_id: "vpc-1urkhbj4".into(),
        subnet_id: "subnet-dcs9x3gz".into(),
        ..Default::default()
    });
    let desired = [fleet(vec![g])];
    let mut outdated = instance("ins-aaaaaaa1", "ap-hongkong-1", "db", "RUNNING");
    outdated.private_ips = vec![std::net::Ipv4Addr::new(10, 0, 0, 18)];
    outdated.template = Some(OLD_REPLACEMENT.into());
    let plan = plan(&desired, &observed(vec![outdated]), PlanOptions::default());
    let creates = &plan.fleets[0].groups[0].creates;
    assert_eq!(creates.len(), 2);
    let ips =
        |i: usize| creates[i].request.virtual_private_cloud.as_ref().unwrap().private_ip_addresses.clone();
    assert_eq!(ips(0), Some(vec!["10.0.0.19".to_owned()]));
    assert!(creates[0].wait_for_gone.is_empty());
    assert_eq!(ips(1), Some(vec!["10.0.0.18".to_owned()]));
    assert_eq!(creates[1].wait_for_gone, ["ins-aaaaaaa1"]);
    insta::assert_snapshot!(text(&plan));
}

#[test]
fn protected_instances_are_blocked_not_terminated() {
    let desired = [fleet(vec![group("frontend", vec![zone("ap-guangzhou-3", 1)])])];
    let mut keep = instance("ins-aaaaaaa1", "ap-guangzhou-3", "frontend", "RUNNING");
    keep.created_time = "2026-01-01T00:00:00Z".into();
    let mut protected = instance("ins-aaaaaaa2", "ap-guangzhou-3", "frontend", "RUNNING");
    protected.protected = true;
    protected.created_time = "2026-06-01T00:00:00Z".into();
    let plan = plan(&desired, &observed(vec![keep, protected]), PlanOptions::default());
    let gp = &plan.fleets[0].groups[0];
    assert!(gp.terminations.is_empty());
    assert_eq!(gp.blocked.len(), 1);
    assert_eq!(plan.warnings.len(), 1);
}

#[test]
fn secrets_never_reach_the_plan() {
    let mut g = group("frontend", vec![zone("ap-guangzhou-3", 1)]);
    g.template.login_settings =
        Some(LoginSettings { password: Some("Qcloud@TestApi123++".into()), ..Default::default() });
    g.password = Some(PasswordSource::FromEnv("WEB_PASSWORD".into()));
    let plan = plan(&[fleet(vec![g])], &BTreeMap::new(), PlanOptions::default());
    let json = serde_json::to_string(&plan).unwrap();
    assert!(!json.contains("Qcloud@TestApi123++"));
    assert!(json.contains("WEB_PASSWORD"));
    let rendered = text(&plan);
    assert!(rendered.contains("password=(sensitive)") && !rendered.contains("Qcloud@"));
}

#[test]
fn plans_are_deterministic_and_round_trip_as_json() {
    let desired =
        [fleet(vec![group("frontend", vec![zone("ap-guangzhou-3", 3), zone("ap-guangzhou-4", 2)])])];
    let seen = observed(vec![
        instance("ins-aaaaaaa2", "ap-guangzhou-4", "frontend", "RUNNING"),
        instance("ins-aaaaaaa1", "ap-guangzhou-3", "frontend", "RUNNING"),
    ]);
    let a = serde_json::to_string(&plan(&desired, &seen, PlanOptions::default())).unwrap();
    let mut reversed = seen.clone();
    reversed.get_mut("web").unwrap().instances.reverse();
    let b = serde_json::to_string(&plan(&desired, &reversed, PlanOptions::default())).unwrap();
    assert_eq!(a, b);
    let back: Plan = serde_json::from_str(&a).unwrap();
    assert_eq!(serde_json::to_string(&back).unwrap(), a);
}

#[test]
fn fingerprint_ignores_boot_progress_but_not_membership() {
    let desired = [fleet(vec![group("frontend", vec![zone("ap-guangzhou-3", 1)])])];
    let pending = observed(vec![instance("ins-aaaaaaa1", "ap-guangzhou-3", "frontend", "PENDING")]);
    let running = observed(vec![instance("ins-aaaaaaa1", "ap-guangzhou-3", "frontend", "RUNNING")]);
    let gone = observed(vec![]);
    let f = |o: &BTreeMap<String, ObservedFleet>| cvmfleet_plan::fingerprint(&desired, o);
    assert_eq!(f(&pending), f(&running));
    assert_ne!(f(&pending), f(&gone));
}

#[test]
fn markdown_stays_under_the_comment_limit() {
    let groups: Vec<DesiredGroup> =
        (0..40).map(|i| group(&format!("g{i:02}"), vec![zone("ap-guangzhou-3", 1)])).collect();
    let desired = [fleet(groups.clone())];
    let seen = observed(
        (0..40)
            .flat_map(|g| {
                (0..40).map(move |i| {
                    instance(&format!("ins-{g:03}{i:05}"), "ap-guangzhou-4", &format!("g{g:02}"), "RUNNING")
                })
            })
            .collect(),
    );
    let plan = plan(&desired, &seen, PlanOptions { allow_mass_termination: true, ..Default::default() });
    let md = render_markdown(&plan, "Target: test cloud");
    assert!(md.len() <= cvmfleet_plan::render::MARKDOWN_LIMIT, "{}", md.len());
    assert!(md.contains("were cut to fit"));
    let small = render_markdown(
        &cvmfleet_plan::plan(&[fleet(vec![groups[0].clone()])], &BTreeMap::new(), PlanOptions::default()),
        "Target: test cloud",
    );
    insta::assert_snapshot!(small);
}

#[test]
fn instances_left_in_an_old_subnet_are_replaced() {
    let mut g = group("frontend", vec![zone("ap-guangzhou-3", 1)]);
    g.zones[0].subnet_id = Some("subnet-g3a1x7k2".into());
    let desired = [fleet(vec![g])];
    let mut same = instance("ins-aaaaaaa1", "ap-guangzhou-3", "frontend", "RUNNING");
    same.subnet_id = "subnet-g3a1x7k2".into();
    assert!(plan(&desired, &observed(vec![same.clone()]), PlanOptions::default()).is_empty());
    let mut moved = same;
    moved.subnet_id = "subnet-old00001".into();
    let replanned = plan(&desired, &observed(vec![moved]), PlanOptions::default());
    let gp = &replanned.fleets[0].groups[0];
    assert_eq!(gp.creates.iter().map(|c| c.count).sum::<u32>(), 1);
    assert_eq!(gp.terminations.len(), 1);
    assert!(!gp.terminations[0].reason.reduces_capacity());
}

/// Issue 12 §3: a fleet whose file was deleted (`old`) and a fleet whose region changed (`web`
/// also seen in ap-shanghai) are orphan fleets beside the fleets of the specs: reported, kept,
/// terminated only with `--prune`, and as whole fleets only with `--allow-mass-termination`.
#[test]
fn deleted_and_moved_fleets_are_orphan_fleets() {
    let desired = [fleet(vec![group("frontend", vec![zone("ap-guangzhou-3", 1)])])];
    let mut seen = observed(vec![instance("ins-aaaaaaa1", "ap-guangzhou-3", "frontend", "RUNNING")]);
    let mut old = instance("ins-old00001", "ap-guangzhou-4", "api", "RUNNING");
    old.fleet = Some("old".into());
    let mut moved = instance("ins-sh000001", "ap-shanghai-2", "frontend", "RUNNING");
    moved.name = "web-sh".into();
    seen.insert("old@ap-guangzhou".into(), ObservedFleet { instances: vec![old], ..Default::default() });
    seen.insert("web@ap-shanghai".into(), ObservedFleet { instances: vec![moved], ..Default::default() });

    let kept = plan(&desired, &seen, PlanOptions::default());
    assert_eq!(kept.fleets.len(), 3);
    assert!(kept.fleets[1..].iter().all(|f| f.orphan_fleet && !f.prune && f.orphans.len() == 1));
    assert_eq!(kept.summary.terminate, 0);
    let orphan_drift: Vec<&str> = kept
        .drift
        .iter()
        .filter(|d| d.kind == cvmfleet_plan::drift::DriftKind::Orphan)
        .map(|d| d.desired.as_str())
        .collect();
    assert_eq!(
        orphan_drift,
        ["no spec declares fleet old in ap-guangzhou", "no spec declares fleet web in ap-shanghai"]
    );
    insta::assert_snapshot!("orphan_fleets_kept", text(&kept));

    let pruning = plan(&desired, &seen, PlanOptions { prune: true, ..Default::default() });
    assert_eq!(pruning.refusals.len(), 2, "a whole fleet goes only when allowed: {:?}", pruning.refusals);
    let pruned = plan(
        &desired,
        &seen,
        PlanOptions { prune: true, allow_mass_termination: true, ..Default::default() },
    );
    assert!(pruned.refusals.is_empty());
    assert_eq!(pruned.summary.terminate, 2);
    assert!(
        render_markdown(&pruned, "Target: test cloud")
            .contains("| old (orphan fleet, ap-guangzhou) | (no spec) | 0 | 1 | 0 | 0 | 0 | 1 |")
    );
}

/// Issue 12 §4: adopted instances count as present in the plan that adopts them (so only the
/// rest is created), differ where shown, and are refused when they are someone else's.
#[test]
fn adoption_counts_adoptees_and_refuses_what_is_not_free() {
    let mut g = group("frontend", vec![zone("ap-guangzhou-3", 3)]);
    g.adopt = vec!["ins-adopt001".into(), "ins-adopt002".into()];
    let desired = [fleet(vec![g])];
    let free = |id: &str| {
        let mut i = instance(id, "ap-guangzhou-3", "", "RUNNING");
        (i.fleet, i.group, i.template, i.token) = (None, None, None, None);
        i
    };
    let mut other_type = free("ins-adopt002");
    other_type.instance_type = "S5.SMALL1".into();
    other_type.name = "legacy-box".into();
    let mut seen = observed(vec![]);
    seen.get_mut("web").unwrap().adoptable = vec![free("ins-adopt001"), other_type];

    let p = plan(&desired, &seen, PlanOptions::default());
    assert!(p.refusals.is_empty(), "{:?}", p.refusals);
    let gp = &p.fleets[0].groups[0];
    assert_eq!(gp.present, 2);
    assert_eq!(gp.creates.iter().map(|c| c.count).sum::<u32>(), 1, "only the rest is created");
    assert!(gp.terminations.is_empty() && gp.updates.is_empty());
    assert_eq!(gp.adoptions.len(), 2);
    let template_tag = |a: &cvmfleet_plan::plan::Adoption| {
        a.tags.iter().find(|t| t.key == tags::TEMPLATE).map(|t| t.value.clone()).unwrap()
    };
    assert_eq!(template_tag(&gp.adoptions[0]), REPLACEMENT);
    assert_eq!(template_tag(&gp.adoptions[1]), cvmfleet_plan::adopt::ADOPTED_TEMPLATE);
    assert_eq!((p.summary.adopt, p.summary.create), (2, 1));
    insta::assert_snapshot!("adoption", text(&p));

    // Someone else's, already managed, or absent: refused, never skipped.
    let mut foreign = free("ins-adopt001");
    foreign.project = Some("other".into());
    let mut managed = free("ins-adopt002");
    managed.fleet = Some("api".into());
    managed.group = Some("backend".into());
    seen.get_mut("web").unwrap().adoptable = vec![foreign, managed];
    let refused = plan(&desired, &seen, PlanOptions::default());
    let messages: Vec<&str> = refused.refusals.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "cannot adopt ins-adopt001: it belongs to project other",
            "cannot adopt ins-adopt002: it is already managed by cvmfleet (fleet api, group backend)"
        ]
    );
    seen.get_mut("web").unwrap().adoptable.clear();
    let absent = plan(&desired, &seen, PlanOptions::default());
    assert_eq!(absent.refusals[0].message, "cannot adopt ins-adopt001: no such instance in ap-guangzhou");
}
