//! Where a create launches: the zone and offering, chosen from observed stock.
//!
//! Every slot of a group has a **home zone**, fixed by the spec alone: under `zonePolicy:
//! spread` the even split gives each zone its share, under `priority` every slot's home is the
//! first zone. A slot's pool, its `cvmfleet:pool` tag and its ClientToken name the home zone
//! (see [`crate::token`]); the *placement* — the zone the instance actually launches in and the
//! offering it runs on — is chosen per create, from what the cloud shows now:
//!
//! - the **candidates** of a home zone are, zone by zone, the group's offerings: under
//!   `spread` the home zone first and then the group's other zones in list order, under
//!   `priority` the zones in list order (home is the first); within a zone, the offerings in
//!   list order (`instanceTypePolicy: priority`) or by the zone's quoted monthly price, unknown
//!   prices last and ties in list order (`cheapest`). A group with explicit private IPs never
//!   leaves its zones (an IP lives in a subnet), only its offering falls back;
//! - a create goes to the first candidate that is neither sold out nor marked unavailable
//!   after a failed launch; the ones passed over are in the plan, with why;
//! - none left: the slots are **unplaced**, reported for that group alone.
//!
//! Instances on any accepted candidate count as present. One on a less preferred candidate
//! than the best available now is shown as on a fallback and, with `rebalance: true`, replaced
//! under the rollout bounds.

use serde::{Deserialize, Serialize};

use cvmfleet_spec::{Offering, OfferingPolicy, ZonePolicy};

use crate::desired::{DesiredGroup, DesiredZone};
use crate::observed::{ObservedInstance, OfferingState, Stock};

/// A zone and offering a create could launch on, in preference order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Candidate<'a> {
    /// Where it launches (with the zone's subnet).
    pub(crate) zone: &'a DesiredZone,
    /// What it runs on.
    pub(crate) offering: Offering,
}

/// A candidate a create did not take, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassedOver {
    /// Zone.
    pub zone: String,
    /// Instance type.
    pub instance_type: String,
    /// Charge type.
    pub charge_type: String,
    /// Why.
    pub reason: PassReason,
}

/// Why a candidate was passed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PassReason {
    /// The cloud's stock read said sold out.
    SoldOut,
    /// A launch on it failed for stock recently (within the unavailable-offering TTL).
    Unavailable,
}

impl PassedOver {
    /// `S5.MEDIUM2 sold out in ap-guangzhou-3`.
    #[must_use]
    pub fn describe(&self) -> String {
        let offering = Offering {
            instance_type: self.instance_type.clone(),
            charge_type: self.charge_type.clone(),
            market_options: None,
        };
        let why = match self.reason {
            PassReason::SoldOut => "sold out",
            PassReason::Unavailable => "unavailable after a failed launch",
        };
        format!("{} {why} in {}", offering.label(), self.zone)
    }
}

/// `S5.MEDIUM2 sold out in ap-guangzhou-3, …`: every candidate passed over, for plan text.
#[must_use]
pub fn describe_passed(passed: &[PassedOver]) -> String {
    passed.iter().map(PassedOver::describe).collect::<Vec<_>>().join(", ")
}

fn state<'m>(market: &'m [OfferingState], zone: &str, offering: &Offering) -> Option<&'m OfferingState> {
    market.iter().find(|s| {
        s.zone == zone && s.instance_type == offering.instance_type && s.charge_type == offering.charge_type
    })
}

/// The candidates for slots whose home is `home`, most preferred first.
pub(crate) fn candidates<'a>(
    group: &'a DesiredGroup,
    home: &'a DesiredZone,
    market: &[OfferingState],
) -> Vec<Candidate<'a>> {
    let zones: Vec<&DesiredZone> = if !home.private_ips.is_empty() {
        vec![home]
    } else {
        match group.capacity.zone_policy {
            ZonePolicy::Spread => {
                std::iter::once(home).chain(group.zones.iter().filter(|z| z.zone != home.zone)).collect()
            }
            ZonePolicy::Priority => group.zones.iter().collect(),
        }
    };
    let listed = group.offerings();
    let mut out = Vec::new();
    for zone in zones {
        let mut ordered: Vec<(usize, &Offering)> = listed.iter().enumerate().collect();
        if group.capacity.offering_policy == OfferingPolicy::Cheapest {
            let price = |o: &Offering| state(market, &zone.zone, o).and_then(|s| s.monthly_price);
            ordered.sort_by(|(ia, a), (ib, b)| match (price(a), price(b)) {
                (Some(pa), Some(pb)) => pa.total_cmp(&pb).then(ia.cmp(ib)),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => ia.cmp(ib),
            });
        }
        out.extend(ordered.into_iter().map(|(_, o)| Candidate { zone, offering: o.clone() }));
    }
    out
}

/// Why a candidate cannot take a create now, if it cannot.
fn blocked(market: &[OfferingState], candidate: &Candidate<'_>) -> Option<PassReason> {
    match state(market, &candidate.zone.zone, &candidate.offering).map(|s| s.stock) {
        Some(Stock::SoldOut) => Some(PassReason::SoldOut),
        Some(Stock::Unavailable) => Some(PassReason::Unavailable),
        Some(Stock::Available) | None => None,
    }
}

/// The first candidate that can take a create, with the ones passed over before it; `Err`
/// with every candidate passed over when none can.
pub(crate) fn choose<'a>(
    candidates: &[Candidate<'a>],
    market: &[OfferingState],
) -> Result<(Candidate<'a>, Vec<PassedOver>), Vec<PassedOver>> {
    let mut passed = Vec::new();
    for candidate in candidates {
        match blocked(market, candidate) {
            None => return Ok((candidate.clone(), passed)),
            Some(reason) => passed.push(PassedOver {
                zone: candidate.zone.zone.clone(),
                instance_type: candidate.offering.instance_type.clone(),
                charge_type: candidate.offering.charge_type.clone(),
                reason,
            }),
        }
    }
    Err(passed)
}

