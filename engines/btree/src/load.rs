//! Walking the tree a meta slot names, page by page, holding one path at a
//! time: every page checked (checksum, place, kind, written no later than the
//! meta's checkpoint), every page named once, overflow chains bounded by their
//! length and decompressed, keys in order and within their parents' bounds.
//! `verify` walks it all; open reads only the free list (and, for a format-1
//! meta that does not record them, counts the live entries).

use std::collections::BTreeSet;
use std::path::Path;

use leasehold_storage::vfs::VfsFile;
use leasehold_storage::{KvError, KvResult};

use crate::layout;
use crate::meta::{self, Meta};
use crate::node::{Body, Child, Limits, PageId, StoredRef, Value};
use crate::page::{self, PageKind};
use crate::pages::{decode_node, read_chain, read_checked, PagePayload};

/// Deeper than any tree of up to 2^64 keys with ≥ 2 children per branch.
pub const DEPTH_MAX: usize = 64;

pub struct Walker<'a> {
    pub file: &'a dyn VfsFile,
    pub path: &'a Path,
    pub page_size: usize,
    pub meta: &'a Meta,
    /// False only for the planted `SkipPageChecksum` bug.
    pub check_checksums: bool,
    pub limits: Limits,
    /// Every page reached so far (a page reached twice is corruption).
    pub reached: BTreeSet<PageId>,
    /// Live entries and their key + value bytes, as walked.
    pub entries: u64,
    pub bytes: u64,
    /// Nodes that decode but break the tree's invariants.
    pub problems: Vec<String>,
}

impl<'a> Walker<'a> {
    pub fn new(
        file: &'a dyn VfsFile,
        path: &'a Path,
        meta: &'a Meta,
        limits: Limits,
        check_checksums: bool,
    ) -> Walker<'a> {
        Walker {
            file,
            path,
            page_size: meta.page_size as usize,
            meta,
            check_checksums,
            limits,
            reached: BTreeSet::new(),
            entries: 0,
            bytes: 0,
            problems: Vec::new(),
        }
    }

    fn corrupt(&self, page: PageId, reason: impl Into<String>) -> KvError {
        KvError::corruption(
            self.path,
            page.saturating_mul(self.page_size as u64),
            format!("page {page}: {}", reason.into()),
        )
    }

    /// Reads and checks page `id`, one of `kinds`, reached for the first time.
    fn read(&mut self, id: PageId, kinds: &[PageKind]) -> KvResult<PagePayload> {
        if !self.reached.insert(id) {
            return Err(self.corrupt(id, "reached twice"));
        }
        read_checked(
            self.file,
            self.path,
            self.page_size,
            self.meta.page_count,
            self.check_checksums,
            (id, kinds, self.meta.txn),
        )
    }

    /// Walks the whole tree.
    pub fn tree(&mut self) -> KvResult<()> {
        match self.meta.root {
            Some(root) => self.node(root, 0, None, None),
            None => Ok(()),
        }
    }

    fn node(
        &mut self,
        id: PageId,
        depth: usize,
        low: Option<&[u8]>,
        high: Option<&[u8]>,
    ) -> KvResult<()> {
        if depth > DEPTH_MAX {
            return Err(self.corrupt(id, "tree deeper than possible"));
        }
        let page = self.read(id, &[PageKind::Leaf, PageKind::Branch])?;
        let body = decode_node(page.kind, &page.page, page.payload())
            .map_err(|reason| self.corrupt(id, reason))?;
        let in_bounds =
            |key: &[u8]| low.is_none_or(|low| key >= low) && high.is_none_or(|high| key < high);
        match body {
            Body::Branch { keys, children } => {
                if children.len() > self.limits.max_keys {
                    self.problems.push(format!(
                        "page {id}: branch with {} children",
                        children.len()
                    ));
                }
                if keys.windows(2).any(|pair| pair[0] >= pair[1])
                    || keys.iter().any(|key| !in_bounds(key))
                {
                    return Err(self.corrupt(id, "branch keys out of order or out of bounds"));
                }
                for (index, child) in children.iter().enumerate() {
                    let Child::Page(child) = child else {
                        unreachable!("a decoded branch names pages")
                    };
                    let child_low = if index == 0 {
                        low
                    } else {
                        Some(&*keys[index - 1])
                    };
                    let child_high = keys.get(index).map(|key| &**key).or(high);
                    self.node(*child, depth + 1, child_low, child_high)?;
                }
            }
            Body::Leaf(entries) => {
                if entries.len() > self.limits.max_keys {
                    self.problems
                        .push(format!("page {id}: leaf with {} entries", entries.len()));
                }
                for (key, value) in &entries {
                    if !in_bounds(key) {
                        return Err(self.corrupt(id, "leaf key outside its parent's bounds"));
                    }
                    match value {
                        Value::Stored(stored) => self.overflow(stored)?,
                        Value::Inline {
                            stored,
                            lz4_raw_len,
                        } => {
                            layout::decompress(*lz4_raw_len, stored)
                                .map_err(|reason| self.corrupt(id, reason))?;
                        }
                        Value::Cell(_) => {}
                    }
                    self.entries += 1;
                    self.bytes += key.len() as u64 + value.byte_len();
                }
            }
        }
        Ok(())
    }

    /// Reads an overflow chain and checks it decompresses to its length.
    fn overflow(&mut self, stored: &StoredRef) -> KvResult<()> {
        let chunk_len = (page::capacity(self.page_size) - 8) as u64;
        let page_count = self.meta.page_count;
        let path = self.path;
        let page_size = self.page_size as u64;
        let corrupt = move |page: PageId, reason: String| {
            KvError::corruption(
                path,
                page.saturating_mul(page_size),
                format!("page {page}: {reason}"),
            )
        };
        let (bytes, _) = read_chain(
            stored,
            (chunk_len, page_count),
            &mut |id| self.read(id, &[PageKind::Overflow]),
            &corrupt,
        )?;
        layout::decompress(stored.lz4_raw_len, &bytes)
            .map_err(|reason| corrupt(stored.first_page, reason))?;
        Ok(())
    }

    /// The free list: its pages, and the freelist pages holding it. After
    /// `tree`, a free page the tree reaches is corruption (the next checkpoint
    /// would overwrite it while in use).
    pub fn free_list(&mut self) -> KvResult<(BTreeSet<PageId>, Vec<PageId>)> {
        let mut free: BTreeSet<PageId> = self.meta.inline_free.iter().copied().collect();
        let mut list_pages = Vec::new();
        let mut next = self.meta.freelist_head;
        while let Some(id) = next {
            let page = self.read(id, &[PageKind::Freelist])?;
            let (following, pages) = meta::decode_freelist(page.payload())
                .map_err(|err| self.corrupt(id, err.to_string()))?;
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
        if let Some(&page) = free.iter().find(|page| self.reached.contains(page)) {
            return Err(self.corrupt(page, "is on the free list and in use"));
        }
        Ok((free, list_pages))
    }
}
