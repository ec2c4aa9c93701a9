//! Offerings and zones chosen from stock (issue 13): creates go to the first candidate with
//! stock, the choice is shown with why, and it never changes a ClientToken — two observers that
//! read different stock send the same token for the same slots.

use std::collections::BTreeMap;

use cvmfleet_plan::observed::tags;
use cvmfleet_plan::plan::{Create, TerminateReason};
use cvmfleet_plan::render::{RenderOptions, render_text};
use cvmfleet_plan::{
    DesiredGroup, ObservedFleet, ObservedInstance, OfferingState, Plan, PlanOptions, Stock, plan,
};
use cvmfleet_spec::{Capacity, Offering, OfferingPolicy, ZonePolicy};

use crate::world::{fleet, group, request_tag, running};

const Z3: &str = "ap-guangzhou-3";
const Z4: &str = "ap-guangzhou-4";

fn hourly(instance_type: &str) -> Offering {
    Offering {
        instance_type: instance_type.into(),
        charge_type: "POSTPAID_BY_HOUR".into(),
        market_options: None,
    }
}

fn offering_group(zones: &[(&str, u32)], zone_policy: ZonePolicy, rebalance: bool) -> DesiredGroup {
    let mut g = group(zones);
    g.template.instance_type = None;
    g.capacity = Capacity {
        offerings: vec![hourly("S5.MEDIUM2"), hourly("SA2.MEDIUM2")],
        zone_policy,
        offering_policy: OfferingPolicy::Priority,
        rebalance,
    };
    g
}

fn state(zone: &str, instance_type: &str, stock: Stock) -> OfferingState {
    OfferingState {
        zone: zone.into(),
        instance_type: instance_type.into(),
        charge_type: "POSTPAID_BY_HOUR".into(),
        stock,
        monthly_price: None,
    }
}

fn seen(instances: Vec<ObservedInstance>, market: Vec<OfferingState>) -> BTreeMap<String, ObservedFleet> {
    BTreeMap::from([("svc".to_owned(), ObservedFleet { instances, market, ..Default::default() })])
}

fn creates(plan: &Plan) -> &[Create] {
    &plan.fleets[0].groups[0].creates
}

/// The instances a create makes, as the cloud would list them: in the zone it launched in,
/// on the type it asked for, with its tags.
fn land(create: &Create, first: &mut u32) -> Vec<ObservedInstance> {
    let tag = |key: &str| request_tag(create, key);
    (0..create.count)
        .map(|_| {
            *first += 1;
            let mut i = running(&format!("ins-off{first:05}"), &create.zone, "");
            i.template = tag(tags::TEMPLATE);
            i.pool = tag(tags::POOL);
            i.token = create.request.client_token.clone();
            i.instance_type = create.request.instance_type.clone().unwrap_or_default();
            i.instance_charge_type = create.request.instance_charge_type.clone().unwrap_or_default();
            i
        })
        .collect()
}

fn text(plan: &Plan) -> String {
    render_text(plan, "test", RenderOptions { colour: false })
}

#[test]
fn a_sold_out_first_type_falls_back_in_its_zone_with_the_same_token() {
    let desired = [fleet(vec![offering_group(&[(Z3, 2), (Z4, 2)], ZonePolicy::Spread, false)])];
    let blind = plan(&desired, &seen(vec![], vec![]), PlanOptions::default());
    let short =
        plan(&desired, &seen(vec![], vec![state(Z3, "S5.MEDIUM2", Stock::SoldOut)]), PlanOptions::default());
    let (b, s) = (creates(&blind), creates(&short));
    assert_eq!(s.len(), 2);
    assert_eq!((s[0].zone.as_str(), s[0].request.instance_type.as_deref()), (Z3, Some("SA2.MEDIUM2")));
    assert_eq!((s[1].zone.as_str(), s[1].request.instance_type.as_deref()), (Z4, Some("S5.MEDIUM2")));
    assert_eq!(s[0].request.min_count, Some(1), "deliver what stock allows");
    // Observers that read different stock send the same token for the same slots.
    for (x, y) in b.iter().zip(s) {
        assert_eq!(x.request.client_token, y.request.client_token);
        assert_eq!(x.token_seed, y.token_seed);
    }
    insta::assert_snapshot!(text(&short));

    // Instances on the fallback type count as present: nothing more to do, no drift.
    let mut next = 0;
    let world: Vec<ObservedInstance> = s.iter().flat_map(|c| land(c, &mut next)).collect();
    let after = plan(
        &desired,
        &seen(world.clone(), vec![state(Z3, "S5.MEDIUM2", Stock::SoldOut)]),
        PlanOptions::default(),
    );
    assert!(after.is_empty(), "{}", text(&after));
    assert!(after.drift.is_empty(), "{:?}", after.drift);
    // Stock back: shown as on a fallback, kept (rebalance is off).
    let back = plan(&desired, &seen(world, vec![]), PlanOptions::default());
    assert!(back.is_empty());
    assert_eq!(back.fleets[0].groups[0].on_fallback.len(), 2);
    assert!(text(&back).contains("~ fallback 2 on SA2.MEDIUM2 in ap-guangzhou-3; the preferred S5.MEDIUM2 in ap-guangzhou-3 has stock (kept: rebalance is off)"), "{}", text(&back));
}

