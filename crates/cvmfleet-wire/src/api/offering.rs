//! Requests and responses of stock and prices: DescribeZoneInstanceConfigInfos and
//! InquiryPriceRunInstances.

use serde::{Deserialize, Serialize};

use super::{ApiRequest, RunInstancesRequest};
use crate::action::Action;
use crate::model::{
    DataDisk, EnhancedService, Filter, InstanceChargePrepaid, InstanceMarketOptionsRequest,
    InstanceTypeQuotaItem, InternetAccessible, LoginSettings, Placement, Price, SystemDisk, TagSpecification,
    VirtualPrivateCloud, null_as_default,
};

/// Most filters of a DescribeZoneInstanceConfigInfos request. api.json: "每次请求的`Filters`的上限为
/// 10，`Filter.Values`的上限为100".
pub const ZONE_CONFIG_MAX_FILTERS: usize = 10;
/// Most values of one filter of a DescribeZoneInstanceConfigInfos request (see
/// [`ZONE_CONFIG_MAX_FILTERS`]).
pub const ZONE_CONFIG_MAX_FILTER_VALUES: usize = 100;

/// DescribeZoneInstanceConfigInfos: the offerings of the request's region, one item per zone,
/// instance type and charge type, with stock and price. Not paged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DescribeZoneInstanceConfigInfosRequest {
    /// Filters `zone`, `instance-family`, `instance-type`, `instance-charge-type` and
    /// `sort-keys` (`cpu:desc`, `mem:asc`); at most [`ZONE_CONFIG_MAX_FILTERS`] of at most
    /// [`ZONE_CONFIG_MAX_FILTER_VALUES`] values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filters: Option<Vec<Filter>>,
}

/// DescribeZoneInstanceConfigInfos result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeZoneInstanceConfigInfosResponse {
    /// The offerings.
    #[serde(default, deserialize_with = "null_as_default")]
    pub instance_type_quota_set: Vec<InstanceTypeQuotaItem>,
}

impl ApiRequest for DescribeZoneInstanceConfigInfosRequest {
    const ACTION: Action = Action::DescribeZoneInstanceConfigInfos;
    type Response = DescribeZoneInstanceConfigInfosResponse;
}

/// InquiryPriceRunInstances: the price of a RunInstances request. Its parameters are those of
/// RunInstances that bear on the price (api.json); build one from a RunInstances request with
/// [`InquiryPriceRunInstancesRequest::from_run`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct InquiryPriceRunInstancesRequest {
    /// Zone and project; required.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
    /// Image; required.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    /// `PREPAID`, `POSTPAID_BY_HOUR` (default) or `SPOTPAID`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_charge_type: Option<String>,
    /// Required for `PREPAID`: the period priced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_charge_prepaid: Option<InstanceChargePrepaid>,
    /// Instance type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
    /// System disk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_disk: Option<SystemDisk>,
    /// Data disks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_disks: Option<Vec<DataDisk>>,
    /// VPC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_private_cloud: Option<VirtualPrivateCloud>,
    /// Public network.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub internet_accessible: Option<InternetAccessible>,
    /// How many instances the price is for, 1..=100 (default 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_count: Option<i64>,
    /// Display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_name: Option<String>,
    /// Login settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_settings: Option<LoginSettings>,
    /// Security groups.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_group_ids: Option<Vec<String>>,
    /// Agents.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enhanced_service: Option<EnhancedService>,
    /// Idempotency token of the inquiry itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
    /// Host name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_name: Option<String>,
    /// Tags.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag_specification: Option<Vec<TagSpecification>>,
    /// Spot bid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_market_options: Option<InstanceMarketOptionsRequest>,
}

impl InquiryPriceRunInstancesRequest {
    /// The price query of a RunInstances request: every parameter that InquiryPriceRunInstances
    /// takes, except the create's `ClientToken` and the login password (a quote needs neither,
    /// and a secret should not travel with it). `MinCount`, `DryRun`, `UserData`, `ActionTimer`
    /// and `DisableApiTermination` have no counterpart.
    #[must_use]
    pub fn from_run(run: &RunInstancesRequest) -> Self {
        InquiryPriceRunInstancesRequest {
            placement: run.placement.clone(),
            image_id: run.image_id.clone(),
            instance_charge_type: run.instance_charge_type.clone(),
            instance_charge_prepaid: run.instance_charge_prepaid.clone(),
            instance_type: run.instance_type.clone(),
            system_disk: run.system_disk.clone(),
            data_disks: run.data_disks.clone(),
            virtual_private_cloud: run.virtual_private_cloud.clone(),
            internet_accessible: run.internet_accessible.clone(),
            instance_count: run.instance_count,
            instance_name: run.instance_name.clone(),
            login_settings: run
                .login_settings
                .clone()
                .map(|login| LoginSettings { password: None, ..login })
                .filter(|login| login.key_ids.is_some() || login.keep_image_login.is_some()),
            security_group_ids: run.security_group_ids.clone(),
            enhanced_service: run.enhanced_service.clone(),
            client_token: None,
            host_name: run.host_name.clone(),
            tag_specification: run.tag_specification.clone(),
            instance_market_options: run.instance_market_options.clone(),
        }
    }

