//! The manifest: the log of version edits that says which tables make up the
//! tree, and `CURRENT`, which names the live manifest.
//!
//! ```text
//! MANIFEST-<n>  = frame(edit)*                     (core framing, one frame per edit)
//! edit          = field*
//! field         = tag: varint | body
//!   1 log_number:       varint    WAL files numbered below this are obsolete
//!   2 next_file_number: varint
//!   3 last_sequence:    varint
//!   4 delete file:      level: varint | number: varint
//!   5 add file:         level: varint | number: varint | size: varint
//!                       | smallest: bytes | largest: bytes   (encoded internal keys)
//!   6 closed:           count: varint | (log number: varint | length: varint) × count
//!                       the logs still holding records at a clean close, each
//!                       with its exact length (the last edit a closed tree writes)
//!   7 add blob file:    number: varint | size: varint | count: varint | record_bytes: varint
//!   8 blob garbage:     number: varint | count: varint | bytes: varint
//!                       records of that blob file no table points to any more (added)
//!   9 delete blob file: number: varint          (only once all its records are garbage)
//! CURRENT       = "MANIFEST-<n> <checksum>\n"      (replaced atomically;
//!                 checksum = 8 hex digits of the masked CRC-32 of "MANIFEST-<n>")
//! ```
//! Each edit is written and fsynced before the next is written, so only the
//! last frame can be incomplete: a bad frame at the end is a torn edit and is
//! ignored; a bad frame followed by an intact one is corruption. The first
//! frame is never torn — a manifest is fsynced before CURRENT names it — so a
//! bad first frame is corruption too.
//! Written to disk — do not change.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use leasehold_storage::codec::{DecodeError, Reader, Writer};
use leasehold_storage::frame;
use leasehold_storage::vfs::{write_all_at, VfsFile};
use leasehold_storage::KvError;

use crate::blob::BlobMeta;
use crate::format;

pub const LEVELS: usize = 7;
const TAG_LOG_NUMBER: u64 = 1;
const TAG_NEXT_FILE: u64 = 2;
const TAG_LAST_SEQUENCE: u64 = 3;
const TAG_DELETE: u64 = 4;
const TAG_ADD: u64 = 5;
const TAG_CLOSED: u64 = 6;
const TAG_ADD_BLOB: u64 = 7;
const TAG_BLOB_GARBAGE: u64 = 8;
const TAG_DELETE_BLOB: u64 = 9;
/// Logs a closed record may list (a tree has at most `max_memtables` + 1).
const CLOSED_LOGS_MAX: u64 = 1 << 16;

/// A table as the manifest records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileMeta {
    pub number: u64,
    pub size: u64,
    /// Encoded internal keys.
    pub smallest: Vec<u8>,
    pub largest: Vec<u8>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VersionEdit {
    pub log_number: Option<u64>,
    pub next_file_number: Option<u64>,
    pub last_sequence: Option<u64>,
    pub deleted: Vec<(usize, u64)>,
    pub added: Vec<(usize, FileMeta)>,
    /// Written at a clean close: (log number, exact length) of every log that
    /// still holds records. Recovery then requires each to be there, whole.
    pub closed: Option<Vec<(u64, u64)>>,
    pub blobs_added: Vec<BlobMeta>,
    pub blob_garbage: Vec<BlobGarbage>,
    pub blobs_deleted: Vec<u64>,
}

/// Records of a blob file that no table points to any more.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlobGarbage {
    pub number: u64,
    pub count: u64,
    pub bytes: u64,
}

