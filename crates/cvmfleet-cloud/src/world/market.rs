//! Stock, prices and spot instances: the stock verdict of RunInstances, stock settings,
//! DescribeZoneInstanceConfigInfos, InquiryPriceRunInstances and spot reclamation. The rules are
//! in [`crate::stock`] and [`crate::pricing`].

use cvmfleet_wire::api::{
    DescribeZoneInstanceConfigInfosRequest, DescribeZoneInstanceConfigInfosResponse,
    InquiryPriceRunInstancesRequest, InquiryPriceRunInstancesResponse, ZONE_CONFIG_MAX_FILTER_VALUES,
    ZONE_CONFIG_MAX_FILTERS,
};
use cvmfleet_wire::codes;
use cvmfleet_wire::model::{Externals, Instance, InstanceTypeQuotaItem};
use cvmfleet_wire::vocab::{
    EMULATED_SPOT_RECLAIM_MESSAGE, InstanceChargeType, InstanceState, PRICED_CHARGE_TYPES, StockCategory,
    StockStatus,
};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::run::Purpose;
use super::{Ctx, Mutation, Record, Step, Transition, World, set_operation};
use crate::api_error::ApiError;
use crate::catalog::CatalogIndex;
use crate::catalog::InstanceTypeSpec;
use crate::pricing::{InstancePriceSpec, Order, PriceTable};
use crate::stock::{self, Capacity, Offering, StockSpec, StockView, UNDER_STOCK_BELOW};

/// What the fate of one new instance is drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaunchDraw {
    /// The offering was low (`UnderStock`) when the request arrived.
    pub low_stock: bool,
    /// The instance is SPOTPAID.
    pub spot: bool,
}

/// What becomes of one new instance, decided at creation so that a replayed state agrees with
/// the live one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LaunchFate {
    /// The launch fails (an injected fault): `LAUNCH_FAILED`, its stock unit returns.
    pub fails: bool,
    /// The stock vanished after acceptance: `LAUNCH_FAILED`, and the unit is gone.
    pub stock_vanishes: bool,
    /// A SPOTPAID instance is reclaimed this long after it runs.
    pub reclaim_after_ms: Option<i64>,
}

/// A spot reclamation, as `GET /_emulator/spot/reclaims` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reclaim {
    /// The instance.
    pub instance_id: String,
    /// Its region.
    pub region: String,
    /// Its zone.
    pub zone: String,
    /// Its type.
    pub instance_type: String,
    /// When, Unix milliseconds of the world's clock.
    pub at_ms: i64,
    /// `rate` (`spot_reclaim_rate`) or `admin` (`POST /_emulator/spot/reclaim`).
    pub by: String,
}

/// Which SPOTPAID instances `POST /_emulator/spot/reclaim` reclaims: the IDs given, or the
/// `count` oldest live ones (optionally of one zone or type).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpotReclaim {
    /// Instances to reclaim; each must be a live SPOTPAID instance.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instance_ids: Vec<String>,
    /// How many to reclaim, oldest first (fewer when fewer are live).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// With `count`: only instances of this zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// With `count`: only instances of this type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
}

/// Reclamations kept for `GET /_emulator/spot/reclaims`; older ones are dropped.
const MAX_RECLAIM_LOG: usize = 10_000;

/// Reclaims a SPOTPAID instance at `at`: it goes `TERMINATING` at once and is gone after the
/// terminate delay, as a released instance (spot instances skip the recycle bin), with
/// [`EMULATED_SPOT_RECLAIM_MESSAGE`] as its `LatestOperationErrorMsg`. `None` (and the
/// reclamation dropped) when the instance is already leaving or failed.
pub(super) fn reclaim(r: &mut Record, at: i64, terminate_delay_ms: i64, by: &str) -> Option<Reclaim> {
    r.reclaim_at = None;
    let st = r.instance.state();
    if st.is_leaving() || st.is_failed() {
        return None;
    }
    set_operation(&mut r.instance, "TerminateInstances", "OPERATING", None);
    r.instance.latest_operation_error_msg = Some(EMULATED_SPOT_RECLAIM_MESSAGE.into());
    r.instance.instance_state = InstanceState::Terminating.into();
    r.terminate_at = None;
    r.next = Some(Transition { at: at + terminate_delay_ms, to: Step::Gone });
    Some(Reclaim {
        instance_id: r.instance.instance_id.clone(),
        region: r.region.clone(),
        zone: r.instance.placement.zone.clone(),
        instance_type: r.instance.instance_type.clone(),
        at_ms: at,
        by: by.to_owned(),
    })
}