#[test]
fn under_spread_a_sold_out_zone_sends_its_slots_elsewhere_under_its_own_token() {
    let desired = [fleet(vec![offering_group(&[(Z3, 2), (Z4, 2)], ZonePolicy::Spread, true)])];
    let blind = plan(&desired, &seen(vec![], vec![]), PlanOptions::default());
    let zone_out =
        vec![state(Z3, "S5.MEDIUM2", Stock::SoldOut), state(Z3, "SA2.MEDIUM2", Stock::Unavailable)];
    let short = plan(&desired, &seen(vec![], zone_out.clone()), PlanOptions::default());
    let c = &creates(&short)[0];
    assert_eq!((c.zone.as_str(), c.home_zone.as_deref()), (Z4, Some(Z3)));
    assert_eq!(c.request.client_token, creates(&blind)[0].request.client_token);
    assert!(text(&short).contains("S5.MEDIUM2 sold out in ap-guangzhou-3, SA2.MEDIUM2 unavailable after a failed launch in ap-guangzhou-3 → S5.MEDIUM2 in ap-guangzhou-4"), "{}", text(&short));
    let mut next = 0;
    let world: Vec<ObservedInstance> = creates(&short).iter().flat_map(|c| land(c, &mut next)).collect();
    assert_eq!(world.iter().filter(|i| i.zone == Z4).count(), 4);
    // The displaced pair fill their home pool: nothing is surplus in Z4, nothing missing in Z3.
    let settled = plan(&desired, &seen(world.clone(), zone_out), PlanOptions::default());
    assert!(settled.is_empty(), "{}", text(&settled));
    // Stock returns; with rebalance they move home as a rolling replacement (surge first).
    let home = plan(&desired, &seen(world, vec![]), PlanOptions::default());
    let g = &home.fleets[0].groups[0];
    assert!(g.terminations.iter().all(|t| t.reason == TerminateReason::Rebalance && t.waits_for_launches));
    assert_eq!(g.terminations.len(), 1, "maxSurge 1: one at a time");
    assert_eq!((creates(&home)[0].zone.as_str(), creates(&home)[0].home_zone.as_deref()), (Z3, None));
    assert_ne!(
        creates(&home)[0].request.client_token,
        creates(&blind)[0].request.client_token,
        "the next generation"
    );
}

#[test]
fn under_priority_the_first_zone_fills_then_the_next() {
    let desired = [fleet(vec![offering_group(&[(Z3, 0), (Z4, 0)], ZonePolicy::Priority, false)])];
    let mut desired = desired;
    desired[0].groups[0].zones[0].replicas = 3;
    let open = plan(&desired, &seen(vec![], vec![]), PlanOptions::default());
    assert_eq!(creates(&open).iter().map(|c| (c.zone.as_str(), c.count)).collect::<Vec<_>>(), [(Z3, 3)]);
    let z3_out = vec![state(Z3, "S5.MEDIUM2", Stock::SoldOut), state(Z3, "SA2.MEDIUM2", Stock::SoldOut)];
    let moved = plan(&desired, &seen(vec![], z3_out), PlanOptions::default());
    assert_eq!(creates(&moved)[0].zone, Z4);
    assert_eq!(creates(&moved)[0].request.client_token, creates(&open)[0].request.client_token);
}

#[test]
fn a_group_nothing_can_place_says_so_and_creates_nothing() {
    let desired = [fleet(vec![offering_group(&[(Z3, 1), (Z4, 1)], ZonePolicy::Spread, false)])];
    let all_out: Vec<OfferingState> = [Z3, Z4]
        .iter()
        .flat_map(|z| [state(z, "S5.MEDIUM2", Stock::SoldOut), state(z, "SA2.MEDIUM2", Stock::SoldOut)])
        .collect();
    let p = plan(&desired, &seen(vec![], all_out), PlanOptions::default());
    assert!(creates(&p).is_empty());
    let g = &p.fleets[0].groups[0];
    assert_eq!(g.unplaced.iter().map(|u| (u.zone.as_str(), u.count)).collect::<Vec<_>>(), [(Z3, 1), (Z4, 1)]);
    assert_eq!(p.warnings.len(), 2);
    insta::assert_snapshot!(text(&p));
}

