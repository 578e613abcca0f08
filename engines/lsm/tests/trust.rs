//! Damage is an error, never a smaller tree: each finding of the 2026-11-30
//! audit (D1, D2, D5, D6, D7) as the smallest test that shows it, media
//! damage at rest swept over every file of a closed tree, and the lease rules
//! across crashes. Threads and timing are in `threads.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use leasehold_core::vfs::{CrashPolicy, OsVfs, SimVfs, Vfs};
use leasehold_core::{Durability, KvEngine, KvError, WriteBatch};
use leasehold_lsm::config::LsmConfig;
use leasehold_lsm::LsmEngine;
use leasehold_testkit::crash::collect_all;
use leasehold_testkit::damage;
use leasehold_testkit::oracle::KvMap;

const DIR: &str = "/lsm";

fn open_on(vfs: &SimVfs, config: &LsmConfig) -> Result<LsmEngine, KvError> {
    LsmEngine::open(config, Arc::new(vfs.clone()))
}

fn key(index: usize) -> Vec<u8> {
    format!("k{index:05}").into_bytes()
}

/// `count` keys written Sync; the model of what was written.
fn fill(engine: &LsmEngine, count: usize) -> KvMap {
    let mut model = KvMap::new();
    for index in 0..count {
        let mut batch = WriteBatch::new();
        batch.put(key(index), vec![index as u8; 100]);
        batch.apply_to(&mut model);
        engine.write(batch, Durability::Sync).unwrap();
    }
    model
}

fn names(vfs: &SimVfs) -> Vec<String> {
    vfs.list(Path::new(DIR)).unwrap()
}

fn manifest_of(vfs: &SimVfs) -> PathBuf {
    let name = names(vfs)
        .into_iter()
        .find(|name| name.starts_with("MANIFEST-"))
        .unwrap();
    Path::new(DIR).join(name)
}

fn is_corruption<T: std::fmt::Debug>(result: &Result<T, KvError>) -> bool {
    matches!(result, Err(KvError::Corruption { .. }))
}

/// D1: a reopened tree's manifest is one frame; that frame was durable before
/// CURRENT named it, so damage in it is corruption — not an empty tree with
/// every table deleted.
#[test]
fn a_damaged_one_frame_manifest_is_corruption_and_deletes_nothing() {
    let config = common::tiny_config(DIR);
    let vfs = SimVfs::new(1);
    let engine = open_on(&vfs, &config).unwrap();
    fill(&engine, 500);
    engine.compact_all().unwrap();
    engine.close().unwrap();
    drop(engine);
    // A reopen with nothing to replay writes a one-frame manifest; its close
    // appends the close record, which is exactly the frame we leave alone.
    drop(open_on(&vfs, &config).unwrap());
    let before = names(&vfs);
    vfs.corrupt_byte(&manifest_of(&vfs), 12, 0x01).unwrap();
    let reopened = open_on(&vfs, &config);
    assert!(is_corruption(&reopened), "{reopened:?}");
    assert_eq!(names(&vfs), before, "a refused open changes nothing");
}

/// D2: without CURRENT, tables and manifests on disk mean CURRENT was lost.
#[test]
fn a_missing_current_beside_tables_is_corruption_and_deletes_nothing() {
    let config = common::tiny_config(DIR);
    let vfs = SimVfs::new(2);
    let engine = open_on(&vfs, &config).unwrap();
    fill(&engine, 500);
    engine.close().unwrap();
    drop(engine);
    vfs.remove(&Path::new(DIR).join("CURRENT")).unwrap();
    let before = names(&vfs);
    assert!(before.iter().any(|name| name.ends_with(".sst")));
    let reopened = open_on(&vfs, &config);
    assert!(is_corruption(&reopened), "{reopened:?}");
    assert_eq!(names(&vfs), before);
}

/// D5: the last edit of a manifest is a flush; read back damaged, it looks
/// torn — but the log it made obsolete is gone, which proves it was durable.
#[test]
fn a_damaged_last_flush_edit_whose_log_is_gone_is_corruption() {
    let config = LsmConfig {
        enable_compaction: false,
        ..common::tiny_config(DIR)
    };
    let vfs = SimVfs::new(3);
    let engine = open_on(&vfs, &config).unwrap();
    let model = fill(&engine, 300);
    assert!(engine.flush_count() > 2);
    // A crash, not a close: the manifest's last edit is the last flush.
    let crashed = vfs.crash_image(CrashPolicy::PowerLoss, 0);
    drop(engine);
    let manifest = manifest_of(&crashed);
    let len = crashed.file_size(&manifest).unwrap();
    crashed.corrupt_byte(&manifest, len - 5, 0x01).unwrap();
    match open_on(&crashed, &config) {
        Err(KvError::Corruption { .. }) => {}
        Err(other) => panic!("{other}"),
        Ok(engine) => {
            // Open may succeed only when nothing was lost.
            assert_eq!(collect_all(&engine).unwrap(), model);
        }
    }
}

/// D7: a fresh open takes nothing that is not the tree's.
#[test]
fn a_fresh_open_leaves_files_that_are_not_the_trees() {
    let config = common::tiny_config(DIR);
    let vfs = SimVfs::new(4);
    vfs.create_dir_all(Path::new(DIR)).unwrap();
    vfs.create(&Path::new(DIR).join("notes.tmp")).unwrap();
    let engine = open_on(&vfs, &config).unwrap();
    engine.close().unwrap();
    assert!(names(&vfs).contains(&"notes.tmp".to_owned()));

    // A numbered log with bytes and no CURRENT could be a tree's data.
    let other = SimVfs::new(5);
    other.create_dir_all(Path::new(DIR)).unwrap();
    let log = other.create(&Path::new(DIR).join("000001.log")).unwrap();
    leasehold_core::vfs::write_all_at(log.as_ref(), b"someone's text", 0).unwrap();
    let opened = open_on(&other, &config);
    assert!(is_corruption(&opened), "{opened:?}");
    assert_eq!(
        names(&other),
        ["000001.log", "LOCK"],
        "only the lock file is new"
    );
}

