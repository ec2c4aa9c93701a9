//! The vocabulary of stock, prices and spot instances: `InstanceTypeQuotaItem.Status` and
//! `.StatusCategory`, `ItemPrice.ChargeUnit`, `InstanceMarketOptionsRequest`, and the
//! `MinCount` rule of RunInstances. Sources: `api.json` of `cvm-2017-03-12`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::InstanceChargeType;
use crate::model::InstanceMarketOptionsRequest;

api_enum! {
    /// `InstanceTypeQuotaItem.Status`. api.json: "SELL：表示实例可购买 / SOLD_OUT：表示实例已售罄".
    StockStatus {
        /// Can be bought.
        Sell = "SELL",
        /// Sold out.
        SoldOut = "SOLD_OUT",
    }
}

api_enum! {
    /// `InstanceTypeQuotaItem.StatusCategory`. api.json: "EnoughStock：表示对应库存非常充足 /
    /// NormalStock：表示对应库存供应有保障 / UnderStock：表示对应库存即将售罄 / WithoutStock：表示对应库存已经售罄".
    /// The API gives no numbers; the emulator's thresholds are in its README.
    StockCategory {
        /// Plenty of stock.
        EnoughStock = "EnoughStock",
        /// Supply is assured.
        NormalStock = "NormalStock",
        /// About to sell out.
        UnderStock = "UnderStock",
        /// Sold out.
        WithoutStock = "WithoutStock",
    }
}

api_enum! {
    /// `ItemPrice.ChargeUnit` of pay-as-you-go prices. api.json: "HOUR：表示计价单元是按每小时来计算 …
    /// 实例按小时后付费（POSTPAID_BY_HOUR）、带宽按小时后付费（BANDWIDTH_POSTPAID_BY_HOUR） / GB：表示计价单元是按
    /// 每GB来计算 … 流量按小时后付费（TRAFFIC_POSTPAID_BY_HOUR）".
    ChargeUnit {
        /// Per hour.
        Hour = "HOUR",
        /// Per GB of traffic.
        Gb = "GB",
    }
}

api_enum! {
    /// `InstanceMarketOptionsRequest.MarketType`. api.json: "市场选项类型，当前只支持取值：spot".
    MarketType {
        /// The spot market.
        Spot = "spot",
    }
}

api_enum! {
    /// `SpotMarketOptions.SpotInstanceType`. api.json: "竞价请求类型，当前仅支持类型：one-time".
    SpotInstanceType {
        /// A one-time request.
        OneTime = "one-time",
    }
}

/// The charge types that have stock and prices per offering: the ones InquiryPriceRunInstances
/// quotes (api.json, `InstanceChargeType` of InquiryPriceRunInstances: "PREPAID / POSTPAID_BY_HOUR
/// / SPOTPAID"). CDHPAID instances take the capacity of their dedicated host instead.
pub const PRICED_CHARGE_TYPES: [InstanceChargeType; 3] =
    [InstanceChargeType::Prepaid, InstanceChargeType::PostpaidByHour, InstanceChargeType::Spotpaid];

/// `LatestOperationErrorMsg` of a SPOTPAID instance that cvmfleet's emulator and simulation are
/// reclaiming (it is `TERMINATING`, and gone after the terminate delay). Not an API fact: Tencent
/// announces a reclamation through the instance's metadata (`spot/termination-time`) and its
/// event center, and DescribeInstances has no field for it (document 213/32487), so a reader
/// may use this text to name the reason but must work without it.
pub const EMULATED_SPOT_RECLAIM_MESSAGE: &str =
    "The spot instance is being reclaimed by the system: spot stock ran short.";

/// Whether `min_count` is a valid `MinCount` for `instance_count`. api.json, RunInstances
/// `MinCount`: "取值范围为不大于InstanceCount的正整数" (a positive integer at most InstanceCount).
#[must_use]
pub fn min_count_in_range(min_count: i64, instance_count: i64) -> bool {
    (1..=instance_count).contains(&min_count)
}

/// What is wrong with `InstanceMarketOptions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarketProblem {
    /// `MarketType` is not `spot`.
    MarketType(String),
    /// `SpotOptions.SpotInstanceType` is not `one-time`.
    SpotInstanceType(String),
    /// `SpotOptions` is missing (api.json marks it required).
    MissingSpotOptions,
    /// `SpotOptions.MaxPrice` is missing or empty (api.json marks it required).
    MissingMaxPrice,
    /// `SpotOptions.MaxPrice` is not a positive decimal number.
    MaxPrice(String),
}

