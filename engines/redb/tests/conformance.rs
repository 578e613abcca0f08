//! The Store conformance suite over redb, as a `Store` through `KvStore`,
//! plus the engine-level contract the suite does not reach.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

use leasehold_core::{KvEngine, KvError};
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
    let open = || RedbEngine::open(&config(dir.path()));
    leasehold_testkit::workload::check_group_refused_and_close_final(&open, &|engine| {
        let stats = engine.stats();
        assert_eq!(stats.user_bytes_written, 2);
        assert!(
            stats.device_bytes_written > 0 && stats.fsyncs > 0,
            "{stats:?}"
        );
        assert!(matches!(open(), Err(KvError::Locked { .. })));
    });
}

#[test]
fn a_batch_above_the_limit_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let engine = RedbEngine::open(&config(dir.path())).unwrap();
    leasehold_testkit::workload::check_batch_limit(&engine);
}
