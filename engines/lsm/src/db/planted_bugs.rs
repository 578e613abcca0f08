//! The planted bugs, each found by the family that can see it.

use super::*;
use leasehold_storage::vfs::SimVfs;
use leasehold_testkit::planted::{assert_caught, Family};

fn open(bug: PlantedBug) -> impl Fn(SimVfs) -> KvResult<LsmEngine> {
    move |vfs| {
        let config = crate::crash_test_config("/lsm");
        let engine = LsmEngine::open(&config, Arc::new(vfs))?;
        engine.plant(bug);
        Ok(engine)
    }
}

/// The campaign must find each planted bug within a bounded run.
#[test]
fn the_crash_oracle_finds_every_planted_bug() {
    let bugs = [
        PlantedBug::SkipWalSync,
        PlantedBug::SkipDirSync,
        PlantedBug::AckBeforeWal,
        PlantedBug::DeleteLiveBlob,
    ];
    assert_caught(Family::Crash, &bugs, open);
}

/// The media-damage family catches a missing lock and a manifest taken
/// at its word.
#[test]
fn the_damage_family_finds_its_planted_bugs() {
    let bugs = [PlantedBug::SkipDirLock, PlantedBug::TrustTornManifest];
    assert_caught(Family::Damage(Path::new("/lsm")), &bugs, |bug| {
        move |vfs: SimVfs| {
            LsmEngine::open_planted(&crate::crash_test_config("/lsm"), Arc::new(vfs), bug)
        }
    });
}

/// The background family finds the D3 race: a flush that picks its
/// memtable before the lock retires another one, or panics the worker.
#[test]
fn the_background_family_finds_the_flush_race() {
    let open = |vfs: SimVfs| {
        let config = LsmConfig {
            background_threads: true,
            max_memtables: 4,
            ..crate::crash_test_config("/lsm")
        };
        LsmEngine::open_planted(&config, Arc::new(vfs), PlantedBug::PickBeforeLock)
    };
    let found = leasehold_testkit::background::search_background(
        Arc::new(open),
        Arc::new(LsmEngine::compact_all),
        1,
        300,
        32,
    );
    assert!(found.is_err(), "the D3 race went unnoticed by 300 cases");
}

/// Without block checksums, a bit flipped on read comes back as data.
#[test]
fn read_faults_find_the_skipped_block_checksum() {
    assert_caught(Family::ReadFaults, &[PlantedBug::SkipBlockChecksum], open);
}

/// The Group-bound family finds a missing Group timer: the last writes of
/// a burst stay unsynced past the interval.
#[test]
fn the_group_bound_family_finds_a_missing_timer() {
    use leasehold_testkit::group_bound::{bound_for, search_group_bound};
    let open = |vfs: SimVfs| {
        let config = LsmConfig {
            background_threads: true,
            wal_sync_interval_ms: 20,
            memtable_size_limit: 1 << 20,
            ..crate::crash_test_config("/lsm")
        };
        LsmEngine::open_planted(&config, Arc::new(vfs), PlantedBug::NoGroupTimer)
    };
    let interval = Duration::from_millis(20);
    let found = search_group_bound(&open, bound_for(interval, interval / 4), 1, 30);
    assert!(
        found.is_err(),
        "a missing Group timer went unnoticed by 30 cases"
    );
}
