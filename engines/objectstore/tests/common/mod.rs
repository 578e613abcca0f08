//! What the object-store tests share: the real S3 server (started by
//! `scripts/s3-server` when the environment does not name one already) and a
//! conformance factory that gives every test its own key prefix.

#![allow(dead_code)]

use std::collections::HashMap;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use leasehold_core::config::S3Config;
use leasehold_core::testkit::conformance::StoreFactory;
use leasehold_core::{ActorKey, Clock, Snapshot, SystemClock};
use leasehold_objectstore::record::Envelope;
use leasehold_objectstore::{backend, Backend, ObjectStoreBackend};

/// The S3 settings of the test server, starting it if need be.
pub fn s3_settings() -> HashMap<String, String> {
    static SETTINGS: OnceLock<HashMap<String, String>> = OnceLock::new();
    SETTINGS
        .get_or_init(|| {
            let names = [
                "LEASEHOLD_S3_ENDPOINT",
                "LEASEHOLD_S3_BUCKET",
                "LEASEHOLD_S3_ACCESS_KEY_ID",
                "LEASEHOLD_S3_SECRET_ACCESS_KEY",
            ];
            let from_env: HashMap<String, String> = names
                .iter()
                .filter_map(|name| Some((name.to_string(), std::env::var(name).ok()?)))
                .collect();
            if from_env.len() == names.len() {
                return from_env;
            }
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/s3-server");
            let output = Command::new("bash")
                .arg(script)
                .output()
                .expect("run scripts/s3-server");
            assert!(
                output.status.success(),
                "scripts/s3-server failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
            String::from_utf8_lossy(&output.stdout)
                .lines()
                .filter_map(|line| line.split_once('='))
                .map(|(name, value)| (name.to_owned(), value.to_owned()))
                .collect()
        })
        .clone()
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
    let settings = s3_settings();
    S3Config {
        endpoint: Some(settings["LEASEHOLD_S3_ENDPOINT"].clone()),
        region: "us-east-1".into(),
        bucket: settings["LEASEHOLD_S3_BUCKET"].clone(),
        access_key_id: Some(settings["LEASEHOLD_S3_ACCESS_KEY_ID"].clone()),
        secret_access_key: Some(settings["LEASEHOLD_S3_SECRET_ACCESS_KEY"].clone()),
        prefix: prefix.to_owned(),
        enable_ssl: false,
        connection_timeout: 10,
        retry_count: 3,
    }
}

/// Where a factory's stores live.
pub enum Target {
    S3(S3Config),
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

    fn supports_commit(&self) -> bool {
        false
    }
}
