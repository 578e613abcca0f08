//! `leasehold-redb`: the [`KvEngine`] over redb 4 — the copy-on-write B-tree
//! Rust users pick — so the hand-written B+tree is measured beside it.
//!
//! Layout: one table (`leasehold`, `&[u8] → &[u8]`) in one file,
//! `<data_dir>/data.redb`. A batch is one write transaction. Scans read from
//! one read transaction (a consistent snapshot, as redb's MVCC gives).
//!
//! Durability, mapped so redb never promises more or less than it does:
//! - `Sync`: `Durability::Immediate` — the commit is fsynced before it
//!   returns. redb has one writer at a time and no group commit: concurrent
//!   Sync writers each pay their own commit.
//! - `Buffered`: `Durability::None` — committed and visible, but durable only
//!   once a later Immediate commit (or `flush`) follows. Unlike the LSM's and
//!   RocksDB's buffered writes it does not survive a process crash (like the
//!   B+tree's buffer).
//! - `Group`: refused (`Unsupported`): redb has no time-bounded sync.
//!
//! Its file I/O goes through a counting backend (`backend`), so write, read
//! and fsync counts are measured like every engine's. redb locks its file: a
//! second open of a live directory is `Locked`. redb does its own I/O: it
//! cannot sit on Leasehold's `Vfs`; its crash test kills a writer process
//! (`tests/kill.rs`), as RocksDB's does.

mod backend;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;
use redb::{Database, ReadableDatabase, TableDefinition};

use leasehold_storage::kv::{
    BatchOp, EngineStats, Health, KeyRange, ScanVisitor, VerifyReport, WriteBatch,
};
use leasehold_storage::lifecycle::Lifecycle;
use leasehold_storage::{Durability, KvEngine, KvError, KvResult};

use backend::{Counters, CountingBackend};

/// The redb release this crate builds against; every result names it.
pub const REDB_VERSION: &str = "redb 4.6.0";

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("leasehold");
/// The database file in the data directory.
pub const DATA_FILE: &str = "data.redb";

/// How to open redb.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedbConfig {
    pub data_dir: PathBuf,
    /// redb's page cache (its default is 1 GiB; 64 MiB here, the LSM's block
    /// cache, so the engines compare at the same memory).
    pub cache_size_bytes: u64,
}

impl Default for RedbConfig {
    fn default() -> Self {
        RedbConfig {
            data_dir: PathBuf::from("./leasehold_redb"),
            cache_size_bytes: 64 << 20,
        }
    }
}

pub struct RedbEngine {
    /// `None` once closed.
    db: RwLock<Option<Database>>,
    path: PathBuf,
    dir: PathBuf,
    lifecycle: Lifecycle,
    counters: Arc<Counters>,
    user_bytes_written: AtomicU64,
}

/// redb's error as Leasehold's: a held file lock is `Locked`, corruption is
/// `Corruption`, everything else an I/O error naming what was attempted.
fn error(path: &Path, context: &str, err: impl Into<redb::Error>) -> KvError {
    match err.into() {
        redb::Error::DatabaseAlreadyOpen => KvError::Locked {
            dir: path.parent().unwrap_or(path).to_path_buf(),
            holder_pid: None,
        },
        redb::Error::Corrupted(reason) => KvError::Corruption {
            file: path.to_path_buf(),
            offset: 0,
            reason,
        },
        redb::Error::Io(source) => KvError::Io {
            context: format!("redb {context} on {}", path.display()),
            source,
        },
        other => KvError::Io {
            context: format!("redb {context} on {}", path.display()),
            source: std::io::Error::other(other.to_string()),
        },
    }
}

impl RedbEngine {
    pub fn open(config: &RedbConfig) -> KvResult<RedbEngine> {
        let dir = config.data_dir.clone();
        std::fs::create_dir_all(&dir)
            .map_err(|err| KvError::io(format!("create {}", dir.display()), err))?;
        let path = dir.join(DATA_FILE);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|err| KvError::io(format!("open {}", path.display()), err))?;
        let counters = Arc::new(Counters::default());
        let file_backend =
            redb::backends::FileBackend::new(file).map_err(|err| error(&path, "open", err))?;
        let db = Database::builder()
            .set_cache_size(config.cache_size_bytes as usize)
            .create_with_backend(CountingBackend::new(file_backend, Arc::clone(&counters)))
            .map_err(|err| error(&path, "open", err))?;
        // Make the table exist, durably, so readers never meet its absence.
        let txn = db.begin_write().map_err(|err| error(&path, "begin", err))?;
        txn.open_table(TABLE)
            .map_err(|err| error(&path, "open table", err))?;
        txn.commit().map_err(|err| error(&path, "commit", err))?;
        Ok(RedbEngine {
            db: RwLock::new(Some(db)),
            path,
            dir,
            lifecycle: Lifecycle::default(),
            counters,
            user_bytes_written: AtomicU64::new(0),
        })
    }

    fn with_db<T>(&self, body: impl FnOnce(&Database) -> KvResult<T>) -> KvResult<T> {
        let guard = self.db.read();
        let db = guard.as_ref().ok_or(KvError::Closed)?;
        body(db)
    }

    /// Commits `batch` in one write transaction at `durability`.
    fn commit(&self, batch: &WriteBatch, durability: redb::Durability) -> KvResult<()> {
        let path = &self.path;
        self.with_db(|db| {
            let mut txn = db.begin_write().map_err(|err| error(path, "begin", err))?;
            txn.set_durability(durability)
                .map_err(|err| error(path, "set durability", redb::Error::from(err)))?;
            {
                let mut table = txn
                    .open_table(TABLE)
                    .map_err(|err| error(path, "open table", err))?;
                for op in &batch.ops {
                    match op {
                        BatchOp::Put { key, value } => table
                            .insert(key.as_slice(), &value[..])
                            .map(|_| ())
                            .map_err(|err| error(path, "insert", err))?,
                        BatchOp::Delete { key } => table
                            .remove(key.as_slice())
                            .map(|_| ())
                            .map_err(|err| error(path, "remove", err))?,
                    }
                }
            }
            txn.commit()
                .map_err(|err| self.lifecycle.fail(error(path, "commit", err)))
        })
    }
}

