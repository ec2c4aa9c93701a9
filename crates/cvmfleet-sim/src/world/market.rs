//! Stock, prices and spot instances, after the emulator's `world/market.rs`, `stock.rs` and
//! `pricing.rs`: the same stock model (a capacity per offering; instances hold a unit until
//! they are gone; a launch whose stock vanished takes its unit with it), the same RunInstances
//! codes and `StatusCategory` thresholds, and DescribeZoneInstanceConfigInfos and
//! InquiryPriceRunInstances answers.
//!
//! Without a catalog, the sim answers about what it is asked or has been told: the zones and
//! instance types of the request's filters, else those its stock and price settings and its
//! instances name. Prices are per instance only (no disks or bandwidth, which quote as 0): per
//! hour, or per month for PREPAID. The zone-wide `ResourceInsufficient.AvailabilityZoneSoldOut`
//! is not modelled (the sim cannot know every type a zone sells).

use std::collections::{BTreeMap, BTreeSet};

use cvmfleet_wire::api::{
    DescribeZoneInstanceConfigInfosRequest, DescribeZoneInstanceConfigInfosResponse,
    InquiryPriceRunInstancesRequest, InquiryPriceRunInstancesResponse, ZONE_CONFIG_MAX_FILTER_VALUES,
    ZONE_CONFIG_MAX_FILTERS,
};
use cvmfleet_wire::codes;
use cvmfleet_wire::model::{InstanceTypeQuotaItem, ItemPrice, Price};
use cvmfleet_wire::vocab::{
    self, ChargeUnit, EMULATED_SPOT_RECLAIM_MESSAGE, InstanceChargeType, MarketProblem, PRICED_CHARGE_TYPES,
    StockCategory, StockStatus,
};

use super::{ApiError, Step, World, set_operation, state};
use crate::LostInstance;

/// Below this many available instances an offering is `UnderStock` (and low), as the emulator.
pub(crate) const UNDER_STOCK_BELOW: u64 = 10;
/// Below this many an offering is `NormalStock`; from it, `EnoughStock`, as the emulator.
pub(crate) const NORMAL_STOCK_BELOW: u64 = 100;

/// The charge types with stock, as the emulator.
pub(crate) const STOCKED_CHARGE_TYPES: [InstanceChargeType; 4] = [
    InstanceChargeType::Prepaid,
    InstanceChargeType::PostpaidByHour,
    InstanceChargeType::Spotpaid,
    InstanceChargeType::Cdcpaid,
];

/// An offering: (zone, instance type, charge type).
pub(crate) type Offering = (String, String, String);

/// What a create delivers.
#[derive(Debug, Clone)]
pub(super) struct Delivery {
    pub(super) count: u64,
    /// Limited and `UnderStock` when the request arrived.
    pub(super) low: bool,
    pub(super) offering: Offering,
}

/// The `StatusCategory` of an offering with `available` left (`None`: unlimited).
pub(crate) fn category(available: Option<u64>) -> StockCategory {
    match available {
        None => StockCategory::EnoughStock,
        Some(0) => StockCategory::WithoutStock,
        Some(n) if n < UNDER_STOCK_BELOW => StockCategory::UnderStock,
        Some(n) if n < NORMAL_STOCK_BELOW => StockCategory::NormalStock,
        Some(_) => StockCategory::EnoughStock,
    }
}

/// `LatestOperationErrorMsg` of a launch whose stock vanished, as the emulator's.
pub(super) fn no_stock_message(i: &cvmfleet_wire::model::Instance) -> String {
    format!(
        "{}: the stock of {} ({}) in {} ran out after the request was accepted; submit a new request.",
        codes::RESOURCE_INSUFFICIENT_SPECIFIED_INSTANCE_TYPE,
        i.instance_type,
        i.instance_charge_type,
        i.placement.zone
    )
}

