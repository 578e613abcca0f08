//! leasehold-lsm: a log-structured merge tree written for Leasehold.

pub mod format;
pub mod memtable;
pub mod sstable;
pub mod wal;