/// D6: a second open of a live directory is refused, naming the holder; the
/// lock goes with `close` (and with a crash: a crash image holds none).
#[test]
fn a_second_open_of_a_live_tree_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::tiny_config(dir.path());
    let engine = LsmEngine::open(&config, Arc::new(OsVfs::new())).unwrap();
    let model = fill(&engine, 50);
    match LsmEngine::open(&config, Arc::new(OsVfs::new())) {
        Err(KvError::Locked { holder_pid, .. }) => {
            assert_eq!(holder_pid, Some(std::process::id()))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        collect_all(&engine).unwrap(),
        model,
        "the refusal harmed nothing"
    );
    engine.close().unwrap();
    let engine = LsmEngine::open(&config, Arc::new(OsVfs::new())).unwrap();
    assert_eq!(collect_all(&engine).unwrap(), model);

    let vfs = SimVfs::new(6);
    let sim_config = common::tiny_config(DIR);
    let live = open_on(&vfs, &sim_config).unwrap();
    assert!(matches!(
        open_on(&vfs, &sim_config),
        Err(KvError::Locked { .. })
    ));
    open_on(&vfs.crash_image(CrashPolicy::ProcessCrash, 0), &sim_config).unwrap();
    drop(live);
}

fn is_metadata(name: &str) -> bool {
    name == "CURRENT" || name.starts_with("MANIFEST-")
}

fn density(metadata_offsets: u64, sampled: usize) -> damage::Density<'static> {
    damage::Density {
        is_metadata: &is_metadata,
        metadata_offsets,
        sampled,
    }
}

/// A closed tree holding data in tables and in its log (so every file kind
/// is there); the model of its content.
fn closed_tree(vfs: &SimVfs, config: &LsmConfig) -> KvMap {
    let engine = open_on(vfs, config).unwrap();
    let mut model = fill(&engine, 200);
    engine.compact_all().unwrap();
    for index in 400..420 {
        let mut batch = WriteBatch::new();
        batch.put(key(index), vec![1; 30]);
        batch.apply_to(&mut model);
        engine.write(batch, Durability::Sync).unwrap();
    }
    engine.close().unwrap();
    model
}

/// Every file of a closed tree — CURRENT, manifest, tables, blob files, log,
/// LOCK — flipped, zeroed, truncated and removed, one damage at a time.
#[test]
fn damage_at_rest_anywhere_is_an_error_or_changes_nothing() {
    let config = common::tiny_config(DIR);
    let vfs = SimVfs::new(7);
    let model = closed_tree(&vfs, &config);
    let files = names(&vfs);
    for kind in [".log", ".sst", ".blob"] {
        assert!(files.iter().any(|name| name.ends_with(kind)), "{files:?}");
    }
    let cases = damage::cases_for_dir(&vfs, Path::new(DIR), density(1024, 16), 7).unwrap();
    let copy = || damage::copy_sim(&vfs, Path::new(DIR));
    let open = |vfs: Arc<dyn Vfs>, dir: &Path| {
        LsmEngine::open(
            &LsmConfig {
                data_dir: dir.to_path_buf(),
                ..config.clone()
            },
            vfs,
        )
    };
    let report = damage::sweep(&copy, &open, &model, &cases).unwrap();
    eprintln!("{report:?}");
    assert!(report.refused > 0 && report.read_errors > 0, "{report:?}");
}

/// The same on the real file system, on fewer cases.
#[test]
fn damage_at_rest_on_the_real_disk_is_an_error_or_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::tiny_config(dir.path());
    let engine = LsmEngine::open(&config, Arc::new(OsVfs::new())).unwrap();
    let model = fill(&engine, 300);
    engine.close().unwrap();
    drop(engine);
    let cases = damage::cases_for_dir(&OsVfs::new(), dir.path(), density(48, 2), 8).unwrap();
    let open = |vfs: Arc<dyn Vfs>, at: &Path| {
        LsmEngine::open(
            &LsmConfig {
                data_dir: at.to_path_buf(),
                ..config.clone()
            },
            vfs,
        )
    };
    let report = damage::sweep(&|| damage::copy_os_dir(dir.path()), &open, &model, &cases).unwrap();
    assert!(report.refused > 0, "{report:?}");
}

/// The campaign's media-damage family (`crash-fuzz --mode damage`) in the
/// default run: random sequences, a refused second open, one damage at rest.
#[test]
fn the_damage_family_finds_no_violation() {
    let open = |vfs: SimVfs| LsmEngine::open(&common::tiny_config(DIR), Arc::new(vfs));
    if let Err((case, reason)) = damage::search_damage(&open, Path::new(DIR), 1_000, 32) {
        panic!("{reason}\n{case:?}");
    }
}

/// The Store-level crash oracle: `KvStore` on this engine, crashed anywhere,
/// never grants an epoch twice, loses a Sync save, or lets a stale save in.
#[test]
fn the_lease_rules_hold_across_crashes() {
    let open = |vfs: SimVfs| LsmEngine::open(&common::tiny_config(DIR), Arc::new(vfs));
    if let Err((case, reason)) =
        leasehold_testkit::store_crash::search_store_crashes(&open, 1, 1_000)
    {
        panic!("{reason}\n{case:?}");
    }
}
