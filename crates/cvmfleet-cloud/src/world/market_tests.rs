//! Unit tests of stock, prices and spot instances (issues 13 and 14), with the clock as a plain
//! number.

use std::sync::Arc;

use cvmfleet_wire::api::{
    DescribeZoneInstanceConfigInfosRequest, InquiryPriceRunInstancesRequest, RunInstancesRequest,
    TerminateInstancesRequest,
};
use cvmfleet_wire::codes;
use cvmfleet_wire::model::{
    Filter, InstanceChargePrepaid, InstanceMarketOptionsRequest, InstanceTypeQuotaItem, InternetAccessible,
    Placement, SpotMarketOptions, SystemDisk,
};
use cvmfleet_wire::vocab::{EMULATED_SPOT_RECLAIM_MESSAGE, InstanceChargeType};

use super::*;
use crate::api_error::ApiError;
use crate::catalog::Catalog;
use crate::stock::StockSpec;

const T0: i64 = 1_700_000_000_000;
const ZONE: &str = "ap-guangzhou-3";
const TYPE: &str = "S5.MEDIUM2";

fn world_with(catalog: Catalog) -> World {
    let settings = Settings {
        boot_delay_ms: 3_000,
        stop_delay_ms: 2_000,
        terminate_delay_ms: 3_000,
        launch_failed_retention_ms: 60_000,
        instance_quota: None,
        token_mode: TokenMode::Lenient,
        unqualified_secret_ids: Default::default(),
        account_uin: crate::DEFAULT_ACCOUNT_UIN.to_owned(),
    };
    World::new(Arc::new(CatalogIndex::new(catalog)), settings, 42)
}

fn world() -> World {
    world_with(Catalog::builtin())
}

fn ctx(now_ms: i64) -> Ctx {
    Ctx { secret_id: "AKIDtest".into(), region: "ap-guangzhou".into(), request_id: "req-1".into(), now_ms }
}

fn req(count: i64, charge: InstanceChargeType) -> RunInstancesRequest {
    RunInstancesRequest {
        placement: Some(Placement { zone: ZONE.into(), ..Placement::default() }),
        image_id: Some("img-pmqg1cw7".into()),
        instance_type: Some(TYPE.into()),
        instance_charge_type: Some(charge.as_str().into()),
        instance_count: Some(count),
        ..RunInstancesRequest::default()
    }
}

fn on_demand(count: i64) -> RunInstancesRequest {
    req(count, InstanceChargeType::PostpaidByHour)
}

fn run_with(
    w: &mut World,
    now: i64,
    r: &RunInstancesRequest,
    fate: LaunchFate,
) -> Result<Vec<String>, ApiError> {
    w.run_instances(&ctx(now), r, &mut |_| fate).map(|(resp, _)| resp.instance_id_set)
}

fn run(w: &mut World, now: i64, r: &RunInstancesRequest) -> Result<Vec<String>, ApiError> {
    run_with(w, now, r, LaunchFate::default())
}

fn set(w: &mut World, charge: Option<InstanceChargeType>, available: Option<u64>) -> Mutation {
    w.set_stock(&[StockSpec::new(ZONE, TYPE, charge, available)]).unwrap()
}

fn left(w: &World, charge: InstanceChargeType) -> Option<u64> {
    w.available(&Offering::new(ZONE, TYPE, charge.as_str()))
}

fn state_of(w: &World, id: &str) -> String {
    w.record_by_id(id).map(|r| r.instance.instance_state.clone()).unwrap_or_else(|| "GONE".into())
}

