//! Data objects of stock, prices and spot instances (`api.json` "objects"):
//! `InstanceMarketOptionsRequest`, `SpotMarketOptions`, `InstanceTypeQuotaItem`, `LocalDiskType`,
//! `ItemPrice` and `Price`.

use serde::{Deserialize, Serialize};

use super::{Externals, null_as_default};
use crate::vocab::{ChargeUnit, InstanceChargeType, StockCategory, StockStatus};

/// Market options of a RunInstances request: a spot bid (`InstanceMarketOptionsRequest`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InstanceMarketOptionsRequest {
    /// The spot options; api.json marks them required.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spot_options: Option<SpotMarketOptions>,
    /// `spot`, the only market type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub market_type: Option<String>,
}

/// A spot bid (`SpotMarketOptions`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SpotMarketOptions {
    /// The highest price per hour, yuan, as a decimal string (e.g. `"0.5"`); required.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_price: Option<String>,
    /// `one-time`, the only request type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spot_instance_type: Option<String>,
}

/// A price (`ItemPrice`), in yuan. Pay-as-you-go prices fill `UnitPrice` / `UnitPriceDiscount`
/// per `ChargeUnit`; prepaid prices fill `OriginalPrice` / `DiscountPrice` for the whole period.
/// The API sends every field, `0` where it does not apply; a field left `None` here was absent
/// or `null` (no price), which is not the same as a price of zero.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ItemPrice {
    /// Original price per charge unit (pay as you go).
    #[serde(default)]
    pub unit_price: Option<f64>,
    /// `HOUR` or `GB` (pay as you go).
    #[serde(default)]
    pub charge_unit: Option<String>,
    /// Original price of the period (prepaid).
    #[serde(default)]
    pub original_price: Option<f64>,
    /// Discounted price of the period (prepaid): what is charged.
    #[serde(default)]
    pub discount_price: Option<f64>,
    /// The discount as a percentage of the original price, e.g. `20.0` is 20 % of it ("2折").
    #[serde(default)]
    pub discount: Option<f64>,
    /// Discounted price per charge unit (pay as you go): what is charged.
    #[serde(default)]
    pub unit_price_discount: Option<f64>,
    /// Original unit price for hours 96 to 360, when the price has steps.
    #[serde(default)]
    pub unit_price_second_step: Option<f64>,
    /// Discounted unit price for hours 96 to 360.
    #[serde(default)]
    pub unit_price_discount_second_step: Option<f64>,
    /// Original unit price after hour 360.
    #[serde(default)]
    pub unit_price_third_step: Option<f64>,
    /// Discounted unit price after hour 360.
    #[serde(default)]
    pub unit_price_discount_third_step: Option<f64>,
    /// Original price of three years (prepaid).
    #[serde(default)]
    pub original_price_three_year: Option<f64>,
    /// Discounted price of three years (prepaid).
    #[serde(default)]
    pub discount_price_three_year: Option<f64>,
    /// Discount of three years.
    #[serde(default)]
    pub discount_three_year: Option<f64>,
    /// Original price of five years (prepaid).
    #[serde(default)]
    pub original_price_five_year: Option<f64>,
    /// Discounted price of five years (prepaid).
    #[serde(default)]
    pub discount_price_five_year: Option<f64>,
    /// Discount of five years.
    #[serde(default)]
    pub discount_five_year: Option<f64>,
    /// Original price of one year (prepaid).
    #[serde(default)]
    pub original_price_one_year: Option<f64>,
    /// Discounted price of one year (prepaid).
    #[serde(default)]
    pub discount_price_one_year: Option<f64>,
    /// Discount of one year.
    #[serde(default)]
    pub discount_one_year: Option<f64>,
}

impl ItemPrice {
    /// The charge unit, typed; `None` when absent or not one this version knows.
    #[must_use]
    pub fn unit(&self) -> Option<ChargeUnit> {
        self.charge_unit.as_deref().and_then(ChargeUnit::parse)
    }

    /// A pay-as-you-go price as the API sends one: `UnitPrice` / `UnitPriceDiscount` per
    /// `unit` (and the same for the later steps, the price having none), the prepaid fields
    /// `0`, `Discount` the percentage charged.
    #[must_use]
    pub fn pay_as_you_go(unit_price: f64, unit_price_discount: f64, unit: ChargeUnit) -> Self {
        ItemPrice {
            unit_price: Some(unit_price),
            unit_price_discount: Some(unit_price_discount),
            unit_price_second_step: Some(unit_price),
            unit_price_discount_second_step: Some(unit_price_discount),
            unit_price_third_step: Some(unit_price),
            unit_price_discount_third_step: Some(unit_price_discount),
            original_price: Some(0.0),
            discount_price: Some(0.0),
            ..ItemPrice::zero(unit, unit_price, unit_price_discount)
        }
    }

