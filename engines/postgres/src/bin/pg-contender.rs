//! One "node" of the multi-process contention test (`tests/contention.rs`,
//! `leasehold_testkit::contention`) on PostgreSQL.
//!
//! Usage: pg-contender NODE SECONDS ACTORS LEASE_MS SEED, with
//! LEASEHOLD_CONTENTION_SCHEMA and the server in the `LEASEHOLD_PG_*`
//! variables `scripts/postgres-server` prints.

use leasehold_core::Durability;
use leasehold_postgres::{test_server, PostgresStore};
use leasehold_testkit::contention::{contend, Plan};

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let plan = Plan::from_args(&args)?;
    let schema = std::env::var("LEASEHOLD_CONTENTION_SCHEMA")
        .map_err(|_| "environment variable LEASEHOLD_CONTENTION_SCHEMA is not set".to_owned())?;
    let mut config = test_server::from_environment(&schema)?;
    config.pool_size = 2;
    let store = PostgresStore::open(&config, Durability::Sync).map_err(|err| err.to_string())?;
    contend(&store, &plan, std::io::stdout().lock());
    eprintln!("{}: {} transactions retried", plan.node, store.retries());
    Ok(())
}