#[test]
fn creates_consume_stock_and_terminations_return_it_issue_13() {
    let mut w = world();
    let charge = InstanceChargeType::PostpaidByHour;
    assert_eq!(left(&w, charge), None, "unlimited by default");
    set(&mut w, Some(charge), Some(3));
    let first = run(&mut w, T0, &on_demand(2)).unwrap();
    assert_eq!(left(&w, charge), Some(1));
    let short = run(&mut w, T0, &on_demand(2)).unwrap_err();
    assert_eq!(short.code, codes::RESOURCE_INSUFFICIENT_SPECIFIED_INSTANCE_TYPE, "{short}");
    run(&mut w, T0, &on_demand(1)).unwrap();
    let dry = RunInstancesRequest { dry_run: Some(true), ..on_demand(1) };
    assert_eq!(run(&mut w, T0, &dry).unwrap_err().code, codes::RESOURCES_SOLD_OUT_SPECIFIED_INSTANCE_TYPE);
    assert_eq!(
        run(&mut w, T0, &on_demand(1)).unwrap_err().code,
        codes::RESOURCES_SOLD_OUT_SPECIFIED_INSTANCE_TYPE
    );
    // Other charge types and zones are untouched.
    assert_eq!(left(&w, InstanceChargeType::Prepaid), None);
    // A parameter error comes before the stock error.
    let bad = RunInstancesRequest { image_id: Some("img-nothere0".into()), ..on_demand(1) };
    assert_eq!(run(&mut w, T0, &bad).unwrap_err().code, codes::INVALID_IMAGE_ID_NOT_FOUND);

    w.advance(T0 + 3_000);
    let term = TerminateInstancesRequest { instance_ids: first, ..TerminateInstancesRequest::default() };
    w.terminate(&ctx(T0 + 4_000), &term).unwrap();
    assert_eq!(left(&w, charge), Some(0), "held until gone");
    w.advance(T0 + 7_000);
    assert_eq!(left(&w, charge), Some(2));
    let dry = RunInstancesRequest { dry_run: Some(true), ..on_demand(2) };
    assert_eq!(run(&mut w, T0 + 7_000, &dry).unwrap_err().code, codes::DRY_RUN_OPERATION);
    // Unlimited again.
    set(&mut w, None, None);
    run(&mut w, T0 + 7_000, &on_demand(50)).unwrap();
    assert_eq!(left(&w, charge), None);
}

#[test]
fn min_count_delivers_what_stock_allows_issue_13() {
    let mut w = world();
    set(&mut w, None, Some(3));
    let partial = RunInstancesRequest { min_count: Some(2), ..on_demand(5) };
    let ids = run(&mut w, T0, &partial).unwrap();
    assert_eq!(ids.len(), 3);
    assert_eq!(left(&w, InstanceChargeType::PostpaidByHour), Some(0));
    let again = RunInstancesRequest { min_count: Some(1), ..on_demand(5) };
    let err = run(&mut w, T0, &again).unwrap_err();
    assert_eq!(err.code, codes::RESOURCE_INSUFFICIENT_INSUFFICIENT_OFFERING_MINIMUM, "{err}");
    for (min, count) in [(0, 5), (6, 5), (-1, 1)] {
        let bad = RunInstancesRequest { min_count: Some(min), ..on_demand(count) };
        assert_eq!(
            run(&mut w, T0, &bad).unwrap_err().code,
            codes::INVALID_PARAMETER_VALUE_RANGE,
            "{min}/{count}"
        );
    }
    // With enough stock MinCount changes nothing.
    set(&mut w, None, None);
    assert_eq!(
        run(&mut w, T0, &RunInstancesRequest { min_count: Some(1), ..on_demand(4) }).unwrap().len(),
        4
    );
}

#[test]
fn a_replayed_token_returns_the_original_instances_whatever_the_stock_issue_13() {
    let mut w = world();
    set(&mut w, None, Some(2));
    let tokened = RunInstancesRequest { client_token: Some("slot-0".into()), ..on_demand(2) };
    let first = run(&mut w, T0, &tokened).unwrap();
    assert_eq!(left(&w, InstanceChargeType::PostpaidByHour), Some(0));
    assert_eq!(run(&mut w, T0 + 1, &tokened).unwrap(), first);
    set(&mut w, None, Some(0));
    assert_eq!(run(&mut w, T0 + 2, &tokened).unwrap(), first);
    assert_eq!(w.len(), 2);
}

