//! The planted bugs, each found by the family that can see it.

use super::*;
use crate::config::BackupCompression;
use leasehold_storage::vfs::SimVfs;
use leasehold_testkit::planted::{assert_caught, Family};

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
    let bugs = [PlantedBug::SkipDirLock, PlantedBug::IgnoreWitness];
    assert_caught(Family::Damage(std::path::Path::new("/memory")), &bugs, open);
}

/// The campaign must find each planted bug within a bounded run.
#[test]
fn the_crash_oracle_finds_every_planted_bug() {
    let bugs = [
        PlantedBug::SkipBackupSync,
        PlantedBug::SkipDirSync,
        PlantedBug::AckBeforeBackup,
    ];
    assert_caught(Family::Crash, &bugs, open);
}

/// Without the checksum, a bit flipped while reading the backup comes
/// back as data.
#[test]
fn read_faults_find_the_skipped_checksum() {
    assert_caught(Family::ReadFaults, &[PlantedBug::SkipChecksum], open);
}
