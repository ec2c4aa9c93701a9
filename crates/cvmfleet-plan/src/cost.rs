//! What a plan costs (issue 14): per group and per fleet, the monthly cost before and after
//! the plan, in the currency the cloud quotes, and the budget guard
//! `policies.maxMonthlyCostIncrease`. Pure, like the planner: the prices come in as a
//! [`PriceBook`] the reconciler filled from the cloud.
//!
//! Pricing a plan takes three steps: [`quotes`] lists the configurations an unpriced plan
//! ([`crate::plan`]) needs priced (one [`Quote`] each, a RunInstances request for one
//! instance), the caller asks the cloud for each (InquiryPriceRunInstances) and turns the
//! answers into monthly prices with [`monthly_price`], and [`crate::plan_priced`] plans again
//! with that [`PriceBook`] as an input, filling the `cost` fields and checking the bounds. The
//! book changes no create, termination or token, so both plans decide the same steps.
//!
//! # What is priced, and as what
//!
//! - A **create** is priced from its own request (zone, instance type, charge type, disks and
//!   network as it will be sent), per instance, times its count.
//! - A **present instance** of a group is priced with its group's template, but in its own
//!   zone, with its own instance type and charge type: one on another type than the template's
//!   costs what it is. One of the template's type, zone and charge type has the same
//!   [`QuoteKey`] as the group's creates there, so both share one quote.
//! - An **orphan** (no group in the spec) is priced from what DescribeInstances shows of it:
//!   zone, instance type, charge type and image, with the API's default disks.
//! - `LAUNCH_FAILED` and leaving instances cost nothing; stopped ones cost what running ones do
//!   (the API does not say which stop charging).
//!
//! `monthly_before` is what is present now; `monthly_after` is that, less what the plan
//! terminates (surplus, replaced, orphans when pruned), plus what it creates, and, while a
//! rolling replacement takes several steps, with the instances of later steps
//! ([`crate::plan::GroupPlan::replaced_later`]) already replaced: the cost of the whole change,
//! not of one step. `monthly_delta` is the difference, known whenever every changed instance
//! has a price (even when an unchanged one has none).
//!
//! # From a quote to a month
//!
//! Hourly charges (`POSTPAID_BY_HOUR`, `SPOTPAID`; bandwidth by the Mbps-hour) are their
//! discounted unit price (`UnitPriceDiscount`; the price after 360 hours,
//! `UnitPriceDiscountThirdStep`, when the price has steps: the steady price of an instance that
//! stays) times [`HOURS_PER_MONTH`]. A `PREPAID` quote is for the whole period
//! (`InstanceChargePrepaid.Period` months): its discounted price (`DiscountPrice`) divided by
//! the months. Disks are in the instance price, as the API quotes it. Traffic billed per GB
//! (`TRAFFIC_POSTPAID_BY_HOUR`, `ChargeUnit` `GB`) depends on use: it is not in the costs, and
//! the plan says so in a warning.
//!
//! # Unknown prices
//!
//! A price the cloud cannot give (a quote refused with `FailedOperation.InquiryPriceFailed`,
//! `ResourcesSoldOut.SpecifiedInstanceType`, any other error, a `CDHPAID` instance billed with
//! its host) is unknown, never zero: every cost that includes it is `None` (JSON `null`) and
//! the plan lists it in a warning. An unknown price never blocks a plan; a bound it keeps from
//! being checked is a warning too.
//!
//! # The budget guard
//!
//! A group with its own `maxMonthlyCostIncrease` is refused when the plan adds more than that
//! to its monthly cost; the fleet's bound applies to the sum of the other groups' increases
//! and the orphans'. A refusal is lifted by [`PlanOptions::allow_cost_increase`]
//! (`--allow-cost-increase`), as `--allow-mass-termination` lifts the termination limits.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use cvmfleet_wire::api::RunInstancesRequest;
use cvmfleet_wire::model::{InstanceChargePrepaid, ItemPrice, Placement, Price};
use cvmfleet_wire::vocab::{
    ChargeUnit, INSTANCE_CHARGE_TYPE_DEFAULT, InstanceChargeType, PRICED_CHARGE_TYPES,
};

