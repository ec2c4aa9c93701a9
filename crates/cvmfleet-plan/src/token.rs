//! ClientTokens derived from the spec, so that every RunInstances is idempotent across
//! processes, retries, crashes and concurrent applies — and the argument that no interleaving
//! of those creates an instance beyond the spec.
//!
//! # Pools and generations
//!
//! The capacity of a (fleet, group, zone) is cut into **pools** of at most
//! [`MAX_BATCH`](cvmfleet_wire::MAX_BATCH) slots at absolute multiples of 100: with `n` wanted
//! in the zone, pool `k` has the *target* `w_k = min(100, n − 100k)` (`k < ⌈n/100⌉`). A pool
//! is a name for capacity, not for particular instances: every instance is created with the
//! tag `cvmfleet:pool = <zone>/<k>` of the pool it was made for, in the same RunInstances call
//! as its other ownership tags. (Groups with explicit private IPs are the exception: there a
//! slot *is* its IP, see below.)
//!
//! A pool is filled by **generations**: the create of generation `g` of pool `k` sends the
//! ClientToken `H(fleet, group, zone, request digest, k, g)` ([`TokenSeed::token`]), and every
//! instance it makes carries that token in `cvmfleet:token`. The *request digest* covers every
//! parameter of the request as the spec makes it (template, zone, subnet, tags, the password
//! reference) — so a spec change opens a fresh token space and no token is ever sent with
//! parameters other than those it was first used with for the same spec. It leaves out exactly
//! what an observer chooses from what it observed: `InstanceCount` (the pool's deficit),
//! `ClientToken` and the token tag themselves — and the **placement** chosen from observed
//! stock (the zone a create launches in, its subnet, the offering: instance type, charge type,
//! spot bid, and `MinCount`): see "Offerings and zones chosen from stock" below.
//!
//! # The planner's rules
//!
//! 1. **Deficit from a consistent read.** A pool's *live* instances are the present ones of the
//!    current template tagged with the pool (instances about to be replaced, failed launches
//!    and leaving instances do not count; untagged current instances from before pools fill
//!    the lowest pools' free room). A create in pool `k` asks for at most `w_k − live_k`.
//!    When a fleet's listing spanned several pages (offset paging is not a snapshot), the
//!    reconciler's round (`cvmfleet_reconcile::round`) plans, re-reads each pool that plan
//!    creates in with one single-page, tag-filtered DescribeInstances, and plans again from
//!    that, until every create of its plan is in a pool so re-read (a stock read that moves a
//!    create to another offering re-plans in the same loop, so the pools checked are those of
//!    the plan that is executed). The plan the round returns is made once more with prices,
//!    which change no create, count or token. So the count that decides a create always comes
//!    from one consistent read.
//! 2. **One create per pool per plan.** Work that must wait (a rollout's terminate-first
//!    replacements) is not planned ahead under a later generation: it is planned by the next
//!    round, from a fresh observation.
//! 3. **Next generation.** A pool's create uses the generation after the highest one whose
//!    token an observed instance carries, stepping over tokens known to be spent
//!    ([`crate::ObservedFleet::spent_tokens`]: the cloud replayed them with instances that
//!    are all gone, or refused them as reused with other parameters). A token is never
//!    un-spent, so every generation below a carried one is spent too.
//!
//! # The invariant and why concurrent observers agree
//!
//! **For every pool, the instances ever created in it number at most its target plus the
//! instances of the pool that left (terminated out of band, failed to launch, or replaced by
//! cvmfleet for a reason the spec names).** No instance is created beyond the spec.
//!
//! - *At most one create per generation.* A generation has one token, so however many
//!   observers send it, the cloud creates once and replays (or, strict about parameters,
//!   refuses) the rest. This holds whatever each observer asked for: the count is not in
//!   the token, so an observer that saw a larger deficit for the same generation gets the
//!   first sender's instances back, or a refusal, never a second batch.
//! - *Each generation's count is bounded by what is missing.* Whoever sends generation `g`
//!   first planned it from a consistent read of the pool in which every generation below
//!   `g` was spent (carried, or known spent). Spent generations created their instances
//!   before that read (a token is recorded with the instances it creates, and the cloud
//!   lists an instance as soon as RunInstances answers), so every one of those instances was
//!   either in the read, and counted in `live`, or had already left. With rule 2, `g`'s
//!   count is at most `w − live`, so the instances of generations `≤ g` number at most
//!   `w + left`. By induction over `g`, the invariant holds.
//! - *What each observer may see.* Chunks landing in any order do not matter: pools are
//!   independent and none is inferred from another's count. A killed or retried apply, or one
//!   whose response was lost, re-plans from a read that either lacks the first attempt's
//!   instances (then it sends the same generation, which replays) or has them (then they are
//!   live, and only what is still missing is asked for, under the next generation). A batch
//!   partly lost out of band is refilled by one new generation for exactly the lost count;
//!   its live instances stay. A rolling replacement's creates are just the pool's next
//!   generations: surge and terminate-first replacements share one identity space.
//!
//! # Groups with explicit private IPs
//!
//! A slot is its IP; a create names its IPs and its token hashes them. Two observers that see
//! different missing IPs send different tokens, but the cloud refuses a second instance with an
//! IP in use, so neither can create beyond the spec.
//!
//! # Projects, per-region reads and adoption (issue 12)
//!
//! - *Projects.* The `cvmfleet:project` tag is in the request, so in the request digest: two
//!   projects never share a token, whatever their fleets are called. A pool's `live` counts
//!   only the instances that belong to the project (its tag, or no project tag at all: made
//!   before projects, when the fleet name was the identity). Counting an instance in more
//!   places can only shrink a deficit, never grow one, so the invariant's bound holds.
//! - *Per-region reads.* A fleet's instances now come from its region's listing by project
//!   tag. A region listed over several pages re-reads every pool its round's final plan
//!   creates in exactly as rule 1 says (fleet, group, template and pool tags, one page); the
//!   project is filtered after the read, on the client, so that pool members from before
//!   projects stay counted. `plan`, every round of `apply` and every `watch` cycle make their
//!   plans through that one round, so no executed create skips the re-read.
//! - *Adoption.* An adoptee counts as live in the plan that adopts it: that plan creates at
//!   most `w − live` with `live` including it. Adoption creates nothing and takes no token.
//!   If its tag write fails, the next read lacks it and the pool's next generation fills the
//!   slot: instances ever created stay within `w + left`.
//!
//! # Offerings and zones chosen from stock (issue 13)
//!
//! A group may accept several offerings (`instanceTypes:`) and, under `zonePolicy`, launch a
//! slot in another zone than its home when the home is short ([`crate::placement`]). Which
//! one a create takes depends on what its observer read of stock and on its memory of failed
//! launches: two observers may well choose differently for the same missing slots. So:
//!
//! - *The placement is not the identity.* A slot's pool is named by its **home zone**, which
//!   the spec alone fixes (spread: the even split; priority: the first zone), and so are its
//!   `cvmfleet:pool` tag and its token seed: `H(fleet, group, home zone, digest, k, g)`. The
//!   request digest is computed over the request the spec makes for the home zone *before*
//!   the placement is applied: without the offering fields (a group with `instanceTypes` has
//!   no InstanceType in its template) and with the home zone's Placement and subnet. Only
//!   then are the launch zone, subnet, offering and `MinCount` written into the request.
//!   A group without `instanceTypes`, launching at home, sends byte for byte the request and
//!   token it sent before offerings existed.
//! - *So every observer sends the same token for the same generation*, whatever it chose.
//!   The cloud creates once: the first sender's instances; every later sender gets them
//!   replayed, or (strict about parameters, as the emulator is) a refusal, which the executor
//!   records as spent. Rule 1's "live" counts a pool's instances by their pool tag wherever
//!   they run, so a displaced instance is live in its home pool, and rule 3's "carried"
//!   tokens are the home pool's. The invariant's induction is unchanged: the placement changes
//!   where instances go, never how many one generation may make.
//! - *A stock refusal spends nothing.* A create refused for stock (`ResourceInsufficient.*`,
//!   `ResourcesSoldOut.*`) created nothing and its token is not recorded by the cloud, so the
//!   fallback re-plans the **same generation** onto the next candidate. The token must not be
//!   treated as spent: another observer may be sending that generation successfully at the same
//!   moment, and a next generation planned from a read that missed its instances could create
//!   twice. The offering the refusal named is marked unavailable for a TTL, so the re-plan
//!   chooses another one (and `watch` does not retry it before the TTL).
//! - *Partial delivery* (`MinCount: 1`, groups with `instanceTypes` or `zonePolicy: priority`):
//!   a generation makes at most its count, and maybe fewer; the rest of the pool is missing in
//!   the next read and filled by the next generation, as any loss is. `MinCount` is written
//!   after the digest like the placement (issue 25 §9), so a priority group's tokens are those
//!   it had before: two observers, one sending `MinCount` and one not, still send one token
//!   per generation, and the cloud creates once.
//! - *Stock that vanished after acceptance* (`LAUNCH_FAILED`): those instances carry the
//!   generation's token and count for nothing; the next generation fills the slots, elsewhere.
//!   They are among the instances that "left" in the invariant.
//! - *Kill -9 between an accepted create on A and a fallback to B*: the re-run reads A's
//!   instances (the cloud lists an instance as soon as RunInstances answers), counts them live
//!   and asks for nothing more; a re-run that read before they listed sends the same
//!   generation, now for B, and gets A's instances replayed or a refusal.
//! - *Lost response on the last stock*: the retry sends the same token and gets the instances
//!   back; a re-plan that finds the offering sold out chooses B for the same generation, and
//!   the cloud replays or refuses it.
//! - *Rebalance* (`rebalance: true`) replaces an instance on a fallback placement like any
//!   other rolling replacement: its new instance is the pool's next generation. Observers that
//!   disagree on stock may disagree on whether an instance is on a fallback; one that does not
//!   see it as one sees a surplus instead. Surplus goes fallback-first (before booting and age,
//!   `group::surplus_order`), so it terminates the fallback, never the preferred instance the
//!   rebalance made: otherwise that instance would be made again, an instance created beyond
//!   the spec (found by the scarce-stock simulation).
//!
//! Assumed of the cloud: a request refused for stock does not record its ClientToken. A cloud
//! that replayed the refusal for the token would keep that pool from falling back (it would
//! be reported unplaced, not created twice).
//!
//! # Residual cases (no coordination-free scheme can do better)
//!
//! - **Two different specs applied at once** (a spec edited while an older apply still
//!   runs): their digests differ, so both may fill the same missing capacity, each with its
//!   own template. Bounded by one create per pool per plan: at most one pool's deficit per
//!   concurrent spec version; the next plan sees the surplus and terminates it.
//! - **A cloud that acknowledges a create before it lists its instances** (eventual
//!   consistency), or a token lost by the cloud: an observer reading in that window cannot
//!   know. The emulator lists at once; Tencent documents that new instances list as PENDING.
//!   The executor treats a replay whose instances are absent twice in a row as spent.
//! - **An instance rebooting out of band at the instant of a pool re-read**: the re-read asks
//!   for the live states so that failed launches and leaving instances cannot push a pool onto
//!   a second page, and the API takes five values per filter: `REBOOTING` is left out. One
//!   such instance can be created beyond the spec per rebooting instance; cvmfleet itself never
//!   reboots. (Found by the simulation, seed 22900: 96 live plus 12 lingering failed launches
//!   made the re-read two pages, and a paging race created one instance too many.)
//! - **Legacy instances** (made before pools, without `cvmfleet:pool`): they cannot be re-read
//!   per pool, so a paging race over them is only as safe as the listing.
//! - Tokens are assumed remembered for as long as a pool's instances may be lost; a cloud
//!   that forgets a token turns its replay into a new create.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Prefix of every cvmfleet ClientToken, so tokens are recognisable in audit logs. `cvmf2-`
/// marks pool tokens (version 1 hashed slot ranges).
pub const TOKEN_PREFIX: &str = "cvmf2-";

