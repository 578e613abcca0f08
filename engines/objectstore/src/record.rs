//! What the objects hold (FORMAT.md has the byte layout).
//!
//! A lease object is the core's encoded `Lease`, nothing around it. A snapshot
//! object is an envelope around the core's encoded `Snapshot`: it also carries
//! the actor's *fence* — the highest lease epoch that has claimed the object —
//! and can be a tombstone, because S3 has no conditional DELETE: a delete is a
//! conditional PUT of a tombstone, so a racing writer still sees the object
//! change under it. While a multi-actor commit is in flight the envelope also
//! holds its *intent* (the commit's id, deadline and after-image), and a
//! commit record object says whether that commit happened.

use bytes::Bytes;
use leasehold_core::codec::{DecodeError, Reader, Writer};
use leasehold_core::{ActorKey, Snapshot, Timestamp};

/// First bytes of every snapshot object.
pub const SNAPSHOT_MAGIC: &[u8; 4] = b"LHOS";
/// The envelope's format version without an intent.
pub const ENVELOPE_V1: u8 = 1;
/// The envelope's format version with an intent (a commit in flight).
pub const ENVELOPE_V2: u8 = 2;
/// First bytes of every commit record.
pub const COMMIT_MAGIC: &[u8; 4] = b"LHOC";
pub const COMMIT_RECORD_V1: u8 = 1;

const KIND_SNAPSHOT: u8 = 1;
const KIND_TOMBSTONE: u8 = 2;

/// A multi-actor commit's claim on one actor: until the commit record
/// `commit` says committed (apply `after`) or aborted (drop the intent), the
/// actor's committed state is the envelope's own snapshot and no other write
/// may replace the object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Intent {
    /// The commit record's name (`<prefix>/commits/<commit>`).
    pub commit: String,
    /// After this instant (the caller's clock) a reader that finds no
    /// record may abort the commit by writing one that says so.
    pub deadline: Timestamp,
    /// The writer's fencing epoch: the fence becomes at least this when the
    /// intent is applied.
    pub fence_epoch: u64,
    /// The snapshot after the commit; `None` for a delete.
    pub after: Option<Snapshot>,
}

/// The decoded body of a snapshot object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// No write fenced with an older epoch may replace this object.
    pub fence: u64,
    /// `None`: a tombstone (deleted, purged, or only fenced so far).
    pub snapshot: Option<Snapshot>,
    /// A multi-actor commit in flight on this actor.
    pub intent: Option<Intent>,
}

/// What a commit record says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Committed,
    Aborted,
}

/// A commit record: the commit point of a multi-actor commit (written
/// create-only, once, by its coordinator as `Committed` or by anyone as
/// `Aborted`), and the actors it names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitRecord {
    pub outcome: Outcome,
    pub participants: Vec<ActorKey>,
}

impl CommitRecord {
    pub fn encode(&self) -> Bytes {
        let mut writer = Writer::with_capacity(32 + 32 * self.participants.len());
        writer
            .raw(COMMIT_MAGIC)
            .u8(COMMIT_RECORD_V1)
            .u8(match self.outcome {
                Outcome::Committed => 1,
                Outcome::Aborted => 2,
            })
            .varint(self.participants.len() as u64);
        for key in &self.participants {
            writer.str(&key.actor_type).str(&key.actor_id);
        }
        Bytes::from(writer.finish())
    }

    pub fn decode(bytes: &[u8]) -> Result<CommitRecord, DecodeError> {
        let mut reader = Reader::new(bytes);
        if reader.raw(COMMIT_MAGIC.len(), "magic")? != COMMIT_MAGIC {
            return Err(DecodeError {
                offset: 0,
                reason: "not a Leasehold commit record (bad magic)".into(),
            });
        }
        let format = reader.u8("commit record format")?;
        if format != COMMIT_RECORD_V1 {
            return Err(reader.error(format!("unknown commit record format {format}")));
        }
        let outcome = match reader.u8("outcome")? {
            1 => Outcome::Committed,
            2 => Outcome::Aborted,
            other => return Err(reader.error(format!("unknown commit outcome {other}"))),
        };
        // Each participant takes at least two bytes.
        let count = reader.varint_at_most(reader.remaining() as u64 / 2, "participants")?;
        let mut participants = Vec::with_capacity(count as usize);
        for _ in 0..count {
            participants.push(ActorKey::new(
                reader.str("actor type")?,
                reader.str("actor id")?,
            ));
        }
        reader.expect_end("commit record")?;
        Ok(CommitRecord {
            outcome,
            participants,
        })
    }
}

