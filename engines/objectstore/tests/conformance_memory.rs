//! The conformance suite on `object_store`'s in-memory store: the protocol
//! without a server, fast. The run that counts is `conformance_s3.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

mod common;

leasehold_testkit::store_conformance_tests!(common::ObjectFactory::memory());
