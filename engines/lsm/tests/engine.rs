//! The LSM's own behaviour: reads across memtables and levels, reopen,
//! compaction, the compaction filter, limits, failure handling, and every
//! crash point of a workload that flushes and compacts.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use leasehold_core::vfs::{CrashPolicy, Fault, FaultConfig, OsVfs, SimVfs, Vfs};
use leasehold_core::{Durability, KvEngine, KvError, WriteBatch};
use leasehold_lsm::config::LsmConfig;
use leasehold_lsm::LsmEngine;
use leasehold_testkit::crash::{self, collect_all, CrashCase, CrashOp};
use leasehold_testkit::workload;

fn open(vfs: &SimVfs) -> LsmEngine {
    LsmEngine::open(&common::tiny_config("/lsm"), Arc::new(vfs.clone())).unwrap()
}

fn put(key: &str, value: &[u8]) -> WriteBatch {
    let mut batch = WriteBatch::new();
    batch.put(key.as_bytes(), value);
    batch
}

fn random_workload(
    engine: &LsmEngine,
    seed: u64,
    writes: usize,
    keys: u64,
) -> BTreeMap<Vec<u8>, Vec<u8>> {
    workload::random_batches(engine, seed, writes, keys, |rng| rng.below(300) as usize)
}

fn check_against(engine: &LsmEngine, model: &BTreeMap<Vec<u8>, Vec<u8>>, keys: u64) {
    workload::check_against(engine, model, keys);
}

#[test]
fn reads_agree_with_a_model_across_memtables_levels_and_reopen() {
    let vfs = SimVfs::new(1);
    let engine = open(&vfs);
    let model = random_workload(&engine, 1, 3000, 400);
    assert!(
        engine.flush_count() > 10 && engine.compaction_count() > 3,
        "the workload must reach the levels"
    );
    assert!(
        engine.level_counts().iter().skip(2).any(|&count| count > 0),
        "{:?}",
        engine.level_counts()
    );
    check_against(&engine, &model, 400);
    engine.close().unwrap();
    check_against(&open(&vfs), &model, 400);
}

#[test]
fn background_flushes_and_compactions_give_the_same_answers() {
    let dir = tempfile::tempdir().unwrap();
    let config = LsmConfig {
        background_threads: true,
        ..common::tiny_config(dir.path())
    };
    workload::check_maintenance_keeps_answers(
        &|| LsmEngine::open(&config, Arc::new(OsVfs::new())),
        &|engine| random_workload(engine, 2, 3000, 400),
        400,
        &LsmEngine::compact_all,
    );
}

#[test]
fn deleting_everything_and_compacting_leaves_no_tables() {
    let vfs = SimVfs::new(3);
    let engine = open(&vfs);
    for index in 0..300 {
        engine
            .write(
                put(&format!("k{index:04}"), &[7; 100]),
                Durability::Buffered,
            )
            .unwrap();
    }
    for index in 0..300 {
        let mut batch = WriteBatch::new();
        batch.delete(format!("k{index:04}").into_bytes());
        engine.write(batch, Durability::Buffered).unwrap();
    }
    engine.compact_all().unwrap();
    assert_eq!(
        engine.level_counts().iter().sum::<usize>(),
        0,
        "tombstones drop at the bottom"
    );
    assert!(collect_all(&engine).unwrap().is_empty());
}

#[test]
fn disabled_compaction_keeps_every_table_in_level_zero() {
    let config = LsmConfig {
        enable_compaction: false,
        ..common::tiny_config("/lsm")
    };
    let engine = LsmEngine::open(&config, Arc::new(SimVfs::new(4))).unwrap();
    let model = random_workload(&engine, 4, 500, 100);
    let counts = engine.level_counts();
    assert!(
        counts[0] > 3 && counts[1..].iter().all(|&count| count == 0),
        "{counts:?}"
    );
    assert_eq!(engine.compaction_count(), 0);
    check_against(&engine, &model, 100);
}

