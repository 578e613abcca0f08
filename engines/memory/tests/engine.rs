//! The memory engine's own behaviour: ordering across shards, limits, the
//! backup's atomic replace, restore, and failure handling on a simulated disk.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

use std::collections::BTreeMap;
use std::ops::{Bound, ControlFlow};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use leasehold_core::vfs::{CrashPolicy, Fault, FaultConfig, SimVfs, Vfs};
use leasehold_core::{Durability, Health, KeyRange, KvEngine, KvError, WriteBatch};
use leasehold_memory::config::{BackupCompression, MemoryConfig};
use leasehold_memory::MemoryEngine;
use leasehold_testkit::crash::collect_all;
use proptest::prelude::*;

fn backup_config(path: &str) -> MemoryConfig {
    MemoryConfig {
        max_entries: 10_000,
        backup_path: Some(PathBuf::from(path)),
        // Long: tests decide when backups happen, unless they test the thread.
        sync_interval: Duration::from_secs(3600),
        compression: BackupCompression::Lz4,
    }
}

fn put(key: &str, value: &str) -> WriteBatch {
    let mut batch = WriteBatch::new();
    batch.put(key.as_bytes(), value.as_bytes());
    batch
}

fn sim_engine(vfs: &SimVfs) -> MemoryEngine {
    MemoryEngine::open(&backup_config("/mem/backup.lz4"), Arc::new(vfs.clone())).unwrap()
}

proptest! {
    #[test]
    fn scans_merge_shards_in_key_order(
        ops in proptest::collection::vec((any::<bool>(), proptest::collection::vec(any::<u8>(), 0..4), any::<u8>()), 1..200),
        start in proptest::collection::vec(any::<u8>(), 0..3),
        end in proptest::collection::vec(any::<u8>(), 0..3),
    ) {
        let engine = MemoryEngine::volatile(1_000_000);
        let mut model = BTreeMap::new();
        for (is_put, key, value) in ops {
            let mut batch = WriteBatch::new();
            if is_put { batch.put(key, vec![value]); } else { batch.delete(key); }
            batch.apply_to(&mut model);
            engine.write(batch, Durability::Buffered).unwrap();
        }
        let range = KeyRange { start: Bound::Included(start.clone()), end: Bound::Excluded(end.clone()) };
        let mut scanned = Vec::new();
        if start <= end {
            engine.scan(&range, &mut |key, value| { scanned.push((key.to_vec(), value.to_vec())); ControlFlow::Continue(()) }).unwrap();
            let expected: Vec<_> = model.range::<[u8], _>(range.as_bounds()).map(|(k, v)| (k.clone(), v.clone())).collect();
            prop_assert_eq!(scanned, expected);
        }
        prop_assert!(engine.verify().unwrap().is_clean());
        prop_assert_eq!(engine.stats().live_entries, model.len() as u64);
    }
}

