//! The crash oracle over the LSM on the simulated disk: crash points inside
//! WAL appends, memtable switches, flushes, compactions, manifest edits and
//! recovery itself, under every crash policy.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

mod common;

use std::sync::Arc;

use leasehold_core::vfs::SimVfs;
use leasehold_core::KvResult;
use leasehold_lsm::LsmEngine;
use leasehold_testkit::crash;

fn open(vfs: SimVfs) -> KvResult<LsmEngine> {
    LsmEngine::open(&common::tiny_config("/lsm"), Arc::new(vfs))
}

/// Cases in the default run; `LEASEHOLD_LSM_CRASH_CASES` raises it for long runs.
fn cases(default: u32) -> u32 {
    std::env::var("LEASEHOLD_LSM_CRASH_CASES")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(default)
}

#[test]
fn the_lsm_passes_the_crash_oracle() {
    crash::check("lsm", &open, cases(2_000), 32);
}

#[test]
fn the_lsm_survives_read_faults_during_recovery() {
    crash::check_read_faults("lsm", &open, cases(300), 24);
}

#[test]
fn device_faults_never_give_wrong_data_or_acknowledge_after_a_failure() {
    crash::check_device_faults("lsm", &open, cases(500), 24);
}
