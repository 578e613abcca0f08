//! `KvStore<E>`: the one generic adapter that gives any `KvEngine` the `Store`
//! semantics.
//!
//! Key layout in the engine (one byte of record kind, then the actor key's
//! order-preserving encoding):
//! ```text
//! 'L' ActorKey::encode()  -> Lease::encode()
//! 'S' ActorKey::encode()  -> Snapshot::encode()
//! ```
//! Written to disk — do not change.
//!
//! Concurrency: every read-check-write of one actor runs under that actor's
//! stripe lock (a fixed array of mutexes indexed by a hash of the key), so the
//! check and the write are atomic with respect to other writers of the same
//! actor. `commit` takes the stripes of all its actors in ascending index order
//! (no deadlock) and writes one batch. Reads take no lock: the engine's reads
//! see whole batches.
//!
//! Durability: every write goes with the store's durability, except a lease
//! grant, which is always fsynced before it is acknowledged (`write_grant`).

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::{Mutex, MutexGuard};

use crate::codec::fnv1a;
use crate::error::{StoreError, StoreResult};
use crate::expiry::ExpiryClock;
use crate::instrumented::Instrumented;
use crate::key::{type_prefix, ActorKey};
use crate::kv::{Durability, Health, KeyRange, KvEngine, WriteBatch};
use crate::lease::{Lease, NodeId};
use crate::metrics::{OpKind, StoreMetrics};
use crate::rules;
use crate::snapshot::{Snapshot, SnapshotWrite};
use crate::store::{distinct_keys, Acquire, CommitOp, LeaseFilter, SnapshotInfo, Store};
use crate::time::Timestamp;

const LEASE_TAG: u8 = b'L';
pub(crate) const SNAPSHOT_TAG: u8 = b'S';

/// Stripes of the per-actor lock; a power of two.
const LOCK_STRIPES: usize = 1024;

/// The engine key of `key`'s lease.
pub fn lease_key(key: &ActorKey) -> Vec<u8> {
    tagged(LEASE_TAG, &key.encode())
}

/// The engine key of `key`'s snapshot.
pub fn snapshot_key(key: &ActorKey) -> Vec<u8> {
    tagged(SNAPSHOT_TAG, &key.encode())
}

fn tagged(tag: u8, encoded: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded.len() + 1);
    out.push(tag);
    out.extend_from_slice(encoded);
    out
}

/// A decoded engine key, for tools that walk an engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordKey {
    Lease(ActorKey),
    Snapshot(ActorKey),
}

impl RecordKey {
    pub fn decode(engine_key: &[u8]) -> Option<RecordKey> {
        let (&tag, rest) = engine_key.split_first()?;
        let key = ActorKey::decode(rest).ok()?;
        match tag {
            LEASE_TAG => Some(RecordKey::Lease(key)),
            SNAPSHOT_TAG => Some(RecordKey::Snapshot(key)),
            _ => None,
        }
    }
}

/// For engines that drop entries while compacting: true for a snapshot record
/// whose TTL ran out at `now`. Such a record is already invisible to `load`,
/// `list` and the next `save`; an engine may drop it where no older version
/// could resurface (an LSM's bottom level) to reclaim its space. Only the
/// fields up to the TTL are decoded, not the tags or state.
pub fn is_expired_snapshot_record(engine_key: &[u8], value: &[u8], now: Timestamp) -> bool {
    engine_key.first() == Some(&SNAPSHOT_TAG)
        && Snapshot::expires_at_of_prefix(value)
            .is_ok_and(|expires_at| crate::snapshot::expired(expires_at, now))
}

pub struct KvStore<E: KvEngine> {
    engine: E,
    durability: Durability,
    stripes: Box<[Mutex<()>]>,
    metrics: Instrumented,
    /// Told the time of every operation, for the engine's compaction filter.
    expiry: Option<ExpiryClock>,
}

fn stripe_of(encoded_key: &[u8]) -> usize {
    (fnv1a(encoded_key) as usize) & (LOCK_STRIPES - 1)
}

