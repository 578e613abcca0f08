//! Blob files: values at or above `min_blob_size`, moved out of the tables
//! by a flush (WiscKey's key–value separation, garbage-collected the way
//! RocksDB's integrated BlobDB and fjall 3 do it — by compaction, see
//! `db/flush.rs`). A table entry of kind `Blob` holds a pointer here.
//!
//! ```text
//! blob file = record* footer
//! record    = frame(key: bytes | compression: u8 | body)    body as a data block's
//! footer    = count: u64 | record_bytes: u64 | checksum: u32 | magic: u64 = "LHBLOBF1"
//!             checksum = masked CRC-32 of the 16 bytes before it          (28 bytes)
//! pointer   = file: varint | offset: varint | length: varint | value_length: varint
//!             | hint: the rest of the pointer (at most HINT_LEN_MAX bytes):
//!               what the compaction filter made of the value, none without one
//! ```
//! `length` is the framed record's; `record_bytes` sums them. The record
//! holds its user key, so a pointer that lands on another key's record is
//! corruption, not a wrong answer. The hint lets a compaction filter judge
//! a value (a snapshot's expiry) without reading the blob. Written to disk —
//! do not change.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use leasehold_storage::codec::{DecodeError, Reader, Writer};
use leasehold_storage::frame;
use leasehold_storage::vfs::{read_exact_at, write_all_at, Vfs, VfsFile};
use leasehold_storage::{KvError, KvResult};

use crate::sstable::block::{compressed, decompress, encode_compression_header};

pub const BLOB_MAGIC: u64 = u64::from_le_bytes(*b"LHBLOBF1");
pub const BLOB_FOOTER_LEN: usize = 28;
/// Most bytes a pointer keeps for the compaction filter.
pub const HINT_LEN_MAX: usize = 32;
/// Bytes a writer buffers before it writes them out.
const WRITE_BUFFER: usize = 1 << 20;

/// Where a separated value lives, and the filter's hint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobPointer {
    pub file: u64,
    pub offset: u64,
    /// The framed record's length.
    pub length: u64,
    pub value_length: u64,
    pub hint: Bytes,
}

impl BlobPointer {
    pub fn encode(&self) -> Vec<u8> {
        let mut writer = Writer::with_capacity(24 + self.hint.len());
        writer
            .varint(self.file)
            .varint(self.offset)
            .varint(self.length)
            .varint(self.value_length)
            .raw(&self.hint);
        writer.finish()
    }

    /// Decodes a table entry's value; the hint is a slice of `bytes`.
    pub fn decode(bytes: &Bytes) -> Result<BlobPointer, DecodeError> {
        let mut reader = Reader::new(bytes);
        let file = reader.varint("blob file")?;
        let offset = reader.varint("blob offset")?;
        let length = reader.varint("blob record length")?;
        let value_length = reader.varint("blob value length")?;
        let hint = bytes.slice(reader.position()..);
        if hint.len() > HINT_LEN_MAX {
            return Err(reader.error("blob pointer hint too long"));
        }
        Ok(BlobPointer {
            file,
            offset,
            length,
            value_length,
            hint,
        })
    }
}

/// A blob file as the manifest records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobMeta {
    pub number: u64,
    pub size: u64,
    pub count: u64,
    /// Sum of the framed records' lengths.
    pub record_bytes: u64,
}

pub fn blob_name(number: u64) -> String {
    format!("{number:06}.blob")
}

/// Writes one blob file, records in the order they come.
pub struct BlobWriter {
    file: Arc<dyn VfsFile>,
    path: PathBuf,
    number: u64,
    compress: bool,
    buffer: Vec<u8>,
    /// Bytes of the file before `buffer`.
    written: u64,
    count: u64,
    record_bytes: u64,
    /// The record's bytes before its body (kept: no allocation per record).
    header: Vec<u8>,
}

impl BlobWriter {
    pub fn create(vfs: &dyn Vfs, dir: &Path, number: u64, compress: bool) -> KvResult<Self> {
        let path = dir.join(blob_name(number));
        let file = vfs
            .create(&path)
            .map_err(|err| KvError::io(format!("create {}", path.display()), err))?;
        Ok(BlobWriter {
            file,
            path,
            number,
            compress,
            buffer: Vec::new(),
            written: 0,
            count: 0,
            record_bytes: 0,
            header: Vec::new(),
        })
    }

