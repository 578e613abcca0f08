//! The seed's TOML configuration, parsed once for every engine and tool.
//!
//! Two shapes are accepted, as in the seed's documentation:
//! ```toml
//! [persistence]                # flat: one backend
//! type = "lsm_tree"
//! data_dir = "./data"
//!
//! [server]                     # or nested: several, one chosen
//! persistence_backend = "s3"
//! [persistence.s3]
//! type = "s3"
//! ```
//! plus an optional `[actor_management]` table. Every section rejects keys it does
//! not know and values out of range with a `ConfigError` naming the key; nothing
//! falls back to another backend or a default silently. One key is Leasehold's
//! own and valid in every backend section: `durability = "sync" | "group" |
//! "buffered"` (default `sync`), the promise every write is made with.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::kv::Durability;
pub use crate::secret::Secret;

mod objectstore;
mod parse;
mod postgres;
pub use objectstore::{expand_env, AzureConfig, GcsConfig, S3Config};
use parse::{choose_backend, deserialize, parse_backend, take_selector};
pub use postgres::{PostgresConfig, SslMode, POSTGRES_POOL_SIZE_MAX};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("config is not valid TOML: {0}")]
    Syntax(String),
    #[error("config has no [persistence] section")]
    MissingPersistence,
    #[error("[{section}] has no `type` key")]
    MissingType { section: String },
    #[error("unknown persistence type {0:?}; expected one of lsm_tree, cow_btree, rocksdb, memory, s3, azure, gcs, postgres")]
    UnknownType(String),
    #[error("{0}")]
    AmbiguousBackend(String),
    #[error("[{section}]: {message}")]
    Invalid { section: String, message: String },
    #[error("[{section}] {key}: environment variable {var} is not set")]
    MissingEnv {
        section: String,
        key: String,
        var: String,
    },
}

fn invalid(section: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        section: section.to_owned(),
        message: message.into(),
    }
}

/// The whole configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub persistence: PersistenceConfig,
    pub durability: Durability,
    pub actor_management: ActorManagementConfig,
}

/// One backend's settings.
#[derive(Clone, Debug, PartialEq)]
pub enum PersistenceConfig {
    LsmTree(LsmConfig),
    CowBtree(BtreeConfig),
    RocksDb(RocksDbConfig),
    Memory(MemoryConfig),
    S3(S3Config),
    Azure(AzureConfig),
    Gcs(GcsConfig),
    Postgres(PostgresConfig),
}

impl PersistenceConfig {
    /// The seed's `type` string.
    pub fn type_name(&self) -> &'static str {
        match self {
            PersistenceConfig::LsmTree(_) => "lsm_tree",
            PersistenceConfig::CowBtree(_) => "cow_btree",
            PersistenceConfig::RocksDb(_) => "rocksdb",
            PersistenceConfig::Memory(_) => "memory",
            PersistenceConfig::S3(_) => "s3",
            PersistenceConfig::Azure(_) => "azure",
            PersistenceConfig::Gcs(_) => "gcs",
            PersistenceConfig::Postgres(_) => "postgres",
        }
    }

    /// The local directory the backend keeps its files in, if it has one.
    pub fn data_dir(&self) -> Option<&Path> {
        match self {
            PersistenceConfig::LsmTree(config) => Some(&config.data_dir),
            PersistenceConfig::CowBtree(config) => Some(&config.data_dir),
            PersistenceConfig::RocksDb(config) => Some(&config.data_dir),
            PersistenceConfig::Memory(config) => {
                config.backup_path.as_deref().and_then(Path::parent)
            }
            PersistenceConfig::S3(_)
            | PersistenceConfig::Azure(_)
            | PersistenceConfig::Gcs(_)
            | PersistenceConfig::Postgres(_) => None,
        }
    }
}

