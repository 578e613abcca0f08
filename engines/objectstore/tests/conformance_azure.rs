//! The conformance suite against Azure Blob storage as Microsoft's emulator,
//! Azurite, serves it on 127.0.0.1 (started by `scripts/azure-server` when
//! none is named in the environment).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

mod common;

leasehold_testkit::store_conformance_tests!(common::ObjectFactory::azure());
