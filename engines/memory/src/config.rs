//! The memory engine's section of the configuration (`type = "memory"`):
//! the seed's keys (`enable_disk_backup`, `backup_path`, `sync_interval` in
//! seconds, `compression`), read into the settings the engine runs with.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use leasehold_storage::config::{deserialize_section, invalid, ConfigError};

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

impl MemoryConfig {
    /// The section's table, read and checked.
    pub fn from_section(value: toml::Value, section: &str) -> Result<MemoryConfig, ConfigError> {
        MemoryConfig::from_raw(deserialize_section(value, section)?, section)
    }
}
