//! The engine registry: one row per engine the harness runs — its name, what
//! exactly it is, what its data is like, how to open it, how to tell its
//! directory, how to show its files and how the crash campaign runs it.
//! `EngineKind` is a handle on a row; `engines::open` calls its opener,
//! `operator::detect` asks every row, `crash-fuzz` takes the row's `crash`.
//! Adding an engine is its crate and its row here.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use leasehold_config::{BtreeConfig, LsmConfig, MemoryConfig, RocksDbConfig};
use leasehold_core::expiry::ExpiryClock;
use leasehold_core::vfs::Vfs;
use leasehold_core::{Durability, KvStore};

use super::crash::{self, CrashRow};
use super::NullStore;
use super::{memory_backup_path, postgres_for_run, s3_for_run, BenchStore, EngineSettings};
use crate::{Error, Result};

/// What an opener is given.
pub struct Opening<'a> {
    pub durability: Durability,
    pub settings: &'a EngineSettings,
    /// The engine's files (a run's fresh directory, or the one a config
    /// names); for a store on a server, where the run's name is kept.
    pub dir: &'a Path,
    /// Actors the run may touch (the volatile memory engine's capacity).
    pub max_actors: u32,
    /// The disk, for the engines that do their I/O through a `Vfs`.
    pub vfs: Arc<dyn Vfs>,
    /// The memory engine with its backup file in `dir`, instead of volatile.
    pub memory_backup: bool,
}

type Opened = Result<Box<dyn BenchStore>>;

/// An engine's dump of its directory.
pub type DumpFiles = fn(
    &dyn Vfs,
    &Path,
    Option<&str>,
    usize,
    leasehold_core::dump::KeyNamer<'_>,
) -> leasehold_core::KvResult<String>;

