//! The lease rules: exclusive grants under contention, epochs that only
//! rise, renew and release by the owner only, stale epochs fenced off.

use super::*;

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
