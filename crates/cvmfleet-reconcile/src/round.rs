//! One round: observe → read stock → plan → price. `cvmfleet plan` (and `apply`'s first plan
//! and `drift`), every follow-up round of a convergence ([`crate::converge`]) and every
//! [`crate::watch`] cycle make their plans here, and nowhere else.
//!
//! Observation plans nothing, and the plan is never patched after it is made: stock and prices
//! are inputs of the pure planner. What a round reads besides the listing follows from what the
//! specs and an unpriced plan of what it has read so far say:
//!
//! 1. **List** the fleets' regions (and, for `plan`, every region where the project has
//!    instances). A fleet with a group that `rebalance`s needs stock whatever its plan: it is
//!    read now.
//! 2. **Plan without prices** ([`cvmfleet_plan::plan`]). A fleet whose plan creates and whose
//!    stock was not read has its stock read (one DescribeZoneInstanceConfigInfos per region
//!    and charge type for all such fleets together); a fleet listed over several pages has
//!    every pool its plan creates in read again with one consistent page
//!    ([`crate::observe::reread_pool`], see `cvmfleet_plan::token`). Then it plans again, until
//!    a plan needs nothing unread. Each pass reads only what no earlier pass read, so this
//!    ends; a steady fleet plans once here and reads no stock.
//! 3. **Price**: the quotes that last plan needs ([`cvmfleet_plan::cost::quotes`]) go through
//!    the run's [`PriceCache`] (one call per configuration per [`crate::prices::PRICE_TTL`]),
//!    and the plan is made once more with them ([`cvmfleet_plan::plan_priced`]). Prices change
//!    no step, token or count of a plan: that plan's steps are the last unpriced plan's.
//!
//! The cloud is reached through [`Reads`] (the reads of a round) and [`Quoter`] (prices), so
//! the watch cycle runs against in-process fakes under paused time; [`CvmClient`] is the real
//! cloud.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use cvmfleet_client::CvmClient;
use cvmfleet_plan::cost::Quote;
use cvmfleet_plan::{DesiredFleet, ObservedFleet, OfferingState, Plan, PlanOptions};
use cvmfleet_wire::model::Filter;

use crate::error::ExecError;
use crate::market::{Unavailable, apply_marks};
use crate::observe::{Observation, observe_each, pool_filters, project_of, regions_with_instances};
use crate::prices::{PriceCache, Quoter};

/// The reads a round makes of the cloud, besides prices ([`Quoter`]).
pub trait Reads: Quoter {
    /// Lists the instances of `fleets` in their regions, each fleet with its own outcome, and,
    /// with `everywhere`, in every other region where their project has instances (see
    /// [`crate::observe`]).
    ///
    /// # Errors
    /// Finding the other regions failed.
    fn list(
        &self,
        fleets: &[DesiredFleet],
        everywhere: bool,
    ) -> impl Future<Output = Result<Observation, ExecError>> + Send;

    /// The stock of the offerings `fleets` name in their zones, per fleet (see
    /// [`crate::market::read_stock`]). By default the cloud tells none: every offering is taken
    /// to have stock.
    ///
    /// # Errors
    /// The first failed read.
    fn stock(
        &self,
        fleets: &[&DesiredFleet],
    ) -> impl Future<Output = Result<BTreeMap<String, Vec<OfferingState>>, ExecError>> + Send {
        let _ = fleets;
        std::future::ready(Ok(BTreeMap::new()))
    }

    /// Reads the pool `filters` names again, one consistent page, into `seen` (see
    /// [`crate::observe::reread_pool`]). Only asked of a fleet [`Observation::paged`] names.
    ///
    /// # Errors
    /// The read failed; by default every re-read does (a cloud that never lists over several
    /// pages is never asked).
    fn reread_pool(
        &self,
        fleet: &DesiredFleet,
        filters: &[Filter],
        seen: &mut ObservedFleet,
    ) -> impl Future<Output = Result<(), ExecError>> + Send {
        let _ = (filters, seen);
        std::future::ready(Err(ExecError::ObserveAborted { fleet: fleet.name.clone() }))
    }
}

