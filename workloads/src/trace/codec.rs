//! The bytes of one trace op, its answer and the trace header (layout in
//! the parent module's documentation).

use leasehold_core::codec::{DecodeError, Reader, Writer};

use super::{
    Answer, Op, Rejection, TraceHeader, ACTORS_MAX, NAME_BYTES_MAX, NODES_MAX, STATE_BYTES_MAX,
};

pub(super) fn encode_header(header: &TraceHeader) -> Vec<u8> {
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
    writer.finish()
}

pub(super) fn decode_header(payload: &[u8]) -> Result<TraceHeader, DecodeError> {
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

pub(super) fn encode_op(writer: &mut Writer, op: &Op) {
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

pub(super) fn decode_op(reader: &mut Reader, header: &TraceHeader) -> Result<Op, DecodeError> {
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

pub(super) fn encode_answer(writer: &mut Writer, answer: &Answer) {
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

pub(super) fn decode_answer(
    reader: &mut Reader,
    header: &TraceHeader,
) -> Result<Answer, DecodeError> {
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
