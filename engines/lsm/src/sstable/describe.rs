//! A table file as a person reads it, for `leasehold dump` (the layout is
//! table.rs's): what checks out and what does not, block by block.

use leasehold_storage::dump::KeyNamer;
use std::sync::Arc;

use bytes::Bytes;
use leasehold_storage::codec::Reader;
use leasehold_storage::frame;

use super::block::{decode_on_disk, Block};
use super::bloom::Bloom;
use super::table::{Footer, FOOTER_LEN};
use crate::format::{self, Entry, ValueKind};

/// A framed block checked and ready to read.
fn read_block(framed: &[u8]) -> Result<Arc<Block>, String> {
    decode_on_disk(framed.to_vec())
        .and_then(|contents: Bytes| Block::new(contents))
        .map(Arc::new)
        .map_err(|err| err.to_string())
}

/// A table file as a person reads it, for `leasehold dump`: the footer, the
/// filter, the index and every data block with its checksum shown as valid or
/// not, and up to `max_entries` entries of each block. Damage is reported
/// where it is found and the rest is still described; nothing is trusted that
/// did not check out.
pub fn describe(bytes: &[u8], max_entries: usize, name_key: KeyNamer<'_>) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    if bytes.len() < FOOTER_LEN {
        let _ = writeln!(
            out,
            "  CORRUPT: {} bytes is too short for a table",
            bytes.len()
        );
        return out;
    }
    let footer_at = bytes.len() - FOOTER_LEN;
    let mut footer_bytes = [0u8; FOOTER_LEN];
    footer_bytes.copy_from_slice(&bytes[footer_at..]);
    let footer = match Footer::decode(&footer_bytes) {
        Ok(footer) => footer,
        Err(reason) => {
            let _ = writeln!(
                out,
                "  footer @{footer_at}: INVALID ({reason}); nothing else can be located"
            );
            return out;
        }
    };
    let _ = writeln!(
        out,
        "  footer @{footer_at}: valid; {} entries, index @{} ({} bytes), filter @{} ({} bytes)",
        footer.entries,
        footer.index_offset,
        footer.index_len,
        footer.filter_offset,
        footer.filter_len
    );
    let slice = |offset: u64, len: u64| -> Option<&[u8]> {
        let end = offset.checked_add(len)?;
        bytes.get(usize::try_from(offset).ok()?..usize::try_from(end).ok()?)
    };
    match slice(footer.filter_offset, footer.filter_len).map(|framed| frame::decode(framed, 0)) {
        Some(Ok(Some((payload, _)))) if payload.first() == Some(&0) => {
            match Bloom::decode(&payload[1..]) {
                Ok(bloom) => {
                    let _ = writeln!(
                        out,
                        "  filter: checksum valid, bloom of {} bytes",
                        bloom.size()
                    );
                }
                Err(err) => {
                    let _ = writeln!(out, "  filter: checksum valid, bloom INVALID: {err}");
                }
            }
        }
        _ => {
            let _ = writeln!(
                out,
                "  filter @{}: checksum INVALID or out of the file",
                footer.filter_offset
            );
        }
    }
    let index = match slice(footer.index_offset, footer.index_len)
        .ok_or_else(|| "out of the file".to_owned())
        .and_then(read_block)
    {
        Ok(index) => index,
        Err(reason) => {
            let _ = writeln!(
                out,
                "  index @{}: INVALID ({reason}); the data blocks cannot be located",
                footer.index_offset
            );
            return out;
        }
    };
    let index: Vec<Entry> = index.iter().collect();
    let _ = writeln!(out, "  index: checksum valid, {} data blocks", index.len());
    for (number, (last_key, handle)) in index.iter().enumerate() {
        let mut reader = Reader::new(handle);
        let located = reader
            .varint("offset")
            .and_then(|offset| Ok((offset, reader.varint("len")?)));
        let Ok((offset, len)) = located else {
            let _ = writeln!(out, "  block {number}: INVALID handle in the index");
            continue;
        };
        let block = slice(offset, len)
            .ok_or_else(|| "out of the file".to_owned())
            .and_then(read_block);
        match block {
            Ok(block) => {
                let entries: Vec<Entry> = block.iter().collect();
                let _ = writeln!(
                    out,
                    "  block {number} @{offset} ({len} bytes): checksum valid, {} entries, last {}",
                    entries.len(),
                    describe_internal_key(last_key, name_key)
                );
                for (key, value) in entries.iter().take(max_entries) {
                    let _ = writeln!(
                        out,
                        "    {} ({} value bytes)",
                        describe_internal_key(key, name_key),
                        value.len()
                    );
                }
                if entries.len() > max_entries {
                    let _ = writeln!(out, "    … {} more entries", entries.len() - max_entries);
                }
            }
            Err(reason) => {
                let _ = writeln!(
                    out,
                    "  block {number} @{offset} ({len} bytes): INVALID ({reason})"
                );
            }
        }
    }
    out
}

/// `snapshot player/7 #1234 put` for an encoded internal key.
fn describe_internal_key(encoded: &[u8], name_key: KeyNamer<'_>) -> String {
    match format::split(encoded) {
        Some((user_key, sequence, kind)) => format!(
            "{} #{sequence} {}",
            name_key(user_key),
            match kind {
                ValueKind::Put => "put",
                ValueKind::Blob => "put (in a blob file)",
                ValueKind::Delete => "delete",
            }
        ),
        None => format!("INVALID internal key ({} bytes)", encoded.len()),
    }
}
