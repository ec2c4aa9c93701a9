//! Helpers over [`CvmClient::call`]: whole listings, ID lists split into batches of 100, and
//! typed shorthands for the mutations the reconciler sends.
//!
//! Pages and batches run concurrently (at most [`ClientConfig::page_concurrency`] at a time),
//! each attempt still waiting for its action's rate limit, so a listing of N instances costs
//! ⌈N/100⌉ calls (one when there are none) and takes about ⌈N/100⌉ / rate seconds at worst.
//!
//! [`ClientConfig::page_concurrency`]: crate::ClientConfig::page_concurrency

use std::collections::{BTreeMap, BTreeSet};

use cvmfleet_wire::api::{
    DescribeInstancesRequest, DescribeInstancesStatusRequest, EmptyResponse, ModifyInstancesAttributeRequest,
    RunInstancesRequest, RunInstancesResponse, StartInstancesRequest, StopInstancesRequest,
    TerminateInstancesRequest,
};
use cvmfleet_wire::model::{Filter, Instance, InstanceStatus};
use cvmfleet_wire::{Action, ApiRequest, MAX_BATCH};
use tokio::task::JoinSet;

use crate::client::{Answer, CvmClient};
use crate::error::Error;

/// How often a listing is walked again when its pages do not add up before giving up with
/// [`Error::ListingChanged`].
pub(crate) const LISTING_ROUNDS: usize = 3;

/// `MAX_BATCH` as the API's integer type.
const PAGE_LIMIT: i64 = 100;

/// The outcome of one batch of a batched mutation.
#[derive(Debug)]
pub struct BatchOutcome {
    /// The instances the batch was for (at most 100).
    pub instance_ids: Vec<String>,
    /// The RequestId on success, the error otherwise.
    pub result: Result<String, Error>,
}

impl CvmClient {
    /// Every instance of `region` matching all `filters` (none: every instance), walking the
    /// pages at Limit 100. The first page gives `TotalCount`; the others are fetched
    /// concurrently.
    ///
    /// Offset paging over a set that changes meanwhile can skip or repeat instances. Pages whose
    /// `TotalCount` disagree, or that do not add up to `TotalCount` distinct instances, make the
    /// listing start over (three walks at most). Instances come back in the service's order,
    /// each once.
    ///
    /// # Errors
    /// The first failed page's error, or [`Error::ListingChanged`] when three walks in a row
    /// saw the set change.
    pub async fn describe_instances_all(
        &self,
        region: &str,
        filters: Vec<Filter>,
    ) -> Result<Vec<Instance>, Error> {
        let filters = if filters.is_empty() { None } else { Some(filters) };
        let mut reason = String::new();
        for round in 1..=LISTING_ROUNDS {
            match self.walk_instances(region, filters.clone()).await? {
                Ok(instances) => return Ok(instances),
                Err(why) => {
                    tracing::debug!(round, reason = %why, "DescribeInstances listing changed; walking again");
                    reason = why;
                }
            }
        }
        Err(Error::ListingChanged { action: Action::DescribeInstances, reason })
    }

    /// One walk over the pages: `Ok(Err(reason))` when the pages do not add up.
    async fn walk_instances(
        &self,
        region: &str,
        filters: Option<Vec<Filter>>,
    ) -> Result<Result<Vec<Instance>, String>, Error> {
        let page = |offset: usize| DescribeInstancesRequest {
            instance_ids: None,
            filters: filters.clone(),
            offset: Some(i64::try_from(offset).unwrap_or(i64::MAX)),
            limit: Some(PAGE_LIMIT),
        };
        let first = self.call(region, &page(0)).await?.data;
        let total = usize::try_from(first.total_count).unwrap_or(0);
        let offsets: Vec<usize> = (MAX_BATCH..total).step_by(MAX_BATCH).collect();
        let requests: Vec<DescribeInstancesRequest> = offsets.iter().map(|o| page(*o)).collect();
        let first_total = first.total_count;
        let mut pages = vec![first];
        pages.extend(self.fan_out_ok(region, requests).await?.into_iter().map(|answer| answer.data));
        let mut seen = BTreeSet::new();
        let mut instances = Vec::with_capacity(total);
        for (index, page) in pages.into_iter().enumerate() {
            if page.total_count != first_total {
                return Ok(Err(format!(
                    "page {} reported TotalCount {} but the first page {first_total}",
                    index + 1,
                    page.total_count
                )));
            }
            for instance in page.instance_set {
                if seen.insert(instance.instance_id.clone()) {
                    instances.push(instance);
                }
            }
        }
        if instances.len() != total {
            return Ok(Err(format!("the pages held {} distinct instances, not {total}", instances.len())));
        }
        Ok(Ok(instances))
    }