#[test]
fn an_instance_on_a_type_the_group_no_longer_accepts_is_drift() {
    let desired = [fleet(vec![offering_group(&[(Z3, 1)], ZonePolicy::Spread, false)])];
    let mut first = 0;
    let blind = plan(&desired, &seen(vec![], vec![]), PlanOptions::default());
    let mut world = land(&creates(&blind)[0], &mut first);
    world[0].instance_type = "S5.LARGE8".into();
    let p = plan(&desired, &seen(world, vec![]), PlanOptions::default());
    let g = &p.fleets[0].groups[0];
    assert_eq!(g.terminations.iter().map(|t| t.reason).collect::<Vec<_>>(), [TerminateReason::Changed]);
    assert!(p.drift.iter().any(|d| d.desired == "S5.MEDIUM2 or SA2.MEDIUM2"), "{:?}", p.drift);
}

#[test]
fn cheapest_first_orders_by_the_quoted_price() {
    let mut g = offering_group(&[(Z3, 1)], ZonePolicy::Spread, false);
    g.capacity.offering_policy = OfferingPolicy::Cheapest;
    let desired = [fleet(vec![g])];
    let priced =
        |t: &str, price: f64| OfferingState { monthly_price: Some(price), ..state(Z3, t, Stock::Available) };
    let p = plan(
        &desired,
        &seen(vec![], vec![priced("S5.MEDIUM2", 150.0), priced("SA2.MEDIUM2", 110.0)]),
        PlanOptions::default(),
    );
    assert_eq!(creates(&p)[0].request.instance_type.as_deref(), Some("SA2.MEDIUM2"));
    assert!(creates(&p)[0].passed_over.is_empty(), "the cheapest is the first choice, not a fallback");
}

#[test]
fn a_group_without_instance_types_sends_what_it_sent_before() {
    let desired = [fleet(vec![group(&[(Z3, 2)])])];
    let p = plan(&desired, &seen(vec![], vec![]), PlanOptions::default());
    let c = &creates(&p)[0];
    assert_eq!((c.offering.as_ref(), c.home_zone.as_ref(), c.request.min_count), (None, None, None));
    // A sold-out zone of a one-zone group: nowhere to go.
    let out =
        plan(&desired, &seen(vec![], vec![state(Z3, "S5.MEDIUM2", Stock::SoldOut)]), PlanOptions::default());
    assert_eq!(out.fleets[0].groups[0].unplaced[0].count, 2);
}

/// Issue 25 §9: a `zonePolicy: priority` group without `instanceTypes` sends `MinCount: 1`, so
/// its first zone takes what stock it has and the rest falls to the next zone next round; the
/// request digest (and so the ClientToken) is the one it had without `MinCount`.
#[test]
fn issue_25_priority_without_instance_types_sends_min_count_and_keeps_its_token() {
    let mut g = group(&[(Z4, 5), (Z3, 0)]);
    g.capacity.zone_policy = ZonePolicy::Priority;
    let desired = [fleet(vec![g])];
    let p = plan(&desired, &seen(vec![], vec![]), PlanOptions::default());
    let c = &creates(&p)[0];
    assert_eq!((c.zone.as_str(), c.count, c.offering.as_ref(), c.request.min_count), (Z4, 5, None, Some(1)));
    // The same group under `spread` (same home zone, no `MinCount`) sends the same token.
    let mut spread = desired.clone();
    spread[0].groups[0].capacity.zone_policy = ZonePolicy::Spread;
    let s = plan(&spread, &seen(vec![], vec![]), PlanOptions::default());
    assert_eq!(creates(&s)[0].request.min_count, None);
    assert_eq!(creates(&s)[0].request.client_token, c.request.client_token);
    // Three delivered in the first zone, the zone then sold out: the other two go to the next
    // zone under the home zone's pool, as the next generation.
    let mut first = 1;
    let mut landed = land(c, &mut first);
    landed.truncate(3);
    let next =
        plan(&desired, &seen(landed, vec![state(Z4, "S5.MEDIUM2", Stock::SoldOut)]), PlanOptions::default());
    let n = &creates(&next)[0];
    assert_eq!((n.zone.as_str(), n.count, n.home_zone.as_deref()), (Z3, 2, Some(Z4)));
    assert_ne!(n.request.client_token, c.request.client_token);
}
