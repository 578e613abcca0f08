//! The tree in memory: immutable nodes shared through `Arc`, changed by
//! copying the path from the root to the leaf (copy-on-write). A reader holds
//! a root and sees that tree, whole, however the writer moves on.
//!
//! Only part of the tree is in memory. A child is either a node in memory
//! (`Child::Node`: written since the last checkpoint, or not yet swapped for
//! its page) or a page on disk (`Child::Page`), read through a `PageSource`
//! (a bounded cache over the data file) when a walk reaches it. A value in
//! overflow pages that was read from disk stays there (`Value::Stored`) until
//! someone reads it.
//!
//! Invariants (checked by `check` for the part in memory, by the verifier for
//! pages):
//! 1. A leaf holds 1..=`max_keys` entries in strictly ascending key order
//!    (only an empty tree has no root at all).
//! 2. A branch holds 2..=`max_keys` children and one separator key fewer;
//!    every key under `children[i]` is `< keys[i] <= ` every key under
//!    `children[i + 1]`.
//! 3. Every node fits a page when encoded (`pack` splits nodes to keep it so).
//!
//! A node's `page` is set once: when it is read from that page, or by the
//! checkpoint that writes it; a node with no page is dirty.

use std::sync::{Arc, OnceLock};

use leasehold_storage::KvResult;

use crate::slice::Slice;

mod edit;
mod read;
#[cfg(test)]
mod tests;

pub use edit::{collapse, delete, insert, new_root};
pub use read::{check, get, walk_from};

/// Where a page lives: its index in the data file.
pub type PageId = u64;

/// Where a checkpoint put a value too long for its leaf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OverflowRef {
    pub pages: Vec<PageId>,
    pub stored_len: u64,
    /// `Some(raw_len)` when stored lz4-compressed.
    pub lz4_raw_len: Option<u64>,
}

/// A value in overflow pages, as its leaf names it (the chain's pages are
/// known only by reading it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredRef {
    pub first_page: PageId,
    pub stored_len: u64,
    /// `Some(raw_len)` when stored lz4-compressed.
    pub lz4_raw_len: Option<u64>,
}

impl StoredRef {
    /// The value's length once read.
    pub fn raw_len(&self) -> u64 {
        self.lz4_raw_len.unwrap_or(self.stored_len)
    }
}

/// A value in memory, as it will be stored (compressed when it was asked
/// and came out smaller: a leaf is packed on the bytes it will take), and,
/// once a checkpoint put it in overflow pages, where.
#[derive(Debug)]
pub struct ValueCell {
    /// The stored bytes: an lz4 block when `lz4_raw_len` says.
    pub bytes: Vec<u8>,
    pub lz4_raw_len: Option<u64>,
    /// Boxed: most values never overflow, and every cell pays for the slot.
    pub overflow: OnceLock<Box<OverflowRef>>,
}

impl ValueCell {
    /// `value` stored as it is.
    pub fn new(value: Vec<u8>) -> Arc<ValueCell> {
        Arc::new(ValueCell {
            bytes: value,
            lz4_raw_len: None,
            overflow: OnceLock::new(),
        })
    }

    /// `value`, lz4-compressed when `compress` and that makes it smaller.
    pub fn stored(value: bytes::Bytes, compress: bool) -> Arc<ValueCell> {
        if !compress {
            // The caller's buffer when this batch holds the only handle on it.
            return ValueCell::new(Vec::from(value));
        }
        match crate::layout::compress(&value, true) {
            (Some(raw_len), compressed) => Arc::new(ValueCell {
                bytes: compressed,
                lz4_raw_len: Some(raw_len),
                overflow: OnceLock::new(),
            }),
            (None, _) => ValueCell::new(Vec::from(value)),
        }
    }

    /// The value's length once decompressed.
    pub fn raw_len(&self) -> u64 {
        self.lz4_raw_len.unwrap_or(self.bytes.len() as u64)
    }
}

/// A leaf's value: written since its leaf was read (in memory), inline in a
/// leaf read from disk (as stored: lz4 when `lz4_raw_len` says), or in
/// overflow pages not read.
#[derive(Clone, Debug)]
pub enum Value {
    Cell(Arc<ValueCell>),
    Inline {
        stored: Slice,
        lz4_raw_len: Option<u64>,
    },
    Stored(StoredRef),
}

impl Value {
    /// The value's length in bytes.
    pub fn byte_len(&self) -> u64 {
        match self {
            Value::Cell(cell) => cell.raw_len(),
            Value::Inline {
                stored,
                lz4_raw_len,
            } => lz4_raw_len.unwrap_or(stored.len() as u64),
            Value::Stored(stored) => stored.raw_len(),
        }
    }

    /// Heap bytes it holds of its own (an inline value shares its page's).
    fn resident(&self) -> usize {
        match self {
            Value::Cell(cell) => heap(size_of::<ValueCell>() + 16) + heap(cell.bytes.len()),
            Value::Inline { .. } | Value::Stored(_) => 0,
        }
    }
}

