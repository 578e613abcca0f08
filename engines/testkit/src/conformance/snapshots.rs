//! Snapshots: versions checked, hashes verified, TTLs honoured, listings
//! filtered, and everything kept across a reopen.

use super::*;

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
