//! The no-op store: replaying against it measures the harness's own cost.

use super::*;
use crate::Result;

/// The no-op store behind `EngineKind::NULL`: the cheapest answer of the
/// right type to every call, so a replay against it costs what the harness
/// costs (dispatch, key lookup, state slicing, answer reduction, histogram).
pub struct NullStore;

impl NullStore {
    fn lease(key: &ActorKey, now: Timestamp) -> Lease {
        Lease {
            key: key.clone(),
            node_id: None,
            epoch: 0,
            version: 0,
            acquired_at: now,
            expires_at: now,
            duration: Duration::ZERO,
            renewals: 0,
            metadata: BTreeMap::new(),
        }
    }
}

impl Store for NullStore {
    fn name(&self) -> &str {
        "null"
    }

    fn try_acquire_with_metadata(
        &self,
        _key: &ActorKey,
        _node: &NodeId,
        _duration: Duration,
        _metadata: BTreeMap<String, String>,
        now: Timestamp,
    ) -> StoreResult<Acquire> {
        Ok(Acquire::Held {
            holder: NodeId(String::new()),
            epoch: 0,
            expires_at: now,
        })
    }

    fn renew(
        &self,
        key: &ActorKey,
        _node: &NodeId,
        _epoch: u64,
        now: Timestamp,
    ) -> StoreResult<Lease> {
        Ok(NullStore::lease(key, now))
    }

    fn release(&self, key: &ActorKey, _node: &NodeId, _epoch: u64) -> StoreResult<Lease> {
        Ok(NullStore::lease(key, Timestamp::from_millis(0)))
    }

    fn get_lease(&self, _key: &ActorKey) -> StoreResult<Option<Lease>> {
        Ok(None)
    }

    fn list_leases(&self, _filter: &LeaseFilter) -> StoreResult<Vec<Lease>> {
        Ok(Vec::new())
    }

    fn load(&self, _key: &ActorKey, _now: Timestamp) -> StoreResult<Option<Snapshot>> {
        Ok(None)
    }

    fn save(
        &self,
        snapshot: SnapshotWrite,
        expected_version: u64,
        _fence_epoch: u64,
        _now: Timestamp,
    ) -> StoreResult<Snapshot> {
        Err(StoreError::VersionConflict {
            key: snapshot.key,
            expected: expected_version,
            actual: 0,
        })
    }

    fn delete(
        &self,
        _key: &ActorKey,
        _version: u64,
        _epoch: u64,
        _now: Timestamp,
    ) -> StoreResult<()> {
        Ok(())
    }

    fn list(&self, _actor_type: &str, _now: Timestamp) -> StoreResult<Vec<SnapshotInfo>> {
        Ok(Vec::new())
    }

    fn purge_expired(&self, _now: Timestamp) -> StoreResult<u64> {
        Ok(0)
    }

    fn commit(&self, _ops: Vec<CommitOp>, _now: Timestamp) -> StoreResult<Vec<Option<Snapshot>>> {
        Ok(Vec::new())
    }

    fn metrics(&self) -> StoreMetrics {
        StoreMetrics::default()
    }

    fn health(&self) -> Health {
        Health::Healthy
    }

    fn sync(&self) -> StoreResult<()> {
        Ok(())
    }

    fn close(&self) -> StoreResult<()> {
        Ok(())
    }
}

impl BenchStore for NullStore {
    fn live(&self) -> Result<Live> {
        Ok(Live::default())
    }

    fn verify(&self) -> KvResult<VerifyReport> {
        Ok(VerifyReport {
            checked: "nothing (the null store keeps nothing)".to_owned(),
            problems: Vec::new(),
        })
    }

    fn round_trip(&self) -> KvResult<Duration> {
        Ok(Duration::ZERO)
    }
}
