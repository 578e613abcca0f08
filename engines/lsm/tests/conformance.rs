//! The Store conformance suite over the LSM, as a `Store` through `KvStore`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

mod common;

use std::sync::Arc;

use std::path::Path;

use leasehold_core::vfs::OsVfs;
use leasehold_core::KvResult;
use leasehold_lsm::config::LsmConfig;
use leasehold_lsm::LsmEngine;
use leasehold_testkit::conformance::KvOnDisk;

fn open(dir: &Path, background: bool) -> KvResult<LsmEngine> {
    let config = LsmConfig {
        background_threads: background,
        ..common::tiny_config(dir)
    };
    LsmEngine::open(&config, Arc::new(OsVfs::new()))
}

mod inline {
    use super::*;
    leasehold_testkit::store_conformance_tests!(KvOnDisk::new(|dir| open(dir, false)));
}

mod background {
    use super::*;
    leasehold_testkit::store_conformance_tests!(KvOnDisk::new(|dir| open(dir, true)));
}
