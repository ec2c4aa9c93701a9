//! Stock for planning (issue 13): what the cloud says of the offerings the specs name, and the
//! memory of offerings a launch recently found short.
//!
//! - **Reads.** One DescribeZoneInstanceConfigInfos per region and charge type, filtered to
//!   the instance types the region's fleets name (at most 100 a call), and only for fleets a
//!   plan creates in (or that `rebalance`), as the round ([`crate::round`]) reads it from an
//!   unpriced plan: a fleet that needs nothing created costs no stock read. Each fleet gets
//!   the items of its zones as
//!   [`ObservedFleet::market`](cvmfleet_plan::ObservedFleet::market).
//! - **Memory** ([`Unavailable`]). A create refused for stock, or instances of this process's
//!   own creates that ended `LAUNCH_FAILED` for stock, mark their offering (region, zone, instance type, charge type)
//!   unavailable for a TTL (default [`DEFAULT_UNAVAILABLE_TTL`], Karpenter's 3 minutes),
//!   refreshed by each new failure. A marked offering is [`Stock::Unavailable`] whatever the
//!   stock read says, so the planner never retries it before the TTL ends: no churn loop.
//!   `watch` keeps one memory across cycles and exports its size.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use cvmfleet_client::CvmClient;
use cvmfleet_plan::{DesiredFleet, DesiredGroup, ObservedFleet, OfferingState, Presence, Stock};
use cvmfleet_wire::api::ZONE_CONFIG_MAX_FILTER_VALUES;
use cvmfleet_wire::codes;
use cvmfleet_wire::model::{Filter, InstanceTypeQuotaItem};
use cvmfleet_wire::vocab::{InstanceChargeType, StockCategory, StockStatus};

use crate::error::ExecError;

/// How long an offering stays unavailable after a launch on it failed for stock.
pub const DEFAULT_UNAVAILABLE_TTL: Duration = Duration::from_secs(180);

/// Hours in a month, for monthly prices of hourly offerings (the convention).
pub const HOURS_PER_MONTH: f64 = 730.0;

/// One offering in one zone of a region.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OfferingKey {
    /// Region.
    pub region: String,
    /// Zone.
    pub zone: String,
    /// Instance type.
    pub instance_type: String,
    /// Charge type.
    pub charge_type: String,
}

impl std::fmt::Display for OfferingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}) in {}", self.instance_type, self.charge_type, self.zone)
    }
}

/// The offerings a recent launch found short, each until its TTL ends. Shared by the rounds of
/// an apply and by the cycles of a watch.
#[derive(Debug)]
pub struct Unavailable {
    ttl: Duration,
    state: Mutex<Memory>,
}

#[derive(Debug, Default)]
struct Memory {
    until: BTreeMap<OfferingKey, Instant>,
    /// Failed instances already counted, so that one lingering failure is not a new one.
    seen_failed: BTreeSet<String>,
}

impl Default for Unavailable {
    fn default() -> Self {
        Unavailable::new(DEFAULT_UNAVAILABLE_TTL)
    }
}

impl Unavailable {
    /// An empty memory whose marks last `ttl`.
    #[must_use]
    pub fn new(ttl: Duration) -> Self {
        Unavailable { ttl, state: Mutex::new(Memory::default()) }
    }

    /// The TTL of a mark.
    #[must_use]
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Marks an offering unavailable from now for the TTL (refreshing an earlier mark).
    pub fn mark(&self, key: OfferingKey) {
        let until = Instant::now() + self.ttl;
        self.memory().until.insert(key, until);
    }

    /// Whether an offering is marked now.
    #[must_use]
    pub fn is_marked(&self, key: &OfferingKey) -> bool {
        self.memory().until.get(key).is_some_and(|until| *until > Instant::now())
    }

    /// The offerings marked now, sorted.
    #[must_use]
    pub fn marked(&self) -> Vec<OfferingKey> {
        let now = Instant::now();
        let mut memory = self.memory();
        memory.until.retain(|_, until| *until > now);
        memory.until.keys().cloned().collect()
    }