use crate::desired::{DesiredFleet, DesiredGroup};
use crate::observed::{ObservedFleet, ObservedInstance, Presence, elsewhere_key};
use crate::plan::{FleetPlan, GroupPlan, Plan, Refusal};
use crate::planner::PlanOptions;

/// The currency of every price: api.json gives every `ItemPrice` field in yuan ("单位：元") and
/// states no currency anywhere, so this is a documented constant, not something the API says.
pub const CURRENCY: &str = "CNY";

/// Hours in the month of a monthly cost (8,760 / 12), as Tencent's price pages reckon a month
/// of an hourly price.
pub const HOURS_PER_MONTH: f64 = 730.0;

/// Most unknown prices a plan's warning names one by one; the rest are counted.
const UNKNOWN_NAMED: usize = 5;

/// A monthly cost before and after a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    /// The currency of the amounts ([`CURRENCY`]).
    pub currency: String,
    /// What is present now costs per month; `None` when a price is unknown.
    pub monthly_before: Option<f64>,
    /// What is there once the plan (and its rolling replacement) is done costs per month;
    /// `None` when a price is unknown.
    pub monthly_after: Option<f64>,
    /// `monthly_after - monthly_before`: what the plan adds (negative: saves) per month;
    /// `None` when the price of something the plan creates or terminates is unknown.
    pub monthly_delta: Option<f64>,
}

/// The identity of a quote: its region and the request it prices. Two configurations with the
/// same key cost the same, so a plan asks the cloud once per key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct QuoteKey(String);

impl QuoteKey {
    /// The key as text (the region, a line break, the request's JSON).
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A configuration to price: a RunInstances request for one instance, with only what bears on
/// the price (placement, image, charge type and period, instance type, disks, VPC and subnet,
/// public network, spot options). Names, tags, security groups, login settings, ClientToken
/// and private IPs are left out: they change no price, and leaving them out lets groups and
/// fleets with the same launch settings share one quote.
#[derive(Debug, Clone, PartialEq)]
pub struct Quote {
    /// The key.
    pub key: QuoteKey,
    /// The region to ask in.
    pub region: String,
    /// The request to quote (InquiryPriceRunInstances takes the RunInstances parameters).
    pub request: RunInstancesRequest,
}

impl Quote {
    fn new(region: &str, request: RunInstancesRequest) -> Quote {
        // Typed structs serialize deterministically: fields in declaration order.
        let json = serde_json::to_string(&request).unwrap_or_default();
        Quote { key: QuoteKey(format!("{region}\n{json}")), region: region.to_owned(), request }
    }

    /// What it is, for people: e.g. `S5.MEDIUM2 POSTPAID_BY_HOUR in ap-guangzhou-3`.
    #[must_use]
    pub fn describe(&self) -> String {
        let r = &self.request;
        let zone = r.placement.as_ref().map_or("", |p| p.zone.as_str());
        let period = match &r.instance_charge_prepaid {
            Some(p) if charge_of(r) == Some(InstanceChargeType::Prepaid) => format!(" ({} months)", p.period),
            _ => String::new(),
        };
        format!(
            "{} {}{period} in {zone}",
            r.instance_type.as_deref().unwrap_or("(default type)"),
            r.instance_charge_type.as_deref().unwrap_or(INSTANCE_CHARGE_TYPE_DEFAULT.as_str())
        )
    }

