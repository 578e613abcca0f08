//! leasehold-lsm: a log-structured merge tree written for Leasehold.
//!
//! `LsmEngine` implements `KvEngine`. FORMAT.md documents every byte on disk,
//! the commit, flush and compaction protocols, and why recovery is correct.
//! One file per concept (the WAL is `leasehold_storage::wal`, shared): `memtable`, `sstable/{block,bloom,builder,cache,describe,table}`, `blob`,
//! `manifest`, `version`, `compaction`, `iterator`, and `db` tying them together.

pub mod blob;
pub mod compaction;
pub mod config;
pub mod db;
pub mod dump;
pub mod format;
pub mod iterator;
pub mod manifest;
pub mod memtable;
pub mod sstable;
pub mod version;

pub use config::LsmConfig;
pub use db::{CompactionFilter, LsmEngine};

/// Small, deterministic settings for crash tests and `leasehold crash-fuzz`:
/// 4 KiB memtables, 256-byte blocks, compactions after two level-0 tables,
/// values of 64 bytes or more in 8 KiB blob files, inline flushes and
/// compactions — every few writes flush, compaction reaches level 2 and
/// beyond and rewrites blob files, so crash points fall inside all of them.
pub fn crash_test_config(dir: impl Into<std::path::PathBuf>) -> crate::config::LsmConfig {
    crate::config::LsmConfig {
        data_dir: dir.into(),
        memtable_size_limit: 4096,
        max_memtables: 2,
        compaction_threshold: 2,
        l0_stop_writes: 4,
        block_size: 256,
        block_cache_size: 64 << 10,
        level_base_bytes: 8 << 10,
        level_size_ratio: 2,
        target_file_size: 4096,
        background_threads: false,
        min_blob_size: 64,
        blob_file_size: 8 << 10,
        ..crate::config::LsmConfig::default()
    }
}
