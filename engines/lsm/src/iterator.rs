//! Merging sorted sources of internal entries into one sorted stream, and
//! turning that into the user's view: the newest visible version of each key,
//! tombstones hidden.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use leasehold_storage::KvResult;

use crate::format::{self, compare_encoded, Entry};
use crate::version::Version;

/// A sorted source of entries.
pub type Source<'a> = Box<dyn Iterator<Item = KvResult<Entry>> + 'a>;

struct Head {
    entry: Entry,
    source: usize,
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Head {}

impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Head {
    // BinaryHeap is a max-heap: reverse, so the smallest key (then the
    // lowest source index, the newest source) comes out first.
    fn cmp(&self, other: &Self) -> Ordering {
        compare_encoded(&other.entry.0, &self.entry.0).then_with(|| other.source.cmp(&self.source))
    }
}

/// Merges sources; yields every entry of every source in internal-key order.
pub struct MergeIter<'a> {
    sources: Vec<Source<'a>>,
    heap: BinaryHeap<Head>,
    started: bool,
    failed: bool,
}

impl<'a> MergeIter<'a> {
    /// `sources` newest first (ties go to the lower index).
    pub fn new(sources: Vec<Source<'a>>) -> Self {
        MergeIter {
            sources,
            heap: BinaryHeap::new(),
            started: false,
            failed: false,
        }
    }

    fn pull(&mut self, source: usize) -> KvResult<()> {
        if let Some(entry) = self.sources[source].next() {
            self.heap.push(Head {
                entry: entry?,
                source,
            });
        }
        Ok(())
    }
}

impl Iterator for MergeIter<'_> {
    type Item = KvResult<Entry>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if !self.started {
            self.started = true;
            for source in 0..self.sources.len() {
                if let Err(err) = self.pull(source) {
                    self.failed = true;
                    return Some(Err(err));
                }
            }
        }
        let head = self.heap.pop()?;
        if let Err(err) = self.pull(head.source) {
            self.failed = true;
            return Some(Err(err));
        }
        Some(Ok(head.entry))
    }
}

/// The user's view of merged entries: for each user key the newest version
/// with sequence ≤ `sequence`; deleted keys skipped. Yields (user key, value),
/// a separated value read from the blob file `version` holds.
pub struct VisibleIter<'a> {
    inner: MergeIter<'a>,
    sequence: u64,
    last_user_key: Option<Vec<u8>>,
    version: &'a Version,
}

impl<'a> VisibleIter<'a> {
    pub fn new(inner: MergeIter<'a>, sequence: u64, version: &'a Version) -> Self {
        VisibleIter {
            inner,
            sequence,
            last_user_key: None,
            version,
        }
    }
}

impl Iterator for VisibleIter<'_> {
    type Item = KvResult<Entry>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (mut key, value) = match self.inner.next()? {
                Ok(entry) => entry,
                Err(err) => return Some(Err(err)),
            };
            let Some((user_key, entry_sequence, kind)) = format::split(&key) else {
                continue;
            };
            if entry_sequence > self.sequence {
                continue;
            }
            // The buffer is reused: no allocation per entry merged.
            match &mut self.last_user_key {
                Some(last) if last.as_slice() == user_key => continue,
                Some(last) => {
                    last.clear();
                    last.extend_from_slice(user_key);
                }
                None => self.last_user_key = Some(user_key.to_vec()),
            }
            if kind.is_value() {
                // The internal key's own buffer becomes the user key.
                key.truncate(key.len() - format::TRAILER_LEN);
                return Some(
                    self.version
                        .value_of(&key, kind, value)
                        .map(|value| (key, value)),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{InternalKey, ValueKind};

    fn source(entries: &[(&str, u64, ValueKind, &str)]) -> Source<'static> {
        let owned: Vec<KvResult<Entry>> = entries
            .iter()
            .map(|(key, sequence, kind, value)| {
                Ok((
                    InternalKey::new(key.as_bytes(), *sequence, *kind).encode(),
                    bytes::Bytes::copy_from_slice(value.as_bytes()),
                ))
            })
            .collect();
        Box::new(owned.into_iter())
    }

    /// What a reader at `sequence` sees of `sources` (no blob files).
    fn visible(sources: Vec<Source<'static>>, sequence: u64) -> Vec<Entry> {
        VisibleIter::new(MergeIter::new(sources), sequence, &Version::default())
            .map(|entry| entry.unwrap())
            .collect()
    }

    /// A pointer into a blob file the version does not hold is corruption,
    /// never a missing key or an empty value.
    #[test]
    fn a_pointer_into_an_unknown_blob_file_is_corruption() {
        let pointer = crate::blob::BlobPointer {
            file: 9,
            offset: 0,
            length: 40,
            value_length: 20,
            hint: bytes::Bytes::new(),
        };
        let entry: KvResult<Entry> = Ok((
            InternalKey::new(&b"k"[..], 1, ValueKind::Blob).encode(),
            bytes::Bytes::from(pointer.encode()),
        ));
        let source: Source<'static> = Box::new(std::iter::once(entry));
        let version = Version::default();
        let mut iter = VisibleIter::new(MergeIter::new(vec![source]), 5, &version);
        assert!(matches!(
            iter.next(),
            Some(Err(leasehold_storage::KvError::Corruption { .. }))
        ));
    }

    #[test]
    fn the_newest_visible_version_wins_and_tombstones_hide_keys() {
        let newer = source(&[
            ("a", 9, ValueKind::Delete, ""),
            ("b", 8, ValueKind::Put, "b8"),
            ("d", 20, ValueKind::Put, "d20"),
        ]);
        let older = source(&[
            ("a", 2, ValueKind::Put, "a2"),
            ("b", 3, ValueKind::Put, "b3"),
            ("c", 4, ValueKind::Put, "c4"),
        ]);
        assert_eq!(
            visible(vec![newer, older], 10),
            vec![
                (b"b".to_vec(), bytes::Bytes::from_static(b"b8")),
                (b"c".to_vec(), bytes::Bytes::from_static(b"c4"))
            ]
        );
        let newer = source(&[("a", 9, ValueKind::Delete, "")]);
        let older = source(&[("a", 2, ValueKind::Put, "a2")]);
        assert_eq!(
            visible(vec![newer, older], 5),
            vec![(b"a".to_vec(), bytes::Bytes::from_static(b"a2"))]
        );
    }
}