    /// Why the cloud cannot quote it, if it cannot: InquiryPriceRunInstances prices only
    /// [`PRICED_CHARGE_TYPES`].
    fn unquotable(&self) -> Option<String> {
        match charge_of(&self.request) {
            Some(charge) if PRICED_CHARGE_TYPES.contains(&charge) => None,
            Some(charge) => Some(format!(
                "{charge} instances are billed with what hosts them, which InquiryPriceRunInstances does not price"
            )),
            None => Some("the charge type is not one the API knows".into()),
        }
    }
}

/// The effective charge type of a request (the API's default when unset).
fn charge_of(request: &RunInstancesRequest) -> Option<InstanceChargeType> {
    match request.instance_charge_type.as_deref() {
        None => Some(INSTANCE_CHARGE_TYPE_DEFAULT),
        Some(text) => InstanceChargeType::parse(text),
    }
}

/// The price of one instance of a configuration, per month.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MonthlyPrice {
    /// Per month, in [`CURRENCY`].
    pub amount: f64,
    /// Its public traffic is billed per GB and is not in `amount`.
    pub traffic_excluded: bool,
}

/// Prices the caller got from the cloud: per [`QuoteKey`], a monthly price, or why there is
/// none. A key the book does not hold is unknown, like one whose quote failed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PriceBook {
    prices: BTreeMap<QuoteKey, Result<MonthlyPrice, String>>,
}

impl PriceBook {
    /// An empty book: every price unknown.
    #[must_use]
    pub fn new() -> PriceBook {
        PriceBook::default()
    }

    /// Records the price of `key`, or why there is none (e.g. the quote's error, with its code
    /// and RequestId).
    pub fn insert(&mut self, key: QuoteKey, price: Result<MonthlyPrice, String>) {
        self.prices.insert(key, price);
    }

    /// The price recorded for `key`.
    #[must_use]
    pub fn get(&self, key: &QuoteKey) -> Option<&Result<MonthlyPrice, String>> {
        self.prices.get(key)
    }

    /// Prices recorded (known or not).
    #[must_use]
    pub fn len(&self) -> usize {
        self.prices.len()
    }

    /// Whether nothing is recorded.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.prices.is_empty()
    }
}

/// Turns the cloud's answer to a quote of `request` into the monthly price of one instance
/// (see the module docs).
///
/// # Errors
/// Why the answer gives no price (a field missing or not a price).
pub fn monthly_price(request: &RunInstancesRequest, price: &Price) -> Result<MonthlyPrice, String> {
    let charge = charge_of(request).ok_or("the request's charge type is not one the API knows")?;
    let months = match (&request.instance_charge_prepaid, charge) {
        (Some(prepaid), InstanceChargeType::Prepaid) => prepaid.period.max(1),
        _ => 1,
    };
    #[allow(clippy::cast_precision_loss)]
    let months = months as f64;
    let instance = if charge == InstanceChargeType::Prepaid {
        amount(price.instance_price.discount_price, "InstancePrice.DiscountPrice")? / months
    } else {
        hourly(&price.instance_price, "InstancePrice")? * HOURS_PER_MONTH
    };
    let mbps = request.internet_accessible.as_ref().and_then(|i| i.internet_max_bandwidth_out).unwrap_or(0);
    let band = &price.bandwidth_price;
    let (bandwidth, traffic_excluded) = if mbps <= 0 {
        (0.0, false)
    } else if band.unit() == Some(ChargeUnit::Gb) {
        (0.0, true)
    } else if band.discount_price.is_some_and(|p| p > 0.0) {
        (amount(band.discount_price, "BandwidthPrice.DiscountPrice")? / months, false)
    } else {
        (hourly(band, "BandwidthPrice")? * HOURS_PER_MONTH, false)
    };
    Ok(MonthlyPrice { amount: instance + bandwidth, traffic_excluded })
}

fn amount(value: Option<f64>, what: &str) -> Result<f64, String> {
    match value {
        Some(v) if v.is_finite() && v >= 0.0 => Ok(v),
        Some(v) => Err(format!("the quote's {what} is {v}, not a price")),
        None => Err(format!("the quote has no {what}")),
    }
}

/// The steady hourly price of a pay-as-you-go item.
fn hourly(item: &ItemPrice, what: &str) -> Result<f64, String> {
    if item.unit().is_some_and(|u| u != ChargeUnit::Hour) {
        return Err(format!("the quote's {what} is not charged by the hour"));
    }
    let steady = item.unit_price_discount_third_step.filter(|p| p.is_finite() && *p > 0.0);
    amount(steady.or(item.unit_price_discount), &format!("{what}.UnitPriceDiscount"))
}

