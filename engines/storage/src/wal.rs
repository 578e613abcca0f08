//! The write-ahead log every engine with a log uses (the LSM, the B+tree):
//! logical records cut into fragments that never cross a 32 KiB block
//! boundary, each fragment a checksummed frame.
//!
//! ```text
//! block     = fragment* zero-padding            (BLOCK_LEN bytes, the last may be short)
//! fragment  = frame(kind: u8 | data)            (leasehold_core::frame: crc | len | payload)
//! kind      = 1 FULL | 2 FIRST | 3 MIDDLE | 4 LAST
//! record    = synced_offset: u64 LE | payload   (reassembled from FULL or FIRST MIDDLE* LAST)
//! ```
//! A fragment starts only where at least `FRAGMENT_SPACE_MIN` bytes remain in
//! the block; otherwise the rest of the block is zeros. So every FULL or FIRST
//! fragment carries the whole 8-byte `synced_offset` of its record.
//!
//! `synced_offset` is how far the file was durable (fsynced) when the record was
//! written. It lets recovery tell a torn tail from damage: a bad fragment at
//! offset `b` is the torn, never-synced tail when no valid record after it
//! claims `synced_offset > b`; if one does, bytes that had been fsynced went
//! bad, and that is reported as corruption rather than truncated away.
//!
//! A record with an empty payload is a **seal**: written (and fsynced) by an
//! engine's syncer once a synced log has been idle for `SEAL_AFTER_IDLE`, it
//! claims every byte before it, so damage in the last records written before
//! a quiet spell is corruption too, not a torn tail. Seals are not returned
//! as records; engines never write an empty payload otherwise.
//! Written to disk — do not change.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::error::KvError;
use crate::frame::{self, FRAME_HEADER_LEN};
use crate::vfs::{read_confirmed, write_all_at, Vfs, VfsFile};

pub const BLOCK_LEN: usize = 32 * 1024;
const KIND_FULL: u8 = 1;
const KIND_FIRST: u8 = 2;
const KIND_MIDDLE: u8 = 3;
const KIND_LAST: u8 = 4;
const FRAGMENT_OVERHEAD: usize = FRAME_HEADER_LEN + 1;
const RECORD_HEADER_LEN: usize = 8;
/// Room a fragment needs to start in a block.
pub const FRAGMENT_SPACE_MIN: usize = FRAGMENT_OVERHEAD + RECORD_HEADER_LEN;
/// How long a synced log stays quiet before the syncer seals it: at most
/// one extra small write and fsync per quiet second, and none under load.
pub const SEAL_AFTER_IDLE: Duration = Duration::from_secs(1);

/// Appends records to one WAL file. Not thread-safe: the engine's write leader
/// owns it.
#[derive(Debug)]
pub struct WalWriter {
    file: Arc<dyn VfsFile>,
    path: PathBuf,
    /// Bytes written so far (the append offset).
    end: u64,
    /// Bytes known durable (covered by a successful fsync).
    synced: u64,
    /// The last record is a seal, durable: every byte before it is claimed.
    sealed: bool,
    /// The last append's bytes, kept to save an allocation per append.
    buffer: Vec<u8>,
}

/// The largest append buffer kept between appends.
const BUFFER_KEPT_MAX: usize = 1 << 20;

