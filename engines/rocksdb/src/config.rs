//! RocksDB's section of the configuration (`type = "rocksdb"`).

use std::path::PathBuf;

use serde::Deserialize;

use leasehold_storage::config::{invalid, within, ConfigError, Section};

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

impl Section for RocksDbConfig {
    /// Checks ranges; shared by the TOML parser (`from_section`) and the
    /// engine's open.
    fn validate(&self, section: &str) -> Result<(), ConfigError> {
        let config = self;
        if !["none", "snappy", "lz4", "zstd"].contains(&config.compression_type.as_str()) {
            return Err(invalid(
                section,
                format!(
                    "compression_type {:?} is not one of none, snappy, lz4, zstd",
                    config.compression_type
                ),
            ));
        }
        within(
            section,
            "bloom_bits_per_key",
            config.bloom_bits_per_key,
            0.0..=64.0,
            "0..=64",
        )?;
        within(
            section,
            "write_buffer_size",
            config.write_buffer_size,
            64 << 10..=16 << 30,
            "64 KiB..=16 GiB",
        )?;
        within(
            section,
            "max_background_jobs",
            config.max_background_jobs,
            1..=256,
            "1..=256",
        )?;
        within(
            section,
            "blob_file_size",
            config.blob_file_size,
            1 << 20..=16 << 30,
            "1 MiB..=16 GiB",
        )?;
        within(
            section,
            "blob_gc_age_cutoff",
            config.blob_gc_age_cutoff,
            0.0..=1.0,
            "0..=1",
        )?;
        within(
            section,
            "block_cache_size",
            config.block_cache_size,
            0..=1 << 40,
            "0..=1 TiB",
        )?;
        Ok(())
    }
}
