//! The read actions over HTTP: DescribeInstances filters and paging, the fields of an
//! instance, DescribeInstancesStatus, DescribeZones, DescribeImages and
//! DescribeInstanceTypeConfigs.

use serde_json::{Value, json};

use std::time::Duration;

use crate::common::{Client, config, start};

/// Instances stay PENDING for the whole test.
fn pending() -> cvmfleet_emulator::EmulatorConfig {
    config().boot_delay(Duration::from_secs(600))
}

fn tagged(zone: &str, fleet: &str, count: usize) -> Value {
    json!({
        "Placement": {"Zone": zone}, "ImageId": "img-pmqg1cw7", "InstanceCount": count,
        "InstanceName": format!("{fleet}-{{R:1}}"),
        "SecurityGroupIds": ["sg-5ld3mz1q"],
        "InternetAccessible": {"InternetMaxBandwidthOut": 5},
        "TagSpecification": [{"ResourceType": "instance", "Tags": [
            {"Key": "cvmfleet:fleet", "Value": fleet}, {"Key": "team", "Value": "core"}]}],
    })
}

async fn total(client: &Client, filters: Value) -> i64 {
    let reply = client.call("DescribeInstances", json!({"Filters": filters, "Limit": 100})).await;
    reply.ok()["TotalCount"].as_i64().unwrap_or(-1)
}

#[tokio::test]
async fn every_filter_and_paging() {
    let emulator = start(pending()).await;
    let client = Client::new(&emulator);
    let web = client.call("RunInstances", tagged("ap-guangzhou-3", "web", 25)).await.instance_ids();
    let mut db_req = tagged("ap-guangzhou-4", "db", 3);
    db_req["VirtualPrivateCloud"] = json!({"VpcId": "vpc-2zxc8w1p", "SubnetId": "subnet-h4b2y8m3"});
    let db = client.call("RunInstances", db_req).await.instance_ids();
    assert_eq!((web.len(), db.len()), (25, 3));

    // Default page of 20, TotalCount of all.
    let page = client.call("DescribeInstances", json!({})).await;
    assert_eq!(page.ok()["TotalCount"], 28);
    assert_eq!(page.ok()["InstanceSet"].as_array().map(Vec::len), Some(20));
    // Pages in creation order, disjoint and complete.
    let mut seen = Vec::new();
    for offset in [0, 10, 20] {
        let reply = client
            .call("DescribeInstances", json!({"Filters": [{"Name": "tag:cvmfleet:fleet", "Values": ["web"]}], "Offset": offset, "Limit": 10}))
            .await;
        assert_eq!(reply.ok()["TotalCount"], 25);
        for i in reply.ok()["InstanceSet"].as_array().cloned().unwrap_or_default() {
            seen.push(i["InstanceId"].as_str().unwrap_or_default().to_owned());
        }
    }
    assert_eq!(seen, web);

    let one = client.call("DescribeInstances", json!({"InstanceIds": [db[0]]})).await;
    let instance = one.ok()["InstanceSet"][0].clone();
    let ip = instance["PrivateIpAddresses"][0].as_str().unwrap_or_default().to_owned();
    let public = instance["PublicIpAddresses"][0].as_str().unwrap_or_default().to_owned();
    let uuid = instance["Uuid"].as_str().unwrap_or_default().to_owned();
    assert!(ip.starts_with("10.0.2."), "{ip}");

    for (filters, expected) in [
        (json!([{"Name": "zone", "Values": ["ap-guangzhou-3", "ap-guangzhou-4"]}]), 28),
        (json!([{"Name": "zone", "Values": ["ap-guangzhou-4"]}]), 3),
        (json!([{"Name": "instance-id", "Values": [web[0], db[1]]}]), 2),
        (json!([{"Name": "instance-name", "Values": ["web-1"]}]), 11),
        (json!([{"Name": "instance-name", "Values": ["db-2"]}]), 1),
        (json!([{"Name": "instance-state", "Values": ["PENDING"]}]), 28),
        (json!([{"Name": "instance-state", "Values": ["RUNNING"]}]), 0),
        (json!([{"Name": "private-ip-address", "Values": [ip]}]), 1),
        (json!([{"Name": "public-ip-address", "Values": [public]}]), 1),
        (json!([{"Name": "vpc-id", "Values": ["vpc-2zxc8w1p"]}]), 3),
        (json!([{"Name": "subnet-id", "Values": ["subnet-h4b2y8m3"]}]), 3),
        (json!([{"Name": "security-group-id", "Values": ["sg-5ld3mz1q"]}]), 28),
        (json!([{"Name": "instance-charge-type", "Values": ["POSTPAID_BY_HOUR"]}]), 28),
        (json!([{"Name": "uuid", "Values": [uuid]}]), 1),
        (json!([{"Name": "project-id", "Values": ["0"]}]), 28),
        (json!([{"Name": "tag-key", "Values": ["cvmfleet:fleet"]}]), 28),
        (json!([{"Name": "tag-key", "Values": ["nope"]}]), 0),
        (json!([{"Name": "tag-value", "Values": ["db"]}]), 3),
        (json!([{"Name": "tag:cvmfleet:fleet", "Values": ["db", "web"]}]), 28),
        (
            json!([{"Name": "tag:team", "Values": ["core"]}, {"Name": "zone", "Values": ["ap-guangzhou-4"]}]),
            3,
        ),
        (json!([{"Name": "tag:cvmfleet", "Values": ["web"]}]), 0),
    ] {
        assert_eq!(total(&client, filters.clone()).await, expected, "{filters}");
    }

    for (params, code) in [
        (
            json!({"InstanceIds": [web[0]], "Filters": [{"Name": "zone", "Values": ["ap-guangzhou-3"]}]}),
            "InvalidParameter",
        ),
        (json!({"Filters": [{"Name": "colour", "Values": ["x"]}]}), "InvalidFilter"),
        (
            json!({"Filters": [{"Name": "zone", "Values": ["1", "2", "3", "4", "5", "6"]}]}),
            "InvalidFilterValue.LimitExceeded",
        ),
        (json!({"Limit": 101}), "InvalidParameterValue.Range"),
        (json!({"Offset": -1}), "InvalidParameterValueOffset"),
        (json!({"InstanceIds": ["ins-1"]}), "InvalidInstanceId.Malformed"),
        (
            json!({"Filters": [{"Name": "instance-id", "Values": ["i-1"]}]}),
            "InvalidParameterValue.InstanceIdMalformed",
        ),
    ] {
        let reply = client.call("DescribeInstances", params.clone()).await;
        reply.assert_envelope();
        assert_eq!(reply.code(), code, "{params}");
    }
    // Unknown IDs are simply absent; other regions see nothing.
    let reply = client.call("DescribeInstances", json!({"InstanceIds": ["ins-zzzzzzzz"]})).await;
    assert_eq!(reply.ok()["TotalCount"], 0);
    let hk = Client::new(&emulator).region("ap-hongkong");
    assert_eq!(hk.call("DescribeInstances", json!({})).await.ok()["TotalCount"], 0);
}