    /// A prepaid price as the API sends one: `OriginalPrice` / `DiscountPrice` of the period,
    /// the pay-as-you-go fields `0` (the API still says `ChargeUnit` `HOUR`, as its examples
    /// show).
    #[must_use]
    pub fn prepaid(original_price: f64, discount_price: f64) -> Self {
        ItemPrice {
            original_price: Some(original_price),
            discount_price: Some(discount_price),
            ..ItemPrice::zero(ChargeUnit::Hour, original_price, discount_price)
        }
    }

    /// Every field `0` but `ChargeUnit` and `Discount` (of `discounted` against `original`).
    fn zero(unit: ChargeUnit, original: f64, discounted: f64) -> Self {
        let discount = if original > 0.0 { (discounted / original * 1000.0).round() / 10.0 } else { 100.0 };
        ItemPrice {
            unit_price: Some(0.0),
            charge_unit: Some(unit.as_str().to_owned()),
            original_price: Some(0.0),
            discount_price: Some(0.0),
            discount: Some(discount),
            unit_price_discount: Some(0.0),
            unit_price_second_step: Some(0.0),
            unit_price_discount_second_step: Some(0.0),
            unit_price_third_step: Some(0.0),
            unit_price_discount_third_step: Some(0.0),
            original_price_three_year: Some(0.0),
            discount_price_three_year: Some(0.0),
            discount_three_year: Some(0.0),
            original_price_five_year: Some(0.0),
            discount_price_five_year: Some(0.0),
            discount_five_year: Some(0.0),
            original_price_one_year: Some(0.0),
            discount_price_one_year: Some(0.0),
            discount_one_year: Some(0.0),
        }
    }
}

/// The price of a RunInstances request (InquiryPriceRunInstances `Price`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Price {
    /// The instances: CPU and memory, system and data disks.
    #[serde(default, deserialize_with = "null_as_default")]
    pub instance_price: ItemPrice,
    /// The public network.
    #[serde(default, deserialize_with = "null_as_default")]
    pub bandwidth_price: ItemPrice,
}

/// A local disk an instance type can have (`LocalDiskType`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LocalDiskType {
    /// Disk type.
    #[serde(default, deserialize_with = "null_as_default")]
    pub r#type: String,
    /// Partition type.
    #[serde(default, deserialize_with = "null_as_default")]
    pub partition_type: String,
    /// Smallest size, GiB.
    #[serde(default, deserialize_with = "null_as_default")]
    pub min_size: i64,
    /// Largest size, GiB.
    #[serde(default, deserialize_with = "null_as_default")]
    pub max_size: i64,
    /// `REQUIRED` or `OPTIONAL`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub required: String,
}

/// One offering of a zone (DescribeZoneInstanceConfigInfos `InstanceTypeQuotaItem`): an instance
/// type under a charge type, with its stock and its price.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InstanceTypeQuotaItem {
    /// Zone.
    #[serde(default, deserialize_with = "null_as_default")]
    pub zone: String,
    /// Instance type.
    #[serde(default, deserialize_with = "null_as_default")]
    pub instance_type: String,
    /// Charge type of this offering.
    #[serde(default, deserialize_with = "null_as_default")]
    pub instance_charge_type: String,
    /// Network card, e.g. 25 for 25G.
    #[serde(default, deserialize_with = "null_as_default")]
    pub network_card: i64,
    /// Extensions.
    #[serde(default, deserialize_with = "null_as_default")]
    pub externals: Externals,
    /// vCPUs.
    #[serde(default, deserialize_with = "null_as_default")]
    pub cpu: i64,
    /// Memory, GB.
    #[serde(default, deserialize_with = "null_as_default")]
    pub memory: i64,
    /// Family, e.g. `S5`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub instance_family: String,
    /// Display name of the type.
    #[serde(default, deserialize_with = "null_as_default")]
    pub type_name: String,
    /// Local disks the type can have; empty when it can have none.
    #[serde(default, deserialize_with = "null_as_default")]
    pub local_disk_type_list: Vec<LocalDiskType>,
    /// `SELL` or `SOLD_OUT`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub status: String,
    /// The instance's price (CPU and memory only).
    #[serde(default, deserialize_with = "null_as_default")]
    pub price: ItemPrice,
    /// Why it is sold out.
    #[serde(default, deserialize_with = "null_as_default")]
    pub sold_out_reason: String,
    /// Private network bandwidth, Gbps.
    #[serde(default, deserialize_with = "null_as_default")]
    pub instance_bandwidth: f64,
    /// Packets per second, in units of 10,000.
    #[serde(default, deserialize_with = "null_as_default")]
    pub instance_pps: i64,
    /// Local storage blocks.
    #[serde(default, deserialize_with = "null_as_default")]
    pub storage_block_amount: i64,
    /// Processor model.
    #[serde(default, deserialize_with = "null_as_default")]
    pub cpu_type: String,
    /// GPUs.
    #[serde(default, deserialize_with = "null_as_default")]
    pub gpu: i64,
    /// FPGAs.
    #[serde(default, deserialize_with = "null_as_default")]
    pub fpga: i64,
    /// Remark.
    #[serde(default, deserialize_with = "null_as_default")]
    pub remark: String,
    /// Physical GPU cards (below 1 for vGPU).
    #[serde(default, deserialize_with = "null_as_default")]
    pub gpu_count: f64,
    /// CPU clock, e.g. `2.5GHz`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub frequency: String,
    /// `EnoughStock`, `NormalStock`, `UnderStock` or `WithoutStock`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub status_category: String,
}