impl World {
    /// Sets the stock of `zone`/`instance_type` under one charge type or every stocked one;
    /// `None` makes it unlimited. `false` (nothing changed) for a charge type without stock.
    pub(crate) fn set_stock(
        &mut self,
        zone: &str,
        instance_type: &str,
        charge: Option<&str>,
        available: Option<u64>,
    ) -> bool {
        let charges: Vec<InstanceChargeType> = match charge {
            None => STOCKED_CHARGE_TYPES.to_vec(),
            Some(text) => {
                match InstanceChargeType::parse(text).filter(|c| STOCKED_CHARGE_TYPES.contains(c)) {
                    Some(c) => vec![c],
                    None => return false,
                }
            }
        };
        for charge in charges {
            let offering = (zone.to_owned(), instance_type.to_owned(), charge.as_str().to_owned());
            match available {
                Some(n) => {
                    let capacity = n.saturating_add(self.in_use(&offering));
                    self.stock.insert(offering, capacity);
                }
                None => {
                    self.stock.remove(&offering);
                }
            }
        }
        true
    }

    /// Sets the price of an instance type under a priced charge type, in every region: yuan per
    /// hour, or per month for PREPAID. `false` for another charge type or a price below 0.
    pub(crate) fn set_price(&mut self, instance_type: &str, charge: &str, price: f64) -> bool {
        let priced = InstanceChargeType::parse(charge).is_some_and(|c| PRICED_CHARGE_TYPES.contains(&c));
        if !priced || !price.is_finite() || price < 0.0 {
            return false;
        }
        self.prices.insert((instance_type.to_owned(), charge.to_owned()), price);
        true
    }

    /// Instances holding a unit of the offering: listed, not `LAUNCH_FAILED`, stock not vanished.
    fn in_use(&self, offering: &Offering) -> u64 {
        self.records
            .values()
            .filter(|r| !r.stock_vanished && r.instance.instance_state != state::LAUNCH_FAILED)
            .filter(|r| {
                let i = &r.instance;
                i.placement.zone == offering.0
                    && i.instance_type == offering.1
                    && i.instance_charge_type == offering.2
            })
            .count() as u64
    }

    /// What the offering can still launch; `None` when unlimited.
    pub(crate) fn available(&self, offering: &Offering) -> Option<u64> {
        self.stock.get(offering).map(|capacity| capacity.saturating_sub(self.in_use(offering)))
    }

    /// The stock verdict of a create of `count` (at least `min_count`), with the emulator's codes.
    pub(super) fn stock_verdict(
        &self,
        offering: Offering,
        count: u64,
        min_count: Option<u64>,
    ) -> Result<Delivery, ApiError> {
        let charge = InstanceChargeType::parse(&offering.2);
        let available =
            if charge == Some(InstanceChargeType::Cdhpaid) { None } else { self.available(&offering) };
        let Some(available) = available else { return Ok(Delivery { count, low: false, offering }) };
        let low = available < UNDER_STOCK_BELOW;
        if available >= count {
            return Ok(Delivery { count, low, offering });
        }
        let what = format!("{} ({}) in {}", offering.1, offering.2, offering.0);
        if let Some(min) = min_count {
            if available >= min {
                return Ok(Delivery { count: available, low, offering });
            }
            return Err(ApiError::new(
                codes::RESOURCE_INSUFFICIENT_INSUFFICIENT_OFFERING_MINIMUM,
                format!("The stock of {what} is {available}, fewer than the MinCount of {min}."),
            ));
        }
        Err(if charge == Some(InstanceChargeType::Spotpaid) {
            ApiError::new(
                codes::INVALID_PARAMETER_VALUE_INSUFFICIENT_OFFERING,
                format!("The spot stock of {what} is {available}; {count} instances were asked for."),
            )
        } else if available == 0 {
            ApiError::new(codes::RESOURCES_SOLD_OUT_SPECIFIED_INSTANCE_TYPE, format!("{what} is sold out."))
        } else {
            ApiError::new(
                codes::RESOURCE_INSUFFICIENT_SPECIFIED_INSTANCE_TYPE,
                format!("The stock of {what} is {available}; {count} instances were asked for."),
            )
        })
    }

