//! The conformance suite against a real S3 server (Ceph's radosgw on
//! 127.0.0.1, started by `scripts/s3-server` when none is named in the
//! environment).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

mod common;

leasehold_testkit::store_conformance_tests!(common::ObjectFactory::s3());