/// The `lsm_tree` section: the seed's keys first, then Leasehold's.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LsmConfig {
    pub data_dir: PathBuf,
    /// Bytes of the active memtable before it is frozen and flushed.
    pub memtable_size_limit: u64,
    /// Immutable memtables allowed to wait for flushing before writers stall.
    pub max_memtables: u32,
    /// Target false-positive rate of each table's bloom filter.
    pub bloom_filter_fp_rate: f64,
    /// `false` leaves every flushed table in level 0 (reads slow down).
    pub enable_compaction: bool,
    /// Level-0 tables that trigger a compaction into level 1.
    pub compaction_threshold: u32,
    /// lz4 per data block (kept only where it saves an eighth or more).
    pub enable_compression: bool,
    /// Uncompressed bytes per data block.
    pub block_size: u64,
    /// Bytes of decoded blocks kept in memory.
    pub block_cache_size: u64,
    /// Target size of level 1; level n+1 targets `level_size_ratio` times level n.
    pub level_base_bytes: u64,
    pub level_size_ratio: u64,
    /// Compaction output is cut into tables of about this size.
    pub target_file_size: u64,
    /// Level-0 tables at which writers stall until compaction catches up.
    pub l0_stop_writes: u32,
    /// Milliseconds within which a `Group` write is fsynced.
    pub wal_sync_interval_ms: u64,
    /// `true`: flushes and compactions run on a background thread.
    /// `false`: the writer runs them inline, deterministically (tests, tools).
    pub background_threads: bool,
    /// Compaction into the bottom level drops a snapshot that expired at
    /// least this long before the latest time the Store was told
    /// (`leasehold_core::expiry`): room for callers whose clocks run behind.
    pub expired_snapshot_grace_ms: u64,
    /// Key–value separation: a flush moves values of at least
    /// `min_blob_size` bytes into blob files; tables keep a pointer.
    pub enable_blob_files: bool,
    pub min_blob_size: u64,
    /// Blob files that compaction writes (relocating live values) are cut
    /// at about this many bytes.
    pub blob_file_size: u64,
    /// A compaction relocates the live values it meets in the oldest
    /// `blob_gc_age_cutoff` share of blob files whose garbage is at least
    /// `blob_gc_garbage_ratio` of their bytes; a file is deleted once all of
    /// it is garbage.
    pub blob_gc_age_cutoff: f64,
    pub blob_gc_garbage_ratio: f64,
}

impl Default for LsmConfig {
    fn default() -> Self {
        LsmConfig {
            data_dir: PathBuf::from("./leasehold_lsm_data"),
            memtable_size_limit: 64 << 20,
            max_memtables: 10,
            bloom_filter_fp_rate: 0.01,
            enable_compaction: true,
            compaction_threshold: 4,
            enable_compression: true,
            block_size: 4096,
            block_cache_size: 256 << 20,
            level_base_bytes: 64 << 20,
            level_size_ratio: 10,
            target_file_size: 8 << 20,
            l0_stop_writes: 12,
            wal_sync_interval_ms: 20,
            background_threads: true,
            expired_snapshot_grace_ms: 60_000,
            enable_blob_files: true,
            min_blob_size: 4096,
            blob_file_size: 64 << 20,
            blob_gc_age_cutoff: 0.25,
            blob_gc_garbage_ratio: 0.25,
        }
    }
}

impl LsmConfig {
    /// Checks ranges; shared by the TOML parser and `LsmEngine::open`.
    pub fn validate(&self, section: &str) -> Result<(), ConfigError> {
        if self.memtable_size_limit < 4096 {
            return Err(invalid(
                section,
                "memtable_size_limit must be at least 4096 bytes",
            ));
        }
        if !(self.bloom_filter_fp_rate > 0.0 && self.bloom_filter_fp_rate < 1.0) {
            return Err(invalid(
                section,
                "bloom_filter_fp_rate must be between 0 and 1 (exclusive)",
            ));
        }
        if self.max_memtables == 0 {
            return Err(invalid(section, "max_memtables must be at least 1"));
        }
        if self.compaction_threshold < 2 {
            return Err(invalid(section, "compaction_threshold must be at least 2"));
        }
        if self.l0_stop_writes < self.compaction_threshold {
            return Err(invalid(
                section,
                "l0_stop_writes must be at least compaction_threshold",
            ));
        }
        if !(256..=(16 << 20)).contains(&self.block_size) {
            return Err(invalid(
                section,
                "block_size must be between 256 bytes and 16 MiB",
            ));
        }
        if self.level_size_ratio < 2 {
            return Err(invalid(section, "level_size_ratio must be at least 2"));
        }
        if self.target_file_size < 4096 || self.level_base_bytes < 4096 {
            return Err(invalid(
                section,
                "target_file_size and level_base_bytes must be at least 4096 bytes",
            ));
        }
        if self.min_blob_size == 0 {
            return Err(invalid(
                section,
                "min_blob_size must be at least 1 byte (enable_blob_files = false turns separation off)",
            ));
        }
        if self.blob_file_size < 4096 {
            return Err(invalid(
                section,
                "blob_file_size must be at least 4096 bytes",
            ));
        }
        for (name, ratio) in [
            ("blob_gc_age_cutoff", self.blob_gc_age_cutoff),
            ("blob_gc_garbage_ratio", self.blob_gc_garbage_ratio),
        ] {
            if !(0.0..=1.0).contains(&ratio) {
                return Err(invalid(section, format!("{name} must be between 0 and 1")));
            }
        }
        Ok(())
    }
}