impl Envelope {
    /// The epoch a writer must at least hold: the fence, or the epoch the
    /// stored snapshot was written under, whichever is higher.
    pub fn current_epoch(&self) -> u64 {
        self.fence
            .max(self.snapshot.as_ref().map_or(0, |snapshot| snapshot.epoch))
    }

    /// A settled envelope: this snapshot (or tombstone) under this fence.
    pub fn settled(fence: u64, snapshot: Option<Snapshot>) -> Envelope {
        Envelope {
            fence,
            snapshot,
            intent: None,
        }
    }

    pub fn encode(&self) -> Bytes {
        let payload = self.snapshot.as_ref().map(Snapshot::encode);
        let after = self
            .intent
            .as_ref()
            .and_then(|intent| intent.after.as_ref().map(Snapshot::encode));
        let mut writer = Writer::with_capacity(
            payload.as_ref().map_or(0, Vec::len) + after.as_ref().map_or(0, Vec::len) + 64,
        );
        let version = if self.intent.is_some() {
            ENVELOPE_V2
        } else {
            ENVELOPE_V1
        };
        writer.raw(SNAPSHOT_MAGIC).u8(version);
        writer.u8(if payload.is_some() {
            KIND_SNAPSHOT
        } else {
            KIND_TOMBSTONE
        });
        writer.varint(self.fence);
        if let Some(intent) = &self.intent {
            writer
                .str(&intent.commit)
                .varint(intent.deadline.as_millis())
                .varint(intent.fence_epoch);
            match &after {
                Some(after) => writer.u8(KIND_SNAPSHOT).bytes(after),
                None => writer.u8(KIND_TOMBSTONE),
            };
        }
        if let Some(payload) = &payload {
            writer.raw(payload);
        }
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
        if format != ENVELOPE_V1 && format != ENVELOPE_V2 {
            return Err(reader.error(format!("unknown envelope format {format}")));
        }
        let kind = reader.u8("envelope kind")?;
        let fence = reader.varint("fence epoch")?;
        let intent = if format == ENVELOPE_V2 {
            let commit = reader.str("commit id")?.to_owned();
            let deadline = Timestamp(reader.varint("deadline")?);
            let fence_epoch = reader.varint("intent fence epoch")?;
            let after = match reader.u8("intent kind")? {
                KIND_SNAPSHOT => {
                    let start = reader.position();
                    let bytes = reader.bytes("after-image")?;
                    Some(Snapshot::decode(bytes).map_err(|err| DecodeError {
                        offset: start + err.offset,
                        reason: format!("after-image: {}", err.reason),
                    })?)
                }
                KIND_TOMBSTONE => None,
                other => return Err(reader.error(format!("unknown intent kind {other}"))),
            };
            Some(Intent {
                commit,
                deadline,
                fence_epoch,
                after,
            })
        } else {
            None
        };
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
        Ok(Envelope {
            fence,
            snapshot,
            intent,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message
    use super::*;
    use leasehold_core::rules;
    use leasehold_core::SnapshotWrite;
    use proptest::prelude::*;

    fn snapshot(state: &[u8]) -> Snapshot {
        let write = SnapshotWrite::new(ActorKey::new("T", "a/b c"), state.to_vec());
        rules::next_snapshot(write, None, 3, Timestamp(7)).unwrap()
    }

    #[test]
    fn snapshots_and_tombstones_round_trip() {
        let intent = |after: Option<Snapshot>| {
            Some(Intent {
                commit: "c-1".into(),
                deadline: Timestamp(99),
                fence_epoch: 4,
                after,
            })
        };
        for envelope in [
            Envelope::settled(5, Some(snapshot(b"state"))),
            Envelope::settled(9, None),
            Envelope {
                intent: intent(Some(snapshot(b"after"))),
                ..Envelope::settled(5, Some(snapshot(b"before")))
            },
            Envelope {
                intent: intent(None),
                ..Envelope::settled(5, None)
            },
        ] {
            assert_eq!(Envelope::decode(&envelope.encode()).unwrap(), envelope);
        }
        let record = CommitRecord {
            outcome: Outcome::Aborted,
            participants: vec![ActorKey::new("T", "a"), ActorKey::new("T", "b")],
        };
        assert_eq!(CommitRecord::decode(&record.encode()).unwrap(), record);
        let fenced = Envelope::settled(2, Some(snapshot(b"x")));
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
            framed[4] = ENVELOPE_V2;
            let _ = Envelope::decode(&framed);
            let _ = Envelope::decode(&bytes);
            let mut record = COMMIT_MAGIC.to_vec();
            record.push(COMMIT_RECORD_V1);
            record.extend_from_slice(&bytes);
            let _ = CommitRecord::decode(&record);
        }
    }
}
