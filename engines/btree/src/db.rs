//! The engine: commits go through the WAL (group commit) into the
//! copy-on-write tree, whose clean pages are read on demand through a
//! bounded cache; checkpoints write the tree's dirty nodes and flip a meta
//! slot; recovery opens the newest valid checkpoint and replays the WAL after
//! it. FORMAT.md states the protocol and why recovery is correct.
//!
//! Lock order: `checkpoint` → `writer` → `root` → `readers`. Readers take
//! `root` alone, clone the root and register the checkpoint it dates from
//! (so no page they may reach is reused), and never block the writer for
//! longer than that.

use std::collections::BTreeSet;
use std::ops::{Bound, ControlFlow};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};

use crate::config::BtreeConfig;
use leasehold_storage::commit::{CommitQueue, Pending};
use leasehold_storage::config::Section;
use leasehold_storage::error::io_error;
use leasehold_storage::kv::bump;
use leasehold_storage::kv::ScanVisitor;
use leasehold_storage::lifecycle::Lifecycle;
use leasehold_storage::log_counters::LogCounters;
#[cfg(any(test, feature = "planted-bugs"))]
use leasehold_storage::planted::PlantedSwitch;
use leasehold_storage::vfs::{lock_directory, read_confirmed_prefix, write_all_at, Vfs, VfsFile};
use leasehold_storage::wal::{self, WalWriter};
use leasehold_storage::workers::Workers;
use leasehold_storage::{
    BatchOp, Durability, EngineStats, Health, KeyRange, KvEngine, KvError, KvResult, VerifyReport,
    WriteBatch,
};

use crate::checkpoint::{meta_for, PageWriter};
use crate::load::Walker;
use crate::meta::Meta;
use crate::node::{
    self, Body, Change, Child, Limits, PageId, PageSource, Replaced, Value, ValueCell,
};
use crate::page::{self, PageKind};
use crate::pages::Pages;
use crate::slice::Slice;

pub const DATA_FILE: &str = "data.db";

/// Bugs planted on purpose to prove the crash campaign finds them. They can
/// be switched on only in this crate's tests or with the `planted-bugs`
/// feature (`BtreeEngine::open_planted`); a normal build cannot reach them.
#[cfg_attr(not(any(test, feature = "planted-bugs")), allow(dead_code))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlantedBug {
    /// A Sync write returns without the log fsync.
    SkipLogSync,
    /// A new log's directory entry is never fsynced.
    SkipDirSync,
    /// A write is acknowledged before its record reaches the log (it is
    /// logged with the next group instead).
    AckBeforeWal,
    /// A checkpoint writes its meta without first fsyncing the pages.
    SkipDataSync,
    /// Pages are loaded without checking their checksum.
    SkipPageChecksum,
    /// Open takes no directory lock: a second open of a live tree goes ahead.
    SkipDirLock,
    /// Recovery falls back to the older meta slot without checking that its
    /// log chain is intact (the D4 mistake).
    FallBackBlindly,
    /// The Group timer never syncs: a Group write waits for a later Sync
    /// write, a checkpoint or close (G1: no bound after a burst).
    NoGroupTimer,
    /// Checkpoints reuse freed pages without asking whether a registered
    /// reader may still reach them.
    IgnoreReaders,
}

impl PlantedBug {
    pub const ALL: [PlantedBug; 9] = [
        PlantedBug::SkipLogSync,
        PlantedBug::SkipDirSync,
        PlantedBug::AckBeforeWal,
        PlantedBug::SkipDataSync,
        PlantedBug::SkipPageChecksum,
        PlantedBug::SkipDirLock,
        PlantedBug::FallBackBlindly,
        PlantedBug::NoGroupTimer,
        PlantedBug::IgnoreReaders,
    ];
}

const GROUP_BYTES_MAX: u64 = 4 << 20;

/// What a file of a tree's directory is, for reports (`None`: not the
/// tree's).
pub fn describe_file(name: &str) -> Option<&'static str> {
    if name == DATA_FILE {
        Some("data file")
    } else if wal_number(name).is_some() {
        Some("log")
    } else {
        None
    }
}

/// Whether a directory holding `names` is a tree's: its data file is there.
pub fn recognises(names: &[String]) -> bool {
    names.iter().any(|name| name == DATA_FILE)
}

pub fn wal_name(number: u64) -> String {
    format!("{number:06}.wal")
}