    /// Marks the offerings of `launched` instances (this process's own creates that ended
    /// `LAUNCH_FAILED`) that the observation shows failed for stock: the cloud accepted the
    /// create, then the stock vanished. Only this process's own failures count: an old failed
    /// instance still listed says nothing about stock now.
    pub fn note_failed_launches(
        &self,
        fleets: &[DesiredFleet],
        observed: &BTreeMap<String, ObservedFleet>,
        launched: &BTreeSet<String>,
    ) {
        if launched.is_empty() {
            return;
        }
        let region_of: BTreeMap<&str, &str> =
            fleets.iter().map(|f| (f.name.as_str(), f.region.as_str())).collect();
        let mut fresh = Vec::new();
        {
            let mut memory = self.memory();
            for (name, seen) in observed {
                let Some(region) = region_of.get(name.as_str()) else { continue };
                for instance in seen
                    .instances
                    .iter()
                    .filter(|i| launched.contains(&i.id) && i.presence() == Presence::Failed)
                {
                    let stock = instance.latest_error.as_deref().is_some_and(names_stock_shortage);
                    if stock && memory.seen_failed.insert(instance.id.clone()) {
                        fresh.push(OfferingKey {
                            region: (*region).to_owned(),
                            zone: instance.zone.clone(),
                            instance_type: instance.instance_type.clone(),
                            charge_type: instance.instance_charge_type.clone(),
                        });
                    }
                }
            }
        }
        for key in fresh {
            self.mark(key);
        }
    }
}

/// Whether a launch failure message names a stock shortage code (`ResourceInsufficient…`,
/// `ResourcesSoldOut…`: the cloud puts the code in `LatestOperationErrorMsg`).
#[must_use]
pub fn names_stock_shortage(message: &str) -> bool {
    message
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))
        .any(|word| codes::is_stock_shortage(word.trim_end_matches('.')))
}

/// The charge type and instance types a fleet's groups name (their offerings, or their
/// template's type), per charge type.
fn named_offerings(fleet: &DesiredFleet) -> BTreeMap<String, BTreeSet<String>> {
    let mut named: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    // A template without an InstanceType names nothing to read stock for.
    for o in fleet.groups.iter().flat_map(DesiredGroup::offerings).filter(|o| !o.instance_type.is_empty()) {
        named.entry(o.charge_type).or_default().insert(o.instance_type);
    }
    named
}

/// The monthly price an item quotes: the discounted hourly price × 730, or the discounted
/// prepaid month.
fn monthly_price(item: &InstanceTypeQuotaItem) -> Option<f64> {
    let price = &item.price;
    if item.instance_charge_type == InstanceChargeType::Prepaid.as_str() {
        price.discount_price
    } else {
        price.unit_price_discount.map(|hourly| hourly * HOURS_PER_MONTH)
    }
}

fn stock_of(item: &InstanceTypeQuotaItem) -> Stock {
    let sold_out = StockStatus::parse(&item.status) == Some(StockStatus::SoldOut)
        || StockCategory::parse(&item.status_category) == Some(StockCategory::WithoutStock);
    if sold_out { Stock::SoldOut } else { Stock::Available }
}