#[test]
fn a_whole_zone_sold_out_has_its_own_code() {
    let mut w = world();
    let types: Vec<String> = w
        .catalog
        .catalog
        .instance_types
        .iter()
        .filter(|t| t.sold_in(ZONE))
        .map(|t| t.instance_type.clone())
        .collect();
    let charge = Some(InstanceChargeType::PostpaidByHour);
    let entries: Vec<StockSpec> = types.iter().map(|t| StockSpec::new(ZONE, t, charge, Some(0))).collect();
    w.set_stock(&entries).unwrap();
    let err = run(&mut w, T0, &on_demand(1)).unwrap_err();
    assert_eq!(err.code, codes::RESOURCE_INSUFFICIENT_AVAILABILITY_ZONE_SOLD_OUT);
    w.set_stock(&[StockSpec::new(ZONE, "S5.LARGE8", charge, Some(1))]).unwrap();
    assert_eq!(
        run(&mut w, T0, &on_demand(1)).unwrap_err().code,
        codes::RESOURCES_SOLD_OUT_SPECIFIED_INSTANCE_TYPE
    );
    // Spot has its own shortage code.
    set(&mut w, Some(InstanceChargeType::Spotpaid), Some(1));
    let spot = req(2, InstanceChargeType::Spotpaid);
    assert_eq!(
        run(&mut w, T0, &spot).unwrap_err().code,
        codes::INVALID_PARAMETER_VALUE_INSUFFICIENT_OFFERING
    );
    // Unknown offerings are refused whole.
    assert!(w.set_stock(&[StockSpec::new("ap-guangzhou-9", TYPE, None, Some(1))]).is_err());
    assert!(
        w.set_stock(&[StockSpec::new(ZONE, "S6.MEDIUM4", None, Some(1))])
            .unwrap_err()
            .contains("does not sell")
    );
}

fn spot_bid(price: Option<&str>) -> RunInstancesRequest {
    RunInstancesRequest {
        instance_market_options: Some(InstanceMarketOptionsRequest {
            market_type: Some("spot".into()),
            spot_options: Some(SpotMarketOptions {
                max_price: price.map(str::to_owned),
                spot_instance_type: Some("one-time".into()),
            }),
        }),
        ..req(1, InstanceChargeType::Spotpaid)
    }
}

#[test]
fn spot_bids_are_checked_against_the_spot_price_issue_14() {
    let mut w = world();
    // S5.MEDIUM2 spot costs 0.0412 an hour in the built-in table.
    let ids = run(&mut w, T0, &spot_bid(Some("0.05"))).unwrap();
    assert_eq!(w.record_by_id(&ids[0]).unwrap().instance.instance_charge_type, "SPOTPAID");
    assert_eq!(
        run(&mut w, T0, &spot_bid(Some("0.01"))).unwrap_err().code,
        codes::INVALID_PARAMETER_VALUE_INSUFFICIENT_PRICE
    );
    assert_eq!(run(&mut w, T0, &spot_bid(None)).unwrap_err().code, codes::MISSING_PARAMETER);
    assert_eq!(run(&mut w, T0, &spot_bid(Some("cheap"))).unwrap_err().code, codes::INVALID_PARAMETER_VALUE);
    // Without market options a spot instance bids the current price.
    run(&mut w, T0, &req(1, InstanceChargeType::Spotpaid)).unwrap();
    // On another charge type the options are checked but otherwise ignored.
    let ignored = RunInstancesRequest { instance_charge_type: None, ..spot_bid(Some("0.01")) };
    let ids = run(&mut w, T0, &ignored).unwrap();
    assert_eq!(w.record_by_id(&ids[0]).unwrap().instance.instance_charge_type, "POSTPAID_BY_HOUR");
}

#[test]
fn launches_in_a_low_offering_may_lose_their_stock_after_acceptance_issue_13() {
    let mut w = world();
    let charge = InstanceChargeType::PostpaidByHour;
    set(&mut w, Some(charge), Some(5));
    let vanish = LaunchFate { stock_vanishes: true, ..LaunchFate::default() };
    let mut draws = Vec::new();
    let (resp, mutation) = w
        .run_instances(&ctx(T0), &on_demand(2), &mut |d| {
            draws.push(d);
            vanish
        })
        .unwrap();
    assert_eq!(draws, [LaunchDraw { low_stock: true, spot: false }; 2]);
    assert_eq!(mutation.stock.len(), 1, "the vanished units are journaled");
    assert_eq!(left(&w, charge), Some(3));
    let journal = mutation.clone();
    w.advance(T0 + 3_000);
    for id in &resp.instance_id_set {
        let i = &w.record_by_id(id).unwrap().instance;
        assert_eq!(i.instance_state, "LAUNCH_FAILED");
        let message = i.latest_operation_error_msg.as_deref().unwrap_or_default();
        assert!(message.starts_with(codes::RESOURCE_INSUFFICIENT_SPECIFIED_INSTANCE_TYPE), "{message}");
    }
    assert_eq!(left(&w, charge), Some(3), "vanished stock does not come back");
    // An offering that is not low never loses stock.
    set(&mut w, Some(charge), Some(50));
    let ids = run_with(&mut w, T0 + 3_000, &on_demand(1), vanish).unwrap();
    w.advance(T0 + 6_000);
    assert_eq!(state_of(&w, &ids[0]), "RUNNING");

    // The journal replays to the same stock.
    let mut replay = world();
    replay.set_stock(&[StockSpec::new(ZONE, TYPE, Some(charge), Some(5))]).unwrap();
    replay.apply(journal);
    replay.advance(T0 + 3_000);
    assert_eq!(left(&replay, charge), Some(3));
}

