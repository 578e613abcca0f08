//! A virtual-actor host on tokio over any `Store`: the seed's activation
//! process, end to end (`examples/actor-host.rs` runs it on the store a TOML
//! names).
//!
//! Two hosts — nodes `host-a` and `host-b` — share the store. Counter actors
//! get messages; a router sends each actor's messages to one host. A host
//! that receives a message for an actor it has not activated acquires the
//! actor's lease and loads its snapshot (activation), then processes the
//! message (the counter rises). Every tick it renews leases at half their
//! term, saves dirty actors every snapshot interval (fenced with the lease's
//! epoch, expecting the version it loaded or last saved), and deactivates
//! actors idle past the idle timeout (a last save, then release). Partway,
//! `host-a` crashes: it stops without saving or releasing. The router sends
//! its actors to `host-b`, which finds them held until their leases run out,
//! then takes them over (epoch + 1) from their last snapshots. A zombie of
//! `host-a` then tries to save under its old epoch and is refused
//! (`StaleEpoch`).
//!
//! At the end every actor is deactivated and read back: the counters must
//! add up to every message processed, less those `host-a` processed after
//! its last snapshot and lost in the crash — an actor's state since its last
//! snapshot is what a crash may cost, never more, never something else.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use leasehold_config::ActorManagementConfig;
use leasehold_core::async_store::AsyncStore;
use leasehold_core::{
    Acquire, ActorKey, Clock, NodeId, SnapshotWrite, StoreError, SystemClock, Timestamp,
};
use tokio::sync::{mpsc, oneshot};

use crate::engines::BenchStore;
use crate::{Error, Result};

type Store = AsyncStore<dyn BenchStore>;

/// How a host run goes: the lease, snapshot and idle times of the seed's
/// `[actor_management]`, the length of the run and its traffic.
#[derive(Clone, Debug)]
pub struct HostPlan {
    pub lease: Duration,
    pub snapshot_interval: Duration,
    pub idle_timeout: Duration,
    pub run: Duration,
    /// When `host-a` crashes.
    pub crash_at: Duration,
    pub actors: u32,
    pub messages_per_second: u32,
}

impl HostPlan {
    pub fn from_config(config: &ActorManagementConfig, run: Duration) -> HostPlan {
        HostPlan {
            lease: Duration::from_secs(config.lease_duration_seconds.max(1)),
            snapshot_interval: Duration::from_secs(config.snapshot_interval_seconds.max(1)),
            idle_timeout: Duration::from_secs(config.idle_timeout_seconds.max(1)),
            run,
            crash_at: run / 3,
            actors: 12,
            messages_per_second: 200,
        }
    }
}

/// What happened, counted; `events` tells it in order.
#[derive(Clone, Debug, Default)]
pub struct HostReport {
    pub processed: u64,
    pub activations: u64,
    pub takeovers: u64,
    pub deactivations: u64,
    pub snapshots: u64,
    pub renewals: u64,
    /// Messages `host-a` processed after its actors' last snapshots.
    pub lost_in_crash: u64,
    /// Messages processed since the last snapshot of an actor a host lost
    /// by stalling past its lease (none on a healthy machine).
    pub lost_in_stalls: u64,
    /// The sum of every actor's counter before the run (a store that ran
    /// the example before).
    pub initial_total: u64,
    pub zombie_saves_refused: u64,
    /// The sum of every actor's counter, read back at the end.
    pub final_total: u64,
    pub events: Vec<String>,
}

struct Active {
    epoch: u64,
    version: u64,
    counter: u64,
    saved_counter: u64,
    last_message: Instant,
    last_snapshot: Instant,
    last_renewal: Instant,
}

/// What a crashed host leaves: the messages it processed since its actors'
/// snapshots, and one actor's epoch and version for its zombie to use.
struct Crashed {
    lost: u64,
    zombie: Option<(ActorKey, u64, u64)>,
}

enum Message {
    Deliver(ActorKey),
    /// Stop at once, as a crash would.
    Crash(oneshot::Sender<Crashed>),
    /// Deactivate everything, then stop.
    Shutdown(oneshot::Sender<()>),
}

fn now() -> Timestamp {
    SystemClock.now()
}

fn counter_key(index: u32) -> ActorKey {
    ActorKey::new("Counter", format!("counter-{index:02}"))
}