    /// The RunInstances request with the same parameters (for validating a quote the way a
    /// create is validated).
    #[must_use]
    pub fn to_run(&self) -> RunInstancesRequest {
        RunInstancesRequest {
            instance_charge_type: self.instance_charge_type.clone(),
            instance_charge_prepaid: self.instance_charge_prepaid.clone(),
            placement: self.placement.clone(),
            instance_type: self.instance_type.clone(),
            image_id: self.image_id.clone(),
            system_disk: self.system_disk.clone(),
            data_disks: self.data_disks.clone(),
            virtual_private_cloud: self.virtual_private_cloud.clone(),
            internet_accessible: self.internet_accessible.clone(),
            instance_count: self.instance_count,
            instance_name: self.instance_name.clone(),
            login_settings: self.login_settings.clone(),
            security_group_ids: self.security_group_ids.clone(),
            enhanced_service: self.enhanced_service.clone(),
            client_token: self.client_token.clone(),
            host_name: self.host_name.clone(),
            tag_specification: self.tag_specification.clone(),
            instance_market_options: self.instance_market_options.clone(),
            ..RunInstancesRequest::default()
        }
    }
}

/// InquiryPriceRunInstances result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InquiryPriceRunInstancesResponse {
    /// The price of the whole request (every instance of it).
    #[serde(default, deserialize_with = "null_as_default")]
    pub price: Price,
}

impl ApiRequest for InquiryPriceRunInstancesRequest {
    const ACTION: Action = Action::InquiryPriceRunInstances;
    type Response = InquiryPriceRunInstancesResponse;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SpotMarketOptions;

    #[test]
    fn a_quote_of_a_create_drops_the_token_the_password_and_the_create_only_parameters() {
        let run = RunInstancesRequest {
            placement: Some(Placement { zone: "ap-guangzhou-3".into(), ..Placement::default() }),
            image_id: Some("img-pmqg1cw7".into()),
            instance_type: Some("S5.MEDIUM2".into()),
            instance_count: Some(4),
            min_count: Some(2),
            client_token: Some("tok".into()),
            dry_run: Some(true),
            user_data: Some("aGVsbG8=".into()),
            login_settings: Some(LoginSettings {
                password: Some("Secret#123".into()),
                ..LoginSettings::default()
            }),
            instance_market_options: Some(InstanceMarketOptionsRequest {
                market_type: Some("spot".into()),
                spot_options: Some(SpotMarketOptions {
                    max_price: Some("0.1".into()),
                    spot_instance_type: None,
                }),
            }),
            ..RunInstancesRequest::default()
        };
        let quote = InquiryPriceRunInstancesRequest::from_run(&run);
        assert_eq!(quote.instance_count, Some(4));
        assert_eq!((quote.client_token.as_deref(), quote.login_settings.as_ref()), (None, None));
        let json = serde_json::to_string(&quote).unwrap();
        assert!(
            !json.contains("Secret") && !json.contains("MinCount") && !json.contains("UserData"),
            "{json}"
        );
        assert!(
            json.contains(
                r#""InstanceMarketOptions":{"SpotOptions":{"MaxPrice":"0.1"},"MarketType":"spot"}"#
            )
        );
        let back = quote.to_run();
        assert_eq!(back.instance_type, run.instance_type);
        assert_eq!((back.min_count, back.dry_run, back.user_data), (None, None, None));
        // The reference example, with its InternetMaxBandwidthOut as a number.
        let example: InquiryPriceRunInstancesRequest = serde_json::from_str(
            r#"{"Placement":{"Zone":"ap-shanghai-2"},"ImageId":"img-pmqg1cw7","InstanceChargeType":"PREPAID",
            "InstanceChargePrepaid":{"RenewFlag":"NOTIFY_AND_AUTO_RENEW","Period":1},"InstanceCount":1}"#,
        )
        .unwrap();
        assert_eq!(example.instance_charge_prepaid.map(|p| p.period), Some(1));
        assert!(serde_json::from_str::<InquiryPriceRunInstancesRequest>(r#"{"DryRun":true}"#).is_err());
    }
}
