//! The memtable's skip list, in an arena (LevelDB's design): nodes are carved
//! out of 1 MiB chunks with their key inline, so an insert costs one bump of
//! a pointer instead of two heap allocations, and a search walks memory that
//! was written together.
//!
//! Contract:
//! 1. One writer at a time — `insert` takes the list's writer lock, so this
//!    is enforced, not assumed — and any number of readers, which never lock.
//! 2. A node is written whole (key, trailer, value, its own next pointers)
//!    before the Release store that links it; readers follow links with
//!    Acquire loads, so a reader that reaches a node sees all of it.
//! 3. Nothing is removed or moved: a linked node only has its next pointers
//!    changed, each to a node linked later that sorts between. Readers borrow
//!    the list, and the arena is freed only when the list is dropped, so no
//!    reader can hold a pointer into freed memory.
//! 4. Entries sort by user key ascending, then trailer (`sequence << 8 |
//!    kind`) descending — `InternalKey`'s order. Two inserts of one internal
//!    key (which unique sequence numbers rule out) keep both, the newer first.
//!
//! Its tests run under Miri (aliasing and data races checked):
//! `PROPTEST_CASES=6 cargo +nightly miri test -p leasehold-lsm --lib memtable`.

use std::alloc::{self, Layout};
use std::cmp::Ordering as KeyOrdering;
use std::marker::PhantomData;
use std::mem::size_of;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;

const MAX_HEIGHT: usize = 12;
/// One node in four reaches each next level.
const BRANCHING: u32 = 4;
const CHUNK_BYTES: usize = 1 << 20;
/// Nodes larger than this get a chunk of their own instead of wasting the
/// rest of the current one.
const LARGE_NODE_BYTES: usize = CHUNK_BYTES / 4;
const ALIGN: usize = 8;

/// A node's header; `height` next pointers and then `key_len` key bytes
/// follow it in the arena.
#[repr(C)]
struct Node {
    value: Bytes,
    trailer: u64,
    key_len: u32,
    height: u32,
}

const TOWER_OFFSET: usize = size_of::<Node>();
const _: () = assert!(TOWER_OFFSET.is_multiple_of(ALIGN) && std::mem::align_of::<Node>() <= ALIGN);

impl Node {
    fn size_bytes(height: usize, key_len: usize) -> usize {
        TOWER_OFFSET + height * size_of::<AtomicPtr<Node>>() + key_len
    }

    /// # Safety
    /// `node` points to a written node and `level` < its height.
    unsafe fn next<'a>(node: *const Node, level: usize) -> &'a AtomicPtr<Node> {
        unsafe {
            debug_assert!(level < (*node).height as usize);
            &*node
                .cast::<u8>()
                .add(TOWER_OFFSET)
                .cast::<AtomicPtr<Node>>()
                .add(level)
        }
    }

    /// # Safety
    /// `node` points to a written node that outlives `'a`.
    unsafe fn key<'a>(node: *const Node) -> &'a [u8] {
        unsafe {
            let height = (*node).height as usize;
            let start = node
                .cast::<u8>()
                .add(TOWER_OFFSET + height * size_of::<AtomicPtr<Node>>());
            std::slice::from_raw_parts(start, (*node).key_len as usize)
        }
    }
}

/// Chunks of memory handed out by bumping a pointer; freed all at once.
struct Arena {
    chunks: Vec<(NonNull<u8>, Layout)>,
    next: *mut u8,
    remaining: usize,
    allocated_bytes: usize,
}

impl Arena {
    fn new() -> Self {
        Arena {
            chunks: Vec::new(),
            next: ptr::null_mut(),
            remaining: 0,
            allocated_bytes: 0,
        }
    }

    /// `bytes` of uninitialised memory aligned to `ALIGN`.
    fn allocate(&mut self, bytes: usize) -> *mut u8 {
        let bytes = bytes.next_multiple_of(ALIGN);
        if bytes > self.remaining {
            if bytes > LARGE_NODE_BYTES {
                return self.chunk(bytes);
            }
            self.next = self.chunk(CHUNK_BYTES);
            self.remaining = CHUNK_BYTES;
        }
        let at = self.next;
        // In bounds: `bytes` ≤ `remaining` bytes are left in the chunk.
        self.next = unsafe { at.add(bytes) };
        self.remaining -= bytes;
        at
    }

