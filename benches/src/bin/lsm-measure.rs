//! The LSM's headline figures, measured in one run on this machine:
//! random put throughput (Buffered; Sync with one and with four writers),
//! point gets of present and absent keys, the bloom filters' measured
//! false-positive rate, write amplification after overwriting ten memtables'
//! worth of data, and recovery time for a 64 MiB WAL.
//!
//! `cargo run --release -p leasehold-benches --bin lsm-measure [-- --dir D]`
//! writes `results/lsm-measure.{json,md}`; the data directory is scratch.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a measurement tool: failing loudly is right

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use leasehold_benches::{data_dir, key, put, rate, report, sync_puts, Figure, VALUE_LEN};
use leasehold_core::config::LsmConfig;
use leasehold_core::rng::SplitMix64;
use leasehold_core::vfs::OsVfs;
use leasehold_core::{Durability, EngineStats, KvEngine};
use leasehold_lsm::LsmEngine;

const KEY_SPACE: u64 = 1_000_000;

fn fresh(dir: &Path, name: &str, tune: impl FnOnce(&mut LsmConfig)) -> LsmEngine {
    let path = dir.join(name);
    let _ = std::fs::remove_dir_all(&path);
    let mut config = LsmConfig {
        data_dir: path,
        memtable_size_limit: 4 << 20,
        ..LsmConfig::default()
    };
    tune(&mut config);
    LsmEngine::open(&config, Arc::new(OsVfs::new())).unwrap()
}

fn delta(after: &EngineStats, before: &EngineStats) -> (u64, u64) {
    (
        after.bloom_probes - before.bloom_probes,
        after.bloom_false_positives - before.bloom_false_positives,
    )
}

fn main() {
    let dir = data_dir("lsm-measure");
    let mut figures: Vec<Figure> = Vec::new();
    let mut rng = SplitMix64::new(42);

    // 1. Random puts, Buffered, one writer.
    let engine = fresh(&dir, "puts", |_| {});
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
    let elapsed = started.elapsed();
    figures.push(Figure {
        name: "random put, Buffered, 1 writer".into(),
        value: rate(count, elapsed),
        unit: "puts/s",
        note: format!("{count} puts of {VALUE_LEN} B values"),
    });

    // 2. Point gets, present and absent (same tree, background compaction allowed to settle).
    engine.flush().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let gets = 200_000u64;
    let started = Instant::now();
    for _ in 0..gets {
        let index = written[rng.below(count) as usize];
        assert!(engine.get(&key(index)).unwrap().is_some());
    }
    let elapsed = started.elapsed();
    figures.push(Figure {
        name: "point get, present key".into(),
        value: rate(gets, elapsed),
        unit: "gets/s",
        note: format!("levels {:?}", engine.level_counts()),
    });
    let before = engine.stats();
    let started = Instant::now();
    for _ in 0..gets {
        let index = KEY_SPACE + rng.below(KEY_SPACE);
        assert!(engine.get(&key(index)).unwrap().is_none());
    }
    let elapsed = started.elapsed();
    let after = engine.stats();
    figures.push(Figure {
        name: "point get, absent key".into(),
        value: rate(gets, elapsed),
        unit: "gets/s",
        note: String::new(),
    });
    let (probes, false_positives) = delta(&after, &before);
    figures.push(Figure {
        name: "bloom false-positive rate (absent keys)".into(),
        value: false_positives as f64 / probes as f64,
        unit: "ratio",
        note: format!("{false_positives} of {probes} table probes; configured 0.01"),
    });
    engine.close().unwrap();
    drop(engine);

    // 3. Sync puts: one writer, then four (group commit).
    sync_puts(fresh(&dir, "sync", |_| {}), &mut figures);

    // 4. Write amplification after overwriting ten memtables' worth.
    let memtable = 4u64 << 20;
    let engine = fresh(&dir, "overwrite", |config| {
        config.memtable_size_limit = memtable
    });
    let keys = memtable / (VALUE_LEN as u64 + 40);
    let mut user = 0u64;
    while user < 10 * memtable {
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
            "device {} MiB / user {} MiB (WAL {} MiB, flush {} MiB, compaction {} MiB); levels {:?}",
            stats.device_bytes_written >> 20,
            stats.user_bytes_written >> 20,
            stats.wal_bytes_written >> 20,
            stats.flush_bytes_written >> 20,
            stats.compaction_bytes_written >> 20,
            engine.level_counts()
        ),
    });
    engine.close().unwrap();
    drop(engine);

    // 5. Recovery of a 64 MiB WAL.
    let wal_target = 64u64 << 20;
    let tune = |config: &mut LsmConfig| config.memtable_size_limit = 256 << 20;
    let engine = fresh(&dir, "recovery", tune);
    let mut wal_bytes = 0;
    let mut index = 0;
    while wal_bytes < wal_target {
        engine
            .write(put(index, &mut rng), Durability::Buffered)
            .unwrap();
        index += 1;
        wal_bytes = engine.stats().wal_bytes_written;
    }
    engine.close().unwrap();
    drop(engine);
    let dropped_caches = std::fs::write("/proc/sys/vm/drop_caches", "3").is_ok();
    let mut config = LsmConfig {
        data_dir: dir.join("recovery"),
        ..LsmConfig::default()
    };
    tune(&mut config);
    let started = Instant::now();
    let engine = LsmEngine::open(&config, Arc::new(OsVfs::new())).unwrap();
    let elapsed = started.elapsed();
    assert!(engine.get(&key(index - 1)).unwrap().is_some());
    figures.push(Figure {
        name: "recovery of a 64 MiB WAL".into(),
        value: elapsed.as_secs_f64(),
        unit: "s",
        note: format!(
            "{} records replayed and flushed to level 0; page cache {}",
            index,
            if dropped_caches {
                "dropped first (cold)"
            } else {
                "not dropped (warm)"
            }
        ),
    });
    drop(engine);

    report(
        "lsm-measure",
        "LSM headline figures",
        "cargo run --release -p leasehold-benches --bin lsm-measure",
        "OsVfs on the working directory's disk; default LSM settings except a 4 MiB memtable (256 MiB for the recovery run)",
        &figures,
    );
}
