//! A version: the set of tables making up the tree at one moment, by level.
//!
//! Invariants (checked by `check`):
//! 1. Level 0 holds flushed memtables, newest (highest file number) first; its
//!    tables may overlap.
//! 2. Every level ≥ 1 is sorted by smallest key and its tables' user-key ranges
//!    do not overlap.
//! 3. A table appears once.
//!
//! Versions are immutable and shared (`Arc`): a reader keeps the one it
//! started with, and with it the open tables, even after a compaction has
//! replaced and unlinked them.

use std::cmp::Ordering;
use std::sync::Arc;

use crate::format::{self, compare_encoded};
use crate::manifest::{FileMeta, VersionEdit, LEVELS};
use crate::sstable::table::Table;

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
}

impl Default for Version {
    fn default() -> Self {
        Version {
            levels: vec![Vec::new(); LEVELS],
        }
    }
}

impl Version {
    /// The version after `edit`; `open` opens each added table. Fails if the
    /// edit deletes a table that is not there or adds one twice.
    pub fn apply(
        &self,
        edit: &VersionEdit,
        mut open: impl FnMut(&FileMeta) -> leasehold_core::KvResult<Arc<Table>>,
    ) -> leasehold_core::KvResult<Version> {
        let mut levels = self.levels.clone();
        for (level, number) in &edit.deleted {
            let before = levels[*level].len();
            levels[*level].retain(|file| file.meta.number != *number);
            if levels[*level].len() == before {
                return Err(leasehold_core::KvError::InvalidArgument(format!(
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
                return Err(leasehold_core::KvError::InvalidArgument(format!(
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
        Ok(Version { levels })
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
