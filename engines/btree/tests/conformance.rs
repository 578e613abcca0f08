//! The Store conformance suite over the B+tree, as a `Store` through `KvStore`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

mod common;

use std::sync::Arc;

use std::path::Path;

use leasehold_btree::config::BtreeConfig;
use leasehold_btree::BtreeEngine;
use leasehold_core::vfs::OsVfs;
use leasehold_core::KvResult;
use leasehold_testkit::conformance::KvOnDisk;

fn open(dir: &Path, background: bool) -> KvResult<BtreeEngine> {
    let config = BtreeConfig {
        background_threads: background,
        page_size: 4096,
        ..common::tiny_config(dir)
    };
    BtreeEngine::open(&config, Arc::new(OsVfs::new()))
}

mod inline {
    use super::*;
    leasehold_testkit::store_conformance_tests!(KvOnDisk::new(|dir| open(dir, false)));
}

mod background {
    use super::*;
    leasehold_testkit::store_conformance_tests!(KvOnDisk::new(|dir| open(dir, true)));
}