fn wal_number(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".wal")?;
    digits
        .bytes()
        .all(|byte| byte.is_ascii_digit())
        .then(|| digits.parse().ok())
        .flatten()
}

#[derive(Debug, Default)]
struct Counters {
    user_bytes: AtomicU64,
    /// The log's bytes, apart from the writer's lock so that `stats` never
    /// waits behind a writer in its fsync.
    log: LogCounters,
    page_bytes: AtomicU64,
    checkpoints: AtomicU64,
    checkpoint_micros: AtomicU64,
    live_entries: AtomicI64,
    live_bytes: AtomicI64,
    /// Bytes of dirty nodes in the live tree (exact after each checkpoint,
    /// kept by each write in between).
    dirty_bytes: AtomicI64,
    stall_micros: AtomicU64,
}

struct WriterState {
    wal: WalWriter,
    wal_number: u64,
    /// Encoded `Buffered` records not yet written to the log.
    buffer: Vec<Vec<u8>>,
    buffer_bytes: u64,
    since_checkpoint: u64,
    last_sync: Instant,
    replaced: Replaced,
}

struct CheckpointState {
    txn: u64,
    /// Pages free as of the durable meta and reached by no reader: safe to
    /// overwrite.
    free: BTreeSet<PageId>,
    /// Pages freed by checkpoint `.0`, free on disk but not yet reusable: a
    /// reader whose root dates from before it may still reach them.
    held: Vec<(u64, Vec<PageId>)>,
    page_count: u64,
    /// The durable meta's freelist pages (free at the next checkpoint).
    list_pages: Vec<PageId>,
}

/// The live tree and the checkpoint it dates from: every page it names was
/// written by that checkpoint or an earlier one.
struct Root {
    tree: Option<Child>,
    txn: u64,
}

struct Inner {
    vfs: Arc<dyn Vfs>,
    dir: PathBuf,
    config: BtreeConfig,
    limits: Limits,
    page_size: usize,
    data: Arc<dyn VfsFile>,
    data_path: PathBuf,
    pages: Pages,
    root: RwLock<Root>,
    readers: Readers,
    writer: Mutex<WriterState>,
    commits: CommitQueue,
    checkpoint: Mutex<CheckpointState>,
    lifecycle: Lifecycle,
    #[cfg(any(test, feature = "planted-bugs"))]
    planted: PlantedSwitch<PlantedBug>,
    stop: Mutex<bool>,
    /// Wakes the checkpointer.
    work_cv: Condvar,
    /// Wakes the syncer (at stop only: it ticks on its own).
    sync_cv: Condvar,
    /// Set while the background checkpointer works: writers do not wake it.
    checkpointing: AtomicBool,
    /// Writers held back by the dirty bound wait here for a checkpoint.
    dirty_room: (Mutex<()>, Condvar),
    counters: Counters,
}

/// The copy-on-write B+tree engine.
pub struct BtreeEngine {
    inner: Arc<Inner>,
    /// The checkpointer and the syncer (timed log syncs for Group writes),
    /// when `background_threads`.
    workers: Workers,
}

impl std::fmt::Debug for BtreeEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BtreeEngine")
            .field("dir", &self.inner.dir)
            .finish()
    }
}

fn limits_for(config: &BtreeConfig) -> Limits {
    let capacity = page::capacity(config.page_size as usize);
    Limits {
        max_keys: config.max_keys_per_node as usize,
        capacity,
        inline_max: capacity / 3,
        compress: config.enable_compression,
    }
}

/// Reads both meta slots; the valid one with the higher txn, if any.
fn read_metas(vfs: &dyn Vfs, path: &Path, page_size: usize) -> KvResult<Option<Meta>> {
    let parse = |bytes: &[u8], slot: u64| -> Option<Meta> {
        let start = slot as usize * page_size;
        let page = bytes.get(start..start + page_size)?;
        let opened = page::open(page, slot)
            .ok()
            .filter(|opened| opened.kind == PageKind::Meta)?;
        Meta::decode(opened.payload, opened.txn).ok()
    };
    // The two slots only: the file may be far larger than memory.
    let bytes = read_confirmed_prefix(vfs, path, 2 * page_size as u64, |bytes| {
        parse(bytes, 0).is_none() || parse(bytes, 1).is_none()
    })?;
    Ok([parse(&bytes, 0), parse(&bytes, 1)]
        .into_iter()
        .flatten()
        .max_by_key(|meta| meta.txn))
}

