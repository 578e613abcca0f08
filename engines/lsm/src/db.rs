//! The engine: write path (group commit through the WAL into the memtable),
//! read path (memtables, then tables level by level), flushes, compactions,
//! and recovery. FORMAT.md states the protocols; this file follows them.
//!
//! Lock order, to rule out deadlock: `wal` → `versions` → `state`. The write
//! leader holds `wal` for its whole group (and, inline, for the flushes and
//! compactions it triggers); the background worker takes `versions` then
//! `state`; the syncer tries `wal` alone for timed syncs, never waiting.
//!
//! Readers clone the `state` Arcs (memtables, version) and *then* read the
//! visible sequence: everything in those tables was published no later than
//! that sequence, so a read sees exactly the batches up to some point.

use std::ops::{Bound, ControlFlow};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Condvar, Mutex, RwLock};

use crate::config::LsmConfig;
use leasehold_storage::commit::{CommitQueue, Pending};
use leasehold_storage::config::Section;
use leasehold_storage::error::io_error;
use leasehold_storage::kv::bump;
use leasehold_storage::kv::ScanVisitor;
use leasehold_storage::lifecycle::Lifecycle;
use leasehold_storage::log_counters::LogCounters;
#[cfg(any(test, feature = "planted-bugs"))]
use leasehold_storage::planted::PlantedSwitch;
use leasehold_storage::vfs::{Vfs, VfsFile};
use leasehold_storage::workers::Workers;
use leasehold_storage::{
    BatchOp, Durability, EngineStats, Health, KeyRange, KvEngine, KvError, KvResult, VerifyReport,
    WriteBatch,
};

use crate::blob::{blob_name, BlobFile, BlobMeta, BlobWriter};
use crate::compaction::{self, Pick};
use crate::format::{self, Entry, InternalKey, ValueKind};
use crate::iterator::{MergeIter, Source, VisibleIter};
use crate::manifest::{self, FileMeta, ManifestWriter, VersionEdit, LEVELS};
use crate::memtable::Memtable;
use crate::sstable::builder::{TableBuilder, TableOptions};
use crate::sstable::cache::BlockCache;
use crate::sstable::table::{Lookup, Table};
use crate::version::{TableFile, Version};
use leasehold_storage::wal::WalWriter;

pub use leasehold_storage::kv::CompactionFilter;

/// Bugs planted on purpose to prove the crash campaign finds them. They can
/// be switched on only in this crate's tests or with the `planted-bugs`
/// feature (`LsmEngine::plant`); a normal build cannot reach them.
#[cfg_attr(not(any(test, feature = "planted-bugs")), allow(dead_code))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlantedBug {
    /// A Sync write returns without the WAL fsync.
    SkipWalSync,
    /// A new WAL or table's directory entry is never fsynced.
    SkipDirSync,
    /// A write is acknowledged before its record is in the WAL (the record is
    /// written with the next group instead).
    AckBeforeWal,
    /// A failed fsync or write is forgotten: the engine keeps acknowledging
    /// (the fsyncgate mistake).
    ForgetFailures,
    /// Table blocks are read without checking their checksum.
    SkipBlockChecksum,
    /// Open takes no directory lock: a second open of a live tree goes ahead.
    SkipDirLock,
    /// Recovery takes a manifest that reads as torn at its word: no check
    /// that the logs it needs, or a clean close listed, are there and whole.
    TrustTornManifest,
    /// A flush picks its memtable before taking the `versions` lock and
    /// retires whatever is first when it installs (the D3 race).
    PickBeforeLock,
    /// The Group timer never syncs: a Group write is synced only when a
    /// later write finds the interval passed (G1: no bound after a burst).
    NoGroupTimer,
    /// A compaction deletes a blob file as soon as it counts garbage in it,
    /// though tables still point into its other records.
    DeleteLiveBlob,
}

impl PlantedBug {
    pub const ALL: [PlantedBug; 10] = [
        PlantedBug::SkipWalSync,
        PlantedBug::SkipDirSync,
        PlantedBug::AckBeforeWal,
        PlantedBug::ForgetFailures,
        PlantedBug::SkipBlockChecksum,
        PlantedBug::SkipDirLock,
        PlantedBug::TrustTornManifest,
        PlantedBug::PickBeforeLock,
        PlantedBug::NoGroupTimer,
        PlantedBug::DeleteLiveBlob,
    ];

