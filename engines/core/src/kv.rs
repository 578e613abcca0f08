//! `KvEngine`: the ordered key-value interface every embedded engine implements
//! (LSM, B+tree, memory, RocksDB). `KvStore` turns any of them into a `Store`.
//!
//! Contract for implementors:
//! 1. `write` applies a batch atomically: after any crash either all of its
//!    operations are visible or none are.
//! 2. Writes are applied in the order they are acknowledged; a reader sees a
//!    batch entirely or not at all.
//! 3. `Durability::Sync` returns only after the batch would survive power loss.
//!    `Group` and `Buffered` return earlier; such a write becomes durable at the
//!    engine's next group sync (within its configured interval) or at `flush`.
//!    After a crash the engine holds every durable batch plus some prefix of the
//!    acknowledged ones after them (the crash oracle checks exactly this).
//! 4. A failed fsync is fatal: the engine reports `KvError::Poisoned` for every
//!    later write until reopened, because the kernel may have dropped the data.
//! 5. Bytes read from disk are checked; damage is `KvError::Corruption`, never
//!    wrong data.
//!
//! All methods take `&self`; engines are shared between threads.

use std::ops::{Bound, ControlFlow};

use bytes::Bytes;

use crate::codec::{put_varint, DecodeError, Reader, Writer};
use crate::error::KvResult;

/// When an acknowledged write is promised to survive power loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// fsync (of the engine's log) before the write returns; concurrent writers
    /// share one fsync (group commit).
    Sync,
    /// Acknowledged once in the engine's log buffer; fsynced by the engine within
    /// its group-sync interval (`wal_sync_interval`). An engine running without
    /// its background thread has nothing to sync later, so it syncs at once.
    Group,
    /// Acknowledged once handed to the OS (or kept in memory); durable only at
    /// `flush` or when the engine syncs for its own reasons.
    Buffered,
}

impl Durability {
    pub fn name(self) -> &'static str {
        match self {
            Durability::Sync => "sync",
            Durability::Group => "group",
            Durability::Buffered => "buffered",
        }
    }

    pub fn parse(text: &str) -> Option<Durability> {
        match text {
            "sync" => Some(Durability::Sync),
            "group" => Some(Durability::Group),
            "buffered" => Some(Durability::Buffered),
            _ => None,
        }
    }
}

/// One operation of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchOp {
    /// The value is shared: an engine that keeps it (a memtable) keeps the
    /// caller's buffer, not a copy.
    Put {
        key: Vec<u8>,
        value: Bytes,
    },
    Delete {
        key: Vec<u8>,
    },
}

impl BatchOp {
    pub fn key(&self) -> &[u8] {
        match self {
            BatchOp::Put { key, .. } | BatchOp::Delete { key } => key,
        }
    }
}

/// What `WriteBatch::put` takes as a value: owned buffers become shared
/// without a copy; a borrowed slice is copied once, here.
pub trait IntoValue {
    fn into_value(self) -> Bytes;
}

impl IntoValue for Bytes {
    fn into_value(self) -> Bytes {
        self
    }
}

impl IntoValue for Vec<u8> {
    fn into_value(self) -> Bytes {
        Bytes::from(self)
    }
}

impl IntoValue for String {
    fn into_value(self) -> Bytes {
        Bytes::from(self)
    }
}

impl IntoValue for &[u8] {
    fn into_value(self) -> Bytes {
        Bytes::copy_from_slice(self)
    }
}

impl IntoValue for &Vec<u8> {
    fn into_value(self) -> Bytes {
        Bytes::copy_from_slice(self)
    }
}

impl IntoValue for &str {
    fn into_value(self) -> Bytes {
        Bytes::copy_from_slice(self.as_bytes())
    }
}

impl<const N: usize> IntoValue for &[u8; N] {
    fn into_value(self) -> Bytes {
        Bytes::copy_from_slice(self)
    }
}

/// The most bytes one batch may take encoded (its keys and values plus a few
/// bytes per op). Every engine refuses a larger batch with
/// `CapacityExceeded` before it changes anything: records on disk are frames
/// of at most 4 GiB (`frame::FRAME_PAYLOAD_LEN_MAX`), and a batch's log
/// record, or a table block holding one of its values, must fit one.
pub const BATCH_BYTES_MAX: u64 = 1 << 31;