impl Reads for CvmClient {
    async fn list(&self, fleets: &[DesiredFleet], everywhere: bool) -> Result<Observation, ExecError> {
        let project = project_of(fleets);
        let more = if everywhere {
            let known = fleets.iter().map(|f| f.region.clone()).collect();
            regions_with_instances(self, project, &known).await.map_err(ExecError::Regions)?
        } else {
            Vec::new()
        };
        Ok(observe_each(self, project, fleets, &more).await)
    }

    async fn stock(
        &self,
        fleets: &[&DesiredFleet],
    ) -> Result<BTreeMap<String, Vec<OfferingState>>, ExecError> {
        crate::market::read_stock(self, fleets).await
    }

    async fn reread_pool(
        &self,
        fleet: &DesiredFleet,
        filters: &[Filter],
        seen: &mut ObservedFleet,
    ) -> Result<(), ExecError> {
        crate::observe::reread_pool(self, fleet, filters, seen)
            .await
            .map_err(|source| ExecError::Observe { fleet: fleet.name.clone(), source: source.into() })
    }
}

/// How a run makes its rounds: its planning switches and what its rounds share.
#[derive(Debug, Clone, Copy)]
pub struct Round<'a> {
    options: PlanOptions,
    memory: Option<&'a Unavailable>,
    prices: &'a PriceCache,
    spent: Option<&'a BTreeSet<String>>,
    launched: Option<&'a BTreeSet<String>>,
    everywhere: bool,
}

/// The plans of a round made fleet by fleet ([`Round::plan_each`]).
#[derive(Debug, Default)]
pub struct EachPlanned {
    /// One plan per fleet observed, and per fleet found where no spec declares it (keyed by
    /// [`cvmfleet_plan::observed::elsewhere_key`]).
    pub plans: BTreeMap<String, Plan>,
    /// The fleets that could not be observed, with why.
    pub failed: BTreeMap<String, ExecError>,
    /// The stock read that failed, if one did: those fleets were planned without stock (the
    /// memory's marks still applied), so a shortage is found by the launch.
    pub stock_error: Option<ExecError>,
}

/// A unit planned together: fleets (none for a fleet no spec declares) and what was read of
/// them.
struct Unit<'d> {
    fleets: &'d [DesiredFleet],
    observed: BTreeMap<String, ObservedFleet>,
}

