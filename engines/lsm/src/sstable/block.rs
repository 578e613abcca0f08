//! Data and index blocks: prefix-compressed keys with restart points, framed
//! on disk with a checksum and optional lz4.
//!
//! ```text
//! contents = entry* restart: u32 LE * restart_count: u32 LE
//! entry    = shared: varint | unshared: varint | value_len: varint
//!            | key[shared..] (unshared bytes) | value
//! on disk  = frame(compression: u8 | body)           (leasehold_storage::frame)
//!            compression 0: body = contents
//!            compression 1: body = raw_len: u32 LE | lz4 block of contents
//! ```
//! Every `RESTART_INTERVAL`-th entry stores its whole key (`shared = 0`) and
//! its offset is listed in the restart array. Keys are encoded internal keys in
//! strictly ascending order. The reader checks a block whole once, when it
//! comes from disk (every length, the restart array, the key order), caches
//! its bytes, and from then on reads it in place: a binary search over the
//! restart keys, then at most one restart interval decoded.
//! Written to disk — do not change.

use std::cmp::Ordering;

use std::sync::Arc;

use bytes::Bytes;
use leasehold_storage::codec::{get_varint, put_varint, DecodeError, Reader};
use leasehold_storage::frame;

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
    encode_payload(contents, compress, &mut payload);
    frame::encode(&payload, out);
}

/// Appends `compression: u8 | body` for `contents`.
fn encode_payload(contents: &[u8], compress: bool, payload: &mut Vec<u8>) {
    let compressed = compressed(contents, compress);
    encode_compression_header(contents, compressed.is_some(), payload);
    payload.extend_from_slice(compressed.as_deref().unwrap_or(contents));
}

/// lz4 of `contents`, when asked and only if it saves at least an eighth.
pub fn compressed(contents: &[u8], compress: bool) -> Option<Vec<u8>> {
    let compressed = compress.then(|| lz4_flex::block::compress(contents))?;
    (compressed.len() + 4 < contents.len() - contents.len() / 8).then_some(compressed)
}

/// The `compression: u8` (and lz4's `raw_length: u32`) before a body, so a
/// caller can frame the body as a part of its own (blob records do).
pub fn encode_compression_header(contents: &[u8], lz4: bool, out: &mut Vec<u8>) {
    if lz4 {
        out.push(COMPRESSION_LZ4);
        out.extend_from_slice(&(contents.len() as u32).to_le_bytes());
    } else {
        out.push(COMPRESSION_NONE);
    }
}

/// Unframes and decompresses a block read from disk.
pub fn decode_on_disk(framed: Vec<u8>) -> Result<Bytes, DecodeError> {
    decode_framed(framed, true)
}

/// `decode_on_disk` with the frame checksum check switchable: `false` only
/// for the planted `SkipBlockChecksum` bug. An uncompressed block's contents
/// are the read buffer itself, not a copy.
pub fn decode_framed(framed: Vec<u8>, check_checksum: bool) -> Result<Bytes, DecodeError> {
    let payload_end = if !check_checksum {
        // The bug: trust the frame's length and take the payload unchecked.
        framed.len()
    } else {
        match frame::decode(&framed, 0) {
            Ok(Some((_, end))) if end == framed.len() => end,
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
        }
    };
    let framed = Bytes::from(framed);
    let payload = framed.slice(frame::FRAME_HEADER_LEN.min(payload_end)..payload_end);
    decompress(payload)
}

/// The contents of `compression: u8 | body`; uncompressed, a slice of it.
pub fn decompress(payload: Bytes) -> Result<Bytes, DecodeError> {
    let mut reader = Reader::new(&payload);
    match reader.u8("compression")? {
        COMPRESSION_NONE => Ok(payload.slice(1..)),
        COMPRESSION_LZ4 => {
            let raw_len = u64::from(reader.u32_le("raw length")?);
            let compressed = &payload[reader.position()..];
            if raw_len > (compressed.len() as u64 + 16) * LZ4_RATIO_MAX {
                return Err(reader.error(format!("raw length {raw_len} is impossible for lz4")));
            }
            let mut contents = vec![0u8; raw_len as usize];
            match lz4_flex::block::decompress_into(compressed, &mut contents) {
                Ok(written) if written == contents.len() => Ok(Bytes::from(contents)),
                Ok(written) => {
                    Err(reader.error(format!("lz4 gave {written} bytes, expected {raw_len}")))
                }
                Err(err) => Err(reader.error(format!("lz4: {err}"))),
            }
        }
        other => Err(reader.error(format!("unknown block compression {other}"))),
    }
}

/// A checked block, read in place: lookups binary-search the restart array
/// and decode only the entries after the restart they land on; values are
/// handed out as slices of the block's buffer, never copied.
#[derive(Debug, Default)]
pub struct Block {
    contents: Bytes,
    /// Where the restart array begins (the end of the entries).
    entries_end: usize,
    restart_count: usize,
    /// Kept from the check, for comparing the block with its index entry.
    last_key: Box<[u8]>,
    /// Bytes held (for the cache's accounting).
    pub charge: usize,
}

