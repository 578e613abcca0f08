//! The error enums, one per layer.
//!
//! `KvError` is what an ordered key-value engine (and the Vfs under it) reports;
//! `StoreError` is what the lease/snapshot `Store` reports and wraps `KvError`.
//! Rules a caller broke (a stale epoch, a wrong version, a lease held by another
//! node) are typed variants, never strings, so a runtime can act on them.

use std::path::PathBuf;

use crate::key::ActorKey;
use crate::lease::NodeId;
use crate::time::Timestamp;

/// Errors of the ordered key-value layer: engines, their files, the Vfs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KvError {
    /// Bytes read from disk are not what was written: a checksum, a length or a
    /// structure failed to check out. `offset` is the byte offset in `file`.
    #[error("corruption in {file} at offset {offset}: {reason}")]
    Corruption {
        file: PathBuf,
        offset: u64,
        reason: String,
    },

    /// Another open of the engine directory holds its lock (a second writer
    /// would corrupt it). `holder_pid` is the pid the holder wrote, if known.
    #[error("{} is locked by another open of the store{}", dir.display(), holder_text(*holder_pid))]
    Locked {
        dir: PathBuf,
        holder_pid: Option<u32>,
    },

    /// The operating system (or the simulated device) failed an operation.
    #[error("i/o error during {context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },

    /// An earlier failure (a failed fsync, say) left the engine unable to promise
    /// durability; it refuses further writes until it is reopened.
    #[error("engine is failed and must be reopened: {reason}")]
    Poisoned { reason: String },

    /// The engine was closed.
    #[error("engine is closed")]
    Closed,

    /// A configured limit would be exceeded (entries, sizes).
    #[error("capacity exceeded: {what} (limit {limit})")]
    CapacityExceeded { what: String, limit: u64 },

    /// A bad option or a bad argument given by the caller.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// The engine cannot honour the request as configured (it never silently
    /// degrades, e.g. to a weaker durability).
    #[error("unsupported: {0}")]
    Unsupported(String),
}

impl KvError {
    /// An I/O error with what was being done, for the message.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        KvError::Io {
            context: context.into(),
            source,
        }
    }

    /// A corruption report for `file` at `offset`.
    pub fn corruption(file: impl Into<PathBuf>, offset: u64, reason: impl Into<String>) -> Self {
        KvError::Corruption {
            file: file.into(),
            offset,
            reason: reason.into(),
        }
    }

    /// True when the disk was full: nothing was acknowledged, nothing was lost.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, KvError::Io { source, .. } if source.kind() == std::io::ErrorKind::StorageFull)
    }
}

fn holder_text(holder_pid: Option<u32>) -> String {
    holder_pid.map_or_else(String::new, |pid| format!(" (process {pid})"))
}

pub type KvResult<T> = Result<T, KvError>;

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
