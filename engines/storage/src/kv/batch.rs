//! Write batches: the operations a `write` applies atomically, the values
//! they share, and their encoding in every engine's log.

use bytes::Bytes;

use crate::codec::{put_varint, DecodeError, Reader, Writer};

/// One operation of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchOp {
    /// The value is shared: an engine that keeps it (a memtable) keeps the
    /// caller's buffer, not a copy.
    Put {
        key: Vec<u8>,
        value: Bytes,
    },
    Delete {
        key: Vec<u8>,
    },
}

impl BatchOp {
    pub fn key(&self) -> &[u8] {
        match self {
            BatchOp::Put { key, .. } | BatchOp::Delete { key } => key,
        }
    }
}

/// What `WriteBatch::put` takes as a value: owned buffers become shared
/// without a copy; a borrowed slice is copied once, here.
pub trait IntoValue {
    fn into_value(self) -> Bytes;
}

impl IntoValue for Bytes {
    fn into_value(self) -> Bytes {
        self
    }
}

impl IntoValue for Vec<u8> {
    fn into_value(self) -> Bytes {
        Bytes::from(self)
    }
}

impl IntoValue for String {
    fn into_value(self) -> Bytes {
        Bytes::from(self)
    }
}

impl IntoValue for &[u8] {
    fn into_value(self) -> Bytes {
        Bytes::copy_from_slice(self)
    }
}

impl IntoValue for &Vec<u8> {
    fn into_value(self) -> Bytes {
        Bytes::copy_from_slice(self)
    }
}

impl IntoValue for &str {
    fn into_value(self) -> Bytes {
        Bytes::copy_from_slice(self.as_bytes())
    }
}

impl<const N: usize> IntoValue for &[u8; N] {
    fn into_value(self) -> Bytes {
        Bytes::copy_from_slice(self)
    }
}

/// The most bytes one batch may take encoded (its keys and values plus a few
/// bytes per op). Every engine refuses a larger batch with
/// `CapacityExceeded` before it changes anything: records on disk are frames
/// of at most 4 GiB (`frame::FRAME_PAYLOAD_LEN_MAX`), and a batch's log
/// record, or a table block holding one of its values, must fit one.
pub const BATCH_BYTES_MAX: u64 = 1 << 31;

/// Operations applied atomically, in order (a later op on the same key wins).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteBatch {
    pub ops: Vec<BatchOp>,
}

impl WriteBatch {
    pub fn new() -> Self {
        WriteBatch::default()
    }

    pub fn put(&mut self, key: impl Into<Vec<u8>>, value: impl IntoValue) -> &mut Self {
        self.ops.push(BatchOp::Put {
            key: key.into(),
            value: value.into_value(),
        });
        self
    }

    pub fn delete(&mut self, key: impl Into<Vec<u8>>) -> &mut Self {
        self.ops.push(BatchOp::Delete { key: key.into() });
        self
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// `CapacityExceeded` if the batch is above `BATCH_BYTES_MAX`.
    pub fn check_size(&self) -> crate::error::KvResult<()> {
        // Each op's kind byte and two varint lengths: at most 21 bytes.
        let bytes = self
            .logical_bytes()
            .saturating_add(21 * self.ops.len() as u64);
        if bytes > BATCH_BYTES_MAX {
            return Err(crate::error::KvError::CapacityExceeded {
                what: format!("a write batch of about {bytes} bytes"),
                limit: BATCH_BYTES_MAX,
            });
        }
        Ok(())
    }

    /// Key and value bytes the caller asked to write: the denominator of write
    /// amplification.
    pub fn logical_bytes(&self) -> u64 {
        self.ops
            .iter()
            .map(|op| match op {
                BatchOp::Put { key, value } => key.len() + value.len(),
                BatchOp::Delete { key } => key.len(),
            } as u64)
            .sum()
    }
}

const BATCH_OP_PUT: u8 = 1;
const BATCH_OP_DELETE: u8 = 2;

impl WriteBatch {
    /// The batch as log bytes, shared by every engine's log:
    /// ```text
    /// varint op_count | ( u8 kind=1 | bytes key | bytes value )   put
    ///                 | ( u8 kind=2 | bytes key )                 delete
    /// ```
    /// (`bytes` = varint length, then the bytes.) Written to disk — do not change.
    pub fn encode(&self) -> Vec<u8> {
        let mut writer =
            Writer::with_capacity(self.logical_bytes() as usize + 4 * self.ops.len() + 4);
        writer.varint(self.ops.len() as u64);
        for op in &self.ops {
            match op {
                BatchOp::Put { key, value } => writer.u8(BATCH_OP_PUT).bytes(key).bytes(value),
                BatchOp::Delete { key } => writer.u8(BATCH_OP_DELETE).bytes(key),
            };
        }
        writer.finish()
    }

