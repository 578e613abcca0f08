//! A version: the set of tables making up the tree at one moment, by level.
//!
//! Invariants (checked by `check`):
//! 1. Level 0 holds flushed memtables, newest (highest file number) first; its
//!    tables may overlap.
//! 2. Every level ≥ 1 is sorted by smallest key and its tables' user-key ranges
//!    do not overlap.
//! 3. A table appears once.
//! 4. A blob file's garbage never exceeds its records; one whose records are
//!    all garbage is deleted by the edit that made them so.
//!
//! Versions are immutable and shared (`Arc`): a reader keeps the one it
//! started with, and with it the open tables, even after a compaction has
//! replaced and unlinked them.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use leasehold_storage::{KvError, KvResult};

use crate::blob::{BlobFile, BlobMeta, BlobPointer};
use crate::format::{self, compare_encoded, ValueKind};
use crate::manifest::{FileMeta, VersionEdit, LEVELS};
use crate::sstable::table::Table;

/// A live blob file: the open file, and how many of its records no table
/// points to any more.
#[derive(Debug, Clone)]
pub struct LiveBlob {
    pub file: Arc<BlobFile>,
    pub garbage_count: u64,
    pub garbage_bytes: u64,
}

impl LiveBlob {
    /// The share of the file's record bytes that is garbage.
    pub fn garbage_ratio(&self) -> f64 {
        self.garbage_bytes as f64 / self.file.meta.record_bytes.max(1) as f64
    }

    pub fn live_count(&self) -> u64 {
        self.file.meta.count - self.garbage_count
    }
}

/// A live table: its manifest record and the open file.
#[derive(Debug)]
pub struct TableFile {
    pub meta: FileMeta,
    pub table: Arc<Table>,
}

impl TableFile {
    pub fn smallest_user_key(&self) -> &[u8] {
        format::user_key(&self.meta.smallest)
    }

    pub fn largest_user_key(&self) -> &[u8] {
        format::user_key(&self.meta.largest)
    }

    /// True if the table may hold `user_key`.
    pub fn covers(&self, user_key: &[u8]) -> bool {
        self.smallest_user_key() <= user_key && user_key <= self.largest_user_key()
    }

    /// True if the table's user-key range meets [smallest, largest].
    pub fn overlaps(&self, smallest: &[u8], largest: &[u8]) -> bool {
        self.smallest_user_key() <= largest && smallest <= self.largest_user_key()
    }
}

#[derive(Debug, Clone)]
pub struct Version {
    pub levels: Vec<Vec<Arc<TableFile>>>,
    /// By file number.
    pub blobs: BTreeMap<u64, LiveBlob>,
}

impl Default for Version {
    fn default() -> Self {
        Version {
            levels: vec![Vec::new(); LEVELS],
            blobs: BTreeMap::new(),
        }
    }
}

fn invalid(reason: String) -> KvError {
    KvError::InvalidArgument(reason)
}

impl Version {
    /// The version after `edit`; `open` opens each added table, `open_blob`
    /// each added blob file. Fails if the edit deletes a table or blob file
    /// that is not there, adds one twice, counts more garbage than a blob
    /// file holds, or deletes a blob file some table may still point into.
    pub fn apply(
        &self,
        edit: &VersionEdit,
        mut open: impl FnMut(&FileMeta) -> KvResult<Arc<Table>>,
        mut open_blob: impl FnMut(&BlobMeta) -> KvResult<Arc<BlobFile>>,
    ) -> KvResult<Version> {
        let blobs = self.apply_blobs(edit, &mut open_blob)?;
        let mut levels = self.levels.clone();
        for (level, number) in &edit.deleted {
            let before = levels[*level].len();
            levels[*level].retain(|file| file.meta.number != *number);
            if levels[*level].len() == before {
                return Err(leasehold_storage::KvError::InvalidArgument(format!(
                    "version edit deletes table {number} which level {level} does not hold"
                )));
            }
        }
        for (level, meta) in &edit.added {
            if levels
                .iter()
                .flatten()
                .any(|file| file.meta.number == meta.number)
            {
                return Err(leasehold_storage::KvError::InvalidArgument(format!(
                    "version edit adds table {} twice",
                    meta.number
                )));
            }
            levels[*level].push(Arc::new(TableFile {
                meta: meta.clone(),
                table: open(meta)?,
            }));
        }
        levels[0].sort_by_key(|file| std::cmp::Reverse(file.meta.number));
        for level in levels.iter_mut().skip(1) {
            level.sort_by(|a, b| compare_encoded(&a.meta.smallest, &b.meta.smallest));
        }
        Ok(Version { levels, blobs })
    }

