//! The Store conformance suite over RocksDB, as a `Store` through `KvStore`,
//! plus the engine-level contract the suite does not reach.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

use std::ops::{Bound, ControlFlow};

use leasehold_core::kv::{KeyRange, WriteBatch};
use leasehold_core::{Durability, KvEngine, KvError};
use leasehold_rocksdb::config::RocksDbConfig;
use leasehold_rocksdb::RocksEngine;
use leasehold_testkit::conformance::KvOnDisk;

fn config(dir: &std::path::Path) -> RocksDbConfig {
    RocksDbConfig {
        data_dir: dir.to_path_buf(),
        // Small memtables so the suite's data reaches table files too.
        write_buffer_size: 64 << 10,
        block_cache_size: 1 << 20,
        ..RocksDbConfig::default()
    }
}

leasehold_testkit::store_conformance_tests!(KvOnDisk::new(|dir| RocksEngine::open(&config(dir))));

fn scan(engine: &RocksEngine, range: KeyRange) -> Vec<Vec<u8>> {
    let mut keys = Vec::new();
    engine
        .scan(&range, &mut |key, _| {
            keys.push(key.to_vec());
            ControlFlow::Continue(())
        })
        .unwrap();
    keys
}

#[test]
fn scans_merge_the_column_families_in_key_order_and_honour_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let engine = RocksEngine::open(&config(dir.path())).unwrap();
    let keys: [&[u8]; 7] = [b"A1", b"L1", b"L2", b"M", b"S1", b"S2", b"Z"];
    let mut batch = WriteBatch::new();
    for key in keys.iter().rev() {
        batch.put(key.to_vec(), b"v".to_vec());
    }
    engine.write(batch, Durability::Sync).unwrap();
    let all: Vec<Vec<u8>> = keys.iter().map(|key| key.to_vec()).collect();
    assert_eq!(scan(&engine, KeyRange::all()), all);
    let middle = KeyRange {
        start: Bound::Excluded(b"L1".to_vec()),
        end: Bound::Included(b"S1".to_vec()),
    };
    assert_eq!(scan(&engine, middle), all[2..5].to_vec());
    assert_eq!(scan(&engine, KeyRange::prefix(b"S")), all[4..6].to_vec());
    let mut seen = 0;
    engine
        .scan(&KeyRange::all(), &mut |_, _| {
            seen += 1;
            if seen == 2 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
    assert_eq!(seen, 2);
}

#[test]
fn group_durability_is_refused_not_weakened_and_close_is_final() {
    let dir = tempfile::tempdir().unwrap();
    let engine = RocksEngine::open(&config(dir.path())).unwrap();
    let mut batch = WriteBatch::new();
    batch.put(b"k".to_vec(), b"v".to_vec());
    assert!(matches!(
        engine.write(batch.clone(), Durability::Group),
        Err(KvError::Unsupported(_))
    ));
    engine.write(batch.clone(), Durability::Buffered).unwrap();
    let stats = engine.stats();
    assert_eq!(stats.user_bytes_written, 2);
    assert!(
        stats.wal_bytes_written > 0,
        "statistics are on by default: {stats:?}"
    );
    engine.close().unwrap();
    assert!(matches!(engine.get(b"k"), Err(KvError::Closed)));
    assert!(matches!(
        engine.write(batch, Durability::Sync),
        Err(KvError::Closed)
    ));
    let reopened = RocksEngine::open(&config(dir.path())).unwrap();
    assert_eq!(reopened.get(b"k").unwrap(), Some(b"v".to_vec()));
    assert!(reopened.verify().unwrap().is_clean());
}

#[test]
fn bad_options_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = RocksDbConfig {
        create_if_missing: false,
        ..config(&dir.path().join("absent"))
    };
    assert!(RocksEngine::open(&missing).is_err());
    let bad = RocksDbConfig {
        compression_type: "brotli".to_owned(),
        ..config(dir.path())
    };
    assert!(matches!(
        RocksEngine::open(&bad),
        Err(KvError::InvalidArgument(_))
    ));
}

/// C1's limit holds on RocksDB too: every engine refuses the same batches.
#[test]
fn a_batch_above_the_limit_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let engine = RocksEngine::open(&config(dir.path())).unwrap();
    leasehold_testkit::workload::check_batch_limit(&engine);
}