/// Hex digits of the hash kept in a token: 48 (192 bits) keeps tokens at 54 characters, under
/// the API's 64-character limit, with collisions out of the question.
const TOKEN_HASH_HEX: usize = 48;

/// How many generations of a pool the planner hashes when looking for the highest one in use.
/// A pool lost out of band more often than this still converges safely: the planner then
/// proposes a spent generation, whose replay creates nothing, and learns it is spent.
pub const GENERATION_SCAN: u32 = 256;

/// Which slots a create fills.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Slots {
    /// Pool `index` of the zone: slots `100·index .. 100·index + 100`.
    Pool {
        /// The pool's index in its zone.
        index: u32,
    },
    /// The private IPs being filled, sorted.
    Ips(Vec<String>),
}

/// Everything a create's token is derived from, except the generation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenSeed {
    /// Fleet name.
    pub fleet: String,
    /// Group name.
    pub group: String,
    /// Zone.
    pub zone: String,
    /// Digest of the request as the spec makes it ([`request_digest`]).
    pub request_digest: String,
    /// Slots filled.
    pub slots: Slots,
}

impl TokenSeed {
    /// The ClientToken of this seed at a generation.
    #[must_use]
    pub fn token(&self, generation: u32) -> String {
        let mut hasher = Sha256::new();
        // Fields are NUL-separated: names cannot contain NUL, so no two seeds collide by
        // shifting text between fields.
        for part in [&self.fleet, &self.group, &self.zone, &self.request_digest] {
            hasher.update(part.as_bytes());
            hasher.update([0]);
        }
        match &self.slots {
            Slots::Pool { index } => hasher.update(format!("pool:{index}")),
            Slots::Ips(ips) => hasher.update(format!("ips:{}", ips.join(","))),
        }
        hasher.update([0]);
        hasher.update(generation.to_string());
        let digest = hex::encode(hasher.finalize());
        format!("{TOKEN_PREFIX}{}", &digest[..TOKEN_HASH_HEX])
    }

