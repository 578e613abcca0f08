//! Crash test by process kill (RocksDB does its own I/O, so the simulated-disk
//! oracle cannot reach it): `testkit::kill` — a child writes with `Sync`, the
//! parent SIGKILLs it at a random moment and checks every acknowledged key.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

use std::path::Path;

use leasehold_rocksdb::config::RocksDbConfig;
use leasehold_rocksdb::RocksEngine;
use leasehold_testkit::kill;

fn open(dir: &Path) -> leasehold_core::KvResult<RocksEngine> {
    RocksEngine::open(&RocksDbConfig {
        data_dir: dir.to_path_buf(),
        // Small memtables: kills land in flushes and compactions too.
        write_buffer_size: 256 << 10,
        block_cache_size: 1 << 20,
        ..RocksDbConfig::default()
    })
}

#[test]
#[ignore = "the child process of acknowledged_sync_writes_survive_sigkill"]
fn kill_child_writer() {
    kill::child_writer(open);
}

/// RocksDB's own LOCK refuses the second open (as an I/O error).
#[test]
fn acknowledged_sync_writes_survive_sigkill() {
    kill::sigkill_rounds("kill_child_writer", 6, false, open);
}
