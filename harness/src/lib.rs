//! The Leasehold harness as a library: the engines it opens from the seed's
//! TOML, the replay and comparison machinery, the operator commands, the
//! crash campaign — what the `leasehold` command line (`main.rs`) drives and
//! what the examples (`examples/actor-host.rs`) build on.

use std::path::PathBuf;

pub use error::{Context, Error, Result};

pub mod actor_host;
pub mod bench;
pub mod budget;
pub mod compare;
pub mod crash_fuzz;
pub mod engines;
pub mod error;
pub mod isolated;
pub mod machine;
pub mod measure;
pub mod metrics;
pub mod operator;
pub mod ratios;
pub mod regime;
pub mod replay;
pub mod report;
pub mod run;
pub mod source;
pub mod svg;
#[cfg(test)]
mod tests;
pub mod threads;
pub mod user_trace;

/// How replay drives the store; the same for every engine in one comparison.
#[derive(clap::Args, Clone, Debug)]
pub struct ReplayArgs {
    /// Replay threads (each actor's ops stay on one thread, in order).
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Issue ops at this rate (ops/s of wall time) and count latency from each
    /// op's scheduled time, so stalls are not hidden; default: closed loop.
    #[arg(long)]
    pub open_loop: Option<f64>,
    /// Engine settings from the seed's TOML (one file per engine section; the
    /// data directory in it is ignored: every run gets a fresh one).
    #[arg(long = "config")]
    pub configs: Vec<PathBuf>,
    /// Where engines keep their files while they run (a fresh subdirectory per run, removed after).
    #[arg(long, default_value = "results/data")]
    pub data_dir: PathBuf,
    /// Publish the store's live metrics to this JSON file every second
    /// (`leasehold metrics --file F --watch` shows them).
    #[arg(long)]
    pub metrics_file: Option<PathBuf>,
    /// Leave each engine's files in the data directory after its run (for
    /// the operator commands) instead of removing them.
    #[arg(long)]
    pub keep_data: bool,
    /// Run each engine's replay in its own child process inside a memory
    /// cgroup of this size ("384MiB", "1GiB"; page cache counted; needs root
    /// and a cgroup memory controller). Overrides a scenario's memory_limit.
    #[arg(long, value_parser = budget::parse_size)]
    pub memory_limit: Option<u64>,
    /// Stop each replay this many seconds after it began (set-up ops
    /// included) and report the figures of the ops it replayed, marked as
    /// capped. `compare --regime beyond-memory` caps at 150 s unless told.
    #[arg(long)]
    pub time_cap_secs: Option<u64>,
    /// Size every engine's caches and write buffers from this budget
    /// (`EngineSettings::sized_for`); a budgeted run's child gets it.
    #[arg(long, hide = true, value_parser = budget::parse_size)]
    pub sized_for: Option<u64>,
}