fn write_meta(file: &dyn VfsFile, path: &Path, page_size: usize, meta: &Meta) -> KvResult<()> {
    let slot = meta.txn % 2;
    let bytes = page::seal(page_size, PageKind::Meta, slot, meta.txn, &meta.encode());
    write_all_at(file, &bytes, slot * page_size as u64)
        .map_err(io_error(format!("write meta of {}", path.display())))?;
    file.sync()
        .map_err(io_error(format!("sync {}", path.display())))
}

mod background;
mod checkpointing;
mod readers;
mod recovery;
mod verify;
mod write;
use readers::Readers;
use recovery::recover;

impl BtreeEngine {
    /// Opens (creating if needed) the tree in `config.data_dir` on `vfs`.
    pub fn open(config: &BtreeConfig, vfs: Arc<dyn Vfs>) -> KvResult<BtreeEngine> {
        BtreeEngine::open_with(config, vfs, None)
    }

    /// `open` with `bug` planted from the start (it must be: pages are read
    /// only while opening). Tests and the crash campaign only.
    #[cfg(any(test, feature = "planted-bugs"))]
    pub fn open_planted(
        config: &BtreeConfig,
        vfs: Arc<dyn Vfs>,
        bug: PlantedBug,
    ) -> KvResult<BtreeEngine> {
        BtreeEngine::open_with(config, vfs, Some(bug))
    }

    fn open_with(
        config: &BtreeConfig,
        vfs: Arc<dyn Vfs>,
        planted: Option<PlantedBug>,
    ) -> KvResult<BtreeEngine> {
        config
            .validate("cow_btree")
            .map_err(|err| KvError::InvalidArgument(err.to_string()))?;
        let (inner, replay_had_bytes) = recover(config, vfs, planted)?;
        let engine = BtreeEngine {
            inner: Arc::new(inner),
            workers: Workers::new(),
        };
        if replay_had_bytes {
            // Make the replayed logs obsolete now, so a later log is never
            // the first to hold records after a torn one.
            engine.inner.checkpoint()?;
        }
        if config.background_threads {
            engine.workers.start(
                &engine.inner,
                &[
                    ("leasehold-btree", Inner::background_loop),
                    ("leasehold-btree-sync", Inner::sync_loop),
                ],
            )?;
        }
        Ok(engine)
    }

    /// Writes a checkpoint now.
    pub fn checkpoint(&self) -> KvResult<()> {
        self.inner.check_usable()?;
        self.inner.checkpoint()
    }

    /// Pages the data file uses (including free ones) as of the last checkpoint.
    pub fn page_count(&self) -> u64 {
        self.inner.checkpoint.lock().page_count
    }

    fn stop_worker(&self) {
        self.workers.stop(
            &self.inner.stop,
            &[&self.inner.work_cv, &self.inner.sync_cv],
        );
    }
}

impl Drop for BtreeEngine {
    fn drop(&mut self) {
        self.stop_worker();
    }
}

/// Applies one op to the tree rooted at `root`, copying the path it changes.
fn apply(
    root: &mut Option<Child>,
    op: BatchOp,
    limits: &Limits,
    replaced: &mut Replaced,
    change: &mut Change,
    pages: &dyn PageSource,
) -> KvResult<()> {
    match op {
        BatchOp::Put { key, value } => {
            let cell = ValueCell::stored(value, limits.compress);
            *root = Some(match root.take() {
                None => {
                    change.entries += 1;
                    change.bytes += key.len() as i64 + cell.raw_len() as i64;
                    Child::Node(
                        change.made(Body::Leaf(vec![(Slice::copied(&key), Value::Cell(cell))])),
                    )
                }
                Some(current) => {
                    let node = current.resolve(pages)?;
                    let parts = node::insert(&node, &key, cell, limits, replaced, change, pages)?;
                    node::new_root(parts, limits, change)
                }
            });
        }
        BatchOp::Delete { key } => {
            if let Some(current) = root.as_ref() {
                let node = current.resolve(pages)?;
                if let Some(result) = node::delete(&node, &key, limits, replaced, change, pages)? {
                    *root = result.map(|child| node::collapse(child, replaced, change));
                }
            }
        }
    }
    Ok(())
}

