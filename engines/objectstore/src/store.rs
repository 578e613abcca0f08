//! `ObjectStoreBackend`: the `Store` on object storage. No lock is held
//! anywhere but in the server: every write is a conditional PUT over what was
//! just read, and a refused condition means "somebody else wrote first" — read
//! again and decide again with the same rules (`leasehold_core::rules`).
//!
//! The protocol, per actor (FORMAT.md has the objects):
//! - acquire: read the lease; if the rules grant it, PUT it create-only (no
//!   lease yet) or `If-Match` the ETag read. Taking over a lease whose holder
//!   never released it first *fences* the snapshot object: it is rewritten
//!   (`If-Match`) with the new epoch as its fence, so a save the old holder
//!   decided before the takeover but sends after it fails its `If-Match`, reads
//!   again, and meets the fence as `StaleEpoch`.
//! - renew / release: read, check owner and epoch, PUT `If-Match`.
//! - save / delete: read the lease and the snapshot object, check fence,
//!   epoch and version, PUT the new snapshot (or a tombstone) `If-Match` the
//!   snapshot's ETag (create-only when there is none).
//! - A refused PUT whose object now holds exactly the bytes we sent is our own
//!   write, landed on an attempt whose answer was lost and retried: success.
//!
//! - commit: intents on every actor, a commit record as the commit point
//!   (`store/commit.rs`); every read and write of a snapshot object first
//!   settles an intent it meets.
//!
//! What S3 does not give, and so this backend does not claim: physical
//! deletion (S3 has no conditional DELETE through `object_store`, so deletes
//! and purges leave tombstones, a few bytes each; commit records stay too).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use leasehold_core::instrumented::Instrumented;
use leasehold_core::metrics::{OpKind, StoreMetrics};
use leasehold_core::rules::{self, AcquireDecision};
use leasehold_core::{
    Acquire, ActorKey, Clock, CommitOp, EngineStats, Health, KvError, Lease, LeaseFilter, NodeId,
    Snapshot, SnapshotInfo, SnapshotWrite, Store, StoreError, StoreResult, SystemClock, Timestamp,
    VerifyReport,
};
use object_store::path::Path;

use crate::backend::Backend;
use crate::layout::validate;
pub use crate::layout::Layout;

mod commit;
mod inspect;
mod snapshots;
use crate::client::{Client, ClientStats, Condition, ETag, Written};
use crate::record::Envelope;
use commit::Pending;
pub use commit::{CommitPhase, COMMIT_DEADLINE};

/// How often one operation re-reads and retries after losing a race before it
/// gives up with an error. Each lost race means another writer made progress.
const MAX_ATTEMPTS: usize = 64;

/// A probe slower than this makes `health()` report `Degraded`.
const SLOW_PROBE: Duration = Duration::from_secs(1);

fn corrupt(path: &Path, reason: impl std::fmt::Display) -> StoreError {
    StoreError::CorruptRecord {
        key: path.to_string(),
        reason: reason.to_string(),
    }
}

fn contention(what: &str, key: &ActorKey) -> StoreError {
    StoreError::Engine(KvError::io(
        format!("{what} of {key}"),
        std::io::Error::other(format!(
            "lost {MAX_ATTEMPTS} conditional-write races in a row; the actor is under heavy contention"
        )),
    ))
}

static NEXT_STORE_ID: AtomicU64 = AtomicU64::new(0);

/// Leases and snapshots on object storage.
pub struct ObjectStoreBackend {
    client: Client,
    layout: Layout,
    kind: &'static str,
    name: String,
    metrics: Instrumented,
    /// Names this instance's health-probe object.
    probe_name: String,
    /// Takeovers that had to fence a snapshot object.
    fences: AtomicU64,
    /// Commits found past their deadline and aborted by this instance.
    aborts: AtomicU64,
    /// How long a commit may stay unresolved (`set_commit_deadline`).
    commit_deadline: parking_lot::Mutex<Duration>,
    /// Called at each commit phase (crash tests).
    #[allow(clippy::type_complexity)]
    commit_hook: parking_lot::Mutex<Option<Box<dyn Fn(CommitPhase) + Send + Sync>>>,
}