    fn apply_blobs(
        &self,
        edit: &VersionEdit,
        open_blob: &mut impl FnMut(&BlobMeta) -> KvResult<Arc<BlobFile>>,
    ) -> KvResult<BTreeMap<u64, LiveBlob>> {
        let mut blobs = self.blobs.clone();
        for meta in &edit.blobs_added {
            if blobs.contains_key(&meta.number) {
                return Err(invalid(format!(
                    "version edit adds blob file {} twice",
                    meta.number
                )));
            }
            let live = LiveBlob {
                file: open_blob(meta)?,
                garbage_count: 0,
                garbage_bytes: 0,
            };
            blobs.insert(meta.number, live);
        }
        for garbage in &edit.blob_garbage {
            let Some(live) = blobs.get_mut(&garbage.number) else {
                return Err(invalid(format!(
                    "version edit counts garbage in blob file {}, which the tree does not hold",
                    garbage.number
                )));
            };
            live.garbage_count += garbage.count;
            live.garbage_bytes += garbage.bytes;
            if live.garbage_count > live.file.meta.count
                || live.garbage_bytes > live.file.meta.record_bytes
            {
                return Err(invalid(format!(
                    "version edit counts more garbage in blob file {} than it holds",
                    garbage.number
                )));
            }
        }
        for number in &edit.blobs_deleted {
            match blobs.remove(number) {
                Some(live) if live.live_count() == 0 => {}
                Some(live) => {
                    return Err(invalid(format!(
                        "version edit deletes blob file {number}, which tables still point into \
                         ({} records)",
                        live.live_count()
                    )))
                }
                None => {
                    return Err(invalid(format!(
                        "version edit deletes blob file {number}, which the tree does not hold"
                    )))
                }
            }
        }
        Ok(blobs)
    }

    /// A found entry's value: inline, or read from the blob file its
    /// pointer names.
    pub fn value_of(&self, user_key: &[u8], kind: ValueKind, value: Bytes) -> KvResult<Bytes> {
        if kind != ValueKind::Blob {
            return Ok(value);
        }
        let pointer = BlobPointer::decode(&value)
            .map_err(|err| KvError::corruption(Path::new("blob pointer"), 0, err.to_string()))?;
        let Some(live) = self.blobs.get(&pointer.file) else {
            return Err(KvError::corruption(
                Path::new(&crate::blob::blob_name(pointer.file)),
                pointer.offset,
                "a table points into a blob file the tree does not hold",
            ));
        };
        live.file.read(user_key, &pointer)
    }

    /// Bytes of the live blob files.
    pub fn blob_bytes(&self) -> u64 {
        self.blobs.values().map(|live| live.file.meta.size).sum()
    }

    pub fn files(&self) -> impl Iterator<Item = (usize, &Arc<TableFile>)> {
        self.levels
            .iter()
            .enumerate()
            .flat_map(|(level, files)| files.iter().map(move |file| (level, file)))
    }

    pub fn level_bytes(&self, level: usize) -> u64 {
        self.levels[level].iter().map(|file| file.meta.size).sum()
    }

    pub fn total_bytes(&self) -> u64 {
        (0..LEVELS).map(|level| self.level_bytes(level)).sum()
    }

    /// The tables of `level` whose ranges meet [smallest, largest] (user keys).
    pub fn overlapping(
        &self,
        level: usize,
        smallest: &[u8],
        largest: &[u8],
    ) -> Vec<Arc<TableFile>> {
        self.levels[level]
            .iter()
            .filter(|file| file.overlaps(smallest, largest))
            .cloned()
            .collect()
    }

    /// The one table of sorted `level` (≥ 1) that may hold `user_key`.
    pub fn find_in_level(&self, level: usize, user_key: &[u8]) -> Option<&Arc<TableFile>> {
        let files = &self.levels[level];
        let index = files.partition_point(|file| file.largest_user_key() < user_key);
        files.get(index).filter(|file| file.covers(user_key))
    }

    /// Problems with the invariants in the module docs.
    pub fn check(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut numbers: Vec<u64> = self.files().map(|(_, file)| file.meta.number).collect();
        numbers.sort_unstable();
        if numbers.windows(2).any(|pair| pair[0] == pair[1]) {
            problems.push("a table is listed twice".to_owned());
        }
        if self.levels[0]
            .windows(2)
            .any(|pair| pair[0].meta.number < pair[1].meta.number)
        {
            problems.push("level 0 is not newest-first".to_owned());
        }
        for (level, files) in self.levels.iter().enumerate().skip(1) {
            for pair in files.windows(2) {
                if pair[0].largest_user_key().cmp(pair[1].smallest_user_key()) != Ordering::Less {
                    problems.push(format!(
                        "level {level}: tables {} and {} overlap or are out of order",
                        pair[0].meta.number, pair[1].meta.number
                    ));
                }
            }
        }
        problems
    }
}