    /// True when `planted` is `bug` (always false in a normal build).
    pub(crate) fn is(planted: Option<PlantedBug>, bug: PlantedBug) -> bool {
        cfg!(any(test, feature = "planted-bugs")) && planted == Some(bug)
    }
}

/// Bytes of batches one write leader takes into its group.
const GROUP_BYTES_MAX: u64 = 4 << 20;

#[derive(Debug, Default)]
struct Counters {
    user_bytes: AtomicU64,
    /// The WAL's bytes, kept apart from the WAL's lock so that `stats` and
    /// `health` never wait behind a stalled writer (audit P3).
    log: LogCounters,
    flush_bytes: AtomicU64,
    compaction_read: AtomicU64,
    compaction_written: AtomicU64,
    stall_micros: AtomicU64,
    bloom_probes: AtomicU64,
    bloom_useful: AtomicU64,
    bloom_false_positives: AtomicU64,
    flushes: AtomicU64,
    compactions: AtomicU64,
    manifest_bytes: AtomicU64,
    /// Bytes of blob files written (by flushes and relocating compactions).
    blob_bytes_written: AtomicU64,
    /// Live values compactions copied out of old blob files.
    blobs_relocated: AtomicU64,
}

struct TreeState {
    active: Arc<Memtable>,
    /// Oldest first.
    immutables: Vec<Arc<Memtable>>,
    version: Arc<Version>,
}

struct VersionSet {
    manifest: ManifestWriter,
    log_number: u64,
    /// Per level, the largest user key of the last table compacted out of it.
    pointers: Vec<Vec<u8>>,
}

struct WalState {
    writer: WalWriter,
    number: u64,
    last_sequence: u64,
    last_sync: Instant,
}

struct Inner {
    vfs: Arc<dyn Vfs>,
    dir: PathBuf,
    config: LsmConfig,
    table_options: TableOptions,
    cache: Arc<BlockCache>,
    filter: Option<Arc<dyn CompactionFilter>>,
    state: RwLock<TreeState>,
    /// Held only to pick and to install (manifest edit, state swap): the
    /// merging and writing of tables happens outside it.
    versions: Mutex<VersionSet>,
    /// One flush at a time: the memtable a flush picks is the one it
    /// retires. Taken before `versions`.
    flusher: Mutex<()>,
    /// One compaction at a time: it alone changes levels 1 and deeper,
    /// deletes tables and moves the round-robin pointers, so a pick stays
    /// valid while it merges. Taken before `versions`.
    compactor: Mutex<()>,
    /// The next file number (logs, tables, manifests share it). An atomic,
    /// not part of `versions`: a memtable switch (holding the WAL) must not
    /// wait for a flush or compaction that holds `versions` (audit P2).
    file_numbers: AtomicU64,
    wal: Mutex<WalState>,
    commits: CommitQueue,
    visible_sequence: AtomicU64,
    /// The background worker's stop flag; `work_cv` wakes it, `progress_cv`
    /// wakes writers stalled on it.
    stop: Mutex<bool>,
    work_cv: Condvar,
    progress_cv: Condvar,
    lifecycle: Lifecycle,
    counters: Counters,
    #[cfg(any(test, feature = "planted-bugs"))]
    planted: PlantedSwitch<PlantedBug>,
}

/// The LSM-tree engine.
pub struct LsmEngine {
    inner: Arc<Inner>,
    /// The flusher, the compactor and the syncer (timed WAL syncs for Group
    /// writes), when `background_threads`.
    workers: Workers,
}

impl std::fmt::Debug for LsmEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LsmEngine")
            .field("dir", &self.inner.dir)
            .finish()
    }
}

impl LsmEngine {
    /// Opens (creating if needed) the tree in `config.data_dir` on `vfs`.
    pub fn open(config: &LsmConfig, vfs: Arc<dyn Vfs>) -> KvResult<LsmEngine> {
        LsmEngine::open_with_filter(config, vfs, None)
    }

    /// `open`, with a compaction filter applied at the bottom level.
    pub fn open_with_filter(
        config: &LsmConfig,
        vfs: Arc<dyn Vfs>,
        filter: Option<Arc<dyn CompactionFilter>>,
    ) -> KvResult<LsmEngine> {
        LsmEngine::open_with(config, vfs, filter, None)
    }