impl ObjectStoreBackend {
    pub fn open(backend: Backend) -> StoreResult<ObjectStoreBackend> {
        let probe_name = format!(
            "probe-{}-{}-{}",
            std::process::id(),
            NEXT_STORE_ID.fetch_add(1, Ordering::Relaxed),
            SystemClock.now().as_millis()
        );
        let client = Client::new(backend.store)?;
        let layout = Layout::new(&backend.prefix);
        client.check_conditions(&layout.probe(&probe_name))?;
        Ok(ObjectStoreBackend {
            client,
            layout,
            kind: backend.kind,
            name: format!("objectstore-{}", backend.kind),
            metrics: Instrumented::default(),
            probe_name,
            fences: AtomicU64::new(0),
            aborts: AtomicU64::new(0),
            commit_deadline: parking_lot::Mutex::new(COMMIT_DEADLINE),
            commit_hook: parking_lot::Mutex::new(None),
        })
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// "s3", "azure", "gcs" or "memory".
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// Requests, bytes, refused conditions and latencies of the client.
    pub fn client_stats(&self) -> ClientStats {
        self.client.stats()
    }

    /// Takeovers that rewrote a snapshot object to fence out the old holder.
    pub fn fences_written(&self) -> u64 {
        self.fences.load(Ordering::Relaxed)
    }

    /// The client, for tools and tests that must write around the protocol
    /// (tampering with a stored state, say).
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn read_lease_at(&self, path: &Path) -> StoreResult<Option<(Lease, ETag)>> {
        let Some((bytes, etag)) = self.client.get(path)? else {
            return Ok(None);
        };
        let lease = Lease::decode(&bytes).map_err(|err| corrupt(path, err))?;
        Ok(Some((lease, etag)))
    }

    fn read_lease(&self, key: &ActorKey) -> StoreResult<Option<(Lease, ETag)>> {
        self.read_lease_at(&self.layout.lease(key))
    }

    fn read_envelope_at(&self, path: &Path) -> StoreResult<Option<(Envelope, ETag)>> {
        let Some((bytes, etag)) = self.client.get(path)? else {
            return Ok(None);
        };
        let envelope = Envelope::decode(&bytes).map_err(|err| corrupt(path, err))?;
        Ok(Some((envelope, etag)))
    }

    /// PUTs `body` under `condition`; a refused condition whose object now
    /// holds exactly `body` is our own earlier attempt that landed.
    fn put_checked(&self, path: &Path, body: Bytes, condition: &Condition) -> StoreResult<bool> {
        match self.client.put(path, body.clone(), condition)? {
            Written::Done(_) => Ok(true),
            Written::ConditionFailed => {
                Ok(matches!(self.client.get(path)?, Some((stored, _)) if stored == body))
            }
        }
    }

    /// Writes a lease record computed from what was read; `None` when the
    /// race was lost (read again).
    fn put_lease(&self, key: &ActorKey, lease: &Lease, read: Option<&ETag>) -> StoreResult<bool> {
        self.put_checked(
            &self.layout.lease(key),
            Bytes::from(lease.encode()),
            &Condition::after_read(read),
        )
    }

    /// Every object under `prefix`, read and decoded by `decode`.
    fn read_all<T>(
        &self,
        prefix: &Path,
        mut decode: impl FnMut(&Path) -> StoreResult<Option<T>>,
    ) -> StoreResult<Vec<T>> {
        let mut found = Vec::new();
        for path in self.client.list(prefix)? {
            // An object deleted between the listing and the read is skipped.
            if let Some(item) = decode(&path)? {
                found.push(item);
            }
        }
        Ok(found)
    }
}

/// The snapshot object's fence: a writer below it lost the actor.
fn check_object_fence(key: &ActorKey, fence: u64, fence_epoch: u64) -> StoreResult<()> {
    if fence_epoch < fence {
        return Err(StoreError::StaleEpoch {
            key: key.clone(),
            given: fence_epoch,
            current: fence,
        });
    }
    Ok(())
}

impl Store for ObjectStoreBackend {
    fn name(&self) -> &str {
        &self.name
    }

