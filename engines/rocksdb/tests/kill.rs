//! Crash test by process kill (RocksDB does its own I/O, so the simulated-disk
//! oracle cannot reach it): `testkit::kill` — a child writes with `Sync`, the
//! parent SIGKILLs it at a random moment and checks every acknowledged key.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

use std::path::Path;

use leasehold_rocksdb::config::RocksDbConfig;
use leasehold_rocksdb::RocksEngine;

fn open(dir: &Path) -> leasehold_core::KvResult<RocksEngine> {
    RocksEngine::open(&RocksDbConfig {
        data_dir: dir.to_path_buf(),
        // Small memtables: kills land in flushes and compactions too.
        write_buffer_size: 256 << 10,
        block_cache_size: 1 << 20,
        ..RocksDbConfig::default()
    })
}

// RocksDB's own LOCK refuses the second open (as an I/O error): `locks` is false.
leasehold_testkit::kill_tests!(open, rounds: 6, locks: false);
