//! Stock: how many more instances each offering (zone, instance type, charge type) can launch.
//!
//! An offering is unlimited unless the catalog (`"stock"`) or the admin API
//! (`PUT /_emulator/stock`) gives it a number. Both take the same entries:
//!
//! ```json
//! [{ "zone": "ap-guangzhou-3", "instance_type": "S5.MEDIUM2", "charge_type": "SPOTPAID", "available": 0 },
//!  { "zone": "ap-guangzhou-4", "instance_type": "S5.MEDIUM2", "available": 12 },
//!  { "zone": "ap-guangzhou-4", "instance_type": "SA2.MEDIUM4", "available": null }]
//! ```
//!
//! Without `charge_type` an entry sets every charge type that has stock (PREPAID,
//! POSTPAID_BY_HOUR, SPOTPAID, CDCPAID; CDHPAID instances use their dedicated host's capacity);
//! `null` makes the offering unlimited again.
//!
//! The world keeps, per limited offering, a *capacity*: the number of instances that may hold it
//! at once. Setting `available: N` sets the capacity to N plus the instances that hold the
//! offering now, so `available` is always capacity minus holders. RunInstances takes from it;
//! an instance gives its unit back when it is gone (terminated, reclaimed, or failed to launch
//! for a reason other than stock). A launch that fails because its stock vanished after the
//! request was accepted takes its unit with it. Capacities are journaled like instances; the
//! catalog's numbers apply to offerings the state never set.
//!
//! `StatusCategory` of DescribeZoneInstanceConfigInfos follows `available`: unlimited or at
//! least [`NORMAL_STOCK_BELOW`] is `EnoughStock`, from [`UNDER_STOCK_BELOW`] `NormalStock`,
//! from 1 `UnderStock`, 0 `WithoutStock` (and `Status` `SOLD_OUT`). An offering in `UnderStock`
//! is *low*: a seeded share of the instances created in it (`low_stock_launch_failure_rate`)
//! end `LAUNCH_FAILED`.

use serde::{Deserialize, Serialize};

use cvmfleet_wire::vocab::{InstanceChargeType, StockCategory};

/// Below this many available instances an offering is `UnderStock` (and low).
pub const UNDER_STOCK_BELOW: u64 = 10;
/// Below this many available instances an offering is `NormalStock`; from it, `EnoughStock`.
pub const NORMAL_STOCK_BELOW: u64 = 100;

/// The charge types with stock.
pub(crate) const STOCKED_CHARGE_TYPES: [InstanceChargeType; 4] = [
    InstanceChargeType::Prepaid,
    InstanceChargeType::PostpaidByHour,
    InstanceChargeType::Spotpaid,
    InstanceChargeType::Cdcpaid,
];

/// One stock setting (catalog `"stock"`, `PUT /_emulator/stock`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StockSpec {
    /// Zone.
    pub zone: String,
    /// Instance type.
    pub instance_type: String,
    /// Charge type; every stocked charge type when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charge_type: Option<String>,
    /// Instances that can still launch; `None` (`null`) for unlimited. Required, so that a
    /// forgotten number never reads as "unlimited".
    #[serde(deserialize_with = "required_nullable")]
    pub available: Option<u64>,
}

/// Reads a field that must be present and may be `null`.
fn required_nullable<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    Option::<u64>::deserialize(deserializer)
}

impl StockSpec {
    /// A setting for one charge type.
    #[must_use]
    pub fn new(
        zone: &str,
        instance_type: &str,
        charge_type: Option<InstanceChargeType>,
        available: Option<u64>,
    ) -> Self {
        StockSpec {
            zone: zone.to_owned(),
            instance_type: instance_type.to_owned(),
            charge_type: charge_type.map(|c| c.as_str().to_owned()),
            available,
        }
    }

