//! `AsyncStore` from an actor framework's runtime, on the toy engine.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

use std::sync::Arc;
use std::time::Duration;

use leasehold_core::async_store::AsyncStore;
use leasehold_core::kv::Durability;
use leasehold_core::kvstore::KvStore;
use leasehold_core::vfs::OsVfs;
use leasehold_core::{ActorKey, Health, NodeId, SnapshotWrite, StoreError, Timestamp};
use leasehold_testkit::toy::ToyLogEngine;

/// From a task on a current-thread runtime (an actor framework's), the
/// calls answer, and the runtime's one thread is never blocked by them.
#[test]
fn a_task_calls_the_store_without_blocking_its_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let engine = ToyLogEngine::open(Arc::new(OsVfs::new()), dir.path(), false).unwrap();
    let store = AsyncStore::new(Arc::new(KvStore::new(engine, Durability::Sync)));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let key = ActorKey::new("T", "1");
        let now = Timestamp(1);
        let ticker = tokio::spawn(async { tokio::task::yield_now().await });
        let lease = store
            .try_acquire(key.clone(), NodeId::new("n"), Duration::from_secs(5), now)
            .await
            .unwrap();
        let epoch = lease.lease().unwrap().epoch;
        let saved = store
            .save(SnapshotWrite::new(key.clone(), &b"s"[..]), 0, epoch, now)
            .await
            .unwrap();
        assert_eq!(saved.version, 1);
        let loaded = store.load(key.clone(), now).await.unwrap().unwrap();
        assert_eq!(loaded.state, &b"s"[..]);
        ticker.await.unwrap();
        assert_eq!(store.health().await, Health::Healthy);
        store.close().await.unwrap();
        assert!(matches!(
            store.load(key, now).await,
            Err(StoreError::Closed)
        ));
    });
}