    fn try_acquire_with_metadata(
        &self,
        key: &ActorKey,
        node: &NodeId,
        duration: Duration,
        metadata: BTreeMap<String, String>,
        now: Timestamp,
    ) -> StoreResult<Acquire> {
        self.metrics.timed_acquire(|| {
            validate(key)?;
            for _ in 0..MAX_ATTEMPTS {
                let read = self.read_lease(key)?;
                let (existing, etag) = match read {
                    Some((lease, etag)) => (Some(lease), Some(etag)),
                    None => (None, None),
                };
                let lease = match rules::acquire(
                    existing.as_ref(),
                    key,
                    node,
                    duration,
                    metadata.clone(),
                    now,
                )? {
                    AcquireDecision::Write(lease) => lease,
                    AcquireDecision::AlreadyOwned(lease) => {
                        // Our grant may have been answered before its fence
                        // landed (a failed fence, then a retry): finish it.
                        self.fence(key, lease.epoch, now)?;
                        return Ok(Acquire::Acquired(lease));
                    }
                    AcquireDecision::Held {
                        holder,
                        epoch,
                        expires_at,
                    } => {
                        return Ok(Acquire::Held {
                            holder,
                            epoch,
                            expires_at,
                        })
                    }
                };
                if self.put_lease(key, &lease, etag.as_ref())? {
                    // Won. Any earlier holder — expired, or released with a
                    // save whose answer it never got — may still have a save
                    // in flight, decided under the old lease: raise the
                    // snapshot's fence to our epoch before answering, so none
                    // lands after our caller loads. Only a winner fences, so a
                    // live holder is never fenced out by a takeover that lost
                    // (FORMAT.md, "Takeover fence"). An actor never leased
                    // before has no earlier holder and no fence to raise.
                    if existing.is_some() {
                        self.fence(key, lease.epoch, now)?;
                    }
                    return Ok(Acquire::Acquired(lease));
                }
            }
            Err(contention("acquire", key))
        })
    }

    fn renew(
        &self,
        key: &ActorKey,
        node: &NodeId,
        epoch: u64,
        now: Timestamp,
    ) -> StoreResult<Lease> {
        self.metrics.timed(OpKind::Renew, || {
            validate(key)?;
            for _ in 0..MAX_ATTEMPTS {
                let read = self.read_lease(key)?;
                let lease =
                    rules::renew(read.as_ref().map(|(lease, _)| lease), key, node, epoch, now)?;
                if self.put_lease(key, &lease, read.as_ref().map(|(_, etag)| etag))? {
                    return Ok(lease);
                }
            }
            Err(contention("renew", key))
        })
    }

    fn release(&self, key: &ActorKey, node: &NodeId, epoch: u64) -> StoreResult<Lease> {
        self.metrics.timed(OpKind::Release, || {
            validate(key)?;
            for _ in 0..MAX_ATTEMPTS {
                let read = self.read_lease(key)?;
                let lease =
                    rules::release(read.as_ref().map(|(lease, _)| lease), key, node, epoch)?;
                if self.put_lease(key, &lease, read.as_ref().map(|(_, etag)| etag))? {
                    return Ok(lease);
                }
            }
            Err(contention("release", key))
        })
    }

    fn get_lease(&self, key: &ActorKey) -> StoreResult<Option<Lease>> {
        self.metrics.timed(OpKind::GetLease, || {
            validate(key)?;
            Ok(self.read_lease(key)?.map(|(lease, _)| lease))
        })
    }

