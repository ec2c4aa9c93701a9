//! The price table of the emulated cloud and the quotes made from it (InquiryPriceRunInstances,
//! the `Price` of DescribeZoneInstanceConfigInfos). Prices are in yuan (元), the unit api.json
//! gives for every `ItemPrice` field.
//!
//! The table is part of the catalog (`"prices"` in a `--catalog` file):
//!
//! ```json
//! { "prices": {
//!     "instances": [{ "instance_type": "S5.MEDIUM2", "charge_type": "POSTPAID_BY_HOUR",
//!                     "region": "ap-guangzhou", "price": 0.21, "discount": 100 }],
//!     "disks": [{ "disk_type": "CLOUD_PREMIUM", "hourly_per_gib": 0.0005, "monthly_per_gib": 0.35 }],
//!     "bandwidth": [{ "internet_charge_type": "TRAFFIC_POSTPAID_BY_HOUR", "price": 0.8 }] } }
//! ```
//!
//! - An instance price is per hour for `POSTPAID_BY_HOUR` and `SPOTPAID` (the spot market price)
//!   and per month for `PREPAID`; an entry without `region` applies to every region, and one
//!   with a region wins there (a file's entry without `region` replaces the built-in regional
//!   ones too). `discount` is the percentage charged (100: none), as `ItemPrice.Discount`.
//! - A disk price is per GiB: per hour for pay-as-you-go instances, per month for prepaid ones.
//! - A bandwidth price is per GB of traffic (`TRAFFIC_POSTPAID_BY_HOUR`), per Mbps per hour
//!   (`BANDWIDTH_POSTPAID_BY_HOUR`, `BANDWIDTH_PACKAGE`) or per Mbps per month
//!   (`BANDWIDTH_PREPAID`).
//!
//! A configuration with no instance or disk price cannot be quoted:
//! InquiryPriceRunInstances answers `FailedOperation.InquiryPriceFailed`, and
//! DescribeZoneInstanceConfigInfos shows its price fields as `null`.
//!
//! The built-in table ([`PriceTable::builtin`]) prices every built-in instance type from a rate
//! per vCPU-hour and per GiB-hour of its family, so that larger types cost more; ap-hongkong costs
//! 30 % more than the mainland regions; a prepaid month costs [`PREPAID_MONTH_FACTOR`] of 730
//! pay-as-you-go hours; a spot hour costs [`SPOT_FACTOR`] of a pay-as-you-go hour (Tencent: "the
//! price of spot instances is 3%-20% of the pay-as-you-go price", spot FAQ, document 213/17817).

use serde::{Deserialize, Serialize};

use cvmfleet_wire::model::{ItemPrice, Price};
use cvmfleet_wire::vocab::{ChargeUnit, DiskType, InstanceChargeType, InternetChargeType};

use crate::catalog::InstanceTypeSpec;

/// Hours in the month of a monthly price (8760 / 12).
pub const HOURS_PER_MONTH: f64 = 730.0;
/// A prepaid month of the built-in table costs this share of 730 pay-as-you-go hours.
pub const PREPAID_MONTH_FACTOR: f64 = 0.5;
/// A spot hour of the built-in table costs this share of a pay-as-you-go hour: the top of the
/// documented 3 %–20 % range.
pub const SPOT_FACTOR: f64 = 0.2;

/// The price of an instance type under a charge type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstancePriceSpec {
    /// The instance type, e.g. `S5.MEDIUM2`.
    pub instance_type: String,
    /// `POSTPAID_BY_HOUR`, `SPOTPAID` or `PREPAID`.
    pub charge_type: String,
    /// The region it applies to; every region when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Yuan per hour (pay as you go, spot) or per month (prepaid), before the discount.
    pub price: f64,
    /// The percentage of `price` charged, in `(0, 100]`; 100 means no discount.
    #[serde(default = "hundred")]
    pub discount: f64,
}

fn hundred() -> f64 {
    100.0
}

/// The price of a disk type, per GiB.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskPriceSpec {
    /// The disk type, e.g. `CLOUD_PREMIUM`.
    pub disk_type: String,
    /// Yuan per GiB per hour (pay-as-you-go and spot instances).
    pub hourly_per_gib: f64,
    /// Yuan per GiB per month (prepaid instances).
    pub monthly_per_gib: f64,
}

