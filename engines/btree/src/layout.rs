//! Payloads of leaf, branch and overflow pages.
//!
//! ```text
//! leaf     = count: u16 | entry*
//! entry    = key: bytes | flags: u8 | [raw_len: varint if flags.lz4]
//!            | inline:   value: bytes
//!            | overflow: first_page: varint | stored_len: varint
//!            flags: bit 0 overflow, bit 1 lz4 (the stored bytes are an lz4 block)
//! branch   = count: u16 | child: u64 × count | key: bytes × (count − 1)
//! overflow = next_page: u64 (0 = last) | chunk (the rest of the payload)
//! ```
//! (`bytes` = varint length, then the bytes.) Written to disk — do not change.
//! Decoding borrows from the payload: keys and values are not copied.

use leasehold_storage::codec::{put_varint, DecodeError, Reader};

use crate::node::PageId;

const FLAG_OVERFLOW: u8 = 1;
const FLAG_LZ4: u8 = 2;
/// lz4 cannot expand more than about 255:1.
const LZ4_RATIO_MAX: u64 = 255;

/// How a value is stored in a leaf.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stored<'a> {
    Inline(&'a [u8]),
    Overflow { first_page: PageId, stored_len: u64 },
}

/// A leaf entry as encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeafEntry<'a> {
    pub key: &'a [u8],
    /// `Some(raw_len)` when the stored bytes are lz4-compressed.
    pub lz4_raw_len: Option<u64>,
    pub stored: Stored<'a>,
}

/// The bytes to store for `value`: lz4-compressed when asked and smaller.
pub fn compress(value: &[u8], enabled: bool) -> (Option<u64>, Vec<u8>) {
    if enabled && value.len() > 32 {
        let compressed = lz4_flex::block::compress(value);
        if compressed.len() < value.len() {
            return (Some(value.len() as u64), compressed);
        }
    }
    (None, value.to_vec())
}

/// Whether `stored` could decompress to `lz4_raw_len` bytes (checked when a
/// page is read, so that a damaged length is found before any allocation).
pub fn check_lz4_len(lz4_raw_len: Option<u64>, stored: &[u8]) -> Result<(), String> {
    match lz4_raw_len {
        Some(raw_len) if raw_len > (stored.len() as u64 + 16) * LZ4_RATIO_MAX => {
            Err(format!("raw length {raw_len} is impossible for lz4"))
        }
        _ => Ok(()),
    }
}

/// The value from stored bytes.
pub fn decompress(lz4_raw_len: Option<u64>, stored: &[u8]) -> Result<Vec<u8>, String> {
    let Some(raw_len) = lz4_raw_len else {
        return Ok(stored.to_vec());
    };
    check_lz4_len(lz4_raw_len, stored)?;
    let mut raw = vec![0u8; raw_len as usize];
    match lz4_flex::block::decompress_into(stored, &mut raw) {
        Ok(written) if written == raw.len() => Ok(raw),
        Ok(written) => Err(format!("lz4 gave {written} bytes, expected {raw_len}")),
        Err(err) => Err(format!("lz4: {err}")),
    }
}

pub fn encode_leaf(entries: &[LeafEntry<'_>]) -> Vec<u8> {
    let mut out = (entries.len() as u16).to_le_bytes().to_vec();
    for entry in entries {
        put_varint(&mut out, entry.key.len() as u64);
        out.extend_from_slice(entry.key);
        let overflow = matches!(entry.stored, Stored::Overflow { .. });
        out.push(
            if overflow { FLAG_OVERFLOW } else { 0 }
                | if entry.lz4_raw_len.is_some() {
                    FLAG_LZ4
                } else {
                    0
                },
        );
        if let Some(raw_len) = entry.lz4_raw_len {
            put_varint(&mut out, raw_len);
        }
        match &entry.stored {
            Stored::Inline(bytes) => {
                put_varint(&mut out, bytes.len() as u64);
                out.extend_from_slice(bytes);
            }
            Stored::Overflow {
                first_page,
                stored_len,
            } => {
                put_varint(&mut out, *first_page);
                put_varint(&mut out, *stored_len);
            }
        }
    }
    out
}

pub fn decode_leaf(payload: &[u8]) -> Result<Vec<LeafEntry<'_>>, DecodeError> {
    let mut reader = Reader::new(payload);
    let count = u16::from_le_bytes([reader.u8("count")?, reader.u8("count")?]) as usize;
    let mut entries: Vec<LeafEntry<'_>> = Vec::with_capacity(count.min(payload.len() / 2));
    for _ in 0..count {
        let key = reader.bytes("key")?;
        if entries.last().is_some_and(|last| last.key >= key) {
            return Err(reader.error("leaf keys out of order"));
        }
        let flags = reader.u8("flags")?;
        if flags & !(FLAG_OVERFLOW | FLAG_LZ4) != 0 {
            return Err(reader.error(format!("unknown entry flags {flags}")));
        }
        let lz4_raw_len = if flags & FLAG_LZ4 != 0 {
            Some(reader.varint("raw length")?)
        } else {
            None
        };
        let stored = if flags & FLAG_OVERFLOW != 0 {
            Stored::Overflow {
                first_page: reader.varint("first page")?,
                stored_len: reader.varint("stored length")?,
            }
        } else {
            Stored::Inline(reader.bytes("value")?)
        };
        entries.push(LeafEntry {
            key,
            lz4_raw_len,
            stored,
        });
    }
    reader.expect_end("leaf")?;
    Ok(entries)
}