/// The configurations `plan` needs priced, one per [`QuoteKey`], sorted by key; `desired` and
/// `observed` are what the plan was made from. At most one per distinct region, zone, instance
/// type, charge type and launch settings.
#[must_use]
pub fn quotes(
    plan: &Plan,
    desired: &[DesiredFleet],
    observed: &BTreeMap<String, ObservedFleet>,
) -> Vec<Quote> {
    walk(plan, desired, observed).quotes.into_values().filter(|q| q.unquotable().is_none()).collect()
}

/// Fills the plan's `cost` fields (every group and fleet, and `summary.cost`) from `book`, and
/// checks the cost bounds: a plan adding more than a bound is refused, unless
/// `options.allow_cost_increase`. Unknown prices, bounds that could not be checked and traffic
/// left out of the costs are added to the warnings. `desired` and `observed` are what the plan
/// was made from. Reached through [`crate::plan_priced`]: prices are an input of planning.
pub(crate) fn price(
    plan: &mut Plan,
    desired: &[DesiredFleet],
    observed: &BTreeMap<String, ObservedFleet>,
    book: &PriceBook,
    options: PlanOptions,
) {
    let walked = walk(plan, desired, observed);
    let mut prices = Prices { book, quotes: &walked.quotes, unknown: BTreeSet::new(), traffic: false };
    let mut total = Sums::zero();
    let specs = by_name(desired);
    for (fleet_plan, ledgers) in plan.fleets.iter_mut().zip(&walked.fleets) {
        let mut fleet_sums = prices.sums(&ledgers.orphans);
        // The part of the fleet's increase its own bound covers: groups without their own.
        let mut bounded = fleet_sums.delta;
        let spec = specs.get(fleet_plan.name.as_str()).copied().filter(|_| !fleet_plan.orphan_fleet);
        let groups = spec.map(groups_by_name).unwrap_or_default();
        for (group_plan, ledger) in fleet_plan.groups.iter_mut().zip(&ledgers.groups) {
            let sums = prices.sums(ledger);
            group_plan.cost = Some(sums.cost());
            fleet_sums = fleet_sums.plus(sums);
            let own = groups.get(group_plan.name.as_str()).and_then(|g| g.policies.max_monthly_cost_increase);
            match own {
                Some(bound) => {
                    let scope = Scope { fleet: &fleet_plan.name, group: Some(&group_plan.name) };
                    check(&mut plan.refusals, &mut plan.warnings, scope, sums.delta, bound.get(), options);
                }
                None => bounded = add(bounded, sums.delta),
            }
        }
        if let Some(bound) = spec.and_then(|f| f.max_monthly_cost_increase) {
            let scope = Scope { fleet: &fleet_plan.name, group: None };
            check(&mut plan.refusals, &mut plan.warnings, scope, bounded, bound.get(), options);
        }
        fleet_plan.cost = Some(fleet_sums.cost());
        total = total.plus(fleet_sums);
    }
    plan.summary.cost = Some(total.cost());
    let unknown: Vec<String> = prices
        .unknown
        .iter()
        .map(|key| {
            let quote = &walked.quotes[key];
            format!("{} ({})", quote.describe(), prices.why_unknown(key))
        })
        .collect();
    if !unknown.is_empty() {
        let mut named = unknown[..unknown.len().min(UNKNOWN_NAMED)].join("; ");
        if unknown.len() > UNKNOWN_NAMED {
            named.push_str(&format!("; and {} more", unknown.len() - UNKNOWN_NAMED));
        }
        plan.warnings.push(format!(
            "no price for {} configuration(s): {named}; the costs that include them are unknown",
            unknown.len()
        ));
    }
    if prices.traffic {
        plan.warnings.push(
            "public traffic billed per GB (TRAFFIC_POSTPAID_BY_HOUR) is not in the costs: it depends on use"
                .into(),
        );
    }
}

/// Where a bound applies.
#[derive(Clone, Copy)]
struct Scope<'a> {
    fleet: &'a str,
    group: Option<&'a str>,
}