/// Whether an instance runs on one of the group's accepted offerings. An instance whose
/// charge type the API did not give is judged by its type alone.
pub(crate) fn accepts(group: &DesiredGroup, instance: &ObservedInstance) -> bool {
    group.offerings().iter().any(|o| {
        o.instance_type == instance.instance_type
            && (instance.instance_charge_type.is_empty() || o.charge_type == instance.instance_charge_type)
    })
}

/// The position of an instance's placement among `candidates` (`None`: not one of them).
pub(crate) fn rank_of(candidates: &[Candidate<'_>], instance: &ObservedInstance) -> Option<usize> {
    candidates.iter().position(|c| {
        c.zone.zone == instance.zone
            && c.offering.instance_type == instance.instance_type
            && (instance.instance_charge_type.is_empty()
                || c.offering.charge_type == instance.instance_charge_type)
    })
}

/// The position of the best candidate that can take a create now.
pub(crate) fn best_available(candidates: &[Candidate<'_>], market: &[OfferingState]) -> Option<usize> {
    candidates.iter().position(|c| blocked(market, c).is_none())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cvmfleet_spec::Capacity;
    use cvmfleet_wire::api::RunInstancesRequest;

    fn offering(t: &str, charge: &str) -> Offering {
        Offering { instance_type: t.into(), charge_type: charge.into(), market_options: None }
    }

    fn zone(name: &str, replicas: u32) -> DesiredZone {
        DesiredZone { zone: name.into(), replicas, subnet_id: None, private_ips: vec![] }
    }

    fn group(policy: ZonePolicy, offering_policy: OfferingPolicy) -> DesiredGroup {
        DesiredGroup {
            zones: vec![zone("gz-3", 2), zone("gz-4", 2)],
            capacity: Capacity {
                offerings: vec![
                    offering("S5.MEDIUM2", "SPOTPAID"),
                    offering("S5.MEDIUM2", "POSTPAID_BY_HOUR"),
                ],
                zone_policy: policy,
                offering_policy,
                rebalance: false,
            },
            ..DesiredGroup::new("g", RunInstancesRequest::default(), "0".repeat(16))
        }
    }

    fn sold_out(zone: &str, o: &Offering) -> OfferingState {
        OfferingState {
            zone: zone.into(),
            instance_type: o.instance_type.clone(),
            charge_type: o.charge_type.clone(),
            stock: Stock::SoldOut,
            monthly_price: None,
        }
    }

    fn labels(c: &[Candidate<'_>]) -> Vec<String> {
        c.iter().map(|c| format!("{}:{}", c.zone.zone, c.offering.label())).collect()
    }

    #[test]
    fn spread_tries_every_offering_at_home_before_other_zones() {
        let g = group(ZonePolicy::Spread, OfferingPolicy::Priority);
        let c = candidates(&g, &g.zones[1], &[]);
        assert_eq!(
            labels(&c),
            [
                "gz-4:S5.MEDIUM2 (SPOTPAID)",
                "gz-4:S5.MEDIUM2",
                "gz-3:S5.MEDIUM2 (SPOTPAID)",
                "gz-3:S5.MEDIUM2"
            ]
        );
        let market = [sold_out("gz-4", &g.capacity.offerings[0])];
        let (chosen, passed) = choose(&c, &market).unwrap();
        assert_eq!(
            (chosen.zone.zone.as_str(), chosen.offering.charge_type.as_str()),
            ("gz-4", "POSTPAID_BY_HOUR")
        );
        assert_eq!(passed[0].describe(), "S5.MEDIUM2 (SPOTPAID) sold out in gz-4");
    }

    #[test]
    fn priority_fills_zones_in_list_order_and_nothing_left_is_unplaced() {
        let g = group(ZonePolicy::Priority, OfferingPolicy::Priority);
        let c = candidates(&g, &g.zones[1], &[]);
        assert_eq!(labels(&c)[0], "gz-3:S5.MEDIUM2 (SPOTPAID)");
        let market: Vec<OfferingState> = c.iter().map(|c| sold_out(&c.zone.zone, &c.offering)).collect();
        assert_eq!(choose(&c, &market).unwrap_err().len(), 4);
        assert_eq!(best_available(&c, &market), None);
    }

    #[test]
    fn cheapest_orders_by_the_zones_price_with_unknown_last() {
        let g = group(ZonePolicy::Spread, OfferingPolicy::Cheapest);
        let priced = |o: &Offering, price: Option<f64>| OfferingState {
            stock: Stock::Available,
            monthly_price: price,
            ..sold_out("gz-3", o)
        };
        let (spot, hourly) = (&g.capacity.offerings[0], &g.capacity.offerings[1]);
        let c = candidates(&g, &g.zones[0], &[priced(spot, Some(30.0)), priced(hourly, Some(150.0))]);
        assert_eq!(labels(&c)[..2], ["gz-3:S5.MEDIUM2 (SPOTPAID)", "gz-3:S5.MEDIUM2"]);
        let c = candidates(&g, &g.zones[0], &[priced(spot, None), priced(hourly, Some(150.0))]);
        assert_eq!(labels(&c)[..2], ["gz-3:S5.MEDIUM2", "gz-3:S5.MEDIUM2 (SPOTPAID)"]);
    }
}