/// Fields real clients dereference are present and not null (terraform reads Placement,
/// InternetAccessible, VirtualPrivateCloud, SystemDisk and InstanceChargeType without checks).
#[tokio::test]
async fn instances_carry_the_fields_of_a_real_one() {
    let emulator = start(config()).await;
    let client = Client::new(&emulator);
    client.call("RunInstances", tagged("ap-guangzhou-3", "web", 1)).await.ok();
    let reply = client.call("DescribeInstances", json!({})).await;
    let instance = &reply.ok()["InstanceSet"][0];
    for field in [
        "Placement",
        "InstanceId",
        "InstanceType",
        "CPU",
        "Memory",
        "RestrictState",
        "InstanceName",
        "InstanceChargeType",
        "SystemDisk",
        "DataDisks",
        "PrivateIpAddresses",
        "PublicIpAddresses",
        "InternetAccessible",
        "VirtualPrivateCloud",
        "ImageId",
        "CreatedTime",
        "OsName",
        "SecurityGroupIds",
        "LoginSettings",
        "InstanceState",
        "Tags",
        "StopChargingMode",
        "Uuid",
        "LatestOperation",
        "LatestOperationState",
        "LatestOperationRequestId",
        "DisableApiTermination",
        "HostName",
        "DefaultLoginUser",
        "DefaultLoginPort",
        "LicenseType",
        "IsolatedSource",
    ] {
        assert!(!instance[field].is_null(), "{field} is null in {instance}");
    }
    assert_eq!(instance["Placement"]["Zone"], "ap-guangzhou-3");
    assert_eq!(instance["SystemDisk"]["DiskSize"], 50);
    assert_eq!(instance["LatestOperation"], "RunInstances");
    assert_eq!(
        instance["LatestOperationRequestId"],
        reply.ok()["InstanceSet"][0]["LatestOperationRequestId"]
    );
    let created = instance["CreatedTime"].as_str().unwrap_or_default();
    assert!(created.len() == 20 && created.ends_with('Z'), "{created}");
    // Postpaid: no renewal flag, no expiry.
    assert!(instance["RenewFlag"].is_null() && instance["ExpiredTime"].is_null());
}

