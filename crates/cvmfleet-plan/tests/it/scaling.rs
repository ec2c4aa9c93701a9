//! Issue 25 §8: planning and pricing are linear in the number of groups. A spec of 100,000
//! groups took 72 s to `plan` (while `validate` took 1.1 s): pricing looked every group's spec
//! up by scanning the fleet's groups. The check compares the CPU time this thread spends (the
//! kernel's `schedstat`, nanoseconds on the CPU: not wall-clock, so other processes on the
//! machine do not count) on 2,000 and on 32,000 groups: 16 times the groups must cost less
//! than 48 times the work. Measured in a debug build: 21.6 times now (linear, with the
//! logarithm of the ordered maps), 333 times with the quadratic lookups.

use std::collections::BTreeMap;

use cvmfleet_plan::cost::PriceBook;
use cvmfleet_plan::{DesiredFleet, PlanOptions, plan_priced};

use crate::world::{fleet, group};

/// Nanoseconds this thread has run on a CPU.
fn on_cpu_ns() -> u64 {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").expect("schedstat");
    text.split_whitespace().next().and_then(|n| n.parse().ok()).expect("a number")
}

fn groups(n: usize) -> Vec<DesiredFleet> {
    let groups = (0..n)
        .map(|i| {
            let mut g = group(&[("ap-guangzhou-3", 0)]);
            g.name = format!("g{i}");
            g
        })
        .collect();
    vec![fleet(groups)]
}

/// The least CPU time of three plans (and pricings) of `desired`.
fn cost_of(desired: &[DesiredFleet]) -> u64 {
    let observed = BTreeMap::new();
    (0..3)
        .map(|_| {
            let start = on_cpu_ns();
            let planned = plan_priced(desired, &observed, &PriceBook::new(), PlanOptions::default());
            assert_eq!(planned.fleets[0].groups.len(), desired[0].groups.len());
            on_cpu_ns() - start
        })
        .min()
        .expect("three runs")
}

/// Issue 25 §8: see the module comment.
#[cfg(target_os = "linux")]
#[test]
fn issue_25_planning_is_linear_in_groups() {
    let (small, large) = (groups(2_000), groups(32_000));
    let _ = cost_of(&small); // warm up the allocator
    let (a, b) = (cost_of(&small), cost_of(&large));
    let ratio = b as f64 / a.max(1) as f64;
    println!("2,000 groups: {a} ns; 32,000 groups: {b} ns on the CPU ({ratio:.1}x)");
    assert!(ratio < 48.0, "16x the groups cost {ratio:.1}x the CPU time ({a} ns, {b} ns)");
}
