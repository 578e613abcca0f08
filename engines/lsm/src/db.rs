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
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};

use leasehold_core::commit::{CommitQueue, Pending};
use leasehold_core::config::LsmConfig;
use leasehold_core::kv::ScanVisitor;
use leasehold_core::lifecycle::Lifecycle;
use leasehold_core::vfs::{Vfs, VfsFile};
use leasehold_core::{
    BatchOp, Durability, EngineStats, Health, KeyRange, KvEngine, KvError, KvResult, VerifyReport,
    WriteBatch,
};

use crate::compaction::{self, Pick};
use crate::format::{self, Entry, InternalKey, ValueKind};
use crate::iterator::{MergeIter, Source, VisibleIter};
use crate::manifest::{self, FileMeta, ManifestWriter, VersionEdit, LEVELS};
use crate::memtable::Memtable;
use crate::sstable::cache::BlockCache;
use crate::sstable::table::{Lookup, Table, TableBuilder, TableOptions};
use crate::version::{TableFile, Version};
use leasehold_core::wal::WalWriter;

/// Decides, at the bottom level, whether an entry (user key, value) may be
/// dropped: e.g. a snapshot whose TTL ran out.
pub type CompactionFilter = Arc<dyn Fn(&[u8], &[u8]) -> bool + Send + Sync>;

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
}

impl PlantedBug {
    pub const ALL: [PlantedBug; 8] = [
        PlantedBug::SkipWalSync,
        PlantedBug::SkipDirSync,
        PlantedBug::AckBeforeWal,
        PlantedBug::ForgetFailures,
        PlantedBug::SkipBlockChecksum,
        PlantedBug::SkipDirLock,
        PlantedBug::TrustTornManifest,
        PlantedBug::PickBeforeLock,
    ];

    /// True when `planted` is `bug` (always false in a normal build).
    pub(crate) fn is(planted: Option<PlantedBug>, bug: PlantedBug) -> bool {
        cfg!(any(test, feature = "planted-bugs")) && planted == Some(bug)
    }
}

/// Bytes of batches one write leader takes into its group.
const GROUP_BYTES_MAX: u64 = 4 << 20;

/// What a file in the engine's directory is.
#[derive(Debug, PartialEq, Eq)]
pub enum FileKind {
    Log(u64),
    Table(u64),
    Manifest(u64),
    Current,
    /// `CURRENT.tmp` (other `*.tmp` files are not the tree's: never touched).
    Temporary,
    Other,
}

/// The only temporary the tree makes: CURRENT's, while it is replaced.
const CURRENT_TEMPORARY: &str = "CURRENT.tmp";

pub fn log_name(number: u64) -> String {
    format!("{number:06}.log")
}

pub fn table_name(number: u64) -> String {
    format!("{number:06}.sst")
}

pub fn file_kind(name: &str) -> FileKind {
    let number = |digits: &str| {
        digits
            .parse::<u64>()
            .ok()
            .filter(|_| digits.bytes().all(|b| b.is_ascii_digit()))
    };
    if name == manifest::CURRENT {
        FileKind::Current
    } else if name == CURRENT_TEMPORARY {
        FileKind::Temporary
    } else if let Some(n) = name.strip_suffix(".log").and_then(number) {
        FileKind::Log(n)
    } else if let Some(n) = name.strip_suffix(".sst").and_then(number) {
        FileKind::Table(n)
    } else if let Some(n) = name.strip_prefix("MANIFEST-").and_then(number) {
        FileKind::Manifest(n)
    } else {
        FileKind::Other
    }
}

#[derive(Debug, Default)]
struct Counters {
    user_bytes: AtomicU64,
    wal_bytes: AtomicU64,
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
    /// Bytes in the active WAL, kept apart from the WAL's lock so that
    /// `stats` and `health` never wait behind a stalled writer (audit P3).
    active_wal_bytes: AtomicU64,
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
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
    filter: Option<CompactionFilter>,
    state: RwLock<TreeState>,
    versions: Mutex<VersionSet>,
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
    planted: Mutex<(Option<PlantedBug>, Vec<Vec<u8>>)>,
}

/// The LSM-tree engine.
pub struct LsmEngine {
    inner: Arc<Inner>,
    /// The background worker (flushes, compactions) and the syncer (timed
    /// WAL syncs for Group writes), when `background_threads`.
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for LsmEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LsmEngine")
            .field("dir", &self.inner.dir)
            .finish()
    }
}

