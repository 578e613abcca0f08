//! Writing a checkpoint: the dirty nodes of a tree go to free pages (or the
//! end of the file), children before parents; the free list goes to pages of
//! its own when it outgrows the meta page. The caller fsyncs the data file,
//! then writes the meta slot (see db.rs for the whole protocol).

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use leasehold_core::vfs::{write_all_at, VfsFile};
use leasehold_core::{KvError, KvResult};

use crate::layout::{self, LeafEntry, Stored};
use crate::meta::{self, Meta};
use crate::node::{Body, Limits, Node, OverflowRef, PageId, ValueCell};
use crate::page::{self, PageKind};

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
    pub compress: bool,
    pub limits: Limits,
    pub pages_written: u64,
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

    pub fn write_page(&mut self, id: PageId, kind: PageKind, payload: &[u8]) -> KvResult<()> {
        let bytes = page::seal(self.page_size, kind, id, self.txn, payload);
        write_all_at(self.file, &bytes, id * self.page_size as u64).map_err(|err| {
            KvError::io(format!("write page {id} of {}", self.path.display()), err)
        })?;
        self.pages_written += 1;
        Ok(())
    }

    fn write_overflow(&mut self, value: &ValueCell) -> KvResult<OverflowRef> {
        if let Some(written) = value.overflow.get() {
            return Ok(written.clone());
        }
        let (lz4_raw_len, stored) = layout::compress(&value.bytes, self.compress);
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
        let _ = value.overflow.set(written.clone());
        Ok(written)
    }

    /// Writes `node` and everything under it that has no page yet.
    pub fn write_node(&mut self, node: &Arc<Node>) -> KvResult<PageId> {
        if let Some(&page) = node.page.get() {
            return Ok(page);
        }
        let (kind, payload) = match &node.body {
            Body::Leaf(entries) => {
                let mut encoded = Vec::with_capacity(entries.len());
                for (key, value) in entries {
                    let entry = if value.bytes.len() > self.limits.inline_max {
                        let written = self.write_overflow(value)?;
                        LeafEntry {
                            key: key.clone(),
                            lz4_raw_len: written.lz4_raw_len,
                            stored: Stored::Overflow {
                                first_page: written.pages.first().copied().unwrap_or(0),
                                stored_len: written.stored_len,
                            },
                        }
                    } else {
                        let (lz4_raw_len, stored) = layout::compress(&value.bytes, self.compress);
                        LeafEntry {
                            key: key.clone(),
                            lz4_raw_len,
                            stored: Stored::Inline(stored),
                        }
                    };
                    encoded.push(entry);
                }
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
        self.write_page(id, kind, &payload)?;
        let _ = node.page.set(id);
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
        inline_free,
    }
}
