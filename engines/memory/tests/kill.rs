//! Acknowledged Sync writes survive SIGKILL of a writer process on the real
//! file system, and a second process is refused the live directory
//! (`testkit::kill`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

use std::path::Path;
use std::sync::Arc;

use leasehold_core::vfs::OsVfs;
use leasehold_testkit::kill;

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

#[test]
#[ignore = "the child process of acknowledged_sync_writes_survive_sigkill"]
fn kill_child_writer() {
    kill::child_writer(open);
}

#[test]
fn acknowledged_sync_writes_survive_sigkill() {
    kill::sigkill_rounds("kill_child_writer", 6, true, open);
}
