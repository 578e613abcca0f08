//! A random workload checked against a model, for engines' own tests: the
//! same expectations over every engine.

use leasehold_core::error::KvError;
use leasehold_core::kv::{Durability, Health, KvEngine, WriteBatch, BATCH_BYTES_MAX};
use leasehold_core::rng::SplitMix64;

use super::crash::collect_all;
use super::oracle::KvMap;

fn key(index: u64) -> Vec<u8> {
    format!("key-{index:05}").into_bytes()
}

/// `writes` batches of 1–3 puts (80 %) and deletes over `keys` keys, Buffered;
/// `value_len` picks each value's length. Returns the model of what was written.
pub fn random_batches(
    engine: &dyn KvEngine,
    seed: u64,
    writes: usize,
    keys: u64,
    value_len: impl Fn(&mut SplitMix64) -> usize,
) -> KvMap {
    let mut rng = SplitMix64::new(seed);
    let mut model = KvMap::new();
    for _ in 0..writes {
        let mut batch = WriteBatch::new();
        for _ in 0..1 + rng.below(3) {
            let key = key(rng.below(keys));
            if rng.chance(0.2) {
                batch.delete(key);
            } else {
                // Noise: long values stay long in engines that compress.
                let mut value = vec![0; value_len(&mut rng)];
                rng.fill(&mut value);
                batch.put(key, value);
            }
        }
        batch.apply_to(&mut model);
        engine.write(batch, Durability::Buffered).expect("write");
    }
    model
}

/// Point reads of every key, a full scan, and `verify` agree with `model`.
pub fn check_against(engine: &dyn KvEngine, model: &KvMap, keys: u64) {
    for index in 0..keys {
        let key = key(index);
        assert_eq!(
            engine.get(&key).expect("get").as_ref(),
            model.get(&key),
            "key {index}"
        );
    }
    assert_eq!(&collect_all(engine).expect("scan"), model);
    let report = engine.verify().expect("verify");
    assert!(report.is_clean(), "{report:?}");
}

/// A batch above `BATCH_BYTES_MAX` is refused with `CapacityExceeded`,
/// changes nothing, and leaves the engine healthy (audit C1: a 4 GiB value
/// panicked in the framing). The value is zeroed memory never touched, so
/// the test costs no real memory on an engine that refuses it up front.
pub fn check_batch_limit(engine: &dyn KvEngine) {
    let mut batch = WriteBatch::new();
    batch.put(&b"huge"[..], vec![0u8; BATCH_BYTES_MAX as usize + 1]);
    let refused = engine.write(batch, Durability::Sync);
    assert!(
        matches!(refused, Err(KvError::CapacityExceeded { .. })),
        "{refused:?}"
    );
    assert_eq!(engine.get(b"huge").expect("get"), None);
    assert_eq!(engine.health(), Health::Healthy);
    let mut small = WriteBatch::new();
    small.put(&b"small"[..], &b"1"[..]);
    engine
        .write(small, Durability::Sync)
        .expect("a small write");
}

/// A scan visits exactly its range, in key order, and stops when the
/// visitor says so (a peer engine's own scan, not through `KvStore`).
pub fn check_scan_bounds(engine: &dyn KvEngine) {
    use std::ops::{Bound, ControlFlow};
    let keys: [&[u8]; 5] = [b"A", b"L1", b"L2", b"S1", b"Z"];
    let mut batch = WriteBatch::new();
    for key in keys.iter().rev() {
        batch.put(key.to_vec(), b"v".to_vec());
    }
    engine.write(batch, Durability::Sync).expect("write");
    let mut seen = Vec::new();
    let middle = leasehold_core::kv::KeyRange {
        start: Bound::Excluded(b"A".to_vec()),
        end: Bound::Included(b"S1".to_vec()),
    };
    engine
        .scan(&middle, &mut |key, _| {
            seen.push(key.to_vec());
            ControlFlow::Continue(())
        })
        .expect("scan");
    assert_eq!(seen, vec![b"L1".to_vec(), b"L2".to_vec(), b"S1".to_vec()]);
    let mut count = 0;
    engine
        .scan(&leasehold_core::kv::KeyRange::all(), &mut |_, _| {
            count += 1;
            if count == 2 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .expect("scan");
    assert_eq!(count, 2);
}
