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
use leasehold_core::kv::{Health, KvEngine, WriteBatch};
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

/// N threads race for each of several actors: exactly one wins each.
pub fn acquire_is_exclusive_under_contention<F: StoreFactory>(factory: &F) {
    let store = factory.open();
    const THREADS: usize = 8;
    const ACTORS: usize = 25;
    let winners: Vec<AtomicUsize> = (0..ACTORS).map(|_| AtomicUsize::new(0)).collect();
    let barrier = Barrier::new(THREADS);
    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let (store, winners, barrier) = (&store, &winners, &barrier);
            scope.spawn(move || {
                barrier.wait();
                for (index, wins) in winners.iter().enumerate() {
                    let key = actor(&format!("contended-{index}"));
                    let who = node(&format!("node-{thread}"));
                    if let Acquire::Acquired(lease) = store
                        .try_acquire(&key, &who, 30 * SECOND, at(0))
                        .expect("acquire")
                    {
                        assert_eq!(lease.node_id.as_ref(), Some(&who));
                        wins.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
        }
    });
    for (index, wins) in winners.iter().enumerate() {
        assert_eq!(
            wins.load(Ordering::SeqCst),
            1,
            "actor {index} must have exactly one owner"
        );
    }
    let leases = store
        .list_leases(&LeaseFilter {
            now: at(1),
            ..LeaseFilter::default()
        })
        .expect("list");
    assert_eq!(leases.len(), ACTORS);
    assert!(leases.iter().all(|lease| lease.epoch == 1));
}

/// The epoch rises on every change of owner and never goes back.
pub fn epoch_rises_on_every_takeover<F: StoreFactory>(factory: &F) {
    let store = factory.open();
    let key = actor("epochs");
    assert_eq!(acquired(&store, &key, "a", 10 * SECOND, at(0)), 1);
    // Held, not expired: no takeover.
    let held = store
        .try_acquire(&key, &node("b"), 10 * SECOND, at(9))
        .expect("acquire");
    assert_eq!(
        held,
        Acquire::Held {
            holder: node("a"),
            epoch: 1,
            expires_at: at(10)
        }
    );
    // The owner asking again gets the same lease back.
    assert_eq!(acquired(&store, &key, "a", 10 * SECOND, at(5)), 1);
    // Expired: taken over with a new epoch.
    assert_eq!(acquired(&store, &key, "b", 10 * SECOND, at(10)), 2);
    let renewed = store.renew(&key, &node("b"), 2, at(15)).expect("renew");
    assert_eq!(
        (renewed.epoch, renewed.renewals, renewed.expires_at),
        (2, 1, at(25))
    );
    let released = store.release(&key, &node("b"), 2).expect("release");
    assert_eq!((released.epoch, released.node_id.clone()), (2, None));
    // The record stays, and the next owner continues the sequence.
    assert_eq!(store.get_lease(&key).expect("get").expect("kept").epoch, 2);
    assert_eq!(acquired(&store, &key, "a", 10 * SECOND, at(16)), 3);
    let lease = store.get_lease(&key).expect("get").expect("lease");
    assert!(
        lease.version > renewed.version,
        "version rises on every write"
    );
}

/// Renew and release need the owner, the current epoch, and (renew) time left.
pub fn renew_and_release_enforce_ownership<F: StoreFactory>(factory: &F) {
    let store = factory.open();
    let key = actor("owned");
    let epoch = acquired(&store, &key, "a", 10 * SECOND, at(0));
    assert!(matches!(
        store.renew(&key, &node("b"), epoch, at(1)),
        Err(StoreError::NotOwner { .. })
    ));
    assert!(matches!(
        store.release(&key, &node("b"), epoch),
        Err(StoreError::NotOwner { .. })
    ));
    assert!(matches!(
        store.renew(&key, &node("a"), epoch + 1, at(1)),
        Err(StoreError::NotOwner { .. })
    ));
    assert!(matches!(
        store.renew(&key, &node("a"), epoch, at(10)),
        Err(StoreError::LeaseExpired { .. })
    ));
    assert!(matches!(
        store.renew(&actor("never"), &node("a"), 1, at(1)),
        Err(StoreError::NotOwner { .. })
    ));
    // The old owner after a takeover: stale.
    acquired(&store, &key, "b", 10 * SECOND, at(11));
    assert!(matches!(
        store.renew(&key, &node("a"), epoch, at(12)),
        Err(StoreError::StaleEpoch { .. })
    ));
    assert!(matches!(
        store.release(&key, &node("a"), epoch),
        Err(StoreError::StaleEpoch { .. })
    ));
    assert!(matches!(
        store.try_acquire(&key, &node("a"), Duration::ZERO, at(12)),
        Err(StoreError::InvalidArgument(_))
    ));
}

/// A node that lost its lease cannot save over the new owner, even before the
/// new owner has written anything.
pub fn stale_epoch_save_is_rejected<F: StoreFactory>(factory: &F) {
    let store = factory.open();
    let key = actor("fenced");
    let old = acquired(&store, &key, "a", 10 * SECOND, at(0));
    let saved = store
        .save(SnapshotWrite::new(key.clone(), &b"v1"[..]), 0, old, at(1))
        .expect("save");
    assert_eq!((saved.version, saved.epoch), (1, old));
    let new = acquired(&store, &key, "b", 10 * SECOND, at(10));
    let stale = store.save(
        SnapshotWrite::new(key.clone(), &b"zombie"[..]),
        1,
        old,
        at(11),
    );
    assert!(
        matches!(stale, Err(StoreError::StaleEpoch { given, current, .. }) if given == old && current == new)
    );
    assert!(matches!(
        store.delete(&key, 1, old, at(11)),
        Err(StoreError::StaleEpoch { .. })
    ));
    let loaded = store.load(&key, at(11)).expect("load").expect("snapshot");
    assert_eq!(loaded.state, Bytes::from_static(b"v1"));
    let saved = store
        .save(SnapshotWrite::new(key.clone(), &b"v2"[..]), 1, new, at(12))
        .expect("new owner saves");
    assert_eq!((saved.version, saved.epoch), (2, new));
    // An epoch never granted is refused too.
    assert!(matches!(
        store.save(
            SnapshotWrite::new(key.clone(), &b"x"[..]),
            2,
            new + 5,
            at(12)
        ),
        Err(StoreError::InvalidArgument(_))
    ));
}

/// Saves carry the expected version; a mismatch is a conflict and changes nothing.
pub fn version_conflicts_are_reported<F: StoreFactory>(factory: &F) {
    let store = factory.open();
    let key = actor("versions");
    let epoch = acquired(&store, &key, "a", 60 * SECOND, at(0));
    store
        .save(
            SnapshotWrite::new(key.clone(), &b"one"[..]),
            0,
            epoch,
            at(1),
        )
        .expect("first save");
    let conflict = store.save(
        SnapshotWrite::new(key.clone(), &b"two"[..]),
        0,
        epoch,
        at(2),
    );
    assert!(matches!(
        conflict,
        Err(StoreError::VersionConflict {
            expected: 0,
            actual: 1,
            ..
        })
    ));
    let second = store
        .save(
            SnapshotWrite::new(key.clone(), &b"two"[..]),
            1,
            epoch,
            at(3),
        )
        .expect("second save");
    assert_eq!(second.version, 2);
    assert_eq!(
        second.created_at,
        at(1),
        "created_at is kept across versions"
    );
    assert_eq!(second.updated_at, at(3));
    assert!(matches!(
        store.delete(&key, 1, epoch, at(4)),
        Err(StoreError::VersionConflict { .. })
    ));
    store.delete(&key, 2, epoch, at(4)).expect("delete");
    assert_eq!(store.load(&key, at(5)).expect("load"), None);
    let metrics = store.metrics();
    assert_eq!(metrics.version_conflicts, 2);
    assert_eq!(metrics.op(OpKind::Save).map(|op| op.count), Some(3));
}

/// A state whose bytes do not match the stored SHA-256 is never returned.
pub fn tampered_state_fails_integrity<F: StoreFactory>(factory: &F) {
    let store = factory.open();
    let key = actor("tampered");
    let epoch = acquired(&store, &key, "a", 60 * SECOND, at(0));
    let write = SnapshotWrite::new(key.clone(), &b"{\"balance\":100}"[..]).with_tag("node_id", "a");
    let saved = store.save(write, 0, epoch, at(1)).expect("save");
    let loaded = store.load(&key, at(2)).expect("load").expect("present");
    assert_eq!(loaded, saved);
    assert!(loaded.verify_hash().is_ok());
    factory.tamper_state(&store, &key);
    assert!(matches!(
        store.load(&key, at(2)),
        Err(StoreError::Integrity { .. })
    ));
    assert_eq!(store.metrics().integrity_failures, 1);
}

/// Expired snapshots are invisible and purged; fresh ones are not.
pub fn ttl_hides_and_purge_removes_expired_snapshots<F: StoreFactory>(factory: &F) {
    let store = factory.open();
    let short = actor("short-lived");
    let long = actor("long-lived");
    for key in [&short, &long] {
        let epoch = acquired(&store, key, "a", 600 * SECOND, at(0));
        let ttl = if key == &short {
            10 * SECOND
        } else {
            1000 * SECOND
        };
        store
            .save(
                SnapshotWrite::new(key.clone(), &b"state"[..]).with_ttl(ttl),
                0,
                epoch,
                at(0),
            )
            .expect("save");
    }
    assert!(store.load(&short, at(9)).expect("load").is_some());
    assert_eq!(store.load(&short, at(10)).expect("load"), None);
    let listed: Vec<ActorKey> = store
        .list("UserActor", at(10))
        .expect("list")
        .into_iter()
        .map(|info| info.key)
        .collect();
    assert_eq!(listed, std::slice::from_ref(&long));
    // An expired snapshot counts as absent for the next save.
    let epoch = store.get_lease(&short).expect("get").expect("lease").epoch;
    assert!(matches!(
        store.save(
            SnapshotWrite::new(short.clone(), &b"x"[..]),
            1,
            epoch,
            at(11)
        ),
        Err(StoreError::VersionConflict { actual: 0, .. })
    ));
    assert_eq!(store.purge_expired(at(10)).expect("purge"), 1);
    assert_eq!(store.purge_expired(at(10)).expect("purge again"), 0);
    assert!(store.load(&long, at(10)).expect("load").is_some());
}

/// `list` and `list_leases` return one type's actors, in id order, filtered.
pub fn listing_by_type_node_and_expiry<F: StoreFactory>(factory: &F) {
    let store = factory.open();
    for (actor_type, id, who) in [
        ("Order", "o-2", "n1"),
        ("Order", "o-1", "n2"),
        ("User", "u-1", "n1"),
    ] {
        let key = ActorKey::new(actor_type, id);
        let epoch = acquired(&store, &key, who, 10 * SECOND, at(0));
        store
            .save(
                SnapshotWrite::new(key, id.as_bytes().to_vec()),
                0,
                epoch,
                at(0),
            )
            .expect("save");
    }
    let ids: Vec<String> = store
        .list("Order", at(1))
        .expect("list")
        .into_iter()
        .map(|info| info.key.actor_id)
        .collect();
    assert_eq!(ids, ["o-1", "o-2"]);
    assert!(
        store.list("Ord", at(1)).expect("list").is_empty(),
        "a type prefix is not a type"
    );
    let by_node = store
        .list_leases(&LeaseFilter {
            node_id: Some(node("n1")),
            now: at(1),
            ..LeaseFilter::default()
        })
        .expect("list leases");
    assert_eq!(by_node.len(), 2);
    let orders = store
        .list_leases(&LeaseFilter {
            actor_type: Some("Order".into()),
            now: at(1),
            ..LeaseFilter::default()
        })
        .expect("list leases");
    assert_eq!(orders.len(), 2);
    store
        .renew(&ActorKey::new("User", "u-1"), &node("n1"), 1, at(9))
        .expect("renew");
    let expired = store
        .list_leases(&LeaseFilter {
            expired: Some(true),
            now: at(12),
            ..LeaseFilter::default()
        })
        .expect("list leases");
    let expired_ids: Vec<&str> = expired
        .iter()
        .map(|lease| lease.key.actor_id.as_str())
        .collect();
    assert_eq!(expired_ids, ["o-1", "o-2"]);
}

/// A multi-actor commit applies every op or none.
pub fn commit_is_all_or_nothing<F: StoreFactory>(factory: &F) {
    let store = factory.open();
    let (a, b, c) = (actor("a"), actor("b"), actor("c"));
    let mut epochs = BTreeMap::new();
    for key in [&a, &b, &c] {
        epochs.insert(key.clone(), acquired(&store, key, "n", 60 * SECOND, at(0)));
    }
    if commit_refused(factory, &store, &a, epochs[&a]) {
        return;
    }
    store
        .save(
            SnapshotWrite::new(c.clone(), &b"c1"[..]),
            0,
            epochs[&c],
            at(0),
        )
        .expect("save c");
    let save = |key: &ActorKey, state: &'static [u8], expected_version| CommitOp::Save {
        snapshot: SnapshotWrite::new(key.clone(), state),
        expected_version,
        fence_epoch: epochs[key],
    };
    let failing = vec![save(&a, b"a1", 0), save(&b, b"b1", 7)];
    assert!(matches!(
        store.commit(failing, at(1)),
        Err(StoreError::VersionConflict { .. })
    ));
    assert_eq!(
        store.load(&a, at(1)).expect("load"),
        None,
        "nothing of a failed commit is applied"
    );
    let stale = vec![
        save(&a, b"a1", 0),
        CommitOp::Save {
            snapshot: SnapshotWrite::new(b.clone(), &b"b1"[..]),
            expected_version: 0,
            fence_epoch: 0,
        },
    ];
    assert!(matches!(
        store.commit(stale, at(1)),
        Err(StoreError::StaleEpoch { .. })
    ));
    assert_eq!(store.load(&a, at(1)).expect("load"), None);
    let duplicate = vec![save(&a, b"a1", 0), save(&a, b"a2", 1)];
    assert!(matches!(
        store.commit(duplicate, at(1)),
        Err(StoreError::InvalidArgument(_))
    ));
    let ok = vec![
        save(&a, b"a1", 0),
        save(&b, b"b1", 0),
        CommitOp::Delete {
            key: c.clone(),
            expected_version: 1,
            fence_epoch: epochs[&c],
        },
    ];
    let results = store.commit(ok, at(2)).expect("commit");
    assert_eq!(
        results
            .iter()
            .map(|result| result.as_ref().map(|s| s.version))
            .collect::<Vec<_>>(),
        [Some(1), Some(1), None]
    );
    assert_eq!(
        store.load(&a, at(3)).expect("load").expect("a").state,
        Bytes::from_static(b"a1")
    );
    assert_eq!(
        store.load(&b, at(3)).expect("load").expect("b").state,
        Bytes::from_static(b"b1")
    );
    assert_eq!(store.load(&c, at(3)).expect("load"), None);
}