    /// The value of the `cvmfleet:pool` tag of this seed's instances (`None` for IP slots).
    #[must_use]
    pub fn pool_tag(&self) -> Option<String> {
        match self.slots {
            Slots::Pool { index } => Some(pool_tag(&self.zone, index)),
            Slots::Ips(_) => None,
        }
    }

    /// The generation a new create of this seed uses: the one after the highest whose token is
    /// in use (carried by an observed instance, or known spent), then past any known spent.
    #[must_use]
    pub fn next_generation(&self, in_use: &dyn Fn(&str) -> bool) -> u32 {
        let highest = (0..GENERATION_SCAN).filter(|g| in_use(&self.token(*g))).max();
        let mut generation = highest.map_or(0, |g| g + 1);
        while in_use(&self.token(generation)) {
            generation += 1;
        }
        generation
    }
}

/// The `cvmfleet:pool` tag value of pool `index` of `zone`.
#[must_use]
pub fn pool_tag(zone: &str, index: u32) -> String {
    format!("{zone}/{index}")
}

/// The zone a `cvmfleet:pool` tag value names: its slots' home zone.
#[must_use]
pub fn pool_tag_zone(value: &str) -> Option<&str> {
    value.rsplit_once('/').map(|(zone, _)| zone)
}

/// Reads a `cvmfleet:pool` tag value back: the pool's index, when it names `zone`.
#[must_use]
pub fn parse_pool_tag(value: &str, zone: &str) -> Option<u32> {
    let (tag_zone, index) = value.rsplit_once('/')?;
    if tag_zone != zone {
        return None;
    }
    index.parse().ok()
}