impl<E: KvEngine> KvStore<E> {
    /// Every write goes to `engine` with `durability`.
    pub fn new(engine: E, durability: Durability) -> Self {
        KvStore {
            engine,
            durability,
            stripes: (0..LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
            metrics: Instrumented::default(),
            expiry: None,
        }
    }

    /// Tells `clock` the time of every operation: the engine was opened with a
    /// compaction filter asking it (`ExpiryClock::may_drop`).
    pub fn with_expiry_clock(mut self, clock: ExpiryClock) -> Self {
        self.expiry = Some(clock);
        self
    }

    fn observe(&self, now: Timestamp) {
        if let Some(clock) = &self.expiry {
            clock.observe(now);
        }
    }

    pub fn engine(&self) -> &E {
        &self.engine
    }

    pub fn durability(&self) -> Durability {
        self.durability
    }

    fn lock(&self, key: &ActorKey) -> MutexGuard<'_, ()> {
        self.stripes[stripe_of(&key.encode())].lock()
    }

    fn read_lease(&self, key: &ActorKey) -> StoreResult<Option<Lease>> {
        let engine_key = lease_key(key);
        match self.engine.get(&engine_key)? {
            None => Ok(None),
            Some(bytes) => {
                Lease::decode(&bytes)
                    .map(Some)
                    .map_err(|err| StoreError::CorruptRecord {
                        key: format!("lease {key}"),
                        reason: err.to_string(),
                    })
            }
        }
    }

    fn read_snapshot(&self, key: &ActorKey) -> StoreResult<Option<Snapshot>> {
        match self.engine.get(&snapshot_key(key))? {
            None => Ok(None),
            // The engine's copy becomes the state's buffer: no second copy.
            Some(bytes) => decode_snapshot(key, Bytes::from(bytes)).map(Some),
        }
    }

    fn write(&self, batch: WriteBatch) -> StoreResult<()> {
        self.engine.write(batch, self.durability)?;
        Ok(())
    }

    /// A lease grant (a new epoch) is durable before it is acknowledged,
    /// whatever the store's durability: epochs come from the stored lease, so
    /// a grant a crash rolled back would be issued again — the same fencing
    /// token to two owners, and fencing could no longer tell their writes
    /// apart. A volatile engine keeps nothing across a restart, epochs
    /// included; it writes the grant as it writes everything.
    fn write_grant(&self, batch: WriteBatch) -> StoreResult<()> {
        let durability = if self.engine.persists() {
            Durability::Sync
        } else {
            self.durability
        };
        self.engine.write(batch, durability)?;
        Ok(())
    }

    fn scan_prefix(
        &self,
        prefix: &[u8],
        mut visit: impl FnMut(&[u8], &[u8]) -> StoreResult<()>,
    ) -> StoreResult<()> {
        let mut failure = None;
        self.engine.scan(
            &KeyRange::prefix(prefix),
            &mut |key, value| match visit(key, value) {
                Ok(()) => ControlFlow::Continue(()),
                Err(err) => {
                    failure = Some(err);
                    ControlFlow::Break(())
                }
            },
        )?;
        failure.map_or(Ok(()), Err)
    }

    /// Saves and deletes, checked and written as one batch under the stripe
    /// locks of every actor named (taken in ascending order): `save`, `delete`
    /// and `commit` all come here. A delete of nothing writes nothing.
    fn apply_ops(&self, ops: Vec<CommitOp>, now: Timestamp) -> StoreResult<Vec<Option<Snapshot>>> {
        self.observe(now);
        let keys = distinct_keys(&ops)?;
        let mut stripes: Vec<usize> = keys.iter().map(|key| stripe_of(&key.encode())).collect();
        stripes.sort_unstable();
        stripes.dedup();
        let _guards: Vec<MutexGuard<'_, ()>> = stripes
            .iter()
            .map(|&stripe| self.stripes[stripe].lock())
            .collect();

        let mut batch = WriteBatch::new();
        let mut results = Vec::with_capacity(ops.len());
        for op in ops {
            let key = op.key().clone();
            let lease = self.read_lease(&key)?;
            let stored = self.read_snapshot(&key)?;
            let decided = rules::decide(&op, lease.as_ref(), stored.as_ref(), now)?;
            match &decided {
                Some(snapshot) => {
                    batch.put(snapshot_key(&key), snapshot.encode());
                }
                // A delete of nothing writes nothing.
                None if stored.is_some() => {
                    batch.delete(snapshot_key(&key));
                }
                None => {}
            }
            results.push(decided);
        }
        if !batch.is_empty() {
            self.write(batch)?;
        }
        self.metrics.add_saved(&results);
        Ok(results)
    }
}