    /// `open` with `bug` planted from the start (the bugs of recovery need
    /// it). Tests and the crash campaign only.
    #[cfg(any(test, feature = "planted-bugs"))]
    pub fn open_planted(
        config: &LsmConfig,
        vfs: Arc<dyn Vfs>,
        bug: PlantedBug,
    ) -> KvResult<LsmEngine> {
        let engine = LsmEngine::open_with(config, vfs, None, Some(bug))?;
        engine.plant(bug);
        Ok(engine)
    }

    fn open_with(
        config: &LsmConfig,
        vfs: Arc<dyn Vfs>,
        filter: Option<Arc<dyn CompactionFilter>>,
        planted: Option<PlantedBug>,
    ) -> KvResult<LsmEngine> {
        config
            .validate("lsm_tree")
            .map_err(|err| KvError::InvalidArgument(err.to_string()))?;
        let inner = Arc::new(recover(config, vfs, filter, planted)?);
        let engine = LsmEngine {
            inner,
            workers: Workers::new(),
        };
        if config.background_threads {
            // Flushes have a thread of their own, so a frozen memtable never
            // waits behind a long compaction (writers would stall on it).
            engine.workers.start(
                &engine.inner,
                &[
                    ("leasehold-lsm-flush", Inner::flush_loop),
                    ("leasehold-lsm", Inner::compaction_loop),
                    ("leasehold-lsm-sync", Inner::sync_loop),
                ],
            )?;
        }
        Ok(engine)
    }

    /// Plants `bug` in this engine from now on (tests and the crash
    /// campaign's `--planted` runs only).
    #[cfg(any(test, feature = "planted-bugs"))]
    pub fn plant(&self, bug: PlantedBug) {
        self.inner.planted.plant(bug);
        self.inner
            .cache
            .skip_checksums
            .store(bug == PlantedBug::SkipBlockChecksum, Ordering::Relaxed);
    }

    fn stop_worker(&self) {
        self.workers.stop(
            &self.inner.stop,
            &[&self.inner.work_cv, &self.inner.progress_cv],
        );
    }

    /// Flushes every memtable, then compacts each level in turn into the one
    /// below, down to one past the deepest that holds data, so everything
    /// ends in one level and tombstones are gone (a manual full compaction,
    /// for tools, tests and benchmarks).
    pub fn compact_all(&self) -> KvResult<()> {
        let inner = &self.inner;
        inner.check_usable()?;
        {
            let mut wal = inner.wal.lock();
            if !inner.state.read().active.is_empty() {
                inner.switch_memtable(&mut wal)?;
            }
        }
        while inner.flush_one()? {}
        let deepest = {
            let version = Arc::clone(&inner.state.read().version);
            (0..LEVELS)
                .rev()
                .find(|&level| !version.levels[level].is_empty())
        };
        for level in 0..=deepest.unwrap_or(0) {
            let _compactor = inner.compactor.lock();
            let version = Arc::clone(&inner.state.read().version);
            if let Some(pick) = compaction::pick_level(&version, level) {
                inner.run_pick(&pick)?;
            }
        }
        Ok(())
    }

    /// Tables per level (for tools and tests).
    pub fn level_counts(&self) -> Vec<usize> {
        self.inner
            .state
            .read()
            .version
            .levels
            .iter()
            .map(Vec::len)
            .collect()
    }

    pub fn flush_count(&self) -> u64 {
        self.inner.counters.flushes.load(Ordering::Relaxed)
    }

    pub fn compaction_count(&self) -> u64 {
        self.inner.counters.compactions.load(Ordering::Relaxed)
    }

    /// Live values compactions have copied out of old blob files.
    pub fn blobs_relocated(&self) -> u64 {
        self.inner.counters.blobs_relocated.load(Ordering::Relaxed)
    }
}

impl Drop for LsmEngine {
    fn drop(&mut self) {
        self.stop_worker();
    }
}

mod background;
mod compact;
mod files;
mod flush;
mod read;
mod recovery;
mod tables;
mod write;
pub use files::{describe_file, file_kind, log_name, recognises, table_name, FileKind};
use recovery::recover;
use tables::{newest_versions, open_blob, open_table, write_level0, write_table, BlobSink};

