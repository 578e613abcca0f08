//! The Store conformance suite over RocksDB, as a `Store` through `KvStore`,
//! plus the engine-level contract the suite does not reach.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

use leasehold_core::{KvEngine, KvError};
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

#[test]
fn scans_merge_the_column_families_in_key_order_and_honour_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let engine = RocksEngine::open(&config(dir.path())).unwrap();
    leasehold_testkit::workload::check_scan_bounds(&engine);
}

#[test]
fn group_durability_is_refused_not_weakened_and_close_is_final() {
    let dir = tempfile::tempdir().unwrap();
    let open = || RocksEngine::open(&config(dir.path()));
    leasehold_testkit::workload::check_group_refused_and_close_final(&open, &|engine| {
        let stats = engine.stats();
        assert_eq!(stats.user_bytes_written, 2);
        assert!(
            stats.wal_bytes_written > 0,
            "statistics are on by default: {stats:?}"
        );
    });
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
    // Every range the section checks holds for a config built in code too,
    // not only for one read from TOML.
    let out_of_range = [
        RocksDbConfig {
            bloom_bits_per_key: 1000.0,
            ..config(dir.path())
        },
        RocksDbConfig {
            write_buffer_size: 1,
            ..config(dir.path())
        },
        RocksDbConfig {
            max_background_jobs: 0,
            ..config(dir.path())
        },
    ];
    for bad in out_of_range {
        assert!(
            matches!(RocksEngine::open(&bad), Err(KvError::InvalidArgument(_))),
            "{bad:?}"
        );
    }
}

/// C1's limit holds on RocksDB too: every engine refuses the same batches.
#[test]
fn a_batch_above_the_limit_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let engine = RocksEngine::open(&config(dir.path())).unwrap();
    leasehold_testkit::workload::check_batch_limit(&engine);
}
