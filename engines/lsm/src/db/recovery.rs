//! Recovery: opening the tree from what is on disk. FORMAT.md, "Recovery",
//! gives the argument; this file follows it.
//!
//! The rule: recovery returns every acknowledged write or a typed error —
//! never a smaller tree. What could be a crash's harmless leftover (a torn
//! last manifest edit, a torn log tail, a table no edit names) is accepted
//! only with evidence that nothing acknowledged depended on it:
//! - a manifest's first edit is never torn (it was fsynced before CURRENT
//!   named the file), so a bad one is corruption (`manifest::read`);
//! - the log the last intact edit names as the oldest still needed must
//!   exist: logs are deleted only after an edit that made them obsolete was
//!   durable, so its absence proves that a later edit — the one read as torn —
//!   had been durable;
//! - the records of the logs replayed carry consecutive sequence numbers, so a
//!   log missing from the middle shows as a gap;
//! - a tree closed cleanly lists, in its last edit, each log still holding
//!   records with its exact length: each must be there, whole, and clean;
//! - without CURRENT, the directory must hold nothing that a tree could have
//!   acknowledged (no table, no log with bytes, no manifest naming a table);
//!   otherwise CURRENT was lost, and the tree is refused rather than started
//!   afresh over the data.
//!
//! Files removed at open are only the tree's own and only obsolete ones.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Condvar, Mutex, RwLock};

use crate::config::LsmConfig;
use leasehold_storage::commit::CommitQueue;
use leasehold_storage::lifecycle::Lifecycle;
use leasehold_storage::vfs::{lock_directory, read_confirmed, replace_file_atomically, Vfs};
use leasehold_storage::wal::{self, WalEnd, WalWriter};
use leasehold_storage::{KvError, KvResult};

use super::{
    decode_wal_record, file_kind, insert_op, io_error, log_name, open_blob, open_table,
    write_level0, CompactionFilter, Counters, FileKind, Inner, PlantedBug, TreeState, VersionSet,
    WalState, GROUP_BYTES_MAX,
};
use crate::blob::BlobMeta;
use crate::manifest::{self, BlobGarbage, FileMeta, ManifestWriter, VersionEdit, LEVELS};
use crate::memtable::Memtable;
use crate::sstable::builder::TableOptions;
use crate::sstable::cache::BlockCache;
use crate::version::Version;

/// What the manifest named by CURRENT says.
struct Recorded {
    version: Version,
    log_number: u64,
    next_file_number: u64,
    last_sequence: u64,
    /// The logs and lengths a clean close left (its last edit).
    closed: Option<Vec<(u64, u64)>>,
}

