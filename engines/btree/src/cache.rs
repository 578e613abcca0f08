//! The page cache: decoded leaf and branch pages, bounded in bytes, evicted
//! by CLOCK (a page read since the hand last passed gets a second chance).
//! Only clean pages live here — a node here is exactly what its page holds —
//! so eviction never writes. Sharded by page id so readers on different
//! pages rarely meet on one lock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::node::{Node, PageId};

const SHARDS: usize = 16;

struct Slot {
    page: PageId,
    node: Arc<Node>,
    referenced: bool,
}

#[derive(Default)]
struct Clock {
    map: HashMap<PageId, usize>,
    slots: Vec<Option<Slot>>,
    vacant: Vec<usize>,
    hand: usize,
    bytes: usize,
}

impl Clock {
    fn get(&mut self, page: PageId) -> Option<Arc<Node>> {
        let index = *self.map.get(&page)?;
        let slot = self.slots[index].as_mut()?;
        slot.referenced = true;
        Some(Arc::clone(&slot.node))
    }

    fn remove(&mut self, page: PageId) {
        if let Some(index) = self.map.remove(&page) {
            if let Some(slot) = self.slots[index].take() {
                self.bytes -= slot.node.resident;
            }
            self.vacant.push(index);
        }
    }

    /// Evicts one page: the first the hand finds unreferenced.
    fn evict_one(&mut self) {
        for _ in 0..2 * self.slots.len() + 1 {
            if self.slots.is_empty() {
                return;
            }
            self.hand %= self.slots.len();
            let index = self.hand;
            self.hand += 1;
            match &mut self.slots[index] {
                Some(slot) if slot.referenced => slot.referenced = false,
                Some(slot) => {
                    let page = slot.page;
                    self.remove(page);
                    return;
                }
                None => {}
            }
        }
    }

    fn insert(&mut self, page: PageId, node: Arc<Node>, capacity: usize) {
        self.remove(page);
        while self.bytes + node.resident > capacity && !self.map.is_empty() {
            self.evict_one();
        }
        self.bytes += node.resident;
        let slot = Some(Slot {
            page,
            node,
            referenced: false,
        });
        let index = match self.vacant.pop() {
            Some(index) => {
                self.slots[index] = slot;
                index
            }
            None => {
                self.slots.push(slot);
                self.slots.len() - 1
            }
        };
        self.map.insert(page, index);
    }
}

/// Hits and misses since open.
#[derive(Debug, Default)]
pub struct CacheCounters {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
}

pub struct PageCache {
    shards: Vec<Mutex<Clock>>,
    /// Bytes per shard.
    shard_capacity: usize,
    pub counters: CacheCounters,
}

impl PageCache {
    pub fn new(capacity_bytes: u64) -> PageCache {
        PageCache {
            shards: (0..SHARDS).map(|_| Mutex::new(Clock::default())).collect(),
            shard_capacity: (capacity_bytes as usize / SHARDS).max(1),
            counters: CacheCounters::default(),
        }
    }

    fn shard(&self, page: PageId) -> &Mutex<Clock> {
        &self.shards[(page as usize) % SHARDS]
    }

    pub fn get(&self, page: PageId) -> Option<Arc<Node>> {
        let found = self.shard(page).lock().get(page);
        let counter = if found.is_some() {
            &self.counters.hits
        } else {
            &self.counters.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Caches `node` as the contents of `page` (replacing what was there).
    pub fn insert(&self, page: PageId, node: Arc<Node>) {
        self.shard(page)
            .lock()
            .insert(page, node, self.shard_capacity);
    }

    /// Forgets `page` (it is being overwritten).
    pub fn remove(&self, page: PageId) {
        self.shard(page).lock().remove(page);
    }

    /// Bytes cached now.
    pub fn bytes(&self) -> u64 {
        self.shards
            .iter()
            .map(|shard| shard.lock().bytes as u64)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::Body;

    fn leaf(bytes: usize) -> Arc<Node> {
        use crate::node::{Value, ValueCell};
        Node::new(Body::Leaf(vec![(
            crate::slice::Slice::copied(b"k"),
            Value::Cell(ValueCell::new(vec![0; bytes])),
        )]))
    }

    #[test]
    fn the_cache_stays_within_its_bytes_and_keeps_what_is_read() {
        let cache = PageCache::new(16 * 10_000);
        for page in 0..1_000u64 {
            cache.insert(page, leaf(1_000));
            // Page 0's shard-mates are read after every insert: they stay.
            if cache.get(0).is_none() {
                panic!("page 0 evicted at {page} despite being read each time");
            }
            assert!(cache.bytes() <= 16 * 10_000, "{}", cache.bytes());
        }
        assert!(cache.get(999).is_some());
        assert!(
            cache.get(16).is_none(),
            "an unread page outlived 60 newer ones"
        );
        cache.remove(0);
        assert!(cache.get(0).is_none());
    }
}
