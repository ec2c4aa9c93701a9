//! Issue 12: the Tag service and DescribeRegions through the client, on the wire (signed for
//! the `tag` scope, no region) and end to end against the emulator.

use cvmfleet_client::{ClientConfig, Credentials, CvmClient, RateLimit, ResourceScope};
use cvmfleet_emulator::{DEV_SECRET_ID, DEV_SECRET_KEY, Emulator, EmulatorConfig, RunningEmulator};
use cvmfleet_wire::api::{DescribeRegionsRequest, RunInstancesRequest};
use cvmfleet_wire::model::{Placement, Tag, TagSpecification};
use cvmfleet_wire::tag::api::TagResourcesRequest;
use cvmfleet_wire::tag::model::{Tag as TagPair, TagFilter};
use cvmfleet_wire::{Action, ApiRequest};
use serde_json::json;

use crate::fake::{Fake, success};
use crate::{client_with, test_config};

#[tokio::test]
async fn issue_12_tag_calls_are_signed_for_the_tag_service_without_a_region() {
    let fake = Fake::scripted(vec![
        success(json!({"FailedResources": []}), "r-1"),
        success(json!({"TotalCount": 0, "RegionSet": []}), "r-2"),
    ])
    .await;
    let client = client_with(&fake, |_| {});
    let request = TagResourcesRequest {
        resource_list: vec![client.instance_resource_name("ap-guangzhou", "ins-1vogaxgk")],
        tags: vec![TagPair::new("cvmfleet:project", "shop")],
    };
    client.call("", &request).await.unwrap();
    client.call("", &DescribeRegionsRequest {}).await.unwrap();
    let [tag, regions] = &fake.requests()[..] else { panic!("two requests expected") };
    tag.verify_signature().unwrap();
    assert!(
        tag.header("Authorization").unwrap().contains("/tag/tc3_request, "),
        "{:?}",
        tag.header("Authorization")
    );
    assert_eq!(tag.header("X-TC-Version"), Some("2018-08-13"));
    assert_eq!(tag.header("X-TC-Region"), None);
    assert_eq!(tag.action(), "TagResources");
    let sent: TagResourcesRequest = serde_json::from_slice(&tag.body).unwrap();
    assert_eq!(sent.resource_list, ["qcs::cvm:ap-guangzhou:uin/:instance/ins-1vogaxgk"]);
    regions.verify_signature().unwrap();
    assert!(regions.header("Authorization").unwrap().contains("/cvm/tc3_request, "));
    assert_eq!((regions.header("X-TC-Version"), regions.header("X-TC-Region")), (Some("2017-03-12"), None));
    // A CVM action still needs its region.
    let missing = client.call("", &cvmfleet_wire::api::DescribeZonesRequest {}).await.unwrap_err();
    assert!(matches!(missing, cvmfleet_client::Error::InvalidRequest { action: Action::DescribeZones, .. }));
    // The configured uin goes into resource names.
    let with_uin = client_with(&fake, |c| c.account_uin = Some("123".into()));
    assert_eq!(
        with_uin.instance_resource_name("ap-hongkong", "ins-1"),
        "qcs::cvm:ap-hongkong:uin/123:instance/ins-1"
    );
    assert_eq!(TagResourcesRequest::ACTION.service(), cvmfleet_wire::Service::Tag);
}

async fn emulator() -> RunningEmulator {
    Emulator::start(EmulatorConfig::default().instant().rate_limits(false)).await.unwrap()
}

fn client(emulator: &RunningEmulator) -> CvmClient {
    let config = ClientConfig {
        rate_limits: Action::ALL.map(|a| (a, RateLimit::unlimited())).into(),
        ..test_config(emulator.endpoint())
    };
    CvmClient::new(config, Credentials::new(DEV_SECRET_ID, DEV_SECRET_KEY)).unwrap()
}

fn run(zone: &str, count: i64, fleet: &str) -> RunInstancesRequest {
    RunInstancesRequest {
        placement: Some(Placement { zone: zone.into(), ..Placement::default() }),
        image_id: Some("img-pmqg1cw7".into()),
        instance_count: Some(count),
        tag_specification: Some(vec![TagSpecification {
            resource_type: "instance".into(),
            tags: vec![Tag::new("cvmfleet:fleet", fleet)],
        }]),
        ..RunInstancesRequest::default()
    }
}

async fn create(client: &CvmClient, region: &str, zone: &str, count: i64, fleet: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut left = count;
    while left > 0 {
        let n = left.min(100);
        ids.extend(client.run_instances(region, &run(zone, n, fleet)).await.unwrap().data.instance_id_set);
        left -= n;
    }
    ids
}