impl fmt::Display for MarketProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MarketProblem::MarketType(v) => {
                write!(f, "`InstanceMarketOptions.MarketType` `{v}` is not one of {}", MarketType::names())
            }
            MarketProblem::SpotInstanceType(v) => write!(
                f,
                "`InstanceMarketOptions.SpotOptions.SpotInstanceType` `{v}` is not one of {}",
                SpotInstanceType::names()
            ),
            MarketProblem::MissingSpotOptions => {
                f.write_str("`InstanceMarketOptions.SpotOptions` is missing")
            }
            MarketProblem::MissingMaxPrice => {
                f.write_str("`InstanceMarketOptions.SpotOptions.MaxPrice` is missing")
            }
            MarketProblem::MaxPrice(v) => write!(
                f,
                "`InstanceMarketOptions.SpotOptions.MaxPrice` `{v}` is not a positive price in yuan per hour"
            ),
        }
    }
}

/// Reads a spot bid (`SpotOptions.MaxPrice`, a decimal string, yuan per hour).
#[must_use]
pub fn parse_max_price(text: &str) -> Option<f64> {
    let text = text.trim();
    let plain = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    text.parse::<f64>().ok().filter(|p| plain && p.is_finite() && *p > 0.0)
}

/// Checks the shape of `InstanceMarketOptions`: `MarketType` (default `spot`), `SpotOptions`
/// with a `MaxPrice`, and `SpotInstanceType` (default `one-time`). api.json: "若指定实例的付费模式为竞价
/// 付费但没有传递该参数时，默认按当前固定折扣价格出价" — without the options a SPOTPAID instance bids the
/// current price. The API says nothing of the options on other charge types; the emulator accepts
/// and ignores them there (the permissive choice, see the module docs of [`crate::vocab`]).
#[must_use]
pub fn market_options_problem(options: &InstanceMarketOptionsRequest) -> Option<MarketProblem> {
    if let Some(kind) = options.market_type.as_deref().filter(|k| MarketType::parse(k).is_none()) {
        return Some(MarketProblem::MarketType(kind.to_owned()));
    }
    let Some(spot) = &options.spot_options else { return Some(MarketProblem::MissingSpotOptions) };
    if let Some(kind) = spot.spot_instance_type.as_deref().filter(|k| SpotInstanceType::parse(k).is_none()) {
        return Some(MarketProblem::SpotInstanceType(kind.to_owned()));
    }
    match spot.max_price.as_deref() {
        None | Some("") => Some(MarketProblem::MissingMaxPrice),
        Some(text) if parse_max_price(text).is_none() => Some(MarketProblem::MaxPrice(text.to_owned())),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SpotMarketOptions;

    #[test]
    fn min_count_is_between_one_and_the_count() {
        assert!(min_count_in_range(1, 1) && min_count_in_range(3, 5) && min_count_in_range(5, 5));
        assert!(!min_count_in_range(0, 5) && !min_count_in_range(6, 5) && !min_count_in_range(-1, 5));
    }

    #[test]
    fn market_options() {
        let spot = |price: Option<&str>| InstanceMarketOptionsRequest {
            market_type: Some("spot".into()),
            spot_options: Some(SpotMarketOptions {
                max_price: price.map(str::to_owned),
                spot_instance_type: Some("one-time".into()),
            }),
        };
        assert_eq!(market_options_problem(&spot(Some("0.5"))), None);
        assert_eq!(market_options_problem(&spot(Some("1"))), None);
        assert_eq!(market_options_problem(&spot(None)), Some(MarketProblem::MissingMaxPrice));
        for bad in ["-1", "0", "abc", "1e3", "NaN", " "] {
            assert!(market_options_problem(&spot(Some(bad))).is_some(), "{bad}");
        }
        let reserved =
            InstanceMarketOptionsRequest { market_type: Some("reserved".into()), ..spot(Some("1")) };
        assert_eq!(market_options_problem(&reserved), Some(MarketProblem::MarketType("reserved".into())));
        let bare = InstanceMarketOptionsRequest { market_type: None, spot_options: None };
        assert_eq!(market_options_problem(&bare), Some(MarketProblem::MissingSpotOptions));
        assert!(MarketProblem::MissingMaxPrice.to_string().contains("MaxPrice"));
        assert_eq!(StockCategory::parse("UnderStock"), Some(StockCategory::UnderStock));
        assert_eq!(StockStatus::SoldOut.as_str(), "SOLD_OUT");
    }
}
