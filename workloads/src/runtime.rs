//! A simulated virtual-actor runtime on virtual time: it turns a scenario into
//! the store operations a cluster of nodes would issue, and records each with
//! the answer of a reference store (the in-memory engine under `KvStore`).
//!
//! What the nodes do, in virtual time (nothing sleeps):
//! - a message to an inactive actor activates it: `leases.race` live nodes
//!   try to acquire its lease; the winner loads the snapshot, the losers
//!   forward the message. A lease held by a node that is gone (failed, lease
//!   not yet expired) defers the message to the moment the lease runs out;
//! - a message changes the state; after `snapshots.every_messages` changes
//!   (or `snapshots.interval_secs`) the owner saves, fenced by its epoch;
//! - owners renew at `leases.renew_at` of the lease term;
//! - an actor idle for `lifecycle.idle_timeout_secs` deactivates: final
//!   snapshot (or, for `lifecycle.delete_share` of them, delete), release;
//! - a failed node does nothing more; its leases expire and the next message
//!   for each of its actors activates it elsewhere with a higher epoch;
//! - at the end every live actor deactivates and the store syncs.
//!
//! Everything random comes from the scenario's seed, and iteration never
//! depends on hash order, so one scenario and scale give one trace.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Duration;

use leasehold_core::rng::SplitMix64;
use leasehold_core::{Acquire, ActorKey, NodeId, SnapshotWrite, Store, StoreError, Timestamp};

use crate::ownership::OwnershipCheck;
use crate::popularity::Chooser;
use crate::scenario::{Scenario, SizeDistribution};
use crate::state::StatePool;
use crate::trace::{Answer, Op, Trace, TraceHeader, TraceOp};

mod actor;
mod answers;

pub use answers::{actor_key, actor_keys, answer_of_acquire, answer_of_load, node_ids, rejection};

/// Virtual time starts here (2023-11-14), so timestamps look like real ones.
pub const START_MS: u64 = 1_700_000_000_000;

/// What the runtime did, for reports and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RuntimeStats {
    pub messages: u64,
    pub activations: u64,
    /// Activations of an actor whose last owner had failed.
    pub takeovers: u64,
    /// Acquire attempts answered `Held`.
    pub lease_conflicts: u64,
    /// Messages that waited for a failed node's lease to run out.
    pub deferred_messages: u64,
    pub renewals: u64,
    pub releases: u64,
    pub saves: u64,
    pub deletes: u64,
    pub loads_found: u64,
    pub loads_missing: u64,
    pub node_failures: u64,
    pub reopens: u64,
    /// Actors saved before measurement started.
    pub preloaded: u64,
    /// Answers the runtime did not expect (a rule rejected a well-behaved
    /// node): must stay 0 for the reference store.
    pub unexpected_rejections: u64,
    /// From the ownership check over the reference answers (must be 0).
    pub duplicate_owners: u64,
}

impl RuntimeStats {
    /// Renewals among all lease operations (acquire, renew, release).
    pub fn renewal_share(&self) -> f64 {
        let acquires = self.activations + self.lease_conflicts;
        let lease_ops = acquires + self.renewals + self.releases;
        if lease_ops == 0 {
            0.0
        } else {
            self.renewals as f64 / lease_ops as f64
        }
    }
}

pub struct Generated {
    pub trace: Trace,
    pub stats: RuntimeStats,
}

/// Makes the reference store a trace's answers come from: an empty store for
/// this many actors (the harness passes its volatile memory engine).
pub type Reference<'a> = &'a dyn Fn(u32) -> Box<dyn Store>;