    /// The instances with the given IDs, in batches of 100 IDs. IDs the service does not know
    /// are simply absent from the result. No call is made for an empty list (an empty
    /// `InstanceIds` would list every instance).
    ///
    /// # Errors
    /// The first failed batch's error.
    pub async fn describe_instances_by_ids(
        &self,
        region: &str,
        ids: &[String],
    ) -> Result<Vec<Instance>, Error> {
        let requests = batches(ids)
            .map(|chunk| DescribeInstancesRequest {
                instance_ids: Some(chunk),
                filters: None,
                offset: None,
                limit: Some(PAGE_LIMIT),
            })
            .collect();
        let mut instances = Vec::new();
        for answer in self.fan_out_ok(region, requests).await? {
            instances.extend(answer.data.instance_set);
        }
        Ok(instances)
    }

    /// The states of the given instances (DescribeInstancesStatus), in batches of 100 IDs. No
    /// call is made for an empty list.
    ///
    /// # Errors
    /// The first failed batch's error.
    pub async fn describe_statuses(
        &self,
        region: &str,
        ids: &[String],
    ) -> Result<Vec<InstanceStatus>, Error> {
        let requests = batches(ids)
            .map(|chunk| DescribeInstancesStatusRequest {
                instance_ids: Some(chunk),
                offset: None,
                limit: Some(PAGE_LIMIT),
            })
            .collect();
        let mut statuses = Vec::new();
        for answer in self.fan_out_ok(region, requests).await? {
            statuses.extend(answer.data.instance_status_set);
        }
        Ok(statuses)
    }

    /// RunInstances. Retried on ambiguous failures only when the request has a `ClientToken`
    /// (see [`crate::retry`]).
    ///
    /// # Errors
    /// The call's [`Error`].
    pub async fn run_instances(
        &self,
        region: &str,
        request: &RunInstancesRequest,
    ) -> Result<Answer<RunInstancesResponse>, Error> {
        self.call(region, request).await
    }

    /// TerminateInstances in batches of 100 IDs; every batch is attempted and reported.
    pub async fn terminate_instances(&self, region: &str, ids: &[String]) -> Vec<BatchOutcome> {
        self.batched(region, ids, |instance_ids| TerminateInstancesRequest {
            instance_ids,
            ..Default::default()
        })
        .await
    }

    /// ModifyInstancesAttribute for `request.instance_ids`, in batches of 100 IDs sharing the
    /// request's one attribute.
    pub async fn modify_instances_attribute(
        &self,
        region: &str,
        request: &ModifyInstancesAttributeRequest,
    ) -> Vec<BatchOutcome> {
        self.batched(region, &request.instance_ids, |instance_ids| ModifyInstancesAttributeRequest {
            instance_ids,
            ..request.clone()
        })
        .await
    }

    /// StartInstances in batches of 100 IDs.
    pub async fn start_instances(&self, region: &str, ids: &[String]) -> Vec<BatchOutcome> {
        self.batched(region, ids, |instance_ids| StartInstancesRequest { instance_ids }).await
    }

    /// StopInstances for `request.instance_ids`, in batches of 100 IDs sharing the request's
    /// options.
    pub async fn stop_instances(&self, region: &str, request: &StopInstancesRequest) -> Vec<BatchOutcome> {
        self.batched(region, &request.instance_ids, |instance_ids| StopInstancesRequest {
            instance_ids,
            ..request.clone()
        })
        .await
    }

