//! The two meta slots (pages 0 and 1) and the free list.
//!
//! ```text
//! meta     = magic: u64 "LHBTREE1" | format: u32 = 2 | page_size: u32
//!            | root: u64 (0 = empty tree) | page_count: u64 | wal_number: u64
//!            | free_count: u64 | freelist_head: u64 (0 = none)
//!            | live_entries: u64 | live_bytes: u64            (format 2 only)
//!            | inline_free: u64 × min(free_count, what fits)
//! freelist = next: u64 (0 = last) | count: u32 | page: u64 × count
//! ```
//! The meta page's header `txn` is the checkpoint's number; recovery takes the
//! valid slot with the higher txn. Checkpoint n writes slot n mod 2, so the
//! newest complete checkpoint always survives a torn meta write.
//! Format 2 records the tree's live entries and bytes, so that open need not
//! walk the tree to know them; format 1 (read, never written) does not, and
//! open counts them by walking it once. Written to disk — do not change.

use leasehold_storage::codec::{DecodeError, Reader};

use crate::node::PageId;

pub const META_MAGIC: u64 = u64::from_le_bytes(*b"LHBTREE1");
const META_FORMAT_V1: u32 = 1;
const META_FORMAT_V2: u32 = 2;
const META_FIXED_LEN: usize = 8 + 4 + 4 + 8 * 7;
const FREELIST_FIXED_LEN: usize = 12;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meta {
    pub txn: u64,
    pub page_size: u32,
    pub root: Option<PageId>,
    pub page_count: u64,
    pub wal_number: u64,
    pub free_count: u64,
    pub freelist_head: Option<PageId>,
    /// Live entries and their key + value bytes in the tree (`None` from a
    /// format-1 meta, which did not record them).
    pub live: Option<(u64, u64)>,
    pub inline_free: Vec<PageId>,
}

/// Free page ids a meta page holds inline.
pub fn inline_capacity(capacity: usize) -> usize {
    (capacity - META_FIXED_LEN) / 8
}

/// Free page ids a freelist page holds.
pub fn freelist_page_capacity(capacity: usize) -> usize {
    (capacity - FREELIST_FIXED_LEN) / 8
}

impl Meta {
    /// Format 2, or format 1 when `live` is `None` (as an older build wrote).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(META_FIXED_LEN + self.inline_free.len() * 8);
        out.extend_from_slice(&META_MAGIC.to_le_bytes());
        let format = if self.live.is_some() {
            META_FORMAT_V2
        } else {
            META_FORMAT_V1
        };
        out.extend_from_slice(&format.to_le_bytes());
        out.extend_from_slice(&self.page_size.to_le_bytes());
        for value in [
            self.root.unwrap_or(0),
            self.page_count,
            self.wal_number,
            self.free_count,
            self.freelist_head.unwrap_or(0),
        ] {
            out.extend_from_slice(&value.to_le_bytes());
        }
        if let Some((entries, bytes)) = self.live {
            out.extend_from_slice(&entries.to_le_bytes());
            out.extend_from_slice(&bytes.to_le_bytes());
        }
        for page in &self.inline_free {
            out.extend_from_slice(&page.to_le_bytes());
        }
        out
    }

    pub fn decode(payload: &[u8], txn: u64) -> Result<Meta, DecodeError> {
        let mut reader = Reader::new(payload);
        if reader.u64_le("magic")? != META_MAGIC {
            return Err(DecodeError {
                offset: 0,
                reason: "not a Leasehold B+tree meta page".into(),
            });
        }
        let format = reader.u32_le("format")?;
        if format != META_FORMAT_V1 && format != META_FORMAT_V2 {
            return Err(reader.error(format!("unknown meta format {format}")));
        }
        let page_size = reader.u32_le("page size")?;
        let root = reader.u64_le("root")?;
        let page_count = reader.u64_le("page count")?;
        let wal_number = reader.u64_le("wal number")?;
        let free_count = reader.u64_le("free count")?;
        let freelist_head = reader.u64_le("freelist head")?;
        let live = if format == META_FORMAT_V2 {
            Some((reader.u64_le("live entries")?, reader.u64_le("live bytes")?))
        } else {
            None
        };
        if free_count >= page_count.max(2)
            || root >= page_count.max(2)
            || freelist_head >= page_count.max(2)
        {
            return Err(reader.error("meta names pages beyond its page count"));
        }
        let inline = reader.remaining() / 8;
        if (inline as u64) > free_count || !reader.remaining().is_multiple_of(8) {
            return Err(reader.error("inline free list does not match its count"));
        }
        let mut inline_free = Vec::with_capacity(inline);
        for _ in 0..inline {
            inline_free.push(reader.u64_le("free page")?);
        }
        Ok(Meta {
            txn,
            page_size,
            root: (root != 0).then_some(root),
            page_count,
            wal_number,
            free_count,
            freelist_head: (freelist_head != 0).then_some(freelist_head),
            live,
            inline_free,
        })
    }
}

pub fn encode_freelist(next: Option<PageId>, pages: &[PageId]) -> Vec<u8> {
    let mut out = next.unwrap_or(0).to_le_bytes().to_vec();
    out.extend_from_slice(&(pages.len() as u32).to_le_bytes());
    for page in pages {
        out.extend_from_slice(&page.to_le_bytes());
    }
    out
}

pub fn decode_freelist(payload: &[u8]) -> Result<(Option<PageId>, Vec<PageId>), DecodeError> {
    let mut reader = Reader::new(payload);
    let next = reader.u64_le("next")?;
    let count = reader.u32_le("count")? as usize;
    if count * 8 != reader.remaining() {
        return Err(reader.error("freelist count does not match its bytes"));
    }
    let mut pages = Vec::with_capacity(count);
    for _ in 0..count {
        pages.push(reader.u64_le("free page")?);
    }
    Ok(((next != 0).then_some(next), pages))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn meta_and_freelist_round_trip() {
        let meta = Meta {
            txn: 9,
            page_size: 4096,
            root: Some(5),
            page_count: 40,
            wal_number: 3,
            free_count: 4,
            freelist_head: Some(7),
            live: Some((12, 3400)),
            inline_free: vec![10, 11],
        };
        assert_eq!(Meta::decode(&meta.encode(), 9).unwrap(), meta);
        // A format-1 meta: the same without the live counts.
        let v1 = Meta {
            live: None,
            ..meta.clone()
        };
        let mut v2_bytes = meta.encode();
        v2_bytes.drain(56..72);
        v2_bytes[8..12].copy_from_slice(&META_FORMAT_V1.to_le_bytes());
        assert_eq!(v1.encode(), v2_bytes);
        assert_eq!(Meta::decode(&v1.encode(), 9).unwrap(), v1);
        assert_eq!(
            decode_freelist(&encode_freelist(Some(3), &[4, 5])).unwrap(),
            (Some(3), vec![4, 5])
        );
    }

    proptest! {
        #[test]
        fn decoders_never_panic(bytes: Vec<u8>) {
            let _ = Meta::decode(&bytes, 1);
            let _ = decode_freelist(&bytes);
        }
    }
}
