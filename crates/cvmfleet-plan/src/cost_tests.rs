//! Unit tests of [`super`]: prices from quotes, the deltas and their signs, unknown prices and
//! the budget guard.

use std::collections::BTreeMap;

use cvmfleet_spec::MonthlyAmount;
use cvmfleet_wire::api::RunInstancesRequest;
use cvmfleet_wire::model::{InstanceChargePrepaid, InternetAccessible, ItemPrice, Price};
use cvmfleet_wire::vocab::ChargeUnit;

use super::*;
use crate::desired::{DesiredFleet, DesiredGroup};
use crate::observed::{ObservedFleet, ObservedInstance};
use crate::planner::{PlanOptions, plan};

const HASH: &str = "aaaaaaaaaaaaaaaa";
const ZONE: &str = "ap-guangzhou-3";

/// Hourly list prices of the fake cloud; a type not listed has no price.
fn hourly(instance_type: &str) -> Option<f64> {
    match instance_type {
        "S5.MEDIUM2" => Some(0.2),
        "S5.LARGE8" => Some(0.5),
        _ => None,
    }
}

/// What the fake cloud answers to a quote: hourly prices as they are, a prepaid month at 100
/// per hourly yuan, for the whole period.
fn answer(request: &RunInstancesRequest) -> Result<Price, String> {
    let ty = request.instance_type.as_deref().unwrap_or_default();
    let hour = hourly(ty).ok_or_else(|| format!("FailedOperation.InquiryPriceFailed: no price for {ty}"))?;
    let instance_price = match request.instance_charge_prepaid.as_ref() {
        Some(prepaid) if request.instance_charge_type.as_deref() == Some("PREPAID") => {
            #[allow(clippy::cast_precision_loss)]
            let period = hour * 100.0 * prepaid.period as f64;
            ItemPrice::prepaid(period * 2.0, period)
        }
        _ => ItemPrice::pay_as_you_go(hour * 2.0, hour, ChargeUnit::Hour),
    };
    Ok(Price { instance_price, bandwidth_price: ItemPrice::pay_as_you_go(0.0, 0.0, ChargeUnit::Hour) })
}

fn book_for(quotes: &[Quote]) -> PriceBook {
    let mut book = PriceBook::new();
    for quote in quotes {
        book.insert(
            quote.key.clone(),
            answer(&quote.request).and_then(|p| monthly_price(&quote.request, &p)),
        );
    }
    book
}

