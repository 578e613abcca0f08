//! leasehold-memory: a sharded, concurrent, in-memory `KvEngine`, with an
//! optional lz4-compressed backup file (FORMAT.md) that is all that survives a
//! crash.
//!
//! Contract (beyond `KvEngine`'s):
//! 1. Keys live in `SHARDS` ordered maps chosen by a hash of the key. A batch
//!    write-locks the shards it touches in ascending order; a scan or a backup
//!    read-locks all shards in ascending order, so each sees whole batches and
//!    no two lockers deadlock.
//! 2. `max_entries` is enforced per batch, atomically: a batch that would exceed
//!    it fails with `CapacityExceeded` and changes nothing.
//! 3. Without a backup the engine is volatile: `Sync` and `Group` writes and
//!    `flush` answer `Unsupported` rather than pretend.
//! 4. With a backup, `Sync` acknowledges after a backup covering the write is
//!    durable, and no reader sees the write before (its shards stay
//!    write-locked until then; a failed backup takes it back). Concurrent Sync
//!    writers take turns, one whole-map backup each: Sync costs O(map) per
//!    write by design. `Group` and `Buffered` are covered by the background
//!    backup every `sync_interval` or by `flush`.
//! 6. A batch that would grow the backup past one frame (4 GiB) is refused
//!    with `CapacityExceeded`, like one that would pass `max_entries`.
//! 5. A failed backup poisons the engine: writes fail until it is reopened.

pub mod backup;
pub mod config;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use leasehold_storage::lifecycle::Lifecycle;
#[cfg(any(test, feature = "planted-bugs"))]
use leasehold_storage::planted::PlantedSwitch;
use leasehold_storage::workers::Workers;
use parking_lot::{Condvar, Mutex, RwLock, RwLockReadGuard};

use leasehold_storage::codec::fnv1a;
use leasehold_storage::kv::ScanVisitor;
use leasehold_storage::vfs::{lock_directory, read_all, replace_file_atomically, Vfs};
use leasehold_storage::{
    BatchOp, Durability, EngineStats, Health, KeyRange, KvEngine, KvError, KvResult, VerifyReport,
    WriteBatch,
};

pub use backup::{BackupContent, BACKUP_MAGIC};
pub use config::{BackupCompression, MemoryConfig};

/// Number of shards; a power of two.
pub const SHARDS: usize = 16;

type ShardMap = BTreeMap<Vec<u8>, Vec<u8>>;
type Shard = RwLock<ShardMap>;

fn shard_of(key: &[u8]) -> usize {
    (fnv1a(key) as usize) & (SHARDS - 1)
}

/// Bugs planted on purpose to prove the crash campaign finds them; only
/// `MemoryEngine::open_planted` (in this crate's tests or with the
/// `planted-bugs` feature) can switch one on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlantedBug {
    /// The new backup file is renamed into place without being fsynced.
    SkipBackupSync,
    /// The rename of the new backup is never made durable (no directory sync).
    SkipDirSync,
    /// A Sync write is acknowledged without waiting for a backup to cover it.
    AckBeforeBackup,
    /// The backup is decoded without checking its checksum.
    SkipChecksum,
    /// Open takes no directory lock: a second open of a live store goes ahead.
    SkipDirLock,
    /// A missing backup opens as an empty store, whatever its witness says.
    IgnoreWitness,
}

impl PlantedBug {
    /// True when `planted` is `bug` (always false in a normal build).
    pub(crate) fn is(planted: Option<PlantedBug>, bug: PlantedBug) -> bool {
        cfg!(any(test, feature = "planted-bugs")) && planted == Some(bug)
    }

    pub const ALL: [PlantedBug; 6] = [
        PlantedBug::SkipBackupSync,
        PlantedBug::SkipDirSync,
        PlantedBug::AckBeforeBackup,
        PlantedBug::SkipChecksum,
        PlantedBug::SkipDirLock,
        PlantedBug::IgnoreWitness,
    ];
}

mod apply;
mod durability;
mod target;
pub use target::describe_file;
use target::{witness_path, BackupState, BackupTarget};

#[derive(Debug, Default)]
struct Counters {
    user_bytes_written: AtomicU64,
    backup_bytes_written: AtomicU64,
    backups: AtomicU64,
    live_bytes: AtomicU64,
}

