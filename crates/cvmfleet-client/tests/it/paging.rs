//! Listings and batches: how many calls they cost and what they return.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cvmfleet_client::Error;
use cvmfleet_wire::Action;
use cvmfleet_wire::model::Filter;
use serde_json::{Value, json};

use crate::fake::{Fake, Recorded, Reply, error, success};
use crate::{client, client_with, ids};

fn instance(i: usize) -> Value {
    json!({"InstanceId": format!("ins-{i:08}"), "InstanceState": "RUNNING", "Placement": {"Zone": "ap-guangzhou-3"}})
}

fn number(params: &Value, name: &str) -> usize {
    match &params[name] {
        Value::Number(n) => usize::try_from(n.as_u64().unwrap()).unwrap(),
        Value::String(s) => s.parse().unwrap(),
        _ => 0,
    }
}

/// A DescribeInstances server holding `total` instances.
fn pages_of(total: usize) -> impl Fn(&Recorded, usize) -> Reply {
    move |request, _| {
        let params = request.params();
        let (offset, limit) = (number(&params, "Offset"), number(&params, "Limit"));
        let set: Vec<Value> = (offset..total.min(offset + limit)).map(instance).collect();
        success(json!({"TotalCount": total, "InstanceSet": set}), "r-page")
    }
}

async fn list(total: usize) -> (usize, Vec<String>) {
    let fake = Fake::start(pages_of(total)).await;
    let instances = client(&fake).describe_instances_all("ap-guangzhou", Vec::new()).await.unwrap();
    (fake.count(), instances.into_iter().map(|i| i.instance_id).collect())
}

#[tokio::test]
async fn a_listing_of_n_instances_costs_n_over_100_calls() {
    for (total, calls) in [(0, 1), (1, 1), (100, 1), (101, 2), (250, 3), (1000, 10)] {
        let (count, listed) = list(total).await;
        assert_eq!(count, calls, "{total} instances");
        assert_eq!(listed, ids(total), "{total} instances, in the service's order");
    }
}

#[tokio::test]
async fn every_page_carries_the_filters_and_limit_100() {
    let fake = Fake::start(pages_of(250)).await;
    let filters =
        vec![Filter::new("tag:fleet", ["web"]), Filter::new("zone", ["ap-guangzhou-3", "ap-guangzhou-4"])];
    client(&fake).describe_instances_all("ap-guangzhou", filters).await.unwrap();
    let mut offsets: Vec<usize> = fake.requests().iter().map(|r| number(&r.params(), "Offset")).collect();
    offsets.sort_unstable();
    assert_eq!(offsets, [0, 100, 200]);
    for request in fake.requests() {
        let params = request.params();
        assert_eq!(params["Limit"], 100);
        assert_eq!(params["Filters"][0], json!({"Name": "tag:fleet", "Values": ["web"]}));
        assert_eq!(params["Filters"][1]["Values"][1], "ap-guangzhou-4");
        assert!(params.get("InstanceIds").is_none());
    }
}

