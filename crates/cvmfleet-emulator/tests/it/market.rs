//! Stock, prices and spot instances over the wire (issues 13 and 14): the admin endpoints, the
//! codes RunInstances answers, the two new actions in every request style, durability of stock
//! across a crash, and seeded reclamation.

use std::time::Duration;

use cvmfleet_emulator::{Catalog, FaultConfig, StockSpec};
use cvmfleet_wire::codes;
use cvmfleet_wire::sign::V1Method;
use cvmfleet_wire::vocab::EMULATED_SPOT_RECLAIM_MESSAGE;
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Client, Style, admin, config, start};

fn run(zone: &str, ty: &str, charge: &str, count: u32) -> Value {
    json!({
        "Placement": {"Zone": zone},
        "ImageId": "img-pmqg1cw7",
        "InstanceType": ty,
        "InstanceChargeType": charge,
        "InstanceCount": count,
    })
}

#[tokio::test]
async fn stock_is_set_read_and_consumed_through_the_admin_api() {
    let emulator = start(config()).await;
    let client = Client::new(&emulator);
    let (status, body) = admin(&emulator, Method::GET, "/_emulator/stock", None).await;
    assert_eq!((status, body), (200, json!([])), "unlimited by default");

    let entries = json!([
        {"zone": "ap-guangzhou-3", "instance_type": "S5.MEDIUM2", "charge_type": "POSTPAID_BY_HOUR", "available": 2},
        {"zone": "ap-guangzhou-4", "instance_type": "S5.MEDIUM2", "available": 0},
    ]);
    let (status, body) = admin(&emulator, Method::PUT, "/_emulator/stock", Some(entries)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body.as_array().map(Vec::len), Some(5), "{body}");

    let reply = client.call("RunInstances", run("ap-guangzhou-3", "S5.MEDIUM2", "POSTPAID_BY_HOUR", 3)).await;
    assert_eq!(reply.code(), codes::RESOURCE_INSUFFICIENT_SPECIFIED_INSTANCE_TYPE);
    let mut partial = run("ap-guangzhou-3", "S5.MEDIUM2", "POSTPAID_BY_HOUR", 3);
    partial["MinCount"] = json!(1);
    assert_eq!(client.call("RunInstances", partial.clone()).await.instance_ids().len(), 2);
    assert_eq!(
        client.call("RunInstances", partial).await.code(),
        codes::RESOURCE_INSUFFICIENT_INSUFFICIENT_OFFERING_MINIMUM
    );
    let spot = client.call("RunInstances", run("ap-guangzhou-4", "S5.MEDIUM2", "SPOTPAID", 1)).await;
    assert_eq!(spot.code(), codes::INVALID_PARAMETER_VALUE_INSUFFICIENT_OFFERING);
    let mut dry = run("ap-guangzhou-4", "S5.MEDIUM2", "PREPAID", 1);
    dry["InstanceChargePrepaid"] = json!({"Period": 1});
    dry["DryRun"] = json!(true);
    assert_eq!(
        client.call("RunInstances", dry).await.code(),
        codes::RESOURCES_SOLD_OUT_SPECIFIED_INSTANCE_TYPE
    );

    let (_, body) = admin(&emulator, Method::GET, "/_emulator/stock", None).await;
    let gz3 = body
        .as_array()
        .and_then(|v| v.iter().find(|e| e["zone"] == "ap-guangzhou-3"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        gz3,
        json!({"zone": "ap-guangzhou-3", "instance_type": "S5.MEDIUM2", "charge_type": "POSTPAID_BY_HOUR", "available": 0, "in_use": 2})
    );

    for bad in [
        json!({"zone": "ap-guangzhou-3", "instance_type": "S5.MEDIUM2"}),
        json!({"zone": "ap-guangzhou-9", "instance_type": "S5.MEDIUM2", "available": 1}),
        json!({"zone": "ap-guangzhou-3", "instance_type": "S5.MEDIUM2", "charge_type": "CDHPAID", "available": 1}),
    ] {
        let (status, body) = admin(&emulator, Method::PUT, "/_emulator/stock", Some(bad.clone())).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    emulator.set_stock(&[StockSpec::new("ap-guangzhou-3", "S5.MEDIUM2", None, None)]).unwrap();
    assert_eq!(emulator.stock().len(), 4);
    assert_eq!(
        emulator.stats().errors_of("RunInstances", codes::RESOURCES_SOLD_OUT_SPECIFIED_INSTANCE_TYPE),
        1
    );
}

/// `Stats::run_instances` counts RunInstances per offering on arrival: answered, refused for
/// stock and refused by an injected fault alike; no charge type reads as POSTPAID_BY_HOUR. The
/// CLI's capacity tests count the attempts on one offering with it (issue 13).
#[tokio::test]
async fn run_instances_are_counted_per_offering_on_arrival() {
    let emulator = start(config()).await;
    let client = Client::new(&emulator);
    emulator.set_stock(&[StockSpec::new("ap-guangzhou-3", "S5.MEDIUM2", None, Some(0))]).unwrap();
    let sold_out =
        client.call("RunInstances", run("ap-guangzhou-3", "S5.MEDIUM2", "POSTPAID_BY_HOUR", 1)).await;
    assert_eq!(sold_out.code(), codes::RESOURCES_SOLD_OUT_SPECIFIED_INSTANCE_TYPE);
    let mut unnamed = run("ap-guangzhou-4", "S5.MEDIUM2", "POSTPAID_BY_HOUR", 1);
    unnamed.as_object_mut().unwrap().remove("InstanceChargeType");
    client.call("RunInstances", unnamed).await.ok();
    emulator
        .add_fault(
            cvmfleet_emulator::FaultRule::error(
                cvmfleet_wire::Action::RunInstances,
                "InternalError",
                "injected",
            )
            .when("InstanceChargeType", "SPOTPAID"),
        )
        .unwrap();
    let faulted = client.call("RunInstances", run("ap-guangzhou-4", "S5.MEDIUM2", "SPOTPAID", 1)).await;
    assert_eq!(faulted.code(), "InternalError");
    client.call("RunInstances", run("ap-guangzhou-4", "S5.MEDIUM2", "SPOTPAID", 1)).await.ok();

    let stats = emulator.stats();
    assert_eq!(stats.run_instances_on("ap-guangzhou-3", "S5.MEDIUM2", "POSTPAID_BY_HOUR"), 1);
    assert_eq!(stats.run_instances_on("ap-guangzhou-4", "S5.MEDIUM2", "POSTPAID_BY_HOUR"), 1);
    assert_eq!(stats.run_instances_on("ap-guangzhou-4", "S5.MEDIUM2", "SPOTPAID"), 2);
    assert_eq!(stats.run_instances_on("ap-guangzhou-3", "S5.MEDIUM2", "SPOTPAID"), 0);
    assert_eq!(stats.requests_of("RunInstances"), 4);
    let (_, body) = admin(&emulator, Method::GET, "/_emulator/stats", None).await;
    assert_eq!(body["run_instances"]["ap-guangzhou-4/S5.MEDIUM2/SPOTPAID"], 2, "{body}");
}

#[tokio::test]
async fn stock_survives_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let config = config().state_path(dir.path());
    let emulator = start(config.clone()).await;
    let client = Client::new(&emulator);
    let entry = json!({"zone": "ap-guangzhou-3", "instance_type": "SA2.MEDIUM4", "charge_type": "SPOTPAID", "available": 3});
    assert_eq!(admin(&emulator, Method::PUT, "/_emulator/stock", Some(entry)).await.0, 200);
    assert_eq!(
        client
            .call("RunInstances", run("ap-guangzhou-3", "SA2.MEDIUM4", "SPOTPAID", 2))
            .await
            .instance_ids()
            .len(),
        2
    );
    // Dropped without a clean shutdown: the journal alone carries the stock.
    drop(emulator);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let emulator = start(config).await;
    let view = emulator.stock();
    assert_eq!(view.len(), 1);
    assert_eq!((view[0].available, view[0].in_use), (1, 2));
    let client = Client::new(&emulator);
    let reply = client.call("RunInstances", run("ap-guangzhou-3", "SA2.MEDIUM4", "SPOTPAID", 2)).await;
    assert_eq!(reply.code(), codes::INVALID_PARAMETER_VALUE_INSUFFICIENT_OFFERING);
    emulator.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_catalog_sets_stock_and_prices() {
    let text = r#"{"stock": [{"zone": "ap-guangzhou-3", "instance_type": "S5.LARGE8", "available": 1}],
        "prices": {"instances": [{"instance_type": "S5.LARGE8", "charge_type": "POSTPAID_BY_HOUR", "price": 9.99, "discount": 50}]}}"#;
    let catalog = Catalog::builtin().apply_json(text, std::path::Path::new("c.json")).unwrap();
    let emulator = start(config().catalog(catalog)).await;
    let client = Client::new(&emulator);
    let reply = client
        .call(
            "DescribeZoneInstanceConfigInfos",
            json!({"Filters": [{"Name": "zone", "Values": ["ap-guangzhou-3"]},
                               {"Name": "instance-type", "Values": ["S5.LARGE8"]},
                               {"Name": "instance-charge-type", "Values": ["POSTPAID_BY_HOUR"]}]}),
        )
        .await;
    let item = &reply.ok()["InstanceTypeQuotaSet"][0];
    assert_eq!(item["StatusCategory"], "UnderStock");
    assert_eq!(item["Price"]["UnitPrice"], 9.99);
    assert_eq!(item["Price"]["UnitPriceDiscount"], 4.995);
    assert_eq!(item["Price"]["Discount"], 50.0);
}

#[tokio::test]
async fn the_new_actions_answer_in_every_request_style() {
    let emulator = start(config()).await;
    let client = Client::new(&emulator);
    let describe = json!({"Filters": [{"Name": "zone", "Values": ["ap-guangzhou-3"]}, {"Name": "instance-family", "Values": ["S5"]}]});
    let quote = json!({
        "Placement": {"Zone": "ap-guangzhou-3"}, "ImageId": "img-pmqg1cw7", "InstanceType": "S5.MEDIUM2",
        "InstanceCount": 2, "InternetAccessible": {"InternetChargeType": "BANDWIDTH_POSTPAID_BY_HOUR", "InternetMaxBandwidthOut": 5},
    });
    for style in
        [Style::PostTc3, Style::GetTc3, Style::GetV1(V1Method::HmacSha256), Style::PostV1(V1Method::HmacSha1)]
    {
        let reply = client.send(style, "DescribeZoneInstanceConfigInfos", &describe).await.unwrap();
        reply.assert_envelope();
        let items = reply.ok()["InstanceTypeQuotaSet"].as_array().cloned().unwrap_or_default();
        assert_eq!(items.len(), 8 * 3, "eight S5 types: {style:?}");
        let reply = client.send(style, "InquiryPriceRunInstances", &quote).await.unwrap();
        reply.assert_envelope();
        let price = &reply.ok()["Price"];
        // 2 × (0.206 + the 50 GiB CLOUD_PREMIUM system disk, 0.025); 2 × 5 Mbps × 0.063.
        assert_eq!(price["InstancePrice"]["UnitPriceDiscount"], 0.462, "{style:?}");
        assert_eq!(price["BandwidthPrice"]["UnitPrice"], 0.63, "{style:?}");
    }
    let mut bad = quote.clone();
    bad["DryRun"] = json!(true);
    assert_eq!(client.call("InquiryPriceRunInstances", bad).await.code(), codes::UNKNOWN_PARAMETER);
    assert_eq!(emulator.stats().instances, 0);
}

#[tokio::test]
async fn spot_instances_are_reclaimed_by_rate_and_by_request() {
    let faults = FaultConfig { spot_reclaim_rate: 1.0, spot_reclaim_within_ms: 0, ..FaultConfig::default() };
    let emulator = start(config().faults(faults).terminate_delay(Duration::from_secs(60))).await;
    let client = Client::new(&emulator);
    let ids =
        client.call("RunInstances", run("ap-guangzhou-3", "S5.MEDIUM2", "SPOTPAID", 2)).await.instance_ids();
    let listed = client.call("DescribeInstances", json!({"InstanceIds": ids})).await;
    for instance in listed.ok()["InstanceSet"].as_array().cloned().unwrap_or_default() {
        assert_eq!(instance["InstanceState"], "TERMINATING");
        assert_eq!(instance["LatestOperationErrorMsg"], EMULATED_SPOT_RECLAIM_MESSAGE);
    }
    let (_, reclaims) = admin(&emulator, Method::GET, "/_emulator/spot/reclaims", None).await;
    assert_eq!(reclaims.as_array().map(Vec::len), Some(2), "{reclaims}");

    emulator.set_faults(FaultConfig::default()).unwrap();
    let spot =
        client.call("RunInstances", run("ap-guangzhou-3", "S5.MEDIUM2", "SPOTPAID", 3)).await.instance_ids();
    let (status, body) =
        admin(&emulator, Method::POST, "/_emulator/spot/reclaim", Some(json!({"instance_ids": [spot[0]]})))
            .await;
    assert_eq!((status, body), (200, json!({"reclaimed": [spot[0]]})));
    let (status, body) =
        admin(&emulator, Method::POST, "/_emulator/spot/reclaim", Some(json!({"count": 5}))).await;
    assert_eq!((status, body), (200, json!({"reclaimed": [spot[1], spot[2]]})));
    let (status, _) = admin(
        &emulator,
        Method::POST,
        "/_emulator/spot/reclaim",
        Some(json!({"instance_ids": ["ins-nothere0"]})),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(emulator.spot_reclaims().len(), 5);
}

#[tokio::test]
async fn launches_in_a_low_offering_fail_at_the_seeded_rate() {
    let faults = FaultConfig { low_stock_launch_failure_rate: 1.0, ..FaultConfig::default() };
    let emulator = start(config().faults(faults)).await;
    emulator.set_stock(&[StockSpec::new("ap-guangzhou-3", "S5.MEDIUM2", None, Some(4))]).unwrap();
    let client = Client::new(&emulator);
    let ids = client
        .call("RunInstances", run("ap-guangzhou-3", "S5.MEDIUM2", "POSTPAID_BY_HOUR", 2))
        .await
        .instance_ids();
    assert_eq!(ids.len(), 2, "the create is accepted");
    let listed = client.call("DescribeInstances", json!({"InstanceIds": ids})).await;
    for instance in listed.ok()["InstanceSet"].as_array().cloned().unwrap_or_default() {
        assert_eq!(instance["InstanceState"], "LAUNCH_FAILED");
        let message = instance["LatestOperationErrorMsg"].as_str().unwrap_or_default();
        assert!(message.starts_with(codes::RESOURCE_INSUFFICIENT_SPECIFIED_INSTANCE_TYPE), "{message}");
    }
    let view = emulator.stock();
    let postpaid = view.iter().find(|v| v.charge_type == "POSTPAID_BY_HOUR").unwrap();
    assert_eq!((postpaid.available, postpaid.in_use), (2, 0), "the vanished stock stays gone");
    let stats = emulator.stats();
    assert_eq!((stats.instances_created, stats.faults.get("stock_vanished").copied()), (2, Some(2)));
}