#[test]
fn stock_survives_a_snapshot_and_the_catalog_applies_where_the_state_is_silent() {
    let mut catalog = Catalog::builtin();
    catalog.stock = vec![
        StockSpec::new(ZONE, TYPE, None, Some(4)),
        StockSpec::new(ZONE, "SA2.MEDIUM4", Some(InstanceChargeType::Prepaid), Some(0)),
    ];
    let mut w = world_with(catalog.clone());
    assert_eq!(left(&w, InstanceChargeType::Spotpaid), Some(4));
    run(&mut w, T0, &on_demand(1)).unwrap();
    set(&mut w, Some(InstanceChargeType::Spotpaid), Some(1));
    let snapshot = w.snapshot();
    let settings = w.settings.clone();
    let back = World::from_snapshot(Arc::new(CatalogIndex::new(catalog)), settings, snapshot);
    assert_eq!(left(&back, InstanceChargeType::PostpaidByHour), Some(3));
    assert_eq!(left(&back, InstanceChargeType::Spotpaid), Some(1));
    let view = back.stock_view();
    assert_eq!(view.len(), 5, "{view:?}");
    let sa2 = view.iter().find(|v| v.instance_type == "SA2.MEDIUM4").unwrap();
    assert_eq!((sa2.charge_type.as_str(), sa2.available, sa2.in_use), ("PREPAID", 0, 0));
    let postpaid =
        view.iter().find(|v| v.instance_type == TYPE && v.charge_type == "POSTPAID_BY_HOUR").unwrap();
    assert_eq!((postpaid.available, postpaid.in_use), (3, 1));
}

#[test]
fn spot_instances_are_reclaimed_at_their_drawn_time_or_on_demand_issue_14() {
    let mut w = world();
    let reclaim = LaunchFate { reclaim_after_ms: Some(10_000), ..LaunchFate::default() };
    let spot = req(1, InstanceChargeType::Spotpaid);
    let ids = run_with(&mut w, T0, &spot, reclaim).unwrap();
    let on_demand_ids = run_with(&mut w, T0, &on_demand(1), reclaim).unwrap();
    w.advance(T0 + 12_999);
    assert_eq!(state_of(&w, &ids[0]), "RUNNING");
    w.advance(T0 + 13_000);
    let i = &w.record_by_id(&ids[0]).unwrap().instance;
    assert_eq!(i.instance_state, "TERMINATING");
    assert_eq!(i.latest_operation_error_msg.as_deref(), Some(EMULATED_SPOT_RECLAIM_MESSAGE));
    assert_eq!(w.reclaims().len(), 1);
    assert_eq!((w.reclaims()[0].by.as_str(), w.reclaims()[0].at_ms), ("rate", T0 + 13_000));
    w.advance(T0 + 16_000);
    assert_eq!(state_of(&w, &ids[0]), "GONE");
    assert_eq!(state_of(&w, &on_demand_ids[0]), "RUNNING", "only spot instances are reclaimed");

    // On demand, by ID or by count.
    let a = run(&mut w, T0 + 16_000, &spot).unwrap();
    let b = run(&mut w, T0 + 16_000, &req(2, InstanceChargeType::Spotpaid)).unwrap();
    let by_id = SpotReclaim { instance_ids: a.clone(), ..SpotReclaim::default() };
    let (reclaimed, mutation) = w.reclaim_spot(&by_id, T0 + 17_000).unwrap();
    assert_eq!((reclaimed, mutation.put.len()), (a.clone(), 1));
    assert!(w.reclaim_spot(&by_id, T0 + 17_000).unwrap_err().contains("not a live SPOTPAID"));
    let not_spot = SpotReclaim { instance_ids: on_demand_ids, ..SpotReclaim::default() };
    assert!(w.reclaim_spot(&not_spot, T0 + 17_000).is_err());
    let (reclaimed, _) =
        w.reclaim_spot(&SpotReclaim { count: Some(5), ..SpotReclaim::default() }, T0 + 17_000).unwrap();
    assert_eq!(reclaimed, b);
    assert!(w.reclaim_spot(&SpotReclaim::default(), T0).is_err());
    assert_eq!(w.reclaims().iter().filter(|r| r.by == "admin").count(), 3);
}

