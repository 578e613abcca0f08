//! The LSM's headline figures, measured in one run on this machine (see
//! `leasehold_benches::headline`). `yardstick` measures the same beside RocksDB.
//!
//! `cargo run --release -p leasehold-benches --bin lsm-measure [-- --dir D]`
//! writes `results/lsm-measure.{json,md}`; the data directory is scratch.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a measurement tool: failing loudly is right

use leasehold_benches::headline::{figures, open_lsm, Subject};
use leasehold_benches::{data_dir, report};
use leasehold_lsm::LsmEngine;

fn main() {
    let dir = data_dir("lsm-measure");
    let lsm = Subject {
        open: &open_lsm,
        shape: &|engine: &LsmEngine| format!("levels {:?}", engine.level_counts()),
    };
    report(
        "lsm-measure",
        "LSM headline figures",
        "cargo run --release -p leasehold-benches --bin lsm-measure",
        "OsVfs on the working directory's disk; default LSM settings except a 4 MiB memtable (256 MiB for the recovery run)",
        &figures(&lsm, &dir),
    );
}
