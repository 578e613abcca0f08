//! The block cache: checked blocks by (file number, offset), charged by
//! their bytes against a byte capacity, evicted by CLOCK (second chance): a
//! hit only sets the block's bit, so a read takes the shard's lock for a hash
//! lookup and never reorders anything; the hand clears bits until it meets a
//! block not used since its last pass. Sharded to keep readers on different
//! blocks off one lock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::block::Block;

const SHARDS: usize = 16;

type CacheKey = (u64, u64);

#[derive(Debug)]
struct Slot {
    key: CacheKey,
    block: Arc<Block>,
    used: bool,
}

#[derive(Debug, Default)]
struct Shard {
    /// Where each cached key's slot is.
    index: HashMap<CacheKey, usize>,
    /// The clock's ring.
    slots: Vec<Slot>,
    hand: usize,
    charge: usize,
}

impl Shard {
    /// Removes the slot at `at` (the last slot moves into its place).
    fn remove_at(&mut self, at: usize) {
        let slot = self.slots.swap_remove(at);
        self.index.remove(&slot.key);
        self.charge -= slot.block.charge;
        if let Some(moved) = self.slots.get(at) {
            self.index.insert(moved.key, at);
        }
    }

    /// Evicts until the charge fits `capacity`.
    fn evict_to(&mut self, capacity: usize) {
        while self.charge > capacity && !self.slots.is_empty() {
            if self.hand >= self.slots.len() {
                self.hand = 0;
            }
            let slot = &mut self.slots[self.hand];
            if slot.used {
                slot.used = false;
                self.hand += 1;
            } else {
                self.remove_at(self.hand);
            }
        }
    }
}

#[derive(Debug)]
pub struct BlockCache {
    shards: Vec<Mutex<Shard>>,
    capacity_per_shard: usize,
    hits: AtomicU64,
    misses: AtomicU64,
    /// The planted `SkipBlockChecksum` bug: the cache is the one per-engine
    /// object every table shares, so its switch lives here.
    #[cfg(any(test, feature = "planted-bugs"))]
    pub skip_checksums: std::sync::atomic::AtomicBool,
}

impl BlockCache {
    /// False only while the planted `SkipBlockChecksum` bug is on.
    pub fn checks_checksums(&self) -> bool {
        #[cfg(any(test, feature = "planted-bugs"))]
        return !self
            .skip_checksums
            .load(std::sync::atomic::Ordering::Relaxed);
        #[cfg(not(any(test, feature = "planted-bugs")))]
        true
    }

    pub fn new(capacity_bytes: usize) -> Self {
        BlockCache {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            capacity_per_shard: capacity_bytes / SHARDS,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            #[cfg(any(test, feature = "planted-bugs"))]
            skip_checksums: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn shard(&self, key: CacheKey) -> &Mutex<Shard> {
        // Multiply after combining, so the offset's bits reach the top bits
        // the shard is taken from (a table's blocks differ only in offset).
        let mixed = (key.0.rotate_left(32) ^ key.1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        &self.shards[(mixed >> 58) as usize % SHARDS]
    }

    pub fn get(&self, file: u64, offset: u64) -> Option<Arc<Block>> {
        let key = (file, offset);
        let mut shard = self.shard(key).lock();
        let shard = &mut *shard;
        match shard.index.get(&key) {
            Some(&at) => {
                let slot = &mut shard.slots[at];
                slot.used = true;
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some(Arc::clone(&slot.block))
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    pub fn insert(&self, file: u64, offset: u64, block: Arc<Block>) {
        if block.charge > self.capacity_per_shard {
            return;
        }
        let key = (file, offset);
        let mut shard = self.shard(key).lock();
        if let Some(at) = shard.index.get(&key).copied() {
            shard.remove_at(at);
        }
        shard.evict_to(self.capacity_per_shard - block.charge);
        shard.charge += block.charge;
        let at = shard.slots.len();
        shard.slots.push(Slot {
            key,
            block,
            used: false,
        });
        shard.index.insert(key, at);
    }

    /// Drops every block of `file` (it was deleted).
    pub fn forget_file(&self, file: u64) {
        for shard in &self.shards {
            let mut shard = shard.lock();
            let mut at = 0;
            while at < shard.slots.len() {
                if shard.slots[at].key.0 == file {
                    shard.remove_at(at);
                } else {
                    at += 1;
                }
            }
        }
    }

    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(charge: usize) -> Arc<Block> {
        let mut block = Block::default();
        block.charge = charge;
        Arc::new(block)
    }

    #[test]
    fn capacity_holds_and_blocks_of_a_deleted_file_go() {
        let cache = BlockCache::new(SHARDS * 100);
        // Same file and offsets that land in one shard are not guaranteed; use many.
        for offset in 0..200 {
            cache.insert(1, offset, block(10));
        }
        let held: usize = cache.shards.iter().map(|shard| shard.lock().charge).sum();
        assert!(held <= SHARDS * 100);
        assert!(cache.get(1, 199).is_some(), "the newest survives");
        cache.forget_file(1);
        assert!(cache.get(1, 199).is_none());
        assert!(cache.hits() >= 1 && cache.misses() >= 1);
        cache.insert(2, 0, block(10_000));
        assert!(
            cache.get(2, 0).is_none(),
            "a block larger than a shard is not cached"
        );
    }

    /// The blocks of one table spread over the shards: a shard holds a
    /// sixteenth of the capacity, so a table's blocks in one shard would
    /// thrash while the rest of the cache stood empty.
    #[test]
    fn the_blocks_of_one_table_spread_over_the_shards() {
        let cache = BlockCache::new(SHARDS << 20);
        for block_index in 0..256 {
            cache.insert(7, block_index * 4133, block(100));
        }
        let used = cache
            .shards
            .iter()
            .filter(|shard| !shard.lock().slots.is_empty())
            .count();
        assert_eq!(used, SHARDS, "only {used} shards hold a table's blocks");
    }

    /// CLOCK gives a block used since the hand last passed a second chance:
    /// the unused one goes first.
    #[test]
    fn a_block_used_since_the_hands_last_pass_outlives_an_unused_one() {
        let mut shard = Shard::default();
        for offset in 0..3 {
            shard.charge += 10;
            shard.index.insert((1, offset), shard.slots.len());
            shard.slots.push(Slot {
                key: (1, offset),
                block: block(10),
                used: false,
            });
        }
        shard.slots[0].used = true;
        shard.evict_to(20);
        assert!(shard.index.contains_key(&(1, 0)), "used: spared once");
        assert!(!shard.index.contains_key(&(1, 1)), "unused: evicted");
        assert_eq!(shard.charge, 20);
        for (at, slot) in shard.slots.iter().enumerate() {
            assert_eq!(shard.index[&slot.key], at, "the index follows moved slots");
        }
        assert!(
            !shard.slots.iter().any(|slot| slot.used),
            "the pass cleared the bit"
        );
    }
}
