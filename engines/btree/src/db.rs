//! The engine: commits go through the WAL (group commit) into the in-memory
//! copy-on-write tree; checkpoints write the tree's dirty pages and flip a
//! meta slot; recovery loads the newest valid checkpoint and replays the WAL
//! after it. FORMAT.md states the protocol and why recovery is correct.
//!
//! Lock order: `checkpoint` → `writer` → `root`. Readers take `root` alone,
//! clone the Arc, and never block the writer for longer than that.

use std::collections::BTreeSet;
use std::ops::{Bound, ControlFlow};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};

use leasehold_core::commit::{CommitQueue, Pending};
use leasehold_core::config::BtreeConfig;
use leasehold_core::kv::ScanVisitor;
use leasehold_core::lifecycle::Lifecycle;
use leasehold_core::vfs::{lock_directory, read_confirmed, write_all_at, Vfs, VfsFile};
use leasehold_core::wal::{self, WalWriter};
use leasehold_core::{
    BatchOp, Durability, EngineStats, Health, KeyRange, KvEngine, KvError, KvResult, VerifyReport,
    WriteBatch,
};

use crate::checkpoint::{meta_for, PageWriter};
use crate::load::Loader;
use crate::meta::Meta;
use crate::node::{self, Body, Change, Limits, Node, PageId, Replaced, ValueCell};
use crate::page::{self, PageKind};

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
}

impl PlantedBug {
    pub const ALL: [PlantedBug; 7] = [
        PlantedBug::SkipLogSync,
        PlantedBug::SkipDirSync,
        PlantedBug::AckBeforeWal,
        PlantedBug::SkipDataSync,
        PlantedBug::SkipPageChecksum,
        PlantedBug::SkipDirLock,
        PlantedBug::FallBackBlindly,
    ];
}

const GROUP_BYTES_MAX: u64 = 4 << 20;

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

/// What a background thread runs.
type ThreadBody = fn(&Inner);

fn io_error(context: String) -> impl FnOnce(std::io::Error) -> KvError {
    move |source| KvError::io(context, source)
}

#[derive(Debug, Default)]
struct Counters {
    user_bytes: AtomicU64,
    wal_bytes: AtomicU64,
    page_bytes: AtomicU64,
    checkpoints: AtomicU64,
    checkpoint_micros: AtomicU64,
    live_entries: AtomicI64,
    live_bytes: AtomicI64,
    /// Bytes in the current log, apart from the writer's lock so that
    /// `stats` never waits behind a writer in its fsync.
    active_wal_bytes: AtomicU64,
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
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
    /// Pages free as of the durable meta: safe to overwrite.
    free: BTreeSet<PageId>,
    page_count: u64,
    /// The durable meta's freelist pages (free at the next checkpoint).
    list_pages: Vec<PageId>,
}

struct Inner {
    vfs: Arc<dyn Vfs>,
    dir: PathBuf,
    config: BtreeConfig,
    limits: Limits,
    page_size: usize,
    data: Arc<dyn VfsFile>,
    data_path: PathBuf,
    root: RwLock<Option<Arc<Node>>>,
    writer: Mutex<WriterState>,
    commits: CommitQueue,
    checkpoint: Mutex<CheckpointState>,
    lifecycle: Lifecycle,
    #[cfg(any(test, feature = "planted-bugs"))]
    planted: Mutex<(Option<PlantedBug>, Vec<Vec<u8>>)>,
    stop: Mutex<bool>,
    work_cv: Condvar,
    counters: Counters,
}

