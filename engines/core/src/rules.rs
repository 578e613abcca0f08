//! The lease and snapshot rules, once, as pure functions of (stored record,
//! request, now). Every `Store` implementation reads the records, calls these,
//! and writes what they return under its own atomicity (striped locks and one
//! batch for `KvStore`; conditional PUTs for object storage).

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::time::Duration;

use crate::error::{StoreError, StoreResult};
use crate::key::ActorKey;
use crate::lease::{Lease, NodeId};
use crate::snapshot::{state_hash, Snapshot, SnapshotWrite};
use crate::store::{Acquire, CommitOp};
use crate::time::Timestamp;

/// What to do for a `try_acquire`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AcquireDecision {
    /// Write this new lease record (a grant or a takeover, epoch raised).
    Write(Lease),
    /// The caller already holds it; nothing to write.
    AlreadyOwned(Lease),
    /// Somebody else holds it.
    Held {
        holder: NodeId,
        epoch: u64,
        expires_at: Timestamp,
    },
}

impl AcquireDecision {
    /// The lease to write (`Continue`), or — when there is nothing to
    /// write — the answer itself (`Break`).
    pub fn into_write(self) -> ControlFlow<Acquire, Lease> {
        match self {
            AcquireDecision::Write(lease) => ControlFlow::Continue(lease),
            AcquireDecision::AlreadyOwned(lease) => ControlFlow::Break(Acquire::Acquired(lease)),
            AcquireDecision::Held {
                holder,
                epoch,
                expires_at,
            } => ControlFlow::Break(Acquire::Held {
                holder,
                epoch,
                expires_at,
            }),
        }
    }
}

pub fn validate_key(key: &ActorKey) -> StoreResult<()> {
    if key.actor_type.is_empty() {
        return Err(StoreError::InvalidArgument(format!(
            "actor key {key:?} has an empty actor type"
        )));
    }
    Ok(())
}

fn validate_node(node: &NodeId) -> StoreResult<()> {
    if node.as_str().is_empty() {
        return Err(StoreError::InvalidArgument("node id is empty".into()));
    }
    Ok(())
}

pub fn acquire(
    existing: Option<&Lease>,
    key: &ActorKey,
    node: &NodeId,
    duration: Duration,
    metadata: BTreeMap<String, String>,
    now: Timestamp,
) -> StoreResult<AcquireDecision> {
    validate_key(key)?;
    validate_node(node)?;
    if duration.is_zero() {
        return Err(StoreError::InvalidArgument(
            "lease duration must be positive".into(),
        ));
    }
    if let Some(lease) = existing.filter(|lease| lease.is_held_at(now)) {
        return Ok(match &lease.node_id {
            Some(holder) if holder == node => AcquireDecision::AlreadyOwned(lease.clone()),
            Some(holder) => AcquireDecision::Held {
                holder: holder.clone(),
                epoch: lease.epoch,
                expires_at: lease.expires_at,
            },
            // is_held_at implies an owner.
            None => unreachable!("a held lease has an owner"),
        });
    }
    let (epoch, version) = existing.map_or((0, 0), |lease| (lease.epoch, lease.version));
    Ok(AcquireDecision::Write(Lease {
        key: key.clone(),
        node_id: Some(node.clone()),
        epoch: next(epoch, key, "epoch")?,
        version: next(version, key, "lease version")?,
        acquired_at: now,
        expires_at: now.saturating_add(duration),
        duration,
        renewals: 0,
        metadata,
    }))
}

/// The caller must be the recorded owner under the current epoch.
fn check_owner(
    existing: Option<&Lease>,
    key: &ActorKey,
    node: &NodeId,
    epoch: u64,
) -> StoreResult<Lease> {
    let Some(lease) = existing else {
        return Err(StoreError::NotOwner {
            key: key.clone(),
            node: node.clone(),
            holder: None,
            epoch: 0,
        });
    };
    if epoch < lease.epoch {
        return Err(StoreError::StaleEpoch {
            key: key.clone(),
            given: epoch,
            current: lease.epoch,
        });
    }
    if lease.node_id.as_ref() != Some(node) || epoch != lease.epoch {
        return Err(StoreError::NotOwner {
            key: key.clone(),
            node: node.clone(),
            holder: lease.node_id.clone(),
            epoch: lease.epoch,
        });
    }
    Ok(lease.clone())
}

pub fn renew(
    existing: Option<&Lease>,
    key: &ActorKey,
    node: &NodeId,
    epoch: u64,
    now: Timestamp,
) -> StoreResult<Lease> {
    let mut lease = check_owner(existing, key, node, epoch)?;
    if now >= lease.expires_at {
        return Err(StoreError::LeaseExpired {
            key: key.clone(),
            expired_at: lease.expires_at,
        });
    }
    lease.expires_at = now.saturating_add(lease.duration);
    lease.renewals = lease.renewals.saturating_add(1);
    lease.version = next(lease.version, key, "lease version")?;
    Ok(lease)
}

