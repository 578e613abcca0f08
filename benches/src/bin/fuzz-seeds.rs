//! Writes valid inputs for each cargo-fuzz target into `fuzz/corpus/<target>/seed-*`,
//! so fuzzing starts from real encodings rather than from nothing.
//!
//! `cargo run -p leasehold-benches --bin fuzz-seeds` (from the repository root).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a tool: failing loudly is right

use std::path::Path;
use std::sync::Arc;

use leasehold_btree::layout::{encode_branch, encode_leaf, LeafEntry, Stored};
use leasehold_btree::meta::Meta;
use leasehold_btree::page::{seal, PageKind};
use leasehold_config::BackupCompression;
use leasehold_core::vfs::{read_all, SimVfs, Vfs};
use leasehold_core::wal::WalWriter;
use leasehold_core::{frame, ActorKey, Lease, NodeId, Timestamp, WriteBatch};
use leasehold_lsm::format::{InternalKey, ValueKind};
use leasehold_lsm::manifest::{current_contents, FileMeta, VersionEdit};
use leasehold_lsm::sstable::block::{encode_on_disk, BlockBuilder};
use leasehold_lsm::sstable::builder::{TableBuilder, TableOptions};

fn seed(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new("fuzz/corpus").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
}

fn main() {
    let mut framed = Vec::new();
    frame::encode(b"payload", &mut framed);
    seed("frame", "one-frame", &framed);

    let mut batch = WriteBatch::new();
    batch.put(&b"key"[..], &b"value"[..]).delete(&b"gone"[..]);
    seed("records", "batch", &batch.encode());
    let lease = Lease {
        key: ActorKey::new("UserActor", "user-1"),
        node_id: Some(NodeId::new("node-1")),
        epoch: 3,
        version: 4,
        acquired_at: Timestamp(10),
        expires_at: Timestamp(20),
        duration: std::time::Duration::from_secs(10),
        renewals: 1,
        metadata: Default::default(),
    };
    seed("records", "lease", &lease.encode());

    let entries = [(&b"a"[..], &b"1"[..]), (&b"b"[..], &b"2"[..])];
    let backup = leasehold_memory::backup::encode(7, entries.into_iter(), BackupCompression::Lz4);
    seed("memory_backup", "two-entries", &backup[12..]);

    let vfs = SimVfs::new(0);
    vfs.create_dir_all(Path::new("/s")).unwrap();
    let file = vfs.create(Path::new("/s/1.log")).unwrap();
    let mut wal = WalWriter::new(Arc::clone(&file), "/s/1.log".into());
    wal.append(&[&batch.encode(), &[9u8; 40_000]]).unwrap();
    wal.sync().unwrap();
    seed("wal", "two-records", &read_all(file.as_ref()).unwrap());

    let mut builder = BlockBuilder::new();
    for index in 0..40u64 {
        builder.add(
            &InternalKey::new(format!("key-{index:03}"), 100 - index, ValueKind::Put).encode(),
            b"value",
        );
    }
    let contents = builder.finish();
    let mut block = Vec::new();
    encode_on_disk(&contents, true, &mut block);
    seed("lsm_block", "framed-lz4", &block);
    seed("lsm_block", "contents", &contents);

    let table_file = vfs.create(Path::new("/s/2.sst")).unwrap();
    let options = TableOptions {
        block_size: 256,
        compress: true,
        bloom_fp_rate: 0.01,
    };
    let mut table = TableBuilder::new(Arc::clone(&table_file), options);
    for index in 0..100u64 {
        table
            .add(
                &InternalKey::new(format!("key-{index:03}"), 1000 - index, ValueKind::Put).encode(),
                &[index as u8; 30],
            )
            .unwrap();
    }
    table.finish().unwrap();
    seed(
        "lsm_table",
        "hundred-keys",
        &read_all(table_file.as_ref()).unwrap(),
    );

    let blob_dir = Path::new("/s");
    let mut blob = leasehold_lsm::blob::BlobWriter::create(&vfs, blob_dir, 1, true).unwrap();
    for index in 0..20u8 {
        let value = vec![index; 64 + usize::from(index) * 40];
        blob.add(format!("key-{index}").as_bytes(), &value, vec![index])
            .unwrap();
    }
    blob.finish().unwrap();
    let blob_file = vfs.open_read(&blob_dir.join("000001.blob")).unwrap();
    seed(
        "lsm_blob",
        "twenty-records",
        &read_all(blob_file.as_ref()).unwrap(),
    );

    let edit = VersionEdit {
        log_number: Some(3),
        next_file_number: Some(9),
        last_sequence: Some(100),
        deleted: vec![(0, 4)],
        added: vec![(
            1,
            FileMeta {
                number: 8,
                size: 4096,
                smallest: InternalKey::new(&b"a"[..], 5, ValueKind::Put).encode(),
                largest: InternalKey::new(&b"z"[..], 1, ValueKind::Delete).encode(),
            },
        )],
        closed: Some(vec![(10, 4096)]),
        blobs_added: vec![leasehold_lsm::blob::BlobMeta {
            number: 11,
            size: 8192,
            count: 3,
            record_bytes: 8164,
        }],
        blob_garbage: vec![leasehold_lsm::manifest::BlobGarbage {
            number: 11,
            count: 1,
            bytes: 2000,
        }],
        blobs_deleted: vec![7],
    };
    let mut manifest = Vec::new();
    frame::encode(&edit.encode(), &mut manifest);
    seed("lsm_manifest", "one-edit", &manifest);
    seed("lsm_manifest", "current", &current_contents(12));

    let meta = Meta {
        txn: 2,
        page_size: 1024,
        root: Some(2),
        page_count: 5,
        wal_number: 3,
        free_count: 1,
        freelist_head: None,
        live: Some((1, 2)),
        inline_free: vec![4],
    };
    seed(
        "btree_pages",
        "meta-page",
        &seal(1024, PageKind::Meta, 2, 2, &meta.encode()),
    );
    let leaf = encode_leaf(&[LeafEntry {
        key: b"k",
        lz4_raw_len: None,
        stored: Stored::Inline(b"v"),
    }]);
    seed(
        "btree_pages",
        "leaf-page",
        &seal(1024, PageKind::Leaf, 2, 1, &leaf),
    );
    seed(
        "btree_pages",
        "branch",
        &encode_branch(&[b"m".to_vec()], &[3, 4]),
    );

    let mut garbage_dir = vec![0b0001_0011u8];
    garbage_dir.extend_from_slice(&current_contents(2));
    garbage_dir.extend_from_slice(&manifest);
    seed("open_garbage_dir", "current-and-manifest", &garbage_dir);
    println!("seeds written under fuzz/corpus/");
}