fn describe(w: &World, filters: &[(&str, &[&str])]) -> Result<Vec<InstanceTypeQuotaItem>, ApiError> {
    let filters = filters.iter().map(|(name, values)| Filter::new(*name, values.iter().copied())).collect();
    let r = DescribeZoneInstanceConfigInfosRequest { filters: Some(filters) };
    w.describe_zone_configs("ap-guangzhou", &r).map(|resp| resp.instance_type_quota_set)
}

#[test]
fn zone_configs_carry_stock_and_prices_issue_13_14() {
    let mut w = world();
    set(&mut w, Some(InstanceChargeType::PostpaidByHour), Some(0));
    set(&mut w, Some(InstanceChargeType::Spotpaid), Some(5));
    let items = describe(&w, &[("zone", &[ZONE]), ("instance-type", &[TYPE])]).unwrap();
    let by_charge = |c: &str| items.iter().find(|i| i.instance_charge_type == c).unwrap();
    assert_eq!(items.len(), 3, "PREPAID, POSTPAID_BY_HOUR, SPOTPAID");
    let postpaid = by_charge("POSTPAID_BY_HOUR");
    assert_eq!((postpaid.status.as_str(), postpaid.status_category.as_str()), ("SOLD_OUT", "WithoutStock"));
    assert_eq!(postpaid.price.unit_price_discount, Some(0.206));
    let spot = by_charge("SPOTPAID");
    assert_eq!((spot.status.as_str(), spot.status_category.as_str()), ("SELL", "UnderStock"));
    let prepaid = by_charge("PREPAID");
    assert_eq!(prepaid.status_category, "EnoughStock");
    assert_eq!(prepaid.price.discount_price, Some(75.19));
    assert_eq!((prepaid.cpu, prepaid.memory, prepaid.instance_family.as_str()), (2, 2, "S5"));

    let spot_only =
        describe(&w, &[("instance-charge-type", &["SPOTPAID"]), ("instance-family", &["SA2"])]).unwrap();
    assert!(!spot_only.is_empty() && spot_only.iter().all(|i| i.instance_charge_type == "SPOTPAID"));
    assert!(spot_only.iter().all(|i| i.instance_family == "SA2"));
    let zones: std::collections::BTreeSet<&str> = spot_only.iter().map(|i| i.zone.as_str()).collect();
    assert_eq!(zones.len(), 5, "every zone of the region: {zones:?}");
    assert!(describe(&w, &[("instance-charge-type", &["CDHPAID"])]).unwrap().is_empty());

    let sorted = describe(&w, &[("zone", &[ZONE]), ("sort-keys", &["cpu:desc"])]).unwrap();
    assert!(sorted.windows(2).all(|p| p[0].cpu >= p[1].cpu));
    assert_eq!(sorted.first().map(|i| i.instance_type.as_str()), Some("S5.16XLARGE256"));

    for (filters, code) in [
        (vec![("zone", &["ap-hongkong-1"][..])], codes::INVALID_ZONE_MISMATCH_REGION),
        (vec![("color", &["red"][..])], codes::INVALID_FILTER),
        (vec![("zone", &[][..])], codes::INVALID_FILTER),
        (vec![("instance-charge-type", &["FREE"][..])], codes::INVALID_PARAMETER_VALUE),
        (vec![("sort-keys", &["price:asc"][..])], codes::INVALID_PARAMETER_VALUE),
    ] {
        assert_eq!(describe(&w, &filters).unwrap_err().code, code, "{filters:?}");
    }
    let too_many: Vec<(&str, &[&str])> = vec![("zone", &[ZONE]); 11];
    assert_eq!(describe(&w, &too_many).unwrap_err().code, codes::INVALID_PARAMETER_VALUE_LIMIT_EXCEEDED);
}

