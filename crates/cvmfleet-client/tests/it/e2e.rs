//! End to end against the emulator on a loopback port: every action, in both request forms,
//! retries meeting real idempotency, and the client's limiter against the emulator's.

use std::time::Duration;

use cvmfleet_client::{ClientConfig, Credentials, CvmClient, Error, RateLimit, RequestMethod, RetryPolicy};
use cvmfleet_emulator::{
    DEV_SECRET_ID, DEV_SECRET_KEY, Emulator, EmulatorConfig, FaultRule, RunningEmulator, StockSpec,
};
use cvmfleet_wire::Action;
use cvmfleet_wire::api::{
    DescribeImagesRequest, DescribeInstanceTypeConfigsRequest, DescribeInstancesRequest,
    DescribeZonesRequest, ModifyInstancesAttributeRequest, RunInstancesRequest, StopInstancesRequest,
};
use cvmfleet_wire::model::{Filter, Placement, Tag, TagSpecification};

const REGION: &str = "ap-guangzhou";

async fn emulator(rate_limits: bool) -> RunningEmulator {
    Emulator::start(EmulatorConfig::default().instant().rate_limits(rate_limits)).await.unwrap()
}

fn client_for(emulator: &RunningEmulator, adjust: impl FnOnce(&mut ClientConfig)) -> CvmClient {
    let mut config = ClientConfig {
        retry: RetryPolicy {
            max_attempts: 4,
            base_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(200),
            jitter_seed: Some(3),
        },
        timeout: Duration::from_secs(5),
        ..ClientConfig::with_endpoint(emulator.endpoint())
    };
    adjust(&mut config);
    CvmClient::new(config, Credentials::new(DEV_SECRET_ID, DEV_SECRET_KEY)).unwrap()
}

fn run(count: i64, fleet: &str, token: Option<String>) -> RunInstancesRequest {
    RunInstancesRequest {
        instance_charge_type: Some("POSTPAID_BY_HOUR".into()),
        placement: Some(Placement { zone: "ap-guangzhou-3".into(), ..Placement::default() }),
        instance_type: Some("S5.MEDIUM2".into()),
        image_id: Some("img-pmqg1cw7".into()),
        instance_count: Some(count),
        instance_name: Some(format!("{fleet}-{{R:1}}")),
        client_token: token,
        tag_specification: Some(vec![TagSpecification {
            resource_type: "instance".into(),
            tags: vec![Tag::new("fleet", fleet)],
        }]),
        ..RunInstancesRequest::default()
    }
}

fn fleet_filter(fleet: &str) -> Vec<Filter> {
    vec![Filter::new("tag:fleet", [fleet])]
}

async fn states(client: &CvmClient, ids: &[String]) -> Vec<String> {
    let mut statuses = client.describe_statuses(REGION, ids).await.unwrap();
    statuses.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
    statuses.into_iter().map(|s| s.instance_state).collect()
}