/// `LatestOperationErrorMsg` of a launch whose stock vanished: it starts with the code a
/// RunInstances would have answered, so a reader can tell it from other launch failures.
pub(super) fn no_stock_message(i: &Instance) -> String {
    format!(
        "{}: the stock of {} ({}) in {} ran out after the request was accepted; submit a new request.",
        codes::RESOURCE_INSUFFICIENT_SPECIFIED_INSTANCE_TYPE,
        i.instance_type,
        i.instance_charge_type,
        i.placement.zone
    )
}

/// How many instances a RunInstances delivers, and from what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Delivery {
    pub(super) count: u64,
    /// The offering was `UnderStock`.
    pub(super) low: bool,
    /// The offering and whether its stock is limited.
    pub(super) offering: Offering,
    pub(super) limited: bool,
}

/// One DescribeZoneInstanceConfigInfos sort key: by vCPUs or memory, ascending or descending.
#[derive(Debug, Clone, Copy)]
struct SortKey {
    memory: bool,
    descending: bool,
}

impl World {
    pub(super) fn log_reclaims(&mut self, events: Vec<Reclaim>) {
        self.reclaims.extend(events);
        if self.reclaims.len() > MAX_RECLAIM_LOG {
            let excess = self.reclaims.len() - MAX_RECLAIM_LOG;
            self.reclaims.drain(..excess);
        }
    }

    /// Spot reclamations since the emulator started, oldest first.
    pub fn reclaims(&self) -> &[Reclaim] {
        &self.reclaims
    }

    /// The capacity of an offering: the state's setting, else the catalog's; `None` unlimited.
    pub(super) fn capacity_of(&self, offering: &Offering) -> Option<u64> {
        match self.stock.get(offering) {
            Some(set) => *set,
            None => self.catalog.stock(offering),
        }
    }

    /// Instances holding a unit of the offering.
    fn in_use(&self, offering: &Offering) -> u64 {
        self.held.get(offering).copied().unwrap_or(0)
    }

    /// Instances the offering can still launch; `None` when unlimited.
    pub(crate) fn available(&self, offering: &Offering) -> Option<u64> {
        self.capacity_of(offering).map(|c| c.saturating_sub(self.in_use(offering)))
    }

    /// Instances an offering (zone, instance type, charge type) can still launch; `None` when
    /// unlimited.
    #[must_use]
    pub fn stock_available(&self, zone: &str, instance_type: &str, charge_type: &str) -> Option<u64> {
        self.available(&Offering::new(zone, instance_type, charge_type))
    }

    /// Prices an instance type under PREPAID (yuan per month), POSTPAID_BY_HOUR or SPOTPAID
    /// (yuan per hour) in every region, undiscounted. `false` (nothing changed) for another
    /// charge type or a price that is negative or not a number.
    pub fn set_price(&mut self, instance_type: &str, charge_type: &str, price: f64) -> bool {
        let priced = InstanceChargeType::parse(charge_type).is_some_and(|c| PRICED_CHARGE_TYPES.contains(&c));
        if !priced || price.is_nan() || price < 0.0 {
            return false;
        }
        let mut catalog = self.catalog.catalog.clone();
        catalog.prices.extend(PriceTable {
            instances: vec![InstancePriceSpec {
                instance_type: instance_type.to_owned(),
                charge_type: charge_type.to_owned(),
                region: None,
                price,
                discount: 100.0,
            }],
            ..PriceTable::default()
        });
        self.catalog = Arc::new(CatalogIndex::new(catalog));
        true
    }

    /// Every limited offering, in order.
    pub fn stock_view(&self) -> Vec<StockView> {
        let mut offerings: Vec<&Offering> = self.stock.keys().collect();
        offerings.extend(self.catalog.limited().map(|(o, _)| o).filter(|o| !self.stock.contains_key(*o)));
        offerings.sort();
        offerings
            .into_iter()
            .filter_map(|o| {
                Some(StockView {
                    zone: o.zone.clone(),
                    instance_type: o.instance_type.clone(),
                    charge_type: o.charge_type.clone(),
                    available: self.available(o)?,
                    in_use: self.in_use(o),
                })
            })
            .collect()
    }