    fn list_leases(&self, filter: &LeaseFilter) -> StoreResult<Vec<Lease>> {
        self.metrics.timed(OpKind::ListLeases, || {
            let prefix = match &filter.actor_type {
                Some(actor_type) => self.layout.leases().join(actor_type.as_str()),
                None => self.layout.leases(),
            };
            let mut leases = self.read_all(&prefix, |path| {
                Ok(self
                    .read_lease_at(path)?
                    .map(|(lease, _)| lease)
                    .filter(|lease| filter.matches(lease)))
            })?;
            leases.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(leases)
        })
    }

    fn load(&self, key: &ActorKey, now: Timestamp) -> StoreResult<Option<Snapshot>> {
        self.metrics.timed(OpKind::Load, || {
            validate(key)?;
            let stored = self
                .settle(key, now, Pending::Read)?
                .and_then(|(envelope, _)| envelope.snapshot);
            Ok(self.metrics.loaded(rules::load(stored, now)?))
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
                Ok(vec![self.write_snapshot(op, now)?])
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
                Ok(vec![self.write_snapshot(op, now)?])
            })
    }

    fn list(&self, actor_type: &str, now: Timestamp) -> StoreResult<Vec<SnapshotInfo>> {
        self.metrics.timed(OpKind::List, || {
            let prefix = self.layout.snapshots().join(actor_type);
            let mut infos = self.read_all(&prefix, |path| {
                Ok(self
                    .settle_at(path, now, Pending::Read)?
                    .and_then(|(envelope, _)| envelope.snapshot)
                    .filter(|snapshot| !snapshot.is_expired_at(now))
                    .map(|snapshot| SnapshotInfo::from(&snapshot)))
            })?;
            infos.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(infos)
        })
    }

    fn purge_expired(&self, now: Timestamp) -> StoreResult<u64> {
        self.metrics.timed(OpKind::PurgeExpired, || {
            let mut purged = 0;
            for path in self.client.list(&self.layout.snapshots())? {
                for _ in 0..MAX_ATTEMPTS {
                    // An actor inside a pending commit is left for next time.
                    let Some((envelope, etag)) = self.settle_at(&path, now, Pending::Skip)? else {
                        break;
                    };
                    if !envelope
                        .snapshot
                        .as_ref()
                        .is_some_and(|snapshot| snapshot.is_expired_at(now))
                    {
                        break;
                    }
                    let tombstone = Envelope::settled(envelope.current_epoch(), None);
                    if self.put_checked(&path, tombstone.encode(), &Condition::Matches(etag))? {
                        purged += 1;
                        break;
                    }
                }
            }
            Ok(purged)
        })
    }

    fn commit(&self, ops: Vec<CommitOp>, now: Timestamp) -> StoreResult<Vec<Option<Snapshot>>> {
        self.metrics
            .timed(OpKind::Commit, || self.commit_ops(ops, now))
    }

    fn metrics(&self) -> StoreMetrics {
        let client = self.client.stats();
        // The server's own amplification is out of sight; what the client
        // sees is what it sent (lost races and probes included) against what
        // the server took.
        let stats = EngineStats {
            user_bytes_written: client.bytes_accepted,
            device_bytes_written: client.bytes_sent,
            device_bytes_read: client.bytes_received,
            ..EngineStats::default()
        };
        self.metrics.snapshot(Some(stats))
    }

    fn health(&self) -> Health {
        if let Some(closed) = self.metrics.closed_health() {
            return closed;
        }
        match self.probe() {
            Ok(took) if took > SLOW_PROBE => Health::Degraded(format!(
                "a probe write, read and delete took {took:?} (over {SLOW_PROBE:?})"
            )),
            Ok(_) => Health::Healthy,
            Err(err) => Health::Failed(format!("probe request failed: {err}")),
        }
    }

    /// Every acknowledged write is already durable on the server.
    fn sync(&self) -> StoreResult<()> {
        self.metrics.check_open()
    }

    fn close(&self) -> StoreResult<()> {
        self.metrics.close();
        Ok(())
    }
}
