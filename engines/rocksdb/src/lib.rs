//! `leasehold-rocksdb`: the [`KvEngine`] over RocksDB (through the `rocksdb`
//! crate, which builds RocksDB's C++ sources), so every comparison in the kit
//! has the engine users would otherwise pick beside the hand-written ones.
//!
//! Layout: three column families. Lease records (engine keys tagged `L` by
//! `KvStore`) live in `leases`, snapshot records (`S`) in `snapshots`, any
//! other key in `default`; a batch touching several is still one atomic
//! RocksDB write. Scans merge the three in key order from one RocksDB
//! snapshot, so no batch is ever half-visible.
//!
//! Durability, mapped so RocksDB never promises more or less than the engine
//! beside it:
//! - `Sync`: `WriteOptions::sync = true` — the WAL is fsynced before the write
//!   returns; RocksDB's write group shares one fsync among concurrent writers,
//!   as the hand-written engines' group commit does.
//! - `Buffered`: WAL written to the OS, not synced (`sync = false`).
//! - `Group`: refused (`Unsupported`). RocksDB has no time-bounded background
//!   WAL sync — `wal_bytes_per_sync` is byte-based and promises nothing about
//!   time — so it cannot promise what `Group` means for the other engines.
//!
//! RocksDB does its own file I/O: it cannot sit on Leasehold's `Vfs`, so the
//! simulated-disk crash oracle does not apply to it. Its crash test kills a
//! writer process instead (`tests/kill.rs`).

pub mod config;
pub use config::RocksDbConfig;

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;
use rocksdb::statistics::Ticker;
use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, DBCompressionType, DBRawIterator, ErrorKind,
    Options, ReadOptions, WriteOptions, DB,
};

use leasehold_storage::config::Section;
use leasehold_storage::kv::{
    BatchOp, EngineStats, Health, KeyRange, ScanVisitor, VerifyReport, WriteBatch,
};
use leasehold_storage::lifecycle::Lifecycle;
use leasehold_storage::{Durability, KvEngine, KvError, KvResult};

/// The RocksDB release the `librocksdb-sys` crate builds; every result names it.
pub const ROCKSDB_VERSION: &str = "11.8.1 (librocksdb-sys 0.19.0, rocksdb crate 0.25.0)";

const LEASES: &str = "leases";
const SNAPSHOTS: &str = "snapshots";
const DEFAULT: &str = "default";
/// Column families in the order a scan merges them (any order is correct;
/// this one is also key order for `KvStore`'s keys).
const FAMILIES: [&str; 3] = [DEFAULT, LEASES, SNAPSHOTS];

/// Which column family holds `key`.
fn family_of(key: &[u8]) -> &'static str {
    match key.first() {
        Some(b'L') => LEASES,
        Some(b'S') => SNAPSHOTS,
        _ => DEFAULT,
    }
}

/// Whether a directory holding `names` is a RocksDB database: a CURRENT
/// beside the OPTIONS file RocksDB writes at every open (a Leasehold LSM
/// has a CURRENT too, never an OPTIONS file).
pub fn recognises(names: &[String]) -> bool {
    names.iter().any(|name| name == "CURRENT")
        && names.iter().any(|name| name.starts_with("OPTIONS-"))
}

pub struct RocksEngine {
    /// `None` once closed.
    db: RwLock<Option<DB>>,
    /// The options the database was opened with: they own its statistics.
    options: Options,
    dir: PathBuf,
    lifecycle: Lifecycle,
    /// Key + value bytes of acknowledged batches, counted here exactly as the
    /// hand-written engines count them, so write amplification compares.
    user_bytes_written: AtomicU64,
    /// Opened with `open_read_only`: writes are refused.
    read_only: bool,
}

impl RocksEngine {
    pub fn open(config: &RocksDbConfig) -> KvResult<RocksEngine> {
        RocksEngine::open_with(config, false)
    }

    /// Opens without writing anything to the directory (RocksDB's read-only
    /// mode: the WAL is replayed into memory only), for the operator commands.
    pub fn open_read_only(config: &RocksDbConfig) -> KvResult<RocksEngine> {
        RocksEngine::open_with(config, true)
    }