    /// `encode`'s bytes after `prefix`, as parts that joined make them: the
    /// small pieces (counts, kinds, lengths, keys) in `scratch`, each value
    /// borrowed where it is, so a log writes the batch with one copy.
    pub fn encode_parts<'a>(&'a self, prefix: &[u8], scratch: &'a mut Vec<u8>) -> Vec<&'a [u8]> {
        scratch.clear();
        scratch.extend_from_slice(prefix);
        put_varint(scratch, self.ops.len() as u64);
        // Where each value goes: after this many scratch bytes.
        let mut cuts: Vec<(usize, &'a [u8])> = Vec::with_capacity(self.ops.len());
        for op in &self.ops {
            match op {
                BatchOp::Put { key, value } => {
                    scratch.push(BATCH_OP_PUT);
                    put_varint(scratch, key.len() as u64);
                    scratch.extend_from_slice(key);
                    put_varint(scratch, value.len() as u64);
                    cuts.push((scratch.len(), value));
                }
                BatchOp::Delete { key } => {
                    scratch.push(BATCH_OP_DELETE);
                    put_varint(scratch, key.len() as u64);
                    scratch.extend_from_slice(key);
                }
            }
        }
        let scratch: &'a [u8] = scratch;
        let mut parts = Vec::with_capacity(2 * cuts.len() + 1);
        let mut start = 0;
        for (end, value) in cuts {
            parts.push(&scratch[start..end]);
            parts.push(value);
            start = end;
        }
        parts.push(&scratch[start..]);
        parts
    }

    /// Inverse of `encode`; every count and length is checked against the bytes.
    pub fn decode(bytes: &[u8]) -> Result<WriteBatch, DecodeError> {
        let mut reader = Reader::new(bytes);
        // Each op takes at least two bytes (kind + empty key).
        let count = reader.varint_at_most(bytes.len() as u64 / 2, "batch op count")?;
        // Room grows with the ops actually decoded, not with a claimed count
        // (a crafted count of len/2 tiny ops would otherwise reserve ~24× the
        // record up front).
        let mut ops = Vec::with_capacity(count.min(1024) as usize);
        for _ in 0..count {
            let op = match reader.u8("batch op kind")? {
                BATCH_OP_PUT => BatchOp::Put {
                    key: reader.bytes("key")?.to_vec(),
                    value: Bytes::copy_from_slice(reader.bytes("value")?),
                },
                BATCH_OP_DELETE => BatchOp::Delete {
                    key: reader.bytes("key")?.to_vec(),
                },
                other => return Err(reader.error(format!("unknown batch op kind {other}"))),
            };
            ops.push(op);
        }
        reader.expect_end("batch")?;
        Ok(WriteBatch { ops })
    }

    /// Applies the batch to an ordered map (the reference semantics).
    pub fn apply_to(&self, map: &mut std::collections::BTreeMap<Vec<u8>, Vec<u8>>) {
        for op in &self.ops {
            match op {
                BatchOp::Put { key, value } => {
                    map.insert(key.clone(), value.to_vec());
                }
                BatchOp::Delete { key } => {
                    map.remove(key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn batches_round_trip(ops in proptest::collection::vec((any::<bool>(), any::<Vec<u8>>(), any::<Vec<u8>>()), 0..20)) {
            let mut batch = WriteBatch::new();
            for (put, key, value) in ops {
                if put { batch.put(key, value); } else { batch.delete(key); }
            }
            prop_assert_eq!(WriteBatch::decode(&batch.encode()).unwrap(), batch.clone());
            let mut scratch = Vec::new();
            let joined = batch.encode_parts(b"prefix", &mut scratch).concat();
            prop_assert_eq!(&joined[..6], b"prefix");
            prop_assert_eq!(&joined[6..], &batch.encode()[..]);
        }

        #[test]
        fn batch_decode_never_panics(bytes: Vec<u8>) {
            let _ = WriteBatch::decode(&bytes);
        }
    }
}
