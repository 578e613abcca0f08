//! The conformance suite: the behaviour every `Store` must show, written once
//! and run over every engine with `store_conformance_tests!`.
//!
//! An engine crate plugs in with a `StoreFactory` (how to open its store at one
//! location, whether it survives a reopen, how to damage a stored state) and
//! one line in its tests:
//! ```ignore
//! leasehold_testkit::store_conformance_tests!(MyFactory::new());
//! ```
//! The expression is evaluated afresh for every test, so each runs on its own
//! empty store.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Barrier;
use std::time::Duration;

use bytes::Bytes;

use leasehold_core::error::StoreError;
use leasehold_core::key::ActorKey;
use leasehold_core::kv::{Durability, Health, KvEngine, WriteBatch};
use leasehold_core::kvstore::{snapshot_key, KvStore};
use leasehold_core::lease::NodeId;
use leasehold_core::metrics::OpKind;
use leasehold_core::snapshot::{Snapshot, SnapshotWrite};
use leasehold_core::store::{Acquire, CommitOp, LeaseFilter, Store};
use leasehold_core::time::Timestamp;

/// How the suite gets at one engine's store.
pub trait StoreFactory {
    type Store: Store;
    /// Opens the store at this factory's location, creating it the first time.
    fn open(&self) -> Self::Store;
    /// Whether data survives `close` and `open`.
    fn durable(&self) -> bool;
    /// Changes one byte of the stored state of `key`'s snapshot, leaving the
    /// stored hash as it was (bit rot the engine's own checksums did not see).
    fn tamper_state(&self, store: &Self::Store, key: &ActorKey);
    /// Whether `commit` is atomic across actors. A store that cannot promise
    /// it must answer every commit with `Unsupported`, and the suite checks
    /// that it does (and that nothing was applied).
    fn supports_commit(&self) -> bool {
        true
    }
}

/// The factory of an engine kept in a directory, as a `Store` through
/// `KvStore` (at `Sync` unless told): each test gets a fresh directory, and
/// a stored state is damaged through the engine. What every on-disk engine's
/// conformance test needs but how to open it:
/// ```ignore
/// leasehold_testkit::store_conformance_tests!(KvOnDisk::new(|dir| MyEngine::open(dir)));
/// ```
pub struct KvOnDisk<E> {
    dir: tempfile::TempDir,
    open: Box<OpenAt<E>>,
    durability: Durability,
}

/// Opens an engine on a directory.
type OpenAt<E> = dyn Fn(&std::path::Path) -> leasehold_core::KvResult<E>;

impl<E: KvEngine> KvOnDisk<E> {
    pub fn new(open: impl Fn(&std::path::Path) -> leasehold_core::KvResult<E> + 'static) -> Self {
        KvOnDisk {
            dir: tempfile::tempdir().expect("temp dir"),
            open: Box::new(open),
            durability: Durability::Sync,
        }
    }

    /// The store writes at `durability` instead of `Sync`.
    pub fn at(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }
}

impl<E: KvEngine> StoreFactory for KvOnDisk<E> {
    type Store = KvStore<E>;

    fn open(&self) -> Self::Store {
        let engine = (self.open)(self.dir.path()).expect("open the engine");
        KvStore::new(engine, self.durability)
    }

    fn durable(&self) -> bool {
        true
    }

    fn tamper_state(&self, store: &Self::Store, key: &ActorKey) {
        tamper_kv_state(store, key);
    }
}

/// For a store without multi-actor commits: every commit is refused with
/// `Unsupported` and applies nothing. True when that was checked.
fn commit_refused<F: StoreFactory>(
    factory: &F,
    store: &F::Store,
    key: &ActorKey,
    epoch: u64,
) -> bool {
    if factory.supports_commit() {
        return false;
    }
    let ops = vec![CommitOp::Save {
        snapshot: SnapshotWrite::new(key.clone(), &b"never"[..]),
        expected_version: 0,
        fence_epoch: epoch,
    }];
    assert!(matches!(
        store.commit(ops, at(1)),
        Err(StoreError::Unsupported(_))
    ));
    assert_eq!(store.load(key, at(1)).expect("load"), None);
    true
}

/// `tamper_state` for any `KvStore`: rewrites the record through the engine.
pub fn tamper_kv_state<E: KvEngine>(store: &KvStore<E>, key: &ActorKey) {
    let engine_key = snapshot_key(key);
    let bytes = store
        .engine()
        .get(&engine_key)
        .expect("read snapshot record")
        .expect("snapshot record exists");
    let mut snapshot = Snapshot::decode(&bytes).expect("snapshot record decodes");
    let mut state = snapshot.state.to_vec();
    assert!(!state.is_empty(), "tamper needs a non-empty state");
    state[0] ^= 0x01;
    snapshot.state = Bytes::from(state);
    let mut batch = WriteBatch::new();
    batch.put(engine_key, snapshot.encode());
    store
        .engine()
        .write(batch, store.durability())
        .expect("write tampered record");
}

const SECOND: Duration = Duration::from_secs(1);

fn at(seconds: u64) -> Timestamp {
    Timestamp(1_700_000_000_000 + seconds * 1000)
}

fn actor(id: &str) -> ActorKey {
    ActorKey::new("UserActor", id)
}

fn node(name: &str) -> NodeId {
    NodeId::new(name)
}

fn acquired(
    store: &impl Store,
    key: &ActorKey,
    who: &str,
    duration: Duration,
    now: Timestamp,
) -> u64 {
    match store
        .try_acquire(key, &node(who), duration, now)
        .expect("try_acquire")
    {
        Acquire::Acquired(lease) => lease.epoch,
        Acquire::Held { holder, .. } => panic!("{who} expected to acquire {key}, held by {holder}"),
    }
}

mod commits;
mod leases;
mod snapshots;

pub use commits::*;
pub use leases::*;
pub use snapshots::*;

/// Every test of the suite for `$factory` (an expression evaluated per test).
#[macro_export]
macro_rules! store_conformance_tests {
    ($factory:expr) => {
        $crate::store_conformance_tests!(@tests $factory;
            acquire_is_exclusive_under_contention,
            epoch_rises_on_every_takeover,
            renew_and_release_enforce_ownership,
            stale_epoch_save_is_rejected,
            version_conflicts_are_reported,
            tampered_state_fails_integrity,
            ttl_hides_and_purge_removes_expired_snapshots,
            listing_by_type_node_and_expiry,
            commit_is_all_or_nothing,
            concurrent_commits_keep_actors_in_step,
            data_survives_reopen,
        );
    };
    (@tests $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::conformance::$name(&$factory);
            }
        )*
    };
}

/// The suite over `KvStore` on the toy log engine: proves the suite, the store
/// and the rules in core alone, before any real engine.
#[cfg(test)]
mod toy_store {
    use std::sync::Arc;

    use super::*;
    use crate::toy::ToyLogEngine;
    use leasehold_core::vfs::OsVfs;

    crate::store_conformance_tests!(KvOnDisk::new(|dir| ToyLogEngine::open(
        Arc::new(OsVfs::new()),
        dir,
        false
    ))
    .at(Durability::Buffered));
}