impl WalWriter {
    /// A writer for a new, empty file.
    pub fn new(file: Arc<dyn VfsFile>, path: PathBuf) -> Self {
        WalWriter {
            file,
            path,
            end: 0,
            synced: 0,
            sealed: false,
            buffer: Vec::new(),
        }
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

    /// The bytes that would append `payloads` (each one record) at `end`.
    pub fn encode(&self, payloads: &[&[u8]]) -> Vec<u8> {
        let records: Vec<[&[u8]; 1]> = payloads.iter().map(|payload| [*payload]).collect();
        let records: Vec<&[&[u8]]> = records.iter().map(|parts| parts.as_slice()).collect();
        let mut out = Vec::new();
        self.encode_parts(&records, &mut out);
        out
    }

    /// Appends to `out` the bytes that would append `records` at `end`, each
    /// record the payload its parts make joined (copied once, into `out`).
    pub fn encode_parts(&self, records: &[&[&[u8]]], out: &mut Vec<u8>) {
        let mut position = self.end as usize;
        let synced = self.synced.to_le_bytes();
        let mut joined: Vec<&[u8]> = Vec::new();
        for parts in records {
            joined.clear();
            joined.push(&synced);
            joined.extend_from_slice(parts);
            encode_record(&joined, &mut position, out);
        }
    }

    /// Writes `payloads` as records in one write; returns the bytes written.
    pub fn append(&mut self, payloads: &[&[u8]]) -> std::io::Result<u64> {
        let records: Vec<[&[u8]; 1]> = payloads.iter().map(|payload| [*payload]).collect();
        let records: Vec<&[&[u8]]> = records.iter().map(|parts| parts.as_slice()).collect();
        self.append_parts(&records)
    }

    /// `append` of records given as parts (`encode_parts`).
    pub fn append_parts(&mut self, records: &[&[&[u8]]]) -> std::io::Result<u64> {
        let mut bytes = std::mem::take(&mut self.buffer);
        bytes.clear();
        self.encode_parts(records, &mut bytes);
        let written = write_all_at(self.file.as_ref(), &bytes, self.end);
        let len = bytes.len() as u64;
        // The buffer is kept for the next append unless one huge record grew it.
        if bytes.capacity() <= BUFFER_KEPT_MAX {
            self.buffer = bytes;
        }
        written?;
        self.end += len;
        self.sealed = false;
        Ok(len)
    }

    /// True when the log holds records, all synced, and no seal claims them.
    pub fn needs_seal(&self) -> bool {
        self.end > 0 && self.is_synced() && !self.sealed
    }

    /// Appends a seal (an empty record claiming every byte before it) and
    /// fsyncs it. Only for a synced log (`needs_seal`).
    pub fn seal(&mut self) -> std::io::Result<()> {
        self.append(&[&[]])?;
        self.sync()?;
        self.sealed = true;
        Ok(())
    }

    /// fsyncs everything appended so far.
    pub fn sync(&mut self) -> std::io::Result<()> {
        self.file.sync()?;
        self.synced = self.end;
        Ok(())
    }

    pub fn is_synced(&self) -> bool {
        self.synced == self.end
    }
}

/// Cuts the record that `parts` make joined into fragments at `position`.
fn encode_record(parts: &[&[u8]], position: &mut usize, out: &mut Vec<u8>) {
    let mut rest: usize = parts.iter().map(|part| part.len()).sum();
    // Where the next fragment's data starts: a part, and an offset in it.
    let (mut part, mut offset) = (0, 0);
    let mut fragment: Vec<&[u8]> = Vec::with_capacity(parts.len() + 1);
    let mut first = true;
    loop {
        let room = BLOCK_LEN - *position % BLOCK_LEN;
        if room < FRAGMENT_SPACE_MIN {
            out.resize(out.len() + room, 0);
            *position += room;
            continue;
        }
        let take = rest.min(room - FRAGMENT_OVERHEAD);
        let last = take == rest;
        let kind = match (first, last) {
            (true, true) => &[KIND_FULL],
            (true, false) => &[KIND_FIRST],
            (false, false) => &[KIND_MIDDLE],
            (false, true) => &[KIND_LAST],
        };
        fragment.clear();
        fragment.push(kind);
        let mut wanted = take;
        while wanted > 0 {
            let available = &parts[part][offset..];
            let piece = &available[..wanted.min(available.len())];
            fragment.push(piece);
            wanted -= piece.len();
            offset += piece.len();
            if offset == parts[part].len() {
                (part, offset) = (part + 1, 0);
            }
        }
        frame::encode_parts(&fragment, out);
        *position += FRAGMENT_OVERHEAD + take;
        rest -= take;
        first = false;
        if last {
            return;
        }
    }
}

/// How a WAL file ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WalEnd {
    /// Every byte belonged to a complete record (or block padding).
    Clean,
    /// Bytes from `offset` on are an unsynced, incomplete tail.
    Torn { offset: u64 },
}

/// The records of a WAL file, in order.
#[derive(Debug)]
pub struct WalContents {
    pub records: Vec<Vec<u8>>,
    /// Offset just past the last complete record.
    pub valid_end: u64,
    pub end: WalEnd,
}

/// What one fragment parse gave.
enum Fragment<'a> {
    Ok {
        kind: u8,
        data: &'a [u8],
        next: usize,
    },
    /// Zeros or a bad/incomplete frame.
    Bad,
    /// Padding to the block end.
    Padding {
        next: usize,
    },
    End,
}

