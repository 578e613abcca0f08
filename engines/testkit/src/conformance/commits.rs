//! Multi-actor commits: all or nothing, and concurrent ones never losing an
//! update.

use super::*;

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