    fn chunk(&mut self, bytes: usize) -> *mut u8 {
        // Unreachable: a node is a header, a tower and a key under 4 GiB
        // (`allocate_node`), far below `isize::MAX`.
        let Ok(layout) = Layout::from_size_align(bytes, ALIGN) else {
            panic!("memtable node of {bytes} bytes exceeds the address space");
        };
        // `layout` is non-zero-sized: every node has at least a header.
        let memory = unsafe { alloc::alloc(layout) };
        let Some(chunk) = NonNull::new(memory) else {
            alloc::handle_alloc_error(layout)
        };
        self.chunks.push((chunk, layout));
        self.allocated_bytes += bytes;
        memory
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        for (chunk, layout) in self.chunks.drain(..) {
            // Allocated by `chunk` with this layout, freed once.
            unsafe { alloc::dealloc(chunk.as_ptr(), layout) };
        }
    }
}

struct Writer {
    arena: Arena,
    random: u32,
}

impl Writer {
    fn random_height(&mut self) -> usize {
        let mut height = 1;
        while height < MAX_HEIGHT && self.next_random().is_multiple_of(BRANCHING) {
            height += 1;
        }
        height
    }

    /// xorshift32: heights only need to be spread, not unpredictable.
    fn next_random(&mut self) -> u32 {
        let mut x = self.random;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.random = x;
        x
    }
}

pub struct SkipList {
    head: NonNull<Node>,
    /// Levels in use; readers may see a stale (lower) height, which only
    /// makes their search start lower.
    height: AtomicUsize,
    len: AtomicUsize,
    writer: Mutex<Writer>,
}

// Safety: the raw pointers point into the list's own arena, freed only on
// drop; shared access follows the contract above (one writer under a lock,
// readers through Acquire loads of fully written nodes). `Bytes` is Send+Sync.
unsafe impl Send for SkipList {}
unsafe impl Sync for SkipList {}

impl Default for SkipList {
    fn default() -> Self {
        SkipList::new()
    }
}

impl SkipList {
    pub fn new() -> Self {
        let mut arena = Arena::new();
        let head = allocate_node(&mut arena, MAX_HEIGHT, &[], 0, Bytes::new());
        SkipList {
            head,
            height: AtomicUsize::new(1),
            len: AtomicUsize::new(0),
            writer: Mutex::new(Writer {
                arena,
                random: 0x2545_f491,
            }),
        }
    }

    pub fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the arena holds (nodes and keys; values are shared `Bytes`).
    #[cfg(test)]
    pub fn arena_bytes(&self) -> usize {
        self.writer.lock().arena.allocated_bytes
    }

    pub fn insert(&self, user_key: &[u8], trailer: u64, value: Bytes) {
        let mut writer = self.writer.lock();
        let mut previous = [self.head.as_ptr(); MAX_HEIGHT];
        self.seek(user_key, trailer, Some(&mut previous));
        let height = writer.random_height();
        let current = self.height.load(Ordering::Relaxed);
        if height > current {
            // `previous` above `current` is already the head.
            self.height.store(height, Ordering::Relaxed);
        }
        let node = allocate_node(&mut writer.arena, height, user_key, trailer, value).as_ptr();
        unsafe {
            // The node is not yet reachable: its own links can be relaxed.
            for (level, &before) in previous[..height].iter().enumerate() {
                let after = Node::next(before, level).load(Ordering::Relaxed);
                Node::next(node, level).store(after, Ordering::Relaxed);
            }
            // Publish bottom-up: a reader that finds the node at a level
            // finds it at every level below.
            for (level, &before) in previous[..height].iter().enumerate() {
                Node::next(before, level).store(node, Ordering::Release);
            }
        }
        self.len.fetch_add(1, Ordering::Release);
    }

    /// The first entry at or after (`user_key`, `trailer`) in list order.
    pub fn seek_entry(&self, user_key: &[u8], trailer: u64) -> Option<EntryRef<'_>> {
        let node = self.seek(user_key, trailer, None);
        EntryRef::at(node)
    }

    /// Every entry, in order, from the first at or after the given position
    /// (`None`: from the start).
    pub fn iter_from(&self, from: Option<(&[u8], u64)>) -> Iter<'_> {
        let node = match from {
            Some((user_key, trailer)) => self.seek(user_key, trailer, None),
            // The head outlives this borrow; level 0 exists at every height.
            None => unsafe { Node::next(self.head.as_ptr(), 0).load(Ordering::Acquire) },
        };
        Iter {
            next: EntryRef::at(node),
        }
    }

    /// The first node ≥ the target, recording in `previous` the last node
    /// before it on each level.
    fn seek(
        &self,
        user_key: &[u8],
        trailer: u64,
        mut previous: Option<&mut [*mut Node; MAX_HEIGHT]>,
    ) -> *mut Node {
        let mut at = self.head.as_ptr();
        let mut level = self.height.load(Ordering::Relaxed) - 1;
        loop {
            // `at` is the head or a linked node; `level` < its height since
            // we only step right on levels the next node has.
            let next = unsafe { Node::next(at, level).load(Ordering::Acquire) };
            if !next.is_null() && unsafe { compare(next, user_key, trailer) } == KeyOrdering::Less {
                at = next;
                continue;
            }
            if let Some(previous) = previous.as_deref_mut() {
                previous[level] = at;
            }
            if level == 0 {
                return next;
            }
            level -= 1;
        }
    }
}

