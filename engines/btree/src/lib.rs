//! leasehold-btree: a copy-on-write B+tree with a write-ahead log, written
//! for Leasehold.
//!
//! `BtreeEngine` implements `KvEngine`. FORMAT.md documents every byte, the
//! commit and checkpoint protocols, and why recovery is correct. One file per
//! concept: `page` (checksummed pages), `node` (the in-memory copy-on-write
//! tree), `layout` (leaf, branch and overflow payloads), `meta` (meta slots
//! and the free list), `checkpoint` (writing pages), `load` (reading them),
//! and `db` tying them together. The WAL and group commit are core's.

pub mod checkpoint;
pub mod db;
pub mod layout;
pub mod load;
pub mod meta;
pub mod node;
pub mod page;

pub use db::BtreeEngine;
