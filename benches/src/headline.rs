//! The headline figures of an ordered KV engine, measured the same way for
//! every engine so they can stand side by side: random puts (Buffered; Sync
//! with one and four writers), point gets of present and absent keys, the
//! bloom filters' false-positive rate, write amplification after overwriting
//! ten memtables' worth, and the recovery time of a 64 MiB WAL.

use std::path::Path;
use std::time::{Duration, Instant};

use std::sync::Arc;

use leasehold_config::LsmConfig;
use leasehold_core::rng::SplitMix64;
use leasehold_core::vfs::OsVfs;
use leasehold_core::{Durability, EngineStats, KvEngine};
use leasehold_lsm::LsmEngine;

use crate::{key, put, rate, sync_puts, Figure, VALUE_LEN};

const KEY_SPACE: u64 = 1_000_000;
/// The memtable of every run but recovery's.
pub const MEMTABLE_BYTES: u64 = 4 << 20;
const RECOVERY_WAL_BYTES: u64 = 64 << 20;
const RECOVERY_MEMTABLE_BYTES: u64 = 256 << 20;

/// The LSM as every headline run opens it: defaults but the memtable size.
pub fn open_lsm(dir: &Path, memtable: u64) -> LsmEngine {
    let config = LsmConfig {
        data_dir: dir.to_path_buf(),
        memtable_size_limit: memtable,
        ..LsmConfig::default()
    };
    LsmEngine::open(&config, Arc::new(OsVfs::new())).unwrap()
}

/// How to run one engine: open it on a directory with a memtable size, and
/// describe its shape (levels, files) for the notes.
pub struct Subject<'a, E> {
    pub open: &'a dyn Fn(&Path, u64) -> E,
    pub shape: &'a dyn Fn(&E) -> String,
}

fn fresh<E>(subject: &Subject<E>, dir: &Path, name: &str, memtable: u64) -> E {
    let path = dir.join(name);
    let _ = std::fs::remove_dir_all(&path);
    (subject.open)(&path, memtable)
}

fn bloom(after: &EngineStats, before: &EngineStats) -> (u64, u64) {
    (
        after.bloom_probes - before.bloom_probes,
        after.bloom_false_positives - before.bloom_false_positives,
    )
}

pub fn figures<E: KvEngine>(subject: &Subject<E>, dir: &Path) -> Vec<Figure> {
    let mut figures = Vec::new();
    let mut rng = SplitMix64::new(42);

    // 1. Random puts, Buffered, one writer.
    let engine = fresh(subject, dir, "puts", MEMTABLE_BYTES);
    let count = 300_000u64;
    let started = Instant::now();
    let mut written = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let index = rng.below(KEY_SPACE);
        written.push(index);
        engine
            .write(put(index, &mut rng), Durability::Buffered)
            .unwrap();
    }
    figures.push(Figure {
        name: "random put, Buffered, 1 writer".into(),
        value: rate(count, started.elapsed()),
        unit: "puts/s",
        note: format!("{count} puts of {VALUE_LEN} B values"),
    });

    // 2. Point gets, present and absent (background compaction allowed to settle).
    engine.flush().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let gets = 200_000u64;
    let started = Instant::now();
    for _ in 0..gets {
        let index = written[rng.below(count) as usize];
        assert!(engine.get(&key(index)).unwrap().is_some());
    }
    figures.push(Figure {
        name: "point get, present key".into(),
        value: rate(gets, started.elapsed()),
        unit: "gets/s",
        note: (subject.shape)(&engine),
    });
    let before = engine.stats();
    let started = Instant::now();
    for _ in 0..gets {
        let index = KEY_SPACE + rng.below(KEY_SPACE);
        assert!(engine.get(&key(index)).unwrap().is_none());
    }
    let elapsed = started.elapsed();
    let (probes, false_positives) = bloom(&engine.stats(), &before);
    figures.push(Figure {
        name: "point get, absent key".into(),
        value: rate(gets, elapsed),
        unit: "gets/s",
        note: String::new(),
    });
    figures.push(Figure {
        name: "bloom false-positive rate (absent keys)".into(),
        value: false_positives as f64 / probes.max(1) as f64,
        unit: "ratio",
        note: format!("{false_positives} of {probes} filter probes"),
    });
    engine.close().unwrap();
    drop(engine);

    // 3. Sync puts: one writer, then four (group commit).
    sync_puts(fresh(subject, dir, "sync", MEMTABLE_BYTES), &mut figures);

    // 4. Write amplification after overwriting ten memtables' worth.
    let engine = fresh(subject, dir, "overwrite", MEMTABLE_BYTES);
    let keys = MEMTABLE_BYTES / (VALUE_LEN as u64 + 40);
    let mut user = 0u64;
    while user < 10 * MEMTABLE_BYTES {
        let batch = put(rng.below(keys), &mut rng);
        user += batch.logical_bytes();
        engine.write(batch, Durability::Buffered).unwrap();
    }
    engine.flush().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let stats = engine.stats();
    figures.push(Figure {
        name: "write amplification, 10× memtable overwritten".into(),
        value: stats.device_bytes_written as f64 / stats.user_bytes_written as f64,
        unit: "×",
        note: format!(
            "device {} MiB / user {} MiB (WAL {} MiB, flush {} MiB, compaction {} MiB); {}",
            stats.device_bytes_written >> 20,
            stats.user_bytes_written >> 20,
            stats.wal_bytes_written >> 20,
            stats.flush_bytes_written >> 20,
            stats.compaction_bytes_written >> 20,
            (subject.shape)(&engine)
        ),
    });
    engine.close().unwrap();
    drop(engine);

    // 5. Recovery of a 64 MiB WAL.
    let engine = fresh(subject, dir, "recovery", RECOVERY_MEMTABLE_BYTES);
    let mut wal_bytes = 0;
    let mut index = 0;
    while wal_bytes < RECOVERY_WAL_BYTES {
        engine
            .write(put(index, &mut rng), Durability::Buffered)
            .unwrap();
        index += 1;
        wal_bytes = engine.stats().wal_bytes_written;
    }
    // Neither engine flushes its memtable at close: the reopen replays the WAL.
    engine.close().unwrap();
    drop(engine);
    let dropped_caches = std::fs::write("/proc/sys/vm/drop_caches", "3").is_ok();
    let started = Instant::now();
    let engine = (subject.open)(&dir.join("recovery"), RECOVERY_MEMTABLE_BYTES);
    let elapsed = started.elapsed();
    assert!(engine.get(&key(index - 1)).unwrap().is_some());
    figures.push(Figure {
        name: "recovery of a 64 MiB WAL".into(),
        value: elapsed.as_secs_f64(),
        unit: "s",
        note: format!(
            "{index} records replayed; page cache {}",
            if dropped_caches {
                "dropped first (cold)"
            } else {
                "not dropped (warm)"
            }
        ),
    });
    drop(engine);
    figures
}
