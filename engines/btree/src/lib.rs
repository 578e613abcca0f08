//! leasehold-btree: a copy-on-write B+tree with a write-ahead log, written
//! for Leasehold.
//!
//! `BtreeEngine` implements `KvEngine`. FORMAT.md documents every byte, the
//! commit and checkpoint protocols, and why recovery is correct. One file per
//! concept: `page` (checksummed pages), `node` (the copy-on-write tree, part
//! in memory, part as pages), `pages` and `cache` (pages read on demand,
//! bounded), `layout` (leaf, branch and overflow payloads), `meta` (meta
//! slots and the free list), `checkpoint` (writing pages), `load` (walking
//! them all, for verify), and `db` tying them together. The WAL and group
//! commit are core's.

pub mod cache;
pub mod checkpoint;
pub mod config;
pub mod db;
pub mod dump;
pub mod layout;
pub mod load;
pub mod meta;
pub mod node;
pub mod page;
pub mod pages;
pub mod slice;

pub use config::BtreeConfig;
pub use db::BtreeEngine;

/// Small, deterministic settings for crash tests and `leasehold crash-fuzz`:
/// 1 KiB pages, eight keys per node, a checkpoint every 4 KiB of log, inline
/// checkpoints, a page cache of 8 pages (so pages are evicted and read back
/// all the time), a checkpoint at 32 KiB of dirty nodes; values whose
/// stored form passes a third of a page overflow. Crash points fall inside
/// page writes, free-list writes, meta flips and log rotations.
pub fn crash_test_config(dir: impl Into<std::path::PathBuf>) -> crate::config::BtreeConfig {
    crate::config::BtreeConfig {
        data_dir: dir.into(),
        max_keys_per_node: 8,
        wal_buffer_size: 4096,
        enable_compression: true,
        wal_sync_interval_seconds: 1,
        page_size: 1024,
        checkpoint_wal_bytes: 4096,
        background_threads: false,
        cache_size_bytes: 8 << 10,
        max_dirty_bytes: 64 << 10,
    }
}
