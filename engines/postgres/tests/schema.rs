//! The store's schema: created once by racing opens, versioned, and never
//! written with another layout; bad settings and a missing server are typed
//! errors that never print the password.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

mod common;

use std::sync::{Arc, Barrier};

use leasehold_core::secret::Secret;
use leasehold_core::{Durability, KvError, Store, StoreError};
use leasehold_postgres::PostgresStore;

/// A statement run beside the store (as another tool would), in `schema`.
fn execute(config: &leasehold_postgres::config::PostgresConfig, sql: &str) {
    let store = PostgresStore::open(config, Durability::Sync).unwrap();
    store.execute_for_tests(sql).unwrap();
}

#[test]
fn racing_opens_create_the_schema_once() {
    let config = common::config("race");
    let barrier = Arc::new(Barrier::new(4));
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let (config, barrier) = (config.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                PostgresStore::open(&config, Durability::Sync)
                    .map(|store| store.schema().to_owned())
            })
        })
        .collect();
    for open in opens {
        assert_eq!(open.join().unwrap().unwrap(), config.schema);
    }
}

#[test]
fn a_newer_layout_is_refused_with_both_versions_named() {
    let config = common::config("newer");
    execute(
        &config,
        "UPDATE meta SET value = 7 WHERE name = 'schema_version'",
    );
    match PostgresStore::open(&config, Durability::Sync) {
        Err(StoreError::Engine(KvError::Unsupported(message))) => {
            assert!(
                message.contains("version 7") && message.contains("1"),
                "{message}"
            )
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
}

#[test]
fn tables_the_store_did_not_create_are_refused() {
    let config = common::config("foreign");
    execute(&config, "DROP TABLE meta");
    match PostgresStore::open(&config, Durability::Sync) {
        Err(StoreError::InvalidArgument(message)) => {
            assert!(message.contains("did not create"), "{message}")
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
}

#[test]
fn a_wrong_password_is_an_error_that_does_not_print_it() {
    let mut config = common::config("password");
    config.password = Some(Secret::new("wrong-PASSWORD-never-printed"));
    let err = PostgresStore::open(&config, Durability::Sync)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(err.contains("password authentication failed"), "{err}");
    assert!(!err.contains("never-printed"), "{err}");
}

#[test]
fn no_server_is_a_connection_error() {
    let mut config = common::config("absent");
    // A port nothing listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    config.port = Some(port);
    config.connect_timeout_seconds = 2;
    let err = PostgresStore::open(&config, Durability::Sync)
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Engine(KvError::Io { .. })),
        "{err}"
    );
}

#[test]
fn text_postgresql_cannot_hold_is_refused_before_it_is_sent() {
    let config = common::config("nul");
    let store = PostgresStore::open(&config, Durability::Sync).unwrap();
    let key = leasehold_core::ActorKey::new("T", "has\0nul");
    let err = store
        .try_acquire(
            &key,
            &leasehold_core::NodeId::new("n"),
            std::time::Duration::from_secs(1),
            leasehold_core::Timestamp(1),
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidArgument(_)), "{err}");
    assert_eq!(store.health(), leasehold_core::Health::Healthy);
}

/// `sslmode = "require"` runs over TLS with the server's certificate checked
/// against `sslrootcert`; without it (an unknown issuer) there is no
/// connection rather than an unverified one; unset on 127.0.0.1, plain.
#[test]
fn tls_is_verified_when_required_and_off_on_loopback_by_default() {
    use leasehold_postgres::config::SslMode;
    let settings = leasehold_postgres::test_server::settings().unwrap();
    let root = std::path::PathBuf::from(
        settings
            .get("LEASEHOLD_PG_SSLROOTCERT")
            .expect("scripts/postgres-server prints LEASEHOLD_PG_SSLROOTCERT"),
    );
    let mut config = common::config("tls");
    let plain = PostgresStore::open(&config, Durability::Sync).unwrap();
    assert!(!plain.uses_tls().unwrap());

    config.sslmode = Some(SslMode::Require);
    config.sslrootcert = Some(root);
    let secured = PostgresStore::open(&config, Durability::Sync).unwrap();
    assert!(secured.uses_tls().unwrap());

    config.sslrootcert = None;
    let err = PostgresStore::open(&config, Durability::Sync)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(err.to_lowercase().contains("certificate"), "{err}");
}
