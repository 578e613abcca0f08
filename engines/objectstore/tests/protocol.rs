//! What the object-store protocol adds to the conformance suite: takeover
//! fences, tombstones, the open-time check of the server, health probes and
//! request counters — on the real S3 server unless said otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

mod common;

use std::time::Duration;

use leasehold_core::{
    Acquire, ActorKey, Health, NodeId, SnapshotWrite, Store, StoreError, Timestamp,
};
use leasehold_objectstore::record::Envelope;
use leasehold_objectstore::{backend, ObjectStoreBackend, RequestKind};
use leasehold_testkit::conformance::StoreFactory;

const T0: Timestamp = Timestamp(1_800_000_000_000);

fn at(seconds: u64) -> Timestamp {
    T0.saturating_add(Duration::from_secs(seconds))
}

fn epoch_of(answer: Acquire) -> u64 {
    answer.lease().expect("acquired").epoch
}

#[test]
fn a_takeover_fences_out_the_old_holders_writes() {
    let factory = common::ObjectFactory::s3();
    let store = factory.open();
    let key = ActorKey::new("Fenced", "a");
    let (a, b) = (NodeId::new("a"), NodeId::new("b"));
    let old = epoch_of(
        store
            .try_acquire(&key, &a, Duration::from_secs(5), at(0))
            .unwrap(),
    );
    store
        .save(SnapshotWrite::new(key.clone(), &b"v1"[..]), 0, old, at(1))
        .unwrap();
    // a never releases; its lease runs out and b takes over.
    let new = epoch_of(
        store
            .try_acquire(&key, &b, Duration::from_secs(5), at(10))
            .unwrap(),
    );
    assert_eq!((old, new), (1, 2));
    assert_eq!(store.fences_written(), 1);
    let (bytes, _) = store
        .client()
        .get(&store.layout().snapshot(&key))
        .unwrap()
        .unwrap();
    let envelope = Envelope::decode(&bytes).unwrap();
    assert_eq!(envelope.fence, new);
    assert_eq!(envelope.snapshot.as_ref().unwrap().epoch, old);
    // a's late writes are refused by the fence, b's go through.
    assert!(matches!(
        store.save(
            SnapshotWrite::new(key.clone(), &b"late"[..]),
            1,
            old,
            at(11)
        ),
        Err(StoreError::StaleEpoch {
            given: 1,
            current: 2,
            ..
        })
    ));
    assert!(matches!(
        store.delete(&key, 1, old, at(11)),
        Err(StoreError::StaleEpoch { .. })
    ));
    store
        .save(SnapshotWrite::new(key.clone(), &b"v2"[..]), 1, new, at(11))
        .unwrap();
    // A released lease is fenced too: its holder may have a save in flight
    // whose answer it never got (FORMAT.md, "Takeover fence").
    store.release(&key, &b, new).unwrap();
    let third = epoch_of(
        store
            .try_acquire(&key, &a, Duration::from_secs(5), at(12))
            .unwrap(),
    );
    assert_eq!(store.fences_written(), 2);
    assert!(matches!(
        store.save(
            SnapshotWrite::new(key.clone(), &b"late"[..]),
            2,
            new,
            at(12)
        ),
        Err(StoreError::StaleEpoch { .. })
    ));
    assert_eq!(third, 3);
}

#[test]
fn a_takeover_before_any_snapshot_leaves_a_fencing_tombstone() {
    let store = common::ObjectFactory::s3().open();
    let key = ActorKey::new("Fenced", "empty");
    let old = epoch_of(
        store
            .try_acquire(&key, &NodeId::new("a"), Duration::from_secs(1), at(0))
            .unwrap(),
    );
    store
        .try_acquire(&key, &NodeId::new("b"), Duration::from_secs(1), at(5))
        .unwrap();
    assert_eq!(store.load(&key, at(5)).unwrap(), None);
    assert!(store.list("Fenced", at(5)).unwrap().is_empty());
    assert!(matches!(
        store.save(SnapshotWrite::new(key.clone(), &b"late"[..]), 0, old, at(6)),
        Err(StoreError::StaleEpoch { .. })
    ));
}