/// One entry's parts, by offset into the block.
struct Parsed {
    shared: usize,
    key: std::ops::Range<usize>,
    value: std::ops::Range<usize>,
}

impl Block {
    /// Checks block contents once, when they come from disk, so every later
    /// read may trust them: restart array in bounds and ascending, every length
    /// within the block, restart entries unshared, keys valid internal keys in
    /// strictly ascending order.
    pub fn new(contents: Bytes) -> Result<Block, DecodeError> {
        let error = |offset: usize, reason: &str| DecodeError {
            offset,
            reason: reason.to_owned(),
        };
        if contents.len() < 4 {
            return Err(error(0, "block shorter than its restart count"));
        }
        let count_at = contents.len() - 4;
        let restart_count = u32_at(&contents, count_at) as usize;
        if restart_count == 0 || restart_count > count_at / 4 {
            return Err(error(count_at, "bad restart count"));
        }
        let entries_end = count_at - 4 * restart_count;
        let mut block = Block {
            entries_end,
            restart_count,
            last_key: Box::default(),
            charge: contents.len() + BLOCK_OVERHEAD,
            contents,
        };
        let last_restart = block.restart(restart_count - 1);
        if block.restart(0) != 0
            || (1..restart_count).any(|index| block.restart(index - 1) >= block.restart(index))
            || last_restart >= entries_end.max(1)
        {
            return Err(error(
                entries_end,
                "restart offsets out of order or out of bounds",
            ));
        }
        let mut next_restart = 0;
        let mut key: Vec<u8> = Vec::new();
        let mut previous: Vec<u8> = Vec::new();
        let mut at = 0;
        while at < entries_end {
            let is_restart = next_restart < restart_count && block.restart(next_restart) == at;
            let parsed = block.parse_checked(at, key.len())?;
            if is_restart && parsed.shared != 0 {
                return Err(error(at, "a restart entry shares a prefix"));
            }
            previous.clear();
            previous.extend_from_slice(&key);
            key.truncate(parsed.shared);
            key.extend_from_slice(&block.contents[parsed.key.clone()]);
            if split(&key).is_none() {
                return Err(error(at, "not an internal key"));
            }
            if at > 0 && compare_encoded(&previous, &key) != Ordering::Less {
                return Err(error(at, "keys out of order"));
            }
            if is_restart {
                next_restart += 1;
            }
            at = parsed.value.end;
        }
        if next_restart != restart_count {
            return Err(error(
                entries_end,
                "a restart offset is not an entry boundary",
            ));
        }
        block.charge += key.len();
        block.last_key = key.into_boxed_slice();
        Ok(block)
    }

    fn restart(&self, index: usize) -> usize {
        u32_at(&self.contents, self.entries_end + 4 * index) as usize
    }

    /// Parses the entry at `at` with every length checked against the block.
    fn parse_checked(&self, at: usize, previous_key_len: usize) -> Result<Parsed, DecodeError> {
        let mut reader = Reader::new(&self.contents[at..self.entries_end]);
        let shared = reader.varint_at_most(previous_key_len as u64, "shared key length")? as usize;
        let unshared = reader.varint_at_most(reader.remaining() as u64, "key length")? as usize;
        let value_len = reader.varint_at_most(reader.remaining() as u64, "value length")? as usize;
        let key_start = at + reader.position();
        let remaining = reader.remaining();
        if unshared > remaining || value_len > remaining - unshared {
            return Err(DecodeError {
                offset: at,
                reason: "an entry runs past the block's entries".into(),
            });
        }
        let value_start = key_start + unshared;
        Ok(Parsed {
            shared,
            key: key_start..value_start,
            value: value_start..value_start + value_len,
        })
    }

    /// Parses the entry at `at` of a checked block.
    fn parse(&self, at: usize) -> Parsed {
        let mut position = at;
        let mut next = || {
            let (value, len) =
                get_varint(&self.contents[position..self.entries_end]).unwrap_or((0, 1));
            position += len;
            value as usize
        };
        let (shared, unshared, value_len) = (next(), next(), next());
        let key_start = position;
        Parsed {
            shared,
            key: key_start..key_start + unshared,
            value: key_start + unshared..key_start + unshared + value_len,
        }
    }

    /// The whole key of the restart entry `index` (stored unshared).
    fn restart_key(&self, index: usize) -> &[u8] {
        &self.contents[self.parse(self.restart(index)).key]
    }

    /// A cursor before the first entry.
    pub fn iter(self: &Arc<Self>) -> BlockIter {
        BlockIter {
            block: Arc::clone(self),
            at: 0,
            key: Vec::new(),
        }
    }