/// Operations applied atomically, in order (a later op on the same key wins).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteBatch {
    pub ops: Vec<BatchOp>,
}

impl WriteBatch {
    pub fn new() -> Self {
        WriteBatch::default()
    }

    pub fn put(&mut self, key: impl Into<Vec<u8>>, value: impl IntoValue) -> &mut Self {
        self.ops.push(BatchOp::Put {
            key: key.into(),
            value: value.into_value(),
        });
        self
    }

    pub fn delete(&mut self, key: impl Into<Vec<u8>>) -> &mut Self {
        self.ops.push(BatchOp::Delete { key: key.into() });
        self
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// `CapacityExceeded` if the batch is above `BATCH_BYTES_MAX`.
    pub fn check_size(&self) -> crate::error::KvResult<()> {
        // Each op's kind byte and two varint lengths: at most 21 bytes.
        let bytes = self
            .logical_bytes()
            .saturating_add(21 * self.ops.len() as u64);
        if bytes > BATCH_BYTES_MAX {
            return Err(crate::error::KvError::CapacityExceeded {
                what: format!("a write batch of about {bytes} bytes"),
                limit: BATCH_BYTES_MAX,
            });
        }
        Ok(())
    }

    /// Key and value bytes the caller asked to write: the denominator of write
    /// amplification.
    pub fn logical_bytes(&self) -> u64 {
        self.ops
            .iter()
            .map(|op| match op {
                BatchOp::Put { key, value } => key.len() + value.len(),
                BatchOp::Delete { key } => key.len(),
            } as u64)
            .sum()
    }
}

const BATCH_OP_PUT: u8 = 1;
const BATCH_OP_DELETE: u8 = 2;

impl WriteBatch {
    /// The batch as log bytes, shared by every engine's log:
    /// ```text
    /// varint op_count | ( u8 kind=1 | bytes key | bytes value )   put
    ///                 | ( u8 kind=2 | bytes key )                 delete
    /// ```
    /// (`bytes` = varint length, then the bytes.) Written to disk — do not change.
    pub fn encode(&self) -> Vec<u8> {
        let mut writer =
            Writer::with_capacity(self.logical_bytes() as usize + 4 * self.ops.len() + 4);
        writer.varint(self.ops.len() as u64);
        for op in &self.ops {
            match op {
                BatchOp::Put { key, value } => writer.u8(BATCH_OP_PUT).bytes(key).bytes(value),
                BatchOp::Delete { key } => writer.u8(BATCH_OP_DELETE).bytes(key),
            };
        }
        writer.finish()
    }