    /// The offerings the entry sets. `Err` when the charge type is unknown or has no stock.
    pub(crate) fn offerings(&self) -> Result<Vec<Offering>, String> {
        let charges = match self.charge_type.as_deref() {
            None => STOCKED_CHARGE_TYPES.to_vec(),
            Some(text) => match InstanceChargeType::parse(text) {
                Some(c) if STOCKED_CHARGE_TYPES.contains(&c) => vec![c],
                _ => {
                    return Err(format!(
                        "the stock of `{}` in `{}` names charge type `{text}`; stock is kept for PREPAID, \
                         POSTPAID_BY_HOUR, SPOTPAID and CDCPAID",
                        self.instance_type, self.zone
                    ));
                }
            },
        };
        Ok(charges.into_iter().map(|c| Offering::new(&self.zone, &self.instance_type, c.as_str())).collect())
    }

    /// Checks the zone and the instance type against the catalog.
    pub(crate) fn check(&self, zone_exists: bool, sold_in_zone: bool) -> Result<(), String> {
        if !zone_exists {
            return Err(format!("the stock entry names unknown zone `{}`", self.zone));
        }
        if !sold_in_zone {
            return Err(format!(
                "the stock entry names instance type `{}`, which zone `{}` does not sell",
                self.instance_type, self.zone
            ));
        }
        self.offerings().map(|_| ())
    }
}

/// A limited offering as `GET /_emulator/stock` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockView {
    /// Zone.
    pub zone: String,
    /// Instance type.
    pub instance_type: String,
    /// Charge type.
    pub charge_type: String,
    /// Instances that can still launch.
    pub available: u64,
    /// Instances that hold a unit of it now.
    pub in_use: u64,
}

/// An offering: what stock is kept for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(crate) struct Offering {
    pub(crate) zone: String,
    pub(crate) instance_type: String,
    pub(crate) charge_type: String,
}

impl Offering {
    pub(crate) fn new(zone: &str, instance_type: &str, charge_type: &str) -> Self {
        Offering {
            zone: zone.to_owned(),
            instance_type: instance_type.to_owned(),
            charge_type: charge_type.to_owned(),
        }
    }
}

/// A capacity as the journal and the snapshot keep it: `None` is an explicit "unlimited".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Capacity {
    #[serde(flatten)]
    pub(crate) offering: Offering,
    pub(crate) capacity: Option<u64>,
}

/// The `StatusCategory` of an offering with `available` instances left (`None`: unlimited).
pub(crate) fn category(available: Option<u64>) -> StockCategory {
    match available {
        None => StockCategory::EnoughStock,
        Some(0) => StockCategory::WithoutStock,
        Some(n) if n < UNDER_STOCK_BELOW => StockCategory::UnderStock,
        Some(n) if n < NORMAL_STOCK_BELOW => StockCategory::NormalStock,
        Some(_) => StockCategory::EnoughStock,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_and_expansion() {
        assert_eq!(category(None), StockCategory::EnoughStock);
        assert_eq!(category(Some(0)), StockCategory::WithoutStock);
        assert_eq!(category(Some(9)), StockCategory::UnderStock);
        assert_eq!(category(Some(10)), StockCategory::NormalStock);
        assert_eq!(category(Some(100)), StockCategory::EnoughStock);
        let all = StockSpec::new("z", "S5.MEDIUM2", None, Some(1));
        assert_eq!(all.offerings().unwrap().len(), 4);
        let spot = StockSpec::new("z", "S5.MEDIUM2", Some(InstanceChargeType::Spotpaid), Some(1));
        assert_eq!(spot.offerings().unwrap(), [Offering::new("z", "S5.MEDIUM2", "SPOTPAID")]);
        let cdh = StockSpec::new("z", "S5.MEDIUM2", Some(InstanceChargeType::Cdhpaid), Some(1));
        assert!(cdh.offerings().unwrap_err().contains("CDHPAID"));
        assert!(all.check(false, true).unwrap_err().contains("unknown zone"));
        assert!(all.check(true, false).unwrap_err().contains("does not sell"));
        let text = r#"{"zone":"z","instance_type":"S5.MEDIUM2","available":null}"#;
        let parsed: StockSpec = serde_json::from_str(text).unwrap();
        assert_eq!(parsed, StockSpec::new("z", "S5.MEDIUM2", None, None));
        assert!(serde_json::from_str::<StockSpec>(r#"{"zone":"z","instance_type":"S5.MEDIUM2"}"#).is_err());
    }
}
