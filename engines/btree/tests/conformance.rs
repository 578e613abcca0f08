//! The Store conformance suite over the B+tree, as a `Store` through `KvStore`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

mod common;

use std::sync::Arc;

use leasehold_btree::config::BtreeConfig;
use leasehold_btree::BtreeEngine;
use leasehold_core::vfs::OsVfs;
use leasehold_core::{ActorKey, Durability, KvStore};
use leasehold_testkit::conformance::{tamper_kv_state, StoreFactory};

struct Btree {
    dir: tempfile::TempDir,
    background: bool,
}

impl StoreFactory for Btree {
    type Store = KvStore<BtreeEngine>;

    fn open(&self) -> Self::Store {
        let config = BtreeConfig {
            background_threads: self.background,
            page_size: 4096,
            ..common::tiny_config(self.dir.path())
        };
        KvStore::new(
            BtreeEngine::open(&config, Arc::new(OsVfs::new())).unwrap(),
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
    leasehold_testkit::store_conformance_tests!(Btree {
        dir: tempfile::tempdir().unwrap(),
        background: false
    });
}

mod background {
    use super::*;
    leasehold_testkit::store_conformance_tests!(Btree {
        dir: tempfile::tempdir().unwrap(),
        background: true
    });
}
