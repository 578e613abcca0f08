//! Leasehold's workloads: scenario files, the simulated virtual-actor runtime
//! that turns a scenario into a trace of store operations with their expected
//! answers, and the trace format that replay reads.

pub mod jsonl;
pub mod ownership;
pub mod popularity;
pub mod runtime;
pub mod scenario;
pub mod state;
pub mod trace;

pub use runtime::{generate, Generated, Reference, RuntimeStats};
pub use scenario::{Scenario, ScenarioError};
pub use trace::{Answer, Op, Trace, TraceError, TraceOp};
