//! Damage is an error, never a smaller tree: the audit's D4 and D6 as the
//! smallest tests that show them, and media damage at rest swept over every
//! file of a closed tree (meta slots densely).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

mod common;

use std::path::Path;
use std::sync::Arc;

use leasehold_btree::config::BtreeConfig;
use leasehold_btree::BtreeEngine;
use leasehold_core::vfs::{read_exact_at, CrashPolicy, OsVfs, SimVfs, Vfs};
use leasehold_core::{Durability, KvEngine, KvError, WriteBatch};
use leasehold_testkit::crash::collect_all;
use leasehold_testkit::damage;
use leasehold_testkit::oracle::KvMap;

const DIR: &str = "/bt";
const PAGE: u64 = 1024;

fn open_on(vfs: &SimVfs, config: &BtreeConfig) -> Result<BtreeEngine, KvError> {
    BtreeEngine::open(config, Arc::new(vfs.clone()))
}

fn put(engine: &BtreeEngine, model: &mut KvMap, key: &str, len: usize) {
    let mut batch = WriteBatch::new();
    batch.put(key.as_bytes(), vec![key.len() as u8; len]);
    batch.apply_to(model);
    engine.write(batch, Durability::Sync).unwrap();
}

fn names(vfs: &SimVfs) -> Vec<String> {
    vfs.list(Path::new(DIR)).unwrap()
}

/// The header txn of meta slot `slot` (page header: FORMAT.md, "Pages").
fn slot_txn(vfs: &SimVfs, slot: u64) -> u64 {
    let file = vfs.open_read(&Path::new(DIR).join("data.db")).unwrap();
    let mut txn = [0u8; 8];
    read_exact_at(file.as_ref(), &mut txn, slot * PAGE + 16).unwrap();
    u64::from_le_bytes(txn)
}

/// D4: with the newest meta slot damaged, the older one names a log that a
/// later checkpoint deleted. Falling back would lose what that checkpoint held
/// and replay later logs on top; it must be corruption.
#[test]
fn a_damaged_newest_meta_slot_is_corruption_not_an_older_tree() {
    let config = common::tiny_config(DIR);
    let vfs = SimVfs::new(1);
    let engine = open_on(&vfs, &config).unwrap();
    let mut model = KvMap::new();
    put(&engine, &mut model, "k1", 10);
    engine.checkpoint().unwrap();
    put(&engine, &mut model, "k2", 10);
    engine.checkpoint().unwrap();
    put(&engine, &mut model, "k3", 10);
    // A crash, not a close: k3 lives only in the log. (A process crash: the
    // deleted logs stay deleted. After a power loss they may come back, and
    // then falling back to the older meta and replaying them all is right.)
    let crashed = vfs.crash_image(CrashPolicy::ProcessCrash, 0);
    drop(engine);
    let newest = if slot_txn(&crashed, 0) > slot_txn(&crashed, 1) {
        0
    } else {
        1
    };
    crashed
        .corrupt_byte(&Path::new(DIR).join("data.db"), newest * PAGE + 40, 0x01)
        .unwrap();
    let before = names(&crashed);
    let reopened = open_on(&crashed, &config);
    assert!(
        matches!(reopened, Err(KvError::Corruption { .. })),
        "{:?}",
        reopened.map(|engine| collect_all(&engine).unwrap())
    );
    assert_eq!(names(&crashed), before, "a refused open changes nothing");
}

/// A missing data file beside logs is not a new tree.
#[test]
fn a_missing_data_file_beside_logs_is_corruption_and_creates_nothing() {
    let config = common::tiny_config(DIR);
    let vfs = SimVfs::new(2);
    let engine = open_on(&vfs, &config).unwrap();
    let mut model = KvMap::new();
    put(&engine, &mut model, "k1", 10);
    drop(engine);
    vfs.remove(&Path::new(DIR).join("data.db")).unwrap();
    let before = names(&vfs);
    assert!(matches!(
        open_on(&vfs, &config),
        Err(KvError::Corruption { .. })
    ));
    assert_eq!(names(&vfs), before);
}

/// D6: a second open of a live tree is refused; the lock goes with `close`.
#[test]
fn a_second_open_of_a_live_tree_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::tiny_config(dir.path());
    let engine = BtreeEngine::open(&config, Arc::new(OsVfs::new())).unwrap();
    let mut model = KvMap::new();
    for index in 0..50 {
        put(&engine, &mut model, &format!("k{index:03}"), 20);
    }
    assert!(matches!(
        BtreeEngine::open(&config, Arc::new(OsVfs::new())),
        Err(KvError::Locked {
            holder_pid: Some(_),
            ..
        })
    ));
    assert_eq!(collect_all(&engine).unwrap(), model);
    engine.close().unwrap();
    let engine = BtreeEngine::open(&config, Arc::new(OsVfs::new())).unwrap();
    assert_eq!(collect_all(&engine).unwrap(), model);
}

