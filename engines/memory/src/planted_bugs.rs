//! The planted bugs, each found by the family that can see it.

use super::*;
use crate::config::BackupCompression;
use leasehold_storage::vfs::SimVfs;
use leasehold_testkit::crash;

fn open(bug: PlantedBug) -> impl Fn(SimVfs) -> KvResult<MemoryEngine> {
    move |vfs| {
        let config = MemoryConfig {
            max_entries: 1_000,
            backup_path: Some(PathBuf::from("/memory/backup.lz4")),
            sync_interval: Duration::from_secs(24 * 3600),
            compression: BackupCompression::Lz4,
        };
        MemoryEngine::open_planted(&config, Arc::new(vfs), bug)
    }
}

/// The media-damage family catches a missing lock and what recovery
/// must not take at its word.
#[test]
fn the_damage_family_finds_its_planted_bugs() {
    for bug in [PlantedBug::SkipDirLock, PlantedBug::IgnoreWitness] {
        let found = leasehold_testkit::damage::search_damage(
            &open(bug),
            std::path::Path::new("/memory"),
            2_000,
            32,
        );
        assert!(
            found.is_err(),
            "{bug:?} went unnoticed by 2 000 damage cases"
        );
    }
}

/// The campaign must find each planted bug within a bounded run.
#[test]
fn the_crash_oracle_finds_every_planted_bug() {
    for bug in [
        PlantedBug::SkipBackupSync,
        PlantedBug::SkipDirSync,
        PlantedBug::AckBeforeBackup,
    ] {
        let found = crash::search(&open(bug), 2_000, 32);
        assert!(
            found.is_err(),
            "{bug:?} went unnoticed by 2 000 crash cases"
        );
    }
}

/// Without the checksum, a bit flipped while reading the backup comes
/// back as data.
#[test]
fn read_faults_find_the_skipped_checksum() {
    let read_faults = crash::read_fault_config();
    let found = crash::search_with(
        &open(PlantedBug::SkipChecksum),
        2_000,
        32,
        Some(&read_faults),
    );
    assert!(found.is_err(), "the skipped backup checksum went unnoticed");
}