    async fn batched<R>(
        &self,
        region: &str,
        ids: &[String],
        make: impl Fn(Vec<String>) -> R,
    ) -> Vec<BatchOutcome>
    where
        R: ApiRequest<Response = EmptyResponse> + Send + Sync + 'static,
    {
        let chunks: Vec<Vec<String>> = batches(ids).collect();
        let requests = chunks.iter().cloned().map(make).collect();
        let mut results = BTreeMap::new();
        self.fan_out(region, requests, |index, result| {
            results.insert(index, result.map(|answer| answer.request_id));
            true
        })
        .await;
        chunks
            .into_iter()
            .enumerate()
            .map(|(index, instance_ids)| BatchOutcome {
                result: results.remove(&index).unwrap_or_else(|| {
                    Err(Error::InvalidRequest {
                        action: R::ACTION,
                        reason: "not sent: the runtime shut down first".into(),
                    })
                }),
                instance_ids,
            })
            .collect()
    }

    /// Sends `requests` concurrently and stops at the first error, abandoning the requests
    /// still in flight. Answers come back in request order.
    pub(crate) async fn fan_out_ok<R>(
        &self,
        region: &str,
        requests: Vec<R>,
    ) -> Result<Vec<Answer<R::Response>>, Error>
    where
        R: ApiRequest + Send + Sync + 'static,
        R::Response: Send + 'static,
    {
        let mut answers = BTreeMap::new();
        let mut failure = None;
        self.fan_out(region, requests, |index, result| match result {
            Ok(answer) => {
                answers.insert(index, answer);
                true
            }
            Err(error) => {
                failure = Some(error);
                false
            }
        })
        .await;
        match failure {
            Some(error) => Err(error),
            None => Ok(answers.into_values().collect()),
        }
    }

    /// Sends `requests` concurrently (at most `page_concurrency` in flight), handing each
    /// result to `on_result` as it arrives; `on_result` returning `false` abandons the rest.
    pub(crate) async fn fan_out<R>(
        &self,
        region: &str,
        requests: Vec<R>,
        mut on_result: impl FnMut(usize, Result<Answer<R::Response>, Error>) -> bool,
    ) where
        R: ApiRequest + Send + Sync + 'static,
        R::Response: Send + 'static,
    {
        let limit = self.config().page_concurrency.max(1);
        let mut pending = requests.into_iter().enumerate();
        let mut running = JoinSet::new();
        let spawn = |running: &mut JoinSet<_>, (index, request): (usize, R)| {
            let client = self.clone();
            let region = region.to_owned();
            running.spawn(async move { (index, client.call(&region, &request).await) });
        };
        for item in pending.by_ref().take(limit) {
            spawn(&mut running, item);
        }
        while let Some(joined) = running.join_next().await {
            let (index, result) = match joined {
                Ok(pair) => pair,
                // A panic in a call is a bug; pass it on unchanged rather than hide it.
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                // Only a runtime shutting down cancels these tasks; nothing more can be sent.
                Err(_) => return,
            };
            if !on_result(index, result) {
                return;
            }
            if let Some(item) = pending.next() {
                spawn(&mut running, item);
            }
        }
    }
}

/// The IDs, without repeats (first occurrence kept), in chunks of at most 100.
fn batches(ids: &[String]) -> impl Iterator<Item = Vec<String>> {
    batches_of(ids, MAX_BATCH)
}

/// The IDs, without repeats (first occurrence kept), in chunks of at most `size`.
pub(crate) fn batches_of(ids: &[String], size: usize) -> impl Iterator<Item = Vec<String>> {
    let mut seen = BTreeSet::new();
    let unique: Vec<String> = ids.iter().filter(|id| seen.insert(id.as_str())).cloned().collect();
    let chunks: Vec<Vec<String>> = unique.chunks(size.max(1)).map(<[String]>::to_vec).collect();
    chunks.into_iter()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_split_by_100_without_repeats() {
        let ids: Vec<String> = (0..250).map(|i| format!("ins-{i:08}")).collect();
        let mut with_repeats = ids.clone();
        with_repeats.extend(ids[..10].iter().cloned());
        let chunks: Vec<_> = batches(&with_repeats).collect();
        assert_eq!(chunks.iter().map(Vec::len).collect::<Vec<_>>(), [100, 100, 50]);
        assert_eq!(chunks.concat(), ids);
        assert_eq!(batches(&[]).count(), 0);
    }
}
