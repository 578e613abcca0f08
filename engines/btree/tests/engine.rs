//! The B+tree's own behaviour: reads against a model across checkpoints and
//! reopen, large values in overflow pages, free-space reuse down to the
//! baseline, failure handling, and every crash point of a workload that
//! checkpoints.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use leasehold_btree::config::BtreeConfig;
use leasehold_btree::BtreeEngine;
use leasehold_core::vfs::{CrashPolicy, Fault, FaultConfig, OsVfs, SimVfs};
use leasehold_core::{Durability, Health, KvEngine, KvError, WriteBatch};
use leasehold_testkit::crash::{self, collect_all, CrashOp};
use leasehold_testkit::workload;

fn open(vfs: &SimVfs) -> BtreeEngine {
    BtreeEngine::open(&common::tiny_config("/btree"), Arc::new(vfs.clone())).unwrap()
}

/// `len` bytes that do not compress (the engine stores values lz4-compressed
/// where that saves bytes; these tests need values that stay long).
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut value = vec![0; len];
    leasehold_core::rng::SplitMix64::new(seed).fill(&mut value);
    value
}

fn put(key: &str, value: &[u8]) -> WriteBatch {
    let mut batch = WriteBatch::new();
    batch.put(key.as_bytes(), value);
    batch
}

fn random_workload(
    engine: &BtreeEngine,
    seed: u64,
    writes: usize,
    keys: u64,
) -> BTreeMap<Vec<u8>, Vec<u8>> {
    workload::random_batches(engine, seed, writes, keys, |rng| {
        if rng.chance(0.1) {
            300 + rng.below(3000) as usize
        } else {
            rng.below(120) as usize
        }
    })
}

fn check_against(engine: &BtreeEngine, model: &BTreeMap<Vec<u8>, Vec<u8>>, keys: u64) {
    workload::check_against(engine, model, keys);
}

#[test]
fn reads_agree_with_a_model_across_checkpoints_and_reopen() {
    let vfs = SimVfs::new(1);
    let engine = open(&vfs);
    let model = random_workload(&engine, 1, 3000, 500);
    assert!(
        engine.stats().checkpoints > 10,
        "the workload must checkpoint"
    );
    check_against(&engine, &model, 500);
    engine.checkpoint().unwrap();
    check_against(&engine, &model, 500);
    engine.close().unwrap();
    let engine = open(&vfs);
    check_against(&engine, &model, 500);
    assert_eq!(engine.stats().live_entries, model.len() as u64);
}

#[test]
fn background_checkpoints_give_the_same_answers() {
    let dir = tempfile::tempdir().unwrap();
    let config = BtreeConfig {
        background_threads: true,
        ..common::tiny_config(dir.path())
    };
    workload::check_maintenance_keeps_answers(
        &|| BtreeEngine::open(&config, Arc::new(OsVfs::new())),
        &|engine| random_workload(engine, 2, 3000, 500),
        500,
        &BtreeEngine::checkpoint,
    );
}

#[test]
fn deleting_everything_returns_the_file_to_its_baseline() {
    let vfs = SimVfs::new(3);
    let engine = open(&vfs);
    let baseline = engine.page_count();
    let model = random_workload(&engine, 3, 1000, 300);
    engine.checkpoint().unwrap();
    assert!(engine.page_count() > baseline + 20);
    for key in model.keys() {
        let mut batch = WriteBatch::new();
        batch.delete(key.clone());
        engine.write(batch, Durability::Buffered).unwrap();
    }
    // Pages freed by a checkpoint are reusable (and trimmable) from the next.
    for _ in 0..3 {
        engine.checkpoint().unwrap();
    }
    assert_eq!(engine.page_count(), baseline, "no leaked pages");
    assert!(engine.verify().unwrap().is_clean());
    assert!(collect_all(&engine).unwrap().is_empty());
}

#[test]
fn freed_pages_are_reused_instead_of_growing_the_file() {
    let vfs = SimVfs::new(4);
    let engine = open(&vfs);
    for round in 0..20u8 {
        for index in 0..100 {
            engine
                .write(
                    put(&format!("k{index:03}"), &[round; 50]),
                    Durability::Buffered,
                )
                .unwrap();
        }
        engine.checkpoint().unwrap();
    }
    let pages = engine.page_count();
    for round in 20..60u8 {
        for index in 0..100 {
            engine
                .write(
                    put(&format!("k{index:03}"), &[round; 50]),
                    Durability::Buffered,
                )
                .unwrap();
        }
        engine.checkpoint().unwrap();
    }
    assert!(
        engine.page_count() <= pages + 4,
        "{} pages grew from {pages}",
        engine.page_count()
    );
    assert!(engine.verify().unwrap().is_clean());
}

