//! Resource IDs derived from a sequence number and a per-state salt.
//!
//! `ins-` IDs are 8 base-36 characters. The sequence number goes through an affine map modulo
//! 36^8 whose multiplier is coprime with 36, which is a bijection: distinct sequence numbers
//! always give distinct IDs, with no collision check and no randomness to persist, and the same
//! seed replays the same IDs.

/// 36^8: the number of 8-character base-36 strings.
const SPACE: u128 = 2_821_109_907_456;

/// Multiplier of the affine map; odd and not a multiple of 3, so coprime with 36^8.
const MULTIPLIER: u128 = 1_779_033_703;

fn base36(mut n: u128) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = [b'0'; 8];
    for slot in out.iter_mut().rev() {
        // `n % 36` is below 36, so the index is in bounds.
        *slot = DIGITS[(n % 36) as usize];
        n /= 36;
    }
    out.iter().map(|&b| char::from(b)).collect()
}

fn scramble(n: u64, salt: u64) -> u128 {
    (u128::from(n) % SPACE * MULTIPLIER + u128::from(salt)) % SPACE
}

/// Mixes a configured seed into the salt of a new state's IDs (the emulator and the simulation
/// both derive it so, so the same seed gives the same IDs on both faces).
#[must_use]
pub fn salt_of(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The instance ID of sequence number `seq`.
#[must_use]
pub fn instance_id(seq: u64, salt: u64) -> String {
    format!("ins-{}", base36(scramble(seq, salt)))
}

/// The ID of disk `index` (0 = system disk) of instance `seq`.
#[must_use]
pub fn disk_id(seq: u64, index: u64, salt: u64) -> String {
    let n = seq.wrapping_mul(64).wrapping_add(index);
    format!("disk-{}", base36(scramble(n, salt.rotate_left(17))))
}

/// A version-4 UUID derived from the sequence number, for the instance's `Uuid`.
#[must_use]
pub fn instance_uuid(seq: u64, salt: u64) -> String {
    let mut rng = fastrand::Rng::with_seed(salt ^ seq.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut bytes = [0u8; 16];
    rng.fill(&mut bytes);
    uuid::Builder::from_random_bytes(bytes).into_uuid().to_string()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn ids_are_well_formed_distinct_and_reproducible() {
        let mut seen = HashSet::new();
        for seq in 1..20_000 {
            let id = instance_id(seq, 42);
            assert!(crate::names::is_resource_id(&id, "ins"), "{id}");
            assert!(seen.insert(id), "collision at {seq}");
        }
        assert_eq!(instance_id(7, 42), instance_id(7, 42));
        assert_ne!(instance_id(7, 42), instance_id(7, 43));
        assert!(crate::names::is_resource_id(&disk_id(7, 1, 42), "disk"));
        let u = instance_uuid(7, 42);
        assert_eq!(u.len(), 36);
        assert_eq!(u.as_bytes()[14], b'4');
        assert_eq!(u, instance_uuid(7, 42));
    }
}
