//! The engines the harness can run, opened from the seed's TOML sections (or
//! their defaults) in a fresh directory per run, behind one object-safe trait.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use leasehold_config::{
    BtreeConfig, Config, LsmConfig, MemoryConfig, PersistenceConfig, PostgresConfig, RocksDbConfig,
    S3Config,
};
use leasehold_core::kv::KeyRange;
use leasehold_core::vfs::{OsVfs, Vfs};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use leasehold_core::kv::{Health, VerifyReport, WriteBatch};
use leasehold_core::metrics::StoreMetrics;
use leasehold_core::{
    Acquire, ActorKey, CommitOp, Durability, KvEngine, KvError, KvResult, KvStore, Lease,
    LeaseFilter, NodeId, Snapshot, SnapshotInfo, SnapshotWrite, Store, StoreError, StoreResult,
    Timestamp,
};

pub mod crash;
mod kind;
mod null;
pub mod registry;
use crate::{Error, Result};
pub use kind::{DurabilityMode, EngineKind};
pub use null::NullStore;

/// The per-engine settings: the seed's defaults unless a `--config` file set
/// that engine's section. Directories are always the harness's own.
#[derive(Clone, Debug, Default)]
pub struct EngineSettings {
    pub lsm: LsmConfig,
    pub btree: BtreeConfig,
    pub memory: MemoryConfig,
    pub rocksdb: RocksDbConfig,
    /// redb and fjall have no section in the seed's TOML: their defaults
    /// (a 64 MiB cache each).
    pub redb: leasehold_redb::RedbConfig,
    pub fjall: leasehold_fjall::FjallConfig,
    /// `None`: from the `LEASEHOLD_S3_*` environment, when engine s3 runs.
    pub s3: Option<S3Config>,
    /// `None`: from the `LEASEHOLD_PG_*` environment, when engine postgres
    /// runs.
    pub postgres: Option<PostgresConfig>,
}

impl EngineSettings {
    /// Every engine's memory knobs sized from a memory budget the same way,
    /// so the engines meet the budget with the same shares: a cache of a
    /// quarter of it (the LSM's, RocksDB's, redb's and fjall's block or page
    /// cache) and write buffers of a sixteenth, two of them as RocksDB keeps
    /// by default (the LSM's active memtable and one frozen; RocksDB's and
    /// fjall's memtable; the B+tree's dirty bound is two). The rest is the page
    /// cache's, the harness's and the engine's own. The B+tree keeps its
    /// whole tree in memory: it has no knob to size (FORMAT.md, "Limits").
    pub fn sized_for(&mut self, budget: u64) {
        let cache = budget / 4;
        let buffer = (budget / 16).max(1 << 20);
        self.lsm.block_cache_size = cache;
        self.lsm.memtable_size_limit = buffer;
        self.lsm.max_memtables = 1;
        self.rocksdb.block_cache_size = cache;
        self.rocksdb.write_buffer_size = buffer;
        self.btree.cache_size_bytes = cache;
        // Its dirty nodes are its write buffers: as much as two of the
        // others' (RocksDB keeps two memtables by default).
        self.btree.max_dirty_bytes = 2 * buffer;
        self.redb.cache_size_bytes = cache;
        self.fjall.cache_size_bytes = cache;
        self.fjall.memtable_bytes = buffer;
    }

    /// Applies each config file's persistence section; a file for an engine the
    /// harness cannot run is an error, not ignored.
    pub fn from_files(paths: &[std::path::PathBuf]) -> Result<EngineSettings> {
        let mut settings = EngineSettings::default();
        for path in paths {
            let config = Config::from_file(path)?;
            match config.persistence {
                PersistenceConfig::LsmTree(lsm) => settings.lsm = lsm,
                PersistenceConfig::CowBtree(btree) => settings.btree = btree,
                PersistenceConfig::Memory(memory) => settings.memory = memory,
                PersistenceConfig::RocksDb(rocksdb) => settings.rocksdb = rocksdb,
                PersistenceConfig::S3(s3) => settings.s3 = Some(s3),
                PersistenceConfig::Postgres(postgres) => settings.postgres = Some(postgres),
                other => {
                    return Err(Error::Usage(format!(
                        "{}: the harness has no {} engine",
                        path.display(),
                        other.type_name()
                    )))
                }
            }
        }
        Ok(settings)
    }
}

/// What an engine holds now, counted by a full scan.
#[derive(Clone, Copy, Debug, Default)]
pub struct Live {
    pub entries: u64,
    /// Key + value bytes.
    pub bytes: u64,
}

/// A store the harness can measure: the `Store`, plus what the engine under
/// it holds, checks and answers.
pub trait BenchStore: Store {
    fn live(&self) -> Result<Live>;

    /// The engine's full structural check (`KvEngine::verify`).
    fn verify(&self) -> KvResult<VerifyReport>;