/// Opens the tree: takes the directory lock, reads CURRENT and the manifest,
/// opens the tables, replays the WALs the manifest still needs, flushes what
/// they held to level 0, starts a new WAL and a new manifest, and removes
/// obsolete files. Every step before the new CURRENT is durable leaves the old
/// state intact, so a crash during recovery is recovered from the same way.
pub(super) fn recover(
    config: &LsmConfig,
    vfs: Arc<dyn Vfs>,
    filter: Option<Arc<dyn CompactionFilter>>,
    planted: Option<PlantedBug>,
) -> KvResult<Inner> {
    let dir = config.data_dir.clone();
    vfs.create_dir_all(&dir)
        .map_err(io_error(format!("create {}", dir.display())))?;
    let lock = if PlantedBug::is(planted, PlantedBug::SkipDirLock) {
        None
    } else {
        Some(lock_directory(vfs.as_ref(), &dir)?)
    };
    let trust_torn = PlantedBug::is(planted, PlantedBug::TrustTornManifest);
    let cache = Arc::new(BlockCache::new(config.block_cache_size as usize));
    let table_options = TableOptions {
        block_size: config.block_size as usize,
        compress: config.enable_compression,
        bloom_fp_rate: config.bloom_filter_fp_rate,
    };
    let names = vfs
        .list(&dir)
        .map_err(io_error(format!("list {}", dir.display())))?;
    let current_path = dir.join(manifest::CURRENT);
    let recorded = if names.iter().any(|name| name == manifest::CURRENT) {
        read_recorded(vfs.as_ref(), &dir, &cache, &names, trust_torn)?
    } else {
        refuse_lost_current(vfs.as_ref(), &dir, &names)?;
        Recorded {
            version: Version::default(),
            log_number: 0,
            next_file_number: 1,
            last_sequence: 0,
            closed: None,
        }
    };
    let mut version = recorded.version;
    let mut next_file_number = recorded.next_file_number;
    let mut last_sequence = recorded.last_sequence;
    // Numbers already on disk are never reused, whatever the manifest says.
    for name in &names {
        if let FileKind::Log(n) | FileKind::Table(n) | FileKind::Blob(n) | FileKind::Manifest(n) =
            file_kind(name)
        {
            next_file_number = next_file_number.max(n + 1);
        }
    }

    // Replay the WALs the manifest still needs, oldest first.
    let mut logs: Vec<u64> = names
        .iter()
        .filter_map(|name| match file_kind(name) {
            FileKind::Log(n) if n >= recorded.log_number => Some(n),
            _ => None,
        })
        .collect();
    logs.sort_unstable();
    let closed = recorded.closed.as_ref().filter(|_| !trust_torn);
    if let Some(closed) = closed {
        check_closed_logs(vfs.as_ref(), &dir, closed)?;
    }
    let replayed = Memtable::new(0);
    let paths: Vec<PathBuf> = logs
        .iter()
        .map(|&number| dir.join(log_name(number)))
        .collect();
    let mut expected_sequence: Option<(u64, PathBuf)> = None;
    for log in wal::read_logs(vfs.as_ref(), &paths)? {
        if closed.is_some() && log.end != WalEnd::Clean {
            return Err(KvError::corruption(
                &log.path,
                log.valid_end,
                "the tree was closed cleanly, yet this log ends in a damaged record",
            ));
        }
        for (index, record) in log.records.iter().enumerate() {
            let (first_sequence, batch) = decode_wal_record(record).map_err(|reason| {
                KvError::corruption(&log.path, 0, format!("record {index}: {reason}"))
            })?;
            if let Some((expected, previous)) = &expected_sequence {
                if first_sequence != *expected {
                    return Err(KvError::corruption(
                        &log.path,
                        0,
                        format!(
                            "record {index} starts at sequence {first_sequence}, but the records \
                             before it (last in {}) end at {}: a log between them is missing",
                            previous.display(),
                            expected - 1
                        ),
                    ));
                }
            }
            let mut sequence = first_sequence;
            for op in &batch.ops {
                insert_op(&replayed, op, sequence);
                sequence += 1;
            }
            expected_sequence = Some((sequence, log.path.clone()));
            last_sequence = last_sequence.max(sequence - 1);
        }
    }

    let mut edit = VersionEdit::default();
    if !replayed.is_empty() {
        let numbers = std::cell::Cell::new(next_file_number);
        let allocate = || numbers.replace(numbers.get() + 1);
        let (table, blobs) = write_level0(
            vfs.as_ref(),
            &dir,
            config,
            &table_options,
            filter.as_deref(),
            &allocate,
            &replayed,
        )?;
        next_file_number = numbers.get();
        edit.added.extend(table.map(|meta| (0, meta)));
        edit.blobs_added = blobs;
    }
    let wal_number = next_file_number;
    let manifest_number = next_file_number + 1;
    next_file_number += 2;
    let wal_path = dir.join(log_name(wal_number));
    let wal_file = vfs
        .create(&wal_path)
        .map_err(io_error(format!("create {}", wal_path.display())))?;
    vfs.sync_dir(&dir)
        .map_err(io_error(format!("sync {}", dir.display())))?;
    version = version.apply(
        &edit,
        |meta| open_table(vfs.as_ref(), &dir, &cache, meta),
        |meta| open_blob(vfs.as_ref(), &dir, meta),
    )?;

    // A new manifest holding the whole version, then CURRENT pointing at it.
    let manifest_path = dir.join(manifest::manifest_name(manifest_number));
    let manifest_file = vfs
        .create(&manifest_path)
        .map_err(io_error(format!("create {}", manifest_path.display())))?;
    let mut manifest = ManifestWriter::new(manifest_file, manifest_path.clone());
    let snapshot = VersionEdit {
        log_number: Some(wal_number),
        next_file_number: Some(next_file_number),
        last_sequence: Some(last_sequence),
        added: version
            .files()
            .map(|(level, file)| (level, file.meta.clone()))
            .collect(),
        blobs_added: version
            .blobs
            .values()
            .map(|live| live.file.meta.clone())
            .collect(),
        blob_garbage: version
            .blobs
            .iter()
            .filter(|(_, live)| live.garbage_count > 0)
            .map(|(&number, live)| BlobGarbage {
                number,
                count: live.garbage_count,
                bytes: live.garbage_bytes,
            })
            .collect(),
        ..VersionEdit::default()
    };
    manifest
        .append(&snapshot)
        .map_err(io_error(format!("write {}", manifest_path.display())))?;
    vfs.sync_dir(&dir)
        .map_err(io_error(format!("sync {}", dir.display())))?;
    replace_file_atomically(
        vfs.as_ref(),
        &current_path,
        &manifest::current_contents(manifest_number),
    )
    .map_err(io_error(format!("replace {}", current_path.display())))?;
    remove_obsolete(vfs.as_ref(), &dir, &version, wal_number, manifest_number)?;

    let counters = Counters::default();
    counters
        .manifest_bytes
        .store(manifest.len(), Ordering::Relaxed);
    let lifecycle = Lifecycle::default();
    if let Some(lock) = lock {
        lifecycle.hold(lock);
    }
    Ok(Inner {
        vfs,
        dir,
        config: config.clone(),
        table_options,
        cache,
        filter,
        state: RwLock::new(TreeState {
            active: Arc::new(Memtable::new(wal_number)),
            immutables: Vec::new(),
            version: Arc::new(version),
        }),
        versions: Mutex::new(VersionSet {
            manifest,
            log_number: wal_number,
            pointers: vec![Vec::new(); LEVELS],
        }),
        flusher: Mutex::new(()),
        compactor: Mutex::new(()),
        file_numbers: AtomicU64::new(next_file_number),
        wal: Mutex::new(WalState {
            writer: WalWriter::new(wal_file, wal_path),
            number: wal_number,
            last_sequence,
            last_sync: Instant::now(),
        }),
        commits: CommitQueue::new(GROUP_BYTES_MAX),
        visible_sequence: AtomicU64::new(last_sequence),
        stop: Mutex::new(false),
        work_cv: Condvar::new(),
        progress_cv: Condvar::new(),
        lifecycle,
        counters,
        #[cfg(any(test, feature = "planted-bugs"))]
        planted: leasehold_storage::planted::PlantedSwitch::new(planted),
    })
}

