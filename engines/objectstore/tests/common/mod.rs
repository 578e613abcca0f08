//! What the object-store tests share: the real S3 server (started by
//! `scripts/s3-server` when the environment does not name one already) and a
//! conformance factory that gives every test its own key prefix.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use leasehold_core::{ActorKey, Clock, Snapshot, SystemClock};
use leasehold_objectstore::config::S3Config;
use leasehold_objectstore::record::Envelope;
use leasehold_objectstore::{backend, test_server, Backend, ObjectStoreBackend};
use leasehold_testkit::conformance::StoreFactory;

/// The S3 settings of the test server, starting it if need be.
pub fn s3_settings() -> HashMap<String, String> {
    test_server::settings().expect("the S3 test server")
}

/// A fresh prefix nobody else writes under.
pub fn unique_prefix(what: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "test/{what}-{}-{}-{}",
        std::process::id(),
        SystemClock.now().as_millis(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn s3_config(prefix: &str) -> S3Config {
    test_server::s3_config(prefix).expect("the S3 test server")
}

/// Where a factory's stores live.
pub enum Target {
    S3(S3Config),
    Azure(leasehold_objectstore::config::AzureConfig),
    Memory(Arc<object_store::memory::InMemory>, String),
}

pub struct ObjectFactory {
    target: Target,
}

impl ObjectFactory {
    pub fn s3() -> Self {
        ObjectFactory {
            target: Target::S3(s3_config(&unique_prefix("conformance"))),
        }
    }

    /// The S3 server under `prefix`.
    pub fn s3_at(prefix: &str) -> Self {
        ObjectFactory {
            target: Target::S3(s3_config(prefix)),
        }
    }

    /// Azurite under `prefix`.
    pub fn azure_at(prefix: &str) -> Self {
        ObjectFactory {
            target: Target::Azure(test_server::azure_config(prefix).expect("the Azure emulator")),
        }
    }

    pub fn azure() -> Self {
        ObjectFactory {
            target: Target::Azure(
                test_server::azure_config(&unique_prefix("conformance"))
                    .expect("the Azure emulator"),
            ),
        }
    }

    pub fn memory() -> Self {
        ObjectFactory {
            target: Target::Memory(
                Arc::new(object_store::memory::InMemory::new()),
                "leasehold".into(),
            ),
        }
    }

    fn backend(&self) -> Backend {
        match &self.target {
            Target::S3(config) => backend::s3(config).expect("S3 client"),
            Target::Azure(config) => backend::azure(config).expect("Azure client"),
            Target::Memory(store, prefix) => Backend {
                store: store.clone(),
                prefix: prefix.clone(),
                kind: "memory",
            },
        }
    }
}

impl StoreFactory for ObjectFactory {
    type Store = ObjectStoreBackend;

    fn open(&self) -> ObjectStoreBackend {
        ObjectStoreBackend::open(self.backend()).expect("open object store")
    }

    fn durable(&self) -> bool {
        true
    }

    fn tamper_state(&self, store: &ObjectStoreBackend, key: &ActorKey) {
        let path = store.layout().snapshot(key);
        let (bytes, _) = store
            .client()
            .get(&path)
            .expect("read snapshot object")
            .expect("snapshot object exists");
        let mut envelope = Envelope::decode(&bytes).expect("envelope decodes");
        let snapshot: &mut Snapshot = envelope.snapshot.as_mut().expect("a snapshot");
        let mut state = snapshot.state.to_vec();
        state[0] ^= 0x01;
        snapshot.state = state.into();
        store
            .client()
            .put_unconditionally(&path, envelope.encode())
            .expect("write tampered object");
    }
}