    /// Writes a probe key, reads it back, deletes it (the health check);
    /// an error, or a read that differs, fails it.
    fn round_trip(&self) -> KvResult<Duration>;

    /// The key-value engine under the Store, for benchmarks at that level
    /// (`None`: the store has none, as the object store and the null store).
    fn kv_engine(&self) -> Option<&dyn KvEngine> {
        None
    }

    /// Removes what a run left on a server (its files are the harness's to
    /// remove): the run's schema for PostgreSQL. Nothing for local engines
    /// and object storage, whose run prefixes stay (a few KiB each).
    fn discard(&self) -> Result<()> {
        Ok(())
    }
}

/// The health probe's key: outside `KvStore`'s lease and snapshot key spaces.
const PROBE_KEY_PREFIX: &[u8] = b"\xffleasehold-health-probe-";

impl<E: KvEngine> BenchStore for KvStore<E> {
    fn kv_engine(&self) -> Option<&dyn KvEngine> {
        Some(self.engine())
    }

    fn verify(&self) -> KvResult<VerifyReport> {
        self.engine().verify()
    }

    fn round_trip(&self) -> KvResult<Duration> {
        let started = Instant::now();
        let mut key = PROBE_KEY_PREFIX.to_vec();
        key.extend_from_slice(std::process::id().to_string().as_bytes());
        let value = format!("probe at {:?}", std::time::SystemTime::now()).into_bytes();
        let mut put = WriteBatch::new();
        put.put(key.clone(), value.clone());
        self.engine().write(put, self.durability())?;
        let read = self.engine().get(&key)?;
        if read.as_deref() != Some(value.as_slice()) {
            return Err(KvError::Corruption {
                file: PathBuf::from("(health probe)"),
                offset: 0,
                reason: format!(
                    "wrote {} bytes, read back {:?} bytes",
                    value.len(),
                    read.map(|read| read.len())
                ),
            });
        }
        let mut delete = WriteBatch::new();
        delete.delete(key);
        self.engine().write(delete, self.durability())?;
        Ok(started.elapsed())
    }

    fn live(&self) -> Result<Live> {
        let mut live = Live::default();
        self.engine().scan(&KeyRange::all(), &mut |key, value| {
            live.entries += 1;
            live.bytes += (key.len() + value.len()) as u64;
            ControlFlow::Continue(())
        })?;
        Ok(live)
    }
}

/// Opens `engine` with its files in `dir` (created if missing; reopening the
/// same directory recovers what is there). The memory engine runs volatile.
pub fn open(
    engine: EngineKind,
    mode: DurabilityMode,
    settings: &EngineSettings,
    dir: &Path,
    max_actors: u32,
) -> Result<Box<dyn BenchStore>> {
    open_on(
        engine,
        mode,
        settings,
        dir,
        max_actors,
        Arc::new(OsVfs::new()),
        false,
    )
}

/// The reference store the traces' answers come from (scenario generation,
/// JSONL conversion): the volatile memory engine, sized for `actors`.
pub fn reference_store(actors: u32) -> Box<dyn Store> {
    Box::new(KvStore::new(
        leasehold_memory::MemoryEngine::volatile(u64::from(actors) * 2 + 16),
        Durability::Buffered,
    ))
}

/// The memory engine's backup file when it is given a directory.
pub const MEMORY_BACKUP_FILE: &str = "backup.lz4";

/// The memory engine's backup in `dir`: the configured file if the settings
/// name one, else [`MEMORY_BACKUP_FILE`].
pub fn memory_backup_path(settings: &EngineSettings, dir: &Path) -> PathBuf {
    settings
        .memory
        .backup_path
        .clone()
        .unwrap_or_else(|| dir.join(MEMORY_BACKUP_FILE))
}

/// As [`open`], on `vfs`; `memory_backup` gives the memory engine its backup
/// file in `dir` (the operator commands inspect it) instead of running volatile.
pub fn open_on(
    engine: EngineKind,
    mode: DurabilityMode,
    settings: &EngineSettings,
    dir: &Path,
    max_actors: u32,
    vfs: Arc<dyn Vfs>,
    memory_backup: bool,
) -> Result<Box<dyn BenchStore>> {
    let durability = match mode {
        DurabilityMode::Sync => Durability::Sync,
        DurabilityMode::Buffered | DurabilityMode::None => Durability::Buffered,
    };
    open_store(
        engine.row().open,
        durability,
        settings,
        dir,
        max_actors,
        vfs,
        memory_backup,
    )
}

/// Opens the engine a config names at the config's `durability` (any of
/// sync, group, buffered), its files in `dir`; the memory engine with its
/// backup file there.
pub fn open_with(
    engine: EngineKind,
    durability: Durability,
    settings: &EngineSettings,
    dir: &Path,
    vfs: Arc<dyn Vfs>,
) -> Result<Box<dyn BenchStore>> {
    open_store(engine.row().open, durability, settings, dir, 1, vfs, true)
}

