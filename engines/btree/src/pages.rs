//! Pages on demand: leaf, branch and overflow pages read from the data file
//! when a walk reaches them, each checked (checksum, place, kind, and written
//! no later than the checkpoint the reader reads as of), leaves and branches
//! kept in a bounded cache.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use leasehold_storage::vfs::{read_exact_at, VfsFile};
use leasehold_storage::{KvError, KvResult};

use crate::cache::PageCache;
use crate::layout::{self, Stored};
use crate::node::{Body, Child, Node, PageId, PageSource, StoredRef, Value};
use crate::page::{self, PageKind};
use crate::slice::Slice;

/// The data file's pages, read on demand.
pub struct Pages {
    file: Arc<dyn VfsFile>,
    path: PathBuf,
    page_size: usize,
    /// False only for the planted `SkipPageChecksum` bug.
    check_checksums: bool,
    /// Pages in the file as of the durable meta: no page a reader can reach
    /// lies beyond (the file shrinks only by pages no one can reach).
    page_count: AtomicU64,
    pub cache: PageCache,
}

/// A checked page: its kind, and its payload within the page's buffer.
pub struct PagePayload {
    pub kind: PageKind,
    pub page: Arc<[u8]>,
    range: Range<usize>,
}

impl PagePayload {
    pub fn payload(&self) -> &[u8] {
        &self.page[self.range.clone()]
    }
}

impl Pages {
    pub fn new(
        file: Arc<dyn VfsFile>,
        path: &Path,
        page_size: usize,
        page_count: u64,
        check_checksums: bool,
        cache_bytes: u64,
    ) -> Pages {
        Pages {
            file,
            path: path.to_path_buf(),
            page_size,
            check_checksums,
            page_count: AtomicU64::new(page_count),
            cache: PageCache::new(cache_bytes),
        }
    }

    pub fn set_page_count(&self, page_count: u64) {
        self.page_count.store(page_count, Ordering::Release);
    }

    /// The pages as of checkpoint `txn`.
    pub fn at(&self, txn: u64) -> ReadAt<'_> {
        ReadAt { pages: self, txn }
    }

    pub fn corrupt(&self, page: PageId, reason: impl Into<String>) -> KvError {
        KvError::corruption(
            &self.path,
            page.saturating_mul(self.page_size as u64),
            format!("page {page}: {}", reason.into()),
        )
    }

    /// Reads and checks page `id`: one of `kinds`, written by checkpoint
    /// `txn` or earlier.
    pub fn read(&self, id: PageId, kinds: &[PageKind], txn: u64) -> KvResult<PagePayload> {
        read_checked(
            self.file.as_ref(),
            &self.path,
            self.page_size,
            self.page_count.load(Ordering::Acquire),
            self.check_checksums,
            (id, kinds, txn),
        )
    }

    fn load_node(&self, id: PageId, txn: u64) -> KvResult<Arc<Node>> {
        let page = self.read(id, &[PageKind::Leaf, PageKind::Branch], txn)?;
        let node = node_of(id, &page).map_err(|reason| self.corrupt(id, reason))?;
        self.cache.insert(id, Arc::clone(&node));
        Ok(node)
    }

    pub fn chunk_len(&self) -> u64 {
        (page::capacity(self.page_size) - 8) as u64
    }

    /// Reads the overflow chain `stored` names: its stored bytes and pages.
    fn chain(&self, stored: &StoredRef, txn: u64) -> KvResult<(Vec<u8>, Vec<PageId>)> {
        read_chain(
            stored,
            (self.chunk_len(), self.page_count.load(Ordering::Acquire)),
            &mut |id| self.read(id, &[PageKind::Overflow], txn),
            &|id, reason| self.corrupt(id, reason),
        )
    }
}

/// Reads the overflow chain `stored` names, a page at a time through `read`:
/// its stored bytes and its pages, checked against the length the leaf gives.
pub fn read_chain(
    stored: &StoredRef,
    (chunk_len, page_count): (u64, u64),
    read: &mut dyn FnMut(PageId) -> KvResult<PagePayload>,
    corrupt: &dyn Fn(PageId, String) -> KvError,
) -> KvResult<(Vec<u8>, Vec<PageId>)> {
    let first = stored.first_page;
    let expected_pages = stored.stored_len.div_ceil(chunk_len).max(1);
    if expected_pages > page_count {
        return Err(corrupt(
            first,
            format!(
                "overflow of {} bytes cannot fit the file",
                stored.stored_len
            ),
        ));
    }
    let mut bytes = Vec::with_capacity(stored.stored_len as usize);
    let mut pages = Vec::with_capacity(expected_pages as usize);
    let mut next = first;
    while (pages.len() as u64) < expected_pages {
        let page = read(next)?;
        let (following, chunk) = layout::decode_overflow(page.payload())
            .map_err(|err| corrupt(next, err.to_string()))?;
        bytes.extend_from_slice(chunk);
        pages.push(next);
        if following == 0 {
            break;
        }
        next = following;
    }
    if bytes.len() as u64 != stored.stored_len || pages.len() as u64 != expected_pages {
        return Err(corrupt(
            first,
            format!(
                "overflow chain holds {} bytes in {} pages, expected {}",
                bytes.len(),
                pages.len(),
                stored.stored_len
            ),
        ));
    }
    Ok((bytes, pages))
}

