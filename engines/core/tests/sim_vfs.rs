//! The SimVfs against its own rules, through its public interface.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use leasehold_core::vfs::{
    read_all, read_exact_at, write_all_at, CrashPolicy, Fault, FaultConfig, MutationKind, SimVfs,
    Vfs, VfsFile, SECTOR_LEN,
};

fn path(name: &str) -> PathBuf {
    PathBuf::from("/db").join(name)
}

fn disk() -> SimVfs {
    let vfs = SimVfs::new(7);
    vfs.create_dir_all(Path::new("/db")).unwrap();
    vfs
}

fn read(vfs: &SimVfs, name: &str) -> Option<Vec<u8>> {
    let file = vfs.open(&path(name)).ok()?;
    Some(read_all(file.as_ref()).unwrap())
}

/// A synced file under a synced name holding `content`.
fn durable_file(vfs: &SimVfs, name: &str, content: &[u8]) -> Arc<dyn VfsFile> {
    let file = vfs.create(&path(name)).unwrap();
    write_all_at(file.as_ref(), content, 0).unwrap();
    file.sync().unwrap();
    vfs.sync_dir(Path::new("/db")).unwrap();
    file
}

#[test]
fn power_loss_keeps_synced_data_and_drops_the_rest() {
    let vfs = disk();
    let file = durable_file(&vfs, "log", b"synced");
    write_all_at(file.as_ref(), b"+unsynced", 6).unwrap();
    assert_eq!(read(&vfs, "log").unwrap(), b"synced+unsynced");
    let image = vfs.crash_image(CrashPolicy::PowerLoss, 1);
    assert_eq!(read(&image, "log").unwrap(), b"synced");
    let image = vfs.crash_image(CrashPolicy::ProcessCrash, 1);
    assert_eq!(read(&image, "log").unwrap(), b"synced+unsynced");
}

#[test]
fn a_created_file_needs_a_directory_sync_to_survive_power_loss() {
    let vfs = disk();
    let file = vfs.create(&path("new")).unwrap();
    write_all_at(file.as_ref(), b"data", 0).unwrap();
    file.sync().unwrap();
    assert_eq!(
        read(&vfs.crash_image(CrashPolicy::PowerLoss, 1), "new"),
        None
    );
    vfs.sync_dir(Path::new("/db")).unwrap();
    assert_eq!(
        read(&vfs.crash_image(CrashPolicy::PowerLoss, 1), "new").unwrap(),
        b"data"
    );
}

#[test]
fn rename_and_remove_are_reverted_until_the_directory_is_synced() {
    let vfs = disk();
    durable_file(&vfs, "old", b"old");
    durable_file(&vfs, "doomed", b"x");
    vfs.rename(&path("old"), &path("new")).unwrap();
    vfs.remove(&path("doomed")).unwrap();
    assert_eq!(vfs.list(Path::new("/db")).unwrap(), ["new"]);
    let image = vfs.crash_image(CrashPolicy::PowerLoss, 1);
    assert_eq!(image.list(Path::new("/db")).unwrap(), ["doomed", "old"]);
    vfs.sync_dir(Path::new("/db")).unwrap();
    let image = vfs.crash_image(CrashPolicy::PowerLoss, 1);
    assert_eq!(image.list(Path::new("/db")).unwrap(), ["new"]);
    assert_eq!(read(&image, "new").unwrap(), b"old");
}

#[test]
fn rename_over_an_existing_file_is_atomic_in_every_image() {
    let vfs = disk();
    durable_file(&vfs, "current", b"A");
    let temp = vfs.create(&path("current.tmp")).unwrap();
    write_all_at(temp.as_ref(), b"B", 0).unwrap();
    temp.sync().unwrap();
    vfs.rename(&path("current.tmp"), &path("current")).unwrap();
    for seed in 0..50 {
        for policy in CrashPolicy::ALL {
            let image = vfs.crash_image(policy, seed);
            let content = read(&image, "current").unwrap();
            assert!(content == b"A" || content == b"B", "{policy:?} {content:?}");
        }
    }
}

#[test]
fn a_failed_fsync_drops_the_pending_data_for_good() {
    let vfs = disk();
    let file = durable_file(&vfs, "log", b"base");
    write_all_at(file.as_ref(), b"-lost", 4).unwrap();
    vfs.arm(Fault::SyncEio);
    assert!(file.sync().is_err());
    // The page cache still shows it, and a retried fsync "succeeds"...
    assert_eq!(read(&vfs, "log").unwrap(), b"base-lost");
    file.sync().unwrap();
    // ...but the data never reaches the disk.
    assert_eq!(
        read(&vfs.crash_image(CrashPolicy::PowerLoss, 1), "log").unwrap(),
        b"base"
    );
}