    /// Applies stock settings (all or none): the mutation to journal, or what is wrong.
    pub fn set_stock(&mut self, entries: &[StockSpec]) -> Result<Mutation, String> {
        let mut sets = Vec::new();
        for entry in entries {
            let sold =
                self.catalog.instance_type(&entry.instance_type).is_some_and(|t| t.sold_in(&entry.zone));
            entry.check(self.catalog.zone(&entry.zone).is_some(), sold)?;
            for offering in entry.offerings()? {
                let capacity = entry.available.map(|n| n.saturating_add(self.in_use(&offering)));
                sets.push(Capacity { offering, capacity });
            }
        }
        let mutation = Mutation { stock: sets, ..Mutation::default() };
        self.apply(mutation.clone());
        Ok(mutation)
    }

    /// Whether every instance type the zone sells is sold out under `charge`.
    fn zone_sold_out(&self, zone: &str, charge: &str) -> bool {
        let mut types = self.catalog.catalog.instance_types.iter().filter(|t| t.sold_in(zone)).peekable();
        types.peek().is_some()
            && types.all(|t| self.available(&Offering::new(zone, &t.instance_type, charge)) == Some(0))
    }

    /// The stock verdict of a RunInstances of `count` instances (at least `min_count`).
    pub(super) fn stock_verdict(
        &self,
        zone: &str,
        instance_type: &str,
        charge: InstanceChargeType,
        count: u64,
        min_count: Option<u64>,
    ) -> Result<Delivery, ApiError> {
        let offering = Offering::new(zone, instance_type, charge.as_str());
        let unlimited = |offering| Ok(Delivery { count, low: false, offering, limited: false });
        if charge == InstanceChargeType::Cdhpaid {
            return unlimited(offering);
        }
        let Some(available) = self.available(&offering) else { return unlimited(offering) };
        let low = available < UNDER_STOCK_BELOW;
        let deliver = |count| Ok(Delivery { count, low, offering: offering.clone(), limited: true });
        if available >= count {
            return deliver(count);
        }
        let what = format!("{instance_type} ({charge}) in {zone}");
        if let Some(min) = min_count {
            if available >= min {
                return deliver(available);
            }
            return Err(ApiError::new(
                codes::RESOURCE_INSUFFICIENT_INSUFFICIENT_OFFERING_MINIMUM,
                format!("The stock of {what} is {available}, fewer than the MinCount of {min}."),
            ));
        }
        let (code, message) = if charge == InstanceChargeType::Spotpaid {
            (
                codes::INVALID_PARAMETER_VALUE_INSUFFICIENT_OFFERING,
                format!("The spot stock of {what} is {available}; {count} instances were asked for."),
            )
        } else if available == 0 && self.zone_sold_out(zone, charge.as_str()) {
            (
                codes::RESOURCE_INSUFFICIENT_AVAILABILITY_ZONE_SOLD_OUT,
                format!("The zone {zone} is sold out for {charge}."),
            )
        } else if available == 0 {
            (codes::RESOURCES_SOLD_OUT_SPECIFIED_INSTANCE_TYPE, format!("{what} is sold out."))
        } else {
            (
                codes::RESOURCE_INSUFFICIENT_SPECIFIED_INSTANCE_TYPE,
                format!("The stock of {what} is {available}; {count} instances were asked for."),
            )
        };
        Err(ApiError::new(code, message))
    }

