//! The snapshot record: an actor's serialized state with its version, the epoch
//! of the lease it was written under, and its SHA-256.
//!
//! The hash is computed by the store when the snapshot is saved and checked on
//! every load; a mismatch is `StoreError::Integrity`, never data.
//!
//! Encoding, format version 1 (state last so large states are one copy):
//! ```text
//! u8 format=1 | str actor_type | str actor_id | str snapshot_id | varint version
//! | varint epoch | varint created_at_ms | varint updated_at_ms | [32] sha256(state)
//! | u8 has_ttl | [varint ttl_ms] | varint tag_count | (str, str)* | bytes state
//! ```
//! Written to disk — do not change; add a format version instead.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::codec::{DecodeError, Reader, Writer};
use crate::key::ActorKey;
use crate::lease::{decode_string_map, encode_string_map};
use crate::store::SnapshotInfo;
use crate::time::{duration_millis, Timestamp};

const SNAPSHOT_FORMAT_V1: u8 = 1;

/// SHA-256 digest length.
pub const STATE_HASH_LEN: usize = 32;

pub type StateHash = [u8; STATE_HASH_LEN];

/// What a caller hands to `Store::save`; the store adds version, epoch, times
/// and hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotWrite {
    pub key: ActorKey,
    pub state: Bytes,
    pub tags: BTreeMap<String, String>,
    pub ttl: Option<Duration>,
    /// The caller's name for this snapshot; the store makes one up when absent.
    pub snapshot_id: Option<String>,
}

impl SnapshotWrite {
    pub fn new(key: ActorKey, state: impl Into<Bytes>) -> Self {
        SnapshotWrite {
            key,
            state: state.into(),
            tags: BTreeMap::new(),
            ttl: None,
            snapshot_id: None,
        }
    }

    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    pub fn with_tag(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.insert(name.into(), value.into());
        self
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub key: ActorKey,
    pub snapshot_id: String,
    /// 1 for the first save, +1 for each save after.
    pub version: u64,
    /// The epoch of the lease the writer held.
    pub epoch: u64,
    pub state: Bytes,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub state_hash: StateHash,
    pub tags: BTreeMap<String, String>,
    pub ttl: Option<Duration>,
}

impl Snapshot {
    /// When the snapshot stops being visible, if it has a TTL.
    pub fn expires_at(&self) -> Option<Timestamp> {
        self.ttl.map(|ttl| self.updated_at.saturating_add(ttl))
    }

    pub fn is_expired_at(&self, now: Timestamp) -> bool {
        expired(self.expires_at(), now)
    }