#[test]
fn a_failed_fsync_poisons_the_engine_until_reopened() {
    let vfs = SimVfs::new(5);
    let engine = open(&vfs);
    engine.write(put("a", b"1"), Durability::Sync).unwrap();
    vfs.arm(Fault::SyncEio);
    assert!(engine.write(put("b", b"2"), Durability::Sync).is_err());
    assert!(matches!(
        engine.write(put("c", b"3"), Durability::Buffered),
        Err(KvError::Poisoned { .. })
    ));
    assert!(matches!(engine.health(), Health::Failed(_)));
    drop(engine);
    let recovered = collect_all(&open(&vfs.crash_image(CrashPolicy::PowerLoss, 0))).unwrap();
    assert_eq!(recovered.get(b"a".as_slice()), Some(&b"1".to_vec()));
}

#[test]
fn a_full_disk_fails_writes_and_loses_nothing_acknowledged() {
    let vfs = SimVfs::new(6);
    let engine = open(&vfs);
    let mut acknowledged = BTreeMap::new();
    vfs.set_faults(FaultConfig {
        capacity_bytes: Some(60_000),
        ..FaultConfig::default()
    });
    for index in 0..2000 {
        let key = format!("k{index:04}");
        match engine.write(put(&key, &[index as u8; 100]), Durability::Sync) {
            Ok(()) => {
                acknowledged.insert(key.into_bytes(), vec![index as u8; 100]);
            }
            Err(err) => {
                assert!(
                    err.is_disk_full() || matches!(err, KvError::Poisoned { .. }),
                    "{err}"
                );
                break;
            }
        }
    }
    assert!(acknowledged.len() < 2000, "the disk must fill");
    drop(engine);
    vfs.set_faults(FaultConfig::default());
    for policy in CrashPolicy::ALL {
        let recovered = collect_all(&open(&vfs.crash_image(policy, 3))).unwrap();
        for (key, value) in &acknowledged {
            assert_eq!(recovered.get(key), Some(value), "{policy:?}");
        }
    }
}

#[test]
fn a_flipped_byte_in_a_page_is_found_by_verify_and_by_the_read_that_meets_it() {
    let vfs = SimVfs::new(7);
    let engine = open(&vfs);
    random_workload(&engine, 7, 500, 100);
    engine.checkpoint().unwrap();
    let path = Path::new("/btree/data.db");
    // A page of the tree (not a meta slot).
    vfs.corrupt_byte(path, 1024 * 3 + 100, 0x08).unwrap();
    let report = engine.verify().unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|problem| problem.contains("page 3")),
        "{report:?}"
    );
    drop(engine);
    // Pages are read on demand: open goes ahead, the scan that meets page 3
    // fails.
    let reopened = BtreeEngine::open(&common::tiny_config("/btree"), Arc::new(vfs.clone()));
    match reopened.and_then(|engine| collect_all(&engine)) {
        Err(KvError::Corruption { file, .. }) => assert_eq!(file, path),
        other => panic!("expected corruption, got {other:?}"),
    }
}

#[test]
fn oversized_keys_and_a_different_page_size_are_refused() {
    let vfs = SimVfs::new(8);
    let engine = open(&vfs);
    assert!(matches!(
        engine.write(put(&"k".repeat(200), b"v"), Durability::Buffered),
        Err(KvError::InvalidArgument(_))
    ));
    engine.close().unwrap();
    drop(engine);
    let other = BtreeConfig {
        page_size: 2048,
        ..common::tiny_config("/btree")
    };
    assert!(matches!(
        BtreeEngine::open(&other, Arc::new(vfs)),
        Err(KvError::InvalidArgument(_))
    ));
}

/// Every crash point of a workload that checkpoints repeatedly (page writes,
/// free-list pages, meta flips, log rotation) and reopens, under each policy.
#[test]
fn every_crash_point_inside_checkpoints_recovers() {
    let mut ops = Vec::new();
    for index in 0..40u8 {
        let durability = if index % 3 == 0 {
            Durability::Sync
        } else {
            Durability::Buffered
        };
        let len = if index % 5 == 0 { 1500 } else { 400 };
        let entries = vec![
            (index % 9, Some(noise(u64::from(index), len))),
            ((index + 4) % 9, None),
        ];
        ops.push(CrashOp::Write {
            ops: entries,
            durability,
        });
        if index == 20 {
            ops.push(CrashOp::Reopen);
        }
    }
    let open = |vfs: SimVfs| BtreeEngine::open(&common::tiny_config("/btree"), Arc::new(vfs));
    let (engine, mutations) = crash::replay_writes(&open, &ops);
    assert!(
        engine.stats().checkpoints >= 4,
        "the workload must checkpoint"
    );
    let points = crash::check_every_crash_point(&open, &ops, 1..=mutations + 10);
    assert!(points > 600, "{points} crash points");
}