    /// `encode`'s bytes after `prefix`, as parts that joined make them: the
    /// small pieces (counts, kinds, lengths, keys) in `scratch`, each value
    /// borrowed where it is, so a log writes the batch with one copy.
    pub fn encode_parts<'a>(&'a self, prefix: &[u8], scratch: &'a mut Vec<u8>) -> Vec<&'a [u8]> {
        scratch.clear();
        scratch.extend_from_slice(prefix);
        put_varint(scratch, self.ops.len() as u64);
        // Where each value goes: after this many scratch bytes.
        let mut cuts: Vec<(usize, &'a [u8])> = Vec::with_capacity(self.ops.len());
        for op in &self.ops {
            match op {
                BatchOp::Put { key, value } => {
                    scratch.push(BATCH_OP_PUT);
                    put_varint(scratch, key.len() as u64);
                    scratch.extend_from_slice(key);
                    put_varint(scratch, value.len() as u64);
                    cuts.push((scratch.len(), value));
                }
                BatchOp::Delete { key } => {
                    scratch.push(BATCH_OP_DELETE);
                    put_varint(scratch, key.len() as u64);
                    scratch.extend_from_slice(key);
                }
            }
        }
        let scratch: &'a [u8] = scratch;
        let mut parts = Vec::with_capacity(2 * cuts.len() + 1);
        let mut start = 0;
        for (end, value) in cuts {
            parts.push(&scratch[start..end]);
            parts.push(value);
            start = end;
        }
        parts.push(&scratch[start..]);
        parts
    }

    /// Inverse of `encode`; every count and length is checked against the bytes.
    pub fn decode(bytes: &[u8]) -> Result<WriteBatch, DecodeError> {
        let mut reader = Reader::new(bytes);
        // Each op takes at least two bytes (kind + empty key).
        let count = reader.varint_at_most(bytes.len() as u64 / 2, "batch op count")?;
        // Room grows with the ops actually decoded, not with a claimed count
        // (a crafted count of len/2 tiny ops would otherwise reserve ~24× the
        // record up front).
        let mut ops = Vec::with_capacity(count.min(1024) as usize);
        for _ in 0..count {
            let op = match reader.u8("batch op kind")? {
                BATCH_OP_PUT => BatchOp::Put {
                    key: reader.bytes("key")?.to_vec(),
                    value: Bytes::copy_from_slice(reader.bytes("value")?),
                },
                BATCH_OP_DELETE => BatchOp::Delete {
                    key: reader.bytes("key")?.to_vec(),
                },
                other => return Err(reader.error(format!("unknown batch op kind {other}"))),
            };
            ops.push(op);
        }
        reader.expect_end("batch")?;
        Ok(WriteBatch { ops })
    }

    /// Applies the batch to an ordered map (the reference semantics).
    pub fn apply_to(&self, map: &mut std::collections::BTreeMap<Vec<u8>, Vec<u8>>) {
        for op in &self.ops {
            match op {
                BatchOp::Put { key, value } => {
                    map.insert(key.clone(), value.to_vec());
                }
                BatchOp::Delete { key } => {
                    map.remove(key);
                }
            }
        }
    }
}

/// A key range for `scan`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRange {
    pub start: Bound<Vec<u8>>,
    pub end: Bound<Vec<u8>>,
}

impl KeyRange {
    /// The bounds as borrowed slices, the form range APIs of other stores take.
    pub fn as_slices(&self) -> (Bound<&[u8]>, Bound<&[u8]>) {
        (
            self.start.as_ref().map(Vec::as_slice),
            self.end.as_ref().map(Vec::as_slice),
        )
    }

    pub fn all() -> Self {
        KeyRange {
            start: Bound::Unbounded,
            end: Bound::Unbounded,
        }
    }

    /// Every key that starts with `prefix`.
    pub fn prefix(prefix: &[u8]) -> Self {
        let end = match prefix_successor(prefix) {
            Some(successor) => Bound::Excluded(successor),
            None => Bound::Unbounded,
        };
        KeyRange {
            start: Bound::Included(prefix.to_vec()),
            end,
        }
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        let after_start = match &self.start {
            Bound::Included(start) => key >= start.as_slice(),
            Bound::Excluded(start) => key > start.as_slice(),
            Bound::Unbounded => true,
        };
        let before_end = match &self.end {
            Bound::Included(end) => key <= end.as_slice(),
            Bound::Excluded(end) => key < end.as_slice(),
            Bound::Unbounded => true,
        };
        after_start && before_end
    }

    /// As a pair of borrowed bounds, for `BTreeMap::range`.
    pub fn as_bounds(&self) -> (Bound<&[u8]>, Bound<&[u8]>) {
        fn borrow(bound: &Bound<Vec<u8>>) -> Bound<&[u8]> {
            match bound {
                Bound::Included(key) => Bound::Included(key.as_slice()),
                Bound::Excluded(key) => Bound::Excluded(key.as_slice()),
                Bound::Unbounded => Bound::Unbounded,
            }
        }
        (borrow(&self.start), borrow(&self.end))
    }
}

/// The smallest key greater than every key starting with `prefix`, if any.
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut successor = prefix.to_vec();
    while let Some(last) = successor.pop() {
        if last < 0xff {
            successor.push(last + 1);
            return Some(successor);
        }
    }
    None
}

/// What `scan` hands each entry to; return `ControlFlow::Break` to stop early.
pub type ScanVisitor<'a> = dyn FnMut(&[u8], &[u8]) -> ControlFlow<()> + 'a;

