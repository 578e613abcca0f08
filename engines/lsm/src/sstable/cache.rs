//! The block cache: decoded blocks by (file number, offset), least recently
//! used evicted first, charged by decoded size against a byte capacity.
//! Sharded to keep readers on different blocks off one lock.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::block::Block;

const SHARDS: usize = 16;

type CacheKey = (u64, u64);

#[derive(Debug, Default)]
struct Shard {
    entries: HashMap<CacheKey, (Arc<Block>, u64)>,
    by_use: BTreeMap<u64, CacheKey>,
    tick: u64,
    charge: usize,
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
        let mixed = key.0.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ key.1.rotate_left(17);
        &self.shards[(mixed >> 59) as usize % SHARDS]
    }

    pub fn get(&self, file: u64, offset: u64) -> Option<Arc<Block>> {
        let key = (file, offset);
        let mut shard = self.shard(key).lock();
        let shard = &mut *shard;
        shard.tick += 1;
        let tick = shard.tick;
        match shard.entries.get_mut(&key) {
            Some((block, used)) => {
                shard.by_use.remove(used);
                *used = tick;
                shard.by_use.insert(tick, key);
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some(Arc::clone(block))
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
        let shard = &mut *shard;
        shard.tick += 1;
        let tick = shard.tick;
        shard.charge += block.charge;
        if let Some((old, used)) = shard.entries.insert(key, (block, tick)) {
            shard.charge -= old.charge;
            shard.by_use.remove(&used);
        }
        shard.by_use.insert(tick, key);
        while shard.charge > self.capacity_per_shard {
            let Some((_, victim)) = shard.by_use.pop_first() else {
                break;
            };
            if let Some((evicted, _)) = shard.entries.remove(&victim) {
                shard.charge -= evicted.charge;
            }
        }
    }

    /// Drops every block of `file` (it was deleted).
    pub fn forget_file(&self, file: u64) {
        for shard in &self.shards {
            let mut shard = shard.lock();
            let shard = &mut *shard;
            let victims: Vec<(CacheKey, u64)> = shard
                .entries
                .iter()
                .filter(|(key, _)| key.0 == file)
                .map(|(key, (_, used))| (*key, *used))
                .collect();
            for (key, used) in victims {
                if let Some((block, _)) = shard.entries.remove(&key) {
                    shard.charge -= block.charge;
                }
                shard.by_use.remove(&used);
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
        Arc::new(Block {
            entries: Vec::new(),
            charge,
        })
    }

    #[test]
    fn least_recently_used_blocks_go_first_and_capacity_holds() {
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
}
