//! Micro-benchmarks of the B+tree: point lookup, insert with and without a
//! checkpoint, range scan, and overflow values written and read (through a
//! checkpoint and a reopen), on the real file system.

#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark code

use std::hint::black_box;
use std::ops::{Bound, ControlFlow};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use leasehold_btree::BtreeEngine;
use leasehold_config::BtreeConfig;
use leasehold_core::rng::SplitMix64;
use leasehold_core::vfs::OsVfs;
use leasehold_core::{Durability, KeyRange, KvEngine, WriteBatch};

fn key(index: u64) -> Vec<u8> {
    format!(
        "S\u{1}UserActor\u{0}\u{1}user-{:012}",
        index.wrapping_mul(0x9e37_79b9_7f4a_7c15) % 1_000_000_000_000
    )
    .into_bytes()
}

fn engine(dir: &std::path::Path, checkpoint_wal_bytes: u64) -> BtreeEngine {
    let config = BtreeConfig {
        data_dir: dir.to_path_buf(),
        background_threads: false,
        checkpoint_wal_bytes,
        ..BtreeConfig::default()
    };
    BtreeEngine::open(&config, Arc::new(OsVfs::new())).unwrap()
}

fn put(engine: &BtreeEngine, index: u64, len: usize) {
    let mut batch = WriteBatch::new();
    batch.put(key(index), vec![(index % 251) as u8; len]);
    engine.write(batch, Durability::Buffered).unwrap();
}

fn benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let tree = engine(&dir.path().join("lookup"), 1 << 40);
    let count = 100_000u64;
    for index in 0..count {
        put(&tree, index, 256);
    }
    tree.checkpoint().unwrap();
    let mut rng = SplitMix64::new(1);
    c.bench_function("btree/point lookup (100k keys)", |b| {
        b.iter(|| tree.get(&key(rng.below(count))).unwrap())
    });
    c.bench_function("btree/range scan 100 entries", |b| {
        b.iter(|| {
            let start = key(rng.below(count));
            let range = KeyRange {
                start: Bound::Included(start),
                end: Bound::Unbounded,
            };
            let mut seen = 0;
            tree.scan(&range, &mut |_, value| {
                black_box(value);
                seen += 1;
                if seen == 100 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })
            .unwrap();
        })
    });
    let no_checkpoint = engine(&dir.path().join("insert"), 1 << 40);
    let mut next = 0;
    c.bench_function("btree/insert 256B, no checkpoint", |b| {
        b.iter(|| {
            next += 1;
            put(&no_checkpoint, next, 256);
        })
    });
    let checkpointing = engine(&dir.path().join("insert-checkpoint"), 1 << 20);
    let mut next = 0;
    c.bench_function("btree/insert 256B, checkpoint every 1 MiB of log", |b| {
        b.iter(|| {
            next += 1;
            put(&checkpointing, next % 50_000, 256);
        })
    });
    let overflow = engine(&dir.path().join("overflow"), 1 << 40);
    let mut next = 0;
    c.bench_function("btree/overflow value 64 KiB: write + checkpoint", |b| {
        b.iter(|| {
            next += 1;
            put(&overflow, next % 64, 64 << 10);
            overflow.checkpoint().unwrap();
        })
    });
    c.bench_function("btree/overflow value 64 KiB: read", |b| {
        b.iter(|| overflow.get(&key(1 + rng.below(63))).unwrap())
    });
}

criterion_group!(btree, benches);
criterion_main!(btree);
