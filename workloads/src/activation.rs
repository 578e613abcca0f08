//! A small built-in activation workload on virtual time: what `leasehold
//! compare` runs until the scenario harness lands.
//!
//! Messages go to actors drawn from a Zipf distribution. A message to an
//! inactive actor activates it on a node (acquire the lease, load the
//! snapshot); every `snapshot_every` messages the actor saves its state; leases
//! are renewed at half their duration; when a node holds more than
//! `active_max` actors the least recently used one deactivates (final
//! snapshot, release). At the end every actor deactivates and the store syncs.
//! Time is virtual (`message_gap` per message); latencies are real.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use leasehold_core::rng::SplitMix64;
use leasehold_core::{Acquire, ActorKey, NodeId, SnapshotWrite, Store, StoreError, Timestamp};

#[derive(Clone, Debug)]
pub struct Workload {
    pub actors: u32,
    pub messages: u64,
    pub nodes: u32,
    pub zipf_theta: f64,
    pub snapshot_every: u32,
    pub active_max_per_node: usize,
    pub lease_duration: Duration,
    pub state_bytes: usize,
    pub message_gap: Duration,
    pub seed: u64,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            actors: 5_000,
            messages: 100_000,
            nodes: 3,
            zipf_theta: 0.99,
            snapshot_every: 10,
            active_max_per_node: 500,
            lease_duration: Duration::from_secs(30),
            state_bytes: 256,
            message_gap: Duration::from_millis(1),
            seed: 42,
        }
    }
}

/// What one run did.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub elapsed: Duration,
    pub messages: u64,
    pub activations: u64,
    pub snapshots: u64,
    pub renewals: u64,
    pub deactivations: u64,
    /// Two nodes believed they owned one actor (must be 0).
    pub duplicate_owners: u64,
    /// Activations whose loaded state was not the last one saved (must be 0).
    pub lost_updates: u64,
}

/// Zipf(θ) over `0..n` by inverse CDF (n is small enough to tabulate).
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: u32, theta: f64) -> Zipf {
        let weights: Vec<f64> = (1..=n)
            .map(|rank| 1.0 / f64::from(rank).powf(theta))
            .collect();
        let total: f64 = weights.iter().sum();
        let mut running = 0.0;
        let cdf = weights
            .iter()
            .map(|weight| {
                running += weight / total;
                running
            })
            .collect();
        Zipf { cdf }
    }

    fn sample(&self, rng: &mut SplitMix64) -> u32 {
        let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        self.cdf
            .partition_point(|&point| point < u)
            .min(self.cdf.len() - 1) as u32
    }
}

struct Active {
    node: u32,
    epoch: u64,
    version: u64,
    counter: u64,
    unsaved: u32,
    renewed_at: Timestamp,
    last_message: u64,
}

fn state_bytes(counter: u64, len: usize) -> Vec<u8> {
    let mut state = format!("{{\"count\":{counter},\"pad\":\"").into_bytes();
    state.resize(len.saturating_sub(2).max(state.len()), b'x');
    state.extend_from_slice(b"\"}");
    state
}

/// The counter a state written by `state_bytes` holds; 0 if it holds none.
fn state_counter(state: &[u8]) -> u64 {
    let digits = state.strip_prefix(b"{\"count\":").unwrap_or_default();
    let end = digits
        .iter()
        .position(|byte| !byte.is_ascii_digit())
        .unwrap_or(digits.len());
    std::str::from_utf8(&digits[..end])
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(0)
}

fn actor_key(index: u32) -> ActorKey {
    // Scatter ids so popular actors are not neighbours in key order.
    ActorKey::new(
        "UserActor",
        format!("user-{:08x}", index.wrapping_mul(2_654_435_761)),
    )
}