#[test]
fn a_scan_stops_when_the_visitor_says_so() {
    let engine = MemoryEngine::volatile(100);
    for index in 0..50 {
        engine
            .write(put(&format!("k{index:02}"), "v"), Durability::Buffered)
            .unwrap();
    }
    let mut seen = Vec::new();
    engine
        .scan(&KeyRange::all(), &mut |key, _| {
            seen.push(key.to_vec());
            if seen.len() == 3 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
    assert_eq!(seen, [b"k00".to_vec(), b"k01".to_vec(), b"k02".to_vec()]);
}

#[test]
fn max_entries_is_enforced_per_batch_and_a_refused_batch_changes_nothing() {
    let engine = MemoryEngine::volatile(3);
    let mut batch = WriteBatch::new();
    batch
        .put(&b"a"[..], &b"1"[..])
        .put(&b"b"[..], &b"1"[..])
        .put(&b"a"[..], &b"2"[..]);
    engine.write(batch, Durability::Buffered).unwrap();
    let mut too_many = WriteBatch::new();
    too_many.put(&b"c"[..], &b"1"[..]).put(&b"d"[..], &b"1"[..]);
    assert!(matches!(
        engine.write(too_many, Durability::Buffered),
        Err(KvError::CapacityExceeded { limit: 3, .. })
    ));
    assert_eq!(engine.get(b"c").unwrap(), None);
    // Replacing and deleting do not count against the limit.
    let mut churn = WriteBatch::new();
    churn
        .delete(&b"a"[..])
        .put(&b"c"[..], &b"1"[..])
        .put(&b"d"[..], &b"1"[..]);
    engine.write(churn, Durability::Buffered).unwrap();
    assert_eq!(engine.stats().live_entries, 3);
    assert!(matches!(engine.health(), Health::Degraded(_)));
    assert!(engine.verify().unwrap().is_clean());
}

#[test]
fn a_volatile_engine_refuses_to_promise_durability() {
    let engine = MemoryEngine::volatile(10);
    assert!(matches!(
        engine.write(put("a", "1"), Durability::Sync),
        Err(KvError::Unsupported(_))
    ));
    assert!(matches!(
        engine.write(put("a", "1"), Durability::Group),
        Err(KvError::Unsupported(_))
    ));
    assert!(matches!(engine.flush(), Err(KvError::Unsupported(_))));
    engine.write(put("a", "1"), Durability::Buffered).unwrap();
    engine.close().unwrap();
    assert!(matches!(engine.get(b"a"), Err(KvError::Closed)));
}

#[test]
fn sync_writes_survive_power_loss_and_buffered_ones_wait_for_a_flush() {
    let vfs = SimVfs::new(1);
    let engine = sim_engine(&vfs);
    engine.write(put("durable", "1"), Durability::Sync).unwrap();
    engine
        .write(put("buffered", "1"), Durability::Buffered)
        .unwrap();
    let image = vfs.crash_image(CrashPolicy::PowerLoss, 0);
    let recovered = collect_all(&sim_engine(&image)).unwrap();
    assert_eq!(recovered.keys().collect::<Vec<_>>(), [&b"durable".to_vec()]);
    engine.flush().unwrap();
    let recovered = collect_all(&sim_engine(&vfs.crash_image(CrashPolicy::PowerLoss, 0))).unwrap();
    assert_eq!(recovered.len(), 2);
}

#[test]
fn a_failed_backup_fsync_poisons_the_engine_until_reopened() {
    let vfs = SimVfs::new(2);
    let engine = sim_engine(&vfs);
    engine.write(put("a", "1"), Durability::Sync).unwrap();
    vfs.arm(Fault::SyncEio);
    assert!(engine.write(put("b", "1"), Durability::Sync).is_err());
    // fsyncgate: no later write may be acknowledged, durable or not.
    assert!(matches!(
        engine.write(put("c", "1"), Durability::Sync),
        Err(KvError::Poisoned { .. })
    ));
    assert!(matches!(
        engine.write(put("c", "1"), Durability::Buffered),
        Err(KvError::Poisoned { .. })
    ));
    assert!(matches!(engine.health(), Health::Failed(_)));
    drop(engine);
    // The old backup is intact.
    let recovered = collect_all(&sim_engine(&vfs.crash_image(CrashPolicy::PowerLoss, 0))).unwrap();
    assert_eq!(recovered.keys().collect::<Vec<_>>(), [&b"a".to_vec()]);
}

#[test]
fn a_full_disk_fails_the_write_and_keeps_the_previous_backup() {
    let vfs = SimVfs::new(3);
    let engine = sim_engine(&vfs);
    engine.write(put("a", "small"), Durability::Sync).unwrap();
    let used = vfs.file_size(Path::new("/mem/backup.lz4")).unwrap();
    vfs.set_faults(FaultConfig {
        capacity_bytes: Some(used + 64),
        ..FaultConfig::default()
    });
    let big: String = (0..5000)
        .map(|index| char::from(b'a' + (index * 7 % 26) as u8))
        .collect();
    let err = engine.write(put("b", &big), Durability::Sync).unwrap_err();
    assert!(err.is_disk_full(), "{err}");
    drop(engine);
    for policy in CrashPolicy::ALL {
        let recovered = collect_all(&sim_engine(&vfs.crash_image(policy, 5))).unwrap();
        assert_eq!(
            recovered.keys().collect::<Vec<_>>(),
            [&b"a".to_vec()],
            "{policy:?}"
        );
    }
}

#[test]
fn a_corrupt_backup_is_reported_with_its_file_and_never_loaded() {
    let vfs = SimVfs::new(4);
    let engine = sim_engine(&vfs);
    engine.write(put("a", "1"), Durability::Sync).unwrap();
    drop(engine);
    vfs.corrupt_byte(Path::new("/mem/backup.lz4"), 20, 0x08)
        .unwrap();
    match MemoryEngine::open(&backup_config("/mem/backup.lz4"), Arc::new(vfs.clone())) {
        Err(KvError::Corruption { file, .. }) => assert_eq!(file, Path::new("/mem/backup.lz4")),
        other => panic!("expected corruption, got {other:?}"),
    }
    // A bit flipped on the way from the device is caught the same way.
    vfs.corrupt_byte(Path::new("/mem/backup.lz4"), 20, 0x08)
        .unwrap();
    vfs.arm(Fault::ReadBitFlip);
    assert!(matches!(
        MemoryEngine::open(&backup_config("/mem/backup.lz4"), Arc::new(vfs.clone())),
        Err(KvError::Corruption { .. })
    ));
    assert!(MemoryEngine::open(&backup_config("/mem/backup.lz4"), Arc::new(vfs.clone())).is_ok());
}

#[test]
fn the_background_thread_backs_up_within_the_interval() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("backup.lz4");
    let config = MemoryConfig {
        sync_interval: Duration::from_millis(20),
        ..backup_config(path.to_str().unwrap())
    };
    let engine = MemoryEngine::open(&config, Arc::new(leasehold_core::vfs::OsVfs::new())).unwrap();
    engine.write(put("a", "1"), Durability::Group).unwrap();
    // Poll (bounded) for the thread's backup; no timing is asserted.
    let mut restored = BTreeMap::new();
    for _ in 0..500 {
        if path.exists() {
            // Read-only beside the live engine, as the operator commands do
            // (a second writable open would be refused: the directory is locked).
            let reopened =
                MemoryEngine::open(&config, Arc::new(leasehold_core::vfs::OverlayVfs::new()))
                    .unwrap();
            restored = collect_all(&reopened).unwrap();
            if !restored.is_empty() {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(restored.get(b"a".as_slice()), Some(&b"1".to_vec()));
    engine.close().unwrap();
}

#[test]
fn concurrent_sync_writers_are_all_durable() {
    let vfs = SimVfs::new(9);
    let engine = sim_engine(&vfs);
    // The store's first (empty) backup, made at its creation.
    let before = engine.stats().fsyncs;
    std::thread::scope(|scope| {
        for thread in 0..4 {
            let engine = &engine;
            scope.spawn(move || {
                for index in 0..25 {
                    engine
                        .write(put(&format!("t{thread}-{index}"), "v"), Durability::Sync)
                        .unwrap();
                }
            });
        }
    });
    let fsyncs = engine.stats().fsyncs - before;
    assert!(fsyncs <= 100, "at most one backup per write ({fsyncs})");
    drop(engine);
    let recovered = collect_all(&sim_engine(&vfs.crash_image(CrashPolicy::PowerLoss, 0))).unwrap();
    assert_eq!(recovered.len(), 100);
}

#[test]
fn a_batch_above_the_limit_is_refused_and_changes_nothing() {
    leasehold_testkit::workload::check_batch_limit(&sim_engine(&SimVfs::new(21)));
}
