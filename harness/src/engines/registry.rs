//! The engine registry: one row per engine the harness runs — its name, what
//! exactly it is, what its data is like, how to open it, and how to tell its
//! directory. `EngineKind`'s methods read the row, `engines::open` calls its
//! opener, `operator::detect` asks the rows in order. Adding an engine is its
//! crate, its `EngineKind` variant and its row here.

use std::path::Path;
use std::sync::Arc;

use leasehold_core::config::{BtreeConfig, LsmConfig, MemoryConfig, RocksDbConfig};
use leasehold_core::vfs::Vfs;
use leasehold_core::{Durability, KvStore};

use super::{memory_backup_path, postgres_for_run, s3_for_run, BenchStore, EngineSettings};
use super::{EngineKind, NullStore};

/// What an opener is given.
pub struct Opening<'a> {
    pub engine: EngineKind,
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

type Opened = Result<Box<dyn BenchStore>, String>;

/// What `leasehold dump` does with an engine's files.
pub enum Dump {
    /// Its crate renders them: `(vfs, dir, only this file, entries shown)`.
    Files(fn(&dyn Vfs, &Path, Option<&str>, usize) -> leasehold_core::KvResult<String>),
    /// The memory engine's backup file (its path comes from the settings).
    MemoryBackup,
    /// Not here, and why (another tool's files, no files at all).
    Refused(&'static str),
}

/// One engine.
pub struct Row {
    pub kind: EngineKind,
    pub name: &'static str,
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
    /// Whether a directory holding these file names is one of its stores.
    pub recognises: Option<fn(&[String]) -> bool>,
    pub open: fn(&Opening<'_>) -> Opened,
    pub dump: Dump,
}

const HAND_WRITTEN: &str = "hand-written, this revision";

/// Every engine; `operator::detect` asks them in this order (RocksDB's
/// directory has an LSM's CURRENT and MANIFEST too: it is asked first).
pub const ROWS: [Row; 10] = [
    Row {
        kind: EngineKind::Rocksdb,
        name: "rocksdb",
        version: leasehold_rocksdb::ROCKSDB_VERSION,
        local_files: true,
        durable: true,
        buffered: true,
        kv_engine: true,
        recognises: Some(leasehold_rocksdb::recognises),
        open: open_rocksdb,
        dump: Dump::Refused(
            "RocksDB's files have RocksDB's own tools: sst_dump and ldb (verify works here)",
        ),
    },
    Row {
        kind: EngineKind::RocksdbBlob,
        name: "rocksdb-blob",
        version: leasehold_rocksdb::ROCKSDB_VERSION,
        local_files: true,
        durable: true,
        buffered: true,
        kv_engine: true,
        // The same files as plain RocksDB's: detected as `rocksdb`.
        recognises: None,
        open: open_rocksdb,
        dump: Dump::Refused(
            "RocksDB's files have RocksDB's own tools: sst_dump and ldb (verify works here)",
        ),
    },
    Row {
        kind: EngineKind::Lsm,
        name: "lsm",
        version: HAND_WRITTEN,
        local_files: true,
        durable: true,
        buffered: true,
        kv_engine: true,
        recognises: Some(leasehold_lsm::db::recognises),
        open: open_lsm,
        dump: Dump::Files(leasehold_lsm::dump::dump),
    },
    Row {
        kind: EngineKind::Btree,
        name: "btree",
        version: HAND_WRITTEN,
        local_files: true,
        durable: true,
        buffered: true,
        kv_engine: true,
        recognises: Some(leasehold_btree::db::recognises),
        open: open_btree,
        dump: Dump::Files(leasehold_btree::dump::dump),
    },
    Row {
        kind: EngineKind::Memory,
        name: "memory",
        version: HAND_WRITTEN,
        local_files: true,
        // Volatile in comparisons: the ceiling, not a peer.
        durable: false,
        buffered: true,
        kv_engine: true,
        recognises: Some(recognises_memory_backup),
        open: open_memory,
        dump: Dump::MemoryBackup,
    },
    Row {
        kind: EngineKind::Redb,
        name: "redb",
        version: leasehold_redb::REDB_VERSION,
        local_files: true,
        durable: true,
        buffered: true,
        kv_engine: true,
        recognises: None,
        open: open_redb,
        dump: Dump::Refused("a peer for comparisons: the operator commands do not open its files"),
    },
    Row {
        kind: EngineKind::Fjall,
        name: "fjall",
        version: leasehold_fjall::FJALL_VERSION,
        local_files: true,
        durable: true,
        buffered: true,
        kv_engine: true,
        recognises: None,
        open: open_fjall,
        dump: Dump::Refused("a peer for comparisons: the operator commands do not open its files"),
    },
    Row {
        kind: EngineKind::S3,
        name: "s3",
        version: "object_store 0.14 over S3, this revision",
        local_files: false,
        durable: true,
        buffered: false,
        kv_engine: false,
        recognises: None,
        open: open_s3,
        dump: Dump::Refused("it keeps objects, not files in a directory"),
    },
    Row {
        kind: EngineKind::Postgres,
        name: "postgres",
        version: "tokio-postgres 0.7 to the server named, this revision",
        local_files: false,
        durable: true,
        buffered: true,
        kv_engine: false,
        recognises: None,
        open: open_postgres,
        dump: Dump::Refused(
            "PostgreSQL's rows have PostgreSQL's own tools: psql and pg_dump (verify works here)",
        ),
    },
    Row {
        kind: EngineKind::Null,
        name: "null",
        version: "no-op",
        local_files: false,
        durable: false,
        buffered: true,
        kv_engine: true,
        recognises: None,
        open: |_| Ok(Box::new(NullStore)),
        dump: Dump::Refused("the null engine keeps no files"),
    },
];

/// `kind`'s row.
pub fn row(kind: EngineKind) -> &'static Row {
    ROWS.iter()
        .find(|row| row.kind == kind)
        .unwrap_or_else(|| unreachable!("every engine has a row (a test checks)"))
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
            .map_err(|err| format!("memory: {err}"))?;
        // Its backup is written at intervals: Group is what it promises.
        return Ok(Box::new(KvStore::new(opened, Durability::Group)));
    }
    let max_entries = (u64::from(at.max_actors) * 2 + 16).max(at.settings.memory.max_entries);
    Ok(Box::new(KvStore::new(
        leasehold_memory::MemoryEngine::volatile(max_entries),
        at.durability,
    )))
}

