//! What a real network and server can do that `object_store`'s in-memory store
//! does not, played by a wrapper around it:
//! - a conditional PUT lands while its answer is lost; the client retries, and
//!   the server refuses the retry because the object changed — by our own
//!   first attempt. The store must see its own bytes and report success;
//! - an object says it is larger than anything the store writes; the store
//!   must refuse it before reading its body.

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
/// with `huge`, every object read claims to be 4 GiB.
#[derive(Debug, Default)]
struct Unreliable {
    inner: InMemory,
    lose: AtomicUsize,
    huge: AtomicBool,
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
