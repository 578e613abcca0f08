//! Separate processes race for the same hot actors through one PostgreSQL
//! server; `leasehold_testkit::contention` checks their logs: 0
//! duplicate owners, no stale save after a newer grant, no update lost.
//!
//! `LEASEHOLD_CONTENTION_SECONDS` (default 20) and
//! `LEASEHOLD_CONTENTION_NODES` (default 4) bound the run.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

mod common;

use leasehold_postgres::test_server;
use leasehold_testkit::contention::{env_or, race};

#[test]
fn separate_processes_never_share_an_actor_on_postgres() {
    let mut envs = test_server::settings().expect("the PostgreSQL test server");
    let schema = common::unique_schema("contention");
    // Create the schema once, before the processes race to.
    let config = test_server::config_from(&envs, &schema).unwrap();
    drop(
        leasehold_postgres::PostgresStore::open(&config, leasehold_core::Durability::Sync).unwrap(),
    );
    envs.insert("LEASEHOLD_CONTENTION_SCHEMA".into(), schema);
    race(
        env!("CARGO_BIN_EXE_pg-contender"),
        &envs,
        "postgres",
        env_or("LEASEHOLD_CONTENTION_NODES", 4),
        env_or("LEASEHOLD_CONTENTION_SECONDS", 20),
    );
}
