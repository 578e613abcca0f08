//! `leasehold dump` for the B+tree: both meta slots (valid or not, which one
//! wins), every page of the data file with its kind, txn and checksum shown as
//! valid or not, the entries of leaf and branch pages, and the write-ahead
//! logs. Reads only; damage is reported, never repaired.

use std::fmt::Write;
use std::path::Path;

use leasehold_storage::dump::{describe_files, describe_wal, KeyNamer};
use leasehold_storage::vfs::Vfs;
use leasehold_storage::KvResult;

use crate::db::DATA_FILE;
use crate::layout::{self, Stored};
use crate::meta::{self, Meta};
use crate::page::{self, PageKind};

/// Page sizes a meta slot is tried at when locating it.
const PAGE_SIZES: [usize; 8] = [4096, 8192, 16384, 32768, 65536, 2048, 1024, 512];

/// Describes the files of `dir` (only the one named `only`, if given),
/// showing at most `max_entries` entries per page or records per log, each
/// key as `name_key` names it.
pub fn dump(
    vfs: &dyn Vfs,
    dir: &Path,
    only: Option<&str>,
    max_entries: usize,
    name_key: KeyNamer<'_>,
) -> KvResult<String> {
    describe_files(vfs, dir, only, &|name, path, bytes| {
        if name == DATA_FILE {
            describe_data(bytes, max_entries, name_key)
        } else if name.ends_with(".wal") {
            describe_wal(path, bytes, max_entries, name_key)
        } else {
            "  not a file of this engine\n".to_owned()
        }
    })
}

/// A meta slot that checks out at `page_size`.
fn meta_at(bytes: &[u8], slot: u64, page_size: usize) -> Option<Meta> {
    let start = usize::try_from(slot).ok()?.checked_mul(page_size)?;
    let page = bytes.get(start..start.checked_add(page_size)?)?;
    let opened = page::open(page, slot).ok()?;
    if opened.kind != PageKind::Meta {
        return None;
    }
    Meta::decode(opened.payload, opened.txn)
        .ok()
        .filter(|meta| meta.page_size as usize == page_size)
}

fn describe_data(bytes: &[u8], max_entries: usize, name_key: KeyNamer<'_>) -> String {
    let mut out = String::new();
    let located = PAGE_SIZES.iter().find_map(|&size| {
        let slots = [meta_at(bytes, 0, size), meta_at(bytes, 1, size)];
        slots.iter().any(Option::is_some).then_some((size, slots))
    });
    let Some((page_size, slots)) = located else {
        let _ = writeln!(
            out,
            "  CORRUPT: neither meta slot checks out at any page size; pages cannot be located"
        );
        return out;
    };
    let winner = match (&slots[0], &slots[1]) {
        (Some(a), Some(b)) => Some(if a.txn >= b.txn { 0 } else { 1 }),
        (Some(_), None) => Some(0),
        (None, Some(_)) => Some(1),
        (None, None) => None,
    };
    for (slot, meta) in slots.iter().enumerate() {
        let _ = match meta {
            Some(meta) => writeln!(
                out,
                "  meta slot {slot}: checksum valid{}; txn {}, page size {}, root {:?}, {} pages, wal {}, {} free pages",
                if winner == Some(slot) { " (current)" } else { "" },
                meta.txn,
                meta.page_size,
                meta.root,
                meta.page_count,
                meta.wal_number,
                meta.free_count
            ),
            None => writeln!(out, "  meta slot {slot}: INVALID (checksum, kind or contents)"),
        };
    }
    let pages = bytes.len() / page_size;
    for page_id in 2..pages as u64 {
        let start = page_id as usize * page_size;
        let raw = &bytes[start..start + page_size];
        let opened = match page::open(raw, page_id) {
            Ok(opened) => opened,
            Err(reason) if raw.iter().all(|&byte| byte == 0) => {
                let _ = writeln!(
                    out,
                    "  page {page_id} @{start}: zeroed (never written; {reason})"
                );
                continue;
            }
            Err(reason) => {
                let _ = writeln!(out, "  page {page_id} @{start}: INVALID ({reason})");
                continue;
            }
        };
        let _ = write!(
            out,
            "  page {page_id} @{start}: checksum valid, {:?}, txn {}",
            opened.kind, opened.txn
        );
        match opened.kind {
            PageKind::Leaf => match layout::decode_leaf(opened.payload) {
                Ok(entries) => {
                    let _ = writeln!(out, ", {} entries", entries.len());
                    for entry in entries.iter().take(max_entries) {
                        let stored = match &entry.stored {
                            Stored::Inline(bytes) => format!("{} bytes inline", bytes.len()),
                            Stored::Overflow {
                                first_page,
                                stored_len,
                            } => {
                                format!("{stored_len} bytes in overflow pages from {first_page}")
                            }
                        };
                        let _ = writeln!(out, "    {} ({stored})", name_key(entry.key));
                    }
                    if entries.len() > max_entries {
                        let _ = writeln!(out, "    … {} more entries", entries.len() - max_entries);
                    }
                }
                Err(err) => {
                    let _ = writeln!(out, ", entries INVALID: {err}");
                }
            },
            PageKind::Branch => match layout::decode_branch(opened.payload) {
                Ok((keys, children)) => {
                    let _ = writeln!(out, ", {} children {:?}", children.len(), children);
                    for key in keys.iter().take(max_entries) {
                        let _ = writeln!(out, "    separator {}", name_key(key));
                    }
                }
                Err(err) => {
                    let _ = writeln!(out, ", children INVALID: {err}");
                }
            },
            PageKind::Overflow => match layout::decode_overflow(opened.payload) {
                Ok((next, chunk)) => {
                    let _ = writeln!(out, ", {} bytes, next page {next}", chunk.len());
                }
                Err(err) => {
                    let _ = writeln!(out, ", INVALID: {err}");
                }
            },
            PageKind::Freelist => match meta::decode_freelist(opened.payload) {
                Ok((next, free)) => {
                    let _ = writeln!(out, ", {} free pages, next {next:?}", free.len());
                }
                Err(err) => {
                    let _ = writeln!(out, ", INVALID: {err}");
                }
            },
            PageKind::Meta => {
                let _ = writeln!(out, " (a meta page outside the two slots)");
            }
        }
    }
    if !bytes.len().is_multiple_of(page_size) {
        let _ = writeln!(
            out,
            "  {} trailing bytes past the last whole page",
            bytes.len() % page_size
        );
    }
    out
}