    /// DescribeZoneInstanceConfigInfos of the caller's region.
    pub fn describe_zone_configs(
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
        let zones = self.catalog.region(region).map(|r| r.zones.as_slice()).unwrap_or_default();
        let mut sort = Vec::new();
        for f in filters {
            if f.values.is_empty() {
                return Err(ApiError::new(
                    codes::INVALID_FILTER,
                    format!("The filter `{}` has no values.", f.name),
                ));
            }
            if f.values.len() > ZONE_CONFIG_MAX_FILTER_VALUES {
                return Err(ApiError::new(
                    codes::INVALID_FILTER_VALUE_LIMIT_EXCEEDED,
                    format!(
                        "The filter `{}` has {} values; at most {ZONE_CONFIG_MAX_FILTER_VALUES} are allowed.",
                        f.name,
                        f.values.len()
                    ),
                ));
            }
            match f.name.as_str() {
                "zone" => {
                    if let Some(bad) = f.values.iter().find(|z| !zones.iter().any(|s| &s.zone == *z)) {
                        return Err(ApiError::new(
                            codes::INVALID_ZONE_MISMATCH_REGION,
                            format!("The zone `{bad}` does not exist in region `{region}`."),
                        ));
                    }
                }
                "instance-charge-type" => {
                    if let Some(bad) = f.values.iter().find(|c| InstanceChargeType::parse(c).is_none()) {
                        return Err(ApiError::invalid_value(format!(
                            "The filter `instance-charge-type` value `{bad}` is not one of {}.",
                            InstanceChargeType::names()
                        )));
                    }
                }
                "sort-keys" => {
                    for v in &f.values {
                        sort.push(parse_sort_key(v)?);
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
        let wanted = |name: &str, value: &str| {
            filters.iter().filter(|f| f.name == name).all(|f| f.values.iter().any(|v| v == value))
        };
        let charges: Vec<InstanceChargeType> = match filters.iter().find(|f| f.name == "instance-charge-type")
        {
            None => PRICED_CHARGE_TYPES.to_vec(),
            Some(_) => stock::STOCKED_CHARGE_TYPES
                .into_iter()
                .filter(|c| wanted("instance-charge-type", c.as_str()))
                .collect(),
        };
        let prices = &self.catalog.catalog.prices;
        let mut items = Vec::new();
        for zone in zones.iter().filter(|z| wanted("zone", &z.zone)) {
            let types = self.catalog.catalog.instance_types.iter().filter(|t| {
                t.sold_in(&zone.zone)
                    && wanted("instance-family", t.family())
                    && wanted("instance-type", &t.instance_type)
            });
            for t in types {
                for charge in &charges {
                    let available = if zone.available {
                        self.available(&Offering::new(&zone.zone, &t.instance_type, charge.as_str()))
                    } else {
                        Some(0)
                    };
                    let category = stock::category(available);
                    let sold_out = category == StockCategory::WithoutStock;
                    let mut item = describe_type(t);
                    item.zone = zone.zone.clone();
                    item.instance_charge_type = charge.as_str().to_owned();
                    item.status =
                        if sold_out { StockStatus::SoldOut } else { StockStatus::Sell }.as_str().to_owned();
                    item.status_category = category.as_str().to_owned();
                    item.sold_out_reason = match (sold_out, zone.available) {
                        (false, _) => String::new(),
                        (true, true) => "insufficient stock".into(),
                        (true, false) => "the zone does not sell instances".into(),
                    };
                    item.price = prices.offering_price(region, &t.instance_type, *charge);
                    items.push(item);
                }
            }
        }
        for key in sort.iter().rev() {
            items.sort_by(|a, b| {
                let order = if key.memory { a.memory.cmp(&b.memory) } else { a.cpu.cmp(&b.cpu) };
                if key.descending { order.reverse() } else { order }
            });
        }
        Ok(DescribeZoneInstanceConfigInfosResponse { instance_type_quota_set: items })
    }

    /// InquiryPriceRunInstances: validated as RunInstances is (without quota, partial stock and
    /// address capacity, which a quote does not consume), then priced for every instance.
    pub fn inquiry_price(
        &self,
        ctx: &Ctx,
        req: &InquiryPriceRunInstancesRequest,
    ) -> Result<InquiryPriceRunInstancesResponse, ApiError> {
        let plan = self.plan_run(ctx, &req.to_run(), Purpose::Quote)?;
        let mut disks = vec![plan.system_disk.clone()];
        disks.extend(plan.data_disks.iter().map(|d| (d.disk_type.clone().unwrap_or_default(), d.disk_size)));
        let charge =
            InstanceChargeType::parse(&plan.charge_type).unwrap_or(InstanceChargeType::PostpaidByHour);
        let order = Order {
            instance_type: &plan.instance_type,
            charge,
            period_months: plan.period_months.unwrap_or(1),
            count: plan.names.len() as u64,
            disks: &disks,
            internet_charge_type: plan.internet.internet_charge_type.as_deref().unwrap_or_default(),
            bandwidth_mbps: plan.internet.internet_max_bandwidth_out.unwrap_or(0),
        };
        let price = self.catalog.catalog.prices.quote(&ctx.region, &order).map_err(|what| {
            ApiError::new(
                codes::FAILED_OPERATION_INQUIRY_PRICE_FAILED,
                format!("There is no price for {what}."),
            )
        })?;
        Ok(InquiryPriceRunInstancesResponse { price })
    }

    /// Reclaims SPOTPAID instances now (`POST /_emulator/spot/reclaim`): the IDs
    /// reclaimed and the mutation to journal, or what is wrong (nothing changed).
    pub fn reclaim_spot(
        &mut self,
        which: &SpotReclaim,
        now_ms: i64,
    ) -> Result<(Vec<String>, Mutation), String> {
        let reclaimable = |r: &Record| {
            let st = r.instance.state();
            r.instance.instance_charge_type == InstanceChargeType::Spotpaid.as_str()
                && !st.is_leaving()
                && !st.is_failed()
        };
        let seqs: Vec<u64> = match (which.instance_ids.is_empty(), which.count) {
            (false, None) => {
                let mut seqs = Vec::new();
                for id in &which.instance_ids {
                    match self.record_by_id(id) {
                        Some(r) if reclaimable(r) => {
                            if !seqs.contains(&r.seq) {
                                seqs.push(r.seq);
                            }
                        }
                        Some(r) => {
                            return Err(format!(
                                "instance `{id}` is {} {}, not a live SPOTPAID instance",
                                r.instance.instance_charge_type, r.instance.instance_state
                            ));
                        }
                        None => return Err(format!("instance `{id}` does not exist")),
                    }
                }
                seqs
            }
            (true, Some(count)) => self
                .records
                .values()
                .filter(|r| reclaimable(r))
                .filter(|r| which.zone.as_ref().is_none_or(|z| &r.instance.placement.zone == z))
                .filter(|r| which.instance_type.as_ref().is_none_or(|t| &r.instance.instance_type == t))
                .take(count as usize)
                .map(|r| r.seq)
                .collect(),
            _ => return Err("give either `instance_ids` or `count`".into()),
        };
        let mut records = Vec::with_capacity(seqs.len());
        let mut events = Vec::with_capacity(seqs.len());
        for seq in seqs {
            let Some(mut record) = self.records.get(&seq).cloned() else { continue };
            if let Some(event) = reclaim(&mut record, now_ms, self.settings.terminate_delay_ms, "admin") {
                events.push(event);
                records.push(record);
            }
        }
        let ids = events.iter().map(|e| e.instance_id.clone()).collect();
        self.log_reclaims(events);
        let mutation = Mutation { put: records, ..Mutation::default() };
        self.apply(mutation.clone());
        Ok((ids, mutation))
    }
}

fn parse_sort_key(text: &str) -> Result<SortKey, ApiError> {
    let bad = || {
        ApiError::invalid_value(format!(
            "The filter `sort-keys` value `{text}` is not FIELD:ORDER with FIELD cpu or mem and ORDER asc or desc."
        ))
    };
    let (field, order) = text.split_once(':').ok_or_else(bad)?;
    let memory = match field {
        "cpu" => false,
        "mem" => true,
        _ => return Err(bad()),
    };
    let descending = match order {
        "asc" => false,
        "desc" => true,
        _ => return Err(bad()),
    };
    Ok(SortKey { memory, descending })
}

/// A family's processor, clock, private bandwidth and packet rate: illustrative figures in the
/// shape of Tencent's instance type table.
fn hardware(family: &str, cpu: i64) -> (&'static str, &'static str, f64, i64) {
    #[allow(clippy::cast_precision_loss)]
    let bandwidth = (cpu as f64 * 0.75).clamp(1.5, 25.0);
    let pps = (cpu * 15).clamp(20, 700);
    let (model, clock) = match family {
        "S1" => ("Intel Xeon E5-26xx v3", "2.4GHz"),
        "S2" => ("Intel Xeon E5-2680 v4", "2.4GHz"),
        "S5" => ("Intel Xeon Cascade Lake 8255C", "2.5GHz"),
        "S6" => ("Intel Xeon Ice Lake", "2.7GHz"),
        "SA2" => ("AMD EPYC Rome", "2.6GHz"),
        _ => ("Intel Xeon", "2.5GHz"),
    };
    (model, clock, bandwidth, pps)
}

/// The parts of an item that follow from the instance type alone.
fn describe_type(t: &InstanceTypeSpec) -> InstanceTypeQuotaItem {
    let family = t.family();
    let (cpu_type, frequency, bandwidth, pps) = hardware(family, t.cpu);
    let kind = if t.gpu > 0 { "GPU" } else { "Standard" };
    #[allow(clippy::cast_precision_loss)]
    InstanceTypeQuotaItem {
        instance_type: t.instance_type.clone(),
        network_card: 0,
        externals: Externals::default(),
        cpu: t.cpu,
        memory: t.memory,
        instance_family: family.to_owned(),
        type_name: format!("{kind} {family}"),
        local_disk_type_list: Vec::new(),
        instance_bandwidth: bandwidth,
        instance_pps: pps,
        storage_block_amount: 0,
        cpu_type: cpu_type.to_owned(),
        gpu: t.gpu,
        fpga: t.fpga,
        remark: String::new(),
        gpu_count: t.gpu as f64,
        frequency: frequency.to_owned(),
        ..InstanceTypeQuotaItem::default()
    }
}
