//! The crash oracle over the memory engine's backup on the simulated disk.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use leasehold_core::vfs::SimVfs;
use leasehold_core::KvResult;
use leasehold_memory::config::{BackupCompression, MemoryConfig};
use leasehold_memory::MemoryEngine;
use leasehold_testkit::crash;

fn open(vfs: SimVfs) -> KvResult<MemoryEngine> {
    let config = MemoryConfig {
        max_entries: 1_000,
        backup_path: Some(PathBuf::from("/memory/backup.lz4")),
        // The background thread must not run during a deterministic case.
        sync_interval: Duration::from_secs(24 * 3600),
        compression: BackupCompression::Lz4,
    };
    MemoryEngine::open(&config, Arc::new(vfs))
}

#[test]
fn backup_recovery_passes_the_crash_oracle() {
    crash::check("memory", &open, 400, 24);
}

#[test]
fn backup_recovery_survives_read_faults() {
    crash::check_read_faults("memory", &open, 300, 16);
}

#[test]
fn device_faults_never_give_wrong_data_or_acknowledge_after_a_failure() {
    crash::check_device_faults("memory", &open, 300, 16);
}