/// The copy-on-write B+tree engine.
pub struct BtreeEngine {
    inner: Arc<Inner>,
    /// The checkpointer and the syncer (timed log syncs for Group writes),
    /// when `background_threads`.
    workers: Mutex<Vec<JoinHandle<()>>>,
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
        inline_max: capacity / 4,
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
    let bytes = read_confirmed(vfs, path, |bytes| {
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
            workers: Mutex::new(Vec::new()),
        };
        if replay_had_bytes {
            // Make the replayed logs obsolete now, so a later log is never
            // the first to hold records after a torn one.
            engine.inner.checkpoint()?;
        }
        if config.background_threads {
            let loops: [(&str, ThreadBody); 2] = [
                ("leasehold-btree", Inner::background_loop),
                ("leasehold-btree-sync", Inner::sync_loop),
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
        *self.inner.stop.lock() = true;
        self.inner.work_cv.notify_all();
        for handle in std::mem::take(&mut *self.workers.lock()) {
            let _ = handle.join();
        }
    }
}

impl Drop for BtreeEngine {
    fn drop(&mut self) {
        self.stop_worker();
    }
}

fn recover(
    config: &BtreeConfig,
    vfs: Arc<dyn Vfs>,
    planted: Option<PlantedBug>,
) -> KvResult<(Inner, bool)> {
    let dir = config.data_dir.clone();
    let page_size = config.page_size as usize;
    let limits = limits_for(config);
    vfs.create_dir_all(&dir)
        .map_err(io_error(format!("create {}", dir.display())))?;
    let lock = if planted == Some(PlantedBug::SkipDirLock) {
        None
    } else {
        Some(lock_directory(vfs.as_ref(), &dir)?)
    };
    let data_path = dir.join(DATA_FILE);
    let names = vfs
        .list(&dir)
        .map_err(io_error(format!("list {}", dir.display())))?;
    let mut wal_numbers: Vec<u64> = names.iter().filter_map(|name| wal_number(name)).collect();
    wal_numbers.sort_unstable();
    let has_data_file = names.iter().any(|name| name == DATA_FILE);
    if !has_data_file && !wal_numbers.is_empty() {
        return Err(KvError::corruption(
            &data_path,
            0,
            format!(
                "{DATA_FILE} is missing but {} log(s) are here: refusing to start a new tree                  over them",
                wal_numbers.len()
            ),
        ));
    }
    let mut meta = if has_data_file {
        read_metas(vfs.as_ref(), &data_path, page_size)?
    } else {
        None
    };
    let data: Arc<dyn VfsFile> = if has_data_file {
        vfs.open(&data_path)
            .map_err(io_error(format!("open {}", data_path.display())))?
    } else {
        vfs.create(&data_path)
            .map_err(io_error(format!("create {}", data_path.display())))?
    };
    if meta.is_none() {
        // A tree written with another page size must be refused, not mistaken
        // for a file whose creation never finished.
        for other in (10..=16)
            .map(|shift| 1usize << shift)
            .filter(|&size| size != page_size)
        {
            if let Some(found) = read_metas(vfs.as_ref(), &data_path, other)? {
                return Err(KvError::InvalidArgument(format!(
                    "{} has {}-byte pages; the config says {page_size}",
                    data_path.display(),
                    found.page_size
                )));
            }
        }
        let size = data
            .len()
            .map_err(io_error(format!("stat {}", data_path.display())))?;
        // Only a file whose creation never finished may be started afresh.
        if size > 2 * page_size as u64 || !wal_numbers.is_empty() {
            return Err(KvError::corruption(
                &data_path,
                0,
                "neither meta slot is valid",
            ));
        }
        // The log the fresh meta names exists before the meta does, as for
        // every checkpoint: recovery relies on it (below).
        let fresh = meta_for(1, page_size, None, 2, 1, 0, None, Vec::new());
        let first_log = dir.join(wal_name(fresh.wal_number));
        vfs.create(&first_log)
            .map_err(io_error(format!("create {}", first_log.display())))?;
        vfs.sync_dir(&dir)
            .map_err(io_error(format!("sync {}", dir.display())))?;
        write_meta(data.as_ref(), &data_path, page_size, &fresh)?;
        wal_numbers.push(fresh.wal_number);
        meta = Some(fresh);
    }
    let meta = meta.ok_or_else(|| KvError::corruption(&data_path, 0, "no meta"))?;
    // Pages reach the file (fsynced) before a meta names them, and the file
    // shrinks only after; so a meta naming more pages than the file holds was
    // damaged or crafted — and every later bound (page ids, overflow lengths)
    // rests on `page_count`.
    let file_len = data
        .len()
        .map_err(io_error(format!("stat {}", data_path.display())))?;
    if meta.page_count.saturating_mul(page_size as u64) > file_len {
        return Err(KvError::corruption(
            &data_path,
            file_len,
            format!(
                "the meta names {} pages of {page_size} bytes; the file holds {file_len} bytes",
                meta.page_count
            ),
        ));
    }
    if planted != Some(PlantedBug::FallBackBlindly) {
        check_log_chain(&dir, &data_path, &meta, &wal_numbers)?;
    }
    if meta.page_size as usize != page_size {
        return Err(KvError::InvalidArgument(format!(
            "{} has {}-byte pages; the config says {page_size}",
            data_path.display(),
            meta.page_size
        )));
    }
    let mut loader = Loader {
        file: data.as_ref(),
        path: &data_path,
        page_size,
        meta: &meta,
        check_checksums: planted != Some(PlantedBug::SkipPageChecksum),
        reached: BTreeSet::new(),
    };
    let mut root = match meta.root {
        Some(id) => Some(loader.node(id, 0)?),
        None => None,
    };
    let (free, list_pages) = loader.free_list()?;
    if let Some(node) = &root {
        let mut problems = Vec::new();
        node::check(node, None, None, &limits, &mut problems);
        if let Some(problem) = problems.first() {
            return Err(KvError::corruption(
                &data_path,
                0,
                format!("tree: {problem}"),
            ));
        }
    }
    let (mut entries, mut bytes) = (0i64, 0i64);
    if let Some(node) = &root {
        node::walk_from(node, None, &mut |key, value| {
            entries += 1;
            bytes += (key.len() + value.bytes.len()) as i64;
            true
        });
    }

    // Replay the logs written after the checkpoint.
    let needed: Vec<PathBuf> = wal_numbers
        .iter()
        .filter(|&&number| number >= meta.wal_number)
        .map(|&number| dir.join(wal_name(number)))
        .collect();
    let mut replaced = Replaced::default();
    let mut change = Change::default();
    let mut replay_had_bytes = false;
    for path in &needed {
        replay_had_bytes |= vfs
            .file_size(path)
            .map_err(io_error(format!("stat {}", path.display())))?
            > 0;
    }
    for log in wal::read_logs(vfs.as_ref(), &needed)? {
        for (index, record) in log.records.iter().enumerate() {
            let batch = WriteBatch::decode(record).map_err(|err| {
                KvError::corruption(&log.path, 0, format!("record {index}: {err}"))
            })?;
            for op in batch.ops {
                apply(&mut root, op, &limits, &mut replaced, &mut change);
            }
        }
    }
    let wal_number = wal_numbers
        .last()
        .copied()
        .unwrap_or(0)
        .max(meta.wal_number)
        + 1;
    let wal_path = dir.join(wal_name(wal_number));
    let wal_file = vfs
        .create(&wal_path)
        .map_err(io_error(format!("create {}", wal_path.display())))?;
    vfs.sync_dir(&dir)
        .map_err(io_error(format!("sync {}", dir.display())))?;
    for &number in wal_numbers
        .iter()
        .filter(|&&number| number < meta.wal_number)
    {
        let path = dir.join(wal_name(number));
        vfs.remove(&path)
            .map_err(io_error(format!("remove {}", path.display())))?;
    }
    let counters = Counters::default();
    let lifecycle = Lifecycle::default();
    if let Some(lock) = lock {
        lifecycle.hold(lock);
    }
    counters
        .live_entries
        .store(entries + change.entries, Ordering::Relaxed);
    counters
        .live_bytes
        .store(bytes + change.bytes, Ordering::Relaxed);
    let inner = Inner {
        vfs,
        dir,
        config: config.clone(),
        limits,
        page_size,
        data,
        data_path,
        root: RwLock::new(root),
        writer: Mutex::new(WriterState {
            wal: WalWriter::new(wal_file, wal_path),
            wal_number,
            buffer: Vec::new(),
            buffer_bytes: 0,
            since_checkpoint: 0,
            last_sync: Instant::now(),
            replaced,
        }),
        commits: CommitQueue::new(GROUP_BYTES_MAX),
        checkpoint: Mutex::new(CheckpointState {
            txn: meta.txn,
            free,
            page_count: meta.page_count,
            list_pages,
        }),
        lifecycle,
        #[cfg(any(test, feature = "planted-bugs"))]
        planted: Mutex::new((planted, Vec::new())),
        stop: Mutex::new(false),
        work_cv: Condvar::new(),
        counters,
    };
    Ok((inner, replay_had_bytes))
}

/// The logs recovery replays must be exactly `meta.wal_number`, the next, …,
/// the newest (each checkpoint and each open starts the next number). The
/// first must exist: a log is deleted only after a newer meta is durable, so
/// when the meta chosen names a missing log, the newer meta that made it
/// obsolete is the slot that failed its checks — damage, not a torn write,
/// and falling back would lose what that checkpoint held and replay later
/// logs onto an older tree.
fn check_log_chain(dir: &Path, data_path: &Path, meta: &Meta, wal_numbers: &[u64]) -> KvResult<()> {
    let needed: Vec<u64> = wal_numbers
        .iter()
        .copied()
        .filter(|&number| number >= meta.wal_number)
        .collect();
    if needed.first() != Some(&meta.wal_number) {
        return Err(KvError::corruption(
            data_path,
            (meta.txn % 2) * meta.page_size as u64,
            format!(
                "the newest valid meta (checkpoint {}) needs {}, which is missing: a newer \
                 checkpoint had been durable and its meta slot is damaged",
                meta.txn,
                dir.join(wal_name(meta.wal_number)).display()
            ),
        ));
    }
    if let Some(gap) = needed.windows(2).find(|pair| pair[1] != pair[0] + 1) {
        return Err(KvError::corruption(
            dir.join(wal_name(gap[0] + 1)),
            0,
            format!(
                "logs {} and {} are here but the log between them is missing",
                gap[0], gap[1]
            ),
        ));
    }
    Ok(())
}

/// Applies one op to the tree rooted at `root`, copying the path it changes.
fn apply(
    root: &mut Option<Arc<Node>>,
    op: BatchOp,
    limits: &Limits,
    replaced: &mut Replaced,
    change: &mut Change,
) {
    match op {
        BatchOp::Put { key, value } => {
            let cell = ValueCell::new(value);
            *root = Some(match root.take() {
                None => {
                    change.entries += 1;
                    change.bytes += (key.len() + cell.bytes.len()) as i64;
                    Node::new(Body::Leaf(vec![(key, cell)]))
                }
                Some(current) => node::new_root(
                    node::insert(&current, &key, cell, limits, replaced, change),
                    limits,
                ),
            });
        }
        BatchOp::Delete { key } => {
            if let Some(current) = root.as_ref() {
                if let Some(result) = node::delete(current, &key, replaced, change) {
                    *root = result.map(|node| node::collapse(node, replaced));
                }
            }
        }
    }
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
        return self.planted.lock().0 == Some(bug);
        #[cfg(not(any(test, feature = "planted-bugs")))]
        {
            let _ = bug;
            false
        }
    }

    fn write(&self, batch: WriteBatch, durability: Durability) -> KvResult<()> {
        self.check_usable()?;
        if batch.is_empty() {
            return Ok(());
        }
        let key_max = self.limits.capacity / 8;
        if let Some(op) = batch.ops.iter().find(|op| op.key().len() > key_max) {
            return Err(KvError::InvalidArgument(format!(
                "key of {} bytes; this page size allows at most {key_max}",
                op.key().len()
            )));
        }
        self.commits
            .submit(batch, durability, |group| self.write_group(group))
    }

    /// Writes buffered records to the log.
    fn drain_buffer(&self, writer: &mut WriterState) -> KvResult<()> {
        if writer.buffer.is_empty() {
            return Ok(());
        }
        let records = std::mem::take(&mut writer.buffer);
        writer.buffer_bytes = 0;
        let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
        let written = writer.wal.append(&refs).map_err(|err| {
            self.fail(KvError::io(
                format!("append to {}", writer.wal.path().display()),
                err,
            ))
        })?;
        bump(&self.counters.wal_bytes, written);
        self.counters
            .active_wal_bytes
            .store(writer.wal.len(), Ordering::Relaxed);
        Ok(())
    }

    fn sync_log(&self, writer: &mut WriterState) -> KvResult<()> {
        self.drain_buffer(writer)?;
        if self.planted(PlantedBug::SkipLogSync) {
            writer.last_sync = Instant::now();
            return Ok(());
        }
        writer.wal.sync().map_err(|err| {
            self.fail(KvError::io(
                format!("sync {}", writer.wal.path().display()),
                err,
            ))
        })?;
        writer.last_sync = Instant::now();
        Ok(())
    }

    fn write_group(&self, group: &[Arc<Pending>]) -> KvResult<()> {
        let mut writer = self.writer.lock();
        self.check_usable()?;
        let mut bytes = 0;
        for pending in group {
            #[allow(unused_mut)]
            let mut record = pending.batch.encode();
            #[cfg(any(test, feature = "planted-bugs"))]
            if self.planted(PlantedBug::AckBeforeWal) {
                let deferred = std::mem::replace(&mut self.planted.lock().1, vec![record]);
                record = deferred.into_iter().next().unwrap_or_default();
                if record.is_empty() {
                    continue;
                }
            }
            bytes += record.len() as u64;
            writer.buffer.push(record);
        }
        writer.buffer_bytes += bytes;
        let interval = Duration::from_secs(self.config.wal_sync_interval);
        // Without the background thread nothing would sync a trailing Group
        // write later, so Group is synced at once: its promise (durable
        // within the interval) kept the only way it can be.
        let sync = group
            .iter()
            .any(|pending| pending.durability == Durability::Sync)
            || (group
                .iter()
                .any(|pending| pending.durability == Durability::Group)
                && (writer.last_sync.elapsed() >= interval || !self.config.background_threads));
        let unbuffered = group
            .iter()
            .any(|pending| pending.durability != Durability::Buffered);
        if sync {
            self.sync_log(&mut writer)?;
        } else if unbuffered || writer.buffer_bytes >= self.config.wal_buffer_size {
            self.drain_buffer(&mut writer)?;
        }
        let mut root = self.root.read().clone();
        let mut change = Change::default();
        let writer = &mut *writer;
        for pending in group {
            bump(&self.counters.user_bytes, pending.batch.logical_bytes());
            for op in pending.batch.ops.iter().cloned() {
                apply(
                    &mut root,
                    op,
                    &self.limits,
                    &mut writer.replaced,
                    &mut change,
                );
            }
        }
        *self.root.write() = root;
        self.counters
            .live_entries
            .fetch_add(change.entries, Ordering::Relaxed);
        self.counters
            .live_bytes
            .fetch_add(change.bytes, Ordering::Relaxed);
        writer.since_checkpoint += bytes;
        // Inline mode checkpoints in `BtreeEngine::write`, once this group's
        // writer lock is released (`checkpoint` takes it itself).
        if self.config.background_threads
            && writer.since_checkpoint >= self.config.checkpoint_wal_bytes
        {
            self.work_cv.notify_all();
        }
        Ok(())
    }

    /// Writes a checkpoint: see FORMAT.md, "Checkpoint".
    fn checkpoint(&self) -> KvResult<()> {
        let mut state = self.checkpoint.lock();
        let started = Instant::now();
        let (snapshot, replaced, new_wal) = {
            let mut writer = self.writer.lock();
            self.sync_log(&mut writer)?;
            let number = writer.wal_number + 1;
            let path = self.dir.join(wal_name(number));
            let file = self
                .vfs
                .create(&path)
                .map_err(|err| self.fail(KvError::io(format!("create {}", path.display()), err)))?;
            if !self.planted(PlantedBug::SkipDirSync) {
                self.vfs.sync_dir(&self.dir).map_err(|err| {
                    self.fail(KvError::io(format!("sync {}", self.dir.display()), err))
                })?;
            }
            writer.wal = WalWriter::new(file, path);
            self.counters.active_wal_bytes.store(0, Ordering::Relaxed);
            writer.wal_number = number;
            writer.since_checkpoint = 0;
            let mut replaced = std::mem::take(&mut writer.replaced);
            // Anything pending from an earlier checkpoint is settled by now.
            replaced.settle();
            writer.replaced.checkpoint_running = true;
            (self.root.read().clone(), replaced, number)
        };
        let txn = state.txn + 1;
        let mut free_now = state.free.clone();
        let mut page_count = state.page_count;
        let mut writer = PageWriter {
            file: self.data.as_ref(),
            path: &self.data_path,
            page_size: self.page_size,
            txn,
            free: &mut free_now,
            page_count: &mut page_count,
            compress: self.config.enable_compression,
            limits: self.limits,
            pages_written: 0,
        };
        let root_page = match &snapshot {
            Some(root) => Some(writer.write_node(root).map_err(|err| self.fail(err))?),
            None => None,
        };
        // Pages the last durable tree used and this one does not.
        let mut newly_freed: BTreeSet<PageId> = replaced.pages.iter().copied().collect();
        newly_freed.extend(state.list_pages.iter().copied());
        // Free pages at the end of the file are dropped rather than listed.
        while *writer.page_count > 2 && writer.free.contains(&(*writer.page_count - 1)) {
            let last = *writer.page_count - 1;
            writer.free.remove(&last);
            *writer.page_count = last;
        }
        let mut free_after: BTreeSet<PageId> = writer.free.clone();
        free_after.extend(newly_freed.iter().copied());
        let list = writer
            .write_freelist(free_after.clone())
            .map_err(|err| self.fail(err))?;
        let pages_written = writer.pages_written;
        for page in &list.list_pages {
            free_after.remove(page);
        }
        if !self.planted(PlantedBug::SkipDataSync) {
            self.data.sync().map_err(|err| {
                self.fail(KvError::io(
                    format!("sync {}", self.data_path.display()),
                    err,
                ))
            })?;
        }
        let meta = meta_for(
            txn,
            self.page_size,
            root_page,
            page_count,
            new_wal,
            list.count,
            list.head,
            list.inline,
        );
        write_meta(self.data.as_ref(), &self.data_path, self.page_size, &meta)
            .map_err(|err| self.fail(err))?;
        // Beyond page_count nothing is named by either meta slot.
        let _ = self.data.set_len(page_count * self.page_size as u64);
        state.txn = txn;
        state.free = free_after;
        state.page_count = page_count;
        state.list_pages = list.list_pages;
        // Nodes replaced while this checkpoint ran now have their pages known.
        self.writer.lock().replaced.settle();
        drop(state);
        for name in self
            .vfs
            .list(&self.dir)
            .map_err(io_error(format!("list {}", self.dir.display())))?
        {
            if wal_number(&name).is_some_and(|number| number < new_wal) {
                // Obsolete; recovery deletes it if this fails.
                let _ = self.vfs.remove(&self.dir.join(name));
            }
        }
        bump(
            &self.counters.page_bytes,
            pages_written * self.page_size as u64 + self.page_size as u64,
        );
        bump(&self.counters.checkpoints, 1);
        bump(
            &self.counters.checkpoint_micros,
            started.elapsed().as_micros() as u64,
        );
        Ok(())
    }

    fn checkpoint_due(&self) -> bool {
        self.writer.lock().since_checkpoint >= self.config.checkpoint_wal_bytes
    }

    fn background_loop(&self) {
        let interval = Duration::from_secs(self.config.wal_sync_interval)
            .clamp(Duration::from_millis(10), Duration::from_millis(200));
        loop {
            {
                let mut stop = self.stop.lock();
                if *stop {
                    return;
                }
                self.work_cv.wait_for(&mut stop, interval);
                if *stop {
                    return;
                }
            }
            if self.lifecycle.is_failed() {
                return;
            }
            if self.checkpoint_due() && self.checkpoint().is_err() {
                return;
            }
        }
    }

    /// Group durability: syncs the log once its unsynced records have waited
    /// the interval. Its own thread, so that no checkpoint delays it (audit
    /// G1); it never waits for the writer lock (a holder syncs or will).
    fn sync_loop(&self) {
        let interval = Duration::from_secs(self.config.wal_sync_interval);
        let tick = (interval / 4).clamp(Duration::from_millis(1), Duration::from_millis(50));
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
            if let Some(mut writer) = self.writer.try_lock() {
                let dirty = !writer.buffer.is_empty() || !writer.wal.is_synced();
                if dirty
                    && writer.last_sync.elapsed() >= interval
                    && self.sync_log(&mut writer).is_err()
                {
                    return;
                }
            }
        }
    }

