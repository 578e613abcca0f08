//! Pages: the fixed-size unit of the data file, each checksummed and typed.
//!
//! ```text
//! page    = checksum: u32 | kind: u8 | 0: u8 ×3 | page_id: u64 | txn: u64
//!           | payload_len: u32 | 0: u32 | payload | zeros to page_size
//! checksum = masked CRC-32 of every byte after it (the whole page)
//! kind     = 1 meta | 2 leaf | 3 branch | 4 overflow | 5 freelist
//! ```
//! `page_id` is where the page belongs and `txn` the checkpoint that wrote
//! it: a page read from the wrong place, or newer than the tree that points to
//! it, is caught. Written to disk — do not change.

use leasehold_storage::frame;

pub const HEADER_LEN: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageKind {
    Meta = 1,
    Leaf = 2,
    Branch = 3,
    Overflow = 4,
    Freelist = 5,
}

impl PageKind {
    fn from_byte(byte: u8) -> Option<PageKind> {
        Some(match byte {
            1 => PageKind::Meta,
            2 => PageKind::Leaf,
            3 => PageKind::Branch,
            4 => PageKind::Overflow,
            5 => PageKind::Freelist,
            _ => return None,
        })
    }
}

/// Payload bytes a page of `page_size` holds.
pub fn capacity(page_size: usize) -> usize {
    page_size - HEADER_LEN
}

/// A whole page holding `payload`.
pub fn seal(page_size: usize, kind: PageKind, page_id: u64, txn: u64, payload: &[u8]) -> Vec<u8> {
    assert!(
        payload.len() <= capacity(page_size),
        "payload of {} bytes does not fit a page",
        payload.len()
    );
    let mut page = vec![0u8; page_size];
    page[4] = kind as u8;
    page[8..16].copy_from_slice(&page_id.to_le_bytes());
    page[16..24].copy_from_slice(&txn.to_le_bytes());
    page[24..28].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    page[HEADER_LEN..HEADER_LEN + payload.len()].copy_from_slice(payload);
    let checksum = frame::checksum(&[&page[4..]]);
    page[..4].copy_from_slice(&checksum.to_le_bytes());
    page
}

/// A checked page.
#[derive(Debug)]
pub struct Opened<'a> {
    pub kind: PageKind,
    pub txn: u64,
    pub payload: &'a [u8],
}

/// Checks `page` (read from `page_id`) and returns its kind, txn and payload.
pub fn open(page: &[u8], page_id: u64) -> Result<Opened<'_>, String> {
    open_checked(page, page_id, true)
}

/// `open` with the checksum check switchable: `false` only for the planted
/// `SkipPageChecksum` bug.
pub fn open_checked(page: &[u8], page_id: u64, check_checksum: bool) -> Result<Opened<'_>, String> {
    if page.len() < HEADER_LEN {
        return Err("page shorter than its header".into());
    }
    let stored = u32::from_le_bytes([page[0], page[1], page[2], page[3]]);
    if check_checksum && frame::checksum(&[&page[4..]]) != stored {
        return Err("page checksum mismatch".into());
    }
    let kind =
        PageKind::from_byte(page[4]).ok_or_else(|| format!("unknown page kind {}", page[4]))?;
    let word = |at: usize| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&page[at..at + 8]);
        u64::from_le_bytes(bytes)
    };
    if word(8) != page_id {
        return Err(format!(
            "page says it is page {}, read from page {page_id}",
            word(8)
        ));
    }
    let payload_len = u32::from_le_bytes([page[24], page[25], page[26], page[27]]) as usize;
    if payload_len > page.len() - HEADER_LEN {
        return Err(format!("payload length {payload_len} exceeds the page"));
    }
    Ok(Opened {
        kind,
        txn: word(16),
        payload: &page[HEADER_LEN..HEADER_LEN + payload_len],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn pages_round_trip_and_any_flipped_bit_or_wrong_place_is_caught() {
        let page = seal(1024, PageKind::Leaf, 7, 3, b"payload");
        let opened = open(&page, 7).unwrap();
        assert_eq!(
            (opened.kind, opened.txn, opened.payload),
            (PageKind::Leaf, 3, &b"payload"[..])
        );
        assert!(open(&page, 8).unwrap_err().contains("page 7"));
        for bit in (0..page.len() * 8).step_by(13) {
            let mut damaged = page.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(open(&damaged, 7).is_err(), "bit {bit}");
        }
    }

    proptest! {
        #[test]
        fn open_never_panics(bytes: Vec<u8>, page_id: u64) {
            let _ = open(&bytes, page_id);
        }
    }
}