/// G1: without the background thread a trailing Group write was never
/// synced: durable "within the interval" meant never.
#[test]
fn a_group_write_without_the_background_thread_survives_power_loss() {
    let config = common::tiny_config(DIR);
    let vfs = SimVfs::new(9);
    let engine = open_on(&vfs, &config).unwrap();
    let mut model = KvMap::new();
    put(&engine, &mut model, "k0", 10);
    let mut group = WriteBatch::new();
    group.put(&b"k1"[..], &b"1"[..]);
    engine.write(group, Durability::Group).unwrap();
    let crashed = vfs.crash_image(CrashPolicy::PowerLoss, 0);
    drop(engine);
    let engine = open_on(&crashed, &config).unwrap();
    assert_eq!(engine.get(b"k1").unwrap().as_deref(), Some(&b"1"[..]));
}

/// A closed tree over several checkpoints, with overflow values (so every
/// page kind is on disk); the model of its content.
fn closed_tree(engine: &BtreeEngine) -> KvMap {
    let mut model = KvMap::new();
    for index in 0..150 {
        let len = if index % 10 == 0 { 3000 } else { 40 };
        put(engine, &mut model, &format!("k{index:04}"), len);
    }
    engine.close().unwrap();
    model
}

fn is_metadata(name: &str) -> bool {
    name == "data.db"
}

/// Every file — data.db (its two meta slots and the first pages densely),
/// the log, LOCK — flipped, zeroed, truncated and removed, one at a time.
#[test]
fn damage_at_rest_anywhere_is_an_error_or_changes_nothing() {
    let config = common::tiny_config(DIR);
    let vfs = SimVfs::new(3);
    let model = closed_tree(&open_on(&vfs, &config).unwrap());
    let mut cases = damage::cases_for_dir(
        &vfs,
        Path::new(DIR),
        damage::Density {
            is_metadata: &is_metadata,
            metadata_offsets: 512,
            sampled: 16,
        },
        3,
    )
    .unwrap();
    // Every byte of both meta slots.
    cases.extend((0..2 * PAGE).map(|offset| damage::DamageCase {
        file: "data.db".into(),
        damage: damage::Damage::Flip { offset, mask: 0x04 },
    }));
    let copy = || damage::copy_sim(&vfs, Path::new(DIR));
    let open = |vfs: Arc<dyn Vfs>, dir: &Path| {
        BtreeEngine::open(
            &BtreeConfig {
                data_dir: dir.to_path_buf(),
                ..config.clone()
            },
            vfs,
        )
    };
    let report = damage::sweep(&copy, &open, &model, &cases).unwrap();
    assert!(report.refused > 0 && report.intact > 0, "{report:?}");
}

