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

use leasehold_core::codec::{DecodeError, Reader, Writer};
use leasehold_core::frame;

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
}

impl Trace {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        let header = &self.header;
        let mut writer = Writer::new();
        writer
            .str(&header.scenario)
            .u64_le(header.seed)
            .u64_le(header.scale.to_bits())
            .str(&header.actor_type)
            .varint(u64::from(header.actors))
            .varint(u64::from(header.nodes))
            .varint(header.lease_ms)
            .varint(header.ttl_ms)
            .varint(u64::from(header.state_bytes_max));
        frame::encode(&writer.finish(), &mut out);
        let mut previous_ms = 0;
        for chunk in self.ops.chunks(CHUNK_OPS) {
            let mut writer = Writer::new();
            writer.varint(chunk.len() as u64);
            for op in chunk {
                // Generated traces never go back in time; a hand-made one that
                // does is clamped rather than encoded as a huge delta.
                writer.varint(op.at_ms.saturating_sub(previous_ms));
                previous_ms = previous_ms.max(op.at_ms);
                encode_op(&mut writer, &op.op);
                encode_answer(&mut writer, &op.answer);
            }
            frame::encode(&writer.finish(), &mut out);
        }
        let mut writer = Writer::new();
        writer.u8(FOOTER_TAG).varint(self.ops.len() as u64);
        frame::encode(&writer.finish(), &mut out);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Trace, TraceError> {
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err(TraceError::Corrupt {
                offset: 0,
                reason: "not a leasehold trace (bad magic)".to_owned(),
            });
        }
        let mut offset = MAGIC.len();
        let next_frame = |offset: &mut usize| -> Result<(usize, &[u8]), TraceError> {
            match frame::decode(bytes, *offset) {
                Ok(Some((payload, next))) => {
                    let start = *offset + frame::FRAME_HEADER_LEN;
                    *offset = next;
                    Ok((start, payload))
                }
                Ok(None) => Err(TraceError::Corrupt {
                    offset: *offset,
                    reason: "trace ends before its footer".to_owned(),
                }),
                Err(err) => Err(TraceError::Corrupt {
                    offset: err.offset(),
                    reason: err.reason().to_owned(),
                }),
            }
        };
        let (base, payload) = next_frame(&mut offset)?;
        let header = decode_header(payload).map_err(|err| TraceError::at(base, err))?;
        let mut ops = Vec::new();
        let mut at_ms = 0u64;
        loop {
            let (base, payload) = next_frame(&mut offset)?;
            let mut reader = Reader::new(payload);
            if payload.first() == Some(&FOOTER_TAG) {
                reader
                    .u8("footer tag")
                    .map_err(|err| TraceError::at(base, err))?;
                let total = reader
                    .varint("op count")
                    .map_err(|err| TraceError::at(base, err))?;
                reader
                    .expect_end("footer")
                    .map_err(|err| TraceError::at(base, err))?;
                if total != ops.len() as u64 {
                    return Err(TraceError::Corrupt {
                        offset: base,
                        reason: format!("footer counts {total} ops, chunks hold {}", ops.len()),
                    });
                }
                if offset != bytes.len() {
                    return Err(TraceError::Corrupt {
                        offset,
                        reason: "bytes after the footer".to_owned(),
                    });
                }
                return Ok(Trace { header, ops });
            }
            let count = reader
                .varint_at_most(CHUNK_OPS as u64, "chunk op count")
                .map_err(|err| TraceError::at(base, err))?;
            for _ in 0..count {
                let decoded = (|| {
                    let delta = reader.varint("time delta")?;
                    let op = decode_op(&mut reader, &header)?;
                    let answer = decode_answer(&mut reader, &header)?;
                    Ok::<_, DecodeError>((delta, op, answer))
                })();
                let (delta, op, answer) = decoded.map_err(|err| TraceError::at(base, err))?;
                at_ms = at_ms
                    .checked_add(delta)
                    .ok_or_else(|| TraceError::Corrupt {
                        offset: base + reader.position(),
                        reason: "time overflows".to_owned(),
                    })?;
                ops.push(TraceOp { at_ms, op, answer });
            }
            reader
                .expect_end("chunk")
                .map_err(|err| TraceError::at(base, err))?;
        }
    }

    pub fn write(&self, path: &std::path::Path) -> Result<(), TraceError> {
        std::fs::write(path, self.encode()).map_err(|source| TraceError::Io {
            action: "write",
            path: path.display().to_string(),
            source,
        })
    }

    pub fn read(path: &std::path::Path) -> Result<Trace, TraceError> {
        let bytes = std::fs::read(path).map_err(|source| TraceError::Io {
            action: "read",
            path: path.display().to_string(),
            source,
        })?;
        Trace::decode(&bytes)
    }
}

