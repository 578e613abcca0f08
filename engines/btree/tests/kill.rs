//! Acknowledged Sync writes survive SIGKILL of a writer process on the real
//! file system, and a second process is refused the live directory
//! (`testkit::kill`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

use std::path::Path;
use std::sync::Arc;

use leasehold_core::vfs::OsVfs;

fn open(dir: &Path) -> leasehold_core::KvResult<leasehold_btree::BtreeEngine> {
    leasehold_btree::BtreeEngine::open(
        &leasehold_btree::config::BtreeConfig {
            data_dir: dir.to_path_buf(),
            checkpoint_wal_bytes: 256 << 10,
            ..Default::default()
        },
        Arc::new(OsVfs::new()),
    )
}

leasehold_testkit::kill_tests!(open, rounds: 6, locks: true);