#[tokio::test]
async fn issue_12_tagging_and_finding_instances_across_regions() {
    let emulator = emulator().await;
    let client = client(&emulator);
    let regions: Vec<String> =
        client.describe_regions().await.unwrap().into_iter().map(|r| r.region).collect();
    assert_eq!(regions, ["ap-guangzhou", "ap-hongkong", "ap-shanghai"]);

    let gz = create(&client, "ap-guangzhou", "ap-guangzhou-3", 230, "web").await;
    let hk = create(&client, "ap-hongkong", "ap-hongkong-1", 25, "web").await;
    client.take_stats();

    // 25 instances (and one that does not exist) × 12 tags: 3 batches of IDs, twice each.
    let mut targets = hk.clone();
    targets.push("ins-00000000".into());
    let tags: Vec<Tag> = (0..12).map(|i| Tag::new(format!("k{i:02}"), "v")).collect();
    let mut with_project = tags.clone();
    with_project.push(Tag::new("cvmfleet:project", "shop"));
    let outcomes = client.tag_resources("ap-hongkong", &targets, &with_project).await;
    assert_eq!(client.take_stats().attempts.get(&Action::TagResources), Some(&6));
    let failed: Vec<&str> =
        outcomes.iter().filter_map(|o| o.result.as_ref().err().and_then(|e| e.code())).collect();
    assert_eq!(
        failed,
        ["InvalidParameterValue.ResourceIdInvalid", "InvalidParameterValue.ResourceIdInvalid"]
    );
    let tagged: usize = outcomes.iter().filter(|o| o.result.is_ok()).map(|o| o.instance_ids.len()).sum();
    assert_eq!(tagged, 2 * 25);
    let listed = client.describe_instances_by_ids("ap-hongkong", &hk[..1]).await.unwrap();
    assert_eq!(listed[0].tags.len(), 14, "{:?}", listed[0].tags);
    assert_eq!(listed[0].tag("cvmfleet:project"), Some("shop"));

    // Tag the Guangzhou ones too and find them all, with their regions, in two pages.
    for outcome in client.tag_resources("ap-guangzhou", &gz, &[Tag::new("cvmfleet:project", "shop")]).await {
        outcome.result.unwrap();
    }
    client.take_stats();
    let found =
        client.find_tagged_instances(vec![TagFilter::new("cvmfleet:project", ["shop"])]).await.unwrap();
    assert_eq!(client.take_stats().attempts.get(&Action::DescribeResourcesByTags), Some(&2));
    assert_eq!(found.len(), 255);
    assert_eq!(found.iter().filter(|f| f.region == "ap-hongkong").count(), 25);
    assert!(found.windows(2).all(|w| w[0] <= w[1]), "sorted");
    let one_region = client
        .describe_resources_by_tags(
            vec![TagFilter::key("cvmfleet:project")],
            &ResourceScope { region: Some("ap-hongkong".into()), ..ResourceScope::cvm_instances() },
        )
        .await
        .unwrap();
    assert_eq!(one_region.len(), 25);

    // By tag values in DescribeInstances: 7 values take two listings.
    let values: Vec<String> = ["web", "a", "b", "c", "d", "e", "f"].map(String::from).to_vec();
    client.take_stats();
    let web = client
        .describe_instances_by_tag("ap-guangzhou", "cvmfleet:fleet", &values, Vec::new())
        .await
        .unwrap();
    assert_eq!(web.len(), 230);
    assert_eq!(client.take_stats().attempts.get(&Action::DescribeInstances), Some(&(3 + 1)));

    // Modify and untag; the tags read back through DescribeResourceTagsByResourceIds.
    client
        .modify_resource_tags(
            "ap-hongkong",
            &hk[0],
            &[Tag::new("owner", "ops")],
            &["k00".into(), "k01".into()],
        )
        .await
        .unwrap();
    for outcome in client.untag_resources("ap-hongkong", &hk[1..], &["k00".into()]).await {
        outcome.result.unwrap();
    }
    let read = client.describe_instance_tags("ap-hongkong", &hk).await.unwrap();
    assert_eq!(read.len(), 25);
    assert_eq!(read[&hk[0]].len(), 13);
    assert_eq!(read[&hk[0]].iter().find(|t| t.key == "owner").map(|t| t.value.as_str()), Some("ops"));
    assert_eq!(read[&hk[1]].len(), 13);
    assert!(!read[&hk[1]].iter().any(|t| t.key == "k00"));
    let listed = client.describe_instances_by_ids("ap-hongkong", &hk[..2]).await.unwrap();
    assert_eq!(listed[0].tags.len(), 13);
    emulator.shutdown().await.unwrap();
}