/// Reads page `id` of `file` and checks it: inside the `page_count` pages in
/// use, checksum (unless `check_checksum` is off), page id, one of `kinds`,
/// written no later than checkpoint `txn`.
pub fn read_checked(
    file: &dyn VfsFile,
    path: &Path,
    page_size: usize,
    page_count: u64,
    check_checksum: bool,
    (id, kinds, txn): (PageId, &[PageKind], u64),
) -> KvResult<PagePayload> {
    let corrupt = |reason: String| {
        KvError::corruption(
            path,
            id.saturating_mul(page_size as u64),
            format!("page {id}: {reason}"),
        )
    };
    if id < 2 || id >= page_count {
        return Err(corrupt(format!("outside the {page_count} pages in use")));
    }
    // One allocation: the page is read straight into the buffer its keys
    // and values will share.
    let mut buffer: Arc<[u8]> = std::iter::repeat_n(0u8, page_size).collect();
    let Some(bytes) = Arc::get_mut(&mut buffer) else {
        unreachable!("a buffer just made has no other owner")
    };
    read_exact_at(file, bytes, id * page_size as u64)
        .map_err(|err| KvError::io(format!("read page {id} of {}", path.display()), err))?;
    let opened = page::open_checked(&buffer, id, check_checksum).map_err(corrupt)?;
    if !kinds.contains(&opened.kind) {
        return Err(corrupt(format!(
            "is a {:?} page, expected {kinds:?}",
            opened.kind
        )));
    }
    if opened.txn > txn {
        return Err(corrupt(format!(
            "written by checkpoint {}, after the tree's {txn}",
            opened.txn
        )));
    }
    let start = opened.payload.as_ptr() as usize - buffer.as_ptr() as usize;
    let range = start..start + opened.payload.len();
    Ok(PagePayload {
        kind: opened.kind,
        page: buffer,
        range,
    })
}

/// A page this process just sealed, as a reader would get it.
pub fn check_sealed(sealed: Vec<u8>, id: PageId, kind: PageKind) -> Result<PagePayload, String> {
    let page: Arc<[u8]> = Arc::from(sealed);
    let opened = page::open(&page, id)?;
    if opened.kind != kind {
        return Err(format!("sealed as {:?}, read as {kind:?}", opened.kind));
    }
    let start = opened.payload.as_ptr() as usize - page.as_ptr() as usize;
    let range = start..start + opened.payload.len();
    Ok(PagePayload { kind, page, range })
}

/// The node a checked leaf or branch page holds.
pub fn node_of(id: PageId, page: &PagePayload) -> Result<Arc<Node>, String> {
    let body = decode_node(page.kind, &page.page, page.payload())?;
    Ok(Node::read(body, id, page.page.len()))
}

/// A leaf or branch page's node: children as pages, keys and inline values
/// as slices of `buffer` (which holds `payload`), overflow values not read.
/// A reason when the payload breaks the format.
pub fn decode_node(kind: PageKind, buffer: &Arc<[u8]>, payload: &[u8]) -> Result<Body, String> {
    if kind == PageKind::Branch {
        let (keys, children) = layout::decode_branch(payload).map_err(|err| err.to_string())?;
        if children.len() < 2 || keys.len() + 1 != children.len() {
            return Err(format!(
                "branch with {} children and {} keys",
                children.len(),
                keys.len()
            ));
        }
        return Ok(Body::Branch {
            keys: keys
                .into_iter()
                .map(|key| Slice::within(buffer, key))
                .collect::<Vec<_>>()
                .into(),
            children: children.into_iter().map(Child::Page).collect(),
        });
    }
    let entries = layout::decode_leaf(payload).map_err(|err| err.to_string())?;
    if entries.is_empty() {
        return Err("empty leaf".into());
    }
    let mut values = Vec::with_capacity(entries.len());
    for entry in entries {
        let value = match entry.stored {
            Stored::Inline(stored) => {
                layout::check_lz4_len(entry.lz4_raw_len, stored)?;
                Value::Inline {
                    stored: Slice::within(buffer, stored),
                    lz4_raw_len: entry.lz4_raw_len,
                }
            }
            Stored::Overflow {
                first_page,
                stored_len,
            } => Value::Stored(StoredRef {
                first_page,
                stored_len,
                lz4_raw_len: entry.lz4_raw_len,
            }),
        };
        values.push((Slice::within(buffer, entry.key), value));
    }
    Ok(Body::Leaf(values))
}

/// Pages read as of checkpoint `txn`: what a reader holding a root from that
/// checkpoint may reach.
pub struct ReadAt<'a> {
    pub pages: &'a Pages,
    pub txn: u64,
}

impl PageSource for ReadAt<'_> {
    fn node(&self, id: PageId) -> KvResult<Arc<Node>> {
        match self.pages.cache.get(id) {
            Some(node) => Ok(node),
            None => self.pages.load_node(id, self.txn),
        }
    }

    fn value(&self, stored: &StoredRef) -> KvResult<Vec<u8>> {
        let (bytes, _) = self.pages.chain(stored, self.txn)?;
        layout::decompress(stored.lz4_raw_len, &bytes)
            .map_err(|reason| self.pages.corrupt(stored.first_page, reason))
    }

    fn chain_pages(&self, stored: &StoredRef) -> KvResult<Vec<PageId>> {
        if stored.stored_len <= self.pages.chunk_len() {
            return Ok(vec![stored.first_page]);
        }
        self.pages.chain(stored, self.txn).map(|(_, pages)| pages)
    }

    fn corrupt(&self, page: PageId, reason: String) -> KvError {
        self.pages.corrupt(page, reason)
    }
}
