//! The lease record: which node owns an actor, until when, under which epoch.
//!
//! The epoch is a fencing token: it rises by one each time the lease changes hands
//! (an acquire of a free, released or expired lease) and never goes back.
//! Releasing keeps the record (owner cleared, epoch kept) so the next acquire
//! continues the sequence. `version` rises on every write of the record.
//!
//! Encoding, format version 1 (varints are LEB128; strings are a varint length
//! then UTF-8):
//! ```text
//! u8 format=1 | str actor_type | str actor_id | u8 has_owner | [str owner]
//! | varint epoch | varint version | varint acquired_at_ms | varint expires_at_ms
//! | varint duration_ms | varint renewals | varint metadata_count | (str, str)*
//! ```
//! Written to disk — do not change; add a format version instead.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::codec::{DecodeError, Reader, Writer};
use crate::key::ActorKey;
use crate::time::{duration_millis, Timestamp};

const LEASE_FORMAT_V1: u8 = 1;

/// A cluster node's name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub String);

impl NodeId {
    pub fn new(name: impl Into<String>) -> Self {
        NodeId(name.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub key: ActorKey,
    /// The owner; `None` once released.
    pub node_id: Option<NodeId>,
    /// Fencing token; see the module docs.
    pub epoch: u64,
    /// Rises on every write of this record.
    pub version: u64,
    pub acquired_at: Timestamp,
    pub expires_at: Timestamp,
    /// The duration asked for at acquire; renewals extend by it.
    pub duration: Duration,
    pub renewals: u64,
    pub metadata: BTreeMap<String, String>,
}

impl Lease {
    /// Owned by somebody and not yet expired at `now`.
    pub fn is_held_at(&self, now: Timestamp) -> bool {
        self.node_id.is_some() && now < self.expires_at
    }

    /// Owned by `node` and not yet expired at `now`.
    pub fn is_held_by(&self, node: &NodeId, now: Timestamp) -> bool {
        self.node_id.as_ref() == Some(node) && now < self.expires_at
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut writer = Writer::with_capacity(64);
        writer
            .u8(LEASE_FORMAT_V1)
            .str(&self.key.actor_type)
            .str(&self.key.actor_id);
        match &self.node_id {
            Some(node) => writer.u8(1).str(node.as_str()),
            None => writer.u8(0),
        };
        writer
            .varint(self.epoch)
            .varint(self.version)
            .varint(self.acquired_at.as_millis())
            .varint(self.expires_at.as_millis())
            .varint(duration_millis(self.duration))
            .varint(self.renewals)
            .varint(self.metadata.len() as u64);
        for (name, value) in &self.metadata {
            writer.str(name).str(value);
        }
        writer.finish()
    }

    pub fn decode(bytes: &[u8]) -> Result<Lease, DecodeError> {
        let mut reader = Reader::new(bytes);
        let format = reader.u8("lease format")?;
        if format != LEASE_FORMAT_V1 {
            return Err(DecodeError {
                offset: 0,
                reason: format!("unknown lease format {format}"),
            });
        }
        let key = ActorKey::new(reader.str("actor type")?, reader.str("actor id")?);
        let node_id = match reader.u8("owner flag")? {
            0 => None,
            1 => Some(NodeId::new(reader.str("owner")?)),
            other => return Err(reader.error(format!("bad owner flag {other}"))),
        };
        let epoch = reader.varint("epoch")?;
        let version = reader.varint("version")?;
        let acquired_at = Timestamp(reader.varint("acquired_at")?);
        let expires_at = Timestamp(reader.varint("expires_at")?);
        let duration = Duration::from_millis(reader.varint("duration")?);
        let renewals = reader.varint("renewals")?;
        let metadata = decode_string_map(&mut reader, "metadata")?;
        reader.expect_end("lease")?;
        Ok(Lease {
            key,
            node_id,
            epoch,
            version,
            acquired_at,
            expires_at,
            duration,
            renewals,
            metadata,
        })
    }
}

/// A varint count then (str, str) pairs in strictly ascending key order; the
/// count is bounded by the bytes left (each pair takes at least two), so a
/// corrupt count cannot run long.
pub(crate) fn decode_string_map(
    reader: &mut Reader<'_>,
    what: &str,
) -> Result<BTreeMap<String, String>, DecodeError> {
    let count = reader.varint_at_most(reader.remaining() as u64 / 2, what)?;
    let mut map = BTreeMap::new();
    for _ in 0..count {
        let name = reader.str(what)?;
        // Written in key order, each once: anything else is not our encoding.
        if map
            .last_key_value()
            .is_some_and(|(last, _): (&String, _)| last.as_str() >= name)
        {
            return Err(reader.error(format!("{what}: keys not in ascending order")));
        }
        let value = reader.str(what)?;
        map.insert(name.to_owned(), value.to_owned());
    }
    Ok(map)
}

pub(crate) fn encode_string_map(writer: &mut Writer, map: &BTreeMap<String, String>) {
    writer.varint(map.len() as u64);
    for (name, value) in map {
        writer.str(name).str(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn sample() -> Lease {
        Lease {
            key: ActorKey::new("UserActor", "user-123"),
            node_id: Some(NodeId::new("node-1")),
            epoch: 7,
            version: 19,
            acquired_at: Timestamp(1_000),
            expires_at: Timestamp(301_000),
            duration: Duration::from_secs(300),
            renewals: 3,
            metadata: BTreeMap::from([("zone".to_owned(), "eu-1".to_owned())]),
        }
    }

    #[test]
    fn lease_round_trips_and_released_lease_keeps_epoch() {
        let lease = sample();
        assert_eq!(Lease::decode(&lease.encode()).unwrap(), lease);
        let released = Lease {
            node_id: None,
            ..sample()
        };
        let decoded = Lease::decode(&released.encode()).unwrap();
        assert_eq!(decoded.epoch, 7);
        assert!(!decoded.is_held_at(Timestamp(2_000)));
    }

    #[test]
    fn held_means_owned_and_unexpired() {
        let lease = sample();
        let node = NodeId::new("node-1");
        assert!(lease.is_held_by(&node, Timestamp(300_999)));
        assert!(!lease.is_held_by(&node, Timestamp(301_000)));
        assert!(!lease.is_held_by(&NodeId::new("node-2"), Timestamp(2_000)));
    }

    #[test]
    fn trailing_bytes_and_unknown_formats_are_rejected() {
        let mut bytes = sample().encode();
        bytes.push(0);
        assert!(Lease::decode(&bytes)
            .unwrap_err()
            .reason
            .contains("trailing"));
        bytes[0] = 9;
        assert!(Lease::decode(&bytes)
            .unwrap_err()
            .reason
            .contains("unknown lease format"));
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes: Vec<u8>) {
            let _ = Lease::decode(&bytes);
        }
    }
}
