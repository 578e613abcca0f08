//! Reading one SSTable file (builder.rs writes it).
//!
//! ```text
//! file   = data_block* filter_block index_block footer
//! index  = a block (block.rs) whose entry per data block is
//!          key = the block's last internal key, value = offset: varint | len: varint
//! filter = frame(0: u8 | bloom)                  (bloom.rs; never compressed)
//! footer = index_offset: u64 | index_len: u64 | filter_offset: u64 | filter_len: u64
//!          | entries: u64 | format: u32 = 1 | checksum: u32 | magic: u64   (56 bytes, LE)
//!          checksum = masked CRC-32 of the 44 bytes before it
//! ```
//! Offsets and lengths are of framed blocks. Opening checks the footer, that the
//! filter and index lie inside the file, that every data handle lies before
//! the filter in ascending, non-overlapping order, and decodes the index and
//! filter. Written to disk — do not change.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use leasehold_storage::codec::Reader;
use leasehold_storage::frame;
use leasehold_storage::vfs::{read_exact_at, VfsFile};
use leasehold_storage::{KvError, KvResult};

use super::block::{decode_framed, decode_on_disk, Block, BlockIter};
use super::bloom::{key_hash, Bloom};
use super::cache::BlockCache;
use super::BlockHandle;
use crate::format::{self, Entry, InternalKey, ValueKind};

pub const FOOTER_LEN: usize = 56;
pub const TABLE_MAGIC: u64 = u64::from_le_bytes(*b"LHSSTBL1");
pub(super) const TABLE_FORMAT_V1: u32 = 1;

/// The answer of a point lookup in one table.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The bloom filter says the key is not here.
    Filtered,
    /// The filter let it through but the table does not hold it.
    Absent,
    Found(ValueKind, Bytes),
}

/// An open table.
#[derive(Debug)]
pub struct Table {
    file: Arc<dyn VfsFile>,
    path: PathBuf,
    number: u64,
    /// (last key of the block, its handle), in order.
    index: Vec<(Vec<u8>, BlockHandle)>,
    bloom: Bloom,
    entries: u64,
    cache: Arc<BlockCache>,
}

fn corrupt(path: &Path, offset: u64, reason: impl Into<String>) -> KvError {
    KvError::corruption(path, offset, reason)
}

fn read_framed(file: &dyn VfsFile, path: &Path, handle: BlockHandle) -> KvResult<Vec<u8>> {
    let mut framed = vec![0u8; handle.len as usize];
    read_exact_at(file, &mut framed, handle.offset)
        .map_err(|err| KvError::io(format!("read {} at {}", path.display(), handle.offset), err))?;
    Ok(framed)
}

impl Table {
    /// Opens and checks the table in `file` of `size` bytes.
    pub fn open(
        file: Arc<dyn VfsFile>,
        path: PathBuf,
        number: u64,
        size: u64,
        cache: Arc<BlockCache>,
    ) -> KvResult<Table> {
        if size < FOOTER_LEN as u64 {
            return Err(corrupt(
                &path,
                0,
                format!("{size} bytes is too short for a table"),
            ));
        }
        let footer_at = size - FOOTER_LEN as u64;
        let mut footer = [0u8; FOOTER_LEN];
        read_exact_at(file.as_ref(), &mut footer, footer_at)
            .map_err(|err| KvError::io(format!("read footer of {}", path.display()), err))?;
        let footer = Footer::decode(&footer).map_err(|reason| corrupt(&path, footer_at, reason))?;
        if footer.index_offset.checked_add(footer.index_len) != Some(footer_at)
            || footer.filter_offset.checked_add(footer.filter_len) != Some(footer.index_offset)
        {
            return Err(corrupt(
                &path,
                footer_at,
                "footer handles do not tile the end of the file",
            ));
        }
        let index_handle = BlockHandle {
            offset: footer.index_offset,
            len: footer.index_len,
        };
        let index_contents = decode_on_disk(read_framed(file.as_ref(), &path, index_handle)?)
            .map_err(|err| corrupt(&path, footer.index_offset, format!("index block: {err}")))?;
        let index_block = Block::new(index_contents)
            .map_err(|err| corrupt(&path, footer.index_offset, format!("index block: {err}")))?;
        let mut index = Vec::new();
        let mut next_offset = 0;
        for (key, value) in Arc::new(index_block).iter() {
            let mut reader = Reader::new(&value);
            let handle = reader
                .varint("offset")
                .and_then(|offset| {
                    Ok(BlockHandle {
                        offset,
                        len: reader.varint("len")?,
                    })
                })
                .map_err(|err| {
                    corrupt(&path, footer.index_offset, format!("index handle: {err}"))
                })?;
            if handle.offset != next_offset
                || handle.offset.saturating_add(handle.len) > footer.filter_offset
            {
                return Err(corrupt(
                    &path,
                    footer.index_offset,
                    "data block handles do not tile the data region",
                ));
            }
            next_offset = handle.offset + handle.len;
            index.push((key, handle));
        }
        if next_offset != footer.filter_offset {
            return Err(corrupt(
                &path,
                footer.index_offset,
                "data blocks do not reach the filter",
            ));
        }
        let filter_handle = BlockHandle {
            offset: footer.filter_offset,
            len: footer.filter_len,
        };
        let filter_framed = read_framed(file.as_ref(), &path, filter_handle)?;
        let bloom = match frame::decode(&filter_framed, 0) {
            Ok(Some((payload, end)))
                if end == filter_framed.len() && payload.first() == Some(&0) =>
            {
                Bloom::decode(&payload[1..])
                    .map_err(|err| corrupt(&path, footer.filter_offset, err.to_string()))?
            }
            _ => {
                return Err(corrupt(
                    &path,
                    footer.filter_offset,
                    "filter block does not check out",
                ))
            }
        };
        Ok(Table {
            file,
            path,
            number,
            index,
            bloom,
            entries: footer.entries,
            cache,
        })
    }

