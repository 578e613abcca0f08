//! Data and index blocks: prefix-compressed keys with restart points, framed
//! on disk with a checksum and optional lz4.
//!
//! ```text
//! contents = entry* restart: u32 LE * restart_count: u32 LE
//! entry    = shared: varint | unshared: varint | value_len: varint
//!            | key[shared..] (unshared bytes) | value
//! on disk  = frame(compression: u8 | body)           (leasehold_core::frame)
//!            compression 0: body = contents
//!            compression 1: body = raw_len: u32 LE | lz4 block of contents
//! ```
//! Every `RESTART_INTERVAL`-th entry stores its whole key (`shared = 0`) and
//! its offset is listed in the restart array. Keys are encoded internal keys in
//! strictly ascending order. The reader decodes a block whole, checking every
//! length, the restart array and the key order, and caches the result.
//! Written to disk — do not change.

use std::cmp::Ordering;

use leasehold_core::codec::{put_varint, DecodeError, Reader};
use leasehold_core::frame;

use crate::format::{compare_encoded, split, Entry};

pub const RESTART_INTERVAL: usize = 16;
const COMPRESSION_NONE: u8 = 0;
const COMPRESSION_LZ4: u8 = 1;
const LZ4_RATIO_MAX: u64 = 255;

/// Builds one block's contents.
#[derive(Debug, Default)]
pub struct BlockBuilder {
    buf: Vec<u8>,
    restarts: Vec<u32>,
    since_restart: usize,
    last_key: Vec<u8>,
    entries: usize,
}

impl BlockBuilder {
    pub fn new() -> Self {
        BlockBuilder::default()
    }

    /// Adds an entry; `key` must sort after every key added before.
    pub fn add(&mut self, key: &[u8], value: &[u8]) {
        debug_assert!(self.entries == 0 || compare_encoded(&self.last_key, key) == Ordering::Less);
        let shared = if self.since_restart == RESTART_INTERVAL || self.entries == 0 {
            self.restarts.push(self.buf.len() as u32);
            self.since_restart = 0;
            0
        } else {
            self.last_key
                .iter()
                .zip(key)
                .take_while(|(a, b)| a == b)
                .count()
        };
        put_varint(&mut self.buf, shared as u64);
        put_varint(&mut self.buf, (key.len() - shared) as u64);
        put_varint(&mut self.buf, value.len() as u64);
        self.buf.extend_from_slice(&key[shared..]);
        self.buf.extend_from_slice(value);
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        self.since_restart += 1;
        self.entries += 1;
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Bytes the contents would take now.
    pub fn size_estimate(&self) -> usize {
        self.buf.len() + 4 * (self.restarts.len() + 1)
    }

    pub fn last_key(&self) -> &[u8] {
        &self.last_key
    }

    /// The contents; the builder is left empty for the next block.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.buf);
        for restart in &self.restarts {
            out.extend_from_slice(&restart.to_le_bytes());
        }
        out.extend_from_slice(&(self.restarts.len() as u32).to_le_bytes());
        self.restarts.clear();
        self.since_restart = 0;
        self.last_key.clear();
        self.entries = 0;
        out
    }
}

/// Frames block contents for disk, lz4-compressing when asked and worthwhile.
pub fn encode_on_disk(contents: &[u8], compress: bool, out: &mut Vec<u8>) {
    let mut payload = Vec::with_capacity(contents.len() + 5);
    let compressed = compress.then(|| lz4_flex::block::compress(contents));
    match compressed {
        // Keep compression only when it saves at least an eighth.
        Some(compressed) if compressed.len() + 4 < contents.len() - contents.len() / 8 => {
            payload.push(COMPRESSION_LZ4);
            payload.extend_from_slice(&(contents.len() as u32).to_le_bytes());
            payload.extend_from_slice(&compressed);
        }
        _ => {
            payload.push(COMPRESSION_NONE);
            payload.extend_from_slice(contents);
        }
    }
    frame::encode(&payload, out);
}

/// Unframes and decompresses a block read from disk.
pub fn decode_on_disk(framed: &[u8]) -> Result<Vec<u8>, DecodeError> {
    decode_framed(framed, true)
}

/// `decode_on_disk` with the frame checksum check switchable: `false` only
/// for the planted `SkipBlockChecksum` bug.
pub fn decode_framed(framed: &[u8], check_checksum: bool) -> Result<Vec<u8>, DecodeError> {
    if !check_checksum {
        // The bug: trust the frame's length and take the payload unchecked.
        let payload = framed.get(frame::FRAME_HEADER_LEN..).unwrap_or_default();
        return decompress(payload);
    }
    let payload = match frame::decode(framed, 0) {
        Ok(Some((payload, end))) if end == framed.len() => payload,
        Ok(_) => {
            return Err(DecodeError {
                offset: 0,
                reason: "block frame length does not match its handle".into(),
            })
        }
        Err(err) => {
            return Err(DecodeError {
                offset: err.offset(),
                reason: err.reason().into(),
            })
        }
    };
    decompress(payload)
}

fn decompress(payload: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let mut reader = Reader::new(payload);
    match reader.u8("compression")? {
        COMPRESSION_NONE => Ok(payload[1..].to_vec()),
        COMPRESSION_LZ4 => {
            let raw_len = u64::from(reader.u32_le("raw length")?);
            let compressed = &payload[reader.position()..];
            if raw_len > (compressed.len() as u64 + 16) * LZ4_RATIO_MAX {
                return Err(reader.error(format!("raw length {raw_len} is impossible for lz4")));
            }
            let mut contents = vec![0u8; raw_len as usize];
            match lz4_flex::block::decompress_into(compressed, &mut contents) {
                Ok(written) if written == contents.len() => Ok(contents),
                Ok(written) => {
                    Err(reader.error(format!("lz4 gave {written} bytes, expected {raw_len}")))
                }
                Err(err) => Err(reader.error(format!("lz4: {err}"))),
            }
        }
        other => Err(reader.error(format!("unknown block compression {other}"))),
    }
}