#[derive(Debug)]
struct Shared {
    shards: Box<[Shard]>,
    entries: AtomicU64,
    max_entries: u64,
    /// Batches applied so far; bumped under the batch's shard locks.
    sequence: AtomicU64,
    backup: Option<BackupTarget>,
    /// Open, failed (a backup that failed: writes refused until reopened),
    /// closing (writes refused, so none slips in after the final backup),
    /// closed; holds the backup directory's lock until `close`.
    lifecycle: Lifecycle,
    counters: Counters,
    /// Tells the background thread to stop.
    stop: Mutex<bool>,
    wake: Condvar,
}

/// The in-memory engine.
#[derive(Debug)]
pub struct MemoryEngine {
    shared: Arc<Shared>,
    background: Workers,
}

impl MemoryEngine {
    /// A volatile engine: nothing survives the process.
    pub fn volatile(max_entries: u64) -> MemoryEngine {
        MemoryEngine::build(max_entries, None, BTreeMap::new(), 0)
    }

    /// Opens per `config`: restores the backup if there is one, and starts the
    /// background backup thread.
    pub fn open(config: &MemoryConfig, vfs: Arc<dyn Vfs>) -> KvResult<MemoryEngine> {
        MemoryEngine::open_with(config, vfs, None)
    }

    /// `open` with `bug` planted (crash-campaign tests only).
    #[cfg(any(test, feature = "planted-bugs"))]
    pub fn open_planted(
        config: &MemoryConfig,
        vfs: Arc<dyn Vfs>,
        bug: PlantedBug,
    ) -> KvResult<MemoryEngine> {
        MemoryEngine::open_with(config, vfs, Some(bug))
    }

    fn open_with(
        config: &MemoryConfig,
        vfs: Arc<dyn Vfs>,
        planted: Option<PlantedBug>,
    ) -> KvResult<MemoryEngine> {
        if config.max_entries == 0 {
            return Err(KvError::InvalidArgument(
                "max_entries must be positive".into(),
            ));
        }
        let Some(path) = config.backup_path.clone() else {
            return Ok(MemoryEngine::volatile(config.max_entries));
        };
        let dir = path.parent().unwrap_or(Path::new("")).to_path_buf();
        vfs.create_dir_all(&dir)
            .map_err(|err| KvError::io(format!("create {}", dir.display()), err))?;
        let lock = if PlantedBug::is(planted, PlantedBug::SkipDirLock) {
            None
        } else {
            Some(lock_directory(vfs.as_ref(), &dir)?)
        };
        let exists = |path: &Path| {
            vfs.exists(path)
                .map_err(|err| KvError::io(format!("stat {}", path.display()), err))
        };
        let witness = witness_path(&path);
        let has_backup = exists(&path)?;
        let has_witness = exists(&witness)?;
        if !has_backup && has_witness && !PlantedBug::is(planted, PlantedBug::IgnoreWitness) {
            return Err(KvError::corruption(
                &path,
                0,
                format!(
                    "the backup is missing, but {} says one was written: refusing to open empty",
                    witness.display()
                ),
            ));
        }
        let content = if has_backup {
            let file = vfs
                .open_read(&path)
                .map_err(|err| KvError::io(format!("open {}", path.display()), err))?;
            let bytes = read_all(file.as_ref())
                .map_err(|err| KvError::io(format!("read {}", path.display()), err))?;
            let check = !PlantedBug::is(planted, PlantedBug::SkipChecksum);
            backup::decode_with(&path, &bytes, check)?
        } else {
            BackupContent::default()
        };
        if content.entries.len() as u64 > config.max_entries {
            return Err(KvError::CapacityExceeded {
                what: format!(
                    "{} entries in {} exceed max_entries",
                    content.entries.len(),
                    path.display()
                ),
                limit: config.max_entries,
            });
        }
        let target = BackupTarget {
            #[cfg(any(test, feature = "planted-bugs"))]
            planted: PlantedSwitch::new(planted),
            vfs,
            path,
            compression: config.compression,
            interval: config.sync_interval,
            state: Mutex::new(BackupState {
                durable_sequence: content.sequence,
            }),
            body_max: AtomicU64::new(apply::BACKUP_BODY_MAX),
        };
        if !has_witness {
            target.make_witness(has_backup)?;
        }
        let engine = MemoryEngine::build(
            config.max_entries,
            Some(target),
            content.entries,
            content.sequence,
        );
        if let Some(lock) = lock {
            engine.shared.lifecycle.hold(lock);
        }
        engine.start_background();
        Ok(engine)
    }

