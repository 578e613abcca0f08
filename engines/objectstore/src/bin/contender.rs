//! One "node" of the multi-process contention test (`tests/contention.rs`,
//! `leasehold_core::testkit::contention`) on object storage.
//!
//! Usage: contender NODE SECONDS ACTORS LEASE_MS SEED, with
//! LEASEHOLD_CONTENTION_BACKEND (`s3` or `azure`), LEASEHOLD_CONTENTION_PREFIX
//! (the key prefix) and the server in the variables `scripts/s3-server` or
//! `scripts/azure-server` print.

use leasehold_core::testkit::contention::{contend, Plan};
use leasehold_objectstore::{backend, test_server, ObjectStoreBackend};

fn setting(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("environment variable {name} is not set"))
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let plan = Plan::from_args(&args)?;
    let prefix = setting("LEASEHOLD_CONTENTION_PREFIX")?;
    let configured = match setting("LEASEHOLD_CONTENTION_BACKEND")?.as_str() {
        "s3" => backend::s3(&test_server::from_environment(&prefix)?),
        "azure" => backend::azure(&test_server::azure_from_environment(&prefix)?),
        other => return Err(format!("unknown backend {other:?} (s3 or azure)")),
    };
    let store = ObjectStoreBackend::open(configured.map_err(|err| err.to_string())?)
        .map_err(|err| err.to_string())?;
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
