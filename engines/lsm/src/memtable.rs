//! The memtable: a skip list of internal keys in an arena (`skiplist`), so
//! readers never wait for the writer. One write leader inserts at a time;
//! entries become visible to reads only once the engine publishes their
//! sequence number, so a batch appears whole.

mod skiplist;

use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;

use crate::format::{self, InternalKey, ValueKind};
use skiplist::{EntryRef, SkipList};

/// Per-entry bookkeeping counted against `memtable_size_limit` besides the key
/// and value bytes (the node's header and next pointers, the value's handle).
const ENTRY_OVERHEAD: usize = 64;

pub struct Memtable {
    list: SkipList,
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
            list: SkipList::new(),
            size: AtomicUsize::new(0),
            wal_number,
            #[cfg(test)]
            yielded: AtomicUsize::new(0),
        }
    }

    pub fn wal_number(&self) -> u64 {
        self.wal_number
    }

    /// Inserts one version; the value is shared, not copied, and the key is
    /// copied once, into the arena.
    pub fn insert(&self, user_key: &[u8], sequence: u64, kind: ValueKind, value: Bytes) {
        self.size.fetch_add(
            user_key.len() + value.len() + ENTRY_OVERHEAD,
            Ordering::Relaxed,
        );
        self.list
            .insert(user_key, format::trailer(sequence, kind), value);
    }

    /// The newest version of `user_key` with a sequence ≤ `sequence`.
    pub fn get(&self, user_key: &[u8], sequence: u64) -> Option<(ValueKind, Bytes)> {
        // The seek key's trailer alone: no key is built (and allocated) per get.
        let entry = self
            .list
            .seek_entry(user_key, format::trailer(sequence, format::SEEK_KIND))?;
        (entry.user_key() == user_key).then(|| (kind_of(&entry), entry.value().clone()))
    }

    /// Approximate bytes held.
    pub fn size(&self) -> usize {
        self.size.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Entries from `start` on, in internal-key order, each key encoded
    /// (one allocation) and each value shared, so the iterator holds no lock
    /// and copies no value.
    pub fn iter_from(
        &self,
        start: Option<&InternalKey>,
    ) -> impl Iterator<Item = (Vec<u8>, Bytes)> + '_ {
        let from = start.map(|key| {
            (
                key.user_key.as_slice(),
                format::trailer(key.sequence, key.kind),
            )
        });
        self.list.iter_from(from).map(|entry| {
            #[cfg(test)]
            self.yielded.fetch_add(1, Ordering::Relaxed);
            let mut key = Vec::with_capacity(entry.user_key().len() + format::TRAILER_LEN);
            key.extend_from_slice(entry.user_key());
            key.extend_from_slice(&entry.trailer().to_le_bytes());
            (key, entry.value().clone())
        })
    }

    #[cfg(test)]
    pub fn entries_yielded(&self) -> usize {
        self.yielded.load(Ordering::Relaxed)
    }
}

/// An entry's kind; the list only holds entries the engine inserted, whose
/// kind byte came from a `ValueKind`.
fn kind_of(entry: &EntryRef<'_>) -> ValueKind {
    match ValueKind::from_byte(entry.trailer() as u8) {
        Some(kind) => kind,
        None => unreachable!("memtable entries are inserted with a ValueKind"),
    }
}

impl std::fmt::Debug for Memtable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memtable")
            .field("entries", &self.len())
            .field("size", &self.size())
            .field("wal_number", &self.wal_number)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_see_the_newest_version_at_or_below_their_sequence() {
        let memtable = Memtable::new(1);
        memtable.insert(b"k", 1, ValueKind::Put, Bytes::from_static(b"one"));
        memtable.insert(b"k", 3, ValueKind::Delete, Bytes::new());
        memtable.insert(b"k", 5, ValueKind::Put, Bytes::from_static(b"five"));
        memtable.insert(b"kk", 2, ValueKind::Put, Bytes::from_static(b"other"));
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
            .iter_from(None)
            .filter_map(|(key, _)| crate::format::split(&key).map(|(_, sequence, _)| sequence))
            .collect();
        assert_eq!(keys, [5, 3, 1, 2]);
        assert!(memtable.size() > 0);
    }
}