/// `node`'s position relative to the target in list order.
///
/// # Safety
/// `node` is a linked node.
unsafe fn compare(node: *const Node, user_key: &[u8], trailer: u64) -> KeyOrdering {
    unsafe {
        Node::key(node)
            .cmp(user_key)
            // Higher trailers (newer sequences) sort first.
            .then_with(|| trailer.cmp(&(*node).trailer))
    }
}

fn allocate_node(
    arena: &mut Arena,
    height: usize,
    user_key: &[u8],
    trailer: u64,
    value: Bytes,
) -> NonNull<Node> {
    // An invariant, not a caller's error: keys arrive in a WriteBatch, which
    // `check_size` caps at BATCH_BYTES_MAX (2 GiB) before the log, or from a
    // log record such a batch wrote.
    let Ok(key_len) = u32::try_from(user_key.len()) else {
        panic!("memtable key of {} bytes exceeds 4 GiB", user_key.len());
    };
    let memory = arena.allocate(Node::size_bytes(height, user_key.len()));
    let node = memory.cast::<Node>();
    unsafe {
        // `memory` is fresh, aligned and large enough for the header, the
        // tower and the key (`size_bytes`).
        ptr::write(
            node,
            Node {
                value,
                trailer,
                key_len,
                height: height as u32,
            },
        );
        let tower = memory.add(TOWER_OFFSET).cast::<AtomicPtr<Node>>();
        for level in 0..height {
            ptr::write(tower.add(level), AtomicPtr::new(ptr::null_mut()));
        }
        let key = tower.add(height).cast::<u8>();
        ptr::copy_nonoverlapping(user_key.as_ptr(), key, user_key.len());
        NonNull::new_unchecked(node)
    }
}

impl Drop for SkipList {
    fn drop(&mut self) {
        // Every node (the head included) is on level 0; each owns a `Bytes`.
        let mut node = self.head.as_ptr();
        while !node.is_null() {
            unsafe {
                let next = Node::next(node, 0).load(Ordering::Relaxed);
                ptr::drop_in_place(ptr::addr_of_mut!((*node).value));
                node = next;
            }
        }
        // The arena frees the memory when the writer drops.
    }
}

/// An entry of the list, borrowed from it. It keeps a raw pointer (not a
/// `&Node`) so that reaching the tower and key past the header keeps the
/// arena's provenance.
#[derive(Clone, Copy)]
pub struct EntryRef<'a> {
    node: NonNull<Node>,
    list: PhantomData<&'a SkipList>,
}

impl<'a> EntryRef<'a> {
    fn at(node: *mut Node) -> Option<Self> {
        NonNull::new(node).map(|node| EntryRef {
            node,
            list: PhantomData,
        })
    }

    // A linked node is written whole and lives as long as the list `'a`
    // borrows (contract 2 and 3).
    pub fn user_key(&self) -> &'a [u8] {
        unsafe { Node::key(self.node.as_ptr()) }
    }

    pub fn trailer(&self) -> u64 {
        unsafe { (*self.node.as_ptr()).trailer }
    }

    pub fn value(&self) -> &'a Bytes {
        unsafe { &(*self.node.as_ptr()).value }
    }
}

