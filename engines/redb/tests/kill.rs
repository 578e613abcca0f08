//! Crash test by process kill (redb does its own I/O, so the simulated-disk
//! oracle cannot reach it): `testkit::kill` — a child writes with `Sync`, the
//! parent SIGKILLs it at a random moment and checks every acknowledged key,
//! and that a second open of the live file is refused (`Locked`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

use std::path::Path;

use leasehold_redb::{RedbConfig, RedbEngine};

fn open(dir: &Path) -> leasehold_core::KvResult<RedbEngine> {
    RedbEngine::open(&RedbConfig {
        data_dir: dir.to_path_buf(),
        cache_size_bytes: 4 << 20,
    })
}

leasehold_testkit::kill_tests!(open, rounds: 6, locks: true);
