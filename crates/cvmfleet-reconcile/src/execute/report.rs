//! What an execution is told and tells: its tunables ([`ExecOptions`]), the user's interrupt
//! ([`Interrupt`]), the progress it reports as it goes ([`Event`], [`Progress`]) and what it
//! did and did not do ([`Report`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::error::ExecError;

/// Tunables of an execution.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// Calls in flight at once; the client's rate limits still apply on top.
    pub concurrency: usize,
    /// Longest wait for instances to run or disappear. 15 minutes, like the Terraform
    /// provider's create timeout, which was raised to that after real launches took longer.
    pub wait_timeout: Duration,
    /// First poll interval while waiting.
    pub poll_min: Duration,
    /// Longest poll interval while waiting.
    pub poll_max: Duration,
}

impl Default for ExecOptions {
    fn default() -> Self {
        ExecOptions {
            concurrency: 8,
            wait_timeout: Duration::from_secs(15 * 60),
            poll_min: Duration::from_millis(500),
            // Short enough that waiting adds at most about a second to the boot delay (the
            // benchmark's target is 1.2x the bound set by rate limits and boot delay), long
            // enough that polling 1,000 instances (10 calls) stays well under the 40/s limit.
            poll_max: Duration::from_secs(1),
        }
    }
}

/// Set when the user interrupts (Ctrl-C): calls in flight finish, nothing new starts.
///
/// A [`Interrupt::child`] is set when its parent is, or when its own condition says so: `watch`
/// gives each term of leadership a child whose condition is "the lease is no longer held", so
/// losing the lease stops execution between calls exactly as Ctrl-C does.
#[derive(Clone, Default)]
pub struct Interrupt(Arc<Flag>);

/// What an [`Interrupt`] consults.
#[derive(Default)]
struct Flag {
    set: AtomicBool,
    parent: Option<Interrupt>,
    condition: Option<Box<dyn Fn() -> bool + Send + Sync>>,
}

impl std::fmt::Debug for Interrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Interrupt").field(&self.is_set()).finish()
    }
}

impl Interrupt {
    /// A flag that is not set.
    #[must_use]
    pub fn new() -> Self {
        Interrupt::default()
    }
    /// A flag that is set when this one is, when it is triggered itself, or as soon as
    /// `condition` returns true (it is asked at every check, so it must be cheap).
    #[must_use]
    pub fn child(&self, condition: impl Fn() -> bool + Send + Sync + 'static) -> Self {
        Interrupt(Arc::new(Flag {
            set: AtomicBool::new(false),
            parent: Some(self.clone()),
            condition: Some(Box::new(condition)),
        }))
    }
    /// Asks the execution to stop.
    pub fn trigger(&self) {
        self.0.set.store(true, Ordering::SeqCst);
    }
    /// Whether a stop was asked for.
    #[must_use]
    pub fn is_set(&self) -> bool {
        self.0.set.load(Ordering::SeqCst)
            || self.0.condition.as_ref().is_some_and(|stop| stop())
            || self.0.parent.as_ref().is_some_and(Interrupt::is_set)
    }
}

/// What an execution reports as it goes; the CLI draws a progress bar or prints lines.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A step was sent.
    Started(String),
    /// A step finished.
    Finished(String),
    /// Waiting for instances: how many of how many are ready.
    Waiting {
        /// Ready so far.
        ready: usize,
        /// All being waited for.
        total: usize,
    },
    /// A status poll failed (the client already retried it); waiting goes on until
    /// [`MAX_FAILED_POLLS`] fail in a row.
    PollFailed {
        /// The error, with its action, code and RequestId.
        error: String,
        /// Failed polls in a row so far.
        in_a_row: u32,
    },
}

/// Status polls that may fail in a row before waiting gives up: at the longest poll interval
/// (1 s) about half a minute of an unreachable endpoint, long enough for a blip, short enough
/// that a dead endpoint is reported instead of waited on for the whole wait bound.
pub const MAX_FAILED_POLLS: u32 = 30;

