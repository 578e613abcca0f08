//! leasehold-lsm: a log-structured merge tree written for Leasehold.

pub mod format;
pub mod wal;