    pub fn number(&self) -> u64 {
        self.number
    }

    pub fn entries(&self) -> u64 {
        self.entries
    }

    pub fn block_count(&self) -> usize {
        self.index.len()
    }

    /// Block `index`, from the cache or the file; read from the file, it is
    /// cached when `fill_cache` (reads) and not when not (a compaction's
    /// one pass over its inputs would evict the blocks reads are using).
    fn block(&self, index: usize, fill_cache: bool) -> KvResult<Arc<Block>> {
        let handle = self.index[index].1;
        if let Some(block) = self.cache.get(self.number, handle.offset) {
            return Ok(block);
        }
        let framed = read_framed(self.file.as_ref(), &self.path, handle)?;
        let contents = decode_framed(framed, self.cache.checks_checksums())
            .map_err(|err| corrupt(&self.path, handle.offset, format!("data block: {err}")))?;
        let block = Arc::new(
            Block::new(contents)
                .map_err(|err| corrupt(&self.path, handle.offset, format!("data block: {err}")))?,
        );
        // The index promised this block ends with its key.
        if block.last_key() != self.index[index].0.as_slice() {
            return Err(corrupt(
                &self.path,
                handle.offset,
                "data block does not end where the index says",
            ));
        }
        if fill_cache {
            self.cache
                .insert(self.number, handle.offset, Arc::clone(&block));
        }
        Ok(block)
    }

    /// The newest version of `user_key` with sequence ≤ `sequence`.
    pub fn get(&self, user_key: &[u8], sequence: u64) -> KvResult<Lookup> {
        if !self.bloom.may_contain(key_hash(user_key)) {
            return Ok(Lookup::Filtered);
        }
        let target = InternalKey::seek_key(user_key, sequence).encode();
        let block_index = self
            .index
            .partition_point(|(last, _)| format::compare_encoded(last, &target) == Ordering::Less);
        if block_index == self.index.len() {
            return Ok(Lookup::Absent);
        }
        let block = self.block(block_index, true)?;
        let mut cursor = block.seek(&target);
        let Some((key, value)) = cursor.next_entry() else {
            return Ok(Lookup::Absent);
        };
        match format::split(key) {
            Some((found, _, kind)) if found == user_key => Ok(Lookup::Found(kind, value)),
            _ => Ok(Lookup::Absent),
        }
    }

    /// Every entry, in order, for a compaction: blocks read from the file are
    /// not cached.
    pub fn iter_uncached(self: &Arc<Self>) -> TableIter {
        TableIter {
            fill_cache: false,
            ..self.iter(None)
        }
    }

    /// Entries from the first key ≥ `start` (all when `None`).
    pub fn iter(self: &Arc<Self>, start: Option<&[u8]>) -> TableIter {
        let (block_index, entry_index) = match start {
            None => (0, None),
            Some(target) => (
                self.index.partition_point(|(last, _)| {
                    format::compare_encoded(last, target) == Ordering::Less
                }),
                Some(target.to_vec()),
            ),
        };
        TableIter {
            table: Arc::clone(self),
            block_index,
            block: None,
            seek: entry_index,
            fill_cache: true,
            failed: false,
        }
    }

