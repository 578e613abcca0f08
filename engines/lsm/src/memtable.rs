//! The memtable: a lock-free skip list of internal keys (crossbeam's), so
//! readers never wait for the writer. One write leader inserts at a time;
//! entries become visible to reads only once the engine publishes their
//! sequence number, so a batch appears whole.

use std::ops::Bound;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use crossbeam_skiplist::SkipMap;

use crate::format::{InternalKey, ValueKind};

/// Per-entry bookkeeping counted against `memtable_size_limit` besides the key
/// and value bytes (skip-list node, lengths).
const ENTRY_OVERHEAD: usize = 64;

#[derive(Debug)]
pub struct Memtable {
    map: SkipMap<InternalKey, Bytes>,
    size: AtomicUsize,
    /// The WAL file holding this memtable's writes.
    wal_number: u64,
    /// Entries iterators handed out (tests check scans read lazily).
    #[cfg(test)]
    yielded: AtomicUsize,
}

impl Memtable {
    pub fn new(wal_number: u64) -> Self {
        Memtable {
            map: SkipMap::new(),
            size: AtomicUsize::new(0),
            wal_number,
            #[cfg(test)]
            yielded: AtomicUsize::new(0),
        }
    }

    pub fn wal_number(&self) -> u64 {
        self.wal_number
    }

    pub fn insert(&self, key: InternalKey, value: Bytes) {
        self.size.fetch_add(
            key.user_key.len() + value.len() + ENTRY_OVERHEAD,
            Ordering::Relaxed,
        );
        self.map.insert(key, value);
    }

    /// The newest version of `user_key` with a sequence ≤ `sequence`.
    pub fn get(&self, user_key: &[u8], sequence: u64) -> Option<(ValueKind, Bytes)> {
        let seek = InternalKey::seek_key(user_key, sequence);
        let entry = self.map.range(seek..).next()?;
        (entry.key().user_key == user_key).then(|| (entry.key().kind, entry.value().clone()))
    }

    /// Approximate bytes held.
    pub fn size(&self) -> usize {
        self.size.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Entries from `start` on, in internal-key order, each key encoded
    /// (one allocation) and each value shared, so the iterator holds no lock
    /// and copies no value.
    pub fn iter_from(
        &self,
        start: Bound<InternalKey>,
    ) -> impl Iterator<Item = (Vec<u8>, Bytes)> + '_ {
        self.map.range((start, Bound::Unbounded)).map(|entry| {
            #[cfg(test)]
            self.yielded.fetch_add(1, Ordering::Relaxed);
            (entry.key().encode(), entry.value().clone())
        })
    }

    #[cfg(test)]
    pub fn entries_yielded(&self) -> usize {
        self.yielded.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_see_the_newest_version_at_or_below_their_sequence() {
        let memtable = Memtable::new(1);
        memtable.insert(
            InternalKey::new(&b"k"[..], 1, ValueKind::Put),
            Bytes::from_static(b"one"),
        );
        memtable.insert(
            InternalKey::new(&b"k"[..], 3, ValueKind::Delete),
            Bytes::new(),
        );
        memtable.insert(
            InternalKey::new(&b"k"[..], 5, ValueKind::Put),
            Bytes::from_static(b"five"),
        );
        memtable.insert(
            InternalKey::new(&b"kk"[..], 2, ValueKind::Put),
            Bytes::from_static(b"other"),
        );
        assert_eq!(memtable.get(b"k", 0), None);
        assert_eq!(
            memtable.get(b"k", 2),
            Some((ValueKind::Put, Bytes::from_static(b"one")))
        );
        assert_eq!(
            memtable.get(b"k", 4),
            Some((ValueKind::Delete, Bytes::new()))
        );
        assert_eq!(
            memtable.get(b"k", 9),
            Some((ValueKind::Put, Bytes::from_static(b"five")))
        );
        assert_eq!(memtable.get(b"j", 9), None);
        let keys: Vec<u64> = memtable
            .iter_from(Bound::Unbounded)
            .filter_map(|(key, _)| crate::format::split(&key).map(|(_, sequence, _)| sequence))
            .collect();
        assert_eq!(keys, [5, 3, 1, 2]);
        assert!(memtable.size() > 0);
    }
}