/// The price of public network billing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BandwidthPriceSpec {
    /// `TRAFFIC_POSTPAID_BY_HOUR` (per GB), `BANDWIDTH_POSTPAID_BY_HOUR` and `BANDWIDTH_PACKAGE`
    /// (per Mbps per hour) or `BANDWIDTH_PREPAID` (per Mbps per month).
    pub internet_charge_type: String,
    /// Yuan per unit.
    pub price: f64,
}

/// Every price of the emulated cloud (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceTable {
    /// Instance prices.
    #[serde(default)]
    pub instances: Vec<InstancePriceSpec>,
    /// Disk prices.
    #[serde(default)]
    pub disks: Vec<DiskPriceSpec>,
    /// Public network prices.
    #[serde(default)]
    pub bandwidth: Vec<BandwidthPriceSpec>,
}

/// Hourly pay-as-you-go rates of a family: per vCPU, per GiB of memory, per GPU.
struct FamilyRate {
    prefix: &'static str,
    vcpu: f64,
    gib: f64,
    gpu: f64,
}

/// The built-in families' rates (yuan per hour), in the proportions of Tencent's price list: the
/// AMD family SA2 is cheaper than the Intel S5 of the same size, older families a little dearer.
const FAMILY_RATES: [FamilyRate; 6] = [
    FamilyRate { prefix: "S1", vcpu: 0.075, gib: 0.035, gpu: 0.0 },
    FamilyRate { prefix: "S2", vcpu: 0.072, gib: 0.034, gpu: 0.0 },
    FamilyRate { prefix: "S5", vcpu: 0.07, gib: 0.033, gpu: 0.0 },
    FamilyRate { prefix: "S6", vcpu: 0.068, gib: 0.032, gpu: 0.0 },
    FamilyRate { prefix: "SA2", vcpu: 0.06, gib: 0.028, gpu: 0.0 },
    FamilyRate { prefix: "GN10X", vcpu: 0.07, gib: 0.033, gpu: 8.0 },
];

/// Rates of a family the table does not name.
const DEFAULT_RATE: FamilyRate = FamilyRate { prefix: "", vcpu: 0.075, gib: 0.035, gpu: 8.0 };

/// Regional price factors of the built-in table; other regions cost the base price.
const REGION_FACTORS: [(&str, f64); 1] = [("ap-hongkong", 1.3)];