impl VersionEdit {
    pub fn encode(&self) -> Vec<u8> {
        let mut writer = Writer::new();
        for (tag, value) in [
            (TAG_LOG_NUMBER, self.log_number),
            (TAG_NEXT_FILE, self.next_file_number),
            (TAG_LAST_SEQUENCE, self.last_sequence),
        ] {
            if let Some(value) = value {
                writer.varint(tag).varint(value);
            }
        }
        for (level, number) in &self.deleted {
            writer
                .varint(TAG_DELETE)
                .varint(*level as u64)
                .varint(*number);
        }
        for (level, file) in &self.added {
            writer
                .varint(TAG_ADD)
                .varint(*level as u64)
                .varint(file.number)
                .varint(file.size)
                .bytes(&file.smallest)
                .bytes(&file.largest);
        }
        if let Some(logs) = &self.closed {
            writer.varint(TAG_CLOSED).varint(logs.len() as u64);
            for (number, length) in logs {
                writer.varint(*number).varint(*length);
            }
        }
        for blob in &self.blobs_added {
            writer
                .varint(TAG_ADD_BLOB)
                .varint(blob.number)
                .varint(blob.size)
                .varint(blob.count)
                .varint(blob.record_bytes);
        }
        for garbage in &self.blob_garbage {
            writer
                .varint(TAG_BLOB_GARBAGE)
                .varint(garbage.number)
                .varint(garbage.count)
                .varint(garbage.bytes);
        }
        for number in &self.blobs_deleted {
            writer.varint(TAG_DELETE_BLOB).varint(*number);
        }
        writer.finish()
    }

    pub fn decode(bytes: &[u8]) -> Result<VersionEdit, DecodeError> {
        let mut reader = Reader::new(bytes);
        let mut edit = VersionEdit::default();
        while !reader.is_at_end() {
            let tag = reader.varint("edit tag")?;
            match tag {
                TAG_LOG_NUMBER => edit.log_number = Some(reader.varint("log number")?),
                TAG_NEXT_FILE => edit.next_file_number = Some(reader.varint("next file number")?),
                TAG_LAST_SEQUENCE => edit.last_sequence = Some(reader.varint("last sequence")?),
                TAG_DELETE => {
                    let level = reader.varint_at_most(LEVELS as u64 - 1, "level")? as usize;
                    edit.deleted.push((level, reader.varint("file number")?));
                }
                TAG_ADD => {
                    let level = reader.varint_at_most(LEVELS as u64 - 1, "level")? as usize;
                    let number = reader.varint("file number")?;
                    let size = reader.varint("file size")?;
                    let smallest = reader.bytes("smallest key")?.to_vec();
                    let largest = reader.bytes("largest key")?.to_vec();
                    if format::split(&smallest).is_none() || format::split(&largest).is_none() {
                        return Err(reader.error("file bounds are not internal keys"));
                    }
                    if format::compare_encoded(&smallest, &largest) == std::cmp::Ordering::Greater {
                        return Err(reader.error("file smallest key above its largest"));
                    }
                    edit.added.push((
                        level,
                        FileMeta {
                            number,
                            size,
                            smallest,
                            largest,
                        },
                    ));
                }
                TAG_CLOSED => {
                    let count = reader.varint_at_most(CLOSED_LOGS_MAX, "closed log count")?;
                    let mut logs = Vec::new();
                    for _ in 0..count {
                        let number = reader.varint("closed log number")?;
                        logs.push((number, reader.varint("closed log length")?));
                    }
                    edit.closed = Some(logs);
                }
                TAG_ADD_BLOB => edit.blobs_added.push(BlobMeta {
                    number: reader.varint("blob file number")?,
                    size: reader.varint("blob file size")?,
                    count: reader.varint("blob count")?,
                    record_bytes: reader.varint("blob record bytes")?,
                }),
                TAG_BLOB_GARBAGE => edit.blob_garbage.push(BlobGarbage {
                    number: reader.varint("blob file number")?,
                    count: reader.varint("garbage count")?,
                    bytes: reader.varint("garbage bytes")?,
                }),
                TAG_DELETE_BLOB => edit.blobs_deleted.push(reader.varint("blob file number")?),
                other => return Err(reader.error(format!("unknown edit tag {other}"))),
            }
        }
        Ok(edit)
    }
}