#[test]
fn the_compaction_filter_drops_entries_only_at_the_bottom() {
    /// Drops keys named `expired-*`: inline by the key, separated by the
    /// hint it made of them.
    struct ByName;
    impl leasehold_lsm::CompactionFilter for ByName {
        fn drops(&self, user_key: &[u8], _value: &[u8]) -> bool {
            user_key.starts_with(b"expired")
        }
        fn hint(&self, user_key: &[u8], _value: &[u8]) -> Vec<u8> {
            vec![u8::from(user_key.starts_with(b"expired"))]
        }
        fn drops_by_hint(&self, _user_key: &[u8], hint: &[u8]) -> bool {
            hint == [1]
        }
    }
    let engine = LsmEngine::open_with_filter(
        &common::tiny_config("/lsm"),
        Arc::new(SimVfs::new(5)),
        Some(Arc::new(ByName)),
    )
    .unwrap();
    for index in 0..100 {
        engine
            .write(
                put(
                    &format!("expired-{index:03}"),
                    &vec![1; 20 + index % 2 * 80],
                ),
                Durability::Buffered,
            )
            .unwrap();
        engine
            .write(
                put(&format!("kept-{index:03}"), &vec![2; 20 + index % 2 * 80]),
                Durability::Buffered,
            )
            .unwrap();
    }
    engine.compact_all().unwrap();
    let left = collect_all(&engine).unwrap();
    assert!(left.keys().all(|key| key.starts_with(b"kept")));
    assert_eq!(left.len(), 100);
}

/// The Store as every real open makes it (the harness's `lsm_store`: the
/// Store's expiry clock as the tree's compaction filter): compaction into
/// the bottom level drops snapshots expired by the latest time the Store was
/// told, less the grace — not by the wall clock (this test's times are in
/// 1970), and not before an operation brings a time past the grace.
/// Inline and separated alike: the filter judges a snapshot in a blob file
/// by the expiry its pointer keeps.
#[test]
fn expired_snapshots_leave_the_disk_by_the_stores_own_clock() {
    let config = common::tiny_config("/lsm");
    for state_len in [20, 200] {
        assert_eq!(state_len >= config.min_blob_size as usize, state_len == 200);
        expired_snapshots_leave_the_disk(state_len);
    }
}

fn expired_snapshots_leave_the_disk(state_len: usize) {
    use leasehold_core::{ActorKey, NodeId, SnapshotWrite, Store, Timestamp};
    use std::time::Duration;
    let config = LsmConfig {
        expired_snapshot_grace_ms: 30_000,
        ..common::tiny_config("/lsm")
    };
    let clock = leasehold_core::expiry::ExpiryClock::new(Duration::from_millis(
        config.expired_snapshot_grace_ms,
    ));
    let engine = LsmEngine::open_with_filter(
        &config,
        Arc::new(SimVfs::new(9)),
        Some(Arc::new(clock.clone())),
    )
    .unwrap();
    let store = leasehold_core::KvStore::new(engine, Durability::Buffered).with_expiry_clock(clock);
    let node = NodeId::new("n");
    let start = Timestamp::from_millis(1_000_000);
    for index in 0..40 {
        let key = ActorKey::new("T", format!("a{index:02}"));
        let epoch = store
            .try_acquire(&key, &node, Duration::from_secs(3600), start)
            .unwrap()
            .lease()
            .unwrap()
            .epoch;
        let ttl = Duration::from_secs(if index % 2 == 0 { 10 } else { 10_000 });
        store
            .save(
                SnapshotWrite::new(key, vec![5u8; state_len]).with_ttl(ttl),
                0,
                epoch,
                start,
            )
            .unwrap();
    }
    let on_disk = |store: &leasehold_core::KvStore<LsmEngine>| {
        store.engine().compact_all().unwrap();
        collect_all(store.engine())
            .unwrap()
            .keys()
            .filter(|key| key.first() == Some(&b'S'))
            .count()
    };
    // Expired 10 s after `start`, but the latest time is within the grace.
    let within_grace = start.saturating_add(Duration::from_secs(35));
    assert_eq!(store.list("T", within_grace).unwrap().len(), 20);
    assert_eq!(on_disk(&store), 40, "nothing dropped within the grace");
    let later = start.saturating_add(Duration::from_secs(41));
    let someone = ActorKey::new("T", "a01");
    assert!(store.load(&someone, later).unwrap().is_some());
    assert_eq!(on_disk(&store), 20, "the expired half is gone from disk");
    assert_eq!(store.list("T", later).unwrap().len(), 20);
    assert_eq!(store.list("T", within_grace).unwrap().len(), 20);
}

#[test]
fn a_failed_wal_fsync_poisons_the_engine_until_reopened() {
    let vfs = SimVfs::new(6);
    let engine = open(&vfs);
    engine.write(put("a", b"1"), Durability::Sync).unwrap();
    vfs.arm(Fault::SyncEio);
    assert!(engine.write(put("b", b"2"), Durability::Sync).is_err());
    assert!(matches!(
        engine.write(put("c", b"3"), Durability::Buffered),
        Err(KvError::Poisoned { .. })
    ));
    assert!(matches!(engine.flush(), Err(KvError::Poisoned { .. })));
    assert!(matches!(engine.health(), leasehold_core::Health::Failed(_)));
    drop(engine);
    let recovered = collect_all(&open(&vfs.crash_image(CrashPolicy::PowerLoss, 0))).unwrap();
    assert_eq!(recovered.get(b"a".as_slice()), Some(&b"1".to_vec()));
    assert!(!recovered.contains_key(b"c".as_slice()));
}