fn decode_snapshot(key: &ActorKey, bytes: Bytes) -> StoreResult<Snapshot> {
    Snapshot::decode_shared(bytes).map_err(|err| StoreError::CorruptRecord {
        key: format!("snapshot {key}"),
        reason: err.to_string(),
    })
}

impl<E: KvEngine> Store for KvStore<E> {
    fn name(&self) -> &str {
        self.engine.name()
    }

    fn try_acquire_with_metadata(
        &self,
        key: &ActorKey,
        node: &NodeId,
        duration: Duration,
        metadata: BTreeMap<String, String>,
        now: Timestamp,
    ) -> StoreResult<Acquire> {
        self.observe(now);
        self.metrics.timed_acquire(|| {
            let _guard = self.lock(key);
            let existing = self.read_lease(key)?;
            let decision = rules::acquire(existing.as_ref(), key, node, duration, metadata, now)?;
            let lease = match decision.into_write() {
                std::ops::ControlFlow::Continue(lease) => lease,
                std::ops::ControlFlow::Break(answer) => return Ok(answer),
            };
            let mut batch = WriteBatch::new();
            batch.put(lease_key(key), lease.encode());
            self.write_grant(batch)?;
            Ok(Acquire::Acquired(lease))
        })
    }

    fn renew(
        &self,
        key: &ActorKey,
        node: &NodeId,
        epoch: u64,
        now: Timestamp,
    ) -> StoreResult<Lease> {
        self.observe(now);
        self.metrics.timed(OpKind::Renew, || {
            let _guard = self.lock(key);
            let lease = rules::renew(self.read_lease(key)?.as_ref(), key, node, epoch, now)?;
            let mut batch = WriteBatch::new();
            batch.put(lease_key(key), lease.encode());
            self.write(batch)?;
            Ok(lease)
        })
    }

    fn release(&self, key: &ActorKey, node: &NodeId, epoch: u64) -> StoreResult<Lease> {
        self.metrics.timed(OpKind::Release, || {
            let _guard = self.lock(key);
            let lease = rules::release(self.read_lease(key)?.as_ref(), key, node, epoch)?;
            let mut batch = WriteBatch::new();
            batch.put(lease_key(key), lease.encode());
            self.write(batch)?;
            Ok(lease)
        })
    }

    fn get_lease(&self, key: &ActorKey) -> StoreResult<Option<Lease>> {
        self.metrics
            .timed(OpKind::GetLease, || self.read_lease(key))
    }

    fn list_leases(&self, filter: &LeaseFilter) -> StoreResult<Vec<Lease>> {
        self.metrics.timed(OpKind::ListLeases, || {
            let mut prefix = vec![LEASE_TAG];
            if let Some(actor_type) = &filter.actor_type {
                prefix.extend_from_slice(&type_prefix(actor_type));
            }
            let mut leases = Vec::new();
            self.scan_prefix(&prefix, |engine_key, value| {
                let lease = Lease::decode(value).map_err(|err| StoreError::CorruptRecord {
                    key: format!("lease record {engine_key:?}"),
                    reason: err.to_string(),
                })?;
                if filter.matches(&lease) {
                    leases.push(lease);
                }
                Ok(())
            })?;
            Ok(leases)
        })
    }

    fn load(&self, key: &ActorKey, now: Timestamp) -> StoreResult<Option<Snapshot>> {
        self.observe(now);
        self.metrics.timed(OpKind::Load, || {
            let loaded = rules::load(self.read_snapshot(key)?, now)?;
            Ok(self.metrics.loaded(loaded))
        })
    }

