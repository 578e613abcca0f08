//! Micro-benchmarks of the LSM's internals: memtable insert, WAL append
//! (buffered and synced, on the real file system), block encode and decode,
//! bloom probe, and point reads from a table (present and absent keys).

#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark code

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use leasehold_core::rng::SplitMix64;
use leasehold_core::vfs::{OsVfs, Vfs};
use leasehold_core::wal::WalWriter;
use leasehold_lsm::format::{InternalKey, ValueKind};
use leasehold_lsm::memtable::Memtable;
use leasehold_lsm::sstable::block::{decode_on_disk, encode_on_disk, Block, BlockBuilder};
use leasehold_lsm::sstable::bloom::{self, key_hash, Bloom};
use leasehold_lsm::sstable::builder::{TableBuilder, TableOptions};
use leasehold_lsm::sstable::cache::BlockCache;
use leasehold_lsm::sstable::table::Table;

fn key(index: u64) -> Vec<u8> {
    format!(
        "UserActor/user-{:010}",
        index.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 34
    )
    .into_bytes()
}

fn memtable_insert(c: &mut Criterion) {
    let memtable = Memtable::new(1);
    let mut sequence = 0u64;
    c.bench_function("lsm/memtable insert 256B", |b| {
        b.iter(|| {
            sequence += 1;
            memtable.insert(
                &key(sequence),
                sequence,
                ValueKind::Put,
                vec![1u8; 256].into(),
            );
        })
    });
}

fn wal_append(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let vfs = OsVfs::new();
    let mut group = c.benchmark_group("lsm/wal append 256B");
    group.throughput(Throughput::Bytes(256));
    for synced in [false, true] {
        let path: PathBuf = dir
            .path()
            .join(if synced { "synced.log" } else { "buffered.log" });
        let mut wal = WalWriter::new(vfs.create(&path).unwrap(), path);
        let record = vec![7u8; 256];
        group.bench_function(if synced { "synced" } else { "buffered" }, |b| {
            b.iter(|| {
                wal.append(&[&record]).unwrap();
                if synced {
                    wal.sync().unwrap();
                }
            })
        });
    }
    group.finish();
}

fn blocks(c: &mut Criterion) {
    let mut builder = BlockBuilder::new();
    let mut index = 0;
    while builder.size_estimate() < 4096 {
        index += 1;
        builder.add(
            &InternalKey::new(
                format!("UserActor/user-{index:08}"),
                1000 - index,
                ValueKind::Put,
            )
            .encode(),
            &[3u8; 100],
        );
    }
    let contents = builder.finish();
    let mut group = c.benchmark_group("lsm/block 4KiB");
    group.throughput(Throughput::Bytes(contents.len() as u64));
    for compress in [false, true] {
        let name = if compress { "lz4" } else { "plain" };
        group.bench_function(format!("encode {name}"), |b| {
            let mut out = Vec::with_capacity(8192);
            b.iter(|| {
                out.clear();
                encode_on_disk(black_box(&contents), compress, &mut out);
            })
        });
        let mut framed = Vec::new();
        encode_on_disk(&contents, compress, &mut framed);
        group.bench_function(format!("check {name}"), |b| {
            b.iter(|| Block::new(decode_on_disk(black_box(framed.clone())).unwrap()).unwrap())
        });
    }
    group.finish();
}

fn bloom_probe(c: &mut Criterion) {
    let hashes: Vec<u64> = (0..100_000).map(|index| key_hash(&key(index))).collect();
    let filter = Bloom::decode(&bloom::build(&hashes, 0.01)).unwrap();
    let mut rng = SplitMix64::new(1);
    c.bench_function("lsm/bloom probe (1% filter, 100k keys)", |b| {
        b.iter(|| filter.may_contain(black_box(key_hash(&key(rng.below(200_000))))))
    });
}

fn table_get(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let vfs = OsVfs::new();
    let path = dir.path().join("000001.sst");
    let file = vfs.create(&path).unwrap();
    let options = TableOptions {
        block_size: 4096,
        compress: true,
        bloom_fp_rate: 0.01,
    };
    let mut builder = TableBuilder::new(Arc::clone(&file), options);
    let count = 50_000u64;
    let mut keys: Vec<Vec<u8>> = (0..count)
        .map(|index| format!("UserActor/user-{index:08}").into_bytes())
        .collect();
    keys.sort();
    for (index, user_key) in keys.iter().enumerate() {
        builder
            .add(
                &InternalKey::new(user_key.clone(), index as u64 + 1, ValueKind::Put).encode(),
                &[9u8; 256],
            )
            .unwrap();
    }
    let summary = builder.finish().unwrap();
    file.sync().unwrap();
    let table = Table::open(
        vfs.open_read(&path).unwrap(),
        path,
        1,
        summary.size,
        Arc::new(BlockCache::new(64 << 20)),
    )
    .unwrap();
    let mut rng = SplitMix64::new(2);
    c.bench_function("lsm/table get present (cached blocks)", |b| {
        b.iter(|| {
            table
                .get(&keys[rng.below(count) as usize], u64::MAX >> 8)
                .unwrap()
        })
    });
    c.bench_function("lsm/table get absent", |b| {
        b.iter(|| {
            table
                .get(
                    format!("UserActor/none-{:08}", rng.below(count)).as_bytes(),
                    u64::MAX >> 8,
                )
                .unwrap()
        })
    });
}

criterion_group!(
    benches,
    memtable_insert,
    wal_append,
    blocks,
    bloom_probe,
    table_get
);
criterion_main!(benches);
