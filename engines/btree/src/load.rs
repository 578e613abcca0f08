//! Reading the tree a meta slot names: every page checked (checksum, place,
//! kind, written no later than the meta's checkpoint), every page named once,
//! overflow chains bounded by their length, keys in order.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use leasehold_core::vfs::{read_exact_at, VfsFile};
use leasehold_core::{KvError, KvResult};

use crate::layout::{self, Stored};
use crate::meta::{self, Meta};
use crate::node::{Body, Node, OverflowRef, PageId, ValueCell};
use crate::page::{self, PageKind};

/// Deeper than any tree of up to 2^64 keys with ≥ 2 children per branch.
const DEPTH_MAX: usize = 64;

pub struct Loader<'a> {
    pub file: &'a dyn VfsFile,
    pub path: &'a Path,
    pub page_size: usize,
    pub meta: &'a Meta,
    /// False only for the planted `SkipPageChecksum` bug.
    pub check_checksums: bool,
    /// Every page reached so far (a page reached twice is corruption).
    pub reached: BTreeSet<PageId>,
}

impl Loader<'_> {
    fn corrupt(&self, page: PageId, reason: impl Into<String>) -> KvError {
        KvError::corruption(
            self.path,
            page.saturating_mul(self.page_size as u64),
            format!("page {page}: {}", reason.into()),
        )
    }

    /// Reads and checks page `id`, expecting `kind`.
    pub fn read(&mut self, id: PageId, kind: PageKind) -> KvResult<Vec<u8>> {
        self.check_in_use(id)?;
        if !self.reached.insert(id) {
            return Err(self.corrupt(id, "reached twice"));
        }
        let mut bytes = vec![0u8; self.page_size];
        read_exact_at(self.file, &mut bytes, id * self.page_size as u64).map_err(|err| {
            KvError::io(format!("read page {id} of {}", self.path.display()), err)
        })?;
        let opened = page::open_checked(&bytes, id, self.check_checksums)
            .map_err(|reason| self.corrupt(id, reason))?;
        if opened.kind != kind {
            return Err(self.corrupt(
                id,
                format!("is a {:?} page, expected {kind:?}", opened.kind),
            ));
        }
        if opened.txn > self.meta.txn {
            return Err(self.corrupt(
                id,
                format!(
                    "written by checkpoint {}, after the tree's {}",
                    opened.txn, self.meta.txn
                ),
            ));
        }
        Ok(opened.payload.to_vec())
    }

    /// Page ids come from disk: checked before any offset is computed from one.
    fn check_in_use(&self, id: PageId) -> KvResult<()> {
        if id < 2 || id >= self.meta.page_count {
            return Err(self.corrupt(
                id,
                format!("outside the {} pages in use", self.meta.page_count),
            ));
        }
        Ok(())
    }

    /// Loads the node at `id` and everything under it.
    pub fn node(&mut self, id: PageId, depth: usize) -> KvResult<Arc<Node>> {
        if depth > DEPTH_MAX {
            return Err(self.corrupt(id, "tree deeper than possible"));
        }
        self.check_in_use(id)?;
        // A page is a leaf or a branch; peek at the kind through the header.
        let mut header = [0u8; page::HEADER_LEN];
        read_exact_at(self.file, &mut header, id * self.page_size as u64).map_err(|err| {
            KvError::io(format!("read page {id} of {}", self.path.display()), err)
        })?;
        let body = if header[4] == PageKind::Branch as u8 {
            let payload = self.read(id, PageKind::Branch)?;
            let (keys, children) =
                layout::decode_branch(&payload).map_err(|err| self.corrupt(id, err.to_string()))?;
            let mut nodes = Vec::with_capacity(children.len());
            for child in children {
                nodes.push(self.node(child, depth + 1)?);
            }
            Body::Branch {
                keys,
                children: nodes,
            }
        } else {
            let payload = self.read(id, PageKind::Leaf)?;
            let entries =
                layout::decode_leaf(&payload).map_err(|err| self.corrupt(id, err.to_string()))?;
            if entries.is_empty() {
                return Err(self.corrupt(id, "empty leaf"));
            }
            let mut loaded = Vec::with_capacity(entries.len());
            for entry in entries {
                let (stored, overflow) = match entry.stored {
                    Stored::Inline(bytes) => (bytes, None),
                    Stored::Overflow {
                        first_page,
                        stored_len,
                    } => {
                        let (bytes, pages) = self.overflow(first_page, stored_len)?;
                        (
                            bytes,
                            Some(OverflowRef {
                                pages,
                                stored_len,
                                lz4_raw_len: entry.lz4_raw_len,
                            }),
                        )
                    }
                };
                let bytes = layout::decompress(entry.lz4_raw_len, &stored)
                    .map_err(|reason| self.corrupt(id, reason))?;
                let cell = ValueCell {
                    bytes,
                    overflow: OnceLock::new(),
                };
                if let Some(overflow) = overflow {
                    let _ = cell.overflow.set(overflow);
                }
                loaded.push((entry.key, Arc::new(cell)));
            }
            Body::Leaf(loaded)
        };
        let node = Node::new(body);
        let _ = node.page.set(id);
        Ok(node)
    }

    /// Reads an overflow chain holding `stored_len` bytes.
    fn overflow(&mut self, first: PageId, stored_len: u64) -> KvResult<(Vec<u8>, Vec<PageId>)> {
        let chunk_len = (page::capacity(self.page_size) - 8) as u64;
        let expected_pages = stored_len.div_ceil(chunk_len).max(1);
        if stored_len > self.meta.page_count.saturating_mul(chunk_len) {
            return Err(self.corrupt(
                first,
                format!("overflow of {stored_len} bytes cannot fit the file"),
            ));
        }
        let mut bytes = Vec::with_capacity(stored_len as usize);
        let mut pages = Vec::new();
        let mut next = first;
        while (pages.len() as u64) < expected_pages {
            let payload = self.read(next, PageKind::Overflow)?;
            let (following, chunk) = layout::decode_overflow(&payload)
                .map_err(|err| self.corrupt(next, err.to_string()))?;
            bytes.extend_from_slice(chunk);
            pages.push(next);
            if following == 0 {
                break;
            }
            next = following;
        }
        if bytes.len() as u64 != stored_len || pages.len() as u64 != expected_pages {
            return Err(self.corrupt(
                first,
                format!(
                    "overflow chain holds {} bytes in {} pages, expected {stored_len}",
                    bytes.len(),
                    pages.len()
                ),
            ));
        }
        Ok((bytes, pages))
    }

    /// The free list: its pages, and the freelist pages holding it. Called
    /// after the tree is loaded: a free page the tree reaches is corruption.
    pub fn free_list(&mut self) -> KvResult<(BTreeSet<PageId>, Vec<PageId>)> {
        let mut free: BTreeSet<PageId> = self.meta.inline_free.iter().copied().collect();
        let mut list_pages = Vec::new();
        let mut next = self.meta.freelist_head;
        while let Some(id) = next {
            let payload = self.read(id, PageKind::Freelist)?;
            let (following, pages) =
                meta::decode_freelist(&payload).map_err(|err| self.corrupt(id, err.to_string()))?;
            free.extend(pages);
            list_pages.push(id);
            next = following;
        }
        if free.len() as u64 != self.meta.free_count
            || free
                .iter()
                .any(|&page| page < 2 || page >= self.meta.page_count)
        {
            return Err(KvError::corruption(
                self.path,
                0,
                format!(
                    "free list holds {} valid pages, meta says {}",
                    free.len(),
                    self.meta.free_count
                ),
            ));
        }
        // A page both free and reached (tree, overflow or free-list page)
        // would be overwritten by the next checkpoint while still in use.
        if let Some(&page) = free.iter().find(|page| self.reached.contains(page)) {
            return Err(self.corrupt(page, "is on the free list and in use"));
        }
        Ok((free, list_pages))
    }
}