    fn build(
        max_entries: u64,
        backup: Option<BackupTarget>,
        entries: BTreeMap<Vec<u8>, Vec<u8>>,
        sequence: u64,
    ) -> MemoryEngine {
        let mut shards: Vec<BTreeMap<Vec<u8>, Vec<u8>>> =
            (0..SHARDS).map(|_| BTreeMap::new()).collect();
        let count = entries.len() as u64;
        let mut live_bytes = 0;
        for (key, value) in entries {
            live_bytes += (key.len() + value.len()) as u64;
            shards[shard_of(&key)].insert(key, value);
        }
        let counters = Counters {
            live_bytes: AtomicU64::new(live_bytes),
            ..Counters::default()
        };
        MemoryEngine {
            shared: Arc::new(Shared {
                shards: shards.into_iter().map(RwLock::new).collect(),
                entries: AtomicU64::new(count),
                max_entries,
                sequence: AtomicU64::new(sequence),
                backup,
                lifecycle: Lifecycle::default(),
                counters,
                stop: Mutex::new(false),
                wake: Condvar::new(),
            }),
            background: Workers::new(),
        }
    }

    fn start_background(&self) {
        let started = self.background.start(
            &self.shared,
            &[("leasehold-memory-backup", Shared::background_loop)],
        );
        if let Err(err) = started {
            // Without the thread, Group/Buffered writes wait for a flush; say so.
            self.shared.lifecycle.fail(err);
        }
    }

    fn stop_background(&self) {
        self.background
            .stop(&self.shared.stop, &[&self.shared.wake]);
    }

    /// The backup file, if configured.
    pub fn backup_path(&self) -> Option<&Path> {
        self.shared
            .backup
            .as_ref()
            .map(|target| target.path.as_path())
    }
}

impl Drop for MemoryEngine {
    fn drop(&mut self) {
        self.stop_background();
    }
}

impl Shared {
    fn check_writable(&self) -> KvResult<()> {
        self.lifecycle.check_writable()
    }

    fn read_all_shards(&self) -> Vec<RwLockReadGuard<'_, ShardMap>> {
        self.shards.iter().map(|shard| shard.read()).collect()
    }
}

impl KvEngine for MemoryEngine {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn get(&self, key: &[u8]) -> KvResult<Option<Vec<u8>>> {
        self.shared.lifecycle.check_open()?;
        Ok(self.shared.shards[shard_of(key)].read().get(key).cloned())
    }

    fn write(&self, batch: WriteBatch, durability: Durability) -> KvResult<()> {
        let shared = &self.shared;
        shared.check_writable()?;
        batch.check_size()?;
        if shared.backup.is_none() && durability != Durability::Buffered {
            return Err(KvError::Unsupported(format!(
                "{} durability needs a backup (enable_disk_backup); this memory engine is volatile",
                durability.name()
            )));
        }
        if batch.is_empty() {
            return Ok(());
        }
        let ack_early = shared
            .backup
            .as_ref()
            .is_some_and(|target| target.planted(PlantedBug::AckBeforeBackup));
        if durability == Durability::Sync && !ack_early {
            shared.write_durably(&batch)?;
        } else {
            shared.apply(&batch)?;
        }
        shared
            .counters
            .user_bytes_written
            .fetch_add(batch.logical_bytes(), Ordering::Relaxed);
        Ok(())
    }

    fn scan(&self, range: &KeyRange, visit: &mut ScanVisitor<'_>) -> KvResult<()> {
        self.shared.lifecycle.check_open()?;
        let guards = self.shared.read_all_shards();
        // Merge the shards' ranges: SHARDS cursors, smallest key first.
        let mut cursors: Vec<_> = guards
            .iter()
            .map(|map| map.range::<[u8], _>(range.as_bounds()).peekable())
            .collect();
        loop {
            let mut best: Option<(usize, &[u8])> = None;
            for (index, cursor) in cursors.iter_mut().enumerate() {
                if let Some(&(key, _)) = cursor.peek() {
                    if best.is_none_or(|(_, best_key)| key.as_slice() < best_key) {
                        best = Some((index, key.as_slice()));
                    }
                }
            }
            let Some((index, _)) = best else { break };
            let Some((key, value)) = cursors[index].next() else {
                break;
            };
            if visit(key, value).is_break() {
                break;
            }
        }
        Ok(())
    }

