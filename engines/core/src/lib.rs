//! leasehold-core: the actor domain, on the storage substrate
//! (`leasehold-storage`, re-exported here as `vfs`, `frame`, `codec`, `wal`,
//! `commit`, `lifecycle`, `kv`).
//!
//! - the domain: `ActorKey`, `Lease`, `Snapshot`, `Timestamp` and `Clock`;
//! - the `Store` trait (leases and snapshots) and the rules behind it (`rules`);
//! - `KvStore`, the one adapter from any `KvEngine` to a `Store`;
//! - `config`: the seed's TOML;
//! - behind the `blocking` feature: `BlockingRuntime`, for stores over an
//!   async client library; behind `async`: `AsyncStore`, any store from
//!   async code;
//! - the crash oracle, its drivers and the conformance suite every engine
//!   runs are `leasehold-testkit`, a crate of their own.

#[cfg(feature = "async")]
pub mod async_store;
#[cfg(feature = "blocking")]
pub mod blocking;
pub mod dump;
pub mod error;
pub mod expiry;
pub mod instrumented;
pub mod key;
pub mod kvstore;
pub mod lease;
pub mod metrics;
pub mod rules;
pub mod secret;
pub mod snapshot;
pub mod store;
pub mod time;

// The storage substrate, re-exported so the domain and the tools can name it
// as before; the engines take it from `leasehold-storage` itself.
pub use leasehold_storage::{codec, commit, frame, kv, lifecycle, rng, vfs, wal};

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