/// Reads CURRENT and the manifest it names, checks the manifest against the
/// logs on disk, and opens the tables it names.
fn read_recorded(
    vfs: &dyn Vfs,
    dir: &Path,
    cache: &Arc<BlockCache>,
    names: &[String],
    trust_torn: bool,
) -> KvResult<Recorded> {
    let current_path = dir.join(manifest::CURRENT);
    let current = read_confirmed(vfs, &current_path, |bytes| {
        manifest::parse_current(&current_path, bytes).is_err()
    })?;
    let number = manifest::parse_current(&current_path, &current)?;
    let manifest_path = dir.join(manifest::manifest_name(number));
    if !names.contains(&manifest::manifest_name(number)) {
        return Err(KvError::corruption(
            &current_path,
            0,
            format!(
                "CURRENT names {}, which is missing",
                manifest_path.display()
            ),
        ));
    }
    let bytes = read_confirmed(vfs, &manifest_path, |bytes| {
        !matches!(manifest::read(&manifest_path, bytes), Ok((_, false)))
    })?;
    let (edits, torn) = manifest::read(&manifest_path, &bytes)?;
    if edits.is_empty() {
        // Its first edit was durable before CURRENT named it.
        return Err(KvError::corruption(
            &manifest_path,
            0,
            "the manifest CURRENT names holds no edit",
        ));
    }
    let mut recorded = Recorded {
        version: Version::default(),
        log_number: 0,
        next_file_number: 1,
        last_sequence: 0,
        closed: None,
    };
    // Replay the edits on file records first; open only the files that remain.
    let mut files: Vec<BTreeMap<u64, FileMeta>> = vec![Default::default(); LEVELS];
    let mut blobs: BTreeMap<u64, (BlobMeta, BlobGarbage)> = BTreeMap::new();
    for edit in &edits {
        replay_blob_records(&mut blobs, edit)
            .map_err(|reason| KvError::corruption(&manifest_path, 0, reason))?;
        for (level, number) in &edit.deleted {
            if files[*level].remove(number).is_none() {
                return Err(KvError::corruption(
                    &manifest_path,
                    0,
                    format!("edit deletes table {number} absent from level {level}"),
                ));
            }
        }
        for (level, meta) in &edit.added {
            files[*level].insert(meta.number, meta.clone());
        }
        recorded.log_number = edit.log_number.unwrap_or(recorded.log_number);
        recorded.next_file_number = edit.next_file_number.unwrap_or(recorded.next_file_number);
        recorded.last_sequence = edit.last_sequence.unwrap_or(recorded.last_sequence);
        recorded.closed = edit.closed.clone();
    }
    let oldest_log = log_name(recorded.log_number);
    if recorded.log_number > 0 && !names.contains(&oldest_log) && !trust_torn {
        let why = if torn {
            "its last edit reads as torn, but the log deletion that followed it shows the edit \
             had been durable"
        } else {
            "a log it needs was removed"
        };
        return Err(KvError::corruption(
            &manifest_path,
            bytes.len() as u64,
            format!("the manifest needs {oldest_log}, which is missing: {why}"),
        ));
    }
    let all = VersionEdit {
        added: files
            .into_iter()
            .enumerate()
            .flat_map(|(level, files)| files.into_values().map(move |meta| (level, meta)))
            .collect(),
        blob_garbage: blobs
            .values()
            .map(|(_, garbage)| *garbage)
            .filter(|garbage| garbage.count > 0)
            .collect(),
        blobs_added: blobs.into_values().map(|(meta, _)| meta).collect(),
        ..VersionEdit::default()
    };
    recorded.version = Version::default()
        .apply(
            &all,
            |meta| open_table(vfs, dir, cache, meta),
            |meta| open_blob(vfs, dir, meta),
        )
        .map_err(|err| match err {
            KvError::Corruption { .. } => err,
            other => KvError::corruption(&manifest_path, 0, other.to_string()),
        })?;
    Ok(recorded)
}