/// Rounds to the fen (0.01 yuan), as the API's prices are.
pub(crate) fn fen(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// Rounds to 1/10,000 yuan: built-in unit prices keep this much so that small spot prices stay
/// distinct from one another.
fn fine(value: f64) -> f64 {
    (value * 10_000.0).round() / 10_000.0
}

impl PriceTable {
    /// The built-in prices of `types` in `regions` (see the module docs).
    #[must_use]
    pub fn builtin(types: &[InstanceTypeSpec], regions: &[&str]) -> PriceTable {
        let mut instances = Vec::new();
        for t in types {
            let family = t.family();
            let rate = FAMILY_RATES.iter().find(|r| r.prefix == family).unwrap_or(&DEFAULT_RATE);
            #[allow(clippy::cast_precision_loss)]
            let hourly = rate.vcpu * t.cpu as f64 + rate.gib * t.memory as f64 + rate.gpu * t.gpu as f64;
            // One entry for every region, and one for each region priced differently.
            let mut variants: Vec<(Option<&str>, f64)> = vec![(None, 1.0)];
            variants.extend(
                REGION_FACTORS.iter().filter(|(r, _)| regions.contains(r)).map(|(r, f)| (Some(*r), *f)),
            );
            for (region, factor) in variants {
                let on_demand = hourly * factor;
                let entry = |charge: InstanceChargeType, price: f64| InstancePriceSpec {
                    instance_type: t.instance_type.clone(),
                    charge_type: charge.as_str().to_owned(),
                    region: region.map(str::to_owned),
                    price,
                    discount: 100.0,
                };
                instances.push(entry(InstanceChargeType::PostpaidByHour, fine(on_demand)));
                instances.push(entry(InstanceChargeType::Spotpaid, fine(on_demand * SPOT_FACTOR)));
                instances.push(entry(
                    InstanceChargeType::Prepaid,
                    fen(on_demand * HOURS_PER_MONTH * PREPAID_MONTH_FACTOR),
                ));
            }
        }
        let disk = |kind: DiskType, hourly_per_gib: f64, monthly_per_gib: f64| DiskPriceSpec {
            disk_type: kind.as_str().to_owned(),
            hourly_per_gib,
            monthly_per_gib,
        };
        let band = |kind: InternetChargeType, price: f64| BandwidthPriceSpec {
            internet_charge_type: kind.as_str().to_owned(),
            price,
        };
        PriceTable {
            instances,
            disks: vec![
                // Local disks come with the instance.
                disk(DiskType::LocalBasic, 0.0, 0.0),
                disk(DiskType::LocalSsd, 0.0, 0.0),
                disk(DiskType::CloudBasic, 0.0004, 0.21),
                disk(DiskType::CloudPremium, 0.0005, 0.35),
                disk(DiskType::CloudBssd, 0.0009, 0.5),
                disk(DiskType::CloudSsd, 0.0013, 1.0),
                disk(DiskType::CloudHssd, 0.0014, 1.1),
                disk(DiskType::CloudTssd, 0.0028, 2.0),
            ],
            bandwidth: vec![
                band(InternetChargeType::TrafficPostpaidByHour, 0.8),
                band(InternetChargeType::BandwidthPostpaidByHour, 0.063),
                band(InternetChargeType::BandwidthPrepaid, 20.0),
                // Billed on the package, not per instance.
                band(InternetChargeType::BandwidthPackage, 0.0),
            ],
        }
    }

    /// Adds or replaces entries by key: (instance type, charge type, region), disk type,
    /// internet charge type. An instance entry without a region replaces every entry of its
    /// type and charge type, regional ones included: it sets the price everywhere.
    pub(crate) fn extend(&mut self, other: PriceTable) {
        for entry in other.instances {
            if entry.region.is_none() {
                self.instances.retain(|e| {
                    !(e.instance_type == entry.instance_type && e.charge_type == entry.charge_type)
                });
            }
            match self.instances.iter().position(|e| {
                e.instance_type == entry.instance_type
                    && e.charge_type == entry.charge_type
                    && e.region == entry.region
            }) {
                Some(i) => self.instances[i] = entry,
                None => self.instances.push(entry),
            }
        }
        for entry in other.disks {
            match self.disks.iter().position(|e| e.disk_type == entry.disk_type) {
                Some(i) => self.disks[i] = entry,
                None => self.disks.push(entry),
            }
        }
        for entry in other.bandwidth {
            match self.bandwidth.iter().position(|e| e.internet_charge_type == entry.internet_charge_type) {
                Some(i) => self.bandwidth[i] = entry,
                None => self.bandwidth.push(entry),
            }
        }
    }

    /// Checks values and spellings; `known_type` and `known_region` say what the catalog holds.
    pub(crate) fn validate(
        &self,
        known_type: impl Fn(&str) -> bool,
        known_region: impl Fn(&str) -> bool,
    ) -> Result<(), String> {
        let money = |what: String, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(format!("{what} must be a price of 0 or more"))
            }
        };
        for e in &self.instances {
            let what = format!("the price of `{}` ({})", e.instance_type, e.charge_type);
            if !known_type(&e.instance_type) {
                return Err(format!("{what} names an unknown instance type"));
            }
            if InstanceChargeType::parse(&e.charge_type)
                .is_none_or(|c| !cvmfleet_wire::vocab::PRICED_CHARGE_TYPES.contains(&c))
            {
                return Err(format!("{what}: the charge type must be PREPAID, POSTPAID_BY_HOUR or SPOTPAID"));
            }
            if let Some(region) = e.region.as_deref().filter(|r| !known_region(r)) {
                return Err(format!("{what} names unknown region `{region}`"));
            }
            money(what.clone(), e.price)?;
            if !(e.discount > 0.0 && e.discount <= 100.0) {
                return Err(format!("{what}: the discount must be a percentage in (0, 100]"));
            }
        }
        for e in &self.disks {
            if DiskType::parse(&e.disk_type).is_none() {
                return Err(format!("the disk price names unknown disk type `{}`", e.disk_type));
            }
            money(format!("the hourly price of {}", e.disk_type), e.hourly_per_gib)?;
            money(format!("the monthly price of {}", e.disk_type), e.monthly_per_gib)?;
        }
        for e in &self.bandwidth {
            if InternetChargeType::parse(&e.internet_charge_type).is_none() {
                return Err(format!(
                    "the bandwidth price names unknown internet charge type `{}`",
                    e.internet_charge_type
                ));
            }
            money(format!("the price of {}", e.internet_charge_type), e.price)?;
        }
        Ok(())
    }

    /// The instance price entry for `region`: the region's own, else the one for every region.
    pub(crate) fn instance(
        &self,
        region: &str,
        instance_type: &str,
        charge: InstanceChargeType,
    ) -> Option<&InstancePriceSpec> {
        let matching =
            |e: &&InstancePriceSpec| e.instance_type == instance_type && e.charge_type == charge.as_str();
        self.instances
            .iter()
            .filter(matching)
            .find(|e| e.region.as_deref() == Some(region))
            .or_else(|| self.instances.iter().filter(matching).find(|e| e.region.is_none()))
    }

    fn disk(&self, kind: &str) -> Option<&DiskPriceSpec> {
        self.disks.iter().find(|d| d.disk_type == kind)
    }

    fn bandwidth(&self, kind: &str) -> Option<&BandwidthPriceSpec> {
        self.bandwidth.iter().find(|b| b.internet_charge_type == kind)
    }

    /// The price of one instance of a type, CPU and memory only (DescribeZoneInstanceConfigInfos):
    /// an hourly price, or for `PREPAID` one month (and one and three years); every field `None`
    /// when the table has no price.
    pub(crate) fn offering_price(
        &self,
        region: &str,
        instance_type: &str,
        charge: InstanceChargeType,
    ) -> ItemPrice {
        let Some(entry) = self.instance(region, instance_type, charge) else { return ItemPrice::default() };
        let mut sum = Sum::new(charge == InstanceChargeType::Prepaid);
        sum.add(entry.price, entry.discount);
        let mut item = sum.item(ChargeUnit::Hour);
        if charge == InstanceChargeType::Prepaid {
            let discounted = entry.price * entry.discount / 100.0;
            item.original_price_one_year = Some(fen(entry.price * 12.0));
            item.discount_price_one_year = Some(fen(discounted * 12.0));
            item.discount_one_year = Some(entry.discount);
            item.original_price_three_year = Some(fen(entry.price * 36.0));
            item.discount_price_three_year = Some(fen(discounted * 36.0));
            item.discount_three_year = Some(entry.discount);
        }
        item
    }

    /// The hourly spot price of one instance (what a bid must reach), when the table has one.
    pub(crate) fn spot_price(&self, region: &str, instance_type: &str) -> Option<f64> {
        self.instance(region, instance_type, InstanceChargeType::Spotpaid)
            .map(|e| e.price * e.discount / 100.0)
    }

    /// The price of a whole RunInstances request. `Err` names what has no price.
    pub(crate) fn quote(&self, region: &str, order: &Order<'_>) -> Result<Price, String> {
        let prepaid = order.charge == InstanceChargeType::Prepaid;
        let months = if prepaid { order.period_months.max(1) } else { 1 };
        #[allow(clippy::cast_precision_loss)]
        let (count, months_f) = (order.count as f64, months as f64);
        let entry = self
            .instance(region, order.instance_type, order.charge)
            .ok_or_else(|| format!("instance type {} ({}) in {region}", order.instance_type, order.charge))?;
        let mut instance = Sum::new(prepaid);
        instance.add(entry.price * months_f * count, entry.discount);
        for (kind, size) in order.disks {
            let disk = self.disk(kind).ok_or_else(|| format!("disk type {kind}"))?;
            let per_gib = if prepaid { disk.monthly_per_gib * months_f } else { disk.hourly_per_gib };
            #[allow(clippy::cast_precision_loss)]
            instance.add(per_gib * *size as f64 * count, 100.0);
        }
        let mut bandwidth = Sum::new(false);
        let mut unit = ChargeUnit::Hour;
        if order.bandwidth_mbps > 0 {
            let band = self
                .bandwidth(order.internet_charge_type)
                .ok_or_else(|| format!("internet charge type {}", order.internet_charge_type))?;
            #[allow(clippy::cast_precision_loss)]
            let mbps = order.bandwidth_mbps as f64;
            match InternetChargeType::parse(order.internet_charge_type) {
                Some(InternetChargeType::TrafficPostpaidByHour) => {
                    unit = ChargeUnit::Gb;
                    bandwidth.add(band.price * count, 100.0);
                }
                Some(InternetChargeType::BandwidthPrepaid) => {
                    bandwidth = Sum::new(true);
                    bandwidth.add(band.price * mbps * months_f * count, 100.0);
                }
                _ => bandwidth.add(band.price * mbps * count, 100.0),
            }
        }
        Ok(Price { instance_price: instance.item(ChargeUnit::Hour), bandwidth_price: bandwidth.item(unit) })
    }
}

