//! The Store conformance suite over the memory engine, volatile and backed up.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

use std::sync::Arc;
use std::time::Duration;

use leasehold_core::vfs::OsVfs;
use leasehold_core::{ActorKey, Durability, KvStore};
use leasehold_memory::config::{BackupCompression, MemoryConfig};
use leasehold_memory::MemoryEngine;
use leasehold_testkit::conformance::{tamper_kv_state, StoreFactory};

mod volatile {
    use super::*;

    pub struct Volatile;

    impl StoreFactory for Volatile {
        type Store = KvStore<MemoryEngine>;

        fn open(&self) -> Self::Store {
            KvStore::new(MemoryEngine::volatile(100_000), Durability::Buffered)
        }

        fn durable(&self) -> bool {
            false
        }

        fn tamper_state(&self, store: &Self::Store, key: &ActorKey) {
            tamper_kv_state(store, key);
        }
    }

    leasehold_testkit::store_conformance_tests!(Volatile);
}

mod backed_up {
    use super::*;

    pub struct BackedUp {
        dir: tempfile::TempDir,
    }

    impl BackedUp {
        pub fn new() -> Self {
            BackedUp {
                dir: tempfile::tempdir().expect("temp dir"),
            }
        }
    }

    impl StoreFactory for BackedUp {
        type Store = KvStore<MemoryEngine>;

        fn open(&self) -> Self::Store {
            let config = MemoryConfig {
                max_entries: 100_000,
                backup_path: Some(self.dir.path().join("backup.lz4")),
                sync_interval: Duration::from_secs(3600),
                compression: BackupCompression::Lz4,
            };
            let engine =
                MemoryEngine::open(&config, Arc::new(OsVfs::new())).expect("open memory engine");
            // Group: acknowledged at once, durable at the next backup or sync.
            KvStore::new(engine, Durability::Group)
        }

        fn durable(&self) -> bool {
            true
        }

        fn tamper_state(&self, store: &Self::Store, key: &ActorKey) {
            tamper_kv_state(store, key);
        }
    }

    leasehold_testkit::store_conformance_tests!(BackedUp::new());
}
