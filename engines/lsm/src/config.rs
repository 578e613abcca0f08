//! The LSM's section of the configuration (`type = "lsm_tree"`): the seed's
//! keys, Leasehold's, their defaults and their ranges.

use std::path::PathBuf;

use serde::Deserialize;

use leasehold_storage::config::{invalid, ConfigError, Section};

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

impl Section for LsmConfig {
    /// Checks ranges; shared by the TOML parser (`from_section`) and the
    /// engine's open.
    fn validate(&self, section: &str) -> Result<(), ConfigError> {
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