pub struct Iter<'a> {
    next: Option<EntryRef<'a>>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = EntryRef<'a>;

    fn next(&mut self) -> Option<EntryRef<'a>> {
        let entry = self.next?;
        let node = entry.node.as_ptr();
        self.next = EntryRef::at(unsafe { Node::next(node, 0).load(Ordering::Acquire) });
        Some(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::sync::Arc;

    /// The model orders like the list: user key up, trailer down.
    fn model_key(user_key: &[u8], trailer: u64) -> (Vec<u8>, std::cmp::Reverse<u64>) {
        (user_key.to_vec(), std::cmp::Reverse(trailer))
    }

    proptest! {
        #[test]
        fn iterates_and_seeks_as_a_sorted_map(
            entries in proptest::collection::vec(
                (proptest::collection::vec(0u8..4, 0..6), 0u64..1000, any::<u8>()), 0..300),
            seeks in proptest::collection::vec(
                (proptest::collection::vec(0u8..4, 0..6), 0u64..1000), 0..20),
        ) {
            let list = SkipList::new();
            let mut model = BTreeMap::new();
            for (key, trailer, value) in &entries {
                if let std::collections::btree_map::Entry::Vacant(slot) =
                    model.entry(model_key(key, *trailer))
                {
                    slot.insert(*value);
                    list.insert(key, *trailer, Bytes::from(vec![*value; 3]));
                }
            }
            prop_assert_eq!(list.len(), model.len());
            let listed: Vec<_> = list
                .iter_from(None)
                .map(|entry| (model_key(entry.user_key(), entry.trailer()), entry.value()[0]))
                .collect();
            let expected: Vec<_> = model.iter().map(|(key, value)| (key.clone(), *value)).collect();
            prop_assert_eq!(listed, expected);
            for (key, trailer) in &seeks {
                let found = list
                    .seek_entry(key, *trailer)
                    .map(|entry| model_key(entry.user_key(), entry.trailer()));
                let expected = model.range(model_key(key, *trailer)..).next().map(|(key, _)| key.clone());
                prop_assert_eq!(found, expected);
                let from: Vec<_> = list
                    .iter_from(Some((key, *trailer)))
                    .map(|entry| model_key(entry.user_key(), entry.trailer()))
                    .collect();
                let expected: Vec<_> = model.range(model_key(key, *trailer)..).map(|(key, _)| key.clone()).collect();
                prop_assert_eq!(from, expected);
            }
        }
    }

    #[test]
    fn readers_racing_the_writer_see_sorted_whole_entries() {
        let list = Arc::new(SkipList::new());
        // Miri (`cargo +nightly miri test`) checks the same races, smaller.
        let writes: u64 = if cfg!(miri) { 300 } else { 20_000 };
        let passes_min = if cfg!(miri) { 3 } else { 50 };
        let writer = {
            let list = Arc::clone(&list);
            std::thread::spawn(move || {
                for index in 0..writes {
                    // Scrambled (7919 is prime to `writes`, so every key
                    // once) so inserts land all over the list.
                    let key = (index * 7919 % writes).to_be_bytes();
                    list.insert(&key, index << 8 | 1, Bytes::from(key.to_vec()));
                }
            })
        };
        let mut passes = 0;
        while passes < passes_min || !writer.is_finished() {
            let mut previous: Option<Vec<u8>> = None;
            let mut seen = 0;
            for entry in list.iter_from(None) {
                // A reader sees each entry whole: its value was written with it.
                assert_eq!(entry.value().as_ref(), entry.user_key());
                if let Some(previous) = &previous {
                    assert!(previous.as_slice() < entry.user_key());
                }
                previous = Some(entry.user_key().to_vec());
                seen += 1;
            }
            assert!(seen <= writes as usize);
            passes += 1;
        }
        assert!(writer.join().is_ok());
        assert_eq!(list.iter_from(None).count(), writes as usize);
        for index in (0..writes).step_by(997) {
            let key = index.to_be_bytes();
            let entry = list.seek_entry(&key, u64::MAX);
            assert_eq!(entry.map(|entry| entry.user_key()), Some(&key[..]));
        }
    }

    #[test]
    fn a_key_larger_than_a_chunk_gets_one_of_its_own_and_values_are_dropped_with_the_list() {
        let value = Bytes::from(vec![7u8; 100]);
        {
            let list = SkipList::new();
            list.insert(&vec![1u8; CHUNK_BYTES], 1 << 8, value.clone());
            list.insert(b"small", 2 << 8, value.clone());
            // The head's chunk, which "small" shares, and the large key's.
            assert_eq!(
                list.arena_bytes(),
                CHUNK_BYTES + (Node::size_bytes(1, CHUNK_BYTES)).next_multiple_of(ALIGN)
            );
            assert_eq!(list.iter_from(None).count(), 2);
            // `Bytes` from a `Vec` shares only after its first clone; the
            // list's clones keep it alive until the list drops.
            assert!(!value.is_unique());
        }
        assert!(value.is_unique());
    }
}