/// Runs `workload` against `store`.
pub fn run(store: &dyn Store, workload: &Workload) -> Result<Outcome, StoreError> {
    let zipf = Zipf::new(workload.actors, workload.zipf_theta);
    let mut rng = SplitMix64::new(workload.seed);
    let nodes: Vec<NodeId> = (0..workload.nodes)
        .map(|index| NodeId::new(format!("node-{index}")))
        .collect();
    let mut active: HashMap<u32, Active> = HashMap::new();
    // Per node, actors by last message (for LRU deactivation).
    let mut by_recency: Vec<BTreeMap<u64, u32>> =
        (0..workload.nodes).map(|_| BTreeMap::new()).collect();
    let mut outcome = Outcome::default();
    // The counter each actor last saved, to check what activations load.
    let mut saved_counters: HashMap<u32, u64> = HashMap::new();
    let start = Timestamp(1_700_000_000_000);
    let started = Instant::now();

    for message in 0..workload.messages {
        let now = start.saturating_add(workload.message_gap * message as u32);
        let index = zipf.sample(&mut rng);
        let key = actor_key(index);
        let actor = match active.entry(index) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                let node = rng.below(u64::from(workload.nodes)) as u32;
                match store.try_acquire(
                    &key,
                    &nodes[node as usize],
                    workload.lease_duration,
                    now,
                )? {
                    Acquire::Acquired(lease) => {
                        let snapshot = store.load(&key, now)?;
                        let (version, counter) = snapshot.map_or((0, 0), |snapshot| {
                            (snapshot.version, state_counter(&snapshot.state))
                        });
                        if counter != saved_counters.get(&index).copied().unwrap_or(0) {
                            outcome.lost_updates += 1;
                        }
                        outcome.activations += 1;
                        entry.insert(Active {
                            node,
                            epoch: lease.epoch,
                            version,
                            counter,
                            unsaved: 0,
                            renewed_at: now,
                            last_message: message,
                        })
                    }
                    // The runtime believes nobody holds it: a held lease is a duplicate owner.
                    Acquire::Held { .. } => {
                        outcome.duplicate_owners += 1;
                        continue;
                    }
                }
            }
        };
        by_recency[actor.node as usize].remove(&actor.last_message);
        actor.last_message = message;
        by_recency[actor.node as usize].insert(message, index);
        actor.counter += 1;
        actor.unsaved += 1;
        if now.saturating_since(actor.renewed_at) >= workload.lease_duration / 2 {
            match store.renew(&key, &nodes[actor.node as usize], actor.epoch, now) {
                Ok(_) => outcome.renewals += 1,
                // Idle past its lease while still resident: take it again (a new
                // epoch), as a runtime whose renewal timer fired late would.
                Err(StoreError::LeaseExpired { .. }) => {
                    match store.try_acquire(
                        &key,
                        &nodes[actor.node as usize],
                        workload.lease_duration,
                        now,
                    )? {
                        Acquire::Acquired(lease) => actor.epoch = lease.epoch,
                        Acquire::Held { .. } => {
                            outcome.duplicate_owners += 1;
                            continue;
                        }
                    }
                }
                Err(err) => return Err(err),
            }
            actor.renewed_at = now;
        }
        if actor.unsaved >= workload.snapshot_every {
            let write = SnapshotWrite::new(
                key.clone(),
                state_bytes(actor.counter, workload.state_bytes),
            );
            actor.version = store.save(write, actor.version, actor.epoch, now)?.version;
            actor.unsaved = 0;
            saved_counters.insert(index, actor.counter);
            outcome.snapshots += 1;
        }
        let node = actor.node as usize;
        if by_recency[node].len() > workload.active_max_per_node {
            if let Some((_, idle)) = by_recency[node].pop_first() {
                if let Some(actor) = active.remove(&idle) {
                    outcome.snapshots +=
                        u64::from(deactivate(store, idle, &actor, &nodes, workload, now)?);
                    saved_counters.insert(idle, actor.counter);
                    outcome.deactivations += 1;
                }
            }
        }
        outcome.messages += 1;
    }
    let end = start.saturating_add(workload.message_gap * workload.messages as u32);
    for (index, actor) in active.drain() {
        outcome.snapshots += u64::from(deactivate(store, index, &actor, &nodes, workload, end)?);
        outcome.deactivations += 1;
    }
    store.sync().or_else(|err| match err {
        // A volatile store cannot sync; that is its nature, not a failure here.
        StoreError::Engine(leasehold_core::KvError::Unsupported(_)) => Ok(()),
        other => Err(other),
    })?;
    outcome.elapsed = started.elapsed();
    Ok(outcome)
}

/// Final snapshot if anything changed, then release; whether it saved.
fn deactivate(
    store: &dyn Store,
    index: u32,
    actor: &Active,
    nodes: &[NodeId],
    workload: &Workload,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let key = actor_key(index);
    let saved = actor.unsaved > 0;
    if saved {
        let write = SnapshotWrite::new(
            key.clone(),
            state_bytes(actor.counter, workload.state_bytes),
        );
        store.save(write, actor.version, actor.epoch, now)?;
    }
    store.release(&key, &nodes[actor.node as usize], actor.epoch)?;
    Ok(saved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use leasehold_core::{Durability, KvStore};
    use leasehold_memory::MemoryEngine;

    #[test]
    fn the_workload_runs_clean_and_leaves_every_lease_released() {
        let store = KvStore::new(MemoryEngine::volatile(1_000_000), Durability::Buffered);
        let workload = Workload {
            actors: 200,
            messages: 5_000,
            active_max_per_node: 20,
            ..Workload::default()
        };
        let outcome = run(&store, &workload).unwrap();
        assert_eq!(outcome.messages, 5_000);
        assert_eq!(outcome.duplicate_owners, 0);
        assert_eq!(outcome.lost_updates, 0);
        assert!(
            outcome.activations > 200,
            "actors were deactivated and activated again"
        );
        assert_eq!(outcome.activations, outcome.deactivations);
        assert!(outcome.snapshots > 0);
        let held = store
            .list_leases(&leasehold_core::LeaseFilter {
                expired: Some(false),
                now: Timestamp(1_700_000_000_000),
                ..Default::default()
            })
            .unwrap();
        assert!(held.is_empty(), "{} leases still held", held.len());
    }

    #[test]
    fn states_carry_their_counter() {
        assert_eq!(state_counter(&state_bytes(12345, 256)), 12345);
        assert_eq!(state_bytes(7, 256).len(), 256);
        assert_eq!(state_counter(b"garbage"), 0);
    }

    #[test]
    fn zipf_favours_low_ranks() {
        let zipf = Zipf::new(1000, 0.99);
        let mut rng = SplitMix64::new(1);
        let hits = (0..10_000).filter(|_| zipf.sample(&mut rng) < 10).count();
        // The top 1 % of actors take roughly 39 % of traffic at θ = 0.99.
        assert!((3_000..5_000).contains(&hits), "{hits}");
    }
}
