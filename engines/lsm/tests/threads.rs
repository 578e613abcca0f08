//! The LSM's threads and timing: the background worker racing manual
//! maintenance (D3), the Group timer (G1, the Group-bound family), writers
//! that must not wait behind a flush (P2, P3), errors of inline maintenance
//! (X3), the syncer's seal of an idle log (D8), and a write racing `close`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use leasehold_core::vfs::{CrashPolicy, SimVfs, Vfs};
use leasehold_core::{Durability, KvEngine, KvError, WriteBatch};
use leasehold_lsm::config::LsmConfig;
use leasehold_lsm::LsmEngine;
use leasehold_testkit::crash::collect_all;
use leasehold_testkit::gated::{
    answer_while_a_write_is_stuck, check_group_write_synced_while_stuck, Gate, GatedVfs,
};
use leasehold_testkit::oracle::KvMap;

const DIR: &str = "/lsm";

fn open_on(vfs: &SimVfs, config: &LsmConfig) -> Result<LsmEngine, KvError> {
    LsmEngine::open(config, Arc::new(vfs.clone()))
}

fn key(index: usize) -> Vec<u8> {
    format!("k{index:05}").into_bytes()
}

/// D3: `compact_all` racing the background worker flushed one memtable twice
/// and retired the next one unflushed — or, with one memtable waiting,
/// panicked the worker on an empty list, after which every writer stalled
/// for good (on 06cceea this test hangs on its first seeds).
#[test]
fn compact_all_racing_the_worker_loses_no_memtable() {
    for seed in 0..8 {
        let config = LsmConfig {
            background_threads: true,
            memtable_size_limit: 4096,
            max_memtables: 8,
            ..common::tiny_config(DIR)
        };
        let vfs = SimVfs::new(seed);
        let engine = Arc::new(open_on(&vfs, &config).unwrap());
        let done = Arc::new(AtomicBool::new(false));
        let compactor = {
            let (engine, done) = (Arc::clone(&engine), Arc::clone(&done));
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    engine.compact_all().unwrap();
                }
            })
        };
        let mut model = KvMap::new();
        for index in 0..5000 {
            let mut batch = WriteBatch::new();
            batch.put(key(index), vec![index as u8; 64]);
            batch.apply_to(&mut model);
            engine.write(batch, Durability::Buffered).unwrap();
        }
        done.store(true, Ordering::Relaxed);
        compactor.join().expect("compact_all must not panic");
        let found = collect_all(engine.as_ref()).unwrap();
        assert!(
            found == model,
            "seed {seed}: {} of {} keys",
            found.len(),
            model.len()
        );
        engine.close().unwrap();
        drop(engine);
        let found = collect_all(&open_on(&vfs, &config).unwrap()).unwrap();
        assert!(found == model, "seed {seed} reopened: {} keys", found.len());
    }
}

/// G1: without the background thread a trailing Group write was never
/// synced: durable "within the interval" meant never.
#[test]
fn a_group_write_without_the_background_thread_survives_power_loss() {
    let config = LsmConfig {
        wal_sync_interval_ms: 20,
        ..common::tiny_config(DIR)
    };
    let vfs = SimVfs::new(9);
    let engine = open_on(&vfs, &config).unwrap();
    let mut sync = WriteBatch::new();
    sync.put(&b"k0"[..], &b"0"[..]);
    engine.write(sync, Durability::Sync).unwrap();
    let mut group = WriteBatch::new();
    group.put(&b"k1"[..], &b"1"[..]);
    engine.write(group, Durability::Group).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(50));
    let crashed = vfs.crash_image(CrashPolicy::PowerLoss, 0);
    drop(engine);
    let engine = open_on(&crashed, &config).unwrap();
    assert_eq!(engine.get(b"k1").unwrap().as_deref(), Some(&b"1"[..]));
}

