//! The B+tree's headline figures, measured in one run on this machine:
//! random put throughput (Buffered; Sync with one and four writers), point
//! gets, range scans, file size against live data after overwriting the data
//! ten times (space amplification), checkpoint time for a fresh tree of
//! 42 MiB of live data, and recovery time (reading the meta slots and replaying the log:
//! pages are read on demand, not at open).
//!
//! `cargo run --release -p leasehold-benches --bin btree-measure [-- --dir D]`
//! writes `results/btree-measure.{json,md}`; the data directory is scratch.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a measurement tool: failing loudly is right

use std::ops::{Bound, ControlFlow};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use leasehold_benches::{data_dir, key, put, rate, report, sync_puts, Figure, VALUE_LEN};
use leasehold_btree::BtreeEngine;
use leasehold_config::BtreeConfig;
use leasehold_core::rng::SplitMix64;
use leasehold_core::vfs::OsVfs;
use leasehold_core::{Durability, KeyRange, KvEngine};

fn config(dir: &Path, name: &str) -> BtreeConfig {
    BtreeConfig {
        data_dir: dir.join(name),
        ..BtreeConfig::default()
    }
}

fn fresh(dir: &Path, name: &str, tune: impl FnOnce(&mut BtreeConfig)) -> BtreeEngine {
    let _ = std::fs::remove_dir_all(dir.join(name));
    let mut config = config(dir, name);
    tune(&mut config);
    BtreeEngine::open(&config, Arc::new(OsVfs::new())).unwrap()
}

fn main() {
    let dir = data_dir("btree-measure");
    let mut figures: Vec<Figure> = Vec::new();
    let mut rng = SplitMix64::new(42);
    let key_space = 200_000u64;

    // 1. Random puts, Buffered, one writer (checkpoints as configured: every 16 MiB of log).
    let engine = fresh(&dir, "puts", |_| {});
    let count = 300_000u64;
    let started = Instant::now();
    for _ in 0..count {
        engine
            .write(put(rng.below(key_space), &mut rng), Durability::Buffered)
            .unwrap();
    }
    let elapsed = started.elapsed();
    figures.push(Figure {
        name: "random put, Buffered, 1 writer".into(),
        value: rate(count, elapsed),
        unit: "puts/s",
        note: format!(
            "{count} puts of {VALUE_LEN} B values over {key_space} keys; {} checkpoints",
            engine.stats().checkpoints
        ),
    });

    // 2. Point gets and range scans.
    let gets = 300_000u64;
    let started = Instant::now();
    for _ in 0..gets {
        engine.get(&key(rng.below(key_space))).unwrap();
    }
    figures.push(Figure {
        name: "point get".into(),
        value: rate(gets, started.elapsed()),
        unit: "gets/s",
        note: String::new(),
    });
    let scans = 20_000u64;
    let started = Instant::now();
    for _ in 0..scans {
        let range = KeyRange {
            start: Bound::Included(key(rng.below(key_space))),
            end: Bound::Unbounded,
        };
        let mut seen = 0;
        engine
            .scan(&range, &mut |_, _| {
                seen += 1;
                if seen == 100 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })
            .unwrap();
    }
    figures.push(Figure {
        name: "range scan of 100 entries".into(),
        value: rate(scans, started.elapsed()),
        unit: "scans/s",
        note: String::new(),
    });
    engine.close().unwrap();
    drop(engine);

    // 3. Sync puts: one writer, then four (group commit).
    sync_puts(fresh(&dir, "sync", |_| {}), &mut figures);

    // 4. Space amplification after overwriting the data ten times.
    let engine = fresh(&dir, "overwrite", |_| {});
    let keys = 50_000u64;
    for round in 0..10 {
        for index in 0..keys {
            engine
                .write(put(index, &mut rng), Durability::Buffered)
                .unwrap();
        }
        if round == 9 {
            engine.checkpoint().unwrap();
        }
    }
    let stats = engine.stats();
    figures.push(Figure {
        name: "space amplification after 10× overwrite".into(),
        value: stats.disk_bytes as f64 / stats.live_bytes as f64,
        unit: "×",
        note: format!(
            "file + log {} MiB for {} MiB live ({} entries); {} free pages; write amp {:.2}",
            stats.disk_bytes >> 20,
            stats.live_bytes >> 20,
            stats.live_entries,
            stats.free_pages,
            stats.device_bytes_written as f64 / stats.user_bytes_written as f64
        ),
    });
    engine.close().unwrap();
    drop(engine);

    // 5. Checkpoint time for a fresh tree of 42 MiB live, then recovery time.
    // Neither the log nor the dirty bound may checkpoint before the one timed.
    let tune = |config: &mut BtreeConfig| {
        config.checkpoint_wal_bytes = 1 << 40;
        config.max_dirty_bytes = 1 << 40;
    };
    let engine = fresh(&dir, "checkpoint", tune);
    let mut index = 0;
    // Fresh keys fill split leaves about half, so 42 MiB of live data makes
    // some tens of MiB of pages (the note gives the bytes written).
    let target = 42u64 << 20;
    while engine.stats().live_bytes < target {
        engine
            .write(put(index, &mut rng), Durability::Buffered)
            .unwrap();
        index += 1;
    }
    let started = Instant::now();
    engine.checkpoint().unwrap();
    let elapsed = started.elapsed();
    let stats = engine.stats();
    figures.push(Figure {
        name: "checkpoint of a fresh tree (42 MiB live, all dirty)".into(),
        value: elapsed.as_secs_f64(),
        unit: "s",
        note: format!(
            "{} MiB of pages written for {} MiB of live data, {index} entries",
            stats.flush_bytes_written >> 20,
            stats.live_bytes >> 20
        ),
    });
    // Some log after the checkpoint, so recovery replays too.
    for extra in 0..20_000 {
        engine
            .write(put(index + extra, &mut rng), Durability::Buffered)
            .unwrap();
    }
    engine.close().unwrap();
    drop(engine);
    let dropped_caches = std::fs::write("/proc/sys/vm/drop_caches", "3").is_ok();
    let mut config = config(&dir, "checkpoint");
    tune(&mut config);
    let started = Instant::now();
    let engine = BtreeEngine::open(&config, Arc::new(OsVfs::new())).unwrap();
    let elapsed = started.elapsed();
    assert!(engine.get(&key(index + 19_999)).unwrap().is_some());
    figures.push(Figure {
        name: "recovery (open that tree, replay 20k records, checkpoint)".into(),
        value: elapsed.as_secs_f64(),
        unit: "s",
        note: format!(
            "page cache {}",
            if dropped_caches {
                "dropped first (cold)"
            } else {
                "not dropped (warm)"
            }
        ),
    });
    drop(engine);

    report(
        "btree-measure",
        "B+tree headline figures",
        "cargo run --release -p leasehold-benches --bin btree-measure",
        "OsVfs on the working directory's disk; default B+tree settings (4 KiB pages, 256 keys per node, lz4 values compressed as written, a 64 MiB page cache, checkpoint every 16 MiB of log or 32 MiB of dirty nodes)",
        &figures,
    );
}