impl std::fmt::Display for Scope<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.group {
            Some(group) => write!(f, "fleet {} group {group}", self.fleet),
            None => write!(f, "fleet {}", self.fleet),
        }
    }
}

/// Checks one bound: a refusal when `delta` exceeds it (unless allowed), a warning when a
/// price kept it from being checked.
fn check(
    refusals: &mut Vec<Refusal>,
    warnings: &mut Vec<String>,
    scope: Scope<'_>,
    delta: Option<f64>,
    bound: f64,
    options: PlanOptions,
) {
    let whose = if scope.group.is_some() { "the group's" } else { "the fleet's" };
    match delta {
        None => warnings.push(format!(
            "{scope}: {whose} maxMonthlyCostIncrease of {} could not be checked: a price the plan needs is unknown",
            money(bound)
        )),
        Some(delta) if fen(delta) > fen(bound) && !options.allow_cost_increase => refusals.push(Refusal {
            fleet: scope.fleet.to_owned(),
            group: scope.group.map(str::to_owned),
            message: format!(
                "would add {}/month to {whose} monthly cost, more than its maxMonthlyCostIncrease of {}; \
                 re-run with --allow-cost-increase if this is intended",
                money(delta),
                money(bound)
            ),
        }),
        Some(_) => {}
    }
}

/// Rounds to the fen (0.01), without a negative zero.
fn fen(value: f64) -> f64 {
    let rounded = (value * 100.0).round() / 100.0;
    if rounded == 0.0 { 0.0 } else { rounded }
}

/// An amount of [`CURRENCY`] for people: `¥1,234.56`, `-¥3.20`.
#[must_use]
pub fn money(value: f64) -> String {
    let value = fen(value);
    let sign = if value < 0.0 { "-" } else { "" };
    let text = format!("{:.2}", value.abs());
    let (whole, cents) = text.split_once('.').unwrap_or((&text, "00"));
    let mut grouped = String::new();
    for (i, digit) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    format!("{sign}¥{grouped}.{cents}")
}

fn add(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(a? + b?)
}

/// Before and delta of some instances (after is their sum).
#[derive(Debug, Clone, Copy)]
struct Sums {
    before: Option<f64>,
    delta: Option<f64>,
}

impl Sums {
    fn zero() -> Sums {
        Sums { before: Some(0.0), delta: Some(0.0) }
    }

    fn plus(self, other: Sums) -> Sums {
        Sums { before: add(self.before, other.before), delta: add(self.delta, other.delta) }
    }

    fn cost(self) -> Cost {
        Cost {
            currency: CURRENCY.to_owned(),
            monthly_before: self.before.map(fen),
            monthly_after: add(self.before, self.delta).map(fen),
            monthly_delta: self.delta.map(fen),
        }
    }
}

/// The book, with what pricing found unknown or left out.
struct Prices<'a> {
    book: &'a PriceBook,
    quotes: &'a BTreeMap<QuoteKey, Quote>,
    unknown: BTreeSet<QuoteKey>,
    traffic: bool,
}

impl Prices<'_> {
    fn of(&mut self, key: &QuoteKey) -> Option<f64> {
        let known = match self.quotes.get(key).and_then(Quote::unquotable) {
            Some(_) => None,
            None => self.book.get(key).and_then(|p| p.as_ref().ok()),
        };
        match known {
            Some(price) => {
                self.traffic |= price.traffic_excluded;
                Some(price.amount)
            }
            None => {
                self.unknown.insert(key.clone());
                None
            }
        }
    }

    fn why_unknown(&self, key: &QuoteKey) -> String {
        if let Some(why) = self.quotes.get(key).and_then(Quote::unquotable) {
            return why;
        }
        match self.book.get(key) {
            Some(Err(why)) => why.clone(),
            _ => "not quoted".to_owned(),
        }
    }

    fn sums(&mut self, ledger: &Ledger) -> Sums {
        let mut before = Some(0.0);
        for key in &ledger.present {
            before = add(before, self.of(key));
        }
        let mut delta = Some(0.0);
        for key in &ledger.going {
            delta = add(delta, self.of(key).map(|p| -p));
        }
        for (key, count) in &ledger.created {
            delta = add(delta, self.of(key).map(|p| p * f64::from(*count)));
        }
        for (old, new) in &ledger.later {
            let (old, new) = (self.of(old), self.of(new));
            delta = add(delta, add(new, old.map(|p| -p)));
        }
        Sums { before, delta }
    }
}

