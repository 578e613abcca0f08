//! leasehold-testkit: the test machinery every engine reuses, and the crash
//! campaign runs (a crate of its own: no engine or tool carries it in a normal
//! build but the harness, whose `crash-fuzz` is built on it):
//!
//! - `oracle`: the reference model of acknowledged writes and the check that a
//!   recovered engine holds the durable floor plus a prefix of the rest;
//! - `crash`: the driver that runs operation sequences on `SimVfs`, crashes at a
//!   chosen point under a chosen policy, recovers (twice, with a crash inside
//!   the first recovery) and consults the oracle; with a proptest front end
//!   that shrinks failures;
//! - `damage`: media damage at rest — a closed store's files flipped, zeroed,
//!   truncated, removed — and the rule that the store then opens with every
//!   key right or fails with a typed error;
//! - `store_crash`: the lease protocol across a crash — `KvStore` on a crashed
//!   disk must never grant an epoch twice, lose a Sync save, or let a stale
//!   epoch's save through;
//! - `background`: the oracle with the engine's workers on and manual
//!   maintenance (`compact_all`, checkpoints) racing them;
//! - `group_bound`: Group's time bound — a burst of Group writes, silence,
//!   and a crash image at a random moment: what was acknowledged more than
//!   the interval (plus slack) before it must be recovered;
//! - `gated`: a simulated disk whose fsyncs of one file kind wait at a gate,
//!   to hold an engine inside a flush, a checkpoint or a log sync;
//! - `kill`: acknowledged Sync writes survive SIGKILL of a writer process on
//!   the real file system, and a second process is refused the directory;
//! - `conformance`: the `Store` behaviour every engine must show;
//! - `contention`: processes racing for hot actors through a networked
//!   backend, and the checker of their logs;
//! - `planted`: the check that each planted bug is caught by its family;
//! - `workload`: a random workload checked against a model;
//! - `toy`: a minimal log engine, correct or with a planted ack-before-fsync bug,
//!   on which the oracle proves it can fail.

// This module is test code compiled into the library for other crates' tests:
// a failed expectation is meant to panic, with a message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

pub mod background;
pub mod conformance;
pub mod contention;
pub mod crash;
pub mod damage;
pub mod gated;
pub mod group_bound;
pub mod kill;
pub mod oracle;
pub mod planted;
pub mod store_crash;
pub mod toy;
pub mod workload;