/// Applies one edit's blob-file records: files added, garbage counted, files
/// deleted (only once all garbage).
fn replay_blob_records(
    blobs: &mut BTreeMap<u64, (BlobMeta, BlobGarbage)>,
    edit: &VersionEdit,
) -> Result<(), String> {
    for meta in &edit.blobs_added {
        let garbage = BlobGarbage {
            number: meta.number,
            ..BlobGarbage::default()
        };
        if blobs.insert(meta.number, (meta.clone(), garbage)).is_some() {
            return Err(format!("edit adds blob file {} twice", meta.number));
        }
    }
    for added in &edit.blob_garbage {
        let Some((_, garbage)) = blobs.get_mut(&added.number) else {
            return Err(format!(
                "edit counts garbage in blob file {}, which no edit added",
                added.number
            ));
        };
        garbage.count += added.count;
        garbage.bytes += added.bytes;
    }
    for number in &edit.blobs_deleted {
        match blobs.remove(number) {
            Some((meta, garbage)) if garbage.count == meta.count => {}
            Some(_) => return Err(format!("edit deletes blob file {number} with live records")),
            None => {
                return Err(format!(
                    "edit deletes blob file {number}, which no edit added"
                ))
            }
        }
    }
    Ok(())
}

/// Each log a clean close listed must be on disk with exactly its length.
fn check_closed_logs(vfs: &dyn Vfs, dir: &Path, closed: &[(u64, u64)]) -> KvResult<()> {
    for &(number, length) in closed {
        let path = dir.join(log_name(number));
        let size = match vfs.file_size(&path) {
            Ok(size) => size,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(KvError::corruption(
                    &path,
                    0,
                    "the tree was closed with records in this log, which is missing",
                ))
            }
            Err(err) => return Err(KvError::io(format!("stat {}", path.display()), err)),
        };
        if size != length {
            return Err(KvError::corruption(
                &path,
                size.min(length),
                format!("the tree was closed with this log {length} bytes long; it is {size}"),
            ));
        }
    }
    Ok(())
}