/// Every action, through the client's typed helpers, in one request form.
async fn lifecycle(method: RequestMethod) {
    let emulator = emulator(true).await;
    let client = client_for(&emulator, |c| c.method = method);

    let zones = client.call(REGION, &DescribeZonesRequest {}).await.unwrap();
    assert!(zones.data.zone_set.iter().any(|z| z.zone == "ap-guangzhou-3"), "{:?}", zones.data);
    assert!(!zones.request_id.is_empty());
    let images = client
        .call(
            REGION,
            &DescribeImagesRequest { image_ids: Some(vec!["img-pmqg1cw7".into()]), ..Default::default() },
        )
        .await
        .unwrap();
    assert_eq!(images.data.image_set.len(), 1);
    let types = client
        .call(
            REGION,
            &DescribeInstanceTypeConfigsRequest {
                filters: Some(vec![Filter::new("instance-type", ["S5.MEDIUM2"])]),
            },
        )
        .await
        .unwrap();
    assert!(types.data.instance_type_config_set.iter().all(|t| t.instance_type == "S5.MEDIUM2"));
    assert!(!types.data.instance_type_config_set.is_empty());
    let offerings = client
        .describe_zone_instance_configs(
            REGION,
            vec![Filter::new("zone", ["ap-guangzhou-3"]), Filter::new("instance-type", ["S5.MEDIUM2"])],
        )
        .await
        .unwrap();
    assert_eq!(offerings.data.len(), 3, "one per priced charge type: {:?}", offerings.data);
    assert!(offerings.data.iter().all(|o| o.is_selling() && o.price.unit_price.is_some()));
    let price = client.quote_run_instances(REGION, &run(2, "web", Some("quoted".into()))).await.unwrap();
    assert!(price.data.instance_price.unit_price_discount.is_some_and(|p| p > 0.0), "{:?}", price.data);

    let dry = client
        .run_instances(REGION, &RunInstancesRequest { dry_run: Some(true), ..run(2, "web", None) })
        .await;
    assert_eq!(dry.unwrap_err().code(), Some("DryRunOperation"));

    let created = client.run_instances(REGION, &run(2, "web", Some("e2e-web-1".into()))).await.unwrap();
    let mut ids = created.data.instance_id_set.clone();
    ids.sort();
    assert_eq!(ids.len(), 2);
    let again = client.run_instances(REGION, &run(2, "web", Some("e2e-web-1".into()))).await.unwrap();
    let mut replayed = again.data.instance_id_set.clone();
    replayed.sort();
    assert_eq!(replayed, ids, "the same ClientToken returns the same instances");

    let listed = client.describe_instances_all(REGION, fleet_filter("web")).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|i| i.tag("fleet") == Some("web")));
    assert_eq!(states(&client, &ids).await, ["RUNNING", "RUNNING"]);

    let rename = ModifyInstancesAttributeRequest {
        instance_ids: ids.clone(),
        instance_name: Some("renamed".into()),
        ..Default::default()
    };
    for outcome in client.modify_instances_attribute(REGION, &rename).await {
        outcome.result.unwrap();
    }
    let by_ids = client.describe_instances_by_ids(REGION, &ids).await.unwrap();
    assert!(by_ids.iter().all(|i| i.instance_name == "renamed"), "{by_ids:?}");

    let stop = StopInstancesRequest { instance_ids: ids.clone(), ..Default::default() };
    for outcome in client.stop_instances(REGION, &stop).await {
        outcome.result.unwrap();
    }
    assert_eq!(states(&client, &ids).await, ["STOPPED", "STOPPED"]);
    for outcome in client.start_instances(REGION, &ids).await {
        outcome.result.unwrap();
    }
    assert_eq!(states(&client, &ids).await, ["RUNNING", "RUNNING"]);

    // Issue 12: DescribeRegions and the Tag service, in the same request form.
    assert!(client.describe_regions().await.unwrap().iter().any(|r| r.region == REGION));
    for outcome in client.tag_resources(REGION, &ids, &[Tag::new("team", "e2e"), Tag::new("k", "v")]).await {
        outcome.result.unwrap();
    }
    client.modify_resource_tags(REGION, &ids[0], &[Tag::new("owner", "ops")], &["k".into()]).await.unwrap();
    for outcome in client.untag_resources(REGION, &ids[1..], &["k".into()]).await {
        outcome.result.unwrap();
    }
    let found =
        client.find_tagged_instances(vec![cvmfleet_wire::tag::model::TagFilter::new("team", ["e2e"])]);
    assert_eq!(found.await.unwrap().len(), 2);
    let tags = client.describe_instance_tags(REGION, &ids).await.unwrap();
    assert_eq!(tags[&ids[0]], [Tag::new("fleet", "web"), Tag::new("team", "e2e"), Tag::new("owner", "ops")]);
    assert_eq!(tags[&ids[1]], [Tag::new("fleet", "web"), Tag::new("team", "e2e")]);
    let mapped = client.call("", &cvmfleet_wire::tag::api::GetResourcesRequest::default()).await.unwrap();
    assert_eq!(mapped.data.resource_tag_mapping_list.len(), 2);

    for outcome in client.terminate_instances(REGION, &ids).await {
        outcome.result.unwrap();
    }
    assert!(client.describe_instances_by_ids(REGION, &ids).await.unwrap().is_empty());

    let stats = client.stats();
    assert_eq!(stats.retries, 0, "{stats:?}");
    assert_eq!(stats.attempts.len(), Action::ALL.len(), "every action was called: {stats:?}");
    emulator.shutdown().await.unwrap();
}

#[tokio::test]
async fn every_action_works_with_post() {
    lifecycle(RequestMethod::Post).await;
}

#[tokio::test]
async fn every_action_works_with_get() {
    lifecycle(RequestMethod::Get).await;
}

#[tokio::test]
async fn a_lost_run_instances_response_is_retried_without_creating_twice() {
    let emulator = emulator(true).await;
    let client = client_for(&emulator, |_| {});
    emulator.add_fault(FaultRule::lose_response(Action::RunInstances)).unwrap();
    let created = client.run_instances(REGION, &run(3, "db", Some("e2e-db-1".into()))).await.unwrap();
    assert_eq!(created.data.instance_id_set.len(), 3);
    assert_eq!(client.call_counts()[&Action::RunInstances], 2);
    assert_eq!(emulator.stats().instances, 3, "the retry replayed the token instead of creating more");

    // Without a token the same fault is reported, not retried: the caller must re-observe.
    emulator.add_fault(FaultRule::lose_response(Action::RunInstances)).unwrap();
    let err = client.run_instances(REGION, &run(1, "db", None)).await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    assert_eq!(client.call_counts()[&Action::RunInstances], 3);
    assert_eq!(emulator.stats().instances, 4);
    emulator.shutdown().await.unwrap();
}

