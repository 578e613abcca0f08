//! Bloom filters over a table's user keys, sized from a target false-positive
//! rate.
//!
//! ```text
//! filter = bits (8 × n bytes) | probes: u8
//! ```
//! For `n` keys at rate `p`: `bits = ⌈-n·ln p / (ln 2)²⌉`, `probes = round(bits/n ·
//! ln 2)` (1–30). Probe `i` sets bit `(h1 + i·h2) mod bits`, where `h1`, `h2` are
//! the halves of a 64-bit hash of the key (FNV-1a finished with SplitMix64's
//! mixer; Kirsch–Mitzenmacher double hashing). Written to disk — do not change.

use leasehold_storage::codec::{fnv1a, DecodeError};

const PROBES_MAX: u32 = 30;

/// The 64-bit hash a filter uses for `key`.
pub fn key_hash(key: &[u8]) -> u64 {
    let mut z = fnv1a(key);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn positions(hash: u64, bits: u64, probes: u32) -> impl Iterator<Item = u64> {
    let h1 = hash & 0xffff_ffff;
    let h2 = (hash >> 32) | 1;
    (0..u64::from(probes)).map(move |index| h1.wrapping_add(index.wrapping_mul(h2)) % bits)
}

/// Builds the filter for the key hashes `hashes` at rate `fp_rate`.
pub fn build(hashes: &[u64], fp_rate: f64) -> Vec<u8> {
    let keys = hashes.len().max(1) as f64;
    let ln2 = std::f64::consts::LN_2;
    let bits_total = (-(keys * fp_rate.ln()) / (ln2 * ln2)).ceil().max(64.0);
    let bytes = (bits_total / 8.0).ceil() as usize;
    let bits = (bytes * 8) as u64;
    let probes = ((bits as f64 / keys) * ln2)
        .round()
        .clamp(1.0, f64::from(PROBES_MAX)) as u32;
    let mut filter = vec![0u8; bytes + 1];
    for &hash in hashes {
        for bit in positions(hash, bits, probes) {
            filter[(bit / 8) as usize] |= 1 << (bit % 8);
        }
    }
    filter[bytes] = probes as u8;
    filter
}

/// A decoded filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bloom {
    bits: Vec<u8>,
    probes: u32,
}

impl Bloom {
    pub fn decode(filter: &[u8]) -> Result<Bloom, DecodeError> {
        let Some((&probes, bits)) = filter.split_last() else {
            return Err(DecodeError {
                offset: 0,
                reason: "empty filter".into(),
            });
        };
        if probes == 0 || u32::from(probes) > PROBES_MAX || bits.is_empty() {
            return Err(DecodeError {
                offset: filter.len() - 1,
                reason: format!("bad filter: {probes} probes over {} bytes", bits.len()),
            });
        }
        Ok(Bloom {
            bits: bits.to_vec(),
            probes: u32::from(probes),
        })
    }

    /// False means the key is certainly absent.
    pub fn may_contain(&self, hash: u64) -> bool {
        let bits = self.bits.len() as u64 * 8;
        positions(hash, bits, self.probes)
            .all(|bit| self.bits[(bit / 8) as usize] & (1 << (bit % 8)) != 0)
    }

    pub fn size(&self) -> usize {
        self.bits.len() + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_measured_false_positive_rate_is_within_one_and_a_half_times_the_target() {
        for fp_rate in [0.01, 0.001, 0.1] {
            let present: Vec<u64> = (0..20_000u32)
                .map(|index| key_hash(format!("user-{index}").as_bytes()))
                .collect();
            let bloom = Bloom::decode(&build(&present, fp_rate)).unwrap();
            assert!(
                present.iter().all(|&hash| bloom.may_contain(hash)),
                "no false negatives"
            );
            let absent = 100_000u32;
            let false_positives = (0..absent)
                .filter(|index| bloom.may_contain(key_hash(format!("absent-{index}").as_bytes())))
                .count();
            let measured = false_positives as f64 / f64::from(absent);
            assert!(
                measured <= fp_rate * 1.5,
                "rate {fp_rate}: measured {measured}"
            );
        }
    }

    proptest! {
        #[test]
        fn decode_never_panics_and_probes_stay_in_range(bytes: Vec<u8>, hash: u64) {
            if let Ok(bloom) = Bloom::decode(&bytes) {
                let _ = bloom.may_contain(hash);
            }
        }
    }
}