/// Concurrent commits over overlapping actors never lose an update: each
/// successful commit bumps both actors' versions together.
pub fn concurrent_commits_keep_actors_in_step<F: StoreFactory>(factory: &F) {
    let store = factory.open();
    let (a, b) = (actor("pair-a"), actor("pair-b"));
    let epoch_a = acquired(&store, &a, "n", 600 * SECOND, at(0));
    let epoch_b = acquired(&store, &b, "n", 600 * SECOND, at(0));
    if commit_refused(factory, &store, &a, epoch_a) {
        return;
    }
    let successes = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..25 {
                    let version_a = store
                        .load(&a, at(1))
                        .expect("load")
                        .map_or(0, |s| s.version);
                    let version_b = store
                        .load(&b, at(1))
                        .expect("load")
                        .map_or(0, |s| s.version);
                    let ops = vec![
                        CommitOp::Save {
                            snapshot: SnapshotWrite::new(a.clone(), &b"x"[..]),
                            expected_version: version_a,
                            fence_epoch: epoch_a,
                        },
                        CommitOp::Save {
                            snapshot: SnapshotWrite::new(b.clone(), &b"y"[..]),
                            expected_version: version_b,
                            fence_epoch: epoch_b,
                        },
                    ];
                    match store.commit(ops, at(1)) {
                        Ok(_) => {
                            successes.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(StoreError::VersionConflict { .. }) => {}
                        Err(err) => panic!("unexpected commit error: {err}"),
                    }
                }
            });
        }
    });
    let successes = successes.load(Ordering::SeqCst) as u64;
    assert!(successes > 0);
    assert_eq!(
        store.load(&a, at(2)).expect("load").expect("a").version,
        successes
    );
    assert_eq!(
        store.load(&b, at(2)).expect("load").expect("b").version,
        successes
    );
}

