//! leasehold-config: the seed's TOML configuration, parsed once for every
//! tool. Each engine owns its section — its settings type, defaults, ranges
//! and `from_section` live in its crate; this crate reads the file, picks the
//! section it names and hands the table to that engine's type.
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

use std::path::Path;

use serde::Deserialize;

use leasehold_core::kv::Durability;
pub use leasehold_core::secret::Secret;
use leasehold_storage::config::{deserialize_section, invalid, Section};
pub use leasehold_storage::config::{expand_env, ConfigError};

pub use leasehold_btree::BtreeConfig;
pub use leasehold_lsm::LsmConfig;
pub use leasehold_memory::{BackupCompression, MemoryConfig};
pub use leasehold_objectstore::config::{AzureConfig, GcsConfig, ObjectStoreConfig, S3Config};
pub use leasehold_postgres::config::{PostgresConfig, SslMode, POSTGRES_POOL_SIZE_MAX};
pub use leasehold_rocksdb::RocksDbConfig;

mod parse;
use parse::{choose_backend, parse_backend, take_selector};

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

    /// The object store's settings, if the section names one.
    pub fn object_store(&self) -> Option<ObjectStoreConfig> {
        match self {
            PersistenceConfig::S3(config) => Some(ObjectStoreConfig::S3(config.clone())),
            PersistenceConfig::Azure(config) => Some(ObjectStoreConfig::Azure(config.clone())),
            PersistenceConfig::Gcs(config) => Some(ObjectStoreConfig::Gcs(config.clone())),
            _ => None,
        }
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
            Some(value) => deserialize_section(value, "actor_management")?,
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