/// Background threads on, with manual maintenance racing the workers while
/// the case writes (`testkit::background`; `crash-fuzz --mode background`).
#[test]
fn the_background_family_finds_no_violation() {
    let open = |vfs: SimVfs| {
        LsmEngine::open(
            &LsmConfig {
                background_threads: true,
                max_memtables: 4,
                ..common::tiny_config(DIR)
            },
            Arc::new(vfs),
        )
    };
    let found = leasehold_testkit::background::search_background(
        Arc::new(open),
        Arc::new(LsmEngine::compact_all),
        1,
        150,
        32,
    );
    if let Err((case, reason)) = found {
        panic!("{reason}\n{case:?}");
    }
}

/// P3: `health()` and `stats()` took the WAL lock, so they hung exactly when
/// a writer held it — stalled, or in a slow fsync — instead of answering.
#[test]
fn health_and_stats_answer_while_a_writer_holds_the_log() {
    let vfs = GatedVfs::new(SimVfs::new(10), "log");
    let gate = vfs.gate();
    let engine = Arc::new(LsmEngine::open(&common::tiny_config(DIR), Arc::new(vfs)).unwrap());
    let answer = answer_while_a_write_is_stuck(
        &engine,
        &gate,
        std::time::Duration::from_secs(5),
        |engine| (engine.health(), engine.stats().disk_bytes),
    );
    let (health, _) = answer.expect("health() and stats() must not wait for the writer");
    assert_eq!(health, leasehold_core::Health::Healthy);
}

/// An engine with its background threads on, whose tables' fsyncs wait at
/// the returned gate while it is closed.
fn gated_on_tables(seed: u64, config: LsmConfig) -> (Arc<LsmEngine>, Arc<Gate>) {
    let vfs = GatedVfs::new(SimVfs::new(seed), "sst");
    let gate = vfs.gate();
    let config = LsmConfig {
        background_threads: true,
        ..config
    };
    let engine = Arc::new(LsmEngine::open(&config, Arc::new(vfs)).unwrap());
    (engine, gate)
}

/// Fills about one tiny memtable with 80 keys of `round`.
fn write_memtable(engine: &LsmEngine, round: usize) {
    for index in 0..80 {
        let mut batch = WriteBatch::new();
        batch.put(key(round * 1000 + index), vec![1u8; 64]);
        engine.write(batch, Durability::Buffered).unwrap();
    }
}

/// P2: a memtable switch (under the WAL lock) allocated its log's number
/// under `versions`, which a flush or compaction holds through its whole
/// merge and fsyncs — so every writer waited for the compaction, uncounted.
#[test]
fn a_memtable_switch_does_not_wait_for_a_flush_in_progress() {
    let (engine, gate) = gated_on_tables(
        11,
        LsmConfig {
            max_memtables: 8,
            ..common::tiny_config(DIR)
        },
    );
    gate.close();
    // Fill one memtable: the worker starts flushing it and stops in the
    // table's fsync, holding `versions`.
    write_memtable(&engine, 0);
    gate.wait_until_held();
    let (done, finished) = std::sync::mpsc::channel();
    {
        let engine = Arc::clone(&engine);
        std::thread::spawn(move || {
            write_memtable(&engine, 1);
            write_memtable(&engine, 2);
            let _ = done.send(());
        });
    }
    let result = finished.recv_timeout(std::time::Duration::from_secs(5));
    gate.open();
    result.expect("memtable switches must not wait for the flush in progress");
    engine.close().unwrap();
}