    fn verify(&self) -> KvResult<VerifyReport> {
        let state = self.checkpoint.lock();
        let mut report = VerifyReport::default();
        let Some(meta) = read_metas(self.vfs.as_ref(), &self.data_path, self.page_size)? else {
            report.problems.push(format!(
                "{}: neither meta slot is valid",
                self.data_path.display()
            ));
            return Ok(report);
        };
        let mut loader = Loader {
            file: self.data.as_ref(),
            path: &self.data_path,
            page_size: self.page_size,
            meta: &meta,
            check_checksums: true,
            reached: BTreeSet::new(),
        };
        let root = match meta.root.map(|id| loader.node(id, 0)).transpose() {
            Ok(root) => root,
            Err(err) => {
                report.problems.push(err.to_string());
                return Ok(report);
            }
        };
        let (free, _) = match loader.free_list() {
            Ok(free) => free,
            Err(err) => {
                report.problems.push(err.to_string());
                return Ok(report);
            }
        };
        if let Some(node) = &root {
            node::check(node, None, None, &self.limits, &mut report.problems);
        }
        let reached = &loader.reached;
        if let Some(page) = free.iter().find(|page| reached.contains(page)) {
            report
                .problems
                .push(format!("page {page} is both free and reachable"));
        }
        let leaked: Vec<PageId> = (2..meta.page_count)
            .filter(|page| !reached.contains(page) && !free.contains(page))
            .collect();
        if !leaked.is_empty() {
            report.problems.push(format!(
                "{} pages neither reachable nor free (first {:?})",
                leaked.len(),
                &leaked[..leaked.len().min(8)]
            ));
        }
        if meta.txn != state.txn {
            report.problems.push(format!(
                "durable meta is checkpoint {}, the engine's is {}",
                meta.txn, state.txn
            ));
        }
        if let Some(node) = self.root.read().as_ref() {
            node::check(node, None, None, &self.limits, &mut report.problems);
        }
        report.checked = format!(
            "checkpoint {}: {} reachable pages, {} free, {} in the file",
            meta.txn,
            reached.len(),
            free.len(),
            meta.page_count
        );
        Ok(report)
    }
}