/// Release keeps the record (and its epoch) with no owner. Releasing an expired
/// lease one still owns on record is allowed: nobody else took it.
pub fn release(
    existing: Option<&Lease>,
    key: &ActorKey,
    node: &NodeId,
    epoch: u64,
) -> StoreResult<Lease> {
    let mut lease = check_owner(existing, key, node, epoch)?;
    lease.node_id = None;
    lease.version = next(lease.version, key, "lease version")?;
    Ok(lease)
}

/// `counter + 1`, or an error for a record already at the top (only a
/// crafted or damaged record gets there: wrapping to 0 would restart epochs
/// and versions, and fencing with them).
fn next(counter: u64, key: &ActorKey, what: &str) -> StoreResult<u64> {
    counter
        .checked_add(1)
        .ok_or_else(|| StoreError::CorruptRecord {
            key: key.to_string(),
            reason: format!("{what} is at its maximum ({counter}) and cannot rise"),
        })
}

/// A write fenced with `fence_epoch` is allowed only if no newer lease (and no
/// snapshot written under a newer lease) exists, and the epoch was granted.
pub fn check_fence(
    key: &ActorKey,
    lease: Option<&Lease>,
    stored: Option<&Snapshot>,
    fence_epoch: u64,
) -> StoreResult<()> {
    let lease_epoch = lease.map_or(0, |lease| lease.epoch);
    let current = lease_epoch.max(stored.map_or(0, |snapshot| snapshot.epoch));
    if fence_epoch < current {
        return Err(StoreError::StaleEpoch {
            key: key.clone(),
            given: fence_epoch,
            current,
        });
    }
    if fence_epoch > lease_epoch {
        return Err(StoreError::InvalidArgument(format!(
            "fence epoch {fence_epoch} for {key} was never granted (lease epoch {lease_epoch})"
        )));
    }
    Ok(())
}

/// `visible` is the stored snapshot unless it expired (then it counts as absent,
/// version 0).
pub fn check_version(
    key: &ActorKey,
    visible: Option<&Snapshot>,
    expected_version: u64,
) -> StoreResult<()> {
    let actual = visible.map_or(0, |snapshot| snapshot.version);
    if actual != expected_version {
        return Err(StoreError::VersionConflict {
            key: key.clone(),
            expected: expected_version,
            actual,
        });
    }
    Ok(())
}

/// The snapshot record a save writes after `visible`.
pub fn next_snapshot(
    write: SnapshotWrite,
    visible: Option<&Snapshot>,
    fence_epoch: u64,
    now: Timestamp,
) -> StoreResult<Snapshot> {
    let version = next(
        visible.map_or(0, |snapshot| snapshot.version),
        &write.key,
        "snapshot version",
    )?;
    let created_at = visible.map_or(now, |snapshot| snapshot.created_at);
    let snapshot_id = write
        .snapshot_id
        .unwrap_or_else(|| format!("{}@{version}", write.key));
    Ok(Snapshot {
        state_hash: state_hash(&write.state),
        key: write.key,
        snapshot_id,
        version,
        epoch: fence_epoch,
        state: write.state,
        created_at,
        updated_at: now,
        tags: write.tags,
        ttl: write.ttl,
    })
}

/// Checks everything a save of `write` must satisfy, and returns the record.
pub fn save(
    write: SnapshotWrite,
    lease: Option<&Lease>,
    stored: Option<&Snapshot>,
    expected_version: u64,
    fence_epoch: u64,
    now: Timestamp,
) -> StoreResult<Snapshot> {
    validate_key(&write.key)?;
    check_fence(&write.key, lease, stored, fence_epoch)?;
    let visible = stored.filter(|snapshot| !snapshot.is_expired_at(now));
    check_version(&write.key, visible, expected_version)?;
    next_snapshot(write, visible, fence_epoch, now)
}

/// Checks a delete; deleting what is not there (version 0 expected) is allowed.
pub fn delete(
    key: &ActorKey,
    lease: Option<&Lease>,
    stored: Option<&Snapshot>,
    expected_version: u64,
    fence_epoch: u64,
    now: Timestamp,
) -> StoreResult<()> {
    validate_key(key)?;
    check_fence(key, lease, stored, fence_epoch)?;
    let visible = stored.filter(|snapshot| !snapshot.is_expired_at(now));
    check_version(key, visible, expected_version)
}

/// Checks one save or delete of a commit (or a lone `save` / `delete`)
/// against the actor's lease and stored snapshot: the snapshot to write, or
/// `None` for a delete.
pub fn decide(
    op: &CommitOp,
    lease: Option<&Lease>,
    stored: Option<&Snapshot>,
    now: Timestamp,
) -> StoreResult<Option<Snapshot>> {
    match op {
        CommitOp::Save {
            snapshot,
            expected_version,
            fence_epoch,
        } => save(
            snapshot.clone(),
            lease,
            stored,
            *expected_version,
            *fence_epoch,
            now,
        )
        .map(Some),
        CommitOp::Delete {
            key,
            expected_version,
            fence_epoch,
        } => delete(key, lease, stored, *expected_version, *fence_epoch, now).map(|()| None),
    }
}