    /// A cursor before the first entry whose key is ≥ `target` (encoded
    /// internal key): a binary search over the restart points, then a walk of
    /// at most one restart interval.
    pub fn seek(self: &Arc<Self>, target: &[u8]) -> BlockIter {
        // The last restart whose key is < target (or the first restart).
        let (mut low, mut high) = (0, self.restart_count);
        while low < high {
            let middle = low + (high - low) / 2;
            if compare_encoded(self.restart_key(middle), target) == Ordering::Less {
                low = middle + 1;
            } else {
                high = middle;
            }
        }
        let restart = low.saturating_sub(1);
        let mut iter = BlockIter {
            block: Arc::clone(self),
            at: self.restart(restart),
            key: Vec::new(),
        };
        while let Some(parsed) = iter.peek_parsed() {
            iter.key.truncate(parsed.shared);
            iter.key
                .extend_from_slice(&self.contents[parsed.key.clone()]);
            if compare_encoded(&iter.key, target) != Ordering::Less {
                // Rewind onto this entry: the cursor hands it out next.
                iter.key.truncate(parsed.shared);
                break;
            }
            iter.at = parsed.value.end;
        }
        iter
    }

    /// The last key, for checking the block against its index entry.
    pub fn last_key(&self) -> &[u8] {
        &self.last_key
    }
}

/// Fixed cost of a cached block besides its bytes.
const BLOCK_OVERHEAD: usize = 96;

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

/// A cursor over a checked block's entries.
pub struct BlockIter {
    block: Arc<Block>,
    at: usize,
    /// The key of the entry before `at` (its shared prefix is all that the
    /// next entry needs).
    key: Vec<u8>,
}

impl BlockIter {
    fn peek_parsed(&self) -> Option<Parsed> {
        (self.at < self.block.entries_end).then(|| self.block.parse(self.at))
    }

    /// The next entry's key and value, borrowed from the cursor and block.
    pub fn next_entry(&mut self) -> Option<(&[u8], Bytes)> {
        let parsed = self.peek_parsed()?;
        self.key.truncate(parsed.shared);
        self.key
            .extend_from_slice(&self.block.contents[parsed.key.clone()]);
        self.at = parsed.value.end;
        Some((&self.key, self.block.contents.slice(parsed.value)))
    }
}

impl Iterator for BlockIter {
    type Item = Entry;

    fn next(&mut self) -> Option<Entry> {
        self.next_entry().map(|(key, value)| (key.to_vec(), value))
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
            expected.push((key, Bytes::from(value)));
        }
        (builder.finish(), expected)
    }

    fn sample_block(count: usize) -> (Arc<Block>, Vec<Entry>) {
        let (contents, expected) = sample(count);
        (
            Arc::new(Block::new(Bytes::from(contents)).unwrap()),
            expected,
        )
    }

    #[test]
    fn blocks_round_trip_with_prefix_compression_and_restarts() {
        let (contents, expected) = sample(100);
        let raw: usize = expected
            .iter()
            .map(|(key, value)| key.len() + value.len())
            .sum();
        assert!(contents.len() < raw, "prefix compression saves bytes");
        for compress in [false, true] {
            let mut framed = Vec::new();
            encode_on_disk(&contents, compress, &mut framed);
            assert_eq!(decode_on_disk(framed).unwrap(), contents);
        }
        let (block, expected) = sample_block(100);
        assert_eq!(block.iter().collect::<Vec<_>>(), expected);
        assert_eq!(block.last_key(), expected[99].0);
    }

    /// A seek lands where a search of the decoded entries would, for every
    /// key, for keys between them and past either end, whichever restart
    /// interval it falls in.
    #[test]
    fn seeks_land_on_the_first_key_not_below_the_target() {
        for count in [1, 15, 16, 17, 100] {
            let (block, expected) = sample_block(count);
            let mut targets: Vec<Vec<u8>> = expected.iter().map(|(key, _)| key.clone()).collect();
            for index in 0..=count {
                targets.push(
                    InternalKey::new(format!("actor-{index:05}"), 200, ValueKind::Put).encode(),
                );
                targets.push(
                    InternalKey::new(format!("actor-{index:05}"), 1, ValueKind::Put).encode(),
                );
            }
            targets.push(InternalKey::new("a", 1, ValueKind::Put).encode());
            for target in targets {
                let at = expected
                    .partition_point(|(key, _)| compare_encoded(key, &target) == Ordering::Less);
                assert_eq!(
                    block.seek(&target).collect::<Vec<_>>(),
                    expected[at..].to_vec(),
                    "{count} entries, target {target:?}"
                );
            }
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
            assert!(decode_on_disk(damaged).is_err(), "byte {index}");
        }
    }

    proptest! {
        #[test]
        fn decoders_never_panic(bytes: Vec<u8>, flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6)) {
            let _ = Block::new(Bytes::from(bytes.clone()));
            let _ = decode_on_disk(bytes);
            let (mut contents, expected) = sample(50);
            for (position, mask) in flips {
                let index = position % contents.len();
                contents[index] ^= mask;
            }
            // Damage that passes the check must still read without a panic.
            if let Ok(block) = Block::new(Bytes::from(contents)) {
                let block = Arc::new(block);
                let _ = block.iter().count();
                let _ = block.last_key();
                for (key, _) in &expected {
                    let _ = block.seek(key).next();
                }
            }
        }
    }
}