#[tokio::test]
async fn injected_server_faults_follow_the_retry_policy() {
    let emulator = emulator(true).await;
    let client = client_for(&emulator, |_| {});
    let created = client.run_instances(REGION, &run(1, "api", Some("e2e-api-1".into()))).await.unwrap();
    let ids = created.data.instance_id_set;

    emulator
        .add_fault(FaultRule::error(Action::DescribeInstancesStatus, "InternalError", "boom").times(2))
        .unwrap();
    assert_eq!(states(&client, &ids).await, ["RUNNING"]);
    assert_eq!(client.call_counts()[&Action::DescribeInstancesStatus], 3);

    emulator.add_fault(FaultRule::reset(Action::TerminateInstances)).unwrap();
    let outcome = client.terminate_instances(REGION, &ids).await.remove(0);
    assert!(matches!(outcome.result, Err(Error::Transport { .. })), "{outcome:?}");
    assert_eq!(client.call_counts()[&Action::TerminateInstances], 1);

    emulator
        .add_fault(FaultRule::error(Action::TerminateInstances, "RequestLimitExceeded", "slow down"))
        .unwrap();
    client.terminate_instances(REGION, &ids).await.remove(0).result.unwrap();
    assert_eq!(client.call_counts()[&Action::TerminateInstances], 3);
    assert_eq!(client.stats().throttled, 1);
    emulator.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_wrong_key_is_an_auth_failure_with_a_request_id() {
    let emulator = emulator(false).await;
    let config = ClientConfig::with_endpoint(emulator.endpoint());
    let client = CvmClient::new(config, Credentials::new(DEV_SECRET_ID, "not-the-key")).unwrap();
    let err = client.call(REGION, &DescribeZonesRequest {}).await.unwrap_err();
    assert_eq!(err.code(), Some("AuthFailure.SignatureFailure"), "{err}");
    assert!(err.request_id().is_some_and(|id| !id.is_empty()));
    assert_eq!(client.call_counts()[&Action::DescribeZones], 1);
    emulator.shutdown().await.unwrap();
}

#[tokio::test]
async fn large_listings_cost_one_call_per_hundred() {
    let emulator = emulator(false).await;
    let client = client_for(&emulator, |c| {
        c.rate_limits = Action::ALL.map(|a| (a, RateLimit::unlimited())).into();
    });
    for batch in 0..3 {
        client.run_instances(REGION, &run(84, "big", Some(format!("e2e-big-{batch}")))).await.unwrap();
    }
    client.take_stats();
    let listed = client.describe_instances_all(REGION, fleet_filter("big")).await.unwrap();
    assert_eq!(listed.len(), 252);
    assert_eq!(client.call_counts(), [(Action::DescribeInstances, 3)].into());
    let ids: Vec<String> = listed.into_iter().map(|i| i.instance_id).collect();
    let outcomes = client.terminate_instances(REGION, &ids).await;
    assert_eq!(outcomes.len(), 3);
    assert!(outcomes.iter().all(|o| o.result.is_ok()), "{outcomes:?}");
    emulator.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_client_limiter_keeps_the_emulator_from_throttling() {
    let emulator = emulator(true).await;
    // Published limits on both sides: 60 concurrent reads are paced, never refused.
    let paced = client_for(&emulator, |_| {});
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..60 {
        let client = paced.clone();
        tasks.spawn(
            async move { client.call(REGION, &DescribeInstancesRequest::default()).await.map(|_| ()) },
        );
    }
    for result in tasks.join_all().await {
        result.unwrap();
    }
    assert_eq!(paced.stats().throttled, 0);

    // Without the client's limiter the emulator refuses some, and retries absorb them.
    let unpaced = client_for(&emulator, |c| {
        c.rate_limits = Action::ALL.map(|a| (a, RateLimit::unlimited())).into();
        c.retry.max_attempts = 10;
    });
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..60 {
        let client = unpaced.clone();
        tasks.spawn(
            async move { client.call(REGION, &DescribeInstancesRequest::default()).await.map(|_| ()) },
        );
    }
    for result in tasks.join_all().await {
        result.unwrap();
    }
    let stats = unpaced.stats();
    assert!(stats.throttled > 0, "{stats:?}");
    assert_eq!(stats.attempts[&Action::DescribeInstances], 60 + stats.retries);
    emulator.shutdown().await.unwrap();
}

/// Issue 13: a sold-out offering is answered once: the client neither retries it nor hides
/// its code, so the planner can route around it.
#[tokio::test]
async fn a_stock_shortage_is_returned_at_once_issue_13() {
    let emulator = emulator(true).await;
    emulator.set_stock(&[StockSpec::new("ap-guangzhou-3", "S5.MEDIUM2", None, Some(1))]).unwrap();
    let client = client_for(&emulator, |_| {});
    let err = client.run_instances(REGION, &run(2, "web", Some("short".into()))).await.unwrap_err();
    assert!(err.is_stock_shortage(), "{err}");
    assert_eq!(err.code(), Some("ResourceInsufficient.SpecifiedInstanceType"));
    assert!(err.request_id().is_some());
    let stats = client.stats();
    assert_eq!((stats.attempts.get(&Action::RunInstances).copied(), stats.retries), (Some(1), 0));
    let partial = RunInstancesRequest { min_count: Some(1), ..run(2, "web", Some("partial".into())) };
    assert_eq!(client.run_instances(REGION, &partial).await.unwrap().data.instance_id_set.len(), 1);
    emulator.shutdown().await.unwrap();
}