impl KvEngine for RedbEngine {
    fn name(&self) -> &'static str {
        "redb"
    }

    fn get(&self, key: &[u8]) -> KvResult<Option<Vec<u8>>> {
        self.lifecycle.check_open()?;
        let path = &self.path;
        self.with_db(|db| {
            let txn = db
                .begin_read()
                .map_err(|err| error(path, "begin read", err))?;
            let table = txn
                .open_table(TABLE)
                .map_err(|err| error(path, "open table", err))?;
            let value = table.get(key).map_err(|err| error(path, "get", err))?;
            Ok(value.map(|guard| guard.value().to_vec()))
        })
    }

    fn write(&self, batch: WriteBatch, durability: Durability) -> KvResult<()> {
        self.lifecycle.check_writable()?;
        batch.check_size()?;
        let durability = match durability {
            Durability::Sync => redb::Durability::Immediate,
            Durability::Buffered => redb::Durability::None,
            Durability::Group => {
                return Err(KvError::Unsupported(
                    "redb has no time-bounded group sync; use sync or buffered".to_owned(),
                ))
            }
        };
        if batch.is_empty() {
            return Ok(());
        }
        self.commit(&batch, durability)?;
        self.user_bytes_written
            .fetch_add(batch.logical_bytes(), Ordering::Relaxed);
        Ok(())
    }

    fn scan(&self, range: &KeyRange, visit: &mut ScanVisitor<'_>) -> KvResult<()> {
        self.lifecycle.check_open()?;
        let path = &self.path;
        self.with_db(|db| {
            let txn = db
                .begin_read()
                .map_err(|err| error(path, "begin read", err))?;
            let table = txn
                .open_table(TABLE)
                .map_err(|err| error(path, "open table", err))?;
            let bounds = range.as_slices();
            let entries = table
                .range::<&[u8]>(bounds)
                .map_err(|err| error(path, "range", err))?;
            for entry in entries {
                let (key, value) = entry.map_err(|err| error(path, "scan", err))?;
                if visit(key.value(), value.value()).is_break() {
                    break;
                }
            }
            Ok(())
        })
    }

    fn flush(&self) -> KvResult<()> {
        self.lifecycle.check_writable()?;
        // An empty Immediate commit makes every earlier None commit durable.
        self.commit(&WriteBatch::new(), redb::Durability::Immediate)
    }

    fn stats(&self) -> EngineStats {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let (live_entries, live_bytes) = self
            .with_db(|db| {
                let txn = db
                    .begin_read()
                    .map_err(|err| error(&self.path, "begin read", err))?;
                let stats = txn
                    .open_table(TABLE)
                    .map_err(|err| error(&self.path, "open table", err))
                    .and_then(|table| {
                        use redb::ReadableTableMetadata;
                        table
                            .stats()
                            .map_err(|err| error(&self.path, "stats", err))
                            .map(|stats| (table.len().unwrap_or(0), stats.stored_bytes()))
                    })?;
                Ok(stats)
            })
            .unwrap_or((0, 0));
        let written = load(&self.counters.bytes_written);
        EngineStats {
            user_bytes_written: load(&self.user_bytes_written),
            device_bytes_written: written,
            device_bytes_read: load(&self.counters.bytes_read),
            fsyncs: load(&self.counters.syncs),
            disk_bytes: leasehold_storage::vfs::dir_bytes(&self.dir),
            live_entries,
            live_bytes,
            ..EngineStats::default()
        }
    }

    fn health(&self) -> Health {
        self.lifecycle.health().unwrap_or(Health::Healthy)
    }

    fn verify(&self) -> KvResult<VerifyReport> {
        self.lifecycle.check_open()?;
        Ok(leasehold_storage::kv::verify_by_scan(
            self,
            &self.path.display().to_string(),
        ))
    }

    fn close(&self) -> KvResult<()> {
        if !self.lifecycle.begin_close() {
            return Ok(());
        }
        let result = if self.lifecycle.is_failed() {
            Ok(())
        } else {
            self.commit(&WriteBatch::new(), redb::Durability::Immediate)
        };
        self.lifecycle.close();
        self.db.write().take();
        result
    }
}