/// The same on the real file system, on fewer cases.
#[test]
fn damage_at_rest_on_the_real_disk_is_an_error_or_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::tiny_config(dir.path());
    let model = closed_tree(&BtreeEngine::open(&config, Arc::new(OsVfs::new())).unwrap());
    let cases = damage::cases_for_dir(
        &OsVfs::new(),
        dir.path(),
        damage::Density {
            is_metadata: &is_metadata,
            metadata_offsets: 64,
            sampled: 2,
        },
        4,
    )
    .unwrap();
    let open = |vfs: Arc<dyn Vfs>, at: &Path| {
        BtreeEngine::open(
            &BtreeConfig {
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
    let open = |vfs: SimVfs| BtreeEngine::open(&common::tiny_config(DIR), Arc::new(vfs));
    if let Err((case, reason)) = damage::search_damage(&open, Path::new(DIR), 1_000, 32) {
        panic!("{reason}\n{case:?}");
    }
}

/// The Store-level crash oracle: `KvStore` on this engine, crashed anywhere,
/// never grants an epoch twice, loses a Sync save, or lets a stale save in.
#[test]
fn the_lease_rules_hold_across_crashes() {
    let open = |vfs: SimVfs| BtreeEngine::open(&common::tiny_config(DIR), Arc::new(vfs));
    if let Err((case, reason)) =
        leasehold_testkit::store_crash::search_store_crashes(&open, 1, 1_000)
    {
        panic!("{reason}\n{case:?}");
    }
}

/// B1: a crafted file with valid checksums whose meta claims far more pages
/// than the file holds made the loader allocate what an overflow entry asked
/// for (an abort), and a branch child id near `u64::MAX / page_size`
/// overflowed the offset computed from it. Both are corruption now. So is
/// (B2) a free list naming a page the tree uses: the next checkpoint would
/// have overwritten that live page. A format-1 meta makes open walk the tree,
/// so open finds all three; past a format-2 meta the tree is read on demand,
/// and the read that meets the page fails, or `verify` reports the overlap.
#[test]
fn a_crafted_meta_page_id_or_free_list_is_corruption() {
    use leasehold_btree::layout::{encode_branch, encode_leaf, LeafEntry, Stored};
    use leasehold_btree::meta::Meta;
    use leasehold_btree::page::{seal, PageKind};
    use leasehold_core::vfs::write_all_at;
    let crafted = |page_count: u64,
                   root: (PageKind, Vec<u8>),
                   inline_free: Vec<u64>,
                   live: Option<(u64, u64)>| {
        let vfs = SimVfs::new(13);
        vfs.create_dir_all(Path::new(DIR)).unwrap();
        let file = vfs.create(&Path::new(DIR).join("data.db")).unwrap();
        let meta = Meta {
            txn: 1,
            page_size: PAGE as u32,
            root: Some(2),
            page_count,
            wal_number: 1,
            free_count: inline_free.len() as u64,
            freelist_head: None,
            live,
            inline_free,
        };
        write_all_at(file.as_ref(), &vec![0u8; PAGE as usize], 0).unwrap();
        for (id, kind, payload) in [(1u64, PageKind::Meta, meta.encode()), (2, root.0, root.1)] {
            let page = seal(PAGE as usize, kind, id, 1, &payload);
            write_all_at(file.as_ref(), &page, id * PAGE).unwrap();
        }
        file.sync().unwrap();
        vfs.create(&Path::new(DIR).join("000001.wal")).unwrap();
        vfs.sync_dir(Path::new(DIR)).unwrap();
        open_on(&vfs, &common::tiny_config(DIR))
    };
    let huge_overflow = encode_leaf(&[LeafEntry {
        key: b"k",
        lz4_raw_len: None,
        stored: Stored::Overflow {
            first_page: 3,
            stored_len: 1 << 45,
        },
    }]);
    let corrupt = |result: &Result<_, KvError>| matches!(result, Err(KvError::Corruption { .. }));
    let far_child = encode_branch(&[b"m".to_vec()], &[u64::MAX / PAGE + 5, 3]);
    let leaf = encode_leaf(&[LeafEntry {
        key: b"k",
        lz4_raw_len: None,
        stored: Stored::Inline(b"v"),
    }]);
    // Format 1: open walks the tree and refuses each.
    let opened = crafted(
        1 << 40,
        (PageKind::Leaf, huge_overflow.clone()),
        vec![],
        None,
    );
    assert!(corrupt(&opened), "{opened:?}");
    let opened = crafted(3, (PageKind::Branch, far_child.clone()), vec![], None);
    assert!(corrupt(&opened), "{opened:?}");
    let opened = crafted(3, (PageKind::Leaf, leaf.clone()), vec![], None);
    assert!(opened.is_ok(), "the well-formed file opens: {opened:?}");
    let opened = crafted(3, (PageKind::Leaf, leaf.clone()), vec![2], None);
    assert!(corrupt(&opened), "{opened:?}");
    // Format 2: the read that meets the page fails; verify finds the overlap.
    let live = Some((1, 2));
    let engine = crafted(3, (PageKind::Leaf, huge_overflow), vec![], live).unwrap();
    let read = engine.get(b"k");
    assert!(matches!(read, Err(KvError::Corruption { .. })), "{read:?}");
    let engine = crafted(3, (PageKind::Branch, far_child), vec![], live).unwrap();
    let read = engine.get(b"a");
    assert!(matches!(read, Err(KvError::Corruption { .. })), "{read:?}");
    let engine = crafted(3, (PageKind::Leaf, leaf.clone()), vec![], live).unwrap();
    assert!(engine.verify().unwrap().is_clean());
    let engine = crafted(3, (PageKind::Leaf, leaf), vec![2], live).unwrap();
    let report = engine.verify().unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|problem| problem.contains("free list and in use")),
        "{report:?}"
    );
}

/// Background threads on, with manual maintenance racing the workers while
/// the case writes (`testkit::background`; `crash-fuzz --mode background`).
#[test]
fn the_background_family_finds_no_violation() {
    let open = |vfs: SimVfs| {
        BtreeEngine::open(
            &BtreeConfig {
                background_threads: true,
                ..common::tiny_config(DIR)
            },
            Arc::new(vfs),
        )
    };
    let found = leasehold_testkit::background::search_background(
        Arc::new(open),
        Arc::new(BtreeEngine::checkpoint),
        1,
        150,
        32,
    );
    if let Err((case, reason)) = found {
        panic!("{reason}\n{case:?}");
    }
}

