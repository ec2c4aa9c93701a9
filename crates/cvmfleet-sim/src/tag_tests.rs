//! Issue 12: DescribeInstances tag filters, DescribeRegions and the Tag service in the
//! simulation, through the real client under paused time.

use cvmfleet_client::CvmClient;
use cvmfleet_wire::api::{DescribeInstancesRequest, RunInstancesRequest};
use cvmfleet_wire::model::{Filter, Placement, Tag, TagSpecification};
use cvmfleet_wire::tag::api::{GetResourcesRequest, TagResourcesRequest};
use cvmfleet_wire::tag::model::{Tag as TagPair, TagFilter};

use super::*;

fn run(region_zone: &str, count: i64, tags: &[(&str, &str)]) -> RunInstancesRequest {
    RunInstancesRequest {
        placement: Some(Placement { zone: region_zone.into(), ..Placement::default() }),
        image_id: Some("img-pmqg1cw7".into()),
        instance_count: Some(count),
        tag_specification: Some(vec![TagSpecification {
            resource_type: "instance".into(),
            tags: tags.iter().map(|(k, v)| Tag::new(*k, *v)).collect(),
        }]),
        ..RunInstancesRequest::default()
    }
}

async fn create(
    client: &CvmClient,
    region: &str,
    zone: &str,
    count: i64,
    tags: &[(&str, &str)],
) -> Vec<String> {
    client.run_instances(region, &run(zone, count, tags)).await.unwrap().data.instance_id_set
}

async fn listed(client: &CvmClient, filters: Vec<Filter>) -> Result<Vec<String>, String> {
    let request = DescribeInstancesRequest { filters: Some(filters), limit: Some(100), ..Default::default() };
    match client.call("ap-guangzhou", &request).await {
        Ok(answer) => Ok(answer.data.instance_set.into_iter().map(|i| i.instance_id).collect()),
        Err(e) => Err(e.code().unwrap_or_default().to_owned()),
    }
}

#[tokio::test(start_paused = true)]
async fn issue_12_tag_filters_and_their_limits_match_the_emulator() {
    let cloud = SimCloud::new(SimConfig::seeded(3));
    let client = cloud.client().unwrap();
    let web =
        create(&client, "ap-guangzhou", "ap-guangzhou-3", 2, &[("fleet", "web"), ("team", "core")]).await;
    let db = create(&client, "ap-guangzhou", "ap-guangzhou-3", 1, &[("fleet", "db")]).await;
    let all: Vec<String> = web.iter().chain(&db).cloned().collect();
    assert_eq!(listed(&client, vec![Filter::tag_key(["fleet"])]).await, Ok(all.clone()));
    assert_eq!(listed(&client, vec![Filter::tag_value(["db"])]).await, Ok(db.clone()));
    assert_eq!(
        listed(&client, vec![Filter::tag("fleet", ["web", "db"])]).await,
        Ok(all.clone()),
        "OR within"
    );
    let and = vec![Filter::tag("fleet", ["web", "db"]), Filter::tag_key(["team"])];
    assert_eq!(listed(&client, and).await, Ok(web.clone()), "AND across");
    let six = Filter::tag("fleet", ["a", "b", "c", "d", "e", "f"]);
    assert_eq!(listed(&client, vec![six]).await, Err("InvalidFilterValue.LimitExceeded".into()));
    let eleven = vec![Filter::tag_key(["fleet"]); 11];
    assert_eq!(listed(&client, eleven).await, Err("InvalidParameterValue.LimitExceeded".into()));
    assert_eq!(listed(&client, vec![Filter::tag_key(["fleet"]); 10]).await, Ok(all));
}

