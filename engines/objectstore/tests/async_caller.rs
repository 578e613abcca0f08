//! The store called from inside a tokio runtime — where an actor framework
//! lives — on either kind of runtime (audit C2: it used to `block_on` its own
//! runtime there, which panics). The calls still block the caller's thread:
//! an async caller should hand them to `spawn_blocking`, but none panics.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

use std::time::Duration;

use leasehold_core::{ActorKey, NodeId, SnapshotWrite, Store, Timestamp};
use leasehold_objectstore::{backend, ObjectStoreBackend};

fn round_trip() {
    let store = ObjectStoreBackend::open(backend::in_memory("async")).unwrap();
    let key = ActorKey::new("T", "a");
    let now = Timestamp::from_millis(1_000_000);
    let acquired = store
        .try_acquire(&key, &NodeId::new("n"), Duration::from_secs(30), now)
        .unwrap();
    let epoch = acquired.lease().unwrap().epoch;
    store
        .save(
            SnapshotWrite::new(key.clone(), vec![1, 2, 3]),
            0,
            epoch,
            now,
        )
        .unwrap();
    let loaded = store.load(&key, now).unwrap().unwrap();
    assert_eq!(loaded.state.as_ref(), [1, 2, 3]);
    store.close().unwrap();
    // Dropped here, inside the runtime: that must not panic either.
}

#[test]
fn the_store_works_inside_a_current_thread_runtime() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async { round_trip() });
}

#[test]
fn the_store_works_inside_a_multi_thread_runtime() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async { round_trip() });
    // And from a task on one of its workers.
    runtime
        .block_on(runtime.spawn(async { round_trip() }))
        .unwrap();
}