/// Readers running beside a writer that commits and checkpoints see exactly
/// one committed state each time: every batch sets all keys to one
/// generation, so a scan must find one generation, never older than the last.
#[test]
fn concurrent_readers_see_exactly_one_committed_state() {
    let config = BtreeConfig {
        background_threads: true,
        checkpoint_wal_bytes: 8192,
        ..common::tiny_config("/btree")
    };
    let engine = BtreeEngine::open(&config, Arc::new(SimVfs::new(11))).unwrap();
    const KEYS: usize = 60;
    let write_generation = |generation: u32| {
        let mut batch = WriteBatch::new();
        for key in 0..KEYS {
            // Some values overflow, so overflow pages are written and freed too.
            let len = if key % 10 == 0 { 400 } else { 8 };
            let mut value = generation.to_le_bytes().to_vec();
            value.resize(len, key as u8);
            batch.put(format!("key-{key:03}").into_bytes(), value);
        }
        batch
    };
    engine
        .write(write_generation(0), Durability::Buffered)
        .unwrap();
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        for _ in 0..3 {
            scope.spawn(|| {
                let mut last = 0u32;
                let mut scans = 0;
                while !done.load(std::sync::atomic::Ordering::Acquire) || scans < 10 {
                    let state = collect_all(&engine).unwrap();
                    assert_eq!(state.len(), KEYS, "a scan saw a partial batch");
                    let generations: std::collections::BTreeSet<u32> = state
                        .values()
                        .map(|value| u32::from_le_bytes([value[0], value[1], value[2], value[3]]))
                        .collect();
                    assert_eq!(
                        generations.len(),
                        1,
                        "a scan mixed committed states: {generations:?}"
                    );
                    let generation = *generations.first().unwrap();
                    assert!(generation >= last, "a reader went back in time");
                    last = generation;
                    scans += 1;
                }
            });
        }
        for generation in 1..400u32 {
            engine
                .write(write_generation(generation), Durability::Buffered)
                .unwrap();
            if generation % 50 == 0 {
                engine.checkpoint().unwrap();
            }
        }
        done.store(true, std::sync::atomic::Ordering::Release);
    });
    assert!(engine.stats().checkpoints >= 8);
    assert!(engine.verify().unwrap().is_clean());
}

/// A hand-made data file whose overflow chain loops back on itself, or claims
/// more bytes than the file holds, is corruption, found without looping: at
/// open when a format-1 meta makes open walk the tree, else when the value
/// is read.
#[test]
fn overflow_chains_with_a_cycle_or_an_absurd_length_are_errors() {
    use leasehold_btree::layout::{encode_leaf, encode_overflow, LeafEntry, Stored};
    use leasehold_btree::meta::Meta;
    use leasehold_btree::page::{seal, PageKind};
    use leasehold_core::vfs::{write_all_at, Vfs};
    let cases = [(5000u64, 3u64), (u64::MAX / 2, 0u64)];
    for ((stored_len, chain_next), live) in cases
        .into_iter()
        .flat_map(|case| [(case, None), (case, Some((1, 5001)))])
    {
        let vfs = SimVfs::new(12);
        vfs.create_dir_all(Path::new("/btree")).unwrap();
        let file = vfs.create(Path::new("/btree/data.db")).unwrap();
        let page = 1024usize;
        let meta = Meta {
            txn: 1,
            page_size: 1024,
            root: Some(2),
            page_count: 4,
            wal_number: 1,
            free_count: 0,
            freelist_head: None,
            live,
            inline_free: vec![],
        };
        let leaf = encode_leaf(&[LeafEntry {
            key: b"k",
            lz4_raw_len: None,
            stored: Stored::Overflow {
                first_page: 3,
                stored_len,
            },
        }]);
        for (id, kind, payload) in [
            (1u64, PageKind::Meta, meta.encode()),
            (2, PageKind::Leaf, leaf),
            (
                3,
                PageKind::Overflow,
                encode_overflow(chain_next, &[7u8; 100]),
            ),
        ] {
            write_all_at(
                file.as_ref(),
                &seal(page, kind, id, 1, &payload),
                id * page as u64,
            )
            .unwrap();
        }
        write_all_at(file.as_ref(), &vec![0u8; page], 0).unwrap();
        file.sync().unwrap();
        // The log the meta names, as a real tree has it (FORMAT.md, "Recovery").
        vfs.create(Path::new("/btree/000001.wal")).unwrap();
        vfs.sync_dir(Path::new("/btree")).unwrap();
        let opened = BtreeEngine::open(&common::tiny_config("/btree"), Arc::new(vfs));
        let read = match (live, opened) {
            (Some(_), Ok(engine)) => engine.get(b"k").map(|_| ()),
            (_, opened) => opened.map(|_| ()),
        };
        match read {
            Err(KvError::Corruption { reason, .. }) => {
                assert!(
                    reason.contains("reached twice")
                        || reason.contains("cannot fit")
                        || reason.contains("overflow chain holds"),
                    "{reason}"
                )
            }
            other => panic!("expected corruption, got {other:?}"),
        }
    }
}