#[test]
fn a_full_disk_fails_writes_and_loses_nothing_acknowledged() {
    let vfs = SimVfs::new(7);
    let engine = open(&vfs);
    let mut acknowledged = BTreeMap::new();
    vfs.set_faults(FaultConfig {
        capacity_bytes: Some(40_000),
        ..FaultConfig::default()
    });
    let mut failed = false;
    for index in 0..1000 {
        let key = format!("k{index:04}");
        match engine.write(put(&key, &[index as u8; 200]), Durability::Sync) {
            Ok(()) => {
                acknowledged.insert(key.into_bytes(), vec![index as u8; 200]);
            }
            Err(err) => {
                assert!(
                    err.is_disk_full() || matches!(err, KvError::Poisoned { .. }),
                    "{err}"
                );
                failed = true;
                break;
            }
        }
    }
    assert!(failed, "the disk must fill");
    drop(engine);
    vfs.set_faults(FaultConfig::default());
    for policy in CrashPolicy::ALL {
        let recovered = collect_all(&open(&vfs.crash_image(policy, 3))).unwrap();
        for (key, value) in &acknowledged {
            assert_eq!(
                recovered.get(key),
                Some(value),
                "{policy:?}: {}",
                String::from_utf8_lossy(key)
            );
        }
    }
}

#[test]
fn a_flipped_byte_in_a_table_is_an_error_found_by_verify_never_wrong_data() {
    let vfs = SimVfs::new(8);
    let engine = open(&vfs);
    let model = random_workload(&engine, 8, 600, 100);
    engine.compact_all().unwrap();
    engine.close().unwrap();
    let table = vfs
        .list(Path::new("/lsm"))
        .unwrap()
        .into_iter()
        .find(|name| name.ends_with(".sst"))
        .unwrap();
    let path = Path::new("/lsm").join(&table);
    vfs.corrupt_byte(&path, 40, 0x04).unwrap();
    let engine = open(&vfs);
    let report = engine.verify().unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|problem| problem.contains(&table)),
        "{report:?}"
    );
    for (key, value) in &model {
        if let Ok(read) = engine.get(key) {
            assert_eq!(read.as_ref(), Some(value));
        }
    }
    assert!(collect_all(&engine).is_err());
}

/// Found by the crash oracle: recovery opened every table any manifest edit
/// ever added, including ones a later edit had compacted away and deleted.
#[test]
fn a_recovered_tombstone_survives_repeated_reopens() {
    let vfs = SimVfs::new(1);
    for _ in 0..4 {
        let engine = open(&vfs);
        let mut batch = WriteBatch::new();
        batch.delete(&b"key-00"[..]);
        engine.write(batch, Durability::Sync).unwrap();
        engine.close().unwrap();
    }
    assert!(collect_all(&open(&vfs)).unwrap().is_empty());
}

/// Every crash point of a workload that switches memtables, flushes, compacts
/// into deeper levels and reopens, under each crash policy: exhaustive, not
/// sampled.
#[test]
fn every_crash_point_inside_flushes_and_compactions_recovers() {
    let mut ops = Vec::new();
    for index in 0..24u8 {
        let durability = if index % 3 == 0 {
            Durability::Sync
        } else {
            Durability::Buffered
        };
        let entries = vec![(index % 7, Some(vec![index; 900])), ((index + 3) % 7, None)];
        ops.push(CrashOp::Write {
            ops: entries,
            durability,
        });
        if index == 12 {
            ops.push(CrashOp::Reopen);
        }
    }
    let open = |vfs: SimVfs| LsmEngine::open(&common::tiny_config("/lsm"), Arc::new(vfs));
    let full = CrashCase {
        ops: ops.clone(),
        crash_after: u64::MAX / 2,
        policy: CrashPolicy::ProcessCrash,
        seed: 0,
        recovery_crash_after: 1,
        recovery_policy: CrashPolicy::PowerLoss,
    };
    crash::run_case(&open, &full).unwrap();
    let (engine, mutations) = crash::replay_writes(&open, &ops);
    assert!(
        engine.flush_count() >= 4 && engine.compaction_count() >= 1,
        "the workload must flush and compact"
    );
    let points = crash::check_every_crash_point(&open, &ops, 1..=mutations + 2);
    assert!(points > 600, "{points} crash points");
}

#[test]
fn a_batch_above_the_limit_is_refused_and_changes_nothing() {
    workload::check_batch_limit(&open(&SimVfs::new(21)));
}
