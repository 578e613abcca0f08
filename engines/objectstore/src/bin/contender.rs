//! One "node" of the multi-process contention test (`tests/contention.rs`,
//! `leasehold_testkit::contention`) on object storage.
//!
//! Usage: contender NODE SECONDS ACTORS LEASE_MS SEED, with
//! LEASEHOLD_CONTENTION_BACKEND (`s3` or `azure`), LEASEHOLD_CONTENTION_PREFIX
//! (the key prefix) and the server in the variables `scripts/s3-server` or
//! `scripts/azure-server` print.

use leasehold_objectstore::test_server;
use leasehold_testkit::contention::{contend, Plan};

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let plan = Plan::from_args(&args)?;
    let store = test_server::open_for_child()?;
    contend(&store, &plan, std::io::stdout().lock());
    let stats = store.client_stats();
    eprintln!(
        "{}: {} requests, {} refused conditions, {} fences",
        plan.node,
        stats.requests.iter().map(|kind| kind.count).sum::<u64>(),
        stats.conditions_failed,
        store.fences_written()
    );
    Ok(())
}
