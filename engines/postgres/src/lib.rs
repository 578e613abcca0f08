//! leasehold-postgres: the `Store` on PostgreSQL, the database Orleans
//! (ADO.NET grain storage), Dapr (its PostgreSQL state store) and Akka (JDBC
//! persistence) keep actor state in. Unlike every other backend, the lease,
//! the fencing check and the snapshot change in one transaction, so a
//! multi-actor `commit` is one transaction too.
//!
//! - `store`: `PostgresStore`, the `Store` implementation;
//! - `ops`: each operation as SQL, and why the row locks make the rules hold;
//! - `tx`: transactions, bounded retries, error mapping;
//! - `connect`: the config section to a connection, TLS, the pool;
//! - `rows`: records to rows and back;
//! - `schema`: the tables, created and versioned by the store;
//! - `test_server`: the throwaway server of the tests (`scripts/postgres-server`).
//!
//! FORMAT.md has the tables and the argument.

pub mod config;
mod connect;
mod ops;
mod rows;
pub mod schema;
mod store;
pub mod test_server;
mod tx;

pub use rows::TIMESTAMP_MAX_MS;
pub use store::PostgresStore;