impl InstanceTypeQuotaItem {
    /// `Status`, typed; `None` when absent or unknown.
    #[must_use]
    pub fn stock_status(&self) -> Option<StockStatus> {
        StockStatus::parse(&self.status)
    }

    /// `StatusCategory`, typed; `None` when absent or unknown.
    #[must_use]
    pub fn stock_category(&self) -> Option<StockCategory> {
        StockCategory::parse(&self.status_category)
    }

    /// `InstanceChargeType`, typed.
    #[must_use]
    pub fn charge_type(&self) -> Option<InstanceChargeType> {
        InstanceChargeType::parse(&self.instance_charge_type)
    }

    /// Whether the offering can be bought now: `Status` is `SELL` and the category is not
    /// `WithoutStock`.
    #[must_use]
    pub fn is_selling(&self) -> bool {
        self.stock_status() == Some(StockStatus::Sell)
            && self.stock_category() != Some(StockCategory::WithoutStock)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_example_reads() {
        // examples.json, DescribeZoneInstanceConfigInfos, trimmed.
        let item: InstanceTypeQuotaItem = serde_json::from_str(
            r#"{"Status":"SELL","Zone":"ap-guangzhou-6","NetworkCard":0,"Price":{"DiscountPrice":59,
            "UnitPrice":0,"ChargeUnit":"HOUR","OriginalPriceOneYear":708,"DiscountPriceOneYear":587.64},
            "InstanceFamily":"S2","Externals":{},"InstanceType":"S2.SMALL1","TypeName":"Standard S2",
            "InstanceChargeType":"POSTPAID_BY_HOUR","Memory":1,"LocalDiskTypeList":[],"Cpu":1,
            "SoldOutReason":"","StorageBlockAmount":0,"CpuType":"Intel Xeon E5-2680 v4","InstancePps":20,
            "InstanceBandwidth":1.5,"Gpu":0,"GpuCount":0,"Fpga":0,"Remark":"","Frequency":"2.4GHz",
            "StatusCategory":"EnoughStock","Later":1}"#,
        )
        .unwrap();
        assert!(item.is_selling());
        assert_eq!(item.charge_type(), Some(InstanceChargeType::PostpaidByHour));
        assert_eq!(item.price.discount_price_one_year, Some(587.64));
        assert_eq!(item.price.unit(), Some(ChargeUnit::Hour));
        assert_eq!(item.price.unit_price_discount, None);
        let sold_out = InstanceTypeQuotaItem { status: "SOLD_OUT".into(), ..item };
        assert!(!sold_out.is_selling());
        let price: Price = serde_json::from_str(r#"{"InstancePrice":null}"#).unwrap();
        assert_eq!(price, Price::default());
        let hourly = ItemPrice::pay_as_you_go(2.0, 1.5, ChargeUnit::Gb);
        assert_eq!(
            (hourly.unit_price_discount, hourly.discount, hourly.original_price),
            (Some(1.5), Some(75.0), Some(0.0))
        );
        assert_eq!(hourly.unit(), Some(ChargeUnit::Gb));
        let month = ItemPrice::prepaid(100.0, 100.0);
        assert_eq!(
            (month.discount_price, month.unit_price, month.discount),
            (Some(100.0), Some(0.0), Some(100.0))
        );
        let json = serde_json::to_value(&month).unwrap();
        assert_eq!(json.as_object().map(|o| o.values().filter(|v| v.is_null()).count()), Some(0));
    }
}
