//! The B+tree's section of the configuration (`type = "cow_btree"`): the
//! seed's keys, Leasehold's, their defaults and their ranges.

use std::path::PathBuf;

use serde::Deserialize;

use leasehold_storage::config::{invalid, ConfigError, Section};

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

impl Section for BtreeConfig {
    /// Checks ranges; shared by the TOML parser (`from_section`) and the
    /// engine's open.
    fn validate(&self, section: &str) -> Result<(), ConfigError> {
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
