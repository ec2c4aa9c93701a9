//! Stock, prices and spot instances through the real client, under paused time (issues 13 and
//! 14): the emulator's model, for simulations where stock runs out.

use std::time::Duration;

use cvmfleet_client::{CvmClient, Error};
use cvmfleet_wire::api::{
    DescribeZoneInstanceConfigInfosRequest, InquiryPriceRunInstancesRequest, RunInstancesRequest,
    TerminateInstancesRequest,
};
use cvmfleet_wire::model::{
    Filter, InstanceChargePrepaid, InstanceMarketOptionsRequest, InstanceTypeQuotaItem, Placement,
    SpotMarketOptions,
};
use cvmfleet_wire::vocab::EMULATED_SPOT_RECLAIM_MESSAGE;
use cvmfleet_wire::{ApiRequest, codes};
use tokio::time::sleep;

use super::*;

const REGION: &str = "ap-guangzhou";
const ZONE: &str = "ap-guangzhou-3";
const TYPE: &str = "S5.MEDIUM2";

fn run(count: i64, charge: &str, token: Option<&str>) -> RunInstancesRequest {
    RunInstancesRequest {
        placement: Some(Placement { zone: ZONE.into(), ..Placement::default() }),
        image_id: Some("img-pmqg1cw7".into()),
        instance_type: Some(TYPE.into()),
        instance_charge_type: Some(charge.into()),
        instance_count: Some(count),
        client_token: token.map(Into::into),
        ..RunInstancesRequest::default()
    }
}

fn setup(config: SimConfig) -> (SimCloud, CvmClient) {
    let cloud = SimCloud::new(config);
    let client = cloud.client().unwrap();
    (cloud, client)
}

async fn call<R: ApiRequest>(client: &CvmClient, req: &R) -> Result<R::Response, Error> {
    client.call(REGION, req).await.map(|a| a.data)
}

fn code<T: std::fmt::Debug>(result: Result<T, Error>) -> String {
    result.unwrap_err().code().unwrap_or("(no code)").to_owned()
}

