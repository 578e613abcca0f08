//! The Store conformance suite over redb, as a `Store` through `KvStore`,
//! plus the engine-level contract the suite does not reach.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

use leasehold_core::kv::WriteBatch;
use leasehold_core::{Durability, KvEngine, KvError};
use leasehold_redb::{RedbConfig, RedbEngine};
use leasehold_testkit::conformance::KvOnDisk;

fn config(dir: &std::path::Path) -> RedbConfig {
    RedbConfig {
        data_dir: dir.to_path_buf(),
        cache_size_bytes: 4 << 20,
    }
}

leasehold_testkit::store_conformance_tests!(KvOnDisk::new(|dir| RedbEngine::open(&config(dir))));

#[test]
fn scans_honour_bounds_and_stop_when_told() {
    let dir = tempfile::tempdir().unwrap();
    let engine = RedbEngine::open(&config(dir.path())).unwrap();
    leasehold_testkit::workload::check_scan_bounds(&engine);
}

#[test]
fn group_is_refused_buffered_becomes_durable_at_flush_and_close_is_final() {
    let dir = tempfile::tempdir().unwrap();
    let engine = RedbEngine::open(&config(dir.path())).unwrap();
    let mut batch = WriteBatch::new();
    batch.put(b"k".to_vec(), b"v".to_vec());
    assert!(matches!(
        engine.write(batch.clone(), Durability::Group),
        Err(KvError::Unsupported(_))
    ));
    engine.write(batch.clone(), Durability::Buffered).unwrap();
    assert_eq!(engine.get(b"k").unwrap(), Some(b"v".to_vec()));
    engine.flush().unwrap();
    let stats = engine.stats();
    assert_eq!(stats.user_bytes_written, 2);
    assert!(
        stats.device_bytes_written > 0 && stats.fsyncs > 0,
        "{stats:?}"
    );
    assert!(matches!(
        RedbEngine::open(&config(dir.path())),
        Err(KvError::Locked { .. })
    ));
    engine.close().unwrap();
    assert!(matches!(engine.get(b"k"), Err(KvError::Closed)));
    assert!(matches!(
        engine.write(batch, Durability::Sync),
        Err(KvError::Closed)
    ));
    let reopened = RedbEngine::open(&config(dir.path())).unwrap();
    assert_eq!(reopened.get(b"k").unwrap(), Some(b"v".to_vec()));
    assert!(reopened.verify().unwrap().is_clean());
}

#[test]
fn a_batch_above_the_limit_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let engine = RedbEngine::open(&config(dir.path())).unwrap();
    leasehold_testkit::workload::check_batch_limit(&engine);
}