    /// The checks of `MinCount` and `InstanceMarketOptions`, and the spot bid, as the emulator.
    pub(super) fn check_market(
        &self,
        req: &cvmfleet_wire::api::RunInstancesRequest,
        count: i64,
    ) -> Result<(), ApiError> {
        if let Some(min) = req.min_count
            && !vocab::min_count_in_range(min, count)
        {
            return Err(ApiError::new(
                codes::INVALID_PARAMETER_VALUE_RANGE,
                format!(
                    "The value `{min}` of parameter `MinCount` is out of range; allowed: 1 to InstanceCount ({count})."
                ),
            ));
        }
        let Some(options) = &req.instance_market_options else { return Ok(()) };
        if let Some(problem) = vocab::market_options_problem(options) {
            return Err(match problem {
                MarketProblem::MissingSpotOptions => ApiError::missing("InstanceMarketOptions.SpotOptions"),
                MarketProblem::MissingMaxPrice => {
                    ApiError::missing("InstanceMarketOptions.SpotOptions.MaxPrice")
                }
                other => ApiError::new(codes::INVALID_PARAMETER_VALUE, format!("{other}.")),
            });
        }
        let spot = req.instance_charge_type.as_deref() == Some(InstanceChargeType::Spotpaid.as_str());
        let bid = options
            .spot_options
            .as_ref()
            .and_then(|s| s.max_price.as_deref())
            .and_then(vocab::parse_max_price);
        let ty = req.instance_type.clone().unwrap_or_else(|| "S1.SMALL1".into());
        if let (true, Some(bid), Some(price)) = (spot, bid, self.prices.get(&(ty.clone(), "SPOTPAID".into())))
            && bid < *price
        {
            return Err(ApiError::new(
                codes::INVALID_PARAMETER_VALUE_INSUFFICIENT_PRICE,
                format!("The bid of {bid} yuan per hour is below the spot price of {ty}, {price}."),
            ));
        }
        Ok(())
    }

    /// Reclaims a live SPOTPAID instance: `TERMINATING` at once, gone after the terminate
    /// delay, [`EMULATED_SPOT_RECLAIM_MESSAGE`] as its error message; recorded in
    /// [`World::lost`]. `false` when it is not a live SPOTPAID instance.
    pub(crate) fn reclaim_spot(&mut self, id: &str) -> bool {
        let now = self.now();
        let Some(r) = self.record_mut(id) else { return false };
        let st = r.instance.instance_state.clone();
        let live = !matches!(st.as_str(), state::TERMINATING | state::SHUTDOWN | state::LAUNCH_FAILED);
        if r.instance.instance_charge_type != InstanceChargeType::Spotpaid.as_str() || !live {
            return false;
        }
        set_operation(&mut r.instance, "TerminateInstances", "OPERATING", "");
        r.instance.latest_operation_request_id = None;
        r.instance.latest_operation_error_msg = Some(EMULATED_SPOT_RECLAIM_MESSAGE.into());
        r.instance.instance_state = state::TERMINATING.into();
        let seq = r.seq;
        self.schedule(seq, Some((now + self.config.terminate_delay, Step::Gone)));
        self.lost.push(LostInstance {
            instance_id: id.to_owned(),
            at: now,
            state: st,
            reason: "spot instance reclaimed".into(),
        });
        true
    }