#[tokio::test]
async fn pages_are_fetched_concurrently() {
    let fake = Fake::start(move |request, index| {
        let page = pages_of(900)(request, index);
        Reply::Delayed(Duration::from_millis(150), Box::new(page))
    })
    .await;
    let client = client_with(&fake, |c| c.page_concurrency = 8);
    let started = Instant::now();
    let listed = client.describe_instances_all("ap-guangzhou", Vec::new()).await.unwrap();
    assert_eq!(listed.len(), 900);
    assert_eq!(fake.count(), 9);
    // One first page, then the other eight together: two round trips, not nine.
    assert!(started.elapsed() < Duration::from_millis(900), "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_listing_that_keeps_changing_is_an_error() {
    let grows = Arc::new(AtomicUsize::new(150));
    let total = grows.clone();
    let fake = Fake::start(move |request, index| {
        let now = total.fetch_add(1, Ordering::Relaxed);
        pages_of(now)(request, index)
    })
    .await;
    let err = client(&fake).describe_instances_all("ap-guangzhou", Vec::new()).await.unwrap_err();
    assert!(matches!(err, Error::ListingChanged { action: Action::DescribeInstances, .. }), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(fake.count(), 6, "three walks of two pages");
}

#[tokio::test]
async fn a_listing_that_changed_once_is_walked_again() {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let fake = Fake::start(move |request, index| {
        // The second page of the first walk sees one more instance.
        let total = if seen.fetch_add(1, Ordering::Relaxed) == 1 { 151 } else { 150 };
        pages_of(total)(request, index)
    })
    .await;
    let listed = client(&fake).describe_instances_all("ap-guangzhou", Vec::new()).await.unwrap();
    assert_eq!(listed.len(), 150);
    assert_eq!(fake.count(), 4);
}

#[tokio::test]
async fn a_failed_page_fails_the_listing() {
    let fake = Fake::start(|request, index| {
        if number(&request.params(), "Offset") == 200 {
            error("InvalidFilter", "bad", "r-bad")
        } else {
            pages_of(450)(request, index)
        }
    })
    .await;
    let err = client(&fake).describe_instances_all("ap-guangzhou", Vec::new()).await.unwrap_err();
    assert_eq!(err.code(), Some("InvalidFilter"));
}

#[tokio::test]
async fn id_lists_are_batched_by_100() {
    let fake = Fake::start(|request, _| {
        let params = request.params();
        let ids = params["InstanceIds"].as_array().cloned().unwrap_or_default();
        let states: Vec<Value> =
            ids.iter().map(|id| json!({"InstanceId": id, "InstanceState": "STOPPED"})).collect();
        let set: Vec<Value> = ids.iter().map(|id| json!({"InstanceId": id})).collect();
        success(json!({"TotalCount": ids.len(), "InstanceStatusSet": states, "InstanceSet": set}), "r-batch")
    })
    .await;
    let client = client(&fake);
    let statuses = client.describe_statuses("ap-guangzhou", &ids(250)).await.unwrap();
    assert_eq!(statuses.iter().map(|s| s.instance_id.clone()).collect::<Vec<_>>(), ids(250));
    let instances = client.describe_instances_by_ids("ap-guangzhou", &ids(101)).await.unwrap();
    assert_eq!(instances.len(), 101);
    let sizes: Vec<usize> =
        fake.requests().iter().map(|r| r.params()["InstanceIds"].as_array().unwrap().len()).collect();
    let mut sorted = sizes.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [1, 50, 100, 100, 100]);
    for request in fake.requests() {
        assert_eq!(request.params()["Limit"], 100);
    }

    // No call at all for no IDs: an empty InstanceIds would list everything.
    assert!(client.describe_statuses("ap-guangzhou", &[]).await.unwrap().is_empty());
    assert!(client.describe_instances_by_ids("ap-guangzhou", &[]).await.unwrap().is_empty());
    assert!(client.terminate_instances("ap-guangzhou", &[]).await.is_empty());
    assert_eq!(fake.count(), 5);
}

#[tokio::test]
async fn every_terminate_batch_is_attempted_and_reported() {
    let fake = Fake::start(|request, _| {
        let params = request.params();
        if params["InstanceIds"][0] == "ins-00000100" {
            error("UnsupportedOperation.InstancesProtected", "protected", "r-protected")
        } else {
            success(json!({}), &format!("r-{}", params["InstanceIds"][0].as_str().unwrap()))
        }
    })
    .await;
    let outcomes = client(&fake).terminate_instances("ap-guangzhou", &ids(250)).await;
    assert_eq!(fake.count(), 3);
    let summary: Vec<(usize, Result<&str, Option<&str>>)> =
        outcomes.iter().map(|o| (o.instance_ids.len(), o.result.as_deref().map_err(|e| e.code()))).collect();
    assert_eq!(
        summary,
        [
            (100, Ok("r-ins-00000000")),
            (100, Err(Some("UnsupportedOperation.InstancesProtected"))),
            (50, Ok("r-ins-00000200")),
        ]
    );
}