fn decode_header(payload: &[u8]) -> Result<TraceHeader, DecodeError> {
    let mut reader = Reader::new(payload);
    let text = |reader: &mut Reader, what: &str| -> Result<String, DecodeError> {
        let len = reader.varint_at_most(NAME_BYTES_MAX, what)? as usize;
        let bytes = reader.raw(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| reader.error(format!("{what} is not UTF-8")))
    };
    let scenario = text(&mut reader, "scenario name")?;
    let seed = reader.u64_le("seed")?;
    let scale = f64::from_bits(reader.u64_le("scale")?);
    let actor_type = text(&mut reader, "actor type")?;
    let actors = reader.varint_at_most(ACTORS_MAX, "actors")? as u32;
    let nodes = reader.varint_at_most(NODES_MAX, "nodes")? as u32;
    let lease_ms = reader.varint("lease ms")?;
    let ttl_ms = reader.varint("ttl ms")?;
    let state_bytes_max = reader.varint_at_most(STATE_BYTES_MAX, "state bytes max")? as u32;
    reader.expect_end("header")?;
    if actors == 0 || nodes == 0 || actor_type.is_empty() {
        return Err(reader.error("header has no actors, no nodes or no actor type"));
    }
    Ok(TraceHeader {
        scenario,
        seed,
        scale,
        actor_type,
        actors,
        nodes,
        lease_ms,
        ttl_ms,
        state_bytes_max,
    })
}

fn encode_op(writer: &mut Writer, op: &Op) {
    match *op {
        Op::Acquire { actor, node } => {
            writer
                .u8(1)
                .varint(u64::from(actor))
                .varint(u64::from(node));
        }
        Op::Renew { actor, node, epoch } => {
            writer
                .u8(2)
                .varint(u64::from(actor))
                .varint(u64::from(node))
                .varint(epoch);
        }
        Op::Release { actor, node, epoch } => {
            writer
                .u8(3)
                .varint(u64::from(actor))
                .varint(u64::from(node))
                .varint(epoch);
        }
        Op::Load { actor } => {
            writer.u8(4).varint(u64::from(actor));
        }
        Op::Save {
            actor,
            expected_version,
            epoch,
            state_bytes,
        } => {
            writer
                .u8(5)
                .varint(u64::from(actor))
                .varint(expected_version)
                .varint(epoch)
                .varint(u64::from(state_bytes));
        }
        Op::Delete {
            actor,
            expected_version,
            epoch,
        } => {
            writer
                .u8(6)
                .varint(u64::from(actor))
                .varint(expected_version)
                .varint(epoch);
        }
        Op::PurgeExpired => {
            writer.u8(7);
        }
        Op::Sync => {
            writer.u8(8);
        }
        Op::Reopen => {
            writer.u8(9);
        }
        Op::Measure => {
            writer.u8(10);
        }
    }
}

