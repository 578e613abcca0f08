//! The `Store` trait: leases and snapshots of virtual actors, as a runtime uses
//! them. `KvStore` implements it over any `KvEngine`; the object-store backend
//! implements it directly. Both apply the rules in `rules.rs`.
//!
//! Contract:
//! 1. `try_acquire` is atomic: of N concurrent callers for one free actor, exactly
//!    one gets `Acquired`. A held, unexpired lease is never taken over; an
//!    expired or released one is, with `epoch + 1`.
//! 2. `renew` / `release` need the current owner and epoch.
//! 3. `save` / `delete` / `commit` ops carry the expected snapshot version (0 =
//!    none) and the writer's fencing epoch; an epoch older than the lease's (or
//!    than the stored snapshot's) is `StaleEpoch`, so a node that lost its lease
//!    cannot overwrite the new owner's state even before the new owner writes.
//! 4. `load` verifies the SHA-256 of the state; a mismatch is `Integrity`.
//!    Expired snapshots are invisible (as if absent) and removed by
//!    `purge_expired`.
//! 5. `commit` is all-or-nothing across actors.
//!
//! Time is always passed in (`now`), from the caller's `Clock`.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::{StoreError, StoreResult};
use crate::key::ActorKey;
use crate::kv::Health;
use crate::lease::{Lease, NodeId};
use crate::metrics::StoreMetrics;
use crate::snapshot::{Snapshot, SnapshotWrite};
use crate::time::Timestamp;

/// The answer to `try_acquire`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Acquire {
    /// The caller owns the lease (newly, or already did: a retry returns the
    /// unchanged lease).
    Acquired(Lease),
    /// Another node holds it until `expires_at`.
    Held {
        holder: NodeId,
        epoch: u64,
        expires_at: Timestamp,
    },
}

impl Acquire {
    pub fn lease(&self) -> Option<&Lease> {
        match self {
            Acquire::Acquired(lease) => Some(lease),
            Acquire::Held { .. } => None,
        }
    }
}

/// Which leases `list_leases` returns; every set field must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaseFilter {
    pub node_id: Option<NodeId>,
    pub actor_type: Option<String>,
    /// `Some(true)`: only leases not held at `now` (expired or released);
    /// `Some(false)`: only held ones.
    pub expired: Option<bool>,
    pub now: Timestamp,
}

impl LeaseFilter {
    pub fn matches(&self, lease: &Lease) -> bool {
        let node_matches = self
            .node_id
            .as_ref()
            .is_none_or(|node| lease.node_id.as_ref() == Some(node));
        let type_matches = self
            .actor_type
            .as_ref()
            .is_none_or(|actor_type| &lease.key.actor_type == actor_type);
        let expiry_matches = self
            .expired
            .is_none_or(|expired| expired != lease.is_held_at(self.now));
        node_matches && type_matches && expiry_matches
    }
}

/// What `list` tells about a snapshot without handing out its state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub key: ActorKey,
    pub version: u64,
    pub epoch: u64,
    pub state_len: u64,
    pub updated_at: Timestamp,
    pub expires_at: Option<Timestamp>,
}

impl SnapshotInfo {
    pub fn is_expired_at(&self, now: Timestamp) -> bool {
        crate::snapshot::expired(self.expires_at, now)
    }
}

impl From<&Snapshot> for SnapshotInfo {
    fn from(snapshot: &Snapshot) -> Self {
        SnapshotInfo {
            key: snapshot.key.clone(),
            version: snapshot.version,
            epoch: snapshot.epoch,
            state_len: snapshot.state.len() as u64,
            updated_at: snapshot.updated_at,
            expires_at: snapshot.expires_at(),
        }
    }
}

/// One operation of an atomic multi-actor `commit`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommitOp {
    Save {
        snapshot: SnapshotWrite,
        expected_version: u64,
        fence_epoch: u64,
    },
    Delete {
        key: ActorKey,
        expected_version: u64,
        fence_epoch: u64,
    },
}

impl CommitOp {
    pub fn save(snapshot: SnapshotWrite, expected_version: u64, fence_epoch: u64) -> CommitOp {
        CommitOp::Save {
            snapshot,
            expected_version,
            fence_epoch,
        }
    }

    pub fn delete(key: &ActorKey, expected_version: u64, fence_epoch: u64) -> CommitOp {
        CommitOp::Delete {
            key: key.clone(),
            expected_version,
            fence_epoch,
        }
    }