#[tokio::test(start_paused = true)]
async fn stock_runs_out_with_the_emulators_codes_issue_13() {
    let (cloud, client) = setup(SimConfig::default());
    assert!(cloud.set_stock(ZONE, TYPE, Some("POSTPAID_BY_HOUR"), Some(3)));
    assert!(!cloud.set_stock(ZONE, TYPE, Some("CDHPAID"), Some(3)));
    let first = call(&client, &run(2, "POSTPAID_BY_HOUR", Some("a"))).await.unwrap().instance_id_set;
    assert_eq!(cloud.available(ZONE, TYPE, "POSTPAID_BY_HOUR"), Some(1));
    assert_eq!(
        code(call(&client, &run(2, "POSTPAID_BY_HOUR", None)).await),
        codes::RESOURCE_INSUFFICIENT_SPECIFIED_INSTANCE_TYPE
    );
    let partial = RunInstancesRequest { min_count: Some(1), ..run(2, "POSTPAID_BY_HOUR", Some("b")) };
    assert_eq!(call(&client, &partial).await.unwrap().instance_id_set.len(), 1);
    assert_eq!(
        code(call(&client, &run(1, "POSTPAID_BY_HOUR", None)).await),
        codes::RESOURCES_SOLD_OUT_SPECIFIED_INSTANCE_TYPE
    );
    let minimum = RunInstancesRequest { min_count: Some(1), ..run(2, "POSTPAID_BY_HOUR", None) };
    assert_eq!(
        code(call(&client, &minimum).await),
        codes::RESOURCE_INSUFFICIENT_INSUFFICIENT_OFFERING_MINIMUM
    );
    let dry = RunInstancesRequest { dry_run: Some(true), ..run(1, "POSTPAID_BY_HOUR", None) };
    assert_eq!(code(call(&client, &dry).await), codes::RESOURCES_SOLD_OUT_SPECIFIED_INSTANCE_TYPE);
    // A replayed token returns its instances whatever the stock.
    assert_eq!(call(&client, &run(2, "POSTPAID_BY_HOUR", Some("a"))).await.unwrap().instance_id_set, first);
    // Spot is short with its own code; other charge types are unlimited.
    cloud.set_stock(ZONE, TYPE, Some("SPOTPAID"), Some(0));
    assert_eq!(
        code(call(&client, &run(1, "SPOTPAID", None)).await),
        codes::INVALID_PARAMETER_VALUE_INSUFFICIENT_OFFERING
    );
    let prepaid = RunInstancesRequest {
        instance_charge_prepaid: Some(InstanceChargePrepaid { period: 1, renew_flag: None }),
        ..run(5, "PREPAID", None)
    };
    call(&client, &prepaid).await.unwrap();

    // Terminated instances give their stock back when they are gone.
    sleep(Duration::from_secs(2)).await;
    let term = TerminateInstancesRequest { instance_ids: first, ..TerminateInstancesRequest::default() };
    call(&client, &term).await.unwrap();
    assert_eq!(cloud.available(ZONE, TYPE, "POSTPAID_BY_HOUR"), Some(0));
    sleep(Duration::from_secs(1)).await;
    assert_eq!(cloud.available(ZONE, TYPE, "POSTPAID_BY_HOUR"), Some(2));
    assert_eq!(cloud.stock().len(), 2);
    // Every instance ever created is counted: 2 + 1 + 5.
    let created = cloud.created();
    assert_eq!(created.len(), 8);
    assert_eq!(created.iter().filter(|c| c.charge_type == "PREPAID").count(), 5);
    assert!(created.iter().all(|c| c.instance_type == TYPE && !c.stock_vanished));
    assert!(cloud.set_stock(ZONE, TYPE, None, None));
    assert!(cloud.stock().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_low_offering_loses_stock_after_acceptance_issue_13() {
    let (cloud, client) = setup(SimConfig { low_stock_launch_failure_rate: 1.0, ..SimConfig::seeded(9) });
    cloud.set_stock(ZONE, TYPE, None, Some(5));
    let ids = call(&client, &run(2, "POSTPAID_BY_HOUR", Some("low"))).await.unwrap().instance_id_set;
    assert!(cloud.created().iter().all(|c| c.launch_failed && c.stock_vanished));
    assert_eq!(cloud.available(ZONE, TYPE, "POSTPAID_BY_HOUR"), Some(3));
    sleep(Duration::from_secs(2)).await;
    for id in &ids {
        let i = cloud.get(id).unwrap();
        assert_eq!(i.instance_state, "LAUNCH_FAILED");
        let message = i.latest_operation_error_msg.unwrap_or_default();
        assert!(message.starts_with(codes::RESOURCE_INSUFFICIENT_SPECIFIED_INSTANCE_TYPE), "{message}");
    }
    assert_eq!(cloud.available(ZONE, TYPE, "POSTPAID_BY_HOUR"), Some(3), "the vanished units stay gone");
    // Plenty of stock: never lost; calm turns the rate off.
    cloud.set_stock(ZONE, TYPE, None, Some(50));
    call(&client, &run(1, "POSTPAID_BY_HOUR", None)).await.unwrap();
    cloud.set_stock(ZONE, TYPE, None, Some(5));
    cloud.calm();
    call(&client, &run(1, "POSTPAID_BY_HOUR", None)).await.unwrap();
    assert_eq!(cloud.created().iter().filter(|c| c.launch_failed).count(), 2);
}

async fn describe(
    client: &CvmClient,
    filters: &[(&str, &[&str])],
) -> Result<Vec<InstanceTypeQuotaItem>, Error> {
    let filters = filters.iter().map(|(n, v)| Filter::new(*n, v.iter().copied())).collect();
    let r = DescribeZoneInstanceConfigInfosRequest { filters: Some(filters) };
    call(client, &r).await.map(|r| r.instance_type_quota_set)
}

#[tokio::test(start_paused = true)]
async fn zone_configs_and_quotes_answer_from_stock_and_prices_issue_13_14() {
    let (cloud, client) = setup(SimConfig::default());
    cloud.set_stock(ZONE, TYPE, Some("SPOTPAID"), Some(0));
    cloud.set_stock(ZONE, TYPE, Some("POSTPAID_BY_HOUR"), Some(7));
    assert!(cloud.set_price(TYPE, "POSTPAID_BY_HOUR", 0.2));
    assert!(cloud.set_price(TYPE, "SPOTPAID", 0.04));
    assert!(cloud.set_price(TYPE, "PREPAID", 70.0));
    assert!(!cloud.set_price(TYPE, "CDHPAID", 1.0));
    let items = describe(&client, &[("zone", &[ZONE]), ("instance-type", &[TYPE])]).await.unwrap();
    let by = |c: &str| items.iter().find(|i| i.instance_charge_type == c).unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(
        (by("SPOTPAID").status.as_str(), by("SPOTPAID").status_category.as_str()),
        ("SOLD_OUT", "WithoutStock")
    );
    assert_eq!(by("POSTPAID_BY_HOUR").status_category, "UnderStock");
    assert_eq!(by("PREPAID").status_category, "EnoughStock");
    assert_eq!(by("POSTPAID_BY_HOUR").price.unit_price_discount, Some(0.2));
    assert_eq!(by("PREPAID").price.discount_price, Some(70.0));
    // Without filters: every type of every zone of the region, from the catalog (issue 20).
    let all = describe(&client, &[]).await.unwrap();
    assert!(all.len() > items.len() && all.iter().all(|i| i.zone.starts_with("ap-guangzhou-")), "{all:?}");
    let catalog_priced =
        describe(&client, &[("zone", &["ap-guangzhou-4"]), ("instance-type", &["SA2.MEDIUM4"])])
            .await
            .unwrap();
    assert!(catalog_priced.iter().all(|i| i.is_selling() && i.price.unit_price.is_some()));
    assert_eq!(
        code(describe(&client, &[("zone", &["ap-hongkong-1"])]).await),
        codes::INVALID_ZONE_MISMATCH_REGION
    );
    assert_eq!(code(describe(&client, &[("color", &["red"])]).await), codes::INVALID_FILTER);

    let quote = |r: &RunInstancesRequest| InquiryPriceRunInstancesRequest::from_run(r);
    let hourly = call(&client, &quote(&run(3, "POSTPAID_BY_HOUR", None))).await.unwrap().price;
    // Issue 20: the emulator's quote, which prices the default system disk too (50 GiB of
    // CLOUD_PREMIUM in the built-in table: 0.0005 per GiB-hour, 0.35 per GiB-month).
    let near = |got: Option<f64>, want: f64| got.is_some_and(|g| (g - want).abs() < 1e-6);
    assert!(near(hourly.instance_price.unit_price_discount, (0.2 + 50.0 * 0.0005) * 3.0), "{hourly:?}");
    let prepaid = RunInstancesRequest {
        instance_charge_prepaid: Some(InstanceChargePrepaid { period: 12, renew_flag: None }),
        ..run(1, "PREPAID", None)
    };
    let monthly = call(&client, &quote(&prepaid)).await.unwrap().price.instance_price.discount_price;
    assert!(near(monthly, (70.0 + 50.0 * 0.35) * 12.0), "{monthly:?}");
    assert_eq!(code(call(&client, &quote(&run(1, "PREPAID", None))).await), codes::MISSING_PARAMETER);
    assert_eq!(
        code(call(&client, &quote(&run(1, "SPOTPAID", None))).await),
        codes::RESOURCES_SOLD_OUT_SPECIFIED_INSTANCE_TYPE
    );
    let other =
        RunInstancesRequest { instance_type: Some("S5.LARGE8".into()), ..run(1, "POSTPAID_BY_HOUR", None) };
    // The catalog's built-in price, untouched by set_price.
    let built_in = call(&client, &quote(&other)).await.unwrap().price.instance_price.unit_price_discount;
    assert!(built_in.is_some_and(|p| p > 0.0 && p != 0.2), "{built_in:?}");
    assert!(cloud.created().is_empty(), "quotes create nothing");
}

#[tokio::test(start_paused = true)]
async fn spot_bids_and_reclamation_issue_14() {
    let (cloud, client) = setup(SimConfig::default());
    cloud.set_price(TYPE, "SPOTPAID", 0.04);
    let bid = |price: &str| RunInstancesRequest {
        instance_market_options: Some(InstanceMarketOptionsRequest {
            market_type: Some("spot".into()),
            spot_options: Some(SpotMarketOptions { max_price: Some(price.into()), spot_instance_type: None }),
        }),
        ..run(2, "SPOTPAID", None)
    };
    assert_eq!(code(call(&client, &bid("0.01")).await), codes::INVALID_PARAMETER_VALUE_INSUFFICIENT_PRICE);
    assert_eq!(code(call(&client, &bid("free")).await), codes::INVALID_PARAMETER_VALUE);
    let ids = call(&client, &bid("0.05")).await.unwrap().instance_id_set;
    let on_demand = call(&client, &run(1, "POSTPAID_BY_HOUR", None)).await.unwrap().instance_id_set;
    sleep(Duration::from_secs(2)).await;
    assert!(cloud.reclaim_spot(&ids[0]));
    assert!(!cloud.reclaim_spot(&ids[0]), "already leaving");
    assert!(!cloud.reclaim_spot(&on_demand[0]), "not a spot instance");
    let i = cloud.get(&ids[0]).unwrap();
    assert_eq!(i.instance_state, "TERMINATING");
    assert_eq!(i.latest_operation_error_msg.as_deref(), Some(EMULATED_SPOT_RECLAIM_MESSAGE));
    let lost = cloud.lost();
    assert_eq!(
        (lost.len(), lost[0].reason.as_str(), lost[0].state.as_str()),
        (1, "spot instance reclaimed", "RUNNING")
    );
    sleep(Duration::from_secs(1)).await;
    assert!(cloud.get(&ids[0]).is_none());
    let bad_min = RunInstancesRequest { min_count: Some(3), ..run(2, "POSTPAID_BY_HOUR", None) };
    assert_eq!(code(call(&client, &bad_min).await), codes::INVALID_PARAMETER_VALUE_RANGE);
}
