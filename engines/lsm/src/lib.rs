//! leasehold-lsm: a log-structured merge tree written for Leasehold.
//!
//! `LsmEngine` implements `KvEngine`. FORMAT.md documents every byte on disk,
//! the commit, flush and compaction protocols, and why recovery is correct.
//! One file per concept (the WAL is `leasehold_core::wal`, shared): `memtable`, `sstable/{block,bloom,cache,table}`,
//! `manifest`, `version`, `compaction`, `iterator`, and `db` tying them together.

pub mod compaction;
pub mod db;
pub mod format;
pub mod iterator;
pub mod manifest;
pub mod memtable;
pub mod sstable;
pub mod version;

pub use db::{CompactionFilter, LsmEngine};
