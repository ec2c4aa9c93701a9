//! Prices for plans (issue 14): the round ([`crate::round`]) asks the cloud what each
//! configuration a plan needs costs (InquiryPriceRunInstances, through [`Quoter`]) and fills a
//! [`cvmfleet_plan::cost::PriceBook`], an input of the pure planner
//! ([`cvmfleet_plan::plan_priced`]), which turns it into the plan's costs.
//!
//! # The bound on price calls
//!
//! A plan needs at most one quote per distinct region, zone, instance type, charge type and
//! launch settings ([`cvmfleet_plan::cost::quotes`]: a group's present instances share their
//! quote with its creates, and groups and fleets with the same settings share one). A
//! [`PriceCache`] keeps each price it got for [`PRICE_TTL`]: a plan made while a price is fresh
//! sends no quote for it, so an unchanged group costs no call. `plan`, `apply` and `drift` use a
//! cache per command (one quote per key per command, whatever its rounds); `watch` keeps one
//! across cycles and the convergences they start. A quote
//! that fails (`FailedOperation.InquiryPriceFailed`, `ResourcesSoldOut.SpecifiedInstanceType`,
//! any error) makes its price unknown for that plan, never fails it, and is asked again by the
//! next one. Quotes go [`QUOTES_IN_FLIGHT`] at a time, paced by the client's rate limit for
//! InquiryPriceRunInstances (10 per second).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use cvmfleet_client::CvmClient;
use cvmfleet_plan::cost::{MonthlyPrice, PriceBook, Quote, QuoteKey, monthly_price};
use cvmfleet_wire::api::RunInstancesRequest;
use cvmfleet_wire::model::Price;

/// How long a price stays fresh: an hour. List prices and discounts change rarely and are
/// announced; spot prices move, but a plan's estimate an hour old is as good as its decision,
/// and `watch` (every 5 minutes by default) then asks about a dozen times less.
pub const PRICE_TTL: Duration = Duration::from_secs(3600);

/// Quotes sent at once: enough to keep InquiryPriceRunInstances at its published 10 per second
/// with answers taking most of a second, few enough not to queue the client's other calls.
pub const QUOTES_IN_FLIGHT: usize = 8;

/// The answer to one quote: the price, or the error's text (its action, code, message and
/// RequestId).
pub type QuoteFuture = Pin<Box<dyn Future<Output = Result<Price, String>> + Send>>;

/// What quotes a RunInstances request: the cloud (a [`CvmClient`]), or a test's fake.
pub trait Quoter: Send + Sync {
    /// The price of `request` (InquiryPriceRunInstances) in `region`.
    fn quote(&self, region: &str, request: &RunInstancesRequest) -> QuoteFuture;
}

impl Quoter for CvmClient {
    fn quote(&self, region: &str, request: &RunInstancesRequest) -> QuoteFuture {
        let (client, region, request) = (self.clone(), region.to_owned(), request.clone());
        Box::pin(async move {
            client
                .quote_run_instances(&region, &request)
                .await
                .map(|answer| answer.data)
                .map_err(|error| crate::converge::error_chain(&error))
        })
    }
}

/// Prices got from the cloud, each kept for its time to live. Shared by the rounds of an
/// apply and the cycles of a watch (and the convergences a cycle starts), so each configuration
/// is quoted once per [`PRICE_TTL`] whichever of them needs it first.
#[derive(Debug)]
pub struct PriceCache {
    ttl: Duration,
    prices: Mutex<BTreeMap<QuoteKey, (MonthlyPrice, Instant)>>,
    sent: AtomicU64,
}

impl Default for PriceCache {
    fn default() -> Self {
        PriceCache::new()
    }
}

impl PriceCache {
    /// An empty cache keeping prices for [`PRICE_TTL`].
    #[must_use]
    pub fn new() -> PriceCache {
        PriceCache::with_ttl(PRICE_TTL)
    }

    /// An empty cache keeping prices for `ttl`.
    #[must_use]
    pub fn with_ttl(ttl: Duration) -> PriceCache {
        PriceCache { ttl, prices: Mutex::new(BTreeMap::new()), sent: AtomicU64::new(0) }
    }