/// A WAL record: first_sequence: u64 LE | batch (written from parts by
/// `write_group`).
fn decode_wal_record(record: &[u8]) -> Result<(u64, WriteBatch), String> {
    if record.len() < 8 {
        return Err("record shorter than its sequence number".into());
    }
    let mut sequence = [0u8; 8];
    sequence.copy_from_slice(&record[..8]);
    let first_sequence = u64::from_le_bytes(sequence);
    let batch = WriteBatch::decode(&record[8..]).map_err(|err| err.to_string())?;
    if batch.is_empty()
        || first_sequence == 0
        || first_sequence.saturating_add(batch.len() as u64) > format::SEQUENCE_MAX
    {
        return Err("empty batch or sequence out of range".into());
    }
    Ok((first_sequence, batch))
}

/// Inserts one op; the value is shared with the batch, not copied.
fn insert_op(memtable: &Memtable, op: &BatchOp, sequence: u64) {
    match op {
        BatchOp::Put { key, value } => {
            memtable.insert(key, sequence, ValueKind::Put, value.clone())
        }
        BatchOp::Delete { key } => memtable.insert(key, sequence, ValueKind::Delete, Bytes::new()),
    }
}

impl Inner {
    fn check_usable(&self) -> KvResult<()> {
        self.lifecycle.check_writable()
    }

    /// True when `bug` is planted (always false in a normal build).
    fn planted(&self, bug: PlantedBug) -> bool {
        #[cfg(any(test, feature = "planted-bugs"))]
        return self.planted.is(bug);
        #[cfg(not(any(test, feature = "planted-bugs")))]
        {
            let _ = bug;
            false
        }
    }

    /// Fsyncs the directory (unless the test-only bug skips it).
    fn sync_dir(&self) -> KvResult<()> {
        if self.planted(PlantedBug::SkipDirSync) {
            return Ok(());
        }
        self.vfs
            .sync_dir(&self.dir)
            .map_err(|err| self.fail(KvError::io(format!("sync {}", self.dir.display()), err)))
    }

    /// Records the first failure (the engine then refuses writes) and wakes
    /// stalled writers so they see it.
    fn fail(&self, err: KvError) -> KvError {
        if self.planted(PlantedBug::ForgetFailures) {
            return err;
        }
        let err = self.lifecycle.fail(err);
        self.progress_cv.notify_all();
        err
    }
}

impl KvEngine for LsmEngine {
    fn name(&self) -> &'static str {
        "lsm"
    }

    fn get(&self, key: &[u8]) -> KvResult<Option<Vec<u8>>> {
        self.inner.get(key)
    }

    fn write(&self, batch: WriteBatch, durability: Durability) -> KvResult<()> {
        self.inner.write(batch, durability)
    }

    fn scan(&self, range: &KeyRange, visit: &mut ScanVisitor<'_>) -> KvResult<()> {
        self.inner.scan(range, visit)
    }

    fn flush(&self) -> KvResult<()> {
        let inner = &self.inner;
        inner.check_usable()?;
        let mut wal = inner.wal.lock();
        inner.sync_wal(&mut wal)
    }

    fn stats(&self) -> EngineStats {
        self.inner.stats()
    }

    fn health(&self) -> Health {
        if let Some(failed) = self.inner.lifecycle.health() {
            return failed;
        }
        let stats = self.inner.stats();
        let level0 = self.inner.state.read().version.levels[0].len();
        if level0 >= self.inner.config.l0_stop_writes as usize {
            return Health::Degraded(format!(
                "{level0} level-0 tables: writes stall until compaction catches up"
            ));
        }
        if stats.stall_micros > 0
            && self.inner.state.read().immutables.len() >= self.inner.config.max_memtables as usize
        {
            return Health::Degraded("memtable flushes are behind: writes stall".into());
        }
        Health::Healthy
    }

    fn verify(&self) -> KvResult<VerifyReport> {
        self.inner.verify()
    }

    fn close(&self) -> KvResult<()> {
        let inner = &self.inner;
        // No write lands after the final sync or beyond the lengths the
        // close record lists.
        inner.lifecycle.close_with(
            || self.stop_worker(),
            || {
                let mut wal = inner.wal.lock();
                inner.sync_wal(&mut wal)?;
                drop(wal);
                inner.record_close()
            },
        )
    }
}

#[cfg(test)]
mod planted_bugs;