impl Inner {
    fn check_usable(&self) -> KvResult<()> {
        self.lifecycle.check_writable()
    }

    fn fail(&self, err: KvError) -> KvError {
        self.lifecycle.fail(err)
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
}

impl KvEngine for BtreeEngine {
    fn name(&self) -> &'static str {
        "btree"
    }

    fn get(&self, key: &[u8]) -> KvResult<Option<Vec<u8>>> {
        self.inner.lifecycle.check_open()?;
        let (root, pin) = self.inner.snapshot();
        match &root {
            Some(root) => node::get(root, key, &self.inner.pages.at(pin.txn())),
            None => Ok(None),
        }
    }

    fn write(&self, batch: WriteBatch, durability: Durability) -> KvResult<()> {
        self.inner.write(batch, durability)?;
        if !self.inner.config.background_threads && self.inner.checkpoint_due() {
            // The write is applied and visible: a failed checkpoint fails the
            // engine for what comes next, not this acknowledged write (X3).
            if let Err(err) = self.inner.checkpoint() {
                self.inner.fail(err);
            }
        }
        Ok(())
    }

    fn scan(&self, range: &KeyRange, visit: &mut ScanVisitor<'_>) -> KvResult<()> {
        self.inner.lifecycle.check_open()?;
        let (root, pin) = self.inner.snapshot();
        let Some(root) = root else {
            return Ok(());
        };
        let start = match &range.start {
            Bound::Included(key) | Bound::Excluded(key) => Some(key.as_slice()),
            Bound::Unbounded => None,
        };
        let pages = self.inner.pages.at(pin.txn());
        node::walk_from(&root, start, &pages, &mut |key, value| {
            if matches!(&range.start, Bound::Excluded(excluded) if excluded.as_slice() == key) {
                return true;
            }
            if !range.contains(key) {
                return false;
            }
            visit(key, value) == ControlFlow::Continue(())
        })?;
        Ok(())
    }

    fn flush(&self) -> KvResult<()> {
        self.inner.check_usable()?;
        let mut writer = self.inner.writer.lock();
        self.inner.sync_log(&mut writer)
    }

    fn stats(&self) -> EngineStats {
        let inner = &self.inner;
        let vfs = inner.vfs.stats();
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let (page_count, free_pages) = {
            let state = inner.checkpoint.lock();
            (state.page_count, state.free.len() as u64)
        };
        let wal_len = inner.counters.log.current();
        EngineStats {
            user_bytes_written: load(&inner.counters.user_bytes),
            wal_bytes_written: inner.counters.log.appended(),
            flush_bytes_written: load(&inner.counters.page_bytes),
            device_bytes_written: vfs.bytes_written,
            device_bytes_read: vfs.bytes_read,
            fsyncs: vfs.fsyncs,
            dir_syncs: vfs.dir_syncs,
            stall_micros: load(&inner.counters.stall_micros),
            block_cache_hits: load(&inner.pages.cache.counters.hits),
            block_cache_misses: load(&inner.pages.cache.counters.misses),
            checkpoints: load(&inner.counters.checkpoints),
            checkpoint_micros: load(&inner.counters.checkpoint_micros),
            free_pages,
            disk_bytes: page_count * inner.page_size as u64 + wal_len,
            live_entries: inner.counters.live_entries.load(Ordering::Relaxed).max(0) as u64,
            live_bytes: inner.counters.live_bytes.load(Ordering::Relaxed).max(0) as u64,
            ..EngineStats::default()
        }
    }

    fn health(&self) -> Health {
        self.inner.lifecycle.health().unwrap_or(Health::Healthy)
    }

    fn verify(&self) -> KvResult<VerifyReport> {
        self.inner.verify()
    }

    fn close(&self) -> KvResult<()> {
        let inner = &self.inner;
        // A closed tree holds everything in its pages: its logs are empty,
        // so a damaged or removed log or meta slot shows at the next open
        // instead of passing for a crash's torn tail (FORMAT.md, "Recovery").
        inner.lifecycle.close_with(
            || self.stop_worker(),
            || {
                let mut writer = inner.writer.lock();
                inner.sync_log(&mut writer)?;
                let due = writer.since_checkpoint > 0;
                drop(writer);
                if due {
                    inner.checkpoint()
                } else {
                    Ok(())
                }
            },
        )
    }
}

#[cfg(test)]
mod planted_bugs;
