//! Writing one SSTable file (the layout is table.rs's): data blocks as they
//! fill, then the filter, the index and the footer.

use std::cmp::Ordering;
use std::sync::Arc;

use leasehold_storage::codec::put_varint;
use leasehold_storage::frame;
use leasehold_storage::vfs::{write_all_at, VfsFile};

use super::block::{encode_on_disk, BlockBuilder};
use super::bloom::{self, key_hash};
use super::table::{FOOTER_LEN, TABLE_FORMAT_V1, TABLE_MAGIC};
use crate::format;

/// Buffered bytes written to the file in one call.
const WRITE_CHUNK: usize = 256 * 1024;

#[derive(Clone, Debug)]
pub struct TableOptions {
    pub block_size: usize,
    pub compress: bool,
    pub bloom_fp_rate: f64,
}

/// What a finished table holds, for the manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableSummary {
    pub size: u64,
    pub smallest: Vec<u8>,
    pub largest: Vec<u8>,
    pub entries: u64,
}

pub struct TableBuilder {
    file: Arc<dyn VfsFile>,
    options: TableOptions,
    written: u64,
    buffer: Vec<u8>,
    data: BlockBuilder,
    index: BlockBuilder,
    hashes: Vec<u64>,
    last_user_key: Option<Vec<u8>>,
    smallest: Option<Vec<u8>>,
    largest: Vec<u8>,
    entries: u64,
}

impl TableBuilder {
    pub fn new(file: Arc<dyn VfsFile>, options: TableOptions) -> Self {
        TableBuilder {
            file,
            options,
            written: 0,
            buffer: Vec::new(),
            data: BlockBuilder::new(),
            index: BlockBuilder::new(),
            hashes: Vec::new(),
            last_user_key: None,
            smallest: None,
            largest: Vec::new(),
            entries: 0,
        }
    }

    fn offset(&self) -> u64 {
        self.written + self.buffer.len() as u64
    }

    /// Adds an entry; keys must ascend (encoded internal keys).
    pub fn add(&mut self, key: &[u8], value: &[u8]) -> std::io::Result<()> {
        debug_assert!(
            self.entries == 0 || format::compare_encoded(&self.largest, key) == Ordering::Less
        );
        let user_key = format::user_key(key);
        if self.last_user_key.as_deref() != Some(user_key) {
            self.hashes.push(key_hash(user_key));
            self.last_user_key = Some(user_key.to_vec());
        }
        if self.smallest.is_none() {
            self.smallest = Some(key.to_vec());
        }
        self.largest.clear();
        self.largest.extend_from_slice(key);
        self.data.add(key, value);
        self.entries += 1;
        if self.data.size_estimate() >= self.options.block_size {
            self.finish_data_block()?;
        }
        Ok(())
    }

    /// Bytes the file will have so far (for splitting compaction output).
    pub fn size_estimate(&self) -> u64 {
        self.offset() + self.data.size_estimate() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    fn finish_data_block(&mut self) -> std::io::Result<()> {
        if self.data.is_empty() {
            return Ok(());
        }
        let last_key = self.data.last_key().to_vec();
        let contents = self.data.finish();
        let offset = self.offset();
        encode_on_disk(&contents, self.options.compress, &mut self.buffer);
        let mut handle = Vec::new();
        put_varint(&mut handle, offset);
        put_varint(&mut handle, self.offset() - offset);
        self.index.add(&last_key, &handle);
        self.flush_buffer(false)
    }

    fn flush_buffer(&mut self, all: bool) -> std::io::Result<()> {
        if self.buffer.len() >= WRITE_CHUNK || (all && !self.buffer.is_empty()) {
            write_all_at(self.file.as_ref(), &self.buffer, self.written)?;
            self.written += self.buffer.len() as u64;
            self.buffer.clear();
        }
        Ok(())
    }

    /// Writes the filter, index and footer. The caller syncs the file.
    pub fn finish(mut self) -> std::io::Result<TableSummary> {
        self.finish_data_block()?;
        let filter_offset = self.offset();
        let mut filter_payload = vec![0u8];
        filter_payload.extend_from_slice(&bloom::build(&self.hashes, self.options.bloom_fp_rate));
        frame::encode(&filter_payload, &mut self.buffer);
        let filter_len = self.offset() - filter_offset;
        let index_offset = self.offset();
        let index_contents = self.index.finish();
        encode_on_disk(&index_contents, false, &mut self.buffer);
        let index_len = self.offset() - index_offset;
        let mut footer = Vec::with_capacity(FOOTER_LEN);
        for value in [
            index_offset,
            index_len,
            filter_offset,
            filter_len,
            self.entries,
        ] {
            footer.extend_from_slice(&value.to_le_bytes());
        }
        footer.extend_from_slice(&TABLE_FORMAT_V1.to_le_bytes());
        let checksum = frame::checksum(&[&footer]);
        footer.extend_from_slice(&checksum.to_le_bytes());
        footer.extend_from_slice(&TABLE_MAGIC.to_le_bytes());
        self.buffer.extend_from_slice(&footer);
        self.flush_buffer(true)?;
        Ok(TableSummary {
            size: self.written,
            smallest: self.smallest.unwrap_or_default(),
            largest: self.largest,
            entries: self.entries,
        })
    }
}
