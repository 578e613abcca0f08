//! Key–value separation: large values in blob files, read back through
//! every path (memtable, tables, reopen, scans), and blob files collected by
//! compaction — relocated when old and mostly garbage, deleted when all
//! garbage, never while a table points into them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

mod common;

use std::path::Path;
use std::sync::Arc;

use leasehold_core::vfs::{SimVfs, Vfs};
use leasehold_core::{Durability, KvEngine, KvError, WriteBatch};
use leasehold_lsm::config::LsmConfig;
use leasehold_lsm::LsmEngine;
use leasehold_testkit::crash::collect_all;
use leasehold_testkit::oracle::KvMap;

const DIR: &str = "/lsm";

fn open(vfs: &SimVfs, config: &LsmConfig) -> LsmEngine {
    LsmEngine::open(config, Arc::new(vfs.clone())).unwrap()
}

fn blob_files(vfs: &SimVfs) -> Vec<String> {
    vfs.list(Path::new(DIR))
        .unwrap()
        .into_iter()
        .filter(|name| name.ends_with(".blob"))
        .collect()
}

fn value(index: usize, round: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i * 31 + index * 7 + round) as u8)
        .collect()
}

/// Writes `keys` keys, `rounds` times over, values alternating between
/// inline and separated sizes; the model.
fn overwrite(engine: &LsmEngine, keys: usize, rounds: usize) -> KvMap {
    let mut model = KvMap::new();
    for round in 0..rounds {
        for index in 0..keys {
            let len = if index % 3 == 0 {
                20
            } else {
                100 + index % 200
            };
            let mut batch = WriteBatch::new();
            batch.put(
                format!("k{index:04}").into_bytes(),
                value(index, round, len),
            );
            batch.apply_to(&mut model);
            engine.write(batch, Durability::Buffered).unwrap();
        }
    }
    model
}

#[test]
fn a_large_value_survives_flush_and_reopen() {
    let config = common::tiny_config(DIR);
    let vfs = SimVfs::new(1);
    let engine = open(&vfs, &config);
    let large = value(1, 1, (1 << 20) + 17);
    let mut batch = WriteBatch::new();
    batch.put(b"large".to_vec(), large.clone());
    batch.put(b"small".to_vec(), b"s".to_vec());
    engine.write(batch, Durability::Sync).unwrap();
    engine.compact_all().unwrap();
    assert!(!blob_files(&vfs).is_empty());
    assert_eq!(engine.get(b"large").unwrap(), Some(large.clone()));
    engine.close().unwrap();
    drop(engine);
    let engine = open(&vfs, &config);
    assert_eq!(engine.get(b"large").unwrap(), Some(large));
    assert_eq!(engine.get(b"small").unwrap(), Some(b"s".to_vec()));
}

#[test]
fn a_large_value_replayed_from_the_log_survives_reopen() {
    let config = common::tiny_config(DIR);
    let vfs = SimVfs::new(2);
    let engine = open(&vfs, &config);
    let large = value(2, 1, 5000);
    let mut batch = WriteBatch::new();
    batch.put(b"large".to_vec(), large.clone());
    engine.write(batch, Durability::Sync).unwrap();
    engine.close().unwrap();
    drop(engine);
    // Found here: a lookup at exactly the entry's sequence missed a `Blob`
    // entry (the seek key's kind sorted after it).
    for round in 0..2 {
        let engine = open(&vfs, &config);
        assert!(
            engine.get(b"large").unwrap() == Some(large.clone()),
            "round {round}"
        );
        engine.close().unwrap();
    }
}