impl KvEngine for BtreeEngine {
    fn name(&self) -> &'static str {
        "btree"
    }

    fn get(&self, key: &[u8]) -> KvResult<Option<Vec<u8>>> {
        self.inner.lifecycle.check_open()?;
        let root = self.inner.root.read().clone();
        Ok(root
            .as_ref()
            .and_then(|root| node::get(root, key))
            .map(|value| value.bytes.clone()))
    }

    fn write(&self, batch: WriteBatch, durability: Durability) -> KvResult<()> {
        self.inner.write(batch, durability)?;
        if !self.inner.config.background_threads && self.inner.checkpoint_due() {
            self.inner.checkpoint()?;
        }
        Ok(())
    }

    fn scan(&self, range: &KeyRange, visit: &mut ScanVisitor<'_>) -> KvResult<()> {
        self.inner.lifecycle.check_open()?;
        let Some(root) = self.inner.root.read().clone() else {
            return Ok(());
        };
        let start = match &range.start {
            Bound::Included(key) | Bound::Excluded(key) => Some(key.as_slice()),
            Bound::Unbounded => None,
        };
        node::walk_from(&root, start, &mut |key, value| {
            if matches!(&range.start, Bound::Excluded(excluded) if excluded.as_slice() == key) {
                return true;
            }
            if !range.contains(key) {
                return false;
            }
            visit(key, &value.bytes) == ControlFlow::Continue(())
        });
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
        let wal_len = inner.counters.active_wal_bytes.load(Ordering::Relaxed);
        EngineStats {
            user_bytes_written: load(&inner.counters.user_bytes),
            wal_bytes_written: load(&inner.counters.wal_bytes),
            flush_bytes_written: load(&inner.counters.page_bytes),
            device_bytes_written: vfs.bytes_written,
            device_bytes_read: vfs.bytes_read,
            fsyncs: vfs.fsyncs,
            dir_syncs: vfs.dir_syncs,
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
        if self.inner.lifecycle.is_closed() {
            return Ok(());
        }
        self.stop_worker();
        // A closed tree holds everything in its pages: its logs are empty, so
        // a damaged or removed log or meta slot shows at the next open
        // instead of passing for a crash's torn tail (FORMAT.md, "Recovery").
        let result = self.flush().and_then(|()| {
            if self.inner.writer.lock().since_checkpoint > 0 {
                self.inner.checkpoint()
            } else {
                Ok(())
            }
        });
        self.inner.lifecycle.close();
        result
    }
}