/// Generates the trace of `scenario` at `scale` (see [`Scenario::scaled`]),
/// with the answers of a fresh `reference` store.
pub fn generate(
    scenario: &Scenario,
    scale: f64,
    reference: Reference<'_>,
) -> Result<Generated, StoreError> {
    let scaled = scenario.scaled(scale);
    let mut runtime = Runtime::new(&scaled, scale, reference(scaled.actors));
    runtime.run()?;
    let mut check = OwnershipCheck::default();
    for op in &runtime.ops {
        check.observe(op.at_ms, &op.op, &op.answer, runtime.header.lease_ms);
    }
    runtime.stats.duplicate_owners = check.duplicate_owners + check.epochs_not_raised;
    Ok(Generated {
        trace: Trace {
            header: runtime.header,
            ops: runtime.ops,
        },
        stats: runtime.stats,
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Renew {
        actor: u32,
        epoch: u64,
    },
    Idle {
        actor: u32,
        epoch: u64,
    },
    Snapshot {
        actor: u32,
        epoch: u64,
    },
    /// A message that waited for a gone node's lease to expire.
    Deferred {
        actor: u32,
    },
    NodeDown {
        node: u32,
    },
    NodeUp {
        node: u32,
    },
    Purge,
    Reopen,
}

struct Activation {
    node: u32,
    epoch: u64,
    version: u64,
    /// When the snapshot at `version` expires (TTL); from then on the store
    /// treats it as absent and the next save expects version 0.
    expires_at_ms: Option<u64>,
    /// Messages since the last save.
    dirty: u32,
    last_message_ms: u64,
}

struct Runtime<'a> {
    scenario: &'a Scenario,
    header: TraceHeader,
    store: Box<dyn Store>,
    rng: SplitMix64,
    chooser: Chooser,
    keys: Vec<ActorKey>,
    nodes: Vec<NodeId>,
    alive: Vec<bool>,
    state_bytes: Vec<u32>,
    pool: StatePool,
    active: HashMap<u32, Activation>,
    /// Actors whose owner failed, until someone takes them over.
    orphaned: HashMap<u32, ()>,
    timers: BinaryHeap<Reverse<(u64, u64, Timer)>>,
    timer_seq: u64,
    now_ms: u64,
    ops: Vec<TraceOp>,
    stats: RuntimeStats,
}

fn millis(secs: f64) -> u64 {
    (secs * 1000.0).round() as u64
}

impl<'a> Runtime<'a> {
    fn new(scenario: &'a Scenario, scale: f64, store: Box<dyn Store>) -> Runtime<'a> {
        let header = TraceHeader {
            scenario: scenario.name.clone(),
            seed: scenario.seed,
            scale,
            actor_type: scenario.actor_type.clone(),
            actors: scenario.actors,
            nodes: scenario.nodes,
            lease_ms: millis(scenario.leases.duration_secs).max(1),
            ttl_ms: millis(scenario.snapshots.ttl_secs),
            state_bytes_max: scenario.state.max_bytes,
        };
        let mut rng = SplitMix64::new(scenario.seed);
        let state_bytes = (0..scenario.actors)
            .map(|_| sample_state_bytes(scenario, &mut rng))
            .collect();
        Runtime {
            scenario,
            keys: actor_keys(&header),
            nodes: node_ids(&header),
            pool: StatePool::new(scenario.seed, scenario.state.max_bytes),
            header,
            store,
            rng,
            chooser: Chooser::new(&scenario.popularity, scenario.actors),
            alive: vec![true; scenario.nodes as usize],
            state_bytes,
            active: HashMap::new(),
            orphaned: HashMap::new(),
            timers: BinaryHeap::new(),
            timer_seq: 0,
            now_ms: START_MS,
            ops: Vec::new(),
            stats: RuntimeStats::default(),
        }
    }

    fn run(&mut self) -> StoreResult {
        let scenario = self.scenario;
        self.preload()?;
        for failure in &scenario.node_failures {
            let down_ms = START_MS + millis(failure.at_secs);
            self.schedule(down_ms, Timer::NodeDown { node: failure.node });
            if let Some(after) = failure.recover_after_secs {
                self.schedule(
                    down_ms + millis(after),
                    Timer::NodeUp { node: failure.node },
                );
            }
        }
        if scenario.lifecycle.purge_interval_secs > 0.0 {
            self.schedule(
                self.now_ms + millis(scenario.lifecycle.purge_interval_secs),
                Timer::Purge,
            );
        }
        if scenario.recovery.reopen_every_secs > 0.0 {
            self.schedule(
                self.now_ms + millis(scenario.recovery.reopen_every_secs),
                Timer::Reopen,
            );
        }
        let messages = scenario.messages();
        let mean_gap_ms = 1000.0 / scenario.messages_per_sec;
        let mut clock_ms = 0.0f64;
        for _ in 0..messages {
            let u = ((self.rng.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
            clock_ms += -u.ln() * mean_gap_ms;
            let at_ms = START_MS + clock_ms as u64;
            self.run_timers_until(at_ms)?;
            self.now_ms = self.now_ms.max(at_ms);
            let actor = self.chooser.next(&mut self.rng);
            self.stats.messages += 1;
            self.deliver(actor)?;
        }
        self.shutdown()
    }

    /// The cluster that ran before: `preloaded_share` of the actors were
    /// acquired and saved once, long enough ago that those leases expired.
    fn preload(&mut self) -> StoreResult {
        let share = self.scenario.preloaded_share;
        if share > 0.0 {
            self.now_ms = START_MS - self.header.lease_ms - 1000;
            for actor in 0..self.scenario.actors {
                if !self.rng.chance(share) {
                    continue;
                }
                let node = actor % self.scenario.nodes;
                let duration = Duration::from_millis(self.header.lease_ms);
                let key = &self.keys[actor as usize];
                let result = self.store.try_acquire(
                    key,
                    &self.nodes[node as usize],
                    duration,
                    self.now(),
                )?;
                self.record(
                    Op::Acquire { actor, node },
                    answer_of_acquire(&result, &self.nodes),
                );
                let Acquire::Acquired(lease) = result else {
                    self.stats.unexpected_rejections += 1;
                    continue;
                };
                self.active.insert(
                    actor,
                    Activation {
                        node,
                        epoch: lease.epoch,
                        version: 0,
                        expires_at_ms: None,
                        dirty: 1,
                        last_message_ms: self.now_ms,
                    },
                );
                self.save(actor)?;
                self.active.remove(&actor);
                // Set-up, not traffic: counted apart from the run's saves.
                self.stats.saves -= 1;
                self.stats.preloaded += 1;
            }
        }
        self.now_ms = START_MS;
        self.record(Op::Measure, Answer::Done);
        Ok(())
    }

    fn schedule(&mut self, at_ms: u64, timer: Timer) {
        self.timer_seq += 1;
        self.timers.push(Reverse((at_ms, self.timer_seq, timer)));
    }

    fn run_timers_until(&mut self, until_ms: u64) -> StoreResult {
        while let Some(&Reverse((at_ms, _, timer))) = self.timers.peek() {
            if at_ms > until_ms {
                break;
            }
            self.timers.pop();
            self.now_ms = self.now_ms.max(at_ms);
            self.fire(timer)?;
        }
        Ok(())
    }

    fn current(&self, actor: u32, epoch: u64) -> bool {
        self.active.get(&actor).is_some_and(|activation| {
            activation.epoch == epoch && self.alive[activation.node as usize]
        })
    }

    fn fire(&mut self, timer: Timer) -> StoreResult {
        let scenario = self.scenario;
        match timer {
            Timer::Renew { actor, epoch } if self.current(actor, epoch) => self.renew(actor)?,
            Timer::Idle { actor, epoch } if self.current(actor, epoch) => {
                let idle_ms = millis(scenario.lifecycle.idle_timeout_secs);
                let last = self.active[&actor].last_message_ms;
                if self.now_ms >= last + idle_ms {
                    self.deactivate(actor)?;
                } else {
                    self.schedule(last + idle_ms, Timer::Idle { actor, epoch });
                }
            }
            Timer::Snapshot { actor, epoch } if self.current(actor, epoch) => {
                if self.active[&actor].dirty > 0 {
                    self.save(actor)?;
                }
                let interval = millis(scenario.snapshots.interval_secs);
                self.schedule(self.now_ms + interval, Timer::Snapshot { actor, epoch });
            }
            Timer::Renew { .. } | Timer::Idle { .. } | Timer::Snapshot { .. } => {}
            Timer::Deferred { actor } => self.deliver(actor)?,
            Timer::NodeDown { node } => {
                self.alive[node as usize] = false;
                self.stats.node_failures += 1;
                let mut lost: Vec<u32> = self
                    .active
                    .iter()
                    .filter(|(_, activation)| activation.node == node)
                    .map(|(&actor, _)| actor)
                    .collect();
                lost.sort_unstable();
                for actor in lost {
                    self.active.remove(&actor);
                    self.orphaned.insert(actor, ());
                }
            }
            Timer::NodeUp { node } => self.alive[node as usize] = true,
            Timer::Purge => {
                let now = Timestamp::from_millis(self.now_ms);
                self.store.purge_expired(now)?;
                self.record(Op::PurgeExpired, Answer::Purged);
                let interval = millis(scenario.lifecycle.purge_interval_secs);
                self.schedule(self.now_ms + interval, Timer::Purge);
            }
            Timer::Reopen => {
                self.stats.reopens += 1;
                self.record(Op::Reopen, Answer::Done);
                let interval = millis(scenario.recovery.reopen_every_secs);
                self.schedule(self.now_ms + interval, Timer::Reopen);
            }
        }
        Ok(())
    }

    fn record(&mut self, op: Op, answer: Answer) {
        self.ops.push(TraceOp {
            at_ms: self.now_ms,
            op,
            answer,
        });
    }

    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.now_ms)
    }

    fn shutdown(&mut self) -> StoreResult {
        let mut actors: Vec<u32> = self
            .active
            .iter()
            .filter(|(_, activation)| self.alive[activation.node as usize])
            .map(|(&actor, _)| actor)
            .collect();
        actors.sort_unstable();
        for actor in actors {
            self.deactivate(actor)?;
        }
        // The reference store is volatile: there is nothing to sync, but the
        // engines under replay make everything durable here.
        self.record(Op::Sync, Answer::Done);
        Ok(())
    }
}

type StoreResult = Result<(), StoreError>;

fn sample_state_bytes(scenario: &Scenario, rng: &mut SplitMix64) -> u32 {
    let (min, max) = (scenario.state.min_bytes, scenario.state.max_bytes);
    let unit = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    let bytes = match scenario.state.distribution {
        SizeDistribution::Fixed => f64::from(max),
        SizeDistribution::Uniform => f64::from(min) + unit * f64::from(max - min),
        SizeDistribution::LogUniform => {
            (f64::from(min).ln() + unit * (f64::from(max).ln() - f64::from(min).ln())).exp()
        }
    };
    (bytes as u32).clamp(min, max)
}