/// G1, with the worker: the timed sync of Group writes ran between
/// checkpoints, so a long checkpoint (here, stuck in its data file's fsync)
/// kept an acknowledged Group write unsynced past its interval.
#[test]
fn a_group_write_is_synced_within_its_interval_during_a_long_checkpoint() {
    use leasehold_testkit::gated::{check_group_write_synced_while_stuck, GatedVfs};
    let inner = SimVfs::new(14);
    let vfs = GatedVfs::new(inner.clone(), "db");
    let gate = vfs.gate();
    let config = BtreeConfig {
        background_threads: true,
        ..common::tiny_config(DIR)
    };
    let engine = BtreeEngine::open(&config, Arc::new(vfs)).unwrap();
    let fill = |engine: &BtreeEngine| {
        for index in 0..100 {
            let mut batch = WriteBatch::new();
            batch.put(format!("k{index:04}"), vec![1u8; 64]);
            engine.write(batch, Durability::Buffered).unwrap();
        }
    };
    // Interval 1 s.
    check_group_write_synced_while_stuck(
        engine,
        &gate,
        &inner,
        fill,
        std::time::Duration::from_millis(1_500),
        |crashed| open_on(&crashed, &common::tiny_config(DIR)),
    );
}

/// X3: in inline mode a write that made a checkpoint due ran it after the
/// write was applied and visible, and a checkpoint error came back as that
/// write's error. Now the write is acknowledged and the engine is failed.
#[test]
fn an_inline_checkpoint_error_fails_the_engine_not_the_write_already_applied() {
    use leasehold_testkit::gated::GatedVfs;
    let vfs = GatedVfs::new(SimVfs::new(15), "db");
    let gate = vfs.gate();
    let config = BtreeConfig {
        background_threads: false,
        ..common::tiny_config(DIR)
    };
    let engine = BtreeEngine::open(&config, Arc::new(vfs)).unwrap();
    gate.fail_next();
    let mut written = 0;
    while engine.health() == leasehold_core::Health::Healthy && written < 10_000 {
        let mut batch = WriteBatch::new();
        batch.put(format!("k{written:05}"), vec![1u8; 64]);
        engine
            .write(batch, Durability::Buffered)
            .expect("an applied write is acknowledged");
        written += 1;
    }
    assert!(written < 10_000, "no checkpoint ran");
    assert!(matches!(engine.health(), leasehold_core::Health::Failed(_)));
    for index in 0..written {
        let key = format!("k{index:05}");
        assert!(engine.get(key.as_bytes()).unwrap().is_some(), "{key}");
    }
}

/// Group's time bound, with the workers on: what was acknowledged more than
/// the interval (plus slack) before a crash is recovered
/// (`testkit::group_bound`; `crash-fuzz --mode group-bound`).
#[test]
fn the_group_bound_family_finds_no_violation() {
    use leasehold_testkit::group_bound::{bound_for, search_group_bound};
    let config = BtreeConfig {
        background_threads: true,
        wal_sync_interval_seconds: 1,
        ..common::tiny_config(DIR)
    };
    let open = move |vfs: SimVfs| BtreeEngine::open(&config, Arc::new(vfs));
    let bound = bound_for(
        std::time::Duration::from_secs(1),
        std::time::Duration::from_millis(50),
    );
    if let Err((case, reason)) = search_group_bound(&open, bound, 1, 2) {
        panic!("{reason}\n{case:?}");
    }
}

/// D8: damage inside the last synced records of a crashed (not closed)
/// tree was truncated away as a torn tail. Now the syncer seals an idle
/// log, so after a quiet second that damage is corruption.
#[test]
fn damage_in_the_last_synced_records_of_an_idle_crashed_tree_is_corruption() {
    let vfs = SimVfs::new(17);
    let config = BtreeConfig {
        background_threads: true,
        wal_sync_interval_seconds: 1,
        ..common::tiny_config(DIR)
    };
    let engine = open_on(&vfs, &config).unwrap();
    let mut model = KvMap::new();
    for index in 0..4 {
        put(&engine, &mut model, &format!("k{index}"), 40);
    }
    let log = names(&vfs)
        .into_iter()
        .filter(|name| name.ends_with(".wal"))
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
    crashed.corrupt_byte(&log, written - 8, 0x10).unwrap();
    let reopened = open_on(&crashed, &common::tiny_config(DIR));
    assert!(
        matches!(reopened, Err(KvError::Corruption { .. })),
        "{reopened:?}"
    );
}
