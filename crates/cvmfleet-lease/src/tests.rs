//! The election policy against the in-memory store under paused time.

use std::time::Duration;

use tokio::time::Instant;

use crate::{Attempt, ElectionOptions, Elector, LeaseError, LeaseStore, MemoryStore};

const TTL: Duration = Duration::from_secs(15);

fn elector(store: &MemoryStore, name: &str) -> Elector<MemoryStore> {
    Elector::new(store.clone(), ElectionOptions::new(name, TTL))
}

#[tokio::test(start_paused = true)]
async fn one_leads_the_other_stands_by_and_takes_over_at_once_on_resign() {
    let store = MemoryStore::new();
    let (a, b) = (elector(&store, "a"), elector(&store, "b"));
    let leader = a.campaign().await;
    // Renewals keep it far past one TTL.
    tokio::time::sleep(TTL * 4).await;
    assert!(leader.holds());
    assert_eq!(store.holder().as_deref(), Some("a"));
    assert!(matches!(b.try_lead().await, Ok(Attempt::Standby { holder }) if holder == "a"));

    let standby = tokio::spawn(async move { (b.campaign().await, Instant::now()) });
    tokio::time::sleep(Duration::from_millis(10)).await;
    let resigned = Instant::now();
    let standing = leader.standing();
    leader.resign().await.expect("released");
    assert!(!standing.holds(), "a resigned leader stops acting");
    let (new_leader, at) = standby.await.expect("campaign");
    assert!(new_leader.holds());
    assert_eq!(store.holder().as_deref(), Some("b"));
    assert!(at - resigned < Duration::from_millis(50), "took over at once, not at the next poll");
}

#[tokio::test(start_paused = true)]
async fn a_leader_that_cannot_renew_steps_down_before_the_store_lets_another_in() {
    let store = MemoryStore::new();
    let (a, b) = (elector(&store, "a"), elector(&store, "b"));
    let leader = a.campaign().await;
    tokio::time::sleep(Duration::from_secs(7)).await;
    store.set_down(true);
    let down_at = Instant::now();
    let why = leader.lost().await;
    let stepped_down = Instant::now();
    assert!(why.contains("deadline"), "{why}");
    assert!(!leader.holds());
    // The last renewal was at 5 s (every TTL/3); the store keeps it until 20 s. The leader gave
    // up a margin before that, and nobody else could take it until then.
    assert_eq!(stepped_down - down_at, Duration::from_millis(20_000 - 7_000 - 1_500));
    store.set_down(false);
    assert!(matches!(b.try_lead().await, Ok(Attempt::Standby { .. })), "the store still holds it for a");
    let next = b.campaign().await;
    // a's keeper had left its lease for release; b waited for the expiry (or the release).
    assert!(Instant::now() - down_at <= TTL, "within one TTL of the outage");
    assert!(next.holds());
}

#[tokio::test(start_paused = true)]
async fn standing_reads_the_clock_so_a_frozen_leader_is_deposed_before_any_task_runs() {
    // No keeper at all: nothing but the clock can turn this handle false (as after SIGCONT,
    // when the check may run before the keeper's timer does).
    let (_keeper, rx) = tokio::sync::watch::channel(crate::elector::Tenure {
        until: Instant::now() + Duration::from_secs(1),
        over: None,
    });
    let standing = crate::Standing(rx);
    assert!(standing.holds());
    tokio::time::advance(Duration::from_millis(1001)).await;
    assert!(!standing.holds());
}

#[tokio::test(start_paused = true)]
async fn a_lease_the_store_says_is_gone_is_lost_at_the_next_renewal() {
    let store = MemoryStore::new();
    let leader = elector(&store, "a").campaign().await;
    // Someone else's view: the lease vanished (released out of band).
    store.release(&1).await.expect("release");
    let why = tokio::time::timeout(TTL, leader.lost()).await.expect("noticed within a TTL");
    assert!(why.contains("gone"), "{why}");
    assert!(!leader.holds());
}

#[tokio::test(start_paused = true)]
async fn campaigning_backs_off_while_the_store_is_down_and_recovers() {
    let store = MemoryStore::new();
    store.set_down(true);
    let a = elector(&store, "a");
    assert!(matches!(a.try_lead().await, Err(LeaseError::Unavailable { .. })));
    let started = Instant::now();
    let campaign = tokio::spawn(async move { a.campaign().await });
    tokio::time::sleep(Duration::from_secs(60)).await;
    let tried = store.operations();
    assert_eq!(tried, 0, "nothing answered while down");
    store.set_down(false);
    let leader = campaign.await.expect("campaign");
    assert!(leader.holds());
    // Retried at most one TTL after the store came back.
    assert!(Instant::now() - started <= Duration::from_secs(60) + TTL);
}

#[test]
fn backoff_doubles_from_the_retry_period_up_to_one_ttl() {
    let options = ElectionOptions::new("a", TTL);
    assert_eq!(options.retry(), Duration::from_secs(2));
    let waits: Vec<u64> = (1..=6).map(|n| options.backoff(n).as_secs()).collect();
    assert_eq!(waits, [2, 4, 8, 15, 15, 15]);
    let short = ElectionOptions::new("a", Duration::from_secs(2));
    assert_eq!(short.retry(), Duration::from_millis(400));
    assert_eq!(short.backoff(10), Duration::from_secs(2));
    assert_eq!(ElectionOptions::renew_every(TTL), Duration::from_secs(5));
    assert_eq!(ElectionOptions::margin(TTL), Duration::from_millis(1500));
}

#[tokio::test(start_paused = true)]
async fn a_dropped_leadership_releases_the_lock() {
    let store = MemoryStore::new();
    let leader = elector(&store, "a").campaign().await;
    drop(leader);
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(store.holder(), None);
}
