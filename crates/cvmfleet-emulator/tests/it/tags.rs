//! Issue 12: DescribeRegions, the Tag service on the emulator's one port, and its changes as
//! DescribeInstances shows them, over HTTP.

use std::time::Duration;

use cvmfleet_emulator::{DEFAULT_ACCOUNT_UIN, EmulatorConfig};
use serde_json::{Value, json};

use crate::common::{Client, config, start};

fn run(zone: &str, count: usize, fleet: &str) -> Value {
    json!({
        "Placement": {"Zone": zone}, "ImageId": "img-pmqg1cw7", "InstanceCount": count,
        "TagSpecification": [{"ResourceType": "instance", "Tags": [{"Key": "cvmfleet:fleet", "Value": fleet}]}],
    })
}

fn name(region: &str, id: &str) -> String {
    format!("qcs::cvm:{region}:uin/:instance/{id}")
}

fn ids_of(reply: &Value) -> Vec<String> {
    reply["InstanceSet"]
        .as_array()
        .map(|a| a.iter().filter_map(|i| i["InstanceId"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

async fn tags_of(client: &Client, region: &str, id: &str) -> Value {
    let reply = client.clone().region(region).call("DescribeInstances", json!({"InstanceIds": [id]})).await;
    reply.ok()["InstanceSet"][0]["Tags"].clone()
}

#[tokio::test]
async fn issue_12_describe_regions_lists_the_catalog_without_a_region() {
    let emulator = start(config()).await;
    let client = Client::new(&emulator);
    // The region header is left out, as the API page allows.
    let body = b"{}".to_vec();
    let mut headers = client.tc3_headers(
        "DescribeRegions",
        cvmfleet_wire::API_VERSION,
        crate::common::now(),
        "POST",
        "",
        &body,
        "application/json",
    );
    headers.retain(|(k, _)| k != "x-tc-region");
    let reply = client.send_raw(reqwest::Method::POST, "", headers, body).await.unwrap();
    reply.assert_envelope();
    assert_eq!(reply.ok()["TotalCount"], 3);
    let regions: Vec<&str> =
        reply.ok()["RegionSet"].as_array().unwrap().iter().filter_map(|r| r["Region"].as_str()).collect();
    assert_eq!(regions, ["ap-guangzhou", "ap-hongkong", "ap-shanghai"]);
    assert_eq!(reply.ok()["RegionSet"][0]["RegionName"], "华南地区(广州)");
    assert_eq!(reply.ok()["RegionSet"][0]["RegionState"], "AVAILABLE");
    // A region given anyway, even one the catalog lacks, is ignored.
    let anyway = client.clone().region("eu-nowhere").call("DescribeRegions", json!({})).await;
    assert_eq!(anyway.ok()["TotalCount"], 3);
    assert_eq!(client.call("DescribeRegions", json!({"Bogus": 1})).await.code(), "UnknownParameter");
}

#[tokio::test]
async fn issue_12_tag_changes_show_in_describe_instances_at_once() {
    let emulator = start(config()).await;
    let client = Client::new(&emulator);
    let gz = client.call("RunInstances", run("ap-guangzhou-3", 3, "web")).await.instance_ids();
    let hk = client.clone().region("ap-hongkong").call("RunInstances", run("ap-hongkong-1", 1, "web")).await;
    let hk = hk.instance_ids();

    let mut list: Vec<String> = gz.iter().map(|id| name("ap-guangzhou", id)).collect();
    list.push(format!("qcs::cvm:ap-hongkong:uin/{DEFAULT_ACCOUNT_UIN}:instance/{}", hk[0]));
    list.push(name("ap-guangzhou", "ins-00000000"));
    list.push(format!("qcs::cvm:ap-guangzhou:uin/42:instance/{}", gz[0]));
    list.push(format!("qcs::cbs:ap-guangzhou:uin/:volume/disk-{}", "1"));
    let reply = client
        .tag(
            "TagResources",
            json!({"ResourceList": list, "Tags": [{"TagKey": "cvmfleet:project", "TagValue": "shop"}]}),
        )
        .await;
    reply.assert_envelope();
    let failed: Vec<(&str, &str)> = reply.ok()["FailedResources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["Resource"].as_str().unwrap(), f["Code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        failed,
        [
            (list[4].as_str(), "InvalidParameterValue.ResourceIdInvalid"),
            (list[5].as_str(), "AuthFailure.UnauthorizedOperation"),
            (list[6].as_str(), "InvalidParameter.UnsupportedService"),
        ]
    );
    // Every region's DescribeInstances sees the new tag at once, beside the old ones.
    let filter = json!({"Filters": [{"Name": "tag:cvmfleet:project", "Values": ["shop"]}], "Limit": 100});
    assert_eq!(ids_of(client.call("DescribeInstances", filter.clone()).await.ok()), gz);
    assert_eq!(
        ids_of(client.clone().region("ap-hongkong").call("DescribeInstances", filter.clone()).await.ok()),
        hk
    );
    assert_eq!(
        tags_of(&client, "ap-guangzhou", &gz[0]).await,
        json!([{"Key": "cvmfleet:fleet", "Value": "web"}, {"Key": "cvmfleet:project", "Value": "shop"}])
    );
    // Tagging again with another value changes it in place; the old value no longer matches.
    client
        .tag(
            "TagResources",
            json!({"ResourceList": [list[0]], "Tags": [{"TagKey": "cvmfleet:project", "TagValue": "blog"}]}),
        )
        .await
        .ok();
    assert_eq!(ids_of(client.call("DescribeInstances", filter.clone()).await.ok()), gz[1..]);

    // ModifyResourceTags replaces and deletes in one call.
    let modify = json!({
        "Resource": list[1],
        "ReplaceTags": [{"TagKey": "owner", "TagValue": "ops"}],
        "DeleteTags": [{"TagKey": "cvmfleet:fleet"}],
    });
    client.tag("ModifyResourceTags", modify).await.ok();
    assert_eq!(
        tags_of(&client, "ap-guangzhou", &gz[1]).await,
        json!([{"Key": "cvmfleet:project", "Value": "shop"}, {"Key": "owner", "Value": "ops"}])
    );
    let fleet = json!({"Filters": [{"Name": "tag:cvmfleet:fleet", "Values": ["web"]}], "Limit": 100});
    assert_eq!(ids_of(client.call("DescribeInstances", fleet).await.ok()), [gz[0].clone(), gz[2].clone()]);

    // UnTagResources removes keys; a key the instance lacks is no error.
    let reply = client
        .tag(
            "UnTagResources",
            json!({"ResourceList": [list[2], list[3]], "TagKeys": ["cvmfleet:project", "absent"]}),
        )
        .await;
    assert_eq!(reply.ok()["FailedResources"], json!([]));
    assert_eq!(
        tags_of(&client, "ap-guangzhou", &gz[2]).await,
        json!([{"Key": "cvmfleet:fleet", "Value": "web"}])
    );
    assert_eq!(
        tags_of(&client, "ap-hongkong", &hk[0]).await,
        json!([{"Key": "cvmfleet:fleet", "Value": "web"}])
    );
    let key = json!({"Filters": [{"Name": "tag-key", "Values": ["cvmfleet:project"]}], "Limit": 100});
    assert_eq!(ids_of(client.call("DescribeInstances", key).await.ok()), gz[..2]);
    assert_eq!(emulator.stats().requests_of("TagResources"), 2);
}

#[tokio::test]
async fn issue_12_tag_requests_are_checked_with_the_tag_codes() {
    let emulator = start(config()).await;
    let client = Client::new(&emulator);
    let id = client.call("RunInstances", run("ap-guangzhou-3", 1, "web")).await.instance_ids().remove(0);
    let one = name("ap-guangzhou", &id);
    let tag = |k: &str, v: &str| json!({"TagKey": k, "TagValue": v});
    let eleven_names: Vec<String> = (0..11).map(|_| one.clone()).collect();
    let eleven_tags: Vec<Value> = (0..11).map(|i| tag(&format!("k{i}"), "v")).collect();
    let cases = [
        (
            "TagResources",
            json!({"ResourceList": eleven_names, "Tags": [tag("k", "v")]}),
            "LimitExceeded.ResourceNumPerRequest",
        ),
        (
            "TagResources",
            json!({"ResourceList": [one], "Tags": eleven_tags}),
            "LimitExceeded.TagNumPerRequest",
        ),
        (
            "TagResources",
            json!({"ResourceList": [one], "Tags": [tag("qcloud:x", "v")]}),
            "InvalidParameter.ReservedTagKey",
        ),
        (
            "TagResources",
            json!({"ResourceList": [one], "Tags": [tag("k", "")]}),
            "InvalidParameterValue.TagValueEmpty",
        ),
        (
            "TagResources",
            json!({"ResourceList": [one], "Tags": [tag("", "v")]}),
            "InvalidParameterValue.TagKeyEmpty",
        ),
        (
            "TagResources",
            json!({"ResourceList": [one], "Tags": [tag(&"k".repeat(128), "v")]}),
            "InvalidParameterValue.TagKeyLengthExceeded",
        ),
        (
            "TagResources",
            json!({"ResourceList": [one], "Tags": [tag("k", "1"), tag("k", "2")]}),
            "InvalidParameterValue.TagKeyDuplicate",
        ),
        (
            "TagResources",
            json!({"ResourceList": [id], "Tags": [tag("k", "v")]}),
            "InvalidParameterValue.ResourceDescriptionError",
        ),
        ("TagResources", json!({"Tags": [tag("k", "v")]}), "MissingParameter"),
        (
            "TagResources",
            json!({"ResourceList": [one], "Tags": [tag("k", "v")], "Extra": 1}),
            "UnknownParameter",
        ),
        ("UnTagResources", json!({"ResourceList": [one]}), "MissingParameter"),
        ("ModifyResourceTags", json!({"Resource": one}), "MissingParameter"),
        ("ModifyResourceTags", json!({"Resource": one, "ReplaceTags": []}), "InvalidParameter.Tag"),
        (
            "ModifyResourceTags",
            json!({"Resource": one, "ReplaceTags": [tag("k", "v")], "DeleteTags": [{"TagKey": "k"}]}),
            "InvalidParameterValue.DeleteTagsParamError",
        ),
        (
            "ModifyResourceTags",
            json!({"Resource": name("ap-guangzhou", "ins-00000000"), "DeleteTags": [{"TagKey": "k"}]}),
            "InvalidParameterValue.ResourceIdInvalid",
        ),
        (
            "ModifyResourceTags",
            json!({"Resource": name("eu-nowhere", &id), "DeleteTags": [{"TagKey": "k"}]}),
            "InvalidParameterValue.RegionInvalid",
        ),
        ("DescribeResourcesByTags", json!({}), "MissingParameter"),
        (
            "DescribeResourcesByTags",
            json!({"TagFilters": [{"TagKey": "k"}], "Offset": 5, "Limit": 10}),
            "InvalidParameterValue.OffsetInvalid",
        ),
        (
            "DescribeResourcesByTags",
            json!({"TagFilters": (0..7).map(|i| json!({"TagKey": format!("k{i}")})).collect::<Vec<_>>()}),
            "InvalidParameterValue.TagFiltersLengthExceeded",
        ),
        (
            "DescribeResourcesByTags",
            json!({"TagFilters": [{"TagKey": ""}]}),
            "InvalidParameterValue.TagFilters",
        ),
        (
            "DescribeResourcesByTags",
            json!({"TagFilters": [{"TagKey": "k"}], "Limit": 201}),
            "InvalidParameterValue",
        ),
        (
            "DescribeResourceTagsByResourceIds",
            json!({"ServiceType": "cvm", "ResourcePrefix": "instance", "ResourceRegion": "ap-guangzhou"}),
            "MissingParameter",
        ),
        (
            "DescribeResourceTagsByResourceIds",
            json!({"ServiceType": "cvm", "ResourcePrefix": "instance", "ResourceRegion": "ap-guangzhou", "ResourceIds": vec![id.clone(); 51]}),
            "LimitExceeded.ResourceNumPerRequest",
        ),
        (
            "DescribeResourceTagsByResourceIds",
            json!({"ServiceType": "cvm", "ResourcePrefix": "instance", "ResourceRegion": "eu-nowhere", "ResourceIds": [id]}),
            "InvalidParameterValue.RegionInvalid",
        ),
        ("GetResources", json!({"PaginationToken": "not-ours"}), "InvalidParameter.PaginationTokenInvalid"),
        (
            "GetResources",
            json!({"TagFilters": [{"TagKey": "k", "TagValue": (0..11).map(|i| i.to_string()).collect::<Vec<_>>()}]}),
            "InvalidParameterValue.TagFiltersLengthExceeded",
        ),
        ("GetResources", json!({"MaxResults": 201}), "InvalidParameterValue"),
    ];
    for (action, params, code) in cases {
        let reply = client.tag(action, params.clone()).await;
        reply.assert_envelope();
        assert_eq!(reply.code(), code, "{action} {params}");
    }
    // Nothing of it changed the instance.
    assert_eq!(
        tags_of(&client, "ap-guangzhou", &id).await,
        json!([{"Key": "cvmfleet:fleet", "Value": "web"}])
    );
    // A Tag action under CVM's version, and a CVM action signed for the Tag service.
    assert_eq!(client.call("TagResources", json!({})).await.code(), "InvalidAction");
    assert_eq!(client.tag("DescribeInstances", json!({})).await.code(), "InvalidAction");
}

#[tokio::test]
async fn issue_12_describe_resources_by_tags_spans_regions_and_pages() {
    let emulator = start(config()).await;
    let client = Client::new(&emulator);
    let hk_client = client.clone().region("ap-hongkong");
    let mut expected = client.call("RunInstances", run("ap-guangzhou-3", 20, "web")).await.instance_ids();
    expected.extend(hk_client.call("RunInstances", run("ap-hongkong-1", 5, "web")).await.instance_ids());
    client.call("RunInstances", run("ap-guangzhou-3", 2, "db")).await.ok();

    let by_tags = |offset: u64, extra: Value| {
        let mut params = json!({"TagFilters": [{"TagKey": "cvmfleet:fleet", "TagValue": ["web", "api"]}],
                                "ServiceType": "cvm", "ResourcePrefix": "instance", "Offset": offset, "Limit": 10});
        if let (Some(p), Some(e)) = (params.as_object_mut(), extra.as_object()) {
            p.extend(e.clone());
        }
        client.tag("DescribeResourcesByTags", params)
    };
    let mut seen = Vec::new();
    for offset in [0, 10, 20] {
        let page = by_tags(offset, json!({})).await;
        assert_eq!((page.ok()["TotalCount"].clone(), page.ok()["Limit"].clone()), (json!(25), json!(10)));
        for row in page.ok()["Rows"].as_array().unwrap() {
            assert_eq!(
                (row["ServiceType"].as_str(), row["ResourcePrefix"].as_str()),
                (Some("cvm"), Some("instance"))
            );
            assert_eq!(row["Tags"], json!([{"TagKey": "cvmfleet:fleet", "TagValue": "web"}]));
            seen.push((
                row["ResourceRegion"].as_str().unwrap().to_owned(),
                row["ResourceId"].as_str().unwrap().to_owned(),
            ));
        }
    }
    let ids: Vec<&str> = seen.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!(ids, expected.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(seen.iter().filter(|(r, _)| r == "ap-hongkong").count(), 5);
    // Narrowed to a region, to an ID, to another service; AND with a second filter.
    assert_eq!(by_tags(0, json!({"ResourceRegion": "ap-hongkong"})).await.ok()["TotalCount"], 5);
    assert_eq!(by_tags(0, json!({"ResourceId": expected[3]})).await.ok()["TotalCount"], 1);
    assert_eq!(by_tags(0, json!({"ServiceType": "cbs"})).await.ok()["TotalCount"], 0);
    let and = json!({"TagFilters": [{"TagKey": "cvmfleet:fleet"}, {"TagKey": "nope"}]});
    assert_eq!(client.tag("DescribeResourcesByTags", and).await.ok()["TotalCount"], 0);
    // The default page is 15.
    let default =
        client.tag("DescribeResourcesByTags", json!({"TagFilters": [{"TagKey": "cvmfleet:fleet"}]})).await;
    assert_eq!((default.ok()["TotalCount"].clone(), default.ok()["Limit"].clone()), (json!(27), json!(15)));
    assert_eq!(default.ok()["Rows"].as_array().map(Vec::len), Some(15));
}

#[tokio::test]
async fn issue_12_resource_tags_by_ids_and_get_resources() {
    let emulator = start(config().account_uin("2000000042")).await;
    assert_eq!(emulator.account_uin(), "2000000042");
    let client = Client::new(&emulator);
    let ids = client.call("RunInstances", run("ap-guangzhou-3", 5, "web")).await.instance_ids();
    let names: Vec<String> = ids.iter().map(|id| name("ap-guangzhou", id)).collect();
    client
        .tag("TagResources", json!({"ResourceList": names, "Tags": [{"TagKey": "env", "TagValue": "prod"}]}))
        .await
        .ok();

    let by_ids = json!({"ServiceType": "cvm", "ResourcePrefix": "instance", "ResourceRegion": "ap-guangzhou",
                        "ResourceIds": [ids[0], ids[1], "ins-00000000"], "Limit": 3, "Offset": 0});
    let page = client.tag("DescribeResourceTagsByResourceIds", by_ids.clone()).await;
    assert_eq!(page.ok()["TotalCount"], 4, "one row per (resource, tag)");
    let row = &page.ok()["Tags"][1];
    assert_eq!(
        (row["ResourceId"].as_str(), row["TagKey"].as_str(), row["TagValue"].as_str()),
        (Some(ids[0].as_str()), Some("env"), Some("prod"))
    );
    assert_eq!(row["TagValueMd5"], "d6e4a9b6646c62fc48baa6dd6150d1f7");
    assert_eq!(row["Category"], "Custom");
    let mut next = by_ids;
    next["Offset"] = json!(3);
    assert_eq!(
        client.tag("DescribeResourceTagsByResourceIds", next).await.ok()["Tags"].as_array().map(Vec::len),
        Some(1)
    );

    // GetResources pages by token, names carry the account's uin.
    let mut listed = Vec::new();
    let mut token = String::new();
    for _ in 0..5 {
        let page = client
            .tag("GetResources", json!({"TagFilters": [{"TagKey": "env", "TagValue": ["prod"]}], "MaxResults": 2, "PaginationToken": token}))
            .await;
        for m in page.ok()["ResourceTagMappingList"].as_array().unwrap() {
            listed.push(m["Resource"].as_str().unwrap().to_owned());
        }
        token = page.ok()["PaginationToken"].as_str().unwrap().to_owned();
        if token.is_empty() {
            break;
        }
    }
    let canonical: Vec<String> =
        ids.iter().map(|id| format!("qcs::cvm:ap-guangzhou:uin/2000000042:instance/{id}")).collect();
    assert_eq!(listed, canonical);
    let by_name = client.tag("GetResources", json!({"ResourceList": [names[4], canonical[4]]})).await;
    assert_eq!(by_name.ok()["ResourceTagMappingList"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        by_name.ok()["ResourceTagMappingList"][0]["Tags"],
        json!([{"TagKey": "cvmfleet:fleet", "TagValue": "web"}, {"TagKey": "env", "TagValue": "prod"}])
    );
    // The default uin is not this emulator's.
    let foreign = format!("qcs::cvm:ap-guangzhou:uin/{DEFAULT_ACCOUNT_UIN}:instance/{}", ids[0]);
    let reply = client.tag("UnTagResources", json!({"ResourceList": [foreign], "TagKeys": ["env"]})).await;
    assert_eq!(reply.ok()["FailedResources"][0]["Code"], "AuthFailure.UnauthorizedOperation");
}

/// Tag changes are journaled before they are acknowledged: they survive a restart without a
/// clean shutdown.
#[tokio::test]
async fn issue_12_tag_changes_survive_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let config = EmulatorConfig::default().instant().rate_limits(false).state_path(dir.path());
    let emulator = start(config.clone()).await;
    let client = Client::new(&emulator);
    let id = client.call("RunInstances", run("ap-guangzhou-3", 1, "web")).await.instance_ids().remove(0);
    let resource = name("ap-guangzhou", &id);
    client
        .tag(
            "TagResources",
            json!({"ResourceList": [resource], "Tags": [{"TagKey": "cvmfleet:project", "TagValue": "shop"}]}),
        )
        .await
        .ok();
    client
        .tag(
            "ModifyResourceTags",
            json!({"Resource": resource, "DeleteTags": [{"TagKey": "cvmfleet:fleet"}]}),
        )
        .await
        .ok();
    drop(emulator);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let emulator = start(config).await;
    let client = Client::new(&emulator);
    assert_eq!(
        tags_of(&client, "ap-guangzhou", &id).await,
        json!([{"Key": "cvmfleet:project", "Value": "shop"}])
    );
    let filter = json!({"Filters": [{"Name": "tag:cvmfleet:project", "Values": ["shop"]}]});
    assert_eq!(
        client.call("DescribeInstances", filter).await.ok()["TotalCount"],
        1,
        "the tag index is rebuilt"
    );
    emulator.shutdown().await.unwrap();
}
