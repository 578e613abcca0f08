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

/// Maintenance changes no answer: `workload` writes to the engine `open`
/// opens (each call a new open of the same directory) and returns its model
/// of `keys` keys; the engine agrees with it before and after `maintain` (a
/// checkpoint, a full compaction — racing the engine's own background
/// threads when it runs them), and again after a close and reopen.
pub fn check_maintenance_keeps_answers<E: KvEngine>(
    open: &dyn Fn() -> leasehold_core::KvResult<E>,
    workload: &dyn Fn(&E) -> KvMap,
    keys: u64,
    maintain: &dyn Fn(&E) -> leasehold_core::KvResult<()>,
) {
    let engine = open().expect("open");
    let model = workload(&engine);
    check_against(&engine, &model, keys);
    maintain(&engine).expect("maintain");
    check_against(&engine, &model, keys);
    engine.close().expect("close");
    drop(engine);
    check_against(&open().expect("reopen"), &model, keys);
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

/// Scans in key order whatever the engine keeps apart (RocksDB's column
/// families hold the `L` and `S` keys), honour excluded and included
/// bounds and prefixes, and stop when the visitor says so.
pub fn check_scan_bounds(engine: &dyn KvEngine) {
    use leasehold_core::kv::KeyRange;
    use std::ops::{Bound, ControlFlow};
    let keys: [&[u8]; 7] = [b"A1", b"L1", b"L2", b"M", b"S1", b"S2", b"Z"];
    let mut batch = WriteBatch::new();
    for key in keys.iter().rev() {
        batch.put(key.to_vec(), b"v".to_vec());
    }
    engine.write(batch, Durability::Sync).expect("write");
    let scan = |range: KeyRange| {
        let mut seen = Vec::new();
        engine
            .scan(&range, &mut |key, _| {
                seen.push(key.to_vec());
                ControlFlow::Continue(())
            })
            .expect("scan");
        seen
    };
    let all: Vec<Vec<u8>> = keys.iter().map(|key| key.to_vec()).collect();
    assert_eq!(scan(KeyRange::all()), all);
    let middle = KeyRange {
        start: Bound::Excluded(b"L1".to_vec()),
        end: Bound::Included(b"S1".to_vec()),
    };
    assert_eq!(scan(middle), all[2..5].to_vec());
    assert_eq!(scan(KeyRange::prefix(b"S")), all[4..6].to_vec());
    let mut count = 0;
    engine
        .scan(&KeyRange::all(), &mut |_, _| {
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

/// The durability and close contract of an adapter over an engine with no
/// Group mode of its own, on the engine `open` opens (each call a new open
/// of the same directory): Group is refused, never weakened to another
/// mode; a Buffered write is read back and made durable by `flush`;
/// `before_close` checks what the engine's own test wants of it then (its
/// counters, a refused second open); after `close` reads and writes are
/// `Closed`; a reopen finds the write and verifies clean.
pub fn check_group_refused_and_close_final<E: KvEngine>(
    open: &dyn Fn() -> leasehold_core::KvResult<E>,
    before_close: &dyn Fn(&E),
) {
    let engine = open().expect("open");
    let mut batch = WriteBatch::new();
    batch.put(b"k".to_vec(), b"v".to_vec());
    assert!(matches!(
        engine.write(batch.clone(), Durability::Group),
        Err(KvError::Unsupported(_))
    ));
    engine
        .write(batch.clone(), Durability::Buffered)
        .expect("write");
    assert_eq!(engine.get(b"k").expect("get"), Some(b"v".to_vec()));
    engine.flush().expect("flush");
    before_close(&engine);
    engine.close().expect("close");
    assert!(matches!(engine.get(b"k"), Err(KvError::Closed)));
    assert!(matches!(
        engine.write(batch, Durability::Sync),
        Err(KvError::Closed)
    ));
    let reopened = open().expect("reopen");
    assert_eq!(reopened.get(b"k").expect("get"), Some(b"v".to_vec()));
    assert!(reopened.verify().expect("verify").is_clean());
}
