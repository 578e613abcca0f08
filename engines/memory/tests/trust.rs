//! Damage is an error, never a smaller store: a removed backup, a second
//! open, and media damage at rest swept over every file of a closed store.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use leasehold_core::vfs::{OsVfs, SimVfs, Vfs};
use leasehold_core::{Durability, KvEngine, KvError, WriteBatch};
use leasehold_memory::config::{BackupCompression, MemoryConfig};
use leasehold_memory::MemoryEngine;
use leasehold_testkit::crash::collect_all;
use leasehold_testkit::damage;
use leasehold_testkit::oracle::KvMap;

const DIR: &str = "/mem";

fn config(dir: &Path) -> MemoryConfig {
    MemoryConfig {
        max_entries: 10_000,
        backup_path: Some(dir.join("backup.lz4")),
        sync_interval: Duration::from_secs(3600),
        compression: BackupCompression::Lz4,
    }
}

fn fill(engine: &MemoryEngine, count: usize) -> KvMap {
    let mut model = KvMap::new();
    for index in 0..count {
        let mut batch = WriteBatch::new();
        batch.put(format!("k{index:04}"), vec![index as u8; 50]);
        batch.apply_to(&mut model);
        engine.write(batch, Durability::Buffered).unwrap();
    }
    engine.flush().unwrap();
    model
}

/// A removed backup used to open as an empty store.
#[test]
fn a_removed_backup_is_corruption_not_an_empty_store() {
    let vfs = SimVfs::new(1);
    let config = config(Path::new(DIR));
    let engine = MemoryEngine::open(&config, Arc::new(vfs.clone())).unwrap();
    fill(&engine, 20);
    engine.close().unwrap();
    vfs.remove(&Path::new(DIR).join("backup.lz4")).unwrap();
    assert!(matches!(
        MemoryEngine::open(&config, Arc::new(vfs.clone())),
        Err(KvError::Corruption { .. })
    ));
    // A store never written to is still a store: its first open made a backup.
    let fresh = SimVfs::new(2);
    drop(MemoryEngine::open(&config, Arc::new(fresh.clone())).unwrap());
    let engine = MemoryEngine::open(&config, Arc::new(fresh)).unwrap();
    assert!(collect_all(&engine).unwrap().is_empty());
}

#[test]
fn a_second_open_of_a_live_store_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let engine = MemoryEngine::open(&config, Arc::new(OsVfs::new())).unwrap();
    let model = fill(&engine, 10);
    assert!(matches!(
        MemoryEngine::open(&config, Arc::new(OsVfs::new())),
        Err(KvError::Locked { .. })
    ));
    engine.close().unwrap();
    let engine = MemoryEngine::open(&config, Arc::new(OsVfs::new())).unwrap();
    assert_eq!(collect_all(&engine).unwrap(), model);
}

fn is_metadata(name: &str) -> bool {
    name.starts_with("backup.lz4")
}

#[test]
fn damage_at_rest_anywhere_is_an_error_or_changes_nothing() {
    let vfs = SimVfs::new(3);
    let config = config(Path::new(DIR));
    let engine = MemoryEngine::open(&config, Arc::new(vfs.clone())).unwrap();
    let model = fill(&engine, 100);
    engine.close().unwrap();
    let cases = damage::cases_for_dir(
        &vfs,
        Path::new(DIR),
        damage::Density {
            is_metadata: &is_metadata,
            metadata_offsets: 512,
            sampled: 8,
        },
        3,
    )
    .unwrap();
    let copy = || damage::copy_sim(&vfs, Path::new(DIR));
    let open = |vfs: Arc<dyn Vfs>, dir: &Path| MemoryEngine::open(&self::config(dir), vfs);
    let report = damage::sweep(&copy, &open, &model, &cases).unwrap();
    assert!(report.refused > 0 && report.intact > 0, "{report:?}");

    let real = tempfile::tempdir().unwrap();
    let engine = MemoryEngine::open(&self::config(real.path()), Arc::new(OsVfs::new())).unwrap();
    let model = fill(&engine, 100);
    engine.close().unwrap();
    let cases = damage::cases_for_dir(
        &OsVfs::new(),
        real.path(),
        damage::Density {
            is_metadata: &is_metadata,
            metadata_offsets: 32,
            sampled: 2,
        },
        4,
    )
    .unwrap();
    let report =
        damage::sweep(&|| damage::copy_os_dir(real.path()), &open, &model, &cases).unwrap();
    assert!(report.refused > 0, "{report:?}");
}