    fn flush(&self) -> KvResult<()> {
        self.shared.check_writable()?;
        self.shared
            .backup_through(self.shared.sequence.load(Ordering::Acquire))
    }

    fn stats(&self) -> EngineStats {
        let shared = &self.shared;
        let (vfs, disk_bytes) = match &shared.backup {
            Some(target) => (
                target.vfs.stats(),
                target.vfs.file_size(&target.path).unwrap_or(0),
            ),
            None => (Default::default(), 0),
        };
        EngineStats {
            user_bytes_written: shared.counters.user_bytes_written.load(Ordering::Relaxed),
            wal_bytes_written: shared.counters.backup_bytes_written.load(Ordering::Relaxed),
            device_bytes_written: vfs.bytes_written,
            device_bytes_read: vfs.bytes_read,
            fsyncs: vfs.fsyncs,
            dir_syncs: vfs.dir_syncs,
            disk_bytes,
            live_entries: shared.entries.load(Ordering::Relaxed),
            live_bytes: shared.counters.live_bytes.load(Ordering::Relaxed),
            ..EngineStats::default()
        }
    }

    fn health(&self) -> Health {
        let shared = &self.shared;
        if let Some(failed) = shared.lifecycle.health() {
            return failed;
        }
        let entries = shared.entries.load(Ordering::Relaxed);
        if entries * 10 >= shared.max_entries * 9 {
            return Health::Degraded(format!(
                "{entries} of max_entries {} used",
                shared.max_entries
            ));
        }
        Health::Healthy
    }

    fn verify(&self) -> KvResult<VerifyReport> {
        let shared = &self.shared;
        let mut report = VerifyReport::default();
        let mut count = 0u64;
        let mut bytes = 0u64;
        {
            let guards = shared.read_all_shards();
            for (index, map) in guards.iter().enumerate() {
                for (key, value) in map.iter() {
                    count += 1;
                    bytes += (key.len() + value.len()) as u64;
                    if shard_of(key) != index {
                        report.problems.push(format!(
                            "key {key:?} is in shard {index}, belongs in {}",
                            shard_of(key)
                        ));
                    }
                }
            }
            let counted = shared.entries.load(Ordering::Acquire);
            if counted != count {
                report
                    .problems
                    .push(format!("entry counter says {counted}, shards hold {count}"));
            }
            let live = shared.counters.live_bytes.load(Ordering::Acquire);
            if live != bytes {
                report.problems.push(format!(
                    "live-bytes counter says {live}, shards hold {bytes}"
                ));
            }
        }
        let mut checked = format!("{count} entries in {SHARDS} shards");
        if let Some(target) = &shared.backup {
            if target
                .vfs
                .exists(&target.path)
                .map_err(|err| KvError::io("stat backup", err))?
            {
                let file = target
                    .vfs
                    .open_read(&target.path)
                    .map_err(|err| KvError::io("open backup", err))?;
                let file_bytes =
                    read_all(file.as_ref()).map_err(|err| KvError::io("read backup", err))?;
                match backup::decode(&target.path, &file_bytes) {
                    Ok(content) => {
                        checked.push_str(&format!(", backup of {} entries", content.entries.len()))
                    }
                    Err(err) => report.problems.push(err.to_string()),
                }
            }
        }
        report.checked = checked;
        Ok(report)
    }

    fn persists(&self) -> bool {
        self.shared.backup.is_some()
    }

    fn close(&self) -> KvResult<()> {
        let shared = &self.shared;
        // The last backup covers every write.
        shared.lifecycle.close_with(
            || self.stop_background(),
            || match &shared.backup {
                Some(_) => shared.backup_through(shared.sequence.load(Ordering::Acquire)),
                None => Ok(()),
            },
        )
    }
}

#[cfg(test)]
mod planted_bugs;
