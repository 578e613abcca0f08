//! What an engine reports of itself: counters, health, and `verify`'s
//! findings.

use std::sync::atomic::{AtomicU64, Ordering};

use super::{KeyRange, KvEngine};

/// Adds to one of an engine's own counters (read back by its `stats`).
pub fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

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
    /// Key–value separation: bytes written to blob files (a counter), and
    /// the blob files now and their bytes no table points to (gauges).
    pub blob_bytes_written: u64,
    pub blob_files: u64,
    pub blob_garbage_bytes: u64,
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
        self.blob_files = later.blob_files;
        self.blob_garbage_bytes = later.blob_garbage_bytes;
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
            blob_bytes_written,
            // Gauges, not counters.
            free_pages: _,
            disk_bytes: _,
            blob_files: _,
            blob_garbage_bytes: _,
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
        apply(blob_bytes_written, other.blob_bytes_written);
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