    fn save(
        &self,
        write: SnapshotWrite,
        expected_version: u64,
        fence_epoch: u64,
        now: Timestamp,
    ) -> StoreResult<Snapshot> {
        self.metrics
            .save_alone(write, expected_version, fence_epoch, |op| {
                self.apply_ops(vec![op], now)
            })
    }

    fn delete(
        &self,
        key: &ActorKey,
        expected_version: u64,
        fence_epoch: u64,
        now: Timestamp,
    ) -> StoreResult<()> {
        self.metrics
            .delete_alone(key, expected_version, fence_epoch, |op| {
                self.apply_ops(vec![op], now)
            })
    }

    fn list(&self, actor_type: &str, now: Timestamp) -> StoreResult<Vec<SnapshotInfo>> {
        self.observe(now);
        self.metrics.timed(OpKind::List, || {
            let mut prefix = vec![SNAPSHOT_TAG];
            prefix.extend_from_slice(&type_prefix(actor_type));
            let mut infos = Vec::new();
            self.scan_prefix(&prefix, |engine_key, value| {
                let info =
                    Snapshot::decode_info(value).map_err(|err| StoreError::CorruptRecord {
                        key: format!("snapshot record {engine_key:?}"),
                        reason: err.to_string(),
                    })?;
                if !info.is_expired_at(now) {
                    infos.push(info);
                }
                Ok(())
            })?;
            Ok(infos)
        })
    }

    fn purge_expired(&self, now: Timestamp) -> StoreResult<u64> {
        self.observe(now);
        self.metrics.timed(OpKind::PurgeExpired, || {
            let mut candidates = Vec::new();
            self.scan_prefix(&[SNAPSHOT_TAG], |engine_key, value| {
                // A record that does not decode is left for `verify` to report.
                if let Ok(info) = Snapshot::decode_info(value) {
                    if info.is_expired_at(now) {
                        candidates.push((engine_key.to_vec(), info.key));
                    }
                }
                Ok(())
            })?;
            let mut purged = 0;
            for (engine_key, key) in candidates {
                // Re-check under the lock: a save may have replaced it since the scan.
                let _guard = self.lock(&key);
                if self
                    .read_snapshot(&key)?
                    .is_some_and(|snapshot| snapshot.is_expired_at(now))
                {
                    let mut batch = WriteBatch::new();
                    batch.delete(engine_key);
                    self.write(batch)?;
                    purged += 1;
                }
            }
            Ok(purged)
        })
    }

    fn commit(&self, ops: Vec<CommitOp>, now: Timestamp) -> StoreResult<Vec<Option<Snapshot>>> {
        self.metrics
            .timed(OpKind::Commit, || self.apply_ops(ops, now))
    }

    fn metrics(&self) -> StoreMetrics {
        self.metrics.snapshot(Some(self.engine.stats()))
    }

    fn health(&self) -> Health {
        if let Some(closed) = self.metrics.closed_health() {
            return closed;
        }
        self.engine.health()
    }

    fn sync(&self) -> StoreResult<()> {
        self.metrics.check_open()?;
        self.engine.flush()?;
        Ok(())
    }

    fn close(&self) -> StoreResult<()> {
        if !self.metrics.close() {
            return Ok(());
        }
        self.engine.close()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_keys_decode_back_and_leases_sort_apart_from_snapshots() {
        let key = ActorKey::new("User", "u1");
        assert_eq!(
            RecordKey::decode(&lease_key(&key)),
            Some(RecordKey::Lease(key.clone()))
        );
        assert_eq!(
            RecordKey::decode(&snapshot_key(&key)),
            Some(RecordKey::Snapshot(key.clone()))
        );
        assert_eq!(RecordKey::decode(b"X"), None);
        assert!(lease_key(&key) < snapshot_key(&ActorKey::new("", "")));
    }

    #[test]
    fn stripes_stay_in_range() {
        for id in 0..10_000 {
            assert!(stripe_of(&ActorKey::new("T", id.to_string()).encode()) < LOCK_STRIPES);
        }
    }
}
