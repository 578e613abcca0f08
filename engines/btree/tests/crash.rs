//! The crash oracle over the B+tree on the simulated disk: crash points inside
//! log appends, checkpoints (page writes, meta flips, log rotation) and
//! recovery itself, under every crash policy.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

mod common;

use std::sync::Arc;

use leasehold_btree::BtreeEngine;
use leasehold_core::vfs::SimVfs;
use leasehold_core::KvResult;
use leasehold_testkit::crash;

fn open(vfs: SimVfs) -> KvResult<BtreeEngine> {
    BtreeEngine::open(&common::tiny_config("/btree"), Arc::new(vfs))
}

/// Cases in the default run; `LEASEHOLD_BTREE_CRASH_CASES` raises it.
fn cases(default: u32) -> u32 {
    std::env::var("LEASEHOLD_BTREE_CRASH_CASES")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(default)
}

#[test]
fn the_btree_passes_the_crash_oracle() {
    crash::check("btree", &open, cases(2_000), 32);
}

#[test]
fn the_btree_survives_read_faults_during_recovery() {
    crash::check_read_faults("btree", &open, cases(300), 24);
}

#[test]
fn device_faults_never_give_wrong_data_or_acknowledge_after_a_failure() {
    crash::check_device_faults("btree", &open, cases(500), 24);
}
