//! Where a benchmark's requests go: straight to the key-value engine, or
//! through the Store as an actor runtime would call it.

use std::ops::{Bound, ControlFlow};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use leasehold_core::kv::{KeyRange, WriteBatch};
use leasehold_core::{
    Acquire, ActorKey, CommitOp, Durability, KvEngine, NodeId, SnapshotWrite, StoreError, Timestamp,
};
use leasehold_workloads::state::StatePool;

use super::workload::{key, missing_key, Request, Workload};
use crate::engines::BenchStore;
use crate::{Error, Result};

/// The level a benchmark runs at.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// `KvEngine` get / write / scan: what db_bench and YCSB measure of a
    /// key-value store.
    Kv,
    /// The Store: a record is an actor, a read a `load`, a write a `save`
    /// under the actor's lease (acquired at its first write), a scan a `list`
    /// of the actor type its record belongs to (records are grouped
    /// `STORE_GROUP` to a type); YCSB D's reads of the latest records are
    /// lease renewals.
    Store,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Kv => "kv",
            Level::Store => "store",
        }
    }
}

/// Records per actor type at the Store level: YCSB E's scan lists one type.
pub const STORE_GROUP: u64 = 50;
/// The Store level's leases outlast any benchmark.
const LEASE: Duration = Duration::from_secs(24 * 3600);
/// The Store level's clock: fixed, so nothing expires.
const NOW_MS: u64 = 1_000_000;
/// Tries of a save that lost a version race to another benchmark thread.
const SAVE_TRIES: usize = 8;

/// What a request did: for reads, whether the record was there.
pub type Served = Result<bool>;

/// The values a suite writes.
#[derive(Clone, Copy, Debug)]
pub struct Values {
    pub bytes: u32,
    /// About the fraction of its length a value compresses to (db_bench's
    /// `--compression_ratio`): a random run of that share of the value,
    /// repeated to its length. 1.0: all random.
    pub compressible_to: f64,
}

impl Values {
    /// YCSB's records: 1000 random bytes.
    pub const YCSB: Values = Values {
        bytes: 1000,
        compressible_to: 1.0,
    };
}

pub struct Target<'a> {
    store: &'a dyn BenchStore,
    level: Level,
    workload: Workload,
    values: Values,
    pool: StatePool,
    /// One bit per record: written at least once (the logical bytes).
    written: Vec<AtomicU64>,
    /// Per record at the Store level: the version saved last and the epoch
    /// of the lease held (0: none yet).
    versions: Vec<AtomicU64>,
    epochs: Vec<AtomicU64>,
    writes: AtomicU64,
    node: NodeId,
    /// KV-level writes synced (`--sync`), else buffered.
    kv_sync: bool,
}