fn counter_of(state: &[u8]) -> u64 {
    std::str::from_utf8(state)
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(0)
}

struct Host {
    node: NodeId,
    store: Store,
    plan: HostPlan,
    actors: HashMap<ActorKey, Active>,
    /// Messages for actors another node still holds: retried each tick.
    waiting: VecDeque<ActorKey>,
    /// Actors the crashed host held: activating one is a takeover.
    orphans: Arc<parking_lot::Mutex<Vec<ActorKey>>>,
    report: Arc<parking_lot::Mutex<HostReport>>,
}

impl Host {
    fn event(&self, text: String) {
        self.report
            .lock()
            .events
            .push(format!("{}: {text}", self.node));
    }

    /// Processes a message, activating its actor first if need be; `false`
    /// when another node holds it (the message waits).
    async fn deliver(&mut self, key: &ActorKey) -> Result<bool, StoreError> {
        if !self.actors.contains_key(key) {
            let epoch = match self
                .store
                .try_acquire(key.clone(), self.node.clone(), self.plan.lease, now())
                .await?
            {
                Acquire::Acquired(lease) => lease.epoch,
                Acquire::Held { .. } => return Ok(false),
            };
            let loaded = self.store.load(key.clone(), now()).await?;
            let (version, counter) = loaded.map_or((0, 0), |snapshot| {
                (snapshot.version, counter_of(&snapshot.state))
            });
            let took_over = {
                let mut orphans = self.orphans.lock();
                let found = orphans.iter().position(|orphan| orphan == key);
                found.map(|index| orphans.remove(index)).is_some()
            };
            {
                let mut report = self.report.lock();
                report.activations += 1;
                report.takeovers += u64::from(took_over);
            }
            self.event(format!(
                "{} {key} at epoch {epoch} from snapshot version {version} (counter {counter})",
                if took_over { "took over" } else { "activated" }
            ));
            let at = Instant::now();
            self.actors.insert(
                key.clone(),
                Active {
                    epoch,
                    version,
                    counter,
                    saved_counter: counter,
                    last_message: at,
                    last_snapshot: at,
                    last_renewal: at,
                },
            );
        }
        if let Some(actor) = self.actors.get_mut(key) {
            actor.counter += 1;
            actor.last_message = Instant::now();
            self.report.lock().processed += 1;
        }
        Ok(true)
    }

    async fn snapshot(&mut self, key: &ActorKey) -> Result<(), StoreError> {
        let Some(actor) = self.actors.get(key) else {
            return Ok(());
        };
        if actor.counter == actor.saved_counter {
            return Ok(());
        }
        let (counter, version, epoch) = (actor.counter, actor.version, actor.epoch);
        let write = SnapshotWrite::new(key.clone(), counter.to_string().into_bytes());
        let saved = self.store.save(write, version, epoch, now()).await?;
        if let Some(actor) = self.actors.get_mut(key) {
            actor.version = saved.version;
            actor.saved_counter = counter;
            actor.last_snapshot = Instant::now();
        }
        self.report.lock().snapshots += 1;
        Ok(())
    }

    async fn deactivate(&mut self, key: &ActorKey) -> Result<(), StoreError> {
        self.snapshot(key).await?;
        if let Some(actor) = self.actors.remove(key) {
            self.store
                .release(key.clone(), self.node.clone(), actor.epoch)
                .await?;
            self.report.lock().deactivations += 1;
            self.event(format!(
                "deactivated {key} at version {} (counter {})",
                actor.version, actor.counter
            ));
        }
        Ok(())
    }

