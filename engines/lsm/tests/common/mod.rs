//! Settings shared by the LSM's integration tests.

use std::path::PathBuf;

use leasehold_core::config::LsmConfig;

/// A tiny, deterministic tree: 4 KiB memtables, 256-byte blocks, compactions
/// after two level-0 tables, inline flushes and compactions. Every few writes
/// flush, and compaction reaches level 2 and beyond.
pub fn tiny_config(dir: impl Into<PathBuf>) -> LsmConfig {
    LsmConfig {
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
        ..LsmConfig::default()
    }
}