#[test]
fn unsynced_size_changes_are_reverted() {
    let vfs = disk();
    let file = durable_file(&vfs, "f", b"0123456789");
    file.set_len(4).unwrap();
    assert_eq!(
        read(&vfs.crash_image(CrashPolicy::PowerLoss, 1), "f").unwrap(),
        b"0123456789"
    );
    file.sync().unwrap();
    assert_eq!(
        read(&vfs.crash_image(CrashPolicy::PowerLoss, 1), "f").unwrap(),
        b"0123"
    );
}

#[test]
fn prefix_images_hold_a_prefix_of_the_writes_and_subset_images_any_combination() {
    let vfs = disk();
    let file = durable_file(&vfs, "f", b"");
    for (index, byte) in b"abcd".iter().enumerate() {
        write_all_at(file.as_ref(), &[*byte], index as u64).unwrap();
    }
    let mut prefixes = std::collections::BTreeSet::new();
    let mut subsets = std::collections::BTreeSet::new();
    for seed in 0..200 {
        let prefix = read(&vfs.crash_image(CrashPolicy::Prefix, seed), "f").unwrap();
        assert!(b"abcd".starts_with(&prefix), "{prefix:?}");
        prefixes.insert(prefix);
        subsets.insert(read(&vfs.crash_image(CrashPolicy::Subset, seed), "f").unwrap());
    }
    assert_eq!(prefixes.len(), 5, "every prefix length appears");
    // Out-of-order survival: a later write without an earlier one (a hole of zeros).
    assert!(
        subsets
            .iter()
            .any(|content| content.len() == 4 && content[0] == 0),
        "{subsets:?}"
    );
}

#[test]
fn torn_writes_split_at_sector_boundaries() {
    let vfs = disk();
    let file = durable_file(&vfs, "f", &[b'o'; 2048]);
    write_all_at(file.as_ref(), &[b'n'; 2048], 0).unwrap();
    let mut mixed = false;
    for seed in 0..100 {
        for garbage in [false, true] {
            let content = read(
                &vfs.crash_image(CrashPolicy::TornSectors { garbage }, seed),
                "f",
            )
            .unwrap();
            assert_eq!(content.len(), 2048);
            let mut kinds = std::collections::BTreeSet::new();
            for sector in content.chunks(SECTOR_LEN as usize) {
                let uniform = sector.iter().all(|&byte| byte == sector[0]);
                let kind = if uniform && sector[0] == b'n' {
                    'n'
                } else if uniform && sector[0] == b'o' {
                    'o'
                } else {
                    assert!(garbage, "without garbage a sector is old or new");
                    'g'
                };
                kinds.insert(kind);
            }
            mixed |= kinds.len() > 1;
        }
    }
    assert!(mixed, "some image holds a torn write");
}

#[test]
fn the_kth_mutation_and_everything_after_fail() {
    let vfs = disk();
    let file = durable_file(&vfs, "f", b"");
    let before = vfs.mutations();
    vfs.freeze_at(Some(before + 2));
    write_all_at(file.as_ref(), b"1", 0).unwrap();
    assert!(write_all_at(file.as_ref(), b"2", 1).is_err());
    assert!(vfs.is_frozen());
    assert_eq!(vfs.freeze_site(), Some((MutationKind::Write, path("f"))));
    assert!(file.sync().is_err());
    assert!(vfs.create(&path("g")).is_err());
    // Reads still work; the image is what the disk had.
    assert_eq!(read(&vfs, "f").unwrap(), b"1");
    assert_eq!(
        read(&vfs.crash_image(CrashPolicy::PowerLoss, 0), "f").unwrap(),
        b""
    );
}

#[test]
fn a_full_disk_refuses_the_write_and_keeps_what_was_there() {
    let vfs = disk();
    let file = durable_file(&vfs, "f", b"12345");
    vfs.set_faults(FaultConfig {
        capacity_bytes: Some(8),
        ..FaultConfig::default()
    });
    let err = write_all_at(file.as_ref(), b"6789", 5).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::StorageFull);
    assert_eq!(read(&vfs, "f").unwrap(), b"12345");
    write_all_at(file.as_ref(), b"678", 5).unwrap();
    vfs.arm(Fault::WriteNoSpace);
    assert_eq!(
        file.write_at(b"x", 0).unwrap_err().kind(),
        io::ErrorKind::StorageFull
    );
    // Both full-disk refusals are logged against the file, once each.
    assert_eq!(
        vfs.take_fired_faults(),
        [
            (Fault::WriteNoSpace, path("f")),
            (Fault::WriteNoSpace, path("f"))
        ]
    );
    vfs.arm(Fault::SyncDirEio);
    assert!(vfs.sync_dir(Path::new("/db")).is_err());
    assert_eq!(
        vfs.take_fired_faults(),
        [(Fault::SyncDirEio, PathBuf::from("/db"))]
    );
    assert!(vfs.take_fired_faults().is_empty());
}