/// A branch's child: a node in memory or a page to read.
#[derive(Clone, Debug)]
pub enum Child {
    Node(Arc<Node>),
    Page(PageId),
}

impl Child {
    /// The node, read through `pages` if it is not in memory.
    pub fn resolve(&self, pages: &dyn PageSource) -> KvResult<Arc<Node>> {
        match self {
            Child::Node(node) => Ok(Arc::clone(node)),
            Child::Page(id) => pages.node(*id),
        }
    }
}

#[derive(Debug)]
pub enum Body {
    Leaf(Vec<(Slice, Value)>),
    Branch {
        /// Shared between the copies of a branch whose keys did not change
        /// (the common case: a put that splits nothing replaces one child).
        keys: Arc<[Slice]>,
        children: Vec<Child>,
    },
}

#[derive(Debug)]
pub struct Node {
    pub body: Body,
    pub page: OnceLock<PageId>,
    /// Bytes the node holds in memory (an estimate, for the cache and the
    /// dirty bound).
    pub resident: usize,
}

/// Heap bytes of the buffers `slices` keep alive: a slice with a buffer of
/// its own counts it; a page's buffer is counted once however many slices
/// point into it (a node holds parts of one or two pages).
fn buffers_held<'a>(slices: impl Iterator<Item = &'a Slice>) -> usize {
    let mut pages: Vec<usize> = Vec::new();
    let mut bytes = 0;
    for slice in slices {
        if slice.owns_buffer() {
            bytes += heap(slice.len() + 16);
        } else if !pages.contains(&slice.buffer_id()) {
            pages.push(slice.buffer_id());
            bytes += heap(slice.buffer_len() + 16);
        }
    }
    bytes
}

/// Bytes the allocator takes for `len` bytes (glibc: 8 bytes of header,
/// 16-byte granules, 32 at least).
fn heap(len: usize) -> usize {
    (len + 8).div_ceil(16).max(2) * 16
}

impl Node {
    /// A node made in memory. Its keys and inline values may be parts of
    /// the page buffers of the nodes it was copied from, which they keep
    /// alive: each such buffer is counted once, whole (counting only the
    /// parts undercounted a copied leaf of 1 KiB values about sevenfold, and
    /// the dirty bound with it).
    pub fn new(body: Body) -> Arc<Node> {
        let extra = match &body {
            Body::Leaf(entries) => buffers_held(entries.iter().flat_map(|(key, value)| {
                let stored = match value {
                    Value::Inline { stored, .. } => Some(stored),
                    Value::Cell(_) | Value::Stored(_) => None,
                };
                std::iter::once(key).chain(stored)
            })),
            Body::Branch { keys, .. } => buffers_held(keys.iter()),
        };
        Arc::new(Node::with_extra(body, extra))
    }

    /// A node read from `page`, whose keys and values share the page's one
    /// buffer of `buffer_len` bytes.
    pub fn read(body: Body, page: PageId, buffer_len: usize) -> Arc<Node> {
        let node = Node::with_extra(body, heap(buffer_len + 16));
        let _ = node.page.set(page);
        Arc::new(node)
    }

    /// `extra`: heap bytes of the keys (and the page buffer) besides the
    /// node, its vectors and its values of their own.
    fn with_extra(body: Body, extra: usize) -> Node {
        let resident = extra
            + heap(size_of::<Node>() + 16)
            + match &body {
                Body::Leaf(entries) => {
                    heap(entries.capacity() * size_of::<(Slice, Value)>())
                        + entries
                            .iter()
                            .map(|(_, value)| value.resident())
                            .sum::<usize>()
                }
                Body::Branch { keys, children } => {
                    heap(keys.len() * size_of::<Slice>() + 16)
                        + heap(children.capacity() * size_of::<Child>())
                }
            };
        Node {
            body,
            page: OnceLock::new(),
            resident,
        }
    }
}

/// Where pages not in memory come from: the data file through a cache, read
/// as of one checkpoint (a page written later than it is corruption).
pub trait PageSource {
    /// The leaf or branch at `id`.
    fn node(&self, id: PageId) -> KvResult<Arc<Node>>;
    /// The value in the overflow chain `stored` names.
    fn value(&self, stored: &StoredRef) -> KvResult<Vec<u8>>;
    /// The pages of the overflow chain `stored` names.
    fn chain_pages(&self, stored: &StoredRef) -> KvResult<Vec<PageId>>;
    /// Page `page` holds something its format forbids.
    fn corrupt(&self, page: PageId, reason: String) -> leasehold_storage::KvError;
}

/// Size limits of nodes.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_keys: usize,
    /// Payload bytes of a page.
    pub capacity: usize,
    /// Values whose stored form is longer than this go to overflow pages.
    pub inline_max: usize,
    /// Values are stored lz4-compressed where that makes them smaller.
    pub compress: bool,
}

