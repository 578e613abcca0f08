//! The LSM beside RocksDB, the yardstick, in one run: the same headline
//! figures (`leasehold_benches::headline`) for each, one engine after the
//! other on the same disk, and their ratio.
//!
//! `cargo run --release -p leasehold-benches --bin yardstick [-- --dir D]`
//! writes `results/yardstick.{json,md}`; the data directory is scratch.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a measurement tool: failing loudly is right

use std::fmt::Write as _;
use std::path::Path;

use leasehold_benches::headline::{figures, open_lsm, Subject, MEMTABLE_BYTES};
use leasehold_benches::{data_dir, machine};
use leasehold_config::RocksDbConfig;
use leasehold_lsm::LsmEngine;
use leasehold_rocksdb::{RocksEngine, ROCKSDB_VERSION};

fn open_rocksdb(dir: &Path, memtable: u64) -> RocksEngine {
    let config = RocksDbConfig {
        data_dir: dir.to_path_buf(),
        write_buffer_size: memtable,
        ..RocksDbConfig::default()
    };
    RocksEngine::open(&config).unwrap()
}

fn main() {
    let dir = data_dir("yardstick");
    let lsm = figures(
        &Subject {
            open: &open_lsm,
            shape: &|engine: &LsmEngine| format!("levels {:?}", engine.level_counts()),
        },
        &dir.join("lsm"),
    );
    let rocksdb = figures(
        &Subject {
            open: &open_rocksdb,
            shape: &|engine: &RocksEngine| {
                let stats = leasehold_core::KvEngine::stats(engine);
                format!("{} MiB on disk", stats.disk_bytes >> 20)
            },
        },
        &dir.join("rocksdb"),
    );
    let command = "cargo run --release -p leasehold-benches --bin yardstick";
    let mut markdown = String::new();
    writeln!(markdown, "# The LSM beside RocksDB\n").unwrap();
    writeln!(
        markdown,
        "Command: `{command}`  \nMachine: {}  \nRocksDB: {ROCKSDB_VERSION}  \nSetup: one run, LSM then RocksDB, each in a fresh directory on the same disk; \
         both with a {} MiB memtable (256 MiB for recovery), lz4, 10 bits/key bloom filters, otherwise defaults. \
         Buffered = WAL written to the OS, not synced; Sync = fsync before the answer (both engines group concurrent writers).\n",
        machine(),
        MEMTABLE_BYTES >> 20
    )
    .unwrap();
    writeln!(markdown, "| figure | unit | LSM | RocksDB | LSM / RocksDB | LSM note | RocksDB note |\n|---|---|--:|--:|--:|---|---|").unwrap();
    let mut json = Vec::new();
    for (ours, theirs) in lsm.iter().zip(&rocksdb) {
        assert_eq!(ours.name, theirs.name);
        let ratio = ours.value / theirs.value;
        writeln!(
            markdown,
            "| {} | {} | {:.4} | {:.4} | {:.2} | {} | {} |",
            ours.name, ours.unit, ours.value, theirs.value, ratio, ours.note, theirs.note
        )
        .unwrap();
        json.push(format!(
            "    {{\"name\": {:?}, \"unit\": {:?}, \"lsm\": {}, \"rocksdb\": {}, \"lsm_over_rocksdb\": {ratio}, \"lsm_note\": {:?}, \"rocksdb_note\": {:?}}}",
            ours.name, ours.unit, ours.value, theirs.value, ours.note, theirs.note
        ));
    }
    print!("{markdown}");
    let json = format!(
        "{{\n  \"command\": {command:?},\n  \"machine\": {:?},\n  \"rocksdb\": {ROCKSDB_VERSION:?},\n  \"figures\": [\n{}\n  ]\n}}\n",
        machine(),
        json.join(",\n")
    );
    std::fs::create_dir_all("results").unwrap();
    std::fs::write("results/yardstick.md", markdown).unwrap();
    std::fs::write("results/yardstick.json", json).unwrap();
}