/// Counters an engine keeps for the harness. Fields an engine has no notion of
/// stay zero. All byte counts are cumulative since open.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct EngineStats {
    /// Key + value bytes of acknowledged batches (the caller's logical writes).
    pub user_bytes_written: u64,
    /// Bytes appended to the write-ahead log (or backup file).
    pub wal_bytes_written: u64,
    /// Bytes written by memtable flushes / checkpoints.
    pub flush_bytes_written: u64,
    pub compaction_bytes_read: u64,
    pub compaction_bytes_written: u64,
    /// Every byte the engine handed to its files.
    pub device_bytes_written: u64,
    pub device_bytes_read: u64,
    pub fsyncs: u64,
    pub dir_syncs: u64,
    /// Time writers spent stalled waiting for background work.
    pub stall_micros: u64,
    pub block_cache_hits: u64,
    pub block_cache_misses: u64,
    /// Point reads of a table that consulted its bloom filter.
    pub bloom_probes: u64,
    /// Point reads a bloom filter answered "absent" without reading a block.
    pub bloom_useful: u64,
    /// Point reads the filter let through although the table lacked the key.
    pub bloom_false_positives: u64,
    /// Table blocks read from the device (not the cache) by reads.
    pub blocks_read: u64,
    /// Checkpoints completed, and the time they took.
    pub checkpoints: u64,
    pub checkpoint_micros: u64,
    /// Pages of the data file free for reuse (page-based engines).
    pub free_pages: u64,
    /// Bytes of the engine's files on disk now.
    pub disk_bytes: u64,
    /// Live keys and their key + value bytes, where the engine knows them.
    pub live_entries: u64,
    pub live_bytes: u64,
    /// The engine cannot count its own device bytes and fsyncs (a peer
    /// doing its own I/O without counters): those fields are not figures.
    pub io_uncounted: bool,
}

impl EngineStats {
    /// Adds `later`'s counters to these (an engine reopened: one run, two
    /// instances); the gauges — free pages, disk and live sizes — become
    /// `later`'s.
    pub fn accumulate(&mut self, later: &EngineStats) {
        self.for_each_counter(later, |total, more| *total += more);
        self.free_pages = later.free_pages;
        self.disk_bytes = later.disk_bytes;
        self.live_entries = later.live_entries;
        self.live_bytes = later.live_bytes;
        self.io_uncounted |= later.io_uncounted;
    }

    /// The counters accrued since `earlier` was read from the same engine;
    /// gauges stay as they are now.
    pub fn since(&self, earlier: &EngineStats) -> EngineStats {
        let mut delta = self.clone();
        delta.for_each_counter(earlier, |now, before| *now = now.saturating_sub(before));
        delta
    }

    fn for_each_counter(&mut self, other: &EngineStats, mut apply: impl FnMut(&mut u64, u64)) {
        let EngineStats {
            user_bytes_written,
            wal_bytes_written,
            flush_bytes_written,
            compaction_bytes_read,
            compaction_bytes_written,
            device_bytes_written,
            device_bytes_read,
            fsyncs,
            dir_syncs,
            stall_micros,
            block_cache_hits,
            block_cache_misses,
            bloom_probes,
            bloom_useful,
            bloom_false_positives,
            blocks_read,
            checkpoints,
            checkpoint_micros,
            // Gauges, not counters.
            free_pages: _,
            disk_bytes: _,
            live_entries: _,
            live_bytes: _,
            // A property of the engine, not a count.
            io_uncounted: _,
        } = self;
        apply(user_bytes_written, other.user_bytes_written);
        apply(wal_bytes_written, other.wal_bytes_written);
        apply(flush_bytes_written, other.flush_bytes_written);
        apply(compaction_bytes_read, other.compaction_bytes_read);
        apply(compaction_bytes_written, other.compaction_bytes_written);
        apply(device_bytes_written, other.device_bytes_written);
        apply(device_bytes_read, other.device_bytes_read);
        apply(fsyncs, other.fsyncs);
        apply(dir_syncs, other.dir_syncs);
        apply(stall_micros, other.stall_micros);
        apply(block_cache_hits, other.block_cache_hits);
        apply(block_cache_misses, other.block_cache_misses);
        apply(bloom_probes, other.bloom_probes);
        apply(bloom_useful, other.bloom_useful);
        apply(bloom_false_positives, other.bloom_false_positives);
        apply(blocks_read, other.blocks_read);
        apply(checkpoints, other.checkpoints);
        apply(checkpoint_micros, other.checkpoint_micros);
    }