fn group(name: &str, instance_type: &str, replicas: u32) -> DesiredGroup {
    DesiredGroup {
        max_terminate_percent: 100,
        ..DesiredGroup::new(
            name,
            RunInstancesRequest {
                image_id: Some("img-pmqg1cw7".into()),
                instance_type: Some(instance_type.into()),
                instance_name: Some(name.into()),
                ..Default::default()
            },
            HASH,
        )
        .in_zone(ZONE, replicas)
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

fn running(id: &str, group: &str, instance_type: &str, template: &str) -> ObservedInstance {
    ObservedInstance {
        id: id.into(),
        zone: ZONE.into(),
        state: "RUNNING".into(),
        name: group.into(),
        security_groups: vec![],
        private_ips: vec![],
        created_time: format!("2026-01-01T00:00:{:02}Z", id.len()),
        subnet_id: String::new(),
        instance_type: instance_type.into(),
        image_id: "img-pmqg1cw7".into(),
        protected: false,
        fleet: Some("web".into()),
        group: Some(group.into()),
        template: Some(template.into()),
        token: Some(format!("t-{id}")),
        pool: Some(format!("{ZONE}/0")),
        project: Some("default".into()),
        instance_charge_type: "POSTPAID_BY_HOUR".into(),
        latest_error: None,
    }
}

fn observed(instances: Vec<ObservedInstance>) -> BTreeMap<String, ObservedFleet> {
    BTreeMap::from([("web".to_owned(), ObservedFleet { instances, ..Default::default() })])
}

/// Plans and prices with the fake cloud's prices.
fn priced(
    desired: &[DesiredFleet],
    seen: &BTreeMap<String, ObservedFleet>,
    options: PlanOptions,
) -> (Plan, Vec<Quote>) {
    let mut made = plan(desired, seen, options);
    let needed = quotes(&made, desired, seen);
    price(&mut made, desired, seen, &book_for(&needed), options);
    (made, needed)
}

fn cost(before: Option<f64>, after: Option<f64>, delta: Option<f64>) -> Option<Cost> {
    Some(Cost {
        currency: CURRENCY.into(),
        monthly_before: before,
        monthly_after: after,
        monthly_delta: delta,
    })
}

#[test]
fn hourly_prices_are_730_hours_and_prepaid_ones_a_share_of_their_period() {
    let hourly = RunInstancesRequest { instance_type: Some("S5.MEDIUM2".into()), ..Default::default() };
    let price = |instance_price| Price { instance_price, bandwidth_price: ItemPrice::default() };
    let month = monthly_price(&hourly, &price(ItemPrice::pay_as_you_go(0.4, 0.2, ChargeUnit::Hour))).unwrap();
    assert_eq!(month, MonthlyPrice { amount: 146.0, traffic_excluded: false });
    // A stepped price: the steady price (after 360 hours) is what a month costs.
    let stepped = ItemPrice {
        unit_price_discount_third_step: Some(0.1),
        ..ItemPrice::pay_as_you_go(0.4, 0.2, ChargeUnit::Hour)
    };
    assert!((monthly_price(&hourly, &price(stepped)).unwrap().amount - 73.0).abs() < 1e-9);

    let prepaid = RunInstancesRequest {
        instance_charge_type: Some("PREPAID".into()),
        instance_charge_prepaid: Some(InstanceChargePrepaid { period: 12, renew_flag: None }),
        ..hourly.clone()
    };
    // The discounted price of the period, not the original one.
    let year = monthly_price(&prepaid, &price(ItemPrice::prepaid(2400.0, 1200.0))).unwrap();
    assert!((year.amount - 100.0).abs() < 1e-9, "{year:?}");

    // Bandwidth by the Mbps-hour is in; traffic per GB is left out and flagged.
    let public = |kind: &str| RunInstancesRequest {
        internet_accessible: Some(InternetAccessible {
            internet_charge_type: Some(kind.into()),
            internet_max_bandwidth_out: Some(10),
            ..Default::default()
        }),
        ..hourly.clone()
    };
    let with_band = |band| Price {
        instance_price: ItemPrice::pay_as_you_go(0.2, 0.2, ChargeUnit::Hour),
        bandwidth_price: band,
    };
    let band = monthly_price(
        &public("BANDWIDTH_POSTPAID_BY_HOUR"),
        &with_band(ItemPrice::pay_as_you_go(0.63, 0.63, ChargeUnit::Hour)),
    )
    .unwrap();
    assert!((band.amount - (0.2 + 0.63) * 730.0).abs() < 1e-9 && !band.traffic_excluded);
    let traffic = monthly_price(
        &public("TRAFFIC_POSTPAID_BY_HOUR"),
        &with_band(ItemPrice::pay_as_you_go(0.8, 0.8, ChargeUnit::Gb)),
    )
    .unwrap();
    assert_eq!(traffic, MonthlyPrice { amount: 146.0, traffic_excluded: true });

    // No price is no price, not zero.
    assert!(monthly_price(&hourly, &Price::default()).unwrap_err().contains("UnitPriceDiscount"));
    assert!(monthly_price(&prepaid, &Price::default()).unwrap_err().contains("DiscountPrice"));
    let negative = price(ItemPrice::pay_as_you_go(-1.0, -1.0, ChargeUnit::Hour));
    assert!(monthly_price(&hourly, &negative).is_err());
}

#[test]
fn a_scale_up_adds_what_it_creates() {
    let desired = [fleet(vec![group("app", "S5.MEDIUM2", 4)])];
    let seen = observed(vec![
        running("ins-a", "app", "S5.MEDIUM2", HASH),
        running("ins-b", "app", "S5.MEDIUM2", HASH),
    ]);
    let (plan, quotes) = priced(&desired, &seen, PlanOptions::default());
    // The present instances share their quote with the create: one call for the group.
    assert_eq!(quotes.len(), 1, "{quotes:?}");
    assert_eq!(quotes[0].request.instance_count, Some(1));
    assert_eq!(quotes[0].describe(), "S5.MEDIUM2 POSTPAID_BY_HOUR in ap-guangzhou-3");
    assert_eq!(plan.fleets[0].groups[0].cost, cost(Some(292.0), Some(584.0), Some(292.0)));
    assert_eq!(plan.fleets[0].cost, plan.fleets[0].groups[0].cost);
    assert_eq!(plan.summary.cost, plan.fleets[0].cost);
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
}

#[test]
fn a_scale_down_saves_what_it_terminates() {
    let desired = [fleet(vec![group("app", "S5.MEDIUM2", 1)])];
    let seen = observed(vec![
        running("ins-a", "app", "S5.MEDIUM2", HASH),
        running("ins-b", "app", "S5.MEDIUM2", HASH),
        running("ins-c", "app", "S5.MEDIUM2", HASH),
    ]);
    let (plan, _) = priced(&desired, &seen, PlanOptions::default());
    assert_eq!(plan.summary.terminate, 2);
    assert_eq!(plan.summary.cost, cost(Some(438.0), Some(146.0), Some(-292.0)));
}

#[test]
fn a_template_type_change_costs_the_whole_replacement_not_one_step() {
    // Four instances of an older template on S5.MEDIUM2; the template now says S5.LARGE8.
    // The default rollout replaces one per step; the cost is that of all four replaced.
    let desired = [fleet(vec![group("app", "S5.LARGE8", 4)])];
    let old = "bbbbbbbbbbbbbbbb";
    let seen = observed((0..4).map(|i| running(&format!("ins-{i}"), "app", "S5.MEDIUM2", old)).collect());
    let (plan, quotes) = priced(&desired, &seen, PlanOptions::default());
    let g = &plan.fleets[0].groups[0];
    assert_eq!((g.creates.len(), g.terminations.len(), g.replaced_later.len()), (1, 1, 3), "{g:#?}");
    assert_eq!(quotes.len(), 2, "the old type and the new one");
    // Before: 4 × 146; after: 4 × 365.
    assert_eq!(g.cost, cost(Some(584.0), Some(1460.0), Some(876.0)));
}

#[test]
fn an_instance_on_another_type_is_priced_as_what_it_is() {
    let mut app = group("app", "S5.MEDIUM2", 2);
    app.policies.drift.instance_type = cvmfleet_spec::DriftPolicy::Report;
    let desired = [fleet(vec![app])];
    let seen = observed(vec![
        running("ins-a", "app", "S5.MEDIUM2", HASH),
        running("ins-b", "app", "S5.LARGE8", HASH),
    ]);
    let (plan, quotes) = priced(&desired, &seen, PlanOptions::default());
    assert!(plan.is_empty());
    assert_eq!(quotes.len(), 2);
    assert_eq!(plan.summary.cost, cost(Some(511.0), Some(511.0), Some(0.0)));
}

#[test]
fn a_prepaid_group_costs_its_discounted_period_by_the_month() {
    let mut app = group("app", "S5.MEDIUM2", 2);
    app.template.instance_charge_type = Some("PREPAID".into());
    app.template.instance_charge_prepaid = Some(InstanceChargePrepaid { period: 12, renew_flag: None });
    let desired = [fleet(vec![app])];
    let mut one = running("ins-a", "app", "S5.MEDIUM2", HASH);
    one.instance_charge_type = "PREPAID".into();
    let (plan, quotes) = priced(&desired, &observed(vec![one]), PlanOptions::default());
    assert_eq!(quotes.len(), 1, "{quotes:?}");
    assert_eq!(quotes[0].describe(), "S5.MEDIUM2 PREPAID (12 months) in ap-guangzhou-3");
    // 0.2 × 100 per month: 20, of the discounted 12-month price.
    assert_eq!(plan.summary.cost, cost(Some(20.0), Some(40.0), Some(20.0)));
}

#[test]
fn an_unknown_price_is_unknown_not_zero_and_never_blocks() {
    let desired = [fleet(vec![group("app", "S5.MEDIUM2", 2), group("gpu", "GN10X.2XLARGE40", 1)])];
    let seen = observed(vec![running("ins-a", "app", "S5.MEDIUM2", HASH)]);
    let (plan, quotes) = priced(&desired, &seen, PlanOptions::default());
    assert_eq!(quotes.len(), 2);
    let groups = &plan.fleets[0].groups;
    assert_eq!(groups[0].cost, cost(Some(146.0), Some(292.0), Some(146.0)));
    // Nothing of the GPU group is present: it cost 0 before; what it adds is unknown.
    assert_eq!(groups[1].cost, cost(Some(0.0), None, None));
    assert_eq!(plan.summary.cost, cost(Some(146.0), None, None));
    assert!(plan.refusals.is_empty());
    assert_eq!(plan.warnings.len(), 1, "{:?}", plan.warnings);
    assert!(
        plan.warnings[0].starts_with(
            "no price for 1 configuration(s): GN10X.2XLARGE40 POSTPAID_BY_HOUR in ap-guangzhou-3 \
             (FailedOperation.InquiryPriceFailed: no price for GN10X.2XLARGE40)"
        ),
        "{}",
        plan.warnings[0]
    );
    // Not priced at all: every cost unknown, the present instance's too.
    let mut unpriced = crate::planner::plan(&desired, &seen, PlanOptions::default());
    price(&mut unpriced, &desired, &seen, &PriceBook::new(), PlanOptions::default());
    assert_eq!(unpriced.summary.cost, cost(None, None, None));
}

#[test]
fn the_budget_guard_refuses_a_plan_over_the_bound_unless_allowed() {
    let bound = |v| MonthlyAmount::new(v);
    let mut web = fleet(vec![group("app", "S5.MEDIUM2", 3), group("api", "S5.LARGE8", 1)]);
    web.max_monthly_cost_increase = bound(200.0);
    let seen = observed(vec![running("ins-a", "app", "S5.MEDIUM2", HASH)]);
    // +292 for app and +365 for api: the fleet's bound of 200 is exceeded.
    let (plan, _) = priced(&[web.clone()], &seen, PlanOptions::default());
    assert_eq!(plan.refusals.len(), 1, "{:?}", plan.refusals);
    assert_eq!((plan.refusals[0].fleet.as_str(), plan.refusals[0].group.as_deref()), ("web", None));
    assert_eq!(
        plan.refusals[0].message,
        "would add ¥657.00/month to the fleet's monthly cost, more than its maxMonthlyCostIncrease of ¥200.00; \
         re-run with --allow-cost-increase if this is intended"
    );
    let allowed = PlanOptions { allow_cost_increase: true, ..PlanOptions::default() };
    assert!(priced(&[web.clone()], &seen, allowed).0.refusals.is_empty());

    // A group's own bound takes it out of the fleet's sum and checks it alone.
    web.groups[1].policies.max_monthly_cost_increase = bound(300.0);
    let (plan, _) = priced(&[web.clone()], &seen, PlanOptions::default());
    let scopes: Vec<Option<&str>> = plan.refusals.iter().map(|r| r.group.as_deref()).collect();
    assert_eq!(scopes, [Some("api"), None], "{:?}", plan.refusals);
    web.max_monthly_cost_increase = bound(292.0);
    web.groups[1].policies.max_monthly_cost_increase = bound(365.0);
    assert!(
        priced(&[web.clone()], &seen, PlanOptions::default()).0.refusals.is_empty(),
        "at the bound is within it"
    );

    // A saving never refuses, even under a bound of 0.
    web.max_monthly_cost_increase = bound(0.0);
    let shrink = fleet(vec![group("app", "S5.MEDIUM2", 1)]);
    let shrink = DesiredFleet { max_monthly_cost_increase: bound(0.0), ..shrink };
    let three = observed((0..3).map(|i| running(&format!("ins-{i}"), "app", "S5.MEDIUM2", HASH)).collect());
    assert!(priced(&[shrink], &three, PlanOptions::default()).0.refusals.is_empty());
}

#[test]
fn an_unknown_price_turns_the_guard_into_a_warning() {
    let mut web = fleet(vec![group("gpu", "GN10X.2XLARGE40", 2)]);
    web.max_monthly_cost_increase = MonthlyAmount::new(1.0);
    let (plan, _) = priced(&[web], &observed(vec![]), PlanOptions::default());
    assert!(plan.refusals.is_empty());
    assert!(
        plan.warnings.iter().any(|w| w
            == "fleet web: the fleet's maxMonthlyCostIncrease of ¥1.00 could not be checked: a price the plan needs is unknown"),
        "{:?}",
        plan.warnings
    );
}

#[test]
fn orphans_count_while_kept_and_save_when_pruned() {
    let desired = [fleet(vec![group("app", "S5.MEDIUM2", 1)])];
    let seen = observed(vec![
        running("ins-a", "app", "S5.MEDIUM2", HASH),
        running("ins-o", "gone", "S5.LARGE8", HASH),
    ]);
    let (kept, quotes) = priced(&desired, &seen, PlanOptions::default());
    assert_eq!(quotes.len(), 2);
    assert_eq!(kept.summary.cost, cost(Some(511.0), Some(511.0), Some(0.0)));
    let prune = PlanOptions { prune: true, ..PlanOptions::default() };
    let (pruned, _) = priced(&desired, &seen, prune);
    assert_eq!(pruned.summary.cost, cost(Some(511.0), Some(146.0), Some(-365.0)));
}

#[test]
fn dedicated_host_instances_are_not_quoted_and_unknown() {
    let mut app = group("app", "S5.MEDIUM2", 1);
    app.template.instance_charge_type = Some("CDHPAID".into());
    let (plan, quotes) = priced(&[fleet(vec![app])], &observed(vec![]), PlanOptions::default());
    assert!(quotes.is_empty());
    assert_eq!(plan.summary.cost, cost(Some(0.0), None, None));
    assert!(
        plan.warnings[0].contains("CDHPAID instances are billed with what hosts them"),
        "{:?}",
        plan.warnings
    );
}

#[test]
fn money_is_grouped_signed_and_rounded_to_the_fen() {
    assert_eq!(money(1234.567), "¥1,234.57");
    assert_eq!(money(-3.2), "-¥3.20");
    assert_eq!(money(-0.001), "¥0.00");
    assert_eq!(money(1_000_000.0), "¥1,000,000.00");
    assert_eq!(money(999.999), "¥1,000.00");
}