#[tokio::test(start_paused = true)]
async fn issue_12_the_tag_service_changes_what_describe_instances_shows() {
    let cloud = SimCloud::new(SimConfig::seeded(5));
    let client = cloud.client().unwrap();
    // Issue 20: the catalog's regions, as the emulator lists them.
    let regions: Vec<String> =
        client.describe_regions().await.unwrap().into_iter().map(|r| r.region).collect();
    assert_eq!(regions, ["ap-guangzhou", "ap-hongkong", "ap-shanghai"]);
    let gz = create(&client, "ap-guangzhou", "ap-guangzhou-3", 12, &[("fleet", "web")]).await;
    let hk = create(&client, "ap-hongkong", "ap-hongkong-1", 3, &[("fleet", "web")]).await;

    let project = [Tag::new("cvmfleet:project", "shop")];
    for outcome in client.tag_resources("ap-guangzhou", &gz, &project).await {
        outcome.result.unwrap();
    }
    assert_eq!(cloud.calls()[&cvmfleet_wire::Action::TagResources].calls, 2, "12 instances: 2 calls of 10");
    assert!(
        cloud
            .live()
            .iter()
            .filter(|i| gz.contains(&i.instance_id))
            .all(|i| i.tag("cvmfleet:project") == Some("shop"))
    );
    assert_eq!(listed(&client, vec![Filter::tag("cvmfleet:project", ["shop"])]).await, Ok(gz.clone()));

    let missing = vec![hk[0].clone(), "ins-00000000".into()];
    let outcomes = client.tag_resources("ap-hongkong", &missing, &project).await;
    let codes: Vec<Option<&str>> =
        outcomes.iter().map(|o| o.result.as_ref().err().and_then(|e| e.code())).collect();
    assert_eq!(codes, [None, Some("InvalidParameterValue.ResourceIdInvalid")]);

    let found =
        client.find_tagged_instances(vec![TagFilter::new("cvmfleet:project", ["shop"])]).await.unwrap();
    assert_eq!(found.len(), 13);
    assert_eq!(
        found.iter().filter(|f| f.region == "ap-hongkong").map(|f| &f.instance_id).collect::<Vec<_>>(),
        [&hk[0]]
    );

    client
        .modify_resource_tags("ap-guangzhou", &gz[0], &[Tag::new("owner", "ops")], &["fleet".into()])
        .await
        .unwrap();
    assert_eq!(
        cloud.get(&gz[0]).unwrap().tags,
        [Tag::new("cvmfleet:project", "shop"), Tag::new("owner", "ops")]
    );
    for outcome in client.untag_resources("ap-guangzhou", &gz[1..], &["cvmfleet:project".into()]).await {
        outcome.result.unwrap();
    }
    let tags = client.describe_instance_tags("ap-guangzhou", &gz).await.unwrap();
    assert_eq!(tags[&gz[1]], [Tag::new("fleet", "web")]);
    assert_eq!(tags[&gz[0]].len(), 2);
    let pages =
        client.call("", &GetResourcesRequest { max_results: Some(10), ..Default::default() }).await.unwrap();
    assert_eq!(pages.data.resource_tag_mapping_list.len(), 10);
    assert!(!pages.data.pagination_token.is_empty());
    assert!(pages.data.resource_tag_mapping_list[0].resource.contains(":uin/100000000001:"));

    // The checks are the emulator's: a reserved key, eleven resources.
    let reserved = TagResourcesRequest {
        resource_list: vec![client.instance_resource_name("ap-guangzhou", &gz[0])],
        tags: vec![TagPair::new("qcloud:x", "v")],
    };
    assert_eq!(client.call("", &reserved).await.unwrap_err().code(), Some("InvalidParameter.ReservedTagKey"));
    let eleven = TagResourcesRequest {
        resource_list: gz[..11].iter().map(|id| client.instance_resource_name("ap-guangzhou", id)).collect(),
        tags: vec![TagPair::new("k", "v")],
    };
    assert_eq!(
        client.call("", &eleven).await.unwrap_err().code(),
        Some("LimitExceeded.ResourceNumPerRequest")
    );
}

#[tokio::test(start_paused = true)]
async fn issue_12_configured_regions_and_uin() {
    // Issue 20: the regions are the catalog's; this one has no Hong Kong.
    let mut catalog = Catalog::builtin();
    catalog.regions.retain(|r| r.region != "ap-hongkong");
    catalog.vpcs.retain(|v| v.region != "ap-hongkong");
    catalog.security_groups.retain(|g| g.region != "ap-hongkong");
    catalog.prices.instances.retain(|p| p.region.as_deref() != Some("ap-hongkong"));
    catalog.validate().unwrap();
    let config = SimConfig { catalog, account_uin: "777".into(), ..SimConfig::seeded(1) };
    let cloud = SimCloud::new(config);
    let client = cloud.client().unwrap();
    let regions: Vec<String> =
        client.describe_regions().await.unwrap().into_iter().map(|r| r.region).collect();
    assert_eq!(regions, ["ap-guangzhou", "ap-shanghai"]);
    let id = create(&client, "ap-guangzhou", "ap-guangzhou-3", 1, &[]).await.remove(0);
    // Tag calls take no region, so the served regions do not refuse them; a resource of a region
    // not served is invalid.
    let outcomes =
        client.tag_resources("ap-hongkong", std::slice::from_ref(&id), &[Tag::new("k", "v")]).await;
    assert_eq!(outcomes[0].result.as_ref().unwrap_err().code(), Some("InvalidParameterValue.RegionInvalid"));
    let foreign = TagResourcesRequest {
        resource_list: vec![format!("qcs::cvm:ap-guangzhou:uin/{DEFAULT_ACCOUNT_UIN}:instance/{id}")],
        tags: vec![TagPair::new("k", "v")],
    };
    let failed = client.call("", &foreign).await.unwrap().data.failed_resources;
    assert_eq!(failed[0].code, "AuthFailure.UnauthorizedOperation");
    for outcome in
        client.tag_resources("ap-guangzhou", std::slice::from_ref(&id), &[Tag::new("k", "v")]).await
    {
        outcome.result.unwrap();
    }
    assert_eq!(cloud.get(&id).unwrap().tag("k"), Some("v"));
}