/// The campaign's media-damage family (`crash-fuzz --mode damage`) in the
/// default run: random sequences, a refused second open, one damage at rest.
#[test]
fn the_damage_family_finds_no_violation() {
    let open = |vfs: SimVfs| MemoryEngine::open(&config(Path::new(DIR)), Arc::new(vfs));
    if let Err((case, reason)) = damage::search_damage(&open, Path::new(DIR), 1_000, 32) {
        panic!("{reason}\n{case:?}");
    }
}

/// The Store-level crash oracle: `KvStore` on this engine, crashed anywhere,
/// never grants an epoch twice, loses a Sync save, or lets a stale save in.
#[test]
fn the_lease_rules_hold_across_crashes() {
    let open = |vfs: SimVfs| MemoryEngine::open(&config(Path::new(DIR)), Arc::new(vfs));
    if let Err((case, reason)) =
        leasehold_testkit::store_crash::search_store_crashes(&open, 1, 1_000)
    {
        panic!("{reason}\n{case:?}");
    }
}

/// Background threads on, with manual maintenance racing the workers while
/// the case writes (`testkit::background`; `crash-fuzz --mode background`).
#[test]
fn the_background_family_finds_no_violation() {
    let open = |vfs: SimVfs| {
        MemoryEngine::open(
            &MemoryConfig {
                sync_interval: Duration::from_secs(1),
                ..config(Path::new(DIR))
            },
            Arc::new(vfs),
        )
    };
    let found = leasehold_testkit::background::search_background(
        Arc::new(open),
        Arc::new(|engine: &MemoryEngine| engine.flush()),
        1,
        150,
        32,
    );
    if let Err((case, reason)) = found {
        panic!("{reason}\n{case:?}");
    }
}

/// X5: a Sync write was applied to the map, visible to every reader, before
/// the backup covering it was durable: a reader could act on a write that a
/// crash then lost. Now its shard stays locked until the backup is durable.
#[test]
fn a_sync_write_is_not_visible_before_its_backup_is_durable() {
    use leasehold_testkit::gated::{answer_while_a_write_is_stuck, GatedVfs};
    let vfs = GatedVfs::new(SimVfs::new(7), "tmp");
    let gate = vfs.gate();
    let engine = Arc::new(MemoryEngine::open(&config(Path::new(DIR)), Arc::new(vfs)).unwrap());
    let early =
        answer_while_a_write_is_stuck(&engine, &gate, Duration::from_millis(300), |engine| {
            engine.get(b"k").unwrap()
        });
    assert!(
        !matches!(early, Some(Some(_))),
        "a reader saw the Sync write before its backup was durable"
    );
    assert_eq!(engine.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
}

/// X5, the failure half: a Sync write whose backup fails is rolled back, so
/// nobody ever sees a write that was answered with an error.
#[test]
fn a_sync_write_whose_backup_fails_is_never_seen() {
    use leasehold_testkit::gated::GatedVfs;
    let vfs = GatedVfs::new(SimVfs::new(8), "tmp");
    let gate = vfs.gate();
    let engine = MemoryEngine::open(&config(Path::new(DIR)), Arc::new(vfs)).unwrap();
    let mut first = WriteBatch::new();
    first.put(&b"k"[..], &b"old"[..]);
    engine.write(first, Durability::Sync).unwrap();
    gate.fail_next();
    let mut second = WriteBatch::new();
    second
        .put(&b"k"[..], &b"new"[..])
        .put(&b"j"[..], &b"new"[..]);
    assert!(engine.write(second, Durability::Sync).is_err());
    assert_eq!(engine.get(b"k").unwrap().as_deref(), Some(&b"old"[..]));
    assert_eq!(engine.get(b"j").unwrap(), None);
    assert_eq!(engine.stats().live_entries, 1);
}

/// Group's time bound: the background backup covers what was acknowledged
/// more than the interval (plus slack) before a crash
/// (`testkit::group_bound`; `crash-fuzz --mode group-bound`).
#[test]
fn the_group_bound_family_finds_no_violation() {
    use leasehold_testkit::group_bound::{bound_for, search_group_bound};
    let interval = Duration::from_millis(20);
    let config = MemoryConfig {
        sync_interval: interval,
        ..config(Path::new(DIR))
    };
    let open = move |vfs: SimVfs| MemoryEngine::open(&config, Arc::new(vfs));
    if let Err((case, reason)) = search_group_bound(&open, bound_for(interval, interval), 1, 4) {
        panic!("{reason}\n{case:?}");
    }
}