/// Opens a file the manifest names (`what`: "table", "blob file"): missing,
/// or not `size` bytes long, is corruption.
pub fn open_named(
    vfs: &dyn leasehold_storage::vfs::Vfs,
    path: &Path,
    what: &str,
    size: u64,
) -> Result<Arc<dyn VfsFile>, KvError> {
    let file = vfs.open_read(path).map_err(|err| {
        if err.kind() == std::io::ErrorKind::NotFound {
            KvError::corruption(path, 0, format!("a {what} the manifest names is missing"))
        } else {
            KvError::io(format!("open {}", path.display()), err)
        }
    })?;
    let found = file
        .len()
        .map_err(|err| KvError::io(format!("stat {}", path.display()), err))?;
    if found != size {
        return Err(KvError::corruption(
            path,
            found,
            format!("{what} is {found} bytes, the manifest says {size}"),
        ));
    }
    Ok(file)
}

/// Appends edits to a manifest file, each fsynced.
#[derive(Debug)]
pub struct ManifestWriter {
    file: Arc<dyn VfsFile>,
    path: PathBuf,
    end: u64,
}

impl ManifestWriter {
    pub fn new(file: Arc<dyn VfsFile>, path: PathBuf) -> Self {
        ManifestWriter { file, path, end: 0 }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn len(&self) -> u64 {
        self.end
    }

    pub fn is_empty(&self) -> bool {
        self.end == 0
    }

    /// Writes and fsyncs one edit. An error leaves the manifest unusable: the
    /// engine must stop (a later edit could land after a half-written one).
    pub fn append(&mut self, edit: &VersionEdit) -> std::io::Result<u64> {
        let mut bytes = Vec::new();
        frame::encode(&edit.encode(), &mut bytes);
        write_all_at(self.file.as_ref(), &bytes, self.end)?;
        self.file.sync()?;
        self.end += bytes.len() as u64;
        Ok(bytes.len() as u64)
    }
}

/// Reads a manifest: its complete edits, in order; `torn` when the last frame
/// was incomplete.
pub fn read(path: &Path, bytes: &[u8]) -> Result<(Vec<VersionEdit>, bool), KvError> {
    let mut edits = Vec::new();
    let mut offset = 0;
    loop {
        match frame::decode(bytes, offset) {
            Ok(None) => return Ok((edits, false)),
            Ok(Some((payload, next))) => {
                let edit = VersionEdit::decode(payload).map_err(|err| {
                    KvError::corruption(path, offset as u64, format!("version edit: {err}"))
                })?;
                edits.push(edit);
                offset = next;
            }
            Err(err) => {
                // The first edit was fsynced before CURRENT named this file.
                if offset == 0 {
                    return Err(KvError::corruption(
                        path,
                        0,
                        format!(
                            "{} in the first edit, which was durable before CURRENT named the manifest",
                            err.reason()
                        ),
                    ));
                }
                // Only the last edit may be torn: any intact frame after it
                // means bytes that were fsynced went bad.
                if (offset + 1..bytes.len())
                    .any(|later| matches!(frame::decode(bytes, later), Ok(Some(_))))
                {
                    return Err(KvError::corruption(
                        path,
                        offset as u64,
                        format!("{} before the last edit", err.reason()),
                    ));
                }
                return Ok((edits, true));
            }
        }
    }
}

pub fn manifest_name(number: u64) -> String {
    format!("MANIFEST-{number:06}")
}

pub const CURRENT: &str = "CURRENT";

/// The contents of CURRENT for manifest `number`.
pub fn current_contents(number: u64) -> Vec<u8> {
    let name = manifest_name(number);
    format!("{name} {:08x}\n", frame::checksum(&[name.as_bytes()])).into_bytes()
}

/// The manifest number CURRENT names. The checksum matters: one flipped bit
/// could otherwise turn one manifest's name into an older one's.
pub fn parse_current(path: &Path, bytes: &[u8]) -> Result<u64, KvError> {
    let parsed = std::str::from_utf8(bytes)
        .ok()
        .and_then(|text| text.strip_suffix('\n'))
        .and_then(|line| {
            let (name, checksum) = line.split_once(' ')?;
            let checksum = u32::from_str_radix(checksum, 16)
                .ok()
                .filter(|_| checksum.len() == 8)?;
            let digits = name.strip_prefix("MANIFEST-")?;
            let number = digits
                .parse::<u64>()
                .ok()
                .filter(|_| digits.bytes().all(|byte| byte.is_ascii_digit()))?;
            (frame::checksum(&[name.as_bytes()]) == checksum).then_some(number)
        });
    parsed.ok_or_else(|| {
        KvError::corruption(
            path,
            0,
            "CURRENT does not name a manifest (or fails its checksum)",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{InternalKey, ValueKind};
    use proptest::prelude::*;

    fn edit(number: u64) -> VersionEdit {
        VersionEdit {
            log_number: Some(number),
            next_file_number: Some(number + 1),
            last_sequence: Some(99),
            deleted: vec![(1, 3)],
            added: vec![(
                0,
                FileMeta {
                    number,
                    size: 4096,
                    smallest: InternalKey::new(&b"a"[..], 5, ValueKind::Put).encode(),
                    largest: InternalKey::new(&b"z"[..], 1, ValueKind::Delete).encode(),
                },
            )],
            closed: Some(vec![(number + 2, 4096), (number + 3, 0)]),
            blobs_added: vec![BlobMeta {
                number: number + 4,
                size: 70_000,
                count: 12,
                record_bytes: 69_972,
            }],
            blob_garbage: vec![BlobGarbage {
                number: 2,
                count: 3,
                bytes: 4_500,
            }],
            blobs_deleted: vec![1],
        }
    }

    #[test]
    fn a_damaged_first_edit_is_corruption_never_a_torn_tail() {
        let mut bytes = Vec::new();
        frame::encode(&edit(5).encode(), &mut bytes);
        for offset in [0, 4, 9, bytes.len() - 1] {
            let mut damaged = bytes.clone();
            damaged[offset] ^= 0x10;
            assert!(
                matches!(
                    read(Path::new("m"), &damaged),
                    Err(KvError::Corruption { offset: 0, .. })
                ),
                "byte {offset}"
            );
        }
        assert!(read(Path::new("m"), &bytes[..bytes.len() - 1]).is_err());
        assert!(read(Path::new("m"), &[]).unwrap().0.is_empty());
    }

    #[test]
    fn edits_round_trip_and_a_torn_last_edit_is_dropped_but_earlier_damage_is_not() {
        let mut bytes = Vec::new();
        for number in [5, 6, 7] {
            frame::encode(&edit(number).encode(), &mut bytes);
        }
        let (edits, torn) = read(Path::new("m"), &bytes).unwrap();
        assert_eq!(edits, vec![edit(5), edit(6), edit(7)]);
        assert!(!torn);
        let (edits, torn) = read(Path::new("m"), &bytes[..bytes.len() - 3]).unwrap();
        assert_eq!((edits.len(), torn), (2, true));
        let mut damaged = bytes.clone();
        damaged[10] ^= 1;
        assert!(matches!(
            read(Path::new("m"), &damaged),
            Err(KvError::Corruption { offset: 0, .. })
        ));
    }

    #[test]
    fn current_names_exactly_one_manifest() {
        assert_eq!(
            parse_current(Path::new("c"), &current_contents(12)).unwrap(),
            12
        );
        for bad in [
            &b"MANIFEST-\n"[..],
            b"MANIFEST-12",
            b"manifest-12\n",
            b"MANIFEST-1x\n",
            b"",
        ] {
            assert!(parse_current(Path::new("c"), bad).is_err(), "{bad:?}");
        }
        // Found by the crash oracle under read faults: '5' ^ 1 = '4' named an
        // older manifest that a crash had left on disk.
        let mut flipped = current_contents(5);
        flipped[14] ^= 0x01;
        assert!(parse_current(Path::new("c"), &flipped).is_err());
    }

    proptest! {
        #[test]
        fn decoders_never_panic(bytes: Vec<u8>) {
            let _ = VersionEdit::decode(&bytes);
            let _ = read(Path::new("m"), &bytes);
            let _ = parse_current(Path::new("c"), &bytes);
        }
    }
}
