//! Separate processes race for the same hot actors through the S3 server (and
//! through Azurite); `leasehold_testkit::contention` checks their logs.
//!
//! `LEASEHOLD_CONTENTION_SECONDS` (default 20) and
//! `LEASEHOLD_CONTENTION_NODES` (default 4) bound the run.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

mod common;

use std::collections::HashMap;

use leasehold_testkit::contention::{env_or, race};

#[test]
fn separate_processes_never_share_an_actor_on_s3() {
    race_on("s3", common::s3_settings());
}

#[test]
fn separate_processes_never_share_an_actor_on_azure() {
    race_on(
        "azure",
        leasehold_objectstore::test_server::azure_settings().expect("the Azure emulator"),
    );
}

fn race_on(backend: &str, mut envs: HashMap<String, String>) {
    envs.insert("LEASEHOLD_CONTENTION_BACKEND".into(), backend.into());
    envs.insert(
        "LEASEHOLD_CONTENTION_PREFIX".into(),
        common::unique_prefix("contention"),
    );
    race(
        env!("CARGO_BIN_EXE_contender"),
        &envs,
        backend,
        env_or("LEASEHOLD_CONTENTION_NODES", 4),
        env_or("LEASEHOLD_CONTENTION_SECONDS", 20),
    );
}
