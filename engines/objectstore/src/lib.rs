//! leasehold-objectstore: the lease and snapshot `Store` on cloud object
//! storage (S3, Azure Blob, GCS) through the `object_store` crate, where the
//! server's conditional writes decide who owns an actor.
//!
//! - `backend`: the seed's `[persistence.s3]` / `azure` / `gcs` sections to a
//!   signed client with timeouts and retries;
//! - `client`: the synchronous, counted and timed requests the store makes;
//! - `record`: what the objects hold (FORMAT.md);
//! - `store`: `ObjectStoreBackend`, the `Store` and its protocol, multi-actor
//!   commits included (`store/commit.rs`);
//! - `test_server`: finds or starts the S3 server the tests run against.

pub mod backend;
pub mod client;
pub mod config;
mod layout;
pub mod record;
pub mod store;
pub mod test_server;

pub use backend::Backend;
pub use client::{ClientStats, RequestKind};
pub use store::{CommitPhase, Layout, ObjectStoreBackend, COMMIT_DEADLINE};

use leasehold_core::{StoreError, StoreResult};

/// Opens the store an object-store section names (`s3`, `azure` or `gcs`).
pub fn open(config: &config::ObjectStoreConfig) -> StoreResult<ObjectStoreBackend> {
    let backend = backend::from_config(config)
        .map_err(|err| StoreError::InvalidArgument(format!("configuration: {err}")))?;
    ObjectStoreBackend::open(backend)
}
