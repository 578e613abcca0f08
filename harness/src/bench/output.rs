//! What a bench measures — per-workload results, each suite's space, a
//! budgeted child's memory — and the sink they go to as they come.

use std::path::PathBuf;

use leasehold_core::kv::EngineStats;

use super::Level;
use crate::engines::{DurabilityMode, EngineKind};
use crate::measure;
use crate::{Error, Result};

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct BenchResult {
    pub workload: String,
    pub engine: EngineKind,
    pub engine_version: String,
    pub level: Level,
    pub durability: DurabilityMode,
    pub threads: usize,
    pub requests: u64,
    pub elapsed_secs: f64,
    pub ops_per_sec: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    /// Reads (and scans) that found a record.
    pub found: u64,
    pub reads: u64,
    /// Which round of `--repeat` (from 0).
    #[serde(default)]
    pub round: u32,
    /// What the engine counted while this workload ran (`None`: a store
    /// without a key-value engine).
    #[serde(default)]
    pub engine_counters: Option<WorkloadCounters>,
}

/// An engine's own counters over one workload: the difference of
/// `KvEngine::stats` after it and before. Background flushes and compactions
/// a workload left behind are counted in the next one.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct WorkloadCounters {
    pub user_bytes_written: u64,
    /// WAL, flush and compaction bytes (or the engine's equivalents).
    pub engine_bytes_written: u64,
    pub compaction_bytes_written: u64,
    pub device_bytes_read: u64,
    pub stall_micros: u64,
    pub block_cache_hits: u64,
    pub block_cache_misses: u64,
    pub fsyncs: u64,
}

impl WorkloadCounters {
    /// `after` less `before`.
    pub fn between(before: &EngineStats, after: &EngineStats) -> WorkloadCounters {
        let delta =
            |counter: fn(&EngineStats) -> u64| counter(after).saturating_sub(counter(before));
        WorkloadCounters {
            user_bytes_written: delta(|stats| stats.user_bytes_written),
            engine_bytes_written: delta(|stats| {
                stats.wal_bytes_written + stats.flush_bytes_written + stats.compaction_bytes_written
            }),
            compaction_bytes_written: delta(|stats| stats.compaction_bytes_written),
            device_bytes_read: delta(|stats| stats.device_bytes_read),
            stall_micros: delta(|stats| stats.stall_micros),
            block_cache_hits: delta(|stats| stats.block_cache_hits),
            block_cache_misses: delta(|stats| stats.block_cache_misses),
            fsyncs: delta(|stats| stats.fsyncs),
        }
    }
}

/// An engine's directory at the end of a suite, its engine closed.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct BenchSpace {
    pub suite: String,
    pub engine: EngineKind,
    pub level: Level,
    /// Bytes the directory's files take on disk (allocated blocks).
    pub disk_bytes: u64,
    /// Key and value bytes of every record written at least once.
    pub logical_bytes: u64,
    #[serde(default)]
    pub round: u32,
}

/// A budgeted child: the most memory its cgroup held.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct BenchMemory {
    pub engine: EngineKind,
    pub level: Level,
    pub limit_bytes: u64,
    /// Page cache included.
    pub peak_bytes: Option<u64>,
    pub killed_for_memory: bool,
    /// The child's own peak resident set (VmHWM, page cache not included),
    /// as of its last completed workload.
    pub peak_rss_bytes: Option<u64>,
    pub page_cache_dropped: bool,
    pub malloc_arenas: u32,
    #[serde(default)]
    pub round: u32,
}

/// Everything a bench measured (`bench.json`).
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct BenchOutput {
    pub results: Vec<BenchResult>,
    pub space: Vec<BenchSpace>,
    pub memory: Vec<BenchMemory>,
    /// A budgeted child's peak resident set when it last wrote its results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child_peak_rss_bytes: Option<u64>,
}

/// Where results go as they come: kept, and written to the child's result
/// file after each (so a child killed for memory leaves what it finished).
pub(super) struct Sink {
    pub output: BenchOutput,
    pub path: Option<PathBuf>,
    /// The round of `--repeat` running.
    pub round: u32,
}

impl Sink {
    pub fn result(&mut self, mut result: BenchResult) -> Result<()> {
        result.round = self.round;
        self.output.results.push(result);
        self.flush()
    }

    pub fn space(&mut self, mut space: BenchSpace) -> Result<()> {
        space.round = self.round;
        self.output.space.push(space);
        self.flush()
    }

    pub fn flush(&mut self) -> Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        self.output.child_peak_rss_bytes = measure::peak_rss_bytes();
        let json = serde_json::to_string(&self.output)?;
        let temporary = path.with_extension("partial");
        std::fs::write(&temporary, json)
            .and_then(|()| std::fs::rename(&temporary, path))
            .map_err(Error::file(path))
    }
}