/// What `leasehold dump` does with an engine's files.
pub enum Dump {
    /// Its crate renders them: `(vfs, dir, only this file, entries shown,
    /// how a key is named)`.
    Files(DumpFiles),
    /// The memory engine's backup file (its path comes from the settings).
    MemoryBackup,
    /// Not here, and why (another tool's files, no files at all).
    Refused(&'static str),
}

/// One engine.
pub struct Row {
    /// Its name on the command line, in configs' reports and in results.
    pub name: &'static str,
    /// One line for `--help`.
    pub about: &'static str,
    /// Run by `compare` and `bench` when no engine is named.
    pub compared_by_default: bool,
    /// What exactly ran, for every result.
    pub version: &'static str,
    /// Its data is in files of the run's directory (not on a server).
    pub local_files: bool,
    /// Acknowledged writes can outlive the process.
    pub durable: bool,
    /// It offers a durability weaker than sync (object storage does not:
    /// a PUT is durable when answered).
    pub buffered: bool,
    /// A `KvEngine` is under its Store (the benchmarks' kv level).
    pub kv_engine: bool,
    /// It takes Leasehold's directory lock (`vfs::lock_directory`) while
    /// open: the health check asks the lock whether the store is live.
    pub locks_dir: bool,
    /// Whether a directory holding these file names is one of its stores.
    pub recognises: Option<fn(&[String]) -> bool>,
    pub open: fn(&Opening<'_>) -> Opened,
    /// How the operator commands open it without writing, for an engine
    /// that cannot sit on the read-only overlay `Vfs` (it does its own
    /// I/O); `None`: `open` on the overlay.
    pub open_read_only: Option<fn(&Opening<'_>) -> Opened>,
    /// Its directory is another engine's (that engine's name): detected as
    /// that one, and accepted for this one.
    pub files_of: Option<&'static str>,
    pub dump: Dump,
    /// How `crash-fuzz` runs it on the simulated disk; `None` for an
    /// engine that does its own I/O or keeps no files.
    pub crash: Option<&'static CrashRow>,
}

const HAND_WRITTEN: &str = "hand-written, this revision";

/// RocksDB's files, with or without blob files.
const ROCKSDB_DUMP: Dump =
    Dump::Refused("RocksDB's files have RocksDB's own tools: sst_dump and ldb (verify works here)");

/// Every engine, in the order results list them. Adding an engine is its
/// crate and one row here.
pub const ROWS: [Row; 10] = [
    Row {
        name: "memory",
        about: "the hand-written in-memory engine (volatile in comparisons: the ceiling, not a peer)",
        compared_by_default: true,
        version: HAND_WRITTEN,
        local_files: true,
        // Volatile in comparisons: the ceiling, not a peer.
        durable: false,
        buffered: true,
        kv_engine: true,
        locks_dir: true,
        recognises: Some(recognises_memory_backup),
        open: open_memory,
        open_read_only: None,
        files_of: None,
        dump: Dump::MemoryBackup,
        crash: Some(&crash::MEMORY),
    },
    Row {
        name: "lsm",
        about: "the hand-written LSM-tree",
        compared_by_default: true,
        version: HAND_WRITTEN,
        local_files: true,
        durable: true,
        buffered: true,
        kv_engine: true,
        locks_dir: true,
        recognises: Some(leasehold_lsm::db::recognises),
        open: open_lsm,
        open_read_only: None,
        files_of: None,
        dump: Dump::Files(leasehold_lsm::dump::dump),
        crash: Some(&crash::LSM),
    },
    Row {
        name: "btree",
        about: "the hand-written copy-on-write B+tree with a WAL",
        compared_by_default: true,
        version: HAND_WRITTEN,
        local_files: true,
        durable: true,
        buffered: true,
        kv_engine: true,
        locks_dir: true,
        recognises: Some(leasehold_btree::db::recognises),
        open: open_btree,
        open_read_only: None,
        files_of: None,
        dump: Dump::Files(leasehold_btree::dump::dump),
        crash: Some(&crash::BTREE),
    },
    Row {
        name: "rocksdb",
        about: "RocksDB through the rocksdb crate: the yardstick",
        compared_by_default: true,
        version: leasehold_rocksdb::ROCKSDB_VERSION,
        local_files: true,
        durable: true,
        buffered: true,
        kv_engine: true,
        locks_dir: false,
        recognises: Some(leasehold_rocksdb::recognises),
        open: open_rocksdb,
        open_read_only: Some(open_rocksdb_read_only),
        files_of: None,
        dump: ROCKSDB_DUMP,
        crash: None,
    },
    Row {
        name: "rocksdb-blob",
        about: "RocksDB with its integrated BlobDB (values of at least min_blob_size in blob files): the yardstick for large snapshots",
        compared_by_default: true,
        version: leasehold_rocksdb::ROCKSDB_VERSION,
        local_files: true,
        durable: true,
        buffered: true,
        kv_engine: true,
        // The same files as plain RocksDB's: detected as `rocksdb`.
        locks_dir: false,
        recognises: None,
        open: open_rocksdb_blob,
        open_read_only: Some(open_rocksdb_read_only),
        files_of: Some("rocksdb"),
        dump: ROCKSDB_DUMP,
        crash: None,
    },
    Row {
        name: "redb",
        about: "redb, the copy-on-write B-tree Rust users pick: the B+tree's peer",
        compared_by_default: true,
        version: leasehold_redb::REDB_VERSION,
        local_files: true,
        durable: true,
        buffered: true,
        kv_engine: true,
        locks_dir: false,
        recognises: None,
        open: open_redb,
        open_read_only: None,
        files_of: None,
        dump: Dump::Refused("a peer for comparisons: the operator commands do not open its files"),
        crash: None,
    },
    Row {
        name: "fjall",
        about: "fjall, the LSM-tree Rust users pick: the LSM's peer",
        compared_by_default: true,
        version: leasehold_fjall::FJALL_VERSION,
        local_files: true,
        durable: true,
        buffered: true,
        kv_engine: true,
        locks_dir: false,
        recognises: None,
        open: open_fjall,
        open_read_only: None,
        files_of: None,
        dump: Dump::Refused("a peer for comparisons: the operator commands do not open its files"),
        crash: None,
    },
    Row {
        name: "s3",
        about: "object storage over the S3 protocol, from a [persistence.s3] config or the LEASEHOLD_S3_* variables scripts/s3-server prints (needs a server)",
        compared_by_default: false,
        version: "object_store 0.14 over S3, this revision",
        local_files: false,
        durable: true,
        buffered: false,
        kv_engine: false,
        locks_dir: false,
        recognises: None,
        open: open_s3,
        open_read_only: None,
        files_of: None,
        dump: Dump::Refused("it keeps objects, not files in a directory"),
        crash: None,
    },
    Row {
        name: "postgres",
        about: "PostgreSQL, from a [persistence.postgres] config or the LEASEHOLD_PG_* variables scripts/postgres-server prints; a schema per run (needs a server)",
        compared_by_default: false,
        version: "tokio-postgres 0.7 to the server named, this revision",
        local_files: false,
        durable: true,
        buffered: true,
        kv_engine: false,
        locks_dir: false,
        recognises: None,
        open: open_postgres,
        open_read_only: None,
        files_of: None,
        dump: Dump::Refused(
            "PostgreSQL's rows have PostgreSQL's own tools: psql and pg_dump (verify works here)",
        ),
        crash: None,
    },
    Row {
        name: "null",
        about: "answers at once and stores nothing: the harness's own cost per op (never compared)",
        compared_by_default: false,
        version: "no-op",
        local_files: false,
        durable: false,
        buffered: true,
        kv_engine: true,
        locks_dir: false,
        recognises: None,
        open: |_| Ok(Box::new(NullStore)),
        open_read_only: None,
        files_of: None,
        dump: Dump::Refused("the null engine keeps no files"),
        crash: None,
    },
];

/// The row named `name`: an `EngineKind` is only made from a row's name.
pub(super) fn row(name: &str) -> &'static Row {
    ROWS.iter()
        .find(|row| row.name == name)
        .unwrap_or_else(|| unreachable!("an EngineKind names a row"))
}

fn recognises_memory_backup(names: &[String]) -> bool {
    names.iter().any(|name| name == super::MEMORY_BACKUP_FILE)
}

fn open_memory(at: &Opening<'_>) -> Opened {
    if at.memory_backup {
        let config = MemoryConfig {
            backup_path: Some(memory_backup_path(at.settings, at.dir)),
            ..at.settings.memory.clone()
        };
        let opened = leasehold_memory::MemoryEngine::open(&config, Arc::clone(&at.vfs))
            .map_err(Error::open("memory"))?;
        // Its backup is written at intervals: Group is what it promises.
        return Ok(Box::new(KvStore::new(opened, Durability::Group)));
    }
    let max_entries = (u64::from(at.max_actors) * 2 + 16).max(at.settings.memory.max_entries);
    Ok(Box::new(KvStore::new(
        leasehold_memory::MemoryEngine::volatile(max_entries),
        at.durability,
    )))
}

/// The LSM as a Store, the way every real open makes it: compaction into the
/// bottom level drops snapshots the Store's own clock says expired
/// (`expired_snapshot_grace_ms` before the latest time it was told), so
/// expired state leaves the disk without a `purge_expired`.
pub fn lsm_store(
    config: &LsmConfig,
    vfs: Arc<dyn Vfs>,
    durability: Durability,
) -> Result<KvStore<leasehold_lsm::LsmEngine>> {
    let clock = ExpiryClock::new(Duration::from_millis(config.expired_snapshot_grace_ms));
    let engine =
        leasehold_lsm::LsmEngine::open_with_filter(config, vfs, Some(Arc::new(clock.clone())))
            .map_err(Error::open("lsm"))?;
    Ok(KvStore::new(engine, durability).with_expiry_clock(clock))
}

fn open_lsm(at: &Opening<'_>) -> Opened {
    let config = LsmConfig {
        data_dir: at.dir.to_path_buf(),
        ..at.settings.lsm.clone()
    };
    Ok(Box::new(lsm_store(
        &config,
        Arc::clone(&at.vfs),
        at.durability,
    )?))
}

fn open_btree(at: &Opening<'_>) -> Opened {
    let config = BtreeConfig {
        data_dir: at.dir.to_path_buf(),
        ..at.settings.btree.clone()
    };
    let engine = leasehold_btree::BtreeEngine::open(&config, Arc::clone(&at.vfs))
        .map_err(Error::open("btree"))?;
    Ok(Box::new(KvStore::new(engine, at.durability)))
}

/// RocksDB does its own I/O: it cannot run on the `Vfs`.
fn open_rocksdb(at: &Opening<'_>) -> Opened {
    open_rocksdb_with(at, false)
}

fn open_rocksdb_blob(at: &Opening<'_>) -> Opened {
    open_rocksdb_with(at, true)
}

fn open_rocksdb_with(at: &Opening<'_>, blob_files: bool) -> Opened {
    let config = RocksDbConfig {
        data_dir: at.dir.to_path_buf(),
        enable_blob_files: blob_files,
        ..at.settings.rocksdb.clone()
    };
    let name = if blob_files {
        "rocksdb-blob"
    } else {
        "rocksdb"
    };
    let engine = leasehold_rocksdb::RocksEngine::open(&config).map_err(Error::open(name))?;
    Ok(Box::new(KvStore::new(engine, at.durability)))
}

/// RocksDB's own read-only mode: it writes nothing (it cannot sit on the
/// read-only overlay), blob files or not.
fn open_rocksdb_read_only(at: &Opening<'_>) -> Opened {
    let config = RocksDbConfig {
        data_dir: at.dir.to_path_buf(),
        ..at.settings.rocksdb.clone()
    };
    let engine =
        leasehold_rocksdb::RocksEngine::open_read_only(&config).map_err(Error::open("rocksdb"))?;
    Ok(Box::new(KvStore::new(engine, Durability::Sync)))
}

/// redb does its own I/O too.
fn open_redb(at: &Opening<'_>) -> Opened {
    let config = leasehold_redb::RedbConfig {
        data_dir: at.dir.to_path_buf(),
        ..at.settings.redb.clone()
    };
    let engine = leasehold_redb::RedbEngine::open(&config).map_err(Error::open("redb"))?;
    Ok(Box::new(KvStore::new(engine, at.durability)))
}

fn open_fjall(at: &Opening<'_>) -> Opened {
    let config = leasehold_fjall::FjallConfig {
        data_dir: at.dir.to_path_buf(),
        ..at.settings.fjall.clone()
    };
    let engine = leasehold_fjall::FjallEngine::open(&config).map_err(Error::open("fjall"))?;
    Ok(Box::new(KvStore::new(engine, at.durability)))
}

fn open_s3(at: &Opening<'_>) -> Opened {
    let config = s3_for_run(at.settings, at.dir)?;
    let backend = leasehold_objectstore::backend::s3(&config).map_err(Error::open("s3"))?;
    let store =
        leasehold_objectstore::ObjectStoreBackend::open(backend).map_err(Error::open("s3"))?;
    Ok(Box::new(store))
}

fn open_postgres(at: &Opening<'_>) -> Opened {
    let config = postgres_for_run(at.settings, at.dir)?;
    let store = leasehold_postgres::PostgresStore::open(&config, at.durability)
        .map_err(Error::open("postgres"))?;
    Ok(Box::new(store))
}

#[cfg(test)]
mod tests;
