//! leasehold-storage: the storage substrate every embedded engine is built
//! on, and nothing of actors, leases or snapshots.
//!
//! - `Vfs` with `OsVfs`, the read-only `OverlayVfs` and the crash-simulating
//!   `SimVfs`, and the directory lock (`vfs`);
//! - checksummed framing (`frame`), varints and a bounds-checked reader
//!   (`codec`);
//! - `wal`: the block-framed write-ahead log with synced-offset watermarks;
//! - `commit`: group commit for concurrent writers; `group_timer`: the
//!   thread that fsyncs Group writes within the interval and seals quiet logs;
//! - `lifecycle`: open / failed / closed, shared by every engine; `workers`:
//!   an engine's background threads, started and stopped;
//! - the `KvEngine` trait an engine implements, its `WriteBatch`, stats and
//!   health (`kv`);
//! - `KvError`, this layer's errors.
//!
//! The actor domain (`leasehold-core`) sits on top: its `KvStore` turns any
//! `KvEngine` into a lease/snapshot `Store`.

pub mod codec;
pub mod commit;
pub mod config;
pub mod dump;
pub mod error;
pub mod frame;
pub mod group_timer;
pub mod kv;
pub mod lifecycle;
pub mod log_counters;
pub mod planted;
pub mod rng;
pub mod vfs;
pub mod wal;
pub mod workers;

pub use error::{KvError, KvResult};
pub use kv::{
    BatchOp, Durability, EngineStats, Health, KeyRange, KvEngine, VerifyReport, WriteBatch,
    BATCH_BYTES_MAX,
};
