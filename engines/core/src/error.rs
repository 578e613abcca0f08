//! The error enums, one per layer.
//!
//! `KvError` is what an ordered key-value engine (and the Vfs under it) reports;
//! `StoreError` is what the lease/snapshot `Store` reports and wraps `KvError`.
//! Rules a caller broke (a stale epoch, a wrong version, a lease held by another
//! node) are typed variants, never strings, so a runtime can act on them.

pub use leasehold_storage::error::{KvError, KvResult};

use crate::key::ActorKey;
use crate::lease::NodeId;
use crate::time::Timestamp;

/// Errors of the lease/snapshot store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// `save`, `delete` or a commit op expected another snapshot version.
    /// Version 0 means "no snapshot".
    #[error("version conflict on {key}: expected {expected}, stored {actual}")]
    VersionConflict {
        key: ActorKey,
        expected: u64,
        actual: u64,
    },

    /// The caller's fencing epoch is older than the actor's current lease epoch (or
    /// than the epoch of the stored snapshot): another node owns the actor now.
    #[error("stale epoch on {key}: given {given}, current {current}")]
    StaleEpoch {
        key: ActorKey,
        given: u64,
        current: u64,
    },

    /// The caller does not hold the lease it is renewing, releasing or fencing with.
    #[error("{node} does not own the lease on {key} (holder {holder:?}, epoch {epoch})")]
    NotOwner {
        key: ActorKey,
        node: NodeId,
        holder: Option<NodeId>,
        epoch: u64,
    },

    /// A renew came after the lease expired; the caller must acquire again.
    #[error("lease on {key} expired at {expired_at}")]
    LeaseExpired {
        key: ActorKey,
        expired_at: Timestamp,
    },

    /// Stored state does not match its SHA-256 hash. The data is never returned.
    #[error("integrity check failed for {key}: stored hash {expected}, computed {actual}")]
    Integrity {
        key: ActorKey,
        expected: String,
        actual: String,
    },

    /// A stored record could not be decoded.
    #[error("corrupt record for {key}: {reason}")]
    CorruptRecord { key: String, reason: String },

    /// A bad argument (an empty actor type, a zero-length lease, …).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// The store was closed.
    #[error("store is closed")]
    Closed,

    /// The backend cannot do this (and says so rather than pretending).
    #[error("unsupported: {0}")]
    Unsupported(String),

    /// The engine underneath failed.
    #[error(transparent)]
    Engine(#[from] KvError),
}

pub type StoreResult<T> = Result<T, StoreError>;
