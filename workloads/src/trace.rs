//! Traces: the store operations a scenario generated, each with the answer the
//! reference store gave, so every engine is replayed exactly the same work and
//! any engine that answers differently is caught.
//!
//! File layout (all frames are `leasehold_core::frame` frames):
//!
//! ```text
//! "LHTRACE1" | frame(header) | frame(chunk) ... | frame(footer)
//! header: name str | seed u64 | scale f64 bits u64 | actor_type str | actors varint
//!         | nodes varint | lease_ms varint | ttl_ms varint | state_bytes_max varint
//! chunk:  ops varint (<= CHUNK_OPS) | op*      op: at_delta_ms varint | op | answer
//! footer: tag 0xFF | total ops varint
//! ```
//!
//! States are not stored: a save's bytes are a deterministic slice of the
//! [`StatePool`](crate::state::StatePool) chosen by actor, version and length,
//! and a load's answer carries the first 8 bytes of the state's SHA-256.

use leasehold_core::codec::DecodeError;

mod codec;
mod stream;

pub use stream::{TraceFile, TraceReader, TraceWriter};

const MAGIC: &[u8; 8] = b"LHTRACE1";
/// Ops per framed chunk.
const CHUNK_OPS: usize = 4096;
const FOOTER_TAG: u8 = 0xFF;
/// Limits on what a trace header may claim, so a corrupt file cannot make the
/// reader allocate without bound.
const ACTORS_MAX: u64 = 10_000_000;
const NODES_MAX: u64 = 1024;
const STATE_BYTES_MAX: u64 = 64 << 20;
const NAME_BYTES_MAX: u64 = 4096;

/// One store operation. Actors and nodes are indices into the trace's actor
/// and node lists; lease length and snapshot TTL are the trace's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Acquire {
        actor: u32,
        node: u32,
    },
    Renew {
        actor: u32,
        node: u32,
        epoch: u64,
    },
    Release {
        actor: u32,
        node: u32,
        epoch: u64,
    },
    Load {
        actor: u32,
    },
    Save {
        actor: u32,
        expected_version: u64,
        epoch: u64,
        state_bytes: u32,
    },
    Delete {
        actor: u32,
        expected_version: u64,
        epoch: u64,
    },
    PurgeExpired,
    Sync,
    /// Close the store and open it again (the recovery scenario).
    Reopen,
    /// Everything before this op set the store up (preloaded snapshots);
    /// measurement starts here.
    Measure,
}

impl Op {
    /// The actor this op touches; `None` for whole-store ops, which replay
    /// runs alone (every earlier op finished, no later one started).
    pub fn actor(&self) -> Option<u32> {
        match *self {
            Op::Acquire { actor, .. }
            | Op::Renew { actor, .. }
            | Op::Release { actor, .. }
            | Op::Load { actor }
            | Op::Save { actor, .. }
            | Op::Delete { actor, .. } => Some(actor),
            Op::PurgeExpired | Op::Sync | Op::Reopen | Op::Measure => None,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Op::Acquire { .. } => "acquire",
            Op::Renew { .. } => "renew",
            Op::Release { .. } => "release",
            Op::Load { .. } => "load",
            Op::Save { .. } => "save",
            Op::Delete { .. } => "delete",
            Op::PurgeExpired => "purge",
            Op::Sync => "sync",
            Op::Reopen => "reopen",
            Op::Measure => "measure",
        }
    }
}

/// What a store answered, reduced to what every correct store must agree on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Acquired {
        epoch: u64,
    },
    Held {
        holder: u32,
        epoch: u64,
    },
    Renewed {
        expires_at_ms: u64,
    },
    Released,
    Loaded {
        version: u64,
        epoch: u64,
        hash: u64,
    },
    Missing,
    Saved {
        version: u64,
    },
    Deleted,
    /// Purged snapshot counts depend on when replay threads run; not compared.
    Purged,
    Done,
    Rejected(Rejection),
}

/// A rule the store enforced (a typed `StoreError` the runtime expects to see).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    VersionConflict,
    StaleEpoch,
    NotOwner,
    LeaseExpired,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceOp {
    pub at_ms: u64,
    pub op: Op,
    pub answer: Answer,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TraceHeader {
    pub scenario: String,
    pub seed: u64,
    pub scale: f64,
    pub actor_type: String,
    pub actors: u32,
    pub nodes: u32,
    pub lease_ms: u64,
    /// 0: snapshots never expire.
    pub ttl_ms: u64,
    pub state_bytes_max: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    pub header: TraceHeader,
    pub ops: Vec<TraceOp>,
}

#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("cannot {action} trace {path}: {source}")]
    Io {
        action: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("trace is corrupt at byte {offset}: {reason}")]
    Corrupt { offset: usize, reason: String },
}

impl TraceError {
    fn at(base: usize, err: DecodeError) -> TraceError {
        TraceError::Corrupt {
            offset: base + err.offset,
            reason: err.reason,
        }
    }

    /// An I/O error with the file's name in it.
    fn in_file(self, path: &std::path::Path) -> TraceError {
        match self {
            TraceError::Io { action, source, .. } => TraceError::Io {
                action,
                path: path.display().to_string(),
                source,
            },
            corrupt => corrupt,
        }
    }
}

impl Trace {
    pub fn encode(&self) -> Vec<u8> {
        let mut writer = TraceWriter::new(Vec::new(), &self.header)
            .unwrap_or_else(|_| unreachable!("writing to a Vec cannot fail"));
        for op in &self.ops {
            writer
                .push(*op)
                .unwrap_or_else(|_| unreachable!("writing to a Vec cannot fail"));
        }
        writer
            .finish()
            .unwrap_or_else(|_| unreachable!("writing to a Vec cannot fail"))
    }

    pub fn decode(bytes: &[u8]) -> Result<Trace, TraceError> {
        let mut reader = TraceReader::new(bytes)?;
        let mut ops = Vec::new();
        while reader.next_chunk(&mut ops)? {}
        Ok(Trace {
            header: reader.header().clone(),
            ops,
        })
    }

    pub fn write(&self, path: &std::path::Path) -> Result<(), TraceError> {
        let io = |source| TraceError::Io {
            action: "write",
            path: path.display().to_string(),
            source,
        };
        let file = std::fs::File::create(path).map_err(io)?;
        let mut writer =
            TraceWriter::new(std::io::BufWriter::new(file), &self.header).map_err(io)?;
        for op in &self.ops {
            writer.push(*op).map_err(io)?;
        }
        writer.finish().map_err(io)?;
        Ok(())
    }

    /// The whole trace in memory (`TraceFile` streams it instead).
    pub fn read(path: &std::path::Path) -> Result<Trace, TraceError> {
        let bytes = std::fs::read(path).map_err(|source| TraceError::Io {
            action: "read",
            path: path.display().to_string(),
            source,
        })?;
        Trace::decode(&bytes)
    }
}