/// What a background thread runs.
type ThreadBody = fn(&Inner);

fn io_error(context: String) -> impl FnOnce(std::io::Error) -> KvError {
    move |source| KvError::io(context, source)
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
        filter: Option<CompactionFilter>,
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
        filter: Option<CompactionFilter>,
        planted: Option<PlantedBug>,
    ) -> KvResult<LsmEngine> {
        config
            .validate("lsm_tree")
            .map_err(|err| KvError::InvalidArgument(err.to_string()))?;
        let inner = Arc::new(recover(config, vfs, filter, planted)?);
        let engine = LsmEngine {
            inner,
            workers: Mutex::new(Vec::new()),
        };
        if config.background_threads {
            let loops: [(&str, ThreadBody); 2] = [
                ("leasehold-lsm", Inner::background_loop),
                ("leasehold-lsm-sync", Inner::sync_loop),
            ];
            for (name, body) in loops {
                let inner = Arc::clone(&engine.inner);
                let handle = std::thread::Builder::new()
                    .name(name.into())
                    .spawn(move || body(&inner))
                    .map_err(io_error(format!("start the {name} thread")))?;
                engine.workers.lock().push(handle);
            }
        }
        Ok(engine)
    }

    /// Plants `bug` in this engine from now on (tests and the crash
    /// campaign's `--planted` runs only).
    #[cfg(any(test, feature = "planted-bugs"))]
    pub fn plant(&self, bug: PlantedBug) {
        self.inner.planted.lock().0 = Some(bug);
        self.inner
            .cache
            .skip_checksums
            .store(bug == PlantedBug::SkipBlockChecksum, Ordering::Relaxed);
    }

    fn stop_worker(&self) {
        *self.inner.stop.lock() = true;
        self.inner.work_cv.notify_all();
        self.inner.progress_cv.notify_all();
        for handle in std::mem::take(&mut *self.workers.lock()) {
            // A panicked worker already recorded nothing more we can use.
            let _ = handle.join();
        }
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
            let mut versions = inner.versions.lock();
            let version = Arc::clone(&inner.state.read().version);
            if let Some(pick) = compaction::pick_level(&version, level) {
                inner.run_pick(&mut versions, &pick)?;
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
}

impl Drop for LsmEngine {
    fn drop(&mut self) {
        self.stop_worker();
    }
}

fn open_table(
    vfs: &dyn Vfs,
    dir: &Path,
    cache: &Arc<BlockCache>,
    meta: &FileMeta,
) -> KvResult<Arc<Table>> {
    let path = dir.join(table_name(meta.number));
    let file = vfs.open_read(&path).map_err(|err| {
        if err.kind() == std::io::ErrorKind::NotFound {
            KvError::corruption(&path, 0, "a table the manifest names is missing")
        } else {
            KvError::io(format!("open {}", path.display()), err)
        }
    })?;
    let size = file
        .len()
        .map_err(io_error(format!("stat {}", path.display())))?;
    if size != meta.size {
        return Err(KvError::corruption(
            &path,
            size,
            format!("table is {size} bytes, the manifest says {}", meta.size),
        ));
    }
    Ok(Arc::new(Table::open(
        file,
        path,
        meta.number,
        size,
        Arc::clone(cache),
    )?))
}

/// Writes `entries` (ascending, newest version per user key) as table
/// `number`, fsynced. The caller syncs the directory.
fn write_table(
    vfs: &dyn Vfs,
    dir: &Path,
    options: &TableOptions,
    number: u64,
    entries: impl Iterator<Item = KvResult<Entry>>,
) -> KvResult<Option<FileMeta>> {
    let path = dir.join(table_name(number));
    let file: Arc<dyn VfsFile> = vfs
        .create(&path)
        .map_err(io_error(format!("create {}", path.display())))?;
    let mut builder = TableBuilder::new(Arc::clone(&file), options.clone());
    for entry in entries {
        let (key, value) = entry?;
        builder
            .add(&key, &value)
            .map_err(io_error(format!("write {}", path.display())))?;
    }
    if builder.is_empty() {
        drop(builder);
        vfs.remove(&path)
            .map_err(io_error(format!("remove {}", path.display())))?;
        return Ok(None);
    }
    let summary = builder
        .finish()
        .map_err(io_error(format!("write {}", path.display())))?;
    file.sync()
        .map_err(io_error(format!("sync {}", path.display())))?;
    Ok(Some(FileMeta {
        number,
        size: summary.size,
        smallest: summary.smallest,
        largest: summary.largest,
    }))
}

/// The newest version of each user key, in order.
fn newest_versions(
    entries: impl Iterator<Item = KvResult<Entry>>,
) -> impl Iterator<Item = KvResult<Entry>> {
    let mut last: Option<Vec<u8>> = None;
    entries.filter(move |entry| match entry {
        Ok((key, _)) => {
            let user_key = format::user_key(key);
            if last.as_deref() == Some(user_key) {
                false
            } else {
                last = Some(user_key.to_vec());
                true
            }
        }
        Err(_) => true,
    })
}

fn memtable_entries(memtable: &Memtable) -> impl Iterator<Item = KvResult<Entry>> + '_ {
    memtable
        .iter_from(Bound::Unbounded)
        .map(|(key, value)| Ok((key.encode(), value)))
}