/// Overwrites make blob files garbage: compaction counts it, relocates the
/// live values of old, mostly-garbage files, deletes files left all garbage
/// — and every answer stays right, before and after reopen, with `verify`
/// finding each file's live count equal to the pointers into it.
#[test]
fn compaction_collects_blob_garbage_and_loses_nothing() {
    let config = common::tiny_config(DIR);
    let vfs = SimVfs::new(3);
    let engine = open(&vfs, &config);
    let model = overwrite(&engine, 400, 12);
    let stats = engine.stats();
    assert!(stats.blob_bytes_written > 0);
    let written: u64 = stats.blob_bytes_written;
    assert!(
        engine.blobs_relocated() > 0,
        "old blob files were never rewritten"
    );
    // Far fewer blob bytes remain than were written: files were deleted.
    let remaining: u64 = blob_files(&vfs)
        .iter()
        .map(|name| vfs.file_size(&Path::new(DIR).join(name)).unwrap())
        .sum();
    assert!(
        remaining * 3 < written,
        "{remaining} of {written} blob bytes still on disk"
    );
    let report = engine.verify().unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert!(collect_all(&engine).unwrap() == model);
    engine.compact_all().unwrap();
    assert!(collect_all(&engine).unwrap() == model);
    engine.close().unwrap();
    drop(engine);
    let engine = open(&vfs, &config);
    assert!(collect_all(&engine).unwrap() == model);
    let report = engine.verify().unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

/// A value whose blob file is gone is an error, never an absent key.
#[test]
fn a_missing_blob_file_is_corruption() {
    let config = common::tiny_config(DIR);
    let vfs = SimVfs::new(4);
    let engine = open(&vfs, &config);
    let model = overwrite(&engine, 40, 1);
    engine.compact_all().unwrap();
    engine.close().unwrap();
    drop(engine);
    let victim = blob_files(&vfs).remove(0);
    vfs.remove(&Path::new(DIR).join(&victim)).unwrap();
    match LsmEngine::open(&config, Arc::new(vfs.clone())) {
        Err(KvError::Corruption { reason, .. }) => assert!(reason.contains("blob"), "{reason}"),
        Err(other) => panic!("{other}"),
        Ok(engine) => panic!(
            "opened without {victim}: {} keys",
            collect_all(&engine).unwrap().len().min(model.len())
        ),
    }
}

/// A value that says whose it is and which round wrote it, so a reader can
/// tell a right value from any other: key index and round, then filler.
fn tagged_value(index: u32, round: u32) -> Vec<u8> {
    let len = 80 + (index as usize % 5) * 60;
    let mut value = Vec::with_capacity(len);
    value.extend_from_slice(&index.to_le_bytes());
    value.extend_from_slice(&round.to_le_bytes());
    value.extend((8..len).map(|i| (i as u32 * 7 + index + round) as u8));
    value
}

/// The hard regime of collection: background flushes and compactions on the
/// real disk relocate values and unlink blob files while readers hold older
/// versions mid-scan and mid-get. Every read must find a value some round
/// wrote for that key — never an error, never another key's bytes.
#[test]
fn readers_racing_blob_collection_on_the_real_disk_always_read_whole_values() {
    let dir = tempfile::tempdir().unwrap();
    let config = LsmConfig {
        background_threads: true,
        max_memtables: 4,
        ..common::tiny_config(dir.path())
    };
    let engine = LsmEngine::open(&config, Arc::new(leasehold_core::vfs::OsVfs::new())).unwrap();
    const KEYS: u32 = 1000;
    const ROUNDS: u32 = 15;
    let key = |index: u32| format!("k{index:04}").into_bytes();
    let check = |index: u32, found: &[u8]| {
        let round = u32::from_le_bytes(found[4..8].try_into().unwrap());
        assert!(
            found.len() >= 8
                && found[..4] == index.to_le_bytes()
                && found == tagged_value(index, round),
            "key {index}: a value no round wrote ({} bytes)",
            found.len()
        );
    };
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for round in 0..ROUNDS {
                for index in 0..KEYS {
                    let mut batch = WriteBatch::new();
                    batch.put(key(index), tagged_value(index, round));
                    engine.write(batch, Durability::Buffered).unwrap();
                }
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        for reader in 0..2u32 {
            let (engine, done) = (&engine, &done);
            scope.spawn(move || {
                let mut index = reader;
                while !done.load(std::sync::atomic::Ordering::SeqCst) {
                    if let Some(found) = engine.get(&key(index % KEYS)).unwrap() {
                        check(index % KEYS, &found);
                    }
                    if index % 50 == 0 {
                        engine
                            .scan(&leasehold_core::KeyRange::all(), &mut |found_key, found| {
                                let text = std::str::from_utf8(&found_key[1..]).unwrap();
                                check(text.parse().unwrap(), found);
                                std::ops::ControlFlow::Continue(())
                            })
                            .unwrap();
                    }
                    index += 1;
                }
            });
        }
    });
    // However far the workers got, a full compaction settles the garbage.
    engine.compact_all().unwrap();
    let written = engine.stats().blob_bytes_written;
    let remaining: u64 = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap())
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(".blob"))
        .map(|entry| entry.metadata().unwrap().len())
        .sum();
    assert!(engine.blobs_relocated() > 0, "no live value was relocated");
    assert!(
        remaining * 3 < written,
        "{remaining} of {written} blob bytes left"
    );
    let report = engine.verify().unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    for index in 0..KEYS {
        let found = engine.get(&key(index)).unwrap().unwrap();
        assert!(found == tagged_value(index, ROUNDS - 1), "key {index}");
    }
}
