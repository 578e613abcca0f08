//! Multi-actor commits on object storage when the coordinator stops between
//! phases: its intents stay on the objects, and whoever meets them resolves
//! them from the commit record — rolled forward once the record says
//! committed, rolled back (and the record written `Aborted`) once no record
//! came by the deadline. In-process on `object_store`'s in-memory store (the
//! coordinator "dies" by panicking out of its commit at a chosen phase); the
//! multi-process kill test runs on the real servers (`commit_kill.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use leasehold_core::{
    Acquire, ActorKey, CommitOp, NodeId, SnapshotWrite, Store, StoreError, Timestamp,
};
use leasehold_objectstore::record::{CommitRecord, Envelope, Outcome};
use leasehold_objectstore::{CommitPhase, ObjectStoreBackend, COMMIT_DEADLINE};
use leasehold_testkit::conformance::StoreFactory;

const T0: Timestamp = Timestamp(1_800_000_000_000);

fn at(millis: u64) -> Timestamp {
    T0.saturating_add(Duration::from_millis(millis))
}

struct Pair {
    store: ObjectStoreBackend,
    keys: [ActorKey; 2],
    epochs: [u64; 2],
}

/// Two actors leased by one node, each with a first snapshot.
fn pair(factory: &common::ObjectFactory) -> Pair {
    let store = factory.open();
    let keys = [ActorKey::new("Bank", "a"), ActorKey::new("Bank", "b")];
    let mut epochs = [0; 2];
    for (index, key) in keys.iter().enumerate() {
        let lease = store
            .try_acquire(key, &NodeId::new("n"), Duration::from_secs(3600), at(0))
            .unwrap();
        let Acquire::Acquired(lease) = lease else {
            panic!("{lease:?}")
        };
        epochs[index] = lease.epoch;
        store
            .save(
                SnapshotWrite::new(key.clone(), &b"before"[..]),
                0,
                lease.epoch,
                at(0),
            )
            .unwrap();
    }
    Pair {
        store,
        keys,
        epochs,
    }
}

fn transfer(pair: &Pair) -> Vec<CommitOp> {
    pair.keys
        .iter()
        .zip(pair.epochs)
        .map(|(key, epoch)| CommitOp::Save {
            snapshot: SnapshotWrite::new(key.clone(), &b"after"[..]),
            expected_version: 1,
            fence_epoch: epoch,
        })
        .collect()
}

/// Runs a commit whose coordinator dies at `phase`.
fn commit_dying_at(pair: &Pair, phase: CommitPhase, now: Timestamp) {
    pair.store.set_commit_hook(move |reached| {
        if reached == phase {
            panic!("coordinator dies at {reached:?}");
        }
    });
    let died = catch_unwind(AssertUnwindSafe(|| pair.store.commit(transfer(pair), now)));
    assert!(died.is_err(), "the coordinator was meant to die");
    pair.store.set_commit_hook(|_| {});
}

fn envelope(store: &ObjectStoreBackend, key: &ActorKey) -> Envelope {
    let (bytes, _) = store
        .client()
        .get(&store.layout().snapshot(key))
        .unwrap()
        .unwrap();
    Envelope::decode(&bytes).unwrap()
}

fn state(store: &ObjectStoreBackend, key: &ActorKey, now: Timestamp) -> Vec<u8> {
    store.load(key, now).unwrap().unwrap().state.to_vec()
}

#[test]
fn a_commit_recorded_before_its_coordinator_died_is_rolled_forward_by_readers() {
    let pair = pair(&common::ObjectFactory::memory());
    commit_dying_at(&pair, CommitPhase::Recorded, at(1));
    // Both intents are there, the record says committed.
    for key in &pair.keys {
        assert!(envelope(&pair.store, key).intent.is_some());
    }
    // A reader of either actor applies it: the other one too, when met.
    for key in &pair.keys {
        assert_eq!(state(&pair.store, key, at(2)), b"after");
        assert!(envelope(&pair.store, key).intent.is_none());
    }
}