/// Opens the engine's files in `dir` without writing to them (the operator
/// commands): on the read-only overlay `Vfs`, or through the engine's own
/// read-only opener if its row has one (an engine that does its own I/O).
pub fn open_read_only(
    engine: EngineKind,
    settings: &EngineSettings,
    dir: &Path,
) -> Result<Box<dyn BenchStore>> {
    let row = engine.row();
    let open = row.open_read_only.unwrap_or(row.open);
    let overlay = Arc::new(leasehold_core::vfs::OverlayVfs::new());
    open_store(open, Durability::Sync, settings, dir, 1, overlay, true)
}

fn open_store(
    open: fn(&registry::Opening<'_>) -> Result<Box<dyn BenchStore>>,
    durability: Durability,
    settings: &EngineSettings,
    dir: &Path,
    max_actors: u32,
    vfs: Arc<dyn Vfs>,
    memory_backup: bool,
) -> Result<Box<dyn BenchStore>> {
    open(&registry::Opening {
        durability,
        settings,
        dir,
        max_actors,
        vfs,
        memory_backup,
    })
}

/// The file in a run's directory that names the run's data on a server.
const RUN_ID_FILE: &str = "remote-run-id";

/// A name for one run's data on a server: made when the run's (fresh)
/// directory gets its first store and kept in it, so a reopen within the run
/// finds the same data and every other run — the same directory reused
/// included — starts empty.
fn run_name(dir: &Path) -> Result<String> {
    let path = dir.join(RUN_ID_FILE);
    if let Ok(name) = std::fs::read_to_string(&path) {
        return Ok(name.trim().to_owned());
    }
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let name = format!(
        "{:x}{:08x}",
        since.as_secs(),
        since.subsec_nanos() ^ std::process::id()
    );
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&path, &name))
        .map_err(Error::file(&path))?;
    Ok(name)
}

/// The PostgreSQL settings of one run: the configured ones (or the test
/// server's, from the environment) in a schema named after the run's
/// directory, so every run starts empty and a reopen finds what it wrote.
pub(super) fn postgres_for_run(settings: &EngineSettings, dir: &Path) -> Result<PostgresConfig> {
    let mut config = match &settings.postgres {
        Some(config) => config.clone(),
        None => leasehold_postgres::test_server::from_environment("leasehold").map_err(|err| {
            Error::machine(format!(
                "engine postgres needs a [persistence.postgres] section (--config) or a server: {err}"
            ))
        })?,
    };
    // A schema name is an identifier of at most 63 bytes: the configured
    // name and the run's.
    let run = format!("_run_{}", run_name(dir)?);
    let base: String = config.schema.chars().take(63 - run.len()).collect();
    config.schema = format!("{base}{run}");
    Ok(config)
}

/// The S3 settings of one run: the configured ones (or the test server's,
/// from the environment), under a prefix named after the run's directory, so
/// every run starts empty and a reopen finds what the run wrote.
pub(super) fn s3_for_run(settings: &EngineSettings, dir: &Path) -> Result<S3Config> {
    let mut config = match &settings.s3 {
        Some(config) => config.clone(),
        None => {
            leasehold_objectstore::test_server::from_environment("leasehold").map_err(|err| {
                Error::machine(format!(
                    "engine s3 needs a [persistence.s3] section (--config) or a server: {err}"
                ))
            })?
        }
    };
    config.prefix = format!(
        "{}/runs/{}",
        config.prefix.trim_matches('/'),
        run_name(dir)?
    );
    Ok(config)
}

impl BenchStore for leasehold_objectstore::ObjectStoreBackend {
    /// Every object under the run's prefix, with its size.
    fn live(&self) -> Result<Live> {
        let mut live = Live::default();
        for (_, size) in self.objects()? {
            live.entries += 1;
            live.bytes += size;
        }
        Ok(live)
    }

    fn verify(&self) -> KvResult<VerifyReport> {
        self.verify_objects().map_err(store_to_kv)
    }

    fn round_trip(&self) -> KvResult<Duration> {
        self.probe().map_err(store_to_kv)
    }
}

impl BenchStore for leasehold_postgres::PostgresStore {
    /// Every lease and snapshot row, with its size as the server stores it.
    fn live(&self) -> Result<Live> {
        let (entries, bytes) = leasehold_postgres::PostgresStore::live(self)?;
        Ok(Live { entries, bytes })
    }

    fn verify(&self) -> KvResult<VerifyReport> {
        self.verify_rows().map_err(store_to_kv)
    }

    fn round_trip(&self) -> KvResult<Duration> {
        self.probe().map_err(store_to_kv)
    }

    fn discard(&self) -> Result<()> {
        Ok(self.drop_schema()?)
    }
}

fn store_to_kv(err: StoreError) -> KvError {
    match err {
        StoreError::Engine(err) => err,
        StoreError::CorruptRecord { key, reason } => KvError::corruption(key, 0, reason),
        other => KvError::io("the store", std::io::Error::other(other.to_string())),
    }
}
