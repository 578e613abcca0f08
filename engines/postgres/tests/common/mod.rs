//! What the PostgreSQL tests share: the throwaway server
//! (`scripts/postgres-server`, started when the environment names none) and
//! a conformance factory that gives every test its own schema.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};

use leasehold_core::{ActorKey, Clock, Durability, SystemClock};
use leasehold_postgres::config::PostgresConfig;
use leasehold_postgres::{test_server, PostgresStore};
use leasehold_testkit::conformance::StoreFactory;

/// A fresh schema name nobody else uses.
pub fn unique_schema(what: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "t_{what}_{}_{}_{}",
        std::process::id(),
        SystemClock.now().as_millis() % 1_000_000_000,
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The test server's settings in a fresh schema.
pub fn config(what: &str) -> PostgresConfig {
    test_server::config(&unique_schema(what)).expect("the PostgreSQL test server")
}

pub struct PostgresFactory {
    pub config: PostgresConfig,
    pub durability: Durability,
}

impl PostgresFactory {
    pub fn new(durability: Durability) -> Self {
        PostgresFactory {
            config: config("conformance"),
            durability,
        }
    }
}

impl StoreFactory for PostgresFactory {
    type Store = PostgresStore;

    fn open(&self) -> PostgresStore {
        PostgresStore::open(&self.config, self.durability).expect("open the postgres store")
    }

    fn durable(&self) -> bool {
        true
    }

    fn tamper_state(&self, store: &PostgresStore, key: &ActorKey) {
        assert_eq!(
            store.tamper_state(key).expect("tamper"),
            1,
            "one row changed"
        );
    }
}