/// The `cow_btree` section: the seed's keys first, then Leasehold's.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BtreeConfig {
    pub data_dir: PathBuf,
    /// Most keys a leaf holds, and most children a branch holds (a node also
    /// splits earlier when its bytes would not fit a page).
    pub max_keys_per_node: u32,
    /// Bytes of `Buffered` log records kept in memory before they are written.
    pub wal_buffer_size: u64,
    /// lz4 for values (kept only where it saves bytes).
    pub enable_compression: bool,
    /// Seconds within which a `Group` write is fsynced (TOML key
    /// `wal_sync_interval`, the seed's).
    #[serde(rename = "wal_sync_interval")]
    pub wal_sync_interval_seconds: u64,
    /// Bytes per page; a power of two from 1 KiB to 64 KiB.
    pub page_size: u32,
    /// Log bytes after which a checkpoint writes the tree's dirty pages.
    pub checkpoint_wal_bytes: u64,
    /// `true`: checkpoints and timed syncs run on a background thread.
    /// `false`: the writer runs checkpoints inline, deterministically.
    pub background_threads: bool,
    /// Bytes of decoded pages kept in memory (clean pages, evicted by CLOCK).
    pub cache_size_bytes: u64,
    /// Most bytes of dirty nodes (written since the last checkpoint): half of
    /// it makes a checkpoint due, all of it holds writers back until one ends.
    /// The engine's memory is about `cache_size_bytes` + 2 × this.
    pub max_dirty_bytes: u64,
}

impl Default for BtreeConfig {
    fn default() -> Self {
        BtreeConfig {
            data_dir: PathBuf::from("./leasehold_btree_data"),
            max_keys_per_node: 256,
            wal_buffer_size: 1 << 20,
            enable_compression: true,
            wal_sync_interval_seconds: 5,
            page_size: 4096,
            checkpoint_wal_bytes: 16 << 20,
            background_threads: true,
            cache_size_bytes: 64 << 20,
            max_dirty_bytes: 64 << 20,
        }
    }
}

