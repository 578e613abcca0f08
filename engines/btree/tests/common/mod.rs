//! Settings shared by the B+tree's integration tests.

use std::path::PathBuf;

use leasehold_core::config::BtreeConfig;

/// A tiny, deterministic tree: 1 KiB pages, eight keys per node, a checkpoint
/// every 4 KiB of log, inline checkpoints. Values over 248 bytes overflow.
pub fn tiny_config(dir: impl Into<PathBuf>) -> BtreeConfig {
    BtreeConfig {
        data_dir: dir.into(),
        max_keys_per_node: 8,
        wal_buffer_size: 4096,
        enable_compression: true,
        wal_sync_interval: 1,
        page_size: 1024,
        checkpoint_wal_bytes: 4096,
        background_threads: false,
    }
}