#[cfg(test)]
mod planted_bugs {
    use super::*;
    use leasehold_core::testkit::crash;
    use leasehold_core::vfs::SimVfs;

    fn open(bug: PlantedBug) -> impl Fn(SimVfs) -> KvResult<BtreeEngine> {
        move |vfs| {
            let config = crate::crash_test_config("/btree");
            BtreeEngine::open_planted(&config, Arc::new(vfs), bug)
        }
    }

    /// The media-damage family catches a missing lock and what recovery
    /// must not take at its word.
    #[test]
    fn the_damage_family_finds_its_planted_bugs() {
        for bug in [PlantedBug::SkipDirLock, PlantedBug::FallBackBlindly] {
            let found = leasehold_core::testkit::damage::search_damage(
                &open(bug),
                std::path::Path::new("/btree"),
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
            PlantedBug::SkipLogSync,
            PlantedBug::SkipDirSync,
            PlantedBug::AckBeforeWal,
            PlantedBug::SkipDataSync,
        ] {
            let found = crash::search(&open(bug), 2_000, 32);
            assert!(
                found.is_err(),
                "{bug:?} went unnoticed by 2 000 crash cases"
            );
        }
    }

    /// Without page checksums, a bit flipped on read is loaded as data.
    #[test]
    fn read_faults_find_the_skipped_page_checksum() {
        let read_faults = crash::read_fault_config();
        let found = crash::search_with(
            &open(PlantedBug::SkipPageChecksum),
            2_000,
            32,
            Some(&read_faults),
        );
        assert!(found.is_err(), "skipped page checksums went unnoticed");
    }
}