/// What a RunInstances request buys, for [`PriceTable::quote`].
#[derive(Debug, Clone)]
pub(crate) struct Order<'a> {
    pub(crate) instance_type: &'a str,
    pub(crate) charge: InstanceChargeType,
    pub(crate) period_months: i64,
    pub(crate) count: u64,
    /// (disk type, GiB) of the system disk and every data disk.
    pub(crate) disks: &'a [(String, i64)],
    pub(crate) internet_charge_type: &'a str,
    pub(crate) bandwidth_mbps: i64,
}

/// A running total, original and discounted, paid by the hour or for the period.
struct Sum {
    prepaid: bool,
    original: f64,
    discounted: f64,
}

impl Sum {
    fn new(prepaid: bool) -> Self {
        Sum { prepaid, original: 0.0, discounted: 0.0 }
    }

    fn add(&mut self, original: f64, discount_percent: f64) {
        self.original += original;
        self.discounted += original * discount_percent / 100.0;
    }

    /// The `ItemPrice`, every field present as the API sends it (zero where it does not apply).
    fn item(&self, unit: ChargeUnit) -> ItemPrice {
        if self.prepaid {
            ItemPrice::prepaid(fen(self.original), fen(self.discounted))
        } else {
            ItemPrice::pay_as_you_go(fine(self.original), fine(self.discounted), unit)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    fn table() -> PriceTable {
        Catalog::builtin().prices
    }

    fn hourly(t: &PriceTable, region: &str, ty: &str, charge: InstanceChargeType) -> f64 {
        t.instance(region, ty, charge).map(|e| e.price).unwrap()
    }

    #[test]
    fn builtin_prices_are_realistic_in_their_proportions() {
        let t = table();
        let on_demand = |ty| hourly(&t, "ap-guangzhou", ty, InstanceChargeType::PostpaidByHour);
        // Larger types cost more; AMD costs less than Intel of the same size.
        assert!(on_demand("S5.MEDIUM2") < on_demand("S5.MEDIUM4"));
        assert!(on_demand("S5.MEDIUM4") < on_demand("S5.LARGE8"));
        assert!(on_demand("S5.LARGE8") < on_demand("S5.2XLARGE32"));
        assert!(on_demand("SA2.MEDIUM4") < on_demand("S5.MEDIUM4"));
        for ty in ["S1.SMALL1", "S5.MEDIUM2", "S5.2XLARGE32", "SA2.LARGE8", "GN10X.2XLARGE40"] {
            let hour = on_demand(ty);
            let month = hourly(&t, "ap-guangzhou", ty, InstanceChargeType::Prepaid);
            let spot = hourly(&t, "ap-guangzhou", ty, InstanceChargeType::Spotpaid);
            assert!(month < hour * HOURS_PER_MONTH, "{ty}: prepaid {month} vs {}", hour * HOURS_PER_MONTH);
            assert!(spot > 0.0 && spot < hour / 4.0, "{ty}: spot {spot} vs {hour}");
            assert!(hourly(&t, "ap-hongkong", ty, InstanceChargeType::PostpaidByHour) > hour, "{ty}");
        }
        assert_eq!(on_demand("S5.MEDIUM2"), 0.206);
    }

    #[test]
    fn quotes_add_disks_and_bandwidth_and_multiply_by_count() {
        let t = table();
        let disks = [("CLOUD_PREMIUM".to_owned(), 50), ("CLOUD_SSD".to_owned(), 100)];
        let order = Order {
            instance_type: "S5.MEDIUM2",
            charge: InstanceChargeType::PostpaidByHour,
            period_months: 0,
            count: 3,
            disks: &disks,
            internet_charge_type: "BANDWIDTH_POSTPAID_BY_HOUR",
            bandwidth_mbps: 10,
        };
        let price = t.quote("ap-guangzhou", &order).unwrap();
        // 3 × (0.206 + 50 × 0.0005 + 100 × 0.0013) = 3 × 0.361
        assert_eq!(price.instance_price.unit_price_discount, Some(1.083));
        assert_eq!(price.instance_price.charge_unit.as_deref(), Some("HOUR"));
        assert_eq!(price.instance_price.discount_price, Some(0.0));
        assert_eq!(price.bandwidth_price.unit_price, Some(1.89));

        let prepaid =
            Order { charge: InstanceChargeType::Prepaid, period_months: 12, count: 1, ..order.clone() };
        let price = t.quote("ap-guangzhou", &prepaid).unwrap();
        // 12 × (75.19 + 50 × 0.35 + 100 × 1.0)
        assert_eq!(price.instance_price.original_price, Some(2312.28));
        assert_eq!(price.instance_price.discount_price, Some(2312.28));
        assert_eq!(price.instance_price.unit_price, Some(0.0));

        let spot = Order { charge: InstanceChargeType::Spotpaid, count: 1, disks: &[], ..order.clone() };
        let spot_price = t.quote("ap-guangzhou", &spot).unwrap().instance_price.unit_price_discount.unwrap();
        assert!(spot_price > 0.0 && spot_price < 0.206 / 4.0, "{spot_price}");

        let traffic = Order { internet_charge_type: "TRAFFIC_POSTPAID_BY_HOUR", count: 1, ..order.clone() };
        let band = t.quote("ap-guangzhou", &traffic).unwrap().bandwidth_price;
        assert_eq!((band.unit_price, band.charge_unit.as_deref()), (Some(0.8), Some("GB")));
        let none = Order { bandwidth_mbps: 0, ..order.clone() };
        assert_eq!(t.quote("ap-guangzhou", &none).unwrap().bandwidth_price.unit_price, Some(0.0));

        let unknown = Order { instance_type: "X9.HUGE", ..order };
        assert!(t.quote("ap-guangzhou", &unknown).unwrap_err().contains("X9.HUGE"));
    }

    #[test]
    fn regional_entries_win_and_discounts_apply() {
        let mut t = PriceTable::default();
        let entry = |region: Option<&str>, price| InstancePriceSpec {
            instance_type: "S5.MEDIUM2".into(),
            charge_type: "POSTPAID_BY_HOUR".into(),
            region: region.map(str::to_owned),
            price,
            discount: 50.0,
        };
        t.extend(PriceTable {
            instances: vec![entry(None, 1.0), entry(Some("r-2"), 2.0)],
            ..PriceTable::default()
        });
        assert_eq!(t.instances.len(), 2);
        let charge = InstanceChargeType::PostpaidByHour;
        let item = t.offering_price("r-1", "S5.MEDIUM2", charge);
        assert_eq!(
            (item.unit_price, item.unit_price_discount, item.discount),
            (Some(1.0), Some(0.5), Some(50.0))
        );
        assert_eq!(t.offering_price("r-2", "S5.MEDIUM2", charge).unit_price, Some(2.0));
        // An entry for every region replaces the regional ones.
        t.extend(PriceTable { instances: vec![entry(None, 1.5)], ..PriceTable::default() });
        assert_eq!(t.instances.len(), 1);
        assert_eq!(t.offering_price("r-2", "S5.MEDIUM2", charge).unit_price, Some(1.5));
        assert_eq!(t.offering_price("r-1", "S5.MEDIUM4", charge), ItemPrice::default());
        t.extend(PriceTable { instances: vec![entry(Some("r-2"), 2.0)], ..PriceTable::default() });
        assert!(t.validate(|_| true, |r| r == "r-1").is_err(), "r-2 is not known");
        assert!(t.validate(|_| true, |_| true).is_ok());
    }
}