#[test]
fn delete_and_purge_leave_tombstones_that_read_as_absent() {
    let store = common::ObjectFactory::s3().open();
    let node = NodeId::new("n");
    let (kept, gone, expiring) = (
        ActorKey::new("Tomb", "kept"),
        ActorKey::new("Tomb", "gone"),
        ActorKey::new("Tomb", "expiring"),
    );
    for key in [&kept, &gone, &expiring] {
        let epoch = epoch_of(
            store
                .try_acquire(key, &node, Duration::from_secs(600), at(0))
                .unwrap(),
        );
        let mut write = SnapshotWrite::new(key.clone(), &b"state"[..]);
        if key == &expiring {
            write = write.with_ttl(Duration::from_secs(10));
        }
        store.save(write, 0, epoch, at(0)).unwrap();
    }
    store.delete(&gone, 1, 1, at(1)).unwrap();
    assert_eq!(store.purge_expired(at(20)).unwrap(), 1);
    let listed: Vec<String> = store
        .list("Tomb", at(20))
        .unwrap()
        .into_iter()
        .map(|info| info.key.actor_id)
        .collect();
    assert_eq!(listed, ["kept"]);
    for key in [&gone, &expiring] {
        assert_eq!(store.load(key, at(20)).unwrap(), None);
        let (bytes, _) = store
            .client()
            .get(&store.layout().snapshot(key))
            .unwrap()
            .expect("a tombstone stays");
        assert_eq!(Envelope::decode(&bytes).unwrap().snapshot, None);
    }
    // A deleted actor starts again at version 1.
    let saved = store
        .save(
            SnapshotWrite::new(gone.clone(), &b"again"[..]),
            0,
            1,
            at(21),
        )
        .unwrap();
    assert_eq!(saved.version, 1);
}

#[test]
fn health_probes_the_server_and_counters_see_every_request() {
    let store = common::ObjectFactory::s3().open();
    assert_eq!(store.health(), Health::Healthy);
    let key = ActorKey::new("Counted", "a");
    let epoch = epoch_of(
        store
            .try_acquire(&key, &NodeId::new("n"), Duration::from_secs(60), at(0))
            .unwrap(),
    );
    store
        .save(
            SnapshotWrite::new(key.clone(), vec![7u8; 10_000]),
            0,
            epoch,
            at(1),
        )
        .unwrap();
    let stats = store.client_stats();
    assert!(stats.requests(RequestKind::Put) >= 2 + 3, "{stats:?}");
    assert!(stats.bytes_sent >= 10_000, "{stats:?}");
    let metrics = store.metrics();
    assert_eq!(metrics.state_bytes_written, 10_000);
    assert_eq!(
        metrics.engine.unwrap().device_bytes_written,
        stats.bytes_sent
    );
    store.close().unwrap();
    assert!(matches!(store.health(), Health::Failed(_)));
}

#[test]
fn wrong_credentials_fail_at_open_with_the_servers_answer() {
    let mut config = common::s3_config(&common::unique_prefix("denied"));
    config.secret_access_key = Some("not-the-secret".into());
    let err = ObjectStoreBackend::open(backend::s3(&config).unwrap())
        .err()
        .expect("a wrong secret is refused");
    let message = err.to_string();
    assert!(
        message.contains("SignatureDoesNotMatch") || message.contains("403"),
        "{message}"
    );
}

#[test]
fn an_unreachable_server_fails_at_open_within_its_timeout() {
    let mut config = common::s3_config(&common::unique_prefix("unreachable"));
    // Nothing listens on port 9 of loopback.
    config.endpoint = Some("http://127.0.0.1:9".into());
    config.connection_timeout_seconds = 1;
    config.retry_count = 1;
    let started = std::time::Instant::now();
    let err = ObjectStoreBackend::open(backend::s3(&config).unwrap())
        .err()
        .expect("nothing to talk to");
    assert!(matches!(err, StoreError::Engine(_)), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_server_that_ignores_conditions_is_refused() {
    // object_store's local-file store has no If-Match: the store must not open
    // on it rather than hand out leases it cannot arbitrate.
    let dir = tempfile::tempdir().unwrap();
    let backend = leasehold_objectstore::Backend {
        store: std::sync::Arc::new(
            object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap(),
        ),
        prefix: "leasehold".into(),
        kind: "local",
    };
    let err = ObjectStoreBackend::open(backend).err().expect("refused");
    assert!(err.to_string().contains("object"), "{err}");
}
