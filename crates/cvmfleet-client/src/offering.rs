//! Helpers for stock and prices: the offerings of a region (DescribeZoneInstanceConfigInfos)
//! and the price of a create (InquiryPriceRunInstances).
//!
//! Neither action is paged, so each helper is one call (retried as any read is). A stock
//! shortage answered to RunInstances is a verdict, never retried by the client:
//! [`Error::is_stock_shortage`] tells it from other failures, for the planner to route around.

use cvmfleet_wire::api::{
    DescribeZoneInstanceConfigInfosRequest, InquiryPriceRunInstancesRequest, RunInstancesRequest,
};
use cvmfleet_wire::model::{Filter, InstanceTypeQuotaItem, Price};

use crate::client::{Answer, CvmClient};
use crate::error::Error;

impl CvmClient {
    /// The offerings of `region` matching every filter (`zone`, `instance-family`,
    /// `instance-type`, `instance-charge-type`, `sort-keys`; at most 10 filters of at most 100
    /// values, [`cvmfleet_wire::api::ZONE_CONFIG_MAX_FILTER_VALUES`]): one item per zone,
    /// instance type and charge type, with `Status`, `StatusCategory` and `Price`.
    ///
    /// # Errors
    /// The call's [`Error`].
    pub async fn describe_zone_instance_configs(
        &self,
        region: &str,
        filters: Vec<Filter>,
    ) -> Result<Answer<Vec<InstanceTypeQuotaItem>>, Error> {
        let request = DescribeZoneInstanceConfigInfosRequest {
            filters: if filters.is_empty() { None } else { Some(filters) },
        };
        let answer = self.call(region, &request).await?;
        Ok(Answer { data: answer.data.instance_type_quota_set, request_id: answer.request_id })
    }

    /// The price of `request` as a create would be charged (every instance of it), quoted
    /// with InquiryPriceRunInstances. The create's `ClientToken`, password, `MinCount`,
    /// `DryRun` and `UserData` are not sent ([`InquiryPriceRunInstancesRequest::from_run`]).
    ///
    /// # Errors
    /// The call's [`Error`]: e.g. `ResourcesSoldOut.SpecifiedInstanceType` for a sold-out
    /// offering, `FailedOperation.InquiryPriceFailed` for a configuration without a price.
    pub async fn quote_run_instances(
        &self,
        region: &str,
        request: &RunInstancesRequest,
    ) -> Result<Answer<Price>, Error> {
        let answer = self.call(region, &InquiryPriceRunInstancesRequest::from_run(request)).await?;
        Ok(Answer { data: answer.data.price, request_id: answer.request_id })
    }
}
