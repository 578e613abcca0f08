//! RocksDB with its integrated BlobDB (`enable_blob_files`), the harness's
//! `rocksdb-blob`: the Store conformance suite, acknowledged Sync writes
//! across SIGKILL, and large values really living in blob files.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

use std::path::Path;

use leasehold_core::{Durability, KvEngine, WriteBatch};
use leasehold_rocksdb::config::RocksDbConfig;
use leasehold_rocksdb::RocksEngine;
use leasehold_testkit::conformance::KvOnDisk;

fn config(dir: &Path) -> RocksDbConfig {
    RocksDbConfig {
        data_dir: dir.to_path_buf(),
        // Small memtables and blobs: the suite's states reach blob files.
        write_buffer_size: 64 << 10,
        block_cache_size: 1 << 20,
        enable_blob_files: true,
        min_blob_size: 64,
        blob_file_size: 1 << 20,
        ..RocksDbConfig::default()
    }
}

fn open(dir: &Path) -> leasehold_core::KvResult<RocksEngine> {
    RocksEngine::open(&config(dir))
}

leasehold_testkit::store_conformance_tests!(KvOnDisk::new(open));

leasehold_testkit::kill_tests!(open, rounds: 4, locks: false);

/// Values above `min_blob_size` go to `*.blob` files, read back whole after
/// a reopen, and `verify` passes; small values stay in the tables.
#[test]
fn large_values_live_in_blob_files() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path()).unwrap();
    for index in 0..200u32 {
        let mut batch = WriteBatch::new();
        batch.put(format!("big{index:04}"), vec![index as u8; 4096]);
        batch.put(format!("small{index:04}"), vec![index as u8; 8]);
        engine.write(batch, Durability::Sync).unwrap();
    }
    engine.close().unwrap();
    let blobs = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|entry| {
            entry
                .as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".blob")
        })
        .count();
    assert!(blobs > 0, "no blob file in {}", dir.path().display());
    let reopened = open(dir.path()).unwrap();
    for index in 0..200u32 {
        let big = reopened.get(format!("big{index:04}").as_bytes()).unwrap();
        assert_eq!(big, Some(vec![index as u8; 4096]));
    }
    assert!(reopened.verify().unwrap().is_clean());
}
