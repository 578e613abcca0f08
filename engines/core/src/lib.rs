//! leasehold-core: what every Leasehold engine and tool shares.
//!
//! - the domain: `ActorKey`, `Lease`, `Snapshot`, `Timestamp` and `Clock`;
//! - the `Store` trait (leases and snapshots) and the rules behind it (`rules`);
//! - the `KvEngine` trait and `KvStore`, the one adapter from any engine to a
//!   `Store`;
//! - `Vfs` with `OsVfs` and the crash-simulating `SimVfs`;
//! - the shared on-disk helpers: checksummed framing (`frame`), varints and a
//!   bounds-checked reader (`codec`);
//! - `commit`: group commit for concurrent writers;
//! - `wal`: the block-framed write-ahead log with synced-offset watermarks;
//! - `config`: the seed's TOML;
//! - behind the `blocking` feature: `BlockingRuntime`, for stores over an
//!   async client library; behind `async`: `AsyncStore`, any store from
//!   async code;
//! - behind the `testkit` feature: the crash oracle, its proptest driver and
//!   the conformance suite every engine runs.

#[cfg(feature = "async")]
pub mod async_store;
#[cfg(feature = "blocking")]
pub mod blocking;
pub mod codec;
pub mod commit;
pub mod config;
pub mod dump;
pub mod error;
pub mod expiry;
pub mod frame;
pub mod instrumented;
pub mod key;
pub mod kv;
pub mod kvstore;
pub mod lease;
pub mod lifecycle;
pub mod metrics;
pub mod rng;
pub mod rules;
pub mod secret;
pub mod snapshot;
pub mod store;
pub mod time;
pub mod vfs;
pub mod wal;

#[cfg(feature = "testkit")]
pub mod testkit;

pub use error::{KvError, KvResult, StoreError, StoreResult};
pub use key::ActorKey;
pub use kv::{
    BatchOp, Durability, EngineStats, Health, KeyRange, KvEngine, VerifyReport, WriteBatch,
    BATCH_BYTES_MAX,
};
pub use kvstore::KvStore;
pub use lease::{Lease, NodeId};
pub use snapshot::{Snapshot, SnapshotWrite};
pub use store::{Acquire, CommitOp, LeaseFilter, SnapshotInfo, Store};
pub use time::{Clock, ManualClock, SystemClock, Timestamp};