    /// DescribeZoneInstanceConfigInfos of `region`.
    pub(super) fn describe_zone_configs(
        &self,
        region: &str,
        req: &DescribeZoneInstanceConfigInfosRequest,
    ) -> Result<DescribeZoneInstanceConfigInfosResponse, ApiError> {
        let filters = req.filters.as_deref().unwrap_or_default();
        if filters.len() > ZONE_CONFIG_MAX_FILTERS {
            return Err(ApiError::new(
                codes::INVALID_PARAMETER_VALUE_LIMIT_EXCEEDED,
                format!(
                    "{} filters were given; at most {ZONE_CONFIG_MAX_FILTERS} are allowed.",
                    filters.len()
                ),
            ));
        }
        let in_region = |zone: &str| zone.strip_prefix(region).is_some_and(|rest| rest.starts_with('-'));
        let mut sort = Vec::new();
        for f in filters {
            if f.values.is_empty() || f.values.len() > ZONE_CONFIG_MAX_FILTER_VALUES {
                return Err(ApiError::new(
                    if f.values.is_empty() {
                        codes::INVALID_FILTER
                    } else {
                        codes::INVALID_FILTER_VALUE_LIMIT_EXCEEDED
                    },
                    format!("The filter `{}` has {} values.", f.name, f.values.len()),
                ));
            }
            match f.name.as_str() {
                "zone" => {
                    if let Some(bad) = f.values.iter().find(|z| !in_region(z)) {
                        return Err(ApiError::new(
                            codes::INVALID_ZONE_MISMATCH_REGION,
                            format!("The zone `{bad}` does not exist in region `{region}`."),
                        ));
                    }
                }
                "instance-charge-type" => {
                    if let Some(bad) = f.values.iter().find(|c| InstanceChargeType::parse(c).is_none()) {
                        return Err(ApiError::new(
                            codes::INVALID_PARAMETER_VALUE,
                            format!("The filter `instance-charge-type` value `{bad}` is not a charge type."),
                        ));
                    }
                }
                "sort-keys" => {
                    for v in &f.values {
                        let key = match v.as_str() {
                            "cpu:asc" => (false, false),
                            "cpu:desc" => (false, true),
                            "mem:asc" => (true, false),
                            "mem:desc" => (true, true),
                            _ => {
                                return Err(ApiError::new(
                                    codes::INVALID_PARAMETER_VALUE,
                                    format!(
                                        "The filter `sort-keys` value `{v}` is not cpu or mem, asc or desc."
                                    ),
                                ));
                            }
                        };
                        sort.push(key);
                    }
                }
                "instance-family" | "instance-type" => {}
                other => {
                    return Err(ApiError::new(
                        codes::INVALID_FILTER,
                        format!("The filter `{other}` is not supported."),
                    ));
                }
            }
        }
        let values = |name: &str| filters.iter().find(|f| f.name == name).map(|f| f.values.clone());
        let wanted = |name: &str, value: &str| {
            filters.iter().filter(|f| f.name == name).all(|f| f.values.iter().any(|v| v == value))
        };
        // What the sim knows of: its settings and its instances.
        let mut known_zones = BTreeSet::new();
        let mut known_types = BTreeSet::new();
        for (zone, ty, _) in self.stock.keys() {
            known_zones.insert(zone.clone());
            known_types.insert(ty.clone());
        }
        known_types.extend(self.prices.keys().map(|(ty, _)| ty.clone()));
        for c in &self.created {
            known_zones.insert(c.zone.clone());
            known_types.insert(c.instance_type.clone());
        }
        let zones: BTreeSet<String> = values("zone").map_or_else(
            || known_zones.into_iter().filter(|z| in_region(z)).collect(),
            |v| v.into_iter().collect(),
        );
        let types: BTreeSet<String> =
            values("instance-type").map_or(known_types, |v| v.into_iter().collect());
        let charges: Vec<InstanceChargeType> = match values("instance-charge-type") {
            None => PRICED_CHARGE_TYPES.to_vec(),
            Some(_) => STOCKED_CHARGE_TYPES
                .into_iter()
                .filter(|c| wanted("instance-charge-type", c.as_str()))
                .collect(),
        };
        let mut items = Vec::new();
        for zone in zones.iter().filter(|z| wanted("zone", z)) {
            for ty in
                types.iter().filter(|t| wanted("instance-family", family(t)) && wanted("instance-type", t))
            {
                for charge in &charges {
                    let offering = (zone.clone(), ty.clone(), charge.as_str().to_owned());
                    let cat = category(self.available(&offering));
                    let sold_out = cat == StockCategory::WithoutStock;
                    items.push(InstanceTypeQuotaItem {
                        zone: zone.clone(),
                        instance_type: ty.clone(),
                        instance_charge_type: charge.as_str().to_owned(),
                        instance_family: family(ty).to_owned(),
                        type_name: format!("Standard {}", family(ty)),
                        status: if sold_out { StockStatus::SoldOut } else { StockStatus::Sell }
                            .as_str()
                            .to_owned(),
                        status_category: cat.as_str().to_owned(),
                        sold_out_reason: if sold_out { "insufficient stock".into() } else { String::new() },
                        price: self.price_of(ty, *charge, 1, 1).unwrap_or_default(),
                        ..InstanceTypeQuotaItem::default()
                    });
                }
            }
        }
        for (memory, descending) in sort.iter().rev() {
            items.sort_by(|a, b| {
                let order = if *memory { a.memory.cmp(&b.memory) } else { a.cpu.cmp(&b.cpu) };
                if *descending { order.reverse() } else { order }
            });
        }
        Ok(DescribeZoneInstanceConfigInfosResponse { instance_type_quota_set: items })
    }

