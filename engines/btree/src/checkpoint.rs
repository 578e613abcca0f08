//! Writing a checkpoint: the dirty nodes of a tree go to free pages (or the
//! end of the file), children before parents; the free list goes to pages of
//! its own when it outgrows the meta page. The caller fsyncs the data file,
//! then writes the meta slot (see db.rs for the whole protocol).

use std::collections::BTreeSet;
use std::path::Path;

use leasehold_storage::vfs::{write_all_at, VfsFile};
use leasehold_storage::{KvError, KvResult};

use crate::cache::PageCache;
use crate::layout::{self, LeafEntry, Stored};
use crate::meta::{self, Meta};
use crate::node::{Body, Child, Limits, OverflowRef, PageId, Value, ValueCell};
use crate::page::{self, PageKind};
use crate::pages;

/// How a leaf entry's value is written.
enum Encoded {
    /// Written since the leaf was read, in overflow pages.
    Overflow(OverflowRef),
    /// Inline as it is held (a cell's stored form, or as read).
    AsHeld,
}

/// A leaf entry as it is written.
fn leaf_entry<'a>(key: &'a [u8], value: &'a Value, encoded: &'a Encoded) -> LeafEntry<'a> {
    let overflow = |written: &OverflowRef| Stored::Overflow {
        first_page: written.pages.first().copied().unwrap_or(0),
        stored_len: written.stored_len,
    };
    let (lz4_raw_len, stored) = match (encoded, value) {
        (Encoded::Overflow(written), _) => (written.lz4_raw_len, overflow(written)),
        (
            Encoded::AsHeld,
            Value::Inline {
                stored,
                lz4_raw_len,
            },
        ) => (*lz4_raw_len, Stored::Inline(stored)),
        (Encoded::AsHeld, Value::Stored(stored)) => (
            stored.lz4_raw_len,
            Stored::Overflow {
                first_page: stored.first_page,
                stored_len: stored.stored_len,
            },
        ),
        (Encoded::AsHeld, Value::Cell(cell)) => (cell.lz4_raw_len, Stored::Inline(&cell.bytes)),
    };
    LeafEntry {
        key,
        lz4_raw_len,
        stored,
    }
}

/// Where a checkpoint put its free list.
pub struct FreelistWritten {
    pub count: u64,
    pub head: Option<PageId>,
    /// The ids the meta page holds.
    pub inline: Vec<PageId>,
    /// The freelist pages holding the rest.
    pub list_pages: Vec<PageId>,
}

/// Writes pages for one checkpoint.
pub struct PageWriter<'a> {
    pub file: &'a dyn VfsFile,
    pub path: &'a Path,
    pub page_size: usize,
    pub txn: u64,
    /// Pages free to overwrite (not named by the last durable meta's tree).
    pub free: &'a mut BTreeSet<PageId>,
    pub page_count: &'a mut u64,
    pub limits: Limits,
    pub pages_written: u64,
    /// Forgets each page written over (a free page may still be cached).
    pub cache: &'a PageCache,
}

