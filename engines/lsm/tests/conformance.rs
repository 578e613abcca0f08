//! The Store conformance suite over the LSM, as a `Store` through `KvStore`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

mod common;

use std::sync::Arc;

use leasehold_core::vfs::OsVfs;
use leasehold_core::{ActorKey, Durability, KvStore};
use leasehold_lsm::config::LsmConfig;
use leasehold_lsm::LsmEngine;
use leasehold_testkit::conformance::{tamper_kv_state, StoreFactory};

struct Lsm {
    dir: tempfile::TempDir,
    background: bool,
}

impl StoreFactory for Lsm {
    type Store = KvStore<LsmEngine>;

    fn open(&self) -> Self::Store {
        let config = LsmConfig {
            background_threads: self.background,
            ..common::tiny_config(self.dir.path())
        };
        KvStore::new(
            LsmEngine::open(&config, Arc::new(OsVfs::new())).unwrap(),
            Durability::Sync,
        )
    }

    fn durable(&self) -> bool {
        true
    }

    fn tamper_state(&self, store: &Self::Store, key: &ActorKey) {
        tamper_kv_state(store, key);
    }
}

mod inline {
    use super::*;
    leasehold_testkit::store_conformance_tests!(Lsm {
        dir: tempfile::tempdir().unwrap(),
        background: false
    });
}

mod background {
    use super::*;
    leasehold_testkit::store_conformance_tests!(Lsm {
        dir: tempfile::tempdir().unwrap(),
        background: true
    });
}