    pub fn number(&self) -> u64 {
        self.number
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes written so far (records; the footer comes at `finish`).
    pub fn len(&self) -> u64 {
        self.written + self.buffer.len() as u64
    }

    /// Appends `value` and returns the pointer a table entry will hold, with
    /// `hint` (cut to `HINT_LEN_MAX`). An uncompressed value is copied once,
    /// into the write buffer.
    pub fn add(&mut self, user_key: &[u8], value: &[u8], hint: Vec<u8>) -> KvResult<BlobPointer> {
        let compressed = compressed(value, self.compress);
        self.header.clear();
        leasehold_storage::codec::put_varint(&mut self.header, user_key.len() as u64);
        self.header.extend_from_slice(user_key);
        encode_compression_header(value, compressed.is_some(), &mut self.header);
        let hint_len = hint.len().min(HINT_LEN_MAX);
        let offset = self.len();
        let body = compressed.as_deref().unwrap_or(value);
        frame::encode_parts(&[&self.header, body], &mut self.buffer);
        let length = self.len() - offset;
        self.count += 1;
        self.record_bytes += length;
        if self.buffer.len() >= WRITE_BUFFER {
            self.write_buffer()?;
        }
        Ok(BlobPointer {
            file: self.number,
            offset,
            length,
            value_length: value.len() as u64,
            hint: Bytes::from(hint).slice(..hint_len),
        })
    }

    fn write_buffer(&mut self) -> KvResult<()> {
        write_all_at(self.file.as_ref(), &self.buffer, self.written)
            .map_err(|err| KvError::io(format!("write {}", self.path.display()), err))?;
        self.written += self.buffer.len() as u64;
        self.buffer.clear();
        Ok(())
    }

    /// Writes the footer and fsyncs. The caller syncs the directory.
    pub fn finish(mut self) -> KvResult<BlobMeta> {
        let mut footer = Writer::with_capacity(BLOB_FOOTER_LEN);
        footer.u64_le(self.count).u64_le(self.record_bytes);
        let mut footer = footer.finish();
        let checksum = frame::checksum(&[&footer]);
        footer.extend_from_slice(&checksum.to_le_bytes());
        footer.extend_from_slice(&BLOB_MAGIC.to_le_bytes());
        self.buffer.extend_from_slice(&footer);
        self.write_buffer()?;
        self.file
            .sync()
            .map_err(|err| KvError::io(format!("sync {}", self.path.display()), err))?;
        Ok(BlobMeta {
            number: self.number,
            size: self.written,
            count: self.count,
            record_bytes: self.record_bytes,
        })
    }
}

/// An open blob file: its footer checked against the manifest's record.
#[derive(Debug)]
pub struct BlobFile {
    pub meta: BlobMeta,
    file: Arc<dyn VfsFile>,
    path: PathBuf,
}

impl BlobFile {
    pub fn open(vfs: &dyn Vfs, dir: &Path, meta: &BlobMeta) -> KvResult<BlobFile> {
        let path = dir.join(blob_name(meta.number));
        let file = crate::manifest::open_named(vfs, &path, "blob file", meta.size)?;
        let size = meta.size;
        if size < BLOB_FOOTER_LEN as u64 {
            return Err(KvError::corruption(
                &path,
                0,
                "blob file shorter than its footer",
            ));
        }
        let mut footer = [0u8; BLOB_FOOTER_LEN];
        read_exact_at(file.as_ref(), &mut footer, size - BLOB_FOOTER_LEN as u64)
            .map_err(|err| KvError::io(format!("read {}", path.display()), err))?;
        let at = size - BLOB_FOOTER_LEN as u64;
        let (count, record_bytes) = decode_footer(&footer)
            .ok_or_else(|| KvError::corruption(&path, at, "bad blob file footer"))?;
        if count != meta.count || record_bytes != meta.record_bytes || record_bytes != at {
            return Err(KvError::corruption(
                &path,
                at,
                format!(
                    "blob footer says {count} records in {record_bytes} bytes, the manifest \
                     {} in {}",
                    meta.count, meta.record_bytes
                ),
            ));
        }
        Ok(BlobFile {
            meta: meta.clone(),
            file,
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The value `pointer` names, checked: the record's frame, its length,
    /// and that it is `user_key`'s. Uncompressed, the value is a slice of
    /// the read buffer.
    pub fn read(&self, user_key: &[u8], pointer: &BlobPointer) -> KvResult<Bytes> {
        let corrupt = |reason: String| KvError::corruption(&self.path, pointer.offset, reason);
        let end = pointer.offset.checked_add(pointer.length);
        if end.is_none_or(|end| end > self.meta.record_bytes) {
            return Err(corrupt(format!(
                "a pointer names bytes {}+{} past the records",
                pointer.offset, pointer.length
            )));
        }
        let mut framed = vec![0u8; pointer.length as usize];
        read_exact_at(self.file.as_ref(), &mut framed, pointer.offset)
            .map_err(|err| KvError::io(format!("read {}", self.path.display()), err))?;
        let payload_end = match frame::decode(&framed, 0) {
            Ok(Some((_, end))) if end == framed.len() => end,
            Ok(_) => {
                return Err(corrupt(
                    "blob record length differs from its pointer".into(),
                ))
            }
            Err(err) => return Err(corrupt(format!("blob record: {}", err.reason()))),
        };
        let framed = Bytes::from(framed);
        let payload = framed.slice(frame::FRAME_HEADER_LEN..payload_end);
        let mut reader = Reader::new(&payload);
        let key = reader
            .bytes("blob key")
            .map_err(|err| corrupt(err.to_string()))?;
        if key != user_key {
            return Err(corrupt("blob record belongs to another key".into()));
        }
        let value = decompress(payload.slice(reader.position()..))
            .map_err(|err| corrupt(format!("blob value: {}", err.reason)))?;
        if value.len() as u64 != pointer.value_length {
            return Err(corrupt(format!(
                "blob value is {} bytes, its pointer says {}",
                value.len(),
                pointer.value_length
            )));
        }
        Ok(value)
    }
}

/// A footer's (count, record bytes), if its magic and checksum hold.
fn decode_footer(footer: &[u8]) -> Option<(u64, u64)> {
    let mut reader = Reader::new(footer);
    let count = reader.u64_le("count").ok()?;
    let record_bytes = reader.u64_le("record bytes").ok()?;
    let checksum = reader.u32_le("checksum").ok()?;
    let magic = reader.u64_le("magic").ok()?;
    (magic == BLOB_MAGIC && checksum == frame::checksum(&[&footer[..16]]) && reader.is_at_end())
        .then_some((count, record_bytes))
}

/// `leasehold dump` of a blob file: its footer and records, each checksum
/// shown as valid or not (at most `max_entries` records listed).
pub fn describe(
    bytes: &[u8],
    max_entries: usize,
    name_key: leasehold_storage::dump::KeyNamer<'_>,
) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let Some(at) = bytes.len().checked_sub(BLOB_FOOTER_LEN) else {
        return format!("  INVALID: {} bytes, shorter than a footer\n", bytes.len());
    };
    let _ = match decode_footer(&bytes[at..]) {
        Some((count, record_bytes)) => writeln!(
            out,
            "  footer: {count} records in {record_bytes} bytes, checksum valid"
        ),
        None => writeln!(out, "  footer: INVALID (magic or checksum)"),
    };
    let mut offset = 0;
    let mut index = 0;
    while offset < at {
        match frame::decode(&bytes[..at], offset) {
            Ok(Some((payload, end))) => {
                if index < max_entries {
                    let mut reader = Reader::new(payload);
                    let key = reader
                        .bytes("key")
                        .map_or_else(|_| "INVALID key".to_owned(), name_key);
                    let _ = writeln!(
                        out,
                        "  record {index} @{offset} ({} bytes): {key}, checksum valid",
                        end - offset
                    );
                }
                offset = end;
                index += 1;
            }
            Ok(None) => break,
            Err(err) => {
                let _ = writeln!(
                    out,
                    "  record {index} @{offset}: INVALID ({})",
                    err.reason()
                );
                break;
            }
        }
    }
    if index > max_entries {
        let _ = writeln!(out, "  … {} more records", index - max_entries);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use leasehold_storage::vfs::SimVfs;

    /// (key, value, pointer) of each record written.
    type Written = Vec<(Vec<u8>, Vec<u8>, BlobPointer)>;

    fn written(compress: bool) -> (SimVfs, BlobMeta, Written) {
        let vfs = SimVfs::new(1);
        vfs.create_dir_all(Path::new("/d")).unwrap();
        let mut writer = BlobWriter::create(&vfs, Path::new("/d"), 7, compress).unwrap();
        let mut records = Vec::new();
        for index in 0..50u32 {
            let key = format!("key-{index}").into_bytes();
            let value: Vec<u8> = (0..(index as usize * 97)).map(|i| (i % 7) as u8).collect();
            let pointer = writer.add(&key, &value, vec![index as u8; 3]).unwrap();
            records.push((key, value, pointer));
        }
        let meta = writer.finish().unwrap();
        (vfs, meta, records)
    }

    #[test]
    fn every_value_reads_back_through_its_pointer() {
        for compress in [false, true] {
            let (vfs, meta, records) = written(compress);
            let file = BlobFile::open(&vfs, Path::new("/d"), &meta).unwrap();
            for (key, value, pointer) in &records {
                let decoded = BlobPointer::decode(&Bytes::from(pointer.encode())).unwrap();
                assert_eq!(&decoded, pointer);
                assert_eq!(file.read(key, pointer).unwrap(), value.as_slice());
            }
        }
    }

    #[test]
    fn damage_in_a_blob_file_is_corruption() {
        let (vfs, meta, records) = written(false);
        let path = Path::new("/d").join(blob_name(7));
        let (key, _, pointer) = &records[20];
        vfs.corrupt_byte(&path, pointer.offset + 12, 0x10).unwrap();
        let file = BlobFile::open(&vfs, Path::new("/d"), &meta).unwrap();
        assert!(matches!(
            file.read(key, pointer),
            Err(KvError::Corruption { .. })
        ));
        // A pointer onto another key's record.
        let (_, _, other) = &records[21];
        assert!(matches!(
            file.read(key, other),
            Err(KvError::Corruption { .. })
        ));
        // The footer.
        vfs.corrupt_byte(&path, meta.size - 3, 0x01).unwrap();
        assert!(matches!(
            BlobFile::open(&vfs, Path::new("/d"), &meta),
            Err(KvError::Corruption { .. })
        ));
    }

    proptest::proptest! {
        #[test]
        fn decoders_never_panic(bytes: Vec<u8>) {
            let _ = BlobPointer::decode(&Bytes::from(bytes.clone()));
            let _ = describe(&bytes, 4, &|key| format!("{key:?}"));
        }
    }
}