    /// Device bytes written per logical byte; `None` before anything was written.
    pub fn write_amplification(&self) -> Option<f64> {
        (self.user_bytes_written > 0)
            .then(|| self.device_bytes_written as f64 / self.user_bytes_written as f64)
    }

    /// Bytes on disk per live logical byte.
    pub fn space_amplification(&self) -> Option<f64> {
        (self.live_bytes > 0).then(|| self.disk_bytes as f64 / self.live_bytes as f64)
    }
}

/// How healthy a component is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    Healthy,
    Degraded(String),
    Failed(String),
}

/// `verify` for an engine with no structural check of its own to run (a
/// peer whose files only it can read): every entry read back through its own
/// checksums; a read error is the problem found. `source` names what was read.
pub fn verify_by_scan<E: KvEngine + ?Sized>(engine: &E, source: &str) -> VerifyReport {
    let mut report = VerifyReport::default();
    let mut entries = 0u64;
    let scanned = engine.scan(&KeyRange::all(), &mut |_, _| {
        entries += 1;
        std::ops::ControlFlow::Continue(())
    });
    if let Err(err) = scanned {
        report.problems.push(err.to_string());
    }
    report.checked = format!("{entries} entries read from {source}");
    report
}

/// The outcome of `verify`: every problem found, none fixed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// What was checked, for the operator ("3 files, 1204 records").
    pub checked: String,
    pub problems: Vec<String>,
}

impl VerifyReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// An ordered key-value engine. See the module docs for the contract.
pub trait KvEngine: Send + Sync + 'static {
    /// A short name for reports ("lsm", "memory").
    fn name(&self) -> &'static str;

    fn get(&self, key: &[u8]) -> KvResult<Option<Vec<u8>>>;

    /// Applies `batch` atomically with the given durability.
    fn write(&self, batch: WriteBatch, durability: Durability) -> KvResult<()>;

    /// Visits the entries in `range` in ascending key order, from one consistent
    /// view (no batch half-visible).
    fn scan(&self, range: &KeyRange, visit: &mut ScanVisitor<'_>) -> KvResult<()>;

    /// Makes every acknowledged write durable before returning.
    fn flush(&self) -> KvResult<()>;

    fn stats(&self) -> EngineStats;

    fn health(&self) -> Health;

    /// Checks every structure the engine keeps on disk and in memory; changes
    /// nothing.
    fn verify(&self) -> KvResult<VerifyReport>;

    /// Flushes and releases resources; later calls answer `KvError::Closed`.
    fn close(&self) -> KvResult<()>;

    /// Whether anything written can outlive the process (false for a volatile
    /// in-memory engine, whose `Sync` writes answer `Unsupported`).
    fn persists(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn batches_round_trip(ops in proptest::collection::vec((any::<bool>(), any::<Vec<u8>>(), any::<Vec<u8>>()), 0..20)) {
            let mut batch = WriteBatch::new();
            for (put, key, value) in ops {
                if put { batch.put(key, value); } else { batch.delete(key); }
            }
            prop_assert_eq!(WriteBatch::decode(&batch.encode()).unwrap(), batch.clone());
            let mut scratch = Vec::new();
            let joined = batch.encode_parts(b"prefix", &mut scratch).concat();
            prop_assert_eq!(&joined[..6], b"prefix");
            prop_assert_eq!(&joined[6..], &batch.encode()[..]);
        }

        #[test]
        fn batch_decode_never_panics(bytes: Vec<u8>) {
            let _ = WriteBatch::decode(&bytes);
        }
    }

    #[test]
    fn prefix_ranges_stop_at_the_successor() {
        let range = KeyRange::prefix(b"ab");
        assert!(range.contains(b"ab"));
        assert!(range.contains(b"ab\xff\xff"));
        assert!(!range.contains(b"ac"));
        assert!(!range.contains(b"aa\xff"));
        assert_eq!(prefix_successor(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_successor(b"\xff\xff"), None);
        assert!(KeyRange::prefix(b"\xff").contains(b"\xff\xff\xff"));
    }
}
