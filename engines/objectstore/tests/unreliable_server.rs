//! What a real network and server can do that `object_store`'s in-memory store
//! does not, played by a wrapper around it:
//! - a conditional PUT lands while its answer is lost; the client retries, and
//!   the server refuses the retry because the object changed — by our own
//!   first attempt. The store must see its own bytes and report success;
//! - an object says it is larger than anything the store writes; the store
//!   must refuse it before reading its body;
//! - another node's write lands between a read and the conditional PUT made
//!   from it (a renewal racing a takeover).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;
use leasehold_core::{Acquire, ActorKey, NodeId, SnapshotWrite, Store, StoreError, Timestamp};
use leasehold_objectstore::{Backend, ObjectStoreBackend};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};

/// Applies every PUT, but answers the next `lose` conditional ones that
/// landed with "precondition failed", as a retry after a lost answer would;
/// with `huge`, every object read claims to be 4 GiB; `interpose` lands its
/// bytes at its path just before the next conditional PUT there.
#[derive(Debug, Default)]
struct Unreliable {
    inner: InMemory,
    lose: AtomicUsize,
    huge: AtomicBool,
    interpose: parking_lot::Mutex<Option<(Path, bytes::Bytes)>>,
}

impl fmt::Display for Unreliable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Unreliable({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for Unreliable {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let conditional = !matches!(opts.mode, PutMode::Overwrite);
        let racing = {
            let mut interpose = self.interpose.lock();
            match interpose.as_ref() {
                Some((path, _)) if conditional && path == location => interpose.take(),
                _ => None,
            }
        };
        if let Some((path, bytes)) = racing {
            self.inner
                .put_opts(&path, bytes.into(), PutOptions::default())
                .await?;
        }
        let result = self.inner.put_opts(location, payload, opts).await;
        let lost = conditional
            && result.is_ok()
            && self
                .lose
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                    left.checked_sub(1)
                })
                .is_ok();
        if lost {
            return Err(object_store::Error::Precondition {
                path: location.to_string(),
                source: "the first attempt landed, its answer was lost, the retry was refused"
                    .into(),
            });
        }
        result
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let mut answer = self.inner.get_opts(location, options).await?;
        if self.huge.load(Ordering::SeqCst) {
            answer.meta.size = 4 << 30;
        }
        Ok(answer)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

/// A store over a fresh unreliable server (well-behaved until told otherwise).
fn open() -> (Arc<Unreliable>, ObjectStoreBackend) {
    let network = Arc::new(Unreliable::default());
    let store = ObjectStoreBackend::open(Backend {
        store: network.clone(),
        prefix: "leasehold".into(),
        kind: "memory",
    })
    .unwrap();
    (network, store)
}

#[test]
fn a_write_whose_answer_was_lost_is_recognised_as_our_own() {
    let (network, store) = open();
    let refused_at_open = store.client_stats().conditions_failed;
    let key = ActorKey::new("Lossy", "a");
    let node = NodeId::new("n");
    let now = Timestamp(1_800_000_000_000);

    network.lose.store(1, Ordering::SeqCst);
    let Acquire::Acquired(lease) = store
        .try_acquire(&key, &node, Duration::from_secs(60), now)
        .unwrap()
    else {
        panic!("our own create-only PUT landed: the lease is ours")
    };
    assert_eq!(lease.epoch, 1);

    network.lose.store(1, Ordering::SeqCst);
    let saved = store
        .save(SnapshotWrite::new(key.clone(), &b"state"[..]), 0, 1, now)
        .unwrap();
    assert_eq!(saved.version, 1);
    assert_eq!(store.load(&key, now).unwrap().unwrap().state, &b"state"[..]);

    network.lose.store(1, Ordering::SeqCst);
    let renewed = store.renew(&key, &node, 1, now).unwrap();
    assert_eq!(renewed.renewals, 1);
    assert_eq!(
        network.lose.load(Ordering::SeqCst),
        0,
        "every answer was lost once"
    );
    // Each lost answer was counted as a refused condition, then recognised.
    assert_eq!(store.client_stats().conditions_failed - refused_at_open, 3);
}

#[test]
fn an_object_larger_than_any_the_store_writes_is_refused_unread() {
    let (network, store) = open();
    let key = ActorKey::new("Huge", "a");
    let now = Timestamp(1_800_000_000_000);
    store
        .try_acquire(&key, &NodeId::new("n"), Duration::from_secs(60), now)
        .unwrap();
    network.huge.store(true, Ordering::SeqCst);
    let err = store.get_lease(&key).unwrap_err();
    assert!(
        matches!(&err, StoreError::CorruptRecord { reason, .. } if reason.contains("limit")),
        "{err}"
    );
    assert_eq!(store.client_stats().bytes_received, 0);
}

/// L1: a takeover by a node whose clock says the lease ran out, losing its
/// lease PUT to the holder's renewal, used to leave the snapshot fenced at the
/// epoch it never got: the live holder's every save was then `StaleEpoch`.
#[test]
fn a_takeover_that_loses_to_a_renewal_leaves_the_holder_able_to_save() {
    let (network, store) = open();
    let key = ActorKey::new("Racing", "a");
    let (a, b) = (NodeId::new("a"), NodeId::new("b"));
    let t0 = Timestamp(1_800_000_000_000);
    let term = Duration::from_secs(10);
    store.try_acquire(&key, &a, term, t0).unwrap();
    store
        .save(SnapshotWrite::new(key.clone(), &b"v1"[..]), 0, 1, t0)
        .unwrap();
    // The holder's renewal lands between b's read of the lease and b's PUT.
    let mut renewed = store.get_lease(&key).unwrap().unwrap();
    renewed.expires_at = t0.saturating_add(Duration::from_secs(100));
    renewed.version += 1;
    renewed.renewals += 1;
    *network.interpose.lock() = Some((
        store.layout().lease(&key),
        bytes::Bytes::from(renewed.encode()),
    ));
    let b_clock = t0.saturating_add(Duration::from_secs(20));
    match store.try_acquire(&key, &b, term, b_clock).unwrap() {
        Acquire::Held { holder, epoch, .. } => assert_eq!((holder, epoch), (a.clone(), 1)),
        other => panic!("the renewal came first: {other:?}"),
    }
    assert!(network.interpose.lock().is_none(), "the race was played");
    store
        .save(SnapshotWrite::new(key.clone(), &b"v2"[..]), 1, 1, b_clock)
        .expect("the live holder saves");
    assert_eq!(store.fences_written(), 0);
}

/// L2: a takeover of a released lease wrote no fence, so a save the releaser
/// decided earlier (its answer lost, say) still matched the snapshot's ETag
/// and landed after the new grant, under the old epoch.
#[test]
fn a_takeover_of_a_released_lease_fences_out_the_releasers_late_save() {
    use leasehold_objectstore::client::{Condition, Written};
    use leasehold_objectstore::record::Envelope;
    let (_network, store) = open();
    let key = ActorKey::new("Released", "a");
    let (a, d) = (NodeId::new("a"), NodeId::new("d"));
    let now = Timestamp(1_800_000_000_000);
    let term = Duration::from_secs(10);
    store.try_acquire(&key, &a, term, now).unwrap();
    let v1 = store
        .save(SnapshotWrite::new(key.clone(), &b"v1"[..]), 0, 1, now)
        .unwrap();
    // a decides its next save: it has read the lease (epoch 1) and the
    // snapshot object's ETag; its PUT is delayed.
    let path = store.layout().snapshot(&key);
    let (_, read_etag) = store.client().get(&path).unwrap().unwrap();
    let late = leasehold_core::rules::next_snapshot(
        SnapshotWrite::new(key.clone(), &b"late"[..]),
        Some(&v1),
        1,
        now,
    )
    .unwrap();
    store.release(&key, &a, 1).unwrap();
    assert_eq!(epoch_of(store.try_acquire(&key, &d, term, now).unwrap()), 2);
    let landed = store
        .client()
        .put(
            &path,
            Envelope::settled(1, Some(late)).encode(),
            &Condition::Matches(read_etag),
        )
        .unwrap();
    assert!(matches!(landed, Written::ConditionFailed), "{landed:?}");
    assert_eq!(store.load(&key, now).unwrap().unwrap().state, &b"v1"[..]);
}

fn epoch_of(answer: Acquire) -> u64 {
    answer.lease().expect("acquired").epoch
}
