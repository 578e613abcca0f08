//! One coordinator of the commit kill test (`tests/commit_kill.rs`): for a
//! bounded time it moves one unit between two random actors of a small bank
//! with a multi-actor commit — each actor's state is its balance and the
//! transfers applied to it — and prints `ok <transfer> <from> <to>` for each
//! commit acknowledged. At every commit phase it may die on the spot
//! (`abort`, no unwinding, nothing flushed but what was printed), leaving
//! its intents, or its record and its intents, for the others to resolve.
//!
//! Usage: committer NODE SECONDS ACTORS SEED DIE_ONE_IN DEADLINE_MS, with
//! LEASEHOLD_CONTENTION_BACKEND (`s3` or `azure`), LEASEHOLD_CONTENTION_PREFIX
//! and the server's variables, as for `contender`.

use std::time::{Duration, Instant};

use leasehold_core::rng::SplitMix64;
use leasehold_core::{
    Acquire, ActorKey, Clock, CommitOp, NodeId, SnapshotWrite, Store, StoreError, SystemClock,
};
use leasehold_objectstore::test_server;
use serde_json::{json, Value};

fn arg(args: &[String], index: usize, what: &str) -> Result<u64, String> {
    args.get(index)
        .ok_or_else(|| format!("missing argument {what}"))?
        .parse()
        .map_err(|_| format!("argument {what} is not a number"))
}

/// An account of the bank.
pub fn account(index: u64) -> ActorKey {
    ActorKey::new("Account", format!("acct-{index}"))
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let node = args.get(1).cloned().ok_or("missing argument NODE")?;
    let seconds = arg(&args, 2, "SECONDS")?;
    let actors = arg(&args, 3, "ACTORS")?;
    let seed = arg(&args, 4, "SEED")?;
    let die_one_in = arg(&args, 5, "DIE_ONE_IN")?;
    let deadline = Duration::from_millis(arg(&args, 6, "DEADLINE_MS")?);
    let store = test_server::open_for_child()?;
    store.set_commit_deadline(deadline);
    let dice = std::sync::Mutex::new(SplitMix64::new(seed ^ 0x5EED));
    store.set_commit_hook(move |_phase| {
        let roll = dice.lock().map_or(1, |mut dice| dice.below(die_one_in));
        if roll == 0 {
            std::process::abort();
        }
    });
    // Every coordinator is the bank's one node: the leases are shared.
    let bank = NodeId::new("bank");
    let mut epochs = Vec::new();
    for index in 0..actors {
        match store.try_acquire(
            &account(index),
            &bank,
            Duration::from_secs(3600),
            SystemClock.now(),
        ) {
            Ok(Acquire::Acquired(lease)) => epochs.push(lease.epoch),
            other => return Err(format!("lease of account {index}: {other:?}")),
        }
    }
    let mut rng = SplitMix64::new(seed);
    let stop = Instant::now() + Duration::from_secs(seconds);
    let mut transfers = 0u64;
    while Instant::now() < stop {
        let from = rng.below(actors);
        let to = (from + 1 + rng.below(actors - 1)) % actors;
        let transfer = format!("{node}-{transfers}");
        let now = SystemClock.now();
        let mut ops = Vec::new();
        for (index, delta) in [(from, -1i64), (to, 1)] {
            let key = account(index);
            let loaded = store.load(&key, now).map_err(|err| err.to_string())?;
            let (version, mut state) = match loaded {
                Some(snapshot) => (
                    snapshot.version,
                    serde_json::from_slice::<Value>(&snapshot.state)
                        .map_err(|err| format!("{key}: {err}"))?,
                ),
                None => return Err(format!("{key} has no state")),
            };
            state["balance"] = json!(state["balance"].as_i64().unwrap_or(0) + delta);
            if let Some(applied) = state["applied"].as_array_mut() {
                applied.push(json!(format!("{transfer}:{from}:{to}")));
            }
            ops.push(CommitOp::Save {
                snapshot: SnapshotWrite::new(key, state.to_string().into_bytes()),
                expected_version: version,
                fence_epoch: epochs[index as usize],
            });
        }
        transfers += 1;
        match store.commit(ops, now) {
            Ok(_) => println!("ok {transfer} {from} {to}"),
            Err(StoreError::VersionConflict { .. }) => {}
            Err(err) => eprintln!("{node}: {transfer}: {err}"),
        }
    }
    eprintln!(
        "{node}: {transfers} transfers tried, {} commits aborted past their deadline",
        store.commits_aborted_by_readers()
    );
    Ok(())
}
