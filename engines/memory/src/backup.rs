//! The backup file: the whole map, checksummed and optionally lz4-compressed,
//! replaced atomically. FORMAT.md has the bytes; this file is their only
//! encoder and decoder.

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::BackupCompression;
use leasehold_storage::codec::{Reader, Writer};
use leasehold_storage::frame;
use leasehold_storage::KvError;

/// Written to disk — do not change.
pub const BACKUP_MAGIC: &[u8; 8] = b"LHMEMBK\0";
pub const BACKUP_FORMAT_V1: u32 = 1;
const COMPRESSION_NONE: u8 = 0;
const COMPRESSION_LZ4: u8 = 1;
const HEADER_LEN: usize = 12;
/// lz4 cannot expand data more than about 255:1; a claimed size beyond that
/// is corruption, and is refused before anything is allocated for it.
const LZ4_RATIO_MAX: u64 = 255;

/// What a backup holds.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct BackupContent {
    /// The engine's write sequence number the backup is consistent with.
    pub sequence: u64,
    pub entries: BTreeMap<Vec<u8>, Vec<u8>>,
}

/// Encodes entries (given in key order) into a complete backup file.
pub fn encode<'a>(
    sequence: u64,
    entries: impl ExactSizeIterator<Item = (&'a [u8], &'a [u8])>,
    compression: BackupCompression,
) -> Vec<u8> {
    let mut body = Writer::new();
    body.varint(sequence).varint(entries.len() as u64);
    for (key, value) in entries {
        body.bytes(key).bytes(value);
    }
    let body = body.finish();
    let mut payload = Writer::with_capacity(body.len() / 2 + 16);
    match compression {
        BackupCompression::None => payload.u8(COMPRESSION_NONE).raw(&body),
        BackupCompression::Lz4 => payload
            .u8(COMPRESSION_LZ4)
            .u64_le(body.len() as u64)
            .raw(&lz4_flex::block::compress(&body)),
    };
    let mut file = Vec::with_capacity(HEADER_LEN + payload.len() + frame::FRAME_HEADER_LEN);
    file.extend_from_slice(BACKUP_MAGIC);
    file.extend_from_slice(&BACKUP_FORMAT_V1.to_le_bytes());
    frame::encode(&payload.finish(), &mut file);
    file
}

/// Decodes a backup file; any damage is `Corruption` naming `path` and offset.
pub fn decode(path: &Path, bytes: &[u8]) -> Result<BackupContent, KvError> {
    decode_with(path, bytes, true)
}

/// `decode`, optionally without the checksum check (only the planted bug
/// `SkipChecksum` passes false).
pub(crate) fn decode_with(
    path: &Path,
    bytes: &[u8],
    check_checksum: bool,
) -> Result<BackupContent, KvError> {
    let corrupt = |offset: usize, reason: String| KvError::corruption(path, offset as u64, reason);
    if bytes.len() < HEADER_LEN || &bytes[..8] != BACKUP_MAGIC {
        return Err(corrupt(
            0,
            "not a Leasehold memory backup (bad magic)".into(),
        ));
    }
    let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if version != BACKUP_FORMAT_V1 {
        return Err(corrupt(
            8,
            format!("unknown backup format version {version}"),
        ));
    }
    let framed = if check_checksum {
        frame::decode(bytes, HEADER_LEN)
    } else {
        // The bug: trust the frame's length and take the payload unchecked.
        Ok(bytes
            .get(HEADER_LEN + frame::FRAME_HEADER_LEN..)
            .map(|payload| (payload, bytes.len())))
    };
    let (payload, end) = match framed {
        Ok(Some(decoded)) => decoded,
        Ok(None) => return Err(corrupt(HEADER_LEN, "backup has no payload".into())),
        Err(err) => return Err(corrupt(err.offset(), err.reason().into())),
    };
    if end != bytes.len() {
        return Err(corrupt(
            end,
            format!("{} bytes after the payload", bytes.len() - end),
        ));
    }
    let payload_offset = HEADER_LEN + frame::FRAME_HEADER_LEN;
    let mut reader = Reader::new(payload);
    let at = |reader: &Reader<'_>| payload_offset + reader.position();
    let body = match reader
        .u8("compression")
        .map_err(|err| corrupt(payload_offset, err.reason))?
    {
        COMPRESSION_NONE => reader
            .raw(reader.remaining(), "body")
            .map_err(|err| corrupt(at(&reader), err.reason))?
            .to_vec(),
        COMPRESSION_LZ4 => {
            let raw_len = reader
                .u64_le("uncompressed length")
                .map_err(|err| corrupt(at(&reader), err.reason))?;
            let compressed = &payload[reader.position()..];
            if raw_len > (compressed.len() as u64 + 16) * LZ4_RATIO_MAX {
                return Err(corrupt(
                    at(&reader),
                    format!("uncompressed length {raw_len} is impossible"),
                ));
            }
            let mut body = vec![0u8; raw_len as usize];
            let written = lz4_flex::block::decompress_into(compressed, &mut body)
                .map_err(|err| corrupt(at(&reader), format!("lz4: {err}")))?;
            if written != body.len() {
                return Err(corrupt(
                    at(&reader),
                    format!("lz4 gave {written} bytes, header said {raw_len}"),
                ));
            }
            body
        }
        other => {
            return Err(corrupt(
                payload_offset,
                format!("unknown compression {other}"),
            ))
        }
    };
    decode_body(&body).map_err(|err| corrupt(payload_offset, format!("backup body: {err}")))
}