/// Bytes an overflow reference takes in a leaf: flags, first page, stored
/// length, raw length (varints at their widest).
pub const OVERFLOW_REF_LEN: usize = 1 + 10 + 10 + 10;

fn varint_len(value: usize) -> usize {
    let mut len = 1;
    let mut rest = value >> 7;
    while rest > 0 {
        len += 1;
        rest >>= 7;
    }
    len
}

/// Encoded bytes of a leaf entry (an upper bound: varints at their widest).
pub fn leaf_entry_len(key: &[u8], value: &Value, limits: &Limits) -> usize {
    let key_len = varint_len(key.len()) + key.len();
    let len = match value {
        // As stored: what it takes on the page.
        Value::Inline { stored, .. } => stored.len(),
        Value::Stored(_) => return key_len + OVERFLOW_REF_LEN,
        Value::Cell(cell) => cell.bytes.len(),
    };
    if len > limits.inline_max {
        key_len + OVERFLOW_REF_LEN
    } else {
        // flags, raw length (if compressed), stored length, bytes
        key_len + 1 + 10 + varint_len(len) + len
    }
}

fn branch_item_len(key: &[u8]) -> usize {
    8 + varint_len(key.len()) + key.len()
}

/// What changes replaced, as far as freeing pages needs: the pages of
/// replaced nodes and values, and — only while a checkpoint is writing a tree
/// that may contain them — replaced nodes and values without a page yet
/// (that checkpoint may give them one). Nothing else is kept, so memory does
/// not grow with the writes between checkpoints.
#[derive(Debug, Default)]
pub struct Replaced {
    pub pages: Vec<PageId>,
    pending_nodes: Vec<Arc<Node>>,
    pending_values: Vec<Arc<ValueCell>>,
    /// Set while a checkpoint writes a snapshot (under the writer lock).
    pub checkpoint_running: bool,
}

impl Replaced {
    pub fn node(&mut self, node: &Arc<Node>, change: &mut Change) {
        if let Some(&page) = node.page.get() {
            self.pages.push(page);
        } else {
            change.dirty_bytes -= node.resident as i64;
            if self.checkpoint_running {
                self.pending_nodes.push(Arc::clone(node));
            }
        }
    }

    pub fn value(&mut self, value: Value, pages: &dyn PageSource) -> KvResult<()> {
        match value {
            Value::Cell(cell) => {
                if let Some(overflow) = cell.overflow.get() {
                    self.pages.extend(overflow.pages.iter().copied());
                } else if self.checkpoint_running {
                    self.pending_values.push(cell);
                }
            }
            Value::Stored(stored) => self.pages.extend(pages.chain_pages(&stored)?),
            Value::Inline { .. } => {}
        }
        Ok(())
    }

    /// The running checkpoint finished: what it gave pages is now known.
    pub fn settle(&mut self) {
        self.checkpoint_running = false;
        for node in std::mem::take(&mut self.pending_nodes) {
            if let Some(&page) = node.page.get() {
                self.pages.push(page);
            }
        }
        for value in std::mem::take(&mut self.pending_values) {
            if let Some(overflow) = value.overflow.get() {
                self.pages.extend(overflow.pages.iter().copied());
            }
        }
    }
}

/// What an insert or delete did to the live data and to the dirty nodes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub entries: i64,
    pub bytes: i64,
    /// Bytes of dirty nodes made, less those of dirty nodes replaced.
    pub dirty_bytes: i64,
}

impl Change {
    /// A new dirty node.
    pub fn made(&mut self, body: Body) -> Arc<Node> {
        let node = Node::new(body);
        self.dirty_bytes += node.resident as i64;
        node
    }
}

/// Cuts `items` into the fewest groups of near-equal count that each respect
/// `max` items and `capacity` bytes (per `len`, plus `fixed` per group).
fn pack<T>(
    items: Vec<T>,
    max: usize,
    capacity: usize,
    fixed: usize,
    len: impl Fn(&T) -> usize,
) -> Vec<Vec<T>> {
    let lens: Vec<usize> = items.iter().map(&len).collect();
    let count = items.len();
    let total: usize = lens.iter().sum::<usize>() + fixed;
    let mut parts = count
        .div_ceil(max)
        .max(total.div_ceil(capacity))
        .clamp(1, count.max(1));
    let bounds = loop {
        let bounds: Vec<usize> = (0..=parts).map(|part| part * count / parts).collect();
        let fits = bounds
            .windows(2)
            .all(|range| fixed + lens[range[0]..range[1]].iter().sum::<usize>() <= capacity);
        if fits || parts >= count {
            break bounds;
        }
        parts += 1;
    };
    let mut items = items.into_iter();
    bounds
        .windows(2)
        .map(|range| items.by_ref().take(range[1] - range[0]).collect())
        .collect()
}