fn open_lsm(at: &Opening<'_>) -> Opened {
    let config = LsmConfig {
        data_dir: at.dir.to_path_buf(),
        ..at.settings.lsm.clone()
    };
    let store = leasehold_lsm::open_store(&config, Arc::clone(&at.vfs), at.durability)
        .map_err(|err| format!("lsm: {err}"))?;
    Ok(Box::new(store))
}

fn open_btree(at: &Opening<'_>) -> Opened {
    let config = BtreeConfig {
        data_dir: at.dir.to_path_buf(),
        ..at.settings.btree.clone()
    };
    let engine = leasehold_btree::BtreeEngine::open(&config, Arc::clone(&at.vfs))
        .map_err(|err| format!("btree: {err}"))?;
    Ok(Box::new(KvStore::new(engine, at.durability)))
}

/// RocksDB does its own I/O: it cannot run on the `Vfs`.
fn open_rocksdb(at: &Opening<'_>) -> Opened {
    let config = RocksDbConfig {
        data_dir: at.dir.to_path_buf(),
        enable_blob_files: at.engine == EngineKind::RocksdbBlob,
        ..at.settings.rocksdb.clone()
    };
    let engine = leasehold_rocksdb::RocksEngine::open(&config)
        .map_err(|err| format!("{}: {err}", at.engine.name()))?;
    Ok(Box::new(KvStore::new(engine, at.durability)))
}

/// redb does its own I/O too.
fn open_redb(at: &Opening<'_>) -> Opened {
    let config = leasehold_redb::RedbConfig {
        data_dir: at.dir.to_path_buf(),
        ..at.settings.redb.clone()
    };
    let engine = leasehold_redb::RedbEngine::open(&config).map_err(|err| format!("redb: {err}"))?;
    Ok(Box::new(KvStore::new(engine, at.durability)))
}

fn open_fjall(at: &Opening<'_>) -> Opened {
    let config = leasehold_fjall::FjallConfig {
        data_dir: at.dir.to_path_buf(),
        ..at.settings.fjall.clone()
    };
    let engine =
        leasehold_fjall::FjallEngine::open(&config).map_err(|err| format!("fjall: {err}"))?;
    Ok(Box::new(KvStore::new(engine, at.durability)))
}

fn open_s3(at: &Opening<'_>) -> Opened {
    let config = s3_for_run(at.settings, at.dir)?;
    let backend =
        leasehold_objectstore::backend::s3(&config).map_err(|err| format!("s3: {err}"))?;
    let store = leasehold_objectstore::ObjectStoreBackend::open(backend)
        .map_err(|err| format!("s3: {err}"))?;
    Ok(Box::new(store))
}

fn open_postgres(at: &Opening<'_>) -> Opened {
    let config = postgres_for_run(at.settings, at.dir)?;
    let store = leasehold_postgres::PostgresStore::open(&config, at.durability)
        .map_err(|err| format!("postgres: {err}"))?;
    Ok(Box::new(store))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    /// Every engine has exactly one row, named as clap and serde name it.
    #[test]
    fn every_engine_has_one_row_under_its_own_name() {
        for kind in EngineKind::value_variants() {
            let rows: Vec<&Row> = ROWS.iter().filter(|row| row.kind == *kind).collect();
            assert_eq!(rows.len(), 1, "{kind:?}");
            let named = kind
                .to_possible_value()
                .map(|value| value.get_name().to_owned());
            assert_eq!(named.as_deref(), Some(rows[0].name), "{kind:?}");
        }
        assert_eq!(ROWS.len(), EngineKind::value_variants().len());
    }
}
