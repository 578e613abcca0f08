//! What the objects hold (FORMAT.md has the byte layout).
//!
//! A lease object is the core's encoded `Lease`, nothing around it. A snapshot
//! object is an envelope around the core's encoded `Snapshot`: it also carries
//! the actor's *fence* — the highest lease epoch that has claimed the object —
//! and can be a tombstone, because S3 has no conditional DELETE: a delete is a
//! conditional PUT of a tombstone, so a racing writer still sees the object
//! change under it.

use bytes::Bytes;
use leasehold_core::codec::{DecodeError, Reader, Writer};
use leasehold_core::Snapshot;

/// First bytes of every snapshot object.
pub const SNAPSHOT_MAGIC: &[u8; 4] = b"LHOS";
/// The envelope's format version.
pub const ENVELOPE_V1: u8 = 1;

const KIND_SNAPSHOT: u8 = 1;
const KIND_TOMBSTONE: u8 = 2;

/// The decoded body of a snapshot object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// No write fenced with an older epoch may replace this object.
    pub fence: u64,
    /// `None`: a tombstone (deleted, purged, or only fenced so far).
    pub snapshot: Option<Snapshot>,
}

impl Envelope {
    /// The epoch a writer must at least hold: the fence, or the epoch the
    /// stored snapshot was written under, whichever is higher.
    pub fn current_epoch(&self) -> u64 {
        self.fence
            .max(self.snapshot.as_ref().map_or(0, |snapshot| snapshot.epoch))
    }

    pub fn encode(&self) -> Bytes {
        let payload = self.snapshot.as_ref().map(Snapshot::encode);
        let mut writer = Writer::with_capacity(payload.as_ref().map_or(0, Vec::len) + 16);
        writer.raw(SNAPSHOT_MAGIC).u8(ENVELOPE_V1);
        match &payload {
            Some(payload) => writer.u8(KIND_SNAPSHOT).varint(self.fence).raw(payload),
            None => writer.u8(KIND_TOMBSTONE).varint(self.fence),
        };
        Bytes::from(writer.finish())
    }

    pub fn decode(bytes: &[u8]) -> Result<Envelope, DecodeError> {
        let mut reader = Reader::new(bytes);
        if reader.raw(SNAPSHOT_MAGIC.len(), "magic")? != SNAPSHOT_MAGIC {
            return Err(DecodeError {
                offset: 0,
                reason: "not a Leasehold snapshot object (bad magic)".into(),
            });
        }
        let format = reader.u8("envelope format")?;
        if format != ENVELOPE_V1 {
            return Err(reader.error(format!("unknown envelope format {format}")));
        }
        let kind = reader.u8("envelope kind")?;
        let fence = reader.varint("fence epoch")?;
        let snapshot = match kind {
            KIND_SNAPSHOT => {
                let start = reader.position();
                let snapshot = Snapshot::decode(&bytes[start..]).map_err(|err| DecodeError {
                    offset: start + err.offset,
                    reason: err.reason,
                })?;
                Some(snapshot)
            }
            KIND_TOMBSTONE => {
                reader.expect_end("tombstone")?;
                None
            }
            other => return Err(reader.error(format!("unknown envelope kind {other}"))),
        };
        Ok(Envelope { fence, snapshot })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message
    use super::*;
    use leasehold_core::rules;
    use leasehold_core::{ActorKey, SnapshotWrite, Timestamp};
    use proptest::prelude::*;

    fn snapshot(state: &[u8]) -> Snapshot {
        let write = SnapshotWrite::new(ActorKey::new("T", "a/b c"), state.to_vec());
        rules::next_snapshot(write, None, 3, Timestamp(7)).unwrap()
    }

    #[test]
    fn snapshots_and_tombstones_round_trip() {
        for envelope in [
            Envelope {
                fence: 5,
                snapshot: Some(snapshot(b"state")),
            },
            Envelope {
                fence: 9,
                snapshot: None,
            },
        ] {
            assert_eq!(Envelope::decode(&envelope.encode()).unwrap(), envelope);
        }
        let fenced = Envelope {
            fence: 2,
            snapshot: Some(snapshot(b"x")),
        };
        assert_eq!(fenced.current_epoch(), 3);
    }

    #[test]
    fn a_foreign_object_is_rejected() {
        let err = Envelope::decode(b"{\"json\": 1}").unwrap_err();
        assert!(err.reason.contains("magic"), "{err:?}");
    }

    proptest! {
        #[test]
        fn decoding_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut framed = SNAPSHOT_MAGIC.to_vec();
            framed.push(ENVELOPE_V1);
            framed.extend_from_slice(&bytes);
            let _ = Envelope::decode(&framed);
            let _ = Envelope::decode(&bytes);
        }
    }
}