/// The targets of a zone's pools: `n` slots cut at absolute multiples of `batch`.
#[must_use]
pub fn pool_targets(n: u32, batch: u32) -> Vec<u32> {
    let mut targets = Vec::new();
    let mut start = 0;
    while start < n {
        targets.push((n - start).min(batch));
        start += batch;
    }
    targets
}

/// SHA-256 (hex) of a serializable request, for [`TokenSeed::request_digest`].
#[must_use]
pub fn request_digest(request: &impl Serialize, password_ref: Option<&str>) -> String {
    let mut hasher = Sha256::new();
    // Serializing a typed request is deterministic: struct fields in declaration order, no maps.
    hasher.update(serde_json::to_vec(request).unwrap_or_default());
    hasher.update([0]);
    hasher.update(password_ref.unwrap_or_default());
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn seed(slots: Slots) -> TokenSeed {
        TokenSeed {
            fleet: "web".into(),
            group: "frontend".into(),
            zone: "ap-guangzhou-3".into(),
            request_digest: "ab".repeat(32),
            slots,
        }
    }

    #[test]
    fn tokens_fit_the_api_and_are_stable() {
        let token = seed(Slots::Pool { index: 0 }).token(0);
        assert!(token.len() <= cvmfleet_wire::MAX_CLIENT_TOKEN_LEN && token.is_ascii());
        assert_eq!(token, seed(Slots::Pool { index: 0 }).token(0));
        insta::assert_snapshot!(token, @"cvmf2-fcc31df8c5445a3e4e044c7182a48c0e0f17a48223a73c0d");
    }

    #[test]
    fn every_input_changes_the_token() {
        let base = seed(Slots::Pool { index: 0 });
        let mut variants = vec![base.token(1), seed(Slots::Pool { index: 1 }).token(0)];
        variants.push(seed(Slots::Ips(vec!["10.0.0.18".into()])).token(0));
        for field in 0..4 {
            let mut s = base.clone();
            match field {
                0 => s.fleet.push('x'),
                1 => s.group.push('x'),
                2 => s.zone.push('x'),
                _ => s.request_digest.push('x'),
            }
            variants.push(s.token(0));
        }
        let shifted = TokenSeed { fleet: "webf".into(), group: "rontend".into(), ..base.clone() };
        variants.push(shifted.token(0));
        let original = base.token(0);
        assert!(variants.iter().all(|v| *v != original));
    }

    #[test]
    fn pools_cut_at_absolute_boundaries() {
        assert_eq!(pool_targets(250, 100), [100, 100, 50]);
        assert_eq!(pool_targets(100, 100), [100]);
        assert!(pool_targets(0, 100).is_empty());
        assert_eq!(parse_pool_tag(&pool_tag("ap-guangzhou-3", 2), "ap-guangzhou-3"), Some(2));
        assert_eq!(parse_pool_tag("ap-guangzhou-3/2", "ap-guangzhou-4"), None);
        assert_eq!(parse_pool_tag("ap-guangzhou-3/x", "ap-guangzhou-3"), None);
    }

    #[test]
    fn the_next_generation_follows_the_highest_in_use() {
        let s = seed(Slots::Pool { index: 0 });
        let none = |_: &str| false;
        assert_eq!(s.next_generation(&none), 0);
        // Generation 3 is carried: 0..3 are spent whether or not anyone still shows them.
        let carried: BTreeSet<String> = [s.token(3)].into();
        assert_eq!(s.next_generation(&|t| carried.contains(t)), 4);
        // Known-spent generations above are stepped over.
        let used: BTreeSet<String> = [s.token(3), s.token(4), s.token(5)].into();
        assert_eq!(s.next_generation(&|t| used.contains(t)), 6);
    }

    #[test]
    fn the_digest_sees_every_parameter_and_the_password_reference() {
        #[derive(Serialize)]
        struct Request<'a> {
            subnet: &'a str,
        }
        let a = request_digest(&Request { subnet: "subnet-a" }, None);
        assert_ne!(a, request_digest(&Request { subnet: "subnet-b" }, None));
        assert_ne!(a, request_digest(&Request { subnet: "subnet-a" }, Some("env:PW")));
        assert_eq!(a, request_digest(&Request { subnet: "subnet-a" }, None));
    }
}
