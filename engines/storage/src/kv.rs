//! `KvEngine`: the ordered key-value interface every embedded engine implements
//! (LSM, B+tree, memory, RocksDB). `KvStore` turns any of them into a `Store`.
//!
//! Contract for implementors:
//! 1. `write` applies a batch atomically: after any crash either all of its
//!    operations are visible or none are.
//! 2. Writes are applied in the order they are acknowledged; a reader sees a
//!    batch entirely or not at all.
//! 3. `Durability::Sync` returns only after the batch would survive power loss.
//!    `Group` and `Buffered` return earlier; such a write becomes durable at the
//!    engine's next group sync (within its configured interval) or at `flush`.
//!    After a crash the engine holds every durable batch plus some prefix of the
//!    acknowledged ones after them (the crash oracle checks exactly this).
//! 4. A failed fsync is fatal: the engine reports `KvError::Poisoned` for every
//!    later write until reopened, because the kernel may have dropped the data.
//! 5. Bytes read from disk are checked; damage is `KvError::Corruption`, never
//!    wrong data.
//!
//! All methods take `&self`; engines are shared between threads.

mod batch;
mod range;
mod stats;

use std::ops::ControlFlow;

use crate::error::KvResult;

pub use batch::{BatchOp, IntoValue, WriteBatch, BATCH_BYTES_MAX};
pub use range::{prefix_successor, KeyRange};
pub use stats::{bump, verify_by_scan, EngineStats, Health, VerifyReport};

/// When an acknowledged write is promised to survive power loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// fsync (of the engine's log) before the write returns; concurrent writers
    /// share one fsync (group commit).
    Sync,
    /// Acknowledged once in the engine's log buffer; fsynced by the engine within
    /// its group-sync interval (`wal_sync_interval`). An engine running without
    /// its background thread has nothing to sync later, so it syncs at once.
    Group,
    /// Acknowledged once handed to the OS (or kept in memory); durable only at
    /// `flush` or when the engine syncs for its own reasons.
    Buffered,
}

impl Durability {
    pub fn name(self) -> &'static str {
        match self {
            Durability::Sync => "sync",
            Durability::Group => "group",
            Durability::Buffered => "buffered",
        }
    }

    pub fn parse(text: &str) -> Option<Durability> {
        match text {
            "sync" => Some(Durability::Sync),
            "group" => Some(Durability::Group),
            "buffered" => Some(Durability::Buffered),
            _ => None,
        }
    }
}

/// What `scan` hands each entry to; return `ControlFlow::Break` to stop early.
pub type ScanVisitor<'a> = dyn FnMut(&[u8], &[u8]) -> ControlFlow<()> + 'a;

/// An ordered key-value engine. See the module docs for the contract.
pub trait KvEngine: Send + Sync + 'static {
    /// A short name for reports ("lsm", "memory").
    fn name(&self) -> &'static str;

    fn get(&self, key: &[u8]) -> KvResult<Option<Vec<u8>>>;

    /// Applies `batch` atomically with the given durability.
    fn write(&self, batch: WriteBatch, durability: Durability) -> KvResult<()>;

    /// Visits the entries in `range` in ascending key order, from one consistent
    /// view (no batch half-visible).
    fn scan(&self, range: &KeyRange, visit: &mut ScanVisitor<'_>) -> KvResult<()>;

    /// Makes every acknowledged write durable before returning.
    fn flush(&self) -> KvResult<()>;

    fn stats(&self) -> EngineStats;

    fn health(&self) -> Health;

    /// Checks every structure the engine keeps on disk and in memory; changes
    /// nothing.
    fn verify(&self) -> KvResult<VerifyReport>;

    /// Flushes and releases resources; later calls answer `KvError::Closed`.
    fn close(&self) -> KvResult<()>;

    /// Whether anything written can outlive the process (false for a volatile
    /// in-memory engine, whose `Sync` writes answer `Unsupported`).
    fn persists(&self) -> bool {
        true
    }
}

/// Decides, where an engine's compaction rewrites its bottom level, whether
/// an entry may be dropped: e.g. a snapshot whose TTL ran out. A value the
/// engine keeps apart (the LSM's blob files) is judged by the few bytes
/// `hint` made of it when it moved (kept beside its pointer), so the filter
/// never reads it back. The layer above implements it (the Store's expiry
/// clock); the engine only asks.
pub trait CompactionFilter: Send + Sync {
    /// May the entry (user key, inline value) go?
    fn drops(&self, user_key: &[u8], value: &[u8]) -> bool;
    /// What a pointer keeps of a separated value for `drops_by_hint`: a few
    /// bytes (the engine bounds them: the LSM at `blob::HINT_LEN_MAX`), or none.
    fn hint(&self, user_key: &[u8], value: &[u8]) -> Vec<u8>;
    /// May the entry whose value is in a blob file go, by its hint?
    fn drops_by_hint(&self, user_key: &[u8], hint: &[u8]) -> bool;
}

/// A boxed engine is an engine: the harness holds engines chosen at run
/// time (`Box<dyn KvEngine>` and its extensions) where a type is expected.
impl<E: KvEngine + ?Sized> KvEngine for Box<E> {
    fn name(&self) -> &'static str {
        (**self).name()
    }

    fn get(&self, key: &[u8]) -> KvResult<Option<Vec<u8>>> {
        (**self).get(key)
    }

    fn write(&self, batch: WriteBatch, durability: Durability) -> KvResult<()> {
        (**self).write(batch, durability)
    }

    fn scan(&self, range: &KeyRange, visit: &mut ScanVisitor<'_>) -> KvResult<()> {
        (**self).scan(range, visit)
    }

    fn flush(&self) -> KvResult<()> {
        (**self).flush()
    }

    fn stats(&self) -> EngineStats {
        (**self).stats()
    }

    fn health(&self) -> Health {
        (**self).health()
    }

    fn verify(&self) -> KvResult<VerifyReport> {
        (**self).verify()
    }

    fn close(&self) -> KvResult<()> {
        (**self).close()
    }

    fn persists(&self) -> bool {
        (**self).persists()
    }
}
