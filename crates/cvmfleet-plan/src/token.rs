//! ClientTokens derived from the spec, so that every RunInstances is idempotent across
//! processes, retries, crashes and concurrent applies.
//!
//! # The scheme
//!
//! A create fills *slots* of a (fleet, group, zone) under one template. With `n` instances
//! wanted and `m` present, the missing slots are `m..n`; they are cut into chunks at absolute
//! multiples of [`MAX_BATCH`](cvmfleet_wire::MAX_BATCH) (`m..100`, `100..200`, …), and each chunk's
//! token hashes `(fleet, group, zone, template hash, slot range, generation)`. For groups with
//! explicit private IPs the slots are the missing IPs themselves.
//!
//! Why this holds up:
//! - **Killed apply, lost response, client retry:** the re-run (or retry) sees the same state
//!   or the instances the first attempt made (they are listed at once as PENDING), so it either
//!   sends the same token, which the cloud answers by replaying the original InstanceIdSet, or
//!   has nothing left to create.
//! - **Two concurrent applies:** a second apply that observes the first one's finished chunks
//!   has `m` on a chunk boundary, so its remaining chunks, and their tokens, are exactly the
//!   first apply's remaining chunks: each is created once.
//! - **A token seen again:** every instance is tagged with its token. The planner skips any
//!   generation whose token an existing instance carries. If a token's instances were all
//!   terminated out of band, nothing shows it is spent: the cloud replays an InstanceIdSet of
//!   instances that are gone. The executor detects that (the IDs are missing or leaving) and
//!   moves to the next generation, deterministically, so concurrent executors still agree.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Prefix of every cvmfleet ClientToken, so tokens are recognisable in audit logs.
pub const TOKEN_PREFIX: &str = "cvmf1-";

/// Hex digits of the hash kept in a token: 48 (192 bits) keeps tokens at 54 characters, under
/// the API's 64-character limit, with collisions out of the question.
const TOKEN_HASH_HEX: usize = 48;

/// Which slots a create fills.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Slots {
    /// Slot numbers `start..end` of a replica group.
    Range {
        /// First slot.
        start: u32,
        /// One past the last slot.
        end: u32,
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
    /// Full template hash.
    pub template_hash: String,
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
        for part in [&self.fleet, &self.group, &self.zone, &self.template_hash] {
            hasher.update(part.as_bytes());
            hasher.update([0]);
        }
        match &self.slots {
            Slots::Range { start, end } => hasher.update(format!("range:{start}:{end}")),
            Slots::Ips(ips) => hasher.update(format!("ips:{}", ips.join(","))),
        }
        hasher.update([0]);
        hasher.update(generation.to_string());
        let digest = hex::encode(hasher.finalize());
        format!("{TOKEN_PREFIX}{}", &digest[..TOKEN_HASH_HEX])
    }
}

/// Cuts the missing slots `present..wanted` into chunks at absolute multiples of `batch`.
#[must_use]
pub fn chunk_slots(present: u32, wanted: u32, batch: u32) -> Vec<(u32, u32)> {
    let mut chunks = Vec::new();
    let mut start = present;
    while start < wanted {
        let boundary = (start / batch + 1) * batch;
        let end = boundary.min(wanted);
        chunks.push((start, end));
        start = end;
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(slots: Slots) -> TokenSeed {
        TokenSeed {
            fleet: "web".into(),
            group: "frontend".into(),
            zone: "ap-guangzhou-3".into(),
            template_hash: "ab".repeat(32),
            slots,
        }
    }

    #[test]
    fn tokens_fit_the_api_and_are_stable() {
        let token = seed(Slots::Range { start: 0, end: 3 }).token(0);
        assert!(token.len() <= cvmfleet_wire::MAX_CLIENT_TOKEN_LEN && token.is_ascii());
        assert_eq!(token, seed(Slots::Range { start: 0, end: 3 }).token(0));
        insta::assert_snapshot!(token, @"cvmf1-d1f0c2fe835fc3ea331055ca8cf885a95789c7b53f937f93");
    }

    #[test]
    fn every_input_changes_the_token() {
        let base = seed(Slots::Range { start: 0, end: 3 });
        let mut variants = vec![base.token(1), seed(Slots::Range { start: 0, end: 4 }).token(0)];
        variants.push(seed(Slots::Ips(vec!["10.0.0.18".into()])).token(0));
        for field in 0..4 {
            let mut s = base.clone();
            match field {
                0 => s.fleet.push('x'),
                1 => s.group.push('x'),
                2 => s.zone.push('x'),
                _ => s.template_hash.push('x'),
            }
            variants.push(s.token(0));
        }
        let shifted = TokenSeed { fleet: "webf".into(), group: "rontend".into(), ..base.clone() };
        variants.push(shifted.token(0));
        let original = base.token(0);
        assert!(variants.iter().all(|v| *v != original));
    }

    #[test]
    fn chunks_align_to_absolute_boundaries() {
        assert_eq!(chunk_slots(0, 250, 100), [(0, 100), (100, 200), (200, 250)]);
        // A second apply that saw the first chunk land computes the same remaining chunks.
        assert_eq!(chunk_slots(100, 250, 100), [(100, 200), (200, 250)]);
        assert_eq!(chunk_slots(37, 120, 100), [(37, 100), (100, 120)]);
        assert!(chunk_slots(5, 5, 100).is_empty());
        assert!(chunk_slots(7, 5, 100).is_empty());
    }
}
