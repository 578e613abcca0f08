//! `leasehold-fjall`: the [`KvEngine`] over fjall 3 — the LSM-tree Rust
//! users pick — so the hand-written LSM is measured beside it.
//!
//! Layout: one keyspace (`leasehold`) in a fjall database in `data_dir`. A
//! batch is one fjall write batch (atomic across the keyspace). Scans read
//! from one fjall snapshot.
//!
//! Durability, mapped so fjall never promises more or less than it does:
//! - `Sync`: the batch commits with `PersistMode::SyncAll` — the journal is
//!   fsynced before it returns.
//! - `Buffered`: `PersistMode::Buffer` — the journal is handed to the OS
//!   (it survives a process crash, not a power loss), as the LSM's and
//!   RocksDB's buffered writes.
//! - `Group`: refused (`Unsupported`): fjall has no time-bounded sync.
//!
//! fjall does its own file I/O and keeps no byte counters: its stats say so
//! (`io_uncounted`), and the harness then reports its amplification from
//! `/proc/self/io` only. fjall locks its directory: a second open is
//! `Locked`. Its crash test kills a writer process (`tests/kill.rs`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode, Readable};
use parking_lot::RwLock;

use leasehold_storage::kv::{
    BatchOp, EngineStats, Health, KeyRange, ScanVisitor, VerifyReport, WriteBatch,
};
use leasehold_storage::lifecycle::Lifecycle;
use leasehold_storage::{Durability, KvEngine, KvError, KvResult};

/// The fjall release this crate builds against; every result names it.
pub const FJALL_VERSION: &str = "fjall 3.1.13 (lsm-tree 3.1.10)";

const KEYSPACE: &str = "leasehold";

/// How to open fjall.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FjallConfig {
    pub data_dir: PathBuf,
    /// fjall's block cache (64 MiB, the LSM's, so the engines compare at the
    /// same memory).
    pub cache_size_bytes: u64,
    /// The keyspace's memtable (fjall's default, 64 MiB).
    pub memtable_bytes: u64,
}

impl Default for FjallConfig {
    fn default() -> Self {
        FjallConfig {
            data_dir: PathBuf::from("./leasehold_fjall"),
            cache_size_bytes: 64 << 20,
            memtable_bytes: 64 << 20,
        }
    }
}

struct Open {
    db: Database,
    keyspace: Keyspace,
}

pub struct FjallEngine {
    /// `None` once closed.
    open: RwLock<Option<Open>>,
    dir: PathBuf,
    lifecycle: Lifecycle,
    user_bytes_written: AtomicU64,
}

/// fjall's error as Leasehold's: a held lock is `Locked`, damage found in its
/// files `Corruption`, everything else an I/O error naming what was attempted.
fn error(dir: &std::path::Path, context: &str, err: fjall::Error) -> KvError {
    match err {
        fjall::Error::Locked => KvError::Locked {
            dir: dir.to_path_buf(),
            holder_pid: None,
        },
        fjall::Error::Io(source) => KvError::Io {
            context: format!("fjall {context} in {}", dir.display()),
            source,
        },
        fjall::Error::JournalRecovery(_)
        | fjall::Error::InvalidTrailer
        | fjall::Error::InvalidTag(_)
        | fjall::Error::Decompress(_)
        | fjall::Error::InvalidVersion(_) => KvError::Corruption {
            file: dir.to_path_buf(),
            offset: 0,
            reason: err.to_string(),
        },
        other => KvError::Io {
            context: format!("fjall {context} in {}", dir.display()),
            source: std::io::Error::other(other.to_string()),
        },
    }
}

impl FjallEngine {
    pub fn open(config: &FjallConfig) -> KvResult<FjallEngine> {
        let dir = config.data_dir.clone();
        let db = Database::builder(&dir)
            .cache_size(config.cache_size_bytes)
            .open()
            .map_err(|err| error(&dir, "open", err))?;
        let keyspace = db
            .keyspace(KEYSPACE, || {
                KeyspaceCreateOptions::default().max_memtable_size(config.memtable_bytes)
            })
            .map_err(|err| error(&dir, "open keyspace", err))?;
        Ok(FjallEngine {
            open: RwLock::new(Some(Open { db, keyspace })),
            dir,
            lifecycle: Lifecycle::default(),
            user_bytes_written: AtomicU64::new(0),
        })
    }