    /// Reads and checks every block (for `verify`): the number of entries.
    pub fn check_all(self: &Arc<Self>) -> KvResult<u64> {
        let mut count = 0;
        let mut previous: Option<Vec<u8>> = None;
        for entry in self.iter_uncached() {
            let (key, _) = entry?;
            if previous
                .as_ref()
                .is_some_and(|previous| format::compare_encoded(previous, &key) != Ordering::Less)
            {
                return Err(corrupt(&self.path, 0, "keys out of order across blocks"));
            }
            previous = Some(key);
            count += 1;
        }
        if count != self.entries {
            return Err(corrupt(
                &self.path,
                0,
                format!(
                    "footer counts {} entries, blocks hold {count}",
                    self.entries
                ),
            ));
        }
        Ok(count)
    }
}

#[derive(Debug)]
pub(super) struct Footer {
    pub(super) index_offset: u64,
    pub(super) index_len: u64,
    pub(super) filter_offset: u64,
    pub(super) filter_len: u64,
    pub(super) entries: u64,
}

impl Footer {
    pub(super) fn decode(bytes: &[u8; FOOTER_LEN]) -> Result<Footer, String> {
        let u64_at = |at: usize| {
            let mut word = [0u8; 8];
            word.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(word)
        };
        if u64_at(48) != TABLE_MAGIC {
            return Err("bad table magic".into());
        }
        let checksum = u32::from_le_bytes([bytes[44], bytes[45], bytes[46], bytes[47]]);
        if frame::checksum(&[&bytes[..44]]) != checksum {
            return Err("footer checksum mismatch".into());
        }
        let format = u32::from_le_bytes([bytes[40], bytes[41], bytes[42], bytes[43]]);
        if format != TABLE_FORMAT_V1 {
            return Err(format!("unknown table format {format}"));
        }
        Ok(Footer {
            index_offset: u64_at(0),
            index_len: u64_at(8),
            filter_offset: u64_at(16),
            filter_len: u64_at(24),
            entries: u64_at(32),
        })
    }
}

/// Iterates a table's entries in order; stops after the first error.
pub struct TableIter {
    table: Arc<Table>,
    block_index: usize,
    block: Option<BlockIter>,
    seek: Option<Vec<u8>>,
    fill_cache: bool,
    failed: bool,
}