    /// The writer's fencing epoch.
    pub fn fence_epoch(&self) -> u64 {
        match self {
            CommitOp::Save { fence_epoch, .. } | CommitOp::Delete { fence_epoch, .. } => {
                *fence_epoch
            }
        }
    }

    pub fn key(&self) -> &ActorKey {
        match self {
            CommitOp::Save { snapshot, .. } => &snapshot.key,
            CommitOp::Delete { key, .. } => key,
        }
    }
}

/// The keys of `ops` in ascending order, or `InvalidArgument` when one
/// actor is named twice (a commit's ops must name distinct actors).
pub fn distinct_keys(ops: &[CommitOp]) -> StoreResult<Vec<&ActorKey>> {
    let mut keys: Vec<&ActorKey> = ops.iter().map(CommitOp::key).collect();
    keys.sort();
    if keys.windows(2).any(|pair| pair[0] == pair[1]) {
        return Err(StoreError::InvalidArgument(
            "a commit names the same actor twice".into(),
        ));
    }
    Ok(keys)
}

/// The snapshot a commit of one save answered (`Instrumented::save_alone`).
pub(crate) fn the_saved(results: Vec<Option<Snapshot>>) -> StoreResult<Snapshot> {
    results.into_iter().flatten().next().ok_or_else(|| {
        StoreError::Engine(crate::error::KvError::io(
            "a save",
            std::io::Error::other("the store answered a save with no snapshot"),
        ))
    })
}

/// The lease and snapshot store of a virtual-actor runtime.
pub trait Store: Send + Sync {
    /// A short name for reports.
    fn name(&self) -> &str;

    /// Acquires the lease on `key` for `node` for `duration`, attaching
    /// `metadata` to a newly granted lease.
    fn try_acquire_with_metadata(
        &self,
        key: &ActorKey,
        node: &NodeId,
        duration: Duration,
        metadata: BTreeMap<String, String>,
        now: Timestamp,
    ) -> StoreResult<Acquire>;

    fn try_acquire(
        &self,
        key: &ActorKey,
        node: &NodeId,
        duration: Duration,
        now: Timestamp,
    ) -> StoreResult<Acquire> {
        self.try_acquire_with_metadata(key, node, duration, BTreeMap::new(), now)
    }

    /// Extends the lease by its duration from `now`.
    fn renew(
        &self,
        key: &ActorKey,
        node: &NodeId,
        epoch: u64,
        now: Timestamp,
    ) -> StoreResult<Lease>;

    /// Gives the lease up; the record stays with its epoch and no owner.
    fn release(&self, key: &ActorKey, node: &NodeId, epoch: u64) -> StoreResult<Lease>;

    fn get_lease(&self, key: &ActorKey) -> StoreResult<Option<Lease>>;

    fn list_leases(&self, filter: &LeaseFilter) -> StoreResult<Vec<Lease>>;

    /// The actor's snapshot, hash verified; `None` when absent or expired.
    fn load(&self, key: &ActorKey, now: Timestamp) -> StoreResult<Option<Snapshot>>;

    /// Stores a new snapshot version (`expected_version + 1`).
    fn save(
        &self,
        snapshot: SnapshotWrite,
        expected_version: u64,
        fence_epoch: u64,
        now: Timestamp,
    ) -> StoreResult<Snapshot>;

    fn delete(
        &self,
        key: &ActorKey,
        expected_version: u64,
        fence_epoch: u64,
        now: Timestamp,
    ) -> StoreResult<()>;

    /// The live snapshots of one actor type, in actor-id order.
    fn list(&self, actor_type: &str, now: Timestamp) -> StoreResult<Vec<SnapshotInfo>>;

    /// Removes snapshots whose TTL ran out; returns how many.
    fn purge_expired(&self, now: Timestamp) -> StoreResult<u64>;

    /// Applies every op or none; returns the saved snapshots in op order (`None`
    /// for deletes).
    fn commit(&self, ops: Vec<CommitOp>, now: Timestamp) -> StoreResult<Vec<Option<Snapshot>>>;

    fn metrics(&self) -> StoreMetrics;

    fn health(&self) -> Health;

    /// Makes everything acknowledged so far durable.
    fn sync(&self) -> StoreResult<()>;

    fn close(&self) -> StoreResult<()>;
}