pub fn encode_branch<K: AsRef<[u8]>>(keys: &[K], children: &[PageId]) -> Vec<u8> {
    debug_assert_eq!(keys.len() + 1, children.len());
    let mut out = (children.len() as u16).to_le_bytes().to_vec();
    for child in children {
        out.extend_from_slice(&child.to_le_bytes());
    }
    for key in keys {
        let key = key.as_ref();
        put_varint(&mut out, key.len() as u64);
        out.extend_from_slice(key);
    }
    out
}

pub fn decode_branch(payload: &[u8]) -> Result<(Vec<&[u8]>, Vec<PageId>), DecodeError> {
    let mut reader = Reader::new(payload);
    let count = u16::from_le_bytes([reader.u8("count")?, reader.u8("count")?]) as usize;
    if count < 2 {
        return Err(reader.error(format!("branch with {count} children")));
    }
    let mut children = Vec::with_capacity(count);
    for _ in 0..count {
        children.push(reader.u64_le("child")?);
    }
    let mut keys: Vec<&[u8]> = Vec::with_capacity(count - 1);
    for _ in 1..count {
        let key = reader.bytes("separator")?;
        if keys.last().is_some_and(|last| *last >= key) {
            return Err(reader.error("separators out of order"));
        }
        keys.push(key);
    }
    reader.expect_end("branch")?;
    Ok((keys, children))
}

pub fn encode_overflow(next: PageId, chunk: &[u8]) -> Vec<u8> {
    let mut out = next.to_le_bytes().to_vec();
    out.extend_from_slice(chunk);
    out
}

pub fn decode_overflow(payload: &[u8]) -> Result<(PageId, &[u8]), DecodeError> {
    let mut reader = Reader::new(payload);
    let next = reader.u64_le("next page")?;
    Ok((next, &payload[8..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn payloads_round_trip() {
        let entries = vec![
            LeafEntry {
                key: b"a",
                lz4_raw_len: None,
                stored: Stored::Inline(b"one"),
            },
            LeafEntry {
                key: b"b",
                lz4_raw_len: Some(5000),
                stored: Stored::Overflow {
                    first_page: 9,
                    stored_len: 77,
                },
            },
        ];
        assert_eq!(decode_leaf(&encode_leaf(&entries)).unwrap(), entries);
        let keys: Vec<&[u8]> = vec![b"m", b"t"];
        assert_eq!(
            decode_branch(&encode_branch(&keys, &[3, 4, 5])).unwrap(),
            (keys, vec![3, 4, 5])
        );
        let (raw_len, stored) = compress(&[7u8; 1000], true);
        assert_eq!(decompress(raw_len, &stored).unwrap(), vec![7u8; 1000]);
        assert_eq!(
            decode_overflow(&encode_overflow(4, b"chunk")).unwrap(),
            (4, &b"chunk"[..])
        );
    }

    proptest! {
        #[test]
        fn decoders_never_panic(bytes: Vec<u8>, raw_len: u64) {
            let _ = decode_leaf(&bytes);
            let _ = decode_branch(&bytes);
            let _ = decode_overflow(&bytes);
            let _ = decompress(Some(raw_len % (1 << 24)), &bytes);
        }
    }
}