impl Iterator for TableIter {
    type Item = KvResult<Entry>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.failed {
                return None;
            }
            if let Some(block) = &mut self.block {
                if let Some(entry) = block.next() {
                    return Some(Ok(entry));
                }
                self.block = None;
                self.block_index += 1;
            }
            if self.block_index >= self.table.index.len() {
                return None;
            }
            match self.table.block(self.block_index, self.fill_cache) {
                Ok(block) => {
                    self.block = Some(match self.seek.take() {
                        Some(target) => block.seek(&target),
                        None => block.iter(),
                    });
                }
                Err(err) => {
                    self.failed = true;
                    return Some(Err(err));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sstable::builder::{TableBuilder, TableOptions};
    use leasehold_storage::vfs::write_all_at;
    use leasehold_storage::vfs::{SimVfs, Vfs};
    use proptest::prelude::*;

    fn options() -> TableOptions {
        TableOptions {
            block_size: 512,
            compress: true,
            bloom_fp_rate: 0.01,
        }
    }

    fn build(vfs: &SimVfs, count: u32) -> (Arc<Table>, Vec<Entry>) {
        vfs.create_dir_all(Path::new("/t")).unwrap();
        let path = PathBuf::from("/t/000007.sst");
        let file = vfs.create(&path).unwrap();
        let mut builder = TableBuilder::new(Arc::clone(&file), options());
        let mut expected = Vec::new();
        for index in 0..count {
            let kind = if index % 7 == 3 {
                ValueKind::Delete
            } else {
                ValueKind::Put
            };
            let key =
                InternalKey::new(format!("key-{index:06}"), u64::from(index) + 10, kind).encode();
            let value = if kind == ValueKind::Put {
                vec![(index % 251) as u8; (index % 97) as usize]
            } else {
                Vec::new()
            };
            builder.add(&key, &value).unwrap();
            expected.push((key, Bytes::from(value)));
        }
        let summary = builder.finish().unwrap();
        file.sync().unwrap();
        assert_eq!(summary.entries, u64::from(count));
        let table = Table::open(
            file,
            path,
            7,
            summary.size,
            Arc::new(BlockCache::new(1 << 20)),
        )
        .unwrap();
        (Arc::new(table), expected)
    }

    /// A compaction's pass over its inputs leaves the cache as it found it;
    /// a scan's fills it.
    #[test]
    fn a_compactions_pass_does_not_fill_the_block_cache() {
        let vfs = SimVfs::new(3);
        let (table, expected) = build(&vfs, 2000);
        let read: Vec<Entry> = table.iter_uncached().map(|entry| entry.unwrap()).collect();
        assert_eq!(read, expected);
        let misses = table.cache.misses();
        assert_eq!(table.iter(None).count(), expected.len());
        assert_eq!(
            table.cache.misses() - misses,
            table.block_count() as u64,
            "nothing was cached"
        );
        assert_eq!(table.iter(None).count(), expected.len());
        assert_eq!(
            table.cache.hits(),
            table.block_count() as u64,
            "the scan cached them"
        );
    }

    #[test]
    fn tables_answer_point_reads_and_iterate_in_order() {
        let vfs = SimVfs::new(1);
        let (table, expected) = build(&vfs, 2000);
        assert!(table.block_count() > 10);
        assert_eq!(
            table
                .iter(None)
                .map(|entry| entry.unwrap())
                .collect::<Vec<_>>(),
            expected
        );
        assert_eq!(
            table.get(b"key-000010", u64::MAX >> 8).unwrap(),
            Lookup::Found(ValueKind::Delete, Bytes::new())
        );
        assert_eq!(
            table.get(b"key-000011", u64::MAX >> 8).unwrap(),
            Lookup::Found(ValueKind::Put, Bytes::from(vec![11u8; 11]))
        );
        // Not yet written at sequence 5.
        assert_eq!(table.get(b"key-000011", 5).unwrap(), Lookup::Absent);
        let filtered = (0..1000)
            .filter(|index| {
                table.get(format!("nope-{index}").as_bytes(), 99).unwrap() == Lookup::Filtered
            })
            .count();
        assert!(
            filtered > 950,
            "the bloom filter answers most absent keys ({filtered})"
        );
        let from = InternalKey::seek_key(b"key-001500", u64::MAX >> 8).encode();
        assert_eq!(table.iter(Some(&from)).count(), 500);
        assert_eq!(table.check_all().unwrap(), 2000);
    }

    #[test]
    fn damage_anywhere_is_an_error_never_wrong_data() {
        let vfs = SimVfs::new(2);
        let (_, expected) = build(&vfs, 300);
        let path = Path::new("/t/000007.sst");
        let size = vfs.file_size(path).unwrap();
        for offset in (0..size).step_by(37) {
            vfs.corrupt_byte(path, offset, 0x10).unwrap();
            let file = vfs.open(path).unwrap();
            if let Ok(table) = Table::open(
                file,
                path.to_path_buf(),
                7,
                size,
                Arc::new(BlockCache::new(1 << 20)),
            ) {
                let table = Arc::new(table);
                let read: Result<Vec<_>, _> = table.iter(None).collect();
                if let Ok(read) = read {
                    assert_eq!(
                        read, expected,
                        "offset {offset}: wrong data without an error"
                    );
                }
            }
            vfs.corrupt_byte(path, offset, 0x10).unwrap();
        }
    }

    proptest! {
        #[test]
        fn opening_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let vfs = SimVfs::new(3);
            vfs.create_dir_all(Path::new("/g")).unwrap();
            let file = vfs.create(Path::new("/g/1.sst")).unwrap();
            write_all_at(file.as_ref(), &bytes, 0).unwrap();
            let mut with_footer = bytes.clone();
            with_footer.extend_from_slice(&[0u8; 48]);
            with_footer.extend_from_slice(&TABLE_MAGIC.to_le_bytes());
            let _ = Table::open(Arc::clone(&file), PathBuf::from("g"), 1, bytes.len() as u64, Arc::new(BlockCache::new(1024)));
            write_all_at(file.as_ref(), &with_footer, 0).unwrap();
            let _ = Table::open(file, PathBuf::from("g"), 1, with_footer.len() as u64, Arc::new(BlockCache::new(1024)));
        }
    }
}