    /// Renewals, periodic snapshots, idle deactivations, waiting messages.
    async fn tick(&mut self) -> Result<(), StoreError> {
        let keys: Vec<ActorKey> = self.actors.keys().cloned().collect();
        for key in keys {
            let Some(actor) = self.actors.get(&key) else {
                continue;
            };
            let (idle, since_snapshot, since_renewal, epoch) = (
                actor.last_message.elapsed(),
                actor.last_snapshot.elapsed(),
                actor.last_renewal.elapsed(),
                actor.epoch,
            );
            if idle >= self.plan.idle_timeout {
                self.deactivate(&key).await?;
                continue;
            }
            if since_renewal >= self.plan.lease / 2 {
                match self
                    .store
                    .renew(key.clone(), self.node.clone(), epoch, now())
                    .await
                {
                    Ok(_) => {
                        if let Some(actor) = self.actors.get_mut(&key) {
                            actor.last_renewal = Instant::now();
                        }
                        self.report.lock().renewals += 1;
                    }
                    // Lost it (a stall past the lease): another node may
                    // own it now; this host lets it go unsaved.
                    Err(
                        err @ (StoreError::LeaseExpired { .. }
                        | StoreError::NotOwner { .. }
                        | StoreError::StaleEpoch { .. }),
                    ) => {
                        if let Some(actor) = self.actors.remove(&key) {
                            self.report.lock().lost_in_stalls +=
                                actor.counter - actor.saved_counter;
                        }
                        self.event(format!("lost {key}: {err}"));
                        continue;
                    }
                    Err(err) => return Err(err),
                }
            }
            if since_snapshot >= self.plan.snapshot_interval {
                self.snapshot(&key).await?;
            }
        }
        for _ in 0..self.waiting.len() {
            if let Some(key) = self.waiting.pop_front() {
                if !self.deliver(&key).await? {
                    self.waiting.push_back(key);
                }
            }
        }
        Ok(())
    }

    async fn run(mut self, mut inbox: mpsc::Receiver<Message>) -> Result<(), StoreError> {
        let mut ticks = tokio::time::interval(Duration::from_millis(50));
        loop {
            tokio::select! {
                message = inbox.recv() => match message {
                    Some(Message::Deliver(key)) => {
                        if !self.deliver(&key).await? {
                            self.waiting.push_back(key);
                        }
                    }
                    Some(Message::Crash(answer)) => {
                        let lost = self
                            .actors
                            .values()
                            .map(|actor| actor.counter - actor.saved_counter)
                            .sum();
                        let zombie = self
                            .actors
                            .iter()
                            .next()
                            .map(|(key, actor)| (key.clone(), actor.epoch, actor.version));
                        *self.orphans.lock() = self.actors.keys().cloned().collect();
                        self.event(format!(
                            "crashed holding {} actors, {lost} messages since their snapshots",
                            self.actors.len()
                        ));
                        let _ = answer.send(Crashed { lost, zombie });
                        return Ok(());
                    }
                    Some(Message::Shutdown(done)) => {
                        let keys: Vec<ActorKey> = self.actors.keys().cloned().collect();
                        for key in keys {
                            self.deactivate(&key).await?;
                        }
                        let _ = done.send(());
                        return Ok(());
                    }
                    None => return Ok(()),
                },
                _ = ticks.tick() => self.tick().await?,
            }
        }
    }
}

impl HostReport {
    /// The run's promise: every message processed is in the counters read
    /// back, less what the crash (and any stall) cost since a snapshot; a
    /// takeover happened and the zombie was fenced out.
    pub fn check(&self) -> Result<()> {
        let expected =
            self.initial_total + self.processed - self.lost_in_crash - self.lost_in_stalls;
        if self.final_total != expected {
            return Err(Error::Wrong(format!(
                "the counters add up to {}, not {expected} ({} before + {} processed - {} lost \
                 in the crash - {} lost in stalls)",
                self.final_total,
                self.initial_total,
                self.processed,
                self.lost_in_crash,
                self.lost_in_stalls
            )));
        }
        if self.takeovers == 0 || self.zombie_saves_refused != 1 {
            return Err(Error::Wrong(format!(
                "{} takeovers and {} zombie saves refused: the failover was not exercised",
                self.takeovers, self.zombie_saves_refused
            )));
        }
        Ok(())
    }
}

async fn total(store: &Store, actors: u32) -> Result<u64> {
    let mut total = 0;
    for index in 0..actors {
        let loaded = store.load(counter_key(index), now()).await?;
        total += loaded.map_or(0, |snapshot| counter_of(&snapshot.state));
    }
    Ok(total)
}

