//! Acknowledged Sync writes survive SIGKILL of a writer process on the real
//! file system, and a second process is refused the live directory
//! (`testkit::kill`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

use std::path::Path;
use std::sync::Arc;

use leasehold_core::vfs::OsVfs;

fn open(dir: &Path) -> leasehold_core::KvResult<leasehold_memory::MemoryEngine> {
    leasehold_memory::MemoryEngine::open(
        &leasehold_memory::config::MemoryConfig {
            max_entries: 1 << 20,
            backup_path: Some(dir.join("backup.lz4")),
            ..Default::default()
        },
        Arc::new(OsVfs::new()),
    )
}

leasehold_testkit::kill_tests!(open, rounds: 6, locks: true);