impl BtreeConfig {
    /// Checks ranges; shared by the TOML parser and the engine's open.
    pub fn validate(&self, section: &str) -> Result<(), ConfigError> {
        if self.max_keys_per_node < 4 {
            return Err(invalid(section, "max_keys_per_node must be at least 4"));
        }
        if !self.page_size.is_power_of_two() || !(1024..=65536).contains(&self.page_size) {
            return Err(invalid(
                section,
                "page_size must be a power of two from 1024 to 65536",
            ));
        }
        if self.checkpoint_wal_bytes < 4096 {
            return Err(invalid(
                section,
                "checkpoint_wal_bytes must be at least 4096",
            ));
        }
        if self.cache_size_bytes < u64::from(self.page_size) {
            return Err(invalid(
                section,
                "cache_size_bytes must hold at least one page",
            ));
        }
        if self.max_dirty_bytes < 2 * u64::from(self.page_size) {
            return Err(invalid(
                section,
                "max_dirty_bytes must hold at least two pages",
            ));
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RocksDbConfig {
    pub data_dir: PathBuf,
    pub create_if_missing: bool,
    pub enable_statistics: bool,
    /// none, snappy, lz4, zstd.
    pub compression_type: String,
    pub block_cache_size: u64,
    /// Leasehold's: bits per key of each table's bloom filter (0: no filter).
    pub bloom_bits_per_key: f64,
    /// Leasehold's: bytes a memtable takes before it is flushed (RocksDB's
    /// `write_buffer_size`).
    pub write_buffer_size: u64,
    /// Leasehold's: RocksDB's `max_background_jobs` (flushes + compactions).
    pub max_background_jobs: u32,
    /// RocksDB's integrated BlobDB: values of at least `min_blob_size` bytes
    /// go to blob files, the LSM keeps a reference (key-value separation,
    /// as WiscKey). Off by default; the harness's `rocksdb-blob` turns it on.
    pub enable_blob_files: bool,
    pub min_blob_size: u64,
    /// Blob files are cut at this size.
    pub blob_file_size: u64,
    /// Compaction relocates live blobs out of the oldest blob files (the
    /// `blob_gc_age_cutoff` share of them), so their garbage is freed.
    pub enable_blob_gc: bool,
    pub blob_gc_age_cutoff: f64,
}

impl Default for RocksDbConfig {
    fn default() -> Self {
        RocksDbConfig {
            data_dir: PathBuf::from("./leasehold_rocksdb"),
            create_if_missing: true,
            enable_statistics: true,
            compression_type: "lz4".into(),
            block_cache_size: 256 << 20,
            bloom_bits_per_key: 10.0,
            write_buffer_size: 64 << 20,
            max_background_jobs: 2,
            enable_blob_files: false,
            min_blob_size: 4096,
            blob_file_size: 256 << 20,
            enable_blob_gc: true,
            blob_gc_age_cutoff: 0.25,
        }
    }
}

/// Compression of the memory engine's backup file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackupCompression {
    None,
    Lz4,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawMemoryConfig {
    max_entries: u64,
    enable_disk_backup: bool,
    backup_path: Option<PathBuf>,
    sync_interval: u64,
    compression: String,
}

impl Default for RawMemoryConfig {
    fn default() -> Self {
        RawMemoryConfig {
            max_entries: 1_000_000,
            enable_disk_backup: false,
            backup_path: None,
            sync_interval: 300,
            compression: "lz4".into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct MemoryConfig {
    pub max_entries: u64,
    /// Where the backup lives; `None` means no backup (nothing survives a crash).
    pub backup_path: Option<PathBuf>,
    /// How often the background thread writes a backup when something changed.
    pub sync_interval: Duration,
    pub compression: BackupCompression,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            max_entries: 1_000_000,
            backup_path: None,
            sync_interval: Duration::from_secs(300),
            compression: BackupCompression::Lz4,
        }
    }
}

impl MemoryConfig {
    fn from_raw(raw: RawMemoryConfig, section: &str) -> Result<Self, ConfigError> {
        let compression = match raw.compression.as_str() {
            "lz4" => BackupCompression::Lz4,
            "none" => BackupCompression::None,
            other => {
                return Err(invalid(
                    section,
                    format!("compression {other:?} is not supported; use \"lz4\" or \"none\""),
                ))
            }
        };
        if raw.max_entries == 0 {
            return Err(invalid(section, "max_entries must be positive"));
        }
        let backup_path = match (raw.enable_disk_backup, raw.backup_path) {
            (true, None) => {
                return Err(invalid(
                    section,
                    "enable_disk_backup = true needs backup_path",
                ))
            }
            (true, Some(path)) => Some(path),
            (false, _) => None,
        };
        if backup_path.is_some() && raw.sync_interval == 0 {
            return Err(invalid(section, "sync_interval must be at least 1 second"));
        }
        Ok(MemoryConfig {
            max_entries: raw.max_entries,
            backup_path,
            sync_interval: Duration::from_secs(raw.sync_interval),
            compression,
        })
    }
}

/// The seed's `[actor_management]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ActorManagementConfig {
    pub lease_duration_seconds: u64,
    pub snapshot_interval_seconds: u64,
    pub idle_timeout_seconds: u64,
    pub max_concurrent_activations: u64,
    pub enable_state_compression: bool,
}

impl Default for ActorManagementConfig {
    fn default() -> Self {
        ActorManagementConfig {
            lease_duration_seconds: 300,
            snapshot_interval_seconds: 60,
            idle_timeout_seconds: 1800,
            max_concurrent_activations: 10_000,
            enable_state_compression: false,
        }
    }
}

impl Config {
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|err| invalid("file", format!("cannot read {}: {err}", path.display())))?;
        Config::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let mut root: toml::Table = text
            .parse()
            .map_err(|err: toml::de::Error| ConfigError::Syntax(err.to_string()))?;
        let selector = take_selector(&mut root)?;
        let actor_management = match root.remove("actor_management") {
            Some(value) => deserialize(value, "actor_management")?,
            None => ActorManagementConfig::default(),
        };
        let persistence = match root.remove("persistence") {
            Some(toml::Value::Table(table)) => table,
            Some(_) => return Err(invalid("persistence", "must be a table")),
            None => return Err(ConfigError::MissingPersistence),
        };
        // Tables the seed uses for other subsystems are not ours to judge.
        let (section, mut backend) = choose_backend(persistence, selector.as_deref())?;
        let durability = match backend.remove("durability") {
            None => Durability::Sync,
            Some(toml::Value::String(name)) => Durability::parse(&name).ok_or_else(|| {
                invalid(
                    &section,
                    format!("durability {name:?} is not one of sync, group, buffered"),
                )
            })?,
            Some(_) => return Err(invalid(&section, "durability must be a string")),
        };
        let persistence = parse_backend(&section, backend)?;
        Ok(Config {
            persistence,
            durability,
            actor_management,
        })
    }
}

#[cfg(test)]
mod tests;