mod recovery;
use recovery::recover;

/// A WAL record: first_sequence: u64 LE | batch.
fn encode_wal_record(first_sequence: u64, batch: &WriteBatch) -> Vec<u8> {
    let mut record = first_sequence.to_le_bytes().to_vec();
    record.extend_from_slice(&batch.encode());
    record
}

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

fn insert_op(memtable: &Memtable, op: BatchOp, sequence: u64) {
    match op {
        BatchOp::Put { key, value } => {
            memtable.insert(InternalKey::new(key, sequence, ValueKind::Put), value)
        }
        BatchOp::Delete { key } => memtable.insert(
            InternalKey::new(key, sequence, ValueKind::Delete),
            Vec::new(),
        ),
    }
}

impl Inner {
    fn check_usable(&self) -> KvResult<()> {
        self.lifecycle.check_writable()
    }

    /// True when `bug` is planted (always false in a normal build).
    fn planted(&self, bug: PlantedBug) -> bool {
        #[cfg(any(test, feature = "planted-bugs"))]
        return self.planted.lock().0 == Some(bug);
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

    fn write(&self, batch: WriteBatch, durability: Durability) -> KvResult<()> {
        self.check_usable()?;
        if batch.is_empty() {
            return Ok(());
        }
        self.commits
            .submit(batch, durability, |group| self.write_group(group))
    }

    fn write_group(&self, group: &[Arc<Pending>]) -> KvResult<()> {
        let mut wal = self.wal.lock();
        self.check_usable()?;
        self.make_room(&mut wal)?;
        let first = wal.last_sequence + 1;
        let mut sequence = first;
        let mut records = Vec::with_capacity(group.len());
        for pending in group {
            records.push(encode_wal_record(sequence, &pending.batch));
            sequence += pending.batch.len() as u64;
        }
        #[cfg(any(test, feature = "planted-bugs"))]
        if self.planted(PlantedBug::AckBeforeWal) {
            records = std::mem::replace(&mut self.planted.lock().1, records);
        }
        let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
        let written = wal.writer.append(&refs).map_err(|err| {
            self.fail(KvError::io(
                format!("append to {}", wal.writer.path().display()),
                err,
            ))
        })?;
        bump(&self.counters.wal_bytes, written);
        self.counters
            .active_wal_bytes
            .store(wal.writer.len(), Ordering::Relaxed);
        let interval = Duration::from_millis(self.config.wal_sync_interval_ms);
        // Without the background thread nothing would sync a trailing Group
        // write later, so Group is synced at once: its promise (durable
        // within the interval) kept the only way it can be.
        let sync_now = group
            .iter()
            .any(|pending| pending.durability == Durability::Sync)
            || (group
                .iter()
                .any(|pending| pending.durability == Durability::Group)
                && (wal.last_sync.elapsed() >= interval || !self.config.background_threads));
        if sync_now {
            self.sync_wal(&mut wal)?;
        }
        let active = Arc::clone(&self.state.read().active);
        let mut sequence = first;
        for pending in group {
            bump(&self.counters.user_bytes, pending.batch.logical_bytes());
            for op in pending.batch.ops.iter().cloned() {
                insert_op(&active, op, sequence);
                sequence += 1;
            }
        }
        wal.last_sequence = sequence - 1;
        self.visible_sequence.store(sequence - 1, Ordering::Release);
        if !self.config.background_threads {
            drop(wal);
            self.run_due_work_inline()?;
        }
        Ok(())
    }

    fn sync_wal(&self, wal: &mut WalState) -> KvResult<()> {
        if self.planted(PlantedBug::SkipWalSync) {
            wal.last_sync = Instant::now();
            return Ok(());
        }
        wal.writer.sync().map_err(|err| {
            self.fail(KvError::io(
                format!("sync {}", wal.writer.path().display()),
                err,
            ))
        })?;
        wal.last_sync = Instant::now();
        Ok(())
    }

    /// Makes sure the active memtable has room, switching to a new one (and
    /// stalling while too much waits to be flushed).
    fn make_room(&self, wal: &mut WalState) -> KvResult<()> {
        let limit = self.config.memtable_size_limit as usize;
        let mut stalled: Option<Instant> = None;
        loop {
            let (full, immutables, level0) = {
                let state = self.state.read();
                (
                    state.active.size() >= limit,
                    state.immutables.len(),
                    state.version.levels[0].len(),
                )
            };
            if !full {
                break;
            }
            let backlog = immutables >= self.config.max_memtables as usize
                || (self.config.enable_compaction && level0 >= self.config.l0_stop_writes as usize);
            if !backlog || !self.config.background_threads {
                self.switch_memtable(wal)?;
                break;
            }
            // Stall: wait for the worker to flush or compact.
            stalled.get_or_insert_with(Instant::now);
            self.work_cv.notify_all();
            let mut stop = self.stop.lock();
            if *stop {
                return Err(KvError::Closed);
            }
            self.progress_cv
                .wait_for(&mut stop, Duration::from_millis(50));
            drop(stop);
            self.check_usable()?;
        }
        if let Some(started) = stalled {
            bump(
                &self.counters.stall_micros,
                started.elapsed().as_micros() as u64,
            );
        }
        Ok(())
    }

    /// Freezes the active memtable and starts a new WAL. The old WAL is
    /// fsynced first: records in the new one must never outlive older ones.
    fn switch_memtable(&self, wal: &mut WalState) -> KvResult<()> {
        self.sync_wal(wal)?;
        let number = self.allocate_file_number();
        let path = self.dir.join(log_name(number));
        let file = self
            .vfs
            .create(&path)
            .map_err(|err| self.fail(KvError::io(format!("create {}", path.display()), err)))?;
        self.sync_dir()?;
        wal.writer = WalWriter::new(file, path);
        self.counters.active_wal_bytes.store(0, Ordering::Relaxed);
        wal.number = number;
        let mut state = self.state.write();
        let frozen = std::mem::replace(&mut state.active, Arc::new(Memtable::new(number)));
        state.immutables.push(frozen);
        drop(state);
        self.work_cv.notify_all();
        Ok(())
    }

    /// Logs the clean close (FORMAT.md, "Recovery"): every log still
    /// holding records, with its exact length, so that the next open can
    /// tell a removed, truncated or damaged log from a crash's torn tail. The
    /// WAL was just synced; nothing writes after this.
    fn record_close(&self) -> KvResult<()> {
        let wal = self.wal.lock();
        let mut versions = self.versions.lock();
        let state = self.state.read();
        let mut logs = Vec::new();
        for memtable in state.immutables.iter().chain([&state.active]) {
            let path = self.dir.join(log_name(memtable.wal_number()));
            let length = self
                .vfs
                .file_size(&path)
                .map_err(io_error(format!("stat {}", path.display())))?;
            if length > 0 {
                logs.push((memtable.wal_number(), length));
            }
        }
        drop(state);
        let edit = VersionEdit {
            last_sequence: Some(wal.last_sequence),
            closed: Some(logs),
            ..VersionEdit::default()
        };
        let written = versions.manifest.append(&edit).map_err(|err| {
            self.fail(KvError::io(
                format!("append to {}", versions.manifest.path().display()),
                err,
            ))
        })?;
        bump(&self.counters.manifest_bytes, written);
        Ok(())
    }

    /// A fresh file number. Recovery also moves past every number on disk,
    /// so an edit recording a smaller `next_file_number` than a file that
    /// raced it never leads to reuse.
    fn allocate_file_number(&self) -> u64 {
        self.file_numbers.fetch_add(1, Ordering::SeqCst)
    }

    fn run_due_work_inline(&self) -> KvResult<()> {
        while self.flush_one()? {}
        while self.compact_once()? {}
        Ok(())
    }

    /// Writes the oldest immutable memtable to a level-0 table. False when
    /// there was none.
    fn flush_one(&self) -> KvResult<bool> {
        // `versions` first: whoever holds it is the only flusher, so the
        // memtable picked is the one `install` removes below (picked before
        // the lock, a racing flush could install it first and this one would
        // then remove the next, unflushed memtable).
        let racy = self.planted(PlantedBug::PickBeforeLock);
        let picked_early = racy
            .then(|| self.state.read().immutables.first().cloned())
            .flatten();
        let mut versions = self.versions.lock();
        let Some(memtable) = picked_early.or_else(|| self.state.read().immutables.first().cloned())
        else {
            return Ok(false);
        };
        let mut edit = VersionEdit::default();
        if !memtable.is_empty() {
            let number = self.allocate_file_number();
            let meta = write_table(
                self.vfs.as_ref(),
                &self.dir,
                &self.table_options,
                number,
                newest_versions(memtable_entries(&memtable)),
            )
            .map_err(|err| self.fail(err))?;
            if let Some(meta) = meta {
                bump(&self.counters.flush_bytes, meta.size);
                edit.added.push((0, meta));
            }
            self.sync_dir()?;
        }
        let next_log = {
            let state = self.state.read();
            state
                .immutables
                .get(1)
                .map_or(state.active.wal_number(), |next| next.wal_number())
        };
        edit.log_number = Some(next_log);
        edit.next_file_number = Some(self.file_numbers.load(Ordering::SeqCst));
        edit.last_sequence = Some(self.visible_sequence.load(Ordering::Acquire));
        self.install(&mut versions, &edit, |state| {
            let flushed = state.immutables.remove(0);
            assert!(
                racy || Arc::ptr_eq(&flushed, &memtable),
                "flushed one memtable and retired another"
            );
        })?;
        versions.log_number = next_log;
        drop(versions);
        bump(&self.counters.flushes, 1);
        self.remove_file(&self.dir.join(log_name(memtable.wal_number())));
        Ok(true)
    }

    /// Logs `edit` in the manifest, then makes it (and `also`) the current
    /// state in one step.
    fn install(
        &self,
        versions: &mut VersionSet,
        edit: &VersionEdit,
        also: impl FnOnce(&mut TreeState),
    ) -> KvResult<()> {
        let next = self.state.read().version.apply(edit, |meta| {
            open_table(self.vfs.as_ref(), &self.dir, &self.cache, meta)
        });
        let next = next.map_err(|err| self.fail(err))?;
        let written = versions.manifest.append(edit).map_err(|err| {
            self.fail(KvError::io(
                format!("append to {}", versions.manifest.path().display()),
                err,
            ))
        })?;
        bump(&self.counters.manifest_bytes, written);
        let mut state = self.state.write();
        state.version = Arc::new(next);
        also(&mut state);
        drop(state);
        self.progress_cv.notify_all();
        Ok(())
    }

    /// Deletes an obsolete file. Failure is harmless (recovery deletes it).
    fn remove_file(&self, path: &Path) {
        let _ = self.vfs.remove(path);
    }

    /// Runs one compaction if one is due. False when none was.
    fn compact_once(&self) -> KvResult<bool> {
        let mut versions = self.versions.lock();
        let version = Arc::clone(&self.state.read().version);
        let Some(pick) = compaction::pick(&version, &self.config, &versions.pointers) else {
            return Ok(false);
        };
        self.run_pick(&mut versions, &pick)?;
        Ok(true)
    }

    /// Runs the compaction `pick`: merge, log the edit, install, delete inputs.
    fn run_pick(&self, versions: &mut VersionSet, pick: &Pick) -> KvResult<()> {
        let outputs = self.run_compaction(pick).map_err(|err| self.fail(err))?;
        let edit = VersionEdit {
            deleted: pick
                .all_inputs()
                .map(|(level, file)| (level, file.meta.number))
                .collect(),
            added: outputs
                .into_iter()
                .map(|meta| (pick.output_level, meta))
                .collect(),
            next_file_number: Some(self.file_numbers.load(Ordering::SeqCst)),
            ..VersionEdit::default()
        };
        self.install(versions, &edit, |_| {})?;
        if let Some(largest) = pick.inputs.iter().map(|file| file.largest_user_key()).max() {
            versions.pointers[pick.level] = largest.to_vec();
        }
        bump(&self.counters.compactions, 1);
        for (_, file) in pick.all_inputs() {
            self.cache.forget_file(file.meta.number);
            self.remove_file(&self.dir.join(table_name(file.meta.number)));
        }
        Ok(())
    }

    /// Merges the inputs of `pick` into new tables (fsynced, directory synced).
    /// The caller holds `versions` (one flush or compaction at a time).
    fn run_compaction(&self, pick: &Pick) -> KvResult<Vec<FileMeta>> {
        let mut sources: Vec<Source<'_>> = Vec::new();
        // Level-0 inputs may overlap: one source each, newest first.
        for file in &pick.inputs {
            sources.push(Box::new(file.table.iter(None)));
        }
        let next: Vec<Arc<TableFile>> = pick.next_inputs.clone();
        sources.push(Box::new(
            next.into_iter().flat_map(|file| file.table.iter(None)),
        ));
        let merged = MergeIter::new(sources).inspect(|entry| {
            if let Ok((key, value)) = entry {
                bump(
                    &self.counters.compaction_read,
                    (key.len() + value.len()) as u64,
                );
            }
        });
        let kept = newest_versions(merged).filter(|entry| match entry {
            Ok((key, value)) if pick.bottommost => match format::split(key) {
                Some((_, _, ValueKind::Delete)) => false,
                Some((user_key, _, ValueKind::Put)) => !self
                    .filter
                    .as_ref()
                    .is_some_and(|filter| filter(user_key, value)),
                None => true,
            },
            _ => true,
        });
        let mut outputs = Vec::new();
        let mut kept = kept.peekable();
        while kept.peek().is_some() {
            let number = self.allocate_file_number();
            let target = self.config.target_file_size;
            let mut size = 0u64;
            let chunk = std::iter::from_fn(|| {
                if size >= target {
                    return None;
                }
                let entry = kept.next()?;
                if let Ok((key, value)) = &entry {
                    size += (key.len() + value.len()) as u64;
                }
                Some(entry)
            });
            if let Some(meta) = write_table(
                self.vfs.as_ref(),
                &self.dir,
                &self.table_options,
                number,
                chunk,
            )? {
                bump(&self.counters.compaction_written, meta.size);
                outputs.push(meta);
            }
        }
        self.vfs
            .sync_dir(&self.dir)
            .map_err(io_error(format!("sync {}", self.dir.display())))?;
        Ok(outputs)
    }

    fn has_work(&self) -> bool {
        let state = self.state.read();
        !state.immutables.is_empty()
            || compaction::pick(&state.version, &self.config, &vec![Vec::new(); LEVELS]).is_some()
    }

    fn background_loop(&self) {
        let interval = Duration::from_millis(self.config.wal_sync_interval_ms.max(1));
        loop {
            {
                let mut stop = self.stop.lock();
                if *stop {
                    return;
                }
                if !self.has_work() {
                    self.work_cv.wait_for(&mut stop, interval);
                }
                if *stop {
                    return;
                }
            }
            if self.lifecycle.is_failed() {
                return;
            }
            let worked = self.flush_one().and_then(|flushed| {
                if flushed {
                    Ok(true)
                } else {
                    self.compact_once()
                }
            });
            if worked.is_err() {
                return;
            }
        }
    }

    /// Group durability: syncs a WAL whose unsynced bytes have waited the
    /// interval. Its own thread, so that no flush or compaction delays it
    /// (audit G1). A write leader holding the WAL (a Sync write's fsync, or
    /// a stall) syncs before it acknowledges anything else, so this never
    /// waits for the lock: it tries again a few milliseconds later.
    fn sync_loop(&self) {
        let interval = Duration::from_millis(self.config.wal_sync_interval_ms.max(1));
        let tick = (interval / 4).max(Duration::from_millis(1));
        loop {
            {
                let mut stop = self.stop.lock();
                if *stop {
                    return;
                }
                self.work_cv.wait_for(&mut stop, tick);
                if *stop {
                    return;
                }
            }
            if self.lifecycle.is_failed() {
                return;
            }
            if let Some(mut wal) = self.wal.try_lock() {
                if !wal.writer.is_synced()
                    && wal.last_sync.elapsed() >= interval
                    && self.sync_wal(&mut wal).is_err()
                {
                    return;
                }
            }
        }
    }

    /// The memtables and version now, then the sequence that view covers.
    fn view(&self) -> (Arc<Memtable>, Vec<Arc<Memtable>>, Arc<Version>, u64) {
        let state = self.state.read();
        let view = (
            Arc::clone(&state.active),
            state.immutables.clone(),
            Arc::clone(&state.version),
        );
        drop(state);
        (
            view.0,
            view.1,
            view.2,
            self.visible_sequence.load(Ordering::Acquire),
        )
    }

    fn get(&self, key: &[u8]) -> KvResult<Option<Vec<u8>>> {
        self.lifecycle.check_open()?;
        let (active, immutables, version, sequence) = self.view();
        for memtable in std::iter::once(&active).chain(immutables.iter().rev()) {
            if let Some((kind, value)) = memtable.get(key, sequence) {
                return Ok((kind == ValueKind::Put).then_some(value));
            }
        }
        let level0 = version.levels[0].iter().filter(|file| file.covers(key));
        let deeper = (1..LEVELS).filter_map(|level| version.find_in_level(level, key));
        for file in level0.chain(deeper) {
            bump(&self.counters.bloom_probes, 1);
            match file.table.get(key, sequence)? {
                Lookup::Filtered => bump(&self.counters.bloom_useful, 1),
                Lookup::Absent => bump(&self.counters.bloom_false_positives, 1),
                Lookup::Found(kind, value) => return Ok((kind == ValueKind::Put).then_some(value)),
            }
        }
        Ok(None)
    }

    fn scan(&self, range: &KeyRange, visit: &mut ScanVisitor<'_>) -> KvResult<()> {
        self.lifecycle.check_open()?;
        let (active, immutables, version, sequence) = self.view();
        let start = match &range.start {
            Bound::Included(key) | Bound::Excluded(key) => {
                Some(InternalKey::seek_key(key, format::SEQUENCE_MAX))
            }
            Bound::Unbounded => None,
        };
        let start_encoded = start.as_ref().map(InternalKey::encode);
        let mut sources: Vec<Source<'_>> = Vec::new();
        for memtable in std::iter::once(&active).chain(immutables.iter().rev()) {
            let from = start.clone().map_or(Bound::Unbounded, Bound::Included);
            let entries: Vec<KvResult<Entry>> = memtable
                .iter_from(from)
                .map(|(key, value)| Ok((key.encode(), value)))
                .collect();
            sources.push(Box::new(entries.into_iter()));
        }
        let in_range = |file: &Arc<TableFile>| match (&range.start, &range.end) {
            (Bound::Included(start) | Bound::Excluded(start), _)
                if file.largest_user_key() < start.as_slice() =>
            {
                false
            }
            (_, Bound::Included(end)) if file.smallest_user_key() > end.as_slice() => false,
            (_, Bound::Excluded(end)) if file.smallest_user_key() >= end.as_slice() => false,
            _ => true,
        };
        for file in version.levels[0].iter().filter(|file| in_range(file)) {
            sources.push(Box::new(file.table.iter(start_encoded.as_deref())));
        }
        for level in 1..LEVELS {
            let files: Vec<Arc<TableFile>> = version.levels[level]
                .iter()
                .filter(|file| in_range(file))
                .cloned()
                .collect();
            let start = start_encoded.clone();
            sources.push(Box::new(
                files
                    .into_iter()
                    .flat_map(move |file| file.table.iter(start.as_deref())),
            ));
        }
        for entry in VisibleIter::new(MergeIter::new(sources), sequence) {
            let (key, value) = entry?;
            if let Bound::Excluded(start) = &range.start {
                if &key == start {
                    continue;
                }
            }
            let past_end = match &range.end {
                Bound::Included(end) => key > *end,
                Bound::Excluded(end) => key >= *end,
                Bound::Unbounded => false,
            };
            if past_end || visit(&key, &value) == ControlFlow::Break(()) {
                break;
            }
        }
        Ok(())
    }

    fn stats(&self) -> EngineStats {
        let counters = &self.counters;
        let vfs = self.vfs.stats();
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let version_bytes = self.state.read().version.total_bytes();
        let wal_len = load(&counters.active_wal_bytes);
        EngineStats {
            user_bytes_written: load(&counters.user_bytes),
            wal_bytes_written: load(&counters.wal_bytes),
            flush_bytes_written: load(&counters.flush_bytes),
            compaction_bytes_read: load(&counters.compaction_read),
            compaction_bytes_written: load(&counters.compaction_written),
            device_bytes_written: vfs.bytes_written,
            device_bytes_read: vfs.bytes_read,
            fsyncs: vfs.fsyncs,
            dir_syncs: vfs.dir_syncs,
            stall_micros: load(&counters.stall_micros),
            block_cache_hits: self.cache.hits(),
            block_cache_misses: self.cache.misses(),
            bloom_probes: load(&counters.bloom_probes),
            bloom_useful: load(&counters.bloom_useful),
            bloom_false_positives: load(&counters.bloom_false_positives),
            blocks_read: self.cache.misses(),
            disk_bytes: version_bytes + wal_len + load(&counters.manifest_bytes),
            // Live data is not tracked by an LSM without a full scan; the
            // harness measures it from its own model.
            ..EngineStats::default()
        }
    }

    fn verify(&self) -> KvResult<VerifyReport> {
        // Hold off flushes and compactions: they delete the files of the
        // version they replace, which would read here as missing.
        let versions = self.versions.lock();
        let version = Arc::clone(&self.state.read().version);
        let mut report = VerifyReport {
            problems: version.check(),
            ..VerifyReport::default()
        };
        let mut entries = 0;
        for (level, file) in version.files() {
            let path = self.dir.join(table_name(file.meta.number));
            if !self
                .vfs
                .exists(&path)
                .map_err(io_error(format!("stat {}", path.display())))?
            {
                report.problems.push(format!(
                    "{}: named by the manifest at level {level} but missing",
                    path.display()
                ));
                continue;
            }
            match file.table.check_all() {
                Ok(count) => entries += count,
                Err(err) => {
                    report.problems.push(err.to_string());
                    continue;
                }
            }
            let mut iter = file.table.iter(None);
            let first = iter.next().transpose()?.map(|(key, _)| key);
            let last = file
                .table
                .iter(None)
                .last()
                .transpose()?
                .map(|(key, _)| key);
            if first.as_ref() != Some(&file.meta.smallest)
                || last.as_ref() != Some(&file.meta.largest)
            {
                report.problems.push(format!(
                    "{}: key range differs from the manifest's",
                    path.display()
                ));
            }
        }
        report.checked = format!(
            "{} tables ({} entries) in {} levels, manifest {}",
            version.files().count(),
            entries,
            LEVELS,
            versions.manifest.path().display()
        );
        Ok(report)
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
        if self.inner.lifecycle.is_closed() {
            return Ok(());
        }
        self.stop_worker();
        let result = self.flush().and_then(|()| self.inner.record_close());
        self.inner.lifecycle.close();
        result
    }
}

#[cfg(test)]
mod planted_bugs {
    use super::*;
    use leasehold_core::testkit::crash;
    use leasehold_core::vfs::SimVfs;

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
        for bug in [
            PlantedBug::SkipWalSync,
            PlantedBug::SkipDirSync,
            PlantedBug::AckBeforeWal,
        ] {
            let found = crash::search(&open(bug), 2_000, 32);
            assert!(
                found.is_err(),
                "{bug:?} went unnoticed by 2 000 crash cases"
            );
        }
    }

    /// The media-damage family catches a missing lock and a manifest taken
    /// at its word.
    #[test]
    fn the_damage_family_finds_its_planted_bugs() {
        for bug in [PlantedBug::SkipDirLock, PlantedBug::TrustTornManifest] {
            let open = |vfs: SimVfs| {
                LsmEngine::open_planted(&crate::crash_test_config("/lsm"), Arc::new(vfs), bug)
            };
            let found =
                leasehold_core::testkit::damage::search_damage(&open, Path::new("/lsm"), 2_000, 32);
            assert!(
                found.is_err(),
                "{bug:?} went unnoticed by 2 000 damage cases"
            );
        }
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
        let found = leasehold_core::testkit::background::search_background(
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
        let read_faults = crash::read_fault_config();
        let found = crash::search_with(
            &open(PlantedBug::SkipBlockChecksum),
            2_000,
            32,
            Some(&read_faults),
        );
        assert!(found.is_err(), "skipped block checksums went unnoticed");
    }
}
