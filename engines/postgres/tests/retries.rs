//! `max_retries` bounds the transactions run again after a lost race. A race
//! is forced, not hoped for: another session inserts the actor's first
//! snapshot row and holds it uncommitted, so the store's save of that actor
//! waits on the row and, once the other session commits, meets a unique
//! violation — a lost race the store runs again from its reads.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

mod common;

use std::time::Duration;

use leasehold_core::{
    Acquire, ActorKey, Durability, KvError, NodeId, SnapshotWrite, Store, StoreError, Timestamp,
};
use leasehold_postgres::config::PostgresConfig;
use leasehold_postgres::PostgresStore;

/// Saves `key`'s first snapshot while another session's insert of it is
/// held uncommitted, then committed: the save's first attempt loses.
fn save_racing_an_insert(config: &PostgresConfig) -> (PostgresStore, Result<(), StoreError>) {
    let store = PostgresStore::open(config, Durability::Sync).unwrap();
    let key = ActorKey::new("Counter", "raced");
    let now = Timestamp::from_millis(1_000);
    let epoch = match store
        .try_acquire(&key, &NodeId::new("n1"), Duration::from_secs(60), now)
        .unwrap()
    {
        Acquire::Acquired(lease) => lease.epoch,
        other => panic!("a fresh actor's lease was not granted: {other:?}"),
    };
    let other = {
        let store = PostgresStore::open(config, Durability::Sync).unwrap();
        std::thread::spawn(move || {
            store.execute_for_tests(&format!(
                "BEGIN; \
                 INSERT INTO snapshots (actor_type, actor_id, snapshot_id, version, epoch, state, \
                 state_hash, created_at, updated_at, ttl_ms, expires_at, tags) VALUES \
                 ('Counter', 'raced', 'other', 1, {epoch}, '\\x00', \
                 decode(repeat('00', 32), 'hex'), now(), now(), NULL, NULL, '{{}}'); \
                 SELECT pg_sleep(1.5); \
                 COMMIT;"
            ))
        })
    };
    // The other session's insert is made long before its commit.
    std::thread::sleep(Duration::from_millis(500));
    let saved = store
        .save(SnapshotWrite::new(key, &b"mine"[..]), 0, epoch, now)
        .map(|_| ());
    other
        .join()
        .unwrap()
        .expect("the other session's insert must commit first (it began 500 ms earlier)");
    (store, saved)
}

#[test]
fn a_race_lost_more_often_than_max_retries_is_an_error() {
    let config = PostgresConfig {
        max_retries: 0,
        ..common::config("retries_zero")
    };
    let (store, saved) = save_racing_an_insert(&config);
    match saved {
        Err(StoreError::Engine(KvError::Io { context, source })) => {
            assert_eq!(context, "a PostgreSQL transaction");
            assert!(
                source.to_string().contains("lost 1 races in a row"),
                "{source}"
            );
        }
        other => panic!("with max_retries 0 a lost race must be an error: {other:?}"),
    }
    assert_eq!(store.retries(), 0);
}

#[test]
fn a_lost_race_is_run_again_from_its_reads() {
    let config = PostgresConfig {
        max_retries: 1,
        ..common::config("retries_one")
    };
    let (store, saved) = save_racing_an_insert(&config);
    // Run again, the save reads the other session's version 1 and is refused
    // as any save expecting version 0 would be.
    assert!(
        matches!(
            saved,
            Err(StoreError::VersionConflict {
                expected: 0,
                actual: 1,
                ..
            })
        ),
        "{saved:?}"
    );
    assert_eq!(store.retries(), 1);
}
