//! leasehold-workloads: what the harness replays against the engines.
//!
//! Today: `activation`, a built-in activation workload on virtual time with
//! Zipf popularity. The scenario files, trace recording and replay of the
//! harness issue build on it.

pub mod activation;