impl<'a> Target<'a> {
    /// A target for records numbered below `capacity`.
    pub fn new(
        store: &'a dyn BenchStore,
        level: Level,
        workload: Workload,
        values: Values,
        capacity: u64,
    ) -> Target<'a> {
        let slots = if level == Level::Store {
            capacity as usize
        } else {
            0
        };
        Target {
            store,
            level,
            workload,
            values,
            pool: StatePool::new(7, values.bytes),
            written: (0..capacity.div_ceil(64))
                .map(|_| AtomicU64::new(0))
                .collect(),
            versions: (0..slots).map(|_| AtomicU64::new(0)).collect(),
            epochs: (0..slots).map(|_| AtomicU64::new(0)).collect(),
            writes: AtomicU64::new(0),
            node: NodeId::new("bench"),
            kv_sync: false,
        }
    }

    /// KV-level writes synced (`--sync`) instead of buffered. (Store-level
    /// writes have the store's durability.)
    pub fn syncing(mut self, sync: bool) -> Target<'a> {
        self.kv_sync = sync;
        self
    }

    fn kv_durability(&self) -> Durability {
        if self.kv_sync {
            Durability::Sync
        } else {
            Durability::Buffered
        }
    }

    /// The same records, asked by another workload of the same suite.
    pub fn set_workload(&mut self, workload: Workload) {
        debug_assert_eq!(workload.is_ycsb(), self.workload.is_ycsb());
        self.workload = workload;
    }

    /// Key and value bytes of every record written at least once: what the
    /// engine holds for its user.
    pub fn logical_bytes(&self) -> u64 {
        let records: u64 = self
            .written
            .iter()
            .map(|word| u64::from(word.load(Ordering::Relaxed).count_ones()))
            .sum();
        let key_len = key(self.workload, 0).len() as u64;
        records * (key_len + u64::from(self.values.bytes))
    }

    fn mark_written(&self, record: u64) {
        if let Some(word) = self.written.get((record / 64) as usize) {
            word.fetch_or(1 << (record % 64), Ordering::Relaxed);
        }
    }

    /// "lsm at the kv level".
    pub fn describe(&self) -> String {
        format!("{} at the {:?} level", self.store.name(), self.level).to_lowercase()
    }

    /// Serves one request.
    pub fn serve(&self, request: Request) -> Served {
        match (self.level, request) {
            (Level::Kv, Request::Read(record)) => self.kv_get(&key(self.workload, record)),
            (Level::Kv, Request::ReadMissing(record)) => {
                self.kv_get(&missing_key(self.workload, record))
            }
            (Level::Kv, Request::Write { record, sync }) => self.kv_put(record, sync),
            (Level::Kv, Request::Insert(record)) => self.kv_put(record, false),
            (Level::Kv, Request::Scan { record, len }) => self.kv_scan(record, len),
            (Level::Kv, Request::ReadModifyWrite(record)) => {
                self.kv_get(&key(self.workload, record))?;
                self.kv_put(record, false)
            }
            (Level::Kv, Request::Transfer(from, to)) => self.kv_transfer(from, to),
            (Level::Store, Request::Read(record)) if self.workload == Workload::YcsbD => {
                self.renew(record)
            }
            (Level::Store, Request::Read(record)) => self.load(&self.actor(record)),
            (Level::Store, Request::ReadMissing(record)) => self.load(&self.missing_actor(record)),
            (Level::Store, Request::Write { record, .. } | Request::Insert(record)) => {
                self.save(record)
            }
            (Level::Store, Request::Scan { record, .. }) => self.list(record),
            (Level::Store, Request::ReadModifyWrite(record)) => {
                self.load(&self.actor(record))?;
                self.save(record)
            }
            (Level::Store, Request::Transfer(from, to)) => self.transfer(from, to),
        }
    }

    /// The key-value engine's counters now, if the store has one.
    pub(super) fn engine_stats(&self) -> Option<leasehold_core::kv::EngineStats> {
        self.store.kv_engine().map(|engine| engine.stats())
    }

    fn engine(&self) -> Result<&dyn KvEngine> {
        self.store
            .kv_engine()
            .ok_or_else(|| Error::usage("this store has no key-value engine to benchmark"))
    }

    fn value(&self, record: u64) -> bytes::Bytes {
        self.mark_written(record);
        let write = self.writes.fetch_add(1, Ordering::Relaxed);
        let len = self.values.bytes;
        let random = ((f64::from(len) * self.values.compressible_to).ceil() as u32).clamp(1, len);
        let run = self.pool.state(record as u32, write, random);
        if random == len {
            return run;
        }
        let mut value = Vec::with_capacity(len as usize);
        while value.len() < len as usize {
            let take = run.len().min(len as usize - value.len());
            value.extend_from_slice(&run[..take]);
        }
        bytes::Bytes::from(value)
    }

    fn kv_get(&self, key: &[u8]) -> Served {
        let found = self.engine()?.get(key)?;
        Ok(found.is_some())
    }

    fn kv_put(&self, record: u64, sync: bool) -> Served {
        let mut batch = WriteBatch::new();
        batch.put(key(self.workload, record), self.value(record));
        let durability = if sync {
            Durability::Sync
        } else {
            self.kv_durability()
        };
        self.engine()?.write(batch, durability)?;
        Ok(true)
    }

    /// Both records read, then written in one batch.
    fn kv_transfer(&self, from: u64, to: u64) -> Served {
        let engine = self.engine()?;
        let mut batch = WriteBatch::new();
        for record in [from, to] {
            let key = key(self.workload, record);
            engine.get(&key)?;
            batch.put(key, self.value(record));
        }
        engine.write(batch, self.kv_durability())?;
        Ok(true)
    }

    fn kv_scan(&self, record: u64, len: usize) -> Served {
        let range = KeyRange {
            start: Bound::Included(key(self.workload, record)),
            end: Bound::Unbounded,
        };
        let mut seen = 0;
        self.engine()?.scan(&range, &mut |_, _| {
            seen += 1;
            if seen >= len {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })?;
        Ok(seen > 0)
    }

    fn actor(&self, record: u64) -> ActorKey {
        let id = String::from_utf8_lossy(&key(self.workload, record)).into_owned();
        ActorKey::new(format!("g{:06}", record / STORE_GROUP), id)
    }

    /// An actor of `record`'s type that was never saved.
    fn missing_actor(&self, record: u64) -> ActorKey {
        let id = String::from_utf8_lossy(&missing_key(self.workload, record)).into_owned();
        ActorKey::new(format!("g{:06}", record / STORE_GROUP), id)
    }

    fn now() -> Timestamp {
        Timestamp::from_millis(NOW_MS)
    }

    fn slot(&self, record: u64) -> Result<usize> {
        let slot = record as usize;
        if slot >= self.versions.len() {
            return Err(Error::Usage(format!(
                "record {record} is beyond the benchmark's {}",
                self.versions.len()
            )));
        }
        Ok(slot)
    }

    fn load(&self, actor: &ActorKey) -> Served {
        let loaded = self.store.load(actor, Self::now())?;
        Ok(loaded.is_some())
    }

    fn list(&self, record: u64) -> Served {
        let actor = self.actor(record);
        let listed = self.store.list(&actor.actor_type, Self::now())?;
        Ok(!listed.is_empty())
    }

    fn renew(&self, record: u64) -> Served {
        let slot = self.slot(record)?;
        let epoch = self.epochs[slot].load(Ordering::Acquire);
        if epoch == 0 {
            // Never written: nothing to renew, as a read would find nothing.
            return Ok(false);
        }
        self.store
            .renew(&self.actor(record), &self.node, epoch, Self::now())?;
        Ok(true)
    }

    /// The epoch of `record`'s lease, acquired if this is its first write.
    fn lease_epoch(&self, slot: usize, actor: &ActorKey) -> Result<u64> {
        let mut epoch = self.epochs[slot].load(Ordering::Acquire);
        if epoch == 0 {
            match self
                .store
                .try_acquire(actor, &self.node, LEASE, Self::now())?
            {
                Acquire::Acquired(lease) => {
                    epoch = lease.epoch;
                    self.epochs[slot].store(epoch, Ordering::Release);
                }
                Acquire::Held { .. } => {
                    // Another thread of this node is acquiring it: use its lease.
                    epoch = self.store.get_lease(actor)?.map_or(0, |lease| lease.epoch);
                }
            }
        }
        Ok(epoch)
    }

    /// Saves a new version under the record's lease (acquired first if this
    /// is its first write); a version race lost to another thread reloads
    /// and tries again.
    fn save(&self, record: u64) -> Served {
        let slot = self.slot(record)?;
        let actor = self.actor(record);
        let epoch = self.lease_epoch(slot, &actor)?;
        for _ in 0..SAVE_TRIES {
            let version = self.versions[slot].load(Ordering::Acquire);
            let write = SnapshotWrite::new(actor.clone(), self.value(record));
            match self.store.save(write, version, epoch, Self::now()) {
                Ok(snapshot) => {
                    self.versions[slot].fetch_max(snapshot.version, Ordering::AcqRel);
                    return Ok(true);
                }
                Err(StoreError::VersionConflict { .. }) => {
                    let current = self
                        .store
                        .load(&actor, Self::now())?
                        .map_or(0, |snapshot| snapshot.version);
                    self.versions[slot].fetch_max(current, Ordering::AcqRel);
                }
                Err(err) => return Err(err.into()),
            }
        }
        Err(Error::Starved(format!(
            "record {record}: {SAVE_TRIES} saves in a row lost a version race"
        )))
    }

    /// Both records loaded, then saved together by one two-actor `commit`
    /// under their leases; a version race lost to another thread reloads
    /// both and tries again.
    fn transfer(&self, from: u64, to: u64) -> Served {
        let records = [from, to];
        let mut parts = Vec::with_capacity(2);
        for record in records {
            let slot = self.slot(record)?;
            let actor = self.actor(record);
            let epoch = self.lease_epoch(slot, &actor)?;
            self.load(&actor)?;
            parts.push((slot, actor, epoch));
        }
        for _ in 0..SAVE_TRIES {
            let ops = parts
                .iter()
                .zip(records)
                .map(|((slot, actor, epoch), record)| CommitOp::Save {
                    snapshot: SnapshotWrite::new(actor.clone(), self.value(record)),
                    expected_version: self.versions[*slot].load(Ordering::Acquire),
                    fence_epoch: *epoch,
                })
                .collect();
            match self.store.commit(ops, Self::now()) {
                Ok(saved) => {
                    for ((slot, ..), snapshot) in parts.iter().zip(saved.iter().flatten()) {
                        self.versions[*slot].fetch_max(snapshot.version, Ordering::AcqRel);
                    }
                    return Ok(true);
                }
                Err(StoreError::VersionConflict { .. }) => {
                    for (slot, actor, _) in &parts {
                        let current = self
                            .store
                            .load(actor, Self::now())?
                            .map_or(0, |snapshot| snapshot.version);
                        self.versions[*slot].fetch_max(current, Ordering::AcqRel);
                    }
                }
                Err(err) => return Err(err.into()),
            }
        }
        Err(Error::Starved(format!(
            "records {from} and {to}: {SAVE_TRIES} commits in a row lost a version race"
        )))
    }
}