    /// Checks the state against its stored hash: `Err((stored, computed))` as hex.
    pub fn verify_hash(&self) -> Result<(), (String, String)> {
        let computed = state_hash(&self.state);
        if computed == self.state_hash {
            Ok(())
        } else {
            Err((to_hex(&self.state_hash), to_hex(&computed)))
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut writer = Writer::with_capacity(self.state.len() + 96);
        self.encode_fields(&mut writer);
        writer.bytes(&self.state);
        writer.finish()
    }

    /// `encode().len()` without encoding the state (a store counting the
    /// bytes it writes need not copy megabytes to do it).
    pub fn encoded_len(&self) -> usize {
        let mut writer = Writer::with_capacity(96);
        self.encode_fields(&mut writer);
        writer.finish().len() + crate::codec::varint_len(self.state.len() as u64) + self.state.len()
    }

    /// Everything but the state, which comes last.
    fn encode_fields(&self, writer: &mut Writer) {
        writer
            .u8(SNAPSHOT_FORMAT_V1)
            .str(&self.key.actor_type)
            .str(&self.key.actor_id)
            .str(&self.snapshot_id)
            .varint(self.version)
            .varint(self.epoch)
            .varint(self.created_at.as_millis())
            .varint(self.updated_at.as_millis())
            .raw(&self.state_hash);
        match self.ttl {
            Some(ttl) => writer.u8(1).varint(duration_millis(ttl)),
            None => writer.u8(0),
        };
        encode_string_map(writer, &self.tags);
    }

    /// Decodes the record; does not check the hash (see `verify_hash`), so tools
    /// can show a damaged snapshot for what it is.
    pub fn decode(bytes: &[u8]) -> Result<Snapshot, DecodeError> {
        let (mut snapshot, state) = Snapshot::decode_fields(bytes)?;
        snapshot.state = Bytes::copy_from_slice(&bytes[state]);
        Ok(snapshot)
    }

    /// `decode`, the state a slice of `bytes` rather than a copy.
    pub fn decode_shared(bytes: Bytes) -> Result<Snapshot, DecodeError> {
        let (mut snapshot, state) = Snapshot::decode_fields(&bytes)?;
        snapshot.state = bytes.slice(state);
        Ok(snapshot)
    }

    /// What `list` shows of the record, without copying its state (a
    /// compaction filter or a scan over large states asks this).
    pub fn decode_info(bytes: &[u8]) -> Result<SnapshotInfo, DecodeError> {
        let (snapshot, state) = Snapshot::decode_fields(bytes)?;
        Ok(SnapshotInfo {
            state_len: state.len() as u64,
            ..SnapshotInfo::from(&snapshot)
        })
    }

    /// The fields before the tags and state; those left empty.
    fn decode_head(reader: &mut Reader<'_>) -> Result<Snapshot, DecodeError> {
        let format = reader.u8("snapshot format")?;
        if format != SNAPSHOT_FORMAT_V1 {
            return Err(DecodeError {
                offset: 0,
                reason: format!("unknown snapshot format {format}"),
            });
        }
        let key = ActorKey::new(reader.str("actor type")?, reader.str("actor id")?);
        let snapshot_id = reader.str("snapshot id")?.to_owned();
        let version = reader.varint("version")?;
        let epoch = reader.varint("epoch")?;
        let created_at = Timestamp(reader.varint("created_at")?);
        let updated_at = Timestamp(reader.varint("updated_at")?);
        let mut state_hash = [0u8; STATE_HASH_LEN];
        state_hash.copy_from_slice(reader.raw(STATE_HASH_LEN, "state hash")?);
        let ttl = match reader.u8("ttl flag")? {
            0 => None,
            1 => Some(Duration::from_millis(reader.varint("ttl")?)),
            other => return Err(reader.error(format!("bad ttl flag {other}"))),
        };
        Ok(Snapshot {
            key,
            snapshot_id,
            version,
            epoch,
            state: Bytes::new(),
            created_at,
            updated_at,
            state_hash,
            tags: BTreeMap::new(),
            ttl,
        })
    }

    /// When a record expires, decoding only its fields up to the TTL (the
    /// tags and state after it may even be cut off): what a compaction
    /// filter asks of every record it meets.
    pub fn expires_at_of_prefix(prefix: &[u8]) -> Result<Option<Timestamp>, DecodeError> {
        Ok(Snapshot::decode_head(&mut Reader::new(prefix))?.expires_at())
    }

    /// Every field but the state, left empty, and where the state lies.
    fn decode_fields(bytes: &[u8]) -> Result<(Snapshot, std::ops::Range<usize>), DecodeError> {
        let mut reader = Reader::new(bytes);
        let mut snapshot = Snapshot::decode_head(&mut reader)?;
        snapshot.tags = decode_string_map(&mut reader, "tags")?;
        let state_len = reader.bytes("state")?.len();
        let state_end = reader.position();
        reader.expect_end("snapshot")?;
        Ok((snapshot, state_end - state_len..state_end))
    }
}

/// Whether a snapshot that expires at `expires_at` is expired at `now`.
pub fn expired(expires_at: Option<Timestamp>, now: Timestamp) -> bool {
    expires_at.is_some_and(|expires_at| now >= expires_at)
}

/// SHA-256 of a state.
pub fn state_hash(state: &[u8]) -> StateHash {
    Sha256::digest(state).into()
}

/// Lower-case hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 0x0f)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Snapshot {
        let state = Bytes::from_static(b"{\"count\":42}");
        Snapshot {
            key: ActorKey::new("Counter", "c-1"),
            snapshot_id: "s-1".into(),
            version: 3,
            epoch: 2,
            state_hash: state_hash(&state),
            state,
            created_at: Timestamp(10),
            updated_at: Timestamp(20),
            tags: BTreeMap::from([("node_id".into(), "node-1".into())]),
            ttl: Some(Duration::from_secs(3600)),
        }
    }