/// What some instances' cost is made of, by quote key.
#[derive(Debug, Default)]
struct Ledger {
    /// Each present instance.
    present: Vec<QuoteKey>,
    /// Each instance the plan terminates.
    going: Vec<QuoteKey>,
    /// Each create, with its count.
    created: Vec<(QuoteKey, u32)>,
    /// Each instance a later rollout step replaces: its key and its replacement's.
    later: Vec<(QuoteKey, QuoteKey)>,
}

/// One fleet's ledgers: its groups' (in plan order) and its orphans'.
#[derive(Debug, Default)]
struct FleetLedgers {
    groups: Vec<Ledger>,
    orphans: Ledger,
}

/// Everything a plan's cost is made of.
struct Walked {
    quotes: BTreeMap<QuoteKey, Quote>,
    fleets: Vec<FleetLedgers>,
}

/// Fleets by name, looked up once per fleet plan: a scan per lookup made pricing quadratic in
/// the number of fleets (issue 25 §8).
fn by_name(desired: &[DesiredFleet]) -> BTreeMap<&str, &DesiredFleet> {
    desired.iter().map(|f| (f.name.as_str(), f)).collect()
}

/// A fleet's groups by name, for the same reason: 100,000 groups took 72 s to plan while each
/// group plan scanned every group for its spec.
fn groups_by_name(fleet: &DesiredFleet) -> BTreeMap<&str, &DesiredGroup> {
    fleet.groups.iter().map(|g| (g.name.as_str(), g)).collect()
}

fn walk(plan: &Plan, desired: &[DesiredFleet], observed: &BTreeMap<String, ObservedFleet>) -> Walked {
    let empty = ObservedFleet::default();
    let mut walked = Walked { quotes: BTreeMap::new(), fleets: Vec::new() };
    let specs = by_name(desired);
    for fleet_plan in &plan.fleets {
        let seen = if fleet_plan.orphan_fleet {
            observed.get(&elsewhere_key(&fleet_plan.name, &fleet_plan.region))
        } else {
            observed.get(&fleet_plan.name)
        }
        .unwrap_or(&empty);
        let spec = specs.get(fleet_plan.name.as_str()).copied().filter(|_| !fleet_plan.orphan_fleet);
        let ledgers = walk_fleet(fleet_plan, spec, seen, &mut walked.quotes);
        walked.fleets.push(ledgers);
    }
    walked
}