    fn with_open<T>(&self, body: impl FnOnce(&Open) -> KvResult<T>) -> KvResult<T> {
        let guard = self.open.read();
        let open = guard.as_ref().ok_or(KvError::Closed)?;
        body(open)
    }

    fn persist(&self, mode: PersistMode) -> KvResult<()> {
        self.with_open(|open| {
            open.db
                .persist(mode)
                .map_err(|err| self.lifecycle.fail(error(&self.dir, "persist", err)))
        })
    }
}

impl KvEngine for FjallEngine {
    fn name(&self) -> &'static str {
        "fjall"
    }

    fn get(&self, key: &[u8]) -> KvResult<Option<Vec<u8>>> {
        self.lifecycle.check_open()?;
        self.with_open(|open| {
            open.keyspace
                .get(key)
                .map(|value| value.map(|value| value.to_vec()))
                .map_err(|err| error(&self.dir, "get", err))
        })
    }

    fn write(&self, batch: WriteBatch, durability: Durability) -> KvResult<()> {
        self.lifecycle.check_writable()?;
        batch.check_size()?;
        let mode = match durability {
            Durability::Sync => PersistMode::SyncAll,
            Durability::Buffered => PersistMode::Buffer,
            Durability::Group => {
                return Err(KvError::Unsupported(
                    "fjall has no time-bounded group sync; use sync or buffered".to_owned(),
                ))
            }
        };
        if batch.is_empty() {
            return Ok(());
        }
        self.with_open(|open| {
            let mut fjall_batch = open.db.batch().durability(Some(mode));
            for op in &batch.ops {
                match op {
                    BatchOp::Put { key, value } => {
                        fjall_batch.insert(&open.keyspace, key.as_slice(), &value[..])
                    }
                    BatchOp::Delete { key } => fjall_batch.remove(&open.keyspace, key.as_slice()),
                }
            }
            fjall_batch
                .commit()
                .map_err(|err| self.lifecycle.fail(error(&self.dir, "commit", err)))
        })?;
        self.user_bytes_written
            .fetch_add(batch.logical_bytes(), Ordering::Relaxed);
        Ok(())
    }

    fn scan(&self, range: &KeyRange, visit: &mut ScanVisitor<'_>) -> KvResult<()> {
        self.lifecycle.check_open()?;
        self.with_open(|open| {
            let snapshot = open.db.snapshot();
            let bounds = range.as_slices();
            for guard in snapshot.range::<&[u8], _>(&open.keyspace, bounds) {
                let (key, value) = guard
                    .into_inner()
                    .map_err(|err| error(&self.dir, "scan", err))?;
                if visit(&key, &value).is_break() {
                    break;
                }
            }
            Ok(())
        })
    }

    fn flush(&self) -> KvResult<()> {
        self.lifecycle.check_writable()?;
        self.persist(PersistMode::SyncAll)
    }

    fn stats(&self) -> EngineStats {
        let (live_entries, disk_bytes) = self
            .with_open(|open| {
                Ok((
                    open.keyspace.approximate_len() as u64,
                    open.db.disk_space().unwrap_or(0),
                ))
            })
            .unwrap_or((0, 0));
        EngineStats {
            user_bytes_written: self.user_bytes_written.load(Ordering::Relaxed),
            disk_bytes: disk_bytes.max(leasehold_storage::vfs::dir_bytes(&self.dir)),
            live_entries,
            io_uncounted: true,
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
            &self.dir.display().to_string(),
        ))
    }

    fn close(&self) -> KvResult<()> {
        if !self.lifecycle.begin_close() {
            return Ok(());
        }
        let result = if self.lifecycle.is_failed() {
            Ok(())
        } else {
            self.persist(PersistMode::SyncAll)
        };
        self.lifecycle.close();
        self.open.write().take();
        result
    }
}
