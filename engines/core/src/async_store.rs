//! `AsyncStore`: any `Store` called from async code (tokio). The stores are
//! synchronous, like RocksDB, LMDB and redb — a call may fsync or wait on a
//! server — so each call runs on tokio's blocking pool (`spawn_blocking`)
//! and the task awaiting it yields instead of stalling a runtime worker.
//! Cloning shares the store.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{KvError, StoreError, StoreResult};
use crate::key::ActorKey;
use crate::kv::Health;
use crate::lease::{Lease, NodeId};
use crate::metrics::StoreMetrics;
use crate::snapshot::{Snapshot, SnapshotWrite};
use crate::store::{Acquire, CommitOp, LeaseFilter, SnapshotInfo, Store};
use crate::time::Timestamp;

/// A `Store` with async methods. Must be used inside a tokio runtime.
pub struct AsyncStore<S: Store + ?Sized + 'static> {
    store: Arc<S>,
}

impl<S: Store + ?Sized + 'static> Clone for AsyncStore<S> {
    fn clone(&self) -> Self {
        AsyncStore {
            store: Arc::clone(&self.store),
        }
    }
}

impl<S: Store + ?Sized + 'static> AsyncStore<S> {
    pub fn new(store: Arc<S>) -> AsyncStore<S> {
        AsyncStore { store }
    }

    /// The synchronous store underneath.
    pub fn blocking(&self) -> &Arc<S> {
        &self.store
    }

    async fn call<T: Send + 'static>(
        &self,
        call: impl FnOnce(&S) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || call(&store))
            .await
            .map_err(|err| {
                // The call panicked (or the runtime is shutting down).
                StoreError::Engine(KvError::io(
                    "a store call on tokio's blocking pool",
                    std::io::Error::other(err.to_string()),
                ))
            })?
    }

    pub async fn try_acquire(
        &self,
        key: ActorKey,
        node: NodeId,
        duration: Duration,
        now: Timestamp,
    ) -> StoreResult<Acquire> {
        self.call(move |store| store.try_acquire(&key, &node, duration, now))
            .await
    }

    pub async fn try_acquire_with_metadata(
        &self,
        key: ActorKey,
        node: NodeId,
        duration: Duration,
        metadata: BTreeMap<String, String>,
        now: Timestamp,
    ) -> StoreResult<Acquire> {
        self.call(move |store| {
            store.try_acquire_with_metadata(&key, &node, duration, metadata, now)
        })
        .await
    }

    pub async fn renew(
        &self,
        key: ActorKey,
        node: NodeId,
        epoch: u64,
        now: Timestamp,
    ) -> StoreResult<Lease> {
        self.call(move |store| store.renew(&key, &node, epoch, now))
            .await
    }

    pub async fn release(&self, key: ActorKey, node: NodeId, epoch: u64) -> StoreResult<Lease> {
        self.call(move |store| store.release(&key, &node, epoch))
            .await
    }

    pub async fn get_lease(&self, key: ActorKey) -> StoreResult<Option<Lease>> {
        self.call(move |store| store.get_lease(&key)).await
    }

    pub async fn list_leases(&self, filter: LeaseFilter) -> StoreResult<Vec<Lease>> {
        self.call(move |store| store.list_leases(&filter)).await
    }

    pub async fn load(&self, key: ActorKey, now: Timestamp) -> StoreResult<Option<Snapshot>> {
        self.call(move |store| store.load(&key, now)).await
    }

    pub async fn save(
        &self,
        snapshot: SnapshotWrite,
        expected_version: u64,
        fence_epoch: u64,
        now: Timestamp,
    ) -> StoreResult<Snapshot> {
        self.call(move |store| store.save(snapshot, expected_version, fence_epoch, now))
            .await
    }

    pub async fn delete(
        &self,
        key: ActorKey,
        expected_version: u64,
        fence_epoch: u64,
        now: Timestamp,
    ) -> StoreResult<()> {
        self.call(move |store| store.delete(&key, expected_version, fence_epoch, now))
            .await
    }

    pub async fn list(&self, actor_type: String, now: Timestamp) -> StoreResult<Vec<SnapshotInfo>> {
        self.call(move |store| store.list(&actor_type, now)).await
    }

    pub async fn purge_expired(&self, now: Timestamp) -> StoreResult<u64> {
        self.call(move |store| store.purge_expired(now)).await
    }

    pub async fn commit(
        &self,
        ops: Vec<CommitOp>,
        now: Timestamp,
    ) -> StoreResult<Vec<Option<Snapshot>>> {
        self.call(move |store| store.commit(ops, now)).await
    }

    pub async fn metrics(&self) -> StoreMetrics {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || store.metrics())
            .await
            .unwrap_or_default()
    }

    pub async fn health(&self) -> Health {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || store.health())
            .await
            .unwrap_or_else(|err| Health::Failed(format!("the health probe panicked: {err}")))
    }

    pub async fn sync(&self) -> StoreResult<()> {
        self.call(|store| store.sync()).await
    }

    pub async fn close(&self) -> StoreResult<()> {
        self.call(|store| store.close()).await
    }
}