fn walk_fleet(
    fleet_plan: &FleetPlan,
    spec: Option<&DesiredFleet>,
    seen: &ObservedFleet,
    quotes: &mut BTreeMap<QuoteKey, Quote>,
) -> FleetLedgers {
    let region = fleet_plan.region.as_str();
    let by_id: BTreeMap<&str, &ObservedInstance> =
        seen.instances.iter().chain(&seen.adoptable).map(|i| (i.id.as_str(), i)).collect();
    let mut add_quote = |quote: Quote| {
        let key = quote.key.clone();
        quotes.entry(key.clone()).or_insert(quote);
        key
    };
    let groups = spec.map(groups_by_name).unwrap_or_default();
    // Each group's instances, found in one pass (a filter per group was quadratic).
    let adoptable: BTreeMap<&str, &ObservedInstance> =
        seen.adoptable.iter().map(|i| (i.id.as_str(), i)).collect();
    let mut members: BTreeMap<&str, Vec<&ObservedInstance>> = BTreeMap::new();
    for instance in &seen.instances {
        if let Some(group) = instance.group.as_deref() {
            members.entry(group).or_default().push(instance);
        }
    }
    let mut ledgers = FleetLedgers::default();
    for group_plan in &fleet_plan.groups {
        let Some(group) = groups.get(group_plan.name.as_str()).copied() else {
            ledgers.groups.push(Ledger::default());
            continue;
        };
        let mut ledger = Ledger::default();
        let mut priced = GroupPricer { region, group, group_plan, by_config: BTreeMap::new() };
        for create in &group_plan.creates {
            let key = add_quote(Quote::new(region, project(&create.request)));
            ledger.created.push((key, create.count));
        }
        let adopted =
            group_plan.adoptions.iter().filter_map(|a| adoptable.get(a.instance_id.as_str()).copied());
        let present = members
            .get(group.name.as_str())
            .into_iter()
            .flatten()
            .copied()
            .chain(adopted)
            .filter(|i| i.presence() == Presence::Present);
        for instance in present {
            ledger.present.push(add_quote(priced.instance(instance)));
        }
        for termination in &group_plan.terminations {
            if let Some(instance) = by_id.get(termination.instance_id.as_str()) {
                ledger.going.push(add_quote(priced.instance(instance)));
            }
        }
        for id in &group_plan.replaced_later {
            if let Some(instance) = by_id.get(id.as_str()) {
                let old = add_quote(priced.instance(instance));
                let new = add_quote(priced.replacement(&instance.zone, instance));
                ledger.later.push((old, new));
            }
        }
        ledgers.groups.push(ledger);
    }
    for orphan in &fleet_plan.orphans {
        if let Some(instance) = by_id.get(orphan.instance_id.as_str()) {
            let key = add_quote(Quote::new(region, orphan_request(instance)));
            if fleet_plan.prune {
                ledgers.orphans.going.push(key.clone());
            }
            ledgers.orphans.present.push(key);
        }
    }
    ledgers
}

/// Prices a group's instances, remembering each configuration's quote.
struct GroupPricer<'a> {
    region: &'a str,
    group: &'a DesiredGroup,
    group_plan: &'a GroupPlan,
    /// (zone, instance type, charge type) → quote.
    by_config: BTreeMap<(String, String, String), Quote>,
}

impl GroupPricer<'_> {
    /// A present instance: the group's template in its zone, with its type and charge type.
    fn instance(&mut self, instance: &ObservedInstance) -> Quote {
        let template_type = self.group.template.instance_type.clone().unwrap_or_default();
        let template_charge = self
            .group
            .template
            .instance_charge_type
            .clone()
            .unwrap_or_else(|| INSTANCE_CHARGE_TYPE_DEFAULT.as_str().to_owned());
        let instance_type =
            if instance.instance_type.is_empty() { template_type } else { instance.instance_type.clone() };
        let charge = if instance.instance_charge_type.is_empty() {
            template_charge
        } else {
            instance.instance_charge_type.clone()
        };
        let config = (instance.zone.clone(), instance_type.clone(), charge.clone());
        if let Some(quote) = self.by_config.get(&config) {
            return quote.clone();
        }
        // The group's create there, if it makes one of this configuration (a chosen offering,
        // spot options and all): then both share a quote.
        let create = self.group_plan.creates.iter().map(|c| project(&c.request)).find(|r| {
            r.placement.as_ref().is_some_and(|p| p.zone == instance.zone)
                && r.instance_type.as_deref().unwrap_or_default() == instance_type
                && r.instance_charge_type.as_deref() == Some(charge.as_str())
        });
        let request = create.unwrap_or_else(|| {
            let mut request = self.in_zone(&instance.zone, instance);
            if request.instance_type.as_deref().unwrap_or_default() != instance_type {
                request.instance_type = Some(instance_type.clone());
            }
            set_charge(&mut request, &charge);
            request
        });
        let quote = Quote::new(self.region, request);
        self.by_config.insert(config, quote.clone());
        quote
    }

    /// What replaces `instance` in `zone`: the group's create there, else its template there.
    fn replacement(&mut self, zone: &str, instance: &ObservedInstance) -> Quote {
        let create = self
            .group_plan
            .creates
            .iter()
            .map(|c| project(&c.request))
            .find(|r| r.placement.as_ref().is_some_and(|p| p.zone == zone));
        Quote::new(self.region, create.unwrap_or_else(|| self.in_zone(zone, instance)))
    }

    /// The group's template, projected, in `zone` with the zone's subnet (else the
    /// instance's, for a zone the group left).
    fn in_zone(&self, zone: &str, instance: &ObservedInstance) -> RunInstancesRequest {
        let mut request = project(&self.group.template);
        let mut placement = request.placement.take().unwrap_or_default();
        placement.zone = zone.to_owned();
        request.placement = Some(placement);
        let subnet = match self.group.zones.iter().find(|z| z.zone == zone) {
            Some(z) => z.subnet_id.clone(),
            None => Some(instance.subnet_id.clone()).filter(|s| !s.is_empty()),
        };
        if let (Some(subnet), Some(vpc)) = (subnet, request.virtual_private_cloud.as_mut()) {
            vpc.subnet_id = subnet;
        }
        request
    }
}