fn decode_op(reader: &mut Reader, header: &TraceHeader) -> Result<Op, DecodeError> {
    let tag = reader.u8("op tag")?;
    let actor = |reader: &mut Reader| -> Result<u32, DecodeError> {
        Ok(reader.varint_at_most(u64::from(header.actors) - 1, "actor")? as u32)
    };
    let node = |reader: &mut Reader| -> Result<u32, DecodeError> {
        Ok(reader.varint_at_most(u64::from(header.nodes) - 1, "node")? as u32)
    };
    Ok(match tag {
        1 => Op::Acquire {
            actor: actor(reader)?,
            node: node(reader)?,
        },
        2 => Op::Renew {
            actor: actor(reader)?,
            node: node(reader)?,
            epoch: reader.varint("epoch")?,
        },
        3 => Op::Release {
            actor: actor(reader)?,
            node: node(reader)?,
            epoch: reader.varint("epoch")?,
        },
        4 => Op::Load {
            actor: actor(reader)?,
        },
        5 => Op::Save {
            actor: actor(reader)?,
            expected_version: reader.varint("expected version")?,
            epoch: reader.varint("epoch")?,
            state_bytes: reader.varint_at_most(u64::from(header.state_bytes_max), "state bytes")?
                as u32,
        },
        6 => Op::Delete {
            actor: actor(reader)?,
            expected_version: reader.varint("expected version")?,
            epoch: reader.varint("epoch")?,
        },
        7 => Op::PurgeExpired,
        8 => Op::Sync,
        9 => Op::Reopen,
        10 => Op::Measure,
        other => return Err(reader.error(format!("unknown op tag {other}"))),
    })
}

fn encode_answer(writer: &mut Writer, answer: &Answer) {
    match *answer {
        Answer::Acquired { epoch } => {
            writer.u8(1).varint(epoch);
        }
        Answer::Held { holder, epoch } => {
            writer.u8(2).varint(u64::from(holder)).varint(epoch);
        }
        Answer::Renewed { expires_at_ms } => {
            writer.u8(3).varint(expires_at_ms);
        }
        Answer::Released => {
            writer.u8(4);
        }
        Answer::Loaded {
            version,
            epoch,
            hash,
        } => {
            writer.u8(5).varint(version).varint(epoch).u64_le(hash);
        }
        Answer::Missing => {
            writer.u8(6);
        }
        Answer::Saved { version } => {
            writer.u8(7).varint(version);
        }
        Answer::Deleted => {
            writer.u8(8);
        }
        Answer::Purged => {
            writer.u8(9);
        }
        Answer::Done => {
            writer.u8(10);
        }
        Answer::Rejected(rejection) => {
            let code = match rejection {
                Rejection::VersionConflict => 1,
                Rejection::StaleEpoch => 2,
                Rejection::NotOwner => 3,
                Rejection::LeaseExpired => 4,
            };
            writer.u8(11).u8(code);
        }
    }
}

fn decode_answer(reader: &mut Reader, header: &TraceHeader) -> Result<Answer, DecodeError> {
    let tag = reader.u8("answer tag")?;
    Ok(match tag {
        1 => Answer::Acquired {
            epoch: reader.varint("epoch")?,
        },
        2 => Answer::Held {
            holder: reader.varint_at_most(u64::from(header.nodes) - 1, "holder")? as u32,
            epoch: reader.varint("epoch")?,
        },
        3 => Answer::Renewed {
            expires_at_ms: reader.varint("expiry")?,
        },
        4 => Answer::Released,
        5 => Answer::Loaded {
            version: reader.varint("version")?,
            epoch: reader.varint("epoch")?,
            hash: reader.u64_le("hash")?,
        },
        6 => Answer::Missing,
        7 => Answer::Saved {
            version: reader.varint("version")?,
        },
        8 => Answer::Deleted,
        9 => Answer::Purged,
        10 => Answer::Done,
        11 => Answer::Rejected(match reader.u8("rejection")? {
            1 => Rejection::VersionConflict,
            2 => Rejection::StaleEpoch,
            3 => Rejection::NotOwner,
            4 => Rejection::LeaseExpired,
            other => return Err(reader.error(format!("unknown rejection {other}"))),
        }),
        other => return Err(reader.error(format!("unknown answer tag {other}"))),
    })
}
