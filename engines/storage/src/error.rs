//! Errors of the storage layer: what an ordered key-value engine, its files
//! and the Vfs under it report. The Store's errors (`leasehold-core`) wrap
//! these.

use std::path::PathBuf;

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

/// `map_err(io_error(context))`: an I/O failure with what was being done.
pub fn io_error(context: String) -> impl FnOnce(std::io::Error) -> KvError {
    move |source| KvError::io(context, source)
}

/// Results of the key-value layer.
pub type KvResult<T> = Result<T, KvError>;