    #[test]
    fn encoded_len_is_the_encoding_length_without_encoding_the_state() {
        for state in [Vec::new(), vec![7u8; 127], vec![9u8; 200_000]] {
            let snapshot = Snapshot {
                state: Bytes::from(state),
                ..sample()
            };
            assert_eq!(snapshot.encoded_len(), snapshot.encode().len());
        }
    }

    /// The three decoders agree; the shared one's state is a slice of the
    /// record, and the info one copies no state at all.
    /// A compaction filter may see only a record's first bytes: its expiry
    /// reads from any prefix that reaches the TTL, and no shorter one.
    #[test]
    fn expiry_reads_from_a_prefix_that_reaches_the_ttl() {
        let snapshot = sample();
        let bytes = snapshot.encode();
        let expected = Some(Timestamp(20).saturating_add(Duration::from_secs(3600)));
        assert_eq!(Snapshot::expires_at_of_prefix(&bytes).unwrap(), expected);
        let head_len = (1..bytes.len())
            .find(|&len| Snapshot::expires_at_of_prefix(&bytes[..len]).is_ok())
            .unwrap();
        assert_eq!(
            Snapshot::expires_at_of_prefix(&bytes[..head_len]).unwrap(),
            expected
        );
        // The tags and the state come after the TTL.
        assert!(head_len + snapshot.state.len() + 10 < bytes.len());
    }

    #[test]
    fn shared_and_info_decoding_agree_with_decode() {
        let snapshot = sample();
        let encoded = Bytes::from(snapshot.encode());
        let shared = Snapshot::decode_shared(encoded.clone()).unwrap();
        assert_eq!(shared, snapshot);
        let within = encoded.as_ptr_range();
        assert!(
            within.contains(&shared.state.as_ptr()),
            "the state is not a copy"
        );
        let info = Snapshot::decode_info(&encoded).unwrap();
        assert_eq!(info, SnapshotInfo::from(&snapshot));
        assert!(!info.is_expired_at(Timestamp(20)));
        assert!(info.is_expired_at(Timestamp(20 + 3_600_000)));
        assert!(Snapshot::decode_info(&encoded[..encoded.len() - 1]).is_err());
    }

    #[test]
    fn snapshot_round_trips_and_verifies() {
        let snapshot = sample();
        let decoded = Snapshot::decode(&snapshot.encode()).unwrap();
        assert_eq!(decoded, snapshot);
        assert!(decoded.verify_hash().is_ok());
        assert_eq!(decoded.expires_at(), Some(Timestamp(3_600_020)));
    }

    #[test]
    fn tampered_state_fails_the_hash_check() {
        let mut snapshot = sample();
        snapshot.state = Bytes::from_static(b"{\"count\":43}");
        let (stored, computed) = snapshot.verify_hash().unwrap_err();
        assert_ne!(stored, computed);
        assert_eq!(stored.len(), 64);
    }

    #[test]
    fn sha256_of_empty_state_is_the_known_digest() {
        assert_eq!(
            to_hex(&state_hash(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes: Vec<u8>) {
            let _ = Snapshot::decode(&bytes);
            let _ = Snapshot::decode_info(&bytes);
            let _ = Snapshot::decode_shared(Bytes::from(bytes.clone()));
        }
    }
}