#[test]
fn read_faults_are_errors_flipped_bits_or_short_reads() {
    let vfs = disk();
    let file = durable_file(&vfs, "f", &[0u8; 64]);
    vfs.arm(Fault::ReadEio);
    assert!(file.read_at(&mut [0u8; 8], 0).is_err());
    vfs.arm(Fault::ReadBitFlip);
    let mut buf = [0u8; 64];
    read_exact_at(file.as_ref(), &mut buf, 0).unwrap();
    assert_eq!(buf.iter().map(|byte| byte.count_ones()).sum::<u32>(), 1);
    // The flip was in the returned copy only.
    assert_eq!(read(&vfs, "f").unwrap(), vec![0u8; 64]);
    vfs.set_faults(FaultConfig {
        short_read: 1.0,
        short_write: 1.0,
        ..FaultConfig::default()
    });
    assert!(file.read_at(&mut [0u8; 64], 0).unwrap() < 64);
    assert!(file.write_at(&[1u8; 64], 0).unwrap() < 64);
    write_all_at(file.as_ref(), &[2u8; 64], 0).unwrap();
    let mut buf = [0u8; 64];
    read_exact_at(file.as_ref(), &mut buf, 0).unwrap();
    assert_eq!(buf, [2u8; 64]);
}

#[test]
fn write_and_directory_sync_faults_fail_without_effect_where_they_should() {
    let vfs = disk();
    let file = durable_file(&vfs, "f", b"a");
    vfs.arm(Fault::WriteEio);
    assert!(file.write_at(b"b", 1).is_err());
    assert_eq!(read(&vfs, "f").unwrap(), b"a");
    vfs.create(&path("g")).unwrap();
    vfs.arm(Fault::SyncDirEio);
    assert!(vfs.sync_dir(Path::new("/db")).is_err());
    vfs.sync_dir(Path::new("/db")).unwrap();
    assert_eq!(
        vfs.crash_image(CrashPolicy::PowerLoss, 0)
            .list(Path::new("/db"))
            .unwrap(),
        ["f"]
    );
}

#[test]
fn read_only_handles_refuse_writes_and_images_are_deterministic() {
    let vfs = disk();
    let file = durable_file(&vfs, "f", b"abc");
    write_all_at(file.as_ref(), &[9u8; 3000], 3).unwrap();
    let reader = vfs.open_read(&path("f")).unwrap();
    assert!(reader.write_at(b"x", 0).is_err());
    for policy in CrashPolicy::ALL {
        assert_eq!(
            read(&vfs.crash_image(policy, 99), "f"),
            read(&vfs.crash_image(policy, 99), "f"),
            "{policy:?}"
        );
    }
}

#[test]
fn corrupt_byte_rots_the_stored_data() {
    let vfs = disk();
    durable_file(&vfs, "f", b"abc");
    vfs.corrupt_byte(&path("f"), 1, 0x01).unwrap();
    assert_eq!(
        read(&vfs.crash_image(CrashPolicy::PowerLoss, 0), "f").unwrap(),
        b"acc"
    );
    assert_eq!(vfs.durable_content(&path("f")).unwrap(), b"acc");
}

#[test]
fn a_directory_lock_is_held_per_machine_and_a_crash_image_holds_none() {
    let vfs = SimVfs::new(1);
    vfs.create_dir_all(Path::new("/d")).unwrap();
    let held = vfs.lock_dir(Path::new("/d")).unwrap();
    assert!(vfs
        .list(Path::new("/d"))
        .unwrap()
        .contains(&"LOCK".to_owned()));
    assert!(matches!(
        vfs.clone().lock_dir(Path::new("/d")),
        Err(leasehold_core::vfs::LockError::Held { .. })
    ));
    vfs.crash_image(CrashPolicy::ProcessCrash, 0)
        .lock_dir(Path::new("/d"))
        .unwrap();
    drop(held);
    vfs.lock_dir(Path::new("/d")).unwrap();
}