#[test]
fn a_commit_that_never_reached_its_record_is_invisible_then_aborted_at_its_deadline() {
    let pair = pair(&common::ObjectFactory::memory());
    commit_dying_at(&pair, CommitPhase::Prepared(2), at(1));
    let intent = envelope(&pair.store, &pair.keys[0]).intent.unwrap();
    // Before the deadline: readers see the state before, and leave the
    // intent (the coordinator may yet write its record).
    assert_eq!(state(&pair.store, &pair.keys[0], at(2)), b"before");
    assert!(envelope(&pair.store, &pair.keys[0]).intent.is_some());
    // Past it, a writer aborts the commit and goes on.
    let late = at(1)
        .saturating_add(COMMIT_DEADLINE)
        .saturating_add(Duration::from_millis(1));
    let saved = pair
        .store
        .save(
            SnapshotWrite::new(pair.keys[1].clone(), &b"single"[..]),
            1,
            pair.epochs[1],
            late,
        )
        .unwrap();
    assert_eq!(saved.version, 2);
    let (bytes, _) = pair
        .store
        .client()
        .get(&pair.store.layout().commit(&intent.commit))
        .unwrap()
        .unwrap();
    assert_eq!(
        CommitRecord::decode(&bytes).unwrap().outcome,
        Outcome::Aborted
    );
    assert_eq!(pair.store.commits_aborted_by_readers(), 1);
    // The other participant is rolled back when met: nothing of it applied.
    assert_eq!(state(&pair.store, &pair.keys[0], late), b"before");
    assert!(envelope(&pair.store, &pair.keys[0]).intent.is_none());
    // And the dead coordinator's commit, tried again, is a fresh one.
    let again = pair.store.commit(
        vec![CommitOp::Save {
            snapshot: SnapshotWrite::new(pair.keys[0].clone(), &b"retried"[..]),
            expected_version: 1,
            fence_epoch: pair.epochs[0],
        }],
        late,
    );
    assert_eq!(again.unwrap()[0].as_ref().unwrap().version, 2);
}

#[test]
fn a_commit_that_fails_its_checks_leaves_no_intent_and_an_aborted_record() {
    let pair = pair(&common::ObjectFactory::memory());
    let mut ops = transfer(&pair);
    if let CommitOp::Save {
        expected_version, ..
    } = &mut ops[1]
    {
        *expected_version = 7;
    }
    assert!(matches!(
        pair.store.commit(ops, at(1)),
        Err(StoreError::VersionConflict { .. })
    ));
    for key in &pair.keys {
        assert!(envelope(&pair.store, key).intent.is_none());
        assert_eq!(state(&pair.store, key, at(2)), b"before");
    }
    let records = pair
        .store
        .client()
        .list(&pair.store.layout().commits())
        .unwrap();
    assert_eq!(records.len(), 1);
}

/// A takeover meets a commit in flight: the fence waits for the commit to
/// resolve (here: its deadline passes, it is aborted), so a commit decided
/// under the old epoch can never land after the new owner's grant.
#[test]
fn a_takeover_resolves_a_pending_commit_before_it_answers() {
    let pair = pair(&common::ObjectFactory::memory());
    commit_dying_at(&pair, CommitPhase::Prepared(1), at(1));
    let later = at(3_600_001);
    let taken = pair
        .store
        .try_acquire(
            &pair.keys[0],
            &NodeId::new("m"),
            Duration::from_secs(60),
            later,
        )
        .unwrap();
    assert_eq!(taken.lease().unwrap().epoch, pair.epochs[0] + 1);
    let settled = envelope(&pair.store, &pair.keys[0]);
    assert!(settled.intent.is_none());
    assert_eq!(settled.fence, pair.epochs[0] + 1);
    assert_eq!(state(&pair.store, &pair.keys[0], later), b"before");
}

#[test]
fn commits_run_on_the_real_s3_server_too() {
    let pair = pair(&common::ObjectFactory::s3());
    commit_dying_at(&pair, CommitPhase::Recorded, at(1));
    assert_eq!(state(&pair.store, &pair.keys[1], at(2)), b"after");
    assert_eq!(state(&pair.store, &pair.keys[0], at(2)), b"after");
}