/// Without CURRENT the tree is new — or CURRENT was lost. A first open that
/// crashed before CURRENT leaves only empty logs and manifests naming no
/// table; anything else could hold acknowledged writes, and is refused.
fn refuse_lost_current(vfs: &dyn Vfs, dir: &Path, names: &[String]) -> KvResult<()> {
    for name in names {
        let path = dir.join(name);
        let holds_data = match file_kind(name) {
            FileKind::Table(_) | FileKind::Blob(_) => true,
            FileKind::Log(_) => {
                vfs.file_size(&path)
                    .map_err(io_error(format!("stat {}", path.display())))?
                    > 0
            }
            FileKind::Manifest(_) => {
                let bytes = read_confirmed(vfs, &path, |_| false)?;
                match manifest::read(&path, &bytes) {
                    Ok((edits, _)) => edits
                        .iter()
                        .any(|edit| !edit.added.is_empty() || !edit.blobs_added.is_empty()),
                    Err(_) => true,
                }
            }
            FileKind::Current | FileKind::Temporary | FileKind::Other => false,
        };
        if holds_data {
            return Err(KvError::corruption(
                dir.join(manifest::CURRENT),
                0,
                format!(
                    "CURRENT is missing, but {name} holds data: refusing to start a new tree over it \
                     (restore CURRENT, or move the directory aside)"
                ),
            ));
        }
    }
    Ok(())
}

/// After the new CURRENT is durable: older logs and manifests, tables no
/// version names, and CURRENT's temporary. A table no version names is either
/// the input of a compaction whose edit was durable or the output of a flush
/// or compaction whose edit never was — the checks in `read_recorded` rule out
/// a durable edit read as torn.
fn remove_obsolete(
    vfs: &dyn Vfs,
    dir: &Path,
    version: &Version,
    wal_number: u64,
    manifest_number: u64,
) -> KvResult<()> {
    let live: Vec<u64> = version.files().map(|(_, file)| file.meta.number).collect();
    for name in vfs
        .list(dir)
        .map_err(io_error(format!("list {}", dir.display())))?
    {
        let obsolete = match file_kind(&name) {
            FileKind::Log(n) => n < wal_number,
            FileKind::Manifest(n) => n != manifest_number,
            FileKind::Table(n) => !live.contains(&n),
            FileKind::Blob(n) => !version.blobs.contains_key(&n),
            FileKind::Temporary => true,
            FileKind::Current | FileKind::Other => false,
        };
        if obsolete {
            let path = dir.join(&name);
            vfs.remove(&path)
                .map_err(io_error(format!("remove {}", path.display())))?;
        }
    }
    Ok(())
}