/// A decoded block: its entries in order.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Block {
    pub entries: Vec<Entry>,
    /// Bytes held (for the cache's accounting).
    pub charge: usize,
}

impl Block {
    /// Decodes and checks block contents: restart array in bounds and
    /// ascending, every length within the block, restart entries unshared,
    /// keys valid internal keys in strictly ascending order.
    pub fn decode(contents: &[u8]) -> Result<Block, DecodeError> {
        let error = |offset: usize, reason: &str| DecodeError {
            offset,
            reason: reason.to_owned(),
        };
        if contents.len() < 4 {
            return Err(error(0, "block shorter than its restart count"));
        }
        let count_at = contents.len() - 4;
        let restart_count = u32::from_le_bytes([
            contents[count_at],
            contents[count_at + 1],
            contents[count_at + 2],
            contents[count_at + 3],
        ]) as usize;
        if restart_count == 0 || restart_count > count_at / 4 {
            return Err(error(count_at, "bad restart count"));
        }
        let entries_end = count_at - 4 * restart_count;
        let restarts: Vec<usize> = contents[entries_end..count_at]
            .chunks_exact(4)
            .map(|bytes| u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize)
            .collect();
        if restarts[0] != 0
            || restarts.windows(2).any(|pair| pair[0] >= pair[1])
            || restarts[restarts.len() - 1] >= entries_end.max(1)
        {
            return Err(error(
                entries_end,
                "restart offsets out of order or out of bounds",
            ));
        }
        let mut reader = Reader::new(&contents[..entries_end]);
        let mut entries: Vec<Entry> = Vec::new();
        let mut next_restart = 0;
        let mut key: Vec<u8> = Vec::new();
        while !reader.is_at_end() {
            let at = reader.position();
            let is_restart = restarts.get(next_restart) == Some(&at);
            let shared = reader.varint_at_most(key.len() as u64, "shared key length")? as usize;
            if is_restart && shared != 0 {
                return Err(error(at, "a restart entry shares a prefix"));
            }
            let unshared = reader.varint_at_most(reader.remaining() as u64, "key length")? as usize;
            let value_len =
                reader.varint_at_most(reader.remaining() as u64, "value length")? as usize;
            key.truncate(shared);
            key.extend_from_slice(reader.raw(unshared, "key")?);
            let value = reader.raw(value_len, "value")?.to_vec();
            if split(&key).is_none() {
                return Err(error(at, "not an internal key"));
            }
            if entries
                .last()
                .is_some_and(|(last, _)| compare_encoded(last, &key) != Ordering::Less)
            {
                return Err(error(at, "keys out of order"));
            }
            if is_restart {
                next_restart += 1;
            }
            entries.push((key.clone(), value));
        }
        if next_restart != restarts.len() {
            return Err(error(
                entries_end,
                "a restart offset is not an entry boundary",
            ));
        }
        let charge = contents.len() + entries.len() * 48;
        Ok(Block { entries, charge })
    }

    /// Index of the first entry whose key is ≥ `target` (encoded internal key).
    pub fn seek(&self, target: &[u8]) -> usize {
        self.entries
            .partition_point(|(key, _)| compare_encoded(key, target) == Ordering::Less)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{InternalKey, ValueKind};
    use proptest::prelude::*;

    fn sample(count: usize) -> (Vec<u8>, Vec<Entry>) {
        let mut builder = BlockBuilder::new();
        let mut expected = Vec::new();
        for index in 0..count {
            let key = InternalKey::new(
                format!("actor-{index:05}"),
                100 - (index % 3) as u64,
                ValueKind::Put,
            )
            .encode();
            let value = format!("value-{index}").into_bytes();
            builder.add(&key, &value);
            expected.push((key, value));
        }
        (builder.finish(), expected)
    }

    #[test]
    fn blocks_round_trip_with_prefix_compression_and_restarts() {
        let (contents, expected) = sample(100);
        let raw: usize = expected
            .iter()
            .map(|(key, value)| key.len() + value.len())
            .sum();
        assert!(contents.len() < raw, "prefix compression saves bytes");
        let block = Block::decode(&contents).unwrap();
        assert_eq!(block.entries, expected);
        assert_eq!(block.seek(&expected[42].0), 42);
        for compress in [false, true] {
            let mut framed = Vec::new();
            encode_on_disk(&contents, compress, &mut framed);
            assert_eq!(decode_on_disk(&framed).unwrap(), contents);
        }
    }

    #[test]
    fn every_flipped_byte_of_a_framed_block_is_caught() {
        let (contents, _) = sample(40);
        let mut framed = Vec::new();
        encode_on_disk(&contents, true, &mut framed);
        for index in 0..framed.len() {
            let mut damaged = framed.clone();
            damaged[index] ^= 0x20;
            assert!(decode_on_disk(&damaged).is_err(), "byte {index}");
        }
    }

    proptest! {
        #[test]
        fn decoders_never_panic(bytes: Vec<u8>, flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6)) {
            let _ = Block::decode(&bytes);
            let _ = decode_on_disk(&bytes);
            let (mut contents, _) = sample(50);
            for (position, mask) in flips {
                let index = position % contents.len();
                contents[index] ^= mask;
            }
            let _ = Block::decode(&contents);
        }
    }
}