impl<'a> Round<'a> {
    /// Rounds planned under `options`, quoting through `prices`.
    #[must_use]
    pub fn new(options: PlanOptions, prices: &'a PriceCache) -> Round<'a> {
        Round { options, memory: None, prices, spent: None, launched: None, everywhere: false }
    }

    /// Offerings a launch found short, kept across rounds: their stock is taken as
    /// unavailable whatever the read says ([`crate::market`]).
    #[must_use]
    pub fn memory(mut self, memory: &'a Unavailable) -> Round<'a> {
        self.memory = Some(memory);
        self
    }

    /// ClientTokens the cloud said are spent, added to every fleet's observation.
    #[must_use]
    pub fn spent(mut self, spent: &'a BTreeSet<String>) -> Round<'a> {
        self.spent = Some(spent);
        self
    }

    /// Instances the run's own last creates made that failed to launch: those that failed for
    /// stock mark their offering in the memory before it is read.
    #[must_use]
    pub fn launched(mut self, launched: &'a BTreeSet<String>) -> Round<'a> {
        self.launched = Some(launched);
        self
    }

    /// List every region where the project has instances, not only the specs' (`plan`).
    #[must_use]
    pub fn everywhere(mut self) -> Round<'a> {
        self.everywhere = true;
        self
    }

    /// One round over every fleet together: one plan.
    ///
    /// # Errors
    /// An observation or a stock read that failed: nothing is planned from half a picture.
    pub async fn plan<R: Reads>(&self, reads: &R, desired: &[DesiredFleet]) -> Result<Plan, ExecError> {
        let observation = reads.list(desired, self.everywhere).await?;
        let mut observed = BTreeMap::new();
        for (name, result) in observation.fleets {
            observed.insert(name, result?);
        }
        let mut units = vec![Unit { fleets: desired, observed }];
        let read = self.read_and_plan(reads, desired, &observation.paged, &mut units, true).await?;
        let mut plans = self.priced(reads, &units, &read.plans).await;
        Ok(plans.remove(0))
    }

    /// One round fleet by fleet: one plan per fleet (and per fleet no spec declares), a fleet
    /// that cannot be observed failing alone (`watch`).
    ///
    /// # Errors
    /// Finding the other regions failed (only with [`Round::everywhere`]).
    pub async fn plan_each<R: Reads>(
        &self,
        reads: &R,
        desired: &[DesiredFleet],
    ) -> Result<EachPlanned, ExecError> {
        let observation = reads.list(desired, self.everywhere).await?;
        let mut out = EachPlanned::default();
        let mut seen = BTreeMap::new();
        for (name, result) in observation.fleets {
            match result {
                Ok(fleet) => {
                    seen.insert(name, fleet);
                }
                Err(error) => {
                    out.failed.insert(name, error);
                }
            }
        }
        let mut units = Vec::new();
        for fleet in desired {
            if let Some(observed) = seen.remove(&fleet.name) {
                let observed = BTreeMap::from([(fleet.name.clone(), observed)]);
                units.push(Unit { fleets: std::slice::from_ref(fleet), observed });
            }
        }
        // What is left is fleets found where no spec declares them.
        for (key, observed) in seen {
            units.push(Unit { fleets: &[], observed: BTreeMap::from([(key, observed)]) });
        }
        let read = self.read_and_plan(reads, desired, &observation.paged, &mut units, false).await?;
        out.stock_error = read.stock_error;
        out.failed.extend(read.failed);
        let plans = self.priced(reads, &units, &read.plans).await;
        for (unit, plan) in units.iter().zip(plans) {
            if let Some(name) = unit.observed.keys().next() {
                out.plans.insert(name.clone(), plan);
            }
        }
        Ok(out)
    }

    /// Steps 1 and 2 of the module docs: fills the units' observations with the spent tokens,
    /// the memory's marks, stock and pool re-reads until their unpriced plans need nothing
    /// unread, and returns those plans. Strict, the first failure ends it; otherwise a stock
    /// read that fails leaves its fleets planned without stock, and a fleet whose pool re-read
    /// failed is dropped from `units` and reported.
    async fn read_and_plan<R: Reads>(
        &self,
        reads: &R,
        desired: &[DesiredFleet],
        paged: &BTreeSet<String>,
        units: &mut Vec<Unit<'_>>,
        strict: bool,
    ) -> Result<Read, ExecError> {
        let mut read = Read::default();
        for unit in units.iter_mut() {
            for seen in unit.observed.values_mut() {
                if let Some(spent) = self.spent {
                    seen.spent_tokens.extend(spent.iter().cloned());
                }
            }
            if let (Some(memory), Some(launched)) = (self.memory, self.launched) {
                memory.note_failed_launches(unit.fleets, &unit.observed, launched);
            }
            self.mark(unit);
        }
        let mut stock_read: BTreeSet<String> = BTreeSet::new();
        let mut pools_read: BTreeSet<(String, Vec<String>)> = BTreeSet::new();
        let planned = |name: &String, units: &[Unit<'_>]| {
            units.iter().any(|u| u.fleets.iter().any(|f| &f.name == name))
        };
        // Fleets that rebalance need stock whatever their plan says.
        let mut need_stock: BTreeSet<String> = desired
            .iter()
            .filter(|f| f.groups.iter().any(|g| g.capacity.rebalance))
            .map(|f| f.name.clone())
            .filter(|name| planned(name, units))
            .collect();
        loop {
            if !need_stock.is_empty() {
                let fleets: Vec<&DesiredFleet> =
                    desired.iter().filter(|f| need_stock.contains(&f.name)).collect();
                match reads.stock(&fleets).await {
                    Ok(mut market) => {
                        for unit in units.iter_mut() {
                            for (name, seen) in &mut unit.observed {
                                if let Some(states) = market.remove(name) {
                                    seen.market = states;
                                }
                            }
                            self.mark(unit);
                        }
                    }
                    Err(error) if strict => return Err(error),
                    Err(error) => read.stock_error = Some(error),
                }
                stock_read.append(&mut need_stock);
            }
            read.plans =
                units.iter().map(|u| cvmfleet_plan::plan(u.fleets, &u.observed, self.options)).collect();
            let mut pending: Vec<(usize, String, Vec<Filter>)> = Vec::new();
            for (at, plan) in read.plans.iter().enumerate() {
                for fleet in plan.fleets.iter().filter(|f| !f.orphan_fleet) {
                    let creates = fleet.groups.iter().flat_map(|g| &g.creates);
                    // After a failed stock read, the others are planned without it.
                    let stock_known = stock_read.contains(&fleet.name) || read.stock_error.is_some();
                    if creates.clone().next().is_some() && !stock_known {
                        need_stock.insert(fleet.name.clone());
                    }
                    if !paged.contains(&fleet.name) {
                        continue;
                    }
                    for filters in creates.filter_map(pool_filters) {
                        if pools_read.insert((fleet.name.clone(), pool_key(&filters))) {
                            pending.push((at, fleet.name.clone(), filters));
                        }
                    }
                }
            }
            if need_stock.is_empty() && pending.is_empty() {
                return Ok(read);
            }
            for (at, name, filters) in pending {
                let Some(fleet) = desired.iter().find(|f| f.name == name) else { continue };
                let Some(seen) = units[at].observed.get_mut(&name) else { continue };
                if let Err(error) = reads.reread_pool(fleet, &filters, seen).await {
                    if strict {
                        return Err(error);
                    }
                    units[at].observed.remove(&name);
                    read.failed.insert(name, error);
                }
            }
            units.retain(|u| !u.observed.is_empty());
        }
    }

    /// Sets the offerings the memory marks to unavailable in a unit's observations.
    fn mark(&self, unit: &mut Unit<'_>) {
        if let Some(memory) = self.memory {
            apply_marks(unit.fleets, &mut unit.observed, memory);
        }
    }

    /// Step 3 of the module docs: the units' plans, priced. `unpriced` are their last plans
    /// without prices, which say what to quote.
    async fn priced<R: Reads>(&self, reads: &R, units: &[Unit<'_>], unpriced: &[Plan]) -> Vec<Plan> {
        let needed: Vec<Quote> = units
            .iter()
            .zip(unpriced)
            .flat_map(|(u, plan)| cvmfleet_plan::cost::quotes(plan, u.fleets, &u.observed))
            .collect();
        let book = self.prices.book(reads, &needed).await;
        units.iter().map(|u| cvmfleet_plan::plan_priced(u.fleets, &u.observed, &book, self.options)).collect()
    }
}

/// What the reads of a round found, with the unpriced plans they ended with.
#[derive(Default)]
struct Read {
    /// One per unit, in order.
    plans: Vec<Plan>,
    /// The stock read that failed (not strict).
    stock_error: Option<ExecError>,
    /// Fleets whose pool re-read failed (not strict).
    failed: BTreeMap<String, ExecError>,
}

/// A pool's identity among a fleet's re-reads: its filters' values.
fn pool_key(filters: &[Filter]) -> Vec<String> {
    filters.iter().flat_map(|f| f.values.clone()).collect()
}
