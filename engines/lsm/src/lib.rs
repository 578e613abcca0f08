//! leasehold-lsm: a log-structured merge tree written for Leasehold.
//!
//! `LsmEngine` implements `KvEngine`. FORMAT.md documents every byte on disk,
//! the commit, flush and compaction protocols, and why recovery is correct.
//! One file per concept (the WAL is `leasehold_core::wal`, shared): `memtable`, `sstable/{block,bloom,cache,table}`,
//! `manifest`, `version`, `compaction`, `iterator`, and `db` tying them together.

pub mod compaction;
pub mod db;
pub mod dump;
pub mod format;
pub mod iterator;
pub mod manifest;
pub mod memtable;
pub mod sstable;
pub mod version;

pub use db::{CompactionFilter, LsmEngine};

/// Small, deterministic settings for crash tests and `leasehold crash-fuzz`:
/// 4 KiB memtables, 256-byte blocks, compactions after two level-0 tables,
/// inline flushes and compactions — every few writes flush, and compaction
/// reaches level 2 and beyond, so crash points fall inside all of them.
pub fn crash_test_config(dir: impl Into<std::path::PathBuf>) -> leasehold_core::config::LsmConfig {
    leasehold_core::config::LsmConfig {
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
        ..leasehold_core::config::LsmConfig::default()
    }
}