#[tokio::test]
async fn status_zones_images_and_types() {
    let emulator = start(pending()).await;
    let client = Client::new(&emulator);
    let ids = client.call("RunInstances", tagged("ap-guangzhou-3", "web", 3)).await.instance_ids();

    let status = client.call("DescribeInstancesStatus", json!({"InstanceIds": [ids[0], ids[2]]})).await;
    assert_eq!(status.ok()["TotalCount"], 2);
    assert_eq!(status.ok()["InstanceStatusSet"][1]["InstanceId"], ids[2].as_str());
    let status = client.call("DescribeInstancesStatus", json!({"Limit": 1, "Offset": 1})).await;
    assert_eq!(status.ok()["TotalCount"], 3);
    assert_eq!(status.ok()["InstanceStatusSet"][0]["InstanceState"], "PENDING");
    assert_eq!(
        client.call("DescribeInstancesStatus", json!({"Filters": []})).await.code(),
        "UnknownParameter"
    );

    let zones = client.call("DescribeZones", json!({})).await;
    let names: Vec<&str> =
        zones.ok()["ZoneSet"].as_array().into_iter().flatten().filter_map(|z| z["Zone"].as_str()).collect();
    assert!(names.contains(&"ap-guangzhou-2") && names.contains(&"ap-guangzhou-4"), "{names:?}");
    let hk = Client::new(&emulator).region("ap-hongkong").call("DescribeZones", json!({})).await;
    assert_eq!(hk.ok()["TotalCount"], 2);
    assert_eq!(hk.ok()["ZoneSet"][0]["ZoneState"], "AVAILABLE");

    let images = client.call("DescribeImages", json!({"ImageIds": ["img-pmqg1cw7", "img-zzzzzzzz"]})).await;
    assert_eq!(images.ok()["TotalCount"], 1);
    assert_eq!(images.ok()["ImageSet"][0]["Platform"], "CentOS");
    let windows = client
        .call("DescribeImages", json!({"Filters": [{"Name": "platform", "Values": ["Windows"]}]}))
        .await;
    assert_eq!(windows.ok()["TotalCount"], 1);
    let both = client
        .call(
            "DescribeImages",
            json!({"ImageIds": ["img-pmqg1cw7"], "Filters": [{"Name": "platform", "Values": ["x"]}]}),
        )
        .await;
    assert_eq!(both.code(), "InvalidParameter.InvalidParameterCoexistImageIdsFilters");

    let types = client
        .call("DescribeInstanceTypeConfigs", json!({"Filters": [{"Name": "zone", "Values": ["ap-guangzhou-3"]}, {"Name": "instance-family", "Values": ["S5"]}]}))
        .await;
    let set = types.ok()["InstanceTypeConfigSet"].as_array().cloned().unwrap_or_default();
    assert!(set.iter().all(|t| t["Zone"] == "ap-guangzhou-3" && t["InstanceFamily"] == "S5"));
    let medium = set.iter().find(|t| t["InstanceType"] == "S5.MEDIUM2").cloned().unwrap_or_default();
    assert_eq!((medium["CPU"].as_i64(), medium["Memory"].as_i64()), (Some(2), Some(2)));
    let s6 = client
        .call(
            "DescribeInstanceTypeConfigs",
            json!({"Filters": [{"Name": "instance-type", "Values": ["S6.MEDIUM4"]}]}),
        )
        .await;
    let zones: Vec<&str> = s6.ok()["InstanceTypeConfigSet"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["Zone"].as_str())
        .collect();
    assert_eq!(zones, ["ap-guangzhou-6", "ap-guangzhou-7"]);
    assert_eq!(
        client
            .call("DescribeInstanceTypeConfigs", json!({"Filters": [{"Name": "gpu", "Values": ["1"]}]}))
            .await
            .code(),
        "InvalidFilter"
    );
}
