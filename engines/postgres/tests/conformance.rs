//! The conformance suite on a real PostgreSQL server, at `sync`
//! (`synchronous_commit = on`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

mod common;

leasehold_testkit::store_conformance_tests!(common::PostgresFactory::new(
    leasehold_core::Durability::Sync
));

/// The suite again at `buffered` (`synchronous_commit = off`): the rules do
/// not depend on when the WAL is flushed.
mod buffered {
    use super::common;
    leasehold_testkit::store_conformance_tests!(common::PostgresFactory::new(
        leasehold_core::Durability::Buffered
    ));
}