/// Runs two hosts over `store` as `plan` says and reads every actor back.
pub async fn run_hosts(store: Arc<dyn BenchStore>, plan: HostPlan) -> Result<HostReport> {
    let store: Store = AsyncStore::new(store);
    let initial_total = total(&store, plan.actors).await?;
    let report = Arc::new(parking_lot::Mutex::new(HostReport::default()));
    let orphans = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let mut inboxes = Vec::new();
    let mut tasks = Vec::new();
    for name in ["host-a", "host-b"] {
        let (sender, inbox) = mpsc::channel(1024);
        let host = Host {
            node: NodeId::new(name),
            store: store.clone(),
            plan: plan.clone(),
            actors: HashMap::new(),
            waiting: VecDeque::new(),
            orphans: Arc::clone(&orphans),
            report: Arc::clone(&report),
        };
        inboxes.push(sender);
        tasks.push(tokio::spawn(host.run(inbox)));
    }
    let started = Instant::now();
    let mut crashed = None;
    let mut sent = 0u64;
    let gap = Duration::from_secs(1) / plan.messages_per_second.max(1);
    // The actors messaged move on through the run (a window of a third of
    // them), so the ones left behind go idle and are deactivated.
    while started.elapsed() < plan.run {
        let elapsed = started.elapsed();
        let window = (plan.actors / 3).max(1);
        let shift =
            (elapsed.as_secs_f64() / plan.run.as_secs_f64() * f64::from(plan.actors)) as u32;
        let index = (shift + (sent % u64::from(window)) as u32) % plan.actors;
        if crashed.is_none() && elapsed >= plan.crash_at {
            let (answer, answered) = oneshot::channel();
            inboxes[0]
                .send(Message::Crash(answer))
                .await
                .map_err(|_| Error::Thread("host-a stopped early".to_owned()))?;
            crashed = Some(
                answered
                    .await
                    .map_err(|_| Error::Thread("host-a did not answer".to_owned()))?,
            );
        }
        // Each actor's messages go to one host: host-b takes all of them
        // once host-a is gone.
        let host = if crashed.is_some() {
            1
        } else {
            (index % 2) as usize
        };
        inboxes[host]
            .send(Message::Deliver(counter_key(index)))
            .await
            .map_err(|_| Error::Thread("a host stopped early".to_owned()))?;
        sent += 1;
        tokio::time::sleep(gap).await;
    }
    let (lost, zombie) = crashed.map_or((0, None), |crashed| (crashed.lost, crashed.zombie));
    // The zombie: host-a's old epoch, after host-b took that actor over.
    if let Some((key, epoch, version)) = zombie {
        inboxes[1]
            .send(Message::Deliver(key.clone()))
            .await
            .map_err(|_| Error::Thread("host-b stopped early".to_owned()))?;
        let deadline = Instant::now() + plan.lease * 3;
        while store
            .get_lease(key.clone())
            .await?
            .is_none_or(|lease| lease.epoch <= epoch)
        {
            if Instant::now() > deadline {
                return Err(Error::Wrong(format!("host-b never took {key} over")));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let write = SnapshotWrite::new(key.clone(), &b"999999"[..]);
        match store.save(write, version, epoch, now()).await {
            Err(StoreError::StaleEpoch { given, current, .. }) => {
                let mut report = report.lock();
                report.zombie_saves_refused += 1;
                report.events.push(format!(
                    "zombie host-a: save of {key} under epoch {given} refused (current {current})"
                ));
            }
            other => {
                return Err(Error::Wrong(format!(
                    "the zombie's save of {key} was not fenced: {other:?}"
                )))
            }
        }
    }
    let (done, finished) = oneshot::channel();
    inboxes[1]
        .send(Message::Shutdown(done))
        .await
        .map_err(|_| Error::Thread("host-b stopped early".to_owned()))?;
    finished
        .await
        .map_err(|_| Error::Thread("host-b did not shut down".to_owned()))?;
    for task in tasks {
        task.await
            .map_err(|err| Error::Thread(format!("a host panicked: {err}")))??;
    }
    let mut report = report.lock().clone();
    report.lost_in_crash = lost;
    report.initial_total = initial_total;
    report.final_total = total(&store, plan.actors).await?;
    store.close().await?;
    Ok(report)
}

/// Opens the store `config` names (the seed's TOML, at its `durability`)
/// and runs the hosts on it for `run` on a tokio runtime of their own.
pub fn run_from_config(config: &std::path::Path, run: Duration) -> Result<HostReport> {
    let parsed = leasehold_config::Config::from_file(config)?;
    let target = crate::operator::Target::of_config(parsed.persistence, config)?;
    let store: Arc<dyn BenchStore> = Arc::from(target.open(parsed.durability)?);
    let plan = HostPlan::from_config(&parsed.actor_management, run);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(Error::os("start tokio"))?;
    runtime.block_on(run_hosts(store, plan))
}