fn fragment_at(bytes: &[u8], position: usize) -> Fragment<'_> {
    if position >= bytes.len() {
        return Fragment::End;
    }
    let block_end = (position / BLOCK_LEN + 1) * BLOCK_LEN;
    if block_end - position < FRAGMENT_SPACE_MIN {
        let padding = &bytes[position..block_end.min(bytes.len())];
        return if padding.iter().all(|&byte| byte == 0) {
            Fragment::Padding { next: block_end }
        } else {
            Fragment::Bad
        };
    }
    let window = &bytes[..block_end.min(bytes.len())];
    match frame::decode(window, position) {
        Ok(Some((payload, next))) if !payload.is_empty() => Fragment::Ok {
            kind: payload[0],
            data: &payload[1..],
            next,
        },
        _ => Fragment::Bad,
    }
}

/// Decodes a whole WAL file. `Err(Corruption)` when damage is found in bytes
/// that had been synced (see the module docs); a torn tail is not an error.
pub fn read(path: &Path, bytes: &[u8]) -> Result<WalContents, KvError> {
    let mut records = Vec::new();
    let mut position = 0;
    let mut record: Vec<u8> = Vec::new();
    let mut record_start = 0;
    let mut in_record = false;
    let mut valid_end = 0;
    loop {
        match fragment_at(bytes, position) {
            Fragment::End if !in_record => {
                return Ok(WalContents {
                    records,
                    valid_end: valid_end as u64,
                    end: WalEnd::Clean,
                });
            }
            Fragment::Padding { next } => position = next,
            Fragment::Ok { kind, data, next } => {
                let starts = matches!(kind, KIND_FULL | KIND_FIRST);
                let continues = matches!(kind, KIND_MIDDLE | KIND_LAST);
                if (starts && in_record) || (continues && !in_record) || !(starts || continues) {
                    break;
                }
                if starts {
                    record.clear();
                    record_start = position;
                    if data.len() < RECORD_HEADER_LEN {
                        break;
                    }
                }
                record.extend_from_slice(data);
                in_record = kind == KIND_FIRST || kind == KIND_MIDDLE;
                position = next;
                if !in_record {
                    if record.len() > RECORD_HEADER_LEN {
                        records.push(record[RECORD_HEADER_LEN..].to_vec());
                    }
                    valid_end = position;
                }
            }
            Fragment::Bad | Fragment::End => break,
        }
    }
    // Damage (or the end) inside the record that starts at `bad`.
    let bad = if in_record { record_start } else { position };
    if let Some(synced) = synced_claim_after(bytes, bad) {
        if synced > bad as u64 {
            return Err(KvError::corruption(
                path,
                bad as u64,
                format!("bad WAL record in bytes that were synced (a later record says {synced} bytes were durable)"),
            ));
        }
    }
    Ok(WalContents {
        records,
        valid_end: valid_end as u64,
        end: WalEnd::Torn { offset: bad as u64 },
    })
}

/// The largest `synced_offset` of any intact FULL or FIRST fragment after
/// `bad`. Fragment boundaries after damage are unknown, so every offset is
/// tried (only on this rare path); a false match needs a 32-bit checksum to
/// agree by chance.
fn synced_claim_after(bytes: &[u8], bad: usize) -> Option<u64> {
    let mut claim: Option<u64> = None;
    for position in bad + 1..bytes.len() {
        if let Fragment::Ok { kind, data, .. } = fragment_at(bytes, position) {
            if matches!(kind, KIND_FULL | KIND_FIRST) && data.len() >= RECORD_HEADER_LEN {
                let mut synced = [0u8; RECORD_HEADER_LEN];
                synced.copy_from_slice(&data[..RECORD_HEADER_LEN]);
                let synced = u64::from_le_bytes(synced);
                claim = Some(claim.map_or(synced, |claim| claim.max(synced)));
            }
        }
    }
    claim
}

/// One log as recovery read it.
#[derive(Debug)]
pub struct LogRecords {
    pub path: PathBuf,
    pub records: Vec<Vec<u8>>,
    /// Offset just past the last complete record.
    pub valid_end: u64,
    pub end: WalEnd,
}