/// Receives [`Event`]s.
pub trait Progress: Send + Sync {
    /// One event.
    fn event(&self, event: Event);
}

/// A [`Progress`] that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {
    fn event(&self, _: Event) {}
}

/// What an execution did and did not do.
#[derive(Debug, Default)]
pub struct Report {
    /// Instances created and running.
    pub created: Vec<String>,
    /// Stopped instances started and running.
    pub started: Vec<String>,
    /// Instances changed in place.
    pub updated: Vec<String>,
    /// Instances terminated.
    pub terminated: Vec<String>,
    /// Steps that failed.
    pub failures: Vec<ExecError>,
    /// Steps not attempted (interrupted, or held back because a step they depend on failed).
    pub skipped: Vec<String>,
    /// Groups (fleet, group) whose rolling replacement stopped: their new instances did not
    /// come up, so the instances they replace were kept.
    pub rollouts_stopped: Vec<(String, String)>,
    /// ClientTokens the cloud has used before, although none of their instances exists now:
    /// replayed with instances that are all gone, or refused as reused with other
    /// parameters. The next plan steps over them.
    pub spent_tokens: Vec<String>,
    /// Instances a create answered with that vanished before they ran (terminated out of
    /// band): the next plan fills their slots.
    pub lost: Vec<String>,
    /// Steps left to the next round because the cloud moved (a spent token, lost instances,
    /// a batch refused because another run changed some of its instances): the terminations
    /// of a group whose creates did not all come up, such batches. Not failures.
    pub deferred: Vec<String>,
    /// The instances of the deferred batch steps: the next round may plan them again without
    /// that counting as someone else's change.
    pub deferred_ids: Vec<String>,
    /// Instances adopted: their ownership tags were written (issue 12 §4).
    pub adopted: Vec<String>,
    /// Creates the cloud refused for stock: nothing was created and the token stays unspent
    /// (see `cvmfleet_plan::token`); the offering is marked unavailable and the next round
    /// plans the same slots onto the next candidate. Not failures.
    pub stock_shortages: Vec<StockShortage>,
}

/// A create refused for stock.
#[derive(Debug, Clone)]
pub struct StockShortage {
    /// The step.
    pub step: String,
    /// Where it would have launched.
    pub offering: crate::market::OfferingKey,
    /// The refusal (action, code, RequestId).
    pub error: String,
}

impl Report {
    /// Whether everything in the plan was done.
    #[must_use]
    pub fn is_complete(&self) -> bool {
        self.failures.is_empty()
            && self.skipped.is_empty()
            && self.deferred.is_empty()
            && self.stock_shortages.is_empty()
    }

    /// Whether a fresh plan has something to pick up that this one could not finish (spent
    /// tokens, lost instances, deferred steps).
    #[must_use]
    pub fn needs_replan(&self) -> bool {
        !self.spent_tokens.is_empty()
            || !self.lost.is_empty()
            || !self.deferred.is_empty()
            || !self.stock_shortages.is_empty()
    }
}

#[cfg(test)]
mod interrupt_tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::Interrupt;

    #[test]
    fn a_child_is_set_by_its_parent_itself_or_its_condition_and_never_sets_the_parent() {
        let parent = Interrupt::new();
        let lost = Arc::new(AtomicBool::new(false));
        let seen = lost.clone();
        let child = parent.child(move || seen.load(Ordering::SeqCst));
        assert!(!child.is_set());
        lost.store(true, Ordering::SeqCst);
        assert!(child.is_set() && !parent.is_set(), "losing a term stops that term only");
        let other = parent.child(|| false);
        other.trigger();
        assert!(other.is_set() && !parent.is_set());
        let third = parent.child(|| false);
        parent.trigger();
        assert!(third.is_set(), "Ctrl-C stops every term");
    }
}