/// What `load` answers for the stored snapshot: nothing when absent or
/// expired, `Integrity` when the state does not match its SHA-256.
pub fn load(stored: Option<Snapshot>, now: Timestamp) -> StoreResult<Option<Snapshot>> {
    let Some(snapshot) = stored.filter(|snapshot| !snapshot.is_expired_at(now)) else {
        return Ok(None);
    };
    match snapshot.verify_hash() {
        Ok(()) => Ok(Some(snapshot)),
        Err((expected, actual)) => Err(StoreError::Integrity {
            key: snapshot.key,
            expected,
            actual,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ActorKey {
        ActorKey::new("T", "1")
    }

    fn granted(node: &str, now: u64) -> Lease {
        match acquire(
            None,
            &key(),
            &NodeId::new(node),
            Duration::from_secs(10),
            BTreeMap::new(),
            Timestamp(now),
        ) {
            Ok(AcquireDecision::Write(lease)) => lease,
            other => panic!("{other:?}"),
        }
    }

    /// X1: a record at the top of its counters must not wrap to 0 (epochs
    /// would restart and fencing with them).
    #[test]
    fn counters_at_their_maximum_are_errors_not_wraps() {
        let mut top = granted("a", 0);
        top.node_id = None;
        top.epoch = u64::MAX;
        let acquired = acquire(
            Some(&top),
            &key(),
            &NodeId::new("b"),
            Duration::from_secs(10),
            BTreeMap::new(),
            Timestamp(1),
        );
        assert!(
            matches!(acquired, Err(StoreError::CorruptRecord { .. })),
            "{acquired:?}"
        );
        let mut held = granted("a", 0);
        held.version = u64::MAX;
        let node = NodeId::new("a");
        assert!(renew(Some(&held), &key(), &node, 1, Timestamp(1)).is_err());
        assert!(release(Some(&held), &key(), &node, 1).is_err());
    }

    #[test]
    fn takeover_after_expiry_raises_the_epoch_and_keeps_counting_after_release() {
        let first = granted("a", 0);
        assert_eq!(first.epoch, 1);
        let b = NodeId::new("b");
        let held = acquire(
            Some(&first),
            &key(),
            &b,
            Duration::from_secs(1),
            BTreeMap::new(),
            Timestamp(9_999),
        )
        .unwrap();
        assert!(matches!(held, AcquireDecision::Held { epoch: 1, .. }));
        let AcquireDecision::Write(second) = acquire(
            Some(&first),
            &key(),
            &b,
            Duration::from_secs(1),
            BTreeMap::new(),
            Timestamp(10_000),
        )
        .unwrap() else {
            panic!("expired lease must be taken over")
        };
        assert_eq!((second.epoch, second.version), (2, 2));
        let released = release(Some(&second), &key(), &b, 2).unwrap();
        assert_eq!((released.epoch, released.node_id.clone()), (2, None));
        let AcquireDecision::Write(third) = acquire(
            Some(&released),
            &key(),
            &b,
            Duration::from_secs(1),
            BTreeMap::new(),
            Timestamp(10_001),
        )
        .unwrap() else {
            panic!("released lease must be granted")
        };
        assert_eq!(third.epoch, 3);
    }

    #[test]
    fn renew_needs_owner_epoch_and_time_left() {
        let lease = granted("a", 0);
        let a = NodeId::new("a");
        assert!(matches!(
            renew(Some(&lease), &key(), &NodeId::new("b"), 1, Timestamp(1)),
            Err(StoreError::NotOwner { .. })
        ));
        assert!(matches!(
            renew(Some(&lease), &key(), &a, 0, Timestamp(1)),
            Err(StoreError::StaleEpoch { .. })
        ));
        assert!(matches!(
            renew(Some(&lease), &key(), &a, 1, Timestamp(10_000)),
            Err(StoreError::LeaseExpired { .. })
        ));
        let renewed = renew(Some(&lease), &key(), &a, 1, Timestamp(5_000)).unwrap();
        assert_eq!(
            (renewed.expires_at, renewed.renewals, renewed.epoch),
            (Timestamp(15_000), 1, 1)
        );
    }

    #[test]
    fn fencing_rejects_older_epochs_and_ungranted_ones() {
        let lease = Lease {
            epoch: 3,
            ..granted("a", 0)
        };
        assert!(matches!(
            check_fence(&key(), Some(&lease), None, 2),
            Err(StoreError::StaleEpoch { current: 3, .. })
        ));
        assert!(check_fence(&key(), Some(&lease), None, 3).is_ok());
        assert!(matches!(
            check_fence(&key(), Some(&lease), None, 4),
            Err(StoreError::InvalidArgument(_))
        ));
        assert!(check_fence(&key(), None, None, 0).is_ok());
    }
}