fn quote(w: &World, r: &RunInstancesRequest) -> Result<cvmfleet_wire::model::Price, ApiError> {
    w.inquiry_price(&ctx(T0), &InquiryPriceRunInstancesRequest::from_run(r)).map(|resp| resp.price)
}

#[test]
fn quotes_are_validated_like_creates_and_price_the_whole_request_issue_14() {
    let mut w = world();
    let mut hourly = on_demand(3);
    hourly.system_disk =
        Some(SystemDisk { disk_type: Some("CLOUD_PREMIUM".into()), disk_size: Some(50), disk_id: None });
    hourly.internet_accessible = Some(InternetAccessible {
        internet_charge_type: Some("TRAFFIC_POSTPAID_BY_HOUR".into()),
        internet_max_bandwidth_out: Some(10),
        ..InternetAccessible::default()
    });
    let price = quote(&w, &hourly).unwrap();
    // 3 × (0.206 + 50 × 0.0005)
    assert_eq!(price.instance_price.unit_price_discount, Some(0.693));
    assert_eq!(price.bandwidth_price.charge_unit.as_deref(), Some("GB"));
    let prepaid = RunInstancesRequest {
        instance_charge_type: Some("PREPAID".into()),
        instance_charge_prepaid: Some(InstanceChargePrepaid { period: 12, renew_flag: None }),
        instance_count: Some(1),
        internet_accessible: None,
        ..hourly.clone()
    };
    // 12 × (75.19 + 50 × 0.35)
    assert_eq!(quote(&w, &prepaid).unwrap().instance_price.discount_price, Some(1112.28));
    // Spot discounts CPU and memory only: 0.0412 + the default 50 GiB CLOUD_PREMIUM system disk.
    let spot = quote(&w, &req(1, InstanceChargeType::Spotpaid)).unwrap();
    assert_eq!(spot.instance_price.unit_price_discount, Some(0.0662));

    // Validation is RunInstances'.
    let elsewhere = RunInstancesRequest {
        placement: Some(Placement { zone: "ap-hongkong-1".into(), ..Placement::default() }),
        ..hourly.clone()
    };
    assert_eq!(quote(&w, &elsewhere).unwrap_err().code, codes::INVALID_ZONE_MISMATCH_REGION);
    let period = RunInstancesRequest {
        instance_charge_prepaid: Some(InstanceChargePrepaid { period: 13, renew_flag: None }),
        ..prepaid
    };
    assert_eq!(quote(&w, &period).unwrap_err().code, codes::INVALID_PERIOD);
    let cdh = RunInstancesRequest { instance_charge_type: Some("CDHPAID".into()), ..hourly.clone() };
    assert_eq!(quote(&w, &cdh).unwrap_err().code, codes::INVALID_PARAMETER_VALUE);
    // Partial stock does not refuse a quote; none left does.
    set(&mut w, None, Some(1));
    quote(&w, &hourly).unwrap();
    set(&mut w, None, Some(0));
    assert_eq!(quote(&w, &hourly).unwrap_err().code, codes::RESOURCES_SOLD_OUT_SPECIFIED_INSTANCE_TYPE);
    assert_eq!(w.len(), 0, "a quote creates nothing");

    // A type without a price cannot be quoted.
    let mut catalog = Catalog::builtin();
    catalog.prices.instances.retain(|p| p.instance_type != "S5.LARGE8");
    let w = world_with(catalog);
    let unpriced = RunInstancesRequest { instance_type: Some("S5.LARGE8".into()), ..hourly };
    assert_eq!(quote(&w, &unpriced).unwrap_err().code, codes::FAILED_OPERATION_INQUIRY_PRICE_FAILED);
    let items = describe(&w, &[("zone", &[ZONE]), ("instance-type", &["S5.LARGE8"])]).unwrap();
    assert!(items.iter().all(|i| i.price.unit_price.is_none() && i.price.discount_price.is_none()));
}