    fn open_with(config: &RocksDbConfig, read_only: bool) -> KvResult<RocksEngine> {
        config
            .validate("rocksdb")
            .map_err(|err| KvError::InvalidArgument(err.to_string()))?;
        let mut options = Options::default();
        options.create_if_missing(config.create_if_missing);
        options.create_missing_column_families(true);
        options.set_max_background_jobs(config.max_background_jobs as i32);
        // Torn or corrupt WAL records are an error on open, never skipped silently
        // past acknowledged data (kTolerateCorruptedTailRecords is the default
        // WAL recovery mode: a torn tail of unacknowledged writes is dropped).
        options.set_paranoid_checks(true);
        if config.enable_statistics {
            options.enable_statistics();
        }
        let family_options = family_options(config)?;
        let families = FAMILIES
            .iter()
            .map(|name| ColumnFamilyDescriptor::new(*name, family_options.clone()));
        let db = if read_only {
            DB::open_cf_descriptors_read_only(&options, &config.data_dir, families, false)
        } else {
            DB::open_cf_descriptors(&options, &config.data_dir, families)
        }
        .map_err(|err| error(&config.data_dir, "open", err))?;
        Ok(RocksEngine {
            db: RwLock::new(Some(db)),
            options,
            dir: config.data_dir.clone(),
            lifecycle: Lifecycle::default(),
            user_bytes_written: AtomicU64::new(0),
            read_only,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn with_db<T>(&self, work: impl FnOnce(&DB) -> KvResult<T>) -> KvResult<T> {
        let guard = self.db.read();
        let db = guard.as_ref().ok_or(KvError::Closed)?;
        work(db)
    }

    fn check_writable(&self) -> KvResult<()> {
        if self.read_only {
            return Err(KvError::Unsupported("opened read-only".to_owned()));
        }
        self.lifecycle.check_writable()
    }

    fn ticker(&self, ticker: Ticker) -> u64 {
        self.options.get_ticker_count(ticker)
    }

    /// An integer property summed over the column families (0 if closed).
    fn family_property_sum(&self, name: impl rocksdb::CStrLike + Copy) -> u64 {
        self.with_db(|db| {
            let mut total = 0;
            for family in FAMILIES {
                let family = db.cf_handle(family).ok_or(KvError::Closed)?;
                total += db
                    .property_int_value_cf(family, name)
                    .ok()
                    .flatten()
                    .unwrap_or(0);
            }
            Ok(total)
        })
        .unwrap_or(0)
    }
}

fn options_compression(config: &RocksDbConfig) -> KvResult<DBCompressionType> {
    Ok(match config.compression_type.as_str() {
        "none" => DBCompressionType::None,
        "snappy" => DBCompressionType::Snappy,
        "lz4" => DBCompressionType::Lz4,
        "zstd" => DBCompressionType::Zstd,
        // `validate` refused any other name before this runs.
        other => {
            return Err(KvError::InvalidArgument(format!(
                "compression_type {other:?}"
            )))
        }
    })
}

fn family_options(config: &RocksDbConfig) -> KvResult<Options> {
    let mut options = Options::default();
    options.set_compression_type(options_compression(config)?);
    options.set_write_buffer_size(config.write_buffer_size as usize);
    if config.enable_blob_files {
        options.set_enable_blob_files(true);
        options.set_min_blob_size(config.min_blob_size);
        options.set_blob_file_size(config.blob_file_size);
        options.set_blob_compression_type(options_compression(config)?);
        options.set_enable_blob_gc(config.enable_blob_gc);
        options.set_blob_gc_age_cutoff(config.blob_gc_age_cutoff);
    }
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(&Cache::new_lru_cache(config.block_cache_size as usize));
    if config.bloom_bits_per_key > 0.0 {
        table.set_bloom_filter(config.bloom_bits_per_key, false);
    }
    options.set_block_based_table_factory(&table);
    Ok(options)
}

/// RocksDB's error as Leasehold's: corruption stays corruption, everything
/// else the OS or RocksDB refused is an I/O error naming what was attempted.
fn error(dir: &Path, context: &str, err: rocksdb::Error) -> KvError {
    match err.kind() {
        ErrorKind::Corruption => KvError::Corruption {
            file: dir.to_path_buf(),
            offset: 0,
            reason: err.into_string(),
        },
        ErrorKind::InvalidArgument => KvError::InvalidArgument(err.into_string()),
        _ => KvError::Io {
            context: format!("rocksdb {context} in {}", dir.display()),
            source: std::io::Error::other(err.into_string()),
        },
    }
}

impl KvEngine for RocksEngine {
    fn name(&self) -> &'static str {
        "rocksdb"
    }

    fn get(&self, key: &[u8]) -> KvResult<Option<Vec<u8>>> {
        self.lifecycle.check_open()?;
        self.with_db(|db| {
            let family = db.cf_handle(family_of(key)).ok_or(KvError::Closed)?;
            db.get_cf(family, key)
                .map_err(|err| error(&self.dir, "get", err))
        })
    }

    fn write(&self, batch: WriteBatch, durability: Durability) -> KvResult<()> {
        self.check_writable()?;
        batch.check_size()?;
        let mut write_options = WriteOptions::default();
        match durability {
            Durability::Sync => write_options.set_sync(true),
            Durability::Buffered => write_options.set_sync(false),
            Durability::Group => {
                return Err(KvError::Unsupported(
                    "RocksDB has no time-bounded group sync; use sync or buffered".to_owned(),
                ))
            }
        }
        let logical_bytes = batch.logical_bytes();
        self.with_db(|db| {
            let mut rocks_batch = rocksdb::WriteBatch::default();
            for op in &batch.ops {
                let family = db.cf_handle(family_of(op.key())).ok_or(KvError::Closed)?;
                match op {
                    BatchOp::Put { key, value } => rocks_batch.put_cf(family, key, value),
                    BatchOp::Delete { key } => rocks_batch.delete_cf(family, key),
                }
            }
            db.write_opt(rocks_batch, &write_options).map_err(|err| {
                // A failed WAL write or sync leaves RocksDB in a background
                // error state; refuse writes until reopened, as the contract says.
                self.lifecycle.fail(error(&self.dir, "write", err))
            })
        })?;
        self.user_bytes_written
            .fetch_add(logical_bytes, Ordering::Relaxed);
        Ok(())
    }

    fn scan(&self, range: &KeyRange, visit: &mut ScanVisitor<'_>) -> KvResult<()> {
        self.lifecycle.check_open()?;
        self.with_db(|db| {
            let snapshot = db.snapshot();
            let mut iterators: Vec<DBRawIterator> = Vec::with_capacity(FAMILIES.len());
            for name in FAMILIES {
                let family = db.cf_handle(name).ok_or(KvError::Closed)?;
                let mut read_options = ReadOptions::default();
                read_options.set_snapshot(&snapshot);
                if let Bound::Excluded(end) = &range.end {
                    read_options.set_iterate_upper_bound(end.clone());
                }
                let mut iterator = db.raw_iterator_cf_opt(family, read_options);
                match &range.start {
                    Bound::Included(start) | Bound::Excluded(start) => iterator.seek(start),
                    Bound::Unbounded => iterator.seek_to_first(),
                }
                iterators.push(iterator);
            }
            merge_scan(&mut iterators, range, visit).map_err(|err| error(&self.dir, "scan", err))
        })
    }

    fn flush(&self) -> KvResult<()> {
        self.check_writable()?;
        self.with_db(|db| {
            db.flush_wal(true)
                .map_err(|err| self.lifecycle.fail(error(&self.dir, "WAL sync", err)))
        })
    }

    fn stats(&self) -> EngineStats {
        let wal = self.ticker(Ticker::WalFileBytes);
        let flushed = self.ticker(Ticker::FlushWriteBytes);
        let compacted = self.ticker(Ticker::CompactWriteBytes);
        let compaction_read = self.ticker(Ticker::CompactReadBytes);
        // Blocks that reads fetched from table files into the cache.
        let read_into_cache = self.ticker(Ticker::BlockCacheBytesWrite);
        let positives = self.ticker(Ticker::BloomFilterFullPositive);
        let true_positives = self.ticker(Ticker::BloomFilterFullTruePositive);
        let useful = self.ticker(Ticker::BloomFilterUseful);
        let live_entries = self.family_property_sum(rocksdb::properties::ESTIMATE_NUM_KEYS);
        EngineStats {
            user_bytes_written: self.user_bytes_written.load(Ordering::Relaxed),
            wal_bytes_written: wal,
            flush_bytes_written: flushed,
            compaction_bytes_read: compaction_read,
            compaction_bytes_written: compacted,
            device_bytes_written: wal + flushed + compacted,
            device_bytes_read: read_into_cache + compaction_read,
            fsyncs: self.ticker(Ticker::WalFileSynced),
            dir_syncs: 0,
            stall_micros: self.ticker(Ticker::StallMicros),
            block_cache_hits: self.ticker(Ticker::BlockCacheHit),
            block_cache_misses: self.ticker(Ticker::BlockCacheMiss),
            bloom_probes: useful + positives,
            bloom_useful: useful,
            bloom_false_positives: positives.saturating_sub(true_positives),
            blocks_read: self.ticker(Ticker::BlockCacheMiss),
            checkpoints: 0,
            checkpoint_micros: 0,
            free_pages: 0,
            disk_bytes: leasehold_storage::vfs::dir_bytes(&self.dir),
            blob_bytes_written: self.ticker(Ticker::BlobDbBlobFileBytesWritten),
            blob_files: self.family_property_sum("rocksdb.num-blob-files"),
            blob_garbage_bytes: self.family_property_sum("rocksdb.live-blob-file-garbage-size"),
            // RocksDB's estimate; exact counts need a full scan.
            live_entries,
            live_bytes: 0,
            io_uncounted: false,
        }
    }

    fn health(&self) -> Health {
        if let Some(health) = self.lifecycle.health() {
            return health;
        }
        let background_errors = self
            .with_db(|db| {
                Ok(db
                    .property_int_value(rocksdb::properties::BACKGROUND_ERRORS)
                    .ok()
                    .flatten()
                    .unwrap_or(0))
            })
            .unwrap_or(0);
        if background_errors > 0 {
            Health::Degraded(format!(
                "RocksDB reports {background_errors} background errors"
            ))
        } else {
            Health::Healthy
        }
    }

    fn verify(&self) -> KvResult<VerifyReport> {
        self.lifecycle.check_open()?;
        // Reads every entry of every family with block checksums verified.
        let source = format!("{} column families", FAMILIES.len());
        Ok(leasehold_storage::kv::verify_by_scan(self, &source))
    }

    fn close(&self) -> KvResult<()> {
        if !self.lifecycle.close() {
            return Ok(());
        }
        let db = self.db.write().take();
        if let Some(db) = db {
            if !self.lifecycle.is_failed() && !self.read_only {
                db.flush_wal(true)
                    .map_err(|err| error(&self.dir, "WAL sync at close", err))?;
            }
            drop(db);
        }
        Ok(())
    }
}

/// Visits the entries of several sorted iterators in one key order.
fn merge_scan(
    iterators: &mut [DBRawIterator],
    range: &KeyRange,
    visit: &mut ScanVisitor<'_>,
) -> Result<(), rocksdb::Error> {
    loop {
        let mut smallest: Option<usize> = None;
        for (index, iterator) in iterators.iter().enumerate() {
            let Some(key) = iterator.key() else {
                continue;
            };
            let smaller = smallest
                .and_then(|best| iterators[best].key())
                .is_none_or(|best_key| key < best_key);
            if smaller {
                smallest = Some(index);
            }
        }
        let Some(index) = smallest else {
            for iterator in iterators.iter() {
                iterator.status()?;
            }
            return Ok(());
        };
        let iterator = &mut iterators[index];
        let (Some(key), Some(value)) = (iterator.key(), iterator.value()) else {
            return Ok(());
        };
        let before_start =
            matches!(&range.start, Bound::Excluded(start) if key == start.as_slice());
        let past_end = matches!(&range.end, Bound::Included(end) if key > end.as_slice());
        if past_end {
            // This family is done; the others may still have keys below the end.
            iterator.seek_to_last();
            iterator.next();
            continue;
        }
        if !before_start && visit(key, value).is_break() {
            return Ok(());
        }
        iterator.next();
    }
}