/// Reads the stock of the offerings `fleets` name, in their zones: one
/// DescribeZoneInstanceConfigInfos per region and charge type (100 instance types a call),
/// whatever the number of fleets. Which fleets need it is the round's to say
/// ([`crate::round`]); the marks of `memory` are applied by [`apply_marks`].
///
/// # Errors
/// The first failed read, naming its region. (A plan cannot choose offerings blind; the
/// caller may still plan without stock.)
pub async fn read_stock(
    client: &CvmClient,
    fleets: &[&DesiredFleet],
) -> Result<BTreeMap<String, Vec<OfferingState>>, ExecError> {
    // (region, charge type) → instance types.
    let mut wanted: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for fleet in fleets {
        for (charge, types) in named_offerings(fleet) {
            wanted.entry((fleet.region.clone(), charge)).or_default().extend(types);
        }
    }
    let mut items: BTreeMap<String, Vec<InstanceTypeQuotaItem>> = BTreeMap::new();
    for ((region, charge), types) in &wanted {
        let types: Vec<String> = types.iter().cloned().collect();
        for chunk in types.chunks(ZONE_CONFIG_MAX_FILTER_VALUES) {
            let filters = vec![
                Filter::new("instance-charge-type", [charge.clone()]),
                Filter::new("instance-type", chunk.to_vec()),
            ];
            let answer = client.describe_zone_instance_configs(region, filters).await.map_err(|source| {
                ExecError::Api {
                    step: format!("read stock of {} offering(s) in {region}", chunk.len()),
                    source,
                }
            })?;
            items.entry(region.clone()).or_default().extend(answer.data);
        }
    }
    let mut market = BTreeMap::new();
    for fleet in fleets {
        let zones: BTreeSet<&str> =
            fleet.groups.iter().flat_map(|g| g.zones.iter().map(|z| z.zone.as_str())).collect();
        let named = named_offerings(fleet);
        let states = items
            .get(&fleet.region)
            .into_iter()
            .flatten()
            .filter(|item| zones.contains(item.zone.as_str()))
            .filter(|item| {
                named.get(&item.instance_charge_type).is_some_and(|t| t.contains(&item.instance_type))
            })
            .map(|item| OfferingState {
                zone: item.zone.clone(),
                instance_type: item.instance_type.clone(),
                charge_type: item.instance_charge_type.clone(),
                stock: stock_of(item),
                monthly_price: monthly_price(item),
            })
            .collect();
        market.insert(fleet.name.clone(), states);
    }
    Ok(market)
}

/// Sets every offering `memory` marks to [`Stock::Unavailable`] in its fleets' market.
pub fn apply_marks(
    fleets: &[DesiredFleet],
    observed: &mut BTreeMap<String, ObservedFleet>,
    memory: &Unavailable,
) {
    let marked = memory.marked();
    if marked.is_empty() {
        return;
    }
    for fleet in fleets {
        let mine: Vec<&OfferingKey> = marked.iter().filter(|k| k.region == fleet.region).collect();
        if mine.is_empty() {
            continue;
        }
        let seen = observed.entry(fleet.name.clone()).or_default();
        for key in mine {
            let same = |s: &OfferingState| {
                s.zone == key.zone && s.instance_type == key.instance_type && s.charge_type == key.charge_type
            };
            match seen.market.iter_mut().find(|s| same(s)) {
                Some(state) => state.stock = Stock::Unavailable,
                None => seen.market.push(OfferingState {
                    zone: key.zone.clone(),
                    instance_type: key.instance_type.clone(),
                    charge_type: key.charge_type.clone(),
                    stock: Stock::Unavailable,
                    monthly_price: None,
                }),
            }
        }
        seen.market.sort_by(|a, b| {
            (&a.zone, &a.instance_type, &a.charge_type).cmp(&(&b.zone, &b.instance_type, &b.charge_type))
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(zone: &str) -> OfferingKey {
        OfferingKey {
            region: "ap-guangzhou".into(),
            zone: zone.into(),
            instance_type: "S5.MEDIUM2".into(),
            charge_type: "POSTPAID_BY_HOUR".into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn marks_last_their_ttl_and_are_refreshed_by_a_new_failure() {
        let memory = Unavailable::new(Duration::from_secs(180));
        memory.mark(key("ap-guangzhou-3"));
        tokio::time::advance(Duration::from_secs(120)).await;
        assert!(memory.is_marked(&key("ap-guangzhou-3")));
        memory.mark(key("ap-guangzhou-3"));
        tokio::time::advance(Duration::from_secs(120)).await;
        assert!(memory.is_marked(&key("ap-guangzhou-3")), "refreshed at 120 s, so marked until 300 s");
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(!memory.is_marked(&key("ap-guangzhou-3")));
        assert!(memory.marked().is_empty());
    }

    #[test]
    fn stock_failures_are_told_by_their_code() {
        assert!(names_stock_shortage("ResourceInsufficient.SpecifiedInstanceType: only 3 left"));
        assert!(names_stock_shortage("ResourcesSoldOut.SpecifiedInstanceType"));
        assert!(!names_stock_shortage("InternalError"));
    }
}