fn decode_body(body: &[u8]) -> Result<BackupContent, leasehold_storage::codec::DecodeError> {
    let mut reader = Reader::new(body);
    let sequence = reader.varint("sequence")?;
    // Each entry takes at least two bytes.
    let count = reader.varint_at_most(body.len() as u64 / 2, "entry count")?;
    let mut entries = BTreeMap::new();
    let mut previous: Option<&[u8]> = None;
    for _ in 0..count {
        let key = reader.bytes("key")?;
        if previous.is_some_and(|previous| previous >= key) {
            return Err(reader.error("keys out of order"));
        }
        let value = reader.bytes("value")?;
        entries.insert(key.to_vec(), value.to_vec());
        previous = Some(key);
    }
    reader.expect_end("backup body")?;
    Ok(BackupContent { sequence, entries })
}

/// A backup file as a person reads it, for `leasehold dump`: checksum valid
/// or not, the sequence it is consistent with, and up to `max_entries`
/// entries. Reads only.
pub fn describe(
    path: &Path,
    bytes: &[u8],
    max_entries: usize,
    name_key: leasehold_storage::dump::KeyNamer<'_>,
) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    match decode(path, bytes) {
        Ok(content) => {
            let _ = writeln!(
                out,
                "  checksum valid; consistent with write {}; {} entries",
                content.sequence,
                content.entries.len()
            );
            for (key, value) in content.entries.iter().take(max_entries) {
                let _ = writeln!(out, "    {} ({} value bytes)", name_key(key), value.len());
            }
            if content.entries.len() > max_entries {
                let _ = writeln!(
                    out,
                    "    … {} more entries",
                    content.entries.len() - max_entries
                );
            }
        }
        Err(err) => {
            let _ = writeln!(out, "  CORRUPT: {err}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample(compression: BackupCompression) -> Vec<u8> {
        let entries: Vec<(Vec<u8>, Vec<u8>)> = (0..100u32)
            .map(|index| {
                (
                    format!("key-{index:03}").into_bytes(),
                    vec![index as u8; 40],
                )
            })
            .collect();
        encode(
            7,
            entries
                .iter()
                .map(|(key, value)| (key.as_slice(), value.as_slice())),
            compression,
        )
    }

    #[test]
    fn backups_round_trip_with_and_without_compression() {
        for compression in [BackupCompression::None, BackupCompression::Lz4] {
            let content = decode(Path::new("b"), &sample(compression)).unwrap();
            assert_eq!(content.sequence, 7);
            assert_eq!(content.entries.len(), 100);
            assert_eq!(content.entries[b"key-042".as_slice()], vec![42u8; 40]);
        }
        assert!(sample(BackupCompression::Lz4).len() < sample(BackupCompression::None).len() / 4);
    }

    #[test]
    fn every_flipped_byte_is_reported_as_corruption() {
        let file = sample(BackupCompression::Lz4);
        for offset in 0..file.len() {
            let mut damaged = file.clone();
            damaged[offset] ^= 0x40;
            let err = decode(Path::new("backup"), &damaged).unwrap_err();
            assert!(
                matches!(err, KvError::Corruption { .. }),
                "offset {offset}: {err}"
            );
        }
        assert!(decode(Path::new("b"), &file[..file.len() - 1]).is_err());
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes: Vec<u8>) {
            let mut file = BACKUP_MAGIC.to_vec();
            file.extend_from_slice(&BACKUP_FORMAT_V1.to_le_bytes());
            file.extend_from_slice(&bytes);
            let _ = decode(Path::new("b"), &file);
            // A well-framed payload of garbage too.
            let mut framed = file[..12].to_vec();
            frame::encode(&bytes, &mut framed);
            let _ = decode(Path::new("b"), &framed);
        }
    }
}