/// Reads a sequence of logs, oldest first: each log's records, in order. A
/// log read that looks damaged is confirmed by re-reading (`read_confirmed`).
/// A log that ends torn must be the last one holding records, because a
/// writer fsyncs each log before the next receives a record; otherwise the
/// torn log is corruption.
pub fn read_logs(vfs: &dyn Vfs, paths: &[PathBuf]) -> Result<Vec<LogRecords>, KvError> {
    let mut logs = Vec::with_capacity(paths.len());
    let mut torn: Option<(&PathBuf, u64)> = None;
    for path in paths {
        let bytes = read_confirmed(
            vfs,
            path,
            |bytes| !matches!(read(path, bytes), Ok(contents) if contents.end == WalEnd::Clean),
        )?;
        let contents = read(path, &bytes)?;
        if let (Some((torn_path, offset)), false) = (torn, contents.records.is_empty()) {
            return Err(KvError::corruption(
                torn_path,
                offset,
                format!(
                    "log ends early but the later log {} holds records",
                    path.display()
                ),
            ));
        }
        if let WalEnd::Torn { offset } = contents.end {
            torn = Some((path, offset));
        }
        logs.push(LogRecords {
            path: path.clone(),
            records: contents.records,
            valid_end: contents.valid_end,
            end: contents.end,
        });
    }
    Ok(logs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::{read_all, CrashPolicy, SimVfs};
    use proptest::prelude::*;

    fn writer(vfs: &SimVfs) -> WalWriter {
        vfs.create_dir_all(Path::new("/w")).unwrap();
        let path = PathBuf::from("/w/000001.log");
        let file = vfs.create(&path).unwrap();
        vfs.sync_dir(Path::new("/w")).unwrap();
        WalWriter::new(file, path)
    }

    fn contents(vfs: &SimVfs) -> Result<WalContents, KvError> {
        let file = vfs.open(Path::new("/w/000001.log")).unwrap();
        read(
            Path::new("/w/000001.log"),
            &read_all(file.as_ref()).unwrap(),
        )
    }

    #[test]
    fn records_of_every_size_round_trip_across_blocks() {
        let vfs = SimVfs::new(1);
        let mut wal = writer(&vfs);
        let sizes = [1usize, 100, BLOCK_LEN - 30, BLOCK_LEN, 3 * BLOCK_LEN + 7, 5];
        let payloads: Vec<Vec<u8>> = sizes.iter().map(|&size| vec![size as u8; size]).collect();
        for payload in &payloads {
            wal.append(&[payload]).unwrap();
        }
        let read = contents(&vfs).unwrap();
        assert_eq!(read.records, payloads);
        assert_eq!(read.end, WalEnd::Clean);
        assert_eq!(read.valid_end, wal.len());
    }

    proptest! {
        /// A record given as parts writes the bytes of the record joined,
        /// wherever the parts are cut and wherever fragments split them.
        #[test]
        fn records_as_parts_write_the_bytes_of_the_joined_record(
            start in 0usize..BLOCK_LEN,
            sizes in proptest::collection::vec(0usize..40_000, 1..4),
            cuts in proptest::collection::vec(any::<usize>(), 0..5),
        ) {
            let vfs = SimVfs::new(2);
            let mut wal = writer(&vfs);
            wal.end = start as u64;
            let payloads: Vec<Vec<u8>> = sizes
                .iter()
                .enumerate()
                .map(|(index, &size)| (0..size).map(|byte| (byte * 7 + index) as u8).collect())
                .collect();
            let joined: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
            let expected = wal.encode(&joined);
            let split: Vec<Vec<&[u8]>> = payloads
                .iter()
                .map(|payload| {
                    let mut at: Vec<usize> = cuts.iter().map(|cut| cut % (payload.len() + 1)).collect();
                    at.sort_unstable();
                    let mut parts = Vec::new();
                    let mut from = 0;
                    for to in at.into_iter().chain([payload.len()]) {
                        parts.push(&payload[from..to]);
                        from = to;
                    }
                    parts
                })
                .collect();
            let records: Vec<&[&[u8]]> = split.iter().map(Vec::as_slice).collect();
            let mut out = Vec::new();
            wal.encode_parts(&records, &mut out);
            prop_assert_eq!(out, expected);
        }
    }

    /// D8: without a later record, damage in the last synced record reads
    /// as a torn tail; a seal after it claims it, so it is corruption.
    #[test]
    fn a_seal_claims_the_records_before_it_and_is_not_a_record() {
        for sealed in [false, true] {
            let vfs = SimVfs::new(6);
            let mut wal = writer(&vfs);
            wal.append(&[&[1u8; 100]]).unwrap();
            wal.sync().unwrap();
            wal.append(&[&[2u8; 100]]).unwrap();
            wal.sync().unwrap();
            let last = wal.len();
            assert!(wal.needs_seal());
            if sealed {
                wal.seal().unwrap();
                assert!(!wal.needs_seal());
                assert_eq!(
                    contents(&vfs).unwrap().records.len(),
                    2,
                    "a seal is no record"
                );
            }
            vfs.corrupt_byte(Path::new("/w/000001.log"), last - 8, 0x01)
                .unwrap();
            let read = contents(&vfs);
            if sealed {
                assert!(matches!(read, Err(KvError::Corruption { .. })), "{read:?}");
            } else {
                assert_eq!(
                    read.unwrap().records.len(),
                    1,
                    "the torn-looking tail is dropped"
                );
            }
        }
    }

    #[test]
    fn an_unsynced_torn_tail_is_dropped_and_synced_damage_is_reported() {
        let vfs = SimVfs::new(2);
        let mut wal = writer(&vfs);
        wal.append(&[&[1u8; 100]]).unwrap();
        wal.sync().unwrap();
        let synced_end = wal.len();
        wal.append(&[&[2u8; 100]]).unwrap();
        // A torn last record.
        let file = vfs.open(Path::new("/w/000001.log")).unwrap();
        file.set_len(wal.len() - 10).unwrap();
        let read = contents(&vfs).unwrap();
        assert_eq!(read.records.len(), 1);
        assert_eq!(read.end, WalEnd::Torn { offset: synced_end });

        // Damage in the synced first record, with a later record (in the same
        // block) that claims it was synced: corruption, not truncation.
        let vfs = SimVfs::new(3);
        let mut wal = writer(&vfs);
        wal.append(&[&[1u8; 100]]).unwrap();
        wal.sync().unwrap();
        wal.append(&[&[4u8; 10]]).unwrap();
        vfs.corrupt_byte(Path::new("/w/000001.log"), 20, 0x01)
            .unwrap();
        match contents(&vfs) {
            Err(KvError::Corruption { offset: 0, .. }) => {}
            other => panic!("expected corruption at 0, got {other:?}"),
        }
    }

    #[test]
    fn a_hole_of_lost_unsynced_writes_ends_the_log_there() {
        let vfs = SimVfs::new(4);
        let mut wal = writer(&vfs);
        wal.append(&[&[1u8; 10]]).unwrap();
        wal.sync().unwrap();
        for index in 0..40u8 {
            wal.append(&[&vec![index; 3000]]).unwrap();
        }
        for seed in 0..50 {
            let image = vfs.crash_image(CrashPolicy::Subset, seed);
            let file = image.open(Path::new("/w/000001.log")).unwrap();
            let read = read(Path::new("log"), &read_all(file.as_ref()).unwrap())
                .expect("a hole is not corruption");
            assert_eq!(read.records[0], vec![1u8; 10]);
            for (index, record) in read.records[1..].iter().enumerate() {
                assert_eq!(record, &vec![index as u8; 3000], "records are a prefix");
            }
        }
    }

    proptest! {
        #[test]
        fn read_never_panics_on_garbage_or_mutations(
            garbage: Vec<u8>,
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
            sizes in proptest::collection::vec(1usize..40_000, 1..6),
        ) {
            let _ = read(Path::new("g"), &garbage);
            let vfs = SimVfs::new(5);
            let mut wal = writer(&vfs);
            for size in &sizes {
                wal.append(&[&vec![7u8; *size]]).unwrap();
            }
            let file = vfs.open(Path::new("/w/000001.log")).unwrap();
            let mut bytes = read_all(file.as_ref()).unwrap();
            prop_assert_eq!(read(Path::new("g"), &bytes).unwrap().records.len(), sizes.len());
            for (position, mask) in flips {
                let index = position % bytes.len();
                bytes[index] ^= mask;
            }
            if let Ok(contents) = read(Path::new("g"), &bytes) {
                // Whatever survives is a prefix of what was written.
                for (record, size) in contents.records.iter().zip(&sizes) {
                    prop_assert_eq!(record, &vec![7u8; *size]);
                }
            }
        }
    }
}
