//! SIGKILL of the server mid-run: writers save at `sync`
//! (`synchronous_commit = on`) until the postmaster and all its processes are
//! killed; the cluster restarts (crash recovery from its WAL), and every
//! acknowledged save must be there — the version acknowledged or, where the
//! answer to a commit was lost with the server, the one after it.
//!
//! Alone in its test binary: it kills the server every other test uses.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use leasehold_core::{
    Acquire, ActorKey, Clock, Durability, NodeId, SnapshotWrite, Store, SystemClock,
};
use leasehold_postgres::{test_server, PostgresStore};

const WRITERS: usize = 4;
const ACTORS_PER_WRITER: usize = 8;

fn state(key: &ActorKey, version: u64) -> Vec<u8> {
    format!("{key} at version {version}").into_bytes()
}

#[test]
fn every_acknowledged_sync_save_survives_a_server_sigkill() {
    let config = common::config("kill");
    let store = Arc::new(PostgresStore::open(&config, Durability::Sync).unwrap());
    let node = NodeId::new("writer");
    // actor -> (epoch, last acknowledged version)
    let acked: Arc<Mutex<BTreeMap<ActorKey, (u64, u64)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let (store, node, acked, stop) = (
                Arc::clone(&store),
                node.clone(),
                Arc::clone(&acked),
                Arc::clone(&stop),
            );
            std::thread::spawn(move || {
                let keys: Vec<ActorKey> = (0..ACTORS_PER_WRITER)
                    .map(|index| ActorKey::new("Killed", format!("w{writer}-a{index}")))
                    .collect();
                let mut epochs = Vec::new();
                for key in &keys {
                    let now = SystemClock.now();
                    match store.try_acquire(key, &node, Duration::from_secs(3600), now) {
                        Ok(Acquire::Acquired(lease)) => epochs.push(lease.epoch),
                        other => panic!("{key}: {other:?}"),
                    }
                    acked
                        .lock()
                        .unwrap()
                        .insert(key.clone(), (epochs[epochs.len() - 1], 0));
                }
                let mut errors = 0;
                'writing: for round in 1.. {
                    for (key, &epoch) in keys.iter().zip(&epochs) {
                        if stop.load(Ordering::Relaxed) {
                            break 'writing;
                        }
                        let version = acked.lock().unwrap()[key].1;
                        let write = SnapshotWrite::new(key.clone(), state(key, version + 1));
                        match store.save(write, version, epoch, SystemClock.now()) {
                            Ok(saved) => {
                                assert_eq!(saved.version, version + 1);
                                acked.lock().unwrap().get_mut(key).unwrap().1 = saved.version;
                            }
                            // The server is gone: this save's fate is unknown.
                            Err(_) => {
                                errors += 1;
                                if errors > 3 {
                                    break 'writing;
                                }
                            }
                        }
                    }
                    let _ = round;
                }
            })
        })
        .collect();
    // Let the writers get going, then kill the server under them.
    std::thread::sleep(Duration::from_millis(1500));
    let before: u64 = acked
        .lock()
        .unwrap()
        .values()
        .map(|(_, version)| version)
        .sum();
    assert!(before > 0, "no save was acknowledged before the kill");
    test_server::script(&["kill"]).expect("kill the server");
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.join().expect("writer thread");
    }
    drop(store);
    test_server::script(&[]).expect("restart the server");

    let store = PostgresStore::open(&config, Durability::Sync).expect("reopen after the crash");
    let acked = acked.lock().unwrap();
    let mut saves = 0;
    for (key, &(epoch, version)) in acked.iter() {
        let lease = store
            .get_lease(key)
            .unwrap()
            .expect("granted lease survives");
        assert_eq!(
            (lease.epoch, lease.node_id.clone()),
            (epoch, Some(node.clone()))
        );
        saves += version;
        let loaded = store.load(key, SystemClock.now()).unwrap();
        let found = loaded.as_ref().map_or(0, |snapshot| snapshot.version);
        assert!(
            found == version || found == version + 1,
            "{key}: acknowledged version {version}, recovered {found}"
        );
        if let Some(snapshot) = loaded {
            assert_eq!(snapshot.state, state(key, snapshot.version));
        }
    }
    eprintln!(
        "server SIGKILLed after {saves} acknowledged sync saves over {} actors: all recovered",
        acked.len()
    );
    let report = store.verify_rows().unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}