/// Sets a request's charge type, with what it needs: a period for PREPAID (one month when the
/// template has none), no prepaid settings or spot options where they do not apply.
fn set_charge(request: &mut RunInstancesRequest, charge: &str) {
    if request.instance_charge_type.as_deref() == Some(charge) {
        return;
    }
    request.instance_charge_type = Some(charge.to_owned());
    let parsed = InstanceChargeType::parse(charge);
    if parsed == Some(InstanceChargeType::Prepaid) {
        request.instance_charge_prepaid.get_or_insert(InstanceChargePrepaid { period: 1, renew_flag: None });
    } else {
        request.instance_charge_prepaid = None;
    }
    if parsed != Some(InstanceChargeType::Spotpaid) {
        request.instance_market_options = None;
    }
}

/// The price-bearing part of a request, for one instance (see [`Quote`]); the charge type is
/// always explicit, so that a default and its spelled-out value share a key.
fn project(request: &RunInstancesRequest) -> RunInstancesRequest {
    let charge = charge_of(request);
    RunInstancesRequest {
        placement: request.placement.clone(),
        image_id: request.image_id.clone(),
        instance_charge_type: Some(
            request
                .instance_charge_type
                .clone()
                .unwrap_or_else(|| INSTANCE_CHARGE_TYPE_DEFAULT.as_str().to_owned()),
        ),
        instance_charge_prepaid: request
            .instance_charge_prepaid
            .clone()
            .filter(|_| charge == Some(InstanceChargeType::Prepaid)),
        instance_type: request.instance_type.clone(),
        system_disk: request.system_disk.clone(),
        data_disks: request.data_disks.clone(),
        virtual_private_cloud: request.virtual_private_cloud.clone().map(|mut vpc| {
            vpc.private_ip_addresses = None;
            vpc
        }),
        internet_accessible: request.internet_accessible.clone(),
        instance_market_options: request
            .instance_market_options
            .clone()
            .filter(|_| charge == Some(InstanceChargeType::Spotpaid)),
        instance_count: Some(1),
        ..RunInstancesRequest::default()
    }
}

/// An orphan as DescribeInstances shows it: zone, type, charge type and image.
fn orphan_request(instance: &ObservedInstance) -> RunInstancesRequest {
    let mut request = RunInstancesRequest {
        placement: Some(Placement { zone: instance.zone.clone(), ..Placement::default() }),
        image_id: Some(instance.image_id.clone()).filter(|i| !i.is_empty()),
        instance_type: Some(instance.instance_type.clone()).filter(|t| !t.is_empty()),
        instance_count: Some(1),
        ..RunInstancesRequest::default()
    };
    let charge = if instance.instance_charge_type.is_empty() {
        INSTANCE_CHARGE_TYPE_DEFAULT.as_str()
    } else {
        instance.instance_charge_type.as_str()
    };
    set_charge(&mut request, charge);
    request
}

#[cfg(test)]
#[path = "cost_tests.rs"]
mod tests;