#[test]
fn a_batch_above_the_limit_is_refused_and_changes_nothing() {
    workload::check_batch_limit(&open(&SimVfs::new(21)));
}

/// Open reads the two meta slots and the free list, not the data file: a
/// tree of a few MiB opens reading a few pages (it read the whole file to find
/// the meta slots, 1.5 GB of memory for a 1.5 GB tree).
#[test]
fn open_reads_a_few_pages_whatever_the_size_of_the_tree() {
    use leasehold_core::vfs::Vfs;
    let vfs = SimVfs::new(31);
    let engine = open(&vfs);
    for index in 0..2_000 {
        engine
            .write(
                put(&format!("key{index:05}"), &noise(index as u64, 900)),
                Durability::Buffered,
            )
            .unwrap();
    }
    engine.close().unwrap();
    drop(engine);
    let size = vfs.file_size(Path::new("/btree/data.db")).unwrap();
    assert!(size > 2 << 20, "{size}");
    let before = vfs.stats().bytes_read;
    let engine = open(&vfs);
    let read = vfs.stats().bytes_read - before;
    assert!(
        read <= 16 * 1024,
        "open read {read} bytes of a {size}-byte file"
    );
    assert_eq!(collect_all(&engine).unwrap().len(), 2_000);
}

/// Values of a KiB on 4 KiB pages: noise stays in its leaf (it took an
/// overflow page of its own, 4× its size, when only a quarter-page value
/// was inlined), and a value that compresses is packed compressed (leaves
/// were split on raw lengths, and values compressed only at checkpoint).
#[test]
fn kib_values_stay_in_their_leaves_and_are_packed_compressed() {
    use leasehold_core::vfs::Vfs;
    let file_size = |value: &dyn Fn(u64) -> Vec<u8>| {
        let vfs = SimVfs::new(41);
        let config = BtreeConfig {
            data_dir: "/btree".into(),
            background_threads: false,
            ..BtreeConfig::default()
        };
        let engine = BtreeEngine::open(&config, Arc::new(vfs.clone())).unwrap();
        for index in 0..2_000u64 {
            // Scattered keys, as random inserts split leaves.
            let key = format!("key{:08}", index.wrapping_mul(7919) % 100_003);
            engine
                .write(put(&key, &value(index)), Durability::Buffered)
                .unwrap();
        }
        engine.close().unwrap();
        drop(engine);
        vfs.file_size(Path::new("/btree/data.db")).unwrap()
    };
    let logical = 2_000 * (11 + 1024);
    let random = file_size(&|index| noise(index, 1024));
    assert!(random < 2 * logical, "{random} bytes for {logical}");
    let halves = file_size(&|index| {
        let mut value = noise(index, 512);
        value.extend_from_within(..);
        value
    });
    assert!(halves < logical, "{halves} bytes for {logical}");
}

/// Deleting nine keys in ten leaves leaves a tenth as full; deletes merge a
/// leaf that falls below a quarter of a page with a sibling, so the tree
/// shrinks with its data (it kept every leaf, each a tenth full, before).
#[test]
fn deletes_merge_underfull_leaves_so_the_tree_shrinks_with_its_data() {
    let vfs = SimVfs::new(43);
    let engine = open(&vfs);
    let mut model = BTreeMap::new();
    for index in 0..3_000u64 {
        let key = format!("key{index:05}");
        let value = noise(index, 40);
        engine
            .write(put(&key, &value), Durability::Buffered)
            .unwrap();
        model.insert(key.into_bytes(), value);
    }
    engine.checkpoint().unwrap();
    let in_use = |engine: &BtreeEngine| {
        let stats = engine.stats();
        engine.page_count() - stats.free_pages
    };
    let full = in_use(&engine);
    for index in (0..3_000u64).filter(|index| index % 10 != 0) {
        let key = format!("key{index:05}");
        let mut batch = WriteBatch::new();
        batch.delete(key.clone().into_bytes());
        engine.write(batch, Durability::Buffered).unwrap();
        model.remove(key.as_bytes());
    }
    for _ in 0..3 {
        engine.checkpoint().unwrap();
    }
    let after = in_use(&engine);
    assert!(after * 4 < full, "{after} pages in use of {full} before");
    check_against(&engine, &model, 0);
    assert!(engine.verify().unwrap().is_clean());
}