/// Flushes and compactions shared one thread and one lock held through the
/// whole merge, so a frozen memtable waited behind every compaction and
/// writers stalled on it: beyond memory the LSM filled at a third of
/// RocksDB's rate. Here a compaction is held in its output's fsync while
/// writers fill memtable after memtable; with only one frozen memtable
/// allowed, each must be flushed meanwhile for the writes to go on.
#[test]
fn flushes_go_on_while_a_compaction_is_in_progress() {
    let (engine, gate) = gated_on_tables(
        14,
        LsmConfig {
            max_memtables: 1,
            l0_stop_writes: 1000,
            ..common::tiny_config(DIR)
        },
    );
    gate.only_on_thread("leasehold-lsm");
    gate.close();
    // Enough level-0 tables that the compactor starts, and stops in the
    // fsync of its first output; then six memtables more. All on a thread
    // of their own: a writer stalled for good must fail the test, not hang it.
    let (done, finished) = std::sync::mpsc::channel();
    let rounds = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    {
        let (engine, gate, rounds) = (Arc::clone(&engine), Arc::clone(&gate), Arc::clone(&rounds));
        std::thread::spawn(move || {
            while !gate.is_held() && rounds.load(Ordering::SeqCst) < 100 {
                write_memtable(&engine, rounds.fetch_add(1, Ordering::SeqCst));
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            for more in 0..6 {
                write_memtable(&engine, 500 + more);
            }
            let _ = done.send(gate.is_held());
        });
    }
    let result = finished.recv_timeout(std::time::Duration::from_secs(10));
    gate.open();
    let held = result.expect("memtables must be flushed while a compaction is in progress");
    assert!(held, "no compaction started");
    let round = rounds.load(Ordering::SeqCst);
    let mut seen = 0;
    engine
        .scan(&leasehold_core::KeyRange::all(), &mut |_, _| {
            seen += 1;
            std::ops::ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(seen, 80 * (round + 6));
    engine.close().unwrap();
}

/// G1, with the worker: the timed sync of Group writes ran between flushes
/// and compactions, so a long one (here, a flush stuck in its table's fsync)
/// kept an acknowledged Group write unsynced past its interval.
#[test]
fn a_group_write_is_synced_within_its_interval_during_a_long_flush() {
    let inner = SimVfs::new(12);
    let vfs = GatedVfs::new(inner.clone(), "sst");
    let gate = vfs.gate();
    let config = LsmConfig {
        background_threads: true,
        max_memtables: 8,
        wal_sync_interval_ms: 20,
        ..common::tiny_config(DIR)
    };
    let engine = LsmEngine::open(&config, Arc::new(vfs)).unwrap();
    let fill = |engine: &LsmEngine| {
        for index in 0..80 {
            let mut batch = WriteBatch::new();
            batch.put(key(index), vec![1u8; 64]);
            engine.write(batch, Durability::Buffered).unwrap();
        }
    };
    // Interval 20 ms.
    check_group_write_synced_while_stuck(
        engine,
        &gate,
        &inner,
        fill,
        std::time::Duration::from_millis(300),
        |crashed| open_on(&crashed, &common::tiny_config(DIR)),
    );
}

/// X3: in inline mode the write leader flushed after its group was applied
/// and visible, and a flush error came back as that write's error: an
/// applied write (say, a lease taken) reported failure. Now the write is
/// acknowledged, and the failure fails the engine for what comes next.
#[test]
fn an_inline_flush_error_fails_the_engine_not_the_write_already_applied() {
    let vfs = GatedVfs::new(SimVfs::new(13), "sst");
    let gate = vfs.gate();
    let config = LsmConfig {
        background_threads: false,
        ..common::tiny_config(DIR)
    };
    let engine = LsmEngine::open(&config, Arc::new(vfs)).unwrap();
    gate.fail_next();
    let mut written = 0;
    while engine.health() == leasehold_core::Health::Healthy && written < 10_000 {
        engine
            .write(put(written), Durability::Buffered)
            .expect("an applied write is acknowledged");
        written += 1;
    }
    assert!(written > 0 && written < 10_000, "{written} writes");
    assert!(
        matches!(engine.health(), leasehold_core::Health::Failed(_)),
        "the failed flush fails the engine: {:?}",
        engine.health()
    );
    for index in 0..written {
        assert!(engine.get(&key(index)).unwrap().is_some(), "key {index}");
    }
    assert!(matches!(
        engine.write(put(written), Durability::Buffered),
        Err(KvError::Poisoned { .. })
    ));
}

fn put(index: usize) -> WriteBatch {
    let mut batch = WriteBatch::new();
    batch.put(key(index), vec![1u8; 64]);
    batch
}

/// Group's time bound, with the workers on: what was acknowledged more than
/// the interval (plus slack) before a crash is recovered
/// (`testkit::group_bound`; `crash-fuzz --mode group-bound`).
#[test]
fn the_group_bound_family_finds_no_violation() {
    use leasehold_testkit::group_bound::{bound_for, search_group_bound};
    let config = group_config();
    let open = move |vfs: SimVfs| LsmEngine::open(&config, Arc::new(vfs));
    let interval = std::time::Duration::from_millis(20);
    if let Err((case, reason)) = search_group_bound(&open, bound_for(interval, interval / 4), 1, 4)
    {
        panic!("{reason}\n{case:?}");
    }
}

/// The settings of the Group-bound family: workers on, a 20 ms interval,
/// memtables large enough that no switch syncs the log for the timer.
fn group_config() -> LsmConfig {
    LsmConfig {
        background_threads: true,
        wal_sync_interval_ms: 20,
        memtable_size_limit: 1 << 20,
        ..common::tiny_config(DIR)
    }
}

/// D8: damage inside the last synced records of a crashed (not closed)
/// tree was truncated away as a torn tail: no later record claimed them.
/// Now the syncer seals an idle log (an empty record claiming every byte
/// before it, fsynced), so after a quiet second that damage is corruption.
#[test]
fn damage_in_the_last_synced_records_of_an_idle_crashed_tree_is_corruption() {
    let vfs = SimVfs::new(16);
    let config = LsmConfig {
        background_threads: true,
        ..group_config()
    };
    let engine = open_on(&vfs, &config).unwrap();
    for index in 0..4 {
        engine.write(put(index), Durability::Sync).unwrap();
    }
    let log = vfs
        .list(Path::new(DIR))
        .unwrap()
        .into_iter()
        .filter(|name| name.ends_with(".log"))
        .max()
        .unwrap();
    let log = Path::new(DIR).join(log);
    let written = vfs.file_size(&log).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1_500));
    let crashed = vfs.crash_image(CrashPolicy::PowerLoss, 0);
    drop(engine);
    assert!(
        crashed.file_size(&log).unwrap() > written,
        "an idle log is sealed"
    );
    // A byte inside the last data record: it was synced and acknowledged.
    crashed.corrupt_byte(&log, written - 8, 0x10).unwrap();
    let reopened = open_on(&crashed, &common::tiny_config(DIR));
    assert!(
        matches!(reopened, Err(KvError::Corruption { .. })),
        "{reopened:?}"
    );
}

/// A write racing `close` slipped in after its final sync: acknowledged, never
/// synced, and counted in (or appended after) the close record's exact log
/// lengths — so the closed tree failed its next open after a power loss.
/// Now `close` refuses new writes (`Closed`) before its final sync.
#[test]
fn a_write_racing_close_is_refused_or_durable_never_a_corrupt_close() {
    let inner = SimVfs::new(18);
    let vfs = GatedVfs::new(inner.clone(), "log");
    let gate = vfs.gate();
    let engine = Arc::new(LsmEngine::open(&common::tiny_config(DIR), Arc::new(vfs)).unwrap());
    engine.write(put(0), Durability::Buffered).unwrap();
    gate.close();
    let closer = {
        let engine = Arc::clone(&engine);
        std::thread::spawn(move || engine.close())
    };
    gate.wait_until_held();
    let writer = {
        let engine = Arc::clone(&engine);
        std::thread::spawn(move || engine.write(put(1), Durability::Buffered))
    };
    std::thread::sleep(std::time::Duration::from_millis(100));
    gate.open();
    closer.join().unwrap().unwrap();
    let raced = writer.join().unwrap();
    let crashed = inner.crash_image(CrashPolicy::PowerLoss, 0);
    let reopened = open_on(&crashed, &common::tiny_config(DIR)).expect("a closed tree opens");
    assert!(reopened.get(&key(0)).unwrap().is_some());
    match raced {
        Err(KvError::Closed) => assert_eq!(reopened.get(&key(1)).unwrap(), None),
        Ok(()) => assert!(reopened.get(&key(1)).unwrap().is_some(), "acked, then lost"),
        Err(other) => panic!("{other:?}"),
    }
}