impl PageWriter<'_> {
    /// The lowest free page, or a new one at the end of the file.
    pub fn allocate(&mut self) -> PageId {
        if let Some(page) = self.free.pop_first() {
            return page;
        }
        let page = *self.page_count;
        *self.page_count += 1;
        page
    }

    /// Writes page `id`; returns the sealed bytes.
    pub fn write_page(&mut self, id: PageId, kind: PageKind, payload: &[u8]) -> KvResult<Vec<u8>> {
        self.cache.remove(id);
        let bytes = page::seal(self.page_size, kind, id, self.txn, payload);
        write_all_at(self.file, &bytes, id * self.page_size as u64).map_err(|err| {
            KvError::io(format!("write page {id} of {}", self.path.display()), err)
        })?;
        self.pages_written += 1;
        Ok(bytes)
    }

    fn write_overflow(&mut self, value: &ValueCell) -> KvResult<OverflowRef> {
        if let Some(written) = value.overflow.get() {
            return Ok((**written).clone());
        }
        let (lz4_raw_len, stored) = (value.lz4_raw_len, &value.bytes);
        let chunk_len = page::capacity(self.page_size) - 8;
        let chunks: Vec<&[u8]> = stored.chunks(chunk_len).collect();
        let pages: Vec<PageId> = (0..chunks.len()).map(|_| self.allocate()).collect();
        for (index, chunk) in chunks.iter().enumerate() {
            let next = pages.get(index + 1).copied().unwrap_or(0);
            self.write_page(
                pages[index],
                PageKind::Overflow,
                &layout::encode_overflow(next, chunk),
            )?;
        }
        let written = OverflowRef {
            pages,
            stored_len: stored.len() as u64,
            lz4_raw_len,
        };
        // Another checkpoint cannot race here (checkpoints are serialized).
        let _ = value.overflow.set(Box::new(written.clone()));
        Ok(written)
    }

    /// Writes the node `child` names and everything under it that has no
    /// page yet; returns its page.
    pub fn write_node(&mut self, child: &Child) -> KvResult<PageId> {
        let node = match child {
            Child::Page(page) => return Ok(*page),
            Child::Node(node) => node,
        };
        if let Some(&page) = node.page.get() {
            return Ok(page);
        }
        let (kind, payload) = match &node.body {
            Body::Leaf(entries) => {
                // Values written since the leaf was read and too long for
                // it go to overflow pages; the rest go in as they are held
                // (a cell was compressed when it was made).
                let mut values = Vec::with_capacity(entries.len());
                for (_, value) in entries {
                    values.push(match value {
                        Value::Cell(cell) if cell.bytes.len() > self.limits.inline_max => {
                            Encoded::Overflow(self.write_overflow(cell.as_ref())?)
                        }
                        _ => Encoded::AsHeld,
                    });
                }
                let encoded: Vec<LeafEntry<'_>> = entries
                    .iter()
                    .zip(&values)
                    .map(|((key, value), encoded)| leaf_entry(key, value, encoded))
                    .collect();
                (PageKind::Leaf, layout::encode_leaf(&encoded))
            }
            Body::Branch { keys, children } => {
                let mut pages = Vec::with_capacity(children.len());
                for child in children {
                    pages.push(self.write_node(child)?);
                }
                (PageKind::Branch, layout::encode_branch(keys, &pages))
            }
        };
        let id = self.allocate();
        let sealed = self.write_page(id, kind, &payload)?;
        let _ = node.page.set(id);
        // The page as a reader will see it, cached: the live tree swaps this
        // node for its page once the checkpoint is durable, and the
        // recently written pages are the likeliest to be read next.
        if let Ok(read) = pages::check_sealed(sealed, id, kind) {
            if let Ok(node) = pages::node_of(id, &read) {
                self.cache.insert(id, node);
            }
        }
        Ok(id)
    }

    /// Writes the free list `free_after` (as of this checkpoint) into the meta
    /// and, past what the meta holds, into freelist pages taken from the pages
    /// free to overwrite now.
    pub fn write_freelist(
        &mut self,
        mut free_after: BTreeSet<PageId>,
    ) -> KvResult<FreelistWritten> {
        let capacity = page::capacity(self.page_size);
        let inline = meta::inline_capacity(capacity);
        let per_page = meta::freelist_page_capacity(capacity);
        // Freelist pages come out of the free set itself, which shrinks it.
        let mut list_pages = Vec::new();
        while free_after.len() > inline + list_pages.len() * per_page {
            let page = self.allocate();
            free_after.remove(&page);
            list_pages.push(page);
        }
        let ids: Vec<PageId> = free_after.iter().copied().collect();
        let (inline_ids, rest) = ids.split_at(ids.len().min(inline));
        // Every list page is written (some perhaps empty, when taking pages
        // for the list shrank it), so none is left allocated but unnamed.
        let mut chunks = rest.chunks(per_page.max(1));
        for index in 0..list_pages.len() {
            let chunk = chunks.next().unwrap_or_default();
            let next = list_pages.get(index + 1).copied();
            self.write_page(
                list_pages[index],
                PageKind::Freelist,
                &meta::encode_freelist(next, chunk),
            )?;
        }
        Ok(FreelistWritten {
            count: ids.len() as u64,
            head: list_pages.first().copied(),
            inline: inline_ids.to_vec(),
            list_pages,
        })
    }
}

/// A meta record for this checkpoint.
#[allow(clippy::too_many_arguments)]
pub fn meta_for(
    txn: u64,
    page_size: usize,
    root: Option<PageId>,
    page_count: u64,
    wal_number: u64,
    free_count: u64,
    freelist_head: Option<PageId>,
    live: (u64, u64),
    inline_free: Vec<PageId>,
) -> Meta {
    Meta {
        txn,
        page_size: page_size as u32,
        root,
        page_count,
        wal_number,
        free_count,
        freelist_head,
        live: Some(live),
        inline_free,
    }
}