    /// The price of `count` instances (`months` for PREPAID), when set.
    fn price_of(&self, ty: &str, charge: InstanceChargeType, count: u64, months: i64) -> Option<ItemPrice> {
        let price = *self.prices.get(&(ty.to_owned(), charge.as_str().to_owned()))?;
        #[allow(clippy::cast_precision_loss)]
        let total = price * count as f64;
        Some(if charge == InstanceChargeType::Prepaid {
            #[allow(clippy::cast_precision_loss)]
            let total = total * months.max(1) as f64;
            ItemPrice::prepaid(total, total)
        } else {
            ItemPrice::pay_as_you_go(total, total, ChargeUnit::Hour)
        })
    }

    /// InquiryPriceRunInstances: zone, image, count, charge type and period checked; a sold-out
    /// offering refused; the instances priced (bandwidth as 0).
    pub(super) fn inquiry_price(
        &self,
        region: &str,
        req: &InquiryPriceRunInstancesRequest,
    ) -> Result<InquiryPriceRunInstancesResponse, ApiError> {
        let run = req.to_run();
        let zone = run.placement.as_ref().map(|p| p.zone.clone()).filter(|z| !z.is_empty());
        let zone = zone.ok_or_else(|| ApiError::missing("Placement.Zone"))?;
        if !zone.strip_prefix(region).is_some_and(|rest| rest.starts_with('-')) {
            return Err(ApiError::new(
                codes::INVALID_ZONE_MISMATCH_REGION,
                format!("The zone `{zone}` does not exist in region `{region}`."),
            ));
        }
        if run.image_id.as_deref().is_none_or(str::is_empty) {
            return Err(ApiError::missing("ImageId"));
        }
        let count = run.instance_count.unwrap_or(1);
        if !(1..=cvmfleet_wire::MAX_BATCH as i64).contains(&count) {
            return Err(ApiError::new(
                codes::INVALID_PARAMETER_VALUE_RANGE,
                format!("The value `{count}` of parameter `InstanceCount` is out of range."),
            ));
        }
        let text = run
            .instance_charge_type
            .clone()
            .unwrap_or_else(|| InstanceChargeType::PostpaidByHour.to_string());
        let charge = InstanceChargeType::parse(&text).ok_or_else(|| {
            ApiError::new(
                codes::INVALID_PARAMETER_VALUE,
                format!("`InstanceChargeType` `{text}` is unknown."),
            )
        })?;
        let months = match (charge, &run.instance_charge_prepaid) {
            (InstanceChargeType::Prepaid, None) => return Err(ApiError::missing("InstanceChargePrepaid")),
            (InstanceChargeType::Prepaid, Some(p)) => p.period,
            _ => 1,
        };
        self.check_market(&run, count)?;
        let ty = run.instance_type.clone().unwrap_or_else(|| "S1.SMALL1".into());
        let offering = (zone, ty.clone(), charge.as_str().to_owned());
        if self.stock_verdict(offering, 1, None).is_err() {
            return Err(ApiError::new(
                codes::RESOURCES_SOLD_OUT_SPECIFIED_INSTANCE_TYPE,
                format!("{ty} ({charge}) is sold out."),
            ));
        }
        let instance = self.price_of(&ty, charge, count.unsigned_abs(), months).ok_or_else(|| {
            ApiError::new(
                codes::FAILED_OPERATION_INQUIRY_PRICE_FAILED,
                format!("There is no price for {ty} ({charge})."),
            )
        })?;
        let bandwidth = ItemPrice::pay_as_you_go(0.0, 0.0, ChargeUnit::Hour);
        Ok(InquiryPriceRunInstancesResponse {
            price: Price { instance_price: instance, bandwidth_price: bandwidth },
        })
    }

    /// Every stock setting, for the harness: offering → available.
    pub(crate) fn stock_view(&self) -> BTreeMap<Offering, u64> {
        self.stock.keys().filter_map(|o| Some((o.clone(), self.available(o)?))).collect()
    }
}

/// The family of an instance type: the part before the dot.
fn family(ty: &str) -> &str {
    ty.split('.').next().unwrap_or_default()
}