/// Leases and snapshots (large ones included) survive close and reopen.
pub fn data_survives_reopen<F: StoreFactory>(factory: &F) {
    let large: Vec<u8> = (0..(1 << 20) + 17)
        .map(|index: u32| (index % 251) as u8)
        .collect();
    let key = actor("persistent");
    let big = actor("large-state");
    {
        let store = factory.open();
        let epoch = acquired(&store, &key, "a", 60 * SECOND, at(0));
        store
            .save(
                SnapshotWrite::new(key.clone(), &b"kept"[..]).with_tag("k", "v"),
                0,
                epoch,
                at(1),
            )
            .expect("save");
        let epoch = acquired(&store, &big, "a", 60 * SECOND, at(0));
        store
            .save(
                SnapshotWrite::new(big.clone(), large.clone()),
                0,
                epoch,
                at(1),
            )
            .expect("save large");
        if factory.durable() {
            store.sync().expect("sync");
        } else {
            assert!(
                store.sync().is_err(),
                "a volatile store cannot promise durability"
            );
        }
        store.close().expect("close");
        assert!(matches!(store.load(&key, at(1)), Err(StoreError::Closed)));
        assert!(matches!(store.health(), Health::Failed(_)));
    }
    let store = factory.open();
    if !factory.durable() {
        assert_eq!(
            store.get_lease(&key).expect("get"),
            None,
            "a volatile store starts empty"
        );
        return;
    }
    let lease = store.get_lease(&key).expect("get").expect("lease survives");
    assert_eq!((lease.epoch, lease.node_id), (1, Some(node("a"))));
    let snapshot = store
        .load(&key, at(2))
        .expect("load")
        .expect("snapshot survives");
    assert_eq!(snapshot.state, Bytes::from_static(b"kept"));
    assert_eq!(snapshot.tags.get("k").map(String::as_str), Some("v"));
    let large_loaded = store
        .load(&big, at(2))
        .expect("load")
        .expect("large snapshot survives");
    assert_eq!(large_loaded.state.len(), large.len());
    assert!(large_loaded.state == large);
    assert_eq!(store.health(), Health::Healthy);
}

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
    use leasehold_core::kv::Durability;
    use leasehold_core::vfs::OsVfs;

    struct ToyFactory {
        dir: tempfile::TempDir,
    }

    impl ToyFactory {
        fn new() -> Self {
            ToyFactory {
                dir: tempfile::tempdir().expect("temp dir"),
            }
        }
    }

    impl StoreFactory for ToyFactory {
        type Store = KvStore<ToyLogEngine>;

        fn open(&self) -> Self::Store {
            let engine = ToyLogEngine::open(Arc::new(OsVfs::new()), self.dir.path(), false)
                .expect("open toy");
            KvStore::new(engine, Durability::Buffered)
        }

        fn durable(&self) -> bool {
            true
        }

        fn tamper_state(&self, store: &Self::Store, key: &ActorKey) {
            tamper_kv_state(store, key);
        }
    }

    crate::store_conformance_tests!(ToyFactory::new());
}