    /// Quotes sent through this cache so far.
    #[must_use]
    pub fn quotes_sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    fn prices(&self) -> std::sync::MutexGuard<'_, BTreeMap<QuoteKey, (MonthlyPrice, Instant)>> {
        self.prices.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The prices of `needed`: fresh ones from the cache, the others quoted by `quoter` (each
    /// key once, [`QUOTES_IN_FLIGHT`] at a time). A failed quote's price is unknown, with its
    /// error as the reason.
    pub async fn book(&self, quoter: &(impl Quoter + ?Sized), needed: &[Quote]) -> PriceBook {
        let now = Instant::now();
        let mut book = PriceBook::new();
        let mut missing: BTreeMap<&QuoteKey, &Quote> = BTreeMap::new();
        {
            let prices = self.prices();
            for quote in needed {
                match prices.get(&quote.key) {
                    Some((price, at)) if now.saturating_duration_since(*at) < self.ttl => {
                        book.insert(quote.key.clone(), Ok(*price));
                    }
                    _ => {
                        missing.insert(&quote.key, quote);
                    }
                }
            }
        }
        let mut waiting = missing.into_values();
        let mut in_flight: JoinSet<(QuoteKey, RunInstancesRequest, Result<Price, String>)> = JoinSet::new();
        loop {
            while in_flight.len() < QUOTES_IN_FLIGHT {
                let Some(quote) = waiting.next() else { break };
                self.sent.fetch_add(1, Ordering::Relaxed);
                let answer = quoter.quote(&quote.region, &quote.request);
                let (key, request) = (quote.key.clone(), quote.request.clone());
                in_flight.spawn(async move { (key, request, answer.await) });
            }
            let Some(done) = in_flight.join_next().await else { break };
            // A task that died (a panic in a quoter) leaves its price unknown: "not quoted".
            let Ok((key, request, answer)) = done else { continue };
            let priced = answer.and_then(|price| monthly_price(&request, &price));
            if let Ok(price) = &priced {
                self.prices().insert(key.clone(), (*price, Instant::now()));
            }
            book.insert(key, priced);
        }
        book
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use cvmfleet_wire::model::{ItemPrice, Placement};
    use cvmfleet_wire::vocab::ChargeUnit;

    use super::*;

    /// Quotes S5.MEDIUM2 at 0.2 an hour after 300 ms, refuses anything else, and counts.
    struct Fake {
        calls: Arc<AtomicU64>,
        in_flight: Arc<AtomicU64>,
        most: Arc<AtomicU64>,
    }

    impl Quoter for Fake {
        fn quote(&self, _region: &str, request: &RunInstancesRequest) -> QuoteFuture {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let (now, most) = (self.in_flight.clone(), self.most.clone());
            let known = request.instance_type.as_deref() == Some("S5.MEDIUM2");
            Box::pin(async move {
                let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(n, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(300)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                if known {
                    Ok(Price {
                        instance_price: ItemPrice::pay_as_you_go(0.2, 0.2, ChargeUnit::Hour),
                        bandwidth_price: ItemPrice::pay_as_you_go(0.0, 0.0, ChargeUnit::Hour),
                    })
                } else {
                    Err("InquiryPriceRunInstances failed: ResourcesSoldOut.SpecifiedInstanceType: sold out \
                         (RequestId r-1)"
                        .to_owned())
                }
            })
        }
    }

    fn fake() -> Fake {
        Fake { calls: Arc::default(), in_flight: Arc::default(), most: Arc::default() }
    }

    /// A plan of one group per zone, priced with `quotes`: here, quotes made by hand.
    fn quote(zone: &str, instance_type: &str) -> Quote {
        // Keys come from the planner; a one-group plan gives one per zone.
        let fleet = cvmfleet_plan::DesiredFleet {
            project: "default".into(),
            name: "web".into(),
            region: "ap-guangzhou".into(),
            prune: false,
            allow_deletion: false,
            groups: vec![
                cvmfleet_plan::DesiredGroup::new(
                    "app",
                    RunInstancesRequest {
                        image_id: Some("img-pmqg1cw7".into()),
                        instance_type: Some(instance_type.into()),
                        placement: Some(Placement::default()),
                        ..Default::default()
                    },
                    "0".repeat(16),
                )
                .in_zone(zone, 1),
            ],
            orphans: Default::default(),
            max_monthly_cost_increase: None,
        };
        let plan = cvmfleet_plan::plan(
            std::slice::from_ref(&fleet),
            &BTreeMap::new(),
            cvmfleet_plan::PlanOptions::default(),
        );
        cvmfleet_plan::cost::quotes(&plan, &[fleet], &BTreeMap::new()).remove(0)
    }

    #[tokio::test(start_paused = true)]
    async fn prices_are_quoted_once_concurrently_and_kept_for_an_hour() {
        let quoter = fake();
        let needed: Vec<Quote> = (0..20).map(|i| quote(&format!("ap-guangzhou-{i}"), "S5.MEDIUM2")).collect();
        let mut doubled = needed.clone();
        doubled.extend(needed.iter().cloned());
        let cache = PriceCache::new();
        let started = Instant::now();
        let book = cache.book(&quoter, &doubled).await;
        // 20 keys, each asked once, 8 at a time: three rounds of 300 ms.
        assert_eq!((quoter.calls.load(Ordering::SeqCst), cache.quotes_sent()), (20, 20));
        assert_eq!(quoter.most.load(Ordering::SeqCst), QUOTES_IN_FLIGHT as u64);
        assert_eq!(started.elapsed(), Duration::from_millis(900));
        assert_eq!(book.len(), 20);
        assert!((book.get(&needed[0].key).unwrap().as_ref().unwrap().amount - 146.0).abs() < 1e-9);

        // Fresh: nothing is asked again.
        tokio::time::advance(PRICE_TTL - Duration::from_secs(1)).await;
        let again = cache.book(&quoter, &needed).await;
        assert_eq!(quoter.calls.load(Ordering::SeqCst), 20);
        assert_eq!(again, book);
        // Stale after the hour: asked again.
        tokio::time::advance(Duration::from_secs(2)).await;
        cache.book(&quoter, &needed[..1]).await;
        assert_eq!(quoter.calls.load(Ordering::SeqCst), 21);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_quote_is_unknown_for_this_plan_and_asked_again_by_the_next() {
        let quoter = fake();
        let sold_out = quote("ap-guangzhou-3", "S5.LARGE8");
        let cache = PriceCache::new();
        let book = cache.book(&quoter, std::slice::from_ref(&sold_out)).await;
        let why = book.get(&sold_out.key).unwrap().as_ref().unwrap_err();
        assert!(
            why.contains("ResourcesSoldOut.SpecifiedInstanceType") && why.contains("RequestId r-1"),
            "{why}"
        );
        cache.book(&quoter, std::slice::from_ref(&sold_out)).await;
        assert_eq!(quoter.calls.load(Ordering::SeqCst), 2);
    }
}
