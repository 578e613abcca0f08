//! Micro-benchmarks of the shared pieces every engine leans on: record framing,
//! the batch codec, the actor-key encoding, and the store path on the memory
//! engine (the floor every persistent engine is compared against).

#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark code

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use leasehold_core::{
    frame, ActorKey, Durability, KvEngine, KvStore, NodeId, SnapshotWrite, Store, Timestamp,
    WriteBatch,
};
use leasehold_memory::MemoryEngine;

fn framing(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame");
    for size in [64usize, 4096, 65536] {
        let payload = vec![0xa5u8; size];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("encode", size), &payload, |b, payload| {
            let mut out = Vec::with_capacity(size + 16);
            b.iter(|| {
                out.clear();
                frame::encode(black_box(payload), &mut out);
            })
        });
        let mut encoded = Vec::new();
        frame::encode(&payload, &mut encoded);
        group.bench_with_input(BenchmarkId::new("decode", size), &encoded, |b, encoded| {
            b.iter(|| frame::decode(black_box(encoded), 0).unwrap())
        });
    }
    group.finish();
}

fn batch_codec(c: &mut Criterion) {
    let mut batch = WriteBatch::new();
    for index in 0..16 {
        batch.put(
            ActorKey::new("UserActor", format!("user-{index}")).encode(),
            vec![7u8; 256],
        );
    }
    let encoded = batch.encode();
    c.bench_function("batch/encode 16x256B", |b| {
        b.iter(|| black_box(&batch).encode())
    });
    c.bench_function("batch/decode 16x256B", |b| {
        b.iter(|| WriteBatch::decode(black_box(&encoded)).unwrap())
    });
    let key = ActorKey::new("UserActor", "user-123456");
    c.bench_function("actor_key/encode", |b| b.iter(|| black_box(&key).encode()));
}

fn memory_store(c: &mut Criterion) {
    let engine = MemoryEngine::volatile(10_000_000);
    c.bench_function("memory/put 256B buffered", |b| {
        let mut index = 0u64;
        b.iter(|| {
            index += 1;
            let mut batch = WriteBatch::new();
            batch.put(index.to_be_bytes().to_vec(), vec![1u8; 256]);
            engine.write(batch, Durability::Buffered).unwrap();
        })
    });
    let store = KvStore::new(MemoryEngine::volatile(10_000_000), Durability::Buffered);
    let key = ActorKey::new("UserActor", "hot");
    let node = NodeId::new("node-1");
    let epoch = store
        .try_acquire(
            &key,
            &node,
            std::time::Duration::from_secs(3600),
            Timestamp(0),
        )
        .unwrap()
        .lease()
        .unwrap()
        .epoch;
    c.bench_function("store/save 256B on memory", |b| {
        let mut version = 0;
        b.iter(|| {
            version = store
                .save(
                    SnapshotWrite::new(key.clone(), vec![3u8; 256]),
                    version,
                    epoch,
                    Timestamp(1),
                )
                .unwrap()
                .version;
        })
    });
    c.bench_function("store/load 256B on memory", |b| {
        b.iter(|| store.load(black_box(&key), Timestamp(1)).unwrap())
    });
}

criterion_group!(benches, framing, batch_codec, memory_store);
criterion_main!(benches);
