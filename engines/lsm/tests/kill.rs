//! Acknowledged Sync writes survive SIGKILL of a writer process on the real
//! file system, and a second process is refused the live directory
//! (`testkit::kill`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

use std::path::Path;
use std::sync::Arc;

use leasehold_core::vfs::OsVfs;

fn open(dir: &Path) -> leasehold_core::KvResult<leasehold_lsm::LsmEngine> {
    leasehold_lsm::LsmEngine::open(
        &leasehold_lsm::config::LsmConfig {
            data_dir: dir.to_path_buf(),
            memtable_size_limit: 64 << 10,
            ..Default::default()
        },
        Arc::new(OsVfs::new()),
    )
}

leasehold_testkit::kill_tests!(open, rounds: 6, locks: true);
